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
    /// Fulcio CA certificates of the root that have expired, as
    /// `subject (expired <time>)`: their CA is no longer trusted to issue
    /// (see [`narrow_to_certificates`]); a chain failure names them.
    pub expired_ca_certs: Vec<String>,
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
        let mut full = sigstore_verify::trust_root::TrustedRoot::from_json(text)
            .map_err(|e| Error::TrustRoot(format!("unusable trusted root: {e}")))?;
        let expired_ca_certs = narrow_to_certificates(&mut full)?;
        let verifier = sigstore_verify::Verifier::new(&full)
            .map_err(|e| Error::TrustRoot(format!("unusable trusted root: {e}")))?;
        let mut root = TrustedRoot {
            verifier: Some(Prepared(Arc::new(verifier))),
            expired_ca_certs,
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

/// The validity of one CA certificate.
struct Validity {
    subject: String,
    not_before: jiff::Timestamp,
    not_after: jiff::Timestamp,
}

fn validity_of(der: &[u8]) -> Result<Validity, Error> {
    let unusable = |why: String| Error::TrustRoot(format!("unusable trusted root: {why}"));
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| unusable(format!("a CA certificate is not DER X.509: {e}")))?;
    let time = |t: x509_parser::time::ASN1Time| {
        jiff::Timestamp::from_second(t.timestamp())
            .map_err(|e| unusable(format!("CA certificate {}: {e}", cert.subject())))
    };
    Ok(Validity {
        subject: cert.subject().to_string(),
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
    })
}

/// sigstore-verify makes every certificate of a Fulcio CA's chain a trust
/// anchor, and, as webpki does for anchors, checks none of their own
/// dates: an intermediate that has expired would still issue. A CA is
/// trusted only while every certificate of its chain is valid (as clients
/// that build the path with OpenSSL, such as sigstore-python, require), so
/// each CA's `validFor` is narrowed to its certificates' validity; a CA
/// whose certificates are never valid together is dropped. Returns the CA
/// certificates that have expired by now.
fn narrow_to_certificates(
    root: &mut sigstore_verify::trust_root::TrustedRoot,
) -> Result<Vec<String>, Error> {
    let now = jiff::Timestamp::now();
    let mut expired = Vec::new();
    let mut kept = Vec::new();
    for mut ca in std::mem::take(&mut root.certificate_authorities) {
        let mut window = ca.valid_for;
        for cert in &ca.cert_chain.certificates {
            let v = validity_of(cert.raw_bytes.as_bytes())?;
            if v.not_after < now {
                expired.push(format!("{} (expired {})", v.subject, v.not_after));
            }
            let start = window.map_or(v.not_before, |w| w.start.max(v.not_before));
            let end = window
                .and_then(|w| w.end)
                .map_or(v.not_after, |end| end.min(v.not_after));
            window = Some(sigstore_verify::types::TimeRange::new(start, Some(end)));
        }
        ca.valid_for = window;
        if window.is_none_or(|w| w.end.is_none_or(|end| w.start <= end)) {
            kept.push(ca);
        }
    }
    root.certificate_authorities = kept;
    Ok(expired)
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

    /// A self-signed CA certificate valid from `from` to `to` (years).
    fn ca(from: i32, to: i32) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn authority(chain: &[Vec<u8>], start: &str) -> sigstore_verify::trust_root::TrustedRoot {
        let certs: Vec<_> = chain
            .iter()
            .map(|der| serde_json::json!({ "rawBytes": super::super::crypto::b64(der) }))
            .collect();
        let json = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "certificateAuthorities": [{
                "subject": {}, "uri": "https://ca",
                "certChain": { "certificates": certs },
                "validFor": { "start": start },
            }],
        });
        sigstore_verify::trust_root::TrustedRoot::from_json(&json.to_string()).unwrap()
    }

    #[test]
    fn a_ca_is_trusted_only_while_its_certificates_are_valid() {
        let mut root = authority(&[ca(2021, 2024), ca(2020, 2040)], "2019-01-01T00:00:00Z");
        let expired = narrow_to_certificates(&mut root).unwrap();
        let window = root.certificate_authorities[0].valid_for.unwrap();
        assert_eq!(window.start.to_string(), "2021-01-01T00:00:00Z");
        assert_eq!(window.end.unwrap().to_string(), "2024-01-01T00:00:00Z");
        assert_eq!(expired.len(), 1, "{expired:?}");
        assert!(
            expired[0].contains("expired 2024-01-01T00:00:00Z"),
            "{expired:?}"
        );
        // Certificates never valid together: the CA is dropped.
        let mut root = authority(&[ca(2020, 2021), ca(2022, 2040)], "2019-01-01T00:00:00Z");
        narrow_to_certificates(&mut root).unwrap();
        assert!(root.certificate_authorities.is_empty());
    }
}
