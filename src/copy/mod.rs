//! The copy executor: makes each planned image present in its destinations,
//! children before parents and tags last, so that a tag never points at
//! anything incomplete and a killed run can simply be run again.
//!
//! It decides nothing about *what* to copy (that is `crate::plan`); it only
//! moves bytes, with bounded concurrency, reading each source blob once and
//! sending it at most once to each destination repository.
//!
//! [`execute`] works in three steps:
//! 1. read every source manifest tree once (`source`);
//! 2. group the blobs of all jobs by source blob and fan each one out to
//!    every destination repository that lacks it: skip, mount, or upload
//!    from one read of the source (`blobs`);
//! 3. per (job, target), once its blobs are there: child manifests by
//!    digest, then the top-level manifest under its tags (by digest when
//!    it has none).
//!
//! Failures stay with the (job, target) they belong to.

mod blobs;
mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures_util::future::{self, BoxFuture, FutureExt, Shared};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use crate::counter::add;
use crate::registry::{self, Digest, Manifest, Reference, Registry, RepoName};

use blobs::{BlobPlan, GroupResults};
use source::ImageTree;

/// One image (by digest) to make present in some destinations.
#[derive(Clone, Debug)]
pub struct CopyJob {
    /// Where the image is read from.
    pub source: Arc<dyn Registry>,
    pub source_repo: RepoName,
    /// The image's top-level manifest digest (an index or a single image).
    pub digest: Digest,
    /// Where it goes.
    pub targets: Vec<Target>,
}

/// One destination repository of a [`CopyJob`].
#[derive(Clone, Debug)]
pub struct Target {
    pub registry: Arc<dyn Registry>,
    pub repo: RepoName,
    /// `true` when the digest is missing there (copy everything it needs);
    /// `false` when it is present and only tags are missing.
    pub copy: bool,
    /// Tags to point at the digest once the content is complete. The plan
    /// guarantees none of them points elsewhere today.
    pub tags: Vec<String>,
}

/// How [`execute`] runs.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Registry operations in flight at once, across images, blobs and
    /// destinations (at least 1); manifest and tag pushes have as many
    /// again of their own.
    pub concurrency: usize,
    /// Where blobs larger than [`blobs::IN_MEMORY_MAX`] that go to several
    /// destinations are spooled; the system temporary directory when `None`.
    pub spool_dir: Option<PathBuf>,
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions {
            concurrency: 16,
            spool_dir: None,
        }
    }
}

/// Why one (job, target) failed. Clonable because one failed blob or source
/// read fails every target that needed it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// Reading the image from its source failed: every target of the job
    /// fails with it.
    #[error("reading {image}: {source}")]
    Source {
        /// `registry/repository@digest` of the source image.
        image: String,
        /// What went wrong.
        source: Arc<registry::Error>,
    },
    /// A blob could not be made present in the destination.
    #[error("copying blob {digest} to {destination}: {source}")]
    Blob {
        /// `registry/repository` of the destination.
        destination: String,
        /// The blob.
        digest: Digest,
        /// What went wrong.
        source: Arc<registry::Error>,
    },
    /// Pushing a manifest or a tag failed.
    #[error("pushing {reference} to {destination}: {source}")]
    Push {
        /// `registry/repository` of the destination.
        destination: String,
        /// The digest or tag pushed.
        reference: String,
        /// What went wrong.
        source: Arc<registry::Error>,
    },
}

impl Error {
    /// The registry error underneath.
    pub fn registry_error(&self) -> &registry::Error {
        match self {
            Error::Source { source, .. }
            | Error::Blob { source, .. }
            | Error::Push { source, .. } => source,
        }
    }

    /// Whether running again later may succeed (see
    /// [`registry::Error::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.registry_error().is_transient()
    }
}

/// The result of one (job, target).
#[derive(Clone, Debug)]
pub struct TargetOutcome {
    /// Index into the jobs given to [`execute`].
    pub job: usize,
    /// Index into that job's targets.
    pub target: usize,
    /// `Ok` when the digest and every tag are in place.
    pub result: Result<(), Error>,
}

impl Serialize for TargetOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat {
            job: usize,
            target: usize,
            ok: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<String>,
        }
        Flat {
            job: self.job,
            target: self.target,
            ok: self.result.is_ok(),
            error: self.result.as_ref().err().map(ToString::to_string),
        }
        .serialize(serializer)
    }
}

/// What a run moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CopyStats {
    /// Blobs pushed with their bytes, counted per destination repository.
    pub blobs_uploaded: u64,
    /// Blobs made present by a cross-repository mount (no bytes moved).
    pub blobs_mounted: u64,
    /// Blobs the destination repository already had.
    pub blobs_skipped: u64,
    /// Bytes of the uploaded blobs.
    pub bytes_uploaded: u64,
    /// Blob bytes read from sources (manifests not counted).
    pub bytes_read_from_source: u64,
    /// Source manifests read (top-level and children).
    pub manifests_read: u64,
    /// Manifests pushed by digest.
    pub manifests_pushed: u64,
    /// Tags pushed.
    pub tags_pushed: u64,
}

