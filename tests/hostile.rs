//! Hostile and broken registries (issue 18): `promoter run --confirm`, the
//! binary as a user runs it, promotes two images, one through a hostile
//! front (`support/hostile.rs`, in front of a real `docker-registry`) and
//! one between healthy registries. For every misbehaviour: no panic and no
//! hang (the run is killed past a bound), bounded peak memory (GNU time's
//! maximum resident set size), an error naming the hostile registry, exit
//! code 1, and the healthy image in its destination byte for byte. The
//! front sits before the source of the hostile image, or before its
//! destination for the listing modes (promoter lists destinations only).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::hostile::{self, Hostile, Misbehaviour};
use support::image::{TestImage, sha256};
use support::promote::{http, push_images, resolve};
use support::server::{Mode, RegistryServer};

const BIN: &str = env!("CARGO_BIN_EXE_promoter");

/// Longest a run may take: the slowest mode waits out the 60 s manifest
/// deadline (`Trickle`) or the ~25 s of retries of a transient failure.
const RUN_BOUND: Duration = Duration::from_secs(180);

/// Highest peak RSS a run may reach. promoter itself needs about 30 MB;
/// the largest body it buffers is a 32 MiB tags page. Before issue 18, a
/// 384 MiB page took 780 MB and a 400 MiB error body 401 MB.
const RSS_BOUND_KB: u64 = 160 * 1024;

/// Where the hostile front stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
}

/// The registries of one case.
struct Case {
    /// Behind the front.
    backend: RegistryServer,
    front: Hostile,
    /// Source of the healthy image (and of the hostile one when the front
    /// is a destination).
    source: RegistryServer,
    /// Destination of the healthy image (and of the hostile one when the
    /// front is the source).
    destination: RegistryServer,
    bad: TestImage,
    good: TestImage,
    dir: tempfile::TempDir,
    side: Side,
}

/// What one run did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss_kb: u64,
    elapsed: Duration,
}

fn small_image(seed: u64) -> TestImage {
    TestImage::build_sized(seed, 4096, [4096, 2048])
}

impl Case {
    fn start(mode: Misbehaviour, side: Side) -> Case {
        let backend = RegistryServer::start(Mode::Plain);
        let source = RegistryServer::start(Mode::Plain);
        let destination = RegistryServer::start(Mode::Plain);
        let front = Hostile::start(mode, &backend.host);
        let (bad, good) = (small_image(18), small_image(81));
        match side {
            Side::Source => push_images(&backend, &[("staging/bad", &bad, "s0")]),
            Side::Destination => push_images(&source, &[("staging/bad", &bad, "s0")]),
        }
        push_images(&source, &[("staging/good", &good, "s1")]);
        let case = Case {
            backend,
            front,
            source,
            destination,
            bad,
            good,
            dir: tempfile::tempdir().unwrap(),
            side,
        };
        case.write_manifests();
        case
    }

    /// A thin-manifest directory of two projects: `bad` (through the front)
    /// and `good`.
    fn write_manifests(&self) {
        let (bad_src, bad_dst) = match self.side {
            Side::Source => (&self.front.host, &self.destination.host),
            Side::Destination => (&self.source.host, &self.front.host),
        };
        let project = |name: &str, src: &str, dst: &str, image: &TestImage| {
            let root = self.dir.path();
            std::fs::create_dir_all(root.join(format!("manifests/{name}"))).unwrap();
            std::fs::create_dir_all(root.join(format!("images/{name}"))).unwrap();
            std::fs::write(
                root.join(format!("manifests/{name}/promoter-manifest.yaml")),
                format!("registries:\n- name: {src}/staging\n  src: true\n- name: {dst}/prod\n"),
            )
            .unwrap();
            std::fs::write(
                root.join(format!("images/{name}/images.yaml")),
                format!(
                    "- name: {name}\n  dmap:\n    \"{}\": [\"v1\"]\n",
                    image.index.digest
                ),
            )
            .unwrap();
        };
        project("bad", bad_src, bad_dst, &self.bad);
        project(
            "good",
            &self.source.host,
            &self.destination.host,
            &self.good,
        );
    }

    /// `promoter run --confirm` under GNU time, killed past [`RUN_BOUND`].
    fn run(&self, env: &[(String, String)]) -> Run {
        let time_file = self.dir.path().join("time.txt");
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut command = Command::new("/usr/bin/time");
        command
            .args(["-f", "%M", "-o"])
            .arg(&time_file)
            .arg(BIN)
            .args([
                "run",
                "--confirm",
                "--format",
                "json",
                "--thin-manifest-dir",
            ])
            .arg(self.dir.path())
            .env("HOME", &home)
            .env("DOCKER_CONFIG", &home)
            .env_remove("GITHUB_ACTIONS")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let started = Instant::now();
        let mut child = command.spawn().expect("start promoter under /usr/bin/time");
        let pid = child.id();
        // Drain the pipes while it runs, so that a chatty run cannot block.
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || read_all(&mut out));
        let err = std::thread::spawn(move || read_all(&mut err));
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > RUN_BOUND {
                // The whole process group: GNU time and promoter under it.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "promoter run did not end within {RUN_BOUND:?} (a hang); stderr:\n{}",
                    err.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let elapsed = started.elapsed();
        let time = std::fs::read_to_string(&time_file).unwrap_or_default();
        let peak_rss_kb = time
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {time}"));
        Run {
            code: status.code(),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
            peak_rss_kb,
            elapsed,
        }
    }

