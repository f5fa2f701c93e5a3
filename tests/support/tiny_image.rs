//! Many small single-platform images for request-heavy tests: one shared
//! config blob, one layer of a few hundred bytes and an OCI manifest each,
//! pushed and read back through the `Registry` trait. Each operation is a
//! handful of requests, so request counts, not bytes, dominate.
#![allow(dead_code)] // Each test crate uses a different part.

use bytes::Bytes;
use promoter::registry::manifest::OCI_MANIFEST;
use promoter::registry::{Digest, Error, Manifest, Reference, Registry, RepoName, stream};

/// The config every tiny image shares.
pub fn config() -> Bytes {
    Bytes::from_static(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    )
}

/// Image number `i`: its layer and its manifest.
pub fn image(i: usize) -> (Bytes, Manifest) {
    let layer = Bytes::from(format!("tiny layer {i} {}", "x".repeat(200 + i % 50)));
    let config = config();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": Digest::of(&layer).to_string(), "size": layer.len()}],
    });
    let manifest = Manifest::new(Some(OCI_MANIFEST), manifest.to_string().into()).unwrap();
    (layer, manifest)
}

/// Push a blob from memory.
pub async fn push_blob(reg: &dyn Registry, repo: &RepoName, bytes: &Bytes) -> Result<(), Error> {
    reg.push_blob(
        repo,
        &Digest::of(bytes),
        bytes.len() as u64,
        stream::stream_from_bytes(bytes.clone()),
    )
    .await
}

/// Push image `i` under tag `v<i>` (its layer, then its manifest); the
/// config must be there already. Three requests when nothing fails.
pub async fn push(reg: &dyn Registry, repo: &RepoName, i: usize) -> Result<(), Error> {
    let (layer, manifest) = image(i);
    push_blob(reg, repo, &layer).await?;
    reg.push_manifest(repo, &Reference::tag(&format!("v{i}")).unwrap(), &manifest)
        .await
}

/// Read image `i` back by tag and check it is the one pushed: one request.
pub async fn check(reg: &dyn Registry, repo: &RepoName, i: usize) -> Result<(), Error> {
    let (_, manifest) = image(i);
    let got = reg
        .get_manifest(repo, &Reference::tag(&format!("v{i}")).unwrap())
        .await?;
    assert_eq!(got.digest(), manifest.digest(), "image {i}");
    Ok(())
}
