//! `promoter verify --attestations`: does a promoted digest carry, in one
//! destination, a promotion record and a promotion SLSA provenance that
//! verify (signature, signer policy, trusted root, Rekor entry), meet the
//! in-toto Statement v1 and SLSA v1 field requirements, name this digest
//! and, for the record, list this destination?

use super::Error;
use super::statement::{self, PROMOTION_BUILD_TYPE, PROMOTION_PREDICATE, SLSA_PREDICATE};
use crate::registry::Digest;
use crate::sign::Place;
use crate::sign::store::RequestCounts;
use crate::sign::trust::TrustedRoot;
use crate::sign::verify::{self, Policy, Status, pick};

/// Both verdicts for one digest in one destination.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The promotion record.
    pub record: Status,
    /// The promotion's SLSA provenance.
    pub provenance: Status,
}

impl Verdict {
    /// True when both are valid.
    pub fn is_ok(&self) -> bool {
        self.record.is_ok() && self.provenance.is_ok()
    }
}

/// Check one statement bundle of `predicate_type` for `digest` in `place`.
pub fn check_bundle(
    bytes: &[u8],
    predicate_type: &str,
    digest: &Digest,
    place: &Place,
    policy: &Policy,
    trust: &TrustedRoot,
) -> Result<(), Error> {
    let (payload, _) = verify::verify_statement_bundle(bytes, digest, policy, trust)?;
    let checked = statement::check_statement(&payload).map_err(Error::Statement)?;
    if checked.predicate_type != predicate_type {
        return Err(Error::Statement(format!(
            "the statement is a {}, not a {predicate_type}",
            checked.predicate_type
        )));
    }
    if predicate_type == PROMOTION_PREDICATE {
        statement::check_record(&checked.predicate, digest, &place.to_string())
            .map_err(Error::Statement)?;
    } else {
        statement::check_slsa(&checked.predicate).map_err(Error::Statement)?;
        let build_type = checked.predicate["buildDefinition"]["buildType"].as_str();
        if build_type != Some(PROMOTION_BUILD_TYPE) {
            return Err(Error::Statement(format!(
                "the SLSA provenance is of a {}, not of a promotion",
                build_type.unwrap_or("?")
            )));
        }
    }
    Ok(())
}

/// Check `digest` in `place`.
pub async fn check(
    place: &Place,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &RequestCounts,
) -> Verdict {
    match check_both(place, digest, policy, trust, counts).await {
        Ok(verdict) => verdict,
        Err(e) => Verdict {
            record: Status::Error(e.to_string()),
            provenance: Status::Error(e.to_string()),
        },
    }
}

async fn check_both(
    place: &Place,
    digest: &Digest,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &RequestCounts,
) -> Result<Verdict, Error> {
    let bundles = verify::read_bundles(place, digest, counts, |predicate| {
        matches!(predicate, Some(PROMOTION_PREDICATE | SLSA_PREDICATE))
    })
    .await?;
    let (mut record, mut provenance) = (Vec::new(), Vec::new());
    for (predicate_type, bytes) in bundles {
        let predicate_type = predicate_type.unwrap_or_default();
        let result = bytes
            .map_err(Error::from)
            .and_then(|b| check_bundle(&b, &predicate_type, digest, place, policy, trust));
        if predicate_type == PROMOTION_PREDICATE {
            record.push(result);
        } else {
            provenance.push(result);
        }
    }
    Ok(Verdict {
        record: pick(record),
        provenance: pick(provenance),
    })
}
