//! Signing promoted images, cosign-compatible, and checking them.
//!
//! Keyless by default: an OIDC identity token ([`oidc`]) buys one short-lived
//! certificate per run from Fulcio ([`fulcio`]) for an ephemeral P-256 key;
//! each signature is recorded in Rekor ([`rekor`]) and its
//! SignedEntryTimestamp checked against the trusted root ([`trust`]). With
//! `--signing-key`, a P-256 key signs instead (local and air-gapped use).
//!
//! Each promoted digest is signed once, on its first destination, in
//! cosign's legacy `.sig` format ([`cosign`]) and/or as a sigstore bundle
//! referrer ([`bundle`]); the artifacts are then copied byte for byte to the
//! other destinations ([`replicate`]). [`verify`] checks every destination.
//! Registry access goes through [`store`]. This module never decides what
//! to promote and never prints secrets.

pub mod bundle;
pub mod cosign;
pub mod crypto;
pub mod fulcio;
pub mod listed;
pub mod oidc;
pub mod rekor;
pub mod rekor_v2;
pub mod replicate;
pub mod signing_config;
pub mod store;
pub mod trust;
pub mod tsa;
pub mod verifier;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::registry::{self, Descriptor, Digest, Reference, Registry, RepoName};
use crate::retry::{Backoff, HttpFailure, Policy};
use crypto::Key;
use fulcio::SigningCert;
use oidc::TokenSource;
use store::RequestCounts;
use trust::TrustedRoot;

/// What went wrong while signing or verifying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No identity token, or an unreadable one.
    #[error("identity token: {0}")]
    Token(String),
    /// A request to a signing service failed on the way.
    #[error("request to {url} failed: {message}")]
    Http { url: String, message: String },
    /// Fulcio refused or answered nonsense.
    #[error("Fulcio: {0}")]
    Fulcio(String),
    /// Rekor refused or answered nonsense.
    #[error("Rekor: {0}")]
    Rekor(String),
    /// The trusted root is unreadable.
    #[error("trusted root: {0}")]
    TrustRoot(String),
    /// A signing key is unusable.
    #[error("signing key: {0}")]
    Key(String),
    /// A document could not be built or read.
    #[error("{0}")]
    Format(String),
    /// A signature, certificate or log entry does not check out.
    #[error("{0}")]
    Verify(String),
    /// A registry operation failed.
    #[error("{what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: registry::Error,
    },
}

/// Which formats to write or require.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    /// cosign's `.sig` tag.
    pub legacy: bool,
    /// A sigstore bundle v0.3 referrer.
    pub bundle: bool,
}

/// One repository of one registry.
#[derive(Clone, Debug)]
pub struct Place {
    /// The registry.
    pub registry: Arc<dyn Registry>,
    /// The repository in it.
    pub repo: RepoName,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry.name(), self.repo)
    }
}

/// A digest to sign and where it lives.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The image (manifest or index) digest.
    pub digest: Digest,
    /// The image's public name, the payload's `docker-reference`.
    pub public_name: String,
    /// Destinations; the first is where it is signed.
    pub destinations: Vec<Place>,
}

/// How a run signs.
pub enum Identity {
    /// Fulcio certificate for an ephemeral key, bought with an OIDC token.
    Keyless {
        /// Where the token comes from.
        source: TokenSource,
        /// Fulcio's base URL.
        fulcio_url: String,
    },
    /// A long-lived key; Rekor only when a URL was given.
    Key(Key),
}

/// Signs subjects: holds the run's key, certificate and trusted root.
pub struct Signer {
    client: reqwest::Client,
    /// Token source and Fulcio URL, when keyless.
    keyless: Option<(TokenSource, String)>,
    /// The ephemeral key (keyless) or the given one.
    key: Key,
    rekor: Option<rekor::Log>,
    /// The timestamp authority each bundle's signature is timestamped by.
    tsa_url: Option<String>,
    trust: TrustedRoot,
    formats: Formats,
    optional: BTreeMap<String, String>,
    cert: Option<SigningCert>,
    /// Requests and writes, per kind.
    pub counts: Arc<RequestCounts>,
}

