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

pub use crate::support::text;

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

    /// The destinations as manifests name them, `host/prefix`.
    pub fn destination_names(&self) -> Vec<String> {
        self.destinations
            .iter()
            .map(|(h, p)| format!("{h}/{p}"))
            .collect()
    }

    /// `run --confirm` of the world's manifest with the sigstore services'
    /// URLs and `extra`.
    pub fn run_with(&self, extra: &[&str], env: &[(&str, String)]) -> Output {
        self.run_manifest(self.manifest(), extra, env)
    }

    /// `run --confirm` of `manifest` with the sigstore services' URLs and
    /// `extra`.
    pub fn run_manifest(&self, manifest: &str, extra: &[&str], env: &[(&str, String)]) -> Output {
        let root = self.sigstore.trusted_root();
        let mut args = vec![
            "run",
            "--manifest",
            manifest,
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

    /// A run as in GitHub Actions whose Fulcio and Rekor come from the
    /// signing config at `config` (no `--fulcio-url`, no `--rekor-url`),
    /// with `extra` flags.
    pub fn run_with_signing_config(&self, config: &std::path::Path, extra: &[&str]) -> Output {
        let root = self.sigstore.trusted_root();
        let mut args = vec![
            "run",
            "--manifest",
            self.manifest(),
            "--confirm",
            "--signing-config",
            config.to_str().unwrap(),
            "--trusted-root",
            root.to_str().unwrap(),
            "--signature-identity-prefix",
            "registry.example",
        ];
        args.extend_from_slice(extra);
        promoter(&args, &self.github_env())
    }

    /// The environment of a GitHub Actions job with `id-token: write`.
    fn github_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                self.sigstore.token_request_url(),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
            (
                "GITHUB_SHA",
                "0123456789abcdef0123456789abcdef01234567".to_owned(),
            ),
        ]
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

/// Standard base64, decoded.
pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Standard base64.
pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The in-toto statement inside a DSSE bundle.
pub fn statement_of(bundle: &[u8]) -> serde_json::Value {
    let b: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let payload = base64_decode(b["dsseEnvelope"]["payload"].as_str().unwrap());
    serde_json::from_slice(&payload).unwrap()
}

/// As an attacker with write access would: replace the bundle referrer of
/// `digest` that announces `predicate_type` by one whose statement has
/// `from` replaced with `to` (signature, certificate and log entry kept),
/// and list only the altered one in the `sha256-<hex>` referrers index.
pub async fn tamper_bundle(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    predicate_type: &str,
    from: &str,
    to: &str,
) {
    let original = bundle_of(reg, repo, digest, predicate_type).await;
    let mut b: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let statement = String::from_utf8(base64_decode(
        b["dsseEnvelope"]["payload"].as_str().unwrap(),
    ))
    .unwrap();
    assert!(statement.contains(from), "{from} not in {statement}");
    b["dsseEnvelope"]["payload"] = base64_encode(statement.replace(from, to).as_bytes()).into();
    let evil = b.to_string().into_bytes();
    let evil_digest = Digest::of(&evil);
    reg.push_blob(
        repo,
        &evil_digest,
        evil.len() as u64,
        registry::stream::stream_from_bytes(evil.clone().into()),
    )
    .await
    .unwrap();
    let index_tag = Reference::tag(&format!("sha256-{}", digest.hex())).unwrap();
    let index = reg.get_manifest(repo, &index_tag).await.unwrap();
    let mut index: serde_json::Value = serde_json::from_slice(index.bytes()).unwrap();
    for entry in index["manifests"].as_array_mut().unwrap() {
        if entry["annotations"]["dev.sigstore.bundle.predicateType"] != predicate_type {
            continue;
        }
        let referrer: Digest = entry["digest"].as_str().unwrap().parse().unwrap();
        let m = reg
            .get_manifest(repo, &Reference::Digest(referrer))
            .await
            .unwrap();
        let mut m: serde_json::Value = serde_json::from_slice(m.bytes()).unwrap();
        m["layers"][0]["digest"] = evil_digest.to_string().into();
        m["layers"][0]["size"] = evil.len().into();
        let tampered = registry::Manifest::new(
            Some("application/vnd.oci.image.manifest.v1+json"),
            m.to_string().into(),
        )
        .unwrap();
        reg.push_manifest(repo, &Reference::Digest(tampered.digest()), &tampered)
            .await
            .unwrap();
        entry["digest"] = tampered.digest().to_string().into();
        entry["size"] = tampered.bytes().len().into();
    }
    let index = registry::Manifest::new(
        Some("application/vnd.oci.image.index.v1+json"),
        index.to_string().into(),
    )
    .unwrap();
    reg.push_manifest(repo, &index_tag, &index).await.unwrap();
}
