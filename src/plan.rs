//! Planning, pure: from validated manifests and what the registries hold,
//! decide what each destination needs. No I/O here; `crate::run` gathers
//! the inventories and hands them in, so every rule is tested without a
//! network.
//!
//! An edge is (source `<src registry>/<image>@<digest>`, destination
//! `<dest registry>/<image>`, tag or digest only). Each edge falls in one
//! class: already done, copy (the digest is missing), tag only (the digest is
//! there, the tag is not), tag move (the tag points elsewhere: an error,
//! never performed) or lost (the source digest is gone: an error at the
//! manifest line). One broken edge never blocks the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, Location};
use crate::manifest::Manifest;
use crate::registry::{Digest, Inventory, RepoName};

/// A repository in a registry, as the plan sees it: the registry's key (a
/// host such as `gcr.io`, or `oci:<dir>`) and the repository inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repo {
    pub registry: String,
    pub repo: RepoName,
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.registry.strip_prefix("oci:") {
            Some(_) => write!(f, "{}:{}", self.registry, self.repo),
            None => write!(f, "{}/{}", self.registry, self.repo),
        }
    }
}

impl Serialize for Repo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Splits a manifest registry name plus an image name into a [`Repo`]:
/// `gcr.io/k8s-staging-x` + `app` is registry `gcr.io`, repository
/// `k8s-staging-x/app`; `oci:./dir` + `app` is registry `oci:./dir`,
/// repository `app`.
pub fn repo_of(registry_name: &str, image: &str) -> Option<Repo> {
    let (registry, repo) = if registry_name.starts_with("oci:") {
        (registry_name.to_string(), image.to_string())
    } else {
        match registry_name.split_once('/') {
            Some((host, prefix)) => (host.to_string(), format!("{prefix}/{image}")),
            None => (registry_name.to_string(), image.to_string()),
        }
    };
    Some(Repo {
        registry,
        repo: repo.parse().ok()?,
    })
}

/// A tag (or none) wanted in one destination, with where the manifest asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedTag {
    pub tag: String,
    pub at: Location,
}

/// Everything the manifests want for one source image: the destinations
/// and their tags. Several manifests asking for the same image merge here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub source: Repo,
    pub digest: Digest,
    /// Where the digest is listed (first place), for "lost" findings.
    pub at: Location,
    /// Destination -> wanted tags (empty: by digest only).
    pub destinations: BTreeMap<Repo, Vec<WantedTag>>,
}

