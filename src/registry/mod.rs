//! Registry access: one small trait, [`Registry`], implemented over OCI
//! distribution ([`http::HttpRegistry`]) and over OCI image-layout
//! directories ([`layout::LayoutRegistry`], the embedded default: `oci:<dir>`).
//!
//! This module owns names, digests, manifests as bytes, blob streams and
//! their integrity checks. It does not plan, retry or rate-limit: the copy
//! executor decides what to move, and retries and limits wrap
//! [`http::HttpRegistry`]'s single `send` function in a later layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

pub mod credentials;
pub mod digest;
pub mod error;
pub mod http;
pub mod layout;
pub mod manifest;
pub mod reference;
pub mod stream;

pub use digest::Digest;
pub use error::{Error, Result};
pub use manifest::{Descriptor, Manifest};
pub use reference::{ImageRef, Reference, RepoName};
pub use stream::{Blob, BlobStream, Checked, Spooled};

/// What a repository holds: every known manifest digest with its tags and
/// media type.
///
/// Over HTTP without the Artifact Registry / GCR `tags/list` extension only
/// tagged manifests are known; with it, and for image layouts, untagged
/// top-level manifests appear too, with an empty tag set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Digest to what is known about it.
    pub manifests: BTreeMap<Digest, InventoryEntry>,
}

/// One manifest of an [`Inventory`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InventoryEntry {
    /// Tags pointing at the manifest.
    pub tags: BTreeSet<String>,
    /// Media type, when the registry reported it.
    pub media_type: Option<String>,
}

impl Inventory {
    /// Record that `tag` points at `digest`.
    pub fn add_tag(&mut self, digest: Digest, tag: &str) {
        self.manifests
            .entry(digest)
            .or_default()
            .tags
            .insert(tag.to_owned());
    }

    /// The digest `tag` points at, if any.
    pub fn digest_of_tag(&self, tag: &str) -> Option<Digest> {
        self.manifests
            .iter()
            .find(|(_, entry)| entry.tags.contains(tag))
            .map(|(digest, _)| *digest)
    }
}

/// The operations a promotion needs from a registry, and no more.
///
/// One value serves one registry (a host, or one `oci:<dir>`); every
/// operation names the repository inside it. Every manifest and blob read or
/// written is hashed while it streams; a mismatch is
/// [`Error::DigestMismatch`] and nothing is stored for it.
#[async_trait]
pub trait Registry: Send + Sync + fmt::Debug {
    /// The registry as users name it: `host[:port]` or `oci:<dir>`.
    fn name(&self) -> &str;

    /// Every tag of `repo`, in the registry's order. An empty or unknown
    /// repository has no tags.
    async fn list_tags(&self, repo: &RepoName) -> Result<Vec<String>>;

    /// What `repo` holds, in as few requests as the registry allows.
    async fn inventory(&self, repo: &RepoName) -> Result<Inventory>;

    /// What `repo` holds, as far as a plan needs it: everything when one
    /// listing tells it all (the GCR extension, an image layout), else the
    /// digests of just the tags `wanted` accepts, one HEAD each. A tag no
    /// manifest names cannot change a plan, and k8s.io repositories hold
    /// many such tags on every mirror, so they are not resolved.
    async fn inventory_of(
        &self,
        repo: &RepoName,
        wanted: &(dyn for<'t> Fn(&'t str) -> bool + Sync + '_),
    ) -> Result<Inventory> {
        let _ = wanted;
        self.inventory(repo).await
    }

    /// Resolve a tag or digest without downloading the manifest (a HEAD,
    /// which Docker Hub does not count as a pull). `None` when absent.
    async fn head_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<Descriptor>>;

    /// Download a manifest. When `reference` is a digest, the bytes are
    /// checked against it.
    async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest>;

    /// The size of the blob when `repo` has it.
    async fn blob_exists(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>>;

    /// Read a blob as a stream that fails at its end unless the bytes match
    /// `digest`.
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Blob>;

    /// Make a blob of repository `from` (same registry) available in `repo`
    /// without moving its bytes. `Ok(false)` when the registry declined: the
    /// caller then pushes the blob.
    async fn mount_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<bool>;

    /// Store a blob from a stream of `size` bytes. The content is hashed as it
    /// streams; unless it matches `digest` and `size`, nothing is committed.
    /// Callers check [`Registry::blob_exists`] (or mount) first: over HTTP
    /// the bytes are sent even when the registry already has them.
    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        content: BlobStream,
    ) -> Result<()>;

    /// Store a blob whose bytes are already checked against its digest, as
    /// [`Registry::push_blob`] does. A backend may send them without hashing
    /// them again (HTTP does); this default hashes them as `push_blob` does.
    /// Callers check [`Registry::blob_exists`] first, as for `push_blob`.
    async fn push_checked(&self, repo: &RepoName, blob: &Checked) -> Result<()> {
        let stream = stream::stream_from_bytes(blob.bytes());
        self.push_blob(repo, &blob.digest(), blob.size(), stream)
            .await
    }

    /// Store a blob spooled from a verified read, as [`Registry::push_blob`]
    /// does from the file. A backend may skip the second hash (HTTP does);
    /// this default does not.
    async fn push_spooled(&self, repo: &RepoName, blob: &Spooled) -> Result<()> {
        let stream = blob.open().await?;
        self.push_blob(repo, &blob.digest(), blob.size(), stream)
            .await
    }

    /// Store a manifest under its digest (`Reference::Digest`, which must be
    /// the manifest's) or under a tag. Its blobs and child manifests must
    /// already be there.
    async fn push_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<()>;

    /// Store a referrer (a manifest with a `subject`) under its digest.
    /// `Ok(true)` when the registry said it indexed it for its referrers API
    /// (`OCI-Subject` on the answer, OCI distribution spec 1.1): then no
    /// `sha256-<hex>` tag-schema index is needed.
    async fn push_referrer(&self, repo: &RepoName, manifest: &Manifest) -> Result<bool> {
        self.push_manifest(repo, &Reference::Digest(manifest.digest()), manifest)
            .await?;
        Ok(false)
    }

    /// Manifests whose `subject` is `subject`: the referrers API, or the
    /// `sha256-<hex>` tag-schema index where the registry has no such API.
    async fn list_referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Descriptor>>;
}

/// Where a registry name of a promoter manifest points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `oci:<dir>`: image layouts under a local directory.
    Layout(PathBuf),
    /// `host[:port]` of an OCI distribution registry.
    Http(String),
}

impl Location {
    /// `oci:<dir>` is a layout directory; anything else is a registry host.
    pub fn parse(name: &str) -> Location {
        match name.strip_prefix("oci:") {
            Some(dir) => Location::Layout(PathBuf::from(dir)),
            None => Location::Http(name.to_owned()),
        }
    }
}

/// Open the registry `name` names: `oci:<dir>` gives a
/// [`layout::LayoutRegistry`], a host gives an [`http::HttpRegistry`] over
/// the shared `client`.
pub fn open(name: &str, client: &http::HttpClient) -> Result<Arc<dyn Registry>> {
    Ok(match Location::parse(name) {
        Location::Layout(dir) => Arc::new(layout::LayoutRegistry::new(dir)),
        Location::Http(host) => Arc::new(client.registry(&host)?),
    })
}
