//! The `run` command: check the manifests, read what every destination
//! holds, plan, and (with `--confirm`) copy and sign. Named, timed phases,
//! each through [`phase`]:
//!
//! parse -> inventory -> plan (classify, then the source gate) -> copy ->
//! sign -> report.
//!
//! Without `--confirm` it stops after the plan (a dry run) and writes
//! nothing anywhere. The flags are resolved once ([`RunConfig`]); the
//! phases get what they need from it and hand their results on as values.

pub mod copy;
pub mod gate;
pub mod inventory;
pub mod sign;

use std::future::Future;
use std::time::Instant;

use anyhow::Context;
use tracing::Instrument;

use crate::check;
use crate::cli::{RunArgs, RunFormat};
use crate::config::{self, RunConfig};
use crate::diagnostic::{Diagnostic, Outcome, SeverityCounts, Sources};
use crate::plan;
use crate::report::run::{RunReport, SigningTotals, Timings};
use crate::report::{self, Format, RenderOptions};

/// Runs `work` as the phase `name`: inside a `tracing` span named `phase`
/// (field `name`), timed into `timings`, its error wrapped with the
/// phase's name.
///
/// # Errors
///
/// Those of `work`.
pub async fn phase<T>(
    timings: &mut Timings,
    name: &'static str,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let span = tracing::info_span!("phase", name = %name);
    let started = Instant::now();
    let result = work.instrument(span).await;
    timings.record(name, started.elapsed());
    result.map_err(|err| err.context(InPhase(name)))
}

/// The context [`phase`] puts on an error: "phase `copy` failed". The
/// binary prints it after the error it carries, so that the first line a
/// user reads is what went wrong.
#[derive(Debug)]
pub struct InPhase(pub &'static str);

impl std::fmt::Display for InPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "phase `{}` failed", self.0)
    }
}

/// What the copy and sign phases did, for the report.
#[derive(Default)]
struct Done {
    copy: Option<crate::copy::CopyStats>,
    signing: Option<std::sync::Arc<crate::sign::store::RequestCounts>>,
    promoted: usize,
    failed: usize,
}

/// Runs `promoter run`; `render` says how to print the human report
/// (colour).
///
/// # Errors
///
/// When the run cannot go on at all (a bad flag, an unreadable file, an
/// unusable registry name); problems of single images are diagnostics.
pub async fn run(args: &RunArgs, render: &RenderOptions) -> anyhow::Result<Outcome> {
    // A bad `--shards` setup fails before any work.
    let shard = args.shard()?;
    let mut timings = Timings::default();
    let run_started = crate::sign::now();

    // Invalid manifests stop the run.
    let (loaded, mut diagnostics) = phase(&mut timings, "parse", async {
        check::diagnose(&args.check_args())
    })
    .await?;
    if SeverityCounts::of(&diagnostics).errors > 0 {
        let format = args.format.unwrap_or_else(config::default_format);
        report::render(
            report_format(format),
            &mut std::io::stdout().lock(),
            &diagnostics,
            &loaded.sources,
            render,
        )?;
        eprintln!("promoter: the manifests have errors (above); nothing was promoted");
        return Ok(Outcome::Findings);
    }
    diagnostics.retain(|d| d.severity == crate::diagnostic::Severity::Error);
    let mut wants = plan::wants(&loaded.manifests);
    if let Some(shard) = shard {
        crate::shard::retain(&mut wants, shard);
    }
    let mut config = RunConfig::resolve(args)?;

    let knowledge = phase(
        &mut timings,
        "inventory",
        inventory::inventory(&config, &wants, &mut diagnostics),
    )
    .await?;
    let plan = phase(
        &mut timings,
        "plan",
        gate::plan(&config, &wants, &knowledge, &mut diagnostics),
    )
    .await?;

    let done = if config.confirm && !plan.is_noop() {
        promote(
            args,
            &mut config,
            &plan,
            &mut diagnostics,
            &mut timings,
            run_started,
        )
        .await?
    } else {
        Done::default()
    };

    let report = RunReport {
        schema_version: crate::report::run::RUN_SCHEMA_VERSION,
        confirm: config.confirm,
        plan: plan.into(),
        diagnostics,
        copy: done.copy,
        signing: done.signing.as_deref().map(SigningTotals::from),
        promoted: done.promoted,
        failed: done.failed,
        seconds: timings,
        requests: config.registries.stats(),
        shard,
    };
    write_report(&config, &report, &loaded.sources, render)?;
    Ok(Outcome::of(&report.diagnostics))
}

