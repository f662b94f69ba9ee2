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

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use common::{best_rate, printed_rate};

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
        let untraced = best_rate(RUNS, || {
            printed_rate(Command::new(&target), &["-pingpong", ROUND_TRIPS])
        })?;
        let floor = common::with_floor(&target, &[("runtime.casgstatus", false)], || {
            best_rate(RUNS, || {
                printed_rate(Command::new(&target), &["-pingpong", ROUND_TRIPS])
            })
        })?;
        let traced = |args: &[&str]| {
            best_rate(RUNS, || {
                let mut cmd = Command::new(&gotrace);
                cmd.args(args).arg("--").arg(&target);
                printed_rate(cmd, &["-pingpong", ROUND_TRIPS])
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
