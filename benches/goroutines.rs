//! `cargo bench --bench goroutines` (root): goroutine creations per second that a target
//! sustains untraced, with the floor program on gotrace's probe sites, and under
//! `gotrace goroutines`, in one run (issue 5, "Performance").
//!
//! The target is `gotree -storm N` (one goroutine starting N goroutines that return at once;
//! it prints its own rate). The floor is the minimal counting BPF program
//! (`src/bpf/floor.bpf.c`) on the sites gotrace uses: runtime.newproc1's entry and RETs and
//! runtime.goexit1's entry, three hits per goroutine. Goal: gotrace's added cost per goroutine
//! is at most the floor's (ratio <= 1.0 up to noise).

mod common;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Goroutines per run: three probe hits each, tens of microseconds per hit.
const STORM: &str = "20000";
const RUNS: usize = 3;

fn main() -> Result<()> {
    let root = common::prepare("goroutines")?;
    let gotrace = PathBuf::from(env!("CARGO_BIN_EXE_gotrace"));
    for version in ["1.19", "1.27.3"] {
        let gotree = root.join(format!("target/go-targets/go{version}/amd64-plain/gotree"));
        let untraced = best_rate(|| storm_rate(Command::new(&gotree)))?;
        let floor = common::with_floor(
            &gotree,
            &[("runtime.newproc1", true), ("runtime.goexit1", false)],
            || best_rate(|| storm_rate(Command::new(&gotree))),
        )?;
        let traced = best_rate(|| {
            let mut cmd = Command::new(&gotrace);
            cmd.args(["goroutines", "--summary", "--"]).arg(&gotree);
            storm_rate(cmd)
        })?;
        let cost = |rate: f64| 1e9 / rate - 1e9 / untraced;
        println!("goroutine creation, go{version} amd64, {STORM} goroutines (best of {RUNS}):");
        println!("  untraced                 {untraced:>12.0} goroutines/s");
        println!(
            "  floor (3 hits/goroutine) {floor:>12.0} goroutines/s  (+{:.1} us/goroutine)",
            cost(floor) / 1e3
        );
        println!(
            "  gotrace goroutines       {traced:>12.0} goroutines/s  (+{:.1} us/goroutine)",
            cost(traced) / 1e3
        );
        println!(
            "  ratio gotrace/floor      {:>12.3}  (goal <= 1.0 up to noise)",
            cost(traced) / cost(floor)
        );
    }
    Ok(())
}

fn best_rate(mut f: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best: f64 = 0.0;
    for _ in 0..RUNS {
        best = best.max(f()?);
    }
    Ok(best)
}

/// Runs `cmd` (gotree, or gotrace launching it) with `-storm STORM` and returns the rate the
/// target printed.
fn storm_rate(mut cmd: Command) -> Result<f64> {
    let out = cmd.args(["-storm", STORM]).stderr(Stdio::null()).output()?;
    anyhow::ensure!(out.status.success(), "storm run failed");
    out.stdout
        .lines()
        .find_map(|l| l.ok()?.strip_prefix("per_second ")?.parse().ok())
        .context("the target printed no per_second line")
}
