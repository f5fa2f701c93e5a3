//! Command-line definitions (clap). Arguments only validate their own
//! shape here; reading files and building things happens in the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::diagnostic::Code;
use crate::report::Format;
use crate::shard::Shard;

/// Promote container images from staging to production registries, as kpromo
/// manifests describe; check those manifests on every pull request.
#[derive(Debug, Parser)]
#[command(name = "promoter", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags every command takes, before or after its name.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// More log output on stderr: `-v` info, `-vv` debug, `-vvv` trace.
    /// `RUST_LOG` (e.g. `promoter=debug`), when set, takes precedence.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output: `-q` errors only, `-qq` none. Reports on stdout are
    /// unchanged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// How log lines on stderr look: `text` for people, `json` (one
    /// object per line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// Colour: `auto` follows the terminal and the NO_COLOR,
    /// CLICOLOR_FORCE and TERM=dumb conventions.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    #[default]
    Text,
    /// One JSON object per event (`timestamp`, `level`, `fields`,
    /// `target`, `span`, `spans`).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests and report every problem at its file and line.
    Check(CheckArgs),
    /// Promote: make every destination hold what the manifests say. A dry
    /// run that prints the plan unless `--confirm` is given.
    Run(RunArgs),
    /// kpromo's `cip` command line, for jobs that switch without changes.
    Cip(CipArgs),
    /// List every rule `check` knows, with its code and severity.
    Rules(RulesArgs),
    /// Explain one rule (code such as `M301` or name such as
    /// `tag-conflict`): what it checks, why, and a bad and a good example.
    Explain(ExplainArgs),
    /// Print a shell completion script (e.g. `promoter completions bash >
    /// /etc/bash_completion.d/promoter`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `promoter man | man -l -`;
    /// `promoter man check` prints the page of one command.
    Man(ManArgs),
    /// Check that every promoted image is signed in every destination, by
    /// the expected identity; `--fix` copies missing signatures over.
    Verify(VerifyArgs),
    /// Check one Sigstore bundle against one artifact (file or
    /// `sha256:HEX`), as the Sigstore clients' `verify-bundle` does: exit 0
    /// when it verifies, 1 when not (naming the check), 2 on usage errors.
    VerifyBundle(VerifyBundleArgs),
    /// Work with JSON reports of `run --report`.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Run as the GitHub Action (the action image's entrypoint): read the
    /// inputs from `INPUT_*` and the event from `GITHUB_*`, then check,
    /// plan or promote as the event calls for.
    Action,
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

    /// Colour in human output: the global `--color`, copied here by `main`.
    #[arg(skip)]
    pub color: ColorChoice,
}

impl CheckArgs {
    /// A plain check of `manifests`: no base, nothing ignored, no colour.
    /// `run`, `verify` and the action check this way first.
    pub fn of(manifests: ManifestArgs) -> CheckArgs {
        CheckArgs {
            manifests,
            base_ref: None,
            base_dir: None,
            allow_removal: false,
            format: None,
            ignore: Vec::new(),
            color: ColorChoice::Never,
        }
    }
}

/// `promoter rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// `text` (a table) or `json` (an object with `schema_version` and
    /// `rules`, see docs/report-schema.md).
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    pub format: TableFormat,
}

/// `promoter explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule: its code (`M301`) or its name (`tag-conflict`).
    #[arg(value_name = "RULE")]
    pub rule: Code,

    /// `text`, or `json` (the same fields as `rules --format json`, plus
    /// `description`, `bad` and `good`).
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    pub format: TableFormat,
}

/// `--format` of commands that print a table or a text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    #[default]
    Text,
    Json,
}

