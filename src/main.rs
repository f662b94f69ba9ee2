//! gotrace: trace running Go programs with eBPF.
//!
//! `main` only prints errors; `run` does the work and returns the exit code. Every error the
//! user can cause is printed as one line (`{:#}` joins anyhow's context chain) with exit code 2.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use gotrace::{cli, commands};

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(err) => return command_line_error(&err),
    };
    gotrace::session::bpf::route_libbpf_log();
    match run(args) {
        Ok(code) => code,
        // The reader went away (`gotrace ... | head`): not an error, as for any Unix filter.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gotrace: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: cli::Cli) -> anyhow::Result<ExitCode> {
    match args.command {
        cli::Command::List(list) => commands::list::run(&list),
        cli::Command::Funclat(funclat) => commands::funclat::run(&funclat),
        cli::Command::Args(args) => commands::args::run(&args),
        cli::Command::Goroutines(goroutines) => commands::goroutines::run(&goroutines),
        cli::Command::Graph(graph) => commands::graph::run(&graph),
    }
}

/// clap's errors in gotrace's form: one line, what is wrong and where the help is (exit code
/// 2); `--help` and `--version` print as clap writes them.
fn command_line_error(err: &clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let command = std::env::args()
        .skip(1)
        .find(|arg| cli::Cli::is_command(arg))
        .map_or_else(|| "gotrace".to_owned(), |name| format!("gotrace {name}"));
    eprintln!("gotrace: {}; see `{command} --help`", one_line(err));
    ExitCode::from(2)
}

/// The substance of a clap error on one line: its message without the `error:` prefix, the
/// tips and the usage that follow it, each line joined by a space.
fn one_line(err: &clap::Error) -> String {
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "name a command: list, funclat, args, goroutines or graph".to_owned();
    }
    let text = err.to_string();
    let message = text.split("\n\n").next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
