//! Artifact Registry's `tags/list` manifest map is incomplete past 10,000
//! tags (go-containerregistry `pkg/v1/google/list.go` pages it): a tag the
//! `tags` array names and the map lacks is resolved with a HEAD by tag, so
//! that it is neither taken for missing (and re-pushed) nor allowed to
//! move. Against the GCR-listing stand-in (`support/standin.rs`).

#[path = "support/standin.rs"]
mod standin;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use standin::{Listing, StandIn};

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A stand-in with staging holding digest 1, and prod holding 3 mapped
/// images plus tag `v1` on `v1_at`, outside the map. Returns it and the
/// manifest's directory.
async fn setup(v1_at: &str) -> (StandIn, tempfile::TempDir) {
    let standin = StandIn::start(2, Duration::ZERO).await;
    let [staging, prod] = [0, 1].map(|i| standin.hosts()[i].clone());
    standin.hold(
        &staging,
        "staging/app",
        Arc::new(Listing::new([(digest(1), vec!["build-1"])])),
    );
    let mapped = (2..5).map(|n| (digest(n), vec![["a", "b", "c"][usize::from(n) - 2]]));
    let listing = Listing::new(mapped).with_unmapped("v1", v1_at);
    standin.hold(&prod, "prod/app", Arc::new(listing));
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "registries:\n- name: {staging}/staging\n  src: true\n- name: {prod}/prod\nimages:\n- name: app\n  dmap:\n    \"{}\": [\"v1\"]\n",
        digest(1)
    );
    std::fs::write(dir.path().join("images.yaml"), yaml).unwrap();
    (standin, dir)
}

fn dry_run(dir: &tempfile::TempDir) -> (Output, Value) {
    let manifest = dir.path().join("images.yaml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_promoter"))
        .args(["run", "--manifest", manifest.to_str().unwrap()])
        .args(["--format", "json", "--sign=false"])
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

fn heads_of_v1(standin: &StandIn) -> u64 {
    standin
        .take_requests()
        .into_iter()
        .filter(|((_, path), _)| path == "HEAD /v2/prod/app/manifests/v1")
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_beyond_the_map_on_the_wanted_digest_is_done() {
    let (standin, dir) = setup(&digest(1)).await;
    let (output, report) = dry_run(&dir);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let counts = &report["plan"]["counts"];
    assert_eq!(counts["done"], 1, "{counts}");
    for class in ["copy", "tag_only", "tag_move"] {
        assert_eq!(counts[class], 0, "{class}: {counts}");
    }
    assert_eq!(heads_of_v1(&standin), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_beyond_the_map_on_another_digest_is_a_refused_move() {
    let (standin, dir) = setup(&digest(9)).await;
    let (output, report) = dry_run(&dir);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let counts = &report["plan"]["counts"];
    assert_eq!(counts["tag_move"], 1, "{counts}");
    assert_eq!(counts["tag_only"], 0, "{counts}");
    let diagnostics = report["diagnostics"].to_string();
    assert!(diagnostics.contains("P101"), "{diagnostics}");
    assert!(diagnostics.contains(&digest(9)), "{diagnostics}");
    assert_eq!(heads_of_v1(&standin), 1);
}
