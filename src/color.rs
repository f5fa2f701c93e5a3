//! Whether to colour a stream: `--color` resolved by the conventions users
//! expect (no-color.org and bixense.com/clicolors, as anstream applies them):
//! `NO_COLOR` set and not empty means none; `CLICOLOR_FORCE` forces colour;
//! `TERM=dumb` or a stream that is not a terminal means none. The one place
//! these rules live; renderers only take the resulting `bool`.
//!
//! anstream alone lets a `CI` variable override `TERM=dumb` on a terminal;
//! we do not, so that the rule users read in `docs/cli.md` holds everywhere.

use anstream::stream::RawStream;

use crate::cli::ColorChoice;

/// Sets the process-wide choice that anstream-based writers (clap's help and
/// errors) follow; `auto` leaves it to each stream.
pub fn set_global(choice: ColorChoice) {
    anstream::ColorChoice::write_global(match choice {
        ColorChoice::Auto if dumb_terminal() => anstream::ColorChoice::Never,
        ColorChoice::Auto => anstream::ColorChoice::Auto,
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
    });
}

/// True when output to `stream` should carry ANSI colour.
pub fn enabled(choice: ColorChoice, stream: &impl RawStream) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !dumb_terminal()
                && !matches!(
                    anstream::AutoStream::choice(stream),
                    anstream::ColorChoice::Never
                )
        }
    }
}

/// `TERM=dumb` without `CLICOLOR_FORCE`: no colour, whatever `CI` says.
fn dumb_terminal() -> bool {
    let forced = std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0");
    !forced && std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// [`enabled`] for stdout.
pub fn stdout(choice: ColorChoice) -> bool {
    enabled(choice, &std::io::stdout())
}

/// [`enabled`] for stderr.
pub fn stderr(choice: ColorChoice) -> bool {
    enabled(choice, &std::io::stderr())
}
