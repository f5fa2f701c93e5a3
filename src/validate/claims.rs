//! Rules over the whole tree, not one file: which digest each destination
//! tag points at. A destination reference (`<dest registry>/<image>:<tag>`)
//! claimed by two digests anywhere in the tree is a conflict; against a base
//! revision, a tag that points elsewhere is a move and a vanished entry a
//! removal.
//!
//! Claims are keyed by the full destination repository, so two projects
//! whose registry and image names add up to the same path collide too. To
//! stay fast on registry.k8s.io (20,000 digests to 22 mirrors, 440,000
//! destination tags), tags are indexed once per *group* (one image name in
//! one manifest), and groups are compared only where two of them share a
//! destination repository; a finding shared by every mirror is reported
//! once, with the count.

use std::collections::hash_map::Entry;

// FxHash: keys are digests and tags from reviewed manifests, and SipHash was
// a tenth of `check`'s time on the k8s.io corpus.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::diagnostic::{Code, Diagnostic, Location};
use crate::manifest::Manifest;

/// Interns destination repository paths (`<registry>/<image>`) to small ids.
#[derive(Default)]
struct Repos {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Repos {
    fn intern(&mut self, name: String) -> u32 {
        match self.ids.entry(name) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
                self.names.push(e.key().clone());
                e.insert(id);
                id
            }
        }
    }
}

#[derive(Clone, Copy)]
struct TagClaim<'a> {
    digest: &'a str,
    at: &'a Location,
}

/// Every entry of one image name in one manifest: promoted to the same
/// destination repositories, so one tag index serves them all.
struct Group<'a> {
    /// tag -> the first digest claiming it.
    tags: HashMap<&'a str, TagClaim<'a>>,
    /// digest -> where it is first listed.
    digests: HashMap<&'a str, &'a Location>,
    /// Where the first entry's `dmap` is.
    image_at: &'a Location,
    /// The destination repositories.
    repos: Vec<u32>,
}

/// A tag claimed by two digests: (first, second, tag) -> repositories.
type Conflicts<'a> = Vec<(TagClaim<'a>, TagClaim<'a>, &'a str, Vec<u32>)>;

/// Who claims what in one tree.
struct Claims<'a> {
    groups: Vec<Group<'a>>,
    /// repository id -> the groups promoting into it (usually one).
    owners: HashMap<u32, Vec<u32>>,
}

impl<'a> Claims<'a> {
    fn build(manifests: &'a [Manifest], repos: &mut Repos, conflicts: &mut Conflicts<'a>) -> Self {
        let mut groups: Vec<Group<'a>> = Vec::new();
        let mut owners: HashMap<u32, Vec<u32>> = HashMap::default();
        for manifest in manifests {
            let destinations: Vec<&str> = manifest
                .destinations()
                .map(|d| d.value.as_str())
                .filter(|d| !d.is_empty())
                .collect();
            let mut by_name: HashMap<&str, usize> = HashMap::default();
            for image in &manifest.images {
                let (Some(name), Some(dmap)) = (&image.name, &image.dmap) else {
                    continue;
                };
                let index = *by_name.entry(name.value.as_str()).or_insert_with(|| {
                    let repos: Vec<u32> = destinations
                        .iter()
                        .map(|d| repos.intern(format!("{d}/{}", name.value)))
                        .collect();
                    let gid = u32::try_from(groups.len()).unwrap_or(u32::MAX);
                    for repo in &repos {
                        owners.entry(*repo).or_default().push(gid);
                    }
                    groups.push(Group {
                        tags: HashMap::default(),
                        digests: HashMap::default(),
                        image_at: &image.dmap_at,
                        repos,
                    });
                    groups.len() - 1
                });
                let group = &mut groups[index];
                for entry in dmap {
                    group
                        .digests
                        .entry(entry.digest.value.as_str())
                        .or_insert(&entry.digest.at);
                    for tag in &entry.tags {
                        let claim = TagClaim {
                            digest: &entry.digest.value,
                            at: &tag.at,
                        };
                        match group.tags.entry(tag.value.as_str()) {
                            Entry::Vacant(e) => {
                                e.insert(claim);
                            }
                            Entry::Occupied(e) if e.get().digest != claim.digest => {
                                conflicts.push((
                                    *e.get(),
                                    claim,
                                    tag.value.as_str(),
                                    group.repos.clone(),
                                ));
                            }
                            Entry::Occupied(_) => {}
                        }
                    }
                }
            }
        }
        Claims { groups, owners }
    }

