//! The copy executor against real `docker-registry` servers on 127.0.0.1:
//! fan-out to three destinations with each source blob read once, mounts
//! inside one registry, idempotent and tag-only re-runs, and a stopped
//! destination that fails alone. `skopeo` reads back what was written.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use promoter::copy::{
    self, BlobTransfer, CopyJob, CopyOptions, CopyReport, CopyStats, ProgressEvent, Target,
};
use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Registry, RepoName};
use support::conformance::repo;
use support::image::TestImage;
use support::server::{Mode, RegistryServer};
use support::skopeo;

const MIB: usize = 1024 * 1024;

fn client() -> HttpClient {
    HttpClient::new(HttpOptions::default()).expect("client")
}

fn open(client: &HttpClient, server: &RegistryServer) -> Arc<dyn Registry> {
    registry::open(&server.host, client).expect("open registry")
}

/// An image pushed to the source, and the tags it gets in destinations.
struct Case {
    image: TestImage,
    source_repo: RepoName,
    dest_repo: RepoName,
    tags: Vec<String>,
}

impl Case {
    fn new(image: TestImage, source_repo: &str, dest_repo: &str, tags: &[&str]) -> Case {
        Case {
            image,
            source_repo: repo(source_repo),
            dest_repo: repo(dest_repo),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn digest(&self) -> Digest {
        self.image.index.digest()
    }
}

/// Four two-platform images: two `app` images sharing their base layer,
/// two `tool` images sharing another; the second tool has layers over
/// 8 MiB (12 and 9 MiB), so it goes through the spool file.
fn cases() -> Vec<Case> {
    vec![
        Case::new(
            TestImage::build_sharing(1, 100, 2 * MIB),
            "staging/app",
            "prod/app",
            &["v1", "latest"],
        ),
        Case::new(
            TestImage::build_sharing(2, 100, 3 * MIB),
            "staging/app",
            "prod/app",
            &["v2"],
        ),
        Case::new(
            TestImage::build_sharing(3, 200, 2 * MIB),
            "staging/tool",
            "prod/tool",
            &["1.0"],
        ),
        Case::new(
            TestImage::build_sharing(4, 200, 12 * MIB),
            "staging/tool",
            "prod/tool",
            &["2.0"],
        ),
    ]
}

/// Bytes of the distinct blobs of all cases.
fn distinct_blobs(cases: &[Case]) -> (u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let (mut count, mut bytes) = (0, 0);
    for blob in cases.iter().flat_map(|c| &c.image.blobs) {
        if seen.insert(blob.digest.clone()) {
            count += 1;
            bytes += blob.bytes.len() as u64;
        }
    }
    (count, bytes)
}

async fn seed(source: &dyn Registry, cases: &[Case]) {
    for (i, case) in cases.iter().enumerate() {
        case.image
            .push(source, &case.source_repo, &format!("seed{i}"))
            .await;
    }
}

fn jobs(
    source: &Arc<dyn Registry>,
    cases: &[Case],
    dests: &[Arc<dyn Registry>],
    copy: bool,
    tag_suffix: &str,
) -> Vec<CopyJob> {
    cases
        .iter()
        .map(|case| CopyJob {
            source: source.clone(),
            source_repo: case.source_repo.clone(),
            digest: case.digest(),
            targets: dests
                .iter()
                .map(|d| Target {
                    registry: d.clone(),
                    repo: case.dest_repo.clone(),
                    copy,
                    tags: case
                        .tags
                        .iter()
                        .map(|t| format!("{t}{tag_suffix}"))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Run with the default options, collecting the progress events.
async fn run(jobs: Vec<CopyJob>) -> (CopyReport, Vec<ProgressEvent>) {
    let events = Mutex::new(Vec::new());
    let report = copy::execute(jobs, &CopyOptions::default(), &|e| {
        events.lock().unwrap().push(e)
    })
    .await;
    (report, events.into_inner().unwrap())
}

fn assert_all_ok(report: &CopyReport) {
    for o in &report.outcomes {
        if let Err(e) = &o.result {
            panic!("job {} target {} failed: {e}", o.job, o.target);
        }
    }
}

/// Every destination tag reads back, through skopeo, as the source's exact
/// index bytes, and every child manifest and blob is there.
async fn assert_promoted(servers: &[&RegistryServer], cases: &[Case], suffix: &str) {
    let client = client();
    for server in servers {
        let reg = open(&client, server);
        for case in cases {
            for tag in &case.tags {
                let raw = skopeo::inspect_raw(server, &format!("{}:{tag}{suffix}", case.dest_repo));
                assert_eq!(raw, case.image.index.bytes, "{}:{tag}{suffix}", server.host);
            }
            for m in &case.image.manifests {
                let raw = skopeo::inspect_raw(server, &format!("{}@{}", case.dest_repo, m.digest));
                assert_eq!(raw, m.bytes);
            }
            for blob in &case.image.blobs {
                let size = reg
                    .blob_exists(&case.dest_repo, &blob.digest())
                    .await
                    .unwrap();
                assert_eq!(size, Some(blob.bytes.len() as u64), "{}", blob.digest);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_out_to_three_registries_reading_each_blob_once() {
    let src_server = RegistryServer::start(Mode::Plain);
    let dst_servers: Vec<RegistryServer> =
        (0..3).map(|_| RegistryServer::start(Mode::Plain)).collect();
    let client = client();
    let source = open(&client, &src_server);
    let dests: Vec<Arc<dyn Registry>> = dst_servers.iter().map(|s| open(&client, s)).collect();
    let cases = cases();
    seed(source.as_ref(), &cases).await;
    let (blob_count, blob_bytes) = distinct_blobs(&cases);
    assert_eq!(
        blob_count, 18,
        "two pairs of images, each pair sharing a base"
    );

    // First run: everything is copied.
    let start = Instant::now();
    let (report, events) = run(jobs(&source, &cases, &dests, true, "")).await;
    let elapsed = start.elapsed();
    assert_all_ok(&report);
    assert_eq!(report.outcomes.len(), 12);
    let tags_per_dest: u64 = cases.iter().map(|c| c.tags.len() as u64).sum();
    assert_eq!(
        report.stats,
        CopyStats {
            // Each distinct blob once per destination repository: the
            // shared bases are uploaded once per repository, not per image.
            blobs_uploaded: 3 * blob_count,
            blobs_mounted: 0,
            blobs_skipped: 0,
            bytes_uploaded: 3 * blob_bytes,
            // Each distinct blob read from the source once for three
            // destinations.
            bytes_read_from_source: blob_bytes,
            // Index and two children per image, read once.
            manifests_read: 4 * 3,
            manifests_pushed: 3 * 4 * 3,
            tags_pushed: 3 * tags_per_dest,
        }
    );
    let uploaded_events = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ProgressEvent::BlobDone {
                    transfer: BlobTransfer::Uploaded,
                    ok: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(uploaded_events as u64, 3 * blob_count);
    assert!(matches!(
        events.first(),
        Some(ProgressEvent::Started { targets: 12, .. })
    ));
    let done = events
        .iter()
        .filter(|e| matches!(e, ProgressEvent::TargetDone { ok: true, .. }))
        .count();
    assert_eq!(done, 12);
    eprintln!(
        "copied 4 two-platform images ({:.1} MiB of distinct blobs) to 3 registries in {:.2} s: \
         {:.1} MiB uploaded, {:.1} MiB read from the source",
        blob_bytes as f64 / MIB as f64,
        elapsed.as_secs_f64(),
        report.stats.bytes_uploaded as f64 / MIB as f64,
        report.stats.bytes_read_from_source as f64 / MIB as f64,
    );
    let servers: Vec<&RegistryServer> = dst_servers.iter().collect();
    assert_promoted(&servers, &cases, "").await;

    // Running the same jobs again moves no blob bytes.
    let start = Instant::now();
    let (again, _) = run(jobs(&source, &cases, &dests, true, "")).await;
    assert_all_ok(&again);
    assert_eq!(again.stats.blobs_skipped, 3 * blob_count);
    assert_eq!(again.stats.blobs_uploaded, 0);
    assert_eq!(again.stats.bytes_uploaded, 0);
    assert_eq!(again.stats.bytes_read_from_source, 0);
    eprintln!(
        "the same copy again: {:.2} s",
        start.elapsed().as_secs_f64()
    );

    // Tag-only targets: only the tags are pushed, from the top-level
    // manifest alone.
    let (tagged, _) = run(jobs(&source, &cases, &dests, false, "-again")).await;
    assert_all_ok(&tagged);
    assert_eq!(
        tagged.stats,
        CopyStats {
            manifests_read: 4,
            tags_pushed: 3 * tags_per_dest,
            ..CopyStats::default()
        }
    );
    assert_promoted(&servers, &cases, "-again").await;

    // Nothing to do: no targets, no requests, no outcomes.
    let mut idle = jobs(&source, &cases, &dests, true, "");
    for job in &mut idle {
        job.targets.clear();
    }
    let (nothing, events) = run(idle).await;
    assert!(nothing.outcomes.is_empty());
    assert_eq!(nothing.stats, CopyStats::default());
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, ProgressEvent::BlobDone { .. }))
    );
    let (empty, _) = run(Vec::new()).await;
    assert!(empty.outcomes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_inside_one_registry_and_streams_to_another() {
    let server = RegistryServer::start(Mode::Plain);
    let other_server = RegistryServer::start(Mode::Plain);
    let client = client();
    let registry = open(&client, &server);
    // A second handle on the same registry: told apart by name, not pointer.
    let same = open(&client, &server);
    let other = open(&client, &other_server);
    let cases: Vec<Case> = cases().into_iter().take(2).collect();
    seed(registry.as_ref(), &cases).await;
    let (blob_count, blob_bytes) = distinct_blobs(&cases);

    let (report, _) = run(jobs(
        &registry,
        &cases,
        std::slice::from_ref(&same),
        true,
        "",
    ))
    .await;
    assert_all_ok(&report);
    assert_eq!(report.stats.blobs_mounted, blob_count);
    assert_eq!(report.stats.blobs_uploaded, 0);
    assert_eq!(report.stats.bytes_uploaded, 0);
    assert_eq!(report.stats.bytes_read_from_source, 0);
    assert_promoted(&[&server], &cases, "").await;

    // One registry mounts, the other gets one streamed read per blob.
    let mut mixed = jobs(&registry, &cases, &[same, other], true, "-mixed");
    for job in &mut mixed {
        job.targets[0].repo = repo("mirror/app");
    }
    let (report, _) = run(mixed).await;
    assert_all_ok(&report);
    assert_eq!(report.stats.blobs_mounted, blob_count);
    assert_eq!(report.stats.blobs_uploaded, blob_count);
    assert_eq!(report.stats.bytes_uploaded, blob_bytes);
    assert_eq!(report.stats.bytes_read_from_source, blob_bytes);
    assert_promoted(&[&other_server], &cases, "-mixed").await;
    for case in &cases {
        let raw = skopeo::inspect_raw(&server, &format!("mirror/app:{}-mixed", case.tags[0]));
        assert_eq!(raw, case.image.index.bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_destination_or_a_lost_source_fails_alone() {
    let src_server = RegistryServer::start(Mode::Plain);
    let mut dst_servers: Vec<RegistryServer> =
        (0..3).map(|_| RegistryServer::start(Mode::Plain)).collect();
    let client = client();
    let source = open(&client, &src_server);
    let dests: Vec<Arc<dyn Registry>> = dst_servers.iter().map(|s| open(&client, s)).collect();
    let cases: Vec<Case> = cases().into_iter().take(2).collect();
    seed(source.as_ref(), &cases).await;
    // The middle destination goes away before the run.
    drop(dst_servers.remove(1));

    let mut all = jobs(&source, &cases, &dests, true, "");
    // And one job names a digest the source does not hold.
    let mut lost = all[0].clone();
    lost.digest = Digest::of(b"not in the source");
    all.push(lost);
    let (report, _) = run(all).await;
    assert_eq!(report.outcomes.len(), 9);
    for o in &report.outcomes {
        match (o.job, o.target) {
            (2, _) => {
                let e = o.result.as_ref().expect_err("lost source");
                assert!(matches!(e, copy::Error::Source { .. }), "{e}");
                assert!(e.to_string().contains("staging/app@sha256:"), "{e}");
            }
            (_, 1) => {
                let e = o.result.as_ref().expect_err("stopped destination");
                assert!(e.is_transient(), "connection refused is transient: {e}");
            }
            _ => assert!(o.result.is_ok(), "{:?}", o.result),
        }
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcomes"][1]["ok"], false);
    assert!(
        json["outcomes"][1]["error"]
            .as_str()
            .unwrap()
            .contains(&dests[1].name().to_string())
    );
    assert!(json["stats"]["bytes_uploaded"].as_u64().unwrap() > 0);
    let servers: Vec<&RegistryServer> = dst_servers.iter().collect();
    assert_promoted(&servers, &cases, "").await;
}
