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

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use common::{best_rate, printed_rate};

/// Goroutines per run: three probe hits each, tens of microseconds per hit.
const STORM: &str = "20000";
const RUNS: usize = 3;

fn main() -> Result<()> {
    let root = common::prepare("goroutines")?;
    let gotrace = PathBuf::from(env!("CARGO_BIN_EXE_gotrace"));
    for version in ["1.19", "1.27.3"] {
        let gotree = root.join(format!("target/go-targets/go{version}/amd64-plain/gotree"));
        let untraced = best_rate(RUNS, || {
            printed_rate(Command::new(&gotree), &["-storm", STORM])
        })?;
        let floor = common::with_floor(
            &gotree,
            &[("runtime.newproc1", true), ("runtime.goexit1", false)],
            || {
                best_rate(RUNS, || {
                    printed_rate(Command::new(&gotree), &["-storm", STORM])
                })
            },
        )?;
        let traced = best_rate(RUNS, || {
            let mut cmd = Command::new(&gotrace);
            cmd.args(["goroutines", "--summary", "--"]).arg(&gotree);
            printed_rate(cmd, &["-storm", STORM])
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