/// `promoter completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `promoter man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (`check`, `run`, ...); none: the
    /// page of `promoter` itself, which lists them.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// `run --limiter` (hidden; for benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LimiterArg {
    /// The per-host adaptive limiter.
    Adaptive,
    /// A simulation of kpromo's limiter, for benchmarks only.
    Kpromo,
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the stream is a terminal, unless NO_COLOR is set and not
    /// empty or TERM is `dumb`; CLICOLOR_FORCE forces it.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// Promote for real. Without it, `run` only prints the plan.
    #[arg(long)]
    pub confirm: bool,

    /// Output format. Defaults to `github` when GITHUB_ACTIONS=true,
    /// otherwise `human`.
    #[arg(long, value_enum)]
    pub format: Option<RunFormat>,

    /// Requests in flight at once, across images, blobs and destinations.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,

    /// Pace every registry host from its first request, starting at RATE
    /// requests per second (then adapting, up to 4x). Without it a host is
    /// not paced until it pushes back (429, 503, Retry-After, RateLimit-*),
    /// and then each kind of request (reads, blob writes, manifest writes)
    /// is paced at what the host accepts.
    #[arg(long, default_value_t = f64::INFINITY, hide_default_value = true, value_name = "RATE")]
    pub max_rps: f64,

    /// The starting rate of one host, as `HOST=RATE` (e.g.
    /// `docker.io=5`). May be given more than once.
    #[arg(long, value_name = "HOST=RATE", value_parser = parse_host_rate)]
    pub max_rps_host: Vec<(String, f64)>,

    /// The rate limiting algorithm. `kpromo` simulates kpromo's (one 50 r/s
    /// limiter for every registry, a 10 s pause per 429) and exists only to
    /// benchmark against it (bench/ratelimit.sh).
    #[arg(long, hide = true, value_enum, default_value = "adaptive")]
    pub limiter: LimiterArg,

    /// A registry host (`host[:port]`) that may be reached over plain HTTP.
    /// Loopback hosts always may. May be given more than once.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// A PEM file of certificates to trust for registries, in addition to
    /// the system's. May be given more than once.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,

    /// Also write the JSON report (plan, problems, statistics) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    #[command(flatten)]
    pub signing: Box<SigningArgs>,

    /// Do only shard I of N (`0/3`, `1/3`, `2/3`): the source images whose
    /// name hashes to I, with every destination they write. Shards share
    /// no repository; `promoter report merge` combines their reports.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<Shard>,

    /// Split into N shards and do the one `$JOB_COMPLETION_INDEX` names
    /// (set in each pod of a Kubernetes Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
}

impl RunArgs {
    /// The shard this run does, from `--shard` or from `--shards` and
    /// `$JOB_COMPLETION_INDEX`; `None` for the whole tree.
    ///
    /// # Errors
    ///
    /// When `--shards` is given and the index variable is unusable.
    pub fn shard(&self) -> Result<Option<Shard>, crate::shard::Error> {
        match (self.shard, self.shards) {
            (Some(shard), _) => Ok(Some(shard)),
            (None, Some(count)) => Shard::from_index_variable(
                count,
                std::env::var(crate::shard::INDEX_VARIABLE).ok().as_deref(),
            )
            .map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The `check` that runs first, on the same manifests.
    pub fn check_args(&self) -> CheckArgs {
        CheckArgs::of(self.manifests.clone())
    }
}

/// `promoter report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Combine the JSON reports of the shards of one run (`run --shard I/N
    /// --report FILE`) into one summary, one set of annotations and one exit
    /// code: the worst of the shards.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' JSON reports.
    #[arg(value_name = "FILES", required = true)]
    pub files: Vec<PathBuf>,

    /// Fail unless the reports are exactly shards 0..N of N. Without it,
    /// reports that name their shard must cover the split they name.
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,

    /// Output format. Defaults to `github` when GITHUB_ACTIONS=true,
    /// otherwise `human`.
    #[arg(long, value_enum)]
    pub format: Option<RunFormat>,

    /// Also write the merged JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Append the Markdown summary to this file (in GitHub Actions:
    /// `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "FILE", env = "GITHUB_STEP_SUMMARY")]
    pub summary: Option<PathBuf>,
}

/// `--format` of `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// The plan as a table, then problems and a summary.
    Human,
    /// One JSON object: the plan, the problems, the copy statistics.
    Json,
    /// Problems as GitHub annotations, then the summary.
    Github,
}

