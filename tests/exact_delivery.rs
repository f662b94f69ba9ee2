//! The exact-delivery experiment (docs/exact-delivery.md, issue "exact delivery"): goroutines
//! whose stacks grow and shrink under Go's asynchronous preemption (SIGURG), at GOMAXPROCS 1
//! and 2, ten consecutive runs each. `gotrace funclat` counts and `gotrace args` events must
//! equal the target's own atomic count of its calls every time.

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

#[test]
fn funclat_and_args_are_exact_under_async_preemption() {
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary(
        "1.27.3",
        "amd64",
        Variant::Plain,
        "workloads",
    )) else {
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
                "funclat, GOMAXPROCS={procs}, run {run}: {hist}"
            );

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
                "args, GOMAXPROCS={procs}, run {run}: {summary}"
            );
        }
    }
}