/// Every [`Want`] of a tree, in a stable order (source, then digest).
/// Entries whose names or digests do not parse were reported by `check`
/// and are skipped here.
pub fn wants(manifests: &[Manifest]) -> Vec<Want> {
    let mut by_key: BTreeMap<(Repo, Digest), Want> = BTreeMap::new();
    for manifest in manifests {
        let Some(source) = manifest.source() else {
            continue;
        };
        let destinations: Vec<&str> = manifest.destinations().map(|d| d.value.as_str()).collect();
        for image in &manifest.images {
            let (Some(name), Some(dmap)) = (&image.name, &image.dmap) else {
                continue;
            };
            let Some(source_repo) = repo_of(source, &name.value) else {
                continue;
            };
            let targets: Vec<Repo> = destinations
                .iter()
                .filter_map(|d| repo_of(d, &name.value))
                .collect();
            for entry in dmap {
                let Ok(digest) = entry.digest.value.parse::<Digest>() else {
                    continue;
                };
                let want = by_key
                    .entry((source_repo.clone(), digest))
                    .or_insert_with(|| Want {
                        source: source_repo.clone(),
                        digest,
                        at: entry.digest.at.clone(),
                        destinations: BTreeMap::new(),
                    });
                for target in &targets {
                    let tags = want.destinations.entry(target.clone()).or_default();
                    for tag in &entry.tags {
                        if !tags.iter().any(|t| t.tag == tag.value) {
                            tags.push(WantedTag {
                                tag: tag.value.clone(),
                                at: tag.at.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    by_key.into_values().collect()
}

/// What the registries hold, as far as the run found out.
#[derive(Default, Debug)]
pub struct Knowledge {
    /// Destination repository -> its inventory.
    pub inventories: HashMap<Repo, Inventory>,
    /// (repository, digest) found present by a HEAD where the inventory did
    /// not list it (e.g. untagged on a registry without the GCR extension).
    pub present: HashSet<(Repo, Digest)>,
    /// Source images whose digest the source registry does not have.
    pub lost: HashSet<(Repo, Digest)>,
}

/// A tag -> digest view of one inventory, built once per repository.
fn tag_index(inventory: &Inventory) -> HashMap<&str, Digest> {
    let mut index = HashMap::new();
    for (digest, entry) in &inventory.manifests {
        for tag in &entry.tags {
            index.insert(tag.as_str(), *digest);
        }
    }
    index
}

/// The (destination, digest) pairs that no inventory settles, so the run
/// asks with one HEAD each before planning a copy.
pub fn unknown_digests(wants: &[Want], knowledge: &Knowledge) -> Vec<(Repo, Digest)> {
    let mut out = Vec::new();
    for want in wants {
        for repo in want.destinations.keys() {
            let listed = knowledge
                .inventories
                .get(repo)
                .is_some_and(|inv| inv.manifests.contains_key(&want.digest));
            if !listed {
                out.push((repo.clone(), want.digest));
            }
        }
    }
    out
}

/// One destination's work for one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetPlan {
    pub destination: Repo,
    /// The digest is missing: copy it (children first, tags last).
    pub copy: bool,
    /// Tags to add (none of them points elsewhere today).
    pub tags: Vec<String>,
}

/// One source image's work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImagePlan {
    pub source: Repo,
    pub digest: Digest,
    pub targets: Vec<TargetPlan>,
}

/// Edge counts per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassCounts {
    /// Edges the destination already satisfies.
    pub done: usize,
    /// Edges whose digest must be copied.
    pub copy: usize,
    /// Edges that need only a tag.
    pub tag_only: usize,
    /// Tags that point at another digest in the destination (refused).
    pub tag_move: usize,
    /// Edges whose source digest is missing (refused).
    pub lost: usize,
}

/// The whole plan: the work, the refusals as diagnostics, the counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub images: Vec<ImagePlan>,
    #[serde(skip)]
    pub diagnostics: Vec<Diagnostic>,
    pub counts: ClassCounts,
}

impl Plan {
    /// True when nothing needs to change.
    pub fn is_noop(&self) -> bool {
        self.images.is_empty()
    }
}

/// Classifies every edge against what the registries hold.
pub fn classify(wants: &[Want], knowledge: &Knowledge) -> Plan {
    let indexes: HashMap<&Repo, HashMap<&str, Digest>> = knowledge
        .inventories
        .iter()
        .map(|(repo, inv)| (repo, tag_index(inv)))
        .collect();
    let mut plan = Plan::default();
    for want in wants {
        let lost = knowledge.lost.contains(&(want.source.clone(), want.digest));
        let mut lost_edges = 0;
        let mut targets = Vec::new();
        for (repo, wanted) in &want.destinations {
            let present = knowledge
                .inventories
                .get(repo)
                .is_some_and(|inv| inv.manifests.contains_key(&want.digest))
                || knowledge.present.contains(&(repo.clone(), want.digest));
            let index = indexes.get(repo);
            let mut tags = Vec::new();
            for wanted_tag in wanted {
                match index.and_then(|i| i.get(wanted_tag.tag.as_str())) {
                    Some(now) if *now == want.digest => plan.counts.done += 1,
                    Some(now) => {
                        plan.counts.tag_move += 1;
                        plan.diagnostics.push(
                            Diagnostic::new(
                                Code::RegistryTagMove,
                                Some(wanted_tag.at.clone()),
                                format!(
                                    "`{repo}:{}` already points at `{now}`, not `{}`; the tag is left as it is",
                                    wanted_tag.tag, want.digest
                                ),
                            )
                            .help("a published tag never moves; give this digest a new tag"),
                        );
                    }
                    None if lost => lost_edges += 1,
                    None => {
                        if present {
                            plan.counts.tag_only += 1;
                        } else {
                            plan.counts.copy += 1;
                        }
                        tags.push(wanted_tag.tag.clone());
                    }
                }
            }
            if wanted.is_empty() {
                match (present, lost) {
                    (true, _) => plan.counts.done += 1,
                    (false, true) => lost_edges += 1,
                    (false, false) => plan.counts.copy += 1,
                }
            }
            if !lost && (!present || !tags.is_empty()) {
                targets.push(TargetPlan {
                    destination: repo.clone(),
                    copy: !present,
                    tags,
                });
            }
        }
        if lost_edges > 0 {
            plan.counts.lost += lost_edges;
            plan.diagnostics.push(
                Diagnostic::new(
                    Code::SourceMissing,
                    Some(want.at.clone()),
                    format!(
                        "`{}@{}` does not exist in the source registry",
                        want.source, want.digest
                    ),
                )
                .help("push the image to staging first, or correct the digest; the other images are promoted"),
            );
        }
        if !targets.is_empty() {
            plan.images.push(ImagePlan {
                source: want.source.clone(),
                digest: want.digest,
                targets,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::read;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn wants_of(yaml: &str) -> Vec<Want> {
        let mut diagnostics = Vec::new();
        let manifest = read::plain("m.yaml".into(), yaml, &mut diagnostics).unwrap();
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        wants(&[manifest])
    }

    fn manifest() -> String {
        format!(
            "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\n- name: oci:./mirror\nimages:\n- name: app\n  dmap:\n    \"{A}\": [\"v1\", \"latest\"]\n    \"{B}\": []\n"
        )
    }

    fn repo(s: &str) -> Repo {
        match s.split_once(':') {
            Some(("oci", rest)) => {
                let (dir, r) = rest.rsplit_once(':').unwrap();
                Repo {
                    registry: format!("oci:{dir}"),
                    repo: r.parse().unwrap(),
                }
            }
            _ => {
                let (h, r) = s.split_once('/').unwrap();
                Repo {
                    registry: h.into(),
                    repo: r.parse().unwrap(),
                }
            }
        }
    }

    #[test]
    fn repos_split_host_and_path() {
        assert_eq!(
            repo_of("gcr.io/k8s-staging-x", "a/b").unwrap().to_string(),
            "gcr.io/k8s-staging-x/a/b"
        );
        let layout = repo_of("oci:./dir", "app").unwrap();
        assert_eq!(
            (layout.registry.as_str(), layout.repo.as_str()),
            ("oci:./dir", "app")
        );
        assert!(repo_of("gcr.io", "Bad").is_none());
    }

    #[test]
    fn empty_destinations_copy_everything() {
        let wants = wants_of(&manifest());
        assert_eq!(wants.len(), 2);
        assert_eq!(wants[0].destinations.len(), 2);
        let knowledge = Knowledge::default();
        assert_eq!(unknown_digests(&wants, &knowledge).len(), 4);
        let plan = classify(&wants, &knowledge);
        // A: 2 tags x 2 destinations; B: digest only x 2.
        assert_eq!(
            plan.counts,
            ClassCounts {
                copy: 6,
                ..ClassCounts::default()
            }
        );
        assert_eq!(plan.images.len(), 2);
        assert!(plan.images.iter().all(|i| i.targets.iter().all(|t| t.copy)));
        assert_eq!(plan.images[0].targets[0].tags, vec!["v1", "latest"]);
    }

    #[test]
    fn steady_state_is_a_noop_and_needs_no_head() {
        let wants = wants_of(&manifest());
        let mut knowledge = Knowledge::default();
        for dest in ["us.gcr.io/prod/app", "oci:./mirror:app"] {
            let mut inv = Inventory::default();
            inv.add_tag(A.parse().unwrap(), "v1");
            inv.add_tag(A.parse().unwrap(), "latest");
            inv.manifests.entry(B.parse().unwrap()).or_default();
            knowledge.inventories.insert(repo(dest), inv);
        }
        assert!(unknown_digests(&wants, &knowledge).is_empty());
        let plan = classify(&wants, &knowledge);
        assert!(plan.is_noop());
        assert_eq!(
            plan.counts,
            ClassCounts {
                done: 6,
                ..ClassCounts::default()
            }
        );
    }

    #[test]
    fn tag_only_tag_move_and_lost() {
        let wants = wants_of(&manifest());
        let mut knowledge = Knowledge::default();
        let mut inv = Inventory::default();
        // A is present with `v1`; `latest` points at B: a move, refused.
        inv.add_tag(A.parse().unwrap(), "v1");
        inv.add_tag(B.parse().unwrap(), "latest");
        knowledge
            .inventories
            .insert(repo("us.gcr.io/prod/app"), inv);
        // B is gone from staging.
        knowledge
            .lost
            .insert((repo("gcr.io/staging/app"), B.parse().unwrap()));
        let plan = classify(&wants, &knowledge);
        assert_eq!(
            plan.counts,
            ClassCounts {
                done: 2,
                copy: 2,
                tag_only: 0,
                tag_move: 1,
                lost: 1
            }
        );
        let codes: Vec<Code> = plan.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec![Code::RegistryTagMove, Code::SourceMissing]);
        // The move is reported at the tag's line, the lost image at its digest.
        assert_eq!(plan.diagnostics[0].location.as_ref().unwrap().line, 9);
        assert_eq!(plan.diagnostics[1].location.as_ref().unwrap().line, 10);
        // Only A to the layout mirror is left to copy; B is never planned.
        assert_eq!(plan.images.len(), 1);
        assert_eq!(plan.images[0].targets.len(), 1);
        assert_eq!(
            plan.images[0].targets[0].destination.registry,
            "oci:./mirror"
        );
    }

    #[test]
    fn digest_present_untagged_needs_only_tags() {
        let wants = wants_of(&manifest());
        let mut knowledge = Knowledge::default();
        knowledge
            .present
            .insert((repo("us.gcr.io/prod/app"), A.parse().unwrap()));
        let plan = classify(&wants, &knowledge);
        let a = &plan.images[0];
        let us = a
            .targets
            .iter()
            .find(|t| t.destination.registry == "us.gcr.io")
            .unwrap();
        assert!(!us.copy);
        assert_eq!(us.tags, vec!["v1", "latest"]);
        assert_eq!(plan.counts.tag_only, 2);
    }
}
