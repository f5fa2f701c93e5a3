//! Benchmark (ignored by default; run with `cargo test --release --test
//! sign_bench -- --ignored --nocapture`): sign and replicate N digests
//! (default 200) to M mirrors (default 20, one local registry each), then
//! run the same pass again as a no-op. Prints requests per kind: Fulcio,
//! Rekor, registry requests (from the HTTP client's per-host counters),
//! manifests and blobs pushed, and wall time. `SIGN_BENCH_DIGESTS` and
//! `SIGN_BENCH_MIRRORS` change the sizes. Each digest is attested too (a
//! promotion record and SLSA provenance), as `run` does by default;
//! `SIGN_BENCH_ATTEST=0` measures signatures alone.

#[path = "support/sigstore/mod.rs"]
mod sigstore;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use promoter::attest::Attestations;
use promoter::attest::statement::{Promotion, RunFacts};
use promoter::cli::SignatureFormat;
use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Manifest, Reference, Registry, RepoName};
use promoter::run::sign as phase;
use promoter::sign::oidc::TokenSource;
use promoter::sign::store::RequestCounts;
use promoter::sign::trust::TrustedRoot;
use promoter::sign::{Formats, Identity, Place, Signer, Subject};
use sigstore::SigstoreServer;
use support::server::{Mode, RegistryServer};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny single-manifest image: a config blob and no layers.
fn tiny(seed: usize) -> (Bytes, Manifest) {
    let config = Bytes::from(format!(
        "{{\"seed\":{seed},\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
    ));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config), "size": config.len()},
        "layers": [],
    });
    let manifest = Manifest::new(
        Some("application/vnd.oci.image.manifest.v1+json"),
        Bytes::from(manifest.to_string()),
    )
    .unwrap();
    (config, manifest)
}

fn requests(client: &HttpClient) -> u64 {
    client.stats().iter().map(|s| s.requests).sum()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn sign_and_replicate_many_digests_to_many_mirrors() {
    let digests = env_usize("SIGN_BENCH_DIGESTS", 200);
    let mirrors = env_usize("SIGN_BENCH_MIRRORS", 20);
    let sigstore = SigstoreServer::start(&[]);
    let servers: Vec<RegistryServer> = (0..=mirrors)
        .map(|_| RegistryServer::start(Mode::Plain))
        .collect();
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let registries: Vec<Arc<dyn Registry>> = servers
        .iter()
        .map(|s| registry::open(&s.host, &client).unwrap())
        .collect();
    let repo: RepoName = "prod/app".parse().unwrap();
    let source_repo: RepoName = "staging/app".parse().unwrap();

    // Seed: every image in the source and in every mirror (as a copy would).
    let started = Instant::now();
    let images: Vec<(Bytes, Manifest)> = (0..digests).map(tiny).collect();
    let jobs: Vec<(usize, usize)> = (0..=mirrors)
        .flat_map(|r| (0..digests).map(move |i| (r, i)))
        .collect();
    stream::iter(jobs)
        .map(|(r, i)| {
            let reg = registries[r].clone();
            let repo = if r == 0 {
                source_repo.clone()
            } else {
                repo.clone()
            };
            let (config, manifest) = images[i].clone();
            async move {
                reg.push_blob(
                    &repo,
                    &Digest::of(&config),
                    config.len() as u64,
                    registry::stream::stream_from_bytes(config),
                )
                .await
                .unwrap();
                reg.push_manifest(&repo, &Reference::Digest(manifest.digest()), &manifest)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "seeded {digests} digests into {} registries in {:.1}s",
        mirrors + 1,
        started.elapsed().as_secs_f64()
    );

    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), sigstore.token()).unwrap();
    let subjects: Vec<(Place, Subject)> = images
        .iter()
        .map(|(_, m)| {
            (
                Place {
                    registry: registries[0].clone(),
                    repo: source_repo.clone(),
                },
                Subject {
                    digest: m.digest(),
                    public_name: "registry.example/app".into(),
                    destinations: registries[1..]
                        .iter()
                        .map(|r| Place {
                            registry: r.clone(),
                            repo: repo.clone(),
                        })
                        .collect(),
                },
            )
        })
        .collect();
    let formats = Formats::from(SignatureFormat::Both);
    let attest = env_usize("SIGN_BENCH_ATTEST", 1) != 0;
    let promotions: Vec<Promotion> = subjects
        .iter()
        .map(|(source, subject)| Promotion {
            public_name: subject.public_name.clone(),
            digest: subject.digest,
            source: source.to_string(),
            destinations: subject
                .destinations
                .iter()
                .map(|d| (d.to_string(), Vec::new()))
                .collect(),
            manifest: Some(("images.yaml".into(), 1)),
        })
        .collect();
    for pass in ["sign + replicate", "no-op re-run"] {
        let mut attestations = attest.then(|| {
            Attestations::new(RunFacts {
                builder_id: "urn:promoter:builder:local".into(),
                started_on: "2026-11-25T00:00:00Z".into(),
                ..RunFacts::default()
            })
        });
        let mut signer = Signer::new(
            Identity::Keyless {
                source: TokenSource::File(token_file.path().to_path_buf()),
                fulcio_url: sigstore.url.clone(),
            },
            Some(promoter::sign::rekor::Log::v1(sigstore.url.clone())),
            TrustedRoot::load(Some(&sigstore.trusted_root())).unwrap(),
            formats,
            BTreeMap::new(),
        )
        .unwrap();
        let counts = signer.counts.clone();
        let before = (sigstore.stats(), requests(&client));
        let started = Instant::now();
        let problems = phase::sign_and_replicate(
            &mut signer,
            &subjects,
            formats,
            attestations.as_mut().map(|a| (a, promotions.as_slice())),
        )
        .await;
        let seconds = started.elapsed().as_secs_f64();
        assert!(problems.is_empty(), "{problems:?}");
        let after = (sigstore.stats(), requests(&client));
        eprintln!(
            "{pass}: {digests} digests x {mirrors} mirrors in {seconds:.1}s: Fulcio {}, Rekor {} ({} hashedrekord + {} dsse), registry requests {}, signed {}, attested {}, replicated {}, manifests pushed {}, blobs pushed {}, reads {}",
            after.0.fulcio - before.0.fulcio,
            after.0.rekor - before.0.rekor,
            after.0.hashedrekord - before.0.hashedrekord,
            after.0.dsse - before.0.dsse,
            after.1 - before.1,
            RequestCounts::get(&counts.signed),
            RequestCounts::get(&counts.attested),
            RequestCounts::get(&counts.replicated),
            RequestCounts::get(&counts.manifests_pushed),
            RequestCounts::get(&counts.blobs_pushed),
            RequestCounts::get(&counts.reads),
        );
        if pass == "no-op re-run" {
            assert_eq!(after.0.fulcio, before.0.fulcio);
            assert_eq!(RequestCounts::get(&counts.manifests_pushed), 0);
            assert_eq!(RequestCounts::get(&counts.blobs_pushed), 0);
        } else {
            assert_eq!(after.0.fulcio - before.0.fulcio, 1);
            let per_digest = if attest { 4 } else { 2 };
            assert_eq!(after.0.rekor - before.0.rekor, per_digest * digests as u64);
        }
    }
}

use futures_util::stream;