/// kpromo's `cip` flags (sigs.k8s.io/promo-tools `cmd/kpromo/cmd/cip`), so
/// that an existing job switches by changing only the binary. Flags that
/// mean nothing here are accepted where harmless and refused, with a clear
/// message, where they would change what the job does.
#[derive(Debug, Args)]
pub struct CipArgs {
    /// The manifest file to load.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// A thin-manifest directory.
    #[arg(long, value_name = "DIR")]
    pub thin_manifest_dir: Option<PathBuf>,
    /// Initiate a production image promotion.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub confirm: Option<bool>,
    /// Only check that the manifests parse (runs `promoter check`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub parse_only: Option<bool>,
    /// kpromo: promote only the digests of the latest prow diff.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub use_prow_manifest_diff: Option<bool>,
    /// kpromo: promote only digests added in this period.
    #[arg(long, value_name = "DURATION")]
    pub manifest_diff_since: Option<String>,
    /// kpromo: number of worker threads; here, requests in flight.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// kpromo: sign promoted images.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub sign: Option<bool>,
    /// kpromo: signing service account (GCP).
    #[arg(long, value_name = "ACCOUNT")]
    pub signer_account: Option<String>,
    /// kpromo: identity expected when verifying signatures.
    #[arg(long, value_name = "IDENTITY")]
    pub certificate_identity: Option<String>,
    /// kpromo: OIDC issuer expected when verifying signatures.
    #[arg(long, value_name = "ISSUER")]
    pub certificate_oidc_issuer: Option<String>,
    /// kpromo: identity regexp for verification.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_identity_regexp: Option<String>,
    /// kpromo: issuer regexp for verification.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// kpromo: concurrent signature copies.
    #[arg(long, value_name = "N")]
    pub max_signature_copies: Option<usize>,
    /// kpromo: concurrent signature operations.
    #[arg(long, value_name = "N")]
    pub max_signature_ops: Option<usize>,
    /// kpromo: GCP service-account key files (GCP auth; not used here).
    #[arg(long, value_name = "FILES")]
    pub key_files: Option<String>,
    /// kpromo: pass `--account` to gcloud (not used here).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub use_service_account: Option<bool>,
    /// kpromo: log only a JSON summary.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub json_log_summary: Option<bool>,
    /// kpromo: a hidden flag that does nothing there either.
    #[arg(long, value_name = "MIB", hide = true)]
    pub max_image_size: Option<u64>,
    /// kpromo: snapshot a repository (not supported).
    #[arg(long, value_name = "REPO")]
    pub snapshot: Option<String>,
    /// kpromo: snapshot tag filter (not supported).
    #[arg(long, value_name = "TAG")]
    pub snapshot_tag: Option<String>,
    /// kpromo: minimal snapshot (not supported).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub minimal_snapshot: Option<bool>,
    /// kpromo: snapshot of a manifest (not supported).
    #[arg(long, value_name = "REGISTRY")]
    pub manifest_based_snapshot_of: Option<String>,
    /// kpromo: snapshot output format (not supported).
    #[arg(long, value_name = "FORMAT")]
    pub output: Option<String>,
    /// kpromo: vulnerability check threshold (not supported).
    #[arg(long, value_name = "LEVEL")]
    pub vuln_severity_threshold: Option<i64>,
}

/// Signing flags of `run` (see README "Signing").
#[derive(Debug, Args, Clone, Default)]
pub struct SigningArgs {
    /// Sign promoted images (`--sign=false` turns it off). By default,
    /// signing is on when an identity is available: GitHub Actions' OIDC
    /// variables, `--identity-token-file`, `SIGSTORE_ID_TOKEN` or
    /// `--signing-key`; otherwise images are promoted unsigned, with a note.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub sign: Option<bool>,

    /// Sign with this P-256 private key (PKCS#8 PEM) instead of keyless.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    /// Read the OIDC identity token from this file.
    #[arg(long, value_name = "FILE")]
    pub identity_token_file: Option<PathBuf>,

    /// Fulcio's URL. Default: the one `--signing-config` selects, else the
    /// public instance, https://fulcio.sigstore.dev.
    #[arg(long, value_name = "URL")]
    pub fulcio_url: Option<String>,

    /// A Rekor v1 log's URL. Default: the one `--signing-config` selects
    /// (v1, or v2 with `--signature-format bundle`), else the public
    /// instance, https://rekor.sigstore.dev (keyless), none (with
    /// `--signing-key`).
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,

    /// A Sigstore signing config (v0.2) that selects the Fulcio, Rekor (v1,
    /// or v2 for bundles only) and timestamp authority URLs; `--fulcio-url`,
    /// `--rekor-url` and `--timestamp-server-url` override it
    /// (docs/signing.md).
    #[arg(long, value_name = "FILE")]
    pub signing_config: Option<PathBuf>,

    /// An RFC 3161 timestamp authority that timestamps each bundle's
    /// signature, e.g. https://timestamp.sigstore.dev/api/v1/timestamp.
    /// Default: the one `--signing-config` selects, else none.
    #[arg(long, value_name = "URL")]
    pub timestamp_server_url: Option<String>,

    /// The sigstore `trusted_root.json` to check Rekor's answers against.
    /// Default: the public instance's.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,

    /// The public registry name signatures name images by (the payload's
    /// `docker-reference`), e.g. `registry.k8s.io`. Default: the first
    /// destination.
    #[arg(long, value_name = "PREFIX")]
    pub signature_identity_prefix: Option<String>,

    /// Which signature formats to write.
    #[arg(long, value_enum, default_value_t = SignatureFormat::Both)]
    pub signature_format: SignatureFormat,

    /// With an identity and issuer below: the staging image's signatures,
    /// where present, must verify and match, or the image is neither signed
    /// nor replicated (reported as an error).
    #[command(flatten)]
    pub source_identity: IdentityArgs,

