//! The trusted root (sigstore's `trusted_root.json`): Rekor log keys by log
//! ID and Fulcio CA certificates, and the whole root prepared for
//! sigstore-verify (CAs, CT logs, Rekor v1 and v2 logs, timestamp
//! authorities, each with its validity window). `--trusted-root` loads one;
//! without it the public-good instance's root, embedded at build time, is
//! used. This module only reads the file; checking signatures against it is
//! the callers'.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::Error;
use super::crypto::{sha256_hex, unb64};

/// The public-good trusted root (from sigstore's TUF repository).
const PUBLIC_GOOD: &str = include_str!("public_trusted_root.json");

/// Keys and certificates to trust.
#[derive(Clone, Debug, Default)]
pub struct TrustedRoot {
    /// Rekor logs: (log ID as hex SHA-256 of the key, SPKI DER).
    pub tlogs: Vec<(String, Vec<u8>)>,
    /// Fulcio CA certificates (DER), every certificate of every chain.
    pub ca_certs: Vec<Vec<u8>>,
    /// The whole root, prepared for bundle verification; `None` for a root
    /// built by hand (tests of the log's SignedEntryTimestamp alone).
    pub verifier: Option<Prepared>,
}

/// A trusted root prepared once for sigstore-verify (its keyrings and trust
/// anchors), shared by every verification of a run.
#[derive(Clone)]
pub struct Prepared(pub Arc<sigstore_verify::Verifier>);

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared(sigstore-verify)")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    cert_chain: RawChain,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawKey>,
}

impl TrustedRoot {
    /// Parse a `trusted_root.json`.
    pub fn from_json(text: &str) -> Result<TrustedRoot, Error> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|e| Error::TrustRoot(format!("unreadable trusted root: {e}")))?;
        let full = sigstore_verify::trust_root::TrustedRoot::from_json(text)
            .map_err(|e| Error::TrustRoot(format!("unusable trusted root: {e}")))?;
        let verifier = sigstore_verify::Verifier::new(&full)
            .map_err(|e| Error::TrustRoot(format!("unusable trusted root: {e}")))?;
        let mut root = TrustedRoot {
            verifier: Some(Prepared(Arc::new(verifier))),
            ..TrustedRoot::default()
        };
        for log in raw.tlogs {
            let der = unb64(&log.public_key.raw_bytes)?;
            root.tlogs.push((sha256_hex(&der), der));
        }
        for ca in raw.certificate_authorities {
            for cert in ca.cert_chain.certificates {
                root.ca_certs.push(unb64(&cert.raw_bytes)?);
            }
        }
        Ok(root)
    }

    /// `--trusted-root FILE`, or the public-good root.
    pub fn load(path: Option<&Path>) -> Result<TrustedRoot, Error> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::TrustRoot(format!("cannot read {}: {e}", path.display()))
                })?;
                TrustedRoot::from_json(&text)
            }
            None => TrustedRoot::from_json(PUBLIC_GOOD),
        }
    }

    /// The key of the log whose ID is `log_id_hex`.
    pub fn tlog_key(&self, log_id_hex: &str) -> Option<&[u8]> {
        self.tlogs
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(log_id_hex))
            .map(|(_, der)| der.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_good_root_parses() {
        let root = TrustedRoot::load(None).unwrap();
        assert!(!root.tlogs.is_empty());
        assert!(!root.ca_certs.is_empty());
        // rekor.sigstore.dev's log ID.
        assert!(
            root.tlog_key("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
                .is_some()
        );
    }
}
