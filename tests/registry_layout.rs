//! The OCI image-layout backend (`oci:<dir>`), with `skopeo` reading and
//! writing the same layouts as the independent client. No server involved:
//! a promotion between two layout directories needs none.

mod support;

use std::path::Path;
use std::sync::Arc;

use promoter::registry::layout::LayoutRegistry;
use promoter::registry::{Error, Location, Reference, Registry, RepoName, http, open};
use support::conformance::{drain, exercise, repo};
use support::copy_image;
use support::image::TestImage;

/// `skopeo inspect --raw oci:<dir>/<repo>:<tag>`; digests are read from the
/// blob store directly (skopeo's `oci:` transport takes tags only).
fn read_back(root: &Path, repo_and_ref: &str) -> Vec<u8> {
    if let Some((repo, digest)) = repo_and_ref.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap();
        return std::fs::read(root.join(repo).join("blobs/sha256").join(hex)).unwrap();
    }
    let (repo, tag) = repo_and_ref.split_once(':').unwrap();
    support::skopeo::inspect_layout_raw(&root.join(repo), tag)
}

fn no_temp_files_left(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        assert!(
            !name.to_string_lossy().starts_with(".tmp-"),
            "temporary file left behind: {}",
            entry.path().display()
        );
        if entry.file_type().unwrap().is_dir() {
            no_temp_files_left(&entry.path());
        }
    }
}

#[tokio::test]
async fn every_operation_on_a_layout() {
    support::require_tools();
    let root = tempfile::tempdir().unwrap();
    let reg = LayoutRegistry::new(root.path());
    assert_eq!(reg.name(), format!("oci:{}", root.path().display()));
    exercise(&reg, &|r| read_back(root.path(), r)).await;
    let layout = root.path().join("promoter/app");
    assert!(layout.join("oci-layout").is_file());
    assert!(layout.join("index.json").is_file());
    no_temp_files_left(root.path());
}

#[tokio::test]
async fn oci_names_open_the_layout_backend() {
    let root = tempfile::tempdir().unwrap();
    let name = format!("oci:{}", root.path().display());
    assert_eq!(
        Location::parse(&name),
        Location::Layout(root.path().to_path_buf())
    );
    let client = http::HttpClient::new(http::HttpOptions::default()).unwrap();
    let reg: Arc<dyn Registry> = open(&name, &client).unwrap();
    TestImage::build(1)
        .push(reg.as_ref(), &repo("a/b"), "v1")
        .await;
    assert_eq!(
        support::skopeo::inspect_layout_raw(&root.path().join("a/b"), "v1"),
        TestImage::build(1).index.bytes.to_vec()
    );
}

#[tokio::test]
async fn promotes_between_two_layout_directories() {
    let (staging, prod) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let image = TestImage::build(31);
    image.write_layout(&staging.path().join("team/app"), "v1.0");
    let src = LayoutRegistry::new(staging.path());
    let dst = LayoutRegistry::new(prod.path());
    copy_image(
        &src,
        &repo("team/app"),
        &dst,
        &repo("mirror/team/app"),
        "v1.0",
    )
    .await
    .unwrap();
    // skopeo reads the promoted layout and finds the same index.
    assert_eq!(
        support::skopeo::inspect_layout_raw(&prod.path().join("mirror/team/app"), "v1.0"),
        image.index.bytes.to_vec()
    );
    // Copying it again with skopeo proves every blob is there and sound.
    let check = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("/usr/bin/skopeo")
        .args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
        .arg(format!(
            "oci:{}:v1.0",
            prod.path().join("mirror/team/app").display()
        ))
        .arg(format!("oci:{}:v1.0", check.path().display()))
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    no_temp_files_left(prod.path());
}

