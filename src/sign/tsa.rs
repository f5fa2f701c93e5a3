//! RFC 3161 timestamps from a Sigstore timestamp authority, for a bundle's
//! `timestampVerificationData`: the authority signs the time together with
//! SHA-256 of one signature, and every verifier checks that token against
//! the trusted root's `timestampAuthorities`. Asked in the JSON form of
//! sigstore/timestamp-authority's `POST /api/v1/timestamp` (the one its
//! clients and `@sigstore/mock` speak); the answer is the DER
//! `TimeStampResp`, which the bundle carries as it is.

use serde_json::json;
use x509_parser::der_parser;

use super::crypto::{b64, sha256};
use super::{Error, SIGSTORE_RETRY};
use crate::retry::HttpFailure;

/// The largest answer read: a token with its certificate chain is a few
/// KiB.
const MAX_RESPONSE: usize = 64 * 1024;

/// The DER `TimeStampResp` of `url` for `signature` (the raw signature
/// bytes, as the bundle's envelope or message signature holds them).
/// Retried as Fulcio and Rekor are.
///
/// # Errors
///
/// The authority unreachable, refusing, or answering anything but a
/// granted timestamp.
pub async fn timestamp(
    client: &reqwest::Client,
    url: &str,
    signature: &[u8],
) -> Result<Vec<u8>, Error> {
    // 31 bits: a JSON number every parser reads exactly (@sigstore/mock
    // reads it as a double and encodes it as an ASN.1 INTEGER).
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).map_err(|e| Error::Format(format!("nonce: {e}")))?;
    let request = json!({
        "artifactHash": b64(sha256(signature)),
        "hashAlgorithm": "sha256",
        "certificates": true,
        "nonce": u32::from_be_bytes(nonce) >> 1,
    });
    let failed = |message: String| Error::Http {
        url: url.to_owned(),
        message,
    };
    let (status, body) = match SIGSTORE_RETRY
        .send_bytes(url, || client.post(url).json(&request))
        .await
    {
        Ok(answer) => answer,
        Err(HttpFailure::Status { status, body, .. }) => return Err(refused(url, status, &body)),
        Err(failure) => return Err(failed(failure.to_string())),
    };
    if !status.is_success() {
        return Err(refused(url, status, &String::from_utf8_lossy(&body)));
    }
    if body.len() > MAX_RESPONSE {
        return Err(failed(format!(
            "the timestamp answer is {} bytes, more than {MAX_RESPONSE}",
            body.len()
        )));
    }
    match granted(&body) {
        Some(0 | 1) => Ok(body.to_vec()),
        Some(other) => Err(failed(format!(
            "the timestamp authority did not grant a timestamp (PKIStatus {other})"
        ))),
        None => Err(failed(
            "the answer is not an RFC 3161 TimeStampResp with a token".into(),
        )),
    }
}

fn refused(url: &str, status: reqwest::StatusCode, body: &str) -> Error {
    let body: String = body.chars().take(300).collect();
    Error::Http {
        url: url.to_owned(),
        message: format!("the timestamp authority answered HTTP {status}: {body}"),
    }
}

/// The `PKIStatus` of a DER `TimeStampResp` that carries a token
/// (`SEQUENCE { SEQUENCE { INTEGER status, .. }, token }`), `None` when it
/// is not one.
fn granted(der: &[u8]) -> Option<u32> {
    let (rest, resp) = der_parser::parse_der(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let parts = resp.as_sequence().ok()?;
    let status = parts.first()?.as_sequence().ok()?.first()?.as_u32().ok()?;
    (parts.len() == 2).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_response_with_a_token_is_granted() {
        // SEQUENCE { SEQUENCE { INTEGER 0 }, SEQUENCE {} }
        assert_eq!(
            granted(&[0x30, 0x07, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x00]),
            Some(0)
        );
        // Rejected (2), no token.
        assert_eq!(granted(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02]), None);
        for junk in [&b""[..], b"\x30", b"<html>", b"\x30\x00"] {
            assert_eq!(granted(junk), None);
        }
    }
}
