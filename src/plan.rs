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

pub mod signatures;

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};
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

/// A repository's index in [`Names`].
pub type RepoId = u32;
/// A tag's index in [`Names`].
pub type TagId = u32;

/// Every repository and tag name of a run, each stored once. Edges refer to
/// them by index, so that 20,000 digests to 22 mirrors (440,000 edges) do not
/// clone a string per edge.
#[derive(Default, Debug)]
pub struct Names {
    repos: Vec<Repo>,
    repo_ids: FxHashMap<Repo, RepoId>,
    tags: Vec<Box<str>>,
    tag_ids: FxHashMap<Box<str>, TagId>,
}

impl Names {
    fn intern_repo(&mut self, repo: Repo) -> RepoId {
        if let Some(id) = self.repo_ids.get(&repo) {
            return *id;
        }
        let id = RepoId::try_from(self.repos.len()).unwrap_or(RepoId::MAX);
        self.repos.push(repo.clone());
        self.repo_ids.insert(repo, id);
        id
    }

    fn intern_tag(&mut self, tag: &str) -> TagId {
        if let Some(id) = self.tag_ids.get(tag) {
            return *id;
        }
        let id = TagId::try_from(self.tags.len()).unwrap_or(TagId::MAX);
        self.tags.push(tag.into());
        self.tag_ids.insert(tag.into(), id);
        id
    }

    /// The id of a repository some manifest names, if any does.
    pub fn repo_id(&self, repo: &Repo) -> Option<RepoId> {
        self.repo_ids.get(repo).copied()
    }

    /// The repository of an id.
    pub fn repo(&self, id: RepoId) -> &Repo {
        &self.repos[id as usize]
    }

    /// The id of a tag some manifest names, if any does.
    pub fn tag_id(&self, tag: &str) -> Option<TagId> {
        self.tag_ids.get(tag).copied()
    }

    /// The tag of an id.
    pub fn tag(&self, id: TagId) -> &str {
        &self.tags[id as usize]
    }
}

/// A tag wanted in a destination, with where the manifest asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedTag {
    pub tag: TagId,
    pub at: Location,
}

/// Everything the manifests want for one source image. All destinations of
/// one manifest entry share one tag list; several manifests (or entries)
/// asking for the same image merge here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub source: RepoId,
    pub digest: Digest,
    /// Where the digest is listed (first place), for "lost" findings.
    pub at: Location,
    /// Tag lists, shared by destinations (an empty list: by digest only).
    pub tag_lists: Vec<Vec<WantedTag>>,
    /// Destination and the index of its tag list.
    pub destinations: Vec<(RepoId, usize)>,
}

impl Want {
    /// Each destination with its wanted tags.
    pub fn targets(&self) -> impl Iterator<Item = (RepoId, &[WantedTag])> {
        self.destinations
            .iter()
            .map(|(repo, list)| (*repo, self.tag_lists[*list].as_slice()))
    }

    fn add(&mut self, destinations: &[RepoId], tags: Vec<WantedTag>) {
        let list = self.tag_lists.len();
        self.tag_lists.push(tags);
        for repo in destinations {
            match self.destinations.iter().position(|(r, _)| r == repo) {
                None => self.destinations.push((*repo, list)),
                Some(i) => {
                    // The same destination again: it wants both lists.
                    let mut merged = self.tag_lists[self.destinations[i].1].clone();
                    for tag in &self.tag_lists[list] {
                        if !merged.iter().any(|t| t.tag == tag.tag) {
                            merged.push(tag.clone());
                        }
                    }
                    self.tag_lists.push(merged);
                    self.destinations[i].1 = self.tag_lists.len() - 1;
                }
            }
        }
    }
}

/// The wants of a tree and the names they use.
#[derive(Default, Debug)]
pub struct Wants {
    pub names: Names,
    pub items: Vec<Want>,
}

impl Wants {
    /// Every destination repository, each once, in id order.
    pub fn destinations(&self) -> Vec<RepoId> {
        let set: BTreeSet<RepoId> = self
            .items
            .iter()
            .flat_map(|w| w.destinations.iter().map(|(r, _)| *r))
            .collect();
        set.into_iter().collect()
    }

