//! The second stage of configuration. `crate::cli` only checks the shape
//! of the flags; this module turns them into what the commands work with,
//! doing the I/O once: the HTTP client and its one registry pool, the
//! signing plan of a run (who signs, Rekor, the trusted root, the staging
//! policy and the provenance requirement) and the verification policy.
//!
//! Nothing here talks to a registry or a signing service; it reads the
//! files the flags name (CA bundles, keys, the trusted root) and the
//! environment (credentials, the OIDC token source).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::attest::provenance::Requirement;
use crate::cli::{IdentityArgs, LimiterArg, RunArgs, RunFormat, SignatureFormat, SigningArgs};
use crate::plan::Repo;
use crate::registry::http::{HostStats, HttpClient, HttpOptions, LimiterMode};
use crate::registry::{self, Registry};
use crate::shard::Shard;
use crate::sign::crypto::Key;
use crate::sign::oidc::TokenSource;
use crate::sign::trust::TrustedRoot;
use crate::sign::verify::{Matcher, Policy, Status, Verdict};
use crate::sign::{Formats, Identity, Place, fulcio, rekor, signing_config};

impl From<SignatureFormat> for Formats {
    fn from(f: SignatureFormat) -> Formats {
        Formats {
            legacy: matches!(f, SignatureFormat::Legacy | SignatureFormat::Both),
            bundle: matches!(f, SignatureFormat::Bundle | SignatureFormat::Both),
        }
    }
}

/// The registries of a command, each opened once, over one HTTP client.
pub struct Registries {
    client: HttpClient,
    open: Mutex<HashMap<String, Arc<dyn Registry>>>,
}

impl Registries {
    /// A pool over `client`.
    pub fn new(client: HttpClient) -> Registries {
        Registries {
            client,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The registry named `name` in a manifest (`host` or `oci:<dir>`).
    ///
    /// # Errors
    ///
    /// When the name cannot be opened (a bad layout directory, say).
    pub fn get(&self, name: &str) -> anyhow::Result<Arc<dyn Registry>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = open.get(name) {
            return Ok(r.clone());
        }
        let r = registry::open(name, &self.client)
            .with_context(|| format!("cannot use registry `{name}`"))?;
        open.insert(name.to_string(), r.clone());
        Ok(r)
    }

    /// A repository of the manifests, as a place to read and write.
    ///
    /// # Errors
    ///
    /// See [`Registries::get`].
    pub fn place(&self, repo: &Repo) -> anyhow::Result<Place> {
        Ok(Place {
            registry: self.get(&repo.registry)?,
            repo: repo.repo.clone(),
        })
    }

    /// Requests per registry host so far.
    pub fn stats(&self) -> Vec<HostStats> {
        self.client.stats()
    }
}

/// HTTP options from `--insecure-registry` and `--registry-ca`, with
/// credentials from the environment.
///
/// # Errors
///
/// When a CA file cannot be read.
pub fn http_options(insecure: &[String], registry_ca: &[PathBuf]) -> anyhow::Result<HttpOptions> {
    let mut options = HttpOptions {
        insecure_registries: insecure.to_vec(),
        credentials: registry::credentials::CredentialStore::from_env(),
        ..HttpOptions::default()
    };
    for path in registry_ca {
        options.extra_ca_pem.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read --registry-ca {}", path.display()))?,
        );
    }
    Ok(options)
}

/// The pool of registries over a client built from `options`.
///
/// # Errors
///
/// When the HTTP client cannot be built.
pub fn registries(options: HttpOptions) -> anyhow::Result<Registries> {
    Ok(Registries::new(
        HttpClient::new(options).context("cannot set up the HTTP client")?,
    ))
}

/// A signature policy from cosign's identity flags (and a key).
///
/// # Errors
///
/// When a regular expression does not compile.
pub fn policy(id: &IdentityArgs, public_key: Option<Vec<u8>>) -> anyhow::Result<Policy> {
    Ok(Policy {
        identity: Matcher::new(
            id.certificate_identity.as_deref(),
            id.certificate_identity_regexp.as_deref(),
        )?,
        issuer: Matcher::new(
            id.certificate_oidc_issuer.as_deref(),
            id.certificate_oidc_issuer_regexp.as_deref(),
        )?,
        public_key,
    })
}

/// Everything `run` needs beyond the manifests, resolved once.
pub struct RunConfig {
    pub confirm: bool,
    pub format: RunFormat,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// `--report`.
    pub report: Option<PathBuf>,
    pub shard: Option<Shard>,
    pub registries: Registries,
    /// What is checked of staging images before anything is written.
    pub gate: SourceGate,
    /// How promoted images are signed and attested.
    pub signing: SignPlan,
}

