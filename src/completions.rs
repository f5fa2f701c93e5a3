//! `promoter completions <SHELL>` and `promoter man`: the command line's
//! own description (clap's `Command`), written as a shell completion script
//! (clap_complete) or a roff manual page (clap_mangen). Nothing here is
//! written by hand, so both follow every flag as it is added.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell`.
pub fn completions(w: &mut dyn Write, shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "promoter", w);
}

/// Writes the manual page: `promoter(1)` with every subcommand's options
/// in its own section, as `man` renders roff.
///
/// # Errors
///
/// Only those of `w`.
pub fn man(w: &mut dyn Write) -> io::Result<()> {
    let command = Cli::command();
    let page = clap_mangen::Man::new(command.clone());
    page.render_title(w)?;
    page.render_name_section(w)?;
    page.render_synopsis_section(w)?;
    page.render_description_section(w)?;
    page.render_options_section(w)?;
    page.render_subcommands_section(w)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(w, ".SH \"PROMOTER {}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(format!("promoter {name}"));
        let section = clap_mangen::Man::new(sub);
        section.render_synopsis_section(w)?;
        section.render_description_section(w)?;
        section.render_options_section(w)?;
    }
    page.render_version_section(w)?;
    Ok(())
}
