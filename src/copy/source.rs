//! Reading source images: the top-level manifest and, for an index, every
//! child manifest, each fetched once by digest (and so verified), with the
//! blobs the destinations will need.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future;

use super::{Ctx, Error, dedup, location};
use crate::counter::add;
use crate::registry::{self, Descriptor, Digest, Manifest, Reference, Registry, RepoName};

/// Indexes nested deeper than this are refused: no real image needs it.
const MAX_DEPTH: usize = 4;

/// One source image, read.
#[derive(Debug, Default)]
pub(super) struct ImageTree {
    /// The manifest the job names; `None` when nothing needed it.
    pub top: Option<Manifest>,
    /// Child manifests by level, deepest first: the push order.
    pub levels: Vec<Vec<Manifest>>,
    /// Configs and layers of every image manifest, each digest once.
    pub blobs: Vec<Descriptor>,
}

/// Read the tree of every job, once per distinct source image. Child
/// manifests are read only when some target copies the image (a tag-only
/// target needs the top-level bytes alone); a job without targets reads
/// nothing and gets an empty tree.
pub(super) async fn read_all(
    ctx: &Ctx,
    jobs: &[Arc<super::CopyJob>],
) -> Vec<Result<Arc<ImageTree>, Error>> {
    let (distinct, index) = dedup(
        jobs.iter()
            .map(|j| (j.source.name().to_owned(), j.source_repo.clone(), j.digest)),
    );
    // Per distinct image: a job to read it through, and whether to go deep.
    let mut wanted: Vec<Option<(&Arc<super::CopyJob>, bool)>> = vec![None; distinct.len()];
    for (job, &i) in jobs.iter().zip(&index) {
        if job.targets.is_empty() {
            continue;
        }
        let deep = job.targets.iter().any(|t| t.copy);
        let entry = wanted[i].get_or_insert((job, deep));
        entry.1 |= deep;
    }
    let trees = future::join_all(wanted.iter().map(|wanted| async move {
        let Some((job, deep)) = *wanted else {
            return Ok(Arc::new(ImageTree::default()));
        };
        read_tree(ctx, job.source.as_ref(), &job.source_repo, job.digest, deep)
            .await
            .map(Arc::new)
            .map_err(|e| Error::Source {
                image: format!(
                    "{}@{}",
                    location(job.source.as_ref(), &job.source_repo),
                    job.digest
                ),
                source: Arc::new(e),
            })
    }))
    .await;
    index.into_iter().map(|i| trees[i].clone()).collect()
}

async fn get(
    ctx: &Ctx,
    source: &dyn Registry,
    repo: &RepoName,
    digest: Digest,
) -> registry::Result<Manifest> {
    let _permit = ctx.permit().await;
    let manifest = source
        .get_manifest(repo, &Reference::Digest(digest))
        .await?;
    add(&ctx.counters.manifests_read, 1);
    Ok(manifest)
}

async fn read_tree(
    ctx: &Ctx,
    source: &dyn Registry,
    repo: &RepoName,
    digest: Digest,
    deep: bool,
) -> registry::Result<ImageTree> {
    let top = get(ctx, source, repo, digest).await?;
    if !deep {
        return Ok(ImageTree {
            top: Some(top),
            ..ImageTree::default()
        });
    }
    let mut levels: Vec<Vec<Manifest>> = Vec::new();
    let mut blobs = Vec::new();
    let mut frontier = vec![top.clone()];
    loop {
        let mut children = Vec::new();
        for manifest in &frontier {
            if manifest.is_index() {
                children.extend(manifest.child_manifests()?);
            } else {
                blobs.extend(manifest.blobs()?);
            }
        }
        if children.is_empty() {
            break;
        }
        if levels.len() == MAX_DEPTH {
            return Err(registry::Error::InvalidResponse {
                url: format!("{}@{digest}", location(source, repo)),
                reason: format!("indexes nested more than {MAX_DEPTH} deep"),
            });
        }
        let mut seen = HashSet::new();
        children.retain(|c| seen.insert(c.digest));
        let fetched =
            future::try_join_all(children.iter().map(|c| get(ctx, source, repo, c.digest))).await?;
        levels.push(fetched.clone());
        frontier = fetched;
    }
    levels.reverse();
    let mut seen = HashSet::new();
    blobs.retain(|b| !is_foreign(&b.media_type) && seen.insert(b.digest));
    Ok(ImageTree {
        top: Some(top),
        levels,
        blobs,
    })
}

/// Foreign (non-distributable) layers, such as Windows base layers, are not
/// stored in registries: the manifest points at them by URL.
fn is_foreign(media_type: &str) -> bool {
    media_type.contains("foreign") || media_type.contains("nondistributable")
}
