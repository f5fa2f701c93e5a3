//! The Markdown job summary written to `$GITHUB_STEP_SUMMARY`.
//!
//! A heading, the summary sentence, a table of counts, then one section per
//! file with a table of its findings (severity, code, line, message with the
//! offending source line and related places, help). Files with the most severe findings come
//! first; findings about the run as a whole have their own section.
//!
//! GitHub drops a summary over [`SUMMARY_LIMIT`] bytes entirely, so the
//! report is built within a byte budget: rows are kept most severe first,
//! the rest are cut at a row boundary and a closing note counts them.
//!
//! User text never becomes Markdown syntax: punctuation Markdown would act on
//! is backslash-escaped, newlines become `<br>`, `|` is escaped in table
//! cells, and text between matched backticks becomes a code span whose fence
//! is longer than any backtick run inside it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::diagnostic::{Diagnostic, Severity, SeverityCounts, Sources};

/// GitHub's cap on one step's summary: above it, the summary is dropped and
/// an error shown instead.
pub const SUMMARY_LIMIT: usize = 1_048_576;

/// The most this report writes: the limit less a 64 KiB margin for other
/// output the same step may append, and for any miscount of ours.
pub const SUMMARY_BUDGET: usize = SUMMARY_LIMIT - 64 * 1024;

/// Bytes kept free for the closing "not shown" note when rows are cut.
const NOTE_RESERVE: usize = 512;

/// Longest source excerpt shown in a row, in characters.
const MAX_SOURCE_CHARS: usize = 120;

/// Writes the report, within [`SUMMARY_BUDGET`]. Expects `diagnostics`
/// sorted most severe first.
///
/// # Errors
///
/// Only those of `w`.
pub fn render(w: &mut dyn Write, diagnostics: &[Diagnostic], sources: &Sources) -> io::Result<()> {
    w.write_all(to_markdown(diagnostics, sources, SUMMARY_BUDGET).as_bytes())
}

/// The report as a string of at most about `budget` bytes (never less than
/// the heading, counts and closing note, which take under 1 KiB). Expects
/// `diagnostics` sorted most severe first.
#[must_use]
pub fn to_markdown(diagnostics: &[Diagnostic], sources: &Sources, budget: usize) -> String {
    let counts = SeverityCounts::of(diagnostics);
    let mut out = String::new();
    out.push_str("## promoter check\n\n");
    out.push_str(&super::summary_sentence(diagnostics));
    out.push('\n');
    if diagnostics.is_empty() {
        return out;
    }
    out.push_str("\n| Severity | Count |\n| --- | ---: |\n");
    let _ = writeln!(out, "| Errors | {} |", counts.errors);
    let _ = writeln!(out, "| Warnings | {} |", counts.warnings);
    let _ = writeln!(out, "| Notes | {} |", counts.notes);

    // Sections in order of first appearance, i.e. most severe file first.
    let mut section_of: HashMap<Option<&str>, usize> = HashMap::new();
    let mut headers: Vec<String> = Vec::new();
    let rows: Vec<(usize, String)> = diagnostics
        .iter()
        .map(|d| {
            let file = d.location.as_ref().map(|l| &*l.file);
            let section = *section_of.entry(file).or_insert_with(|| {
                headers.push(section_header(file));
                headers.len() - 1
            });
            (section, row(d, sources))
        })
        .collect();

    // Keep rows, most severe first, while they and their section headers fit.
    let total: usize = rows.iter().map(|(_, r)| r.len()).sum::<usize>()
        + headers.iter().map(String::len).sum::<usize>();
    let limit = if out.len() + total <= budget {
        usize::MAX
    } else {
        budget.saturating_sub(NOTE_RESERVE)
    };
    let mut used = out.len();
    let mut opened = vec![false; headers.len()];
    let mut kept = 0;
    for (section, row) in &rows {
        let cost = row.len()
            + if opened[*section] {
                0
            } else {
                headers[*section].len()
            };
        if used.saturating_add(cost) > limit {
            break;
        }
        used += cost;
        opened[*section] = true;
        kept += 1;
    }

    let mut by_section: Vec<Vec<&str>> = vec![Vec::new(); headers.len()];
    for (section, row) in &rows[..kept] {
        by_section[*section].push(row);
    }
    for (header, rows) in headers.iter().zip(&by_section) {
        if rows.is_empty() {
            continue;
        }
        out.push_str(header);
        for row in rows {
            out.push_str(row);
        }
    }

    if kept < diagnostics.len() {
        out.push_str(&omission_note(&diagnostics[kept..]));
    }
    out
}

