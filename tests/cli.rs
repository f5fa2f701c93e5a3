//! The command line as users meet it: completions and the man page, `rules`
//! and `explain`, exit codes for I/O errors, colour by the conventions
//! (NO_COLOR, CLICOLOR_FORCE, TERM=dumb, `--color`), and logs (`-v`/`-q`,
//! RUST_LOG, `--log-format json`, GitHub groups and `::debug::` lines).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_promoter");

/// A manifest with one error (an invalid digest) at m.yaml:8:5.
const BAD: &str = "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"sha256:abc\": [\"v1\"]\n";

/// Runs the binary in `dir` with a clean colour and CI environment, plus `env`.
fn promoter(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir);
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "RUNNER_DEBUG",
        "RUST_LOG",
        "NO_COLOR",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "TERM",
        "CI",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("run promoter")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bad_manifest() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.yaml"), BAD).unwrap();
    dir
}

const SUBCOMMANDS: &[&str] = &[
    "check",
    "run",
    "cip",
    "rules",
    "explain",
    "completions",
    "man",
    "verify",
    "report",
];

#[test]
fn completions_for_every_shell_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = promoter(&["completions", shell], dir.path(), &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks `{sub}`");
        }
        assert!(script.contains("thin-manifest-dir"), "{shell}");
        assert!(script.contains("log-format"), "{shell}");
        let path = dir.path().join(format!("promoter.{shell}"));
        std::fs::write(&path, &script).unwrap();
        // The shells installed here parse what we wrote.
        let check: Option<(&str, Vec<&str>)> = match shell {
            "bash" => Some(("bash", vec!["-n"])),
            "zsh" => Some(("zsh", vec!["-n"])),
            "fish" => Some(("fish", vec!["--no-execute"])),
            _ => None,
        };
        if let Some((program, args)) = check
            && let Ok(status) = Command::new(program).args(&args).arg(&path).status()
        {
            assert!(status.success(), "{program} rejects the {shell} completion");
        }
    }
    // bash is always there: the bash script defines its completion function.
    let bash = std::fs::read_to_string(dir.path().join("promoter.bash")).unwrap();
    assert!(bash.contains("complete -F _promoter"), "{bash}");
    let out = promoter(&["completions", "tcsh"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_for_promoter_and_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = promoter(&["man"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH promoter 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("promoter\\-{sub}(1)")),
            "no `{sub}` in {page}"
        );
    }
    let out = promoter(&["man", "check"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH promoter-check 1"), "{page}");
    assert!(page.contains(env!("CARGO_PKG_VERSION")), "{page}");
    assert!(page.contains("thin\\-manifest\\-dir"), "{page}");
    if let Ok(rendered) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(
            std::fs::File::open({
                let path = dir.path().join("promoter-check.1");
                std::fs::write(&path, &page).unwrap();
                path
            })
            .unwrap(),
        )
        .output()
    {
        assert!(rendered.status.success());
        assert_eq!(text(&rendered.stderr), "", "groff warns about the page");
    }
    let out = promoter(&["man", "nope"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no command `nope`"));
}

#[test]
fn rules_json_and_explain_for_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let table = promoter(&["rules"], dir.path(), &[]);
    let lines = text(&table.stdout).lines().count();
    let out = promoter(&["rules", "--format", "json"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let rules: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rules["schema_version"], 1);
    let rules = rules["rules"].as_array().unwrap();
    assert_eq!(rules.len(), lines);
    assert!(
        rules
            .iter()
            .any(|r| r["code"] == "M109" && r["severity"] == "error")
    );
    for rule in rules {
        let (code, name) = (
            rule["code"].as_str().unwrap(),
            rule["name"].as_str().unwrap(),
        );
        let out = promoter(&["explain", code], dir.path(), &[]);
        assert_eq!(out.status.code(), Some(0), "{code}");
        let page = text(&out.stdout);
        assert!(page.starts_with(&format!("{code} {name} (")), "{page}");
        assert!(
            page.contains("\nBad:\n") && page.contains("\nGood:\n"),
            "{page}"
        );
        assert!(!page.contains('\x1b'), "colour in a pipe: {page}");
        let by_name = promoter(&["explain", name, "--format", "json"], dir.path(), &[]);
        let json: Value = serde_json::from_slice(&by_name.stdout).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["code"], code);
        for field in ["summary", "description", "bad", "good"] {
            assert!(
                json[field].as_str().is_some_and(|s| !s.is_empty()),
                "{code} {field}"
            );
        }
    }
    let out = promoter(&["explain", "M999"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown rule `M999`"));
}

#[test]
fn a_missing_or_unreadable_manifest_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["check", "--manifest", "missing.yaml", "--format", "json"][..],
        &["check", "--manifest", ".", "--format", "json"][..],
        &["run", "--manifest", "missing.yaml", "--format", "json"][..],
    ] {
        let out = promoter(args, dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stdout), "", "no report for {args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: cannot read "), "{stderr}");
    }
    let out = promoter(&["check", "--manifest", "."], dir.path(), &[]);
    assert!(text(&out.stderr).contains("use --thin-manifest-dir"));
}

#[test]
fn a_manifest_nested_below_a_project_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let manifest =
        "registries:\n- name: gcr.io/k8s-staging-foo\n  src: true\n- name: us.gcr.io/prod/foo\n";
    let images = "- name: app\n  dmap:\n    \"sha256:1111111111111111111111111111111111111111111111111111111111111111\": [\"v1\"]\n";
    for project in ["foo", "foo/bar"] {
        std::fs::create_dir_all(root.join("manifests").join(project)).unwrap();
        std::fs::create_dir_all(root.join("images").join(project)).unwrap();
        std::fs::write(
            root.join("manifests")
                .join(project)
                .join("promoter-manifest.yaml"),
            manifest,
        )
        .unwrap();
        std::fs::write(
            root.join("images").join(project).join("images.yaml"),
            images,
        )
        .unwrap();
    }
    let out = promoter(
        &["check", "--thin-manifest-dir", ".", "--format", "json"],
        root,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&Value> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["code"], "M109");
    let file = errors[0]["file"].as_str().unwrap();
    assert!(
        file.ends_with("manifests/foo/bar/promoter-manifest.yaml"),
        "{file}"
    );
    assert!(
        errors[0]["help"]
            .as_str()
            .unwrap()
            .contains("manifests/foo-bar/")
    );
}