/// Renew the certificate when less than this is left of it: a signature
/// takes well under a second, Rekor must see a still-valid certificate.
const CERT_MARGIN_SECS: i64 = 60;

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The HTTP client for Fulcio, Rekor and the token endpoint.
pub fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(concat!("promoter/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Http {
            url: String::new(),
            message: e.to_string(),
        })
}

/// Retries of Fulcio, Rekor and the OIDC token endpoint: 3 attempts, 1 s
/// then 2 s apart (plus jitter), or as long as `Retry-After` asks, up to a
/// minute.
pub const SIGSTORE_RETRY: Policy = Policy::new(Backoff {
    retries: 2,
    min_delay: std::time::Duration::from_secs(1),
    max_delay: std::time::Duration::from_secs(2),
});

/// POST `body` as JSON to `url`; returns the status and the body text.
/// Connection errors, 408, 429 and 5xx are retried ([`SIGSTORE_RETRY`]):
/// Fulcio and Rekor answer a repeated request safely (a new certificate; an
/// existing entry is a 409 that the caller reports). The last answer is
/// returned even when its status is transient.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(reqwest::StatusCode, String), Error> {
    match SIGSTORE_RETRY
        .send_text(url, || client.post(url).json(body))
        .await
    {
        Ok(answer) => Ok(answer),
        Err(HttpFailure::Status { status, body, .. }) => Ok((status, body)),
        Err(failure) => Err(Error::Http {
            url: url.to_owned(),
            message: failure.to_string(),
        }),
    }
}

impl Signer {
    /// A signer. Nothing is requested until the first signature.
    pub fn new(
        identity: Identity,
        rekor: Option<rekor::Log>,
        trust: TrustedRoot,
        formats: Formats,
        optional: BTreeMap<String, String>,
    ) -> Result<Signer, Error> {
        let (keyless, key) = match identity {
            Identity::Key(key) => (None, key),
            Identity::Keyless { source, fulcio_url } => {
                (Some((source, fulcio_url)), Key::generate()?)
            }
        };
        Ok(Signer {
            client: http_client()?,
            keyless,
            key,
            rekor,
            tsa_url: None,
            trust,
            formats,
            optional,
            cert: None,
            counts: Arc::new(RequestCounts::default()),
        })
    }

    /// Timestamp every bundle's signature at the RFC 3161 authority `url`
    /// (the legacy `.sig` keeps its Rekor bundle only).
    pub fn with_timestamps(mut self, url: Option<String>) -> Signer {
        self.tsa_url = url;
        self
    }

    /// The trusted root the signer checks Rekor against.
    pub fn trust(&self) -> &TrustedRoot {
        &self.trust
    }

    fn signing_key(&self) -> &Key {
        &self.key
    }

    /// The certificate chain (PEM of leaf, PEM of the rest), requesting or
    /// renewing it when needed. `None` when signing with a key.
    async fn certificate(&mut self) -> Result<Option<(String, String, Vec<u8>)>, Error> {
        let Some((source, fulcio_url)) = &self.keyless else {
            return Ok(None);
        };
        let fresh = self
            .cert
            .as_ref()
            .is_some_and(|c| c.not_after - now() > CERT_MARGIN_SECS);
        if !fresh {
            let token = source.fetch(&self.client).await?;
            RequestCounts::bump(&self.counts.fulcio);
            let cert =
                fulcio::request_certificate(&self.client, fulcio_url, &token, &self.key).await?;
            for pair in cert.chain.windows(2) {
                crypto::verify_issued_by(&pair[0], &pair[1])?;
            }
            self.cert = Some(cert);
        }
        let cert = self.cert.as_ref().expect("set above");
        let leaf = crypto::pem("CERTIFICATE", cert.leaf());
        let chain: String = cert.chain[1..]
            .iter()
            .map(|c| crypto::pem("CERTIFICATE", c))
            .collect();
        Ok(Some((leaf, chain, cert.leaf().to_vec())))
    }

    /// Record a legacy signature's `hashedrekord` entry in the Rekor v1 log.
    async fn log(&self, entry: serde_json::Value) -> Result<Option<rekor::LogEntry>, Error> {
        let Some(log) = &self.rekor else {
            return Ok(None);
        };
        if log.v2 {
            return Err(Error::Rekor(format!(
                "{} is a Rekor v2 log, and the legacy `.sig` carries only Rekor v1 entries: pass --signature-format bundle",
                log.url
            )));
        }
        RequestCounts::bump(&self.counts.rekor);
        let entry = rekor::upload(&self.client, &log.url, &entry).await?;
        entry.verify_set(&self.trust)?;
        Ok(Some(entry))
    }

