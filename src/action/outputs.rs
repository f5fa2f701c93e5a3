//! Step outputs: appended to the file `$GITHUB_OUTPUT` names, as
//! `name=value`, or in the heredoc form
//! (`name<<DELIMITER` / value / `DELIMITER`) when the value has a newline.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

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
