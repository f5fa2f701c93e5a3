//! Scale: the whole registry.k8s.io tree of the corpus (75 projects, 822
//! images, ~20,000 digests, 22 regional mirrors each) against a loopback
//! stand-in for Artifact Registry that answers `tags/list` with the GCR
//! `manifest` map (`support/standin.rs`).
//!
//! - `steady_state_whole_corpus`: every mirror already holds everything; the
//!   run finds that out with one listing per destination repository and one
//!   `/v2/` ping per host, nothing else.
//! - `three_shards_cover_one_run`: `--shard 0/3`, `1/3`, `2/3` plan exactly
//!   the edges of one unsharded run, never share a destination repository,
//!   and `report merge` of their reports gives the run's counts and exit
//!   code.
//! - `signed_steady_state_whole_corpus`: every digest also carries its
//!   `.sig` tag on every mirror but a few; a signed dry run reports exactly
//!   those few (to be replicated, not signed again) and makes the same
//!   requests as the unsigned steady state: presence comes from the
//!   listings.
//! - `bench_steady_state` (ignored; `bench/scale.sh` runs it on a release
//!   build): edges, requests, peak RSS and wall time at 20 ms per request.

#[path = "support/standin.rs"]
mod standin;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promoter::cli::{CheckArgs, ColorChoice, ManifestArgs};
use promoter::plan::{self, Wants};
use serde_json::Value;
use standin::{Listing, StandIn};

const CORPUS: &str = "tests/data/k8s-io/registry.k8s.io";

/// The corpus copied to a temporary directory, each registry host replaced
/// by a stand-in listener, with what the stand-in was told to hold.
struct Tree {
    _dir: tempfile::TempDir,
    path: PathBuf,
    standin: StandIn,
    wants: Wants,
    /// `127.0.0.1:PORT` of the staging registry (the source of every image).
    source_host: String,
    /// Destination repositories as `127.0.0.1:PORT/path`.
    destinations: BTreeSet<String>,
    destination_hosts: BTreeSet<String>,
    /// With [`State::Signed`]: the (digest, destination repository) pairs
    /// whose `.sig` tag the stand-in leaves out.
    unsigned: BTreeSet<(String, String)>,
}

/// Every registry host the tree's manifests name, sorted.
fn hosts_of(corpus: &Path) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    for entry in std::fs::read_dir(corpus.join("manifests")).unwrap() {
        let text =
            std::fs::read_to_string(entry.unwrap().path().join("promoter-manifest.yaml")).unwrap();
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("- name:") {
                let host = name.trim().split('/').next().unwrap();
                hosts.insert(host.to_owned());
            }
        }
    }
    hosts
}

/// Copies `from` to `to`, rewriting `name: <host>/` in the registry lists
/// and dropping the three entries of the corpus that `check` rejects (a
/// 63-digit digest and two images with an empty `dmap`), so that `run`
/// proceeds. Everything else, CRLF and quirks included, is kept.
fn copy_rewritten(from: &Path, to: &Path, hosts: &HashMap<String, String>) {
    for kind in ["manifests", "images"] {
        for entry in std::fs::read_dir(from.join(kind)).unwrap() {
            let entry = entry.unwrap();
            let project = to.join(kind).join(entry.file_name());
            std::fs::create_dir_all(&project).unwrap();
            for file in std::fs::read_dir(entry.path()).unwrap() {
                let file = file.unwrap();
                let mut text = std::fs::read_to_string(file.path()).unwrap();
                if kind == "manifests" {
                    for (old, new) in hosts {
                        text = text.replace(&format!("name: {old}/"), &format!("name: {new}/"));
                    }
                } else {
                    text = drop_rejected(&text);
                }
                std::fs::write(project.join(file.file_name()), text).unwrap();
            }
        }
    }
}

fn drop_rejected(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        // `- name: x` + `  dmap:` with nothing under it.
        if trimmed.starts_with("- name:")
            && lines.get(i + 1).is_some_and(|l| l.trim() == "dmap:")
            && lines
                .get(i + 2)
                .is_none_or(|l| l.trim_start().starts_with("- name:"))
        {
            i += 2;
            continue;
        }
        if let Some(rest) = trimmed.trim_start_matches('"').strip_prefix("sha256:") {
            let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
            if hex != 64 {
                i += 1;
                continue;
            }
        }
        out.push_str(line);
        i += 1;
    }
    out
}

