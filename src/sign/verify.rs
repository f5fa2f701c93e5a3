//! Checking the signatures an image carries in a registry: for one digest
//! in one repository, is there a legacy `.sig` signature and/or a sigstore
//! bundle that verifies and matches the expected identity and issuer? This
//! module reads them from the registry and puts a legacy layer into bundle
//! form (a v0.1 message-signature bundle, as cosign's annotations hold its
//! parts); the verifying itself is [`super::verifier`]'s.
//!
//! The verdict is data ([`Status`]); operational errors (a registry that
//! cannot be read) are reported as such, apart from invalid signatures.

use serde::Deserialize;
use serde_json::json;

use super::crypto::{self, b64};
use super::store::{self, RequestCounts};
use super::trust::TrustedRoot;
use super::verifier::{self, Artifact, Options};
use super::{Error, Formats, Place, bundle, bundle_referrers, cosign, predicate_of};
use crate::registry::{Digest, Reference};

pub use super::verifier::{Matcher, Policy};

/// The verdict for one format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// A signature verifies and matches the policy.
    Valid,
    /// No signature of this format.
    Missing,
    /// Signatures exist, none verifies; the first reason.
    Invalid(String),
    /// The format was not asked for.
    NotChecked,
    /// The registry could not be read.
    Error(String),
}

impl Status {
    /// True unless it is a gap.
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Valid | Status::NotChecked)
    }

    /// The kind, for JSON: `valid`, `missing`, `invalid`, `not_checked`
    /// or `error`, and the reason of the last two.
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Status::Valid => ("valid", None),
            Status::Missing => ("missing", None),
            Status::Invalid(why) => ("invalid", Some(why)),
            Status::NotChecked => ("not_checked", None),
            Status::Error(e) => ("error", Some(e)),
        }
    }

    /// Short text for tables.
    pub fn label(&self) -> String {
        match self {
            Status::Valid => "valid".into(),
            Status::Missing => "missing".into(),
            Status::Invalid(why) => format!("invalid: {why}"),
            Status::NotChecked => "-".into(),
            Status::Error(e) => format!("error: {e}"),
        }
    }
}

/// Both verdicts for one digest in one place.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The legacy `.sig` signature.
    pub legacy: Status,
    /// The bundle referrer.
    pub bundle: Status,
}

/// Check `digest` in `place`.
pub async fn check(
    place: &Place,
    digest: &Digest,
    formats: Formats,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &RequestCounts,
) -> Verdict {
    let legacy = if formats.legacy {
        check_legacy(place, digest, policy, trust, counts)
            .await
            .unwrap_or_else(|e| Status::Error(e.to_string()))
    } else {
        Status::NotChecked
    };
    let bundle = if formats.bundle {
        check_bundles(place, digest, policy, trust, counts)
            .await
            .unwrap_or_else(|e| Status::Error(e.to_string()))
    } else {
        Status::NotChecked
    };
    Verdict { legacy, bundle }
}

/// The status of a set of candidate results: valid when one is, missing when
/// there are none, else invalid with the first reason.
pub fn pick<E: std::fmt::Display>(results: Vec<Result<(), E>>) -> Status {
    if results.is_empty() {
        return Status::Missing;
    }
    let mut first = None;
    for r in results {
        match r {
            Ok(()) => return Status::Valid,
            Err(e) => {
                first.get_or_insert(e.to_string());
            }
        }
    }
    Status::Invalid(first.unwrap_or_default())
}

async fn check_legacy(
    place: &Place,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &RequestCounts,
) -> Result<Status, Error> {
    let reg = place.registry.as_ref();
    let tag =
        Reference::tag(&cosign::signature_tag(digest)).map_err(|e| Error::Format(e.to_string()))?;
    let Some(manifest) = store::get_manifest(reg, &place.repo, &tag, counts).await? else {
        return Ok(Status::Missing);
    };
    let mut results = Vec::new();
    for layer in cosign::layers(&manifest)? {
        if layer.media_type != cosign::SIMPLE_SIGNING {
            continue;
        }
        let payload = store::read_blob(reg, &place.repo, &layer.digest).await?;
        let annotations = layer.annotations.unwrap_or_default();
        results.push(verify_legacy_layer(
            &payload,
            &annotations,
            digest,
            policy,
            trust,
        ));
    }
    Ok(pick(results))
}

