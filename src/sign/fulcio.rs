//! Fulcio: trade an identity token and a public key for a short-lived
//! signing certificate (`POST /api/v2/signingCert`, proof of possession by
//! signing the token's subject). One certificate serves a whole run; the
//! caller asks again only when it is near expiry.

use serde_json::json;

use super::Error;
use super::crypto::{Key, b64, cert_facts, pem_blocks};
use super::oidc::IdentityToken;

/// The public-good Fulcio.
pub const PUBLIC_FULCIO: &str = "https://fulcio.sigstore.dev";

/// A signing certificate and the chain above it.
#[derive(Clone, Debug)]
pub struct SigningCert {
    /// Leaf first, root last, each DER.
    pub chain: Vec<Vec<u8>>,
    /// End of validity of the leaf, seconds since the epoch.
    pub not_after: i64,
}

impl SigningCert {
    /// The leaf certificate, DER.
    pub fn leaf(&self) -> &[u8] {
        &self.chain[0]
    }
}

/// Ask Fulcio at `base_url` for a certificate binding `key` to `token`.
pub async fn request_certificate(
    client: &reqwest::Client,
    base_url: &str,
    token: &IdentityToken,
    key: &Key,
) -> Result<SigningCert, Error> {
    let url = format!("{}/api/v2/signingCert", base_url.trim_end_matches('/'));
    let body = json!({
        "credentials": {"oidcIdentityToken": token.secret()},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": key.public_pem()},
            "proofOfPossession": b64(key.sign(token.challenge().as_bytes())),
        },
    });
    let (status, text) = super::post_json(client, &url, &body).await?;
    if !status.is_success() {
        return Err(Error::Fulcio(format!(
            "{url} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    let answer: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Fulcio(format!("unreadable answer from {url}: {e}")))?;
    let certificates = [
        "signedCertificateEmbeddedSct",
        "signedCertificateDetachedSct",
    ]
    .iter()
    .find_map(|k| answer[k]["chain"]["certificates"].as_array())
    .ok_or_else(|| Error::Fulcio(format!("{url} returned no certificate chain")))?;
    let mut chain = Vec::new();
    for pem_text in certificates {
        chain.extend(pem_blocks(pem_text.as_str().unwrap_or_default())?);
    }
    if chain.is_empty() {
        return Err(Error::Fulcio(format!("{url} returned an empty chain")));
    }
    let facts = cert_facts(&chain[0])?;
    if facts.public_key != key.public_der() {
        return Err(Error::Fulcio(
            "the certificate Fulcio returned is not for our key".into(),
        ));
    }
    Ok(SigningCert {
        chain,
        not_after: facts.not_after,
    })
}
