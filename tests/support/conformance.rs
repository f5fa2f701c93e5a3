//! One walk through every `Registry` operation, run against each backend and
//! each auth mode. It checks what a user would see: tags, digests, bytes,
//! sizes, and (through `read_back`, an independent client) that what we
//! wrote is what another tool reads.

use bytes::Bytes;
use futures_util::StreamExt;
use promoter::registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use promoter::registry::{
    Blob, Descriptor, Digest, Error, Manifest, Reference, Registry, RepoName, stream,
};

use super::image::TestImage;

/// Read a blob stream to the end.
pub async fn drain(blob: Blob) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut s = blob.into_stream();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Repository names used by the walk.
pub fn repo(name: &str) -> RepoName {
    name.parse().expect("repo name")
}

/// Every operation of the trait, in the order a promotion uses them.
/// `read_back(repo_and_ref)` returns the raw manifest as an independent
/// client sees it.
pub async fn exercise(registry: &dyn Registry, read_back: &dyn Fn(&str) -> Vec<u8>) {
    let app = repo("promoter/app");
    let image = TestImage::build(7);

    // An empty repository: no tags, empty inventory, nothing to head.
    assert_eq!(
        registry.list_tags(&app).await.unwrap(),
        Vec::<String>::new()
    );
    assert!(registry.inventory(&app).await.unwrap().manifests.is_empty());
    let v1 = Reference::tag("v1").unwrap();
    assert_eq!(registry.head_manifest(&app, &v1).await.unwrap(), None);

    // Push children first, then the index under two tags.
    image.push(registry, &app, "v1").await;
    let index = image.index_manifest();
    registry
        .push_manifest(&app, &Reference::tag("latest").unwrap(), &index)
        .await
        .unwrap();

    // An independent client reads the same bytes, hence the same digests.
    assert_eq!(read_back(&format!("{app}:v1")), image.index.bytes.to_vec());
    let amd64 = &image.manifests[0];
    assert_eq!(
        read_back(&format!("{app}@{}", amd64.digest)),
        amd64.bytes.to_vec()
    );

    // Listing and inventory.
    let mut tags = registry.list_tags(&app).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["latest", "v1"]);
    let inventory = registry.inventory(&app).await.unwrap();
    assert_eq!(inventory.digest_of_tag("v1"), Some(index.digest()));
    let entry = &inventory.manifests[&index.digest()];
    assert_eq!(entry.tags.iter().collect::<Vec<_>>(), ["latest", "v1"]);
    assert_eq!(entry.media_type.as_deref(), Some(OCI_INDEX));

    // HEAD and GET, by tag and by digest.
    let head = registry
        .head_manifest(&app, &v1)
        .await
        .unwrap()
        .expect("v1 exists");
    assert_eq!(
        head,
        Descriptor::new(OCI_INDEX, index.digest(), image.index.bytes.len() as u64)
    );
    let child = Reference::Digest(amd64.digest());
    let child_head = registry
        .head_manifest(&app, &child)
        .await
        .unwrap()
        .expect("child exists");
    assert_eq!(child_head.media_type, OCI_MANIFEST);
    assert_eq!(child_head.size, amd64.bytes.len() as u64);
    let by_tag = registry.get_manifest(&app, &v1).await.unwrap();
    assert_eq!(by_tag, index);
    let by_digest = registry.get_manifest(&app, &child).await.unwrap();
    assert_eq!(by_digest.bytes(), &amd64.bytes);
    assert_eq!(by_digest.blobs().unwrap().len(), 3);
    let missing = Reference::tag("nope").unwrap();
    assert_eq!(registry.head_manifest(&app, &missing).await.unwrap(), None);
    assert!(matches!(
        registry.get_manifest(&app, &missing).await,
        Err(Error::NotFound { .. })
    ));

    // Blobs: exist, read back verified, absent ones are absent.
    for blob in &image.blobs {
        assert_eq!(
            registry.blob_exists(&app, &blob.digest()).await.unwrap(),
            Some(blob.bytes.len() as u64)
        );
        let read = registry.get_blob(&app, &blob.digest()).await.unwrap();
        assert_eq!(drain(read).await.unwrap(), blob.bytes.to_vec());
    }
    let absent = Digest::of(b"not stored anywhere");
    assert_eq!(registry.blob_exists(&app, &absent).await.unwrap(), None);

    // Mount into another repository of the same registry.
    let mounted = repo("promoter/mounted");
    let layer = &image.blobs[1];
    assert!(
        registry
            .mount_blob(&mounted, &layer.digest(), &app)
            .await
            .unwrap()
    );
    assert_eq!(
        registry
            .blob_exists(&mounted, &layer.digest())
            .await
            .unwrap(),
        Some(layer.bytes.len() as u64)
    );
    assert!(!registry.mount_blob(&mounted, &absent, &app).await.unwrap());

    // A blob whose bytes do not match its digest is refused, and not stored.
    let claimed = Digest::of(b"what the descriptor says");
    let err = registry
        .push_blob(
            &app,
            &claimed,
            5,
            stream::stream_from_bytes(Bytes::from_static(b"other")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(registry.blob_exists(&app, &claimed).await.unwrap(), None);
    // So is a manifest pushed under another digest than its own.
    let err = registry
        .push_manifest(&app, &Reference::Digest(claimed), &index)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");

    // An index pushed before its children is refused and not tagged.
    let orphan = TestImage::build(8).index_manifest();
    let orphan_tag = Reference::tag("orphan").unwrap();
    assert!(
        registry
            .push_manifest(&app, &orphan_tag, &orphan)
            .await
            .is_err()
    );
    assert_eq!(
        registry.head_manifest(&app, &orphan_tag).await.unwrap(),
        None
    );

    // Referrers: none, then one, stored the way a client without a
    // referrers API stores it (by digest, plus the `sha256-<hex>` index).
    assert!(
        registry
            .list_referrers(&app, &index.digest())
            .await
            .unwrap()
            .is_empty()
    );
    let referrer = push_referrer(registry, &app, &index).await;
    let referrers = registry
        .list_referrers(&app, &index.digest())
        .await
        .unwrap();
    assert_eq!(
        referrers.iter().map(|d| d.digest).collect::<Vec<_>>(),
        [referrer.digest]
    );
    assert_eq!(referrers[0].artifact_type.as_deref(), Some(ARTIFACT_TYPE));
}

/// Artifact type of the test referrer.
pub const ARTIFACT_TYPE: &str = "application/vnd.dev.promoter.test+json";

/// Push an artifact whose subject is `subject`, and the tag-schema index
/// that lists it. Returns the referrer's descriptor.
pub async fn push_referrer(
    registry: &dyn Registry,
    repo: &RepoName,
    subject: &Manifest,
) -> Descriptor {
    let empty = Bytes::from_static(b"{}");
    let empty_digest = Digest::of(&empty);
    registry
        .push_blob(repo, &empty_digest, 2, stream::stream_from_bytes(empty))
        .await
        .unwrap();
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2}],
        "subject": subject.descriptor(),
    });
    let artifact = Manifest::new(Some(OCI_MANIFEST), Bytes::from(artifact.to_string())).unwrap();
    registry
        .push_manifest(repo, &Reference::Digest(artifact.digest()), &artifact)
        .await
        .unwrap();
    let mut descriptor = artifact.descriptor();
    descriptor.artifact_type = Some(ARTIFACT_TYPE.to_owned());
    let fallback = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor],
    });
    let fallback = Manifest::new(Some(OCI_INDEX), Bytes::from(fallback.to_string())).unwrap();
    registry
        .push_manifest(
            repo,
            &Reference::tag(&subject.digest().referrers_tag()).unwrap(),
            &fallback,
        )
        .await
        .unwrap();
    descriptor
}
