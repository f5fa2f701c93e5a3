//! `promoter action`: the entrypoint of the GitHub Action's container.
//!
//! Reads the inputs (`INPUT_*`) and the run's context (`GITHUB_*`, the
//! event payload), decides what to do ([`mode::decide`]), does it, and
//! writes the results where people look: workflow annotations (printed by
//! the commands' GitHub reporter), a Check Run with every annotation, the
//! job summary, step outputs and, when asked, one pull-request comment.
//!
//! `check` runs in this process; `run` and `verify` run as child processes
//! of this same binary with `--format=github --report=FILE`, so that the
//! action passes their flags through unchanged (signing options included)
//! and reads their results from the JSON report. Publishing never changes
//! the exit code: a Check Run that cannot be created (a fork's read-only
//! token) leaves the annotations as the report.

pub mod api;
pub mod checkrun;
pub mod comment;
pub mod event;
pub mod inputs;
pub mod mode;
pub mod outputs;
pub mod summary;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::Value;

use crate::check::{self, Outcome};
use crate::cli::{CheckArgs, ManifestArgs};
use crate::diagnostic::{Diagnostic, SeverityCounts};
use crate::plan::ClassCounts;
use crate::report::run::{PlanReport, ReadReport};
use crate::report::{self, Format, RenderOptions};
use event::{Context, Event};
use inputs::{FailOn, Inputs};
use mode::Steps;

/// The step outputs the action writes (all of them on every run but
/// `report-path` and `images`, which need a plan). `action.yml` declares exactly these.
pub const OUTPUTS: &[&str] = &[
    "promoted",
    "skipped",
    "failed",
    "errors",
    "warnings",
    "conclusion",
    "report-path",
    "images",
];

/// What the steps produced.
#[derive(Debug, Default)]
pub struct Results {
    /// The diagnostics of every step, as this process and the reports of
    /// the commands it ran have them.
    pub findings: Vec<Diagnostic>,
    /// `plan` of the run report, when a run happened.
    pub plan: Option<PlanReport<Value>>,
    pub confirm: bool,
    pub promoted: usize,
    pub failed: usize,
    /// Phase name and seconds, in order.
    pub phases: Vec<(String, f64)>,
    /// The worst exit code of the steps (0, 1 or 2).
    pub exit: u8,
    /// Lines for the summary that explain what did not happen.
    pub notes: Vec<String>,
    /// The JSON report, when one was written.
    pub report_path: Option<String>,
}

impl Results {
    fn counts(&self) -> (usize, usize, usize) {
        let c = SeverityCounts::of(&self.findings);
        (c.errors, c.warnings, c.notes)
    }

    /// The plan's edge counts (all zero without a plan).
    #[must_use]
    pub fn plan_counts(&self) -> ClassCounts {
        self.plan.as_ref().map(|p| p.counts).unwrap_or_default()
    }
}

