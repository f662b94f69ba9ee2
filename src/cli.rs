//! Command-line interface (clap derive): one struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Trace running Go programs with eBPF: function latency, arguments, goroutines.
#[derive(Debug, Parser)]
#[command(name = "gotrace", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the functions (and globals) of a Go binary that can be traced, and how.
    #[command(
        after_help = "Examples:\n  gotrace list ./server\n  gotrace list ./server 'main.*'\n  gotrace list ./server 'net/http.(*conn).*' --json\n  gotrace list ./server --globals 'main.*'"
    )]
    List(ListArgs),
}

/// Arguments of `gotrace list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The Go binary to read.
    pub binary: PathBuf,
    /// Glob on function names, e.g. 'main.*' or 'net/http.(*conn).*' (default: every function).
    pub pattern: Option<String>,
    /// List global variables instead of functions.
    #[arg(long)]
    pub globals: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}
