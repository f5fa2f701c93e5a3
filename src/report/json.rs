//! The JSON format (`--format json`): one object,
//! `{"schema_version": 1, "diagnostics": [...]}`, with one object per
//! diagnostic, for scripts and other tools (docs/report-schema.md).
//! `schema_version` grows only when a field changes meaning or goes away.
//!
//! Fields of a diagnostic, always present and always in this order: `code` (`"M201"`),
//! `name` (`"invalid-digest"`), `severity` (`"error"`, `"warning"`,
//! `"note"`), `message`, `help` (string or null), `file`, `line`, `column`,
//! `end_column` (null when unknown), `related` (array of `{file, line,
//! column, end_column, message}`). Lines and columns are 1-based character
//! positions; `end_column` is exclusive (one past the last character), so it
//! equals `column` for an empty span. A location that names only a file has
//! `file` set and `line`, `column`, `end_column` null.

use std::io::{self, Write};

use serde::Serialize;

use crate::diagnostic::{Diagnostic, Location, Severity};

/// One diagnostic as written. Field order here is the output order.
#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    name: &'static str,
    severity: Severity,
    message: &'a str,
    help: Option<&'a str>,
    #[serde(flatten)]
    place: Place<'a>,
    related: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    #[serde(flatten)]
    place: Place<'a>,
    message: &'a str,
}

/// `file`, `line`, `column`, `end_column`.
#[derive(Serialize)]
struct Place<'a> {
    file: Option<&'a str>,
    line: Option<u32>,
    column: Option<u32>,
    end_column: Option<u32>,
}

impl<'a> Place<'a> {
    fn of(location: Option<&'a Location>) -> Self {
        let file = location.map(|l| &*l.file);
        match location {
            Some(l) if l.has_line() => Place {
                file,
                line: Some(l.line),
                column: Some(l.column),
                end_column: Some(l.column.saturating_add(l.length)),
            },
            _ => Place {
                file,
                line: None,
                column: None,
                end_column: None,
            },
        }
    }
}

/// The version of this format: [`render`] writes it as `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole output.
#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

/// Writes `diagnostics` as a pretty-printed JSON object and a newline.
///
/// # Errors
///
/// Only those of `w`.
pub fn render(w: &mut dyn Write, diagnostics: &[Diagnostic]) -> io::Result<()> {
    let objects: Vec<JsonDiagnostic<'_>> = diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            code: d.code.as_str(),
            name: d.code.name(),
            severity: d.severity,
            message: &d.message,
            help: d.help.as_deref(),
            place: Place::of(d.location.as_ref()),
            related: d
                .related
                .iter()
                .map(|r| JsonRelated {
                    place: Place::of(Some(&r.location)),
                    message: &r.message,
                })
                .collect(),
        })
        .collect();
    let report = JsonReport {
        schema_version: SCHEMA_VERSION,
        diagnostics: objects,
    };
    serde_json::to_writer_pretty(&mut *w, &report)?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::sample;
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
        let expected = r#"{
  "schema_version": 1,
  "diagnostics": [
    {
      "code": "M201",
      "name": "invalid-digest",
      "severity": "error",
      "message": "digest `sha256:abc` is not 64 hex digits: 100%, a,b: c\nsecond | line ``x``",
      "help": "use `crane digest` | copy it again",
      "file": "images/k8s-staging-foo/images.yaml",
      "line": 3,
      "column": 5,
      "end_column": 17,
      "related": []
    },
    {
      "code": "M301",
      "name": "tag-conflict",
      "severity": "error",
      "message": "tag `v1.0` of `foo` is claimed by two digests",
      "help": "keep one digest per tag; move the other tag to a new name",
      "file": "images/k8s-staging-foo/images.yaml",
      "line": 4,
      "column": 81,
      "end_column": 87,
      "related": [
        {
          "file": "images/k8s-staging-foo/images.yaml",
          "line": 3,
          "column": 20,
          "end_column": 26,
          "message": "first claimed here"
        }
      ]
    },
    {
      "code": "M105",
      "name": "missing-images-file",
      "severity": "error",
      "message": "project `k8s-staging-foo` has no images file",
      "help": "create images/k8s-staging-foo/images.yaml",
      "file": "manifests/k8s-staging-foo/promoter-manifest.yaml",
      "line": null,
      "column": null,
      "end_column": null,
      "related": []
    },
    {
      "code": "M503",
      "name": "unquoted-digest",
      "severity": "warning",
      "message": "digest key is not quoted",
      "help": null,
      "file": "images/k8s-staging-foo/images.yaml",
      "line": 7,
      "column": 2,
      "end_column": 73,
      "related": []
    }
  ]
}
"#;
        assert_eq!(to_string(&sample()), expected);
    }

    #[test]
    fn empty_and_run_wide() {
        assert_eq!(
            to_string(&[]),
            "{\n  \"schema_version\": 1,\n  \"diagnostics\": []\n}\n"
        );
        let d = Diagnostic::new(Code::Io, None, "x");
        let value: serde_json::Value = serde_json::from_str(&to_string(&[d])).unwrap();
        let value = &value["diagnostics"];
        assert_eq!(value[0]["file"], serde_json::Value::Null);
        assert_eq!(value[0]["line"], serde_json::Value::Null);
    }
}
