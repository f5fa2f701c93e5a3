//! Loads a whole manifest tree in either kpromo layout: a plain manifest
//! file, or a thin-manifest directory (`manifests/<project>/promoter-manifest.yaml`
//! beside `images/<project>/images.yaml`). File-level rules (a project
//! missing its images file, stray YAML files) are checked here, because
//! only the loader sees the directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::Manifest;
use super::read;
use super::source::{Source, SourceError};
use crate::diagnostic::{Code, Diagnostic, Location, Sources};

/// The name of a thin project's manifest file.
pub const THIN_MANIFEST_FILE: &str = "promoter-manifest.yaml";
/// The name of a thin project's images file.
pub const THIN_IMAGES_FILE: &str = "images.yaml";

/// Everything read from one tree: the manifests, the text of every file
/// (for reporters), and the problems found while reading.
#[derive(Default, Debug)]
pub struct Loaded {
    pub manifests: Vec<Manifest>,
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    /// Files that could not be read or parsed at all. Their manifests are
    /// missing from `manifests`, so comparing with a base would see every
    /// entry in them as removed.
    pub unreadable: Vec<Arc<str>>,
}

impl Loaded {
    /// Adds another tree's results to this one.
    pub fn extend(&mut self, other: Loaded) {
        self.manifests.extend(other.manifests);
        self.sources.extend(other.sources);
        self.diagnostics.extend(other.diagnostics);
        self.unreadable.extend(other.unreadable);
    }

    fn read_file(&mut self, source: &dyn Source, relative: &str) -> Option<(Arc<str>, Arc<str>)> {
        let file: Arc<str> = source.display(relative).into();
        match source.read(relative) {
            Ok(text) => {
                let text: Arc<str> = text.into();
                self.sources.insert(file.clone(), text.clone());
                Some((file, text))
            }
            Err(message) => {
                let d = Diagnostic::new(
                    Code::Io,
                    Some(Location::file(file.clone())),
                    format!("cannot read {file}: {message}"),
                )
                .help("check that the file exists and is readable UTF-8 text");
                self.diagnostics.push(d);
                self.unreadable.push(file);
                None
            }
        }
    }
}

/// Loads a plain manifest: one file with `registries:` and `images:`.
pub fn plain(source: &dyn Source, relative: &str) -> Loaded {
    let mut loaded = Loaded::default();
    if let Some((file, text)) = loaded.read_file(source, relative) {
        match read::plain(file.clone(), &text, &mut loaded.diagnostics) {
            Some(m) => loaded.manifests.push(m),
            None => loaded.unreadable.push(file),
        }
    }
    loaded
}

/// Why a thin directory could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(
        "{root} holds no thin manifests: expected {root}/manifests/<project>/{THIN_MANIFEST_FILE} \
         (for a single manifest file use --manifest)"
    )]
    NotThin { root: String },
}

