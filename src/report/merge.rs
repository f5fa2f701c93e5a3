//! Merging reports: the JSON reports of a sharded run's shards
//! (`run --shard I/N --report FILE`), combined into what one run would have
//! reported: one plan with summed counts, one list of problems, summed copy
//! and request statistics, and one outcome, the worst of the shards.
//!
//! Reports are read as [`ReadReport`]s (the run's own type; unknown fields
//! are ignored, so a report written by a newer promoter still merges). The
//! `report merge` command (`crate::merge`) prints the merged one with the
//! reporters of this directory; its exit code follows the worst
//! [`Outcome`].

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::run::ReadReport;
use crate::diagnostic::{self, Diagnostic, Outcome, SeverityCounts};
use crate::registry::http::HostStats;
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

/// One shard's line in the merged report.
#[derive(Debug, Serialize)]
pub struct ShardLine {
    pub file: PathBuf,
    pub shard: Option<Shard>,
    pub outcome: &'static str,
    pub edges: usize,
    pub errors: usize,
}

/// The merged report: a run report of the whole run, plus the shards.
/// Per phase, `seconds` holds the longest shard: shards run side by side.
#[derive(Debug, Serialize)]
pub struct MergedReport {
    pub shards: Vec<ShardLine>,
    #[serde(flatten)]
    pub report: ReadReport,
}

impl Deref for MergedReport {
    type Target = ReadReport;

    fn deref(&self) -> &ReadReport {
        &self.report
    }
}

/// A shard's outcome, as its exit code said: errors (problems or failed
/// copies) are findings.
fn outcome_of(diagnostics: &[Diagnostic], failed: usize) -> Outcome {
    if failed > 0 {
        Outcome::Findings
    } else {
        Outcome::of(diagnostics)
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
        report: ReadReport::default(),
    };
    let mut worst = Outcome::Clean;
    for (path, report) in reports {
        let outcome = outcome_of(&report.diagnostics, report.failed);
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
            errors: SeverityCounts::of(&report.diagnostics).errors,
        });
        add(&mut merged.report, report);
    }
    diagnostic::sort(&mut merged.report.diagnostics);
    Ok((merged, worst))
}

/// Adds one shard's report into the total.
fn add(total: &mut ReadReport, report: ReadReport) {
    total.confirm |= report.confirm;
    total.plan.counts.add(&report.plan.counts);
    total.plan.images.extend(report.plan.images);
    total.plan.signatures.extend(report.plan.signatures);
    total.diagnostics.extend(report.diagnostics);
    total.copy = sum(total.copy.take(), report.copy);
    total.signing = sum(total.signing.take(), report.signing);
    merge_requests(&mut total.requests, report.requests);
    total.promoted += report.promoted;
    total.failed += report.failed;
    total.seconds.longest(report.seconds);
}

fn read(path: &Path) -> Result<ReadReport, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    ReadReport::from_json(&bytes).map_err(|e| Error::Parse {
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

/// `total` and `more` added field by field: numbers are summed (rates,
/// `*_rps`, keep the highest), anything else is kept from the first. One
/// rule for every statistic, so that a counter added to one of them merges
/// without code here.
fn sum<T: Serialize + DeserializeOwned>(total: Option<T>, more: Option<T>) -> Option<T> {
    let (total, more) = match (total, more) {
        (Some(total), Some(more)) => (total, more),
        (total, more) => return total.or(more),
    };
    let (Ok(mut a), Ok(b)) = (serde_json::to_value(&total), serde_json::to_value(&more)) else {
        return Some(total);
    };
    add_value(&mut a, b, "");
    Some(serde_json::from_value(a).unwrap_or(total))
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

/// Request statistics, merged by host: the same host in two shards is
/// summed as [`sum`] does, a new host is added at the end.
fn merge_requests(total: &mut Vec<HostStats>, more: Vec<HostStats>) {
    let mut index: BTreeMap<String, usize> = total
        .iter()
        .enumerate()
        .map(|(i, h)| (h.host.clone(), i))
        .collect();
    for host in more {
        match index.get(&host.host) {
            Some(i) => {
                let slot = std::mem::take(&mut total[*i]);
                total[*i] = sum(Some(slot), Some(host)).unwrap_or_default();
            }
            None => {
                index.insert(host.host.clone(), total.len());
                total.push(host);
            }
        }
    }
}

/// Total requests in merged request statistics, when they hold any.
pub fn total_requests(requests: &[HostStats]) -> Option<u64> {
    (!requests.is_empty()).then(|| requests.iter().map(|h| h.requests).sum())
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
        writeln!(
            w,
            "promoted {} image(s) to destinations, {} failed; {} blob(s) uploaded ({} bytes), {} mounted, {} already present; {} manifest(s) and {} tag(s) pushed",
            merged.promoted,
            merged.failed,
            copy.blobs_uploaded,
            copy.bytes_uploaded,
            copy.blobs_mounted,
            copy.blobs_skipped,
            copy.manifests_pushed,
            copy.tags_pushed,
        )?;
    } else if !merged.confirm && c.copy + c.tag_only > 0 {
        writeln!(
            w,
            "dry run: nothing was written; run again with --confirm to promote"
        )?;
    }
    if let Some(requests) = total_requests(&merged.requests) {
        writeln!(w, "requests: {requests}")?;
    }
    let phases: Vec<String> = merged
        .seconds
        .phases()
        .iter()
        .map(|(phase, secs)| format!("{phase} {secs:.1}s"))
        .collect();
    writeln!(w, "time (longest shard): {}", phases.join(", "))
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
    use crate::diagnostic::Code;

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
        assert_eq!(copy.bytes_uploaded, 300);
        let hosts = &merged.requests;
        assert_eq!(hosts.len(), 4);
        assert_eq!(hosts[0].requests, 15);
        assert_eq!(hosts[0].rate_rps, 10.0);
        assert_eq!(total_requests(&merged.requests), Some(18));
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