    /// Every staging image must carry a signature that verifies and matches
    /// the identity and issuer flags.
    #[arg(long)]
    pub require_signed_source: bool,

    /// Attest each signed digest: a promotion record and SLSA provenance v1,
    /// DSSE-signed, logged and stored as bundle referrers, replicated with
    /// the signatures. On by default whenever images are signed;
    /// `--attest=false` turns it off.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub attest: bool,

    /// Every staging image must carry SLSA provenance v1 that verifies.
    /// Without it, provenance is checked where present: a staging image
    /// whose provenance does not verify is never promoted.
    #[arg(long)]
    pub require_provenance: bool,

    /// A builder id staging provenance may name (`runDetails.builder.id`):
    /// exact, or a prefix when it ends in `*`. May be repeated. Default: any.
    #[arg(long, value_name = "ID")]
    pub allowed_builder: Vec<String>,
}

/// `--signature-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SignatureFormat {
    /// cosign's `sha256-<hex>.sig` tag (cosign v2 and older readers).
    Legacy,
    /// A sigstore bundle v0.3 referrer (cosign v3).
    Bundle,
    /// Both.
    #[default]
    Both,
}

/// What a signature must show to count (cosign's flags).
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityArgs {
    /// The certificate identity (SAN), exactly.
    #[arg(long, value_name = "IDENTITY")]
    pub certificate_identity: Option<String>,
    /// The certificate identity, as a regular expression (whole match).
    #[arg(long, value_name = "REGEXP")]
    pub certificate_identity_regexp: Option<String>,
    /// The OIDC issuer, exactly.
    #[arg(long, value_name = "ISSUER")]
    pub certificate_oidc_issuer: Option<String>,
    /// The OIDC issuer, as a regular expression (whole match).
    #[arg(long, value_name = "REGEXP")]
    pub certificate_oidc_issuer_regexp: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,

    /// `text` (a line, or a table of the gaps) or `json` (an object with
    /// `schema_version`; docs/report-schema.md).
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    pub format: TableFormat,

    #[command(flatten)]
    pub identity: IdentityArgs,

    /// For key-signed images: the P-256 public key (PEM).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,

    /// The sigstore `trusted_root.json`. Default: the public instance's.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,

    /// Which signature formats must be present.
    #[arg(long, value_enum, default_value_t = SignatureFormat::Both)]
    pub signature_format: SignatureFormat,

    /// Also check the attestations: every destination must hold a
    /// promotion record and SLSA provenance that verify and name it.
    #[arg(long)]
    pub attestations: bool,

    /// Copy missing signatures (and attestations) from a destination that
    /// has valid ones.
    #[arg(long)]
    pub fix: bool,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,

    /// A registry host that may be reached over plain HTTP.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// A PEM file of certificates to trust for registries.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
}

/// `HOST=RATE` of `--max-rps-host`.
fn parse_host_rate(value: &str) -> Result<(String, f64), String> {
    let (host, rate) = value
        .split_once('=')
        .ok_or_else(|| format!("expected HOST=RATE, e.g. `gcr.io=80`, not `{value}`"))?;
    let rate: f64 = rate
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("`{rate}` is not a positive number of requests per second"))?;
    Ok((host.to_string(), rate))
}

/// `promoter verify-bundle`: the Sigstore conformance suite's client protocol.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("signer").required(true).multiple(true)
    .args(["certificate_identity", "certificate_identity_regexp", "key"]))]
pub struct VerifyBundleArgs {
    /// The Sigstore bundle (JSON) to verify.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The expected certificate identity (SAN), exactly.
    #[arg(long, value_name = "IDENTITY", conflicts_with = "key")]
    pub certificate_identity: Option<String>,
    /// The expected certificate identity, as a regular expression.
    #[arg(long, value_name = "REGEXP", conflicts_with = "key")]
    pub certificate_identity_regexp: Option<String>,
    /// The expected OIDC issuer, exactly.
    #[arg(long, value_name = "ISSUER", conflicts_with = "key")]
    pub certificate_oidc_issuer: Option<String>,
    /// The expected OIDC issuer, as a regular expression.
    #[arg(long, value_name = "REGEXP", conflicts_with = "key")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// For a key-signed bundle: the public key (PEM).
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// The sigstore `trusted_root.json`. Default: the public instance's.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Accepted for the conformance protocol; only the public instance's
    /// root is embedded, so give staging's with `--trusted-root`.
    #[arg(long, hide = true)]
    pub staging: bool,
    /// The artifact: a file, or `sha256:HEX` (64 hex digits, and not a file).
    #[arg(value_name = "PATH|sha256:HEX")]
    pub artifact: String,
}