/// Loads a thin-manifest directory.
pub fn thin(source: &(dyn Source + Sync)) -> Result<Loaded, LoadError> {
    let files = source.files()?;
    // project -> (manifest file, images file), by relative path.
    let mut projects: BTreeMap<&str, (Option<&str>, Option<&str>)> = BTreeMap::new();
    let mut stray = Vec::new();
    let mut nested = Vec::new();
    for file in &files {
        let parts: Vec<&str> = file.split('/').collect();
        match parts.as_slice() {
            ["manifests", project, THIN_MANIFEST_FILE] => {
                projects.entry(project).or_default().0 = Some(file);
            }
            ["images", project, THIN_IMAGES_FILE] => {
                projects.entry(project).or_default().1 = Some(file);
            }
            ["manifests", _, _, .., THIN_MANIFEST_FILE] => nested.push(file.as_str()),
            _ if is_yaml(file) => stray.push(file.as_str()),
            _ => {} // OWNERS, READMEs, scripts: not ours to judge.
        }
    }
    if nested.is_empty() && projects.values().all(|(m, _)| m.is_none()) {
        return Err(LoadError::NotThin {
            root: source.display(""),
        });
    }

    let mut loaded = Loaded::default();
    for file in stray {
        let at = Location::file(source.display(file).into());
        let d = Diagnostic::new(
            Code::UnexpectedFile,
            Some(at),
            format!("`{file}` is not part of the thin-manifest layout and is not read"),
        )
        .help(format!(
            "projects live in manifests/<project>/{THIN_MANIFEST_FILE} and images/<project>/{THIN_IMAGES_FILE}; \
             move or rename the file if it should be promoted"
        ));
        loaded.diagnostics.push(d);
    }
    for file in nested {
        loaded.diagnostics.push(nested_manifest(source, file));
    }

    // Projects are independent: read and parse them on every core.
    let projects: Vec<_> = projects.into_iter().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, projects.len().max(1));
    let chunk = projects.len().div_ceil(threads).max(1);
    let parts: Vec<Loaded> = std::thread::scope(|scope| {
        let handles: Vec<_> = projects
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut loaded = Loaded::default();
                    for (project, (manifest_file, images_file)) in part {
                        read_project(&mut loaded, source, project, *manifest_file, *images_file);
                    }
                    loaded
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for part in parts {
        loaded.extend(part);
    }
    Ok(loaded)
}

/// `manifests/<project>/<more>/promoter-manifest.yaml`: kpromo refuses the
/// whole tree (its `ParseThinManifestsFromDir`), and the project would
/// never be promoted, so it is an error, not a stray file.
fn nested_manifest(source: &dyn Source, file: &str) -> Diagnostic {
    let project = file
        .strip_prefix("manifests/")
        .and_then(|rest| rest.strip_suffix(&format!("/{THIN_MANIFEST_FILE}")))
        .unwrap_or(file);
    let flat = project.replace('/', "-");
    Diagnostic::new(
        Code::NestedManifest,
        Some(Location::file(source.display(file).into())),
        format!(
            "`{file}` is nested below manifests/<project>/: kpromo refuses the tree and it is never promoted"
        ),
    )
    .help(format!(
        "each project is one directory directly under manifests/: move it to \
         manifests/{flat}/{THIN_MANIFEST_FILE} and its images to images/{flat}/{THIN_IMAGES_FILE}"
    ))
}

/// Reads one thin project: its manifest and its images file.
fn read_project(
    loaded: &mut Loaded,
    source: &(dyn Source + Sync),
    project: &str,
    manifest_file: Option<&str>,
    images_file: Option<&str>,
) {
    match (manifest_file, images_file) {
        (Some(manifest_file), Some(images_file)) => {
            let Some((file, text)) = loaded.read_file(source, manifest_file) else {
                return;
            };
            let Some(thin) = read::thin_manifest(file.clone(), &text, &mut loaded.diagnostics)
            else {
                loaded.unreadable.push(file);
                return;
            };
            let Some((images_name, images_text)) = loaded.read_file(source, images_file) else {
                return;
            };
            let Some(images) =
                read::thin_images(images_name.clone(), &images_text, &mut loaded.diagnostics)
            else {
                loaded.unreadable.push(images_name);
                return;
            };
            loaded.manifests.push(Manifest {
                file,
                images_file: images_name,
                registries_at: thin.registries_at,
                registries: thin.registries,
                images,
            });
        }
        (Some(manifest_file), None) => {
            let expected = format!("images/{project}/{THIN_IMAGES_FILE}");
            let d = Diagnostic::new(
                Code::MissingImagesFile,
                Some(Location::file(source.display(manifest_file).into())),
                format!("project `{project}` has a manifest but no `{expected}`"),
            )
            .help(format!(
                "create {expected} with the images to promote, or remove this manifest"
            ));
            loaded.diagnostics.push(d);
        }
        (None, Some(images_file)) => {
            let expected = format!("manifests/{project}/{THIN_MANIFEST_FILE}");
            let d = Diagnostic::new(
                Code::OrphanImagesFile,
                Some(Location::file(source.display(images_file).into())),
                format!(
                    "images of project `{project}` are never promoted: there is no `{expected}`"
                ),
            )
            .help(format!(
                "add {expected} naming the registries, or check the directory name for a typo"
            ));
            loaded.diagnostics.push(d);
        }
        (None, None) => {}
    }
}

fn is_yaml(file: &str) -> bool {
    file.ends_with(".yaml") || file.ends_with(".yml")
}
