//! Sharding: split one run's work over N processes that share nothing,
//! scheduled by the CI system (a GitHub Actions matrix) or the cluster (a
//! Kubernetes Indexed Job). There is no coordinator: every shard reads all
//! the manifests and keeps the part that hashes to its index.
//!
//! The unit of work is a *group*: the source repositories that share a
//! destination repository, with all their destinations. A source image goes
//! whole to one shard (its copies to every mirror, its signature, its
//! replication, its attestations), and no destination repository is written
//! by two shards, even when two manifests promote into the same repository.
//! In the registry.k8s.io tree every group is a single source repository.
//!
//! A group's shard is a stable hash (FNV-1a, 64 bits) of the name of its
//! first source repository (`host/path/image`), modulo N: the same manifests
//! give the same split on every machine, every Rust version and every run.
//! This module plans nothing and does no I/O.

use std::fmt;
use std::str::FromStr;

use crate::plan::{RepoId, Wants};

/// The environment variable a Kubernetes Indexed Job sets in each pod: the
/// pod's completion index, `0..completions`.
pub const INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

/// One shard of N: `index` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a shard could not be worked out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("`{0}` is not a shard: write it as I/N, e.g. `0/3` for the first of three")]
    Syntax(String),
    #[error("shard {index}/{count} does not exist: the index runs from 0 to {}", count.saturating_sub(1))]
    OutOfRange { index: u32, count: u32 },
    #[error("--shards needs at least one shard")]
    NoShards,
    #[error(
        "--shards {count} needs the shard index in ${INDEX_VARIABLE} (a Kubernetes Indexed Job sets it); it is {found}"
    )]
    MissingIndex { count: u32, found: String },
}

