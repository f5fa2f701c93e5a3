//! Tampered certificates the conformance assets do not cover (issue 17): a
//! leaf whose intermediate CA had expired, a CA certificate presented as the
//! leaf, and leaves without the codeSigning EKU. Each case is a complete
//! Sigstore world made here with rcgen: a Fulcio root and intermediate, a CT
//! log that signs the leaf's embedded SCT, a Rekor log that signs the
//! entry's SET, and a v0.1 message-signature bundle over an artifact. Only
//! the one certificate property under test differs from the untampered
//! twin, which `promoter verify-bundle` must accept (exit 0); every tampered
//! case must be refused (exit 1) at the chain check, with its reason.
//! sigstore-python, an independent verifier, must agree on every case.

#[path = "support/sigstore/mod.rs"]
mod sigstore;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
    SigningKey,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

const IDENTITY: &str =
    "https://github.com/example/promotions/.github/workflows/promote.yml@refs/heads/main";
const OIDC_ISSUER: &str = "https://token.actions.githubusercontent.com";
const ARTIFACT: &[u8] = b"promoter: tampered certificate cases\n";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

fn rfc3339(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// DER length octets.
fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=127 => vec![len as u8],
        128..=255 => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend(content);
    out
}

/// What differs between the cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    /// The untampered twin.
    None,
    /// The intermediate CA's own certificate expired before the signing.
    ExpiredIntermediate,
    /// As above, with the intermediate carried in the bundle's chain and
    /// only the root in the trusted root.
    ExpiredIntermediateInBundle,
    /// The signing certificate is a CA certificate (basicConstraints CA).
    CaAsLeaf,
    /// The leaf's EKU is serverAuth only.
    ServerAuthEku,
    /// The leaf has no EKU extension at all.
    NoEku,
}

/// The CA and log keys of one world.
struct World {
    now: OffsetDateTime,
    root_der: Vec<u8>,
    inter_key: KeyPair,
    inter_params: CertificateParams,
    inter_der: Vec<u8>,
    ct_key: KeyPair,
    rekor_key: KeyPair,
}

fn ca_params(name: &str, from: OffsetDateTime, to: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "promoter test");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = from;
    params.not_after = to;
    params
}

impl World {
    fn new(tamper: Tamper) -> World {
        let now = OffsetDateTime::now_utc();
        let root_key = key();
        let root_params = ca_params(
            "test fulcio root",
            now - Duration::days(90),
            now + Duration::days(3650),
        );
        let root_der = root_params
            .self_signed(&root_key)
            .expect("root certificate")
            .der()
            .to_vec();
        let inter_end = match tamper {
            Tamper::ExpiredIntermediate | Tamper::ExpiredIntermediateInBundle => {
                now - Duration::days(1)
            }
            _ => now + Duration::days(365),
        };
        let inter_key = key();
        let mut inter_params = ca_params(
            "test fulcio intermediate",
            now - Duration::days(60),
            inter_end,
        );
        inter_params.use_authority_key_identifier_extension = true;
        let inter_der = inter_params
            .signed_by(&inter_key, &Issuer::from_params(&root_params, &root_key))
            .expect("intermediate certificate")
            .der()
            .to_vec();
        World {
            now,
            root_der,
            inter_key,
            inter_params,
            inter_der,
            ct_key: key(),
            rekor_key: key(),
        }
    }

