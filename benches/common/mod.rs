//! Shared by the benchmarks: the preconditions, and the cost floor (the minimal counting BPF
//! program, `src/bpf/floor.bpf.c`) on the probe sites gotrace itself would use.

// Each benchmark is its own crate and uses only part of these helpers.
#![allow(dead_code)]

use std::io::BufRead;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gotrace::gobin::BinaryFile;
use gotrace::session::attach;
use gotrace::session::bpf::floor::FloorSkelBuilder;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

/// Checks for root and builds the Go targets; returns the repository root.
pub fn prepare(benchmark: &str) -> Result<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the {benchmark} benchmark loads BPF programs: run it as root");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("scripts/build-targets.sh"))
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "scripts/build-targets.sh failed");
    Ok(root)
}

/// Runs `f` while the floor program counts hits at the sites gotrace plans for each
/// `(function, with its RETs)` of `binary`.
pub fn with_floor<T>(
    binary: &Path,
    functions: &[(&str, bool)],
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let file = BinaryFile::open(binary)?;
    let bin = file.parse()?;
    let mut sites = Vec::new();
    for &(function, with_rets) in functions {
        let plan = gotrace::plan::plan(&bin, &[function.to_owned()], with_rets)?;
        sites.extend(plan.sites(|_| with_rets));
    }
    let mut object = MaybeUninit::uninit();
    let skel = FloorSkelBuilder::default().open(&mut object)?.load()?;
    let _links = attach::attach_sites(&skel.progs.floor_hit, true, None, binary, &sites)?;
    f()
}

/// Wall time of one tight-loop run of the counter example: `calls` calls of main.doWork.
pub fn run_counter(counter: &Path, calls: &str) -> Result<Duration> {
    let start = Instant::now();
    let status = Command::new(counter)
        .args(["-rate", "0", "-n", calls])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "counter failed");
    Ok(start.elapsed())
}

/// Prints the per-call costs of a traced counter run against the untraced run and the floor
/// (2 hits per call), and their ratio (goal <= 1.10).
pub fn print_per_call(
    tool: &str,
    calls: f64,
    untraced: Duration,
    floor: Duration,
    traced: Duration,
) {
    let per_call = |d: Duration| (d.as_secs_f64() - untraced.as_secs_f64()) * 1e9 / calls;
    println!(
        "  untraced run          {:>10.1} ms",
        untraced.as_secs_f64() * 1e3
    );
    println!("  floor (2 hits/call)   {:>10.1} ns/call", per_call(floor));
    println!("  {tool:<21} {:>10.1} ns/call", per_call(traced));
    println!(
        "  ratio gotrace/floor   {:>10.3}   (goal <= 1.10)",
        per_call(traced) / per_call(floor)
    );
}

/// Prints an older gotrace's per-call cost (`GOTRACE_BENCH_BASELINE`, measured in the same
/// alternating rounds) and this one's against it (before/after a change).
pub fn print_baseline(
    baseline: &Path,
    calls: f64,
    untraced: Duration,
    before: Duration,
    traced: Duration,
) {
    let per_call = |d: Duration| (d.as_secs_f64() - untraced.as_secs_f64()) * 1e9 / calls;
    println!(
        "  baseline {}  {:>10.1} ns/call",
        baseline.display(),
        per_call(before)
    );
    println!(
        "  ratio gotrace/baseline {:>9.3}",
        per_call(traced) / per_call(before)
    );
}

/// The older gotrace to measure beside this one (`GOTRACE_BENCH_BASELINE`), if given.
pub fn baseline() -> Option<PathBuf> {
    std::env::var_os("GOTRACE_BENCH_BASELINE").map(PathBuf::from)
}

/// The best of `runs` rates `f` measures.
pub fn best_rate(runs: usize, mut f: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best: f64 = 0.0;
    for _ in 0..runs {
        best = best.max(f()?);
    }
    Ok(best)
}

/// Runs `cmd` (a target, or gotrace launching it) with `args` and returns the rate the
/// target printed on its `per_second N` line.
pub fn printed_rate(mut cmd: Command, args: &[&str]) -> Result<f64> {
    let out = cmd.args(args).stderr(Stdio::null()).output()?;
    anyhow::ensure!(out.status.success(), "{:?} failed", cmd.get_program());
    out.stdout
        .lines()
        .find_map(|l| l.ok()?.strip_prefix("per_second ")?.parse().ok())
        .context("the target printed no per_second line")
}