    /// Record a DSSE signature in the log: a Rekor v1 `dsse` entry (its SET
    /// checked here), or a Rekor v2 `hashedrekord` one (checked with the
    /// finished bundle, [`Signer::check_v2_bundle`]).
    async fn log_dsse(
        &self,
        envelope: &str,
        pae: &[u8],
        signature: &[u8],
        leaf_pem: &str,
        leaf_der: &[u8],
    ) -> Result<Option<bundle::Logged>, Error> {
        let Some(log) = &self.rekor else {
            return Ok(None);
        };
        if !log.v2 {
            let entry = self.log(rekor::dsse(envelope, leaf_pem)).await?;
            return Ok(entry.map(bundle::Logged::V1));
        }
        if self.tsa_url.is_none() {
            return Err(Error::Rekor(format!(
                "{} is a Rekor v2 log, whose entries carry no signing time: a timestamp authority is needed (--timestamp-server-url, or tsaUrls in --signing-config)",
                log.url
            )));
        }
        RequestCounts::bump(&self.counts.rekor);
        let request = rekor_v2::request(pae, signature, leaf_der);
        let entry = rekor_v2::upload(&self.client, &log.url, &request, &self.trust).await?;
        Ok(Some(bundle::Logged::V2(entry)))
    }

    /// A bundle with a Rekor v2 entry has no SET to check at signing time:
    /// the whole bundle is verified (inclusion proof, checkpoint, timestamp,
    /// chain, signature) before it is written.
    fn check_v2_bundle(&self, bundle_json: &[u8], subject: &Digest) -> Result<(), Error> {
        let policy = verifier::Policy {
            identity: verifier::Matcher::AnyIdentity,
            issuer: verifier::Matcher::AnyIdentity,
            public_key: None,
        };
        let artifact = verifier::Artifact::Sha256(*subject.as_bytes());
        verifier::verify(
            bundle_json,
            artifact,
            &policy,
            &self.trust,
            verifier::Options::default(),
        )
        .map(|_| ())
        .map_err(|f| {
            Error::Rekor(format!(
                "the bundle with the Rekor v2 entry does not verify: {f}"
            ))
        })
    }

    /// Sign `subject` on its first destination in every configured format,
    /// unless already signed there. Returns whether anything was signed.
    /// A bundle referrer the registry did not index itself is added to
    /// `unlisted`, for the caller to list with the digest's other referrers
    /// ([`store::add_to_fallback_index`]).
    pub async fn sign(
        &mut self,
        subject: &Subject,
        unlisted: &mut Vec<Descriptor>,
    ) -> Result<bool, Error> {
        let place = subject
            .destinations
            .first()
            .ok_or_else(|| Error::Format("no destination to sign in".into()))?;
        let mut signed = false;
        if self.formats.legacy {
            signed |= self.sign_legacy(subject, place).await?;
        }
        // A refused bundle leaves the `.sig` signed (and counted).
        let mut result = Ok(());
        if self.formats.bundle {
            match self.sign_bundle(subject, place, unlisted).await {
                Ok(done) => signed |= done,
                Err(e) => result = Err(e),
            }
        }
        if signed {
            RequestCounts::bump(&self.counts.signed);
        }
        result.map(|()| signed)
    }