    /// The signing certificate's parameters (without its SCT).
    fn leaf_params(&self, tamper: Tamper) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.subject_alt_names = vec![SanType::URI(IDENTITY.try_into().expect("URI SAN"))];
        params.serial_number = Some(SerialNumber::from(0x5157_u64));
        params.use_authority_key_identifier_extension = true;
        params.not_before = self.now - Duration::minutes(1);
        params.not_after = self.now + Duration::minutes(10);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        match tamper {
            Tamper::CaAsLeaf => {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages.push(KeyUsagePurpose::KeyCertSign);
            }
            Tamper::ServerAuthEku => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Tamper::NoEku => params.extended_key_usages.clear(),
            _ => {}
        }
        // Fulcio's OIDC issuer extensions: the legacy one (.1.1, raw bytes),
        // which sigstore-python reads, and the current one (.1.8,
        // UTF8String).
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                OIDC_ISSUER.as_bytes().to_vec(),
            ));
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
                der(0x0c, OIDC_ISSUER.as_bytes()),
            ));
        params
    }

    /// The leaf, with an SCT from the test CT log over its precertificate
    /// (RFC 6962 §3.2: the TBS without the SCT list extension).
    fn leaf(&self, params: &CertificateParams, leaf_key: &KeyPair) -> Vec<u8> {
        let issuer = Issuer::from_params(&self.inter_params, &self.inter_key);
        let precert = params.signed_by(leaf_key, &issuer).expect("precertificate");
        let (_, parsed) = x509_parser::parse_x509_certificate(precert.der()).expect("parse");
        let tbs = parsed.tbs_certificate.as_ref();
        let timestamp = (self.now.unix_timestamp() as u64 - 5) * 1000;
        let mut signed = vec![0u8, 0u8];
        signed.extend(timestamp.to_be_bytes());
        signed.extend([0, 1]);
        signed.extend(sha256(&self.inter_key.subject_public_key_info()));
        signed.extend(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend(tbs);
        signed.extend([0, 0]);
        let signature = self.ct_key.sign(&signed).expect("SCT signature");
        let mut sct = vec![0u8];
        sct.extend(sha256(&self.ct_key.subject_public_key_info()));
        sct.extend(timestamp.to_be_bytes());
        sct.extend([0, 0, 4, 3]);
        sct.extend((signature.len() as u16).to_be_bytes());
        sct.extend(signature);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
        let mut params = params.clone();
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                der(0x04, &list),
            ));
        params
            .signed_by(leaf_key, &issuer)
            .expect("leaf certificate")
            .der()
            .to_vec()
    }

    fn log_entry(&self, leaf_der: &[u8], signature: &[u8]) -> serde_json::Value {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(leaf_der)
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha256(ARTIFACT))}},
                "signature": {"content": b64(signature), "publicKey": {"content": b64(pem.as_bytes())}},
            },
        });
        // serde_json's maps are sorted: this is the canonical form.
        let body = serde_json::to_vec(&body).unwrap();
        let log_id = sha256(&self.rekor_key.subject_public_key_info());
        let integrated = self.now.unix_timestamp() - 10;
        let promise = json!({
            "body": b64(&body),
            "integratedTime": integrated,
            "logID": hex::encode(log_id),
            "logIndex": 7,
        });
        let set = self
            .rekor_key
            .sign(&serde_json::to_vec(&promise).unwrap())
            .expect("SET");
        json!({
            "logIndex": "7",
            "logId": {"keyId": b64(&log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": integrated.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": b64(&set)},
            "inclusionProof": self.inclusion_proof(&body, &log_id),
            "canonicalizedBody": b64(&body),
        })
    }

    /// The entry as the only leaf of a tree of one (RFC 6962 leaf hash =
    /// root), with a checkpoint (a signed note) by the log's key, whose
    /// signature line starts with the log ID's first four bytes.
    fn inclusion_proof(&self, body: &[u8], log_id: &[u8; 32]) -> serde_json::Value {
        let mut leaf = vec![0u8];
        leaf.extend(body);
        let root = sha256(&leaf);
        let origin = "promoter.test/log";
        let note = format!("{origin}\n1\n{}\n", b64(&root));
        let mut signature = log_id[..4].to_vec();
        signature.extend(self.rekor_key.sign(note.as_bytes()).expect("checkpoint"));
        json!({
            "logIndex": "0",
            "rootHash": b64(&root),
            "treeSize": "1",
            "hashes": [],
            "checkpoint": {"envelope": format!("{note}\n\u{2014} {origin} {}\n", b64(&signature))},
        })
    }

    /// A v0.1 message-signature bundle over [`ARTIFACT`].
    fn bundle(&self, tamper: Tamper) -> serde_json::Value {
        let (leaf_der, signature) = if tamper == Tamper::CaAsLeaf {
            // A CA certificate, issued by the intermediate, that signs.
            let ca_key = key();
            let leaf = self.leaf(&self.leaf_params(tamper), &ca_key);
            (leaf, ca_key.sign(ARTIFACT).unwrap())
        } else {
            let leaf_key = key();
            let leaf = self.leaf(&self.leaf_params(tamper), &leaf_key);
            (leaf, leaf_key.sign(ARTIFACT).unwrap())
        };
        let mut chain = vec![json!({"rawBytes": b64(&leaf_der)})];
        if tamper == Tamper::ExpiredIntermediateInBundle {
            chain.push(json!({"rawBytes": b64(&self.inter_der)}));
        }
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
            "verificationMaterial": {
                "x509CertificateChain": {"certificates": chain},
                "tlogEntries": [self.log_entry(&leaf_der, &signature)],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&sha256(ARTIFACT))},
                "signature": b64(&signature),
            },
        })
    }

    fn log(&self, key: &KeyPair) -> serde_json::Value {
        json!({
            "baseUrl": "http://127.0.0.1:1",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(&key.subject_public_key_info()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": rfc3339(self.now - Duration::days(30))},
            },
            "logId": {"keyId": b64(&sha256(&key.subject_public_key_info()))},
        })
    }

    fn trusted_root(&self, tamper: Tamper) -> serde_json::Value {
        let mut chain = vec![json!({"rawBytes": b64(&self.root_der)})];
        if tamper != Tamper::ExpiredIntermediateInBundle {
            chain.insert(0, json!({"rawBytes": b64(&self.inter_der)}));
        }
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [self.log(&self.rekor_key)],
            "certificateAuthorities": [{
                "subject": {"organization": "promoter test", "commonName": "test fulcio"},
                "uri": "http://127.0.0.1:1",
                "certChain": {"certificates": chain},
                "validFor": {"start": rfc3339(self.now - Duration::days(90))},
            }],
            "ctlogs": [self.log(&self.ct_key)],
            "timestampAuthorities": [],
        })
    }
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// Make the case's files and run `promoter verify-bundle` on them, and
/// sigstore-python (an independent verifier) too.
fn verify_bundle(tamper: Tamper) -> (Output, Output) {
    let world = World::new(tamper);
    let dir = tempfile::tempdir().unwrap();
    let root = world.trusted_root(tamper);
    write_json(
        &dir.path().join("bundle.sigstore.json"),
        &world.bundle(tamper),
    );
    write_json(&dir.path().join("trusted_root.json"), &root);
    write_json(&dir.path().join("trust_config.json"), &trust_config(root));
    std::fs::write(dir.path().join("artifact"), ARTIFACT).unwrap();
    let ours = Command::new(env!("CARGO_BIN_EXE_promoter"))
        .args(["verify-bundle", "--bundle", "bundle.sigstore.json"])
        .args(["--certificate-identity", IDENTITY])
        .args(["--certificate-oidc-issuer", OIDC_ISSUER])
        .args(["--trusted-root", "trusted_root.json", "artifact"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let python = Command::new(sigstore::sigstore_python())
        .args(["--trust-config", "trust_config.json"])
        .args([
            "verify",
            "identity",
            "--offline",
            "--bundle",
            "bundle.sigstore.json",
        ])
        .args([
            "--cert-identity",
            IDENTITY,
            "--cert-oidc-issuer",
            OIDC_ISSUER,
            "artifact",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    (ours, python)
}

/// sigstore-python's `--trust-config`: the trusted root and a signing
/// config it needs to read (nothing is signed).
fn trust_config(trusted_root: serde_json::Value) -> serde_json::Value {
    let nowhere = json!([{
        "url": "http://127.0.0.1:1", "majorApiVersion": 1,
        "validFor": {"start": "2020-01-01T00:00:00Z"}, "operator": "test",
    }]);
    json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": trusted_root,
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": nowhere, "oidcUrls": nowhere, "rekorTlogUrls": nowhere, "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"},
        },
    })
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_untampered_twin_verifies() {
    let (out, python) = verify_bundle(Tamper::None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        python.status.success(),
        "sigstore-python: {}",
        text(&python)
    );
    assert!(
        text(&out).contains(&format!("signed by {IDENTITY}")),
        "{}",
        text(&out)
    );
}

#[test]
fn tampered_certificates_are_refused_at_the_chain_check() {
    let mut wrong = Vec::new();
    for (tamper, reason) in [
        (
            Tamper::ExpiredIntermediate,
            "these CA certificates of the trusted root have expired: CN=test fulcio intermediate",
        ),
        (
            Tamper::ExpiredIntermediateInBundle,
            "a certificate of the chain had expired at the signing time",
        ),
        (
            Tamper::CaAsLeaf,
            "the signing certificate is a CA certificate",
        ),
        (
            Tamper::ServerAuthEku,
            "the signing certificate lacks the codeSigning extended key usage",
        ),
        (
            Tamper::NoEku,
            "the signing certificate lacks the codeSigning extended key usage",
        ),
    ] {
        let (out, python) = verify_bundle(tamper);
        if python.status.success() {
            wrong.push(format!("{tamper:?}: sigstore-python accepts it"));
        }
        let all = text(&out);
        let ok = out.status.code() == Some(1)
            && all.contains("does not verify for artifact")
            && all.contains("[chain check]")
            && all.contains(reason);
        if !ok {
            wrong.push(format!("{tamper:?} (want {reason:?}): {all}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
