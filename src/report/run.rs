//! The report of `promoter run`: what it planned and did, as one typed
//! value ([`RunReport`]) that `run` writes as JSON (`--format json`,
//! `--report FILE`) or as text (the plan table, the problems and a
//! summary), and that `report merge` ([`super::merge`]) and the action
//! read back; and the lines the run prints on the way (the signing
//! totals).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::copy::CopyStats;
use crate::diagnostic::{Diagnostic, Sources};
use crate::plan::{ClassCounts, ImagePlan, Plan};
use crate::registry::http::HostStats;
use crate::shard::Shard;
use crate::sign::store::RequestCounts;

/// How long each phase took, in order: `(name, seconds)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings(Vec<(String, f64)>);

impl Timings {
    /// Adds phase `name`, which took `took`.
    pub fn record(&mut self, name: &str, took: Duration) {
        self.0.push((name.to_owned(), took.as_secs_f64()));
    }

    /// The phases so far.
    pub fn phases(&self) -> &[(String, f64)] {
        &self.0
    }

    /// Keeps, per phase, the longest of `self` and `other` (shards run
    /// side by side); phases new to `self` are added at the end.
    pub fn longest(&mut self, other: Timings) {
        for (phase, seconds) in other.0 {
            match self.0.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, longest)) => *longest = longest.max(seconds),
                None => self.0.push((phase, seconds)),
            }
        }
    }
}

impl PartialEq<Vec<(String, f64)>> for Timings {
    fn eq(&self, other: &Vec<(String, f64)>) -> bool {
        &self.0 == other
    }
}

/// The plan part of a report: the images to copy or tag (`I`: an
/// [`ImagePlan`] when written; kept as JSON by the readers, which only
/// pass them on or show them) and the edge counts.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanReport<I = ImagePlan> {
    #[serde(default = "Vec::new")]
    pub images: Vec<I>,
    #[serde(default)]
    pub counts: ClassCounts,
    /// The digests to sign (`sign`: where) and whose signatures to
    /// replicate (`from`, `to`), when signing is on: a
    /// [`crate::plan::signatures::SignatureWork`] each, as JSON.
    #[serde(default)]
    pub signatures: Vec<serde_json::Value>,
}

impl<I> Default for PlanReport<I> {
    fn default() -> Self {
        PlanReport {
            images: Vec::new(),
            counts: ClassCounts::default(),
            signatures: Vec::new(),
        }
    }
}

impl From<Plan> for PlanReport {
    fn from(plan: Plan) -> PlanReport {
        PlanReport {
            images: plan.images,
            counts: plan.counts,
            signatures: plan
                .signatures
                .iter()
                .filter_map(|w| serde_json::to_value(w).ok())
                .collect(),
        }
    }
}

impl<I> PlanReport<I> {
    /// True when nothing needed to change.
    pub fn is_noop(&self) -> bool {
        self.images.is_empty() && self.signatures.is_empty()
    }
}

/// Signing and attestation requests and writes of a run, per kind (the
/// totals of `sign::store::RequestCounts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigningTotals {
    /// Certificates requested from Fulcio.
    pub fulcio: u64,
    /// Entries submitted to Rekor.
    pub rekor: u64,
    /// RFC 3161 timestamps asked of the timestamp authority.
    pub timestamps: u64,
    /// Digests signed on their first destination.
    pub signed: u64,
    /// Attestations written on a first destination.
    pub attested: u64,
    /// Signature artifacts copied to another destination.
    pub replicated: u64,
    /// Manifests pushed.
    pub manifests_pushed: u64,
    /// Blobs pushed or mounted.
    pub blobs_pushed: u64,
    /// Manifest reads and blob existence checks.
    pub reads: u64,
}

impl From<&RequestCounts> for SigningTotals {
    fn from(c: &RequestCounts) -> SigningTotals {
        crate::counter::snapshot!(c => SigningTotals {
            fulcio, rekor, timestamps, signed, attested, replicated, manifests_pushed, blobs_pushed, reads,
        })
    }
}

