//! Checking signatures as a verifier would: for one digest in one
//! repository, is there a legacy `.sig` signature and/or a sigstore bundle
//! that verifies (signature, certificate chain to the trusted root, Rekor
//! SignedEntryTimestamp and entry contents, signing time within the
//! certificate's validity) and matches the expected identity and issuer?
//!
//! The verdict is data ([`Status`]); operational errors (a registry that
//! cannot be read) are reported as such, apart from invalid signatures.

use regex::Regex;
use serde::Deserialize;

use super::crypto::{self, b64, cert_facts, sha256_hex, unb64, verify_issued_by, verify_p256};
use super::rekor::LogEntry;
use super::store::{self, Counts};
use super::trust::TrustedRoot;
use super::{Error, Formats, Place, bundle, bundle_referrers, cosign, predicate_of};
use crate::registry::{Digest, Reference};

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

    fn matches(&self, value: &str) -> bool {
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

/// The verdict for one format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// A signature verifies and matches the policy.
    Valid,
    /// No signature of this format.
    Missing,
    /// Signatures exist, none verifies; the first reason.
    Invalid(String),
    /// The format was not asked for.
    NotChecked,
    /// The registry could not be read.
    Error(String),
}

impl Status {
    /// True unless it is a gap.
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Valid | Status::NotChecked)
    }

    /// Short text for tables.
    pub fn label(&self) -> String {
        match self {
            Status::Valid => "valid".into(),
            Status::Missing => "missing".into(),
            Status::Invalid(why) => format!("invalid: {why}"),
            Status::NotChecked => "-".into(),
            Status::Error(e) => format!("error: {e}"),
        }
    }
}

/// Both verdicts for one digest in one place.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The legacy `.sig` signature.
    pub legacy: Status,
    /// The bundle referrer.
    pub bundle: Status,
}

/// Check `digest` in `place`.
pub async fn check(
    place: &Place,
    digest: &Digest,
    formats: Formats,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &Counts,
) -> Verdict {
    let legacy = if formats.legacy {
        check_legacy(place, digest, policy, trust, counts)
            .await
            .unwrap_or_else(|e| Status::Error(e.to_string()))
    } else {
        Status::NotChecked
    };
    let bundle = if formats.bundle {
        check_bundles(place, digest, policy, trust, counts)
            .await
            .unwrap_or_else(|e| Status::Error(e.to_string()))
    } else {
        Status::NotChecked
    };
    Verdict { legacy, bundle }
}

/// The status of a set of candidate results: valid when one is, missing when
/// there are none, else invalid with the first reason.
pub fn pick<E: std::fmt::Display>(results: Vec<Result<(), E>>) -> Status {
    if results.is_empty() {
        return Status::Missing;
    }
    let mut first = None;
    for r in results {
        match r {
            Ok(()) => return Status::Valid,
            Err(e) => {
                first.get_or_insert(e.to_string());
            }
        }
    }
    Status::Invalid(first.unwrap_or_default())
}

async fn check_legacy(
    place: &Place,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &Counts,
) -> Result<Status, Error> {
    let reg = place.registry.as_ref();
    let tag =
        Reference::tag(&cosign::signature_tag(digest)).map_err(|e| Error::Format(e.to_string()))?;
    let Some(manifest) = store::get_manifest(reg, &place.repo, &tag, counts).await? else {
        return Ok(Status::Missing);
    };
    let mut results = Vec::new();
    for layer in cosign::layers(&manifest)? {
        if layer.media_type != cosign::SIMPLE_SIGNING {
            continue;
        }
        let payload = store::read_blob(reg, &place.repo, &layer.digest).await?;
        let annotations = layer.annotations.unwrap_or_default();
        results.push(verify_legacy_layer(
            &payload,
            &annotations,
            digest,
            policy,
            trust,
        ));
    }
    Ok(pick(results))
}

