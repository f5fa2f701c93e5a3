//! Copying signature artifacts between repositories, byte for byte: the
//! legacy `.sig` manifest (merged, never overwritten, when the destination
//! already holds other signatures) and sigstore bundle referrers (plus the
//! tag-schema index entry). A destination that already holds them gets no
//! write at all, so a repeated run pushes nothing.

use super::store::{self, Counts};
use super::{Error, Formats, Place, bundle_referrers, cosign};
use crate::registry::{Digest, Reference};

/// Copy the signatures of `digest` from `from` to `to`. Returns whether
/// anything was written.
pub async fn replicate(
    from: &Place,
    to: &Place,
    digest: &Digest,
    formats: Formats,
    counts: &Counts,
) -> Result<bool, Error> {
    let mut wrote = false;
    if formats.legacy {
        wrote |= replicate_legacy(from, to, digest, counts).await?;
    }
    if formats.bundle {
        wrote |= replicate_bundles(from, to, digest, counts).await?;
    }
    if wrote {
        Counts::bump(&counts.replicated);
    }
    Ok(wrote)
}

async fn replicate_legacy(
    from: &Place,
    to: &Place,
    digest: &Digest,
    counts: &Counts,
) -> Result<bool, Error> {
    let tag =
        Reference::tag(&cosign::signature_tag(digest)).map_err(|e| Error::Format(e.to_string()))?;
    let (src, dst) = (from.registry.as_ref(), to.registry.as_ref());
    let Some(source) = store::get_manifest(src, &from.repo, &tag, counts).await? else {
        return Ok(false);
    };
    let target = store::get_manifest(dst, &to.repo, &tag, counts).await?;
    let source_layers = cosign::layers(&source)?;
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

async fn replicate_bundles(
    from: &Place,
    to: &Place,
    digest: &Digest,
    counts: &Counts,
) -> Result<bool, Error> {
    let (src, dst) = (from.registry.as_ref(), to.registry.as_ref());
    let source = bundle_referrers(src, &from.repo, digest, counts).await?;
    if source.is_empty() {
        return Ok(false);
    }
    let present = bundle_referrers(dst, &to.repo, digest, counts).await?;
    let mut wrote = false;
    for referrer in source {
        if present.iter().any(|p| p.digest == referrer.digest) {
            continue;
        }
        let reference = Reference::Digest(referrer.digest);
        let Some(manifest) = store::get_manifest(src, &from.repo, &reference, counts).await? else {
            continue;
        };
        for blob in manifest.blobs().map_err(|e| Error::Format(e.to_string()))? {
            store::copy_blob(src, &from.repo, dst, &to.repo, &blob, counts).await?;
        }
        store::push_manifest(dst, &to.repo, &reference, &manifest, counts).await?;
        store::add_to_fallback_index(dst, &to.repo, digest, &referrer, counts).await?;
        wrote = true;
    }
    Ok(wrote)
}