/// What a run did: the JSON report (`--format json`, `--report FILE`),
/// the text summary, and what `report merge` and the action read back.
/// Every field has a default, so that an older or partial report reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunReport<I = ImagePlan> {
    /// [`RUN_SCHEMA_VERSION`] when written; a report from before the field
    /// existed has the same shape and reads as version 1.
    #[serde(default = "first_version")]
    pub schema_version: u32,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub plan: PlanReport<I>,
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
    #[serde(default)]
    pub copy: Option<CopyStats>,
    /// Signing and attestation requests and writes, when anything was
    /// signed: Fulcio, Rekor, digests signed, attestations written,
    /// artifacts replicated, manifests and blobs pushed, reads.
    #[serde(default)]
    pub signing: Option<SigningTotals>,
    /// Images (per destination) copied or tagged, and failed.
    #[serde(default)]
    pub promoted: usize,
    #[serde(default)]
    pub failed: usize,
    #[serde(default)]
    pub seconds: Timings,
    /// Requests per registry host (retries included), with their outcomes.
    #[serde(default)]
    pub requests: Vec<HostStats>,
    /// The shard this run did (`--shard`, `--shards`), if not the whole tree.
    #[serde(default)]
    pub shard: Option<Shard>,
}

/// The version of the run report's shape (`docs/report-schema.md`). It
/// grows only when a field changes meaning or goes away.
pub const RUN_SCHEMA_VERSION: u32 = 1;

fn first_version() -> u32 {
    1
}

impl<I> Default for RunReport<I> {
    fn default() -> Self {
        RunReport {
            schema_version: RUN_SCHEMA_VERSION,
            confirm: false,
            plan: PlanReport::default(),
            diagnostics: Vec::new(),
            copy: None,
            signing: None,
            promoted: 0,
            failed: 0,
            seconds: Timings::default(),
            requests: Vec::new(),
            shard: None,
        }
    }
}

/// A run report as its readers take it: the images as JSON.
pub type ReadReport = RunReport<serde_json::Value>;

impl ReadReport {
    /// Reads the JSON report at `bytes`.
    ///
    /// # Errors
    ///
    /// When it is not JSON or not shaped like a run report.
    pub fn from_json(bytes: &[u8]) -> serde_json::Result<ReadReport> {
        serde_json::from_slice(bytes)
    }
}

/// Writes `report` as pretty JSON, then a newline.
///
/// # Errors
///
/// Only those of `out`.
pub fn write_json(out: &mut dyn Write, report: &RunReport) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

/// Writes `report` as text: the plan table, the problems in `format`
/// (human or GitHub annotations), then the summary.
///
/// # Errors
///
/// Only those of `out`.
pub fn write_text(
    out: &mut dyn Write,
    format: super::Format,
    report: &RunReport,
    sources: &Sources,
    render: &super::RenderOptions,
) -> io::Result<()> {
    write_plan_table(out, &report.plan)?;
    super::render(format, out, &report.diagnostics, sources, render)?;
    write_summary(out, report)
}

fn write_plan_table(out: &mut dyn Write, plan: &PlanReport) -> io::Result<()> {
    let c = &plan.counts;
    writeln!(
        out,
        "plan: {} done, {} to copy, {} tag only, {} tag moves refused, {} lost",
        c.done, c.copy, c.tag_only, c.tag_move, c.lost
    )?;
    write_signature_plan(out, &plan.signatures)?;
    if plan.is_noop() {
        return writeln!(
            out,
            "nothing to do: every destination already holds what the manifests say"
        );
    }
    if plan.images.is_empty() {
        return Ok(());
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

/// One line: how many digests are signed and to how many destinations
/// signatures are replicated (`to` of each work).
fn write_signature_plan(out: &mut dyn Write, work: &[serde_json::Value]) -> io::Result<()> {
    if work.is_empty() {
        return Ok(());
    }
    let sign = work.iter().filter(|w| !w["sign"].is_null()).count();
    let copies: usize = work
        .iter()
        .map(|w| w["to"].as_array().map_or(0, Vec::len))
        .sum();
    writeln!(
        out,
        "signatures: {sign} digest(s) to sign, {} signed elsewhere to replicate; {copies} destination image(s) to receive signatures",
        work.len() - sign
    )
}

fn write_summary(out: &mut dyn Write, report: &RunReport) -> io::Result<()> {
    if let Some(stats) = &report.copy {
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
        .phases()
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

/// The line the sign phase ends with: what it signed, attested and
/// replicated, and what that cost.
///
/// # Errors
///
/// Only those of `out`.
pub fn write_signing_totals(out: &mut dyn Write, totals: &SigningTotals) -> io::Result<()> {
    writeln!(
        out,
        "promoter: signed {} digest(s), wrote {} attestation(s) (Fulcio {} request(s), Rekor {} entr(ies)); signatures copied to {} destination(s); {} manifest(s) and {} blob(s) pushed",
        totals.signed,
        totals.attested,
        totals.fulcio,
        totals.rekor,
        totals.replicated,
        totals.manifests_pushed,
        totals.blobs_pushed,
    )
}
