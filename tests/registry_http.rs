//! The HTTP backend against a real `docker-registry` over plain HTTP on
//! 127.0.0.1, with `skopeo` as the independent client.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::manifest::OCI_MANIFEST;
use promoter::registry::{Digest, Error, Manifest, Reference, Registry, stream};
use support::conformance::{drain, exercise, repo};
use support::image::TestImage;
use support::server::{Mode, RegistryServer};
use support::{Noise, copy_image, skopeo};

fn client(options: HttpOptions) -> HttpClient {
    HttpClient::new(options).expect("client")
}

fn registry(server: &RegistryServer) -> Arc<dyn Registry> {
    Arc::new(
        client(HttpOptions::default())
            .registry(&server.host)
            .unwrap(),
    )
}

#[tokio::test]
async fn every_operation_against_a_plain_http_registry() {
    let server = RegistryServer::start(Mode::Plain);
    let reg = registry(&server);
    assert_eq!(reg.name(), server.host);
    exercise(reg.as_ref(), &|r| skopeo::inspect_raw(&server, r)).await;
}

#[tokio::test]
async fn reads_an_image_seeded_by_skopeo() {
    let server = RegistryServer::start(Mode::Plain);
    let image = TestImage::build(11);
    let layout = tempfile::tempdir().unwrap();
    image.write_layout(layout.path(), "seed");
    skopeo::copy_layout_to_registry(layout.path(), "seed", &server, "seeded/img:v2");

    let reg = registry(&server);
    let app = repo("seeded/img");
    let index = reg
        .get_manifest(&app, &Reference::tag("v2").unwrap())
        .await
        .unwrap();
    assert_eq!(index.digest(), image.index.digest());
    assert_eq!(index.bytes(), &image.index.bytes);
    for (child, expected) in index
        .child_manifests()
        .unwrap()
        .iter()
        .zip(&image.manifests)
    {
        let m = reg
            .get_manifest(&app, &Reference::Digest(child.digest))
            .await
            .unwrap();
        assert_eq!(m.bytes(), &expected.bytes);
        for blob in m.blobs().unwrap() {
            let bytes = drain(reg.get_blob(&app, &blob.digest).await.unwrap())
                .await
                .unwrap();
            assert_eq!(bytes.len() as u64, blob.size);
            assert_eq!(Digest::of(&bytes), blob.digest);
        }
    }
    let inventory = reg.inventory(&app).await.unwrap();
    assert_eq!(inventory.digest_of_tag("v2"), Some(image.index.digest()));
}

#[tokio::test]
async fn follows_link_pagination_of_tags() {
    let server = RegistryServer::start(Mode::Plain);
    let options = HttpOptions {
        tags_page_size: Some(2),
        ..HttpOptions::default()
    };
    let reg = client(options).registry(&server.host).unwrap();
    let app = repo("paged/app");
    let image = TestImage::build(3);
    image.push(&reg, &app, "t0").await;
    let index = image.index_manifest();
    for i in 1..7 {
        reg.push_manifest(&app, &Reference::tag(&format!("t{i}")).unwrap(), &index)
            .await
            .unwrap();
    }
    let mut tags = reg.list_tags(&app).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
    let inventory = reg.inventory(&app).await.unwrap();
    assert_eq!(inventory.manifests.len(), 1);
    assert_eq!(inventory.manifests[&index.digest()].tags.len(), 7);
}

#[tokio::test]
async fn chunked_upload_of_a_large_blob_is_what_skopeo_reads() {
    let server = RegistryServer::start(Mode::Plain);
    let reg = registry(&server);
    let app = repo("chunked/app");
    // 20 MiB plus a bit: three chunks, the last one partial.
    let content = Bytes::from(Noise::new(5).bytes(20 * 1024 * 1024 + 12345));
    let digest = Digest::of(&content);
    let chunks: Vec<Result<Bytes, Error>> = content
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    reg.push_blob(
        &app,
        &digest,
        content.len() as u64,
        Box::pin(futures_util::stream::iter(chunks)),
    )
    .await
    .unwrap();
    assert_eq!(
        reg.blob_exists(&app, &digest).await.unwrap(),
        Some(content.len() as u64)
    );

    // Wrap it in an image so that skopeo can read it independently.
    let empty = Bytes::from_static(b"{}");
    let empty_digest = Digest::of(&empty);
    reg.push_blob(&app, &empty_digest, 2, stream::stream_from_bytes(empty))
        .await
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": content.len()}],
    });
    let manifest = Manifest::new(Some(OCI_MANIFEST), Bytes::from(manifest.to_string())).unwrap();
    reg.push_manifest(&app, &Reference::tag("big").unwrap(), &manifest)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    skopeo::copy_registry_to_layout(&server, "chunked/app:big", dir.path(), "big");
    let copied = std::fs::read(dir.path().join("blobs/sha256").join(digest.hex())).unwrap();
    assert!(copied == content, "skopeo read other bytes than we pushed");
}

