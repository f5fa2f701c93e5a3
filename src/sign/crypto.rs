//! The little cryptography signing needs: P-256 ECDSA keys (ephemeral or
//! from a PKCS#8 PEM), PEM encoding as Rekor and cosign write it (64-column
//! lines, final newline), X.509 certificate facts (SAN, Fulcio's issuer
//! extension, validity, who signed it) and the checks a signer makes of
//! what Fulcio and Rekor answer. Verifying signatures is
//! [`super::verifier`]'s.

use base64::Engine;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use sha2::Digest as _;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use super::Error;

/// Standard base64 with padding, as sigstore's JSON uses.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode standard base64.
pub fn unb64(text: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| Error::Format(format!("bad base64: {e}")))
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A P-256 signing key.
pub struct Key(SigningKey);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(P-256, private)")
    }
}

impl Key {
    /// A fresh key for one run (keyless signing).
    pub fn generate() -> Result<Key, Error> {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| Error::Key(format!("no randomness from the OS: {e}")))?;
            // Out-of-range scalars (probability ~2^-32) are simply redrawn.
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Ok(Key(key));
            }
        }
    }

    /// A P-256 key in a PKCS#8 PEM file (`openssl genpkey -algorithm EC
    /// -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Key, Error> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Key)
            .map_err(|e| Error::Key(format!("not a P-256 PKCS#8 PEM private key: {e}")))
    }

    /// ECDSA P-256 SHA-256 signature of `message`, DER-encoded.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.0.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_der(&self) -> Vec<u8> {
        self.0
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The public key as PEM.
    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.public_der())
    }
}

/// PEM with 64-column lines and a final newline, as Go's `encoding/pem`
/// (and so Rekor and cosign) writes it.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block's DER in `text`, in order.
pub fn pem_blocks(text: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        } else if line.starts_with("-----END ") {
            if let Some(body) = current.take() {
                blocks.push(unb64(&body)?);
            }
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    Ok(blocks)
}

/// Verify an ECDSA P-256 SHA-256 DER signature with a public key given as
/// SubjectPublicKeyInfo DER.
pub fn verify_p256(spki_der: &[u8], message: &[u8], signature_der: &[u8]) -> Result<(), Error> {
    let key = VerifyingKey::from_public_key_der(spki_der)
        .map_err(|e| Error::Verify(format!("not a P-256 public key: {e}")))?;
    let signature = Signature::from_der(signature_der)
        .map_err(|e| Error::Verify(format!("not a DER ECDSA signature: {e}")))?;
    key.verify(message, &signature)
        .map_err(|_| Error::Verify("the signature does not verify".into()))
}

/// Public key SPKI DER of a PEM public key (P-256, P-384 or Ed25519, as
/// sigstore-verify accepts them).
pub fn public_key_from_pem(pem_text: &str) -> Result<Vec<u8>, Error> {
    use sigstore_verify::crypto::VerificationKey;
    let key = sigstore_verify::types::DerPublicKey::from_pem(pem_text)
        .map_err(|e| Error::Key(format!("not a PEM public key: {e}")))?;
    VerificationKey::from_spki(&key)
        .map_err(|e| Error::Key(format!("not a usable public key: {e}")))?;
    Ok(key.as_bytes().to_vec())
}

/// OID of Fulcio's issuer extension (v2, DER UTF8String).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// OID of Fulcio's issuer extension (v1, raw bytes).
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// What verification needs from a certificate.
#[derive(Clone, Debug)]
pub struct CertFacts {
    /// The certificate's public key, SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    /// Subject alternative names: URIs and emails.
    pub identities: Vec<String>,
    /// Fulcio's OIDC issuer extension.
    pub issuer: Option<String>,
    /// Validity, seconds since the epoch.
    pub not_before: i64,
    /// Validity end, seconds since the epoch.
    pub not_after: i64,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::Verify(format!("not an X.509 certificate: {e}")))
}

