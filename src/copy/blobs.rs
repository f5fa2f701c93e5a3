//! Blob fan-out: every (destination repository, blob) pair the jobs need is
//! assigned to exactly one group, keyed by source registry and digest. A
//! group checks which destinations lack the blob, mounts it where the
//! destination is the source's own registry, and uploads it to the rest from
//! one read of the source: small blobs from memory, hashed once there for
//! every destination; a large one straight through for a single destination
//! and from a temporary file for several.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future;

use super::source::ImageTree;
use super::{BlobTransfer, Ctx, Error, ProgressEvent, location};
use crate::counter::add;
use crate::registry::{self, Blob, Checked, Digest, Registry, RepoName, Spooled};

/// Blobs up to this size are read into memory once, whatever the number of
/// destinations; a larger one streams straight through to a single
/// destination, and is spooled to a file for several.
pub const IN_MEMORY_MAX: u64 = 8 * 1024 * 1024;

/// Bytes of small blobs held in memory at once, across all groups.
pub(super) const MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// One destination repository of a group.
struct Destination {
    registry: Arc<dyn Registry>,
    repo: RepoName,
}

/// One source blob and every destination repository it may have to go to.
pub(super) struct Group {
    source: Arc<dyn Registry>,
    source_repo: RepoName,
    digest: Digest,
    size: u64,
    destinations: Vec<Destination>,
}

/// One result per destination of a group, in its order.
pub(super) type GroupResults = Arc<Vec<Result<(), Error>>>;

/// The groups of a run and what each (job, target) waits for.
pub(super) struct BlobPlan {
    pub groups: Vec<Group>,
    /// `needs[job][target]`: (group, destination slot) pairs.
    pub needs: Vec<Vec<Vec<(usize, usize)>>>,
}

impl BlobPlan {
    /// Assign every blob of every copying target to a group. A blob already
    /// claimed for the same destination repository (by another job or
    /// target) is shared, not assigned twice.
    pub fn new(jobs: &[Arc<super::CopyJob>], trees: &[Result<Arc<ImageTree>, Error>]) -> BlobPlan {
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: HashMap<(String, Digest), usize> = HashMap::new();
        let mut slot_of: HashMap<(String, RepoName, Digest), (usize, usize)> = HashMap::new();
        let mut needs = Vec::with_capacity(jobs.len());
        for (job, tree) in jobs.iter().zip(trees) {
            let mut job_needs = Vec::with_capacity(job.targets.len());
            for target in &job.targets {
                let mut deps = Vec::new();
                if let (true, Ok(tree)) = (target.copy, tree) {
                    for blob in &tree.blobs {
                        let key = (
                            target.registry.name().to_owned(),
                            target.repo.clone(),
                            blob.digest,
                        );
                        if let Some(&dep) = slot_of.get(&key) {
                            deps.push(dep);
                            continue;
                        }
                        let g = *group_of
                            .entry((job.source.name().to_owned(), blob.digest))
                            .or_insert_with(|| {
                                groups.push(Group {
                                    source: job.source.clone(),
                                    source_repo: job.source_repo.clone(),
                                    digest: blob.digest,
                                    size: blob.size,
                                    destinations: Vec::new(),
                                });
                                groups.len() - 1
                            });
                        groups[g].destinations.push(Destination {
                            registry: target.registry.clone(),
                            repo: target.repo.clone(),
                        });
                        let dep = (g, groups[g].destinations.len() - 1);
                        slot_of.insert(key, dep);
                        deps.push(dep);
                    }
                }
                job_needs.push(deps);
            }
            needs.push(job_needs);
        }
        BlobPlan { groups, needs }
    }

    /// (destination repository, blob) pairs.
    pub fn destination_count(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.destinations.len() as u64)
            .sum()
    }

    /// Total size of those pairs.
    pub fn destination_bytes(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.size * g.destinations.len() as u64)
            .sum()
    }
}

