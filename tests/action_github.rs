//! `promoter action` in the environment a container action gets: the
//! `GITHUB_*` variables, an event payload from `tests/fixtures/events`,
//! files for `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`, the inputs as
//! `INPUT_<NAME>` (hyphens kept), and `GITHUB_API_URL` pointing at a local
//! stand-in for the GitHub API that records every request. Registries are
//! OCI image layouts (`oci:<dir>`) holding the quickstart's images.
//!
//! `PROMOTER_BIN=<path>` runs another build of the binary (CI runs these
//! tests against the static musl binary the image ships).

#[path = "support/github_api.rs"]
mod github_api;

use std::path::{Path, PathBuf};
use std::process::Command;

use github_api::GitHubApi;
use serde_json::Value;

const HELLO: &str = "sha256:4c45b54cf45ebff97cf094b5925752310e38591a6ee7ed6a303f6a835cd6ce46";
const ECHO: &str = "sha256:f7ab5d1063072c39fd4877ea3ec281d04307f4f4cadd670c3694b29da4c8085b";
const TOKEN: &str = "ghs_test_token_never_logged";

/// A git repository holding a manifest at two commits, next to the
/// registries it names.
struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    base: String,
    head: String,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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

/// A manifest promoting `images` (name, digest, tags) from the staging
/// layout to the prod layout under `root`. `extra` is appended verbatim.
fn manifest(root: &Path, images: &[(&str, &str, &[&str])], extra: &str) -> String {
    let mut text = format!(
        "registries:\n- name: oci:{0}/staging\n  src: true\n- name: oci:{0}/prod\nimages:\n",
        root.display()
    );
    for (name, digest, tags) in images {
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        text.push_str(&format!(
            "- name: {name}\n  dmap:\n    \"{digest}\": [{}]\n",
            tags.join(", ")
        ));
    }
    text + extra
}

impl Repo {
    /// Commits `base`, then `head`, as `promoter.yaml`. Each is a function
    /// of the directory that holds the registries.
    fn new(base: impl Fn(&Path) -> String, head: impl Fn(&Path) -> String) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/staging"),
            &root.join("staging"),
        );
        let work = root.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["config", "user.email", "t@example.com"]);
        git(&work, &["config", "user.name", "t"]);
        std::fs::write(work.join("promoter.yaml"), base(&root)).unwrap();
        git(&work, &["add", "promoter.yaml"]);
        git(&work, &["commit", "-q", "-m", "base"]);
        let base_sha = git(&work, &["rev-parse", "HEAD"]);
        std::fs::write(work.join("promoter.yaml"), head(&root)).unwrap();
        git(&work, &["commit", "-q", "--allow-empty", "-am", "head"]);
        let head_sha = git(&work, &["rev-parse", "HEAD"]);
        Repo {
            _tmp: tmp,
            root,
            work,
            base: base_sha,
            head: head_sha,
        }
    }
}

/// What one run of the action left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    outputs: String,
    summary: String,
}

impl Run {
    fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
    }

    fn annotations(&self, level: &str) -> usize {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("::{level} file=")))
            .count()
    }
}

