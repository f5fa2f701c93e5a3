//! The one verifier: does a Sigstore bundle (v0.1, v0.2 or v0.3; message
//! signature or DSSE envelope) verify for an artifact, under a policy, against
//! a trusted root? Every trust decision of the promoter goes through
//! [`verify`]: `verify-bundle`, `verify`, `verify --attestations` and the
//! staging signature and provenance checks.
//!
//! The checks themselves (certificate path to a Fulcio root within the
//! validity windows, SCTs, Rekor v1 and v2 entries with inclusion proofs,
//! checkpoints and SETs, RFC 3161 timestamps, the signature) are
//! sigstore-verify's; this module chooses its policy, matches identity and
//! issuer (exactly or by regular expression, as cosign's
//! `--certificate-identity[-regexp]`), and names the check that failed.

use regex::Regex;
use sigstore_verify::crypto::VerificationKey;
use sigstore_verify::types::{
    Bundle, DerPublicKey, Sha256Hash, SignatureContent, VerificationMaterialContent,
};
use sigstore_verify::{
    CertificateError, Error as SvError, PublicKeyVerificationPolicy, TimestampError,
    TransparencyLogError, VerificationPolicy,
};

use super::Error;
use super::trust::TrustedRoot;

/// How a value must match: exactly, by a regular expression (anchored, as
/// cosign's `--certificate-identity-regexp` is used in practice), or any.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// Equal.
    Exact(String),
    /// The whole value matches.
    Regex(Regex),
    /// Not given: enough for key-signed images; a keyless signature is
    /// refused.
    KeyOnly,
    /// Any identity, deliberately: a keyless signature still needs a
    /// certificate from a trusted CA and a valid log entry (used for
    /// staging provenance when no identity policy is given).
    AnyIdentity,
}

impl Matcher {
    /// From the exact and regexp flags; the exact one wins.
    pub fn new(exact: Option<&str>, regexp: Option<&str>) -> Result<Matcher, Error> {
        Ok(match (exact, regexp) {
            (Some(e), _) => Matcher::Exact(e.to_owned()),
            (None, Some(r)) => Matcher::Regex(
                Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| Error::Format(format!("bad regular expression `{r}`: {e}")))?,
            ),
            (None, None) => Matcher::KeyOnly,
        })
    }

    /// Whether `value` is accepted.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == value,
            Matcher::Regex(r) => r.is_match(value),
            Matcher::KeyOnly | Matcher::AnyIdentity => true,
        }
    }
}

/// What a valid signature must show.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The certificate's SAN (workflow URI or email).
    pub identity: Matcher,
    /// The certificate's OIDC issuer extension.
    pub issuer: Matcher,
    /// For key-signed images: the public key (SPKI DER).
    pub public_key: Option<Vec<u8>>,
}

/// The check that failed, as the Sigstore client specification names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The bundle cannot be read, or is not a bundle this verifier accepts.
    Bundle,
    /// The trusted root cannot be used.
    TrustRoot,
    /// The certificate path to a trusted Fulcio root, its validity at the
    /// signing time, and the Sigstore X.509 profile (CA flags, key usage,
    /// code-signing EKU).
    Chain,
    /// The certificate's signed certificate timestamp against the CT logs.
    Sct,
    /// A transparency log entry: known log, inclusion proof, SET, integrated
    /// time, and that the entry describes this signature.
    Tlog,
    /// The signed checkpoint of an inclusion proof.
    Checkpoint,
    /// An RFC 3161 timestamp, or no verified signing time at all.
    Timestamp,
    /// The signer's identity or issuer against the policy.
    Identity,
    /// The signature over the artifact or DSSE envelope.
    Signature,
    /// The bundle signs something else (digest or in-toto subject).
    Artifact,
}

