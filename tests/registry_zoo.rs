//! The registry zoo: the whole promotion (copy of images whose layers need
//! several chunks, key signing, attestations, replication, `promoter
//! verify`, and a second run that writes nothing) against a second,
//! independent registry with the referrers API (ferro-oci-server, behind a
//! front that only forwards and counts) and through profile fronts that answer as ECR, GHCR, Harbor, Quay, GitLab
//! and Docker Hub do (tests/support/front.rs, each rule citing its source).
//!
//! The source repository sits on the same host as the destinations, so
//! that every blob is first offered as a cross-repository mount, which the
//! ECR, GHCR, Harbor and Docker Hub profiles refuse in their own ways.

mod support;

use std::process::{Command, Output};

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Reference, Registry, RepoName};
use support::ferro::FerroServer;
use support::front::{Front, Options, Profile};
use support::image::TestImage;
use support::server::{Mode, RegistryServer};
use support::text;

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
        .output()
        .expect("run promoter")
}

/// The registry behind a front (or alone).
enum Upstream {
    Distribution(RegistryServer),
    Ferro(FerroServer),
}

impl Upstream {
    fn host(&self) -> &str {
        match self {
            Upstream::Distribution(s) => &s.host,
            Upstream::Ferro(s) => &s.host,
        }
    }
}

/// The destinations, under the host the manifest names.
const DESTINATIONS: [&str; 2] = ["prod", "mirror/eu"];
const IMAGES: [&str; 2] = ["app", "tools/cli"];

/// Two staging images with layers of 12 and 9 MiB (three and three
/// chunks), a manifest promoting them to two repositories of the same
/// host, and a P-256 key pair to sign with.
struct Zoo {
    upstream: Upstream,
    front: Front,
    /// What the manifest names: the front.
    host: String,
    digests: Vec<Digest>,
    dir: tempfile::TempDir,
    client: HttpClient,
}

impl Zoo {
    async fn new(upstream: Upstream, (profile, mut options): (Profile, Options)) -> Zoo {
        options.scope_blobs = matches!(upstream, Upstream::Ferro(_));
        let front = Front::with(upstream.host(), profile, options);
        let host = front.host.clone();
        let client = HttpClient::new(HttpOptions::default()).unwrap();
        // Through the front, so that it knows which repository holds which
        // blob (`Options::scope_blobs`).
        let staging = registry::open(&host, &client).unwrap();
        let mut digests = Vec::new();
        for (seed, name) in [(151u64, IMAGES[0]), (152, IMAGES[1])] {
            let image = TestImage::build_sized(seed, 1 << 20, [12 << 20, 9 << 20]);
            image
                .push(staging.as_ref(), &repo(&format!("staging/{name}")), "v1")
                .await;
            digests.push(image.index_manifest().digest());
        }
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = format!("registries:\n- name: {host}/staging\n  src: true\n");
        for d in DESTINATIONS {
            yaml.push_str(&format!("- name: {host}/{d}\n"));
        }
        yaml.push_str("images:\n");
        for (name, digest) in IMAGES.iter().zip(&digests) {
            yaml.push_str(&format!(
                "- name: {name}\n  dmap:\n    \"{digest}\": [\"v1\"]\n"
            ));
        }
        std::fs::write(dir.path().join("images.yaml"), yaml).unwrap();
        write_keys(dir.path());
        Zoo {
            upstream,
            front,
            host,
            digests,
            dir,
            client,
        }
    }

    /// [`Zoo::new`] with the profile's own options.
    async fn of(upstream: Upstream, profile: Profile) -> Zoo {
        Zoo::new(upstream, (profile, Options::of(profile))).await
    }

