//! The OCI image-layout backend: registry name `oci:<dir>`, one image layout
//! per image name at `<dir>/<image name>` (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`), tags in `org.opencontainers.image.ref.name`
//! annotations of `index.json`.
//!
//! Every file is written to a temporary name in its final directory and
//! renamed into place, so readers never see half a blob or half an index.
//! `index.json` updates hold a per-layout lock shared by the whole process.
//! Image names come in as [`RepoName`], which cannot contain `..` or start
//! with `/`; symlinks that lead out of `<dir>` are refused as well.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::digest::Digest;
use super::error::{Error, Result};
use super::manifest::{self, Descriptor, MAX_MANIFEST_BYTES, Manifest};
use super::reference::{Reference, RepoName};
use super::stream::{Blob, BlobStream, Expected, verify_stream};
use super::{Inventory, Registry};

/// The annotation that carries a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Chunk size when streaming a blob file: big enough for few syscalls, small
/// enough to keep memory flat.
const READ_CHUNK: usize = 256 * 1024;

/// Image layouts under one directory, addressed as `oci:<dir>`.
#[derive(Debug, Clone)]
pub struct LayoutRegistry {
    root: PathBuf,
    name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    /// Fields we do not interpret, kept as they were.
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

impl Default for IndexJson {
    fn default() -> IndexJson {
        IndexJson {
            schema_version: 2,
            media_type: Some(manifest::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
}

/// One lock per layout directory for the whole process, so that two
/// `LayoutRegistry` values over the same directory still serialize their
/// `index.json` updates.
static INDEX_LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

fn index_lock(layout: &Path) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = INDEX_LOCKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    locks.entry(layout.to_path_buf()).or_default().clone()
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name in `dir`, unique within this machine's processes.
fn temp_path(dir: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tmp-{}-{n}", std::process::id()))
}

/// Write `bytes` to `path` atomically: temporary file, fsync, rename.
async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir);
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(Error::io(path, e));
    }
    Ok(())
}

impl LayoutRegistry {
    /// Image layouts under `root`. Nothing is created until the first write.
    pub fn new(root: impl Into<PathBuf>) -> LayoutRegistry {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let name = format!("oci:{}", root.display());
        LayoutRegistry { root, name }
    }

    /// The layout directory of `repo`: `<root>/<repo>`.
    pub fn layout_dir(&self, repo: &RepoName) -> PathBuf {
        repo.components().fold(self.root.clone(), |p, c| p.join(c))
    }

    /// Check that `dir`, or its nearest existing ancestor, really lies inside
    /// the root: a symlink could point elsewhere. Checked before anything is
    /// created, so nothing is ever written outside.
    async fn check_inside(&self, dir: &Path) -> Result<()> {
        let Ok(root) = tokio::fs::canonicalize(&self.root).await else {
            return Ok(()); // No root yet: nothing to escape through.
        };
        let mut probe = dir;
        let real = loop {
            match tokio::fs::canonicalize(probe).await {
                Ok(real) => break real,
                Err(_) => match probe.parent() {
                    Some(parent) if probe != self.root => probe = parent,
                    _ => return Ok(()),
                },
            }
        };
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(Error::InvalidResponse {
                url: dir.display().to_string(),
                reason: format!(
                    "resolves outside of {}; refusing to use it",
                    self.root.display()
                ),
            })
        }
    }

    fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
        dir.join("blobs").join("sha256").join(digest.hex())
    }

    fn location(&self, repo: &RepoName) -> String {
        format!("{}/{}", self.name, repo)
    }

    /// Create the layout of `repo` if needed and return its directory.
    async fn ensure_layout(&self, repo: &RepoName) -> Result<PathBuf> {
        let dir = self.layout_dir(repo);
        let blobs = dir.join("blobs").join("sha256");
        self.check_inside(&dir).await?;
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|e| Error::io(&blobs, e))?;
        let marker = dir.join("oci-layout");
        if tokio::fs::metadata(&marker).await.is_err() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).await?;
        }
        let index = dir.join("index.json");
        if tokio::fs::metadata(&index).await.is_err() {
            let _guard = index_lock(&dir).lock_owned().await;
            if tokio::fs::metadata(&index).await.is_err() {
                write_index(&index, &IndexJson::default()).await?;
            }
        }
        Ok(dir)
    }

    /// The layout's index, or an empty one when the layout does not exist.
    async fn read_index(&self, repo: &RepoName) -> Result<IndexJson> {
        let dir = self.layout_dir(repo);
        self.check_inside(&dir).await?;
        read_index_file(&dir.join("index.json")).await
    }

    /// Resolve a reference to a descriptor from `index.json`, or for a
    /// digest not listed there, from the blob store.
    async fn resolve(&self, repo: &RepoName, reference: &Reference) -> Result<Option<Descriptor>> {
        let index = self.read_index(repo).await?;
        let found = index.manifests.into_iter().find(|d| match reference {
            Reference::Tag(tag) => ref_name(d) == Some(tag.as_str()),
            Reference::Digest(digest) => d.digest == *digest,
        });
        if let Some(mut d) = found {
            d.annotations = None;
            return Ok(Some(d));
        }
        let Reference::Digest(digest) = reference else {
            return Ok(None);
        };
        // A child manifest of an index lives only in the blob store.
        match self.read_manifest_blob(repo, digest, None).await {
            Ok(m) => Ok(Some(m.descriptor())),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_manifest_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<Manifest> {
        let path = Self::blob_path(&self.layout_dir(repo), digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.not_found(repo, format!("manifest {digest}")));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestTooLarge {
                location: path.display().to_string(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        Manifest::verified(
            media_type,
            Bytes::from(bytes),
            digest,
            &path.display().to_string(),
        )
    }

    fn not_found(&self, repo: &RepoName, what: String) -> Error {
        Error::NotFound {
            registry: self.name.clone(),
            repository: repo.to_string(),
            what,
        }
    }

    /// Stream `content` into the blob store of the layout at `dir`, checking
    /// it against `digest` and `size` before the rename makes it visible.
    async fn write_blob(
        &self,
        dir: &Path,
        digest: &Digest,
        size: u64,
        content: BlobStream,
    ) -> Result<()> {
        let final_path = Self::blob_path(dir, digest);
        if tokio::fs::metadata(&final_path).await.is_ok() {
            return Ok(());
        }
        let blobs_dir = dir.join("blobs").join("sha256");
        let tmp = temp_path(&blobs_dir);
        let mut verified = verify_stream(
            content,
            Expected {
                digest: *digest,
                size: Some(size),
                location: format!("blob {digest} for {}", dir.display()),
            },
        );
        let result: Result<()> = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| Error::io(&tmp, e))?;
            while let Some(chunk) = verified.next().await {
                file.write_all(&chunk?)
                    .await
                    .map_err(|e| Error::io(&tmp, e))?;
            }
            file.sync_all().await.map_err(|e| Error::io(&tmp, e))?;
            drop(file);
            tokio::fs::rename(&tmp, &final_path)
                .await
                .map_err(|e| Error::io(&final_path, e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Add or move index entries under the layout lock.
    async fn update_index(
        &self,
        dir: &Path,
        descriptor: Descriptor,
        tag: Option<&str>,
    ) -> Result<()> {
        let _guard = index_lock(dir).lock_owned().await;
        let path = dir.join("index.json");
        let mut index = read_index_file(&path).await?;
        match tag {
            Some(tag) => {
                // A tag names one manifest: drop its old entry, and the
                // untagged entry of this digest, which the tagged one replaces.
                index.manifests.retain(|d| {
                    let name = ref_name(d);
                    name != Some(tag) && !(name.is_none() && d.digest == descriptor.digest)
                });
                let mut tagged = descriptor;
                tagged.annotations = Some(BTreeMap::from([(REF_NAME.to_owned(), tag.to_owned())]));
                index.manifests.push(tagged);
            }
            None => {
                if index
                    .manifests
                    .iter()
                    .any(|d| d.digest == descriptor.digest)
                {
                    return Ok(());
                }
                index.manifests.push(descriptor);
            }
        }
        write_index(&path, &index).await
    }
}

async fn read_index_file(path: &Path) -> Result<IndexJson> {
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(IndexJson::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidResponse {
        url: path.display().to_string(),
        reason: format!("not a valid OCI index: {e}"),
    })
}

async fn write_index(path: &Path, index: &IndexJson) -> Result<()> {
    let bytes = serde_json::to_vec(index).map_err(|e| Error::InvalidResponse {
        url: path.display().to_string(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes).await
}

#[async_trait]
impl Registry for LayoutRegistry {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list_tags(&self, repo: &RepoName) -> Result<Vec<String>> {
        let index = self.read_index(repo).await?;
        Ok(index
            .manifests
            .iter()
            .filter_map(|d| ref_name(d).map(str::to_owned))
            .collect())
    }

    async fn inventory(&self, repo: &RepoName) -> Result<Inventory> {
        let index = self.read_index(repo).await?;
        let mut inventory = Inventory::default();
        for d in &index.manifests {
            let entry = inventory.manifests.entry(d.digest).or_default();
            entry.media_type = Some(d.media_type.clone());
            if let Some(tag) = ref_name(d) {
                entry.tags.insert(tag.to_owned());
            }
        }
        Ok(inventory)
    }

    async fn head_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<Descriptor>> {
        self.resolve(repo, reference).await
    }

    async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<Manifest> {
        let Some(d) = self.resolve(repo, reference).await? else {
            return Err(self.not_found(repo, format!("manifest {reference}")));
        };
        self.read_manifest_blob(repo, &d.digest, Some(&d.media_type))
            .await
    }

    async fn blob_exists(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        let dir = self.layout_dir(repo);
        self.check_inside(&dir).await?;
        match tokio::fs::metadata(Self::blob_path(&dir, digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(Self::blob_path(&dir, digest), e)),
        }
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Blob> {
        let dir = self.layout_dir(repo);
        self.check_inside(&dir).await?;
        let path = Self::blob_path(&dir, digest);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.not_found(repo, format!("blob {digest}")));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| Error::io(&path, e))?
            .len();
        let err_path = path.clone();
        let raw = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK)
            .map(move |r| r.map_err(|e| Error::io(&err_path, e)));
        Ok(Blob::verifying(
            Box::pin(raw),
            Expected {
                digest: *digest,
                size: Some(size),
                location: path.display().to_string(),
            },
        ))
    }

    async fn mount_blob(&self, repo: &RepoName, digest: &Digest, from: &RepoName) -> Result<bool> {
        let Some(size) = self.blob_exists(from, digest).await? else {
            return Ok(false);
        };
        let dir = self.ensure_layout(repo).await?;
        let target = Self::blob_path(&dir, digest);
        if tokio::fs::metadata(&target).await.is_ok() {
            return Ok(true);
        }
        // A hard link shares the bytes; across file systems, copy (verified).
        let source = Self::blob_path(&self.layout_dir(from), digest);
        let tmp = temp_path(&dir.join("blobs").join("sha256"));
        if tokio::fs::hard_link(&source, &tmp).await.is_ok() {
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(|e| Error::io(&target, e))?;
            return Ok(true);
        }
        let blob = self.get_blob(from, digest).await?;
        self.write_blob(&dir, digest, size, blob.into_stream())
            .await?;
        Ok(true)
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        content: BlobStream,
    ) -> Result<()> {
        let dir = self.ensure_layout(repo).await?;
        self.write_blob(&dir, digest, size, content).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<()> {
        let tag = match reference {
            Reference::Tag(tag) => Some(tag.as_str()),
            Reference::Digest(d) if *d == manifest.digest() => None,
            Reference::Digest(d) => {
                return Err(Error::DigestMismatch {
                    location: self.location(repo),
                    expected: *d,
                    actual: manifest.digest(),
                });
            }
        };
        let dir = self.ensure_layout(repo).await?;
        // Refuse what a registry refuses (MANIFEST_BLOB_UNKNOWN): a manifest
        // whose blobs or child manifests are not there yet.
        let referenced = if manifest.is_index() {
            manifest.child_manifests()?
        } else {
            manifest.blobs()?
        };
        for d in referenced {
            if tokio::fs::metadata(Self::blob_path(&dir, &d.digest))
                .await
                .is_err()
            {
                return Err(Error::MissingReference {
                    location: self.location(repo),
                    manifest: manifest.digest(),
                    missing: d.digest,
                });
            }
        }
        let bytes = manifest.bytes().clone();
        let size = bytes.len() as u64;
        self.write_blob(
            &dir,
            &manifest.digest(),
            size,
            super::stream::stream_from_bytes(bytes),
        )
        .await?;
        self.update_index(&dir, manifest.descriptor(), tag).await
    }

    async fn list_referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Descriptor>> {
        let index = self.read_index(repo).await?;
        let fallback_tag = subject.referrers_tag();
        let mut found: Vec<Descriptor> = Vec::new();
        for d in &index.manifests {
            if ref_name(d) == Some(fallback_tag.as_str()) {
                // The tag-schema index written by clients without a
                // referrers API: its entries are the referrers.
                let m = self
                    .read_manifest_blob(repo, &d.digest, Some(&d.media_type))
                    .await?;
                found.extend(m.child_manifests()?);
                continue;
            }
            if d.digest == *subject || !manifest::is_manifest_type(&d.media_type) {
                continue;
            }
            let m = self
                .read_manifest_blob(repo, &d.digest, Some(&d.media_type))
                .await?;
            if m.subject()?.is_some_and(|s| s.digest == *subject) {
                let mut referrer = m.descriptor();
                referrer.artifact_type = artifact_type(&m);
                referrer.annotations = manifest_annotations(&m);
                found.push(referrer);
            }
        }
        let mut seen = std::collections::HashSet::new();
        found.retain(|d| seen.insert(d.digest));
        Ok(found)
    }
}

/// `artifactType`, or the config media type as the referrers API reports it.
fn artifact_type(m: &Manifest) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        artifact_type: Option<String>,
        config: Option<Descriptor>,
    }
    let f: Fields = serde_json::from_slice(m.bytes()).ok()?;
    f.artifact_type.or(f.config.map(|c| c.media_type))
}

fn manifest_annotations(m: &Manifest) -> Option<BTreeMap<String, String>> {
    #[derive(Deserialize)]
    struct Fields {
        annotations: Option<BTreeMap<String, String>>,
    }
    serde_json::from_slice::<Fields>(m.bytes())
        .ok()?
        .annotations
}