    /// Edges: one per (destination, tag), or per destination for a digest
    /// wanted without tags.
    pub fn edges(&self) -> usize {
        self.items
            .iter()
            .flat_map(Want::targets)
            .map(|(_, tags)| tags.len().max(1))
            .sum()
    }
}

/// Every [`Want`] of a tree, in a stable order (source, then digest).
/// Entries whose names or digests do not parse were reported by `check`
/// and are skipped here.
pub fn wants(manifests: &[Manifest]) -> Wants {
    let mut names = Names::default();
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
            let source_id = names.intern_repo(source_repo.clone());
            let targets: Vec<RepoId> = destinations
                .iter()
                .filter_map(|d| repo_of(d, &name.value))
                .map(|r| names.intern_repo(r))
                .collect();
            for entry in dmap {
                let Ok(digest) = entry.digest.value.parse::<Digest>() else {
                    continue;
                };
                let mut tags: Vec<WantedTag> = Vec::with_capacity(entry.tags.len());
                for tag in &entry.tags {
                    let id = names.intern_tag(&tag.value);
                    if !tags.iter().any(|t| t.tag == id) {
                        tags.push(WantedTag {
                            tag: id,
                            at: tag.at.clone(),
                        });
                    }
                }
                by_key
                    .entry((source_repo.clone(), digest))
                    .or_insert_with(|| Want {
                        source: source_id,
                        digest,
                        at: entry.digest.at.clone(),
                        tag_lists: Vec::new(),
                        destinations: Vec::new(),
                    })
                    .add(&targets, tags);
            }
        }
    }
    Wants {
        names,
        items: by_key.into_values().collect(),
    }
}

/// What the registries hold, as far as the run found out: only the facts
/// the plan needs. Each listing is checked against the wants of its
/// repository as it arrives and only the differences are kept, so the
/// steady state (every mirror holds everything: 440,000 edges for
/// registry.k8s.io) costs one entry per repository, not one per edge.
#[derive(Default, Debug)]
pub struct Knowledge {
    /// Destination repositories whose listing was absorbed.
    listed: FxHashSet<RepoId>,
    /// Wanted (repository, digest) pairs missing from their repository's
    /// listing (a HEAD may still find them: see [`unknown_digests`]).
    unlisted: FxHashSet<(RepoId, Digest)>,
    /// Wanted tags of listed repositories that do not point at their wanted
    /// digest: the digest they point at, or `None` when the tag is absent.
    tags: FxHashMap<(RepoId, TagId), Option<Digest>>,
    /// (repository, digest) found present by a HEAD.
    pub present: FxHashSet<(RepoId, Digest)>,
    /// Source images whose digest the source registry does not have.
    pub lost: FxHashSet<(RepoId, Digest)>,
    /// Destination repositories that could not be listed: where their tags
    /// point is unknown, and a tag is never overwritten, so they get nothing.
    pub unreadable: FxHashSet<RepoId>,
    /// Wanted (repository, digest) pairs whose repository's listing names
    /// no signature tag of the wanted format for the digest (see
    /// [`Knowledge::absorb_signatures`]): only the gaps are kept, so a
    /// signed steady state costs nothing here either.
    unsigned: FxHashSet<(RepoId, Digest)>,
    /// Indices of the wants per destination repository, built by the first
    /// [`Knowledge::absorb`].
    wants_of: Vec<Vec<u32>>,
}

impl Knowledge {
    /// Takes in one repository's listing: records which wanted digests it
    /// lacks and which wanted tags point elsewhere, then drops it.
    pub fn absorb(&mut self, wants: &Wants, repo: RepoId, inventory: Inventory) {
        self.index(wants);
        let mut tag_digest: FxHashMap<&str, Digest> = FxHashMap::default();
        for (digest, entry) in &inventory.manifests {
            for tag in &entry.tags {
                tag_digest.insert(tag, *digest);
            }
        }
        self.listed.insert(repo);
        let Some(indices) = self.wants_of.get(repo as usize) else {
            return;
        };
        for i in indices {
            let want = &wants.items[*i as usize];
            if !inventory.manifests.contains_key(&want.digest) {
                self.unlisted.insert((repo, want.digest));
            }
            let Some((_, list)) = want.destinations.iter().find(|(r, _)| *r == repo) else {
                continue;
            };
            for wanted in &want.tag_lists[*list] {
                let now = tag_digest.get(wants.names.tag(wanted.tag)).copied();
                if now != Some(want.digest) {
                    self.tags.insert((repo, wanted.tag), now);
                }
            }
        }
    }

