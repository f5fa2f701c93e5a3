//! Step outputs: appended to the file `$GITHUB_OUTPUT` names, as
//! `name=value`, or in the heredoc form
//! (`name<<DELIMITER` / value / `DELIMITER`) when the value has a newline.
//! Also the `images` output: the plan's work as one line of JSON, for later
//! steps (`fromJSON(steps.<id>.outputs.images)`; docs/report-schema.md).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// The version of the `images` output's JSON.
pub const IMAGES_SCHEMA_VERSION: u32 = 1;

/// `images`: one object per (source image, destination) of the plan of
/// the run report (`plan.images[].targets[]`), as
/// `{"schema_version": 1, "images": [{"source", "digest", "destination",
/// "reference", "tags", "copy"}]}`, on one line. On a confirmed run these
/// were promoted, except where the `failed` output and the report's
/// diagnostics say otherwise; on a dry run, they would be.
#[must_use]
pub fn images_json(plan_images: &[Value]) -> String {
    let empty = Vec::new();
    let mut images = Vec::new();
    for image in plan_images {
        let digest = image.get("digest").and_then(Value::as_str).unwrap_or("");
        for target in image
            .get("targets")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
        {
            let destination = target
                .get("destination")
                .and_then(Value::as_str)
                .unwrap_or("");
            images.push(json!({
                "source": image.get("source").cloned().unwrap_or(Value::Null),
                "digest": digest,
                "destination": destination,
                "reference": format!("{destination}@{digest}"),
                "tags": target.get("tags").cloned().unwrap_or_else(|| json!([])),
                "copy": target.get("copy").cloned().unwrap_or(Value::Bool(false)),
            }));
        }
    }
    json!({"schema_version": IMAGES_SCHEMA_VERSION, "images": images}).to_string()
}

/// The outputs as the text to append. A multi-line value gets a delimiter
/// that does not occur in it.
#[must_use]
pub fn format(outputs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = String::from("ghadelimiter_promoter");
            let mut n = 0u32;
            while value.lines().any(|l| l == delimiter) {
                n += 1;
                delimiter = format!("ghadelimiter_promoter_{n}");
            }
            let _ = writeln!(out, "{name}<<{delimiter}\n{value}\n{delimiter}");
        } else {
            let _ = writeln!(out, "{name}={value}");
        }
    }
    out
}

/// Appends `outputs` to the file at `path`.
///
/// # Errors
///
/// When the file cannot be opened or written.
pub fn write(path: &Path, outputs: &[(&str, String)]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(format(outputs).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_flattens_the_plan_on_one_line() {
        let plan = json!({"images": [{
            "source": "gcr.io/staging/app",
            "digest": "sha256:ab",
            "targets": [
                {"destination": "us.gcr.io/prod/app", "copy": true, "tags": ["v1"]},
                {"destination": "eu.gcr.io/prod/app", "copy": false, "tags": []}
            ]
        }], "counts": {}});
        let text = images_json(plan["images"].as_array().unwrap());
        assert!(!text.contains('\n'));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["images"].as_array().unwrap().len(), 2);
        assert_eq!(
            value["images"][0]["reference"],
            "us.gcr.io/prod/app@sha256:ab"
        );
        assert_eq!(value["images"][0]["tags"], json!(["v1"]));
        assert_eq!(value["images"][1]["copy"], false);
        assert_eq!(images_json(&[]), r#"{"images":[],"schema_version":1}"#);
    }

    #[test]
    fn single_and_multi_line() {
        let text = format(&[
            ("promoted", "3".into()),
            ("plan", "a\nghadelimiter_promoter\nb".into()),
        ]);
        assert_eq!(
            text,
            "promoted=3\nplan<<ghadelimiter_promoter_1\na\nghadelimiter_promoter\nb\nghadelimiter_promoter_1\n"
        );
    }
}
