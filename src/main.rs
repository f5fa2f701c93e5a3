//! The `promoter` binary: parse arguments, install logging, run one
//! command, map the outcome to an exit code (0 clean, 1 findings, 2 usage or
//! I/O error). Errors are printed once, with their causes; there are no
//! panics to print.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use promoter::check;
use promoter::cli::{Cli, Command, ReportCommand};
use promoter::diagnostic::Outcome;
use promoter::{cip, color, completions, logging, rules};

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are not errors.
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    color::set_global(cli.global.color);
    if let Command::Check(args) = &mut cli.command {
        args.color = cli.global.color;
    }
    let global = &cli.global;
    let options = logging::Options::from_env(
        global.verbose,
        global.quiet,
        global.log_format,
        color::stderr(global.color),
    );
    let outcome = logging::init(&options).and_then(|()| run(&cli));
    match outcome {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{}", error_message(&err));
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Check(args) => check::run(args),
        Command::Run(args) => promote(args, cli.global.color),
        Command::Cip(args) => {
            let (translated, notes) = cip::translate(args).map_err(anyhow::Error::msg)?;
            for note in notes {
                eprintln!("promoter cip: {note}");
            }
            match translated {
                cip::Translated::Check(mut args) => {
                    args.color = cli.global.color;
                    check::run(&args)
                }
                cip::Translated::Run(args) => promote(&args, cli.global.color),
            }
        }
        Command::Action => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(promoter::action::run())
        }
        Command::Verify(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(promoter::verify::command(args))
        }
        Command::VerifyBundle(args) => promoter::verify_bundle::command(args),
        Command::Report(ReportCommand::Merge(args)) => promoter::merge::command(args),
        Command::Rules(args) => {
            rules::list(&mut std::io::stdout().lock(), args.format)?;
            Ok(Outcome::Clean)
        }
        Command::Explain(args) => {
            let color = color::stdout(cli.global.color);
            rules::explain(&mut std::io::stdout().lock(), args.rule, args.format, color)?;
            Ok(Outcome::Clean)
        }
        Command::Completions(args) => {
            let mut out = std::io::stdout().lock();
            completions::completions(&mut out, args.shell);
            out.flush()?;
            Ok(Outcome::Clean)
        }
        Command::Man(args) => {
            completions::man(&mut std::io::stdout().lock(), args.command.as_deref())?;
            Ok(Outcome::Clean)
        }
    }
}

/// Runs `promoter run` on a tokio runtime: the only place one is built.
fn promote(
    args: &promoter::cli::RunArgs,
    color: promoter::cli::ColorChoice,
) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = promoter::report::RenderOptions {
        color: color::stdout(color),
    };
    runtime.block_on(promoter::run::run(args, &options))
}

/// The error and its causes, once each: `error: <what>`, then `caused by:`
/// lines, then the phase it happened in (a phase's context goes last, so
/// the first line says what went wrong).
fn error_message(err: &anyhow::Error) -> String {
    let mut chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    let phase = (err.downcast_ref::<promoter::run::InPhase>().is_some() && chain.len() > 1)
        .then(|| chain.remove(0));
    let mut message = format!("error: {}", chain[0]);
    for cause in &chain[1..] {
        message.push_str(&format!("\n  caused by: {cause}"));
    }
    if let Some(phase) = phase {
        message.push_str(&format!("\n  ({phase})"));
    }
    message
}

/// `promoter check | head` must not fail loudly when `head` exits.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
