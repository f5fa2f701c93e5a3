//! The `run` command: check the manifests, read what every destination
//! holds, plan, and (with `--confirm`) copy. Named, timed phases:
//! parse -> inventory -> plan -> copy -> report. Without `--confirm` it
//! stops after the plan (a dry run) and writes nothing anywhere.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use crate::check::{self, Outcome};
use crate::cli::{RunArgs, RunFormat};
use crate::copy::{self, CopyJob, CopyOptions, CopyStats, Target};
use crate::diagnostic::{Code, Counts, Diagnostic, Location, Severity};
use crate::plan::{self, Knowledge, Names, Plan, Repo, RepoId};
use crate::registry::http::{HostStats, HttpClient, HttpOptions};
use crate::registry::{self, Reference, Registry};
use crate::report::{self, Format, RenderOptions};

/// How long each phase took, in order.
#[derive(Debug, Default, Serialize)]
pub struct Timings(Vec<(&'static str, f64)>);

impl Timings {
    fn record(&mut self, phase: &'static str, since: Instant) {
        self.0.push((phase, since.elapsed().as_secs_f64()));
    }
}

/// What a run did, for the JSON report and the summary line.
#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub confirm: bool,
    pub plan: &'a Plan,
    pub diagnostics: &'a [Diagnostic],
    pub copy: Option<&'a CopyStats>,
    /// Signing and attestation requests and writes, when anything was
    /// signed: Fulcio, Rekor, digests signed, attestations written,
    /// artifacts replicated, manifests and blobs pushed, reads.
    pub signing: Option<&'a crate::sign::store::Counts>,
    /// Images (per destination) copied or tagged, and failed.
    pub promoted: usize,
    pub failed: usize,
    pub seconds: &'a Timings,
    /// Requests per registry host (retries included), with their outcomes.
    pub requests: Vec<HostStats>,
    /// The shard this run did (`--shard`, `--shards`), if not the whole tree.
    pub shard: Option<crate::shard::Shard>,
}

/// The registries of a run, opened once each.
struct Registries {
    client: HttpClient,
    open: HashMap<String, Arc<dyn Registry>>,
}

impl Registries {
    fn get(&mut self, key: &str) -> anyhow::Result<Arc<dyn Registry>> {
        if let Some(r) = self.open.get(key) {
            return Ok(r.clone());
        }
        let r = registry::open(key, &self.client)
            .with_context(|| format!("cannot use registry `{key}`"))?;
        self.open.insert(key.to_string(), r.clone());
        Ok(r)
    }
}

/// Runs `promoter run`.
pub async fn run(args: &RunArgs) -> anyhow::Result<Outcome> {
    // A bad `--shards` setup fails before any work.
    let shard = args.shard()?;
    let mut timings = Timings::default();
    let run_started = crate::sign::now();

    // Phase 1: parse and validate. Invalid manifests stop the run.
    let started = Instant::now();
    let (loaded, mut diagnostics) = check::diagnose(&args.check_args())?;
    timings.record("parse", started);
    if Counts::of(&diagnostics).errors > 0 {
        let format = args.format.unwrap_or_else(default_format);
        report::render(
            report_format(format),
            &mut std::io::stdout().lock(),
            &diagnostics,
            &loaded.sources,
            &RenderOptions::default(),
        )?;
        eprintln!("promoter: the manifests have errors (above); nothing was promoted");
        return Ok(Outcome::Findings);
    }
    diagnostics.retain(|d| d.severity == Severity::Error);
    let mut wants = plan::wants(&loaded.manifests);
    if let Some(shard) = shard {
        crate::shard::retain(&mut wants, shard);
    }

    let mut options = HttpOptions {
        insecure_registries: args.insecure_registry.clone(),
        credentials: registry::credentials::CredentialStore::from_env(),
        ..HttpOptions::default()
    };
    options.rate.initial_rps = args.max_rps;
    options.rate.per_host_rps = args.max_rps_host.iter().cloned().collect();
    options.rate.mode = match args.limiter {
        crate::cli::LimiterArg::Adaptive => crate::registry::http::LimiterMode::Adaptive,
        crate::cli::LimiterArg::Kpromo => crate::registry::http::LimiterMode::Kpromo,
    };
    for path in &args.registry_ca {
        options.extra_ca_pem.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read --registry-ca {}", path.display()))?,
        );
    }
    let mut registries = Registries {
        client: HttpClient::new(options).context("cannot set up the HTTP client")?,
        open: HashMap::new(),
    };
    let concurrency = args.concurrency.max(1);

    // Phase 2: inventory. One listing per destination repository, then one
    // HEAD per digest that no listing settled, then one HEAD per source
    // image still to copy. Each listing is absorbed (reduced to the facts
    // the plan needs) as it arrives.
    let started = Instant::now();
    let names = &wants.names;
    let mut knowledge = Knowledge::default();
    let listings = wants.destinations();
    let mut results = for_each(
        &mut registries,
        names,
        listings,
        concurrency,
        |reg, repo| {
            let repo_name = names.repo(repo).repo.clone();
            async move {
                // Only tags some manifest names need resolving.
                let wanted = |tag: &str| names.tag_id(tag).is_some();
                reg.inventory_of(&repo_name, &wanted)
                    .await
                    .map(|inv| (repo, inv))
            }
        },
    )?;
    // A destination that could not be listed gets nothing: where its tags
    // point is unknown, and a tag is never overwritten.
    let mut unlisted = std::collections::HashSet::new();
    while let Some(result) = results.next().await {
        match result {
            Ok((repo, inventory)) => knowledge.absorb(&wants, repo, inventory),
            Err((repo, err)) => {
                diagnostics.push(registry_error(names.repo(repo), &err));
                unlisted.insert(names.repo(repo).clone());
            }
        }
    }
    drop(results);
    let unknown = plan::unknown_digests(&wants, &knowledge);
    for (repo, digest, found) in heads(
        &mut registries,
        names,
        unknown,
        concurrency,
        &mut diagnostics,
    )
    .await?
    {
        if found {
            knowledge.present.insert((repo, digest));
        }
    }
    let first_plan = plan::classify(&wants, &knowledge);
    let to_copy: Vec<(RepoId, registry::Digest)> = first_plan
        .images
        .iter()
        .filter(|i| i.targets.iter().any(|t| t.copy))
        .filter_map(|i| Some((names.repo_id(&i.source)?, i.digest)))
        .collect();
    for (repo, digest, found) in heads(
        &mut registries,
        names,
        to_copy,
        concurrency,
        &mut diagnostics,
    )
    .await?
    {
        if !found {
            knowledge.lost.insert((repo, digest));
        }
    }
    timings.record("inventory", started);

    // Phase 3: plan (pure).
    let started = Instant::now();
    let mut plan = plan::classify(&wants, &knowledge);
    for image in &mut plan.images {
        image.targets.retain(|t| !unlisted.contains(&t.destination));
    }
    plan.images.retain(|i| !i.targets.is_empty());
    diagnostics.extend(plan.diagnostics.iter().cloned());
    // A bad staging signature (with a source policy) or bad staging
    // provenance stops its image before anything of it is written.
    let refused =
        crate::sign::phase::refused_sources(&args.signing, &plan, concurrency, &mut |name| {
            registries.get(name)
        })
        .await?;
    for (index, code, reason) in refused.into_iter().rev() {
        let image = plan.images.remove(index);
        let at = names
            .repo_id(&image.source)
            .and_then(|id| {
                wants
                    .items
                    .iter()
                    .find(|w| w.source == id && w.digest == image.digest)
            })
            .map(|w| w.at.clone());
        let help = if code == Code::SourceProvenance {
            "attest the staging image's build with an allowed builder, or fix --allowed-builder / --certificate-identity"
        } else {
            "sign the staging image with the expected identity, or fix the policy flags"
        };
        diagnostics.push(Diagnostic::new(code, at, reason).help(help));
    }
    timings.record("plan", started);

    // Phase 4: copy, only with --confirm.
    let mut copy_stats = None;
    let mut signing = None;
    let mut promoted = 0;
    let mut failed = 0;
    if args.confirm && !plan.is_noop() {
        let started = Instant::now();
        let mut jobs = Vec::with_capacity(plan.images.len());
        let mut places: Vec<Option<Location>> = Vec::with_capacity(plan.images.len());
        let wanted_at: HashMap<(RepoId, registry::Digest), &Location> = wants
            .items
            .iter()
            .map(|w| ((w.source, w.digest), &w.at))
            .collect();
        for image in &plan.images {
            let mut targets = Vec::with_capacity(image.targets.len());
            for t in &image.targets {
                targets.push(Target {
                    registry: registries.get(&t.destination.registry)?,
                    repo: t.destination.repo.clone(),
                    copy: t.copy,
                    tags: t.tags.clone(),
                });
            }
            jobs.push(CopyJob {
                source: registries.get(&image.source.registry)?,
                source_repo: image.source.repo.clone(),
                digest: image.digest,
                targets,
            });
            places.push(
                names
                    .repo_id(&image.source)
                    .and_then(|id| wanted_at.get(&(id, image.digest)))
                    .map(|l| (*l).clone()),
            );
        }
        let progress =
            crate::progress::Progress::new(plan.images.iter().map(|i| i.targets.len()).sum());
        let report = copy::execute(
            jobs,
            &CopyOptions {
                concurrency,
                ..CopyOptions::default()
            },
            &|event| progress.on(event),
        )
        .await;
        for outcome in &report.outcomes {
            match &outcome.result {
                Ok(()) => promoted += 1,
                Err(err) => {
                    failed += 1;
                    let image = &plan.images[outcome.job];
                    let target = &image.targets[outcome.target];
                    diagnostics.push(
                        Diagnostic::new(
                            Code::CopyFailed,
                            places[outcome.job].clone(),
                            format!(
                                "copying `{}@{}` to `{}` failed: {err}",
                                image.source, image.digest, target.destination
                            ),
                        )
                        .help("run again: finished work is skipped and the copy resumes; a tag is only written once its image is complete"),
                    );
                }
            }
        }
        copy_stats = Some(report.stats);
        timings.record("copy", started);

        // Sign and attest each promoted digest once, replicate to the other
        // mirrors.
        let started = Instant::now();
        let (problems, counts) = crate::sign::phase::run_phase(
            &args.signing,
            &plan,
            &places,
            crate::attest::statement::RunFacts::detect(
                args.manifests.manifest.as_deref().or(args
                    .manifests
                    .thin_manifest_dir
                    .first()
                    .map(|p| p.as_path())),
                run_started,
            ),
            &mut |name| registries.get(name),
        )
        .await;
        diagnostics.extend(problems);
        signing = counts;
        timings.record("sign", started);
    }

    // Phase 5: report.
    let format = args.format.unwrap_or_else(default_format);
    let report = RunReport {
        confirm: args.confirm,
        plan: &plan,
        diagnostics: &diagnostics,
        copy: copy_stats.as_ref(),
        signing: signing.as_deref(),
        promoted,
        failed,
        seconds: &timings,
        requests: registries.client.stats(),
        shard,
    };
    let mut out = std::io::stdout().lock();
    match format {
        RunFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        RunFormat::Human | RunFormat::Github => {
            write_plan_table(&mut out, &plan)?;
            report::render(
                report_format(format),
                &mut out,
                &diagnostics,
                &loaded.sources,
                &RenderOptions::default(),
            )?;
            write_summary(&mut out, &report)?;
        }
    }
    if let Some(path) = &args.report {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        serde_json::to_writer_pretty(file, &report)?;
    }
    Ok(if Counts::of(&diagnostics).errors > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

fn default_format() -> RunFormat {
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        RunFormat::Github
    } else {
        RunFormat::Human
    }
}

fn report_format(format: RunFormat) -> Format {
    match format {
        RunFormat::Human => Format::Human,
        RunFormat::Json => Format::Json,
        RunFormat::Github => Format::Github,
    }
}

/// Runs `op` on every item with at most `concurrency` in flight, as a
/// stream of results. Each item names its repository; its registry is
/// opened once. Errors come back with their item, so one failing repository
/// is one finding and the rest go on.
fn for_each<'a, I, T, F, Fut>(
    registries: &mut Registries,
    names: &Names,
    items: Vec<I>,
    concurrency: usize,
    op: F,
) -> anyhow::Result<impl futures_util::Stream<Item = Result<T, (I, registry::Error)>> + 'a>
where
    I: Copy + RepoOf + 'a,
    T: 'a,
    F: Fn(Arc<dyn Registry>, I) -> Fut + 'a,
    Fut: std::future::Future<Output = registry::Result<T>> + 'a,
{
    let mut work = Vec::with_capacity(items.len());
    for item in items {
        let reg = registries.get(&names.repo(item.repo()).registry)?;
        work.push((reg, item));
    }
    Ok(stream::iter(work)
        .map(move |(reg, item)| {
            let fut = op(reg, item);
            async move { fut.await.map_err(|e| (item, e)) }
        })
        .buffer_unordered(concurrency))
}

