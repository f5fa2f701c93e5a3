//! SLSA provenance on staging images, checked before promotion: where a
//! staging image carries SLSA provenance v1 as a sigstore bundle referrer
//! (as `actions/attest-build-provenance` and cosign v3 write it), one of
//! them must verify (signature, certificate chain to the trusted root,
//! Rekor entry, the signer policy when one is given), meet SLSA v1's field
//! requirements and name an allowed builder. `--require-provenance` makes
//! it mandatory.

use super::Error;
use super::statement::{self, SLSA_PREDICATE};
use crate::registry::Digest;
use crate::sign::Place;
use crate::sign::store::RequestCounts;
use crate::sign::trust::TrustedRoot;
use crate::sign::verify::{self, Policy};

/// What staging provenance must show.
#[derive(Clone, Debug)]
pub struct Requirement {
    /// Who must have signed it; `Matcher::AnyIdentity` accepts any identity
    /// whose certificate chains to the trusted root.
    pub signer: Policy,
    /// Builder ids accepted (`runDetails.builder.id`): exact, or a prefix
    /// when ending in `*`. Empty: any.
    pub allowed_builders: Vec<String>,
    /// An image without provenance is refused.
    pub require: bool,
}

impl Requirement {
    fn builder_allowed(&self, id: &str) -> bool {
        self.allowed_builders.is_empty()
            || self
                .allowed_builders
                .iter()
                .any(|allowed| match allowed.strip_suffix('*') {
                    Some(prefix) => id.starts_with(prefix),
                    None => id == allowed,
                })
    }
}

/// Check one provenance bundle; returns the builder id.
pub fn check_bundle(
    bytes: &[u8],
    digest: &Digest,
    requirement: &Requirement,
    trust: &TrustedRoot,
) -> Result<String, Error> {
    let (payload, _) = verify::verify_statement_bundle(bytes, digest, &requirement.signer, trust)?;
    let checked = statement::check_statement(&payload).map_err(Error::Statement)?;
    if checked.predicate_type != SLSA_PREDICATE {
        return Err(Error::Statement(format!(
            "the statement is a {}, not SLSA provenance v1",
            checked.predicate_type
        )));
    }
    let builder = statement::check_slsa(&checked.predicate)
        .map_err(|e| Error::Statement(format!("not valid SLSA provenance v1: {e}")))?;
    if !requirement.builder_allowed(&builder) {
        return Err(Error::Statement(format!(
            "builder {builder} is not allowed (--allowed-builder)"
        )));
    }
    Ok(builder)
}

/// Why the staging image `digest` in `place` must not be promoted, if it
/// must not: its SLSA provenance is present and none of it holds, or it is
/// absent and required. A registry that cannot be read is a reason too.
pub async fn refusal(
    place: &Place,
    digest: &Digest,
    requirement: &Requirement,
    trust: &TrustedRoot,
    counts: &RequestCounts,
) -> Option<String> {
    let bundles = match verify::read_bundles(place, digest, counts, |predicate| {
        predicate == Some(SLSA_PREDICATE)
    })
    .await
    {
        Ok(bundles) => bundles,
        Err(e) => return Some(format!("its provenance cannot be read: {e}")),
    };
    if bundles.is_empty() {
        return requirement
            .require
            .then(|| "it carries no SLSA provenance v1 (--require-provenance)".into());
    }
    let mut first_problem = None;
    for (_, bytes) in bundles {
        match bytes
            .map_err(Error::from)
            .and_then(|b| check_bundle(&b, digest, requirement, trust))
        {
            Ok(_) => return None,
            Err(e) => {
                first_problem.get_or_insert(e.to_string());
            }
        }
    }
    first_problem.map(|why| format!("its SLSA provenance does not verify: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::verify::Matcher;

    #[test]
    fn builders_match_exactly_or_by_prefix() {
        let req = |allowed: &[&str]| Requirement {
            signer: Policy {
                identity: Matcher::AnyIdentity,
                issuer: Matcher::AnyIdentity,
                public_key: None,
            },
            allowed_builders: allowed.iter().map(|s| s.to_string()).collect(),
            require: false,
        };
        assert!(req(&[]).builder_allowed("https://anything"));
        let r = req(&[
            "https://github.com/actions/runner/github-hosted",
            "https://ci.example/*",
        ]);
        assert!(r.builder_allowed("https://github.com/actions/runner/github-hosted"));
        assert!(!r.builder_allowed("https://github.com/actions/runner/github-hosted2"));
        assert!(r.builder_allowed("https://ci.example/builders/1"));
        assert!(!r.builder_allowed("https://evil.example/ci.example/"));
    }
}
