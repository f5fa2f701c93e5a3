//! Registry operations on signature artifacts, over [`Registry`]: read a
//! manifest that may be absent, store small blobs once, copy blobs between
//! repositories (mount within a registry), and add a referrer to the
//! `sha256-<hex>` tag-schema index without dropping what it lists. Every
//! write is counted in [`RequestCounts`] so that a no-op run can prove it wrote
//! nothing.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OnceCell;

use super::Error;
use crate::registry::{self, Descriptor, Digest, Manifest, Reference, Registry, RepoName};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Signature artifacts are small; anything larger is not ours to read.
const MAX_SIGNATURE_BLOB: usize = 4 * 1024 * 1024;

/// Requests of the sign and replicate phases, per kind.
#[derive(Debug, Default, Serialize)]
pub struct RequestCounts {
    /// Certificates requested from Fulcio.
    pub fulcio: AtomicU64,
    /// Entries submitted to Rekor.
    pub rekor: AtomicU64,
    /// RFC 3161 timestamps asked of the timestamp authority.
    pub timestamps: AtomicU64,
    /// Digests signed (legacy and/or bundle) on their first destination.
    pub signed: AtomicU64,
    /// Attestations (in-toto statements) written on a first destination.
    pub attested: AtomicU64,
    /// Signature artifacts copied to another destination.
    pub replicated: AtomicU64,
    /// Manifests pushed (signature manifests, referrers, fallback indexes).
    pub manifests_pushed: AtomicU64,
    /// Blobs pushed or mounted.
    pub blobs_pushed: AtomicU64,
    /// Manifest reads (GET) and blob existence checks (HEAD).
    pub reads: AtomicU64,
    /// Blobs this run has made present, per repository.
    #[serde(skip)]
    pub present: BlobLedger,
}

/// The blobs a run has made present in each repository, so that
/// concurrent tasks (replicating several digests into one mirror
/// repository at once) upload a shared blob, such as the empty `{}` config
/// of every bundle referrer, once: the first uploads, the others wait for
/// it. Besides saving requests this avoids a race in `docker-registry`'s
/// filesystem driver, where re-linking a blob while a manifest naming it
/// is pushed makes the push fail with MANIFEST_BLOB_UNKNOWN.
#[derive(Debug, Default)]
pub struct BlobLedger(Mutex<HashMap<BlobKey, Arc<OnceCell<()>>>>);

/// Registry name, repository, blob.
type BlobKey = (String, RepoName, Digest);

impl BlobLedger {
    /// Run `ensure` unless it already succeeded for `digest` in `repo` of
    /// `registry`; callers arriving while it runs wait for its outcome. A
    /// failure is not remembered: the next caller tries again.
    async fn once<F, Fut>(
        &self,
        registry: &str,
        repo: &RepoName,
        digest: &Digest,
        ensure: F,
    ) -> Result<(), Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let cell = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry((registry.to_owned(), repo.clone(), *digest))
                .or_default()
                .clone()
        };
        cell.get_or_try_init(ensure).await.map(|_| ())
    }
}

impl RequestCounts {
    /// Add one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        crate::counter::add(counter, 1);
    }

    /// Value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        crate::counter::get(counter)
    }
}

fn reg_err(what: String) -> impl FnOnce(registry::Error) -> Error {
    move |source| Error::Registry { what, source }
}

/// The manifest at `reference`, or `None` when absent.
pub async fn get_manifest(
    reg: &dyn Registry,
    repo: &RepoName,
    reference: &Reference,
    counts: &RequestCounts,
) -> Result<Option<Manifest>, Error> {
    RequestCounts::bump(&counts.reads);
    match reg.get_manifest(repo, reference).await {
        Ok(m) => Ok(Some(m)),
        Err(registry::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(reg_err(format!(
            "reading {}/{repo}:{reference}",
            reg.name()
        ))(e)),
    }
}

/// Fails unless `digest` is in `repo`: signatures go only where the image
/// landed (a destination whose copy failed gets none).
pub async fn require_subject(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    counts: &RequestCounts,
) -> Result<(), Error> {
    RequestCounts::bump(&counts.reads);
    let found = reg
        .head_manifest(repo, &Reference::Digest(*digest))
        .await
        .map_err(reg_err(format!("reading {}/{repo}@{digest}", reg.name())))?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::Format(format!(
            "{}/{repo}@{digest} is not there (its copy failed): no signature is written for it",
            reg.name()
        ))),
    }
}

