//! Sigstore's client conformance suite, bundle-verification cases
//! (`tests/data/sigstore-conformance/bundle-verify/`, copied from
//! sigstore/sigstore-conformance with its licence and commit): each case is
//! run through `promoter verify-bundle` exactly as the suite's client
//! protocol drives a client (its `test/client.py`, `build_verify_args`),
//! once with the artifact's path and once with `sha256:<hex>`. A case whose
//! directory name ends in `_fail` must exit non-zero; every other case must
//! exit 0. What a user sees is checked too: a rejection names the check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;

/// The suite's defaults (`test/client.py`).
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Cases that cannot apply to an image promoter, with the reason. None so
/// far: every case runs.
const NOT_APPLICABLE: &[(&str, &str)] = &[];

/// Rejected cases whose input is unusable rather than untrue: the suite only
/// asks for a non-zero exit; `verify-bundle` exits 2 (bad input), naming the
/// file and what is wrong with it.
const BAD_INPUT: &[(&str, &str)] = &[("managed-key-wrong-key_fail", "is not a PEM public key")];

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigstore-conformance")
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(assets().join("bundle-verify"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The arguments `build_verify_args` gives for the case in `dir`; run with
/// the assets directory as the working directory, as the suite does.
fn verify_args(dir: &Path, digest: bool) -> Vec<String> {
    let mut args = vec![
        "verify-bundle".to_owned(),
        "--bundle".to_owned(),
        dir.join("bundle.sigstore.json").display().to_string(),
    ];
    let key = dir.join("key.pub");
    if key.exists() {
        args.extend(["--key".to_owned(), key.display().to_string()]);
    } else {
        let identity = read_trimmed(&dir.join("identity")).unwrap_or_else(|| IDENTITY.into());
        let issuer = read_trimmed(&dir.join("issuer")).unwrap_or_else(|| ISSUER.into());
        args.extend([
            "--certificate-identity".to_owned(),
            identity,
            "--certificate-oidc-issuer".to_owned(),
            issuer,
        ]);
    }
    let root = dir.join("trusted_root.json");
    if root.exists() {
        args.extend(["--trusted-root".to_owned(), root.display().to_string()]);
    }
    let artifact = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        PathBuf::from("bundle-verify").join("a.txt")
    };
    if digest {
        let bytes = std::fs::read(assets().join(&artifact)).unwrap();
        args.push(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&bytes))
        ));
    } else {
        args.push(artifact.display().to_string());
    }
    args
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promoter"))
        .args(args)
        .current_dir(assets())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_conformance_case_gives_the_expected_outcome_both_ways() {
    let cases = cases();
    assert_eq!(cases.len(), 70, "the copied suite has 70 cases");
    let mut wrong = Vec::new();
    let mut passed = 0;
    let mut total = 0;
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if NOT_APPLICABLE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let must_fail = name.ends_with("_fail");
        for digest in [false, true] {
            total += 1;
            let out = run(&verify_args(dir, digest));
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let bad_input = BAD_INPUT.iter().find(|(n, _)| *n == name);
            let ok = if let Some((_, why)) = bad_input {
                code == Some(2) && stderr.contains(why)
            } else if must_fail {
                // Rejected as a verdict (1), naming the check, never a crash.
                code == Some(1) && stderr.contains(" check]: ")
            } else {
                code == Some(0)
            };
            if ok {
                passed += 1;
            } else {
                let how = if digest { "digest" } else { "path" };
                wrong.push(format!("{name} ({how}): {}", text(&out)));
            }
        }
    }
    eprintln!("conformance: {passed}/{total} (path and digest)");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn rejections_name_the_check_that_failed() {
    let dir = assets().join("bundle-verify");
    for (case, check) in [
        ("signature-mismatch_fail", "[signature check]"),
        ("checkpoint-wrong-roothash_fail", "[checkpoint check]"),
        ("inclusion-proof-corrupted-hash_fail", "[tlog check]"),
        ("invalid-inclusion-proof_fail", "[checkpoint check]"),
        ("invalid-checkpoint-signature_fail", "[checkpoint check]"),
        ("invalid-ct-key_fail", "[SCT check]"),
        ("intoto-expired-certificate_fail", "[chain check]"),
        ("rekor2-no-timestamp_fail", "[timestamp check]"),
        (
            "rekor2-timestamp-payload-mismatch_fail",
            "[timestamp check]",
        ),
        ("managed-key-no-key_fail", "[identity check]"),
        ("wrong-material_fail", "[artifact check]"),
        (
            "trust-root-tlog-missing-validity-start_fail",
            "[trusted root check]",
        ),
        ("bundle-malformed-json_fail", "[bundle check]"),
    ] {
        let out = run(&verify_args(&dir.join(case), false));
        assert_eq!(out.status.code(), Some(1), "{case}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(check), "{case}: {}", text(&out));
        assert!(
            stderr.contains("bundle.sigstore.json"),
            "{case}: {}",
            text(&out)
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = assets().join("bundle-verify/happy-path-v0.3");
    let bundle = dir.join("bundle.sigstore.json").display().to_string();
    // Neither an identity nor a key.
    let out = run(&[
        "verify-bundle".into(),
        "--bundle".into(),
        bundle.clone(),
        "bundle-verify/a.txt".into(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Both an identity and a key.
    let out = run(&[
        "verify-bundle".into(),
        "--bundle".into(),
        bundle.clone(),
        "--certificate-identity".into(),
        IDENTITY.into(),
        "--certificate-oidc-issuer".into(),
        ISSUER.into(),
        "--key".into(),
        "k.pub".into(),
        "bundle-verify/a.txt".into(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // An artifact that is neither a digest nor a file.
    let out = run(&[
        "verify-bundle".into(),
        "--bundle".into(),
        bundle,
        "--certificate-identity".into(),
        IDENTITY.into(),
        "--certificate-oidc-issuer".into(),
        ISSUER.into(),
        "sha256:abc".into(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("sha256:abc"), "{}", text(&out));
}
