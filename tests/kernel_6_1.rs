//! The tracing path on Debian 12's own 6.1 kernel (no uprobe-multi: one perf-event uprobe per
//! site; an older verifier), booted as an emulated QEMU guest by scripts/guest-6.1.sh that
//! shares this machine's root. Emulated boot is slow (~1.5 min), so this is one guest boot
//! running a short script of gotrace commands on examples/go-targets/counter, whose own
//! output ("calls N") is the oracle:
//! - funclat (with `--breakdown`: the scheduler's probes and sched_switch, whose parts sum to
//!   the calls' durations), args (with `--global main.calls`), goroutines and graph: counts
//!   equal the calls the counter made (graph: one tree per call of the root; goroutines: the
//!   one goroutine the counter's main starts);
//! - a glob of a few hundred functions (more per-site descriptors than the guest's default
//!   RLIMIT_NOFILE of 1,024) prints its results within 2 s of the end of tracing;
//! - with a hard RLIMIT_NOFILE too low, one line says how many files are needed.
//!
//! Root only (skips otherwise unless `CI` is set); the guest kernel (scripts/setup.sh) and
//! `vng` are prerequisites, so under `CI` their absence fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use common::gotrace::GOTRACE;
use common::targets::{matrix_binary, repo_root, Variant};
use common::traced::{field, own_count, split_output};
use serde_json::Value;

/// Tracing time of the glob run, seconds.
const GLOB_SECS: f64 = 3.0;
/// What the glob traces (173 functions, 730 sites in the go1.27.3 counter).
const GLOB: &str = "'main.*' 'fmt.*' 'strconv.*' 'sync.*' 'os.*'";

/// The guest kernel scripts/setup.sh unpacks, or why it is missing.
fn guest_kernel() -> Result<PathBuf> {
    let dir = common::toolchain::cache_dir().join("kernel");
    let kernel = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|entry| std::fs::read_dir(entry.path().join("boot")).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-6.1."))
        });
    let vng = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("vng").is_file()))
        .unwrap_or(false);
    match kernel {
        Some(kernel) if vng => Ok(kernel),
        Some(_) => bail!("vng (PyPI virtme-ng) is not installed (run scripts/setup.sh)"),
        None => bail!(
            "no Debian 6.1 kernel under {} (run scripts/setup.sh)",
            dir.display()
        ),
    }
}

/// One guest command's result.
struct Ran {
    code: i32,
    output: String,
}

/// Boots the guest once, runs `commands` in it, returns each one's exit code and output.
fn run_in_guest(out: &Path, commands: &[String]) -> Result<Vec<Ran>> {
    let status = Command::new(repo_root().join("scripts/guest-6.1.sh"))
        .arg("-o")
        .arg(out)
        .args(commands)
        .status()?;
    if !status.success() {
        let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
        let tail: String = console
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n");
        bail!("scripts/guest-6.1.sh failed ({status}); console, last lines reversed:\n{tail}");
    }
    (1..=commands.len())
        .map(|i| {
            let code = std::fs::read_to_string(out.join(format!("{i}.rc")))?;
            Ok(Ran {
                code: code.trim().parse()?,
                output: std::fs::read_to_string(out.join(format!("{i}.out")))?,
            })
        })
        .collect()
}

/// gotrace's JSON objects and the counter's "calls N" in a traced run's output (the guest
/// merges stderr in; gotrace's notes there are neither).
fn json_and_calls(ran: &Ran) -> (Vec<Value>, u64) {
    let (own, json) = split_output(ran.output.as_bytes());
    (json, own_count(&own, "calls"))
}

fn of_type<'a>(json: &'a [Value], kind: &str) -> Vec<&'a Value> {
    json.iter().filter(|v| v["type"] == kind).collect()
}