impl Group {
    fn fail(&self, slot: usize, error: Arc<registry::Error>) -> Error {
        let d = &self.destinations[slot];
        Error::Blob {
            destination: location(d.registry.as_ref(), &d.repo),
            digest: self.digest,
            source: error,
        }
    }

    /// The source blob, counting the bytes it reads.
    async fn read(&self, ctx: &Ctx) -> registry::Result<Blob> {
        let blob = self
            .source
            .get_blob(&self.source_repo, &self.digest)
            .await?;
        let counting = ctx.clone();
        Ok(blob.inspect(move |chunk| {
            add(
                &counting.counters.bytes_read_from_source,
                chunk.len() as u64,
            );
        }))
    }

    /// The whole (small) blob in memory, refusing more than its size,
    /// hashed once as it arrives.
    async fn read_to_memory(&self, ctx: &Ctx) -> registry::Result<Checked> {
        self.read(ctx).await?.collect(self.size).await
    }

    /// The whole (large) blob in a temporary file, hashed once as it is
    /// written.
    async fn spool(&self, ctx: &Ctx) -> registry::Result<Spooled> {
        self.read(ctx).await?.spool(self.size, &ctx.spool_dir).await
    }
}

/// Each destination's result as the group's steps settle it, counted and
/// reported as progress when it is settled.
struct Outcomes<'a> {
    ctx: &'a Ctx,
    group: &'a Group,
    results: Vec<Option<Result<(), Error>>>,
}

impl Outcomes<'_> {
    fn done(&mut self, slot: usize, transfer: BlobTransfer, result: Result<(), Error>) {
        let size = self.group.size;
        if result.is_ok() {
            let counters = &self.ctx.counters;
            match transfer {
                BlobTransfer::Skipped => add(&counters.blobs_skipped, 1),
                BlobTransfer::Mounted => add(&counters.blobs_mounted, 1),
                BlobTransfer::Uploaded => {
                    add(&counters.blobs_uploaded, 1);
                    add(&counters.bytes_uploaded, size);
                }
            }
        }
        self.ctx.emit(ProgressEvent::BlobDone {
            bytes: size,
            transfer,
            ok: result.is_ok(),
        });
        self.results[slot] = Some(result);
    }

    fn finish(self) -> GroupResults {
        Arc::new(
            self.results
                .into_iter()
                .map(|r| r.expect("every destination has a result"))
                .collect(),
        )
    }
}

/// One upload's result per destination slot.
type Uploaded = Vec<(usize, Result<(), Arc<registry::Error>>)>;

/// Make the group's blob present in every destination. Never holds a
/// permit while waiting on another task.
pub(super) async fn transfer(ctx: Ctx, group: Group) -> GroupResults {
    let (ctx, group) = (&ctx, &group);
    let mut outcomes = Outcomes {
        ctx,
        group,
        results: vec![None; group.destinations.len()],
    };
    let missing = find_missing(&mut outcomes).await;
    let upload = mount(&mut outcomes, missing).await;
    let uploaded = match upload.as_slice() {
        [] => Vec::new(),
        slots if group.size <= IN_MEMORY_MAX => upload_from_memory(ctx, group, slots).await,
        &[slot] => upload_one(ctx, group, slot).await,
        slots => upload_from_spool(ctx, group, slots).await,
    };
    for (slot, result) in uploaded {
        let result = result.map_err(|e| group.fail(slot, e));
        outcomes.done(slot, BlobTransfer::Uploaded, result);
    }
    outcomes.finish()
}

/// The destinations that lack the blob; the others are settled.
async fn find_missing(outcomes: &mut Outcomes<'_>) -> Vec<usize> {
    let (ctx, group) = (outcomes.ctx, outcomes.group);
    let present = future::join_all(group.destinations.iter().map(|d| async {
        let _permit = ctx.permit().await;
        d.registry.blob_exists(&d.repo, &group.digest).await
    }))
    .await;
    let mut missing = Vec::new();
    for (slot, found) in present.into_iter().enumerate() {
        match found {
            Ok(Some(_)) => outcomes.done(slot, BlobTransfer::Skipped, Ok(())),
            Ok(None) => missing.push(slot),
            Err(e) => {
                let error = group.fail(slot, Arc::new(e));
                outcomes.done(slot, BlobTransfer::Skipped, Err(error));
            }
        }
    }
    missing
}

