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
        after_help = "Examples:\n  gotrace list ./server\n  gotrace list ./server 'main.*'\n  gotrace list ./server 'net/http.(*conn).*' --json\n  gotrace list ./server --globals 'main.*'\n  gotrace list ./server --inlined 'main.small'       where each inlined call of main.small is"
    )]
    List(ListArgs),
    /// Latency histogram of Go functions, aggregated in the kernel (like BCC funclatency).
    #[command(
        after_help = "Examples:\n  gotrace funclat main.doWork ./counter            every process running ./counter\n  gotrace funclat 'main.*' -p 4242                 one running process\n  gotrace funclat -u -d 10 main.doWork -- ./counter -rate 500\n  gotrace funclat -i 1 -T 'net/http.(*conn).serve' ./server\n  gotrace funclat --json main.doWork ./counter\n  gotrace funclat 'sync.(*Mutex).Lock' -p 4242      inlined calls included (--no-inlined: only the function's own code)\n  gotrace funclat -u --listen 127.0.0.1:9464 main.doWork ./counter     Prometheus /metrics\n  gotrace funclat --heatmap lat.svg -d 30 main.doWork ./counter         latency heatmap"
    )]
    Funclat(FunclatArgs),
    /// Every call of Go functions: arguments, results, duration and goroutine.
    #[command(
        after_help = "Examples:\n  gotrace args main.doWork ./server\n  gotrace args --json 'main.*' -p 4242\n  gotrace args --strsize 128 --global main.counter main.handle -- ./server -port 8080\n  gotrace args --stack main.doWork ./server\n  gotrace args main.small ./server                 inlined calls too: arguments from DWARF, `?` with why where it has none\n  gotrace args 'main.doWork(n int, s string) (int, error)' ./stripped-server"
    )]
    Args(ArgsArgs),
    /// Goroutine creation and exit events, with start function, creation site and lifetime.
    #[command(
        after_help = "Examples:\n  gotrace goroutines ./server                      every process running ./server\n  gotrace goroutines -p 4242 --summary -d 10\n  gotrace goroutines --filter 'main.*' --json -- ./server -port 8080\n  gotrace goroutines -i 5 ./server\n  gotrace goroutines --listen 127.0.0.1:9465 ./server                  Prometheus /metrics"
    )]
    Goroutines(GoroutinesArgs),
    /// Per-goroutine call trees beneath each call of ROOT, with durations; flame graphs.
    #[command(
        after_help = "Examples:\n  gotrace graph main.handle ./server                   ROOT and what it calls, 3 calls deep\n  gotrace graph --depth 5 --min 20ms main.handle -p 4242      only the slow calls\n  gotrace graph main.handle 'net/http.*' -- ./server -port 8080\n  gotrace graph --json --max-nodes 500 'main.(*Server).*' ./server\n  gotrace graph --folded out.folded --svg out.svg -d 30 main.handle ./server"
    )]
    Graph(GraphArgs),
}

