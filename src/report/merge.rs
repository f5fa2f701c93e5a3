//! `promoter report merge`: the JSON reports of a sharded run's shards
//! (`run --shard I/N --report FILE`), combined into what one run would have
//! reported: one plan with summed counts, one list of problems, summed copy
//! and request statistics, and one outcome, the worst of the shards.
//!
//! This module reads reports, builds the merged one and hands it to the
//! reporters of this directory; the exit code follows the worst
//! [`Outcome`]. Reports are read as data, field by field, so that a report
//! written by a newer promoter with extra fields still merges.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::Outcome;
use crate::diagnostic::{self, Code, Counts, Diagnostic, Location, Related, Severity};
use crate::shard::Shard;

/// Why reports could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the shard report {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a `promoter run` JSON report: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error(
        "expected the reports of shards 0 to {last} of {count}; {problem}; did every shard upload its report?",
        last = count.saturating_sub(1)
    )]
    Incomplete { count: u32, problem: String },
}

/// Edge counts per class, as `run` reports them in `plan.counts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EdgeCounts {
    pub done: u64,
    pub copy: u64,
    pub tag_only: u64,
    pub tag_move: u64,
    pub lost: u64,
}

impl EdgeCounts {
    fn add(&mut self, other: &EdgeCounts) {
        self.done += other.done;
        self.copy += other.copy;
        self.tag_only += other.tag_only;
        self.tag_move += other.tag_move;
        self.lost += other.lost;
    }

    /// Every edge, whatever its class.
    pub fn total(&self) -> u64 {
        self.done + self.copy + self.tag_only + self.tag_move + self.lost
    }
}

/// The plan part of a report.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MergedPlan {
    /// Every shard's images, in shard order.
    pub images: Vec<Value>,
    pub counts: EdgeCounts,
}

/// One shard's line in the merged report.
#[derive(Debug, Serialize)]
pub struct ShardLine {
    pub file: PathBuf,
    pub shard: Option<Shard>,
    pub outcome: &'static str,
    pub edges: u64,
    pub errors: usize,
}

/// The merged report: the shape of `run`'s report, plus the shards.
#[derive(Debug, Serialize)]
pub struct MergedReport {
    pub shards: Vec<ShardLine>,
    pub confirm: bool,
    pub plan: MergedPlan,
    #[serde(serialize_with = "serialize_diagnostics")]
    pub diagnostics: Vec<Diagnostic>,
    /// Copy statistics, summed; `null` when no shard copied.
    pub copy: Option<Value>,
    /// Signing statistics, summed; `null` when no shard signed.
    pub signing: Option<Value>,
    /// Request statistics, summed per host, when the shards reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Value>,
    pub promoted: u64,
    pub failed: u64,
    /// Per phase, the longest shard: shards run side by side.
    pub seconds: Vec<(String, f64)>,
}

fn serialize_diagnostics<S: serde::Serializer>(
    diagnostics: &[Diagnostic],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(diagnostics)
}

/// A shard report as read: only what merging needs.
#[derive(Deserialize)]
struct ShardReport {
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    plan: MergedPlan,
    #[serde(default)]
    diagnostics: Vec<WireDiagnostic>,
    #[serde(default)]
    copy: Option<Value>,
    #[serde(default)]
    signing: Option<Value>,
    #[serde(default)]
    requests: Option<Value>,
    #[serde(default)]
    promoted: u64,
    #[serde(default)]
    failed: u64,
    #[serde(default)]
    seconds: Vec<(String, f64)>,
    #[serde(default)]
    shard: Option<Shard>,
}

/// A [`Diagnostic`] as `serde` wrote it.
#[derive(Deserialize)]
struct WireDiagnostic {
    code: String,
    severity: String,
    message: String,
    #[serde(default)]
    help: Option<String>,
    #[serde(default)]
    location: Option<WireLocation>,
    #[serde(default)]
    related: Vec<WireRelated>,
}

#[derive(Deserialize)]
struct WireLocation {
    file: String,
    #[serde(default)]
    line: u32,
    #[serde(default)]
    column: u32,
    #[serde(default)]
    length: u32,
}

#[derive(Deserialize)]
struct WireRelated {
    location: WireLocation,
    message: String,
}

