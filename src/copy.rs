//! The copy executor: makes each planned image present in its destinations,
//! children before parents and tags last, so that a tag never points at
//! anything incomplete and a killed run can simply be run again.
//!
//! It decides nothing about *what* to copy (that is `crate::plan`); it only
//! moves bytes, with bounded concurrency, reading each source blob once and
//! sending it at most once to each destination repository.

use std::sync::Arc;

use crate::registry::{Digest, Registry, RepoName};

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