/// What [`execute`] returns: one outcome per (job, target), in job then
/// target order, and the totals.
#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    pub outcomes: Vec<TargetOutcome>,
    pub stats: CopyStats,
}

impl CopyReport {
    /// The outcomes that failed.
    pub fn failures(&self) -> impl Iterator<Item = &TargetOutcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }
}

/// How a blob came to be present in a destination repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobTransfer {
    Uploaded,
    Mounted,
    Skipped,
}

/// Small events for a progress bar or log lines.
#[derive(Clone, Debug)]
pub enum ProgressEvent {
    /// The source manifests are read; the work is known.
    Started {
        /// (job, target) pairs.
        targets: usize,
        /// (destination repository, blob) pairs to check.
        blobs: u64,
        /// Their total size: what would be uploaded if no destination had
        /// any of them.
        bytes: u64,
    },
    /// One blob is present in one destination repository (or failed).
    BlobDone {
        bytes: u64,
        transfer: BlobTransfer,
        ok: bool,
    },
    /// One (job, target) is finished.
    TargetDone { job: usize, target: usize, ok: bool },
}

/// State shared by every task of one [`execute`].
struct Execution {
    permits: Semaphore,
    /// Manifest and tag pushes have permits of their own: a registry that
    /// paces manifest writes (ECR's `PutImage` quota is 10/s) holds them
    /// back in the rate limiter, and they must not hold the slots blob
    /// transfers need meanwhile.
    manifest_permits: Semaphore,
    /// Bytes of small blobs held in memory at once.
    memory: Semaphore,
    spool_dir: PathBuf,
    counters: Counters,
    events: mpsc::UnboundedSender<ProgressEvent>,
}

type Ctx = Arc<Execution>;

impl Execution {
    /// One slot of bounded concurrency. Never held while waiting on another
    /// task, so permits cannot deadlock.
    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("semaphore never closed")
    }

    fn emit(&self, event: ProgressEvent) {
        // The receiver lives until every task is done.
        let _ = self.events.send(event);
    }
}

#[derive(Default)]
struct Counters {
    blobs_uploaded: AtomicU64,
    blobs_mounted: AtomicU64,
    blobs_skipped: AtomicU64,
    bytes_uploaded: AtomicU64,
    bytes_read_from_source: AtomicU64,
    manifests_read: AtomicU64,
    manifests_pushed: AtomicU64,
    tags_pushed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> CopyStats {
        crate::counter::snapshot!(self => CopyStats {
            blobs_uploaded, blobs_mounted, blobs_skipped, bytes_uploaded,
            bytes_read_from_source, manifests_read, manifests_pushed, tags_pushed,
        })
    }
}

/// `registry/repository`, for messages.
fn location(registry: &dyn Registry, repo: &RepoName) -> String {
    format!("{}/{repo}", registry.name())
}

/// Copy every job to its targets. Never fails as a whole: each (job, target)
/// gets its own outcome. `progress` is called from this task only.
pub async fn execute(
    jobs: Vec<CopyJob>,
    options: &CopyOptions,
    progress: &(dyn Fn(ProgressEvent) + Send + Sync),
) -> CopyReport {
    let (events, mut receiver) = mpsc::unbounded_channel();
    let ctx: Ctx = Arc::new(Execution {
        permits: Semaphore::new(options.concurrency.max(1)),
        manifest_permits: Semaphore::new(options.concurrency.max(1)),
        memory: Semaphore::new(blobs::MEMORY_BUDGET),
        spool_dir: options.spool_dir.clone().unwrap_or_else(std::env::temp_dir),
        counters: Counters::default(),
        events,
    });
    let jobs: Vec<Arc<CopyJob>> = jobs.into_iter().map(Arc::new).collect();

    // 1. Source manifests, once per distinct source image.
    let trees = drive(source::read_all(&ctx, &jobs), &mut receiver, progress).await;

    // 2. Blobs: one task per source blob, fanned out to its destinations.
    let plan = BlobPlan::new(&jobs, &trees);
    ctx.emit(ProgressEvent::Started {
        targets: jobs.iter().map(|j| j.targets.len()).sum(),
        blobs: plan.destination_count(),
        bytes: plan.destination_bytes(),
    });
    let groups: Vec<Shared<BoxFuture<'static, GroupResults>>> = plan
        .groups
        .into_iter()
        .map(|group| {
            let handle = tokio::spawn(blobs::transfer(ctx.clone(), group));
            async move { join(handle.await) }.boxed().shared()
        })
        .collect();

    // 3. Manifests and tags, per (job, target).
    let mut tasks = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for t in 0..job.targets.len() {
            let deps: Vec<_> = plan.needs[j][t]
                .iter()
                .map(|&(group, slot)| (groups[group].clone(), slot))
                .collect();
            let work = finish_target(ctx.clone(), job.clone(), t, trees[j].clone(), deps);
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(async move {
                let result = work.await;
                ctx.emit(ProgressEvent::TargetDone {
                    job: j,
                    target: t,
                    ok: result.is_ok(),
                });
                TargetOutcome {
                    job: j,
                    target: t,
                    result,
                }
            }));
        }
    }
    drop(groups);
    let outcomes = drive(
        async {
            future::join_all(tasks)
                .await
                .into_iter()
                .map(join)
                .collect()
        },
        &mut receiver,
        progress,
    )
    .await;
    let stats = ctx.counters.snapshot();
    drop(ctx);
    while let Some(event) = receiver.recv().await {
        progress(event);
    }
    CopyReport { outcomes, stats }
}