impl RunConfig {
    /// Resolves the flags of `run`: reads the CA files and the signing
    /// key, builds the HTTP client, compiles the policies.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, a bad policy flag, an unusable
    /// `--shards` setup.
    pub fn resolve(args: &RunArgs) -> anyhow::Result<RunConfig> {
        let shard = args.shard()?;
        let mut options = http_options(&args.insecure_registry, &args.registry_ca)?;
        options.rate.initial_rps = args.max_rps;
        options.rate.per_host_rps = args.max_rps_host.iter().cloned().collect();
        options.rate.mode = match args.limiter {
            LimiterArg::Adaptive => LimiterMode::Adaptive,
            LimiterArg::Kpromo => LimiterMode::Kpromo,
        };
        let gate = SourceGate::resolve(&args.signing)?;
        let signing = SignPlan::resolve(&args.signing)?;
        let trust = (gate.is_needed() || signing.identity.is_ready()).then(|| {
            TrustedRoot::load(args.signing.trusted_root.as_deref()).map_err(|e| e.to_string())
        });
        Ok(RunConfig {
            confirm: args.confirm,
            format: args.format.unwrap_or_else(default_format),
            concurrency: args.concurrency.max(1),
            report: args.report.clone(),
            shard,
            registries: registries(options)?,
            gate: SourceGate {
                trust: trust.clone(),
                ..gate
            },
            signing: SignPlan { trust, ..signing },
        })
    }
}

/// `--format`'s default: `github` in GitHub Actions, else `human`.
pub fn default_format() -> RunFormat {
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        RunFormat::Github
    } else {
        RunFormat::Human
    }
}

/// The trusted root as loaded, or why it could not be (kept until a phase
/// needs it: only then is a bad one an error). `None`: not needed.
pub type Trust = Option<Result<TrustedRoot, String>>;

/// What `run` checks of each staging image before the copy.
pub struct SourceGate {
    /// The staging signature policy, when one is given.
    pub check: Option<SourceCheck>,
    /// What staging provenance must show, when it is checked.
    pub provenance: Option<Requirement>,
    pub trust: Trust,
}

impl SourceGate {
    fn resolve(args: &SigningArgs) -> anyhow::Result<SourceGate> {
        Ok(SourceGate {
            check: source_check(args)?,
            provenance: provenance_requirement(args)?,
            trust: None,
        })
    }

    /// Whether any staging image is checked at all.
    pub fn is_needed(&self) -> bool {
        self.check.is_some() || self.provenance.is_some()
    }
}

/// How `run` checks the staging image's own signatures.
#[derive(Clone, Debug)]
pub struct SourceCheck {
    /// Identity and issuer (or key) they must match.
    pub policy: Policy,
    /// A staging image without a valid signature is refused.
    pub require: bool,
}

impl SourceCheck {
    /// Why `verdict` stops the image, if it does: an invalid or unreadable
    /// signature always; none at all only with `require`.
    pub fn refusal(&self, verdict: &Verdict) -> Option<String> {
        for (format, status) in [("legacy", &verdict.legacy), ("bundle", &verdict.bundle)] {
            if matches!(status, Status::Invalid(_) | Status::Error(_)) {
                return Some(format!(
                    "the staging image's {format} signature is {}",
                    status.label()
                ));
            }
        }
        let valid = verdict.legacy == Status::Valid || verdict.bundle == Status::Valid;
        (self.require && !valid).then(|| "the staging image is not signed".to_owned())
    }
}

/// The staging-signature policy of a run, when one is given
/// (`--certificate-identity[-regexp]`, `--certificate-oidc-issuer[-regexp]`,
/// `--require-signed-source`).
fn source_check(args: &SigningArgs) -> anyhow::Result<Option<SourceCheck>> {
    let id = &args.source_identity;
    let has_policy = id.certificate_identity.is_some() || id.certificate_identity_regexp.is_some();
    if args.require_signed_source && !has_policy {
        anyhow::bail!(
            "--require-signed-source needs --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]"
        );
    }
    if !has_policy {
        return Ok(None);
    }
    Ok(Some(SourceCheck {
        policy: policy(id, None)?,
        require: args.require_signed_source,
    }))
}

/// How staging provenance is checked: always when signing is on (verify
/// it where present), and whenever `--require-provenance` or
/// `--allowed-builder` asks for it. Signed by the source identity when one
/// is given, else by anyone the trusted root vouches for.
fn provenance_requirement(args: &SigningArgs) -> anyhow::Result<Option<Requirement>> {
    let asked = args.require_provenance || !args.allowed_builder.is_empty();
    if args.sign == Some(false) && !asked {
        return Ok(None);
    }
    let id = &args.source_identity;
    let given = id.certificate_identity.is_some() || id.certificate_identity_regexp.is_some();
    let signer = if given {
        policy(id, None)?
    } else {
        Policy {
            identity: Matcher::AnyIdentity,
            issuer: Matcher::AnyIdentity,
            public_key: None,
        }
    };
    Ok(Some(Requirement {
        signer,
        allowed_builders: args.allowed_builder.clone(),
        require: args.require_provenance,
    }))
}

