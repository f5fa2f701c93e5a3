//! `promoter verify-bundle`: one Sigstore bundle against one artifact, with
//! the arguments and exit codes of the Sigstore conformance suite's client
//! protocol. It reads the inputs, hands them to the verifier core
//! ([`crate::sign::verifier`]) and reports: exit 0 verified, 1 not (naming
//! the check, the bundle and the artifact), 2 for usage and I/O errors.

use std::path::Path;

use anyhow::Context;
use sha2::Digest as _;

use crate::check::Outcome;
use crate::cli::VerifyBundleArgs;
use crate::sign::Error;
use crate::sign::trust::TrustedRoot;
use crate::sign::verifier::{self, Artifact, Check, Failure, Matcher, Options, Policy};

/// Run the command.
pub fn command(args: &VerifyBundleArgs) -> anyhow::Result<Outcome> {
    let policy = policy_of(args)?;
    let trust = match TrustedRoot::load(args.trusted_root.as_deref()) {
        Ok(trust) => trust,
        Err(Error::TrustRoot(why)) if is_content_error(args.trusted_root.as_deref()) => {
            let failure = Failure {
                check: Check::TrustRoot,
                detail: why,
            };
            return Ok(refuse(args, &failure.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let bundle = std::fs::read(&args.bundle)
        .with_context(|| format!("cannot read the bundle {}", args.bundle.display()))?;
    let (artifact, bytes) = artifact_of(&args.artifact)?;
    let input = match &bytes {
        Some(bytes) => Artifact::Bytes(bytes),
        None => artifact,
    };
    match verifier::verify(&bundle, input, &policy, &trust, Options::default()) {
        Ok(verified) => {
            let signer = match (&verified.identity, &verified.issuer) {
                (Some(id), Some(iss)) => format!("signed by {id} (issuer {iss})"),
                (Some(id), None) => format!("signed by {id}"),
                _ => "signed with the given key".to_owned(),
            };
            println!(
                "verified: {} for {} ({signer})",
                args.bundle.display(),
                describe(&args.artifact, artifact)
            );
            Ok(Outcome::Clean)
        }
        Err(failure) => Ok(refuse(args, &failure.to_string())),
    }
}

/// Print why the bundle does not verify; the outcome is exit 1.
fn refuse(args: &VerifyBundleArgs, why: &str) -> Outcome {
    eprintln!(
        "promoter verify-bundle: {} does not verify for {}: {why}",
        args.bundle.display(),
        args.artifact
    );
    Outcome::Findings
}

/// A trusted root that was read but is unusable is a verdict, not a usage
/// error; one that cannot be read at all is an I/O error.
fn is_content_error(path: Option<&Path>) -> bool {
    path.is_none_or(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
}

fn policy_of(args: &VerifyBundleArgs) -> anyhow::Result<Policy> {
    if let Some(path) = &args.key {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key {}", path.display()))?;
        let key = sigstore_verify::types::DerPublicKey::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{} is not a PEM public key: {e}", path.display()))?;
        return Ok(Policy {
            identity: Matcher::KeyOnly,
            issuer: Matcher::KeyOnly,
            public_key: Some(key.as_bytes().to_vec()),
        });
    }
    let identity = Matcher::new(
        args.certificate_identity.as_deref(),
        args.certificate_identity_regexp.as_deref(),
    )?;
    let issuer = Matcher::new(
        args.certificate_oidc_issuer.as_deref(),
        args.certificate_oidc_issuer_regexp.as_deref(),
    )?;
    if matches!(issuer, Matcher::KeyOnly) {
        anyhow::bail!(
            "--certificate-oidc-issuer (or --certificate-oidc-issuer-regexp) is required with a certificate identity"
        );
    }
    Ok(Policy {
        identity,
        issuer,
        public_key: None,
    })
}

/// The artifact argument: `sha256:HEX` when it has that form and names no
/// file (the protocol's rule), else a file to read. Returns its digest and,
/// for a file, its bytes.
fn artifact_of(arg: &str) -> anyhow::Result<(Artifact<'static>, Option<Vec<u8>>)> {
    if let Some(digest) = parse_digest(arg)
        && !Path::new(arg).exists()
    {
        return Ok((Artifact::Sha256(digest), None));
    }
    let bytes = std::fs::read(arg).with_context(|| format!("cannot read the artifact {arg}"))?;
    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    Ok((Artifact::Sha256(digest), Some(bytes)))
}

/// `sha256:` and 64 hex digits.
pub fn parse_digest(arg: &str) -> Option<[u8; 32]> {
    let hex_part = arg.strip_prefix("sha256:")?;
    if hex_part.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

fn describe(arg: &str, artifact: Artifact<'_>) -> String {
    match artifact {
        Artifact::Sha256(d) if arg.starts_with("sha256:") => format!("sha256:{}", hex::encode(d)),
        Artifact::Sha256(d) => format!("{arg} (sha256:{})", hex::encode(d)),
        Artifact::Bytes(_) => arg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_recognised_only_in_full() {
        let hex = "a".repeat(64);
        assert_eq!(parse_digest(&format!("sha256:{hex}")), Some([0xaa; 32]));
        assert_eq!(parse_digest(&format!("sha256:{}", "a".repeat(63))), None);
        assert_eq!(parse_digest(&format!("sha512:{hex}")), None);
        assert_eq!(parse_digest(&format!("sha256:{}", "g".repeat(64))), None);
        assert_eq!(parse_digest("a.txt"), None);
    }
}
