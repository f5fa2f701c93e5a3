//! The manifest model: what kpromo manifests say, with the place of every
//! value. Faithful to the file: a missing or null value stays `None` here and
//! the validation rules decide what it means.

use std::sync::Arc;

use crate::diagnostic::Location;

/// A value and the place it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: Location,
}

/// One entry of `registries:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    /// `name:`; `None` when missing.
    pub name: Option<Located<String>>,
    /// `src: true` marks the staging registry.
    pub src: bool,
    /// Where the entry starts (its first key).
    pub at: Location,
}

/// One digest of a `dmap`, with its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestEntry {
    pub digest: Located<String>,
    /// Whether the digest key was written in quotes (style rule M503).
    pub quoted: bool,
    /// The tags; empty means "promote by digest only".
    pub tags: Vec<Located<String>>,
}

/// One entry of `images:` (or of a thin `images.yaml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `name:`; `None` when missing.
    pub name: Option<Located<String>>,
    /// `dmap:`; `None` when missing or null.
    pub dmap: Option<Vec<DigestEntry>>,
    /// Where the `dmap` key is, or the entry when it has none.
    pub dmap_at: Location,
    /// Where the entry starts.
    pub at: Location,
}

/// One promotion unit: a set of registries and the images promoted between
/// them. A plain manifest is one; in the thin layout each project is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The file holding `registries:`.
    pub file: Arc<str>,
    /// The file holding the images (the same file for a plain manifest).
    pub images_file: Arc<str>,
    /// Where `registries:` is (or the file, when it is missing).
    pub registries_at: Location,
    pub registries: Vec<Registry>,
    pub images: Vec<Image>,
}

impl Manifest {
    /// The staging registry's name, when exactly one is marked `src: true`.
    pub fn source(&self) -> Option<&str> {
        let mut sources = self.registries.iter().filter(|r| r.src);
        match (sources.next(), sources.next()) {
            (Some(r), None) => r.name.as_ref().map(|n| n.value.as_str()),
            _ => None,
        }
    }

    /// The destination registries' names (every registry not `src`).
    pub fn destinations(&self) -> impl Iterator<Item = &Located<String>> {
        self.registries
            .iter()
            .filter(|r| !r.src)
            .filter_map(|r| r.name.as_ref())
    }
}
