//! The exact-delivery experiment (docs/exact-delivery.md, issue "exact delivery"): goroutines
//! whose stacks grow and shrink under Go's asynchronous preemption (SIGURG), at GOMAXPROCS 1
//! and 2, twenty consecutive runs each, on an idle machine and again with two CPU-bound
//! processes competing for the cores. `gotrace funclat` counts and `gotrace args` events must
//! equal the target's own atomic count of its calls every time: nothing lost. On Go 1.19
//! (amd64 and 386) the entry site is the flag-checked stack-check branch (issue 9), whose
//! taken hits (morestack) must not count: ten runs at GOMAXPROCS 1 and 2 there, each with
//! funclat and args.

mod common;

use std::process::Command;

use common::gotrace::GOTRACE;
use common::serial::serial;
use common::targets::{matrix_binary, Variant};
use common::traced::{field, own_count, split_output};
use common::{require, require_root};

/// The arguments of `workloads deep`: `goroutines` goroutines, each first grows its stack with
/// deep(600), then makes 2 calls recursing up to `maxdepth` deep with a 1 ms pause.
const fn deep(goroutines: &'static str, maxdepth: &'static str) -> [&'static str; 9] {
    [
        "deep",
        "-g",
        goroutines,
        "-calls",
        "2",
        "-maxdepth",
        maxdepth,
        "-warm",
        "600",
    ]
}

/// The experiment, small enough for twenty runs: 50 goroutines, calls up to 200 deep (about
/// 42,000 calls of main.deep).
const EXPERIMENT: [&str; 9] = deep("50", "200");
const RUNS: usize = 20;
/// Runs per GOMAXPROCS on Go 1.19, funclat and args each.
const RUNS_GO119: usize = 10;
/// The experiment with half the goroutines, for args on Go 1.19 (each event costs args more
/// than funclat's in-kernel count): each of the 25 goroutines still grows its stack 600 deep
/// (the taken stack-check passes the flag check must drop) and pauses 1 ms between calls
/// (about 21,000 calls of main.deep).
const EXPERIMENT_HALF: [&str; 9] = deep("25", "200");

/// Runs with busy competitors (each is slower: the cores are shared four ways).
const BUSY_RUNS: usize = 10;
/// The burst from issue 13: 50 goroutines released at once, each recursing up to 600 deep
/// twice after a 600-deep warm-up (over 60,000 calls with a few hundred bytes of arguments
/// each, most within a few milliseconds).
const BURST: [&str; 9] = deep("50", "600");

/// Runs `gotrace <command> --json main.deep -- workloads deep ...` with GOMAXPROCS set; returns
/// the target's own call count and gotrace's JSON objects.
fn traced_run(
    command: &str,
    binary: &std::path::Path,
    experiment: &[&str],
    procs: &str,
) -> (u64, Vec<serde_json::Value>) {
    let output = Command::new(GOTRACE)
        .args([command, "--json", "main.deep", "--"])
        .arg(binary)
        .args(experiment)
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
    let _one = serial();
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
            let label = format!("run {run}");
            check_funclat_run(&binary.path, procs, &label);
            check_args_run(&binary.path, &EXPERIMENT, procs, &label);
        }
    }
}

/// Two CPU-bound processes competing with the target and gotrace for the 2 cores: the
/// consumer thread is scheduled late, so the ring must absorb the bursts (issue 13.1).
#[test]
fn args_is_exact_with_busy_competitors() {
    let _one = serial();
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
        check_args_run(&binary.path, &BURST, procs, "idle, burst");
    }
    let _busy = Busy::start(2);
    for procs in ["1", "2"] {
        for run in 1..=BUSY_RUNS {
            let label = format!("2 busy processes, run {run}");
            check_args_run(&binary.path, &EXPERIMENT, procs, &label);
        }
        check_args_run(&binary.path, &BURST, procs, "2 busy processes, burst");
    }
}

/// The experiment on a Go 1.19 build, whose entry site is the flag-checked JBE/JLS.
fn flag_checked_entry_experiment(goarch: &'static str) {
    let _one = serial();
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary("1.19", goarch, Variant::Plain, "workloads")) else {
        return;
    };
    for procs in ["1", "2"] {
        for run in 1..=RUNS_GO119 {
            let label = format!("go1.19 {goarch}, run {run}");
            check_funclat_run(&binary.path, procs, &label);
            check_args_run(&binary.path, &EXPERIMENT_HALF, procs, &label);
        }
    }
}

#[test]
fn exact_at_the_flag_checked_entry_go119_amd64() {
    flag_checked_entry_experiment("amd64");
}

/// 386: the flags come from a 32-bit task's pt_regs.
#[test]
fn exact_at_the_flag_checked_entry_go119_386() {
    flag_checked_entry_experiment("386");
}

/// One `gotrace funclat` run of the full experiment: the target's own count, no loss, nothing
/// unmatched.
fn check_funclat_run(binary: &std::path::Path, procs: &str, label: &str) {
    let (calls, hists) = traced_run("funclat", binary, &EXPERIMENT, procs);
    let hist = &hists[0];
    assert_eq!(
        (
            field(hist, "count"),
            field(hist, "unmatched"),
            field(hist, "lost")
        ),
        (calls, 0, 0),
        "funclat, GOMAXPROCS={procs}, {label}: {hist}"
    );
}

/// One `gotrace args` run: a call and a return event for each of the target's own calls, no
/// loss, nothing unmatched.
fn check_args_run(binary: &std::path::Path, experiment: &[&str], procs: &str, label: &str) {
    let (calls, events) = traced_run("args", binary, experiment, procs);
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
            field(summary, "malformed"),
            field(summary, "unmatched")
        ),
        (calls, calls, 0, 0, 0),
        "args, GOMAXPROCS={procs}, {label}: {summary}"
    );
}

/// CPU-bound shell loops, killed when dropped.
struct Busy(Vec<std::process::Child>);

impl Busy {
    fn start(n: usize) -> Busy {
        Busy(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("start a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