    /// `image` is in `server` under `repo:v1`: the index, each child
    /// manifest and each blob, byte for byte.
    fn assert_landed(&self, server: &RegistryServer, repo: &str, image: &TestImage) {
        let index = http("GET", &server.host, &format!("/v2/{repo}/manifests/v1"));
        assert_eq!(index.status, 200, "{repo}:v1 is not in {}", server.host);
        assert_eq!(
            index.body,
            image.index.bytes.as_ref(),
            "{repo}:v1 index bytes"
        );
        for m in &image.manifests {
            let got = http(
                "GET",
                &server.host,
                &format!("/v2/{repo}/manifests/{}", m.digest),
            );
            assert_eq!(got.body, m.bytes.as_ref(), "{repo}@{}", m.digest);
        }
        for b in &image.blobs {
            let got = http(
                "GET",
                &server.host,
                &format!("/v2/{repo}/blobs/{}", b.digest),
            );
            assert_eq!(got.status, 200, "{repo} blob {}", b.digest);
            assert_eq!(sha256(&got.body), b.digest, "{repo} blob bytes");
        }
    }

    /// The healthy image landed, whatever the front did.
    fn assert_healthy_landed(&self) {
        self.assert_landed(&self.destination, "prod/good", &self.good);
    }

    /// Nothing of the hostile image reached its destination.
    fn assert_bad_absent(&self) {
        let server = match self.side {
            Side::Source => &self.destination,
            Side::Destination => &self.backend,
        };
        assert_eq!(
            resolve(server, "prod/bad", "v1"),
            None,
            "prod/bad:v1 was written"
        );
        assert_eq!(
            resolve(server, "prod/bad", &self.bad.index.digest),
            None,
            "prod/bad@digest was written"
        );
    }
}

