//! Rekor v1: record a signature in the transparency log (`POST
//! /api/v1/log/entries`, kinds `hashedrekord` for legacy signatures and
//! `dsse` for bundles) and check the SignedEntryTimestamp it returns
//! against the trusted root. The entry is kept as Rekor returned it, so the
//! legacy bundle annotation and the sigstore bundle carry its exact values.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Error;
use super::crypto::{b64, sha256_hex, unb64, verify_p256};
use super::trust::TrustedRoot;

/// The public-good Rekor.
pub const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";

/// A transparency log to write to, and the API it speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// Its base URL.
    pub url: String,
    /// Rekor v2 ([`super::rekor_v2`]): bundles only, and a timestamp
    /// authority is needed; else Rekor v1 (this module).
    pub v2: bool,
}

impl Log {
    /// A Rekor v1 log.
    pub fn v1(url: impl Into<String>) -> Log {
        Log {
            url: url.into(),
            v2: false,
        }
    }
}

/// A log entry as Rekor returned it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The canonicalized entry body, base64.
    pub body: String,
    /// When the log integrated the entry, seconds since the epoch.
    pub integrated_time: i64,
    /// Hex SHA-256 of the log's public key.
    #[serde(rename = "logID")]
    pub log_id: String,
    /// Index in the log.
    pub log_index: i64,
    /// SET and inclusion proof.
    pub verification: Verification,
}

/// The `verification` object of a log entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The SignedEntryTimestamp, base64 DER ECDSA.
    pub signed_entry_timestamp: String,
    /// The inclusion proof (hex hashes), when the log gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProof>,
}

/// Rekor v1's inclusion proof: hashes in hex.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// Index of the entry in the tree the proof is for.
    pub log_index: i64,
    /// Root hash, hex.
    pub root_hash: String,
    /// Size of the tree.
    pub tree_size: i64,
    /// Audit path, hex.
    #[serde(default)]
    pub hashes: Vec<String>,
    /// The signed checkpoint note.
    #[serde(default)]
    pub checkpoint: String,
}

/// A hashedrekord entry for a signature over content with SHA-256
/// `digest_hex`, by the key in `verifier_pem` (a certificate or public key).
pub fn hashedrekord(signature: &[u8], verifier_pem: &str, digest_hex: &str) -> serde_json::Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest_hex}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(verifier_pem)}},
        },
    })
}

/// A dsse entry for `envelope` (its JSON text) signed by the certificate in
/// `verifier_pem`.
pub fn dsse(envelope: &str, verifier_pem: &str) -> serde_json::Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {"proposedContent": {"envelope": envelope, "verifiers": [b64(verifier_pem)]}},
    })
}

/// Submit `entry` to the log at `base_url`.
pub async fn upload(
    client: &reqwest::Client,
    base_url: &str,
    entry: &serde_json::Value,
) -> Result<LogEntry, Error> {
    let url = format!("{}/api/v1/log/entries", base_url.trim_end_matches('/'));
    let text = post(client, &url, entry).await?;
    let entries: std::collections::BTreeMap<String, LogEntry> = serde_json::from_str(&text)
        .map_err(|e| Error::Rekor(format!("unreadable answer from {url}: {e}")))?;
    entries
        .into_values()
        .next()
        .ok_or_else(|| Error::Rekor(format!("{url} returned no entry")))
}

/// POST `body` to the log's `url`; the answer's text, when its status is a
/// success (a Rekor error otherwise, quoting the start of the answer).
pub(super) async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<String, Error> {
    let (status, text) = super::post_json(client, url, body).await?;
    if !status.is_success() {
        return Err(Error::Rekor(format!(
            "{url} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    Ok(text)
}

impl LogEntry {
    /// The decoded body.
    pub fn body_json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&unb64(&self.body)?)
            .map_err(|e| Error::Verify(format!("unreadable log entry body: {e}")))
    }

    /// Check the SignedEntryTimestamp: the log's signature over the
    /// canonical JSON of body, integratedTime, logID and logIndex (keys in
    /// lexical order, as Rekor canonicalizes them).
    pub fn verify_set(&self, trust: &TrustedRoot) -> Result<(), Error> {
        let key = trust.tlog_key(&self.log_id).ok_or_else(|| {
            Error::Verify(format!("log {} is not in the trusted root", self.log_id))
        })?;
        let canonical = serde_json::to_string(&json!({
            "body": self.body,
            "integratedTime": self.integrated_time,
            "logID": self.log_id,
            "logIndex": self.log_index,
        }))
        .map_err(|e| Error::Format(e.to_string()))?;
        let set = unb64(&self.verification.signed_entry_timestamp)?;
        verify_p256(key, canonical.as_bytes(), &set)
            .map_err(|_| Error::Verify("the SignedEntryTimestamp does not verify".into()))
    }

    /// The log's key ID, hex.
    pub fn key_id(&self) -> &str {
        &self.log_id
    }
}

/// Hex SHA-256 of `bytes`, as hashedrekord records it.
pub fn digest_hex(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::crypto::Key;

    fn signed_entry(log: &Key, body: &str) -> LogEntry {
        let mut entry = LogEntry {
            body: b64(body),
            integrated_time: 1_795_000_000,
            log_id: sha256_hex(&log.public_der()),
            log_index: 42,
            verification: Verification {
                signed_entry_timestamp: String::new(),
                inclusion_proof: None,
            },
        };
        let canonical = format!(
            r#"{{"body":"{}","integratedTime":1795000000,"logID":"{}","logIndex":42}}"#,
            entry.body, entry.log_id
        );
        entry.verification.signed_entry_timestamp = b64(log.sign(canonical.as_bytes()));
        entry
    }

    #[test]
    fn set_checks_out_only_for_the_trusted_log_and_the_exact_entry() {
        let log = Key::generate().unwrap();
        let trust = TrustedRoot {
            tlogs: vec![(sha256_hex(&log.public_der()), log.public_der())],
            ca_certs: Vec::new(),
            verifier: None,
            expired_ca_certs: Vec::new(),
        };
        let entry = signed_entry(&log, r#"{"kind":"hashedrekord"}"#);
        entry.verify_set(&trust).unwrap();
        let mut tampered = entry.clone();
        tampered.integrated_time += 1;
        assert!(tampered.verify_set(&trust).is_err());
        let mut tampered = entry.clone();
        tampered.body = b64(r#"{"kind":"dsse"}"#);
        assert!(tampered.verify_set(&trust).is_err());
        let stranger = Key::generate().unwrap();
        let other = signed_entry(&stranger, r#"{"kind":"hashedrekord"}"#);
        assert!(other.verify_set(&trust).is_err(), "unknown log accepted");
    }
}
