//! Sharded promotion against real `docker-registry` servers on 127.0.0.1:
//! three shards run in parallel (three processes) leave the destinations as
//! one unsharded run leaves its own pair, no destination repository is
//! written by two shards (the registries' access logs against the shards'
//! reports), and `report merge` gives the single run's counts.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use support::image::TestImage;
use support::promote::{
    ManifestImage, catalog, from_promoter, manifest_yaml, push_images, resolve, writes,
};
use support::server::{Mode, RegistryServer};

const IMAGES: u64 = 12;

fn promoter(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promoter"));
    command
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL");
    command
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn check(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `host/repo` of every destination a report's plan writes.
fn planned_repos(report: &serde_json::Value) -> BTreeSet<String> {
    report["plan"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["targets"].as_array().unwrap().iter())
        .map(|t| t["destination"].as_str().unwrap().to_owned())
        .collect()
}

/// `host/repo` of every repository the promoter wrote in `server`, from its
/// access log, with the number of writes.
fn written_repos(server: &RegistryServer) -> BTreeMap<String, usize> {
    let log = from_promoter(server.requests());
    let mut repos = BTreeMap::new();
    for request in writes(&log) {
        let path = request.uri.trim_start_matches("/v2/");
        let repo = ["/blobs/", "/manifests/"]
            .iter()
            .find_map(|marker| path.split_once(marker).map(|(r, _)| r))
            .unwrap_or_else(|| panic!("unexpected write {}", request.uri));
        *repos.entry(format!("{}/{repo}", server.host)).or_insert(0) += 1;
    }
    repos
}

/// Every repository of `server` with its `v1` and `stable` digests.
fn state(server: &RegistryServer) -> BTreeMap<String, (Option<String>, Option<String>)> {
    catalog(server)
        .into_iter()
        .map(|repo| {
            let v1 = resolve(server, &repo, "v1");
            let stable = resolve(server, &repo, "stable");
            (repo, (v1, stable))
        })
        .collect()
}

#[test]
fn three_shards_in_parallel_leave_one_runs_state() {
    let source = RegistryServer::start(Mode::Plain);
    let images: Vec<TestImage> = (0..IMAGES)
        .map(|seed| TestImage::build_sized(seed, 4096, [8192, 6144]))
        .collect();
    let names: Vec<String> = (0..IMAGES).map(|i| format!("staging/app{i}")).collect();
    let pushes: Vec<(&str, &TestImage, &str)> = names
        .iter()
        .zip(&images)
        .map(|(name, image)| (name.as_str(), image, "build"))
        .collect();
    push_images(&source, &pushes);
    let manifest_images: Vec<ManifestImage> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            ManifestImage::one(
                &format!("app{i}"),
                &image.index.digest().to_string(),
                &["v1", "stable"],
            )
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let write_manifest = |name: &str, destinations: &[&RegistryServer]| {
        let destinations: Vec<String> = destinations
            .iter()
            .map(|d| format!("{}/prod", d.host))
            .collect();
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            manifest_yaml(
                &format!("{}/staging", source.host),
                &destinations,
                &manifest_images,
            ),
        )
        .unwrap();
        path
    };

    // Three shards, in parallel, into one pair of registries.
    let sharded = [
        RegistryServer::start(Mode::Plain),
        RegistryServer::start(Mode::Plain),
    ];
    let manifest = write_manifest("sharded.yaml", &[&sharded[0], &sharded[1]]);
    let reports: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("shard-{i}.json")))
        .collect();
    let children: Vec<_> = (0..3)
        .map(|i| {
            promoter(&[
                "run",
                "--manifest",
                manifest.to_str().unwrap(),
                "--confirm",
                "--format",
                "json",
                "--shard",
                &format!("{i}/3"),
                "--report",
                reports[i].to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        check(&child.wait_with_output().unwrap());
    }

    // One unsharded run into another pair.
    let single = [
        RegistryServer::start(Mode::Plain),
        RegistryServer::start(Mode::Plain),
    ];
    let manifest = write_manifest("single.yaml", &[&single[0], &single[1]]);
    let single_report = dir.path().join("single.json");
    check(
        &promoter(&[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--confirm",
            "--format",
            "json",
            "--report",
            single_report.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );

    // The same state: every image with both tags, in both mirrors.
    for (a, b) in sharded.iter().zip(&single) {
        let (a, b) = (state(a), state(b));
        assert_eq!(a.len(), IMAGES as usize);
        assert!(a.values().all(|(v1, stable)| v1.is_some() && v1 == stable));
        assert_eq!(a, b);
    }

    // No repository written by two shards: each written repository is in
    // exactly one shard's plan, and every planned one was written.
    let planned: Vec<BTreeSet<String>> = reports.iter().map(|r| planned_repos(&json(r))).collect();
    let mut owner: BTreeMap<&String, usize> = BTreeMap::new();
    for (shard, repos) in planned.iter().enumerate() {
        for repo in repos {
            assert!(
                owner.insert(repo, shard).is_none(),
                "{repo} planned by shards {} and {shard}",
                owner[repo]
            );
        }
    }
    assert!(
        planned.iter().filter(|p| !p.is_empty()).count() >= 2,
        "the work is spread: {planned:?}"
    );
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    for server in &sharded {
        written.extend(written_repos(server));
    }
    let written_set: BTreeSet<&String> = written.keys().collect();
    let owned: BTreeSet<&String> = owner.keys().copied().collect();
    assert_eq!(written_set, owned);
    // Each repository got exactly the writes one run gives it.
    let mut single_written: BTreeMap<String, usize> = BTreeMap::new();
    for server in &single {
        single_written.extend(written_repos(server));
    }
    let per_repo = |m: &BTreeMap<String, usize>| -> Vec<usize> {
        let mut counts: Vec<usize> = m.values().copied().collect();
        counts.sort_unstable();
        counts
    };
    assert_eq!(per_repo(&written), per_repo(&single_written));

    // The merged report: the single run's counts, exit 0.
    let mut args = vec!["report", "merge", "--shards", "3", "--format", "json"];
    args.extend(reports.iter().map(|r| r.to_str().unwrap()));
    let merged = promoter(&args).output().unwrap();
    check(&merged);
    let merged: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    let single = json(&single_report);
    assert_eq!(merged["plan"]["counts"], single["plan"]["counts"]);
    assert_eq!(merged["plan"]["counts"]["copy"], IMAGES * 2 * 2);
    assert_eq!(merged["promoted"], single["promoted"]);
    for key in ["manifests_pushed", "tags_pushed", "blobs_uploaded"] {
        assert_eq!(merged["copy"][key], single["copy"][key], "{key}");
    }
}
