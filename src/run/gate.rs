//! The plan phase of `run`: classify every edge against the inventory
//! (pure, [`crate::plan::classify`]), then the source gate: a bad staging
//! signature (with a source policy) or bad staging provenance stops its
//! image before anything of it is written.

use futures_util::StreamExt;
use futures_util::stream;

use crate::attest::provenance;
use crate::config::{RunConfig, SourceGate};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::{self, Knowledge, Plan, Wants};
use crate::sign::store::RequestCounts;
use crate::sign::{Formats, verify};

/// The plan of the run: what to copy and tag where, minus the images the
/// source gate refused (each one diagnostic).
///
/// # Errors
///
/// When the trusted root the gate needs is unusable, or a registry name
/// cannot be opened.
pub async fn plan(
    config: &RunConfig,
    wants: &Wants,
    knowledge: &Knowledge,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<Plan> {
    let mut plan = plan::classify(wants, knowledge);
    // A destination that could not be listed gets nothing (see
    // `Knowledge::unreadable`).
    let unreadable: Vec<&plan::Repo> = knowledge
        .unreadable
        .iter()
        .map(|&id| wants.names.repo(id))
        .collect();
    for image in &mut plan.images {
        image
            .targets
            .retain(|t| !unreadable.contains(&&t.destination));
    }
    plan.images.retain(|i| !i.targets.is_empty());
    diagnostics.extend(plan.diagnostics.iter().cloned());
    let mut refused_images = Vec::new();
    let refused = refused_sources(config, &plan).await?;
    for (index, code, reason) in refused.into_iter().rev() {
        let image = plan.images.remove(index);
        refused_images.push((image.source.clone(), image.digest));
        let help = if code == Code::SourceProvenance {
            "attest the staging image's build with an allowed builder, or fix --allowed-builder / --certificate-identity"
        } else {
            "sign the staging image with the expected identity, or fix the policy flags"
        };
        diagnostics.push(Diagnostic::new(code, Some(image.at), reason).help(help));
    }
    if config.signing.is_on() {
        // After the gate: an image it stopped is neither copied nor signed.
        plan.signatures = plan::signatures::plan(wants, knowledge, &plan);
        plan.signatures
            .retain(|w| !refused_images.contains(&(w.source.clone(), w.digest)));
    }
    Ok(plan)
}

/// Before the copy: check the staging image of every image the plan would
/// copy or tag. Its SLSA provenance, where present (or with
/// `--require-provenance`), must verify and name an allowed builder; with a
/// source policy, its signatures must too; `concurrency` images at a time.
/// Returns the index in `plan.images`, the rule and the reason of each
/// image to stop: such an image is stopped before anything of it is
/// written.
async fn refused_sources(
    config: &RunConfig,
    plan: &Plan,
) -> anyhow::Result<Vec<(usize, Code, String)>> {
    let SourceGate {
        check,
        provenance,
        trust,
    } = &config.gate;
    if check.is_none() && provenance.is_none() {
        return Ok(Vec::new());
    }
    let trust = match trust {
        Some(Ok(trust)) => trust,
        Some(Err(message)) => anyhow::bail!("{message}"),
        None => anyhow::bail!("no trusted root for the source gate"),
    };
    let counts = RequestCounts::default();
    let mut sources = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        sources.push(config.registries.place(&image.source)?);
    }
    let counts = &counts;
    let verdicts: Vec<Option<(Code, String)>> = stream::iter(plan.images.iter().zip(&sources))
        .map(|(image, source)| async move {
            if let Some(check) = check {
                let both = Formats {
                    legacy: true,
                    bundle: true,
                };
                let verdict =
                    verify::check(source, &image.digest, both, &check.policy, trust, counts).await;
                if let Some(why) = check.refusal(&verdict) {
                    return Some((Code::SourceSignature, why));
                }
            }
            let requirement = provenance.as_ref()?;
            provenance::refusal(source, &image.digest, requirement, trust, counts)
                .await
                .map(|why| (Code::SourceProvenance, why))
        })
        .buffered(config.concurrency)
        .collect()
        .await;
    Ok(verdicts
        .into_iter()
        .enumerate()
        .filter_map(|(index, verdict)| {
            let (code, why) = verdict?;
            let image = &plan.images[index];
            let message = format!("{}@{}: {why}; not promoted", sources[index], image.digest);
            Some((index, code, message))
        })
        .collect())
}