impl WireLocation {
    fn into_location(self) -> Location {
        Location {
            file: Arc::from(self.file),
            line: self.line,
            column: self.column,
            length: self.length,
        }
    }
}

impl WireDiagnostic {
    fn into_diagnostic(self) -> Result<Diagnostic, String> {
        let code: Code = self.code.parse()?;
        let severity = match self.severity.as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "note" => Severity::Note,
            other => return Err(format!("unknown severity `{other}`")),
        };
        Ok(Diagnostic {
            code,
            severity,
            message: self.message,
            help: self.help,
            location: self.location.map(WireLocation::into_location),
            related: self
                .related
                .into_iter()
                .map(|r| Related {
                    location: r.location.into_location(),
                    message: r.message,
                })
                .collect(),
        })
    }
}

/// A shard's outcome, as its exit code said: errors (problems or failed
/// copies) are findings.
fn outcome_of(diagnostics: &[Diagnostic], failed: u64) -> Outcome {
    if Counts::of(diagnostics).errors > 0 || failed > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    }
}

/// Reads and merges `files`, in the order given. The reports must be
/// exactly shards `0..N` of N, each once, where N is `expect` or, without
/// it, the count the reports name when they all name the same one.
///
/// # Errors
///
/// When a file cannot be read or is not a run report, or (with `expect`)
/// when a shard is missing, repeated or from another split.
pub fn merge(files: &[PathBuf], expect: Option<u32>) -> Result<(MergedReport, Outcome), Error> {
    let mut reports = Vec::with_capacity(files.len());
    for path in files {
        reports.push((path.clone(), read(path)?));
    }
    // Without `expect`, reports that all name the same split must be all
    // of it: a shard whose report is missing failed, and says nothing.
    let inferred = reports
        .first()
        .and_then(|(_, r)| r.shard)
        .map(|s| s.count)
        .filter(|count| {
            reports
                .iter()
                .all(|(_, r)| r.shard.is_some_and(|s| s.count == *count))
        });
    if let Some(count) = expect.or(inferred) {
        check_complete(count, reports.iter().map(|(_, r)| r.shard))?;
    }
    let mut merged = MergedReport {
        shards: Vec::with_capacity(reports.len()),
        confirm: false,
        plan: MergedPlan::default(),
        diagnostics: Vec::new(),
        copy: None,
        signing: None,
        requests: None,
        promoted: 0,
        failed: 0,
        seconds: Vec::new(),
    };
    let mut worst = Outcome::Clean;
    for (path, report) in reports {
        let mut diagnostics = Vec::with_capacity(report.diagnostics.len());
        for wire in report.diagnostics {
            diagnostics.push(wire.into_diagnostic().map_err(|reason| Error::Parse {
                path: path.clone(),
                reason,
            })?);
        }
        let outcome = outcome_of(&diagnostics, report.failed);
        if outcome == Outcome::Findings {
            worst = Outcome::Findings;
        }
        merged.shards.push(ShardLine {
            file: path,
            shard: report.shard,
            outcome: match outcome {
                Outcome::Clean => "clean",
                Outcome::Findings => "findings",
            },
            edges: report.plan.counts.total(),
            errors: Counts::of(&diagnostics).errors,
        });
        merged.confirm |= report.confirm;
        merged.plan.counts.add(&report.plan.counts);
        merged.plan.images.extend(report.plan.images);
        merged.diagnostics.extend(diagnostics);
        merge_value(&mut merged.copy, report.copy);
        merge_value(&mut merged.signing, report.signing);
        merge_requests(&mut merged.requests, report.requests);
        merged.promoted += report.promoted;
        merged.failed += report.failed;
        for (phase, seconds) in report.seconds {
            match merged.seconds.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, longest)) => *longest = longest.max(seconds),
                None => merged.seconds.push((phase, seconds)),
            }
        }
    }
    diagnostic::sort(&mut merged.diagnostics);
    Ok((merged, worst))
}

