//! The Check Run: every finding as an annotation, past the 10-per-severity
//! limit of workflow commands, with the plan as its summary.
//!
//! GitHub takes at most [`ANNOTATIONS_PER_REQUEST`] annotations per request:
//! the run is created with the first batch and updated (PATCH) with each
//! following one; GitHub appends them. A token without `checks: write` (a
//! fork's pull request) gets 403: the caller falls back to the workflow
//! annotations already printed, without failing the step.

use serde_json::{Value, json};

use super::api::{ApiError, GitHub};
use crate::diagnostic::{Diagnostic, Severity};

/// GitHub's limit on annotations in one create or update request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// Requests per Check Run at most: GitHub's secondary rate limit allows
/// about 80 content-creating requests a minute, so 40 leaves room for the
/// comment and for other steps of the job. 40 x 50 = 2,000 annotations; the
/// rest are counted in the summary (all of them are in the JSON report).
pub const MAX_REQUESTS: usize = 40;

/// GitHub's limit on `output.summary` and `output.text`, in characters.
pub const OUTPUT_LIMIT: usize = 65_535;

/// The Check Run's name, shown in the pull request's checks list.
pub const NAME: &str = "promoter";

/// The check run to publish.
#[derive(Debug)]
pub struct CheckRun<'a> {
    pub head_sha: &'a str,
    /// `success`, `failure` or `neutral`.
    pub conclusion: &'a str,
    pub title: String,
    /// Markdown: the plan and the results.
    pub summary: String,
    pub findings: &'a [Diagnostic],
}

/// Creates the check run, then adds the remaining annotations 50 at a time.
/// Returns the run's id and the number of requests made.
///
/// # Errors
///
/// The first failing call's error; [`ApiError::is_forbidden`] tells a
/// read-only token from a real failure.
pub async fn publish(github: &GitHub, run: &CheckRun<'_>) -> Result<(u64, usize), ApiError> {
    let mut annotations: Vec<Value> = run.findings.iter().filter_map(annotation).collect();
    let mut summary = run.summary.clone();
    let cap = MAX_REQUESTS * ANNOTATIONS_PER_REQUEST;
    if annotations.len() > cap {
        summary.push_str(&format!(
            "\n\n{} more finding(s) are not annotated here (at most {cap} per Check Run); \
             they are in the job summary and the JSON report.\n",
            annotations.len() - cap
        ));
        annotations.truncate(cap);
    }
    let mut batches = annotations.chunks(ANNOTATIONS_PER_REQUEST);
    let summary = truncate(&summary, OUTPUT_LIMIT);
    let output = |batch: &[Value]| {
        json!({
            "title": run.title,
            "summary": summary,
            "annotations": batch,
        })
    };
    let created = github
        .call(
            "POST",
            "/check-runs",
            Some(&json!({
                "name": NAME,
                "head_sha": run.head_sha,
                "status": "completed",
                "conclusion": run.conclusion,
                "output": output(batches.next().unwrap_or(&[])),
            })),
        )
        .await?;
    let id = created.get("id").and_then(Value::as_u64).unwrap_or(0);
    let mut requests = 1;
    for batch in batches {
        github
            .call(
                "PATCH",
                &format!("/check-runs/{id}"),
                Some(&json!({ "output": output(batch) })),
            )
            .await?;
        requests += 1;
    }
    Ok((id, requests))
}

/// A finding as a Check Run annotation; `None` for findings that have no
/// file (they are in the summary).
fn annotation(finding: &Diagnostic) -> Option<Value> {
    let location = finding.location.as_ref()?;
    let path = location.file.strip_prefix("./").unwrap_or(&location.file);
    // A file of a base revision (`<rev>:<path>`) is not in the head commit.
    if path.contains(':') {
        return None;
    }
    let line = location.line.max(1);
    let level = match finding.severity {
        Severity::Error => "failure",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    };
    let mut message = finding.message.clone();
    if let Some(help) = &finding.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let mut a = json!({
        "path": path,
        "start_line": line,
        "end_line": line,
        "annotation_level": level,
        "title": format!("{} {}", finding.code, finding.severity),
        "message": truncate(&message, OUTPUT_LIMIT),
    });
    // Columns are allowed only on a one-line annotation, which these are.
    if location.line > 0 && location.column > 0 {
        a["start_column"] = json!(location.column);
        a["end_column"] = json!(location.column + location.length.max(1) - 1);
    }
    Some(a)
}

/// `text` cut to at most `limit` characters, with a note when cut.
#[must_use]
pub fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let note = "\n\n… cut to fit GitHub's limit; the full report is in the job summary.";
    let keep = limit.saturating_sub(note.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(note);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Code, Location};

    #[test]
    fn annotation_levels_and_columns() {
        let finding = Diagnostic::new(
            Code::InvalidDigest,
            Some(Location {
                file: "./a.yaml".into(),
                line: 3,
                column: 5,
                length: 4,
            }),
            "bad",
        )
        .help("fix");
        let a = annotation(&finding).unwrap();
        assert_eq!(a["path"], "a.yaml");
        assert_eq!(a["annotation_level"], "failure");
        assert_eq!(
            (a["start_column"].as_u64(), a["end_column"].as_u64()),
            (Some(5), Some(8))
        );
        assert_eq!(a["message"], "bad\nhelp: fix");
        let unplaced = Diagnostic {
            location: None,
            ..finding
        };
        assert!(annotation(&unplaced).is_none());
    }

    #[test]
    fn truncation_counts_characters() {
        let long = "é".repeat(100);
        let cut = truncate(&long, 90);
        assert!(cut.chars().count() <= 90);
        assert_eq!(truncate("short", 90), "short");
    }
}