/// Mounts the blob where the destination is the source's registry; returns
/// the destinations it must be uploaded to.
async fn mount(outcomes: &mut Outcomes<'_>, missing: Vec<usize>) -> Vec<usize> {
    let (ctx, group) = (outcomes.ctx, outcomes.group);
    let (same, mut upload): (Vec<usize>, Vec<usize>) = missing
        .into_iter()
        .partition(|&s| group.destinations[s].registry.name() == group.source.name());
    let mounts = future::join_all(same.iter().map(|&slot| async move {
        let d = &group.destinations[slot];
        let _permit = ctx.permit().await;
        (
            slot,
            d.registry
                .mount_blob(&d.repo, &group.digest, &group.source_repo)
                .await,
        )
    }))
    .await;
    for (slot, mounted) in mounts {
        match mounted {
            Ok(true) => outcomes.done(slot, BlobTransfer::Mounted, Ok(())),
            Ok(false) => upload.push(slot),
            Err(e) => {
                tracing::debug!(digest = %group.digest, error = %e, "mount failed; uploading instead");
                upload.push(slot);
            }
        }
    }
    upload
}

/// One destination: streamed straight through from the source.
async fn upload_one(ctx: &Ctx, group: &Group, slot: usize) -> Uploaded {
    let d = &group.destinations[slot];
    let _permit = ctx.permit().await;
    let result = match group.read(ctx).await {
        Ok(blob) => {
            d.registry
                .push_blob(&d.repo, &group.digest, group.size, blob.into_stream())
                .await
        }
        Err(e) => Err(e),
    };
    vec![(slot, result.map_err(Arc::new))]
}

/// A small blob: read into memory once, and hashed there once, for every
/// destination.
async fn upload_from_memory(ctx: &Ctx, group: &Group, slots: &[usize]) -> Uploaded {
    let _memory = ctx
        .memory
        .acquire_many(group.size as u32)
        .await
        .expect("semaphore never closed");
    let content = {
        let _permit = ctx.permit().await;
        group.read_to_memory(ctx).await
    };
    let checked = match content {
        Ok(checked) => checked,
        Err(e) => return all_failed(slots, e),
    };
    fan_out(ctx, group, slots, |d| {
        d.registry.push_checked(&d.repo, &checked)
    })
    .await
}

/// A large blob for several destinations: spooled to a file once, and
/// hashed once as it was written.
async fn upload_from_spool(ctx: &Ctx, group: &Group, slots: &[usize]) -> Uploaded {
    let spooled = {
        let _permit = ctx.permit().await;
        group.spool(ctx).await
    };
    let spooled = match spooled {
        Ok(spooled) => spooled,
        Err(e) => return all_failed(slots, e),
    };
    fan_out(ctx, group, slots, |d| {
        d.registry.push_spooled(&d.repo, &spooled)
    })
    .await
}

/// `push` to each of `slots` at once, each holding a permit while it runs.
async fn fan_out<'a, F, Fut>(ctx: &Ctx, group: &'a Group, slots: &[usize], push: F) -> Uploaded
where
    F: Fn(&'a Destination) -> Fut,
    Fut: Future<Output = registry::Result<()>>,
{
    let push = &push;
    future::join_all(slots.iter().map(|&slot| async move {
        let _permit = ctx.permit().await;
        let result = push(&group.destinations[slot]).await;
        (slot, result.map_err(Arc::new))
    }))
    .await
}

/// The one read of the source failed: so did every upload from it.
fn all_failed(slots: &[usize], error: registry::Error) -> Uploaded {
    let error = Arc::new(error);
    slots.iter().map(|&s| (s, Err(error.clone()))).collect()
}
