//! The `verify` command: a verdict per promoted digest and destination
//! (signatures, and with `--attestations` the promotion's attestations),
//! `--fix` to copy what is missing from a destination that has it, then a
//! table of the gaps ([`crate::report::verify`]). The checks themselves
//! are in [`crate::sign::verify`] and [`crate::attest::verify`].

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::stream;

use crate::check;
use crate::cli::{CheckArgs, TableFormat, VerifyArgs};
use crate::config::{self, Registries};
use crate::diagnostic::{Outcome, SeverityCounts};
use crate::plan;
use crate::registry::Digest;
use crate::report::verify::{Finding, Gaps};
use crate::sign::store::RequestCounts;
use crate::sign::trust::TrustedRoot;
use crate::sign::verify::{Matcher, Policy};
use crate::sign::{Formats, Place, replicate};

/// What `verify` checks and against what, resolved from its flags.
struct Checks {
    /// Every (digest, destinations) the manifests promote.
    items: Vec<(Digest, Vec<Place>)>,
    formats: Formats,
    attestations: bool,
    policy: Policy,
    trust: TrustedRoot,
    counts: RequestCounts,
    concurrency: usize,
}

/// Runs `promoter verify`.
///
/// # Errors
///
/// Bad manifests or flags, an unreadable file, an unusable registry name.
pub async fn command(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let checks = resolve(args)?;
    let all: Vec<(usize, usize)> = checks
        .items
        .iter()
        .enumerate()
        .flat_map(|(i, (_, places))| (0..places.len()).map(move |j| (i, j)))
        .collect();
    let verdicts = checks.run(&all).await;
    let mut gaps: Vec<((usize, usize), Finding)> = all
        .iter()
        .copied()
        .zip(verdicts)
        .filter(|(_, v)| !v.is_ok())
        .collect();
    let mut out = std::io::stdout().lock();
    if args.fix && !gaps.is_empty() {
        // What `--fix` did goes to stderr when stdout is JSON.
        let mut err = std::io::stderr().lock();
        let log: &mut dyn std::io::Write = match args.format {
            TableFormat::Text => &mut out,
            TableFormat::Json => &mut err,
        };
        checks.fix(&all, &mut gaps, log).await?;
    }
    let gaps = Gaps {
        items: &checks.items,
        gaps: &gaps,
        total: all.len(),
        attestations: checks.attestations,
        requests: RequestCounts::get(&checks.counts.reads),
    };
    match args.format {
        TableFormat::Text => crate::report::verify::write(&mut out, &gaps)?,
        TableFormat::Json => crate::report::verify::write_json(&mut out, &gaps)?,
    }
    Ok(if gaps.gaps.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

/// Reads the manifests and the flags: what to check, with which policy.
fn resolve(args: &VerifyArgs) -> anyhow::Result<Checks> {
    let (loaded, diagnostics) = check::diagnose(&CheckArgs::of(args.manifests.clone()))?;
    if SeverityCounts::of(&diagnostics).errors > 0 {
        anyhow::bail!("the manifests have errors; run `promoter check` to see them");
    }
    let wants = plan::wants(&loaded.manifests);
    let formats = Formats::from(args.signature_format);
    let trust = TrustedRoot::load(args.trusted_root.as_deref())?;
    let public_key = match &args.public_key {
        Some(path) => Some(crate::sign::crypto::public_key_from_pem(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --public-key {}", path.display()))?,
        )?),
        None => None,
    };
    let policy = config::policy(&args.identity, public_key)?;
    if matches!(policy.identity, Matcher::KeyOnly) && policy.public_key.is_none() {
        anyhow::bail!(
            "give --certificate-identity or --certificate-identity-regexp (or --public-key for key-signed images)"
        );
    }
    if matches!(policy.issuer, Matcher::KeyOnly) && policy.public_key.is_none() {
        anyhow::bail!("give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp");
    }
    let registries: Registries = config::registries(config::http_options(
        &args.insecure_registry,
        &args.registry_ca,
    )?)?;
    let mut items = Vec::with_capacity(wants.items.len());
    for want in &wants.items {
        let mut places = Vec::new();
        for (id, _) in want.targets() {
            places.push(registries.place(wants.names.repo(id))?);
        }
        items.push((want.digest, places));
    }
    Ok(Checks {
        items,
        formats,
        attestations: args.attestations,
        policy,
        trust,
        counts: RequestCounts::default(),
        concurrency: args.concurrency.max(1),
    })
}

impl Checks {
    /// The verdicts of `which` ((item, destination) pairs), in order.
    async fn run(&self, which: &[(usize, usize)]) -> Vec<Finding> {
        stream::iter(which.iter())
            .map(|(i, j)| async move {
                let (digest, places) = &self.items[*i];
                let place = &places[*j];
                let signatures = crate::sign::verify::check(
                    place,
                    digest,
                    self.formats,
                    &self.policy,
                    &self.trust,
                    &self.counts,
                )
                .await;
                let attestations = if self.attestations {
                    Some(
                        crate::attest::verify::check(
                            place,
                            digest,
                            &self.policy,
                            &self.trust,
                            &self.counts,
                        )
                        .await,
                    )
                } else {
                    None
                };
                Finding {
                    signatures,
                    attestations,
                }
            })
            .buffered(self.concurrency)
            .collect()
            .await
    }

    /// `--fix`: copy to each gap from a destination of the same digest that
    /// is not one, check again, and drop the gaps that are gone.
    async fn fix(
        &self,
        all: &[(usize, usize)],
        gaps: &mut Vec<((usize, usize), Finding)>,
        out: &mut dyn std::io::Write,
    ) -> anyhow::Result<()> {
        let mut fixed = Vec::new();
        for ((i, j), _) in gaps.iter() {
            let (digest, places) = &self.items[*i];
            let donor = all
                .iter()
                .filter(|(di, dj)| di == i && dj != j)
                .find(|k| !gaps.iter().any(|(g, _)| g == *k));
            let Some((_, dj)) = donor else { continue };
            match replicate::replicate(
                &places[*dj],
                &places[*j],
                digest,
                self.formats,
                &self.counts,
            )
            .await
            {
                Ok(_) => fixed.push((*i, *j)),
                Err(err) => writeln!(
                    out,
                    "fix: copying signatures of {digest} to {} failed: {err}",
                    places[*j]
                )?,
            }
        }
        let rechecked = self.run(&fixed).await;
        for (key, verdict) in fixed.iter().zip(rechecked) {
            if verdict.is_ok() {
                writeln!(
                    out,
                    "fixed: {}@{}",
                    self.items[key.0].1[key.1], self.items[key.0].0
                )?;
                gaps.retain(|(g, _)| g != key);
            }
        }
        Ok(())
    }
}
