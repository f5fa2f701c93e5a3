//! The sign phase of `run` (after the copy): sign each promoted digest
//! once, on its first destination; attest it there; copy the staging
//! image's signatures along; replicate all of it to every other
//! destination. The signing itself is in [`crate::sign`], the statements
//! in [`crate::attest`]; this module decides what is signed where.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream;

use crate::attest::Attestations;
use crate::attest::statement::{Promotion, RunFacts};
use crate::config::{RunConfig, SignPlan, Signing};
use crate::diagnostic::{Code, Diagnostic};
use crate::plan::Repo;
use crate::plan::signatures::SignatureWork;
use crate::sign::store::{self, RequestCounts};
use crate::sign::{Formats, Place, Signer, Subject, replicate};

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

/// Signs (and attests) every digest of `work` that needs it once, on its
/// first destination holding it, and replicates signatures and
/// attestations to every destination that lacks them; `facts` describe the
/// run. `work` is the plan's signature work without the destinations the
/// copy failed to reach. Problems are diagnostics; the run goes on. The
/// counts (requests and writes per kind) come back when anything was
/// signed or replicated. `identity` is taken out of `config.signing` (a key
/// is used once).
///
/// # Errors
///
/// None today: every problem is a diagnostic.
pub async fn sign(
    config: &RunConfig,
    identity: Signing,
    work: &[SignatureWork],
    facts: RunFacts,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<Option<Arc<RequestCounts>>> {
    if work.is_empty() {
        return Ok(None);
    }
    let signing = &config.signing;
    let identity = match identity {
        Signing::Ready(identity) => identity,
        Signing::Off | Signing::Unavailable => return Ok(None),
        Signing::Broken(message) => {
            diagnostics.push(failure(format!(
                "{message}; {} digest(s) left unsigned",
                work.iter().filter(|w| w.sign.is_some()).count()
            )));
            return Ok(None);
        }
    };
    match sign_work(config, signing, identity, work, facts).await {
        Ok((problems, counts)) => {
            diagnostics.extend(problems);
            Ok(Some(counts))
        }
        Err(err) => {
            diagnostics.push(failure(format!("signing failed: {err:#}")));
            Ok(None)
        }
    }
}

/// Says on stderr that what the run promoted is unsigned, and how to sign
/// it (when signing was not asked for and no identity is there).
pub fn note_unsigned() {
    eprintln!(
        "promoter: note: images are promoted unsigned: no signing identity (GitHub Actions OIDC with `id-token: write`, --identity-token-file, SIGSTORE_ID_TOKEN or --signing-key); --sign=false silences this"
    );
}

async fn sign_work(
    config: &RunConfig,
    signing: &SignPlan,
    identity: crate::sign::Identity,
    work: &[SignatureWork],
    facts: RunFacts,
) -> anyhow::Result<(Vec<Diagnostic>, Arc<RequestCounts>)> {
    let trust = match &signing.trust {
        Some(Ok(trust)) => trust.clone(),
        Some(Err(message)) => anyhow::bail!("{message}"),
        None => anyhow::bail!("no trusted root to sign with"),
    };
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
    let mut signer = Signer::new(
        identity,
        signing.rekor.clone(),
        trust,
        signing.formats,
        optional,
    )?
    .with_timestamps(signing.tsa_url.clone());
    let counts = signer.counts.clone();
    let Work {
        subjects,
        promotions,
        replicas,
    } = subjects(config, work)?;
    // The staging signatures and provenance were checked before the copy
    // (the source gate): images that failed never got here.
    let mut attestations = signing.attest.then(|| Attestations::new(facts));
    let mut problems = sign_and_replicate(
        &mut signer,
        &subjects,
        signing.formats,
        attestations.as_mut().map(|a| (a, promotions.as_slice())),
    )
    .await;
    problems.extend(replicate_all(&replicas, signing.formats, &counts).await);
    let diagnostics = problems.into_iter().map(failure).collect();
    let _ = crate::report::run::write_signing_totals(
        &mut std::io::stderr().lock(),
        &crate::report::run::SigningTotals::from(&*counts),
    );
    Ok((diagnostics, counts))
}

/// What the sign phase works on, in plan order.
struct Work {
    /// The digests to sign: the staging place and what to sign where.
    subjects: Vec<(Place, Subject)>,
    /// The record of each promotion to sign, for its attestations.
    promotions: Vec<Promotion>,
    /// The digests signed somewhere already: their signatures are read
    /// from the first destination and written to the others.
    replicas: Vec<Subject>,
}

/// Per digest of `work`: what to sign or replicate where, and the record
/// of its promotion.
fn subjects(config: &RunConfig, work: &[SignatureWork]) -> anyhow::Result<Work> {
    let mut out = Work {
        subjects: Vec::new(),
        promotions: Vec::new(),
        replicas: Vec::new(),
    };
    for w in work {
        let mut destinations = vec![config.registries.place(&w.from)?];
        for to in &w.to {
            destinations.push(config.registries.place(to)?);
        }
        let public_name = public_name(
            config.signing.signature_identity_prefix.as_deref(),
            &w.source,
            &w.from,
        );
        let subject = Subject {
            digest: w.digest,
            public_name: public_name.clone(),
            destinations,
        };
        if w.sign.is_none() {
            out.replicas.push(subject);
            continue;
        }
        let source = config.registries.place(&w.source)?;
        let mut holders = Vec::with_capacity(w.holders.len());
        for h in &w.holders {
            // Named as `verify` names places, so that it finds them listed.
            let place = config.registries.place(&h.destination)?;
            holders.push((place.to_string(), h.tags.clone()));
        }
        out.promotions.push(Promotion {
            public_name,
            digest: w.digest,
            source: source.to_string(),
            destinations: holders,
            manifest: Some((w.at.file.to_string(), w.at.line)),
        });
        out.subjects.push((source, subject));
    }
    Ok(out)
}

/// Replicates the signatures of each subject from its first destination
/// to the others, [`REPLICATE_DIGESTS`] digests at a time. Returns the
/// problems.
async fn replicate_all<'s>(
    subjects: impl IntoIterator<Item = &'s Subject>,
    formats: Formats,
    counts: &RequestCounts,
) -> Vec<String> {
    let results: Vec<Vec<String>> = stream::iter(subjects)
        .map(|subject| async move { replicate_subject(subject, formats, counts).await })
        .buffer_unordered(REPLICATE_DIGESTS)
        .collect()
        .await;
    results.into_iter().flatten().collect()
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
    for (index, (source, subject)) in subjects.iter().enumerate() {
        let promotion = attest
            .as_mut()
            .and_then(|(a, promotions)| Some((&mut **a, promotions.get(index)?)));
        problems.extend(sign_one(signer, source, subject, promotion, formats).await);
    }
    // Per digest: read what the first destination holds once, write it to
    // every other destination. REPLICATE_DIGESTS digests at a time, each to
    // REPLICATE_MIRRORS mirrors at a time. Every digest, whatever its
    // signing did: what the first destination holds (a `.sig` whose bundle
    // was refused, say) goes to the others.
    let all = subjects.iter().map(|(_, subject)| subject);
    problems.extend(replicate_all(all, formats, &counts).await);
    problems
}

