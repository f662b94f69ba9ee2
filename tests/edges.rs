//! Exact edges (issue 27, docs/design.md §14): gotrace attaches `-p` to a program already
//! running at full rate (examples/go-targets/edges: 4 goroutines calling main.work back to back,
//! each call recording its own start and end on CLOCK_MONOTONIC), traces `-d 2` and detaches
//! while it runs. The program's own record is the oracle: nothing is `lost` or `unmatched`, and
//! every call inside the window [attached.ts_ns, summary.ts_ns] is reported — args: the
//! sequence numbers per goroutine are contiguous and cover every call wholly inside; funclat,
//! graph and goroutines (creations): count(wholly inside) <= reported <= count(overlapping).
//! Multi-uprobe and per-site attach (GOTRACE_PER_SITE_UPROBES), Go 1.19 386 and Go 1.27 amd64.
//! The suite runs each configuration a few times (EDGES_RUNS, default 1);
//! bench/edges.sh runs the full 10-run matrix and prints every run's counts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::gotrace::GOTRACE;
use common::require;
use common::serial::bpf_test;
use common::targets::{matrix_binary, Variant};
use common::traced::{field, start_edges};

/// What one command reports of one run, and what the target recorded.
#[derive(Debug)]
struct Run {
    command: &'static str,
    per_site: bool,
    open_ns: i64,
    close_ns: i64,
    summary: Value,
    objects: Vec<Value>,
    /// Per worker: (start_ns, end_ns) of call seq i+1 at index i.
    record: Vec<Vec<(i64, i64)>>,
}

/// The command line of each command on main.work (goroutines: the creations of main.child).
fn command_args(command: &str) -> Vec<&'static str> {
    match command {
        "funclat" => vec!["funclat", "--no-guard", "main.work"],
        "args" => vec!["args", "--no-guard", "main.work"],
        "graph" => vec!["graph", "--no-guard", "main.work"],
        "goroutines" => vec!["goroutines"],
        other => panic!("no command {other}"),
    }
}

/// Reads the target's record: per worker a u64 count n, then n (start, end) i64 pairs.
fn read_record(path: &Path) -> Vec<Vec<(i64, i64)>> {
    let bytes = std::fs::read(path).expect("the target wrote its record");
    let word = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (mut at, mut workers) = (0, Vec::new());
    while at < bytes.len() {
        let n = word(at) as usize;
        at += 8;
        workers.push(
            (0..n)
                .map(|i| (word(at + 16 * i), word(at + 16 * i + 8)))
                .collect(),
        );
        at += 16 * n;
    }
    workers
}

