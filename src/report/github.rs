//! The GitHub format: workflow-command annotations
//! (`::error file=F,line=L,endLine=L,col=C,endColumn=E,title=T::message`)
//! that GitHub shows on the pull request's changed files.
//!
//! GitHub shows at most [`ANNOTATIONS_PER_SEVERITY`] errors, as many
//! warnings and as many notices per step (and 50 per job), and silently
//! drops the rest. So the most severe are emitted first (the input is
//! sorted), each severity is capped here, and a plain log line says how many
//! more exist and where to find them: the job summary and `--format json`.

use std::io::{self, Write};

use crate::diagnostic::{Diagnostic, Location, Severity};

/// Annotations GitHub shows per severity per step; the rest it drops
/// silently. From GitHub's documentation of workflow commands.
pub const ANNOTATIONS_PER_SEVERITY: usize = 10;

/// Writes at most [`ANNOTATIONS_PER_SEVERITY`] annotations of each severity,
/// then, if some were left out, a log line counting them, then the summary
/// line. Expects `diagnostics` sorted most severe first.
///
/// # Errors
///
/// Only those of `w`.
pub fn render(w: &mut dyn Write, diagnostics: &[Diagnostic]) -> io::Result<()> {
    // Indexed by `slot(severity)`.
    let mut shown = [0usize; 3];
    let mut left_out = [0usize; 3];
    for diagnostic in diagnostics {
        let slot = slot(diagnostic.severity);
        if shown[slot] < ANNOTATIONS_PER_SEVERITY {
            write_annotation(w, diagnostic)?;
            shown[slot] += 1;
        } else {
            left_out[slot] += 1;
        }
    }

    let parts: Vec<String> = [
        (left_out[0], "error"),
        (left_out[1], "warning"),
        (left_out[2], "note"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, noun)| super::plural(n, &format!("more {noun}")))
    .collect();
    if !parts.is_empty() {
        // A plain line, not an annotation: it must not start with `::`.
        writeln!(
            w,
            "Not shown as annotations: {} (GitHub shows at most {ANNOTATIONS_PER_SEVERITY} \
             of each severity per step). The full list is in the job summary and in \
             `promoter check --format json`.",
            super::join_and(&parts)
        )?;
    }
    writeln!(w, "{}", super::summary_sentence(diagnostics))
}

fn slot(severity: Severity) -> usize {
    match severity {
        Severity::Error => 0,
        Severity::Warning => 1,
        Severity::Note => 2,
    }
}

fn command(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    }
}

fn write_annotation(w: &mut dyn Write, diagnostic: &Diagnostic) -> io::Result<()> {
    let mut properties = Vec::new();
    if let Some(location) = &diagnostic.location {
        properties.push(("file", github_path(&location.file).to_owned()));
        if location.has_line() {
            let line = location.line.to_string();
            properties.push(("line", line.clone()));
            properties.push(("endLine", line));
            if location.column > 0 {
                properties.push(("col", location.column.to_string()));
                if location.length > 0 {
                    let end = location.column.saturating_add(location.length);
                    properties.push(("endColumn", end.to_string()));
                }
            }
        }
    }
    properties.push((
        "title",
        format!("{} {}", diagnostic.code.as_str(), diagnostic.code.name()),
    ));
    let properties: Vec<String> = properties
        .into_iter()
        .map(|(key, value)| format!("{key}={}", escape_property(&value)))
        .collect();

    let mut message = diagnostic.message.clone();
    for related in &diagnostic.related {
        message.push('\n');
        message.push_str(&display_location(&related.location));
        message.push_str(": ");
        message.push_str(&related.message);
    }
    if let Some(help) = &diagnostic.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }

    writeln!(
        w,
        "::{} {}::{}",
        command(diagnostic.severity),
        properties.join(","),
        escape_data(&message)
    )
}

/// GitHub matches `file=` against paths relative to the repository root;
/// a leading `./` would keep the annotation off the file.
fn github_path(file: &str) -> &str {
    let mut file = file;
    while let Some(rest) = file.strip_prefix("./") {
        file = rest;
    }
    file
}

fn display_location(location: &Location) -> String {
    let file = github_path(&location.file);
    if location.has_line() {
        format!("{file}:{}:{}", location.line, location.column)
    } else {
        file.to_owned()
    }
}