/// Verify one legacy signature layer: its payload and annotations.
pub fn verify_legacy_layer(
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(), Error> {
    let claims = cosign::parse_payload(payload)?;
    if claims.critical.image.digest != digest.to_string() {
        return Err(Error::Verify(format!(
            "the payload signs {}, not this image",
            claims.critical.image.digest
        )));
    }
    let signature = unb64(
        annotations
            .get(cosign::ANN_SIGNATURE)
            .ok_or_else(|| Error::Verify("no signature annotation".into()))?,
    )?;
    let signer = match annotations.get(cosign::ANN_CERTIFICATE) {
        Some(pem_text) => {
            let der = crypto::pem_blocks(pem_text)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Verify("empty certificate annotation".into()))?;
            Signer::Cert(der)
        }
        None => Signer::Key,
    };
    let key = signer.check(policy, trust)?;
    verify_p256(&key, payload, &signature)?;
    match (&signer, annotations.get(cosign::ANN_BUNDLE)) {
        (Signer::Cert(der), Some(text)) => {
            let entry = cosign::parse_bundle_annotation(text)?;
            check_entry_time(&entry, der)?;
            entry.verify_set(trust)?;
            let body: HashedRekord = serde_json::from_value(entry.body_json()?)
                .map_err(|e| Error::Verify(format!("not a hashedrekord entry: {e}")))?;
            if body.kind != "hashedrekord"
                || body.spec.data.hash.value != sha256_hex(payload)
                || body.spec.signature.content != b64(&signature)
                || first_pem(&body.spec.signature.public_key.content)? != *der
            {
                return Err(Error::Verify(
                    "the Rekor entry does not match the signature".into(),
                ));
            }
            Ok(())
        }
        (Signer::Cert(_), None) => Err(Error::Verify(
            "keyless signature without a Rekor bundle".into(),
        )),
        (Signer::Key, _) => Ok(()),
    }
}

fn first_pem(b64_pem: &str) -> Result<Vec<u8>, Error> {
    let text = String::from_utf8(unb64(b64_pem)?)
        .map_err(|_| Error::Verify("verifier is not PEM".into()))?;
    crypto::pem_blocks(&text)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Verify("verifier is not PEM".into()))
}

fn check_entry_time(entry: &LogEntry, cert_der: &[u8]) -> Result<(), Error> {
    let facts = cert_facts(cert_der)?;
    if entry.integrated_time < facts.not_before || entry.integrated_time > facts.not_after {
        return Err(Error::Verify(
            "signed outside the certificate's validity".into(),
        ));
    }
    Ok(())
}

enum Signer {
    Cert(Vec<u8>),
    Key,
}

impl Signer {
    /// The verifying key, once the signer is trusted and matches.
    fn check(&self, policy: &Policy, trust: &TrustedRoot) -> Result<Vec<u8>, Error> {
        match self {
            Signer::Key => policy.public_key.clone().ok_or_else(|| {
                Error::Verify("signed with a key, and no --public-key given".into())
            }),
            Signer::Cert(der) => {
                if matches!(policy.identity, Matcher::KeyOnly)
                    || matches!(policy.issuer, Matcher::KeyOnly)
                {
                    return Err(Error::Verify(
                        "keyless signature, and no certificate identity and issuer to match".into(),
                    ));
                }
                if !trust
                    .ca_certs
                    .iter()
                    .any(|ca| verify_issued_by(der, ca).is_ok())
                {
                    return Err(Error::Verify(
                        "the certificate was not issued by a trusted Fulcio CA".into(),
                    ));
                }
                let facts = cert_facts(der)?;
                if !facts.identities.iter().any(|i| policy.identity.matches(i)) {
                    return Err(Error::Verify(format!(
                        "identity {} does not match",
                        facts.identities.join(", ")
                    )));
                }
                let issuer = facts.issuer.clone().unwrap_or_default();
                if !policy.issuer.matches(&issuer) {
                    return Err(Error::Verify(format!("issuer {issuer} does not match")));
                }
                Ok(facts.public_key)
            }
        }
    }
}

#[derive(Deserialize)]
struct HashedRekord {
    kind: String,
    spec: HashedSpec,
}

#[derive(Deserialize)]
struct HashedSpec {
    data: HashedData,
    signature: HashedSig,
}

#[derive(Deserialize)]
struct HashedData {
    hash: HashValue,
}

