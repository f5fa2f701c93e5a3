//! Limits per operation class: `promoter run` through a Debian `nginx`
//! front that answers 429 to manifest PUTs beyond 5 a second and lets
//! every other request through (as ECR meters `PutImage` at 10/s while
//! layer traffic goes far higher). The run must succeed without a failure,
//! and the blob traffic must keep its speed, measured from the front's
//! access log: a 429 on manifest PUTs slows manifest PUTs only.

#[path = "support/nginx.rs"]
mod nginx;
mod support;

use std::process::Command;
use std::sync::Arc;

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{Registry, RepoName};
use serde_json::Value;
use support::image::TestImage;
use support::promote::{ManifestImage, http, manifest_yaml, push_images};
use support::server::{Mode, RegistryServer};

const BIN: &str = env!("CARGO_BIN_EXE_promoter");

/// Manifest PUTs per second the front accepts.
const MANIFEST_RATE: u32 = 5;
/// Images to copy: 5 blobs and 3 manifest PUTs each (two platforms, then
/// the index under its tag).
const NEW: usize = 12;
/// Images already in the destination that only get a new tag: their tag
/// PUTs start at once, so manifest PUTs are refused while blobs are still
/// being copied (as when a promotion adds tags and images together).
const RETAGGED: usize = 20;
/// Repositories the images are spread over.
const REPOS: usize = 4;

/// Push `(repo, image, tag)` to the registry at `host` (test setup).
fn seed(host: &str, images: &[(String, &TestImage, String)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = HttpClient::new(HttpOptions::default()).unwrap();
        let registry: Arc<dyn Registry> = Arc::new(client.registry(host).unwrap());
        for (repo, image, tag) in images {
            let repo: RepoName = repo.parse().unwrap();
            image.push(registry.as_ref(), &repo, tag).await;
        }
    });
}

#[test]
fn a_manifest_put_limit_paces_manifest_puts_only() {
    let source = RegistryServer::start(Mode::Plain);
    let backend = nginx::Backend::start();
    let front = nginx::Nginx::start_limiting_manifest_puts(
        &backend.host,
        nginx::ManifestPutLimit {
            rate: MANIFEST_RATE,
            burst: 5,
        },
    );

    let total = NEW + RETAGGED;
    let images: Vec<TestImage> = (0..total as u64)
        .map(|i| TestImage::build_sized(100 + i, 8 << 10, [16 << 10, 12 << 10]))
        .collect();
    let repo = |i: usize| format!("app{}", i % REPOS);
    let tag = |i: usize| format!("v{}", i / REPOS);
    let in_source: Vec<(String, &TestImage, String)> = (0..total)
        .map(|i| (format!("staging/{}", repo(i)), &images[i], tag(i)))
        .collect();
    let sources: Vec<(&str, &TestImage, &str)> = in_source
        .iter()
        .map(|(r, i, t)| (r.as_str(), *i, t.as_str()))
        .collect();
    push_images(&source, &sources);
    // The retagged images are in the destination already, under another
    // tag (pushed to the registry directly, not through the front).
    let in_destination: Vec<(String, &TestImage, String)> = (NEW..total)
        .map(|i| (format!("prod/{}", repo(i)), &images[i], format!("old{i}")))
        .collect();
    seed(&backend.host, &in_destination);

    let entries: Vec<ManifestImage> = (0..REPOS)
        .map(|r| ManifestImage {
            name: format!("app{r}"),
            dmap: (r..total)
                .step_by(REPOS)
                .map(|i| (images[i].index.digest.clone(), vec![tag(i)]))
                .collect(),
        })
        .collect();
    let yaml = manifest_yaml(
        &format!("{}/staging", source.host),
        &[format!("{}/prod", front.host)],
        &entries,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promoter.yaml");
    std::fs::write(&path, yaml).unwrap();

    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .args(["run", "--confirm", "--format", "json", "--manifest"])
        .arg(&path)
        .output()
        .expect("run promoter");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["promoted"], total, "{report}");
    // Every tag is there, on the registry behind the front.
    for (i, image) in images.iter().enumerate() {
        let path = format!("/v2/prod/{}/manifests/{}", repo(i), tag(i));
        let head = http("HEAD", &backend.host, &path);
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(
            head.header("docker-content-digest"),
            Some(image.index.digest.as_str()),
            "{path}"
        );
    }

    let log = front.requests();
    let manifest_puts: Vec<&nginx::Logged> = log
        .iter()
        .filter(|r| r.method == "PUT" && r.uri.contains("/manifests/"))
        .collect();
    let refused = manifest_puts.iter().filter(|r| r.status == 429).count();
    let blobs: Vec<f64> = log
        .iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .map(|r| r.at)
        .collect();
    let first = blobs.iter().copied().fold(f64::INFINITY, f64::min);
    let last = blobs.iter().copied().fold(0.0, f64::max);
    let blob_rate = blobs.len() as f64 / (last - first).max(1e-3);
    let first_refusal = manifest_puts
        .iter()
        .find(|r| r.status == 429)
        .map_or(f64::INFINITY, |r| r.at);
    eprintln!(
        "run: {elapsed:.1?}; {} manifest PUTs ({refused} answered 429, the first {:.2} s after the first blob request); \
         {} blob requests in {:.2} s: {blob_rate:.0}/s",
        manifest_puts.len(),
        first_refusal - first,
        blobs.len(),
        last - first
    );
    // The front pushed back while blobs were being copied: otherwise this
    // test shows nothing.
    assert!(
        first_refusal < last,
        "no manifest PUT was refused before the last blob request"
    );
    assert!(blobs.len() >= NEW * 5, "{} blob requests", blobs.len());
    // Blob traffic is not paced to the manifest rate: at least 8x it.
    // Measured on the loaded 2-core machine: 86 to 175/s; 11 to 16/s with
    // one limiter for every request to the host (the code before issue 20).
    assert!(
        blob_rate >= 8.0 * f64::from(MANIFEST_RATE),
        "blob requests went at {blob_rate:.1}/s while manifest PUTs were limited to {MANIFEST_RATE}/s"
    );
}