    async fn sign_legacy(&mut self, subject: &Subject, place: &Place) -> Result<bool, Error> {
        let reg = place.registry.as_ref();
        let tag = Reference::tag(&cosign::signature_tag(&subject.digest))
            .map_err(|e| Error::Format(e.to_string()))?;
        let existing = store::get_manifest(reg, &place.repo, &tag, &self.counts).await?;
        let existing_layers = match &existing {
            Some(m) => cosign::layers(m)?,
            None => Vec::new(),
        };
        let payload = cosign::payload(&subject.public_name, &subject.digest, &self.optional);
        let payload_digest = Digest::of(&payload);
        if existing_layers.iter().any(|l| l.digest == payload_digest) {
            return Ok(false);
        }
        // No signature for an image that is not there (one whose copy
        // failed on this destination).
        self.subject_descriptor(place, &subject.digest).await?;
        let cert = self.certificate().await?;
        let signature = self.signing_key().sign(&payload);
        let verifier_pem = match &cert {
            Some((leaf, _, _)) => leaf.clone(),
            None => self.signing_key().public_pem(),
        };
        let entry = self
            .log(rekor::hashedrekord(
                &signature,
                &verifier_pem,
                &crypto::sha256_hex(&payload),
            ))
            .await?;
        let annotations = cosign::annotations(
            &signature,
            cert.as_ref().map(|c| c.0.as_str()),
            cert.as_ref().map(|c| c.1.as_str()),
            entry.as_ref(),
        );
        let mut layer =
            Descriptor::new(cosign::SIMPLE_SIGNING, payload_digest, payload.len() as u64);
        layer.annotations = Some(annotations);
        let mut layers = existing_layers;
        layers.push(layer);
        let built = cosign::build(&layers)?;
        store::put_blob(reg, &place.repo, payload.into(), &self.counts).await?;
        store::put_blob(reg, &place.repo, built.config.clone(), &self.counts).await?;
        store::push_manifest(reg, &place.repo, &tag, &built.manifest, &self.counts).await?;
        Ok(true)
    }

    async fn sign_bundle(
        &mut self,
        subject: &Subject,
        place: &Place,
        unlisted: &mut Vec<Descriptor>,
    ) -> Result<bool, Error> {
        let reg = place.registry.as_ref();
        let present = bundle_referrers(reg, &place.repo, &subject.digest, &self.counts).await?;
        // A bundle without a predicate annotation is taken for a signature,
        // as before attestations existed.
        if present
            .iter()
            .any(|d| matches!(predicate_of(d), None | Some(bundle::SIGN_PREDICATE)))
        {
            return Ok(false);
        }
        let statement = bundle::statement(&subject.public_name, &subject.digest);
        let one = Statement {
            body: &statement,
            predicate_type: bundle::SIGN_PREDICATE,
            annotations: &[],
        };
        self.put_statements(place, &subject.digest, &[one], unlisted)
            .await?;
        Ok(true)
    }

    /// The identity the run signs as: the certificate's SAN when keyless
    /// (requesting the certificate if needed), `None` with a key.
    pub async fn identity(&mut self) -> Result<Option<String>, Error> {
        match self.certificate().await? {
            Some((_, _, der)) => Ok(crypto::cert_facts(&der)?.identities.into_iter().next()),
            None => Ok(None),
        }
    }

    /// The descriptor of `digest` in `place`, which must be there.
    async fn subject_descriptor(
        &self,
        place: &Place,
        digest: &Digest,
    ) -> Result<Descriptor, Error> {
        RequestCounts::bump(&self.counts.reads);
        place
            .registry
            .head_manifest(&place.repo, &Reference::Digest(*digest))
            .await
            .map_err(|source| Error::Registry {
                what: format!("reading {place}@{digest}"),
                source,
            })?
            .ok_or_else(|| Error::Format(format!("{place}@{digest} is not there to sign")))
    }