/// One run: start the target, trace it for 2 s, stop it, collect both sides.
fn run(binary: &Path, command: &'static str, per_site: bool, scratch: &Path) -> Run {
    let record_path = scratch.join(format!("record-{command}-{per_site}"));
    let (mut target, lines) = start_edges(binary, command, Some(&record_path));
    // Let it reach full rate first.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut gotrace = Command::new(GOTRACE);
    gotrace
        .args(command_args(command))
        .args(["--json", "-d", "2", "-p", &target.id().to_string()]);
    if per_site {
        gotrace.env("GOTRACE_PER_SITE_UPROBES", "1");
    }
    let output = gotrace.output().expect("gotrace runs");
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(target.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(target.wait().unwrap().success(), "target: {rest:?}");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let attached = objects.first().expect("an attached line");
    assert_eq!(attached["type"], "attached");
    let summary = objects
        .iter()
        .rfind(|o| o["type"] == "summary")
        .expect("a summary line")
        .clone();
    Run {
        command,
        per_site,
        open_ns: field(attached, "ts_ns") as i64,
        close_ns: field(&summary, "ts_ns") as i64,
        summary,
        objects,
        record: read_record(&record_path),
    }
}

impl Run {
    /// (calls wholly inside the window, calls overlapping it).
    fn bounds(&self) -> (u64, u64) {
        let calls = self.record.iter().flatten();
        let inside = calls
            .clone()
            .filter(|&&(s, e)| s >= self.open_ns && e <= self.close_ns)
            .count();
        let overlapping = calls
            .filter(|&&(s, e)| e >= self.open_ns && s <= self.close_ns)
            .count();
        (inside as u64, overlapping as u64)
    }

    /// What the command reported: calls (funclat), trees (graph), creations of main.child
    /// (goroutines), call events (args).
    fn reported(&self) -> u64 {
        match self.command {
            "funclat" => field(&self.summary, "count"),
            "graph" => field(&self.summary, "trees"),
            "goroutines" => self
                .objects
                .iter()
                .filter(|o| o["type"] == "create" && o["function"] == "main.child")
                .count() as u64,
            _ => self.objects.iter().filter(|o| o["type"] == "call").count() as u64,
        }
    }

    /// The counters every command's summary must show, and a description of each failure.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let counter = |key: &str| self.summary[key].as_u64();
        // goroutines has no calls of its own to leave unmatched: its lost counts every miss.
        let keys: &[&str] = match self.command {
            "goroutines" => &["lost"],
            _ => &["lost", "unmatched"],
        };
        for &key in keys {
            if counter(key) != Some(0) {
                problems.push(format!("{key} = {:?}", self.summary[key]));
            }
        }
        for key in ["in_flight_at_start", "in_flight_at_end"] {
            if counter(key).is_none() {
                problems.push(format!("no {key}"));
            }
        }
        let (inside, overlapping) = self.bounds();
        let reported = self.reported();
        if !(inside <= reported && reported <= overlapping) {
            problems.push(format!(
                "reported {reported}, not within [{inside} wholly inside, {overlapping} overlapping]"
            ));
        }
        if self.command == "args" {
            problems.extend(self.args_problems());
        }
        problems
    }

    /// args: per worker, the reported sequence numbers are contiguous and cover every call
    /// wholly inside the window.
    fn args_problems(&self) -> Vec<String> {
        let mut seqs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for call in self.objects.iter().filter(|o| o["type"] == "call") {
            let arg = |i: usize| call["args"][i]["value"].as_u64().expect("int args");
            seqs.entry(arg(0)).or_default().push(arg(1));
        }
        let mut problems = Vec::new();
        for (worker, calls) in self.record.iter().enumerate() {
            let mut got = seqs.remove(&(worker as u64)).unwrap_or_default();
            got.sort_unstable();
            if got.windows(2).any(|w| w[1] != w[0] + 1) {
                problems.push(format!("worker {worker}: a gap in the reported calls"));
            }
            let wanted: Vec<u64> = (1..=calls.len() as u64)
                .filter(|&seq| {
                    let (s, e) = calls[seq as usize - 1];
                    s >= self.open_ns && e <= self.close_ns
                })
                .collect();
            if let (Some(first), Some(last)) = (wanted.first(), wanted.last()) {
                if got.first().is_none_or(|g| g > first) || got.last().is_none_or(|g| g < last) {
                    problems.push(format!(
                        "worker {worker}: calls {first}..={last} inside the window, reported {:?}..={:?}",
                        got.first(),
                        got.last()
                    ));
                }
            }
        }
        problems
    }

    /// One line for bench/edges.sh.
    fn line(&self, label: &str) -> String {
        let (inside, overlapping) = self.bounds();
        let s = &self.summary;
        format!(
            "{label} {:<10} {:<8} lost {} unmatched {} in_flight_at_start {} in_flight_at_end {} reported {} inside {inside} overlapping {overlapping}",
            self.command,
            if self.per_site { "per-site" } else { "multi" },
            s["lost"], s["unmatched"], s["in_flight_at_start"], s["in_flight_at_end"],
            self.reported()
        )
    }
}

/// Every command, multi and per-site, `runs` times on one build; the failures.
fn matrix(version: &'static str, goarch: &'static str, runs: usize) -> Vec<String> {
    let Some(bin) = require(matrix_binary(version, goarch, Variant::Plain, "edges")) else {
        return Vec::new();
    };
    let scratch = std::env::temp_dir().join(format!("gotrace-edges-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut failures = Vec::new();
    for per_site in [false, true] {
        for command in ["funclat", "args", "goroutines", "graph"] {
            for _ in 0..runs {
                let run = run(&bin.path, command, per_site, &scratch);
                let line = run.line(&bin.label);
                eprintln!("{line}");
                failures.extend(run.problems().into_iter().map(|p| format!("{line}: {p}")));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    failures
}

/// Runs per configuration: EDGES_RUNS (bench/edges.sh sets 10), else 1.
fn runs() -> usize {
    std::env::var("EDGES_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

#[test]
fn edges_go127_amd64() {
    let Some(_guard) = bpf_test() else { return };
    let failures = matrix("1.27.3", "amd64", runs());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn edges_go119_386() {
    let Some(_guard) = bpf_test() else { return };
    let failures = matrix("1.19", "386", runs());
    assert!(failures.is_empty(), "{failures:#?}");
}