/// Runs `promoter action` for `event` (a fixture name) with `inputs`.
fn action(
    repo: &Repo,
    event: &str,
    fixture: &str,
    api: &GitHubApi,
    inputs: &[(&str, &str)],
) -> Run {
    let payload = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/events/{fixture}.json")),
    )
    .unwrap()
    .replace("BASE_SHA", &repo.base)
    .replace("HEAD_SHA", &repo.head);
    let files = tempfile::tempdir().unwrap();
    let event_path = files.path().join("event.json");
    let output_path = files.path().join("output");
    let summary_path = files.path().join("summary");
    std::fs::write(&event_path, payload).unwrap();
    std::fs::write(&output_path, "").unwrap();
    std::fs::write(&summary_path, "").unwrap();
    // PROMOTER_BIN: run another build, e.g. the static musl binary in CI.
    let binary = std::env::var_os("PROMOTER_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_promoter")),
        PathBuf::from,
    );
    let mut command = Command::new(binary);
    command
        .arg("action")
        .current_dir(&repo.work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", files.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", &event_path)
        .env("GITHUB_REPOSITORY", "octo-org/images")
        .env("GITHUB_SHA", &repo.head)
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_WORKSPACE", &repo.work)
        .env("GITHUB_API_URL", &api.url)
        .env("GITHUB_OUTPUT", &output_path)
        .env("GITHUB_STEP_SUMMARY", &summary_path)
        // action.yml's defaults, as the runner passes them.
        .env("INPUT_MODE", "auto")
        .env("INPUT_MANIFEST", "promoter.yaml")
        .env("INPUT_THIN-MANIFEST-DIR", "")
        .env("INPUT_CONFIRM", "auto")
        .env("INPUT_GITHUB-TOKEN", TOKEN)
        .env("INPUT_MAX-RPS", "")
        .env("INPUT_COMMENT", "false")
        .env("INPUT_SUMMARY", "true")
        .env("INPUT_FAIL-ON", "error");
    for (name, value) in inputs {
        command.env(format!("INPUT_{}", name.to_ascii_uppercase()), value);
    }
    let out = command.output().expect("promoter runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: std::fs::read_to_string(&output_path).unwrap(),
        summary: std::fs::read_to_string(&summary_path).unwrap(),
    };
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "the token was printed"
    );
    run
}

fn describe(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}\n--- outputs\n{}",
        run.code, run.stdout, run.stderr, run.outputs
    )
}

fn hello_only(root: &Path) -> String {
    manifest(root, &[("hello", HELLO, &["v1.0.0"])], "")
}

fn hello_and_echo(root: &Path) -> String {
    manifest(
        root,
        &[
            ("hello", HELLO, &["v1.0.0"]),
            ("tools/echo", ECHO, &["v0.3.1"]),
        ],
        "",
    )
}

