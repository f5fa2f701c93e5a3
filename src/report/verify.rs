//! The report of `promoter verify`: one line when every destination
//! carries what it must, else a table of the gaps (one row per digest and
//! destination, a column per signature format and, with `--attestations`,
//! per attestation kind) and a count.

use std::io::{self, Write};

use crate::registry::Digest;
use crate::sign::Place;
use crate::sign::verify::Verdict;

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