impl Check {
    /// The check's short name, as `verify-bundle` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Check::Bundle => "bundle",
            Check::TrustRoot => "trusted root",
            Check::Chain => "chain",
            Check::Sct => "SCT",
            Check::Tlog => "tlog",
            Check::Checkpoint => "checkpoint",
            Check::Timestamp => "timestamp",
            Check::Identity => "identity",
            Check::Signature => "signature",
            Check::Artifact => "artifact",
        }
    }

    fn headline(self) -> &'static str {
        match self {
            Check::Bundle => "the bundle is unreadable or unsupported",
            Check::TrustRoot => "the trusted root is unusable",
            Check::Chain => "the certificate does not chain to a trusted Fulcio CA",
            Check::Sct => "the certificate's SCT does not verify",
            Check::Tlog => "the transparency log entry does not verify",
            Check::Checkpoint => "the log checkpoint does not verify",
            Check::Timestamp => "the signing time is not established",
            Check::Identity => "the signer does not match",
            Check::Signature => "the signature does not verify",
            Check::Artifact => "the bundle does not sign this artifact",
        }
    }
}

/// A bundle that does not verify: which check, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The check that failed.
    pub check: Check,
    /// What it found.
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{} check]: {}",
            self.check.headline(),
            self.check.name(),
            self.detail
        )
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error::Verify(f.to_string())
    }
}

fn fail(check: Check, detail: impl Into<String>) -> Failure {
    Failure {
        check,
        detail: detail.into(),
    }
}

/// What was signed: the artifact's bytes, or only its SHA-256 (for a DSSE
/// bundle, the digest of an in-toto subject).
#[derive(Clone, Copy, Debug)]
pub enum Artifact<'a> {
    /// The whole artifact.
    Bytes(&'a [u8]),
    /// Its SHA-256.
    Sha256([u8; 32]),
}

/// How strict to be where the promoter and the Sigstore clients differ.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Accept a key-signed bundle with no log entry and no timestamp (the
    /// promoter's air-gapped `--signing-key` mode signs so); the signature is
    /// then all there is to check.
    pub allow_unlogged_key: bool,
}

/// What a verified bundle says.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    /// The certificate's SAN, when keyless.
    pub identity: Option<String>,
    /// The certificate's OIDC issuer, when keyless.
    pub issuer: Option<String>,
    /// The DSSE payload (an in-toto statement), for a DSSE bundle.
    pub payload: Option<Vec<u8>>,
}

/// Verify `bundle_json` for `artifact` under `policy` against `trust`.
pub fn verify(
    bundle_json: &[u8],
    artifact: Artifact<'_>,
    policy: &Policy,
    trust: &TrustedRoot,
    options: Options,
) -> Result<Verified, Failure> {
    let verifier = trust
        .verifier
        .as_ref()
        .ok_or_else(|| fail(Check::TrustRoot, "no trusted root was loaded"))?;
    let text = std::str::from_utf8(bundle_json)
        .map_err(|_| fail(Check::Bundle, "the bundle is not UTF-8 JSON"))?;
    let bundle = Bundle::from_json(text).map_err(|e| fail(Check::Bundle, e.to_string()))?;
    let payload = match &bundle.content {
        SignatureContent::DsseEnvelope(env) => Some(env.payload.as_bytes().to_vec()),
        _ => None,
    };
    let input: sigstore_verify::types::Artifact<'_> = match artifact {
        Artifact::Bytes(bytes) => bytes.into(),
        Artifact::Sha256(digest) => Sha256Hash::new(digest).into(),
    };
    let keyed = matches!(
        bundle.verification_material.content,
        VerificationMaterialContent::PublicKey(_)
    );
    let result = if keyed {
        let key = policy.public_key.as_ref().ok_or_else(|| {
            fail(
                Check::Identity,
                "the bundle is signed with a key, and no key was given",
            )
        })?;
        let key = DerPublicKey::new(key.clone());
        if options.allow_unlogged_key && unlogged(&bundle) {
            verify_unlogged(&bundle, artifact, &key)?;
            return Ok(Verified {
                payload,
                ..Verified::default()
            });
        }
        verifier
            .0
            .verify(input, &bundle, &PublicKeyVerificationPolicy::new(key))
    } else {
        if matches!(policy.identity, Matcher::KeyOnly) || matches!(policy.issuer, Matcher::KeyOnly)
        {
            return Err(fail(
                Check::Identity,
                "keyless signature, and no certificate identity and issuer to match",
            ));
        }
        verifier
            .0
            .verify(input, &bundle, &VerificationPolicy::any_identity())
    };
    let result = result.map_err(|e| name_expired_cas(classify(e), trust))?;
    let identity = result.identity().map(|san| san.as_str().to_owned());
    let issuer = result.issuer().map(str::to_owned);
    if !keyed {
        check_signer(policy, identity.as_deref(), issuer.as_deref())?;
    }
    Ok(Verified {
        identity,
        issuer,
        payload,
    })
}

