//! The human format: rustc/ruff-style text for a terminal.
//!
//! ```text
//! error[M301]: tag `v1.0` of `foo` is claimed by two digests
//!  --> images/foo/images.yaml:4:20
//!   |
//! 4 |     "sha256:1111…": ["v1.0"]
//!   |                    ^^^^^^
//!   |
//!  ::: images/foo/images.yaml:3:20
//!   |
//! 3 |     "sha256:abc": ["v1.0"]
//!   |                    ------ first claimed here
//!   |
//!   = help: keep one digest per tag
//! ```
//!
//! followed by one summary line. Tabs are expanded, control characters are
//! replaced (a manifest must not be able to drive the terminal) and long
//! lines are shown as a window around the span. The caret is placed by
//! display width (unicode-width), so it stays under its text after wide
//! (East Asian) characters and emoji.

use std::io::{self, Write};

use unicode_width::UnicodeWidthChar;

use crate::diagnostic::{Diagnostic, Location, Severity, Sources};

/// Tab stops every this many columns, as most editors show YAML.
const TAB_WIDTH: usize = 4;
/// Longest source excerpt shown, in columns; longer lines are windowed.
const MAX_LINE_WIDTH: usize = 120;
/// Columns kept before the span when a long line is windowed.
const CONTEXT_BEFORE: usize = 40;
/// Marks the cut ends of a windowed line.
const ELLIPSIS: &str = "...";

/// Writes every diagnostic, then the summary line. Expects `diagnostics`
/// sorted (see [`crate::diagnostic::sort`]).
///
/// # Errors
///
/// Only those of `w`.
pub fn render(
    w: &mut dyn Write,
    diagnostics: &[Diagnostic],
    sources: &Sources,
    color: bool,
) -> io::Result<()> {
    let paint = Paint { color };
    for diagnostic in diagnostics {
        render_one(w, diagnostic, sources, paint)?;
        writeln!(w)?;
    }
    writeln!(w, "{}", paint.bold(&super::summary_sentence(diagnostics)))
}

/// ANSI styling, or none.
#[derive(Clone, Copy)]
struct Paint {
    color: bool,
}

impl Paint {
    fn style(self, codes: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{codes}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(self, text: &str) -> String {
        self.style("1", text)
    }

    /// Line numbers, gutters, arrows and secondary underlines.
    fn gutter(self, text: &str) -> String {
        self.style("1;34", text)
    }

    fn severity(self, severity: Severity, text: &str) -> String {
        let codes = match severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Note => "1;36",
        };
        self.style(codes, text)
    }
}

fn render_one(
    w: &mut dyn Write,
    diagnostic: &Diagnostic,
    sources: &Sources,
    paint: Paint,
) -> io::Result<()> {
    let severity = diagnostic.severity;
    writeln!(
        w,
        "{}{} {}",
        paint.severity(severity, &format!("{severity}[{}]", diagnostic.code)),
        paint.bold(":"),
        paint.bold(&diagnostic.message)
    )?;

    // The gutter is as wide as the largest line number shown.
    let widest = diagnostic
        .location
        .iter()
        .chain(diagnostic.related.iter().map(|r| &r.location))
        .map(|l| l.line)
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(widest.to_string().len());
    let bar = paint.gutter("|");
    // Separators (`  |`) only around source excerpts, as rustc does.
    let mut excerpt_shown = false;

    if let Some(location) = &diagnostic.location {
        writeln!(w, "{pad}{} {location}", paint.gutter("-->"))?;
        if let Some(excerpt) = excerpt_at(location, sources) {
            let underline = paint.severity(severity, &"^".repeat(excerpt.len));
            write_excerpt(w, &pad, location.line, &excerpt, &underline, "", paint)?;
            excerpt_shown = true;
        }
    }

    for related in &diagnostic.related {
        let location = &related.location;
        match excerpt_at(location, sources) {
            Some(excerpt) => {
                if excerpt_shown {
                    writeln!(w, "{pad} {bar}")?;
                }
                writeln!(w, "{pad}{} {location}", paint.gutter(":::"))?;
                let underline = paint.gutter(&"-".repeat(excerpt.len));
                let label = paint.gutter(&related.message);
                write_excerpt(w, &pad, location.line, &excerpt, &underline, &label, paint)?;
                excerpt_shown = true;
            }
            None => writeln!(
                w,
                "{pad}{} {location}: {}",
                paint.gutter(":::"),
                related.message
            )?,
        }
    }

    if let Some(help) = &diagnostic.help {
        if excerpt_shown {
            writeln!(w, "{pad} {bar}")?;
        }
        writeln!(
            w,
            "{pad} {} {}: {help}",
            paint.gutter("="),
            paint.bold("help")
        )?;
    }
    Ok(())
}

