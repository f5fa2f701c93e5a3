//! `skopeo` as the independent client: it reads back what the library
//! wrote and seeds what the library then reads.

use std::process::Command;

use super::server::RegistryServer;

fn run(args: &[String]) -> Vec<u8> {
    let out = Command::new("/usr/bin/skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn creds(server: &RegistryServer, flag: &str) -> Vec<String> {
    server
        .skopeo_creds()
        .map(|c| vec![flag.to_owned(), c])
        .unwrap_or_default()
}

/// `skopeo inspect --raw docker://<host>/<repo_and_ref>`: the manifest bytes.
pub fn inspect_raw(server: &RegistryServer, repo_and_ref: &str) -> Vec<u8> {
    let mut args = vec![
        "inspect".to_owned(),
        "--raw".to_owned(),
        "--tls-verify=false".to_owned(),
    ];
    args.extend(creds(server, "--creds"));
    args.push(format!("docker://{}/{repo_and_ref}", server.host));
    run(&args)
}

/// `skopeo inspect --raw oci:<dir>:<tag>`: the manifest bytes of a layout.
pub fn inspect_layout_raw(dir: &std::path::Path, tag: &str) -> Vec<u8> {
    run(&[
        "inspect".to_owned(),
        "--raw".to_owned(),
        format!("oci:{}:{tag}", dir.display()),
    ])
}

/// Copy an OCI layout's `tag` into the registry, all platforms, digests kept.
pub fn copy_layout_to_registry(
    dir: &std::path::Path,
    tag: &str,
    server: &RegistryServer,
    dest: &str,
) {
    let mut args = vec![
        "copy".to_owned(),
        "--all".to_owned(),
        "--preserve-digests".to_owned(),
        "--dest-tls-verify=false".to_owned(),
    ];
    args.extend(creds(server, "--dest-creds"));
    args.push(format!("oci:{}:{tag}", dir.display()));
    args.push(format!("docker://{}/{dest}", server.host));
    run(&args);
}

/// Copy from the registry into an OCI layout at `dir` (all platforms).
pub fn copy_registry_to_layout(
    server: &RegistryServer,
    src: &str,
    dir: &std::path::Path,
    tag: &str,
) {
    let mut args = vec![
        "copy".to_owned(),
        "--all".to_owned(),
        "--preserve-digests".to_owned(),
        "--src-tls-verify=false".to_owned(),
    ];
    args.extend(creds(server, "--src-creds"));
    args.push(format!("docker://{}/{src}", server.host));
    args.push(format!("oci:{}:{tag}", dir.display()));
    run(&args);
}
