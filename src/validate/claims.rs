//! Rules over the whole tree, not one file: which digest each destination
//! tag points at. A destination reference (`<dest registry>/<image>:<tag>`)
//! claimed by two digests anywhere in the tree is a conflict; against a base
//! revision, a tag that points elsewhere is a move and a vanished entry a
//! removal.
//!
//! Claims are keyed by the full destination repository, so two projects
//! whose registry and image names add up to the same path collide too.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::diagnostic::{Code, Diagnostic, Location};
use crate::manifest::Manifest;

/// Interns destination repository paths (`<registry>/<image>`) to small ids,
/// so that per-tag keys stay small.
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

/// Who claims what in one tree.
#[derive(Default)]
struct Claims<'a> {
    /// (repository, tag) -> the first digest claiming it.
    tags: HashMap<(u32, &'a str), TagClaim<'a>>,
    /// (repository, digest) -> where the digest is listed.
    digests: HashMap<(u32, &'a str), &'a Location>,
    /// repository -> where its image entry is (first one).
    images: HashMap<u32, &'a Location>,
    /// Two claims of one tag by different digests: (first, second) -> repos.
    conflicts: Vec<(TagClaim<'a>, TagClaim<'a>, &'a str, Vec<u32>)>,
}

impl<'a> Claims<'a> {
    fn build(manifests: &'a [Manifest], repos: &mut Repos) -> Self {
        let mut claims = Claims::default();
        let mut conflict_index: HashMap<(&'a Location, &'a Location), usize> = HashMap::new();
        for manifest in manifests {
            let destinations: Vec<&str> = manifest
                .destinations()
                .map(|d| d.value.as_str())
                .filter(|d| !d.is_empty())
                .collect();
            for image in &manifest.images {
                let (Some(name), Some(dmap)) = (&image.name, &image.dmap) else {
                    continue;
                };
                for destination in &destinations {
                    let repo = repos.intern(format!("{destination}/{}", name.value));
                    claims.images.entry(repo).or_insert(&image.dmap_at);
                    for entry in dmap {
                        claims
                            .digests
                            .entry((repo, entry.digest.value.as_str()))
                            .or_insert(&entry.digest.at);
                        for tag in &entry.tags {
                            let claim = TagClaim {
                                digest: &entry.digest.value,
                                at: &tag.at,
                            };
                            match claims.tags.entry((repo, tag.value.as_str())) {
                                Entry::Vacant(e) => {
                                    e.insert(claim);
                                }
                                Entry::Occupied(e) if e.get().digest != claim.digest => {
                                    let first = *e.get();
                                    let i = *conflict_index
                                        .entry((first.at, claim.at))
                                        .or_insert_with(|| {
                                            claims.conflicts.push((
                                                first,
                                                claim,
                                                tag.value.as_str(),
                                                Vec::new(),
                                            ));
                                            claims.conflicts.len() - 1
                                        });
                                    claims.conflicts[i].3.push(repo);
                                }
                                Entry::Occupied(_) => {}
                            }
                        }
                    }
                }
            }
        }
        claims
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
    let claims = Claims::build(manifests, &mut repos);
    for (first, second, tag, ids) in &claims.conflicts {
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
        let mut seen: HashMap<(&str, &str), (usize, &Location)> = HashMap::new();
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
    let head_claims = Claims::build(head, &mut repos);
    let base_claims = Claims::build(base, &mut repos);

    // (code, primary location, related location, subject) -> repositories.
    type Key<'a> = (Code, Option<&'a Location>, &'a Location, &'a str, &'a str);
    let mut findings: HashMap<Key<'_>, Vec<u32>> = HashMap::new();

    for (&(repo, tag), was) in &base_claims.tags {
        match head_claims.tags.get(&(repo, tag)) {
            Some(now) if now.digest != was.digest => {
                findings
                    .entry((Code::TagMove, Some(now.at), was.at, tag, was.digest))
                    .or_default()
                    .push(repo);
            }
            Some(_) => {}
            None if allow_removal => {}
            None => {
                // When the whole digest is gone, the digest finding covers it.
                if let Some(digest_at) = head_claims.digests.get(&(repo, was.digest)) {
                    findings
                        .entry((Code::Removal, Some(*digest_at), was.at, tag, was.digest))
                        .or_default()
                        .push(repo);
                }
            }
        }
    }
    if !allow_removal {
        for (&(repo, digest), was_at) in &base_claims.digests {
            if !head_claims.digests.contains_key(&(repo, digest)) {
                let primary = head_claims.images.get(&repo).copied();
                findings
                    .entry((Code::Removal, primary, was_at, "", digest))
                    .or_default()
                    .push(repo);
            }
        }
    }

    let mut sorted: Vec<_> = findings.into_iter().collect();
    sorted.sort_by(|a, b| (a.0.1, a.0.2, a.0.3).cmp(&(b.0.1, b.0.2, b.0.3)));
    for ((code, primary, was_at, tag, digest), mut ids) in sorted {
        ids.sort_unstable();
        let place = where_(&repos, &ids);
        let d = match (code, tag) {
            (Code::TagMove, _) => {
                let now = head_claims.tags.get(&(ids[0], tag)).map_or("?", |c| c.digest);
                Diagnostic::new(
                    code,
                    primary.cloned(),
                    format!("tag `{tag}` would move {place}: from `{digest}` to `{now}`"),
                )
                .help("a published tag must never point elsewhere; give the new digest a new tag")
                .related(was_at.clone(), "the tag's digest in the base")
            }
            (_, "") => Diagnostic::new(
                code,
                primary.cloned(),
                format!("digest `{digest}` is removed {place}"),
            )
            .help("promotion never deletes images; restore the entry, or pass --allow-removal if dropping it from the manifest is intended")
            .related(was_at.clone(), "listed here in the base"),
            _ => Diagnostic::new(
                code,
                primary.cloned(),
                format!("tag `{tag}` of digest `{digest}` is removed {place}"),
            )
            .help("promotion never deletes tags; restore it, or pass --allow-removal if dropping it from the manifest is intended")
            .related(was_at.clone(), "tagged here in the base"),
        };
        out.push(d);
    }
}