/// Push a manifest and count it. A registry that refuses to rewrite a tag
/// (immutable tags: ECR IMMUTABLE repositories, Harbor immutability rules)
/// gets an error that says so and how to allow it.
pub async fn push_manifest(
    reg: &dyn Registry,
    repo: &RepoName,
    reference: &Reference,
    manifest: &Manifest,
    counts: &RequestCounts,
) -> Result<(), Error> {
    RequestCounts::bump(&counts.manifests_pushed);
    match reg.push_manifest(repo, reference, manifest).await {
        Ok(()) => Ok(()),
        Err(e) if matches!(reference, Reference::Tag(_)) && is_tag_refusal(&e) => Err(
            Error::Format(refusal_message(reg.name(), repo, reference, &e, "")),
        ),
        Err(e) => Err(reg_err(format!(
            "pushing {}/{repo}:{reference}",
            reg.name()
        ))(e)),
    }
}

/// Push a referrer by digest and count it. `Ok(true)` when the registry
/// said it indexed it (`OCI-Subject`): no tag-schema index is needed.
pub async fn push_referrer(
    reg: &dyn Registry,
    repo: &RepoName,
    referrer: &Manifest,
    counts: &RequestCounts,
) -> Result<bool, Error> {
    RequestCounts::bump(&counts.manifests_pushed);
    reg.push_referrer(repo, referrer).await.map_err(|e| {
        if is_type_refusal(&e) {
            Error::Format(type_refusal_message(reg.name(), repo, referrer, &e))
        } else {
            reg_err(format!(
                "pushing {}/{repo}@{}",
                reg.name(),
                referrer.digest()
            ))(e)
        }
    })
}

/// True when `e` refuses a referrer for what it is: 415, or 400
/// MANIFEST_INVALID (self-hosted Quay with `ALLOWED_OCI_ARTIFACT_TYPES`
/// that does not list the type, oras-project/oras#738; GitLab).
fn is_type_refusal(e: &registry::Error) -> bool {
    let registry::Error::Status { status, body, .. } = e else {
        return false;
    };
    let body = body.to_ascii_lowercase();
    *status == 415
        || *status == 400
            && (body.contains("manifest_invalid") || body.contains("manifest invalid"))
            && !is_tag_refusal(e)
}

/// What to say when `host` refused the bundle referrer `referrer`: its
/// types, the status and the registry's message, and the two ways out.
fn type_refusal_message(
    host: &str,
    repo: &RepoName,
    referrer: &Manifest,
    e: &registry::Error,
) -> String {
    let (status, message) = match e {
        registry::Error::Status { status, body, .. } => (*status, body.as_str()),
        _ => (0, ""),
    };
    format!(
        "{host}/{repo}: the registry refused the sigstore bundle referrer {} (HTTP {status}: \
         {message}); it may accept only the artifact types it is configured for (self-hosted \
         Quay: FEATURE_GENERAL_OCI_SUPPORT and ALLOWED_OCI_ARTIFACT_TYPES): allow config \
         `{}` with layer `{}` there, or sign in the legacy `.sig` format only, without \
         attestations (`--signature-format legacy --attest=false`), which every registry takes",
        referrer.digest(),
        super::bundle::EMPTY_MEDIA_TYPE,
        super::bundle::BUNDLE_MEDIA_TYPE,
    )
}

