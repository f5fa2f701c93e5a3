//! The inventory phase of `run`: what the registries hold, as far as the
//! plan needs it. One listing per destination repository, then one HEAD
//! per digest that no listing settled, then one HEAD per source image
//! still to copy. Each listing is absorbed (reduced to the facts the plan
//! needs) as it arrives.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream;

use super::registry_error;
use crate::config::{Registries, RunConfig};
use crate::diagnostic::Diagnostic;
use crate::plan::{self, Knowledge, Names, RepoId, Wants};
use crate::registry::{self, Reference, Registry};

/// Reads what the registries hold of `wants`. A repository that cannot be
/// read is one diagnostic; the rest goes on.
///
/// # Errors
///
/// When a registry name cannot be opened at all.
pub async fn inventory(
    config: &RunConfig,
    wants: &Wants,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<Knowledge> {
    let registries = &config.registries;
    let concurrency = config.concurrency;
    let names = &wants.names;
    let mut knowledge = Knowledge::default();
    let signing = config
        .signing
        .is_on()
        .then_some(config.signing.formats.legacy);
    let mut results = for_each(
        registries,
        names,
        wants.destinations(),
        concurrency,
        |reg, repo| {
            let repo_name = names.repo(repo).repo.clone();
            async move {
                // Only tags some manifest names need resolving. The others
                // pass by here once each: the signature tags among them are
                // kept (when signing), so that no request per destination
                // image is needed to tell which digests are signed.
                let seen = std::sync::Mutex::new(Vec::new());
                let wanted = |tag: &str| {
                    if signing.is_some()
                        && tag.starts_with("sha256-")
                        && let Ok(mut seen) = seen.lock()
                    {
                        seen.push(Box::<str>::from(tag));
                    }
                    names.tag_id(tag).is_some()
                };
                let inventory = reg.inventory_of(&repo_name, &wanted).await?;
                let seen = seen.into_inner().unwrap_or_default();
                Ok::<_, registry::Error>((repo, inventory, seen))
            }
        },
    )?;
    while let Some(result) = results.next().await {
        match result {
            Ok((repo, inventory, seen)) => {
                if let Some(legacy) = signing {
                    // Tags a listing resolved itself (the GCR map, a
                    // layout's index) never pass through `wanted`.
                    let resolved = inventory.manifests.values().flat_map(|e| &e.tags);
                    let tags = seen
                        .iter()
                        .map(|t| &**t)
                        .chain(resolved.map(|t| t.as_str()));
                    knowledge.absorb_signatures(wants, repo, tags, legacy);
                }
                knowledge.absorb(wants, repo, inventory);
            }
            Err((repo, err)) => {
                diagnostics.push(registry_error(names.repo(repo), &err));
                knowledge.unreadable.insert(repo);
            }
        }
    }
    drop(results);
    let unknown = plan::unknown_digests(wants, &knowledge);
    for (repo, digest, found) in heads(registries, names, unknown, concurrency, diagnostics).await?
    {
        if found {
            knowledge.present.insert((repo, digest));
        }
    }
    let to_copy = plan::sources_to_copy(wants, &knowledge);
    for (repo, digest, found) in heads(registries, names, to_copy, concurrency, diagnostics).await?
    {
        if !found {
            knowledge.lost.insert((repo, digest));
        }
    }
    Ok(knowledge)
}

/// Runs `op` on every item with at most `concurrency` in flight, as a
/// stream of results. Each item names its repository; its registry is
/// opened once. Errors come back with their item, so one failing repository
/// is one finding and the rest go on.
fn for_each<'a, I, T, F, Fut>(
    registries: &Registries,
    names: &Names,
    items: Vec<I>,
    concurrency: usize,
    op: F,
) -> anyhow::Result<impl futures_util::Stream<Item = Result<T, (I, registry::Error)>> + 'a>
where
    I: Copy + RepoOf + 'a,
    T: 'a,
    F: Fn(Arc<dyn Registry>, I) -> Fut + 'a,
    Fut: std::future::Future<Output = registry::Result<T>> + 'a,
{
    let mut work = Vec::with_capacity(items.len());
    for item in items {
        let reg = registries.get(&names.repo(item.repo()).registry)?;
        work.push((reg, item));
    }
    Ok(stream::iter(work)
        .map(move |(reg, item)| {
            let fut = op(reg, item);
            async move { fut.await.map_err(|e| (item, e)) }
        })
        .buffer_unordered(concurrency))
}

/// HEADs each (repository, digest): whether the manifest is there.
async fn heads(
    registries: &Registries,
    names: &Names,
    items: Vec<(RepoId, registry::Digest)>,
    concurrency: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> anyhow::Result<Vec<(RepoId, registry::Digest, bool)>> {
    let mut out = Vec::with_capacity(items.len());
    let mut results = for_each(
        registries,
        names,
        items,
        concurrency,
        |reg, (repo, digest)| {
            let repo_name = names.repo(repo).repo.clone();
            async move {
                reg.head_manifest(&repo_name, &Reference::from(digest))
                    .await
                    .map(|found| (repo, digest, found.is_some()))
            }
        },
    )?;
    while let Some(result) = results.next().await {
        match result {
            Ok(found) => out.push(found),
            Err(((repo, _), err)) => diagnostics.push(registry_error(names.repo(repo), &err)),
        }
    }
    Ok(out)
}

/// Items of [`for_each`] name the repository they concern.
trait RepoOf {
    fn repo(&self) -> RepoId;
}

impl RepoOf for RepoId {
    fn repo(&self) -> RepoId {
        *self
    }
}

impl RepoOf for (RepoId, registry::Digest) {
    fn repo(&self) -> RepoId {
        self.0
    }
}