fn load_wants(tree: &Path) -> Wants {
    let args = CheckArgs {
        manifests: ManifestArgs {
            manifest: None,
            thin_manifest_dir: vec![tree.to_path_buf()],
        },
        base_ref: None,
        base_dir: None,
        allow_removal: false,
        format: None,
        ignore: Vec::new(),
        color: ColorChoice::Never,
    };
    let (loaded, diagnostics) = promoter::check::diagnose(&args).unwrap();
    let errors: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.severity == promoter::diagnostic::Severity::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "the rewritten corpus has errors: {errors:?}"
    );
    plan::wants(&loaded.manifests)
}

/// How the stand-in's destinations differ from the manifests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Every destination holds every digest with every tag.
    Steady,
    /// About one (destination, digest) in 1500 is missing, one in 1500 lacks
    /// its tags, and one tag of one repository points at another digest.
    Partial,
    /// As `Steady`, and every digest carries its cosign `.sig` tag (a
    /// manifest of its own in the GCR map) on every mirror, except about
    /// one (destination, digest) in 5000.
    Signed,
}

/// What one repository holds: each digest with its tags.
type Entries<'a> = Vec<(String, Vec<&'a str>)>;

/// A small stable hash to pick the perturbed entries.
fn pick(a: &str, b: &str, modulo: u64) -> u64 {
    promoter::shard::fnv1a64(format!("{a}@{b}").as_bytes()) % modulo
}

async fn tree(latency: Duration, state: State) -> Tree {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let hosts = hosts_of(&corpus);
    let standin = StandIn::start(hosts.len(), latency).await;
    let mapping: HashMap<String, String> = hosts.iter().cloned().zip(standin.hosts()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.k8s.io");
    copy_rewritten(&corpus, &path, &mapping);
    let source_host = mapping["gcr.io"].clone();
    let wants = load_wants(&path);

    // What each repository holds: digest -> tags.
    let names = &wants.names;
    let mut held: BTreeMap<u32, BTreeMap<String, BTreeSet<&str>>> = BTreeMap::new();
    for want in &wants.items {
        let digest = want.digest.to_string();
        held.entry(want.source)
            .or_default()
            .entry(digest.clone())
            .or_default();
        for (repo, tags) in want.targets() {
            let name = names.repo(repo).to_string();
            if state == State::Partial && pick(&name, &digest, 1500) == 0 {
                continue;
            }
            let slot = held
                .entry(repo)
                .or_default()
                .entry(digest.clone())
                .or_default();
            if state == State::Partial && pick(&name, &digest, 1500) == 1 {
                continue;
            }
            slot.extend(tags.iter().map(|t| names.tag(t.tag)));
        }
    }
    if state == State::Partial {
        // One published tag points elsewhere: a tag move, refused.
        let (_, repo) = held
            .iter_mut()
            .find(|(id, r)| {
                names.repo(**id).registry != source_host && r.values().any(|t| !t.is_empty())
            })
            .unwrap();
        let (_, tags) = repo.iter_mut().find(|(_, t)| !t.is_empty()).unwrap();
        let tag = tags.pop_first().unwrap();
        repo.insert(format!("sha256:{}", "f".repeat(64)), BTreeSet::from([tag]));
    }
    let mut unsigned = BTreeSet::new();
    let mut signatures: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    if state == State::Signed {
        for (id, digests) in &held {
            let repo = names.repo(*id);
            if repo.registry == source_host {
                continue;
            }
            let name = repo.to_string();
            for digest in digests.keys() {
                if pick(&name, digest, 5000) == 7 {
                    unsigned.insert((digest.clone(), name.clone()));
                    continue;
                }
                let hex = &digest["sha256:".len()..];
                // Any digest will do for the signature manifest: one per
                // image digest, the same on every mirror (replicas are
                // byte-identical).
                let sig: String = hex.chars().rev().collect();
                signatures
                    .entry(*id)
                    .or_default()
                    .push((format!("sha256:{sig}"), format!("sha256-{hex}.sig")));
            }
        }
    }
    // Mirrors holding the same thing share one listing.
    let mut shared: HashMap<(String, Entries<'_>), Arc<Listing>> = HashMap::new();
    let mut destinations = BTreeSet::new();
    let mut destination_hosts = BTreeSet::new();
    for (id, digests) in held {
        let repo = names.repo(id);
        let mut entries: Entries<'_> = digests
            .into_iter()
            .map(|(d, t)| (d, t.into_iter().collect()))
            .collect();
        for (sig, tag) in signatures.get(&id).into_iter().flatten() {
            entries.push((sig.clone(), vec![tag.as_str()]));
        }
        let listing = shared
            .entry((repo.repo.to_string(), entries))
            .or_insert_with_key(|(_, entries)| Arc::new(Listing::new(entries.iter().cloned())))
            .clone();
        standin.hold(&repo.registry, repo.repo.as_str(), listing);
    }
    for id in wants.destinations() {
        let repo = names.repo(id);
        destinations.insert(repo.to_string());
        destination_hosts.insert(repo.registry.clone());
    }
    Tree {
        _dir: dir,
        path,
        standin,
        wants,
        source_host,
        destinations,
        destination_hosts,
        unsigned,
    }
}

fn promoter_bin() -> PathBuf {
    std::env::var_os("PROMOTER_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_promoter")),
        PathBuf::from,
    )
}

