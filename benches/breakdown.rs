//! `cargo bench --bench breakdown` (root): what `--breakdown` costs a scheduler-heavy target
//! (examples/go-targets/breakdown `-pingpong N`: two goroutines passing a value back and forth
//! over unbuffered channels, each round trip a call of main.roundtrip; it prints its own rate),
//! in one run (issue 26, "Cost"):
//! - goroutines outside traced calls: `gotrace args --breakdown main.work` (never called, so
//!   no goroutine is followed and every transition costs the probe plus one map lookup),
//!   against the floor program (`src/bpf/floor.bpf.c`) on the same scheduler probe sites
//!   (runtime.casgstatus; entersyscall/exitsyscall are not hit: no system calls). Goal: the
//!   added cost per round trip at most 1.10 times the floor's.
//! - the slowdown of `gotrace funclat main.roundtrip` with and without `--breakdown` (every
//!   round trip inside a traced call, followed through the scheduler).

mod common;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Round trips per run.
const ROUND_TRIPS: &str = "100000";
const RUNS: usize = 3;

fn main() -> Result<()> {
    let root = common::prepare("breakdown")?;
    let gotrace = PathBuf::from(env!("CARGO_BIN_EXE_gotrace"));
    for version in ["1.19", "1.27.3"] {
        let target = root.join(format!(
            "target/go-targets/go{version}/amd64-plain/breakdown"
        ));
        let untraced = best_rate(|| pingpong_rate(Command::new(&target)))?;
        let floor = common::with_floor(&target, &[("runtime.casgstatus", false)], || {
            best_rate(|| pingpong_rate(Command::new(&target)))
        })?;
        let traced = |args: &[&str]| {
            best_rate(|| {
                let mut cmd = Command::new(&gotrace);
                cmd.args(args).arg("--").arg(&target);
                pingpong_rate(cmd)
            })
        };
        let outside = traced(&["args", "--breakdown", "main.work"])?;
        let funclat = traced(&["funclat", "--no-guard", "main.roundtrip"])?;
        let inside = traced(&["funclat", "--no-guard", "--breakdown", "main.roundtrip"])?;
        let cost = |rate: f64| 1e9 / rate - 1e9 / untraced;
        println!("channel round trips, go{version} amd64, {ROUND_TRIPS} (best of {RUNS}):");
        println!("  untraced                          {untraced:>10.0} round trips/s");
        let line = |what: &str, rate: f64| {
            println!(
                "  {what:<33} {rate:>10.0} round trips/s  (+{:.2} us/round trip, {:.1}x slower)",
                cost(rate) / 1e3,
                untraced / rate
            )
        };
        line("floor on runtime.casgstatus", floor);
        line("args --breakdown, none followed", outside);
        line("funclat main.roundtrip", funclat);
        line("funclat --breakdown main.roundtrip", inside);
        println!(
            "  ratio outside/floor               {:>10.3}  (goal <= 1.10)",
            cost(outside) / cost(floor)
        );
        println!(
            "  slowdown --breakdown/funclat      {:>10.3}  (the target's rate without/with)",
            funclat / inside
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

/// Runs `cmd` (the target, or gotrace launching it) with `-pingpong ROUND_TRIPS` and returns
/// the rate the target printed.
fn pingpong_rate(mut cmd: Command) -> Result<f64> {
    let out = cmd
        .args(["-pingpong", ROUND_TRIPS])
        .stderr(Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "pingpong run failed");
    out.stdout
        .lines()
        .find_map(|l| l.ok()?.strip_prefix("per_second ")?.parse().ok())
        .context("the target printed no per_second line")
}