/// No log entry and no timestamp: nothing but the signature to check.
fn unlogged(bundle: &Bundle) -> bool {
    let material = &bundle.verification_material;
    material.tlog_entries.is_empty()
        && material
            .timestamp_verification_data
            .rfc3161_timestamps
            .is_empty()
}

/// The signature of a key-signed bundle with no log evidence (which
/// sigstore-verify refuses to read): the key's signature over the artifact,
/// or over the DSSE envelope whose in-toto statement names the artifact.
fn verify_unlogged(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    key: &DerPublicKey,
) -> Result<(), Failure> {
    let key = VerificationKey::from_spki(key)
        .map_err(|e| fail(Check::Signature, format!("the key is unusable: {e}")))?;
    let checked = match (&bundle.content, artifact) {
        (SignatureContent::DsseEnvelope(env), artifact) => {
            names_subject(env.payload.as_bytes(), artifact)?;
            key.verify(env.pae(), &env.signature.sig)
        }
        (SignatureContent::MessageSignature(m), Artifact::Bytes(bytes)) => {
            key.verify(bytes, &m.signature)
        }
        (SignatureContent::MessageSignature(m), Artifact::Sha256(digest)) => {
            key.verify_prehashed(&digest, &m.signature)
        }
        _ => return Err(fail(Check::Bundle, "neither a message signature nor DSSE")),
    };
    checked.map_err(|e| fail(Check::Signature, e.to_string()))
}

/// An in-toto statement names `artifact` (by SHA-256) among its subjects.
fn names_subject(statement: &[u8], artifact: Artifact<'_>) -> Result<(), Failure> {
    let digest = match artifact {
        Artifact::Sha256(d) => d,
        Artifact::Bytes(b) => <sha2::Sha256 as sha2::Digest>::digest(b).into(),
    };
    let value: serde_json::Value = serde_json::from_slice(statement)
        .map_err(|e| fail(Check::Bundle, format!("unreadable in-toto statement: {e}")))?;
    let want = hex::encode(digest);
    let named = value["subject"].as_array().is_some_and(|subjects| {
        subjects
            .iter()
            .any(|s| s["digest"]["sha256"] == want.as_str())
    });
    if named {
        Ok(())
    } else {
        Err(fail(
            Check::Artifact,
            format!("no in-toto subject is sha256:{want}"),
        ))
    }
}

fn check_signer(
    policy: &Policy,
    identity: Option<&str>,
    issuer: Option<&str>,
) -> Result<(), Failure> {
    let identity = identity.unwrap_or_default();
    if !policy.identity.matches(identity) {
        return Err(fail(
            Check::Identity,
            format!("identity {identity} does not match"),
        ));
    }
    let issuer = issuer.unwrap_or_default();
    if !policy.issuer.matches(issuer) {
        return Err(fail(
            Check::Identity,
            format!("issuer {issuer} does not match"),
        ));
    }
    Ok(())
}

/// Name the check a sigstore-verify error belongs to.
fn classify(e: SvError) -> Failure {
    let detail = e.to_string();
    let check = match &e {
        SvError::IdentityMismatch { .. } | SvError::IssuerMismatch { .. } => Check::Identity,
        SvError::SignatureInvalid(_) => Check::Signature,
        SvError::ArtifactMismatch(_) | SvError::UnsupportedArtifact(_) => Check::Artifact,
        SvError::Certificate(CertificateError::Sct(_)) => Check::Sct,
        SvError::Certificate(_) | SvError::TrustedCertificate(_) => Check::Chain,
        SvError::TransparencyLog(TransparencyLogError::Checkpoint(_)) => Check::Checkpoint,
        SvError::TransparencyLog(_) => Check::Tlog,
        SvError::Timestamp(
            TimestampError::Invalid(_)
            | TimestampError::OutsideAuthorityValidity { .. }
            | TimestampError::NoVerifiedTimestamp(_),
        ) => Check::Timestamp,
        SvError::InvalidTrustRoot(_) | SvError::TrustRoot(_) => Check::TrustRoot,
        SvError::Crypto(_) => Check::Signature,
        _ => refine(&detail),
    };
    match explain_path_error(&detail) {
        Some(meaning) if check == Check::Chain => fail(check, format!("{meaning} ({detail})")),
        _ => fail(check, detail),
    }
}

