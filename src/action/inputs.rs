//! The action's inputs, as the runner hands them to a container action:
//! one `INPUT_<NAME>` variable per input, the name upper-cased with its
//! hyphens kept (`thin-manifest-dir` arrives as `INPUT_THIN-MANIFEST-DIR`).
//! An input the workflow leaves out arrives as its `action.yml` default,
//! and an empty one as an empty string, which means "not given" here.
//!
//! This module only parses and validates; it reads no files and decides
//! nothing (see `mode`).

use std::fmt;

/// What the step should do (`mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Decide from the event (see `mode::decide`).
    Auto,
    /// Only `promoter check`.
    Check,
    /// `promoter run`: a dry-run plan, or a promotion with `confirm`.
    Run,
    /// `promoter verify`: check the signatures of what is promoted.
    Verify,
}

/// `confirm`: promote for real, or not, or let the event decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Promote on a push to the default branch, dry-run elsewhere.
    Auto,
    Yes,
    No,
}

/// `fail-on`: the least severe finding that fails the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailOn {
    Error,
    Warning,
    /// Report only; the step fails only when the promoter cannot run.
    Never,
}

/// Which command a pass-through input goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum For {
    Run,
    Verify,
    Both,
}

/// Inputs passed straight to `promoter run` and `promoter verify` as
/// `--<input>=<value>` when not empty: the signing, verification and rate
/// options, whose flags those commands own (docs/signing.md).
pub const PASS_THROUGH: &[(&str, For)] = &[
    ("max-rps", For::Run),
    ("concurrency", For::Both),
    ("signing-key", For::Run),
    ("identity-token-file", For::Run),
    ("fulcio-url", For::Run),
    ("rekor-url", For::Run),
    ("signing-config", For::Run),
    ("timestamp-server-url", For::Run),
    ("signature-identity-prefix", For::Run),
    ("trusted-root", For::Both),
    ("signature-format", For::Both),
    ("certificate-identity", For::Both),
    ("certificate-identity-regexp", For::Both),
    ("certificate-oidc-issuer", For::Both),
    ("certificate-oidc-issuer-regexp", For::Both),
    ("public-key", For::Verify),
    ("attest", For::Run),
    ("allowed-builder", For::Run),
];

/// The inputs other than [`PASS_THROUGH`]: with those, every input
/// `action.yml` declares (checked by `tests/action_files.rs`).
pub const NAMES: &[&str] = &[
    "mode",
    "manifest",
    "thin-manifest-dir",
    "base-ref",
    "confirm",
    "github-token",
    "fail-on",
    "show-summary",
    "summary",
    "check-run",
    "comment",
    "report",
    "sign",
    "fix",
    "args",
    // Read from the environment (`INPUT_AWS-ROLE-ARN`, `INPUT_GITHUB-REGISTRY`)
    // by `registry::credentials`, in the promoter command the action runs.
    "aws-role-arn",
    "github-registry",
];

/// Every input, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Inputs {
    pub mode: Mode,
    pub manifest: Option<String>,
    /// `thin-manifest-dir`: one or more directories, one per line.
    pub thin_manifest_dirs: Vec<String>,
    pub confirm: Confirm,
    /// `base-ref`: compare with this revision instead of the event's base.
    pub base_ref: Option<String>,
    /// `github-token`. Never printed: `Debug` hides it.
    pub github_token: Option<String>,
    /// `comment`: keep one pull-request comment with the plan.
    pub comment: bool,
    /// `show-summary` (or the deprecated `summary`, which wins when given):
    /// write the job summary (default true).
    pub summary: bool,
    /// `check-run`: publish a Check Run with every annotation (default true).
    pub check_run: bool,
    pub fail_on: FailOn,
    /// `report`: where the JSON report goes, relative to the workspace.
    pub report: String,
    /// `sign`: passed to `run` as `--sign=<value>` when given; `run`
    /// signs by default when an identity is available.
    pub sign: Option<bool>,
    /// `fix`: `verify --fix` copies missing signatures over.
    pub fix: bool,
    /// `(flag, for, value)` for each non-empty [`PASS_THROUGH`] input.
    pub pass_through: Vec<(&'static str, For, String)>,
    /// `args`: extra arguments for the promoter command, one per line.
    pub extra_args: Vec<String>,
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs")
            .field("mode", &self.mode)
            .field("manifest", &self.manifest)
            .field("thin_manifest_dirs", &self.thin_manifest_dirs)
            .field("confirm", &self.confirm)
            .field("base_ref", &self.base_ref)
            .field(
                "github_token",
                &self.github_token.as_ref().map(|_| "<redacted>"),
            )
            .field("comment", &self.comment)
            .field("summary", &self.summary)
            .field("check_run", &self.check_run)
            .field("fail_on", &self.fail_on)
            .field("report", &self.report)
            .field("sign", &self.sign)
            .field("fix", &self.fix)
            .field("pass_through", &self.pass_through)
            .field("extra_args", &self.extra_args)
            .finish()
    }
}

