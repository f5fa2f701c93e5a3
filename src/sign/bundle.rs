//! The sigstore bundle v0.3 format as cosign v3 stores image signatures: a
//! DSSE envelope over an in-toto Statement v1 (predicate type
//! `https://sigstore.dev/cosign/sign/v1`, subject = the image digest), the
//! signing certificate and the Rekor `dsse` entry with its inclusion
//! promise and proof; pushed as an OCI 1.1 referrer of the image.
//!
//! Pure data: building these documents (reading and verifying them is
//! [`super::verifier`]'s).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::json;

use super::Error;
use super::crypto::b64;
use super::rekor::LogEntry;
use crate::registry::{Descriptor, Digest, Manifest};

/// Media type and artifact type of a bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// cosign v3's predicate type for image signatures.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// DSSE payload type of in-toto statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The OCI empty descriptor's media type.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Annotation naming the bundle's content.
pub const ANN_CONTENT: &str = "dev.sigstore.bundle.content";
/// Annotation naming the predicate type.
pub const ANN_PREDICATE: &str = "dev.sigstore.bundle.predicateType";

/// The in-toto statement signed for `digest`. `name` is the image's public
/// name (sigstore-python requires one; cosign ignores it).
pub fn statement(name: &str, digest: &Digest) -> Vec<u8> {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest.hex()}}],
        "predicateType": SIGN_PREDICATE,
        "predicate": {},
    })
    .to_string()
    .into_bytes()
}

/// DSSE's pre-authentication encoding: what is actually signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The DSSE envelope JSON for `payload` with one signature.
pub fn envelope(payload: &[u8], signature: &[u8]) -> String {
    json!({
        "payload": b64(payload),
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": b64(signature)}],
    })
    .to_string()
}

/// The bundle JSON. `cert_der` is the leaf (None when signed with a key, then
/// `key_hint` names the key); `entry` is the Rekor dsse entry (None without
/// a log); `timestamps` are DER RFC 3161 `TimeStampResp`s over the
/// envelope's signature.
pub fn bundle(
    envelope: &str,
    cert_der: Option<&[u8]>,
    key_hint: &str,
    entry: Option<&Logged>,
    timestamps: &[Vec<u8>],
) -> Result<Vec<u8>, Error> {
    let envelope: serde_json::Value =
        serde_json::from_str(envelope).map_err(|e| Error::Format(e.to_string()))?;
    let mut material = serde_json::Map::new();
    match cert_der {
        Some(der) => {
            material.insert("certificate".into(), json!({"rawBytes": b64(der)}));
        }
        None => {
            material.insert("publicKey".into(), json!({"hint": key_hint}));
        }
    }
    let mut entries = Vec::new();
    match entry {
        Some(Logged::V1(e)) => entries.push(v1_entry(e)?),
        Some(Logged::V2(e)) => entries.push(e.clone()),
        None => {}
    }
    material.insert("tlogEntries".into(), json!(entries));
    if !timestamps.is_empty() {
        let signed: Vec<_> = timestamps
            .iter()
            .map(|t| json!({"signedTimestamp": b64(t)}))
            .collect();
        material.insert(
            "timestampVerificationData".into(),
            json!({"rfc3161Timestamps": signed}),
        );
    }
    Ok(json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": material,
        "dsseEnvelope": envelope,
    })
    .to_string()
    .into_bytes())
}

/// A log entry a bundle carries.
#[derive(Clone, Debug)]
pub enum Logged {
    /// A Rekor v1 `dsse` entry, as Rekor v1 returned it.
    V1(LogEntry),
    /// A Rekor v2 `TransparencyLogEntry`, as the v2 log returned it.
    V2(serde_json::Value),
}

/// A Rekor v1 entry as a bundle's `tlogEntries` item (base64 where the v1
/// API gives hex).
fn v1_entry(e: &LogEntry) -> Result<serde_json::Value, Error> {
    let proof = e.verification.inclusion_proof.as_ref().ok_or_else(|| {
        Error::Rekor("the log returned no inclusion proof for a dsse entry".into())
    })?;
    let hashes: Result<Vec<String>, Error> = proof
        .hashes
        .iter()
        .map(|h| {
            hex::decode(h)
                .map(b64)
                .map_err(|e| Error::Format(e.to_string()))
        })
        .collect();
    Ok(json!({
        "logIndex": e.log_index.to_string(),
        "logId": {"keyId": b64(hex::decode(&e.log_id).map_err(|e| Error::Format(e.to_string()))?)},
        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
        "integratedTime": e.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": e.verification.signed_entry_timestamp},
        "inclusionProof": {
            "logIndex": proof.log_index.to_string(),
            "rootHash": b64(hex::decode(&proof.root_hash).map_err(|e| Error::Format(e.to_string()))?),
            "treeSize": proof.tree_size.to_string(),
            "hashes": hashes?,
            "checkpoint": {"envelope": proof.checkpoint},
        },
        "canonicalizedBody": e.body,
    }))
}

/// The OCI empty JSON blob `{}`.
pub fn empty_blob() -> Bytes {
    Bytes::from_static(b"{}")
}

/// The referrer manifest that stores `bundle` (a statement of
/// `predicate_type`) for `subject`, with `extra` annotations. `created` is
/// an RFC 3339 time.
pub fn referrer(
    bundle: &[u8],
    subject: &Descriptor,
    predicate_type: &str,
    extra: &[(&str, &str)],
    created: &str,
) -> Result<Manifest, Error> {
    let empty = empty_blob();
    let mut annotations: BTreeMap<&str, &str> = extra.iter().copied().collect();
    annotations.insert(ANN_CONTENT, "dsse-envelope");
    annotations.insert(ANN_PREDICATE, predicate_type);
    annotations.insert("org.opencontainers.image.created", created);
    let subject = Descriptor::new(subject.media_type.clone(), subject.digest, subject.size);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": super::cosign::OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": Descriptor::new(EMPTY_MEDIA_TYPE, Digest::of(&empty), 2),
        "layers": [Descriptor::new(BUNDLE_MEDIA_TYPE, Digest::of(bundle), bundle.len() as u64)],
        "subject": subject,
        "annotations": annotations,
    });
    Manifest::new(
        Some(super::cosign::OCI_MANIFEST),
        Bytes::from(manifest.to_string()),
    )
    .map_err(|e| Error::Format(e.to_string()))
}

/// RFC 3339 UTC time of `secs` since the epoch (civil-from-days, Howard
/// Hinnant's algorithm), without a date crate.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec() {
        assert_eq!(pae("a/b", b"hello"), b"DSSEv1 3 a/b 5 hello".to_vec());
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