    /// Conflicts between different groups that share a repository.
    fn cross_conflicts(&self, conflicts: &mut Conflicts<'a>) {
        let mut shared: HashMap<(u32, u32), Vec<u32>> = HashMap::default();
        for (repo, gids) in &self.owners {
            for (i, a) in gids.iter().enumerate() {
                for b in &gids[i + 1..] {
                    shared.entry((*a, *b)).or_default().push(*repo);
                }
            }
        }
        let mut pairs: Vec<_> = shared.into_iter().collect();
        pairs.sort_unstable_by_key(|(pair, _)| *pair);
        for ((a, b), repos) in pairs {
            let (first, second) = (&self.groups[a as usize], &self.groups[b as usize]);
            let mut found: Vec<_> = second
                .tags
                .iter()
                .filter_map(|(tag, claim)| {
                    let earlier = first.tags.get(tag)?;
                    (earlier.digest != claim.digest).then_some((*earlier, *claim, *tag))
                })
                .collect();
            found.sort_unstable_by(|x, y| x.1.at.cmp(y.1.at));
            for (earlier, claim, tag) in found {
                conflicts.push((earlier, claim, tag, repos.clone()));
            }
        }
    }

    /// The first claim of `tag` among `gids` (earlier groups win).
    fn tag(&self, gids: &[u32], tag: &str) -> Option<TagClaim<'a>> {
        gids.iter()
            .find_map(|g| self.groups[*g as usize].tags.get(tag).copied())
    }

    fn has_digest(&self, gids: &[u32], digest: &str) -> Option<&'a Location> {
        gids.iter()
            .find_map(|g| self.groups[*g as usize].digests.get(digest).copied())
    }

    /// Every (tag, claim) of `gids`, each tag once.
    fn all_tags(&self, gids: &[u32]) -> Vec<(&'a str, TagClaim<'a>)> {
        let mut seen = HashSet::default();
        gids.iter()
            .flat_map(|g| self.groups[*g as usize].tags.iter())
            .filter(|(tag, _)| gids.len() == 1 || seen.insert(**tag))
            .map(|(tag, claim)| (*tag, *claim))
            .collect()
    }

    fn all_digests(&self, gids: &[u32]) -> Vec<(&'a str, &'a Location)> {
        let mut seen = HashSet::default();
        gids.iter()
            .flat_map(|g| self.groups[*g as usize].digests.iter())
            .filter(|(digest, _)| gids.len() == 1 || seen.insert(**digest))
            .map(|(digest, at)| (*digest, *at))
            .collect()
    }
}

/// "in `reg/img`" or "in 22 destinations (e.g. `reg/img`)".
fn where_(repos: &Repos, ids: &[u32]) -> String {
    let first = ids
        .first()
        .and_then(|id| repos.names.get(*id as usize))
        .map_or("?", String::as_str);
    if ids.len() == 1 {
        format!("in `{first}`")
    } else {
        format!("in {} destinations (e.g. `{first}`)", ids.len())
    }
}

/// M301 (a destination tag claimed by two digests) and M303 (a digest listed
/// twice under one name) over a whole tree.
pub fn check_tree(manifests: &[Manifest], out: &mut Vec<Diagnostic>) {
    let mut repos = Repos::default();
    let mut conflicts = Vec::new();
    let claims = Claims::build(manifests, &mut repos, &mut conflicts);
    claims.cross_conflicts(&mut conflicts);
    for (first, second, tag, ids) in &conflicts {
        out.push(
            Diagnostic::new(
                Code::TagConflict,
                Some(second.at.clone()),
                format!(
                    "tag `{tag}` is claimed by two digests {}: `{}` here and `{}` at {}",
                    where_(&repos, ids),
                    second.digest,
                    first.digest,
                    first.at
                ),
            )
            .help("a tag points at exactly one digest; keep one claim, or give the other digest a new tag")
            .related(first.at.clone(), format!("`{tag}` first claimed by `{}`", first.digest)),
        );
    }
    duplicate_digests(manifests, out);
}

fn duplicate_digests(manifests: &[Manifest], out: &mut Vec<Diagnostic>) {
    for manifest in manifests {
        // (name, digest) -> (entry index, where first listed).
        let mut seen: HashMap<(&str, &str), (usize, &Location)> = HashMap::default();
        for (index, image) in manifest.images.iter().enumerate() {
            let (Some(name), Some(dmap)) = (&image.name, &image.dmap) else {
                continue;
            };
            for entry in dmap {
                let key = (name.value.as_str(), entry.digest.value.as_str());
                match seen.entry(key) {
                    Entry::Vacant(e) => {
                        e.insert((index, &entry.digest.at));
                    }
                    // Twice in one dmap is a duplicate key, reported when reading.
                    Entry::Occupied(e) if e.get().0 == index => {}
                    Entry::Occupied(e) => out.push(
                        Diagnostic::new(
                            Code::DuplicateDigest,
                            Some(entry.digest.at.clone()),
                            format!(
                                "digest `{}` of image `{}` is also listed in another entry",
                                key.1, key.0
                            ),
                        )
                        .help("list each digest once per image, with all its tags in one list")
                        .related(e.get().1.clone(), "also listed here"),
                    ),
                }
            }
        }
    }
}

