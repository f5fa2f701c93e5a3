//! The copy phase of `run` (only with `--confirm`): every image of the
//! plan to every destination that needs it, through [`crate::copy`], with
//! progress on stderr. A failed (image, destination) is one diagnostic at
//! the image's place in the manifests; the others go on.

use crate::config::RunConfig;
use crate::copy::{self as copier, CopyJob, CopyOptions, CopyStats, Target};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::{Plan, Repo};
use crate::registry::Digest;

/// What the copy phase did.
pub struct Copied {
    pub stats: CopyStats,
    /// (image, destination) pairs copied or tagged, and failed.
    pub promoted: usize,
    pub failed: usize,
    /// The (destination, digest) pairs whose copy failed: nothing is
    /// signed or replicated there.
    pub failures: std::collections::HashSet<(Repo, Digest)>,
}

/// Copies `plan`.
///
/// # Errors
///
/// When a registry name cannot be opened at all.
pub async fn copy(
    config: &RunConfig,
    plan: &Plan,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<Copied> {
    let mut jobs = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        let mut targets = Vec::with_capacity(image.targets.len());
        for t in &image.targets {
            targets.push(Target {
                registry: config.registries.get(&t.destination.registry)?,
                repo: t.destination.repo.clone(),
                copy: t.copy,
                tags: t.tags.clone(),
            });
        }
        jobs.push(CopyJob {
            source: config.registries.get(&image.source.registry)?,
            source_repo: image.source.repo.clone(),
            digest: image.digest,
            targets,
        });
    }
    let progress =
        crate::progress::Progress::new(plan.images.iter().map(|i| i.targets.len()).sum());
    let report = copier::execute(
        jobs,
        &CopyOptions {
            concurrency: config.concurrency,
            ..CopyOptions::default()
        },
        &|event| progress.on(event),
    )
    .await;
    let mut copied = Copied {
        stats: report.stats,
        promoted: 0,
        failed: 0,
        failures: std::collections::HashSet::new(),
    };
    for outcome in &report.outcomes {
        let Err(err) = &outcome.result else {
            copied.promoted += 1;
            continue;
        };
        copied.failed += 1;
        let image = &plan.images[outcome.job];
        let target = &image.targets[outcome.target];
        copied
            .failures
            .insert((target.destination.clone(), image.digest));
        diagnostics.push(
            Diagnostic::new(
                Code::CopyFailed,
                Some(image.at.clone()),
                format!(
                    "copying `{}@{}` to `{}` failed: {err}",
                    image.source, image.digest, target.destination
                ),
            )
            .help("run again: finished work is skipped and the copy resumes; a tag is only written once its image is complete"),
        );
    }
    Ok(copied)
}