/// Writes `  |`, `4 | text`, `  |   ^^^ label`.
fn write_excerpt(
    w: &mut dyn Write,
    pad: &str,
    line: u32,
    excerpt: &Excerpt,
    underline: &str,
    label: &str,
    paint: Paint,
) -> io::Result<()> {
    let bar = paint.gutter("|");
    writeln!(w, "{pad} {bar}")?;
    let number = paint.gutter(&format!("{line:>width$}", width = pad.len()));
    if excerpt.text.is_empty() {
        writeln!(w, "{number} {bar}")?;
    } else {
        writeln!(w, "{number} {bar} {}", excerpt.text)?;
    }
    let indent = " ".repeat(excerpt.start);
    if label.is_empty() {
        writeln!(w, "{pad} {bar} {indent}{underline}")
    } else {
        writeln!(w, "{pad} {bar} {indent}{underline} {label}")
    }
}

/// A source line made safe to print, and where to underline it.
#[derive(Debug, PartialEq, Eq)]
struct Excerpt {
    text: String,
    /// Column (0-based, in `text`) where the underline starts.
    start: usize,
    /// Underline length, at least 1.
    len: usize,
}

fn excerpt_at(location: &Location, sources: &Sources) -> Option<Excerpt> {
    if !location.has_line() {
        return None;
    }
    let line = sources.line(&location.file, location.line)?;
    Some(excerpt(line, location.column, location.length))
}

/// Expands tabs, replaces control characters, maps the 1-based character
/// span `column..column+length` onto the result, and windows long lines.
/// A span past the end of the line points just after its last character.
fn excerpt(line: &str, column: u32, length: u32) -> Excerpt {
    let mut cells: Vec<char> = Vec::with_capacity(line.len());
    // starts[i] = the cell where character i begins.
    let mut starts: Vec<usize> = Vec::with_capacity(line.len());
    for c in line.chars() {
        starts.push(cells.len());
        match c {
            '\t' => {
                let n = TAB_WIDTH - cells.len() % TAB_WIDTH;
                cells.extend(std::iter::repeat_n(' ', n));
            }
            c if c.is_control() => cells.push(char::REPLACEMENT_CHARACTER),
            c => cells.push(c),
        }
    }
    let cell_of = |index: usize| starts.get(index).copied().unwrap_or(cells.len());
    let first = usize::try_from(column.max(1) - 1).unwrap_or(usize::MAX);
    let start = cell_of(first);
    let end = cell_of(first.saturating_add(usize::try_from(length).unwrap_or(usize::MAX)));
    let len = end.saturating_sub(start).max(1);

    if cells.len() <= MAX_LINE_WIDTH {
        return in_columns(&cells, start, len);
    }

    // Show the span's start with some context; keep the window full.
    let left = if start + len <= MAX_LINE_WIDTH {
        0
    } else {
        start
            .saturating_sub(CONTEXT_BEFORE)
            .min(cells.len().saturating_sub(MAX_LINE_WIDTH))
    };
    let right = (left + MAX_LINE_WIDTH).min(cells.len());
    let mut text = String::new();
    if left > 0 {
        text.push_str(ELLIPSIS);
    }
    let shift = text.len();
    text.extend(&cells[left..right]);
    if right < cells.len() {
        text.push_str(ELLIPSIS);
    }
    let shown: Vec<char> = text.chars().collect();
    in_columns(
        &shown,
        start - left + shift,
        (start + len).min(right).saturating_sub(start).max(1),
    )
}