/// What to trace: the last positional is the binary unless `-p` or `--` names the process.
#[derive(Debug, Args)]
pub struct TraceTarget {
    /// Trace only this process (the binary is /proc/PID/exe).
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pid: Option<u32>,
    /// Stop after this many seconds.
    #[arg(short = 'd', long = "duration", value_name = "SECS")]
    pub duration: Option<f64>,
    /// Write gotrace's own output (tables, JSON lines) to FILE instead of stdout, so that a
    /// launched command's output cannot interleave with it.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// At the stop, how long the calls in flight may take to return before the probes go
    /// (e.g. 250ms, 1s); those still running are counted in_flight_at_end.
    #[arg(long, value_name = "DURATION", default_value = "250ms")]
    pub drain_timeout: String,
    /// One JSON object per line instead of tables; the first line says when the probes are
    /// attached.
    #[arg(long)]
    pub json: bool,
    /// List each function a pattern matched that cannot be traced, and why.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Launch this command and trace it from its first instruction; gotrace exits with its
    /// exit status.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

impl TraceTarget {
    /// `--drain-timeout` (`250ms`, `1s`...).
    pub fn drain_timeout(&self) -> anyhow::Result<std::time::Duration> {
        crate::output::clock::parse_duration_ns("--drain-timeout", &self.drain_timeout)
            .map(std::time::Duration::from_nanos)
    }
}

/// Arguments of `gotrace funclat`.
#[derive(Debug, Args)]
pub struct FunclatArgs {
    /// Function names or globs ('main.*'), then the binary unless -p or -- is given.
    #[arg(required = true, value_name = "PATTERN... [BINARY]")]
    pub positional: Vec<String>,
    /// Print and reset the histograms every SECS seconds.
    #[arg(short = 'i', long = "interval", value_name = "SECS")]
    pub interval: Option<f64>,
    /// Histogram in microseconds.
    #[arg(short = 'u', long = "microseconds", conflicts_with = "milliseconds")]
    pub microseconds: bool,
    /// Histogram in milliseconds.
    #[arg(short = 'm', long = "milliseconds")]
    pub milliseconds: bool,
    /// Print a timestamp before each interval.
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,
    /// Calls that can be in flight at once (goroutines x recursion depth of the traced
    /// functions). Beyond it the oldest are evicted and their returns counted as lost; each
    /// slot costs about 100 bytes of kernel memory.
    #[arg(long, value_name = "N", default_value_t = 262_144)]
    pub max_open_calls: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics while tracing (e.g. 127.0.0.1:9464):
    /// histograms and loss counters per function, cumulative, refreshed every second. See
    /// docs/fleet.md.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Write a latency heatmap to FILE (SVG) at exit: time across, log2 latency buckets up,
    /// colour for the number of calls; one panel per function, all in this one file.
    #[arg(long, value_name = "FILE")]
    pub heatmap: Option<PathBuf>,
    /// Width of one heatmap column, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, requires = "heatmap")]
    pub heatmap_step: f64,
    /// Trace only the functions' own code, not their inlined calls.
    #[arg(long)]
    pub no_inlined: bool,
    #[command(flatten)]
    pub target: TraceTarget,
}

/// Arguments of `gotrace goroutines`.
#[derive(Debug, Args)]
pub struct GoroutinesArgs {
    /// The Go binary (every process running it), unless -p or -- is given.
    #[arg(value_name = "BINARY")]
    pub binary: Option<std::path::PathBuf>,
    /// Only goroutines whose start function matches this glob ('main.*').
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Print the summary every SECS seconds (cumulative since tracing began).
    #[arg(short = 'i', long = "interval", value_name = "SECS")]
    pub interval: Option<f64>,
    /// Print only the summary, not each event.
    #[arg(long)]
    pub summary: bool,
    /// Print the parent's stack at each go statement (amd64; up to 16 frames).
    #[arg(long)]
    pub stack: bool,
    /// Kernel buffer for events in flight to gotrace, in MiB (a power of two); events that do
    /// not fit are counted as lost.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub buffer_mib: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics while tracing (e.g. 127.0.0.1:9465):
    /// goroutines created, exited and alive, and their lifetimes, per start function,
    /// cumulative, refreshed every second. See docs/fleet.md.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Label the --listen metrics with the creation site (file:line of the go statement) too:
    /// one label set per go statement instead of per start function.
    #[arg(long, requires = "listen")]
    pub listen_sites: bool,
    #[command(flatten)]
    pub target: TraceTarget,
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
    /// Below each function, list its inlined call sites (parent, call site, code ranges, entry
    /// instructions); with --json, adds the entries to "inlined_sites" (slower: decodes every
    /// parent).
    #[arg(long)]
    pub inlined: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `gotrace args`.
#[derive(Debug, Args)]
pub struct ArgsArgs {
    /// Function names or globs ('main.*'), or for a binary without DWARF a signature
    /// ('main.f(n int, s string) (int, error)'); then the binary unless -p or -- is given.
    #[arg(required = true, value_name = "FUNC... [BINARY]")]
    pub positional: Vec<String>,
    /// Bytes of each string (and []byte) printed at most; longer ones are marked truncated.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub strsize: u32,
    /// Entry only: do not probe the RETs (no results, no durations).
    #[arg(long)]
    pub no_ret: bool,
    /// Trace only the functions' own code, not their inlined calls (whose arguments come
    /// from DWARF's inlined parameters, `?` where the compiler kept no location).
    #[arg(long)]
    pub no_inlined: bool,
    /// Print each call's callers (function and file:line, from the frame pointers and the
    /// pclntab; amd64).
    #[arg(long)]
    pub stack: bool,
    /// A global variable's value at each call, e.g. main.counter (repeatable).
    #[arg(long = "global", value_name = "NAME")]
    pub globals: Vec<String>,
    /// Stop after printing this many events.
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Calls that can be in flight at once (for durations); beyond it the oldest are
    /// evicted and their returns counted as unmatched.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_open_calls: u32,
    /// Ring buffer size in KiB (a power of two, at least 4). Events that find it full are
    /// counted as lost.
    #[arg(long, value_name = "KIB", default_value_t = 32 * 1024)]
    pub ringbuf_kib: u32,
    #[command(flatten)]
    pub target: TraceTarget,
}

/// Arguments of `gotrace graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// ROOT (a function or glob), then more functions or globs to trace beneath it, then the
    /// binary unless -p or -- is given.
    #[arg(required = true, value_name = "ROOT [PATTERN...] [BINARY]")]
    pub positional: Vec<String>,
    /// Also trace every function ROOT reaches by direct calls within N calls (decoded from
    /// the binary); 0: only ROOT and the PATTERNs.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub depth: u32,
    /// Leave out the Go runtime (runtime.*) from the reached functions (the default).
    #[arg(long, overrides_with = "runtime")]
    pub no_runtime: bool,
    /// Include the Go runtime (runtime.*) in the reached functions.
    #[arg(long)]
    pub runtime: bool,
    /// Print only root calls that took longer than this (e.g. 5ms, 100us, 2s).
    #[arg(long, value_name = "DURATION")]
    pub min: Option<String>,
    /// Add each traced call's arguments and results, decoded as `gotrace args` does (needs DWARF).
    #[arg(long)]
    pub args: bool,
    /// Write the trees as collapsed stacks weighted by self time (flamegraph.pl, speedscope,
    /// inferno) to FILE at exit.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Write an interactive flame graph (SVG) of the trees to FILE at exit.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Nesting beneath a root call kept per tree; deeper calls are cut and counted.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_depth: u32,
    /// Calls kept per tree; further calls are cut and counted.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_nodes: u32,
    /// Goroutines that can be inside ROOT at once; beyond it root calls are counted as lost.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_goroutines: u32,
    /// Ring buffer size in KiB (a power of two, at least 4). Events that find it full are
    /// counted as lost.
    #[arg(long, value_name = "KIB", default_value_t = 32 * 1024)]
    pub ringbuf_kib: u32,
    #[command(flatten)]
    pub target: TraceTarget,
}
