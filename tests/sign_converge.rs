//! Every run converges to signed (issue 20 part 2, issue 15 "one
//! destination's failure stopped signing everywhere"), against real Debian
//! `docker-registry` instances on loopback, with key signing (no sigstore
//! services needed; the keyless run's Fulcio is a closed port):
//!
//! - a destination that refuses writes gets nothing, and the image is
//!   signed on the next destination that holds it;
//! - a run that copied but could not sign (Fulcio unreachable) is followed
//!   by one that signs every promoted digest and replicates to every
//!   mirror, a mirror added later gets the signatures copied (not signed
//!   again), and then a run writes nothing and costs what an unsigned no-op
//!   costs.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Reference, RepoName};
use support::front::{Front, Options, Profile};
use support::image::TestImage;
use support::server::{LoggedRequest, Mode, RegistryServer};

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn promoter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promoter"))
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("SIGSTORE_ID_TOKEN")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .expect("run promoter")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A source registry with two staging images, and a signing key.
struct Stand {
    source: RegistryServer,
    digests: Vec<(&'static str, Digest)>,
    key_dir: tempfile::TempDir,
    client: HttpClient,
}

impl Stand {
    async fn new() -> Stand {
        support::require_tools();
        let source = RegistryServer::start(Mode::Plain);
        let client = HttpClient::new(HttpOptions::default()).unwrap();
        let reg = registry::open(&source.host, &client).unwrap();
        let mut digests = Vec::new();
        for (seed, name) in [(71u64, "app"), (72, "tools/cli")] {
            let image = TestImage::build(seed);
            image
                .push(reg.as_ref(), &repo(&format!("staging/{name}")), "v1")
                .await;
            digests.push((name, image.index_manifest().digest()));
        }
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let key_dir = tempfile::tempdir().unwrap();
        std::fs::write(
            key_dir.path().join("key.pem"),
            key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        Stand {
            source,
            digests,
            key_dir,
            client,
        }
    }

    fn key(&self) -> PathBuf {
        self.key_dir.path().join("key.pem")
    }

    /// A manifest promoting both images to `destinations` (`host/prefix`).
    fn manifest(&self, destinations: &[String]) -> tempfile::NamedTempFile {
        let mut yaml = format!(
            "registries:\n- name: {}/staging\n  src: true\n",
            self.source.host
        );
        for d in destinations {
            yaml.push_str(&format!("- name: {d}\n"));
        }
        yaml.push_str("images:\n");
        for (name, digest) in &self.digests {
            yaml.push_str(&format!(
                "- name: {name}\n  dmap:\n    \"{digest}\": [\"v1\"]\n"
            ));
        }
        let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(file.path(), yaml).unwrap();
        file
    }

    /// `promoter run` of `manifest` with `extra`, as JSON.
    fn run(
        &self,
        manifest: &tempfile::NamedTempFile,
        extra: &[&str],
    ) -> (Output, serde_json::Value) {
        let mut args = vec![
            "run",
            "--manifest",
            manifest.path().to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = promoter(&args);
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not a JSON report ({e}):\n{}", text(&out)));
        (out, report)
    }

    fn signed_run(
        &self,
        manifest: &tempfile::NamedTempFile,
        confirm: bool,
    ) -> (Output, serde_json::Value) {
        let key = self.key();
        let mut extra = vec!["--signing-key", key.to_str().unwrap()];
        if confirm {
            extra.push("--confirm");
        }
        self.run(manifest, &extra)
    }

    /// Whether each image's `.sig` tag is in `host/prefix`.
    async fn signed_in(&self, host: &str, prefix: &str) -> Vec<bool> {
        let reg = registry::open(host, &self.client).unwrap();
        let mut out = Vec::new();
        for (name, digest) in &self.digests {
            let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
            let found = reg
                .head_manifest(&repo(&format!("{prefix}/{name}")), &tag)
                .await
                .unwrap();
            out.push(found.is_some());
        }
        out
    }

    /// Each image's `.sig` manifest digest in `host/prefix`.
    async fn signatures_in(&self, host: &str, prefix: &str) -> Vec<Option<Digest>> {
        let reg = registry::open(host, &self.client).unwrap();
        let mut out = Vec::new();
        for (name, digest) in &self.digests {
            let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
            let found = reg
                .head_manifest(&repo(&format!("{prefix}/{name}")), &tag)
                .await
                .unwrap();
            out.push(found.map(|d| d.digest));
        }
        out
    }
}

fn writes(requests: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    requests
        .iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE"))
        .collect()
}

/// An identity token shaped like GitHub's (never checked: Fulcio is
/// unreachable).
fn fake_token() -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(
            r#"{"iss":"https://token.actions.githubusercontent.com","sub":"repo:o/r:ref:refs/heads/main","aud":"sigstore"}"#
        ),
        b64("signature")
    )
}

/// Whether the repository `repo` (a JSON string) is in `destination`.
fn under(repo: &serde_json::Value, destination: &str) -> bool {
    repo.as_str()
        .is_some_and(|r| r.starts_with(&format!("{destination}/")))
}

/// Every request of the run, per its JSON report.
fn requests_of(report: &serde_json::Value) -> u64 {
    report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["requests"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_refusing_writes_does_not_stop_signing_on_the_others() {
    let stand = Stand::new().await;
    let broken_backend = RegistryServer::start(Mode::Plain);
    let broken = Front::with(
        &broken_backend.host,
        Profile::Pass,
        Options {
            refuse_writes: true,
            ..Options::of(Profile::Pass)
        },
    );
    let healthy = RegistryServer::start(Mode::Plain);
    // The broken destination comes first: it used to be where signing
    // happened.
    let manifest = stand.manifest(&[
        format!("{}/prod", broken.host),
        format!("{}/prod", healthy.host),
    ]);
    let (out, report) = stand.signed_run(&manifest, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The diagnostics name the broken destination; none names the healthy.
    let messages: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(!messages.is_empty(), "{}", text(&out));
    for m in &messages {
        assert!(m.contains(&broken.host), "{m}\n{}", text(&out));
        assert!(!m.contains(&healthy.host), "{m}\n{}", text(&out));
    }
    assert!(
        messages
            .iter()
            .any(|m| m.contains("403") || m.contains("denied")),
        "{messages:?}"
    );
    // Both images landed on the healthy destination and are signed there.
    assert_eq!(report["promoted"], 2, "{report}");
    assert_eq!(report["signing"]["signed"], 2, "{report}");
    assert_eq!(stand.signed_in(&healthy.host, "prod").await, [true, true]);
    // Nothing at all reached the broken destination's storage.
    let reached = broken_backend.requests();
    assert!(writes(&reached).is_empty(), "{:?}", writes(&reached));
    let refused = broken.count("PUT", 403) + broken.count("POST", 403);
    assert!(refused > 0, "{:?}", broken.summary());
    for (method, _, status) in broken.summary().keys() {
        if matches!(method.as_str(), "PUT" | "POST" | "PATCH") {
            assert_eq!(*status, 403, "{:?}", broken.summary());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_promotions_are_signed_and_missing_signatures_replicated() {
    let stand = Stand::new().await;
    let mirrors: Vec<RegistryServer> = (0..3).map(|_| RegistryServer::start(Mode::Plain)).collect();
    let names: Vec<String> = mirrors.iter().map(|m| format!("{}/prod", m.host)).collect();
    let all = stand.manifest(&names);
    let first_two = stand.manifest(&names[..2]);

    // 1. A keyless run whose Fulcio is unreachable: it copies everywhere,
    // fails to sign (exit 1, saying so) and leaves the images unsigned.
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), fake_token()).unwrap();
    let (out, report) = stand.run(
        &all,
        &[
            "--confirm",
            "--identity-token-file",
            token.path().to_str().unwrap(),
            "--fulcio-url",
            "http://127.0.0.1:9",
            "--rekor-url",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(report["promoted"], 6, "{report}");
    assert!(
        report["diagnostics"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("127.0.0.1:9")),
        "{report}"
    );
    for m in &mirrors {
        assert_eq!(stand.signed_in(&m.host, "prod").await, [false, false]);
    }

    // 2. A dry run with signing: the plan is empty of copies but says what
    // it would sign, and writes nothing.
    let marks: Vec<usize> = mirrors.iter().map(RegistryServer::log_mark).collect();
    let (out, report) = stand.signed_run(&first_two, false);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report["plan"]["images"].as_array().unwrap().len(), 0);
    let planned = report["plan"]["signatures"].as_array().unwrap();
    assert_eq!(planned.len(), 2, "{report}");
    for work in planned {
        assert!(under(&work["sign"], &names[0]), "{work}");
        assert_eq!(work["to"].as_array().unwrap().len(), 1, "{work}");
        assert!(under(&work["to"][0], &names[1]), "{work}");
    }
    for (m, mark) in mirrors.iter().zip(&marks) {
        let seen = m.requests_since(*mark);
        assert!(writes(&seen).is_empty(), "{:?}", writes(&seen));
    }

    // 3. The same with --confirm signs both digests on the first mirror
    // and replicates to the second.
    let (out, report) = stand.signed_run(&first_two, true);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report["signing"]["signed"], 2, "{report}");
    assert_eq!(report["signing"]["replicated"], 2, "{report}");
    assert_eq!(
        stand.signed_in(&mirrors[0].host, "prod").await,
        [true, true]
    );
    assert_eq!(
        stand.signed_in(&mirrors[1].host, "prod").await,
        [true, true]
    );
    assert_eq!(
        stand.signed_in(&mirrors[2].host, "prod").await,
        [false, false]
    );

    // 4. The third mirror (promoted in run 1, never signed) gets the
    // signatures copied byte for byte, not a new signature.
    let (out, report) = stand.signed_run(&all, false);
    assert!(out.status.success(), "{}", text(&out));
    for work in report["plan"]["signatures"].as_array().unwrap() {
        assert!(work["sign"].is_null(), "{work}");
        assert!(under(&work["from"], &names[0]), "{work}");
        assert_eq!(work["to"].as_array().unwrap().len(), 1, "{work}");
        assert!(under(&work["to"][0], &names[2]), "{work}");
    }
    let (out, report) = stand.signed_run(&all, true);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report["signing"]["signed"], 0, "{report}");
    assert_eq!(report["signing"]["replicated"], 2, "{report}");
    let reference = stand.signatures_in(&mirrors[0].host, "prod").await;
    assert!(reference.iter().all(Option::is_some));
    for m in &mirrors {
        assert_eq!(stand.signatures_in(&m.host, "prod").await, reference);
    }

    // 5. Converged: a signed run writes nothing, and costs exactly what an
    // unsigned no-op costs (presence comes from the listings).
    let (out, unsigned) = stand.run(&all, &["--confirm", "--sign=false"]);
    assert!(out.status.success(), "{}", text(&out));
    let marks: Vec<usize> = mirrors.iter().map(RegistryServer::log_mark).collect();
    let (out, signed) = stand.signed_run(&all, true);
    assert!(out.status.success(), "{}", text(&out));
    assert!(signed["plan"]["signatures"].as_array().unwrap().is_empty());
    assert!(signed["signing"].is_null(), "{signed}");
    for (m, mark) in mirrors.iter().zip(&marks) {
        let seen = m.requests_since(*mark);
        assert!(writes(&seen).is_empty(), "{:?}", writes(&seen));
    }
    assert_eq!(requests_of(&signed), requests_of(&unsigned), "{signed}");
    let human = promoter(&[
        "run",
        "--manifest",
        all.path().to_str().unwrap(),
        "--signing-key",
        stand.key().to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("nothing to do"),
        "{}",
        text(&human)
    );
}
