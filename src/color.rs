//! Whether to colour a stream: `--color` resolved by the conventions users
//! expect (no-color.org and bixense.com/clicolors, as anstream applies them):
//! `NO_COLOR` set and not empty means none; `CLICOLOR_FORCE` forces colour;
//! `TERM=dumb` or a stream that is not a terminal means none. The one place
//! these rules live; renderers only take the resulting `bool`.

use anstream::stream::RawStream;

use crate::cli::ColorChoice;

/// Sets the process-wide choice that anstream-based writers (clap's help and
/// errors) follow; `auto` leaves it to each stream.
pub fn set_global(choice: ColorChoice) {
    anstream::ColorChoice::write_global(match choice {
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
        ColorChoice::Auto => !matches!(
            anstream::AutoStream::choice(stream),
            anstream::ColorChoice::Never
        ),
    }
}

/// [`enabled`] for stdout.
pub fn stdout(choice: ColorChoice) -> bool {
    enabled(choice, &std::io::stdout())
}

/// [`enabled`] for stderr.
pub fn stderr(choice: ColorChoice) -> bool {
    enabled(choice, &std::io::stderr())
}
