//! The report of `promoter verify`: one line when every destination
//! carries what it must, else a table of the gaps (one row per digest and
//! destination, a column per signature format and, with `--attestations`,
//! per attestation kind) and a count; or, with `--format json`, the same
//! as one object (`docs/report-schema.md`).

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::registry::Digest;
use crate::sign::Place;
use crate::sign::verify::{Status, Verdict};

/// What `verify` found for one digest in one destination.
pub struct Finding {
    pub signatures: Verdict,
    /// With `--attestations`.
    pub attestations: Option<crate::attest::verify::Verdict>,
}

impl Finding {
    /// Whether nothing is missing or wrong.
    pub fn is_ok(&self) -> bool {
        self.signatures.legacy.is_ok()
            && self.signatures.bundle.is_ok()
            && self.attestations.as_ref().is_none_or(|a| a.is_ok())
    }
}

/// What `verify` reports.
pub struct Gaps<'a> {
    /// Every digest checked, with its destinations.
    pub items: &'a [(Digest, Vec<Place>)],
    /// The (item, destination) pairs that fall short, with what was found.
    pub gaps: &'a [((usize, usize), Finding)],
    /// (item, destination) pairs checked.
    pub total: usize,
    /// Whether attestations were checked too.
    pub attestations: bool,
    /// Registry reads the checks made.
    pub requests: u64,
}

/// Writes the verdict of `verify`.
///
/// # Errors
///
/// Only those of `out`.
pub fn write(out: &mut dyn Write, report: &Gaps<'_>) -> io::Result<()> {
    let total = report.total;
    let what = if report.attestations {
        "signatures and attestations"
    } else {
        "signatures"
    };
    if report.gaps.is_empty() {
        return writeln!(
            out,
            "verify: all {total} destination image(s) carry valid {what} ({} request(s))",
            report.requests
        );
    }
    let mut header = format!(
        "{:<60} {:<20} {:<24} {:<24}",
        "destination", "digest", "legacy", "bundle"
    );
    if report.attestations {
        header.push_str(&format!(" {:<24} provenance", "record"));
    }
    writeln!(out, "{}", header.trim_end())?;
    for ((i, j), finding) in report.gaps {
        let (digest, places) = &report.items[*i];
        let mut line = format!(
            "{:<60} {:<20} {:<24} {:<24}",
            places[*j].to_string(),
            &digest.to_string()[..19],
            finding.signatures.legacy.label(),
            finding.signatures.bundle.label()
        );
        if let Some(a) = &finding.attestations {
            line.push_str(&format!(
                " {:<24} {}",
                a.record.label(),
                a.provenance.label()
            ));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(
        out,
        "verify: {} of {total} destination image(s) lack {}",
        report.gaps.len(),
        if report.attestations {
            "valid signatures or attestations"
        } else {
            "a valid signature"
        }
    )
}

/// The version of [`write_json`]'s shape.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes the verdict of `verify` as JSON: `schema_version`, `total`,
/// `requests`, `attestations` and one object per gap (`destination`,
/// `digest`, and per format a `status` with its `reason`).
///
/// # Errors
///
/// Only those of `out`.
pub fn write_json(out: &mut dyn Write, report: &Gaps<'_>) -> io::Result<()> {
    let gaps: Vec<Value> = report
        .gaps
        .iter()
        .map(|((i, j), finding)| {
            let (digest, places) = &report.items[*i];
            let mut gap = json!({
                "destination": places[*j].to_string(),
                "digest": digest.to_string(),
                "legacy": status(&finding.signatures.legacy),
                "bundle": status(&finding.signatures.bundle),
            });
            if let Some(a) = &finding.attestations {
                gap["record"] = status(&a.record);
                gap["provenance"] = status(&a.provenance);
            }
            gap
        })
        .collect();
    let value = json!({
        "schema_version": SCHEMA_VERSION,
        "total": report.total,
        "attestations": report.attestations,
        "requests": report.requests,
        "gaps": gaps,
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}

fn status(status: &Status) -> Value {
    match status.parts() {
        (kind, None) => json!({ "status": kind }),
        (kind, Some(reason)) => json!({ "status": kind, "reason": reason }),
    }
}