/// Runs the action. `Err` only when it cannot run at all (bad inputs, an
/// unreadable event, a command that failed with exit code 2).
///
/// # Errors
///
/// See above; the message names the input or file at fault.
pub async fn run() -> anyhow::Result<Outcome> {
    let var = |name: &str| std::env::var(name).ok();
    let inputs = Inputs::read(&var)?;
    let context = Context::read(&var)?;
    let steps = mode::decide(&inputs, &context.event)?;
    eprintln!("promoter action: {}", describe(&context.event, &steps));

    let mut results = Results::default();
    let summary_path = var("GITHUB_STEP_SUMMARY")
        .filter(|p| !p.is_empty() && inputs.summary)
        .map(std::path::PathBuf::from);

    let mut go_on = true;
    if let Some(base) = &steps.check {
        // After a merge the comparison was made on the pull request; a
        // shallow checkout without `before` must not block the promotion.
        let base_optional = matches!(context.event, Event::Push { .. });
        go_on = check_step(
            &inputs,
            base.as_deref(),
            base_optional,
            summary_path.as_deref(),
            &mut results,
        )?;
    }
    if let Some(confirm) = steps.run {
        if go_on {
            run_step(&inputs, confirm, &mut results)?;
        } else {
            results
                .notes
                .push("No plan was made: the check found errors.".into());
        }
    }
    if steps.verify {
        let started = Instant::now();
        let mut args = vec!["verify".to_string()];
        args.extend(inputs.manifest_args());
        if inputs.fix {
            args.push("--fix".into());
        }
        args.extend(inputs.pass_through_for(inputs::For::Verify));
        let code = child(&args)?;
        results
            .phases
            .push(("verify".into(), started.elapsed().as_secs_f64()));
        results.exit = results.exit.max(code);
        results.notes.push(match code {
            0 => "**Verify:** every destination image carries a valid signature.".into(),
            1 => "**Verify:** some destination images lack a valid signature; the table is \
                  in the log."
                .into(),
            _ => "**Verify:** `promoter verify` failed; its error is in the log.".into(),
        });
    }

    let failing = is_failing(&results, inputs.fail_on);
    publish(
        &inputs,
        &context,
        &results,
        failing,
        summary_path.as_deref(),
    )
    .await;

    if results.exit >= 2 {
        anyhow::bail!("a promoter command failed (its error is above)");
    }
    Ok(if failing {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// One line for the log: what the event made the action do.
fn describe(event: &Event, steps: &Steps) -> String {
    let event = match event {
        Event::PullRequest { number, .. } => format!("pull request #{number}"),
        Event::MergeGroup { .. } => "merge group".into(),
        Event::Push {
            to_default_branch: true,
            ..
        } => "push to the default branch".into(),
        Event::Push { .. } => "push".into(),
        Event::WorkflowDispatch => "workflow_dispatch".into(),
        Event::Schedule => "schedule".into(),
        Event::Other(name) if name.is_empty() => "no event (GITHUB_EVENT_NAME unset)".into(),
        Event::Other(name) => name.clone(),
    };
    let mut what = Vec::new();
    match &steps.check {
        Some(Some(base)) => what.push(format!("check against {base}")),
        Some(None) => what.push("check".into()),
        None => {}
    }
    match steps.run {
        Some(true) => what.push("promote (run --confirm)".into()),
        Some(false) => what.push("dry-run plan".into()),
        None => {}
    }
    if steps.verify {
        what.push("verify".into());
    }
    format!("{event}: {}", what.join(", then "))
}

/// `promoter check`, in this process. Returns whether later steps run.
fn check_step(
    inputs: &Inputs,
    base: Option<&str>,
    base_optional: bool,
    summary: Option<&Path>,
    results: &mut Results,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut args = CheckArgs {
        base_ref: base.map(String::from),
        format: Some(Format::Github),
        ..CheckArgs::of(ManifestArgs {
            manifest: inputs.manifest.as_ref().map(Into::into),
            thin_manifest_dir: inputs.thin_manifest_dirs.iter().map(Into::into).collect(),
        })
    };
    let first = check::diagnose(&args);
    let first = match (first, base) {
        (Err(err), Some(base)) if base_optional => {
            warn(&format!(
                "cannot compare the manifests with {base} ({err:#}); checked without the \
                 comparison. Give actions/checkout `fetch-depth: 0` to compare."
            ));
            args.base_ref = None;
            check::diagnose(&args)
        }
        (result, _) => result,
    };
    let (loaded, diagnostics) = first.with_context(|| match base {
        Some(base) => format!(
            "checking the manifests against the base commit {base} (is it in the checkout? \
             actions/checkout needs `fetch-depth: 0`)"
        ),
        None => "checking the manifests".into(),
    })?;
    let mut out = std::io::stdout().lock();
    report::render(
        Format::Github,
        &mut out,
        &diagnostics,
        &loaded.sources,
        &RenderOptions::default(),
    )?;
    out.flush()?;
    if let Some(path) = summary {
        report::write_step_summary(path, &diagnostics, &loaded.sources)
            .with_context(|| format!("cannot write the job summary {}", path.display()))?;
    }
    results
        .phases
        .push(("check".into(), started.elapsed().as_secs_f64()));
    let errors = SeverityCounts::of(&diagnostics).errors;
    results.findings.extend(diagnostics);
    if errors > 0 {
        results.exit = results.exit.max(1);
    }
    Ok(errors == 0)
}

/// `promoter run`, as a child process writing the JSON report.
fn run_step(inputs: &Inputs, confirm: bool, results: &mut Results) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut args = vec!["run".to_string()];
    args.extend(inputs.manifest_args());
    args.push("--format=github".into());
    args.push(format!("--report={}", inputs.report));
    if confirm {
        args.push("--confirm".into());
    }
    if let Some(sign) = inputs.sign {
        args.push(format!("--sign={sign}"));
    }
    args.extend(inputs.pass_through_for(inputs::For::Run));
    // A stale report must not pass for this run's.
    let _ = std::fs::remove_file(&inputs.report);
    let code = child(&args)?;
    results.exit = results.exit.max(code);
    results.confirm = confirm;
    let text = match std::fs::read_to_string(&inputs.report) {
        Ok(text) => text,
        Err(_) => {
            results
                .phases
                .push(("run".into(), started.elapsed().as_secs_f64()));
            results
                .notes
                .push("`promoter run` wrote no report (see the log).".into());
            return Ok(());
        }
    };
    let report = ReadReport::from_json(text.as_bytes())
        .with_context(|| format!("cannot read the report {}", inputs.report))?;
    results.report_path = Some(inputs.report.clone());
    results.findings.extend(report.diagnostics);
    results.promoted = report.promoted;
    results.failed = report.failed;
    for (name, secs) in report.seconds.phases() {
        results.phases.push((format!("run: {name}"), *secs));
    }
    results.plan = Some(report.plan);
    Ok(())
}

/// Runs this binary with `args`; its output goes straight to the log.
/// Returns its exit code (2 when it was killed by a signal).
fn child(args: &[String]) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find the promoter binary")?;
    eprintln!("promoter action: promoter {}", args.join(" "));
    let status = Command::new(exe)
        .args(args)
        // The action writes the summary and the outputs itself, and the
        // commands have no use for the token.
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("INPUT_GITHUB-TOKEN")
        .env("GITHUB_ACTIONS", "true")
        .status()
        .with_context(|| format!("cannot start `promoter {}`", args[0]))?;
    Ok(status
        .code()
        .map_or(2, |c| u8::try_from(c.clamp(0, 2)).unwrap_or(2)))
}

/// Whether the step fails: the commands' verdict, moved by `fail-on`.
fn is_failing(results: &Results, fail_on: FailOn) -> bool {
    let (errors, warnings, _) = results.counts();
    results.exit >= 2
        || match fail_on {
            FailOn::Error => results.exit >= 1 || errors > 0,
            FailOn::Warning => results.exit >= 1 || errors + warnings > 0,
            FailOn::Never => false,
        }
}

/// Writes the summary, the outputs, the Check Run and the comment. Never
/// fails: what cannot be published is said in the log.
async fn publish(
    inputs: &Inputs,
    context: &Context,
    results: &Results,
    failing: bool,
    summary_path: Option<&Path>,
) {
    let markdown = summary::markdown(results);
    if let Some(path) = summary_path
        && let Err(err) = summary::append(path, &markdown)
    {
        warn(&format!("cannot write the job summary: {err}"));
    }
    let conclusion = if failing { "failure" } else { "success" };
    write_outputs(results, conclusion);

    let (Some(token), Some(repository)) = (&inputs.github_token, &context.repository) else {
        if inputs.check_run || inputs.comment {
            eprintln!(
                "promoter action: no github-token or GITHUB_REPOSITORY: no Check Run, no comment"
            );
        }
        return;
    };
    let github = match api::GitHub::new(&context.api_url, repository, token) {
        Ok(github) => github,
        Err(err) => {
            warn(&format!("cannot reach the GitHub API: {err}"));
            return;
        }
    };
    if inputs.check_run
        && let Some(head_sha) = &context.head_sha
    {
        let run = checkrun::CheckRun {
            head_sha,
            conclusion,
            title: summary::title(results),
            summary: markdown.clone(),
            findings: &results.findings,
        };
        match checkrun::publish(&github, &run).await {
            Ok((id, requests)) => {
                eprintln!("promoter action: Check Run {id} created ({requests} request(s))")
            }
            Err(err) if err.is_forbidden() => eprintln!(
                "promoter action: no Check Run: the token may not create one ({err}); \
                     the annotations above are the report. A pull request from a fork gets a \
                     read-only token; elsewhere, grant `checks: write`."
            ),
            Err(err) => warn(&format!("cannot create the Check Run: {err}")),
        }
    }
    if inputs.comment
        && let Some(number) = context.event.pull_request()
    {
        match comment::upsert(&github, number, &markdown).await {
            Ok(written) => eprintln!("promoter action: pull request comment {written:?}"),
            Err(err) if err.is_forbidden() => eprintln!(
                "promoter action: no comment: the token may not write to the pull request \
                     ({err}); grant `pull-requests: write` (not available to forks)."
            ),
            Err(err) => warn(&format!("cannot write the pull request comment: {err}")),
        }
    }
}

/// The step's outputs, into `GITHUB_OUTPUT`.
fn write_outputs(results: &Results, conclusion: &str) {
    let (errors, warnings, _) = results.counts();
    let mut outs = vec![
        ("promoted", results.promoted.to_string()),
        ("skipped", results.plan_counts().done.to_string()),
        ("failed", results.failed.to_string()),
        ("errors", errors.to_string()),
        ("warnings", warnings.to_string()),
        ("conclusion", conclusion.to_string()),
    ];
    if let Some(path) = &results.report_path {
        outs.push(("report-path", path.clone()));
    }
    if let Some(plan) = &results.plan {
        outs.push(("images", outputs::images_json(&plan.images)));
    }
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty())
        && let Err(err) = outputs::write(Path::new(&path), &outs)
    {
        warn(&format!("cannot write the step outputs: {err}"));
    }
}

/// A warning annotation about the action itself (not about a manifest).
fn warn(message: &str) {
    let escaped = message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    println!("::warning title=promoter action::{escaped}");
}