    /// [`Zoo::run`], which must fail with exit code 1; its whole output.
    fn run_failing(&self) -> String {
        let out = self.run(&[]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{all}");
        all
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// `promoter run --confirm` with the key and `extra` flags.
    fn run(&self, extra: &[&str]) -> Output {
        let (manifest, key) = (self.path("images.yaml"), self.path("key.pem"));
        let mut args = vec![
            "run",
            "--manifest",
            &manifest,
            "--confirm",
            "--signing-key",
            &key,
        ];
        args.extend_from_slice(extra);
        promoter(&args)
    }

    /// `promoter verify` with the public key and `extra` flags.
    fn verify(&self, extra: &[&str]) -> Output {
        let (manifest, key) = (self.path("images.yaml"), self.path("key.pub"));
        let mut args = vec!["verify", "--manifest", &manifest, "--public-key", &key];
        args.extend_from_slice(extra);
        promoter(&args)
    }

    /// The upstream registry, read directly (not through the front).
    fn direct(&self) -> std::sync::Arc<dyn Registry> {
        registry::open(self.upstream.host(), &self.client).unwrap()
    }

    /// Every (destination repository, digest).
    fn places(&self) -> Vec<(RepoName, Digest)> {
        let mut out = Vec::new();
        for d in DESTINATIONS {
            for (name, digest) in IMAGES.iter().zip(&self.digests) {
                out.push((repo(&format!("{d}/{name}")), *digest));
            }
        }
        out
    }

    /// Every image is in every destination under `v1`, with its `.sig`.
    async fn assert_promoted_and_signed(&self) {
        let reg = self.direct();
        for (repo, digest) in self.places() {
            let tagged = reg
                .head_manifest(&repo, &Reference::tag("v1").unwrap())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{repo}:v1 missing"));
            assert_eq!(tagged.digest, digest, "{repo}:v1");
            let sig = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
            assert!(
                reg.head_manifest(&repo, &sig).await.unwrap().is_some(),
                "{repo}: no {sig}"
            );
        }
    }

    /// Every destination lists a signature bundle and both attestations.
    async fn assert_bundles(&self) {
        let reg = self.direct();
        for (repo, digest) in self.places() {
            let referrers = reg.list_referrers(&repo, &digest).await.unwrap();
            let bundles = referrers
                .iter()
                .filter(|d| {
                    d.artifact_type.as_deref()
                        == Some("application/vnd.dev.sigstore.bundle.v0.3+json")
                })
                .count();
            assert_eq!(bundles, 3, "{repo}@{digest}: {referrers:?}");
        }
    }

    fn front(&self) -> &Front {
        &self.front
    }
}

fn write_keys(dir: &std::path::Path) {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = p256::ecdsa::SigningKey::from_slice(&[11u8; 32]).unwrap();
    let private = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    std::fs::write(dir.join("key.pem"), private.as_bytes()).unwrap();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(dir.join("key.pub"), public).unwrap();
}

/// The whole flow: run, check what landed, verify, run again and see no
/// write reach the registry. Returns the first run's output.
async fn full_flow(zoo: &Zoo) -> Output {
    let first = flow(zoo, &[], &["--attestations"]).await;
    assert!(
        text(&first).contains("signed 2 digest(s), wrote 4 attestation(s)"),
        "{}",
        text(&first)
    );
    zoo.assert_bundles().await;
    first
}

/// [`full_flow`] with `run` and `verify` flags, checking the `.sig`s only.
async fn flow(zoo: &Zoo, run: &[&str], verify: &[&str]) -> Output {
    let first = zoo.run(run);
    assert!(first.status.success(), "{}", text(&first));
    zoo.assert_promoted_and_signed().await;
    let verified = zoo.verify(verify);
    assert!(verified.status.success(), "{}", text(&verified));
    let mark = zoo.front().log().len();
    let second = zoo.run(run);
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("nothing to do"), "{}", text(&second));
    let writes: Vec<_> = zoo.front().log()[mark..]
        .iter()
        .filter(|l| l.method != "GET" && l.method != "HEAD")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "the second run wrote: {writes:?}");
    first
}