/// True when `e` is a registry refusing to rewrite an existing tag: 412
/// (Harbor immutability rules, goharbor/harbor#17332), or 400/409 whose
/// message says the tag is immutable or exists already (ECR `TAG_INVALID`
/// "... cannot be overwritten because the repository is immutable").
pub fn is_tag_refusal(e: &registry::Error) -> bool {
    let registry::Error::Status { status, body, .. } = e else {
        return false;
    };
    let body = body.to_ascii_lowercase();
    *status == 412
        || matches!(status, 400 | 409)
            && (body.contains("immutable") || body.contains("already exists"))
}

/// What to say when `reg` refused to rewrite `reference`: the registry,
/// repository, status and its own message, what was not stored, and how
/// to allow it.
fn refusal_message(
    host: &str,
    repo: &RepoName,
    reference: &Reference,
    e: &registry::Error,
    not_stored: &str,
) -> String {
    let (status, message) = match e {
        registry::Error::Status { status, body, .. } => (*status, body.as_str()),
        _ => (0, ""),
    };
    format!(
        "{host}/{repo}: the registry refused to rewrite tag {reference} (HTTP {status}: {message}), \
         so it is immutable there{not_stored}; to allow it, {}",
        registry::http::immutable_tags_hint(host)
    )
}
/// Store `bytes` as a blob unless the repository has it.
pub async fn put_blob(
    reg: &dyn Registry,
    repo: &RepoName,
    bytes: Bytes,
    counts: &RequestCounts,
) -> Result<Digest, Error> {
    let blob = registry::Checked::of(bytes);
    let digest = blob.digest();
    counts
        .present
        .once(reg.name(), repo, &digest, || async {
            RequestCounts::bump(&counts.reads);
            let what = format!("storing blob {digest} in {}/{repo}", reg.name());
            if reg
                .blob_exists(repo, &digest)
                .await
                .map_err(reg_err(what.clone()))?
                .is_some()
            {
                return Ok(());
            }
            RequestCounts::bump(&counts.blobs_pushed);
            reg.push_checked(repo, &blob).await.map_err(reg_err(what))
        })
        .await?;
    Ok(digest)
}

/// Read a small blob whole.
pub async fn read_blob(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
) -> Result<Vec<u8>, Error> {
    let what = format!("reading blob {digest} from {}/{repo}", reg.name());
    let blob = reg
        .get_blob(repo, digest)
        .await
        .map_err(reg_err(what.clone()))?;
    let mut out = Vec::new();
    let mut stream = blob.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(reg_err(what.clone()))?;
        out.extend_from_slice(&chunk);
        if out.len() > MAX_SIGNATURE_BLOB {
            return Err(Error::Format(format!(
                "{what}: larger than a signature can be"
            )));
        }
    }
    Ok(out)
}