/// The excerpt of `cells`, with the span `start..start+len` (in cells)
/// turned into terminal columns: a wide character takes two.
fn in_columns(cells: &[char], start: usize, len: usize) -> Excerpt {
    let width = |cells: &[char]| -> usize { cells.iter().map(|c| c.width().unwrap_or(0)).sum() };
    let start = start.min(cells.len());
    let end = (start + len).min(cells.len());
    Excerpt {
        text: cells.iter().collect(),
        start: width(&cells[..start]),
        len: width(&cells[start..end]).max(1),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{IMAGES, at, sample, sources};
    use super::*;
    use crate::diagnostic::{self, Code};

    fn to_string(diagnostics: &[Diagnostic], color: bool) -> String {
        let mut sorted = diagnostics.to_vec();
        diagnostic::sort(&mut sorted);
        let mut out = Vec::new();
        render(&mut out, &sorted, &sources(), color).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn snapshot() {
        let expected = r#"error[M201]: digest `sha256:abc` is not 64 hex digits: 100%, a,b: c
second | line ``x``
 --> images/k8s-staging-foo/images.yaml:3:5
  |
3 |     "sha256:abc": ["v1.0"]
  |     ^^^^^^^^^^^^
  |
  = help: use `crane digest` | copy it again

error[M301]: tag `v1.0` of `foo` is claimed by two digests
 --> images/k8s-staging-foo/images.yaml:4:81
  |
4 |     "sha256:1111111111111111111111111111111111111111111111111111111111111111": ["v1.0"]
  |                                                                                 ^^^^^^
  |
 ::: images/k8s-staging-foo/images.yaml:3:20
  |
3 |     "sha256:abc": ["v1.0"]
  |                    ------ first claimed here
  |
  = help: keep one digest per tag; move the other tag to a new name

error[M105]: project `k8s-staging-foo` has no images file
 --> manifests/k8s-staging-foo/promoter-manifest.yaml
  = help: create images/k8s-staging-foo/images.yaml

warning[M503]: digest key is not quoted
 --> images/k8s-staging-foo/images.yaml:7:2
  |
7 |     sha256:2222222222222222222222222222222222222222222222222222222222222222: [v2]
  |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

Found 3 errors and 1 warning in 2 files.
"#;
        assert_eq!(to_string(&sample(), false), expected);
    }

    #[test]
    fn no_problems() {
        assert_eq!(to_string(&[], false), "No problems found.\n");
    }

    #[test]
    fn without_location_or_source() {
        let diagnostics = vec![
            Diagnostic::new(Code::Io, None, "cannot read `x`: permission denied"),
            // A line but no text for the file: the arrow only.
            Diagnostic::new(Code::InvalidTag, Some(at("gone.yaml", 12, 3, 0)), "bad tag")
                .related(at("gone.yaml", 2, 1, 1), "also here"),
        ];
        let expected = "\
error[M001]: cannot read `x`: permission denied

error[M202]: bad tag
  --> gone.yaml:12:3
  ::: gone.yaml:2:1: also here

Found 2 errors in 1 file.
";
        assert_eq!(to_string(&diagnostics, false), expected);
    }

    #[test]
    fn colour_is_plain_ansi() {
        let d = Diagnostic::new(Code::UnsortedImages, Some(at(IMAGES, 1, 3, 4)), "unsorted");
        let text = to_string(&[d], true);
        assert!(text.starts_with("\x1b[1;33mwarning[M501]\x1b[0m\x1b[1m:\x1b[0m \x1b[1munsorted"));
        assert!(text.contains("\x1b[1;33m^^^^\x1b[0m"));
    }

    #[test]
    fn wide_characters_keep_the_caret_under_its_text() {
        // `镜像` is two characters, four columns: the caret under `v1`
        // starts after them, and a span over them is four carets long.
        let line = "- name: 镜像 # v1";
        let e = excerpt(line, 14, 2);
        assert_eq!((e.start, e.len), (15, 2));
        let e = excerpt(line, 9, 2);
        assert_eq!((e.start, e.len), (8, 4));
    }

    #[test]
    fn excerpt_spans() {
        // Zero length: one caret.
        assert_eq!(
            excerpt("abc", 2, 0),
            Excerpt {
                text: "abc".into(),
                start: 1,
                len: 1
            }
        );
        // Past the end: a caret after the last character.
        assert_eq!(
            excerpt("abc", 9, 3),
            Excerpt {
                text: "abc".into(),
                start: 3,
                len: 1
            }
        );
        // Tabs expand to the next stop; the span follows.
        assert_eq!(
            excerpt("a\tb\tc", 3, 3),
            Excerpt {
                text: "a   b   c".into(),
                start: 4,
                len: 5
            }
        );
        // Control characters cannot reach the terminal.
        assert_eq!(excerpt("a\u{1b}[31mb", 1, 1).text, "a\u{fffd}[31mb");
        // Characters, not bytes.
        assert_eq!(
            excerpt("é: x", 4, 1),
            Excerpt {
                text: "é: x".into(),
                start: 3,
                len: 1
            }
        );
    }

    #[test]
    fn long_lines_are_windowed() {
        let line = format!("{}TARGET{}", "a".repeat(300), "b".repeat(300));
        let e = excerpt(&line, 301, 6);
        assert_eq!(e.text.chars().count(), MAX_LINE_WIDTH + 2 * ELLIPSIS.len());
        assert!(e.text.starts_with("...a") && e.text.ends_with("b..."));
        assert_eq!(&e.text[e.start..e.start + e.len], "TARGET");

        // Near the start: no leading ellipsis.
        let e = excerpt(&line, 2, 3);
        assert!(e.text.starts_with("aaa") && e.text.ends_with("..."));
        assert_eq!((e.start, e.len), (1, 3));

        // Near the end: the window ends with the line.
        let e = excerpt(&line, 600, 50);
        assert!(e.text.starts_with("...") && e.text.ends_with('b'));
        assert_eq!(&e.text[e.start..], "bbbbbbb");

        // A span longer than the window is clipped to it.
        let e = excerpt(&line, 1, 600);
        assert_eq!((e.start, e.len), (0, MAX_LINE_WIDTH));
    }

    #[test]
    fn related_file_only_and_wide_gutter() {
        let mut sources = sources();
        let long: String = (1..=120).map(|n| format!("line {n}\n")).collect();
        sources.insert(Arc::from("long.yaml"), Arc::from(long));
        let d = Diagnostic::new(Code::TagMove, Some(at("long.yaml", 100, 1, 4)), "moved")
            .related(Location::file(Arc::from("base.yaml")), "in the base");
        let mut out = Vec::new();
        render(&mut out, &[d], &sources, false).unwrap();
        let expected = "\
error[M402]: moved
   --> long.yaml:100:1
    |
100 | line 100
    | ^^^^
   ::: base.yaml: in the base

Found 1 error in 1 file.
";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