impl Shard {
    /// Shard `index` of `count`, checked.
    ///
    /// # Errors
    ///
    /// When `count` is 0 or `index` is not below it.
    pub fn new(index: u32, count: u32) -> Result<Shard, Error> {
        if count == 0 {
            return Err(Error::NoShards);
        }
        if index >= count {
            return Err(Error::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// Shard `$JOB_COMPLETION_INDEX` of `count`, for `--shards N`.
    ///
    /// # Errors
    ///
    /// When the variable is unset, not a number, or out of range.
    pub fn from_index_variable(count: u32, value: Option<&str>) -> Result<Shard, Error> {
        let Some(value) = value else {
            return Err(Error::MissingIndex {
                count,
                found: "not set".to_owned(),
            });
        };
        let index = value.trim().parse().map_err(|_| Error::MissingIndex {
            count,
            found: format!("`{value}`, not a number"),
        })?;
        Shard::new(index, count)
    }

    /// True when the group named by `key` belongs to this shard.
    pub fn owns(&self, key: &str) -> bool {
        fnv1a64(key.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `I/N`.
    fn from_str(s: &str) -> Result<Shard, Error> {
        let syntax = || Error::Syntax(s.to_owned());
        let (index, count) = s.split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

/// FNV-1a, 64 bits: small, fast, and fixed by its published constants, so
/// that a split never changes under a new compiler or library (unlike
/// `std`'s `DefaultHasher`, which promises no stability).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// Which group each repository belongs to: source repositories joined with
/// every destination they write (union-find over repository ids), so that
/// sources sharing a destination land in one shard.
struct Groups {
    parent: Vec<RepoId>,
}

impl Groups {
    fn new(len: usize) -> Groups {
        Groups {
            parent: (0..len)
                .map(|i| RepoId::try_from(i).unwrap_or(RepoId::MAX))
                .collect(),
        }
    }

    fn root(&mut self, mut id: RepoId) -> RepoId {
        while self.parent[id as usize] != id {
            let grand = self.parent[self.parent[id as usize] as usize];
            self.parent[id as usize] = grand;
            id = grand;
        }
        id
    }

    fn join(&mut self, a: RepoId, b: RepoId) {
        let (a, b) = (self.root(a), self.root(b));
        // The smaller id becomes the root: ids follow manifest order, so the
        // group is named after its first source whatever the join order.
        if a < b {
            self.parent[b as usize] = a;
        } else {
            self.parent[a as usize] = b;
        }
    }
}

/// Keeps only the wants of `shard`'s groups. Destinations, listings and
/// copies all derive from the wants, so the rest of the run follows.
pub fn retain(wants: &mut Wants, shard: Shard) {
    if shard.count == 1 {
        return;
    }
    let repos = wants
        .items
        .iter()
        .flat_map(|w| std::iter::once(w.source).chain(w.destinations.iter().map(|(r, _)| *r)))
        .max()
        .map_or(0, |max| max as usize + 1);
    let mut groups = Groups::new(repos);
    for want in &wants.items {
        for (destination, _) in &want.destinations {
            groups.join(want.source, *destination);
        }
    }
    // A group's key is its root's name: the group's smallest id, which is
    // a source (interned before its destinations) unless a destination was
    // first named by an image without a valid digest. Either way, every
    // shard computes the same key from the same manifests.
    let mut owned: Vec<Option<bool>> = vec![None; repos];
    let names = &wants.names;
    wants.items.retain(|want| {
        let root = groups.root(want.source);
        *owned[root as usize].get_or_insert_with(|| shard.owns(&names.repo(root).to_string()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::read;
    use crate::plan;

    #[test]
    fn fnv1a64_matches_the_published_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parses_and_checks_shards() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(
            "3/3".parse::<Shard>(),
            Err(Error::OutOfRange { index: 3, count: 3 })
        );
        assert_eq!("0/0".parse::<Shard>(), Err(Error::NoShards));
        assert!(matches!("1-3".parse::<Shard>(), Err(Error::Syntax(_))));
        assert!(matches!("a/3".parse::<Shard>(), Err(Error::Syntax(_))));
        assert_eq!(
            Shard::from_index_variable(4, Some("2")),
            Ok(Shard { index: 2, count: 4 })
        );
        assert!(matches!(
            Shard::from_index_variable(4, None),
            Err(Error::MissingIndex { .. })
        ));
        assert!(matches!(
            Shard::from_index_variable(4, Some("x")),
            Err(Error::MissingIndex { .. })
        ));
        assert_eq!(Shard { index: 2, count: 5 }.to_string(), "2/5");
    }

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn wants_of(yamls: &[String]) -> Wants {
        let manifests: Vec<_> = yamls
            .iter()
            .enumerate()
            .map(|(i, yaml)| {
                let mut diagnostics = Vec::new();
                read::plain(format!("m{i}.yaml").into(), yaml, &mut diagnostics).unwrap()
            })
            .collect();
        plan::wants(&manifests)
    }

    fn images(count: usize) -> String {
        let mut yaml = String::from(
            "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\n- name: eu.gcr.io/prod\nimages:\n",
        );
        for i in 0..count {
            yaml.push_str(&format!(
                "- name: img{i}\n  dmap:\n    \"{A}\": [\"v1\"]\n    \"{B}\": []\n"
            ));
        }
        yaml
    }

    fn split(count: u32) -> Vec<Wants> {
        (0..count)
            .map(|index| {
                let mut part = wants_of(&[images(40)]);
                retain(&mut part, Shard::new(index, count).unwrap());
                part
            })
            .collect()
    }

    #[test]
    fn shards_partition_the_images_whole() {
        let whole = wants_of(&[images(40)]);
        let parts = split(3);
        let mut seen = std::collections::BTreeSet::new();
        for part in &parts {
            // Some work in every shard of a 40-image tree.
            assert!(!part.items.is_empty());
            for want in &part.items {
                // Both digests of an image and both mirrors stay together.
                assert_eq!(want.destinations.len(), 2);
                assert!(
                    part.items
                        .iter()
                        .filter(|w| w.source == want.source)
                        .count()
                        == 2
                );
                assert!(seen.insert((want.source, want.digest)));
            }
        }
        assert_eq!(seen.len(), whole.items.len());
        assert_eq!(parts.iter().map(Wants::edges).sum::<usize>(), whole.edges());
        // One shard of one is everything.
        let mut all = wants_of(&[images(40)]);
        retain(&mut all, Shard::new(0, 1).unwrap());
        assert_eq!(all.items.len(), whole.items.len());
    }

    #[test]
    fn sources_sharing_a_destination_share_a_shard() {
        // Two staging projects promote `app` into the same production
        // repository: they must not be written from two shards.
        let other = format!(
            "registries:\n- name: gcr.io/other-staging\n  src: true\n- name: us.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"{B}\": [\"v2\"]\n"
        );
        let mine = format!(
            "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"{A}\": [\"v1\"]\n"
        );
        for count in 2..8 {
            let mut placed = Vec::new();
            for index in 0..count {
                let mut part = wants_of(&[mine.clone(), other.clone()]);
                retain(&mut part, Shard::new(index, count).unwrap());
                if !part.items.is_empty() {
                    assert_eq!(part.items.len(), 2, "split apart with {count} shards");
                    placed.push(index);
                }
            }
            assert_eq!(placed.len(), 1);
        }
    }
}