/// Make blob `desc` of `from` available in `to`: nothing when it is there,
/// a mount within one registry, else a streamed copy.
pub async fn copy_blob(
    from: &dyn Registry,
    from_repo: &RepoName,
    to: &dyn Registry,
    to_repo: &RepoName,
    desc: &Descriptor,
    counts: &RequestCounts,
) -> Result<(), Error> {
    counts
        .present
        .once(to.name(), to_repo, &desc.digest, || async {
            let what = format!("copying blob {} to {}/{to_repo}", desc.digest, to.name());
            RequestCounts::bump(&counts.reads);
            if to
                .blob_exists(to_repo, &desc.digest)
                .await
                .map_err(reg_err(what.clone()))?
                .is_some()
            {
                return Ok(());
            }
            RequestCounts::bump(&counts.blobs_pushed);
            // A declined or failed mount is no failure: the blob is copied
            // instead (GHCR, Docker Hub and Harbor may refuse mounts).
            if from.name() == to.name() {
                match to.mount_blob(to_repo, &desc.digest, from_repo).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!(digest = %desc.digest, error = %e, "mount failed; copying instead");
                    }
                }
            }
            let blob = from
                .get_blob(from_repo, &desc.digest)
                .await
                .map_err(reg_err(what.clone()))?;
            to.push_blob(to_repo, &desc.digest, desc.size, blob.into_stream())
                .await
                .map_err(reg_err(what))
        })
        .await
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// Add `referrers` to the tag-schema index of `subject` (`sha256-<hex>`),
/// keeping every entry already listed: one read and at most one push.
/// Nothing is pushed when all are listed. The tag is read for what it is:
/// a registry may resolve it to the subject itself (GitLab,
/// oras-project/oras-go#1396), and that is never rewritten. Where the tag
/// cannot be written (that, or an immutable tag), the registry's own
/// referrers API may list them anyway; only when it does not is it an
/// error, naming what is not listed.
pub async fn add_to_fallback_index(
    reg: &dyn Registry,
    repo: &RepoName,
    subject: &Digest,
    referrers: &[Descriptor],
    counts: &RequestCounts,
) -> Result<(), Error> {
    let tag = Reference::tag(&subject.referrers_tag())
        .map_err(|e| Error::Format(format!("referrers tag: {e}")))?;
    let mut listed = match get_manifest(reg, repo, &tag, counts).await? {
        Some(found) if found.digest() == *subject || !found.is_index() => {
            if listed_by_api(reg, repo, subject, referrers, counts).await? {
                return Ok(());
            }
            return Err(Error::Format(format!(
                "{}/{repo}: tag {tag} resolves to {} ({}), not to an index of referrers, so it is \
                 left alone and {} referrer(s) of {subject} are stored but not listed: {}; this \
                 registry has no referrers API either, so only the legacy `.sig` format is found \
                 there (`--signature-format legacy` for it)",
                reg.name(),
                found.digest(),
                if found.digest() == *subject {
                    "the subject itself"
                } else {
                    "a manifest"
                },
                referrers.len(),
                digests(referrers),
            )));
        }
        Some(index) => {
            serde_json::from_slice::<RawIndex>(index.bytes())
                .map_err(|e| Error::Format(format!("unreadable referrers index: {e}")))?
                .manifests
        }
        None => Vec::new(),
    };
    let before = listed.len();
    for referrer in referrers {
        if !listed.iter().any(|d| d.digest == referrer.digest) {
            listed.push(referrer.clone());
        }
    }
    if listed.len() == before {
        return Ok(());
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
    let index = Manifest::new(Some(OCI_INDEX), Bytes::from(index.to_string()))
        .map_err(|e| Error::Format(e.to_string()))?;
    RequestCounts::bump(&counts.manifests_pushed);
    match reg.push_manifest(repo, &tag, &index).await {
        Ok(()) => Ok(()),
        Err(e) if is_tag_refusal(&e) => {
            if listed_by_api(reg, repo, subject, referrers, counts).await? {
                return Ok(());
            }
            let not_stored = format!(
                " and {} referrer(s) of {subject} are stored but not listed: {}",
                referrers.len(),
                digests(referrers)
            );
            Err(Error::Format(refusal_message(
                reg.name(),
                repo,
                &tag,
                &e,
                &not_stored,
            )))
        }
        Err(e) => Err(reg_err(format!("pushing {}/{repo}:{tag}", reg.name()))(e)),
    }
}

/// True when the registry lists every one of `referrers` of `subject`
/// (its referrers API; the tag schema where it has none).
async fn listed_by_api(
    reg: &dyn Registry,
    repo: &RepoName,
    subject: &Digest,
    referrers: &[Descriptor],
    counts: &RequestCounts,
) -> Result<bool, Error> {
    RequestCounts::bump(&counts.reads);
    let found = match reg.list_referrers(repo, subject).await {
        Ok(found) => found,
        Err(registry::Error::NotFound { .. }) => Vec::new(),
        Err(e) => {
            return Err(reg_err(format!(
                "listing referrers of {}/{repo}@{subject}",
                reg.name()
            ))(e));
        }
    };
    Ok(referrers
        .iter()
        .all(|r| found.iter().any(|f| f.digest == r.digest)))
}

fn digests(descriptors: &[Descriptor]) -> String {
    descriptors
        .iter()
        .map(|d| d.digest.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