#[tokio::test]
async fn a_chunked_upload_with_wrong_content_commits_nothing() {
    let server = RegistryServer::start(Mode::Plain);
    let reg = registry(&server);
    let app = repo("chunked/bad");
    let content = Noise::new(6).bytes(10 * 1024 * 1024);
    let claimed = Digest::of(b"the digest of something else");
    let err = reg
        .push_blob(
            &app,
            &claimed,
            content.len() as u64,
            stream::stream_from_bytes(content.into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&claimed.to_string()), "{err}");
    assert_eq!(reg.blob_exists(&app, &claimed).await.unwrap(), None);
}

/// Overwrite the bytes the registry stores for `digest` (same length), so
/// that the real server serves corrupted content.
fn corrupt_stored_blob(server: &RegistryServer, digest: &Digest) {
    let hex = digest.hex();
    let path = server
        .dir
        .path()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(&hex)
        .join("data");
    let mut bytes = std::fs::read(&path).expect("stored blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
}

#[tokio::test]
async fn corrupted_bytes_from_the_registry_are_detected_and_not_copied() {
    let server = RegistryServer::start(Mode::Plain);
    let reg = registry(&server);
    let src = repo("corrupt/src");
    let image = TestImage::build(9);
    image.push(reg.as_ref(), &src, "v1").await;
    let layer = &image.blobs[1];
    corrupt_stored_blob(&server, &layer.digest());

    let err = drain(reg.get_blob(&src, &layer.digest()).await.unwrap())
        .await
        .unwrap_err();
    match &err {
        Error::DigestMismatch { expected, .. } => assert_eq!(*expected, layer.digest()),
        other => panic!("expected a digest mismatch, got {other}"),
    }

    // Copying the image elsewhere stops at the bad blob: the destination
    // gets neither that blob nor any manifest.
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = promoter::registry::layout::LayoutRegistry::new(dst_dir.path());
    let dst_repo = repo("corrupt/dst");
    let err = copy_image(reg.as_ref(), &src, &dst, &dst_repo, "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(
        dst.blob_exists(&dst_repo, &layer.digest()).await.unwrap(),
        None
    );
    assert!(dst.list_tags(&dst_repo).await.unwrap().is_empty());

    // A corrupted manifest is caught too.
    let child = &image.manifests[0];
    corrupt_stored_blob(&server, &child.digest());
    let err = reg
        .get_manifest(&src, &Reference::Digest(child.digest()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch { .. } | Error::InvalidResponse { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn promotes_from_a_layout_into_the_registry() {
    let server = RegistryServer::start(Mode::Plain);
    let reg = registry(&server);
    let image = TestImage::build(13);
    let src_dir = tempfile::tempdir().unwrap();
    image.write_layout(&src_dir.path().join("staging/app"), "v1");
    let src = promoter::registry::layout::LayoutRegistry::new(src_dir.path());
    copy_image(
        &src,
        &repo("staging/app"),
        reg.as_ref(),
        &repo("prod/app"),
        "v1",
    )
    .await
    .unwrap();
    assert_eq!(
        skopeo::inspect_raw(&server, "prod/app:v1"),
        image.index.bytes.to_vec()
    );
    assert_eq!(
        reg.head_manifest(&repo("prod/app"), &Reference::tag("v1").unwrap())
            .await
            .unwrap()
            .map(|d| d.digest),
        Some(image.index.digest())
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_names_the_url() {
    let server = RegistryServer::start(Mode::Plain);
    let host = server.host.clone();
    drop(server); // Nothing listens on the port any more.
    let reg = client(HttpOptions::default()).registry(&host).unwrap();
    let err = reg.list_tags(&repo("gone/app")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(&host), "{err}");
}

#[tokio::test]
async fn a_throttled_first_request_is_asked_again() {
    // ECR answers any API call 429 when throttling, `GET /v2/` included:
    // the ping that finds the registry's URL is retried like any request.
    let server = RegistryServer::start(Mode::Plain);
    let options = support::front::Options {
        throttle_first: 2,
        ..support::front::Options::of(support::front::Profile::Pass)
    };
    let front = support::front::Front::with(&server.host, support::front::Profile::Pass, options);
    let reg = client(HttpOptions::default())
        .registry(&front.host)
        .unwrap();
    let tags = reg.list_tags(&repo("fresh/app")).await;
    assert!(tags.unwrap().is_empty());
    assert_eq!(front.count("GET", 429), 2, "{:?}", front.summary());
    assert!(
        front.log()[..2].iter().all(|l| l.path == "/v2/"),
        "{:?}",
        front.log()
    );
}