/// HEADs each (repository, digest): whether the manifest is there.
async fn heads(
    registries: &mut Registries,
    names: &Names,
    items: Vec<(RepoId, registry::Digest)>,
    concurrency: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<Vec<(RepoId, registry::Digest, bool)>> {
    let mut out = Vec::with_capacity(items.len());
    let mut results = for_each(
        registries,
        names,
        items,
        concurrency,
        |reg, (repo, digest)| {
            let repo_name = names.repo(repo).repo.clone();
            async move {
                reg.head_manifest(&repo_name, &Reference::from(digest))
                    .await
                    .map(|found| (repo, digest, found.is_some()))
            }
        },
    )?;
    while let Some(result) = results.next().await {
        match result {
            Ok(found) => out.push(found),
            Err(((repo, _), err)) => diagnostics.push(registry_error(names.repo(repo), &err)),
        }
    }
    Ok(out)
}

/// Items of [`for_each`] name the repository they concern.
trait RepoOf {
    fn repo(&self) -> RepoId;
}

impl RepoOf for RepoId {
    fn repo(&self) -> RepoId {
        *self
    }
}

impl RepoOf for (RepoId, registry::Digest) {
    fn repo(&self) -> RepoId {
        self.0
    }
}

fn registry_error(repo: &Repo, err: &registry::Error) -> Diagnostic {
    Diagnostic::new(
        Code::CopyFailed,
        None,
        format!("cannot read `{repo}`: {err}"),
    )
    .help("check the registry name, your credentials and the network; the rest of the plan goes on")
}

fn write_plan_table(out: &mut dyn Write, plan: &Plan) -> std::io::Result<()> {
    let c = &plan.counts;
    writeln!(
        out,
        "plan: {} done, {} to copy, {} tag only, {} tag moves refused, {} lost",
        c.done, c.copy, c.tag_only, c.tag_move, c.lost
    )?;
    if plan.images.is_empty() {
        return writeln!(
            out,
            "nothing to do: every destination already holds what the manifests say"
        );
    }
    // Group targets per destination registry for a compact table.
    let mut rows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for image in &plan.images {
        for t in &image.targets {
            let action = if t.copy { "copy" } else { "tag" };
            let short = &image.digest.to_string()[..19];
            let tags = if t.tags.is_empty() {
                "(by digest)".to_string()
            } else {
                t.tags.join(", ")
            };
            rows.entry((t.destination.to_string(), short.to_string()))
                .or_default()
                .push(format!("{action:<5} {tags}"));
        }
    }
    writeln!(out, "{:<60} {:<20} action tags", "destination", "digest")?;
    for ((dest, digest), actions) in rows {
        for action in actions {
            writeln!(out, "{dest:<60} {digest:<20} {action}")?;
        }
    }
    Ok(())
}

fn write_summary(out: &mut dyn Write, report: &RunReport<'_>) -> std::io::Result<()> {
    if let Some(stats) = report.copy {
        writeln!(
            out,
            "promoted {} image(s) to destinations, {} failed; {} blob(s) uploaded ({} bytes), {} mounted, {} already present; {} manifest(s) and {} tag(s) pushed",
            report.promoted,
            report.failed,
            stats.blobs_uploaded,
            stats.bytes_uploaded,
            stats.blobs_mounted,
            stats.blobs_skipped,
            stats.manifests_pushed,
            stats.tags_pushed
        )?;
    } else if !report.confirm && !report.plan.is_noop() {
        writeln!(
            out,
            "dry run: nothing was written; run again with --confirm to promote"
        )?;
    }
    if !report.requests.is_empty() {
        let hosts: Vec<String> = report
            .requests
            .iter()
            .map(|h| {
                let mut line = format!("{} {}", h.host, h.requests);
                if h.retries > 0 || h.throttled > 0 {
                    line.push_str(&format!(
                        " ({} retried, {} throttled)",
                        h.retries, h.throttled
                    ));
                }
                line
            })
            .collect();
        writeln!(out, "requests: {}", hosts.join(", "))?;
    }
    let phases: Vec<String> = report
        .seconds
        .0
        .iter()
        .map(|(phase, secs)| format!("{phase} {}", human_duration(Duration::from_secs_f64(*secs))))
        .collect();
    writeln!(out, "time: {}", phases.join(", "))
}

fn human_duration(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}
