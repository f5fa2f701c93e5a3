//! cosign's legacy signature format, as cosign v2 writes and every cosign
//! reads it: a manifest tagged `sha256-<hex>.sig` in the image's repository,
//! one layer per signature. Each layer is the simple-signing payload
//! (`application/vnd.dev.cosign.simplesigning.v1+json`) with annotations
//! for the signature, the certificate, its chain and the Rekor entry.
//!
//! Pure data: building payloads, layers and manifests, and merging a new
//! layer into an existing manifest without dropping anyone's layers.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::Error;
use super::rekor::LogEntry;
use crate::registry::{Descriptor, Digest, Manifest};

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation: the signature, base64.
pub const ANN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// Annotation: the signing certificate, PEM.
pub const ANN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// Annotation: the certificate chain above it, PEM.
pub const ANN_CHAIN: &str = "dev.sigstore.cosign/chain";
/// Annotation: the Rekor bundle (SET and entry).
pub const ANN_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The `.sig` tag of `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The simple-signing payload cosign signs: `docker-reference` is the
/// image's public name; `optional` holds extra claims (`null` when none).
pub fn payload(
    docker_reference: &str,
    digest: &Digest,
    optional: &BTreeMap<String, String>,
) -> Vec<u8> {
    let optional = if optional.is_empty() {
        serde_json::Value::Null
    } else {
        json!(optional)
    };
    // serde_json orders keys lexically, which is also cosign's field order.
    json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": "cosign container image signature",
        },
        "optional": optional,
    })
    .to_string()
    .into_bytes()
}

/// What a payload claims.
#[derive(Debug, Deserialize)]
pub struct Payload {
    /// The critical section.
    pub critical: Critical,
}

/// `critical` of a payload.
#[derive(Debug, Deserialize)]
pub struct Critical {
    /// `identity.docker-reference`.
    pub identity: serde_json::Value,
    /// `image.docker-manifest-digest`.
    pub image: ImageClaim,
    /// Must be `cosign container image signature`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.image` of a payload.
#[derive(Debug, Deserialize)]
pub struct ImageClaim {
    /// The signed manifest digest.
    #[serde(rename = "docker-manifest-digest")]
    pub digest: String,
}

/// Read a payload.
pub fn parse_payload(bytes: &[u8]) -> Result<Payload, Error> {
    let payload: Payload = serde_json::from_slice(bytes)
        .map_err(|e| Error::Verify(format!("unreadable simple-signing payload: {e}")))?;
    if payload.critical.kind != "cosign container image signature" {
        return Err(Error::Verify(format!(
            "payload type is `{}`, not a cosign container image signature",
            payload.critical.kind
        )));
    }
    Ok(payload)
}

/// The annotations of a signature layer.
pub fn annotations(
    signature: &[u8],
    cert_pem: Option<&str>,
    chain_pem: Option<&str>,
    entry: Option<&LogEntry>,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(ANN_SIGNATURE.to_owned(), super::crypto::b64(signature));
    if let Some(cert) = cert_pem {
        a.insert(ANN_CERTIFICATE.to_owned(), cert.to_owned());
    }
    if let Some(chain) = chain_pem {
        a.insert(ANN_CHAIN.to_owned(), chain.to_owned());
    }
    if let Some(entry) = entry {
        a.insert(ANN_BUNDLE.to_owned(), bundle_annotation(entry));
    }
    a
}

/// cosign's `dev.sigstore.cosign/bundle` annotation.
pub fn bundle_annotation(entry: &LogEntry) -> String {
    json!({
        "SignedEntryTimestamp": entry.verification.signed_entry_timestamp,
        "Payload": {
            "body": entry.body,
            "integratedTime": entry.integrated_time,
            "logIndex": entry.log_index,
            "logID": entry.log_id,
        },
    })
    .to_string()
}

/// Read a `dev.sigstore.cosign/bundle` annotation back into a log entry
/// (without inclusion proof, which the annotation does not carry).
pub fn parse_bundle_annotation(text: &str) -> Result<LogEntry, Error> {
    #[derive(Deserialize)]
    struct Ann {
        #[serde(rename = "SignedEntryTimestamp")]
        set: String,
        #[serde(rename = "Payload")]
        payload: AnnPayload,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AnnPayload {
        body: String,
        integrated_time: i64,
        log_index: i64,
        #[serde(rename = "logID")]
        log_id: String,
    }
    let a: Ann = serde_json::from_str(text)
        .map_err(|e| Error::Verify(format!("unreadable cosign bundle annotation: {e}")))?;
    Ok(LogEntry {
        body: a.payload.body,
        integrated_time: a.payload.integrated_time,
        log_id: a.payload.log_id,
        log_index: a.payload.log_index,
        verification: super::rekor::Verification {
            signed_entry_timestamp: a.set,
            inclusion_proof: None,
        },
    })
}

/// A signature manifest with its config, ready to push (config blob first).
#[derive(Clone, Debug)]
pub struct SignatureManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// The config blob's bytes.
    pub config: Bytes,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The layers of a signature manifest.
pub fn layers(manifest: &Manifest) -> Result<Vec<Descriptor>, Error> {
    let raw: RawManifest = serde_json::from_slice(manifest.bytes())
        .map_err(|e| Error::Format(format!("unreadable signature manifest: {e}")))?;
    Ok(raw.layers)
}

/// A signature manifest holding `layers`, in order, as cosign builds it.
pub fn build(layers: &[Descriptor]) -> Result<SignatureManifest, Error> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let config = Bytes::from(
        json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor::new(OCI_CONFIG, Digest::of(&config), config.len() as u64),
        "layers": layers,
    });
    let manifest = Manifest::new(Some(OCI_MANIFEST), Bytes::from(manifest.to_string()))
        .map_err(|e| Error::Format(e.to_string()))?;
    Ok(SignatureManifest { manifest, config })
}

/// `existing`'s layers followed by those of `extra` it lacks (same digest
/// and annotations). `None` when nothing is missing: keep `existing`.
pub fn merge(existing: &[Descriptor], extra: &[Descriptor]) -> Option<Vec<Descriptor>> {
    let mut out = existing.to_vec();
    for layer in extra {
        if !out.contains(layer) {
            out.push(layer.clone());
        }
    }
    (out.len() > existing.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns() {
        let d = Digest::of(b"x");
        let p = payload("registry.k8s.io/pause", &d, &BTreeMap::new());
        assert_eq!(
            String::from_utf8(p.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"registry.k8s.io/pause"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(
            parse_payload(&p).unwrap().critical.image.digest,
            d.to_string()
        );
    }

    #[test]
    fn merge_keeps_others_layers() {
        let a = Descriptor::new(SIMPLE_SIGNING, Digest::of(b"a"), 1);
        let b = Descriptor::new(SIMPLE_SIGNING, Digest::of(b"b"), 1);
        let (one_a, one_b) = (vec![a.clone()], vec![b.clone()]);
        assert_eq!(merge(&one_a, &one_a), None);
        assert_eq!(merge(&one_a, &one_b), Some(vec![a, b]));
    }
}
