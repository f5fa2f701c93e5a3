//! Copying signature artifacts between repositories, byte for byte: the
//! legacy `.sig` manifest (merged, never overwritten, when the destination
//! already holds other signatures) and sigstore bundle referrers (plus the
//! tag-schema index entry), attestations included. The origin is read once ([`read`]) and written
//! to any number of destinations ([`write`]); a destination that already
//! holds everything gets no write at all, so a repeated run pushes nothing.

use super::store::{self, RequestCounts};
use super::{Error, Formats, Place, bundle, bundle_referrers, cosign, predicate_of};
use crate::registry::{Descriptor, Digest, Manifest, Reference};

/// The signature artifacts of one digest in one repository.
#[derive(Clone, Debug, Default)]
pub struct Artifacts {
    /// The `.sig` manifest, when there is one (and legacy is wanted).
    pub legacy: Option<Manifest>,
    /// Bundle referrers: their index descriptor and manifest.
    pub bundles: Vec<(Descriptor, Manifest)>,
}

impl Artifacts {
    /// True when there is nothing to copy.
    pub fn is_empty(&self) -> bool {
        self.legacy.is_none() && self.bundles.is_empty()
    }
}

fn sig_tag(digest: &Digest) -> Result<Reference, Error> {
    Reference::tag(&cosign::signature_tag(digest)).map_err(|e| Error::Format(e.to_string()))
}

/// Read the signature artifacts of `digest` in `from`.
pub async fn read(
    from: &Place,
    digest: &Digest,
    formats: Formats,
    counts: &RequestCounts,
) -> Result<Artifacts, Error> {
    let reg = from.registry.as_ref();
    let mut artifacts = Artifacts::default();
    if formats.legacy {
        artifacts.legacy = store::get_manifest(reg, &from.repo, &sig_tag(digest)?, counts).await?;
    }
    // Attestations travel whatever the signature formats; signature bundles
    // (and bundles that do not say what they hold) only when wanted.
    for referrer in bundle_referrers(reg, &from.repo, digest, counts).await? {
        let signature = matches!(predicate_of(&referrer), None | Some(bundle::SIGN_PREDICATE));
        if signature && !formats.bundle {
            continue;
        }
        let reference = Reference::Digest(referrer.digest);
        if let Some(m) = store::get_manifest(reg, &from.repo, &reference, counts).await? {
            artifacts.bundles.push((referrer, m));
        }
    }
    Ok(artifacts)
}

/// Copy the signatures of `digest` from `from` to `to`. Returns whether
/// anything was written.
pub async fn replicate(
    from: &Place,
    to: &Place,
    digest: &Digest,
    formats: Formats,
    counts: &RequestCounts,
) -> Result<bool, Error> {
    let artifacts = read(from, digest, formats, counts).await?;
    write(from, &artifacts, to, digest, counts).await
}

/// Write `artifacts` (read from `from`) to `to`. Returns whether anything
/// was written. Nothing is written where the image itself is not (its copy
/// failed there): that is an error naming it, checked once something is
/// missing, so that a run with nothing to write reads no more.
pub async fn write(
    from: &Place,
    artifacts: &Artifacts,
    to: &Place,
    digest: &Digest,
    counts: &RequestCounts,
) -> Result<bool, Error> {
    let mut unlisted = Vec::new();
    let wrote = write_unlisted(from, artifacts, to, digest, counts, &mut unlisted).await?;
    // Listed once all are there: one index update for all of them, and
    // none for those the registry indexed itself (`OCI-Subject`).
    if !unlisted.is_empty() {
        store::add_to_fallback_index(to.registry.as_ref(), &to.repo, digest, &unlisted, counts)
            .await?;
    }
    Ok(wrote)
}

/// [`write`], leaving the bundle referrers that the registry did not index
/// itself in `unlisted`, for the caller to list with the digest's others.
pub async fn write_unlisted(
    from: &Place,
    artifacts: &Artifacts,
    to: &Place,
    digest: &Digest,
    counts: &RequestCounts,
    unlisted: &mut Vec<Descriptor>,
) -> Result<bool, Error> {
    if artifacts.is_empty() {
        return Ok(false);
    }
    let mut wrote = false;
    if let Some(source) = &artifacts.legacy {
        wrote |= write_legacy(from, source, to, digest, counts).await?;
    }
    if !artifacts.bundles.is_empty() {
        wrote |= write_bundles(from, &artifacts.bundles, to, digest, counts, unlisted).await?;
    }
    if wrote {
        RequestCounts::bump(&counts.replicated);
    }
    Ok(wrote)
}

async fn write_legacy(
    from: &Place,
    source: &Manifest,
    to: &Place,
    digest: &Digest,
    counts: &RequestCounts,
) -> Result<bool, Error> {
    let tag = sig_tag(digest)?;
    let (src, dst) = (from.registry.as_ref(), to.registry.as_ref());
    let target = store::get_manifest(dst, &to.repo, &tag, counts).await?;
    let source_layers = cosign::layers(source)?;
    let (manifest, config) = match &target {
        Some(t) if t.digest() == source.digest() => return Ok(false),
        None => {
            let config = source
                .blobs()
                .map_err(|e| Error::Format(e.to_string()))?
                .into_iter()
                .next();
            (source.clone(), config.map(Err))
        }
        Some(t) => {
            // Someone else signed there too: keep their layers, add ours.
            let Some(layers) = cosign::merge(&cosign::layers(t)?, &source_layers) else {
                return Ok(false);
            };
            let built = cosign::build(&layers)?;
            (built.manifest, Some(Ok(built.config)))
        }
    };
    store::require_subject(dst, &to.repo, digest, counts).await?;
    for layer in &cosign::layers(&manifest)? {
        if source_layers.contains(layer) {
            store::copy_blob(src, &from.repo, dst, &to.repo, layer, counts).await?;
        }
    }
    match config {
        Some(Ok(bytes)) => {
            store::put_blob(dst, &to.repo, bytes, counts).await?;
        }
        Some(Err(desc)) => {
            store::copy_blob(src, &from.repo, dst, &to.repo, &desc, counts).await?;
        }
        None => {}
    }
    store::push_manifest(dst, &to.repo, &tag, &manifest, counts).await?;
    Ok(true)
}

async fn write_bundles(
    from: &Place,
    bundles: &[(Descriptor, Manifest)],
    to: &Place,
    digest: &Digest,
    counts: &RequestCounts,
    unlisted: &mut Vec<Descriptor>,
) -> Result<bool, Error> {
    let (src, dst) = (from.registry.as_ref(), to.registry.as_ref());
    let present = bundle_referrers(dst, &to.repo, digest, counts).await?;
    let mut wrote = false;
    for (referrer, manifest) in bundles {
        if present.iter().any(|p| p.digest == referrer.digest) {
            continue;
        }
        if !wrote {
            store::require_subject(dst, &to.repo, digest, counts).await?;
        }
        for blob in manifest.blobs().map_err(|e| Error::Format(e.to_string()))? {
            store::copy_blob(src, &from.repo, dst, &to.repo, &blob, counts).await?;
        }
        if !store::push_referrer(dst, &to.repo, manifest, counts).await? {
            unlisted.push(referrer.clone());
        }
        wrote = true;
    }
    Ok(wrote)
}