/// Escapes a command's message: `%`, CR and LF.
fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a property value: as [`escape_data`], plus `:` and `,`, which
/// would otherwise end the value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{at, sample};
    use super::*;
    use crate::diagnostic::{self, Code};

    fn to_string(diagnostics: &[Diagnostic]) -> String {
        let mut sorted = diagnostics.to_vec();
        diagnostic::sort(&mut sorted);
        let mut out = Vec::new();
        render(&mut out, &sorted).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn snapshot() {
        let expected = "\
::error file=images/k8s-staging-foo/images.yaml,line=3,endLine=3,col=5,endColumn=17,title=M201 invalid-digest::digest `sha256:abc` is not 64 hex digits: 100%25, a,b: c%0Asecond | line ``x``%0Ahelp: use `crane digest` | copy it again
::error file=images/k8s-staging-foo/images.yaml,line=4,endLine=4,col=81,endColumn=87,title=M301 tag-conflict::tag `v1.0` of `foo` is claimed by two digests%0Aimages/k8s-staging-foo/images.yaml:3:20: first claimed here%0Ahelp: keep one digest per tag; move the other tag to a new name
::error file=manifests/k8s-staging-foo/promoter-manifest.yaml,title=M105 missing-images-file::project `k8s-staging-foo` has no images file%0Ahelp: create images/k8s-staging-foo/images.yaml
::warning file=images/k8s-staging-foo/images.yaml,line=7,endLine=7,col=2,endColumn=73,title=M503 unquoted-digest::digest key is not quoted
Found 3 errors and 1 warning in 2 files.
";
        assert_eq!(to_string(&sample()), expected);
    }

    #[test]
    fn escapes_properties_and_messages() {
        assert_eq!(escape_data("100%\r\na:b,c"), "100%25%0D%0Aa:b,c");
        assert_eq!(escape_property("100%\r\na:b,c"), "100%25%0D%0Aa%3Ab%2Cc");

        let d = Diagnostic::new(
            Code::Io,
            Some(Location::file(Arc::from("./dir,1/a:b%.yaml"))),
            "x",
        );
        let note = Diagnostic {
            severity: Severity::Note,
            ..Diagnostic::new(Code::UnsortedImages, Some(at("a.yaml", 2, 3, 0)), "n")
        };
        let run_wide = Diagnostic::new(Code::Io, None, "disk full");
        assert_eq!(
            to_string(&[d, note, run_wide]),
            "\
::error title=M001 io-error::disk full
::error file=dir%2C1/a%3Ab%25.yaml,title=M001 io-error::x
::notice file=a.yaml,line=2,endLine=2,col=3,title=M501 unsorted-images::n
Found 2 errors and 1 note in 2 files.
"
        );
    }

    #[test]
    fn caps_each_severity_and_counts_the_rest() {
        let mut diagnostics = Vec::new();
        for n in 1..=13 {
            diagnostics.push(Diagnostic::new(
                Code::InvalidTag,
                Some(at("e.yaml", n, 1, 1)),
                format!("error {n}"),
            ));
        }
        for n in 1..=11 {
            diagnostics.push(Diagnostic::new(
                Code::UnquotedDigest,
                Some(at("w.yaml", n, 1, 1)),
                format!("warning {n}"),
            ));
        }
        diagnostics.push(Diagnostic {
            severity: Severity::Note,
            ..Diagnostic::new(Code::UnsortedImages, None, "a note")
        });
        // Unsorted input, as the checker may produce it.
        diagnostics.reverse();

        let text = to_string(&diagnostics);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10 + 10 + 1 + 2);
        assert!(lines[..10].iter().all(|l| l.starts_with("::error ")));
        assert!(lines[0].ends_with("::error 1"));
        assert!(lines[9].ends_with("::error 10"));
        assert!(lines[10..20].iter().all(|l| l.starts_with("::warning ")));
        assert_eq!(lines[20], "::notice title=M501 unsorted-images::a note");
        assert_eq!(
            lines[21],
            "Not shown as annotations: 3 more errors and 1 more warning (GitHub shows at \
             most 10 of each severity per step). The full list is in the job summary and \
             in `promoter check --format json`."
        );
        assert_eq!(
            lines[22],
            "Found 13 errors, 11 warnings and 1 note in 2 files."
        );
    }
}
