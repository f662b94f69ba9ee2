//! `cargo bench --bench funclat` (root): the costs of `gotrace funclat`, each against a
//! baseline measured in the same run (issue: funclat, "Performance").
//!
//! - Overhead per call on a tight loop (the counter example, `-rate 0`), divided by the floor:
//!   the minimal counting BPF program (`src/bpf/floor.bpf.c`) on the same probe sites (entry +
//!   RET, i.e. two hits per call). Goal: ratio <= 1.10.
//! - Start-up, launch to banner, on the largest Go binary here (Go's `compile`): one function,
//!   and ~1,000 functions. Goals: 200 ms and 2 s.
//! - gotrace's own CPU while the busy target runs, in % of one core. Goal: <= 1 %.
//!
//! With GOTRACE_BENCH_BASELINE=/path/to/an/older/gotrace, that binary is measured in the same
//! alternating rounds too, and the per-call ratio new/old is printed (before/after a change).

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

const CALLS: &str = "200000";
const RUNS: usize = 5;

fn main() -> Result<()> {
    let root = common::prepare("funclat")?;
    let counter = root.join("target/go-targets/go1.27.3/amd64-plain/counter");
    let gotrace = PathBuf::from(env!("CARGO_BIN_EXE_gotrace"));

    // Rounds alternate the three set-ups, so that drift in the machine's speed hits each alike.
    let baseline = common::baseline();
    let mut before = Duration::MAX;
    let (mut untraced, mut floor, mut traced) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut cpu: f64 = 0.0;
    for _ in 0..RUNS {
        untraced = untraced.min(common::run_counter(&counter, CALLS)?);
        floor = floor.min(common::with_floor(
            &counter,
            &[("main.doWork", true)],
            || common::run_counter(&counter, CALLS),
        )?);
        let (run, share) = with_gotrace(&gotrace, &counter)?;
        traced = traced.min(run);
        cpu = cpu.max(share);
        if let Some(baseline) = &baseline {
            before = before.min(with_gotrace(baseline, &counter)?.0);
        }
    }
    let calls: f64 = CALLS.parse()?;
    println!("funclat overhead, {CALLS} calls of main.doWork (best of {RUNS} alternating rounds):");
    common::print_per_call("gotrace funclat", calls, untraced, floor, traced);
    println!(
        "  gotrace CPU           {:>10.2} % of one core while tracing, worst round (goal <= 1 %)",
        cpu
    );
    if let Some(baseline) = &baseline {
        common::print_baseline(baseline, calls, untraced, before, traced);
    }

    let compile = dirs_cache().join("go/1.27.3/go/pkg/tool/linux_amd64/compile");
    for (label, pattern) in [
        ("1 function", "main.main"),
        ("~1000 functions", "cmd/compile/internal/ssagen.*"),
    ] {
        let functions = count_functions(&gotrace, &compile, pattern)?;
        let startup = best_of(|| time_to_banner(&gotrace, &compile, pattern))?;
        println!(
            "start-up to banner, {label} ({functions} on {}): {:.1} ms (goal {})",
            compile.display(),
            startup.as_secs_f64() * 1e3,
            if functions > 1 { "2000 ms" } else { "200 ms" }
        );
    }
    Ok(())
}

fn dirs_cache() -> PathBuf {
    std::env::var_os("GOTRACE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/gotrace")
        })
}

fn best_of(mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    (0..RUNS)
        .map(|_| f())
        .collect::<Result<Vec<_>>>()
        .map(|v| v.into_iter().min().expect("RUNS > 0"))
}

/// One tight-loop run with `gotrace funclat main.doWork COUNTER` attached; also gotrace's CPU
/// share during it.
fn with_gotrace(gotrace: &Path, counter: &Path) -> Result<(Duration, f64)> {
    let mut tracer = spawn_to_banner(gotrace, counter, "main.doWork")?;
    let cpu_before = cpu_time(tracer.id())?;
    let wall = Instant::now();
    let run = common::run_counter(counter, CALLS);
    let cpu =
        (cpu_time(tracer.id())? - cpu_before).as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0;
    stop(&mut tracer);
    Ok((run?, cpu))
}

fn spawn_to_banner(gotrace: &Path, binary: &Path, pattern: &str) -> Result<Child> {
    let mut child = Command::new(gotrace)
        .args(["funclat", pattern])
        .arg(binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.as_mut().context("stdout")?).read_line(&mut banner)?;
    anyhow::ensure!(banner.starts_with("Tracing"), "gotrace printed {banner:?}");
    Ok(child)
}

fn stop(child: &mut Child) {
    // Nobody reads the final histograms: close the pipe so that gotrace cannot block on it.
    drop(child.stdout.take());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
}

fn time_to_banner(gotrace: &Path, binary: &Path, pattern: &str) -> Result<Duration> {
    let start = Instant::now();
    let mut child = spawn_to_banner(gotrace, binary, pattern)?;
    let elapsed = start.elapsed();
    stop(&mut child);
    Ok(elapsed)
}

fn count_functions(gotrace: &Path, binary: &Path, pattern: &str) -> Result<usize> {
    let out = Command::new(gotrace)
        .args(["list", "--json"])
        .arg(binary)
        .arg(pattern)
        .output()?;
    Ok(out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count())
}

/// utime + stime of a process, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .context("stat")?
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Ok(Duration::from_millis(ticks * 1000 / hz))
}
