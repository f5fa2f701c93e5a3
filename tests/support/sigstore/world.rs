//! The world of the signing and attestation tests: the offline sigstore
//! services, a source registry with two staging images and three
//! destinations (four Debian `docker-registry` instances on loopback), the
//! manifest promoting them, and helpers to run `promoter run` and `promoter
//! verify` against them and to read back what they wrote.

#![allow(dead_code)] // Each test crate uses a different part of the world.

use std::path::Path;
use std::process::{Command, Output};

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Reference, Registry, RepoName};

use crate::sigstore::{self, REQUEST_TOKEN, SigstoreServer};
use crate::support;
use crate::support::image::TestImage;
use crate::support::server::{Mode, RegistryServer};

pub fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

pub fn promoter(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promoter"));
    command
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("SIGSTORE_ID_TOKEN")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("GITHUB_SHA");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run promoter")
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub struct World {
    pub sigstore: SigstoreServer,
    pub source: String,
    _servers: Vec<RegistryServer>,
    pub destinations: Vec<(String, String)>,
    pub digests: Vec<(String, Digest)>,
    pub manifest: tempfile::NamedTempFile,
    pub client: HttpClient,
}

impl World {
    pub async fn new(sigstore_env: &[(&str, &str)]) -> World {
        let sigstore = SigstoreServer::start(sigstore_env);
        let servers: Vec<RegistryServer> =
            (0..4).map(|_| RegistryServer::start(Mode::Plain)).collect();
        let client = HttpClient::new(HttpOptions::default()).unwrap();
        let source = registry::open(&servers[0].host, &client).unwrap();
        let mut digests = Vec::new();
        for (seed, name) in [(61u64, "app"), (62, "tools/cli")] {
            let image = TestImage::build(seed);
            image
                .push(source.as_ref(), &repo(&format!("staging/{name}")), "v1")
                .await;
            digests.push((name.to_owned(), image.index_manifest().digest()));
        }
        let destinations = vec![
            (servers[1].host.clone(), "prod".to_owned()),
            (servers[2].host.clone(), "prod".to_owned()),
            (servers[3].host.clone(), "mirror/eu".to_owned()),
        ];
        let mut yaml = format!(
            "registries:\n- name: {}/staging\n  src: true\n",
            servers[0].host
        );
        for (host, prefix) in &destinations {
            yaml.push_str(&format!("- name: {host}/{prefix}\n"));
        }
        yaml.push_str("images:\n");
        for (name, digest) in &digests {
            yaml.push_str(&format!(
                "- name: {name}\n  dmap:\n    \"{digest}\": [\"v1\"]\n"
            ));
        }
        let manifest = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(manifest.path(), yaml).unwrap();
        World {
            sigstore,
            source: servers[0].host.clone(),
            _servers: servers,
            destinations,
            digests,
            manifest,
            client,
        }
    }

    /// A manifest promoting the two images from `source` to `destinations`.
    pub fn manifest_for(&self, source: &str, destinations: &[String]) -> tempfile::NamedTempFile {
        let mut yaml = format!("registries:\n- name: {source}\n  src: true\n");
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

    pub fn manifest(&self) -> &str {
        self.manifest.path().to_str().unwrap()
    }

    /// `run --confirm` with the sigstore services' URLs and `extra`.
    pub fn run_with(&self, extra: &[&str], env: &[(&str, String)]) -> Output {
        let root = self.sigstore.trusted_root();
        let mut args = vec![
            "run",
            "--manifest",
            self.manifest(),
            "--confirm",
            "--fulcio-url",
            &self.sigstore.url,
            "--rekor-url",
            &self.sigstore.url,
            "--trusted-root",
            root.to_str().unwrap(),
            "--signature-identity-prefix",
            "registry.example",
        ];
        args.extend_from_slice(extra);
        promoter(&args, env)
    }

    /// A run as in GitHub Actions: the token comes from the OIDC endpoint.
    pub fn run(&self) -> Output {
        self.run_with(
            &[],
            &[
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    self.sigstore.token_request_url(),
                ),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
                (
                    "GITHUB_SHA",
                    "0123456789abcdef0123456789abcdef01234567".to_owned(),
                ),
            ],
        )
    }

    /// Whether `digest`'s legacy signature tag exists in every destination.
    pub async fn signed_everywhere(&self) -> Vec<bool> {
        let mut out = Vec::new();
        for (reg, repo, digest) in self.places() {
            let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
            out.push(reg.head_manifest(&repo, &tag).await.unwrap().is_some());
        }
        out
    }

    pub fn verify(&self, extra: &[&str]) -> Output {
        let root = self.sigstore.trusted_root();
        let mut args = vec![
            "verify",
            "--manifest",
            self.manifest(),
            "--trusted-root",
            root.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        promoter(&args, &[])
    }

    /// Every (registry, repository, digest) the manifest promotes.
    pub fn places(&self) -> Vec<(std::sync::Arc<dyn Registry>, RepoName, Digest)> {
        let mut out = Vec::new();
        for (host, prefix) in &self.destinations {
            let reg = registry::open(host, &self.client).unwrap();
            for (name, digest) in &self.digests {
                out.push((reg.clone(), repo(&format!("{prefix}/{name}")), *digest));
            }
        }
        out
    }
}

pub async fn read_blob(reg: &dyn Registry, repo: &RepoName, digest: &Digest) -> Vec<u8> {
    support::conformance::drain(reg.get_blob(repo, digest).await.unwrap())
        .await
        .unwrap()
}

/// cosign v3's predicate type of image signatures.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The bundle JSON stored as the one referrer of `digest` whose descriptor
/// announces `predicate_type`.
pub async fn bundle_of(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    predicate_type: &str,
) -> Vec<u8> {
    let referrers = reg.list_referrers(repo, digest).await.unwrap();
    let bundles: Vec<_> = referrers
        .iter()
        .filter(|d| {
            d.artifact_type.as_deref() == Some("application/vnd.dev.sigstore.bundle.v0.3+json")
                && d.annotations
                    .as_ref()
                    .and_then(|a| a.get("dev.sigstore.bundle.predicateType"))
                    .is_some_and(|p| p == predicate_type)
        })
        .collect();
    assert_eq!(bundles.len(), 1, "{referrers:?}");
    let manifest = reg
        .get_manifest(repo, &Reference::Digest(bundles[0].digest))
        .await
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(manifest.bytes()).unwrap();
    assert_eq!(
        m["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(m["subject"]["digest"], digest.to_string());
    assert_eq!(
        m["annotations"]["dev.sigstore.bundle.predicateType"],
        predicate_type
    );
    let layer: Digest = m["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    read_blob(reg, repo, &layer).await
}

pub fn sigstore_python(
    world: &World,
    bundle: &Path,
    digest: &Digest,
    identity: &str,
    issuer: &str,
) -> Output {
    Command::new(sigstore::sigstore_python())
        .arg("--trust-config")
        .arg(world.sigstore.trust_config())
        .args(["verify", "identity", "--offline", "--bundle"])
        .arg(bundle)
        .args(["--cert-identity", identity, "--cert-oidc-issuer", issuer])
        .arg(digest.to_string())
        .env("HOME", world.sigstore.dir.path())
        .output()
        .expect("run sigstore-python")
}
