//! Logging: the process's one `tracing` subscriber, installed by `main` and
//! nowhere else. Logs go to stderr (stdout carries reports and JSON).
//!
//! - The level comes from `RUST_LOG` when it is set and not empty (the
//!   `EnvFilter` syntax, e.g. `promoter=debug,reqwest=info`), otherwise
//!   from `-v`/`-q`: warnings by default, `-v` info, `-vv` debug, `-vvv`
//!   trace, `-q` errors only, `-qq` nothing. `-v` raises promoter's own
//!   events; other crates stay at warnings until `-vvv`.
//! - `--log-format json` writes one JSON object per event.
//! - In GitHub Actions ([`github`]): a `::group::` per phase span, and with
//!   `RUNNER_DEBUG=1` debug events as `::debug::` lines, which the runner
//!   shows only when a re-run asks for debug logging.
//!
//! Phases are spans named `phase` with a field `phase` (or `name`) that
//! names the phase: `tracing::info_span!("phase", phase = %name)`. Prefer
//! `phase`: the JSON format writes the span's own name under the key
//! `name`, so a field `name` duplicates that key.

pub mod github;

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::cli::LogFormat;

/// What decides the subscriber: the flags and the environment, read once
/// by [`Options::from_env`] so that [`Options::filter`] is a pure function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub verbose: u8,
    pub quiet: u8,
    pub format: LogFormat,
    /// ANSI colour in text logs.
    pub color: bool,
    /// `RUST_LOG`, when set and not empty.
    pub rust_log: Option<String>,
    /// `GITHUB_ACTIONS=true`.
    pub github_actions: bool,
    /// `RUNNER_DEBUG=1` (GitHub's "enable debug logging").
    pub runner_debug: bool,
}

impl Options {
    /// The options for these flags in this process's environment.
    #[must_use]
    pub fn from_env(verbose: u8, quiet: u8, format: LogFormat, color: bool) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Options {
            verbose,
            quiet,
            format,
            color,
            rust_log: var("RUST_LOG"),
            github_actions: var("GITHUB_ACTIONS").as_deref() == Some("true"),
            runner_debug: var("RUNNER_DEBUG").as_deref() == Some("1"),
        }
    }

    /// The `EnvFilter` directives for the log lines: `RUST_LOG` verbatim,
    /// or the level `-v`/`-q` ask for.
    #[must_use]
    pub fn filter(&self) -> String {
        if let Some(directives) = &self.rust_log {
            return directives.clone();
        }
        let level = match (self.verbose, self.quiet) {
            (_, 2..) => return "off".to_string(),
            (_, 1) => return "error".to_string(),
            (0, 0) => "warn",
            (1, 0) => "info",
            (2, 0) => "debug",
            (3.., 0) => return "debug,promoter=trace".to_string(),
        };
        format!("warn,promoter={level}")
    }

    /// True when debug events become `::debug::` lines instead of log lines.
    #[must_use]
    pub fn github_debug(&self) -> bool {
        self.github_actions && self.runner_debug
    }
}

/// Installs the subscriber. A second call (tests) leaves the first in place.
///
/// # Errors
///
/// When `RUST_LOG` is not a valid filter: the message names the variable.
pub fn init(options: &Options) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .parse(options.filter())
        .map_err(|e| anyhow::anyhow!("RUST_LOG=`{}` is not a log filter: {e}", options.filter()))?;
    let github_debug = options.github_debug();
    // With `::debug::` lines on, debug and trace events go there instead.
    let not_debug = filter_fn(move |m| !(github_debug && *m.level() >= Level::DEBUG));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(options.color)
        .with_target(true);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match options.format {
        LogFormat::Text => fmt.with_filter(filter.and(not_debug)).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(filter.and(not_debug))
            .boxed(),
    };
    let groups = options
        .github_actions
        .then(|| github::Groups::stderr().with_filter(filter_fn(github::is_phase)));
    let debug = github_debug.then(|| {
        github::DebugLines::stderr().with_filter(
            EnvFilter::new(if options.rust_log.is_some() {
                options.filter()
            } else {
                "warn,promoter=debug".to_string()
            })
            .and(LevelFilter::DEBUG),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(groups)
        .with(debug)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(verbose: u8, quiet: u8) -> Options {
        Options {
            verbose,
            quiet,
            ..Options::default()
        }
    }

    #[test]
    fn flags_pick_the_level_and_rust_log_wins() {
        assert_eq!(options(0, 0).filter(), "warn,promoter=warn");
        assert_eq!(options(1, 0).filter(), "warn,promoter=info");
        assert_eq!(options(2, 0).filter(), "warn,promoter=debug");
        assert_eq!(options(5, 0).filter(), "debug,promoter=trace");
        assert_eq!(options(0, 1).filter(), "error");
        assert_eq!(options(0, 2).filter(), "off");
        let with_env = Options {
            rust_log: Some("promoter::registry=trace".into()),
            ..options(2, 0)
        };
        assert_eq!(with_env.filter(), "promoter::registry=trace");
    }

    #[test]
    fn debug_lines_only_in_actions_with_runner_debug() {
        let mut o = options(0, 0);
        o.runner_debug = true;
        assert!(!o.github_debug());
        o.github_actions = true;
        assert!(o.github_debug());
    }
}