#[test]
fn pull_request_checks_plans_without_writing_and_keeps_one_comment() {
    let repo = Repo::new(hello_only, hello_and_echo);
    let api = GitHubApi::start();
    let run = action(
        &repo,
        "pull_request",
        "pull_request",
        &api,
        &[("comment", "true")],
    );
    assert_eq!(run.code, 0, "{}", describe(&run));
    assert!(
        run.stderr.contains(&format!("check against {}", repo.base)),
        "{}",
        describe(&run)
    );
    assert!(run.stdout.contains("2 to copy"), "{}", describe(&run));
    // A dry run writes nothing.
    assert!(!repo.root.join("prod").exists());
    assert_eq!(run.output("promoted"), Some("0"));
    assert_eq!(run.output("skipped"), Some("0"));
    assert_eq!(run.output("errors"), Some("0"));
    assert_eq!(run.output("conclusion"), Some("success"));
    assert_eq!(run.output("report-path"), Some("promoter-report.json"));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.work.join("promoter-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["confirm"], false);
    assert!(run.summary.contains("## promoter check"), "{}", run.summary);
    assert!(
        run.summary.contains("## promoter: dry-run plan"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains("| run: inventory |"),
        "{}",
        run.summary
    );
    assert!(run.summary.contains("**Dry run:**"), "{}", run.summary);
    assert!(run.summary.contains("| to copy | 2 |"), "{}", run.summary);
    assert!(run.summary.contains("prod:tools/echo"), "{}", run.summary);
    assert!(run.summary.contains("| Phase | Time |"), "{}", run.summary);

    // The Check Run: created once, on the pull request's head, completed.
    let checks = api.requests_to("/check-runs");
    assert_eq!(checks.len(), 1);
    let create = &checks[0];
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/repos/octo-org/images/check-runs")
    );
    assert_eq!(create.body["head_sha"], repo.head.as_str());
    assert_eq!(create.body["conclusion"], "success");
    assert_eq!(create.body["status"], "completed");
    assert!(
        create.body["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("tools/echo")
    );
    assert_eq!(
        create.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(create.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(create.header("x-github-api-version"), Some("2022-11-28"));

    // The comment: created, then updated in place by the next run.
    let comments = api.comments();
    assert_eq!(comments.len(), 1);
    let (id, body) = &comments[0];
    assert!(body.starts_with("<!-- promoter-action: plan -->"), "{body}");
    assert!(body.contains("| to copy | 2 |"), "{body}");
    let again = action(
        &repo,
        "pull_request",
        "pull_request",
        &api,
        &[("comment", "true")],
    );
    assert_eq!(again.code, 0, "{}", describe(&again));
    let comments = api.comments();
    assert_eq!(comments.len(), 1, "a second comment was added");
    assert_eq!(comments[0].0, *id);
    let writes: Vec<(String, String)> = api
        .requests_to("/comments")
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        writes,
        [
            (
                "POST".to_string(),
                "/repos/octo-org/images/issues/42/comments".to_string()
            ),
            (
                "PATCH".to_string(),
                format!("/repos/octo-org/images/issues/comments/{id}")
            ),
        ]
    );
}

#[test]
fn many_findings_go_to_the_check_run_in_batches_of_50() {
    // 60 invalid digests: 60 errors, of which workflow commands show 10.
    let broken = |root: &Path| {
        let mut extra = String::from("- name: zz-broken\n  dmap:\n");
        for i in 0..60 {
            extra.push_str(&format!("    \"sha256:{i:03}\": [\"t{i:03}\"]\n"));
        }
        manifest(root, &[("hello", HELLO, &["v1.0.0"])], &extra)
    };
    let repo = Repo::new(hello_only, broken);
    let api = GitHubApi::start();
    let run = action(&repo, "pull_request", "pull_request", &api, &[]);
    assert_eq!(run.code, 1, "{}", describe(&run));
    assert_eq!(run.annotations("error"), 10, "{}", describe(&run));
    assert!(run.stdout.contains("50 more errors"), "{}", describe(&run));
    assert_eq!(run.output("errors"), Some("60"));
    assert_eq!(run.output("conclusion"), Some("failure"));
    assert!(run.summary.contains("No plan was made"), "{}", run.summary);
    assert!(!run.outputs.contains("report-path"));

    let checks = api.requests_to("/check-runs");
    let shape: Vec<(&str, usize)> = checks
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.body["output"]["annotations"]
                    .as_array()
                    .map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(shape, [("POST", 50), ("PATCH", 10)]);
    assert_eq!(checks[0].body["conclusion"], "failure");
    assert_eq!(checks[1].path, "/repos/octo-org/images/check-runs/1001");
    let first = &checks[0].body["output"]["annotations"][0];
    assert_eq!(first["path"], "promoter.yaml");
    assert_eq!(first["annotation_level"], "failure");
    assert!(first["start_line"].as_u64().unwrap() > 5);
    // Every annotation is sent once.
    let mut messages: Vec<&str> = checks
        .iter()
        .flat_map(|r| r.body["output"]["annotations"].as_array().unwrap())
        .map(|a| a["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(messages.len(), 60);
}

#[test]
fn fork_pull_request_without_checks_permission_passes_with_annotations() {
    // Unsorted images: a warning, not an error.
    let unsorted = |root: &Path| {
        manifest(
            root,
            &[
                ("tools/echo", ECHO, &["v0.3.1"]),
                ("hello", HELLO, &["v1.0.0"]),
            ],
            "",
        )
    };
    let repo = Repo::new(hello_only, unsorted);
    let api = GitHubApi::start();
    api.forbid_checks();
    api.forbid_comments();
    let run = action(
        &repo,
        "pull_request",
        "pull_request_fork",
        &api,
        &[("comment", "true")],
    );
    assert_eq!(run.code, 0, "{}", describe(&run));
    assert_eq!(run.annotations("warning"), 1, "{}", describe(&run));
    assert!(run.stderr.contains("no Check Run"), "{}", describe(&run));
    assert!(run.stderr.contains("no comment"), "{}", describe(&run));
    // Not reported as a failure of the action itself.
    assert!(
        !run.stdout.contains("title=promoter action"),
        "{}",
        describe(&run)
    );
    assert_eq!(run.output("warnings"), Some("1"));
    assert_eq!(run.output("conclusion"), Some("success"));
    let checks = api.requests_to("/check-runs");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].method, "POST");
    assert!(api.comments().is_empty());
}

#[test]
fn fail_on_warning_fails_the_step() {
    let unsorted = |root: &Path| {
        manifest(
            root,
            &[
                ("tools/echo", ECHO, &["v0.3.1"]),
                ("hello", HELLO, &["v1.0.0"]),
            ],
            "",
        )
    };
    let repo = Repo::new(hello_only, unsorted);
    let api = GitHubApi::start();
    let run = action(
        &repo,
        "pull_request",
        "pull_request",
        &api,
        &[("fail-on", "warning")],
    );
    assert_eq!(run.code, 1, "{}", describe(&run));
    assert_eq!(run.output("conclusion"), Some("failure"));
    assert_eq!(
        api.requests_to("/check-runs")[0].body["conclusion"],
        "failure"
    );
}

#[test]
fn push_to_the_default_branch_promotes_then_finds_nothing_to_do() {
    let repo = Repo::new(hello_only, hello_and_echo);
    let api = GitHubApi::start();
    let run = action(&repo, "push", "push", &api, &[]);
    assert_eq!(run.code, 0, "{}", describe(&run));
    assert!(
        run.stderr.contains("promote (run --confirm)"),
        "{}",
        describe(&run)
    );
    assert_eq!(run.output("promoted"), Some("2"), "{}", describe(&run));
    assert_eq!(run.output("failed"), Some("0"));
    assert!(repo.root.join("prod/hello/index.json").exists());
    assert!(repo.root.join("prod/tools/echo/index.json").exists());
    assert!(
        run.summary.contains("**Promotion:** 2 image(s)"),
        "{}",
        run.summary
    );
    let checks = api.requests_to("/check-runs");
    assert_eq!(checks[0].body["head_sha"], repo.head.as_str());
    assert!(
        checks[0].body["output"]["title"]
            .as_str()
            .unwrap()
            .contains("2 promoted"),
        "{:?}",
        checks[0].body
    );

    let again = action(&repo, "push", "push", &api, &[]);
    assert_eq!(again.code, 0, "{}", describe(&again));
    assert_eq!(again.output("promoted"), Some("0"));
    assert_eq!(again.output("skipped"), Some("2"), "{}", describe(&again));
}

#[test]
fn verify_mode_runs_verify_with_its_inputs() {
    let repo = Repo::new(hello_only, hello_only);
    let api = GitHubApi::start();
    let run = action(&repo, "push", "push", &api, &[("sign", "false")]);
    assert_eq!(run.output("promoted"), Some("1"), "{}", describe(&run));
    let run = action(
        &repo,
        "workflow_dispatch",
        "workflow_dispatch",
        &api,
        &[
            ("mode", "verify"),
            (
                "certificate-identity",
                "https://github.com/octo-org/images/.github/workflows/promote.yml@refs/heads/main",
            ),
            (
                "certificate-oidc-issuer",
                "https://token.actions.githubusercontent.com",
            ),
            ("max-rps", "5"),
        ],
    );
    // Promoted unsigned: verify finds the signature missing.
    assert_eq!(run.code, 1, "{}", describe(&run));
    assert!(
        run.stderr.contains(
            "promoter verify --manifest=promoter.yaml --certificate-identity=https://github.com/"
        ),
        "{}",
        describe(&run)
    );
    // max-rps is a flag of run only.
    assert!(!run.stderr.contains("--max-rps"), "{}", describe(&run));
    assert!(
        run.summary.contains("lack a valid signature"),
        "{}",
        run.summary
    );
    assert_eq!(run.output("conclusion"), Some("failure"));
    let checks = api.requests_to("/check-runs");
    assert_eq!(checks.last().unwrap().body["conclusion"], "failure");
}

#[test]
fn merge_group_compares_with_its_base_commit() {
    // The head moves tag v1.0.0 of hello to another digest.
    let moved = |root: &Path| manifest(root, &[("hello", ECHO, &["v1.0.0"])], "");
    let repo = Repo::new(hello_only, moved);
    let api = GitHubApi::start();
    let run = action(&repo, "merge_group", "merge_group", &api, &[]);
    assert_eq!(run.code, 1, "{}", describe(&run));
    assert!(run.stderr.contains(&format!("check against {}", repo.base)));
    assert!(run.annotations("error") >= 1, "{}", describe(&run));
    assert!(!repo.root.join("prod").exists());
    assert_eq!(
        api.requests_to("/check-runs")[0].body["head_sha"],
        repo.head.as_str()
    );
}

#[test]
fn schedule_runs_what_the_inputs_say() {
    let repo = Repo::new(hello_only, hello_and_echo);
    let api = GitHubApi::start();
    let run = action(&repo, "schedule", "schedule", &api, &[("mode", "run")]);
    assert_eq!(run.code, 0, "{}", describe(&run));
    assert!(
        run.stderr.contains("schedule: check, then dry-run plan"),
        "{}",
        describe(&run)
    );
    assert!(!repo.root.join("prod").exists());
    // Pass-through inputs become flags of the command.
    let run = action(
        &repo,
        "schedule",
        "schedule",
        &api,
        &[("mode", "run"), ("confirm", "true"), ("concurrency", "4")],
    );
    assert_eq!(run.code, 0, "{}", describe(&run));
    assert!(
        run.stderr.contains(" --confirm --concurrency=4"),
        "{}",
        describe(&run)
    );
    assert_eq!(run.output("promoted"), Some("2"), "{}", describe(&run));
}

#[test]
fn bad_inputs_and_writes_before_merge_are_refused() {
    let repo = Repo::new(hello_only, hello_only);
    let api = GitHubApi::start();
    let run = action(
        &repo,
        "workflow_dispatch",
        "workflow_dispatch",
        &api,
        &[("mode", "deploy")],
    );
    assert_eq!(run.code, 2, "{}", describe(&run));
    assert!(run.stderr.contains("input `mode`"), "{}", describe(&run));
    let run = action(
        &repo,
        "pull_request",
        "pull_request",
        &api,
        &[("confirm", "true")],
    );
    assert_eq!(run.code, 2, "{}", describe(&run));
    assert!(
        run.stderr.contains("never writes to registries"),
        "{}",
        describe(&run)
    );
    assert!(api.requests().is_empty());
}

#[test]
fn a_missing_base_commit_says_to_fetch_history() {
    let api = GitHubApi::start();
    let mut shallow = Repo::new(hello_only, hello_only);
    shallow.base = "0123456789abcdef0123456789abcdef01234567".into();
    let run = action(&shallow, "pull_request", "pull_request", &api, &[]);
    assert_eq!(run.code, 2, "{}", describe(&run));
    assert!(run.stderr.contains("fetch-depth: 0"), "{}", describe(&run));
}

#[test]
fn check_run_annotations_stop_at_40_requests() {
    // 2,100 errors: 2,000 annotations in 40 requests, the rest counted.
    let broken = |root: &Path| {
        let mut extra = String::from("- name: zz-broken\n  dmap:\n");
        for i in 0..2100 {
            extra.push_str(&format!("    \"sha256:{i:04}\": [\"t{i:04}\"]\n"));
        }
        manifest(root, &[("hello", HELLO, &["v1.0.0"])], &extra)
    };
    let repo = Repo::new(hello_only, broken);
    let api = GitHubApi::start();
    let run = action(&repo, "pull_request", "pull_request", &api, &[]);
    assert_eq!(run.code, 1, "{}", describe(&run));
    assert_eq!(run.output("errors"), Some("2100"));
    let checks = api.requests_to("/check-runs");
    assert_eq!(checks.len(), 40);
    assert!(checks.iter().all(|r| {
        r.body["output"]["annotations"]
            .as_array()
            .is_some_and(|a| a.len() == 50)
    }));
    let summary = checks[0].body["output"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("100 more finding(s) are not annotated"),
        "{summary}"
    );
}

#[test]
fn a_passing_github_error_is_retried_and_a_lasting_one_only_warns() {
    let broken = |root: &Path| {
        let mut extra = String::from("- name: zz-broken\n  dmap:\n");
        for i in 0..60 {
            extra.push_str(&format!("    \"sha256:{i:03}\": [\"t{i:03}\"]\n"));
        }
        manifest(root, &[("hello", HELLO, &["v1.0.0"])], &extra)
    };
    let repo = Repo::new(hello_only, broken);
    let api = GitHubApi::start();
    // One 502 on the update: tried again, every annotation arrives.
    api.fail_next(1, "/check-runs/");
    let run = action(&repo, "pull_request", "pull_request", &api, &[]);
    assert_eq!(run.code, 1, "{}", describe(&run));
    let methods: Vec<String> = api
        .requests_to("/check-runs")
        .into_iter()
        .map(|r| r.method)
        .collect();
    assert_eq!(methods, ["POST", "PATCH", "PATCH"]);
    assert!(
        !run.stdout.contains("title=promoter action"),
        "{}",
        describe(&run)
    );

    // A creation that keeps failing is not repeated (no duplicate runs),
    // warns, and leaves the exit code to the findings.
    let api = GitHubApi::start();
    api.fail_next(10, "/check-runs");
    let run = action(&repo, "pull_request", "pull_request", &api, &[]);
    assert_eq!(run.code, 1, "{}", describe(&run));
    assert_eq!(api.requests_to("/check-runs").len(), 1);
    assert!(
        run.stdout
            .contains("::warning title=promoter action::cannot create the Check Run"),
        "{}",
        describe(&run)
    );
}

#[test]
fn a_push_whose_before_is_not_fetched_still_promotes() {
    let mut repo = Repo::new(hello_only, hello_and_echo);
    repo.base = "0123456789abcdef0123456789abcdef01234567".into();
    let api = GitHubApi::start();
    let run = action(&repo, "push", "push", &api, &[]);
    assert_eq!(run.code, 0, "{}", describe(&run));
    assert!(
        run.stdout.contains(
            "::warning title=promoter action::cannot compare the manifests with 0123456789abcdef"
        ),
        "{}",
        describe(&run)
    );
    assert_eq!(run.output("promoted"), Some("2"), "{}", describe(&run));
}

#[test]
fn github_rate_limits_are_waited_out_as_retry_after_says() {
    let repo = Repo::new(hello_only, hello_and_echo);
    let api = GitHubApi::start();
    // GitHub's secondary rate limit on the Check Run's creation: 429 with
    // `Retry-After: 2`. A rate-limited POST was not acted on, so it is sent
    // again, and not before GitHub said.
    api.throttle_next(1, "/check-runs", 2);
    let run = action(&repo, "pull_request", "pull_request", &api, &[]);
    assert_eq!(run.code, 0, "{}", describe(&run));
    let posts: Vec<_> = api
        .requests_to("/check-runs")
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "{}", describe(&run));
    let waited = posts[1].at - posts[0].at;
    assert!(
        waited >= std::time::Duration::from_secs(2),
        "retried after {waited:?}"
    );
    assert!(
        !run.stdout.contains("cannot create the Check Run"),
        "{}",
        describe(&run)
    );
    assert_eq!(run.output("conclusion"), Some("success"));
}