    fn index(&mut self, wants: &Wants) {
        if !self.wants_of.is_empty() {
            return;
        }
        self.wants_of = vec![Vec::new(); wants.names.repos.len()];
        for (i, want) in wants.items.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for (destination, _) in &want.destinations {
                self.wants_of[*destination as usize].push(i);
            }
        }
    }

    /// Takes in the signature tags among the tag names of `repo`'s listing
    /// (`sha256-<hex>.sig`, `sha256-<hex>`: [`crate::sign::listed`]) and
    /// keeps the wanted digests that lack the tag of the wanted format
    /// (`legacy`: the `.sig` tag, else the referrers tag).
    pub fn absorb_signatures<'t>(
        &mut self,
        wants: &Wants,
        repo: RepoId,
        tags: impl IntoIterator<Item = &'t str>,
        legacy: bool,
    ) {
        self.index(wants);
        let listed = crate::sign::listed::signature_tags(tags);
        let Some(indices) = self.wants_of.get(repo as usize) else {
            return;
        };
        for i in indices {
            let digest = wants.items[*i as usize].digest;
            if !listed.get(&digest).is_some_and(|l| l.has(legacy)) {
                self.unsigned.insert((repo, digest));
            }
        }
    }

    /// True when `repo`'s listing named the signature tag of `digest`
    /// (see [`Knowledge::absorb_signatures`]).
    pub fn is_signed(&self, repo: RepoId, digest: Digest) -> bool {
        self.listed.contains(&repo) && !self.unsigned.contains(&(repo, digest))
    }

    /// True when `repo` is known to hold `digest`.
    pub fn is_present(&self, repo: RepoId, digest: Digest) -> bool {
        self.present.contains(&(repo, digest))
            || (self.listed.contains(&repo) && !self.unlisted.contains(&(repo, digest)))
    }

    /// Where `tag` of `repo` points, as far as known, asked on behalf of a
    /// want of `wanted`.
    fn tag(&self, repo: RepoId, tag: TagId, wanted: Digest) -> Option<Digest> {
        if !self.listed.contains(&repo) {
            return None;
        }
        match self.tags.get(&(repo, tag)) {
            Some(now) => *now,
            None => Some(wanted),
        }
    }
}

/// The (destination, digest) pairs that no listing settled, so the run
/// asks with one HEAD each before planning a copy.
pub fn unknown_digests(wants: &Wants, knowledge: &Knowledge) -> Vec<(RepoId, Digest)> {
    let mut out = Vec::new();
    for want in &wants.items {
        for (repo, _) in &want.destinations {
            if !knowledge.is_present(*repo, want.digest) {
                out.push((*repo, want.digest));
            }
        }
    }
    out
}

/// The source images some destination lacks, which the run HEADs before
/// planning their copy: a source that lacks its digest is lost.
pub fn sources_to_copy(wants: &Wants, knowledge: &Knowledge) -> Vec<(RepoId, Digest)> {
    wants
        .items
        .iter()
        .filter(|w| !knowledge.lost.contains(&(w.source, w.digest)))
        .filter(|w| {
            w.targets()
                .any(|(repo, _)| !knowledge.is_present(repo, w.digest))
        })
        .map(|w| (w.source, w.digest))
        .collect()
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
    /// Where the manifests list this image (for diagnostics and the
    /// promotion record); not part of the JSON report.
    #[serde(skip)]
    pub at: Location,
}

/// Edge counts per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
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

impl ClassCounts {
    /// Every edge, whatever its class.
    pub fn total(&self) -> usize {
        self.done + self.copy + self.tag_only + self.tag_move + self.lost
    }

    /// Adds `other`'s counts (shards of one run).
    pub fn add(&mut self, other: &ClassCounts) {
        self.done += other.done;
        self.copy += other.copy;
        self.tag_only += other.tag_only;
        self.tag_move += other.tag_move;
        self.lost += other.lost;
    }
}

/// The whole plan: the work, the refusals as diagnostics, the counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub images: Vec<ImagePlan>,
    #[serde(skip)]
    pub diagnostics: Vec<Diagnostic>,
    pub counts: ClassCounts,
    /// Digests to sign, and signatures to replicate, when signing is on
    /// ([`signatures::plan`]).
    pub signatures: Vec<signatures::SignatureWork>,
}

