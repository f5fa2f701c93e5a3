//! The `report merge` command: merge the JSON reports of a sharded run's
//! shards ([`crate::report::merge`]), print the merged report in
//! `--format`, write the merged JSON and the Markdown summary where asked.

use std::io::{self, Write};

use anyhow::Context as _;

use crate::cli::{MergeArgs, RunFormat};
use crate::config;
use crate::diagnostic::{self, Outcome};
use crate::report::merge::{merge, to_markdown, write_summary};
use crate::report::{self, Format, RenderOptions};

/// Runs `promoter report merge`: merge, print in `args.format`, write the
/// merged JSON and the Markdown summary where asked. The outcome is the
/// worst of the shards.
///
/// # Errors
///
/// When a report cannot be merged (see [`merge`]) or an output cannot be
/// written.
pub fn command(args: &MergeArgs) -> anyhow::Result<Outcome> {
    let (merged, outcome) = merge(&args.files, args.shards)?;
    let format = args.format.unwrap_or_else(config::default_format);
    let mut out = io::stdout().lock();
    match format {
        RunFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &merged)?;
            writeln!(out)?;
        }
        RunFormat::Human | RunFormat::Github => {
            let reporter = if format == RunFormat::Human {
                Format::Human
            } else {
                Format::Github
            };
            report::render(
                reporter,
                &mut out,
                &merged.diagnostics,
                &diagnostic::Sources::default(),
                &RenderOptions::default(),
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