/// Who signs a run, as far as the flags and the environment say.
pub enum Signing {
    /// `--sign=false`.
    Off,
    /// Signing is not asked for and no identity is available: images are
    /// promoted unsigned, with a note.
    Unavailable,
    /// Signing cannot work: why (reported when there is something to sign).
    Broken(String),
    /// The identity to sign with.
    Ready(Identity),
}

impl Signing {
    fn is_ready(&self) -> bool {
        matches!(self, Signing::Ready(_))
    }
}

/// How a run signs and attests what it promoted.
pub struct SignPlan {
    pub identity: Signing,
    /// The Rekor log: `--rekor-url` (v1), else the signing config's (v1 or
    /// v2), else the public one when keyless; none with a key unless one of
    /// the first two names one.
    pub rekor: Option<rekor::Log>,
    pub trust: Trust,
    pub formats: Formats,
    /// `--attest`.
    pub attest: bool,
    /// `--signature-identity-prefix`.
    pub signature_identity_prefix: Option<String>,
    /// The RFC 3161 timestamp authority bundles are timestamped by:
    /// `--timestamp-server-url`, else the signing config's.
    pub tsa_url: Option<String>,
}

impl SignPlan {
    /// Whether the run signs: an identity is there, or one was asked for
    /// and is unusable (then every digest left to sign is a finding). Only
    /// then does the run plan signatures ([`crate::plan::signatures`]).
    pub fn is_on(&self) -> bool {
        matches!(self.identity, Signing::Ready(_) | Signing::Broken(_))
    }

    fn resolve(args: &SigningArgs) -> anyhow::Result<SignPlan> {
        let formats = Formats::from(args.signature_format);
        let config = match &args.signing_config {
            Some(path) => {
                let given = signing_config::Given {
                    fulcio: args.fulcio_url.is_some(),
                    rekor: args.rekor_url.is_some(),
                    tsa: args.timestamp_server_url.is_some(),
                    legacy: formats.legacy,
                };
                signing_config::load(path, given).map_err(anyhow::Error::msg)?
            }
            None => signing_config::Selected::default(),
        };
        let tsa_url = args
            .timestamp_server_url
            .clone()
            .or_else(|| config.tsas.first().cloned());
        // With the flag, the config's authorities are not asked at all.
        let unasked = match args.timestamp_server_url {
            Some(_) => &[][..],
            None => config.tsas.get(1..).unwrap_or_default(),
        };
        for tsa in unasked {
            tracing::warn!(
                "the signing config selects the timestamp authority {tsa} too; the promoter asks one, {}",
                tsa_url.as_deref().unwrap_or_default()
            );
        }
        let identity = match identity(args, config.fulcio.as_deref()) {
            Ok(Some(identity)) => Signing::Ready(identity),
            Ok(None) if args.sign == Some(false) => Signing::Off,
            Ok(None) => Signing::Unavailable,
            Err(message) => Signing::Broken(message),
        };
        let flag = args.rekor_url.as_ref().map(rekor::Log::v1);
        let rekor = match (&identity, flag.or(config.rekor)) {
            (_, Some(log)) => Some(log),
            (Signing::Ready(Identity::Keyless { .. }), None) => {
                Some(rekor::Log::v1(rekor::PUBLIC_REKOR))
            }
            _ => None,
        };
        Ok(SignPlan {
            identity,
            rekor,
            trust: None,
            formats,
            attest: args.attest,
            signature_identity_prefix: args.signature_identity_prefix.clone(),
            tsa_url,
        })
    }
}

/// The identity of a run: `Ok(None)` when signing is off or no identity is
/// available.
/// `config_fulcio`: the Fulcio URL a signing config selected.
fn identity(args: &SigningArgs, config_fulcio: Option<&str>) -> Result<Option<Identity>, String> {
    if args.sign == Some(false) {
        return Ok(None);
    }
    if let Some(path) = &args.signing_key {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --signing-key {}: {e}", path.display()))?;
        return Key::from_pkcs8_pem(&pem)
            .map(|k| Some(Identity::Key(k)))
            .map_err(|e| e.to_string());
    }
    match TokenSource::detect(args.identity_token_file.as_deref()) {
        Some(source) => Ok(Some(Identity::Keyless {
            source,
            fulcio_url: args
                .fulcio_url
                .clone()
                .or_else(|| config_fulcio.map(str::to_owned))
                .unwrap_or_else(|| fulcio::PUBLIC_FULCIO.to_owned()),
        })),
        None if args.sign == Some(true) => Err(
            "--sign needs an identity: run in GitHub Actions with `permissions: id-token: write`, or give --identity-token-file, SIGSTORE_ID_TOKEN or --signing-key".into(),
        ),
        None => Ok(None),
    }
}
