//! The commands' side of signing: the `sign` phase of `run` (after copy:
//! sign each promoted digest once on its first destination, copy the
//! staging image's signatures along, replicate to every other destination)
//! and the `verify` command (a verdict per digest and destination, a table
//! of gaps, `--fix`). Flags are resolved here; the work is in the sibling
//! modules.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::stream;

use super::crypto::Key;
use super::oidc::TokenSource;
use super::store::Counts;
use super::trust::TrustedRoot;
use super::verify::{Matcher, Policy, Status, Verdict};
use super::{Formats, Identity, Place, Signer, Subject, fulcio, rekor, replicate, verify};
use crate::attest::provenance::{self, Requirement};
use crate::attest::statement::{Promotion, RunFacts};
use crate::attest::{self, Attestations};
use crate::check::{self, Outcome};
use crate::cli::{CheckArgs, ColorChoice, IdentityArgs, SigningArgs, VerifyArgs};
use crate::diagnostic::Location;
use crate::diagnostic::{Code, Counts as DiagnosticCounts, Diagnostic};
use crate::plan::{self, Plan, Repo};
use crate::registry::http::{HttpClient, HttpOptions};
use crate::registry::{self, Registry};

/// Opens a registry by its manifest name (`host` or `oci:<dir>`).
pub type Open<'a> = dyn FnMut(&str) -> anyhow::Result<Arc<dyn Registry>> + Send + 'a;

/// The image name two repositories share (their common trailing path
/// components): `k8s-staging-x/sub/app` and `prod/sub/app` give `sub/app`.
pub fn image_name(source: &Repo, destination: &Repo) -> String {
    let a: Vec<&str> = source.repo.as_str().split('/').collect();
    let b: Vec<&str> = destination.repo.as_str().split('/').collect();
    let common = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
        .max(1);
    b[b.len() - common.min(b.len())..].join("/")
}

fn public_name(prefix: Option<&str>, source: &Repo, first: &Repo) -> String {
    match prefix {
        Some(p) => format!("{}/{}", p.trim_end_matches('/'), image_name(source, first)),
        None => first.to_string(),
    }
}

fn failure(message: String) -> Diagnostic {
    Diagnostic::new(Code::CopyFailed, None, message).help(
        "run again: signing resumes where it stopped; `promoter verify --fix` copies missing signatures",
    )
}

/// Resolve the identity of a run: `Ok(None)` when signing is off or no
/// identity is available (with a note why).
fn identity(args: &SigningArgs) -> Result<Option<Identity>, String> {
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
                .unwrap_or_else(|| fulcio::PUBLIC_FULCIO.to_owned()),
        })),
        None if args.sign == Some(true) => Err(
            "--sign needs an identity: run in GitHub Actions with `permissions: id-token: write`, or give --identity-token-file, SIGSTORE_ID_TOKEN or --signing-key".into(),
        ),
        None => {
            eprintln!(
                "promoter: note: images are promoted unsigned: no signing identity (GitHub Actions OIDC with `id-token: write`, --identity-token-file, SIGSTORE_ID_TOKEN or --signing-key); --sign=false silences this"
            );
            Ok(None)
        }
    }
}

/// The `sign` phase of `run`: sign (and attest) every image of `plan`
/// once, on its first destination, and replicate the signatures and
/// attestations to its other destinations. `listed_at[i]` is where
/// `plan.images[i]` is listed (for the promotion record); `facts` describe
/// the run. Problems come back as diagnostics; the run goes on. The
/// counts (requests and writes per kind) come back when anything was
/// signed.
pub async fn run_phase(
    args: &SigningArgs,
    plan: &Plan,
    listed_at: &[Option<Location>],
    facts: RunFacts,
    open: &mut Open<'_>,
) -> (Vec<Diagnostic>, Option<Arc<Counts>>) {
    if plan.images.is_empty() {
        return (Vec::new(), None);
    }
    let identity = match identity(args) {
        Ok(Some(identity)) => identity,
        Ok(None) => return (Vec::new(), None),
        Err(message) => return (vec![failure(message)], None),
    };
    match sign_plan(args, identity, plan, listed_at, facts, open).await {
        Ok((diagnostics, counts)) => (diagnostics, Some(counts)),
        Err(err) => (vec![failure(format!("signing failed: {err:#}"))], None),
    }
}