fn read_all(r: &mut impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// The common assertions of a run the front makes fail: a clean exit 1,
/// no panic, within bounds, the hostile registry named in an error, the
/// healthy image promoted. Returns the error messages naming the front.
fn assert_contained(case: &Case, run: &Run) -> Vec<String> {
    eprintln!(
        "run: exit {:?} in {:.1?}, peak RSS {} KiB",
        run.code, run.elapsed, run.peak_rss_kb
    );
    assert!(
        !run.stderr.contains("panicked"),
        "promoter panicked:\n{}",
        run.stderr
    );
    assert_eq!(
        run.code,
        Some(1),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.peak_rss_kb < RSS_BOUND_KB,
        "peak RSS {} KiB over the {RSS_BOUND_KB} KiB bound",
        run.peak_rss_kb
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not one JSON report ({e}):\n{}", run.stdout));
    let errors: Vec<String> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| d["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    let naming: Vec<String> = errors
        .iter()
        .filter(|m| m.contains(&case.front.host))
        .cloned()
        .collect();
    assert!(
        !naming.is_empty(),
        "no error names {}: {errors:#?}",
        case.front.host
    );
    assert!(
        errors.iter().all(|m| !m.contains("prod/good")),
        "the healthy image failed: {errors:#?}"
    );
    assert_eq!(json["promoted"], 1, "promoted count: {errors:#?}");
    case.assert_healthy_landed();
    case.assert_bad_absent();
    naming
}

/// Run `mode` and check the common assertions; returns the errors naming
/// the front.
fn contained(mode: Misbehaviour, side: Side) -> Vec<String> {
    let case = Case::start(mode, side);
    let run = case.run(&[]);
    let errors = assert_contained(&case, &run);
    eprintln!("{mode:?}: {errors:#?}");
    errors
}

fn any_contains(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

#[test]
fn ratelimit_reset_overflow_fails_that_registry_at_once() {
    let errors = contained(Misbehaviour::ResetOverflow, Side::Source);
    assert!(
        any_contains(&errors, "RateLimit-Reset: 18446744073709551615"),
        "{errors:#?}"
    );
    assert!(
        any_contains(&errors, "gave up on every image"),
        "{errors:#?}"
    );
}

#[test]
fn retry_after_seconds_overflow_fails_that_registry_at_once() {
    let errors = contained(Misbehaviour::RetryAfterSecondsOverflow, Side::Source);
    assert!(
        any_contains(&errors, "Retry-After: 18446744073709551615"),
        "{errors:#?}"
    );
    assert!(any_contains(&errors, "HTTP 429"), "{errors:#?}");
}

#[test]
fn retry_after_date_in_year_u64_max_is_no_date() {
    // Not a date httpdate reads: a plain 503, retried, then reported.
    let errors = contained(Misbehaviour::RetryAfterYearOverflow, Side::Source);
    assert!(any_contains(&errors, "503"), "{errors:#?}");
}

#[test]
fn retry_after_thousands_of_years_ahead_is_not_slept_through() {
    let case = Case::start(Misbehaviour::RetryAfterFarFuture, Side::Source);
    let run = case.run(&[]);
    let errors = assert_contained(&case, &run);
    assert!(
        any_contains(&errors, "Retry-After: Fri, 31 Dec 9999 23:59:59 GMT"),
        "{errors:#?}"
    );
    // No five-minute pause, not even one.
    assert!(run.elapsed < Duration::from_secs(60), "{:?}", run.elapsed);
}

#[test]
fn a_link_loop_is_detected() {
    let errors = contained(Misbehaviour::LinkLoop, Side::Destination);
    assert!(any_contains(&errors, "a loop"), "{errors:#?}");
}

#[test]
fn a_384_mib_tags_page_is_refused_in_bounded_memory() {
    let errors = contained(Misbehaviour::HugeTagsPage, Side::Destination);
    assert!(
        any_contains(&errors, "tags/list page larger than"),
        "{errors:#?}"
    );
}

#[test]
fn a_64_mib_manifest_is_refused() {
    let errors = contained(Misbehaviour::HugeManifest, Side::Source);
    assert!(
        any_contains(&errors, "manifest larger than 4194304 bytes"),
        "{errors:#?}"
    );
}

#[test]
fn a_400_mib_error_body_is_cut() {
    let errors = contained(Misbehaviour::HugeErrorBody, Side::Source);
    assert!(any_contains(&errors, "unexpected HTTP 400"), "{errors:#?}");
    assert!(errors.iter().all(|e| e.len() < 2000), "{errors:#?}");
}

#[test]
fn a_body_trickling_at_one_byte_a_second_meets_a_deadline() {
    let errors = contained(Misbehaviour::Trickle, Side::Source);
    assert!(
        any_contains(&errors, "of the manifest in 60 s"),
        "{errors:#?}"
    );
}

#[test]
fn a_lying_content_length_fails_the_image() {
    contained(Misbehaviour::LyingContentLength, Side::Source);
}

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let errors = contained(Misbehaviour::DigestMismatch, Side::Source);
    assert!(any_contains(&errors, "digest mismatch"), "{errors:#?}");
}

/// The blob is read into memory once and, hashed there, sent to every
/// destination without another check: that one check must hold.
#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let errors = contained(Misbehaviour::BlobMismatch, Side::Source);
    assert!(any_contains(&errors, "digest mismatch"), "{errors:#?}");
    // Refused here, before a byte went out: not by the destination.
    assert!(!any_contains(&errors, "DIGEST_INVALID"), "{errors:#?}");
}

#[test]
fn a_token_endpoint_answering_html_is_a_clear_error() {
    let errors = contained(Misbehaviour::TokenHtml, Side::Source);
    assert!(
        any_contains(&errors, "token response is not JSON"),
        "{errors:#?}"
    );
    assert!(any_contains(&errors, "text/html"), "{errors:#?}");
}

/// Runs that must succeed: both images land, exit 0.
fn assert_both_landed(case: &Case, run: &Run) {
    eprintln!(
        "run: exit {:?} in {:.1?}, peak RSS {} KiB",
        run.code, run.elapsed, run.peak_rss_kb
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.peak_rss_kb < RSS_BOUND_KB, "{} KiB", run.peak_rss_kb);
    case.assert_healthy_landed();
    case.assert_landed(&case.destination, "prod/bad", &case.bad);
}

#[test]
fn a_token_with_a_huge_expires_in_is_used_without_overflow() {
    let case = Case::start(Misbehaviour::HugeExpiresIn, Side::Source);
    let run = case.run(&[]);
    assert_both_landed(&case, &run);
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_port() {
    let case = Case::start(Misbehaviour::RedirectBlobs, Side::Source);
    let env = [(
        promoter::registry::credentials::env_var_name(&case.front.host),
        format!("{}:{}", hostile::USER, hostile::PASSWORD),
    )];
    let run = case.run(&env);
    assert_both_landed(&case, &run);
    let recorder = case.front.recorder.as_ref().unwrap();
    let heads = recorder.heads();
    assert!(
        heads.len() >= case.bad.blobs.len(),
        "the blobs did not come from the other port: {heads:#?}"
    );
    let basic = base64_of(&format!("{}:{}", hostile::USER, hostile::PASSWORD));
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization:"),
            "credentials sent to the other port:\n{head}"
        );
        assert!(
            !head.contains(&basic) && !head.contains(hostile::PASSWORD),
            "{head}"
        );
        assert!(
            !lower.contains("referer:"),
            "Referer sent to the other port:\n{head}"
        );
        assert!(!lower.contains("cookie"), "{head}");
    }
    let _ = Path::new(&case.dir.path());
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