/// Verify one legacy signature layer: its payload and annotations.
pub fn verify_legacy_layer(
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(), Error> {
    let claims = cosign::parse_payload(payload)?;
    if claims.critical.image.digest != digest.to_string() {
        return Err(Error::Verify(format!(
            "the payload signs {}, not this image",
            claims.critical.image.digest
        )));
    }
    let bundle = legacy_bundle(payload, annotations)?;
    let options = Options {
        allow_unlogged_key: true,
    };
    verifier::verify(&bundle, Artifact::Bytes(payload), policy, trust, options)?;
    Ok(())
}

/// A legacy layer as the sigstore bundle its annotations amount to: the
/// signature over the payload, the certificate (or, key-signed, a key hint)
/// and the Rekor entry with its SignedEntryTimestamp (bundle v0.1, which
/// asks for no inclusion proof; v0.3 when there is no entry at all).
fn legacy_bundle(
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<u8>, Error> {
    let signature = annotations
        .get(cosign::ANN_SIGNATURE)
        .ok_or_else(|| Error::Verify("no signature annotation".into()))?;
    let material = match annotations.get(cosign::ANN_CERTIFICATE) {
        Some(pem_text) => {
            let der = crypto::pem_blocks(pem_text)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Verify("empty certificate annotation".into()))?;
            json!({"x509CertificateChain": {"certificates": [{"rawBytes": b64(der)}]}})
        }
        None => json!({"publicKey": {"hint": ""}}),
    };
    let entry = match annotations.get(cosign::ANN_BUNDLE) {
        Some(text) => Some(cosign::parse_bundle_annotation(text)?),
        None if material.get("publicKey").is_none() => {
            return Err(Error::Verify(
                "keyless signature without a Rekor bundle".into(),
            ));
        }
        None => None,
    };
    let mut material = material;
    let media_type = match &entry {
        Some(e) => {
            let log_id = hex::decode(&e.log_id).map_err(|e| Error::Verify(e.to_string()))?;
            material["tlogEntries"] = json!([{
                "logIndex": e.log_index.to_string(),
                "logId": {"keyId": b64(log_id)},
                "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                "integratedTime": e.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": e.verification.signed_entry_timestamp},
                "canonicalizedBody": e.body,
            }]);
            "application/vnd.dev.sigstore.bundle+json;version=0.1"
        }
        None => {
            material["tlogEntries"] = json!([]);
            bundle::BUNDLE_MEDIA_TYPE
        }
    };
    let digest = <sha2::Sha256 as sha2::Digest>::digest(payload);
    Ok(json!({
        "mediaType": media_type,
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
            "signature": signature.trim(),
        },
    })
    .to_string()
    .into_bytes())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    predicate_type: String,
}

async fn check_bundles(
    place: &Place,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &RequestCounts,
) -> Result<Status, Error> {
    // Attestations are not signatures; an unannounced bundle may be one.
    let bundles = read_bundles(place, digest, counts, |predicate| {
        matches!(predicate, None | Some(bundle::SIGN_PREDICATE))
    })
    .await?;
    Ok(pick(
        bundles
            .into_iter()
            .map(|(_, bytes)| bytes.and_then(|b| verify_bundle(&b, digest, policy, trust)))
            .collect(),
    ))
}

/// The bundles the referrers of `digest` in `place` store, for those whose
/// announced predicate type `wanted` accepts: each with that predicate
/// type, and its JSON or, for a referrer listed but absent or holding no
/// bundle, an [`Error::Verify`] in its place. A registry that cannot be
/// read fails the whole call.
#[allow(clippy::type_complexity)]
pub async fn read_bundles(
    place: &Place,
    digest: &Digest,
    counts: &RequestCounts,
    wanted: impl Fn(Option<&str>) -> bool,
) -> Result<Vec<(Option<String>, Result<Vec<u8>, Error>)>, Error> {
    let reg = place.registry.as_ref();
    let mut out = Vec::new();
    for referrer in bundle_referrers(reg, &place.repo, digest, counts).await? {
        let predicate = predicate_of(&referrer);
        if !wanted(predicate) {
            continue;
        }
        let bytes = match bundle_bytes(place, &referrer, counts).await {
            Ok(bytes) => Ok(bytes),
            Err(e @ Error::Verify(_)) => Err(e),
            Err(e) => return Err(e),
        };
        out.push((predicate.map(str::to_owned), bytes));
    }
    Ok(out)
}

