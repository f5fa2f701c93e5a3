//! Certificates made at test time with rcgen: a CA and a 127.0.0.1 server
//! certificate for the TLS registry, and an ES256 signing key with its
//! self-signed certificate for the token server.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};

/// A CA and a server certificate for `127.0.0.1` and `localhost`, in PEM.
pub struct TlsFiles {
    /// The CA certificate, to trust in clients.
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

/// Make a fresh CA and a loopback server certificate signed by it.
pub fn loopback_tls() -> TlsFiles {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "promoter test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    TlsFiles {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// An ES256 key for signing registry tokens, with a self-signed certificate
/// that goes both into the registry's `rootcertbundle` and the JWT's `x5c`.
pub struct TokenSigner {
    /// PKCS#8 DER of the private key.
    pub key_pkcs8_der: Vec<u8>,
    /// DER of the certificate.
    pub cert_der: Vec<u8>,
    /// PEM of the certificate.
    pub cert_pem: String,
}

/// Make a fresh token-signing key and certificate.
pub fn token_signer() -> TokenSigner {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("token key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("token params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "promoter test token issuer");
    let cert = params.self_signed(&key).expect("token certificate");
    TokenSigner {
        key_pkcs8_der: key.serialize_der(),
        cert_der: cert.der().to_vec(),
        cert_pem: cert.pem(),
    }
}
