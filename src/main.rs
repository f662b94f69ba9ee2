//! gotrace: trace running Go programs with eBPF.
//!
//! `main` only prints errors; `run` does the work and returns the exit code. Every error the
//! user can cause is printed as one line (`{:#}` joins anyhow's context chain) with exit code 2.

use std::process::ExitCode;

use clap::Parser;
use gotrace::{cli, commands};

fn main() -> ExitCode {
    let args = cli::Cli::parse();
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

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