/// The bundle JSON a referrer (listed in `place`) stores. A referrer that is
/// listed but absent, or holds no bundle, is an [`Error::Verify`].
async fn bundle_bytes(
    place: &Place,
    referrer: &crate::registry::Descriptor,
    counts: &RequestCounts,
) -> Result<Vec<u8>, Error> {
    let reg = place.registry.as_ref();
    let reference = Reference::Digest(referrer.digest);
    let Some(manifest) = store::get_manifest(reg, &place.repo, &reference, counts).await? else {
        return Err(Error::Verify("listed referrer is missing".into()));
    };
    let blobs = manifest.blobs().map_err(|e| Error::Format(e.to_string()))?;
    let Some(layer) = blobs
        .iter()
        .find(|b| b.media_type == bundle::BUNDLE_MEDIA_TYPE)
    else {
        return Err(Error::Verify("referrer without a bundle layer".into()));
    };
    store::read_blob(reg, &place.repo, &layer.digest).await
}

/// Verify a signature bundle for `digest` (predicate type
/// `https://sigstore.dev/cosign/sign/v1`).
pub fn verify_bundle(
    bytes: &[u8],
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(), Error> {
    let (_, predicate_type) = verify_statement_bundle(bytes, digest, policy, trust)?;
    if predicate_type != bundle::SIGN_PREDICATE {
        return Err(Error::Verify(format!("predicate type {predicate_type}")));
    }
    Ok(())
}

/// Verify a DSSE bundle over an in-toto statement that names `digest`
/// (through [`super::verifier`]: signature, signer against `policy` and the
/// trusted root, log entries and timestamps). Returns the statement's bytes
/// and predicate type; what the predicate says is the caller's to judge.
pub fn verify_statement_bundle(
    bytes: &[u8],
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(Vec<u8>, String), Error> {
    let options = Options {
        allow_unlogged_key: true,
    };
    let artifact = Artifact::Sha256(*digest.as_bytes());
    let verified = verifier::verify(bytes, artifact, policy, trust, options)?;
    let payload = verified
        .payload
        .ok_or_else(|| Error::Verify("not a DSSE bundle".into()))?;
    let statement: Statement = serde_json::from_slice(&payload)
        .map_err(|e| Error::Verify(format!("unreadable in-toto statement: {e}")))?;
    Ok((payload, statement.predicate_type))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sign::crypto::Key;

    fn key_policy(key: &Key) -> Policy {
        Policy {
            identity: Matcher::KeyOnly,
            issuer: Matcher::KeyOnly,
            public_key: Some(key.public_der()),
        }
    }

    fn signed_layer(key: &Key, digest: &Digest) -> (Vec<u8>, BTreeMap<String, String>) {
        let payload = cosign::payload("registry.example/app", digest, &BTreeMap::new());
        let annotations = cosign::annotations(&key.sign(&payload), None, None, None);
        (payload, annotations)
    }

    #[test]
    fn key_signed_legacy_layer() {
        let key = Key::generate().unwrap();
        let digest = Digest::of(b"image");
        let trust = TrustedRoot::load(None).unwrap();
        let (payload, annotations) = signed_layer(&key, &digest);
        verify_legacy_layer(&payload, &annotations, &digest, &key_policy(&key), &trust).unwrap();
        // Another image's signature does not count for this one.
        let other = Digest::of(b"other");
        let err = verify_legacy_layer(&payload, &annotations, &other, &key_policy(&key), &trust)
            .unwrap_err();
        assert!(err.to_string().contains("not this image"), "{err}");
        // Another key does not verify it.
        let stranger = Key::generate().unwrap();
        assert!(
            verify_legacy_layer(
                &payload,
                &annotations,
                &digest,
                &key_policy(&stranger),
                &trust
            )
            .is_err()
        );
        // A payload changed after signing does not verify.
        let tampered = String::from_utf8(payload)
            .unwrap()
            .replace("registry.example", "registry.evil")
            .into_bytes();
        assert!(
            verify_legacy_layer(&tampered, &annotations, &digest, &key_policy(&key), &trust)
                .is_err()
        );
    }

    #[test]
    fn keyless_needs_a_policy() {
        // A certificate is refused before anything else when the policy
        // names no identity (as with --public-key alone).
        let policy = key_policy(&Key::generate().unwrap());
        let bundle = json!({
            "mediaType": bundle::BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"certificate": {"rawBytes": "MAA="}, "tlogEntries": []},
            "dsseEnvelope": {"payload": "e30=", "payloadType": bundle::INTOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": "MAA="}]},
        })
        .to_string();
        let trust = TrustedRoot::load(None).unwrap();
        let err = verify_statement_bundle(bundle.as_bytes(), &Digest::of(b"x"), &policy, &trust)
            .unwrap_err();
        assert!(err.to_string().contains("no certificate identity"), "{err}");
    }
}
