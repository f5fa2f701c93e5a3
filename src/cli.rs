//! Command-line definitions (clap). Arguments only validate their own
//! shape here; reading files and building things happens in the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::diagnostic::Code;
use crate::report::Format;

/// Promote container images from staging to production registries, as kpromo
/// manifests describe; check those manifests on every pull request.
#[derive(Debug, Parser)]
#[command(name = "promoter", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests and report every problem at its file and line.
    Check(CheckArgs),
    /// List every rule `check` knows, with its code and severity.
    Rules,
}

/// Which manifests to read: kpromo's two layouts.
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = true)]
pub struct ManifestArgs {
    /// A plain manifest: one file with `registries:` and `images:`.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// A thin-manifest directory: `manifests/<project>/promoter-manifest.yaml`
    /// with `images/<project>/images.yaml`. May be given more than once.
    #[arg(long, value_name = "DIR")]
    pub thin_manifest_dir: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// Compare with the manifests at this git revision (e.g. the pull
    /// request's base commit): tag moves and removals are errors.
    #[arg(long, value_name = "REF", conflicts_with = "base_dir")]
    pub base_ref: Option<String>,

    /// Compare with the base version of the manifests in this directory (a
    /// thin-manifest directory, or the directory or file of the base plain
    /// manifest).
    #[arg(long, value_name = "DIR")]
    pub base_dir: Option<PathBuf>,

    /// Allow digests and tags to disappear from the manifests (the
    /// registries keep them; promotion never deletes).
    #[arg(long)]
    pub allow_removal: bool,

    /// Output format. Defaults to `github` when GITHUB_ACTIONS=true,
    /// otherwise `human`.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Do not report this rule (code such as `M502` or name such as
    /// `unsorted-digests`). May be given more than once.
    #[arg(long, value_name = "RULE")]
    pub ignore: Vec<Code>,

    /// Colour in human output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