/// The copy and sign phases (with `--confirm`, when there is work).
async fn promote(
    args: &RunArgs,
    config: &mut RunConfig,
    plan: &plan::Plan,
    diagnostics: &mut Vec<Diagnostic>,
    timings: &mut Timings,
    run_started: i64,
) -> anyhow::Result<Done> {
    let copied = phase(timings, "copy", copy::copy(config, plan, diagnostics)).await?;
    let facts = crate::attest::statement::RunFacts::detect(
        args.manifests.manifest.as_deref().or(args
            .manifests
            .thin_manifest_dir
            .first()
            .map(|p| p.as_path())),
        run_started,
    );
    // Nothing is signed or replicated where the copy failed: signing moves
    // on to the next destination that holds the image.
    let work: Vec<_> = plan
        .signatures
        .iter()
        .filter_map(|w| {
            let digest = w.digest;
            w.clone()
                .without(|repo| copied.failures.contains(&(repo.clone(), digest)))
        })
        .collect();
    let identity = std::mem::replace(&mut config.signing.identity, config::Signing::Off);
    if matches!(identity, config::Signing::Unavailable) && copied.promoted > 0 {
        sign::note_unsigned();
    }
    let signing = phase(
        timings,
        "sign",
        sign::sign(config, identity, &work, facts, diagnostics),
    )
    .await?;
    Ok(Done {
        copy: Some(copied.stats),
        signing,
        promoted: copied.promoted,
        failed: copied.failed,
    })
}

/// The report phase: stdout in `--format`, the JSON file of `--report`.
fn write_report(
    config: &RunConfig,
    report: &RunReport,
    sources: &Sources,
    render: &RenderOptions,
) -> anyhow::Result<()> {
    let span = tracing::info_span!("phase", name = "report");
    let _entered = span.enter();
    let mut out = std::io::stdout().lock();
    match config.format {
        RunFormat::Json => report::run::write_json(&mut out, report)?,
        format @ (RunFormat::Human | RunFormat::Github) => {
            report::run::write_text(&mut out, report_format(format), report, sources, render)?;
        }
    }
    if let Some(path) = &config.report {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        serde_json::to_writer_pretty(file, report)?;
    }
    Ok(())
}

fn report_format(format: RunFormat) -> Format {
    match format {
        RunFormat::Human => Format::Human,
        RunFormat::Json => Format::Json,
        RunFormat::Github => Format::Github,
    }
}

/// A problem of one run step with one repository: reported, and the rest of
/// the plan goes on.
fn registry_error(repo: &plan::Repo, err: &crate::registry::Error) -> Diagnostic {
    Diagnostic::new(
        crate::diagnostic::Code::CopyFailed,
        None,
        format!("cannot read `{repo}`: {err}"),
    )
    .help("check the registry name, your credentials and the network; the rest of the plan goes on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_phase_is_timed_and_its_error_named() {
        let mut timings = Timings::default();
        let value = phase(&mut timings, "inventory", async { Ok(7) })
            .await
            .unwrap();
        assert_eq!(value, 7);
        let err = phase(&mut timings, "copy", async {
            Err::<(), _>(anyhow::anyhow!("registry down"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "phase `copy` failed");
        assert_eq!(err.root_cause().to_string(), "registry down");
        let names: Vec<&str> = timings.phases().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["inventory", "copy"]);
    }
}