#[derive(Deserialize)]
struct HashValue {
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedSig {
    content: String,
    public_key: Content,
}

#[derive(Deserialize)]
struct Content {
    content: String,
}

#[derive(Deserialize)]
struct DsseEntry {
    kind: String,
    spec: DsseSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSpec {
    payload_hash: HashValue,
    signatures: Vec<DsseSig>,
}

#[derive(Deserialize)]
struct DsseSig {
    signature: String,
    verifier: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    subject: Vec<StatementSubject>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct StatementSubject {
    digest: std::collections::BTreeMap<String, String>,
}

async fn check_bundles(
    place: &Place,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &Counts,
) -> Result<Status, Error> {
    // Attestations are not signatures; an unannounced bundle may be one.
    let bundles = read_bundles(place, digest, counts, |predicate| {
        matches!(predicate, None | Some(bundle::SIGN_PREDICATE))
    })
    .await?;
    Ok(pick(
        bundles
            .into_iter()
            .map(|(_, bytes)| bytes.and_then(|b| verify_bundle(&b, digest, policy, trust)))
            .collect(),
    ))
}

/// The bundles the referrers of `digest` in `place` store, for those whose
/// announced predicate type `wanted` accepts: each with that predicate
/// type, and its JSON or, for a referrer listed but absent or holding no
/// bundle, an [`Error::Verify`] in its place. A registry that cannot be
/// read fails the whole call.
#[allow(clippy::type_complexity)]
pub async fn read_bundles(
    place: &Place,
    digest: &Digest,
    counts: &Counts,
    wanted: impl Fn(Option<&str>) -> bool,
) -> Result<Vec<(Option<String>, Result<Vec<u8>, Error>)>, Error> {
    let reg = place.registry.as_ref();
    let mut out = Vec::new();
    for referrer in bundle_referrers(reg, &place.repo, digest, counts).await? {
        let predicate = predicate_of(&referrer);
        if !wanted(predicate) {
            continue;
        }
        let bytes = match bundle_bytes(place, &referrer, counts).await {
            Ok(bytes) => Ok(bytes),
            Err(e @ Error::Verify(_)) => Err(e),
            Err(e) => return Err(e),
        };
        out.push((predicate.map(str::to_owned), bytes));
    }
    Ok(out)
}

/// The bundle JSON a referrer (listed in `place`) stores. A referrer that is
/// listed but absent, or holds no bundle, is an [`Error::Verify`].
async fn bundle_bytes(
    place: &Place,
    referrer: &crate::registry::Descriptor,
    counts: &Counts,
) -> Result<Vec<u8>, Error> {
    let reg = place.registry.as_ref();
    let reference = Reference::Digest(referrer.digest);
    let Some(manifest) = store::get_manifest(reg, &place.repo, &reference, counts).await? else {
        return Err(Error::Verify("listed referrer is missing".into()));
    };
    let blobs = manifest.blobs().map_err(|e| Error::Format(e.to_string()))?;
    let Some(layer) = blobs
        .iter()
        .find(|b| b.media_type == bundle::BUNDLE_MEDIA_TYPE)
    else {
        return Err(Error::Verify("referrer without a bundle layer".into()));
    };
    store::read_blob(reg, &place.repo, &layer.digest).await
}

/// Verify a signature bundle for `digest` (predicate type
/// `https://sigstore.dev/cosign/sign/v1`).
pub fn verify_bundle(
    bytes: &[u8],
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(), Error> {
    let (_, predicate_type) = verify_statement_bundle(bytes, digest, policy, trust)?;
    if predicate_type != bundle::SIGN_PREDICATE {
        return Err(Error::Verify(format!("predicate type {predicate_type}")));
    }
    Ok(())
}

/// Verify a DSSE bundle over an in-toto statement that names `digest`: the
/// signature over the envelope, the signer against `policy` and the trusted
/// root, and (keyless) the Rekor dsse entry and its time. Returns the
/// statement's bytes and predicate type; what the predicate says is the
/// caller's to judge.
pub fn verify_statement_bundle(
    bytes: &[u8],
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(Vec<u8>, String), Error> {
    let parsed = bundle::parse(bytes)?;
    if parsed.payload_type != bundle::INTOTO_PAYLOAD_TYPE {
        return Err(Error::Verify(format!(
            "DSSE payload type {}",
            parsed.payload_type
        )));
    }
    let statement: Statement = serde_json::from_slice(&parsed.payload)
        .map_err(|e| Error::Verify(format!("unreadable in-toto statement: {e}")))?;
    if !statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256") == Some(&digest.hex()))
    {
        return Err(Error::Verify(
            "the statement does not name this image".into(),
        ));
    }
    let signer = match &parsed.certificate {
        Some(der) => Signer::Cert(der.clone()),
        None => Signer::Key,
    };
    let key = signer.check(policy, trust)?;
    verify_p256(
        &key,
        &bundle::pae(&parsed.payload_type, &parsed.payload),
        &parsed.signature,
    )?;
    match (&signer, &parsed.entry) {
        (Signer::Cert(der), Some(entry)) => {
            check_entry_time(entry, der)?;
            entry.verify_set(trust)?;
            let body: DsseEntry = serde_json::from_value(entry.body_json()?)
                .map_err(|e| Error::Verify(format!("not a dsse entry: {e}")))?;
            let sig = body.spec.signatures.first();
            if body.kind != "dsse"
                || body.spec.payload_hash.value != sha256_hex(&parsed.payload)
                || sig.is_none_or(|s| {
                    s.signature != parsed.signature_b64
                        || first_pem(&s.verifier).ok().as_ref() != Some(der)
                })
            {
                return Err(Error::Verify(
                    "the Rekor entry does not match the bundle".into(),
                ));
            }
        }
        (Signer::Cert(_), None) => {
            return Err(Error::Verify("keyless bundle without a log entry".into()));
        }
        (Signer::Key, _) => {}
    }
    Ok((parsed.payload, statement.predicate_type))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sign::crypto::Key;

    fn key_policy(key: &Key) -> Policy {
        Policy {
            identity: Matcher::KeyOnly,
            issuer: Matcher::KeyOnly,
            public_key: Some(key.public_der()),
        }
    }

    fn signed_layer(key: &Key, digest: &Digest) -> (Vec<u8>, BTreeMap<String, String>) {
        let payload = cosign::payload("registry.example/app", digest, &BTreeMap::new());
        let annotations = cosign::annotations(&key.sign(&payload), None, None, None);
        (payload, annotations)
    }

    #[test]
    fn key_signed_legacy_layer() {
        let key = Key::generate().unwrap();
        let digest = Digest::of(b"image");
        let trust = TrustedRoot::default();
        let (payload, annotations) = signed_layer(&key, &digest);
        verify_legacy_layer(&payload, &annotations, &digest, &key_policy(&key), &trust).unwrap();
        // Another image's signature does not count for this one.
        let other = Digest::of(b"other");
        let err = verify_legacy_layer(&payload, &annotations, &other, &key_policy(&key), &trust)
            .unwrap_err();
        assert!(err.to_string().contains("not this image"), "{err}");
        // Another key does not verify it.
        let stranger = Key::generate().unwrap();
        assert!(
            verify_legacy_layer(
                &payload,
                &annotations,
                &digest,
                &key_policy(&stranger),
                &trust
            )
            .is_err()
        );
        // A payload changed after signing does not verify.
        let tampered = String::from_utf8(payload)
            .unwrap()
            .replace("registry.example", "registry.evil")
            .into_bytes();
        assert!(
            verify_legacy_layer(&tampered, &annotations, &digest, &key_policy(&key), &trust)
                .is_err()
        );
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
    fn keyless_needs_a_policy() {
        // A certificate is refused before anything else when the policy
        // names no identity (as with --public-key alone).
        let policy = key_policy(&Key::generate().unwrap());
        let err = Signer::Cert(vec![0x30, 0x00])
            .check(&policy, &TrustedRoot::default())
            .unwrap_err();
        assert!(err.to_string().contains("no certificate identity"), "{err}");
    }
}