impl Plan {
    /// True when nothing needs to change: nothing to copy or tag, and no
    /// signature to write.
    pub fn is_noop(&self) -> bool {
        self.images.is_empty() && self.signatures.is_empty()
    }
}

/// Classifies every edge against what the registries hold.
pub fn classify(wants: &Wants, knowledge: &Knowledge) -> Plan {
    let names = &wants.names;
    let mut plan = Plan::default();
    for want in &wants.items {
        let lost = knowledge.lost.contains(&(want.source, want.digest));
        let mut lost_edges = 0;
        let mut targets = Vec::new();
        for (repo, wanted) in want.targets() {
            let present = knowledge.is_present(repo, want.digest);
            let mut tags = Vec::new();
            for wanted_tag in wanted {
                match knowledge.tag(repo, wanted_tag.tag, want.digest) {
                    Some(now) if now == want.digest => plan.counts.done += 1,
                    Some(now) => {
                        plan.counts.tag_move += 1;
                        plan.diagnostics.push(
                            Diagnostic::new(
                                Code::RegistryTagMove,
                                Some(wanted_tag.at.clone()),
                                format!(
                                    "`{}:{}` already points at `{now}`, not `{}`; the tag is left as it is",
                                    names.repo(repo),
                                    names.tag(wanted_tag.tag),
                                    want.digest
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
                        tags.push(names.tag(wanted_tag.tag).to_string());
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
                    destination: names.repo(repo).clone(),
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
                        names.repo(want.source),
                        want.digest
                    ),
                )
                .help("push the image to staging first, or correct the digest; the other images are promoted"),
            );
        }
        if !targets.is_empty() {
            plan.images.push(ImagePlan {
                source: names.repo(want.source).clone(),
                digest: want.digest,
                targets,
                at: want.at.clone(),
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

    fn wants_of(yaml: &str) -> Wants {
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

    fn id(wants: &Wants, s: &str) -> RepoId {
        let repo = match s.split_once(':') {
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
        };
        wants.names.repo_id(&repo).unwrap()
    }

    fn digest(s: &str) -> Digest {
        s.parse().unwrap()
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
        assert_eq!(wants.items.len(), 2);
        assert_eq!(wants.items[0].destinations.len(), 2);
        // One tag list shared by both destinations.
        assert_eq!(wants.items[0].tag_lists.len(), 1);
        assert_eq!(wants.edges(), 6);
        let knowledge = Knowledge::default();
        assert_eq!(unknown_digests(&wants, &knowledge).len(), 4);
        let plan = classify(&wants, &knowledge);
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
            inv.add_tag(digest(A), "v1");
            inv.add_tag(digest(A), "latest");
            inv.add_tag(digest(A), "unrelated-tag");
            inv.manifests.entry(digest(B)).or_default();
            knowledge.absorb(&wants, id(&wants, dest), inv);
        }
        // Nothing differs from the wants: nothing is kept but the listings.
        assert!(knowledge.tags.is_empty() && knowledge.unlisted.is_empty());
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
        inv.add_tag(digest(A), "v1");
        inv.add_tag(digest(B), "latest");
        knowledge.absorb(&wants, id(&wants, "us.gcr.io/prod/app"), inv);
        // B is gone from staging.
        knowledge
            .lost
            .insert((id(&wants, "gcr.io/staging/app"), digest(B)));
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
            .insert((id(&wants, "us.gcr.io/prod/app"), digest(A)));
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

    #[test]
    fn a_destination_named_twice_wants_both_tag_lists() {
        let yaml = format!(
            "registries:\n- name: gcr.io/staging\n  src: true\n- name: us.gcr.io/prod\nimages:\n- name: app\n  dmap:\n    \"{A}\": [\"v1\"]\n- name: app\n  dmap:\n    \"{A}\": [\"v1\", \"v1.0\"]\n"
        );
        let wants = wants_of(&yaml);
        assert_eq!(wants.items.len(), 1);
        let (_, tags) = wants.items[0].targets().next().unwrap();
        let names: Vec<&str> = tags.iter().map(|t| wants.names.tag(t.tag)).collect();
        assert_eq!(names, vec!["v1", "v1.0"]);
    }
}