/// What webpki's path errors, which sigstore-verify passes on by their
/// Rust names, mean for a Sigstore signing certificate.
fn explain_path_error(detail: &str) -> Option<&'static str> {
    [
        (
            "CaUsedAsEndEntity",
            "the signing certificate is a CA certificate (basicConstraints CA:TRUE), not a Fulcio leaf",
        ),
        (
            "RequiredEkuNotFound",
            "the signing certificate lacks the codeSigning extended key usage",
        ),
        (
            "CertExpired",
            "a certificate of the chain had expired at the signing time",
        ),
        (
            "CertNotValidYet",
            "a certificate of the chain was not yet valid at the signing time",
        ),
        (
            "UnknownIssuer",
            "no Fulcio CA of the trusted root, valid at the signing time, issued the certificate",
        ),
    ]
    .into_iter()
    .find(|(name, _)| detail.contains(name))
    .map(|(_, meaning)| meaning)
}

/// A chain failure names the trusted root's expired CA certificates: their
/// CA no longer issues (see `trust::narrow_to_certificates`).
fn name_expired_cas(mut failure: Failure, trust: &TrustedRoot) -> Failure {
    if failure.check == Check::Chain && !trust.expired_ca_certs.is_empty() {
        failure.detail = format!(
            "{}; a Fulcio CA is trusted only while every certificate of its chain is valid, and these CA certificates of the trusted root have expired: {}",
            failure.detail,
            trust.expired_ca_certs.join(", ")
        );
    }
    failure
}

/// sigstore-verify reports a bundle whose log evidence is incomplete (no
/// checkpoint, a proof whose root is not the checkpoint's, no inclusion
/// proof where the version needs one) while reading it, as a bundle error;
/// its text says which evidence it is.
fn refine(detail: &str) -> Check {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("checkpoint") {
        Check::Checkpoint
    } else if lower.contains("inclusion proof")
        || lower.contains("inclusion promise")
        || lower.contains("log index")
    {
        Check::Tlog
    } else {
        Check::Bundle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyless() -> Policy {
        Policy {
            identity: Matcher::Exact("a".into()),
            issuer: Matcher::Exact("b".into()),
            public_key: None,
        }
    }

    #[test]
    fn matchers_match_whole_values() {
        let m = Matcher::new(None, Some("https://github.com/org/.*")).unwrap();
        assert!(m.matches("https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"));
        assert!(!m.matches("evil https://github.com/org/x"));
        let exact = Matcher::new(Some("a"), Some(".*")).unwrap();
        assert!(exact.matches("a") && !exact.matches("b"));
        assert!(Matcher::new(None, Some("(")).is_err());
    }

    #[test]
    fn unreadable_bundles_fail_the_bundle_check() {
        let trust = TrustedRoot::load(None).unwrap();
        for junk in [&b""[..], b"{", b"[]", b"\xff\xfe", b"{\"mediaType\":1}"] {
            let err = verify(
                junk,
                Artifact::Bytes(b"x"),
                &keyless(),
                &trust,
                Options::default(),
            )
            .unwrap_err();
            assert_eq!(err.check, Check::Bundle, "{err}");
        }
    }

    #[test]
    fn signer_mismatch_names_the_identity_check() {
        let err = check_signer(&keyless(), Some("x"), Some("b")).unwrap_err();
        assert_eq!(err.check, Check::Identity);
        assert!(
            err.to_string().contains("identity x does not match"),
            "{err}"
        );
        let err = check_signer(&keyless(), Some("a"), None).unwrap_err();
        assert!(err.to_string().contains("issuer  does not match"), "{err}");
        check_signer(&keyless(), Some("a"), Some("b")).unwrap();
    }
}