/// M401 (removal) and M402 (tag move): the head tree against its base.
/// Findings that repeat for every mirror are reported once, with a count.
pub fn check_against_base(
    head: &[Manifest],
    base: &[Manifest],
    allow_removal: bool,
    out: &mut Vec<Diagnostic>,
) {
    let mut repos = Repos::default();
    let mut ignored = Vec::new();
    let head_claims = Claims::build(head, &mut repos, &mut ignored);
    let base_claims = Claims::build(base, &mut repos, &mut ignored);

    // Repositories with the same owners on both sides are compared once.
    let mut pairs: HashMap<(&[u32], &[u32]), Vec<u32>> = HashMap::default();
    for (repo, base_gids) in &base_claims.owners {
        let head_gids = head_claims.owners.get(repo).map_or(&[][..], Vec::as_slice);
        pairs
            .entry((head_gids, base_gids.as_slice()))
            .or_default()
            .push(*repo);
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_unstable_by_key(|(_, ids)| ids.iter().min().copied());

    let mut found: Vec<BaseFinding<'_>> = Vec::new();
    for ((head_gids, base_gids), mut ids) in pairs {
        ids.sort_unstable();
        let start = found.len();
        for (tag, was) in base_claims.all_tags(base_gids) {
            match head_claims.tag(head_gids, tag) {
                Some(now) if now.digest != was.digest => {
                    found.push(BaseFinding {
                        code: Code::TagMove,
                        primary: Some(now.at),
                        was_at: was.at,
                        tag,
                        digest: was.digest,
                        now: now.digest,
                    });
                }
                Some(_) => {}
                None if allow_removal => {}
                None => {
                    // When the whole digest is gone, the digest finding covers it.
                    if let Some(digest_at) = head_claims.has_digest(head_gids, was.digest) {
                        found.push(BaseFinding {
                            code: Code::Removal,
                            primary: Some(digest_at),
                            was_at: was.at,
                            tag,
                            digest: was.digest,
                            now: "",
                        });
                    }
                }
            }
        }
        if !allow_removal {
            let image_at = head_gids
                .first()
                .map(|g| head_claims.groups[*g as usize].image_at);
            for (digest, was_at) in base_claims.all_digests(base_gids) {
                if head_claims.has_digest(head_gids, digest).is_none() {
                    found.push(BaseFinding {
                        code: Code::Removal,
                        primary: image_at,
                        was_at,
                        tag: "",
                        digest,
                        now: "",
                    });
                }
            }
        }
        found[start..].sort_by(|a, b| (a.primary, a.was_at).cmp(&(b.primary, b.was_at)));
        let place = where_(&repos, &ids);
        out.extend(found.drain(start..).map(|f| f.into_diagnostic(&place)));
    }
}

/// One difference from the base, before it becomes a diagnostic.
struct BaseFinding<'a> {
    code: Code,
    /// Where in the head tree (`None` when the image is gone from it).
    primary: Option<&'a Location>,
    /// Where in the base tree.
    was_at: &'a Location,
    /// The tag, or `""` for a whole digest.
    tag: &'a str,
    /// The digest in the base.
    digest: &'a str,
    /// The digest in the head, for a tag move.
    now: &'a str,
}

impl BaseFinding<'_> {
    fn into_diagnostic(self, place: &str) -> Diagnostic {
        let BaseFinding {
            code,
            primary,
            was_at,
            tag,
            digest,
            now,
        } = self;
        match (code, tag) {
            (Code::TagMove, _) => Diagnostic::new(
                code,
                primary.cloned(),
                format!("tag `{tag}` would move {place}: from `{digest}` to `{now}`"),
            )
            .help("a published tag must never point elsewhere; give the new digest a new tag")
            .related(was_at.clone(), "the tag's digest in the base"),
            (_, "") => Diagnostic::new(code, primary.cloned(), format!("digest `{digest}` is removed {place}"))
                .help("promotion never deletes images; restore the entry, or pass --allow-removal if dropping it from the manifest is intended")
                .related(was_at.clone(), "listed here in the base"),
            _ => Diagnostic::new(
                code,
                primary.cloned(),
                format!("tag `{tag}` of digest `{digest}` is removed {place}"),
            )
            .help("promotion never deletes tags; restore it, or pass --allow-removal if dropping it from the manifest is intended")
            .related(was_at.clone(), "tagged here in the base"),
        }
    }
}