fn section_header(file: Option<&str>) -> String {
    let title = match file {
        Some(file) => code_span(file, false),
        None => "Whole run".to_owned(),
    };
    format!(
        "\n### {title}\n\n| Severity | Code | Line | Message | Help |\n| --- | --- | ---: | --- | --- |\n"
    )
}

fn row(d: &Diagnostic, sources: &Sources) -> String {
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let (place, source) = match &d.location {
        Some(l) if l.has_line() => (
            format!("{}:{}", l.line, l.column),
            sources.line(&l.file, l.line).map(excerpt),
        ),
        _ => ("-".to_owned(), None),
    };
    let mut message = inline(&d.message);
    if let Some(source) = source.filter(|s| !s.is_empty()) {
        message.push_str("<br>");
        message.push_str(&code_span(&source, true));
    }
    for related in &d.related {
        message.push_str("<br>");
        message.push_str(&code_span(&related.location.to_string(), true));
        message.push_str(": ");
        message.push_str(&inline(&related.message));
    }
    let help = d.help.as_deref().map(inline).unwrap_or_default();
    format!(
        "| {severity} | `{}` {} | {place} | {message} | {help} |\n",
        d.code.as_str(),
        d.code.name()
    )
}

/// A source line, trimmed and shortened for a table cell.
fn excerpt(line: &str) -> String {
    let line = line.trim();
    let mut text: String = line
        .chars()
        .take(MAX_SOURCE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(MAX_SOURCE_CHARS).is_some() {
        text.push_str("...");
    }
    text
}

fn omission_note(omitted: &[Diagnostic]) -> String {
    let counts = SeverityCounts::of(omitted);
    let parts: Vec<String> = [
        (counts.errors, "error"),
        (counts.warnings, "warning"),
        (counts.notes, "note"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, noun)| super::plural(n, noun))
    .collect();
    format!(
        "\n> [!WARNING]\n> {} more {} not shown ({}): GitHub drops a job summary over 1 MiB. \
         Run `promoter check --format json` for the full list.\n",
        omitted.len(),
        if omitted.len() == 1 {
            "finding is"
        } else {
            "findings are"
        },
        super::join_and(&parts)
    )
}

/// User text for a table cell: text between matched backticks becomes code,
/// everything else is escaped.
fn inline(text: &str) -> String {
    let pieces: Vec<&str> = text.split('`').collect();
    // An odd number of pieces means the backticks pair up.
    if pieces.len().is_multiple_of(2) {
        return escape(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, piece) in pieces.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(&escape(piece));
        } else if !piece.is_empty() {
            out.push_str(&code_span(piece, true));
        }
    }
    out
}

/// Backslash-escapes what Markdown (and GitHub's extensions: tables,
/// strikethrough, math, mentions) would interpret; newlines become `<br>`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '$' | '#' | '@'
            | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `content` as a code span: the fence is one backtick longer than the
