//! The `check` command: load the manifests (and their base), run every
//! rule, and report. Returns what happened; `main` maps it to an exit code.

use std::path::{Path, PathBuf};

use crate::cli::{CheckArgs, ManifestArgs};
use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::source::{GitTree, Source, WorkTree};
use crate::manifest::{LoadError, Loaded, load};
use crate::report::{self, Format, RenderOptions};
use crate::validate;

/// How a command ended; it lives in `diagnostic` (the reporters use it
/// too) and is named here for the callers of `check`.
pub use crate::diagnostic::Outcome;

/// Where the base revision of the manifests comes from.
enum Base<'a> {
    None,
    GitRef(&'a str),
    Dir(&'a Path),
}

/// Reads every tree named by `args`, from the work tree or from a base.
fn load_all(args: &ManifestArgs, base: &Base<'_>) -> Result<Loaded, LoadError> {
    let mut loaded = Loaded::default();
    if let Some(file) = &args.manifest {
        if matches!(base, Base::None) {
            readable_file(file)?;
        }
        let (dir, name) = split_file(file);
        let source: Box<dyn Source> = match base {
            Base::None => Box::new(WorkTree::new(dir)),
            Base::GitRef(rev) => Box::new(GitTree::load(rev, file)?),
            Base::Dir(base) if base.is_file() => {
                let (dir, name) = split_file(base);
                loaded.extend(load::plain(&WorkTree::new(dir), &name));
                return Ok(loaded);
            }
            Base::Dir(base) => Box::new(WorkTree::new(*base)),
        };
        loaded.extend(load::plain(source.as_ref(), &name));
    }
    for dir in &args.thin_manifest_dir {
        let source: Box<dyn Source + Sync> = match base {
            Base::None => Box::new(WorkTree::new(dir.clone())),
            Base::GitRef(rev) => Box::new(GitTree::load(rev, dir)?),
            Base::Dir(base) => Box::new(WorkTree::new(*base)),
        };
        loaded.extend(load::thin(source.as_ref())?);
    }
    Ok(loaded)
}

/// `--manifest FILE` must name a readable file: anything else is an I/O
/// error of the command (exit 2), not a finding in the manifests.
fn readable_file(file: &Path) -> Result<(), LoadError> {
    let io = |source| crate::manifest::source::SourceError::Io {
        path: file.to_path_buf(),
        source,
    };
    if std::fs::metadata(file).map_err(io)?.is_dir() {
        return Err(io(std::io::Error::other(
            "is a directory; for a thin-manifest tree use --thin-manifest-dir",
        ))
        .into());
    }
    std::fs::File::open(file).map_err(io)?;
    Ok(())
}

fn split_file(file: &Path) -> (PathBuf, String) {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Loads, validates and compares; the diagnostics are filtered by
/// `--ignore` but not yet rendered.
pub fn diagnose(args: &CheckArgs) -> anyhow::Result<(Loaded, Vec<Diagnostic>)> {
    if args.base_dir.is_some()
        && usize::from(args.manifests.manifest.is_some()) + args.manifests.thin_manifest_dir.len()
            > 1
    {
        anyhow::bail!(
            "--base-dir compares one tree; give one --manifest or one --thin-manifest-dir"
        );
    }
    let mut head = load_all(&args.manifests, &Base::None)?;
    let mut diagnostics = std::mem::take(&mut head.diagnostics);
    diagnostics.extend(validate::check(&head.manifests));

    let base = match (&args.base_ref, &args.base_dir) {
        (Some(rev), _) => Base::GitRef(rev),
        (None, Some(dir)) => Base::Dir(dir),
        (None, None) => Base::None,
    };
    if !matches!(base, Base::None) && !head.unreadable.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                Code::BaseSkipped,
                None,
                format!(
                    "not compared with the base: {} file(s) could not be read, e.g. {}",
                    head.unreadable.len(),
                    head.unreadable[0]
                ),
            )
            .help("fix the errors above and run the check again to see tag moves and removals"),
        );
    } else if !matches!(base, Base::None) {
        let base_tree = load_all(&args.manifests, &base)
            .map_err(|e| anyhow::anyhow!("reading the base manifests: {e}"))?;
        // Problems inside the base are not this change's; only compare.
        diagnostics.extend(validate::against_base(
            &head.manifests,
            &base_tree.manifests,
            args.allow_removal,
        ));
    }
    diagnostics.retain(|d| !args.ignore.contains(&d.code));
    Ok((head, diagnostics))
}

/// Runs `promoter check`, writing the report to stdout (and the job
/// summary when `$GITHUB_STEP_SUMMARY` is set).
pub fn run(args: &CheckArgs) -> anyhow::Result<Outcome> {
    let (loaded, diagnostics) = {
        let _phase = tracing::info_span!("phase", phase = "check").entered();
        let (loaded, diagnostics) = diagnose(args)?;
        tracing::debug!(
            manifests = loaded.manifests.len(),
            findings = diagnostics.len(),
            "manifests checked"
        );
        (loaded, diagnostics)
    };
    let in_actions = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    let format = args.format.unwrap_or(if in_actions {
        Format::Github
    } else {
        Format::Human
    });
    let color = crate::color::stdout(args.color);
    let mut out = std::io::stdout().lock();
    report::render(
        format,
        &mut out,
        &diagnostics,
        &loaded.sources,
        &RenderOptions { color },
    )?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        report::write_step_summary(Path::new(&path), &diagnostics, &loaded.sources)?;
    }
    Ok(Outcome::of(&diagnostics))
}