/// The `sha256-<hex>` tag-schema index is absent from every destination.
async fn assert_no_fallback_index(zoo: &Zoo) {
    let reg = zoo.direct();
    for (repo, digest) in zoo.places() {
        let tags = reg.list_tags(&repo).await.unwrap();
        let index = format!("sha256-{}", digest.hex());
        assert!(!tags.contains(&index), "{repo}: {tags:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferro_oci_server_with_the_referrers_api() {
    let zoo = Zoo::of(Upstream::Ferro(FerroServer::start()), Profile::Pass).await;
    full_flow(&zoo).await;
    // The registry answered OCI-Subject: its referrers API lists the
    // bundles, and no `sha256-<hex>` index was written.
    assert_no_fallback_index(&zoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_profile() {
    let upstream = Upstream::Ferro(FerroServer::start());
    let zoo = Zoo::of(upstream, Profile::Ecr).await;
    full_flow(&zoo).await;
    let front = zoo.front();
    // Chunks were acknowledged with 201, mounts declined with 202, and the
    // 429s without headers were waited out.
    assert!(front.count("PATCH", 201) >= 12, "{:?}", front.summary());
    assert_eq!(front.count("PATCH", 202), 0);
    assert!(
        front.count("POST", 429)
            + front.count("PATCH", 429)
            + front.count("HEAD", 429)
            + front.count("GET", 429)
            + front.count("PUT", 429)
            > 0
    );
    assert!(
        front
            .log()
            .iter()
            .any(|l| l.method == "POST" && l.path.contains("mount=") && l.status == 202)
    );
    assert_no_fallback_index(&zoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_public_blob_heads_answered_401() {
    let upstream = Upstream::Ferro(FerroServer::start());
    let options = Options {
        head_blob_401: true,
        ..Options::of(Profile::Ecr)
    };
    let zoo = Zoo::new(upstream, (Profile::Ecr, options)).await;
    full_flow(&zoo).await;
    // Every blob HEAD was refused; GETs told what is there.
    let front = zoo.front();
    let summary = front.summary();
    assert!(
        summary.contains_key(&("HEAD".to_owned(), "blob", 401)),
        "{summary:?}"
    );
    assert!(
        !summary.contains_key(&("HEAD".to_owned(), "blob", 404)),
        "{summary:?}"
    );
    assert!(
        summary.contains_key(&("GET".to_owned(), "blob", 404)),
        "{summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghcr_profile() {
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let zoo = Zoo::of(upstream, Profile::Ghcr).await;
    full_flow(&zoo).await;
    // 4 MiB chunks fit: no 416 at all.
    let front = zoo.front();
    assert_eq!(front.count("PATCH", 416), 0, "{:?}", front.summary());
    assert!(front.count("PATCH", 202) >= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghcr_profile_with_a_smaller_chunk_cap_resumes_after_416() {
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let options = Options {
        max_patch: 1024 * 1024,
        ..Options::of(Profile::Ghcr)
    };
    let zoo = Zoo::new(upstream, (Profile::Ghcr, options)).await;
    full_flow(&zoo).await;
    let front = zoo.front();
    assert!(front.count("PATCH", 416) > 0, "{:?}", front.summary());
    // Each refusal is followed by the session's status, then chunks half
    // the size: 4 MiB, 2 MiB, then 1 MiB fits, so at most two refusals for
    // each of the 12 chunked uploads (4 layers over 8 MiB pushed to staging
    // by the test, then copied to 2 destinations), fewer once a client has
    // learnt the host's limit.
    assert!(front.count("PATCH", 416) <= 24, "{:?}", front.summary());
    // The session's status told where to resume.
    assert!(front.count("GET", 204) > 0, "{:?}", front.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harbor_profile() {
    let upstream = Upstream::Ferro(FerroServer::start());
    let zoo = Zoo::of(upstream, Profile::Harbor).await;
    full_flow(&zoo).await;
    let front = zoo.front();
    assert!(
        front
            .log()
            .iter()
            .any(|l| l.path.contains("mount=") && l.status == 401),
        "{:?}",
        front.log()
    );
    // OCI-Subject: no index to rewrite, so nothing for immutability to
    // refuse.
    assert_eq!(front.count("PUT", 412), 0, "{:?}", front.summary());
    assert_no_fallback_index(&zoo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harbor_profile_without_referrers_api_lists_each_digest_in_one_push() {
    // Harbor before 2.8 has no referrers API: the tag-schema index is the
    // only listing, and immutability refuses any rewrite of it. A digest's
    // signature bundle and attestations are listed in one push, which
    // creates the tag: nothing is refused.
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let zoo = Zoo::of(upstream, Profile::Harbor).await;
    let mark = zoo.front().log().len();
    full_flow(&zoo).await;
    let front = zoo.front();
    assert_eq!(front.count("PUT", 412), 0, "{:?}", front.summary());
    // One index push per destination image, however many referrers.
    let index_puts = front.log()[mark..]
        .iter()
        .filter(|l| {
            l.method == "PUT" && l.path.contains("/manifests/sha256-") && !l.path.ends_with(".sig")
        })
        .count();
    assert_eq!(index_puts, zoo.places().len(), "{:?}", front.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harbor_profile_without_referrers_api_names_the_immutable_tag() {
    // Another tool listed its own referrer of the first image in
    // prod/app's `sha256-<hex>` index before promoter came: adding ours
    // means rewriting that tag, which immutability refuses.
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let zoo = Zoo::of(upstream, Profile::Harbor).await;
    let direct = zoo.direct();
    let theirs = TestImage::build_sized(154, 1024, [1024, 1024]);
    let prod = repo("prod/app");
    theirs.push(direct.as_ref(), &prod, "theirs").await;
    let listed = theirs.index_manifest();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": listed.media_type(), "digest": listed.digest().to_string(),
                       "size": listed.bytes().len()}],
    });
    let index = registry::Manifest::new(None, index.to_string().into()).unwrap();
    let tag = Reference::tag(&format!("sha256-{}", zoo.digests[0].hex())).unwrap();
    direct.push_manifest(&prod, &tag, &index).await.unwrap();

    let all = zoo.run_failing();
    assert!(all.contains("refused to rewrite tag sha256-"), "{all}");
    assert!(all.contains("HTTP 412"), "{all}");
    assert!(all.contains("configured as immutable"), "{all}");
    assert!(all.contains("Tag Immutability"), "{all}");
    assert!(all.contains("stored but not listed"), "{all}");
    // The other tool's index is untouched.
    let now = direct.get_manifest(&prod, &tag).await.unwrap();
    assert_eq!(now.digest(), index.digest());
    // The images and their `.sig` landed everywhere all the same.
    zoo.assert_promoted_and_signed().await;
    let verified = zoo.verify(&["--signature-format", "legacy"]);
    assert!(verified.status.success(), "{}", text(&verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quay_profile() {
    let upstream = Upstream::Ferro(FerroServer::start());
    let zoo = Zoo::of(upstream, Profile::Quay).await;
    // 120 other tags in one destination: three pages of 50.
    let direct = zoo.direct();
    let filler = TestImage::build_sized(153, 1024, [1024, 1024]);
    filler
        .push(direct.as_ref(), &repo("prod/app"), "old-0")
        .await;
    for i in 1..120 {
        direct
            .push_manifest(
                &repo("prod/app"),
                &Reference::tag(&format!("old-{i}")).unwrap(),
                &filler.index_manifest(),
            )
            .await
            .unwrap();
    }
    full_flow(&zoo).await;
    let front = zoo.front();
    assert!(
        front
            .log()
            .iter()
            .any(|l| l.path.contains("/prod/app/tags/list") && l.path.contains("last=")),
        "{:?}",
        front.log()
    );
    // An unknown subject: Quay's 400 is "no referrers", not a failure.
    let through = registry::open(&zoo.host, &zoo.client).unwrap();
    let unknown = Digest::of(b"not a manifest here");
    let found = through.list_referrers(&repo("prod/app"), &unknown).await;
    assert!(found.unwrap().is_empty());
    assert!(front.count("GET", 400) > 0, "{:?}", front.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quay_profile_with_an_artifact_type_allow_list_names_the_refusal() {
    // Self-hosted Quay whose ALLOWED_OCI_ARTIFACT_TYPES lists image layers
    // and cosign's simple signing, not the sigstore bundle.
    let upstream = Upstream::Ferro(FerroServer::start());
    let options = Options {
        allowed_layer_types: Some(&[
            support::image::LAYER_TYPE,
            "application/vnd.dev.cosign.simplesigning.v1+json",
        ]),
        ..Options::of(Profile::Quay)
    };
    let zoo = Zoo::new(upstream, (Profile::Quay, options)).await;
    let all = zoo.run_failing();
    assert!(
        all.contains("refused the sigstore bundle referrer"),
        "{all}"
    );
    assert!(all.contains("HTTP 400"), "{all}");
    assert!(all.contains("is not allowed"), "{all}");
    assert!(all.contains("ALLOWED_OCI_ARTIFACT_TYPES"), "{all}");
    assert!(
        all.contains("--signature-format legacy --attest=false"),
        "{all}"
    );
    // The images and their `.sig` landed everywhere all the same, and the
    // way out the error gives works: nothing left to do, and it verifies.
    zoo.assert_promoted_and_signed().await;
    let legacy = ["--signature-format", "legacy", "--attest=false"];
    let again = zoo.run(&legacy);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("nothing to do"), "{}", text(&again));
    let verified = zoo.verify(&["--signature-format", "legacy"]);
    assert!(verified.status.success(), "{}", text(&verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_profile_with_legacy_signatures() {
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let zoo = Zoo::of(upstream, Profile::GitLab).await;
    let legacy = ["--signature-format", "legacy", "--attest=false"];
    flow(&zoo, &legacy, &["--signature-format", "legacy"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_profile_bundles_need_a_listing_it_cannot_give() {
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let zoo = Zoo::of(upstream, Profile::GitLab).await;
    // Bundles need a listing: this registry has no referrers API and its
    // `sha256-<hex>` tag is the subject itself, which is never rewritten.
    let all = zoo.run_failing();
    assert!(all.contains("resolves to"), "{all}");
    assert!(all.contains("the subject itself"), "{all}");
    assert!(all.contains("--signature-format legacy"), "{all}");
    let reg = zoo.direct();
    for (repo, digest) in zoo.places() {
        let tags = reg.list_tags(&repo).await.unwrap();
        assert!(
            !tags.contains(&format!("sha256-{}", digest.hex())),
            "{tags:?}"
        );
        // The image itself is there and was not touched.
        let head = reg.head_manifest(&repo, &Reference::Digest(digest)).await;
        assert_eq!(head.unwrap().unwrap().digest, digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_profile() {
    let upstream = Upstream::Distribution(RegistryServer::start(Mode::Plain));
    let zoo = Zoo::of(upstream, Profile::DockerHub).await;
    full_flow(&zoo).await;
    let front = zoo.front();
    assert!(
        front
            .log()
            .iter()
            .any(|l| l.path.contains("mount=") && l.status == 400),
        "{:?}",
        front.log()
    );
}
