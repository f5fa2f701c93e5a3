//! Rekor v2 (the tile-based log, rekor-tiles): record a DSSE signature as a
//! `hashedrekord` v0.0.2 entry (`POST /api/v2/log/entries`).
//!
//! Rekor v2 defines only `hashedrekord`: a DSSE bundle's entry records the
//! SHA-256 of the envelope's pre-authentication encoding and the envelope's
//! signature, as Sigstore's clients write it (the conformance suite's
//! `rekor2-dsse-happy-path`). The request is sigstore-rekor's
//! `HashedRekordV2`; the answer is protobuf-specs' `TransparencyLogEntry`,
//! kept as the log returned it for the bundle. A v2 entry has no
//! SignedEntryTimestamp and no integrated time: what makes it count is its
//! inclusion proof and signed checkpoint, with the signing time from an
//! RFC 3161 timestamp, so the caller verifies the finished bundle (the
//! verifier's whole path) before writing it.

use sigstore_verify::rekor::{HashedRekordV2, RekorV2KeyDetails};
use sigstore_verify::types::bundle::{KindVersion, TransparencyLogEntry};
use sigstore_verify::types::{DerCertificate, Sha256Hash, SignatureBytes};

use super::Error;
use super::crypto::sha256;
use super::trust::TrustedRoot;

/// The entry request for `signature` over the DSSE pre-authentication
/// encoding `pae`, by the certificate `cert_der` (a P-256 key).
pub fn request(pae: &[u8], signature: &[u8], cert_der: &[u8]) -> serde_json::Value {
    let entry = HashedRekordV2::new_with_certificate(
        &Sha256Hash::new(sha256(pae)),
        &SignatureBytes::new(signature.to_vec()),
        &DerCertificate::new(cert_der.to_vec()),
        RekorV2KeyDetails::PkixEcdsaP256Sha256,
    );
    serde_json::to_value(entry).unwrap_or_default()
}

/// Submit `request` to the v2 log at `base_url`; returns the log's
/// `TransparencyLogEntry` JSON, once it is a `hashedrekord` v0.0.2 entry of
/// a log in `trust`, with an inclusion proof.
pub async fn upload(
    client: &reqwest::Client,
    base_url: &str,
    request: &serde_json::Value,
    trust: &TrustedRoot,
) -> Result<serde_json::Value, Error> {
    let url = format!("{}/api/v2/log/entries", base_url.trim_end_matches('/'));
    let text = super::rekor::post(client, &url, request).await?;
    let unreadable = |e: String| Error::Rekor(format!("unreadable answer from {url}: {e}"));
    let raw: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let entry: TransparencyLogEntry =
        serde_json::from_value(raw.clone()).map_err(|e| unreadable(e.to_string()))?;
    check(&entry, trust).map_err(|why| Error::Rekor(format!("{url}: {why}")))?;
    Ok(raw)
}

/// What the signer needs of a v2 answer before it builds a bundle with it.
fn check(entry: &TransparencyLogEntry, trust: &TrustedRoot) -> Result<(), String> {
    if entry.kind_version != KindVersion::HashedRekordV002 {
        return Err(format!(
            "the entry is {}/{}, not hashedrekord/0.0.2",
            entry.kind_version.kind(),
            entry.kind_version.version()
        ));
    }
    let log_id = hex::encode(entry.log_id.key_id.as_bytes());
    if trust.tlog_key(&log_id).is_none() {
        return Err(format!(
            "log {log_id} is not in the trusted root (--trusted-root)"
        ));
    }
    if entry.inclusion_proof.is_none() {
        return Err("the log returned no inclusion proof".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::crypto::b64;

    #[test]
    fn the_request_records_the_pae_digest_the_signature_and_the_certificate() {
        let r = request(b"DSSEv1 1 t 1 p", &[1, 2, 3], &[9, 9]);
        let h = &r["hashedRekordRequestV002"];
        assert_eq!(h["digest"], b64(sha256(b"DSSEv1 1 t 1 p")));
        assert_eq!(h["signature"]["content"], b64([1, 2, 3]));
        let verifier = &h["signature"]["verifier"];
        assert_eq!(verifier["keyDetails"], "PKIX_ECDSA_P256_SHA_256");
        assert_eq!(verifier["x509Certificate"]["rawBytes"], b64([9, 9]));
    }

    fn entry(kind: &str, version: &str, key_id: &[u8], proof: bool) -> TransparencyLogEntry {
        let mut e = serde_json::json!({
            "logIndex": "0",
            "logId": {"keyId": b64(key_id)},
            "kindVersion": {"kind": kind, "version": version},
            "canonicalizedBody": b64("{}"),
        });
        if proof {
            e["inclusionProof"] = serde_json::json!({
                "logIndex": "0", "rootHash": b64([0u8; 32]), "treeSize": "1", "hashes": [],
                "checkpoint": {"envelope": format!("origin\n1\n{}\n\n\u{2014} origin {}\n", b64([0u8; 32]), b64([1u8; 68]))},
            });
        }
        serde_json::from_value(e).unwrap()
    }

    #[test]
    fn only_a_proven_v2_entry_of_a_trusted_log_is_taken() {
        let id = [7u8; 32];
        let trust = TrustedRoot {
            tlogs: vec![(hex::encode(id), vec![1])],
            ca_certs: Vec::new(),
            verifier: None,
            expired_ca_certs: Vec::new(),
        };
        check(&entry("hashedrekord", "0.0.2", &id, true), &trust).unwrap();
        let why = check(&entry("hashedrekord", "0.0.1", &id, true), &trust).unwrap_err();
        assert!(why.contains("not hashedrekord/0.0.2"), "{why}");
        let why = check(&entry("hashedrekord", "0.0.2", &[8u8; 32], true), &trust).unwrap_err();
        assert!(why.contains("not in the trusted root"), "{why}");
        let why = check(&entry("hashedrekord", "0.0.2", &id, false), &trust).unwrap_err();
        assert!(why.contains("no inclusion proof"), "{why}");
    }
}
