//! `promoter rules` and `promoter explain`: what the checker knows, as a
//! table, as JSON, or one rule at length. The rules themselves are
//! [`crate::diagnostic::Code`]; their long texts are in [`docs`].

pub mod docs;

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::TableFormat;
use crate::diagnostic::{Code, Severity};

/// The version of the JSON that `rules --format json` and
/// `explain --format json` write (docs/report-schema.md).
pub const SCHEMA_VERSION: u32 = 1;

/// One rule as JSON.
#[derive(Serialize)]
struct RuleJson {
    code: &'static str,
    name: &'static str,
    severity: Severity,
    summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bad: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    good: Option<&'static str>,
}

impl RuleJson {
    fn of(code: Code, long: bool) -> Self {
        let doc = docs::of(code);
        RuleJson {
            code: code.as_str(),
            name: code.name(),
            severity: code.default_severity(),
            summary: summary(code),
            description: long.then_some(doc.description),
            bad: long.then_some(doc.bad),
            good: long.then_some(doc.good),
        }
    }
}

/// The first sentence of the description, on one line: the `summary`
/// of the JSON.
fn summary(code: Code) -> String {
    let text = docs::of(code).description;
    let bytes = text.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| {
            bytes[i] == b'.'
                && bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace())
                && !text[..i].ends_with("e.g")
        })
        .map_or(text.len(), |i| i + 1);
    text[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes every rule: `CODE  SEVERITY NAME` lines, or one JSON object
/// `{"schema_version": 1, "rules": [...]}`.
///
/// # Errors
///
/// Only those of `w`.
pub fn list(w: &mut dyn Write, format: TableFormat) -> io::Result<()> {
    match format {
        TableFormat::Text => {
            for code in Code::ALL {
                writeln!(w, "{code}  {:<8} {}", code.default_severity(), code.name())?;
            }
            Ok(())
        }
        TableFormat::Json => {
            #[derive(Serialize)]
            struct Rules {
                schema_version: u32,
                rules: Vec<RuleJson>,
            }
            let rules = Rules {
                schema_version: SCHEMA_VERSION,
                rules: Code::ALL.iter().map(|c| RuleJson::of(*c, false)).collect(),
            };
            serde_json::to_writer_pretty(&mut *w, &rules)?;
            writeln!(w)
        }
    }
}

/// Writes one rule at length, as `ruff rule` does: the heading, the
/// description, then the bad and the good example.
///
/// # Errors
///
/// Only those of `w`.
pub fn explain(w: &mut dyn Write, code: Code, format: TableFormat, color: bool) -> io::Result<()> {
    if format == TableFormat::Json {
        #[derive(Serialize)]
        struct Explained {
            schema_version: u32,
            #[serde(flatten)]
            rule: RuleJson,
        }
        let rule = Explained {
            schema_version: SCHEMA_VERSION,
            rule: RuleJson::of(code, true),
        };
        serde_json::to_writer_pretty(&mut *w, &rule)?;
        return writeln!(w);
    }
    let bold = |text: &str| {
        if color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let doc = docs::of(code);
    writeln!(
        w,
        "{} ({}, {})",
        bold(&format!("{code} {}", code.name())),
        code.default_severity(),
        if code.as_str().starts_with('P') {
            "reported by `run`"
        } else {
            "reported by `check` and `run`"
        }
    )?;
    writeln!(w)?;
    writeln!(w, "{}", doc.description)?;
    for (title, example) in [("Bad", doc.bad), ("Good", doc.good)] {
        writeln!(w)?;
        writeln!(w, "{}", bold(&format!("{title}:")))?;
        writeln!(w)?;
        for line in example.lines() {
            writeln!(w, "    {line}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_description_and_two_different_examples() {
        for code in Code::ALL {
            let doc = docs::of(*code);
            assert!(doc.description.len() > 40, "{code}");
            assert!(
                !doc.bad.trim().is_empty() && !doc.good.trim().is_empty(),
                "{code}"
            );
            assert_ne!(doc.bad, doc.good, "{code}");
            assert!(
                summary(*code).ends_with(['.', ':']),
                "{code}: {}",
                summary(*code)
            );
        }
    }

    #[test]
    fn explain_text_snapshot() {
        let mut out = Vec::new();
        explain(&mut out, Code::DuplicateTag, TableFormat::Text, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let digest = format!("sha256:{}", "1".repeat(64));
        assert_eq!(
            text,
            format!(
                "M302 duplicate-tag (warning, reported by `check` and `run`)\n\
                 \n\
                 The same tag twice in one tag list: harmless, but a sign of a copy and\n\
                 paste that may have meant another tag.\n\
                 \n\
                 Bad:\n\
                 \n    - name: foo\n      dmap:\n        \"{digest}\": [\"v1.0\", \"v1.0\"]\n\
                 \n\
                 Good:\n\
                 \n    - name: foo\n      dmap:\n        \"{digest}\": [\"v1.0\", \"latest\"]\n"
            )
        );
    }

    #[test]
    fn rules_json_has_a_schema_version_and_every_rule() {
        let mut out = Vec::new();
        list(&mut out, TableFormat::Json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["schema_version"], SCHEMA_VERSION);
        let rules = value["rules"].as_array().unwrap();
        assert_eq!(rules.len(), Code::ALL.len());
        assert_eq!(rules[0]["code"], "M001");
        assert_eq!(rules[0]["name"], "io-error");
        assert_eq!(rules[0]["severity"], "error");
        assert!(rules[0].get("bad").is_none());
    }
}