/// `check` of the bad manifest with this environment and these flags:
/// whether the report on stdout carries ANSI colour.
fn coloured(env: &[(&str, &str)], flags: &[&str]) -> bool {
    let dir = bad_manifest();
    let mut args = vec!["check", "--manifest", "m.yaml"];
    args.extend_from_slice(flags);
    let out = promoter(&args, dir.path(), env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("error[M201]") || stdout.contains("M201"),
        "{stdout}"
    );
    stdout.contains('\x1b')
}

#[test]
fn colour_follows_no_color_clicolor_force_and_the_flag() {
    // A pipe: no colour unless forced.
    assert!(!coloured(&[], &[]));
    assert!(coloured(&[("CLICOLOR_FORCE", "1")], &[]));
    // NO_COLOR wins over CLICOLOR_FORCE, but only when not empty.
    assert!(!coloured(
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
        &[]
    ));
    assert!(coloured(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")], &[]));
    // The flag, before or after the command, wins over the environment.
    assert!(coloured(&[("NO_COLOR", "1")], &["--color", "always"]));
    assert!(!coloured(&[("CLICOLOR_FORCE", "1")], &["--color=never"]));
    let dir = bad_manifest();
    let out = promoter(
        &["--color=always", "check", "--manifest", "m.yaml"],
        dir.path(),
        &[],
    );
    assert!(text(&out.stdout).contains('\x1b'));
    // `run`'s human report follows the same flag (its manifests' errors
    // here); never in a pipe by default.
    let run = ["run", "--manifest", "m.yaml", "--format", "human"];
    let out = promoter(&[&["--color=always"][..], &run].concat(), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\x1b[1;31merror[M201]"), "{}", text(&out.stdout));
    let out = promoter(&run, dir.path(), &[]);
    assert!(!text(&out.stdout).contains('\x1b'), "{}", text(&out.stdout));
}

/// Runs `check` of the bad manifest on a pseudo-terminal (util-linux
/// `script`) with TERM set to `term`; the terminal's output. `CI` is set, as
/// on GitHub's runners: anstream alone would let it override `TERM=dumb`.
fn on_a_terminal(term: &str) -> Option<String> {
    let dir = bad_manifest();
    let command = format!("{BIN} check --manifest m.yaml");
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("GITHUB_ACTIONS")
        .env("CI", "true")
        .env("TERM", term)
        .output()
        .ok()?;
    Some(text(&out.stdout))
}

#[test]
fn a_terminal_gets_colour_unless_term_is_dumb() {
    let Some(xterm) = on_a_terminal("xterm-256color") else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert!(xterm.contains("M201"), "{xterm}");
    assert!(xterm.contains('\x1b'), "no colour on a terminal: {xterm:?}");
    let dumb = on_a_terminal("dumb").unwrap();
    assert!(dumb.contains("M201"), "{dumb}");
    assert!(!dumb.contains('\x1b'), "colour with TERM=dumb: {dumb:?}");
}

#[test]
fn logs_follow_rust_log_and_the_verbosity_flags() {
    let dir = bad_manifest();
    let check = ["check", "--manifest", "m.yaml", "--format", "json"];
    let stderr = |args: &[&str], env: &[(&str, &str)]| {
        let out = promoter(args, dir.path(), env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).expect("stdout stays JSON");
        assert_eq!(report["schema_version"], 1);
        text(&out.stderr)
    };
    assert_eq!(stderr(&check, &[]), "", "nothing logged by default");
    let debug = stderr(&check, &[("RUST_LOG", "debug")]);
    assert!(debug.contains("manifests checked"), "{debug}");
    assert!(debug.contains("DEBUG"), "{debug}");
    let vv: Vec<&str> = ["-vv"].into_iter().chain(check).collect();
    assert!(stderr(&vv, &[]).contains("manifests checked"));
    let v: Vec<&str> = check.into_iter().chain(["-v"]).collect();
    assert_eq!(stderr(&v, &[]), "", "-v is info; the event is debug");
    let json: Vec<&str> = check
        .into_iter()
        .chain(["-vv", "--log-format", "json"])
        .collect();
    let lines = stderr(&json, &[]);
    let event: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(event["level"], "DEBUG");
    assert_eq!(event["fields"]["message"], "manifests checked");
    assert_eq!(event["span"]["phase"], "check");
    assert_eq!(event["span"]["name"], "phase");
    let out = promoter(&["-v", "-q", "rules"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "-v and -q conflict");
    let out = promoter(&check, dir.path(), &[("RUST_LOG", "promoter=loud")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("RUST_LOG"));
}

#[test]
fn github_actions_get_a_group_per_phase_and_debug_lines() {
    let dir = bad_manifest();
    let check = ["check", "--manifest", "m.yaml", "--format", "json"];
    let actions = [("GITHUB_ACTIONS", "true")];
    let out = promoter(&check, dir.path(), &actions);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "::group::check\n::endgroup::\n");
    let out = promoter(&check, dir.path(), &[actions[0], ("RUNNER_DEBUG", "1")]);
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert_eq!(lines[0], "::group::check");
    assert!(
        lines[1].starts_with("::debug::promoter::check: manifests checked manifests=1 findings="),
        "{stderr}"
    );
    assert_eq!(lines[2], "::endgroup::");
    // `-q` silences the logs, not the folding.
    let quiet: Vec<&str> = check.into_iter().chain(["-qq"]).collect();
    let out = promoter(&quiet, dir.path(), &actions);
    assert_eq!(text(&out.stderr), "::group::check\n::endgroup::\n");
}

#[test]
fn cip_says_what_its_signing_flags_do() {
    let dir = bad_manifest();
    let out = promoter(
        &[
            "cip",
            "--manifest",
            "m.yaml",
            "--parse-only",
            "--sign",
            "--signer-account=signer@example.iam.gserviceaccount.com",
            "--certificate-identity=https://github.com/o/r/.github/workflows/w.yml@refs/heads/main",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("not implemented"), "{stderr}");
    assert!(stderr.contains("--signer-account: not used"), "{stderr}");
    assert!(stderr.contains("--identity-token-file"), "{stderr}");
    assert!(
        stderr.contains("--certificate-*: staging signatures"),
        "{stderr}"
    );
}
