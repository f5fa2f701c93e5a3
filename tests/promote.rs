//! `promoter run` end to end against real `docker-registry` instances on
//! 127.0.0.1: the acceptance tests of issue 4. The binary runs as a user
//! would run it; the checks read the registries back with skopeo and with
//! plain HTTP, and count requests from the registries' own logs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::image::{TestImage, sha256};
use support::promote::{
    ManifestImage, catalog, from_promoter, http, line_of, manifest_yaml, push_images, resolve,
    writes,
};
use support::server::{LoggedRequest, Mode, RegistryServer};
use support::skopeo;

const BIN: &str = env!("CARGO_BIN_EXE_promoter");

/// Source repositories live under this prefix, destinations under `prod`.
const SOURCE_PREFIX: &str = "staging";
const DEST_PREFIX: &str = "prod";

/// One source registry and some destinations, plus a scratch directory for
/// manifests.
struct Fleet {
    source: RegistryServer,
    destinations: Vec<RegistryServer>,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn start(destinations: usize) -> Fleet {
        Fleet {
            source: RegistryServer::start(Mode::Plain),
            destinations: (0..destinations)
                .map(|_| RegistryServer::start(Mode::Plain))
                .collect(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a plain manifest promoting `images` from the source to every
    /// destination; returns its path and text.
    fn manifest(&self, images: &[ManifestImage]) -> (PathBuf, String) {
        let destinations: Vec<String> = self
            .destinations
            .iter()
            .map(|d| format!("{}/{DEST_PREFIX}", d.host))
            .collect();
        let yaml = manifest_yaml(
            &format!("{}/{SOURCE_PREFIX}", self.source.host),
            &destinations,
            images,
        );
        let path = self.dir.path().join("promoter.yaml");
        std::fs::write(&path, &yaml).unwrap();
        (path, yaml)
    }

    /// Pushes `(image name, image)` to the source under `staging/<name>`.
    fn seed(&self, images: &[(&str, &TestImage)]) {
        let repos: Vec<String> = images
            .iter()
            .map(|(name, _)| format!("{SOURCE_PREFIX}/{name}"))
            .collect();
        let pushes: Vec<(&str, &TestImage, &str)> = images
            .iter()
            .zip(&repos)
            .enumerate()
            .map(|(i, ((_, image), repo))| (repo.as_str(), *image, SEED_TAGS[i]))
            .collect();
        push_images(&self.source, &pushes);
    }

    fn marks(&self) -> Vec<usize> {
        self.all().map(|s| s.log_mark()).collect()
    }

    fn all(&self) -> impl Iterator<Item = &RegistryServer> {
        std::iter::once(&self.source).chain(&self.destinations)
    }

    /// What promoter sent to each registry (source first) since `marks`.
    fn promoter_requests(&self, marks: &[usize]) -> Vec<Vec<LoggedRequest>> {
        self.all()
            .zip(marks)
            .map(|(s, m)| from_promoter(s.requests_since(*m)))
            .collect()
    }
}

/// Source tags for seeded images (the manifests name digests; the source
/// tags only keep the images reachable).
const SEED_TAGS: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];

/// Exit code, parsed JSON report and stderr of one `promoter run`.
struct RunOutput {
    code: i32,
    json: Value,
    stderr: String,
}

fn promoter_run(input: &[&str], confirm: bool) -> RunOutput {
    let mut command = Command::new(BIN);
    command.arg("run").args(input).args(["--format", "json"]);
    if confirm {
        command.arg("--confirm");
    }
    let out = command.output().expect("run promoter");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("promoter run did not print one JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    assert_eq!(json["schema_version"], 1, "the run report names its shape");
    RunOutput {
        code: out.status.code().expect("promoter exited normally"),
        json,
        stderr,
    }
}

fn run_manifest(path: &Path, confirm: bool) -> RunOutput {
    promoter_run(&["--manifest", path.to_str().unwrap()], confirm)
}

fn counts(out: &RunOutput) -> BTreeMap<String, u64> {
    out.json["plan"]["counts"]
        .as_object()
        .expect("plan.counts")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn diagnostics(out: &RunOutput) -> Vec<Value> {
    out.json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .clone()
}

/// Every destination holds `image` under `name:tag`, byte for byte as the
/// source (read with skopeo).
fn assert_promoted(fleet: &Fleet, name: &str, tag: &str, image: &TestImage) {
    for dest in &fleet.destinations {
        let raw = skopeo::inspect_raw(dest, &format!("{DEST_PREFIX}/{name}:{tag}"));
        assert_eq!(
            sha256(&raw),
            image.index.digest,
            "{}/{DEST_PREFIX}/{name}:{tag} is not the source image",
            dest.host
        );
        assert_eq!(raw, image.index.bytes.as_ref());
    }
}

/// Walks the image `reference` resolves to in `repo` with plain HTTP: the
/// index, every child manifest and every blob must be there, with the
/// digests and sizes the manifests name. Returns the index digest.
fn assert_complete(server: &RegistryServer, repo: &str, reference: &str) -> String {
    let get = |path: String| {
        let r = http("GET", &server.host, &path);
        assert_eq!(r.status, 200, "GET {path} on {}", server.host);
        r.body
    };
    let index = get(format!("/v2/{repo}/manifests/{reference}"));
    let index_json: Value = serde_json::from_slice(&index).unwrap();
    let children = index_json["manifests"].as_array().expect("an index");
    assert!(!children.is_empty());
    for child in children {
        let digest = child["digest"].as_str().unwrap();
        let bytes = get(format!("/v2/{repo}/manifests/{digest}"));
        assert_eq!(sha256(&bytes), digest, "child manifest content");
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        for blob in layers.iter().chain([&manifest["config"]]) {
            let digest = blob["digest"].as_str().unwrap();
            let head = http("HEAD", &server.host, &format!("/v2/{repo}/blobs/{digest}"));
            assert_eq!(
                head.status, 200,
                "{repo}:{reference} on {} names blob {digest}, which is missing",
                server.host
            );
            assert_eq!(
                head.header("content-length")
                    .and_then(|l| l.parse::<u64>().ok()),
                blob["size"].as_u64(),
                "size of blob {digest}"
            );
        }
    }
    sha256(&index)
}

/// Images for the first two tests: `app` holds two images sharing a base
/// layer (B re-uses A's seed and base size) and a digest-only one;
/// `tools/echo` one more.
struct Set {
    a: TestImage,
    b: TestImage,
    c: TestImage,
    d: TestImage,
}

impl Set {
    fn build() -> Set {
        Set {
            a: TestImage::build_sized(1, 256 << 10, [512 << 10, 384 << 10]),
            b: TestImage::build_sized(1, 256 << 10, [300 << 10, 200 << 10]),
            c: TestImage::build_sized(2, 128 << 10, [256 << 10, 256 << 10]),
            d: TestImage::build_sized(3, 64 << 10, [64 << 10, 96 << 10]),
        }
    }

    fn manifest(&self) -> Vec<ManifestImage> {
        vec![
            ManifestImage {
                name: "app".into(),
                dmap: vec![
                    (
                        self.a.index.digest.clone(),
                        vec!["v1.0".into(), "v1".into()],
                    ),
                    (self.b.index.digest.clone(), vec!["v1.1".into()]),
                    (self.d.index.digest.clone(), vec![]),
                ],
            },
            ManifestImage::one("tools/echo", &self.c.index.digest, &["v0.3"]),
        ]
    }

    fn seed(&self, fleet: &Fleet) {
        fleet.seed(&[
            ("app", &self.a),
            ("app", &self.b),
            ("app", &self.d),
            ("tools/echo", &self.c),
        ]);
    }

    /// Distinct blobs per destination repository.
    fn blobs_per_repo(&self) -> usize {
        let app: BTreeSet<&str> = [&self.a, &self.b, &self.d]
            .iter()
            .flat_map(|i| i.blobs.iter().map(|b| b.digest.as_str()))
            .collect();
        app.len() + self.c.blobs.len()
    }

    /// The manifest PUTs one destination gets, sorted.
    fn manifest_puts(&self) -> Vec<String> {
        let children = |repo: &str, image: &TestImage| {
            image
                .manifests
                .iter()
                .map(|m| format!("/v2/prod/{repo}/manifests/{}", m.digest))
                .collect::<Vec<_>>()
        };
        let mut puts = [
            children("app", &self.a),
            children("app", &self.b),
            children("app", &self.d),
            children("tools/echo", &self.c),
        ]
        .concat();
        for tag in ["v1.0", "v1", "v1.1"] {
            puts.push(format!("/v2/prod/app/manifests/{tag}"));
        }
        puts.push(format!("/v2/prod/app/manifests/{}", self.d.index.digest));
        puts.push("/v2/prod/tools/echo/manifests/v0.3".into());
        puts.sort_unstable();
        puts
    }

    fn assert_everywhere(&self, fleet: &Fleet) {
        assert_promoted(fleet, "app", "v1.0", &self.a);
        assert_promoted(fleet, "app", "v1", &self.a);
        assert_promoted(fleet, "app", "v1.1", &self.b);
        assert_promoted(fleet, "tools/echo", "v0.3", &self.c);
        for dest in &fleet.destinations {
            assert_eq!(
                assert_complete(dest, "prod/app", &self.d.index.digest),
                self.d.index.digest,
                "digest-only promotion"
            );
        }
    }
}

#[test]
fn dry_run_writes_nothing_and_confirm_copies_every_tag_byte_for_byte() {
    let fleet = Fleet::start(3);
    let set = Set::build();
    // A and B share their base layer; the test relies on it.
    assert_eq!(set.a.blobs[0].digest, set.b.blobs[0].digest);
    set.seed(&fleet);
    let (path, _) = fleet.manifest(&set.manifest());

    let marks = fleet.marks();
    let dry = run_manifest(&path, false);
    assert_eq!(dry.code, 0, "dry run: {}", dry.stderr);
    assert_eq!(dry.json["confirm"], false);
    assert!(dry.json["copy"].is_null(), "a dry run copies nothing");
    let c = counts(&dry);
    // 5 edges (4 tags, 1 digest-only) x 3 destinations to copy.
    assert_eq!((c["copy"], c["done"], c["tag_only"]), (15, 0, 0), "{c:?}");
    for (server, requests) in fleet.all().zip(fleet.promoter_requests(&marks)) {
        assert!(
            writes(&requests).is_empty(),
            "the dry run wrote to {}: {:?}",
            server.host,
            writes(&requests)
        );
    }
    for dest in &fleet.destinations {
        assert_eq!(
            catalog(dest),
            Vec::<String>::new(),
            "{} is not empty",
            dest.host
        );
    }

    let marks = fleet.marks();
    let run = run_manifest(&path, true);
    assert_eq!(run.code, 0, "run --confirm: {}\n{}", run.stderr, run.json);
    assert_eq!(run.json["failed"], 0);
    assert_eq!(run.json["promoted"], 12);
    set.assert_everywhere(&fleet);

    // Each blob crosses the network once per destination repository: the
    // base layer A and B share is uploaded once, nothing is uploaded twice.
    let requests = fleet.promoter_requests(&marks);
    for (dest, log) in fleet.destinations.iter().zip(&requests[1..]) {
        let uploads = log
            .iter()
            .filter(|r| r.method == "PUT" && r.uri.contains("/blobs/uploads/"))
            .count();
        assert_eq!(
            uploads,
            set.blobs_per_repo(),
            "blob uploads into {}",
            dest.host
        );
    }
    assert_eq!(
        run.json["copy"]["blobs_uploaded"].as_u64(),
        Some(3 * set.blobs_per_repo() as u64)
    );
    // Each manifest is written once: child manifests by digest, a tagged
    // top-level manifest only under its tags (a PUT by tag stores it), the
    // digest-only one by digest.
    for (dest, log) in fleet.destinations.iter().zip(&requests[1..]) {
        let mut puts: Vec<&str> = log
            .iter()
            .filter(|r| r.method == "PUT" && r.uri.contains("/manifests/"))
            .map(|r| r.uri.as_str())
            .collect();
        puts.sort_unstable();
        assert_eq!(
            puts,
            set.manifest_puts(),
            "manifest PUTs into {}",
            dest.host
        );
    }
    assert_eq!(run.json["copy"]["manifests_pushed"].as_u64(), Some(3 * 12));
}

/// What a no-op run may ask one destination: per repository, one tag
/// listing and one manifest HEAD for each reference in the set.
type Inventory = BTreeMap<String, BTreeSet<String>>;

/// The requests of a no-op run: on each destination, exactly one tag
/// listing per repository, then exactly one HEAD per reference whose digest
/// the listing cannot settle (distribution 2.8 lists tag names only, so each
/// tag present is one HEAD; a digest-only entry is one HEAD by digest), and
/// at most one `/v2/` ping; nothing to the source but a ping. No manifest
/// GET, no blob request, no write.
fn assert_inventory_minimum(fleet: &Fleet, marks: &[usize], expected: &[Inventory]) {
    let requests = fleet.promoter_requests(marks);
    let source = &requests[0];
    assert!(
        source.iter().all(|r| r.method == "GET" && r.uri == "/v2/"),
        "a no-op run sent requests to the source: {source:?}"
    );
    for ((dest, log), expected) in fleet.destinations.iter().zip(&requests[1..]).zip(expected) {
        let pings = log.iter().filter(|r| r.uri == "/v2/").count();
        assert!(pings <= 1, "{pings} pings to {}", dest.host);
        let mut listed = BTreeMap::<String, usize>::new();
        let mut headed = BTreeMap::<(String, String), usize>::new();
        for r in log.iter().filter(|r| r.uri != "/v2/") {
            let path = r.uri.strip_prefix("/v2/").unwrap_or(&r.uri);
            let path = path.split('?').next().unwrap();
            match (
                r.method.as_str(),
                path.strip_suffix("/tags/list"),
                path.rsplit_once("/manifests/"),
            ) {
                ("GET", Some(repo), _) => *listed.entry(repo.to_string()).or_default() += 1,
                ("HEAD", None, Some((repo, reference))) => {
                    *headed
                        .entry((repo.to_string(), reference.to_string()))
                        .or_default() += 1
                }
                _ => panic!(
                    "a no-op run sent {} {} to {} (only tag listings and manifest HEADs expected)",
                    r.method, r.uri, dest.host
                ),
            }
        }
        let expected_lists: BTreeMap<String, usize> =
            expected.keys().map(|r| (r.clone(), 1)).collect();
        assert_eq!(listed, expected_lists, "tag listings on {}", dest.host);
        let expected_heads: BTreeMap<(String, String), usize> = expected
            .iter()
            .flat_map(|(repo, refs)| refs.iter().map(move |r| ((repo.clone(), r.clone()), 1)))
            .collect();
        assert_eq!(headed, expected_heads, "manifest HEADs on {}", dest.host);
        assert_eq!(
            log.len(),
            expected_lists.len() + expected_heads.len() + pings,
            "requests to {}",
            dest.host
        );
    }
}

#[test]
fn a_second_run_sends_only_the_inventory_minimum() {
    let fleet = Fleet::start(3);
    let set = Set::build();
    set.seed(&fleet);
    let (path, _) = fleet.manifest(&set.manifest());
    let first = run_manifest(&path, true);
    assert_eq!(first.code, 0, "first run: {}\n{}", first.stderr, first.json);

    let marks = fleet.marks();
    let second = run_manifest(&path, true);
    assert_eq!(second.code, 0, "second run: {}", second.stderr);
    let c = counts(&second);
    let nothing: BTreeMap<String, u64> = [
        ("copy", 0),
        ("done", 15),
        ("lost", 0),
        ("tag_move", 0),
        ("tag_only", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(c, nothing);
    let copy = &second.json["copy"];
    assert!(
        copy.is_null() || copy["blobs_uploaded"] == 0,
        "a no-op run uploaded: {copy}"
    );
    assert_eq!(second.json["plan"]["images"], serde_json::json!([]));
    let inventory: Inventory = [
        (
            "prod/app",
            vec!["v1.0", "v1", "v1.1", set.d.index.digest.as_str()],
        ),
        ("prod/tools/echo", vec!["v0.3"]),
    ]
    .into_iter()
    .map(|(repo, refs)| {
        (
            repo.to_string(),
            refs.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    assert_inventory_minimum(&fleet, &marks, &vec![inventory; 3]);
    set.assert_everywhere(&fleet);
}

/// Tags a destination holds that no manifest names cannot change the plan:
/// the no-op inventory must not spend a HEAD on each of them (k8s.io
/// repositories hold many such tags, on 20+ mirrors).
#[test]
fn a_no_op_run_does_not_head_tags_no_manifest_names() {
    let fleet = Fleet::start(2);
    let set = Set::build();
    set.seed(&fleet);
    let (path, _) = fleet.manifest(&set.manifest());
    let first = run_manifest(&path, true);
    assert_eq!(first.code, 0, "first run: {}\n{}", first.stderr, first.json);
    let unrelated = TestImage::build_sized(30, 4096, [4096, 4096]);
    for dest in &fleet.destinations {
        push_images(
            dest,
            &[
                ("prod/app", &unrelated, "legacy-1"),
                ("prod/app", &unrelated, "legacy-2"),
            ],
        );
    }

    let marks = fleet.marks();
    let second = run_manifest(&path, true);
    assert_eq!(second.code, 0, "second run: {}", second.stderr);
    assert_eq!(counts(&second)["done"], 10);
    let inventory: Inventory = [
        (
            "prod/app",
            vec!["v1.0", "v1", "v1.1", set.d.index.digest.as_str()],
        ),
        ("prod/tools/echo", vec!["v0.3"]),
    ]
    .into_iter()
    .map(|(repo, refs)| {
        (
            repo.to_string(),
            refs.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    assert_inventory_minimum(&fleet, &marks, &vec![inventory; 2]);
}

#[test]
fn a_run_killed_mid_copy_leaves_only_complete_tags_and_the_next_run_converges() {
    let fleet = Fleet::start(3);
    // Five images of 12-16 MiB: about 200 MiB to write, so the copy takes
    // long enough to be interrupted.
    let images: Vec<TestImage> = (0..5)
        .map(|i| TestImage::build_sized(100 + i, 4 << 20, [(6 + i as usize) << 20, 5 << 20]))
        .collect();
    let names = ["big/one", "big/two", "big/one", "big/three", "big/two"];
    let tags = ["v1", "v1", "v2", "v1", "v2"];
    fleet.seed(
        &names
            .iter()
            .zip(&images)
            .map(|(n, i)| (*n, i))
            .collect::<Vec<_>>(),
    );
    let manifest: Vec<ManifestImage> = names
        .iter()
        .zip(&images)
        .zip(tags)
        .map(|((n, i), t)| ManifestImage::one(n, &i.index.digest, &[t, &format!("{t}-extra")]))
        .collect();
    let (path, _) = fleet.manifest(&manifest);

    let mut child = Command::new(BIN)
        .args(["run", "--confirm", "--manifest", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start promoter");
    // Kill as soon as any destination received its first manifest: blobs
    // and manifests are in flight everywhere else.
    let started = Instant::now();
    loop {
        let manifest_written = fleet.destinations.iter().any(|d| {
            d.requests_now()
                .iter()
                .any(|r| r.method == "PUT" && r.uri.contains("/manifests/"))
        });
        if manifest_written {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "promoter exited before writing any manifest"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no manifest written within 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL promoter");
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "promoter was killed, not finished");

    // Every tag that exists resolves to the right, complete image.
    let mut present = 0;
    let mut missing = 0;
    for dest in &fleet.destinations {
        for ((name, image), tag) in names.iter().zip(&images).zip(tags) {
            let repo = format!("{DEST_PREFIX}/{name}");
            for tag in [tag.to_string(), format!("{tag}-extra")] {
                match resolve(dest, &repo, &tag) {
                    Some(digest) => {
                        assert_eq!(digest, image.index.digest, "{repo}:{tag} on {}", dest.host);
                        assert_complete(dest, &repo, &tag);
                        present += 1;
                    }
                    None => missing += 1,
                }
            }
        }
    }
    assert!(
        missing > 0,
        "the kill came too late: every tag was already there ({present})"
    );

    let rerun = run_manifest(&path, true);
    assert_eq!(rerun.code, 0, "re-run: {}\n{}", rerun.stderr, rerun.json);
    for ((name, image), tag) in names.iter().zip(&images).zip(tags) {
        assert_promoted(&fleet, name, tag, image);
        assert_promoted(&fleet, name, &format!("{tag}-extra"), image);
        for dest in &fleet.destinations {
            assert_complete(dest, &format!("{DEST_PREFIX}/{name}"), tag);
        }
    }
}

/// Finds the one diagnostic with `code`.
fn find_diagnostic(out: &RunOutput, code: &str) -> Value {
    let found: Vec<Value> = diagnostics(out)
        .into_iter()
        .filter(|d| d["code"] == code)
        .collect();
    assert_eq!(found.len(), 1, "one {code} expected: {}", out.json);
    found.into_iter().next().unwrap()
}

#[test]
fn a_tag_move_is_refused_at_its_line_and_the_rest_is_promoted() {
    let fleet = Fleet::start(3);
    let wanted = TestImage::build_sized(10, 64 << 10, [64 << 10, 64 << 10]);
    let old = TestImage::build_sized(11, 64 << 10, [64 << 10, 64 << 10]);
    let other = TestImage::build_sized(12, 64 << 10, [64 << 10, 64 << 10]);
    fleet.seed(&[("app", &wanted), ("other", &other)]);
    // The first destination already has `app:v1`, pointing elsewhere.
    push_images(&fleet.destinations[0], &[("prod/app", &old, "v1")]);
    let (path, yaml) = fleet.manifest(&[
        ManifestImage::one("app", &wanted.index.digest, &["v1"]),
        ManifestImage::one("other", &other.index.digest, &["v2"]),
    ]);

    let marks = fleet.marks();
    let run = run_manifest(&path, true);
    assert_eq!(
        run.code, 1,
        "a refused tag move fails the run: {}",
        run.json
    );
    let p101 = find_diagnostic(&run, "P101");
    assert_eq!(p101["severity"], "error");
    let at = &p101["location"];
    assert!(
        at["file"].as_str().unwrap().ends_with("promoter.yaml"),
        "{p101}"
    );
    assert_eq!(at["line"], line_of(&yaml, &wanted.index.digest), "{p101}");

    // The refused tag is untouched and was never written.
    let dest0 = &fleet.destinations[0];
    assert_eq!(
        resolve(dest0, "prod/app", "v1").as_deref(),
        Some(old.index.digest.as_str())
    );
    let dest0_log = &fleet.promoter_requests(&marks)[1];
    assert!(
        !dest0_log
            .iter()
            .any(|r| r.method == "PUT" && r.uri == "/v2/prod/app/manifests/v1"),
        "the refused tag was written"
    );
    // Everything else is promoted: the same tag where it is free, and the
    // other image everywhere.
    assert_promoted(&fleet, "other", "v2", &other);
    for dest in &fleet.destinations[1..] {
        assert_eq!(
            resolve(dest, "prod/app", "v1").as_deref(),
            Some(wanted.index.digest.as_str()),
            "app:v1 on {}",
            dest.host
        );
    }
}

#[test]
fn a_lost_source_is_reported_at_its_digest_line_and_the_rest_is_promoted() {
    let fleet = Fleet::start(3);
    let good = TestImage::build_sized(20, 64 << 10, [64 << 10, 64 << 10]);
    let lost = TestImage::build_sized(21, 64 << 10, [64 << 10, 64 << 10]);
    let other = TestImage::build_sized(22, 64 << 10, [64 << 10, 64 << 10]);
    // `lost` is never pushed to the source.
    fleet.seed(&[("app", &good), ("other", &other)]);
    let (path, yaml) = fleet.manifest(&[
        ManifestImage {
            name: "app".into(),
            dmap: vec![
                (good.index.digest.clone(), vec!["v1".into()]),
                (lost.index.digest.clone(), vec!["v9".into()]),
            ],
        },
        ManifestImage::one("other", &other.index.digest, &["v2"]),
    ]);

    let run = run_manifest(&path, true);
    assert_eq!(run.code, 1, "a lost source fails the run: {}", run.json);
    let p102 = find_diagnostic(&run, "P102");
    assert_eq!(p102["severity"], "error");
    let at = &p102["location"];
    assert!(
        at["file"].as_str().unwrap().ends_with("promoter.yaml"),
        "{p102}"
    );
    assert_eq!(at["line"], line_of(&yaml, &lost.index.digest), "{p102}");
    assert_eq!(counts(&run)["lost"], 3, "one lost edge per destination");

    assert_promoted(&fleet, "app", "v1", &good);
    assert_promoted(&fleet, "other", "v2", &other);
    for dest in &fleet.destinations {
        assert_eq!(resolve(dest, "prod/app", "v9"), None);
    }
}

/// The k8s.io projects the corpus test promotes: small ones, with several
/// images per project and the full list of 22 destination regions.
const CORPUS_PROJECTS: [&str; 3] = [
    "k8s-staging-storage-migrator",
    "k8s-staging-lws",
    "k8s-staging-sig-auth",
];

#[test]
fn a_slice_of_the_k8s_corpus_promotes_end_to_end_and_then_is_a_no_op() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/k8s-io/registry.k8s.io");
    let fleet = Fleet::start(3);
    let thin = fleet.dir.path().join("thin");
    let mut region_of = BTreeMap::<String, usize>::new();
    // Old digest -> generated image; (source repo, old digest) to push;
    // (destination index, repo, tag, old digest) to check.
    let mut generated = BTreeMap::<String, TestImage>::new();
    let mut to_push = BTreeSet::<(String, String)>::new();
    let mut expected = Vec::<(usize, String, String, String)>::new();
    let mut dest_repos: Vec<Inventory> = vec![Inventory::new(); fleet.destinations.len()];
    for project in CORPUS_PROJECTS {
        // Registries: gcr.io/<staging> -> <source>/gcr-io/<staging>; each
        // `<region>-docker.pkg.dev/k8s-artifacts-prod/images/<p>` goes to one
        // of the destinations as `<dest>/<region>/images/<p>`.
        let text = std::fs::read_to_string(
            corpus.join(format!("manifests/{project}/promoter-manifest.yaml")),
        )
        .unwrap();
        let mut source_prefix = None;
        let mut destinations = Vec::new();
        let rewritten: Vec<String> = text
            .lines()
            .map(|line| {
                let Some((indent, name)) = line.split_once("name: ") else {
                    return line.to_string();
                };
                let new = if let Some(staging) = name.strip_prefix("gcr.io/") {
                    let prefix = format!("gcr-io/{staging}");
                    source_prefix = Some(prefix.clone());
                    format!("{}/{prefix}", fleet.source.host)
                } else {
                    let (region, rest) = name
                        .split_once("-docker.pkg.dev/k8s-artifacts-prod/")
                        .unwrap_or_else(|| panic!("unexpected registry {name}"));
                    let next = region_of.len();
                    let index = *region_of.entry(region.to_string()).or_insert(next)
                        % fleet.destinations.len();
                    let prefix = format!("{region}/{rest}");
                    destinations.push((index, prefix.clone()));
                    format!("{}/{prefix}", fleet.destinations[index].host)
                };
                format!("{indent}name: {new}")
            })
            .collect();
        let source_prefix = source_prefix.expect("a gcr.io source");
        assert!(destinations.len() >= 20, "{project}: {destinations:?}");
        let dir = thin.join("manifests").join(project);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("promoter-manifest.yaml"), rewritten.join("\n")).unwrap();

        // Images: names, tags and structure kept, each digest replaced by
        // the digest of a generated image (the same old digest always maps
        // to the same new image).
        let text =
            std::fs::read_to_string(corpus.join(format!("images/{project}/images.yaml"))).unwrap();
        let mut image_name = String::new();
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            if let Some(name) = line.trim().strip_prefix("- name: ") {
                image_name = name.trim().to_string();
            }
            let Some(at) = line.find("sha256:") else {
                out.push_str(line);
                continue;
            };
            let old = &line[at..at + 71];
            let seed = 1000 + generated.len() as u64;
            let image = generated
                .entry(old.to_string())
                .or_insert_with(|| TestImage::build_sized(seed, 2048, [1024, 1536]));
            out.push_str(&line.replace(old, &image.index.digest));
            to_push.insert((format!("{source_prefix}/{image_name}"), old.to_string()));
            let tags: Vec<String> = line[at + 71..]
                .split(['[', ']', ',', '"', ':', ' ', '\r', '\n'])
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            for (index, prefix) in &destinations {
                let repo = format!("{prefix}/{image_name}");
                let refs = dest_repos[*index].entry(repo.clone()).or_default();
                refs.extend(tags.iter().cloned());
                for tag in &tags {
                    expected.push((*index, repo.clone(), tag.clone(), old.to_string()));
                }
            }
        }
        let dir = thin.join("images").join(project);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("images.yaml"), out).unwrap();
    }
    let pushes: Vec<(&str, &TestImage, &str)> = to_push
        .iter()
        .map(|(repo, old)| (repo.as_str(), &generated[old], "corpus"))
        .collect();
    // One push per repository and image; a repository holding several
    // images keeps them reachable by digest after its `corpus` tag moves.
    push_images(&fleet.source, &pushes);
    assert!(expected.len() >= 150, "{} tags", expected.len());

    let input = ["--thin-manifest-dir", thin.to_str().unwrap()];
    let run = promoter_run(&input, true);
    assert_eq!(run.code, 0, "corpus run: {}\n{}", run.stderr, run.json);
    assert_eq!(run.json["failed"], 0);
    for (index, repo, tag, old) in &expected {
        let dest = &fleet.destinations[*index];
        assert_eq!(
            resolve(dest, repo, tag).as_deref(),
            Some(generated[old].index.digest.as_str()),
            "{repo}:{tag} on {}",
            dest.host
        );
    }
    // A sample checked in full, with skopeo.
    let (index, repo, tag, old) = &expected[0];
    let raw = skopeo::inspect_raw(&fleet.destinations[*index], &format!("{repo}:{tag}"));
    assert_eq!(raw, generated[old].index.bytes.as_ref());
    assert_complete(&fleet.destinations[*index], repo, tag);

    let marks = fleet.marks();
    let again = promoter_run(&input, true);
    assert_eq!(again.code, 0, "second corpus run: {}", again.stderr);
    let c = counts(&again);
    assert_eq!(
        (c["copy"], c["tag_only"], c["tag_move"], c["lost"]),
        (0, 0, 0, 0),
        "{c:?}"
    );
    assert_inventory_minimum(&fleet, &marks, &dest_repos);
}