/// An input with a value the action does not understand.
#[derive(Debug, thiserror::Error)]
#[error("input `{name}`: {message}")]
pub struct InputError {
    pub name: &'static str,
    pub message: String,
}

/// The default report file, in the workspace so that later steps (which
/// run outside the container) find it at the same relative path.
pub const DEFAULT_REPORT: &str = "promoter-report.json";

impl Inputs {
    /// Reads every input through `var` (`std::env::var` in the binary).
    ///
    /// # Errors
    ///
    /// When an input has a value outside its documented set.
    pub fn read(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, InputError> {
        let env = Env(var);
        let mode = env
            .choice(
                "mode",
                &[
                    ("auto", Mode::Auto),
                    ("check", Mode::Check),
                    ("run", Mode::Run),
                    ("verify", Mode::Verify),
                ],
                "auto, check, run or verify",
            )?
            .unwrap_or(Mode::Auto);
        let confirm = env
            .choice(
                "confirm",
                &[
                    ("auto", Confirm::Auto),
                    ("true", Confirm::Yes),
                    ("false", Confirm::No),
                ],
                "auto, true or false",
            )?
            .unwrap_or(Confirm::Auto);
        let fail_on = env
            .choice(
                "fail-on",
                &[
                    ("error", FailOn::Error),
                    ("warning", FailOn::Warning),
                    ("never", FailOn::Never),
                ],
                "error, warning or never",
            )?
            .unwrap_or(FailOn::Error);
        let thin_manifest_dirs = env.lines("thin-manifest-dir");
        let manifest = env.get("manifest");
        if manifest.is_none() && thin_manifest_dirs.is_empty() {
            return Err(InputError {
                name: "manifest",
                message: "give `manifest` or `thin-manifest-dir` (or both)".into(),
            });
        }
        let pass_through = PASS_THROUGH
            .iter()
            .filter_map(|(name, target)| env.get(name).map(|value| (*name, *target, value)))
            .collect();
        let sign = env.boolean("sign")?;
        Ok(Inputs {
            mode,
            manifest,
            thin_manifest_dirs,
            confirm,
            base_ref: env.get("base-ref"),
            github_token: env.get("github-token"),
            comment: env.flag("comment", false)?,
            // `show-summary` always arrives (action.yml defaults it); the
            // deprecated `summary` is empty unless a workflow still sets it.
            summary: if env.get("summary").is_some() {
                env.flag("summary", true)?
            } else {
                env.flag("show-summary", true)?
            },
            check_run: env.flag("check-run", true)?,
            fail_on,
            report: env
                .get("report")
                .unwrap_or_else(|| DEFAULT_REPORT.to_string()),
            sign,
            fix: env.flag("fix", false)?,
            pass_through,
            extra_args: env.lines("args"),
        })
    }

    /// The pass-through inputs for `command`, then `args`.
    #[must_use]
    pub fn pass_through_for(&self, command: For) -> Vec<String> {
        let mut args: Vec<String> = self
            .pass_through
            .iter()
            .filter(|(_, target, _)| *target == For::Both || *target == command)
            .map(|(flag, _, value)| format!("--{flag}={value}"))
            .collect();
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The manifest arguments every command takes.
    #[must_use]
    pub fn manifest_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(m) = &self.manifest {
            args.push(format!("--manifest={m}"));
        }
        for dir in &self.thin_manifest_dirs {
            args.push(format!("--thin-manifest-dir={dir}"));
        }
        args
    }
}

/// The inputs as the runner passes them, read by name.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// An input's value, trimmed; `None` when absent or empty.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(&format!("INPUT_{}", name.to_ascii_uppercase()))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The choice an input names (in any case), or `None` when not given.
    fn choice<T: Copy>(
        &self,
        name: &'static str,
        choices: &[(&str, T)],
        expected: &str,
    ) -> Result<Option<T>, InputError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let lower = value.to_ascii_lowercase();
        choices
            .iter()
            .find(|(word, _)| *word == lower)
            .map(|(_, choice)| Some(*choice))
            .ok_or_else(|| bad(name, &lower, expected))
    }

    /// `true` or `false`, or `None` when not given.
    fn boolean(&self, name: &'static str) -> Result<Option<bool>, InputError> {
        self.choice(name, &[("true", true), ("false", false)], "true or false")
    }

    /// `true` or `false`, or `default` when not given.
    fn flag(&self, name: &'static str, default: bool) -> Result<bool, InputError> {
        Ok(self.boolean(name)?.unwrap_or(default))
    }

    /// The non-empty lines of an input, trimmed.
    fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn bad(name: &'static str, value: &str, expected: &str) -> InputError {
    InputError {
        name,
        message: format!("`{value}` is not one of {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Inputs, InputError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Inputs::read(&|name| env.get(name).cloned())
    }

    #[test]
    fn hyphens_are_kept_in_names_and_empty_means_unset() {
        let inputs = read(&[
            ("INPUT_THIN-MANIFEST-DIR", "a\n\n b \n"),
            ("INPUT_MODE", ""),
            ("INPUT_FAIL-ON", "Warning"),
            ("INPUT_MAX-RPS", "20"),
            ("INPUT_CERTIFICATE-IDENTITY", ""),
            ("INPUT_GITHUB-TOKEN", "ghs_secret"),
        ])
        .unwrap();
        assert_eq!(inputs.thin_manifest_dirs, ["a", "b"]);
        assert_eq!(inputs.mode, Mode::Auto);
        assert_eq!(inputs.fail_on, FailOn::Warning);
        assert_eq!(
            inputs.pass_through,
            [("max-rps", For::Run, "20".to_string())]
        );
        assert!(inputs.summary && inputs.check_run && !inputs.comment);
        assert_eq!(inputs.report, DEFAULT_REPORT);
        assert!(!format!("{inputs:?}").contains("ghs_secret"));
    }

    #[test]
    fn show_summary_and_its_deprecated_name() {
        let m = ("INPUT_MANIFEST", "m.yaml");
        let summary = |pairs: &[(&str, &str)]| {
            let mut all = vec![m];
            all.extend_from_slice(pairs);
            read(&all).unwrap().summary
        };
        assert!(summary(&[]));
        assert!(!summary(&[("INPUT_SHOW-SUMMARY", "false")]));
        // The old name, when a workflow sets it, wins over the new default.
        assert!(!summary(&[
            ("INPUT_SHOW-SUMMARY", "true"),
            ("INPUT_SUMMARY", "false")
        ]));
        assert!(!summary(&[
            ("INPUT_SHOW-SUMMARY", "false"),
            ("INPUT_SUMMARY", "")
        ]));
        let err = read(&[m, ("INPUT_SHOW-SUMMARY", "maybe")]).unwrap_err();
        assert_eq!(err.name, "show-summary");
    }

    #[test]
    fn bad_values_name_the_input() {
        let err = read(&[("INPUT_MANIFEST", "m.yaml"), ("INPUT_MODE", "deploy")]).unwrap_err();
        assert_eq!(err.name, "mode");
        let err = read(&[("INPUT_MANIFEST", "m.yaml"), ("INPUT_COMMENT", "yes")]).unwrap_err();
        assert_eq!(err.name, "comment");
        assert_eq!(read(&[]).unwrap_err().name, "manifest");
    }
}