/// Sign `subject` on its first destination, attest it there and copy the
/// staging image's signatures there, then list in the tag-schema index, in
/// one push, every referrer of those three the registry did not index
/// itself: a registry that refuses to rewrite that tag (Harbor's and ECR's
/// immutable tags) is asked to write it once. Returns the problems.
async fn sign_one(
    signer: &mut Signer,
    source: &Place,
    subject: &Subject,
    attest: Option<(&mut Attestations, &Promotion)>,
    formats: Formats,
) -> Vec<String> {
    let first = &subject.destinations[0];
    let digest = &subject.digest;
    let counts = signer.counts.clone();
    let mut problems = Vec::new();
    let mut unlisted = Vec::new();
    // Ours first: what staging carries (its signatures, the provenance of
    // its build or of an earlier promotion) must not be taken for this
    // run's signature or attestations.
    let signed = signer.sign(subject, &mut unlisted).await;
    if let Err(err) = &signed {
        problems.push(format!("signing {first}@{digest} failed: {err}"));
    } else {
        if let Some((attestations, promotion)) = attest
            && let Err(err) = attestations
                .write(signer, first, promotion, &mut unlisted)
                .await
        {
            // Reported (the run exits 1); the signature stands and is
            // replicated. `verify --attestations` shows the gap.
            problems.push(format!("attesting {first}@{digest} failed: {err}"));
        }
        // The staging image's own signatures travel with it, as kpromo's do.
        let copied = match replicate::read(source, digest, formats, &counts).await {
            Ok(artifacts) => {
                replicate::write_unlisted(source, &artifacts, first, digest, &counts, &mut unlisted)
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = copied {
            problems.push(format!(
                "copying the signatures of {source}@{digest} failed: {err}"
            ));
        }
    }
    // What was stored is listed, whatever failed after it.
    if !unlisted.is_empty()
        && let Err(err) = store::add_to_fallback_index(
            first.registry.as_ref(),
            &first.repo,
            digest,
            &unlisted,
            &counts,
        )
        .await
    {
        problems.push(format!(
            "listing the signatures and attestations of {first}@{digest} failed: {err}"
        ));
    }
    problems
}

/// Digests replicated at once. With [`REPLICATE_MIRRORS`], up to 32
/// requests in flight: the copy phase's default concurrency is 16, and
/// signature artifacts are a few hundred bytes, so requests, not bytes,
/// are the cost.
const REPLICATE_DIGESTS: usize = 4;
/// Mirrors written at once per digest.
const REPLICATE_MIRRORS: usize = 8;

async fn replicate_subject(
    subject: &Subject,
    formats: Formats,
    counts: &RequestCounts,
) -> Vec<String> {
    let [first, others @ ..] = subject.destinations.as_slice() else {
        return Vec::new();
    };
    if others.is_empty() {
        return Vec::new();
    }
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
    let results: Vec<_> = stream::iter(others)
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