fn read(path: &Path) -> Result<ShardReport, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Shards `0..count` of `count`, each exactly once.
fn check_complete(count: u32, shards: impl Iterator<Item = Option<Shard>>) -> Result<(), Error> {
    let incomplete = |problem: String| Error::Incomplete { count, problem };
    let mut seen = vec![false; count as usize];
    for shard in shards {
        let Some(shard) = shard else {
            return Err(incomplete(
                "one report is of a whole run, not of a shard".into(),
            ));
        };
        if shard.count != count {
            return Err(incomplete(format!("one report is of shard {shard}")));
        }
        if std::mem::replace(&mut seen[shard.index as usize], true) {
            return Err(incomplete(format!("shard {shard} is there twice")));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen[*i as usize])
        .map(|i| format!("{i}/{count}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(incomplete(format!("missing {}", missing.join(", "))))
    }
}

/// Adds `more` into `total`: numbers are summed (rates, `*_rps`, keep the
/// highest), objects merged key by key, anything else kept from the first.
fn merge_value(total: &mut Option<Value>, more: Option<Value>) {
    let Some(more) = more else { return };
    match total {
        None => *total = Some(more),
        Some(total) => add_value(total, more, ""),
    }
}

fn add_value(total: &mut Value, more: Value, key: &str) {
    match (total, more) {
        (Value::Number(a), Value::Number(b)) => {
            *a = if let (Some(x), Some(y), false) = (a.as_u64(), b.as_u64(), key.ends_with("_rps"))
            {
                (x + y).into()
            } else {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                let z = if key.ends_with("_rps") {
                    x.max(y)
                } else {
                    x + y
                };
                serde_json::Number::from_f64(z).unwrap_or_else(|| 0.into())
            };
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => add_value(slot, v, &k),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Request statistics: a list of per-host objects (`{"host": ..}`) is merged
/// by host; anything else as [`merge_value`] does.
fn merge_requests(total: &mut Option<Value>, more: Option<Value>) {
    let (Some(Value::Array(sum)), Some(Value::Array(more))) = (total.as_mut(), &more) else {
        return merge_value(total, more);
    };
    let mut index: BTreeMap<String, usize> = sum
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((v.get("host")?.as_str()?.to_owned(), i)))
        .collect();
    for host in more.iter().cloned() {
        let key = host.get("host").and_then(Value::as_str).map(str::to_owned);
        match key.as_ref().and_then(|k| index.get(k)) {
            Some(i) => {
                let mut object = host;
                if let Value::Object(o) = &mut object {
                    o.remove("host");
                }
                add_value(&mut sum[*i], object, "");
            }
            None => {
                if let Some(k) = key {
                    index.insert(k, sum.len());
                }
                sum.push(host);
            }
        }
    }
}

/// Total requests in merged request statistics, when they hold any.
pub fn total_requests(requests: Option<&Value>) -> Option<u64> {
    match requests? {
        Value::Array(hosts) => Some(
            hosts
                .iter()
                .filter_map(|h| h.get("requests")?.as_u64())
                .sum(),
        ),
        Value::Object(o) => o.get("requests")?.as_u64(),
        _ => None,
    }
}

/// The merged summary lines shared by the human and GitHub formats: the
/// shards, the plan counts, the copy totals and the requests.
///
/// # Errors
///
/// Only those of `w`.
pub fn write_summary(w: &mut dyn Write, merged: &MergedReport) -> io::Result<()> {
    let names: Vec<String> = merged
        .shards
        .iter()
        .map(|s| match s.shard {
            Some(shard) => format!("{shard} {}", s.outcome),
            None => format!("{} {}", s.file.display(), s.outcome),
        })
        .collect();
    writeln!(
        w,
        "merged {} shard report(s): {}",
        merged.shards.len(),
        names.join(", ")
    )?;
    let c = &merged.plan.counts;
    writeln!(
        w,
        "plan: {} edges: {} done, {} to copy, {} tag only, {} tag moves refused, {} lost",
        c.total(),
        c.done,
        c.copy,
        c.tag_only,
        c.tag_move,
        c.lost
    )?;
    if let Some(copy) = &merged.copy {
        let n = |k: &str| copy.get(k).and_then(Value::as_u64).unwrap_or(0);
        writeln!(
            w,
            "promoted {} image(s) to destinations, {} failed; {} blob(s) uploaded ({} bytes), {} mounted, {} already present; {} manifest(s) and {} tag(s) pushed",
            merged.promoted,
            merged.failed,
            n("blobs_uploaded"),
            n("bytes_uploaded"),
            n("blobs_mounted"),
            n("blobs_skipped"),
            n("manifests_pushed"),
            n("tags_pushed"),
        )?;
    } else if !merged.confirm && c.copy + c.tag_only > 0 {
        writeln!(
            w,
            "dry run: nothing was written; run again with --confirm to promote"
        )?;
    }
    if let Some(requests) = total_requests(merged.requests.as_ref()) {
        writeln!(w, "requests: {requests}")?;
    }
    let phases: Vec<String> = merged
        .seconds
        .iter()
        .map(|(phase, secs)| format!("{phase} {secs:.1}s"))
        .collect();
    writeln!(w, "time (longest shard): {}", phases.join(", "))
}

/// Runs `promoter report merge`: merge, print in `args.format`, write the
/// merged JSON and the Markdown summary where asked. The outcome is the
/// worst of the shards.
///
/// # Errors
///
/// When a report cannot be merged (see [`merge`]) or an output cannot be
/// written.
pub fn command(args: &crate::cli::MergeArgs) -> anyhow::Result<Outcome> {
    use crate::cli::RunFormat;
    use anyhow::Context as _;
    let (merged, outcome) = merge(&args.files, args.shards)?;
    let format = args.format.unwrap_or(
        if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
            RunFormat::Github
        } else {
            RunFormat::Human
        },
    );
    let mut out = io::stdout().lock();
    match format {
        RunFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &merged)?;
            writeln!(out)?;
        }
        RunFormat::Human | RunFormat::Github => {
            let reporter = if format == RunFormat::Human {
                super::Format::Human
            } else {
                super::Format::Github
            };
            super::render(
                reporter,
                &mut out,
                &merged.diagnostics,
                &diagnostic::Sources::default(),
                &super::RenderOptions::default(),
            )?;
            write_summary(&mut out, &merged)?;
        }
    }
    if let Some(path) = &args.report {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the merged report to {}", path.display()))?;
        serde_json::to_writer_pretty(io::BufWriter::new(file), &merged)?;
    }
    if let Some(path) = &args.summary {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot append the summary to {}", path.display()))?;
        file.write_all(to_markdown(&merged).as_bytes())?;
    }
    Ok(outcome)
}

/// The Markdown job summary of the merged run: counts per shard and in
/// total, then the problems as `check`'s summary shows them.
pub fn to_markdown(merged: &MergedReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("## promoter run (merged shards)\n\n");
    out.push_str("| Shard | Outcome | Edges | Errors |\n| --- | --- | ---: | ---: |\n");
    for s in &merged.shards {
        let name = s
            .shard
            .map_or_else(|| s.file.display().to_string(), |shard| shard.to_string());
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            s.outcome, s.edges, s.errors
        );
    }
    let c = &merged.plan.counts;
    let _ = write!(
        out,
        "\n| Done | Copy | Tag only | Tag moves refused | Lost | Promoted | Failed |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n| {} | {} | {} | {} | {} | {} | {} |\n\n",
        c.done, c.copy, c.tag_only, c.tag_move, c.lost, merged.promoted, merged.failed
    );
    let problems = super::summary::to_markdown(
        &merged.diagnostics,
        &diagnostic::Sources::default(),
        super::summary::SUMMARY_BUDGET - out.len(),
    );
    out.push_str(&problems.replacen("## promoter check", "### Problems", 1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
        path
    }

    fn report(index: u32, done: u64, errors: usize, failed: u64) -> Value {
        let diagnostics: Vec<Value> = (0..errors)
            .map(|i| {
                serde_json::json!({
                    "code": Code::CopyFailed.as_str(), "severity": "error",
                    "message": format!("copy {i} failed"), "help": null,
                    "location": {"file": "images/p/images.yaml", "line": 3, "column": 5, "length": 10},
                    "related": []
                })
            })
            .collect();
        serde_json::json!({
            "confirm": true,
            "plan": {"images": [{"source": format!("gcr.io/s/img{index}")}],
                     "counts": {"done": done, "copy": 1, "tag_only": 0, "tag_move": 0, "lost": 0}},
            "diagnostics": diagnostics,
            "copy": {"blobs_uploaded": 2, "bytes_uploaded": 100},
            "requests": [{"host": "a:1", "requests": 5, "rate_rps": 10.0},
                         {"host": format!("b:{index}"), "requests": 1, "rate_rps": 3.0}],
            "promoted": 1, "failed": failed,
            "seconds": [["parse", 0.5], ["inventory", f64::from(index)]],
            "shard": {"index": index, "count": 3},
            "a_field_from_the_future": true
        })
    }

    #[test]
    fn merges_counts_statistics_and_the_worst_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            write(dir.path(), "0.json", &report(0, 10, 0, 0)),
            write(dir.path(), "1.json", &report(1, 20, 2, 1)),
            write(dir.path(), "2.json", &report(2, 30, 0, 0)),
        ];
        let (merged, outcome) = merge(&files, Some(3)).unwrap();
        assert_eq!(outcome, Outcome::Findings);
        assert_eq!(merged.plan.counts.done, 60);
        assert_eq!(merged.plan.counts.copy, 3);
        assert_eq!(merged.plan.images.len(), 3);
        assert_eq!(merged.diagnostics.len(), 2);
        assert_eq!(merged.promoted, 3);
        assert_eq!(merged.failed, 1);
        let copy = merged.copy.as_ref().unwrap();
        assert_eq!(copy["bytes_uploaded"], 300);
        let hosts = merged.requests.as_ref().unwrap().as_array().unwrap();
        assert_eq!(hosts.len(), 4);
        assert_eq!(hosts[0]["requests"], 15);
        assert_eq!(hosts[0]["rate_rps"], 10.0);
        assert_eq!(total_requests(merged.requests.as_ref()), Some(18));
        assert_eq!(
            merged.seconds,
            vec![("parse".to_owned(), 0.5), ("inventory".to_owned(), 2.0)]
        );
        let outcomes: Vec<&str> = merged.shards.iter().map(|s| s.outcome).collect();
        assert_eq!(outcomes, ["clean", "findings", "clean"]);

        let mut text = Vec::new();
        write_summary(&mut text, &merged).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("merged 3 shard report(s): 0/3 clean, 1/3 findings, 2/3 clean\nplan: 63 edges: 60 done, 3 to copy"), "{text}");
        assert!(text.contains("requests: 18\n"), "{text}");
        let markdown = to_markdown(&merged);
        assert!(
            markdown.contains("| 1/3 | findings | 21 | 2 |"),
            "{markdown}"
        );
        assert!(markdown.contains("### Problems"), "{markdown}");

        // Two of three shards: the third's report is missing.
        let err = merge(&[files[0].clone(), files[2].clone()], None).unwrap_err();
        assert!(err.to_string().contains("missing 1/3"), "{err}");
        // Reports of whole runs merge as they are.
        let mut whole = report(0, 10, 0, 0);
        whole["shard"] = Value::Null;
        let whole = write(dir.path(), "whole.json", &whole);
        let (_, clean) = merge(&[whole.clone(), whole], None).unwrap();
        assert_eq!(clean, Outcome::Clean);
    }

    #[test]
    fn refuses_an_incomplete_set_of_shards() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "0.json", &report(0, 1, 0, 0));
        let c = write(dir.path(), "2.json", &report(2, 1, 0, 0));
        let err = merge(&[a.clone(), c.clone()], Some(3)).unwrap_err();
        assert!(err.to_string().contains("missing 1/3"), "{err}");
        let err = merge(&[a.clone(), a.clone(), c], Some(3)).unwrap_err();
        assert!(
            err.to_string().contains("shard 0/3 is there twice"),
            "{err}"
        );
        let err = merge(&[a], Some(2)).unwrap_err();
        assert!(
            err.to_string().contains("one report is of shard 0/3"),
            "{err}"
        );
        let err = merge(&[dir.path().join("absent.json")], None).unwrap_err();
        assert!(matches!(err, Error::Read { .. }));
        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "[1, 2]").unwrap();
        assert!(matches!(merge(&[junk], None), Err(Error::Parse { .. })));
    }
}
