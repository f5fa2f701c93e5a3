//! `promoter check` as users run it: the real k8s.io corpus, and copies of
//! it edited the way pull requests edit it. Each test asserts the exit code
//! and the exact findings (code, file, line, column).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_promoter");

fn corpus(tree: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s-io")
        .join(tree)
}

fn promoter(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run promoter")
}

/// Runs `check --format json` and returns (exit code, findings).
fn check_json(args: &[&str], dir: &Path) -> (i32, Vec<Value>) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let out = promoter(&all, dir);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["schema_version"], 1, "{report}");
    let findings = report["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (out.status.code().expect("exit code"), findings)
}

/// (code, file relative to the tree, line, column).
type Finding = (String, String, u64, u64);

/// (code, file relative to `root`, line, column) of every error.
fn errors(findings: &[Value], root: &str) -> Vec<Finding> {
    findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            let file = f["file"].as_str().unwrap_or("");
            let file = file.split_once(root).map_or(file, |(_, rest)| rest);
            (
                f["code"].as_str().unwrap_or("").to_string(),
                file.trim_start_matches('/').to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn e(code: &str, file: &str, line: u64, column: u64) -> Finding {
    (code.to_string(), file.to_string(), line, column)
}

#[test]
fn registry_k8s_io_reports_exactly_its_real_problems() {
    let root = corpus("registry.k8s.io");
    let (code, findings) = check_json(&["--thin-manifest-dir", root.to_str().unwrap()], &root);
    assert_eq!(code, 1);
    assert_eq!(
        errors(&findings, "registry.k8s.io"),
        vec![
            e(
                "M201",
                "images/k8s-staging-ingress-nginx/images.yaml",
                152,
                5
            ),
            e("M104", "images/k8s-staging-sig-storage/images.yaml", 259, 3),
            e("M104", "images/k8s-staging-sig-storage/images.yaml", 261, 3),
        ]
    );
    let digest = findings.iter().find(|f| f["code"] == "M201").unwrap();
    assert!(
        digest["message"]
            .as_str()
            .unwrap()
            .contains("63 hex digits")
    );
    // The deprecated imagesPath key: warned in the four manifests that have it.
    let deprecated = findings.iter().filter(|f| f["code"] == "M108").count();
    assert_eq!(deprecated, 4);
    // CRLF is a warning, and the CRLF file parses (no syntax errors anywhere).
    assert!(findings.iter().any(|f| {
        f["code"] == "M504"
            && f["file"]
                .as_str()
                .unwrap()
                .ends_with("k8s-staging-npd/images.yaml")
    }));
}

#[test]
fn k8s_gcr_io_and_its_legacy_backfill_parse() {
    let root = corpus("k8s.gcr.io");
    let (code, findings) = check_json(&["--thin-manifest-dir", "."], &root);
    assert_eq!(code, 1);
    assert_eq!(
        errors(&findings, "./"),
        vec![e(
            "M201",
            "images/k8s-staging-ingress-nginx/images.yaml",
            203,
            5
        )]
    );
    // The nested archived tree is not part of this layout: warned, not read.
    let unexpected: Vec<&str> = findings
        .iter()
        .filter(|f| f["code"] == "M107")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(unexpected.len(), 2, "{unexpected:?}");
    assert!(unexpected.iter().all(|f| f.starts_with("archived/")));

    let (code, findings) = check_json(&["--thin-manifest-dir", "archived"], &root);
    assert_eq!(code, 0, "{findings:?}");
    assert!(errors(&findings, "").is_empty());
}

/// A scratch copy of registry.k8s.io as `head`, beside the pristine `base`.
struct Edit {
    dir: tempfile::TempDir,
}

impl Edit {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&corpus("registry.k8s.io"), &dir.path().join("head"));
        Edit { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join("head").join(relative)
    }

    fn edit(&self, relative: &str, change: impl FnOnce(String) -> String) {
        let path = self.path(relative);
        let text = std::fs::read_to_string(&path).unwrap();
        let changed = change(text.clone());
        assert_ne!(text, changed, "the edit changed nothing");
        std::fs::write(path, changed).unwrap();
    }

    /// Errors of `check` on head, compared with the corpus as base.
    fn check(&self, extra: &[&str]) -> (i32, Vec<Finding>, Vec<Value>) {
        let base = corpus("registry.k8s.io");
        let mut args = vec![
            "--thin-manifest-dir",
            "head",
            "--base-dir",
            base.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, findings) = check_json(&args, self.dir.path());
        // The corpus's own three errors are always there; drop them.
        let mine = errors(&findings, "head/")
            .into_iter()
            .filter(|(_, file, _, _)| {
                !file.contains("ingress-nginx") && !file.contains("sig-storage")
            })
            .collect();
        (code, mine, findings)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

const KUEUE: &str = "images/k8s-staging-kueue/images.yaml";
const NEW_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn new_digest_claiming_an_existing_tag_is_a_conflict() {
    let edit = Edit::new();
    // A PR appends a new digest that reuses v0.6.3 (line 4) at line 22.
    edit.edit(KUEUE, |t| {
        format!("{t}    \"{NEW_DIGEST}\": [\"v0.6.3\"]\n")
    });
    let (code, errors, findings) = edit.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(errors, vec![e("M301", KUEUE, 22, 81)]);
    let conflict = findings.iter().find(|f| f["code"] == "M301").unwrap();
    assert_eq!(conflict["related"][0]["line"], 4);
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .contains("in 22 destinations")
    );
}

#[test]
fn moved_tag_is_reported_against_the_base() {
    let edit = Edit::new();
    // v0.6.2 moves from line 5's digest to line 4's.
    edit.edit(KUEUE, |t| {
        t.replacen("[\"v0.6.3\"]", "[\"v0.6.3\", \"v0.6.2\"]", 1)
            .replacen("[\"v0.6.2\"]\n", "[]\n", 1)
    });
    let (code, errors, _) = edit.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(errors, vec![e("M402", KUEUE, 4, 91)]);
}

#[test]
fn removed_digest_is_an_error_unless_allowed() {
    let edit = Edit::new();
    edit.edit(KUEUE, |t| {
        t.lines()
            .filter(|l| !l.contains("v0.6.1"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let (code, errors, findings) = edit.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(errors, vec![e("M401", KUEUE, 2, 3)]);
    let removal = findings.iter().find(|f| f["code"] == "M401").unwrap();
    assert!(
        removal["message"]
            .as_str()
            .unwrap()
            .contains("sha256:7295319e")
    );
    assert!(
        removal["related"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with(KUEUE)
    );
    assert_eq!(removal["related"][0]["line"], 6);

    let (_, errors, _) = edit.check(&["--allow-removal"]);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn broken_indentation_is_a_syntax_error_at_its_line() {
    let edit = Edit::new();
    edit.edit(KUEUE, |t| {
        t.replacen("\n    \"sha256:6529", "\n  \"sha256:6529", 1)
    });
    let (code, errors, findings) = edit.check(&[]);
    assert_eq!(code, 1);
    // Line 4 is still valid YAML (a key of the image entry); line 5, indented
    // deeper after it, is where the structure breaks.
    assert_eq!(errors, vec![e("M002", KUEUE, 5, 5)], "{findings:?}");
    // The unreadable file is not compared with the base (no false removals).
    assert!(findings.iter().any(|f| f["code"] == "M403"));
}

#[test]
fn misspelled_key_points_at_the_key() {
    let edit = Edit::new();
    edit.edit(KUEUE, |t| t.replacen("  dmap:", "  dmpa:", 1));
    let (code, errors, findings) = edit.check(&["--allow-removal"]);
    assert_eq!(code, 1);
    // The key is unknown, so the image has no dmap either.
    assert_eq!(errors, vec![e("M104", KUEUE, 1, 3), e("M003", KUEUE, 2, 3)]);
    let _ = &findings;
    let unknown = findings.iter().find(|f| f["code"] == "M003").unwrap();
    assert_eq!(unknown["help"], "did you mean `dmap`?");
}

#[test]
fn missing_images_file_and_orphan_images_are_reported() {
    let edit = Edit::new();
    std::fs::remove_file(edit.path(KUEUE)).unwrap();
    std::fs::create_dir_all(edit.path("images/k8s-staging-typo")).unwrap();
    std::fs::write(
        edit.path("images/k8s-staging-typo/images.yaml"),
        "- name: a\n  dmap: {}\n",
    )
    .unwrap();
    let (code, findings) = check_json(&["--thin-manifest-dir", "head"], edit.dir.path());
    assert_eq!(code, 1);
    let errors = errors(&findings, "head/");
    assert!(
        errors.contains(&e(
            "M105",
            "manifests/k8s-staging-kueue/promoter-manifest.yaml",
            0,
            0
        )),
        "{errors:?}"
    );
    assert!(
        errors.contains(&e("M106", "images/k8s-staging-typo/images.yaml", 0, 0)),
        "{errors:?}"
    );
}

#[test]
fn base_ref_reads_the_base_from_git() {
    let edit = Edit::new();
    let dir = edit.dir.path();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "head"]);
    git(&["commit", "-qm", "base"]);
    edit.edit(KUEUE, |t| t.replacen("[\"v0.6.2\"]", "[\"v0.6.3\"]", 1));
    let (code, findings) = check_json(&["--thin-manifest-dir", "head", "--base-ref", "HEAD"], dir);
    assert_eq!(code, 1);
    let errors = errors(&findings, "head/");
    // v0.6.3 claimed twice (conflict), v0.6.2 removed from its digest.
    assert!(errors.contains(&e("M301", KUEUE, 5, 81)), "{errors:?}");
    let removal = findings
        .iter()
        .find(|f| f["code"] == "M401")
        .expect("a removal");
    assert!(
        removal["related"][0]["file"]
            .as_str()
            .unwrap()
            .starts_with("HEAD:head/")
    );

    let out = promoter(
        &[
            "check",
            "--thin-manifest-dir",
            "head",
            "--base-ref",
            "no-such-ref",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("revision `no-such-ref` not found; fetch it first"),
        "{stderr}"
    );
}

#[test]
fn plain_manifest_github_annotations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("promoter.yaml"),
        "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"sha256:abc\": [\"v1,2\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--manifest", "promoter.yaml"])
        .current_dir(dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("::error file=promoter.yaml,line=8,endLine=8,col=5,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("::error file=promoter.yaml,line=8,endLine=8,col=20,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("`v1%2C2`") || lines[1].contains("`v1,2`"),
        "{}",
        lines[1]
    );
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(summary.contains("M201"), "{summary}");
}

#[test]
fn human_output_shows_the_line_and_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"sha256:abc\": []\n",
    )
    .unwrap();
    let out = promoter(
        &["check", "--manifest", "m.yaml", "--color", "never"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("error[M201]"), "{stdout}");
    assert!(stdout.contains("--> m.yaml:8:5"), "{stdout}");
    assert!(stdout.contains("    \"sha256:abc\": []"), "{stdout}");
    assert!(stdout.contains("^^^^^^^^^^^^"), "{stdout}");
}

#[test]
fn usage_and_io_errors_exit_2_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["check", "--thin-manifest-dir", "does-not-exist"][..],
        &["check"][..],
        &["check", "--manifest", "a.yaml", "--ignore", "M999"][..],
        &["check", "--thin-manifest-dir", "."][..],
    ] {
        let out = promoter(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.is_empty());
    }
}