    /// DSSE-sign each of `statements` (in-toto statements about `digest`),
    /// log it in Rekor (keyless), and store it in `place` as a sigstore
    /// bundle referrer of `digest`, with its annotations. The subject must
    /// be there. Each referrer the registry did not index itself is added
    /// to `unlisted` as soon as it is stored; listing them in the
    /// tag-schema index is the caller's, once for all of a digest's
    /// referrers, so that a registry refusing to rewrite that tag (an
    /// immutable one) is asked to write it once.
    pub async fn put_statements(
        &mut self,
        place: &Place,
        digest: &Digest,
        statements: &[Statement<'_>],
        unlisted: &mut Vec<Descriptor>,
    ) -> Result<(), Error> {
        let subject_desc = self.subject_descriptor(place, digest).await?;
        for s in statements {
            let referrer = self
                .referrer_of(
                    place,
                    &subject_desc,
                    s.body,
                    s.predicate_type,
                    s.annotations,
                )
                .await?;
            let reg = place.registry.as_ref();
            if !store::push_referrer(reg, &place.repo, &referrer, &self.counts).await? {
                unlisted.push(referrer_descriptor(&referrer)?);
            }
        }
        Ok(())
    }

    /// Sign, log and build the bundle referrer of one statement, with its
    /// blobs stored in `place`; the manifest itself is the caller's to push.
    async fn referrer_of(
        &mut self,
        place: &Place,
        subject_desc: &Descriptor,
        statement: &[u8],
        predicate_type: &str,
        annotations: &[(&str, &str)],
    ) -> Result<registry::Manifest, Error> {
        let reg = place.registry.as_ref();
        let cert = self.certificate().await?;
        let pae = bundle::pae(bundle::INTOTO_PAYLOAD_TYPE, statement);
        let signature = self.signing_key().sign(&pae);
        let envelope = bundle::envelope(statement, &signature);
        let entry = match &cert {
            Some((leaf, _, der)) => {
                self.log_dsse(&envelope, &pae, &signature, leaf, der)
                    .await?
            }
            None => None,
        };
        let timestamps = match &self.tsa_url {
            Some(url) => {
                RequestCounts::bump(&self.counts.timestamps);
                vec![tsa::timestamp(&self.client, url, &signature).await?]
            }
            None => Vec::new(),
        };
        let hint = crypto::sha256_hex(&self.signing_key().public_der());
        let bundle_bytes = bundle::bundle(
            &envelope,
            cert.as_ref().map(|c| c.2.as_slice()),
            &hint,
            entry.as_ref(),
            &timestamps,
        )?;
        if matches!(entry, Some(bundle::Logged::V2(_))) {
            self.check_v2_bundle(&bundle_bytes, &subject_desc.digest)?;
        }
        let created = bundle::rfc3339(now());
        let referrer = bundle::referrer(
            &bundle_bytes,
            subject_desc,
            predicate_type,
            annotations,
            &created,
        )?;
        store::put_blob(reg, &place.repo, bundle::empty_blob(), &self.counts).await?;
        store::put_blob(reg, &place.repo, bundle_bytes.into(), &self.counts).await?;
        Ok(referrer)
    }
}

/// One in-toto statement to store as a bundle referrer.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'a> {
    /// The statement's JSON.
    pub body: &'a [u8],
    /// Its predicate type.
    pub predicate_type: &'a str,
    /// Annotations of the referrer manifest.
    pub annotations: &'a [(&'a str, &'a str)],
}

/// The descriptor of a bundle referrer as the referrers API lists it: its
/// artifact type and the manifest's own annotations.
pub fn referrer_descriptor(referrer: &registry::Manifest) -> Result<Descriptor, Error> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let annotated: Annotated = serde_json::from_slice(referrer.bytes())
        .map_err(|e| Error::Format(format!("unreadable referrer manifest: {e}")))?;
    let mut d = referrer.descriptor();
    d.artifact_type = Some(bundle::BUNDLE_MEDIA_TYPE.to_owned());
    d.annotations = Some(annotated.annotations);
    Ok(d)
}

/// The predicate type a bundle referrer's descriptor announces
/// (`dev.sigstore.bundle.predicateType`), if it does.
pub fn predicate_of(referrer: &Descriptor) -> Option<&str> {
    referrer
        .annotations
        .as_ref()?
        .get(bundle::ANN_PREDICATE)
        .map(String::as_str)
}

/// The sigstore bundle referrers of `digest` in `repo`: signatures and
/// attestations alike (tell them apart with [`predicate_of`]).
pub async fn bundle_referrers(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    counts: &RequestCounts,
) -> Result<Vec<Descriptor>, Error> {
    RequestCounts::bump(&counts.reads);
    let referrers = match reg.list_referrers(repo, digest).await {
        Ok(r) => r,
        Err(registry::Error::NotFound { .. }) => Vec::new(),
        Err(source) => {
            return Err(Error::Registry {
                what: format!("listing referrers of {}/{repo}@{digest}", reg.name()),
                source,
            });
        }
    };
    Ok(referrers
        .into_iter()
        .filter(|d| d.artifact_type.as_deref() == Some(bundle::BUNDLE_MEDIA_TYPE))
        .collect())
}
