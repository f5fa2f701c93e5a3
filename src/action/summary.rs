//! The Markdown the action publishes: the plan table, the results and the
//! time per phase. The same text goes to the job summary, the Check Run's
//! summary and the pull-request comment; the check's findings table is
//! written separately by `report::write_step_summary`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::Results;
use crate::report::summary::SUMMARY_BUDGET;

/// Plan rows shown; the rest are counted and left to the JSON report. At
/// ~150 bytes a row this stays far under the Check Run's 65 535 characters.
const MAX_ROWS: usize = 200;

/// Findings without a place listed in the summary; the rest are counted.
const MAX_UNPLACED: usize = 50;

/// A one-line title: the findings and the plan in numbers.
#[must_use]
pub fn title(results: &Results) -> String {
    let (errors, warnings, _) = results.counts();
    let mut parts = vec![format!(
        "{errors} error{}, {warnings} warning{}",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    )];
    if results.plan.is_some() {
        if results.confirm {
            parts.push(format!(
                "{} promoted, {} failed",
                results.promoted, results.failed
            ));
        } else {
            let c = results.plan_counts();
            parts.push(format!(
                "plan: {} to copy, {} tag only, {} done",
                c.copy, c.tag_only, c.done
            ));
        }
    }
    parts.join(" · ")
}

/// The report as Markdown.
#[must_use]
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let (errors, warnings, notes) = results.counts();
    let heading = match (&results.plan, results.confirm) {
        (Some(_), true) => "## promoter: promotion",
        (Some(_), false) => "## promoter: dry-run plan",
        (None, _) => "## promoter",
    };
    let _ = writeln!(out, "{heading}\n");
    let _ = writeln!(
        out,
        "**Findings:** {errors} error(s), {warnings} warning(s), {notes} note(s).\n"
    );
    for note in &results.notes {
        let _ = writeln!(out, "{note}\n");
    }
    write_unplaced(&mut out, results);
    if let Some(plan) = &results.plan {
        if results.confirm {
            let _ = writeln!(
                out,
                "**Promotion:** {} image(s) promoted to their destinations, {} failed.\n",
                results.promoted, results.failed
            );
        } else {
            let _ = writeln!(
                out,
                "**Dry run:** nothing was written. This is what a promotion would do.\n"
            );
        }
        let _ = writeln!(out, "| Plan | Count |\n| --- | ---: |");
        let c = plan.counts;
        for (count, label) in [
            (c.done, "already in place"),
            (c.copy, "to copy"),
            (c.tag_only, "tag only"),
            (c.tag_move, "tag moves refused"),
            (c.lost, "lost from the source"),
        ] {
            let _ = writeln!(out, "| {label} | {count} |");
        }
        write_images(&mut out, &plan.images);
    }
    if !results.phases.is_empty() {
        let _ = writeln!(out, "\n| Phase | Time |\n| --- | ---: |");
        for (phase, secs) in &results.phases {
            let _ = writeln!(out, "| {} | {secs:.2} s |", cell(phase));
        }
    }
    out
}

/// Findings that no annotation can carry (registry and copy problems have
/// no place in a manifest): listed here, the first [`MAX_UNPLACED`].
fn write_unplaced(out: &mut String, results: &Results) {
    let unplaced: Vec<_> = results
        .findings
        .iter()
        .filter(|f| f.location.is_none())
        .collect();
    if unplaced.is_empty() {
        return;
    }
    let _ = writeln!(out, "| Severity | Code | Problem |\n| --- | --- | --- |");
    for f in unplaced.iter().take(MAX_UNPLACED) {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            f.severity,
            cell(f.code.as_str()),
            cell(&f.message)
        );
    }
    if unplaced.len() > MAX_UNPLACED {
        let _ = writeln!(
            out,
            "\n… and {} more: see the JSON report.",
            unplaced.len() - MAX_UNPLACED
        );
    }
    out.push('\n');
}

/// The plan's images: one row per destination.
fn write_images(out: &mut String, images: &[Value]) {
    let mut rows = Vec::new();
    for image in images {
        let digest = image.get("digest").and_then(Value::as_str).unwrap_or("");
        let short = digest.get(..19).unwrap_or(digest);
        for target in image
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let destination = target
                .get("destination")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), String::from))
                .unwrap_or_default();
            let action = if target.get("copy").and_then(Value::as_bool) == Some(true) {
                "copy"
            } else {
                "tag"
            };
            let tags: Vec<&str> = target
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let tags = if tags.is_empty() {
                "(by digest)".to_string()
            } else {
                tags.join(", ")
            };
            rows.push(format!(
                "| {} | `{}` | {action} | {} |",
                cell(&destination),
                cell(short),
                cell(&tags)
            ));
        }
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "\nNothing to do: every destination already holds what the manifests say."
        );
        return;
    }
    let _ = writeln!(
        out,
        "\n| Destination | Digest | Action | Tags |\n| --- | --- | --- | --- |"
    );
    for row in rows.iter().take(MAX_ROWS) {
        let _ = writeln!(out, "{row}");
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "\n… and {} more row(s): see the JSON report (output `report-path`).",
            rows.len() - MAX_ROWS
        );
    }
}

/// Text safe inside a table cell and a code span.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('`', "'")
        .replace(['\n', '\r'], " ")
}

/// Appends `markdown` to the job summary, unless the file is already too
/// full for it (GitHub drops a summary over 1 MiB whole).
///
/// # Errors
///
/// When the file cannot be opened or written.
pub fn append(path: &Path, markdown: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let existing = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    if existing.saturating_add(markdown.len()) > SUMMARY_BUDGET {
        return file
            .write_all(b"\n(The plan is left out: the summary is full. See the JSON report.)\n");
    }
    file.write_all(b"\n")?;
    file.write_all(markdown.as_bytes())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::{Code, Diagnostic};
    use crate::report::run::PlanReport;

    #[test]
    fn plan_rows_are_escaped_and_capped() {
        let targets: Vec<Value> = (0..250)
            .map(|i| json!({"destination": format!("reg/a|b{i}"), "copy": i % 2 == 0, "tags": ["v1"]}))
            .collect();
        let results = Results {
            plan: Some(
                serde_json::from_value::<PlanReport<Value>>(json!({
                    "images": [{"source": "s", "digest": "sha256:0123456789abcdef", "targets": targets}],
                    "counts": {"done": 1, "copy": 125, "tag_only": 125, "tag_move": 0, "lost": 0}
                }))
                .unwrap(),
            ),
            findings: vec![Diagnostic::new(
                Code::CopyFailed,
                None,
                "cannot read `reg/x`: HTTP 401",
            )],
            ..Results::default()
        };
        let text = markdown(&results);
        assert!(
            text.contains("| reg/a\\|b0 | `sha256:0123456789ab` | copy | v1 |"),
            "{text}"
        );
        assert!(text.contains("… and 50 more row(s)"), "{text}");
        assert!(
            text.contains("| error | `P103` | cannot read 'reg/x': HTTP 401 |"),
            "{text}"
        );
        assert!(text.contains("| to copy | 125 |"));
        assert_eq!(
            title(&results),
            "1 error, 0 warnings · plan: 125 to copy, 125 tag only, 1 done"
        );
    }
}