async fn sign_plan(
    args: &SigningArgs,
    identity: Identity,
    plan: &Plan,
    listed_at: &[Option<Location>],
    facts: RunFacts,
    open: &mut Open<'_>,
) -> anyhow::Result<(Vec<Diagnostic>, Arc<Counts>)> {
    let formats = Formats::from(args.signature_format);
    let rekor_url = match (&identity, &args.rekor_url) {
        (_, Some(url)) => Some(url.clone()),
        (Identity::Keyless { .. }, None) => Some(rekor::PUBLIC_REKOR.to_owned()),
        (Identity::Key(_), None) => None,
    };
    let trust = TrustedRoot::load(args.trusted_root.as_deref())?;
    let mut optional = BTreeMap::new();
    optional.insert(
        "promoter-version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    if let Ok(sha) = std::env::var("GITHUB_SHA")
        && !sha.is_empty()
    {
        optional.insert("manifest-commit".to_owned(), sha);
    }
    let mut signer = Signer::new(identity, rekor_url, trust, formats, optional)?;
    let counts = signer.counts.clone();
    let mut diagnostics = Vec::new();
    let mut subjects = Vec::new();
    let mut promotions = Vec::new();
    for (index, image) in plan.images.iter().enumerate() {
        let Some(first) = image.targets.first() else {
            continue;
        };
        let mut destinations = Vec::new();
        for t in &image.targets {
            destinations.push(Place {
                registry: open(&t.destination.registry)?,
                repo: t.destination.repo.clone(),
            });
        }
        let source = Place {
            registry: open(&image.source.registry)?,
            repo: image.source.repo.clone(),
        };
        let public_name = public_name(
            args.signature_identity_prefix.as_deref(),
            &image.source,
            &first.destination,
        );
        promotions.push(Promotion {
            public_name: public_name.clone(),
            digest: image.digest,
            // Named as `verify` names places, so that it finds them listed.
            source: source.to_string(),
            destinations: destinations
                .iter()
                .zip(&image.targets)
                .map(|(place, t)| (place.to_string(), t.tags.clone()))
                .collect(),
            manifest: listed_at
                .get(index)
                .and_then(Option::as_ref)
                .map(|l| (l.file.to_string(), l.line)),
        });
        subjects.push((
            source,
            Subject {
                digest: image.digest,
                public_name,
                destinations,
            },
        ));
    }
    // The staging signatures and provenance were checked before the copy
    // (`refused_sources`): images that failed never got here.
    let mut attestations = args.attest.then(|| Attestations::new(facts));
    diagnostics.extend(
        sign_and_replicate(
            &mut signer,
            &subjects,
            formats,
            attestations.as_mut().map(|a| (a, promotions.as_slice())),
        )
        .await
        .into_iter()
        .map(failure),
    );
    eprintln!(
        "promoter: signed {} digest(s), wrote {} attestation(s) (Fulcio {} request(s), Rekor {} entr(ies)); signatures copied to {} destination(s); {} manifest(s) and {} blob(s) pushed",
        Counts::get(&counts.signed),
        Counts::get(&counts.attested),
        Counts::get(&counts.fulcio),
        Counts::get(&counts.rekor),
        Counts::get(&counts.replicated),
        Counts::get(&counts.manifests_pushed),
        Counts::get(&counts.blobs_pushed),
    );
    Ok((diagnostics, counts))
}

/// For each `(source, subject)`: sign on the first destination unless
/// already signed, attest there (with `attest`: the run's attestations
/// and, in the order of `subjects`, what each promotion did), copy the
/// staging image's signatures and attestations there too (as kpromo copies
/// signatures), then replicate all of it to every other destination (8 at
/// a time). Returns the problems; each stops only its own subject or
/// destination.
pub async fn sign_and_replicate(
    signer: &mut Signer,
    subjects: &[(Place, Subject)],
    formats: Formats,
    mut attest: Option<(&mut Attestations, &[Promotion])>,
) -> Vec<String> {
    let counts = signer.counts.clone();
    let mut problems = Vec::new();
    // Signing is sequential (one key, one certificate, cheap per digest);
    // replication, the bulk of the requests, runs concurrently below.
    let mut signed = Vec::with_capacity(subjects.len());
    for (index, (source, subject)) in subjects.iter().enumerate() {
        let first = &subject.destinations[0];
        // Ours first: what staging carries (its signatures, the provenance
        // of its build or of an earlier promotion) must not be taken for
        // this run's signature or attestations.
        if let Err(err) = signer.sign(subject).await {
            problems.push(format!("signing {first}@{} failed: {err}", subject.digest));
            continue;
        }
        if let Some((attestations, promotions)) = attest.as_mut()
            && let Some(promotion) = promotions.get(index)
            && let Err(err) = attestations.write(signer, first, promotion).await
        {
            // Reported (the run exits 1); the signature stands and is
            // replicated. `verify --attestations` shows the gap.
            problems.push(format!(
                "attesting {first}@{} failed: {err}",
                subject.digest
            ));
        }
        // The staging image's own signatures travel with it, as kpromo's do.
        if let Err(err) =
            replicate::replicate(source, first, &subject.digest, formats, &counts).await
        {
            problems.push(format!(
                "copying the signatures of {source}@{} failed: {err}",
                subject.digest
            ));
        }
        signed.push(subject);
    }
    // Per digest: read what the first destination holds once, write it to
    // every other destination. REPLICATE_DIGESTS digests at a time, each to
    // REPLICATE_MIRRORS mirrors at a time.
    let results: Vec<Vec<String>> = stream::iter(signed)
        .map(|subject| {
            let counts = counts.clone();
            async move { replicate_subject(subject, formats, &counts).await }
        })
        .buffer_unordered(REPLICATE_DIGESTS)
        .collect()
        .await;
    problems.extend(results.into_iter().flatten());
    problems
}

/// Digests replicated at once. With [`REPLICATE_MIRRORS`], up to 32
/// requests in flight: the copy phase's default concurrency is 16, and
/// signature artifacts are a few hundred bytes, so requests, not bytes,
/// are the cost.
const REPLICATE_DIGESTS: usize = 4;
/// Mirrors written at once per digest.
const REPLICATE_MIRRORS: usize = 8;

async fn replicate_subject(subject: &Subject, formats: Formats, counts: &Counts) -> Vec<String> {
    let first = &subject.destinations[0];
    let artifacts = match replicate::read(first, &subject.digest, formats, counts).await {
        Ok(a) => a,
        Err(err) => {
            return vec![format!(
                "reading the signatures of {first}@{} failed: {err}",
                subject.digest
            )];
        }
    };
    let artifacts = &artifacts;
    let results: Vec<_> = stream::iter(subject.destinations[1..].iter())
        .map(|to| async move {
            (
                to,
                replicate::write(first, artifacts, to, &subject.digest, counts).await,
            )
        })
        .buffer_unordered(REPLICATE_MIRRORS)
        .collect()
        .await;
    results
        .into_iter()
        .filter_map(|(to, result)| {
            result.err().map(|err| {
                format!(
                    "copying the signatures of {first}@{} to {to} failed: {err}",
                    subject.digest
                )
            })
        })
        .collect()
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
        policy: policy_of(id, None)?,
        require: args.require_signed_source,
    }))
}

