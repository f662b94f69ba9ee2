//! Command-line interface (clap derive): one struct per subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Trace running Go programs with eBPF: function latency, arguments, goroutines.
#[derive(Debug, Parser)]
#[command(name = "gotrace", version, about)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether `name` is one of gotrace's commands.
    pub fn is_command(name: &str) -> bool {
        use clap::CommandFactory;
        Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == name)
    }
}

/// The subcommands. Each one's examples (`after_help`) are on its arguments struct, with its
/// flags.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the functions (and globals) of a Go binary that can be traced, and how.
    List(ListArgs),
    /// Latency histogram of Go functions, aggregated in the kernel (like BCC funclatency).
    Funclat(FunclatArgs),
    /// Every call of Go functions: arguments, results, duration and goroutine.
    Args(ArgsArgs),
    /// Goroutine creation and exit events, with start function, creation site and lifetime.
    Goroutines(GoroutinesArgs),
    /// Per-goroutine call trees beneath each call of ROOT, with durations; flame graphs.
    Graph(GraphArgs),
}

/// What to trace: the last positional is the binary unless `-p` or `--` names the process.
#[derive(Debug, Args)]
pub struct TraceTarget {
    /// Trace only this process (the binary is /proc/PID/exe).
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pid: Option<u32>,
    /// Stop after this long: a Go duration (10s, 1.5s, 500ms, 2m, 1m30s) or seconds (1.5).
    #[arg(short = 'd', long = "duration", value_name = "DURATION", value_parser = duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// At the stop, how long the calls in flight may take to return before the probes go
    /// (a Go duration: 250ms, 1s); those still running are counted in_flight_at_end.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "250ms", allow_hyphen_values = true)]
    pub drain_timeout: Duration,
    /// Write gotrace's own output (tables, JSON lines) to FILE instead of stdout, so that a
    /// launched command's output cannot interleave with it.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// One JSON object per line instead of tables; the first line says when the probes are
    /// attached.
    #[arg(long)]
    pub json: bool,
    /// List each function a pattern matched that cannot be traced, and why.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// The overload guard's budget (funclat, args, graph): when the probes cost the target
    /// more than PCT percent of one CPU, the functions costing most are detached, each named
    /// on stderr (a `guard_dropped` record with --json), until under it; the others stay
    /// exact. On by default (5) with -p; a launched command or BINARY is guarded only when
    /// this is given.
    #[arg(long, value_name = "PCT")]
    pub max_overhead: Option<f64>,
    /// Never detach a function for what its probes cost the target (no overload guard).
    #[arg(long)]
    pub no_guard: bool,
    /// Launch this command and trace it from its first instruction; gotrace exits with its
    /// exit status.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// What `gotrace funclat --help` prints after the flags.
const FUNCLAT_EXAMPLES: &str = "\
Examples:
  gotrace funclat main.doWork ./counter            every process running ./counter
  gotrace funclat 'main.*' -p 4242                 one running process
  gotrace funclat -u -d 10 main.doWork -- ./counter -rate 500
  gotrace funclat -i 1 -T 'net/http.(*conn).serve' ./server
  gotrace funclat --json main.doWork ./counter
  gotrace funclat 'sync.(*Mutex).Lock' -p 4242      inlined calls included (--no-inlined: only the function's own code)
  gotrace funclat -u --listen 127.0.0.1:9464 main.doWork ./counter     Prometheus /metrics
  gotrace funclat --heatmap lat.svg -d 30 main.doWork ./counter         latency heatmap
  gotrace funclat --by r.URL.Path main.handle ./server                   one histogram per path
  gotrace funclat --by r.Method --max-keys 20 -u main.handle -p 4242    at most 20 keys, the rest under (other)
  gotrace funclat --by r.URL.Path 'main.handle(w http.ResponseWriter, r *http.Request)' ./stripped-server   written signature (docs/signatures.md)
  gotrace funclat --breakdown -d 10 main.handle -p 4242     share of on-CPU, runnable, syscall, blocked time; slowest calls
  gotrace funclat --breakdown --pprof wait.pb.gz 'main.*' -p 4242     then: go tool pprof -sample_index=offcpu -top wait.pb.gz";

/// Arguments of `gotrace funclat`.
#[derive(Debug, Args)]
#[command(after_help = FUNCLAT_EXAMPLES)]
pub struct FunclatArgs {
    /// Function names or globs ('main.*'), then the binary unless -p or -- is given.
    #[arg(required = true, value_name = "PATTERN... [BINARY]")]
    pub positional: Vec<String>,
    /// Print and reset the histograms every DURATION (5s, 500ms, or seconds: 1.5).
    #[arg(short = 'i', long = "interval", value_name = "DURATION", value_parser = duration, allow_hyphen_values = true)]
    pub interval: Option<Duration>,
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
    /// One histogram per distinct value of EXPR at each call's entry, kept in the kernel: a
    /// parameter, then fields, len(x), constant indexes, as `gotrace args --field` takes
    /// (r.URL.Path, r.Method, len(tags)); strings (up to --strsize bytes), integers, booleans.
    /// The functions' own code only (not their inlined calls). On a binary without DWARF,
    /// write the function's signature in the pattern, as `gotrace args` takes it.
    #[arg(long, value_name = "EXPR")]
    pub by: Option<String>,
    /// --by: distinct keys given a histogram of their own; later ones count under (other).
    #[arg(long, value_name = "N", default_value_t = 300, requires = "by")]
    pub max_keys: u32,
    /// --by: bytes of a string key kept, 1 to 128; longer strings are keyed by their first N
    /// bytes and marked truncated.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "by", value_parser = clap::value_parser!(u32).range(1..=128))]
    pub strsize: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics while tracing (127.0.0.1:9464, or :9464
    /// for every interface): histograms and loss counters per function, cumulative, refreshed
    /// every second. See docs/fleet.md.
    #[arg(long, value_name = "ADDR", value_parser = listen_addr)]
    pub listen: Option<String>,
    /// Write a latency heatmap to FILE (SVG) at exit: time across, log2 latency buckets up,
    /// colour for the number of calls; one panel per function, all in this one file.
    #[arg(long, value_name = "FILE")]
    pub heatmap: Option<PathBuf>,
    /// Width of one heatmap column (1s, 500ms, or seconds: 0.5).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration, allow_hyphen_values = true, requires = "heatmap")]
    pub heatmap_step: Duration,
    /// Trace only the functions' own code, not their inlined calls.
    #[arg(long)]
    pub no_inlined: bool,
    /// With --breakdown: write where each function's calls' time went as a pprof profile
    /// (gzipped protobuf) to FILE at exit, for `go tool pprof -top FILE` or `-http`: each
    /// function's calls summed on its own frame (no callers: a traced function called by
    /// another is counted in both), sample types wall, oncpu and offcpu
    /// (-sample_index=offcpu), the time off the CPU on frames of its own beneath the
    /// function's ([blocked: chan receive], [runnable], [syscall], [unattributed]). Without
    /// --breakdown it is an error (funclat measures nothing else a profile could carry).
    #[arg(long, value_name = "FILE")]
    pub pprof: Option<PathBuf>,
    /// --breakdown and its limit.
    #[command(flatten)]
    pub breakdown: Breakdown,
    /// Which process(es) to trace and for how long.
    #[command(flatten)]
    pub target: TraceTarget,
}

/// What `gotrace goroutines --help` prints after the flags.
const GOROUTINES_EXAMPLES: &str = "\
Examples:
  gotrace goroutines ./server                      every process running ./server
  gotrace goroutines -p 4242 --summary -d 10
  gotrace goroutines --filter 'main.*' --json -- ./server -port 8080
  gotrace goroutines -i 5 ./server
  gotrace goroutines --listen 127.0.0.1:9465 ./server                  Prometheus /metrics
  gotrace goroutines --blocked -p 4242             goroutines parked now, longest first
  gotrace goroutines --blocked --json -p 4242 --filter 'main.*'";

/// Arguments of `gotrace goroutines`.
#[derive(Debug, Args)]
#[command(after_help = GOROUTINES_EXAMPLES)]
pub struct GoroutinesArgs {
    /// The Go binary (every process running it), unless -p or -- is given.
    #[arg(value_name = "BINARY")]
    pub binary: Option<std::path::PathBuf>,
    /// Only goroutines whose start function matches this glob ('main.*').
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Print the summary every DURATION (5s, 500ms, or seconds: 1.5), cumulative since
    /// tracing began.
    #[arg(short = 'i', long = "interval", value_name = "DURATION", value_parser = duration, allow_hyphen_values = true)]
    pub interval: Option<Duration>,
    /// Print a timestamp before each summary.
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,
    /// Print only the summary, not each event.
    #[arg(long)]
    pub summary: bool,
    /// Print the parent's stack at each go statement (amd64; up to 16 frames).
    #[arg(long)]
    pub stack: bool,
    /// List the goroutines of -p PID parked right now, once, instead of tracing: each one's
    /// wait reason (the runtime's own name), how long it has been parked (at least), where it
    /// parked and its stack, the longest parked first; then a count per wait reason and park
    /// site. Reads the process's memory; nothing is probed and the process is not stopped.
    #[arg(long, conflicts_with_all = ["interval", "timestamp", "summary", "stack", "listen"])]
    pub blocked: bool,
    /// The kernel ring buffer's size.
    #[command(flatten)]
    pub buffer: RingBuffer,
    /// Serve Prometheus metrics at http://ADDR/metrics while tracing (127.0.0.1:9465, or :9465
    /// for every interface): goroutines created, exited and alive, and their lifetimes, per
    /// start function, cumulative, refreshed every second. See docs/fleet.md.
    #[arg(long, value_name = "ADDR", value_parser = listen_addr)]
    pub listen: Option<String>,
    /// Label the --listen metrics with the creation site (file:line of the go statement) too:
    /// one label set per go statement instead of per start function.
    #[arg(long, requires = "listen")]
    pub listen_sites: bool,
    /// Which process(es) to trace and for how long.
    #[command(flatten)]
    pub target: TraceTarget,
}

/// What `gotrace list --help` prints after the flags.
const LIST_EXAMPLES: &str = "\
Examples:
  gotrace list ./server
  gotrace list ./server 'main.*'
  gotrace list ./server 'net/http.(*conn).*' --json
  gotrace list ./server --globals 'main.*'
  gotrace list ./server --inlined 'main.small'       where each inlined call of main.small is

Columns:
  FUNCTION    the name to give funclat, args and graph (the column is as wide as the longest name)
  ENTRY       the function's address; OFFSET: its offset in the file; SIZE: bytes of code
  RETS        RET instructions gotrace probes for returns (none: it never returns, so it cannot be timed)
  TYPES       yes when DWARF gives its argument types (args can decode them; without, give a signature)
  INLINED     how many call sites inline it (funclat and args trace those too)
  ENTRY-SITE  how the kernel runs the entry probe: emulated (cheapest), flag-checked (on the stack check,
              counted only when the branch is not taken), single-step (copied out and stepped: slower)
  RET-E/S     RET probes emulated / single-stepped
  TAIL        tail calls out of it (a traced call ends at its callee's RET)
  STEPS       single-steps per traced call, entry plus return: 0 is cheapest, 2 costliest
  FILE:LINE   where it is defined";

/// Arguments of `gotrace list`.
#[derive(Debug, Args)]
#[command(after_help = LIST_EXAMPLES)]
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

/// What `gotrace args --help` prints after the flags.
const ARGS_EXAMPLES: &str = "\
Examples:
  gotrace args main.doWork ./server
  gotrace args --json 'main.*' -p 4242
  gotrace args --strsize 128 --global main.counter main.handle -- ./server -port 8080
  gotrace args --stack main.doWork ./server
  gotrace args --field r.Method --field r.URL.Path main.handle ./server     fields, read in the kernel
  gotrace args --where 'r.URL.Path ^= \"/api/\"' main.handle ./server     only the matching calls
  gotrace args main.small ./server                 inlined calls too: arguments from DWARF, `?` with why where it has none
  gotrace args 'main.doWork(n int, s string) (int, error)' ./stripped-server
  gotrace args --min-duration 20ms main.handle -p 4242   only the calls that took 20ms or more
  gotrace args 'main.handle(w http.ResponseWriter, r *http.Request)' ./stripped-server   standard-library types (docs/signatures.md)
  gotrace args --breakdown main.handle -p 4242      where each call's time went: on-CPU, runnable, syscall, blocked by wait reason";

/// `--breakdown`: follow each traced call's goroutine through Go's scheduler.
#[derive(Debug, Args)]
pub struct Breakdown {
    /// Split each call's duration into time on the CPU, runnable (waiting for a P, or on a
    /// thread the kernel switched out), in system calls and blocked by the runtime's wait
    /// reason ("chan receive", "sleep", ...), by probing the Go scheduler and the kernel's
    /// sched_switch while a traced call is open (costs a probe hit per goroutine switch).
    #[arg(long)]
    pub breakdown: bool,
    /// Goroutines inside traced calls, and traced calls open, that --breakdown follows at
    /// once (each costs about 600 bytes of kernel memory); beyond it a call's time is
    /// unattributed (and counted as unfollowed).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16_384,
        requires = "breakdown"
    )]
    pub max_followed: u32,
}

/// Arguments of `gotrace args`.
#[derive(Debug, Args)]
#[command(after_help = ARGS_EXAMPLES)]
pub struct ArgsArgs {
    /// Function names or globs ('main.*'), or for a binary without DWARF a signature
    /// ('main.f(n int, s string) (int, error)'); then the binary unless -p or -- is given.
    #[arg(required = true, value_name = "FUNC... [BINARY]")]
    pub positional: Vec<String>,
    /// Bytes of each string (and []byte) printed at most, 1 to 4096; longer ones are marked
    /// truncated.
    #[arg(long, value_name = "N", default_value_t = 64, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=i64::from(STRSIZE_MAX)))]
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
    /// Only the calls that took at least this long (20ms, 1.5s, 100us): each entry is held in
    /// the kernel until its return, and both are printed only for a call that slow; the others
    /// are counted in the summary (`below_min_duration`).
    #[arg(long, value_name = "DURATION", value_parser = duration, allow_hyphen_values = true, conflicts_with = "no_ret")]
    pub min_duration: Option<Duration>,
    /// A value to read at each call besides the arguments, in the kernel: a parameter, then
    /// fields through pointers and embedded structs, len(x), constant indexes (r.URL.Path,
    /// s.cfg.Timeout, len(tags), tags[0]). Repeatable (at most 8); a nil on the way is null
    /// with the nil pointer named.
    #[arg(long = "field", value_name = "EXPR")]
    pub fields: Vec<String>,
    /// Show only the calls whose entry satisfies EXPR OP CONST, decided in the kernel: EXPR
    /// as --field takes it, OP one of == != < <= > >= (integers, strings) and ^= (string
    /// prefix), CONST an integer, true/false or a "string". Every traced function must have
    /// EXPR's parameter; their inlined calls are not traced. The summary counts the calls
    /// not shown.
    #[arg(long = "where", value_name = "'EXPR OP CONST'")]
    pub filter: Option<String>,
    /// Stop after printing this many events.
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Calls that can be in flight at once (for durations); beyond it the oldest are
    /// evicted and their returns counted as unmatched.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_open_calls: u32,
    /// --breakdown and its limit.
    #[command(flatten)]
    pub breakdown: Breakdown,
    /// The kernel ring buffer's size.
    #[command(flatten)]
    pub buffer: RingBuffer,
    /// Which process(es) to trace and for how long.
    #[command(flatten)]
    pub target: TraceTarget,
}

/// What `gotrace graph --help` prints after the flags.
const GRAPH_EXAMPLES: &str = "\
Examples:
  gotrace graph main.handle ./server                   ROOT and what it calls, 3 calls deep
  gotrace graph --depth 5 --min 20ms main.handle -p 4242      only the slow calls
  gotrace graph main.handle 'net/http.*' -- ./server -port 8080
  gotrace graph --json --max-nodes 500 'main.(*Server).*' ./server
  gotrace graph --folded out.folded --svg out.svg -d 30 main.handle ./server
  gotrace graph --pprof wall.pb.gz -d 30 main.handle -p 4242      then: go tool pprof -top wall.pb.gz
  gotrace graph --args --field r.URL.Path main.handle ./server       each request's path in its tree
  gotrace graph --args --field r.URL.Path 'main.handle(w http.ResponseWriter, r *http.Request)' ./stripped
  gotrace graph --breakdown --svg wait.svg main.handle -p 4242      each call's on-CPU, runnable, syscall, blocked time; off-CPU frames";

/// Arguments of `gotrace graph`.
#[derive(Debug, Args)]
#[command(after_help = GRAPH_EXAMPLES)]
pub struct GraphArgs {
    /// ROOT (a function or glob), then more functions or globs to trace beneath it, then the
    /// binary unless -p or -- is given. A function may carry its written signature, for --args
    /// on a stripped binary ('main.handle(w http.ResponseWriter, r *http.Request)').
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
    /// Print only root calls that took longer than this (5ms, 100us, 2s, or seconds: 0.5).
    #[arg(long, value_name = "DURATION", value_parser = duration, allow_hyphen_values = true)]
    pub min: Option<Duration>,
    /// Add each traced call's arguments and results, decoded as `gotrace args` does: from
    /// DWARF, or on a stripped binary from the signature written in the pattern.
    #[arg(long)]
    pub args: bool,
    /// With --args: a field path read at each call that has its parameter, as `gotrace args
    /// --field` reads it (r.URL.Path, len(tags)); repeatable.
    #[arg(long = "field", value_name = "EXPR", requires = "args")]
    pub fields: Vec<String>,
    /// Write the trees as collapsed stacks weighted by self time (flamegraph.pl, speedscope,
    /// inferno) to FILE at exit; with --breakdown a call's time off the CPU is drawn as
    /// frames of its own under it ([blocked: chan receive], [runnable], [syscall]).
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Write an interactive flame graph (SVG) of the trees to FILE at exit (with --breakdown,
    /// off-CPU frames as --folded draws them).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write the trees as a pprof profile (gzipped protobuf: each call's self time as
    /// wall-clock samples on its stack, call sites with their inlined frames) to FILE at exit,
    /// for `go tool pprof -top FILE` or `-http`; with --breakdown also sample types oncpu and
    /// offcpu (-sample_index=offcpu), the time off the CPU on frames as --folded draws them.
    #[arg(long, value_name = "FILE")]
    pub pprof: Option<PathBuf>,
    /// Nesting beneath a root call kept per tree; deeper calls are cut and counted.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_depth: u32,
    /// Calls kept per tree; further calls are cut and counted.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_nodes: u32,
    /// --breakdown and its limit.
    #[command(flatten)]
    pub breakdown: Breakdown,
    /// Goroutines that can be inside ROOT at once; beyond it root calls are counted as lost.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_goroutines: u32,
    /// The kernel ring buffer's size.
    #[command(flatten)]
    pub buffer: RingBuffer,
    /// Which process(es) to trace and for how long.
    #[command(flatten)]
    pub target: TraceTarget,
}

/// The longest `--strsize` (the BPF side's ARGS_MAX_READ).
pub const STRSIZE_MAX: u32 = 4096;

/// The kernel ring buffer that carries events to gotrace (`args`, `graph`, `goroutines`): one
/// name everywhere, `--buffer-kib`; `--ringbuf-kib` (args, graph) and `--buffer-mib`
/// (goroutines) are the old names, hidden, with their old units.
#[derive(Debug, Args)]
pub struct RingBuffer {
    /// Kernel ring buffer for events in flight to gotrace, in KiB: a power of two from 4 to
    /// 2097152 (default 32768 = 32 MiB; goroutines 16384). Events that find it full are
    /// counted as lost.
    #[arg(long = "buffer-kib", alias = "ringbuf-kib", value_name = "KIB", value_parser = buffer_kib)]
    pub kib: Option<u32>,
    /// The same size in MiB (goroutines' old name).
    #[arg(long = "buffer-mib", value_name = "MIB", hide = true, conflicts_with = "kib", value_parser = buffer_mib)]
    pub mib: Option<u32>,
}

impl RingBuffer {
    /// The size when none is given (args, graph), in KiB.
    pub const DEFAULT_KIB: u32 = 32 * 1024;
    /// goroutines' size when none is given, in KiB.
    pub const GOROUTINES_DEFAULT_KIB: u32 = 16 * 1024;

    /// The size in bytes: the one given, else `default_kib` KiB.
    pub fn bytes(&self, default_kib: u32) -> u32 {
        match (self.kib, self.mib) {
            (_, Some(mib)) => mib << 20,
            (Some(kib), None) => kib << 10,
            (None, None) => default_kib << 10,
        }
    }
}

/// Largest ring buffer, in KiB (2 GiB: its size in bytes must fit a u32).
const BUFFER_KIB_MAX: u32 = 1 << 21;

/// `--buffer-kib`: a power of two from 4 to [`BUFFER_KIB_MAX`].
fn buffer_kib(text: &str) -> Result<u32, String> {
    let kib: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of KiB"))?;
    if !kib.is_power_of_two() || !(4..=BUFFER_KIB_MAX).contains(&kib) {
        return Err(format!(
            "{kib} KiB: give a power of two from 4 to {BUFFER_KIB_MAX}"
        ));
    }
    Ok(kib)
}

/// `--buffer-mib` (hidden old name): a power of two from 1 to 2048.
fn buffer_mib(text: &str) -> Result<u32, String> {
    let mib: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of MiB"))?;
    if !mib.is_power_of_two() || mib > BUFFER_KIB_MAX >> 10 {
        return Err(format!(
            "{mib} MiB: give a power of two from 1 to {}",
            BUFFER_KIB_MAX >> 10
        ));
    }
    Ok(mib)
}

/// Every duration flag (`-d`, `-i`, `--min`, `--heatmap-step`): a Go duration — numbers with
/// units ns, us (µs), ms, s, m, h, concatenated as in `1m30s` — or a bare number of seconds
/// (`1.5`). Zero and negative durations are refused.
pub fn duration(text: &str) -> Result<Duration, String> {
    let example = "give e.g. 10s, 1.5s, 500ms, 2m or 1.5 (seconds)";
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("{text:?} is negative; {example}"));
    }
    let seconds = if let Ok(secs) = text.parse::<f64>() {
        secs
    } else {
        let mut rest = text;
        let mut total = 0.0;
        if rest.is_empty() {
            return Err(format!("empty duration; {example}"));
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (number, tail) = rest.split_at(digits);
            let units = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, next) = tail.split_at(units);
            let scale = match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "" => return Err(format!("{text:?} lacks a unit after {number}; {example}")),
                _ => return Err(format!("{text:?}: unknown unit {unit:?}; {example}")),
            };
            let value: f64 = number
                .parse()
                .map_err(|_| format!("{text:?}: {number:?} is not a number; {example}"))?;
            total += value * scale;
            rest = next;
        }
        total
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{text:?} is not a positive duration; {example}")),
    }
}

/// `--listen`: HOST:PORT, or `:PORT` for every interface (as Prometheus writes it).
fn listen_addr(text: &str) -> Result<String, String> {
    let addr = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_owned(),
    };
    let port = addr.rsplit_once(':').map(|(_, port)| port);
    if port.is_none_or(|p| p.parse::<u16>().is_err()) {
        return Err(format!(
            "{text:?}: give HOST:PORT or :PORT, e.g. 127.0.0.1:9464 or :9464"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::duration;
    use std::time::Duration;

    #[test]
    fn durations_are_go_durations_or_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(duration("10s"), Ok(ms(10_000)));
        assert_eq!(duration("1.5"), Ok(ms(1_500)));
        assert_eq!(duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(duration("500ms"), Ok(ms(500)));
        assert_eq!(duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(duration("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(duration("2m"), Ok(ms(120_000)));
        assert_eq!(duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(duration("1h"), Ok(ms(3_600_000)));
        for bad in [
            "-1",
            "0",
            "0s",
            "",
            "ms",
            "5 parsecs",
            "5x",
            "1.2.3s",
            "NaN",
            "inf",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