async fn promoter(args: &[&str]) -> Output {
    tokio::process::Command::new(promoter_bin())
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .await
        .unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
        )
    })
}

/// `tags/list` requests per repository (`host/path`) and every other
/// request per `host` and `METHOD path`.
#[derive(Default)]
struct Requests {
    listings: BTreeMap<String, u64>,
    other: BTreeMap<(String, String), u64>,
}

fn split_requests(all: BTreeMap<(String, String), u64>) -> Requests {
    let mut requests = Requests::default();
    for ((host, path), n) in all {
        match path
            .strip_prefix("GET /v2/")
            .and_then(|p| p.strip_suffix("/tags/list"))
        {
            Some(repo) => {
                *requests
                    .listings
                    .entry(format!("{host}/{repo}"))
                    .or_default() += n
            }
            None => *requests.other.entry((host, path)).or_default() += n,
        }
    }
    requests
}

/// The steady state: one listing per destination repository, one ping per
/// destination host (and the TLS probe before it), nothing else anywhere.
fn assert_steady_state_requests(tree: &Tree, requests: &Requests) {
    assert_eq!(
        requests.listings.len(),
        tree.destinations.len(),
        "listed repositories"
    );
    for (repo, n) in &requests.listings {
        assert_eq!(*n, 1, "{repo} listed {n} times");
        assert!(tree.destinations.contains(repo), "{repo} is no destination");
    }
    for ((host, path), n) in &requests.other {
        assert!(
            tree.destination_hosts.contains(host),
            "{host} (source: {}) saw {path}",
            tree.source_host
        );
        match path.as_str() {
            "GET /v2/" => assert_eq!(*n, 1, "{host} pinged {n} times"),
            "not-http" => assert_eq!(*n, 1, "{host}: {n} TLS probes"),
            _ => panic!("{host} saw {n} x {path}: only listings are expected"),
        }
    }
    let pinged: BTreeSet<&String> = requests
        .other
        .keys()
        .filter(|(_, p)| p == "GET /v2/")
        .map(|(h, _)| h)
        .collect();
    assert_eq!(pinged.len(), tree.destination_hosts.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_whole_corpus() {
    let tree = tree(Duration::from_millis(2), State::Steady).await;
    let edges = tree.wants.edges();
    // 445 destination repositories (822 image entries, some names repeated,
    // some projects with two prefixes), each on 22 mirrors.
    assert_eq!(tree.destinations.len(), 445 * 22);
    assert_eq!(tree.destination_hosts.len(), 22);
    assert!(edges > 440_000, "{edges} edges");

    let output = promoter(&[
        "run",
        "--thin-manifest-dir",
        tree.path.to_str().unwrap(),
        "--format",
        "json",
        "--concurrency",
        "32",
    ])
    .await;
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output.stdout);
    let counts = &report["plan"]["counts"];
    assert_eq!(counts["done"], edges, "{counts}");
    for class in ["copy", "tag_only", "tag_move", "lost"] {
        assert_eq!(counts[class], 0, "{class}: {counts}");
    }
    assert_eq!(report["plan"]["images"].as_array().unwrap().len(), 0);
    assert_eq!(report["diagnostics"].as_array().unwrap().len(), 0);

    let requests = split_requests(tree.standin.take_requests());
    assert_steady_state_requests(&tree, &requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_steady_state_whole_corpus() {
    let tree = tree(Duration::from_millis(2), State::Signed).await;
    assert!(
        (5..200).contains(&tree.unsigned.len()),
        "{} unsigned",
        tree.unsigned.len()
    );
    let key = signing_key();
    let output = promoter(&[
        "run",
        "--thin-manifest-dir",
        tree.path.to_str().unwrap(),
        "--format",
        "json",
        "--concurrency",
        "32",
        "--signing-key",
        key.path().to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output.stdout);
    assert_eq!(report["plan"]["images"].as_array().unwrap().len(), 0);
    // Exactly the gaps, each to be copied from a mirror that has it.
    let mut reported = BTreeSet::new();
    for work in report["plan"]["signatures"].as_array().unwrap() {
        assert!(work["sign"].is_null(), "signed nowhere? {work}");
        assert!(work["from"].is_string(), "{work}");
        for to in work["to"].as_array().unwrap() {
            let to = to.as_str().unwrap().to_owned();
            reported.insert((work["digest"].as_str().unwrap().to_owned(), to));
        }
    }
    assert_eq!(reported, tree.unsigned);
    // Not one request more than the unsigned steady state.
    let requests = split_requests(tree.standin.take_requests());
    assert_steady_state_requests(&tree, &requests);
}

/// A P-256 signing key in a PKCS#8 PEM file.
fn signing_key() -> tempfile::NamedTempFile {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    file
}

/// (source, digest, destination) -> (copy, tags) of a report's plan.
type Targets = BTreeMap<(String, String, String), (bool, Vec<String>)>;

fn targets(report: &Value) -> Targets {
    let mut out = Targets::new();
    for image in report["plan"]["images"].as_array().unwrap() {
        for target in image["targets"].as_array().unwrap() {
            let key = (
                image["source"].as_str().unwrap().to_owned(),
                image["digest"].as_str().unwrap().to_owned(),
                target["destination"].as_str().unwrap().to_owned(),
            );
            let tags = target["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect();
            let copy = target["copy"].as_bool().unwrap();
            assert!(
                out.insert(key.clone(), (copy, tags)).is_none(),
                "{key:?} twice"
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_cover_one_run() {
    let tree = tree(Duration::ZERO, State::Partial).await;
    let dir = tempfile::tempdir().unwrap();
    let thin = tree.path.to_str().unwrap();
    let run = |report: PathBuf, shard: Option<String>| async move {
        let report = report.to_str().unwrap().to_owned();
        let mut args = vec![
            "run",
            "--thin-manifest-dir",
            thin,
            "--format",
            "json",
            "--concurrency",
            "32",
            "--report",
            &report,
        ];
        if let Some(shard) = &shard {
            args.extend(["--shard", shard]);
        }
        promoter(&args).await
    };

    // One whole run: some copies and tags to add, one refused tag move.
    let whole_path = dir.path().join("whole.json");
    let whole = run(whole_path.clone(), None).await;
    assert_eq!(
        code(&whole),
        1,
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole_report = json(&std::fs::read(&whole_path).unwrap());
    let whole_requests = split_requests(tree.standin.take_requests());
    let whole_targets = targets(&whole_report);
    eprintln!(
        "whole run: {} (requests: {} listings, {:?})",
        whole_report["seconds"],
        whole_requests.listings.len(),
        whole_requests
            .other
            .iter()
            .fold(BTreeMap::<String, u64>::new(), |mut m, ((h, p), n)| {
                *m.entry(format!("{h} {}", p.split(' ').next().unwrap()))
                    .or_default() += n;
                m
            })
    );
    let counts = &whole_report["plan"]["counts"];
    assert_eq!(counts["tag_move"], 1, "{counts}");
    assert!(counts["copy"].as_u64().unwrap() > 50, "{counts}");
    assert!(counts["tag_only"].as_u64().unwrap() > 50, "{counts}");
    assert_eq!(
        whole_requests.listings.len(),
        tree.destinations.len(),
        "every destination listed once"
    );

    // Three shards, one after another (each its own process).
    let mut shard_files = Vec::new();
    let mut union = Targets::new();
    let mut listed_by: BTreeMap<String, usize> = BTreeMap::new();
    let mut codes = Vec::new();
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for index in 0..3 {
        let path = dir.path().join(format!("shard-{index}.json"));
        let output = run(path.clone(), Some(format!("{index}/3"))).await;
        codes.push(code(&output));
        assert!(
            code(&output) <= 1,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json(&std::fs::read(&path).unwrap());
        assert_eq!(
            report["shard"],
            serde_json::json!({"index": index, "count": 3})
        );
        let shard_targets = targets(&report);
        assert!(!shard_targets.is_empty(), "shard {index} has no work");
        for (key, value) in shard_targets {
            assert!(
                union.insert(key.clone(), value).is_none(),
                "{key:?} in two shards"
            );
        }
        for class in ["done", "copy", "tag_only", "tag_move", "lost"] {
            *sums.entry(class).or_default() += report["plan"]["counts"][class].as_u64().unwrap();
        }
        // The repositories a shard lists are the ones it plans for.
        let requests = split_requests(tree.standin.take_requests());
        assert!(!requests.listings.is_empty());
        for repo in requests.listings.keys() {
            assert!(
                listed_by.insert(repo.clone(), index).is_none(),
                "{repo} listed by shard {} and shard {index}",
                listed_by[repo]
            );
        }
        shard_files.push(path);
    }
    assert_eq!(
        union, whole_targets,
        "the shards plan exactly the run's work"
    );
    let whole_listed: BTreeSet<&String> = whole_requests.listings.keys().collect();
    let shard_listed: BTreeSet<&String> = listed_by.keys().collect();
    assert_eq!(shard_listed, whole_listed);
    for class in ["done", "copy", "tag_only", "tag_move", "lost"] {
        assert_eq!(sums[class], counts[class].as_u64().unwrap(), "{class}");
    }
    // Exactly one shard holds the tag move.
    assert_eq!(codes.iter().filter(|c| **c == 1).count(), 1, "{codes:?}");

    // Merged: the run's counts, the worst exit code.
    let mut args = vec!["report", "merge", "--shards", "3", "--format", "json"];
    args.extend(shard_files.iter().map(|p| p.to_str().unwrap()));
    let merged = promoter(&args).await;
    assert_eq!(
        code(&merged),
        1,
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let merged = json(&merged.stdout);
    assert_eq!(merged["plan"]["counts"], *counts);
    assert_eq!(targets(&merged), whole_targets);
    assert_eq!(
        merged["diagnostics"].as_array().unwrap().len(),
        whole_report["diagnostics"].as_array().unwrap().len()
    );
    // Human output of the same merge, and a missing shard refused.
    let mut args = vec!["report", "merge", "--format", "human"];
    args.extend(shard_files.iter().map(|p| p.to_str().unwrap()));
    let human = promoter(&args).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("merged 3 shard report(s): 0/3"), "{text}");
    assert!(
        text.contains("tag-move") || text.contains("already points at"),
        "{text}"
    );
    let incomplete = promoter(&[
        "report",
        "merge",
        "--shards",
        "3",
        shard_files[0].to_str().unwrap(),
    ])
    .await;
    assert_eq!(code(&incomplete), 2);
    assert!(String::from_utf8_lossy(&incomplete.stderr).contains("missing 1/3, 2/3"));
}

/// Peak RSS in KiB and wall time of `promoter run` under `/usr/bin/time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/scale.sh runs it on a release build"]
async fn bench_steady_state() {
    let latency: u64 = std::env::var("STANDIN_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let concurrency = std::env::var("CONCURRENCY").unwrap_or_else(|_| "16".into());
    // SIGNED=1: every digest carries its `.sig` tag (a few missing), and
    // the run signs (a dry run: it reports the gaps).
    let signed = std::env::var_os("SIGNED").is_some();
    let state = if signed { State::Signed } else { State::Steady };
    let tree = tree(Duration::from_millis(latency), state).await;
    let edges = tree.wants.edges();
    let time_file = tempfile::NamedTempFile::new().unwrap();
    let key = signing_key();
    let mut signing = vec!["--sign=false"];
    if signed {
        signing = vec!["--signing-key", key.path().to_str().unwrap()];
    }
    let started = Instant::now();
    let output = tokio::process::Command::new("/usr/bin/time")
        .args(["-f", "%M %e", "-o", time_file.path().to_str().unwrap()])
        .arg(promoter_bin())
        .args([
            "run",
            "--thin-manifest-dir",
            tree.path.to_str().unwrap(),
            "--format",
            "json",
            "--concurrency",
            &concurrency,
        ])
        .args(&signing)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .await
        .unwrap();
    let wall = started.elapsed();
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output.stdout);
    assert_eq!(report["plan"]["counts"]["done"], edges);
    let requests = tree.standin.take_requests();
    let total: u64 = requests.values().sum();
    let split = split_requests(requests);
    assert_steady_state_requests(&tree, &split);
    let time = std::fs::read_to_string(time_file.path()).unwrap();
    let mut fields = time.split_whitespace();
    let peak_kib: u64 = fields.next().unwrap().parse().unwrap();
    println!(
        "scale bench: {} destination repositories on {} hosts, {} edges, latency {latency} ms, concurrency {concurrency}, {}",
        tree.destinations.len(),
        tree.destination_hosts.len(),
        edges,
        if signed {
            format!(
                "signed ({} signature tags missing, {} reported)",
                tree.unsigned.len(),
                report["plan"]["signatures"].as_array().map_or(0, |w| w
                    .iter()
                    .map(|w| w["to"].as_array().map_or(0, Vec::len))
                    .sum::<usize>())
            )
        } else {
            "unsigned".to_owned()
        }
    );
    println!(
        "scale bench: requests {total} ({} tags/list, {} other), peak RSS {:.1} MB, wall {:.2} s",
        split.listings.values().sum::<u64>(),
        split.other.values().sum::<u64>(),
        peak_kib as f64 / 1024.0,
        wall.as_secs_f64()
    );
    println!("scale bench: phases {}", report["seconds"]);

    // With SHARDS=N, each shard of N in turn, one process each.
    let shards: u32 = std::env::var("SHARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for index in 0..shards {
        let shard = format!("{index}/{shards}");
        let started = Instant::now();
        let output = tokio::process::Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o", time_file.path().to_str().unwrap()])
            .arg(promoter_bin())
            .args(["run", "--thin-manifest-dir", tree.path.to_str().unwrap()])
            .args(["--format", "json", "--concurrency", &concurrency])
            .args(["--shard", &shard])
            .env_remove("GITHUB_ACTIONS")
            .output()
            .await
            .unwrap();
        let wall = started.elapsed();
        assert_eq!(code(&output), 0);
        let report = json(&output.stdout);
        let listings: u64 = split_requests(tree.standin.take_requests())
            .listings
            .values()
            .sum();
        let peak_kib: u64 = std::fs::read_to_string(time_file.path())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        println!(
            "scale bench: shard {shard}: {} edges, {listings} tags/list, peak RSS {:.1} MB, wall {:.2} s",
            report["plan"]["counts"]["done"],
            peak_kib as f64 / 1024.0,
            wall.as_secs_f64()
        );
    }
}

/// Serves the rewritten corpus for manual runs: prints the tree's path and
/// keeps the stand-in up for `STANDIN_SERVE_SECS` (default 600) seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual: serves the stand-in for runs by hand"]
async fn serve_standin() {
    let latency: u64 = std::env::var("STANDIN_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let state = if std::env::var("STANDIN_PARTIAL").is_ok() {
        State::Partial
    } else {
        State::Steady
    };
    let secs: u64 = std::env::var("STANDIN_SERVE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let tree = tree(Duration::from_millis(latency), state).await;
    println!("tree: {}", tree.path.display());
    tokio::time::sleep(Duration::from_secs(secs)).await;
}