/// Before the copy: check the staging image of every image the plan would
/// copy or tag. Its SLSA provenance, where present (or with
/// `--require-provenance`), must verify and name an allowed builder; with a
/// source policy, its signatures must too; `concurrency` images at a time.
/// Returns the index in `plan.images`, the rule and the reason of each
/// image to stop: such an image is stopped before anything of it is
/// written.
pub async fn refused_sources(
    args: &SigningArgs,
    plan: &Plan,
    concurrency: usize,
    open: &mut Open<'_>,
) -> anyhow::Result<Vec<(usize, Code, String)>> {
    let check = source_check(args)?;
    let provenance = provenance_requirement(args)?;
    if check.is_none() && provenance.is_none() {
        return Ok(Vec::new());
    }
    let trust = TrustedRoot::load(args.trusted_root.as_deref())?;
    let counts = Counts::default();
    let mut sources = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        sources.push(Place {
            registry: open(&image.source.registry)?,
            repo: image.source.repo.clone(),
        });
    }
    let (check, provenance, trust, counts) = (&check, &provenance, &trust, &counts);
    let verdicts: Vec<Option<(Code, String)>> = stream::iter(plan.images.iter().zip(&sources))
        .map(|(image, source)| async move {
            if let Some(check) = check {
                let both = Formats {
                    legacy: true,
                    bundle: true,
                };
                let verdict =
                    verify::check(source, &image.digest, both, &check.policy, trust, counts).await;
                if let Some(why) = check.refusal(&verdict) {
                    return Some((Code::SourceSignature, why));
                }
            }
            let requirement = provenance.as_ref()?;
            provenance::refusal(source, &image.digest, requirement, trust, counts)
                .await
                .map(|why| (Code::SourceProvenance, why))
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    Ok(verdicts
        .into_iter()
        .enumerate()
        .filter_map(|(index, verdict)| {
            let (code, why) = verdict?;
            let image = &plan.images[index];
            let message = format!("{}@{}: {why}; not promoted", sources[index], image.digest);
            Some((index, code, message))
        })
        .collect())
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
        policy_of(id, None)?
    } else {
        Policy {
            identity: Matcher::Anyone,
            issuer: Matcher::Anyone,
            public_key: None,
        }
    };
    Ok(Some(Requirement {
        signer,
        allowed_builders: args.allowed_builder.clone(),
        require: args.require_provenance,
    }))
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

fn policy_of(id: &IdentityArgs, public_key: Option<Vec<u8>>) -> anyhow::Result<Policy> {
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

/// `promoter verify`.
pub async fn verify_command(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let check_args = CheckArgs {
        manifests: args.manifests.clone(),
        base_ref: None,
        base_dir: None,
        allow_removal: false,
        format: None,
        ignore: Vec::new(),
        color: ColorChoice::Never,
    };
    let (loaded, diagnostics) = check::diagnose(&check_args)?;
    if DiagnosticCounts::of(&diagnostics).errors > 0 {
        anyhow::bail!("the manifests have errors; run `promoter check` to see them");
    }
    let wants = plan::wants(&loaded.manifests);
    let formats = Formats::from(args.signature_format);
    let trust = TrustedRoot::load(args.trusted_root.as_deref())?;
    let public_key = match &args.public_key {
        Some(path) => Some(super::crypto::public_key_from_pem(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --public-key {}", path.display()))?,
        )?),
        None => None,
    };
    let policy = policy_of(&args.identity, public_key)?;
    if matches!(policy.identity, Matcher::Any) && policy.public_key.is_none() {
        anyhow::bail!(
            "give --certificate-identity or --certificate-identity-regexp (or --public-key for key-signed images)"
        );
    }
    if matches!(policy.issuer, Matcher::Any) && policy.public_key.is_none() {
        anyhow::bail!("give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp");
    }
    let mut options = HttpOptions {
        insecure_registries: args.insecure_registry.clone(),
        credentials: registry::credentials::CredentialStore::from_env(),
        ..HttpOptions::default()
    };
    for path in &args.registry_ca {
        options.extra_ca_pem.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read --registry-ca {}", path.display()))?,
        );
    }
    let client = HttpClient::new(options).context("cannot set up the HTTP client")?;
    let mut open: HashMap<String, Arc<dyn Registry>> = HashMap::new();
    let mut place = |repo: &Repo| -> anyhow::Result<Place> {
        let registry = match open.get(&repo.registry) {
            Some(r) => r.clone(),
            None => {
                let r = registry::open(&repo.registry, &client)
                    .with_context(|| format!("cannot use registry `{}`", repo.registry))?;
                open.insert(repo.registry.clone(), r.clone());
                r
            }
        };
        Ok(Place {
            registry,
            repo: repo.repo.clone(),
        })
    };
    // Every (digest, destinations) the manifests promote.
    let mut items: Vec<(registry::Digest, Vec<Place>)> = Vec::new();
    for want in &wants.items {
        let mut places = Vec::new();
        for (id, _) in want.targets() {
            places.push(place(wants.names.repo(id))?);
        }
        items.push((want.digest, places));
    }
    let counts = Counts::default();
    let checks: Vec<(usize, usize)> = items
        .iter()
        .enumerate()
        .flat_map(|(i, (_, places))| (0..places.len()).map(move |j| (i, j)))
        .collect();
    let attestations = args.attestations;
    let verdicts = run_checks(
        &items,
        &checks,
        formats,
        attestations,
        &policy,
        &trust,
        &counts,
        args.concurrency,
    )
    .await;
    let mut gaps: Vec<((usize, usize), Finding)> = checks
        .iter()
        .copied()
        .zip(verdicts)
        .filter(|(_, v)| !v.is_ok())
        .collect();
    let total = checks.len();
    let mut out = std::io::stdout().lock();
    if args.fix && !gaps.is_empty() {
        let mut fixed = Vec::new();
        for ((i, j), _) in &gaps {
            let (digest, places) = &items[*i];
            // A destination of the same digest that is not a gap.
            let donor = checks
                .iter()
                .filter(|(di, dj)| di == i && dj != j)
                .find(|k| !gaps.iter().any(|(g, _)| g == *k));
            let Some((_, dj)) = donor else { continue };
            match replicate::replicate(&places[*dj], &places[*j], digest, formats, &counts).await {
                Ok(_) => fixed.push((*i, *j)),
                Err(err) => writeln!(
                    out,
                    "fix: copying signatures of {digest} to {} failed: {err}",
                    places[*j]
                )?,
            }
        }
        let rechecked = run_checks(
            &items,
            &fixed,
            formats,
            attestations,
            &policy,
            &trust,
            &counts,
            args.concurrency,
        )
        .await;
        for (key, verdict) in fixed.iter().zip(rechecked) {
            if verdict.is_ok() {
                writeln!(out, "fixed: {}@{}", items[key.0].1[key.1], items[key.0].0)?;
                gaps.retain(|(g, _)| g != key);
            }
        }
    }
    let what = if attestations {
        "signatures and attestations"
    } else {
        "signatures"
    };
    if gaps.is_empty() {
        writeln!(
            out,
            "verify: all {total} destination image(s) carry valid {what} ({} request(s))",
            Counts::get(&counts.reads)
        )?;
        return Ok(Outcome::Clean);
    }
    let mut header = format!(
        "{:<60} {:<20} {:<24} {:<24}",
        "destination", "digest", "legacy", "bundle"
    );
    if attestations {
        header.push_str(&format!(" {:<24} provenance", "record"));
    }
    writeln!(out, "{}", header.trim_end())?;
    for ((i, j), finding) in &gaps {
        let (digest, places) = &items[*i];
        let mut line = format!(
            "{:<60} {:<20} {:<24} {:<24}",
            places[*j].to_string(),
            &digest.to_string()[..19],
            finding.signatures.legacy.label(),
            finding.signatures.bundle.label()
        );
        if let Some(a) = &finding.attestations {
            line.push_str(&format!(
                " {:<24} {}",
                a.record.label(),
                a.provenance.label()
            ));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(
        out,
        "verify: {} of {total} destination image(s) lack {}",
        gaps.len(),
        if attestations {
            "valid signatures or attestations"
        } else {
            "a valid signature"
        }
    )?;
    Ok(Outcome::Findings)
}

/// What `verify` found for one digest in one destination.
struct Finding {
    signatures: Verdict,
    /// With `--attestations`.
    attestations: Option<attest::verify::Verdict>,
}

impl Finding {
    fn is_ok(&self) -> bool {
        self.signatures.legacy.is_ok()
            && self.signatures.bundle.is_ok()
            && self.attestations.as_ref().is_none_or(|a| a.is_ok())
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_checks(
    items: &[(registry::Digest, Vec<Place>)],
    checks: &[(usize, usize)],
    formats: Formats,
    attestations: bool,
    policy: &Policy,
    trust: &TrustedRoot,
    counts: &Counts,
    concurrency: usize,
) -> Vec<Finding> {
    stream::iter(checks.iter())
        .map(|(i, j)| async move {
            let (digest, places) = &items[*i];
            let place = &places[*j];
            let signatures = verify::check(place, digest, formats, policy, trust, counts).await;
            let attestations = if attestations {
                Some(attest::verify::check(place, digest, policy, trust, counts).await)
            } else {
                None
            };
            Finding {
                signatures,
                attestations,
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(registry: &str, path: &str) -> Repo {
        Repo {
            registry: registry.into(),
            repo: path.parse().unwrap(),
        }
    }

    #[test]
    fn names() {
        let src = repo("gcr.io", "k8s-staging-x/sub/app");
        let dst = repo("us.gcr.io", "k8s-artifacts-prod/sub/app");
        assert_eq!(image_name(&src, &dst), "sub/app");
        assert_eq!(
            public_name(Some("registry.k8s.io"), &src, &dst),
            "registry.k8s.io/sub/app"
        );
        assert_eq!(
            public_name(None, &src, &dst),
            "us.gcr.io/k8s-artifacts-prod/sub/app"
        );
    }
}