/// Run `work` while passing progress events on as they arrive.
async fn drive<T>(
    work: impl Future<Output = T>,
    receiver: &mut mpsc::UnboundedReceiver<ProgressEvent>,
    progress: &(dyn Fn(ProgressEvent) + Send + Sync),
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => {
                while let Ok(event) = receiver.try_recv() {
                    progress(event);
                }
                return out;
            }
            Some(event) = receiver.recv() => progress(event),
        }
    }
}

/// A task's output; a panic in a task is a bug and resumes here.
fn join<T>(result: Result<T, tokio::task::JoinError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("copy task cancelled: {e}"),
        },
    }
}

/// Once the target's blobs are present: child manifests by digest (all at
/// once), then the top-level manifest under each of its tags, or by digest
/// when it has none. A PUT by tag stores the manifest as a PUT by digest
/// does, so the top-level manifest is not sent twice: one manifest write
/// per single-platform image, which is what ECR's `PutImage` quota (10/s by
/// default) and Artifact Registry's write quota meter. For a tag-only
/// target, just the tags.
async fn finish_target(
    ctx: Ctx,
    job: Arc<CopyJob>,
    t: usize,
    tree: Result<Arc<ImageTree>, Error>,
    deps: Vec<(Shared<BoxFuture<'static, GroupResults>>, usize)>,
) -> Result<(), Error> {
    let tree = tree?;
    let top = tree.top.as_ref().expect("read for every job with targets");
    let target = &job.targets[t];
    let registry = target.registry.as_ref();
    let repo = &target.repo;
    if target.copy {
        for (group, slot) in deps {
            group.await[slot].clone()?;
        }
        for level in &tree.levels {
            future::try_join_all(
                level
                    .iter()
                    .map(|m| push(&ctx, registry, repo, Reference::Digest(m.digest()), m)),
            )
            .await?;
        }
        if target.tags.is_empty() {
            push(&ctx, registry, repo, Reference::Digest(top.digest()), top).await?;
        }
    }
    let mut tags = Vec::with_capacity(target.tags.len());
    for tag in &target.tags {
        let reference = Reference::tag(tag).map_err(|e| Error::Push {
            destination: location(registry, repo),
            reference: tag.clone(),
            source: Arc::new(e.into()),
        })?;
        tags.push(push(&ctx, registry, repo, reference, top));
    }
    future::try_join_all(tags).await?;
    if target.copy && !target.tags.is_empty() {
        // Stored by its tags.
        add(&ctx.counters.manifests_pushed, 1);
    }
    Ok(())
}

/// Push one manifest under `reference`, holding a manifest permit.
async fn push(
    ctx: &Ctx,
    registry: &dyn Registry,
    repo: &RepoName,
    reference: Reference,
    manifest: &Manifest,
) -> Result<(), Error> {
    let _permit = ctx
        .manifest_permits
        .acquire()
        .await
        .expect("semaphore never closed");
    registry
        .push_manifest(repo, &reference, manifest)
        .await
        .map_err(|e| Error::Push {
            destination: location(registry, repo),
            reference: reference.to_string(),
            source: Arc::new(e),
        })?;
    match reference {
        Reference::Digest(_) => add(&ctx.counters.manifests_pushed, 1),
        Reference::Tag(_) => add(&ctx.counters.tags_pushed, 1),
    }
    Ok(())
}

/// Distinct values in first-seen order, with each input's index into them.
fn dedup<K: std::hash::Hash + Eq + Clone>(keys: impl Iterator<Item = K>) -> (Vec<K>, Vec<usize>) {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let mut distinct = Vec::new();
    let index = keys
        .map(|k| {
            *seen.entry(k.clone()).or_insert_with(|| {
                distinct.push(k);
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, index)
}
