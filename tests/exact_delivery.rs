//! The exact-delivery experiment (docs/exact-delivery.md, issue "exact delivery"): goroutines
//! whose stacks grow and shrink under Go's asynchronous preemption (SIGURG), at GOMAXPROCS 1
//! and 2, ten consecutive runs each. `gotrace funclat` counts and `gotrace args` events must
//! equal the target's own atomic count of its calls every time. On Go 1.19 (amd64 and 386) the
//! entry site is the flag-checked stack-check branch, whose taken hits (morestack) must not
//! count.

mod common;

use std::process::Command;

use common::gotrace::GOTRACE;
use common::targets::{matrix_binary, Variant};
use common::traced::{field, own_count, split_output};
use common::{require, require_root};

/// The workloads `deep` experiment, small enough for ten runs: 50 goroutines, each first
/// grows its stack with deep(600), then makes 2 calls recursing up to 200 deep with a 1 ms
/// pause (about 42,000 calls of main.deep).
const EXPERIMENT: [&str; 9] = [
    "deep",
    "-g",
    "50",
    "-calls",
    "2",
    "-maxdepth",
    "200",
    "-warm",
    "600",
];
const RUNS: usize = 10;

/// Serialises the experiments: run side by side on two CPUs, args' ring buffer overflows
/// (counted as lost) while the tracer competes with the other experiment for a CPU.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `gotrace <command> --json main.deep -- workloads deep ...` with GOMAXPROCS set; returns
/// the target's own call count and gotrace's JSON objects.
fn traced_run(
    command: &str,
    binary: &std::path::Path,
    procs: &str,
) -> (u64, Vec<serde_json::Value>) {
    let output = Command::new(GOTRACE)
        .args([command, "--json", "main.deep", "--"])
        .arg(binary)
        .args(EXPERIMENT)
        .env("GOMAXPROCS", procs)
        .output()
        .expect("run gotrace");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (own, objects) = split_output(&output.stdout);
    (own_count(&own, "calls main.deep"), objects)
}

/// The experiment on one matrix binary: funclat on each of the ten runs at GOMAXPROCS 1 and
/// 2, args on every `args_every`-th run (args costs twice as much per call).
fn experiment(version: &'static str, goarch: &'static str, args_every: usize) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary(version, goarch, Variant::Plain, "workloads")) else {
        return;
    };
    for procs in ["1", "2"] {
        for run in 1..=RUNS {
            let (calls, hists) = traced_run("funclat", &binary.path, procs);
            let hist = &hists[0];
            assert_eq!(
                (
                    field(hist, "count"),
                    field(hist, "unmatched"),
                    field(hist, "lost")
                ),
                (calls, 0, 0),
                "funclat {version} {goarch}, GOMAXPROCS={procs}, run {run}: {hist}"
            );
            if run % args_every != 0 {
                continue;
            }
            let (calls, events) = traced_run("args", &binary.path, procs);
            let of_type = |kind: &str| events.iter().filter(|e| e["type"] == kind).count() as u64;
            let summary = events
                .iter()
                .find(|e| e["type"] == "summary")
                .expect("summary line");
            assert_eq!(
                (
                    of_type("call"),
                    of_type("return"),
                    field(summary, "lost"),
                    field(summary, "unmatched")
                ),
                (calls, calls, 0, 0),
                "args {version} {goarch}, GOMAXPROCS={procs}, run {run}: {summary}"
            );
        }
    }
}

#[test]
fn funclat_and_args_are_exact_under_async_preemption() {
    experiment("1.27.3", "amd64", 1);
}

/// Go 1.19 amd64: the entry is the flag-checked stack-check JBE (issue 9).
#[test]
fn exact_at_the_flag_checked_entry_go119_amd64() {
    experiment("1.19", "amd64", 5);
}

/// Go 1.19 386: the flag-checked JLS, flags read from a 32-bit task's pt_regs.
#[test]
fn exact_at_the_flag_checked_entry_go119_386() {
    experiment("1.19", "386", 5);
}