#[test]
fn tracing_commands_on_debian_6_1() {
    let Some(_guard) = common::serial::bpf_test() else {
        return;
    };
    let Some(_kernel) = common::require(guest_kernel()) else {
        return;
    };
    let Some(counter) =
        common::require(matrix_binary("1.27.3", "amd64", Variant::Plain, "counter"))
    else {
        return;
    };
    let counter = counter.path.display().to_string();
    let out = tempdir();
    let stamp = "while IFS= read -r l; do printf '%s %s\\n' \"$EPOCHREALTIME\" \"$l\"; done";
    let commands = vec![
        format!("{GOTRACE} funclat --breakdown --json main.doWork -- {counter} -rate 500 -n 300"),
        format!(
            "{GOTRACE} args --json --global main.calls main.doWork -- {counter} -rate 500 -n 100"
        ),
        format!("{GOTRACE} goroutines --json -- {counter} -rate 500 -n 100"),
        format!("{GOTRACE} graph --json main.doWork -- {counter} -rate 500 -n 100"),
        // The glob: attached to a running counter; each line stamped when it arrives.
        format!(
            "{counter} -rate 200 >/dev/null & c=$!; sleep 1; \
             {GOTRACE} funclat --json {GLOB} -p $c -d {GLOB_SECS} 2>&1 | {stamp}; \
             s=${{PIPESTATUS[0]}}; kill $c; exit $s"
        ),
        format!(
            "ulimit -Hn 1024; {counter} -rate 200 >/dev/null & c=$!; sleep 1; \
             {GOTRACE} funclat {GLOB} -p $c -d 1; s=$?; kill $c; exit $s"
        ),
    ];
    let started = Instant::now();
    let ran = run_in_guest(&out, &commands).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "kernel_6_1: one guest boot, {} commands: {:.0} s",
        commands.len(),
        started.elapsed().as_secs_f64()
    );
    let mut problems = Vec::new();
    let mut check = |i: usize, what: &str, f: &dyn Fn(&Ran) -> Result<()>| {
        let ran = &ran[i];
        let result = if ran.code != 0 {
            Err(anyhow!("exit code {}", ran.code))
        } else {
            f(ran)
        };
        if let Err(e) = result {
            problems.push(format!("{what}: {e:#}\n--- output:\n{}", ran.output));
        }
    };

    check(0, "funclat --breakdown", &|ran| {
        let (json, calls) = json_and_calls(ran);
        let hist = of_type(&json, "hist");
        let counted = hist
            .iter()
            .find(|h| h["function"] == "main.doWork")
            .map(|h| field(h, "count"));
        let breakdown = of_type(&json, "breakdown");
        let parts = breakdown.first().map(|b| {
            let b = &b["breakdown"];
            let blocked: u64 = b["blocked_ns"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
            ["oncpu_ns", "runnable_ns", "syscall_ns", "unattributed_ns"]
                .iter()
                .map(|k| field(b, k))
                .sum::<u64>()
                + blocked
        });
        let timed = breakdown
            .first()
            .map(|b| (field(b, "calls"), field(b, "duration_ns")));
        (counted == Some(calls) && calls == 300 && timed.map(|t| t.0) == Some(calls))
            .then_some(())
            .ok_or_else(|| anyhow!("counted {counted:?}, breakdown (calls, ns) {timed:?}, the counter made {calls}"))?;
        (parts.is_some() && parts == timed.map(|t| t.1))
            .then_some(())
            .ok_or_else(|| anyhow!("breakdown parts {parts:?}, (calls, duration) {timed:?}"))
    });
    check(1, "args --global", &|ran| {
        let (json, calls) = json_and_calls(ran);
        let entries = of_type(&json, "call");
        // main.calls counts completed calls: at call i it is i.
        let globals_ok = entries.iter().enumerate().all(|(i, call)| {
            call["globals"][0]["value"].as_u64() == Some(i as u64)
                && call["args"][0]["value"].as_u64() == Some(i as u64)
        });
        (entries.len() as u64 == calls && calls == 100 && globals_ok)
            .then_some(())
            .ok_or_else(|| {
                anyhow!(
                    "{} calls (globals and n as counted: {globals_ok}), the counter made {calls}",
                    entries.len()
                )
            })
    });
    check(2, "goroutines", &|ran| {
        let (json, calls) = json_and_calls(ran);
        let created: Vec<&Value> = of_type(&json, "create")
            .into_iter()
            .filter(|c| c["function"] == "main.main.func1")
            .collect();
        (created.len() == 1 && calls == 100)
            .then_some(())
            .ok_or_else(|| {
                anyhow!(
                    "main.main.func1 created {} times (the counter starts it once)",
                    created.len()
                )
            })
    });
    check(3, "graph", &|ran| {
        let (json, calls) = json_and_calls(ran);
        let trees = of_type(&json, "tree");
        (trees.len() as u64 == calls && calls == 100)
            .then_some(())
            .ok_or_else(|| anyhow!("{} trees, the counter made {calls} calls", trees.len()))
    });
    check(4, "glob", &|ran| {
        // "<epoch seconds> <line>": the attached line, then the hist lines.
        let lines: Vec<(f64, &str)> = ran
            .output
            .lines()
            .filter_map(|l| {
                let (t, rest) = l.split_once(' ')?;
                Some((t.parse().ok()?, rest))
            })
            .collect();
        let attached = lines
            .iter()
            .find(|(_, l)| l.contains("\"type\":\"attached\""))
            .ok_or_else(|| anyhow!("no attached line"))?;
        let first_result = lines
            .iter()
            .find(|(_, l)| l.contains("\"type\":\"hist\""))
            .ok_or_else(|| anyhow!("no hist line"))?;
        let after_end = first_result.0 - (attached.0 + GLOB_SECS);
        let probes = serde_json::from_str::<Value>(attached.1)?["probes"].as_u64();
        eprintln!("kernel_6_1: glob of {probes:?} per-site probes: results {after_end:.2} s after the end of tracing");
        if !(probes.is_some_and(|p| 3 * p > 1024) && after_end < 2.0) {
            bail!("{probes:?} probes; results {after_end:.2} s after the end of tracing (at most 2 s)");
        }
        if !ran.output.contains("removed") {
            bail!("no line saying what removing the per-site uprobes cost");
        }
        Ok(())
    });
    // Too low a hard limit: a one-line error naming the files needed, exit 2 or 1, no panic.
    let low = &ran[5];
    if low.code == 0 || !low.output.contains("need") || low.output.contains("panicked") {
        problems.push(format!(
            "hard RLIMIT_NOFILE 1024: exit {} and {:?}",
            low.code, low.output
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let _ = std::fs::remove_dir_all(&out);
}

/// A fresh directory for the guest's results (shared with it read-write).
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gotrace-kernel-6-1.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the guest's results directory");
    dir
}