#[tokio::test]
async fn reads_a_layout_written_by_skopeo() {
    let (seed, copied) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let image = TestImage::build(37);
    image.write_layout(seed.path(), "seed");
    std::fs::create_dir_all(copied.path().join("by")).unwrap();
    let status = std::process::Command::new("/usr/bin/skopeo")
        .args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
        .arg(format!("oci:{}:seed", seed.path().display()))
        .arg(format!(
            "oci:{}:v9",
            copied.path().join("by/skopeo").display()
        ))
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let reg = LayoutRegistry::new(copied.path());
    let r = repo("by/skopeo");
    assert_eq!(reg.list_tags(&r).await.unwrap(), ["v9"]);
    let index = reg
        .get_manifest(&r, &Reference::tag("v9").unwrap())
        .await
        .unwrap();
    assert_eq!(index.digest(), image.index.digest());
    for blob in &image.blobs {
        let bytes = drain(reg.get_blob(&r, &blob.digest()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(bytes, blob.bytes.to_vec());
    }
}

#[tokio::test]
async fn a_corrupted_blob_file_is_detected_and_not_promoted() {
    let (staging, prod) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let image = TestImage::build(41);
    let layout = staging.path().join("team/app");
    image.write_layout(&layout, "v1");
    let layer = &image.blobs[2];
    let path = layout.join("blobs/sha256").join(layer.digest().hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let src = LayoutRegistry::new(staging.path());
    let err = drain(
        src.get_blob(&repo("team/app"), &layer.digest())
            .await
            .unwrap(),
    )
    .await
    .unwrap_err();
    match &err {
        Error::DigestMismatch {
            expected, location, ..
        } => {
            assert_eq!(*expected, layer.digest());
            assert!(location.contains(&layer.digest().hex()), "{location}");
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }

    let dst = LayoutRegistry::new(prod.path());
    let dst_repo = repo("mirror/app");
    let err = copy_image(&src, &repo("team/app"), &dst, &dst_repo, "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(
        dst.blob_exists(&dst_repo, &layer.digest()).await.unwrap(),
        None
    );
    assert!(dst.list_tags(&dst_repo).await.unwrap().is_empty());
    no_temp_files_left(prod.path());

    // A corrupted manifest file is caught the same way.
    let child = &image.manifests[1];
    std::fs::write(
        layout.join("blobs/sha256").join(child.digest().hex()),
        b"{\"schemaVersion\":2}",
    )
    .unwrap();
    let err = src
        .get_manifest(&repo("team/app"), &Reference::Digest(child.digest()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[test]
fn names_that_would_escape_the_directory_are_refused() {
    for bad in [
        "../outside",
        "a/../../b",
        "/etc/passwd",
        "a//b",
        "./a",
        "a/.",
    ] {
        assert!(bad.parse::<RepoName>().is_err(), "{bad:?} accepted");
    }
}

#[tokio::test]
async fn a_symlink_out_of_the_directory_is_refused() {
    let (root, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
    let reg = LayoutRegistry::new(root.path());
    let image = TestImage::build(43);
    let blob = &image.blobs[0];
    let err = reg
        .push_blob(
            &repo("evil/app"),
            &blob.digest(),
            blob.bytes.len() as u64,
            promoter::registry::stream::stream_from_bytes(blob.bytes.clone()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    assert!(reg.list_tags(&repo("evil/app")).await.is_err());
    let written = walk(outside.path());
    assert!(written.is_empty(), "written outside the root: {written:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tag_writes_all_land_in_index_json() {
    let root = tempfile::tempdir().unwrap();
    let image = TestImage::build(47);
    let r = repo("busy/app");
    let first = LayoutRegistry::new(root.path());
    image.push(&first, &r, "base").await;
    let index = image.index_manifest();
    let mut tasks = Vec::new();
    for i in 0..32 {
        // Two registry values over the same directory share the lock.
        let reg = LayoutRegistry::new(root.path());
        let (r, index) = (r.clone(), index.clone());
        tasks.push(tokio::spawn(async move {
            reg.push_manifest(&r, &Reference::tag(&format!("t{i}")).unwrap(), &index)
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let tags = first.list_tags(&r).await.unwrap();
    assert_eq!(tags.len(), 33, "{tags:?}");
    let inventory = first.inventory(&r).await.unwrap();
    assert_eq!(inventory.manifests[&index.digest()].tags.len(), 33);
}

#[tokio::test]
async fn moving_a_tag_replaces_its_entry() {
    let root = tempfile::tempdir().unwrap();
    let reg = LayoutRegistry::new(root.path());
    let r = repo("moves/app");
    let (a, b) = (TestImage::build(51), TestImage::build(52));
    a.push(&reg, &r, "v1").await;
    b.push(&reg, &r, "v1").await;
    assert_eq!(reg.list_tags(&r).await.unwrap(), ["v1"]);
    let inventory = reg.inventory(&r).await.unwrap();
    assert_eq!(inventory.digest_of_tag("v1"), Some(b.index.digest()));
    assert_eq!(
        support::skopeo::inspect_layout_raw(&root.path().join("moves/app"), "v1"),
        b.index.bytes.to_vec()
    );
}