/// longest run inside, padded when the content starts or ends with one.
/// In a table cell, `|` must still be escaped (GFM splits cells first).
fn code_span(content: &str, in_table: bool) -> String {
    let mut content: String = content
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if in_table {
        content = content.replace('|', "\\|");
    }
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if content.starts_with('`') || content.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{content}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{at, sample, sources};
    use super::*;
    use crate::diagnostic::{self, Code};

    fn to_string(diagnostics: &[Diagnostic], budget: usize) -> String {
        let mut sorted = diagnostics.to_vec();
        diagnostic::sort(&mut sorted);
        to_markdown(&sorted, &sources(), budget)
    }

    #[test]
    fn snapshot() {
        let expected = r#"## promoter check

Found 3 errors and 1 warning in 2 files.

| Severity | Count |
| --- | ---: |
| Errors | 3 |
| Warnings | 1 |
| Notes | 0 |

### `images/k8s-staging-foo/images.yaml`

| Severity | Code | Line | Message | Help |
| --- | --- | ---: | --- | --- |
| error | `M201` invalid-digest | 3:5 | digest `sha256:abc` is not 64 hex digits: 100%, a,b: c<br>second \| line x<br>`"sha256:abc": ["v1.0"]` | use `crane digest` \| copy it again |
| error | `M301` tag-conflict | 4:81 | tag `v1.0` of `foo` is claimed by two digests<br>`"sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]`<br>`images/k8s-staging-foo/images.yaml:3:20`: first claimed here | keep one digest per tag; move the other tag to a new name |
| warning | `M503` unquoted-digest | 7:2 | digest key is not quoted<br>`sha256:2222222222222222222222222222222222222222222222222222222222222222: [v2]` |  |

### `manifests/k8s-staging-foo/promoter-manifest.yaml`

| Severity | Code | Line | Message | Help |
| --- | --- | ---: | --- | --- |
| error | `M105` missing-images-file | - | project `k8s-staging-foo` has no images file | create images/k8s-staging-foo/images.yaml |
"#;
        assert_eq!(to_string(&sample(), SUMMARY_BUDGET), expected);
    }

    #[test]
    fn no_problems() {
        assert_eq!(
            to_string(&[], SUMMARY_BUDGET),
            "## promoter check\n\nNo problems found.\n"
        );
    }

    #[test]
    fn markdown_is_neutralised() {
        assert_eq!(
            inline("a `b|c` *d* <script> @team | $x$ [l](u)\r\nnext"),
            r"a `b\|c` \*d\* \<script\> \@team \| \$x\$ \[l\](u)<br>next"
        );
        // Unpaired backticks are escaped, not left to open a code span.
        assert_eq!(inline("it`s"), r"it\`s");
        assert_eq!(code_span("a``b", false), "```a``b```");
        assert_eq!(code_span("`x", false), "`` `x ``");
        assert_eq!(code_span("a|b", true), r"`a\|b`");
    }

    #[test]
    fn whole_run_section() {
        let d = Diagnostic::new(Code::Io, None, "cannot read `dir`")
            .related(at("x", 1, 1, 1), "see here");
        let text = to_string(&[d], SUMMARY_BUDGET);
        assert!(text.ends_with(
            "### Whole run\n\n| Severity | Code | Line | Message | Help |\n| --- | --- | ---: | --- | --- |\n| error | `M001` io-error | - | cannot read `dir`<br>`x:1:1`: see here |  |\n"
        ));
    }

    #[test]
    fn cut_at_a_row_under_one_mebibyte() {
        let mut sources = sources();
        let mut diagnostics = Vec::new();
        for project in 0..200 {
            let file: Arc<str> = Arc::from(format!("images/project-{project}/images.yaml"));
            let text: String = (1..=100)
                .map(|n| format!("    \"sha256:{n:064}\": [\"v{n}.0\"]\n"))
                .collect();
            sources.insert(file.clone(), Arc::from(text));
            for n in 1..=100 {
                let code = if n % 3 == 0 {
                    Code::UnquotedDigest
                } else {
                    Code::InvalidTag
                };
                diagnostics.push(
                    Diagnostic::new(
                        code,
                        Some(at(&file, n, 5, 73)),
                        format!("finding `{n}` | here"),
                    )
                    .help("fix it"),
                );
            }
        }
        assert_eq!(diagnostics.len(), 20_000);
        diagnostic::sort(&mut diagnostics);
        let text = to_markdown(&diagnostics, &sources, SUMMARY_BUDGET);

        assert!(text.len() <= SUMMARY_BUDGET, "{} bytes", text.len());
        assert!(text.len() < SUMMARY_LIMIT);
        let rows = text
            .lines()
            .filter(|l| l.starts_with("| error ") || l.starts_with("| warning "))
            .count();
        assert!(rows > 1000, "only {rows} rows kept");
        let omitted = diagnostics.len() - rows;
        // Errors sort first, so the cut falls among them and drops every warning.
        let warnings = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        let note = format!(
            "\n> [!WARNING]\n> {omitted} more findings are not shown ({} errors and {warnings} warnings): \
             GitHub drops a job summary over 1 MiB. Run `promoter check --format json` for the full list.\n",
            omitted - warnings
        );
        assert!(text.ends_with(&note), "{}", &text[text.len() - 400..]);
        // Every table line before the note is a whole row.
        let body = &text[..text.len() - note.len()];
        assert!(body.ends_with(" |\n"));
        assert!(
            body.lines()
                .filter(|l| l.starts_with('|'))
                .all(|l| l.ends_with(" |"))
        );
    }

    #[test]
    fn tiny_budget_keeps_heading_and_note() {
        let text = to_string(&sample(), 10);
        assert!(text.starts_with("## promoter check\n"));
        assert!(!text.contains("### "));
        assert!(text.ends_with(
            "> 4 more findings are not shown (3 errors and 1 warning): GitHub drops a job summary over 1 MiB. \
             Run `promoter check --format json` for the full list.\n"
        ));
    }
}
