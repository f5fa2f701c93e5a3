//! Provenance attestations for promoted digests: after a digest is signed
//! on its first destination, two in-toto statements about its promotion
//! ([`statement`]: a promotion record and SLSA provenance v1) are
//! DSSE-signed with the run's certificate, logged in Rekor as dsse entries
//! and stored as sigstore bundle referrers, then replicated to every other
//! destination with the signatures (`sign::replicate`).
//!
//! Reading attestations is here too: [`provenance`] checks the SLSA
//! provenance a staging image carries before it is promoted, and [`verify`]
//! checks what `promoter verify --attestations` asks for.
//!
//! One attestation of each kind per digest and destination: a kind already
//! there is not written again, so a repeated run writes nothing.

pub mod provenance;
pub mod statement;
pub mod verify;

use std::path::Path;

use crate::registry::Descriptor;
use crate::sign::store::RequestCounts;
use crate::sign::{Place, Signer, Statement, bundle_referrers, predicate_of};
use statement::{PROMOTION_PREDICATE, Promotion, RunFacts, SLSA_PREDICATE};

/// What went wrong while writing or checking attestations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Signing, logging, reading or writing failed (see `crate::sign`).
    #[error(transparent)]
    Sign(#[from] crate::sign::Error),
    /// A statement is not what it must be.
    #[error("{0}")]
    Statement(String),
}

/// Referrer annotation naming which of promoter's statements a bundle
/// holds. Staging images may carry SLSA provenance of their build, which is
/// copied along; this tells our promotion provenance apart from it.
pub const ANN_KIND: &str = "dev.promoter.attestation";
/// [`ANN_KIND`] of the promotion record.
pub const KIND_RECORD: &str = "promotion-record";
/// [`ANN_KIND`] of the promotion's SLSA provenance.
pub const KIND_PROVENANCE: &str = "promotion-provenance";

/// The two kinds written per digest: annotation value and predicate type.
pub const KINDS: [(&str, &str); 2] = [
    (KIND_RECORD, PROMOTION_PREDICATE),
    (KIND_PROVENANCE, SLSA_PREDICATE),
];

impl RunFacts {
    /// The facts of this run from GitHub Actions' variables (`GITHUB_SHA`,
    /// `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`, `GITHUB_RUN_ID`,
    /// `GITHUB_RUN_ATTEMPT`, `GITHUB_WORKFLOW_REF`); outside Actions, the
    /// commit of the manifests' git checkout, if any. `started` is when
    /// the run started (seconds since the epoch).
    pub fn detect(manifests: Option<&Path>, started: i64) -> RunFacts {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let server = env("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let repository = env("GITHUB_REPOSITORY").map(|r| format!("{server}/{r}"));
        let run_url = match (&repository, env("GITHUB_RUN_ID")) {
            (Some(repo), Some(id)) => Some(format!(
                "{repo}/actions/runs/{id}/attempts/{}",
                env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
            )),
            _ => None,
        };
        let builder_id = env("GITHUB_WORKFLOW_REF")
            .map(|w| format!("{server}/{w}"))
            .unwrap_or_else(|| statement::LOCAL_BUILDER.to_owned());
        RunFacts {
            builder_id,
            commit: env("GITHUB_SHA").or_else(|| manifests.and_then(git_head)),
            repository,
            run_url,
            started_on: crate::sign::bundle::rfc3339(started),
            promoted_on: String::new(),
        }
    }
}

/// The commit checked out where `path` lives, if it is in a git work tree.
fn git_head(path: &Path) -> Option<String> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && sha.len() == 40).then_some(sha)
}

/// The attestations of one run: its facts and, in the order of the
/// subjects being signed, what was promoted.
pub struct Attestations {
    /// About the run; the builder id is settled at the first write.
    pub run: RunFacts,
    builder_settled: bool,
}

impl Attestations {
    /// Attestations for a run with `run` facts.
    pub fn new(run: RunFacts) -> Attestations {
        Attestations {
            run,
            builder_settled: false,
        }
    }

    /// Write the promotion record and SLSA provenance of `promotion` in
    /// `place` (the first destination, where the digest was just signed),
    /// each unless promoter's statement of that kind is already there.
    /// Returns how many were written. Those the registry did not index
    /// itself are added to `unlisted` (see [`Signer::put_statements`]).
    pub async fn write(
        &mut self,
        signer: &mut Signer,
        place: &Place,
        promotion: &Promotion,
        unlisted: &mut Vec<Descriptor>,
    ) -> Result<usize, Error> {
        let present = bundle_referrers(
            place.registry.as_ref(),
            &place.repo,
            &promotion.digest,
            &signer.counts,
        )
        .await?;
        let missing: Vec<_> = KINDS
            .into_iter()
            .filter(|(kind, predicate)| {
                !present.iter().any(|d| {
                    predicate_of(d) == Some(predicate)
                        && d.annotations
                            .as_ref()
                            .and_then(|a| a.get(ANN_KIND))
                            .is_some_and(|k| k == kind)
                })
            })
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        if !self.builder_settled {
            // The workflow identity the certificate proves is the builder.
            if let Some(identity) = signer.identity().await? {
                self.run.builder_id = identity;
            }
            self.builder_settled = true;
        }
        let mut run = self.run.clone();
        run.promoted_on = crate::sign::bundle::rfc3339(crate::sign::now());
        let bodies: Vec<Vec<u8>> = missing
            .iter()
            .map(|(kind, _)| {
                if *kind == KIND_RECORD {
                    statement::promotion_record(promotion, &run)
                } else {
                    statement::slsa_provenance(promotion, &run)
                }
            })
            .collect();
        let kinds: Vec<[(&str, &str); 1]> = missing
            .iter()
            .map(|(kind, _)| [(ANN_KIND, *kind)])
            .collect();
        let statements: Vec<Statement<'_>> = missing
            .iter()
            .zip(&bodies)
            .zip(&kinds)
            .map(|(((_, predicate), body), kind)| Statement {
                body,
                predicate_type: predicate,
                annotations: kind,
            })
            .collect();
        signer
            .put_statements(place, &promotion.digest, &statements, unlisted)
            .await?;
        for _ in &missing {
            RequestCounts::bump(&signer.counts.attested);
        }
        Ok(missing.len())
    }
}