/// Read the facts of a DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, Error> {
    let cert = parse(der)?;
    let mut identities = Vec::new();
    let mut issuer = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::URI(u) => identities.push((*u).to_owned()),
                        GeneralName::RFC822Name(e) => identities.push((*e).to_owned()),
                        _ => {}
                    }
                }
            }
            _ => {
                let oid = ext.oid.to_id_string();
                if oid == ISSUER_V2 {
                    // DER UTF8String: tag 0x0c, short or long length.
                    issuer = der_utf8(ext.value).or(issuer);
                } else if oid == ISSUER_V1 && issuer.is_none() {
                    issuer = std::str::from_utf8(ext.value).ok().map(str::to_owned);
                }
            }
        }
    }
    Ok(CertFacts {
        public_key: cert.public_key().raw.to_vec(),
        identities,
        issuer,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn der_utf8(value: &[u8]) -> Option<String> {
    let (&tag, rest) = value.split_first()?;
    if tag != 0x0c {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let body = if len < 0x80 {
        rest.get(..len as usize)?
    } else {
        let n = (len & 0x7f) as usize;
        let mut size = 0usize;
        for b in rest.get(..n)? {
            size = (size << 8) | *b as usize;
        }
        rest.get(n..n + size)?
    };
    String::from_utf8(body.to_vec()).ok()
}

/// Check that `issuer_der` signed `cert_der` (ECDSA with SHA-256 or SHA-384
/// by a P-256 or P-384 key) and that the names chain.
pub fn verify_issued_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<(), Error> {
    let cert = parse(cert_der)?;
    let issuer = parse(issuer_der)?;
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(Error::Verify("issuer name does not match".into()));
    }
    let tbs = cert.tbs_certificate.as_ref();
    let prehash = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.10045.4.3.2" => sha2::Sha256::digest(tbs).to_vec(),
        "1.2.840.10045.4.3.3" => sha2::Sha384::digest(tbs).to_vec(),
        other => {
            return Err(Error::Verify(format!(
                "unsupported certificate signature algorithm {other}"
            )));
        }
    };
    // Fulcio's public-good intermediate and root are P-384; test CAs P-256.
    let spki = issuer.public_key().raw;
    let signature = cert.signature_value.data.as_ref();
    let ok = if let Ok(key) = VerifyingKey::from_public_key_der(spki) {
        Signature::from_der(signature).is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok())
    } else if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) {
        p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&prehash, &sig).is_ok())
    } else {
        return Err(Error::Verify(
            "the CA key is neither P-256 nor P-384".into(),
        ));
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Verify(
            "the certificate's signature does not verify".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_pem_round_trip() {
        let key = Key::generate().unwrap();
        let sig = key.sign(b"hello");
        verify_p256(&key.public_der(), b"hello", &sig).unwrap();
        assert!(verify_p256(&key.public_der(), b"hellO", &sig).is_err());
        let pem_text = key.public_pem();
        assert!(pem_text.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(pem_text.lines().all(|l| l.len() <= 64));
        assert_eq!(pem_blocks(&pem_text).unwrap(), vec![key.public_der()]);
        assert_eq!(public_key_from_pem(&pem_text).unwrap(), key.public_der());
    }

    #[test]
    fn utf8_extension() {
        assert_eq!(der_utf8(b"\x0c\x03abc").as_deref(), Some("abc"));
        assert_eq!(der_utf8(b"\x04\x03abc"), None);
    }
}

#[cfg(test)]
mod public_good {
    use super::*;
    use crate::sign::trust::TrustedRoot;

    #[test]
    fn public_fulcio_chain_verifies_with_p384() {
        let root = TrustedRoot::load(None).unwrap();
        // Some chain of the public-good root: intermediate then root (P-384).
        let checked = root
            .ca_certs
            .windows(2)
            .filter(|pair| verify_issued_by(&pair[0], &pair[1]).is_ok())
            .count();
        assert!(
            checked > 0,
            "no P-384 intermediate verified against its root"
        );
    }
}
