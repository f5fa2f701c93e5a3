//! Reporters: the only place that writes findings for users.
//!
//! Diagnostics are data ([`crate::diagnostic`]); this module turns them into
//! text. One renderer per file, each writing to a `&mut dyn Write`:
//!
//! - [`human`]: rustc/ruff style, with the source line and a caret under the
//!   span, then a one-line summary;
//! - [`json`]: `--format json`, a `schema_version` and one object per
//!   diagnostic, stable field order;
//! - [`github`]: workflow-command annotations, kept within GitHub's limits;
//! - [`summary`]: the Markdown job summary for `$GITHUB_STEP_SUMMARY`, kept
//!   under GitHub's 1 MiB cap.
//!
//! Renderers never decide exit codes and never read the environment: the
//! caller picks the [`Format`] (e.g. `Github` when `GITHUB_ACTIONS=true`) and
//! the colour choice.

pub mod github;
pub mod human;
pub mod json;
pub mod merge;
pub mod run;
pub mod summary;
pub mod verify;

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use crate::diagnostic::{self, Diagnostic, Sources};

/// The output format of `promoter check` (`--format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// Text for a terminal, like rustc or ruff.
    #[default]
    Human,
    /// A JSON array, one object per diagnostic.
    Json,
    /// GitHub Actions workflow-command annotations.
    Github,
}

impl Format {
    /// The name used on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Github => "github",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    /// Accepts `human`, `json` or `github`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Format::Human, Format::Json, Format::Github]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown format `{s}`; expected one of: human, json, github"))
    }
}

/// Choices that change how a report looks but not what it says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Use ANSI colours (human format only). The caller decides, e.g. from
    /// `--color` and whether stdout is a terminal.
    pub color: bool,
}

/// Writes `diagnostics` in `format` to `w`.
///
/// Diagnostics may arrive in any order: they are sorted here, once, most
/// severe first and then by file and line ([`diagnostic::sort`]).
/// `sources` supplies the offending lines for the human format.
///
/// # Errors
///
/// Only those of `w`: a closed pipe, a full disk.
pub fn render(
    format: Format,
    w: &mut dyn Write,
    diagnostics: &[Diagnostic],
    sources: &Sources,
    options: &RenderOptions,
) -> io::Result<()> {
    let sorted = sorted(diagnostics);
    match format {
        Format::Human => human::render(w, &sorted, sources, options.color),
        Format::Json => json::render(w, &sorted),
        Format::Github => github::render(w, &sorted),
    }
}

/// Appends the Markdown report to the job-summary file at `path` (the value
/// of `$GITHUB_STEP_SUMMARY`), creating it if needed.
///
/// GitHub drops a summary over [`summary::SUMMARY_LIMIT`] bytes, so what the
/// file already holds counts against the budget: the report is cut at a
/// table row, with a note saying how many findings were left out.
///
/// # Errors
///
/// When the file cannot be opened, inspected or written.
pub fn write_step_summary(
    path: &Path,
    diagnostics: &[Diagnostic],
    sources: &Sources,
) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let existing = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let budget = summary::SUMMARY_BUDGET.saturating_sub(existing);
    let markdown = summary::to_markdown(&sorted(diagnostics), sources, budget);
    file.write_all(markdown.as_bytes())?;
    file.flush()
}

/// A sorted copy: renderers rely on "most severe first".
fn sorted(diagnostics: &[Diagnostic]) -> Vec<Diagnostic> {
    let mut sorted = diagnostics.to_vec();
    diagnostic::sort(&mut sorted);
    sorted
}

