//! `cargo bench --bench graph` (root): the per-call cost of `gotrace graph`, against the floor
//! (the minimal counting BPF program, `src/bpf/floor.bpf.c`) on the same probe sites, measured
//! in the same alternating rounds (issue 11, "Scale and speed"). Two cases on the counter
//! example's tight loop (`-rate 0`): calls of main.doWork outside ROOT (ROOT is a function the
//! loop never calls: each hit costs the prologue and one map lookup), and inside ROOT (ROOT is
//! main.run, the loop itself: each hit emits a record, which the consumer drains). Goal: ratio
//! <= 1.10. Also prints what the summary counted lost (goal: 0). With
//! GOTRACE_BENCH_BASELINE=/path/to/an/older/gotrace, that binary is measured in the same
//! alternating rounds too, and the per-call ratio new/old is printed.

mod common;

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

const CALLS: &str = "200000";
const RUNS: usize = 3;
/// A function of the counter binary that its loop never calls.
const NEVER_CALLED: &str = "bufio.(*Reader).ReadString";

fn main() -> Result<()> {
    let root = common::prepare("graph")?;
    let counter = root.join("target/go-targets/go1.27.3/amd64-plain/counter");
    let gotrace = PathBuf::from(env!("CARGO_BIN_EXE_gotrace"));
    let calls: f64 = CALLS.parse()?;
    let baseline = common::baseline();
    for (label, graph_root) in [("outside ROOT", NEVER_CALLED), ("inside ROOT", "main.run")] {
        let (mut untraced, mut floor, mut traced) = (Duration::MAX, Duration::MAX, Duration::MAX);
        let (mut lost, mut before) = (0, Duration::MAX);
        for _ in 0..RUNS {
            untraced = untraced.min(common::run_counter(&counter, CALLS)?);
            floor = floor.min(common::with_floor(
                &counter,
                &[(graph_root, true), ("main.doWork", true)],
                || common::run_counter(&counter, CALLS),
            )?);
            let (run, summary) = with_graph(&gotrace, &counter, graph_root)?;
            traced = traced.min(run);
            lost = lost.max(summary_field(&summary, "lost")?);
            if let Some(baseline) = &baseline {
                before = before.min(with_graph(baseline, &counter, graph_root)?.0);
            }
        }
        println!("gotrace graph, {CALLS} calls of main.doWork {label} (ROOT {graph_root}), best of {RUNS} alternating rounds:");
        common::print_per_call("gotrace graph", calls, untraced, floor, traced);
        println!("  lost (worst round)    {lost:>10}   (goal 0)");
        if let Some(baseline) = &baseline {
            common::print_baseline(baseline, calls, untraced, before, traced);
        }
    }
    Ok(())
}

/// One counter run with `gotrace graph --json --depth 0 ROOT main.doWork COUNTER` attached;
/// also gotrace's summary line.
fn with_graph(gotrace: &Path, counter: &Path, root: &str) -> Result<(Duration, String)> {
    let mut child = Command::new(gotrace)
        .args(["graph", "--json", "--depth", "0", root, "main.doWork"])
        .arg(counter)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
    let mut attached = String::new();
    stdout.read_line(&mut attached)?;
    anyhow::ensure!(
        attached.contains("attached"),
        "gotrace printed {attached:?}"
    );
    let run = common::run_counter(counter, CALLS);
    stop(&mut child);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    let _ = child.wait();
    let summary = rest
        .lines()
        .rev()
        .find(|l| l.contains("\"summary\""))
        .context("no summary line")?
        .to_owned();
    Ok((run?, summary))
}

fn stop(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

fn summary_field(summary: &str, key: &str) -> Result<u64> {
    let value: serde_json::Value = serde_json::from_str(summary)?;
    value[key]
        .as_u64()
        .with_context(|| format!("no {key} in {summary}"))
}
