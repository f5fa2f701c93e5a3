//! `promoter completions <SHELL>` and `promoter man`: the command line's
//! own description (clap's `Command`), written as a shell completion script
//! (clap_complete) or a roff manual page (clap_mangen). Nothing here is
//! written by hand, so both follow every flag as it is added.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell`.
pub fn completions(w: &mut dyn Write, shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "promoter", w);
}

/// Writes the manual page `promoter(1)`, or with `command` the page
/// `promoter-<command>(1)` of one subcommand (`promoter man check`).
///
/// # Errors
///
/// When `command` names no subcommand, and those of `w`.
pub fn man(w: &mut dyn Write, command: Option<&str>) -> anyhow::Result<()> {
    let mut cli = Cli::command();
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => {
            let names: Vec<&str> = cli
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(clap::Command::get_name)
                .collect();
            let Some(sub) = cli.find_subcommand(name) else {
                anyhow::bail!("no command `{name}`; one of: {}", names.join(", "));
            };
            sub.clone()
                .name(format!("promoter-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    clap_mangen::Man::new(page).render(w)?;
    Ok(())
}