/// `1 error`, `2 warnings`: a count with its noun, plural when needed.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Joins `["a", "b", "c"]` as `a, b and c`.
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The closing sentence shared by the human and GitHub formats:
/// `Found 3 errors and 2 warnings in 2 files.` or `No problems found.`
fn summary_sentence(diagnostics: &[Diagnostic]) -> String {
    let counts = diagnostic::SeverityCounts::of(diagnostics);
    let parts: Vec<String> = [
        (counts.errors, "error"),
        (counts.warnings, "warning"),
        (counts.notes, "note"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, noun)| plural(n, noun))
    .collect();
    if parts.is_empty() {
        return "No problems found.".to_owned();
    }
    let mut files: Vec<&str> = diagnostics
        .iter()
        .filter_map(|d| d.location.as_ref().map(|l| &*l.file))
        .collect();
    files.sort_unstable();
    files.dedup();
    if files.is_empty() {
        format!("Found {}.", join_and(&parts))
    } else {
        format!(
            "Found {} in {}.",
            join_and(&parts),
            plural(files.len(), "file")
        )
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Diagnostics shared by the renderers' snapshot tests.

    use std::sync::Arc;

    use crate::diagnostic::{Code, Diagnostic, Location, Sources};

    pub(crate) const IMAGES: &str = "images/k8s-staging-foo/images.yaml";
    pub(crate) const MANIFEST: &str = "manifests/k8s-staging-foo/promoter-manifest.yaml";

    pub(crate) fn at(file: &str, line: u32, column: u32, length: u32) -> Location {
        Location {
            file: Arc::from(file),
            line,
            column,
            length,
        }
    }

    pub(crate) fn sources() -> Sources {
        let mut sources = Sources::default();
        sources.insert(
            IMAGES.into(),
            concat!(
                "- name: foo\n",
                "  dmap:\n",
                "    \"sha256:abc\": [\"v1.0\"]\n",
                "    \"sha256:1111111111111111111111111111111111111111111111111111111111111111\": [\"v1.0\"]\n",
                "- name: bar\n",
                "  dmap:\n",
                "\tsha256:2222222222222222222222222222222222222222222222222222222222222222: [v2]\n",
            )
            .into(),
        );
        sources
    }

    /// An error with a related location, a warning without help, a
    /// file-only error, and one whose text needs escaping everywhere.
    pub(crate) fn sample() -> Vec<Diagnostic> {
        vec![
            Diagnostic::new(
                Code::UnquotedDigest,
                Some(at(IMAGES, 7, 2, 71)),
                "digest key is not quoted",
            ),
            Diagnostic::new(
                Code::TagConflict,
                Some(at(IMAGES, 4, 81, 6)),
                "tag `v1.0` of `foo` is claimed by two digests",
            )
            .help("keep one digest per tag; move the other tag to a new name")
            .related(at(IMAGES, 3, 20, 6), "first claimed here"),
            Diagnostic::new(
                Code::MissingImagesFile,
                Some(Location::file(Arc::from(MANIFEST))),
                "project `k8s-staging-foo` has no images file",
            )
            .help("create images/k8s-staging-foo/images.yaml"),
            Diagnostic::new(
                Code::InvalidDigest,
                Some(at(IMAGES, 3, 5, 12)),
                "digest `sha256:abc` is not 64 hex digits: 100%, a,b: c\nsecond | line ``x``",
            )
            .help("use `crane digest` | copy it again"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{sample, sources};
    use super::*;

    #[test]
    fn format_parses_and_displays() {
        for format in [Format::Human, Format::Json, Format::Github] {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
        }
        assert_eq!("GitHub".parse::<Format>(), Ok(Format::Github));
        assert!("sarif".parse::<Format>().is_err());
    }

    #[test]
    fn summary_sentence_counts_and_pluralises() {
        assert_eq!(summary_sentence(&[]), "No problems found.");
        assert_eq!(
            summary_sentence(&sample()),
            "Found 3 errors and 1 warning in 2 files."
        );
        let run_wide = Diagnostic::new(diagnostic::Code::Io, None, "x");
        assert_eq!(summary_sentence(&[run_wide]), "Found 1 error.");
    }

    #[test]
    fn render_sorts_unsorted_input() {
        let mut out = Vec::new();
        render(
            Format::Json,
            &mut out,
            &sample(),
            &sources(),
            &RenderOptions::default(),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let severities: Vec<&str> = value["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["severity"].as_str().unwrap())
            .collect();
        assert_eq!(severities, ["error", "error", "error", "warning"]);
    }

    #[test]
    fn step_summary_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier step output\n").unwrap();
        write_step_summary(&path, &sample(), &sources()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("earlier step output\n## promoter check"));
        assert!(text.contains("tag-conflict"));
    }
}
