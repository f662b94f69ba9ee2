//! `gotrace funclat` against real Go processes (issue: funclat). Each test loads real BPF
//! programs, traces a real target and compares with the target's own record of its calls.
//! The tests in this file run one at a time (they share the kernel's uprobe state and the
//! machine's two cores).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::gotrace::{gotrace, user_error_problems, GOTRACE};
use common::serial::bpf_test;
use common::targets::{esbuild_binary, matrix_binary, GoBinary, Variant};
use common::traced::{field, gotrace_json, own_count, split_output};
use common::{require, require_root};
use serde_json::Value;

/// The workloads program built by each (Go version, GOARCH), plain; missing ones follow the
/// prerequisite rule.
fn workloads(builds: &[(&'static str, &'static str)]) -> Vec<GoBinary> {
    builds
        .iter()
        .filter_map(|&(version, goarch)| target(version, goarch, Variant::Plain, "workloads"))
        .collect()
}

/// A matrix binary, or None under the prerequisite rule.
fn target(
    version: &'static str,
    goarch: &'static str,
    variant: Variant,
    program: &str,
) -> Option<GoBinary> {
    require(matrix_binary(version, goarch, variant, program))
}

/// `gotrace funclat --json FUNC -- BINARY ARGS...`: the target's own output lines and
/// gotrace's histogram objects.
fn funclat_launch(
    function: &str,
    binary: &GoBinary,
    target_args: &[&str],
) -> (Output, Vec<String>, Vec<Value>) {
    let mut args = vec!["funclat", "--json", function, "--"];
    let path = binary.path.to_str().expect("utf-8 path");
    args.push(path);
    args.extend_from_slice(target_args);
    let output = gotrace(&args);
    let (own, json) = split_output(&output.stdout);
    (output, own, only_hists(json))
}

/// The `hist` lines of funclat's JSON (the last line is the `summary` of their totals).
fn only_hists(json: Vec<Value>) -> Vec<Value> {
    assert_eq!(
        json.last().map(|l| &l["type"]),
        Some(&Value::from("summary"))
    );
    json.into_iter().filter(|l| l["type"] == "hist").collect()
}

/// Traces `function` in a launched target and checks count/unmatched/lost against the
/// target's own counts.
fn check_exact(binary: &GoBinary, function: &str, args: &[&str], calls_key: &str, unmatched: u64) {
    let (output, own, hists) = funclat_launch(function, binary, args);
    assert!(
        output.status.success(),
        "{binary}: gotrace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        hists.len(),
        1,
        "{binary}: one histogram expected, got {hists:?}"
    );
    let hist = &hists[0];
    let calls = own_count(&own, calls_key);
    assert_eq!(field(hist, "lost"), 0, "{binary}: lost calls: {hist}");
    assert_eq!(
        field(hist, "unmatched"),
        unmatched,
        "{binary}: unmatched: {hist}"
    );
    assert_eq!(
        field(hist, "count") + unmatched,
        calls,
        "{binary}: traced count vs the target's own count: {hist}"
    );
    let buckets: u64 = hist["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| field(b, "count"))
        .sum();
    assert_eq!(
        buckets,
        field(hist, "count"),
        "{binary}: bucket counts do not add up: {hist}"
    );
}

const COUNTER_CALLS: &str = "20000";

#[test]
fn counter_count_is_exact() {
    let Some(_serial) = bpf_test() else { return };
    let builds = [
        ("1.19", "amd64", Variant::Plain),
        ("1.27.3", "amd64", Variant::Plain),
        ("1.21.13", "386", Variant::Plain),
        ("1.19", "386", Variant::Stripped),
        ("1.24.11", "amd64", Variant::Stripped),
        ("1.27.3", "amd64", Variant::Pie),
    ];
    for (version, goarch, variant) in builds {
        let Some(binary) = target(version, goarch, variant, "counter") else {
            continue;
        };
        check_exact(
            &binary,
            "main.doWork",
            &["-rate", "0", "-n", COUNTER_CALLS],
            "calls",
            0,
        );
    }
}

#[test]
fn growing_stacks_never_crash_and_count_exactly() {
    let Some(_serial) = bpf_test() else { return };
    for binary in workloads(&[("1.19", "amd64"), ("1.27.3", "amd64"), ("1.21.13", "386")]) {
        let args = ["stackgrow", "-g", "100", "-calls", "1"];
        let untraced = Command::new(&binary.path)
            .args(args)
            .output()
            .expect("run target");
        let (output, own, _) = funclat_launch("main.deep", &binary, &args);
        assert!(
            output.status.success(),
            "{binary}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let untraced_lines: Vec<String> = String::from_utf8_lossy(&untraced.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            own, untraced_lines,
            "{binary}: traced output differs from the untraced run"
        );
        assert!(own_count(&own, "calls main.deep") >= 20_000);
        check_exact(&binary, "main.deep", &args, "calls main.deep", 0);
    }
}

#[test]
fn recursion_pairs_every_return() {
    let Some(_serial) = bpf_test() else { return };
    for binary in workloads(&[("1.19", "amd64"), ("1.24.11", "amd64"), ("1.27.3", "386")]) {
        check_exact(
            &binary,
            "main.fib",
            &["fib", "-n", "20"],
            "calls main.fib",
            0,
        );
    }
}

#[test]
fn recovered_panics_are_unmatched_and_later_calls_measured() {
    let Some(_serial) = bpf_test() else { return };
    for binary in workloads(&[("1.19", "amd64"), ("1.27.3", "amd64"), ("1.21.13", "386")]) {
        let (output, own, hists) = funclat_launch(
            "main.mayPanic",
            &binary,
            &["panics", "-n", "2000", "-every", "20"],
        );
        assert!(output.status.success());
        let (calls, panics) = (
            own_count(&own, "calls main.mayPanic"),
            own_count(&own, "panics"),
        );
        assert_eq!(panics, 100);
        assert_eq!(
            field(&hists[0], "unmatched"),
            panics,
            "{binary}: {}",
            hists[0]
        );
        assert_eq!(
            field(&hists[0], "count"),
            calls - panics,
            "{binary}: {}",
            hists[0]
        );
        assert_eq!(field(&hists[0], "lost"), 0, "{binary}: {}", hists[0]);
    }
}

/// log2 bucket of a duration in ns, as funclat buckets them.
fn bucket(ns: u64) -> u32 {
    63 - ns.max(1).leading_zeros()
}

#[test]
fn sleeping_calls_land_in_the_right_bucket() {
    let Some(_serial) = bpf_test() else { return };
    for binary in workloads(&[("1.19", "amd64"), ("1.27.3", "amd64"), ("1.24.11", "386")]) {
        let (output, own, hists) = funclat_launch(
            "main.sleepy",
            &binary,
            &["sleep", "-ms", "20", "-n", "25", "-g", "4"],
        );
        assert!(output.status.success());
        let mut expected = std::collections::BTreeMap::<u32, u64>::new();
        for line in &own {
            if let Some(ns) = line.strip_prefix("duration_ns ") {
                *expected.entry(bucket(ns.parse().unwrap())).or_default() += 1;
            }
        }
        let calls: u64 = expected.values().sum();
        assert_eq!(calls, 100);
        let mut agreeing = 0;
        for b in hists[0]["buckets"].as_array().unwrap() {
            let slot = bucket(field(b, "low"));
            agreeing += field(b, "count").min(expected.get(&slot).copied().unwrap_or(0));
        }
        assert!(agreeing * 100 >= calls * 99, "{binary}: only {agreeing} of {calls} calls in the target's own bucket: {} vs {expected:?}", hists[0]);
    }
}

#[test]
fn old_stack_abi_binary_from_npm() {
    let Some(_serial) = bpf_test() else { return };
    let Some(esbuild) = require(esbuild_binary("esbuild-linux-64", "0.7.22")) else {
        return;
    };
    let dir = tempdir();
    std::fs::write(
        dir.join("a.js"),
        "import {b} from './b.js'\nconsole.log(b)\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.js"), "export const b = 42\n").unwrap();
    let entry = dir.join("a.js");
    let args = [entry.to_str().unwrap(), "--bundle"];
    let untraced = Command::new(&esbuild.path).args(args).output().unwrap();
    let (output, own, hists) = funclat_launch(
        "github.com/evanw/esbuild/internal/js_parser.Parse",
        &esbuild,
        &args,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        own.join("\n"),
        String::from_utf8_lossy(&untraced.stdout).trim_end()
    );
    // One parse per input file (a.js, b.js) plus esbuild's runtime module.
    assert_eq!(field(&hists[0], "count"), 3, "{}", hists[0]);
    assert_eq!(field(&hists[0], "unmatched") + field(&hists[0], "lost"), 0);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gotrace-test-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a counter that waits for a line on stdin before making `n` calls.
fn waiting_counter(binary: &GoBinary, n: &str) -> std::process::Child {
    Command::new(&binary.path)
        .args(["-wait", "-rate", "0", "-n", n])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start counter")
}

fn release(child: &mut std::process::Child) -> u64 {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output_ref();
    own_count(&out, "calls")
}

trait WaitLines {
    fn wait_with_output_ref(&mut self) -> Vec<String>;
}

impl WaitLines for std::process::Child {
    fn wait_with_output_ref(&mut self) -> Vec<String> {
        let mut text = String::new();
        std::io::Read::read_to_string(self.stdout.as_mut().unwrap(), &mut text).unwrap();
        self.wait().unwrap();
        text.lines().map(str::to_owned).collect()
    }
}

/// Starts gotrace and waits for its banner (probes attached).
fn spawn_gotrace(args: &[&str]) -> std::process::Child {
    let mut child = Command::new(GOTRACE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut banner).unwrap();
    assert!(banner.starts_with("Tracing "), "no banner: {banner:?}");
    child.stdout = Some(stdout.into_inner());
    child
}

#[test]
fn pid_traces_only_that_process() {
    let Some(_serial) = bpf_test() else { return };
    let Some(binary) = target("1.27.3", "amd64", Variant::Pie, "counter") else {
        return;
    };
    let mut traced = waiting_counter(&binary, "5000");
    let mut other = waiting_counter(&binary, "7000");
    let pid = traced.id().to_string();
    // As fast as it can: far over the overload guard's default budget, which -p has on.
    let tracer = spawn_gotrace(&["funclat", "--no-guard", "main.doWork", "-p", &pid]);
    let (traced_calls, other_calls) = (release(&mut traced), release(&mut other));
    assert_eq!((traced_calls, other_calls), (5000, 7000));
    let out = tracer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gotrace ends when the traced process exits: {:?}",
        out
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(", count: 5000\n"),
        "only the traced process counted:\n{text}"
    );
}

/// IDs of the funclat BPF programs currently in the kernel (any process's).
fn funclat_programs_loaded() -> std::collections::BTreeSet<u32> {
    let out = Command::new("bpftool")
        .args(["prog", "list"])
        .output()
        .expect("bpftool (scripts/setup.sh installs it)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("name funclat_"))
        .filter_map(|l| l.split(':').next()?.trim().parse().ok())
        .collect()
}

/// IDs of the BPF programs process `pid` holds open (the kernel's `prog_id` in each file
/// descriptor's fdinfo), so that a program another process loads at the same time is not
/// taken for this one's.
fn programs_held_by(pid: u32) -> std::collections::BTreeSet<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Default::default();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .flat_map(|info| {
            info.lines()
                .filter_map(|l| l.strip_prefix("prog_id:")?.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Waits until none of `ids` is loaded any more.
fn wait_for_no_programs(ids: &std::collections::BTreeSet<u32>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if funclat_programs_loaded().is_disjoint(ids) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn every_probe_is_removed_on_exit() {
    let Some(_serial) = bpf_test() else { return };
    let Some(binary) = target("1.19", "amd64", Variant::Plain, "counter") else {
        return;
    };
    for how in ["SIGINT", "SIGTERM", "-d"] {
        let mut counter = Command::new(&binary.path)
            .args(["-rate", "2000"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = counter.id().to_string();
        let mut args = vec!["funclat", "main.doWork", "-p", &pid];
        if how == "-d" {
            args.extend(["-d", "1"]);
        }
        let mut tracer = spawn_gotrace(&args);
        let ours: std::collections::BTreeSet<u32> = funclat_programs_loaded()
            .intersection(&programs_held_by(tracer.id()))
            .copied()
            .collect();
        assert_eq!(ours.len(), 1, "one program loaded while tracing: {ours:?}");
        std::thread::sleep(Duration::from_millis(500));
        match how {
            "SIGINT" => unsafe_kill(tracer.id(), libc::SIGINT),
            "SIGTERM" => unsafe_kill(tracer.id(), libc::SIGTERM),
            _ => {}
        }
        let status = tracer.wait().unwrap();
        assert!(status.success(), "{how}: gotrace exit status {status}");
        assert!(
            wait_for_no_programs(&ours),
            "{how}: a funclat BPF program is still loaded after gotrace exited"
        );
        // The target runs on unaffected and still counts.
        std::thread::sleep(Duration::from_millis(300));
        unsafe_kill(counter.id(), libc::SIGTERM);
        let lines = counter.wait_with_output_ref();
        assert!(
            own_count(&lines, "calls") > 0,
            "{how}: target output {lines:?}"
        );
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    // SAFETY: kill has no memory effects; the pid is a child this test started.
    unsafe { libc::kill(pid as i32, signal) };
}

#[test]
fn user_errors_are_one_line() {
    let Some(binary) = target("1.27.3", "amd64", Variant::Plain, "workloads") else {
        return;
    };
    let path = binary.path.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["funclat", "main.fibb", path], "did you mean main.fib"),
        // Traced inlined since issue 10; only --no-inlined refuses it.
        (&["funclat", "--no-inlined", "main.square", path], "inlined"),
        // No RET and no tail call (runtime.goexit1 is now traced: its ABI wrapper tail-calls
        // the ABIInternal body, which has a RET).
        (&["funclat", "runtime.unreachableMethod", path], "no RET"),
        (&["funclat", "main.*", "/etc/passwd"], "not an ELF file"),
    ];
    for (args, expected) in cases {
        let out = gotrace(args);
        let problems = user_error_problems(&out);
        assert!(problems.is_empty(), "{args:?}: {problems:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{args:?}: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if require_root() {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                GOTRACE,
                "funclat",
                "main.fib",
                path,
            ])
            .output()
            .unwrap();
        assert!(
            user_error_problems(&out).is_empty(),
            "{:?}",
            user_error_problems(&out)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
    }
}

/// `-i` prints one histogram per interval, and together they hold every call; `-m` buckets
/// in milliseconds.
#[test]
fn intervals_add_up_and_units_scale() {
    let Some(_serial) = bpf_test() else { return };
    for binary in workloads(&[("1.27.3", "amd64")]) {
        let path = binary.path.to_str().unwrap();
        let out = gotrace([
            "funclat",
            "--json",
            "-i",
            "0.5",
            "-m",
            "main.sleepy",
            "--",
            path,
            "sleep",
            "-ms",
            "20",
            "-n",
            "60",
            "-g",
            "2",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let hists: Vec<Value> = only_hists(gotrace_json(stdout.lines()));
        assert!(hists.len() >= 2, "several intervals expected: {stdout}");
        let total: u64 = hists.iter().map(|h| field(h, "count")).sum();
        assert_eq!(total, 120, "{stdout}");
        // The oracle: the target's own duration of each call (taken around it, so never
        // shorter than what gotrace measures inside it). A 20 ms sleep never ends sooner, and
        // a loaded machine may wake it late: gotrace may put no more calls at 32 ms and over
        // than the target itself saw take that long.
        let slow_by_target = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("duration_ns "))
            .filter(|ns| ns.parse::<u64>().expect("duration_ns N") >= 32_000_000)
            .count() as u64;
        let mut slow_by_gotrace = 0;
        for hist in &hists {
            assert_eq!(hist["unit"], "ms");
            for bucket in hist["buckets"].as_array().unwrap() {
                let (low, count) = (field(bucket, "low"), field(bucket, "count"));
                assert!(low >= 16, "a 20 ms sleep under 16 ms: {hist}");
                if low >= 32 {
                    slow_by_gotrace += count;
                }
            }
        }
        assert!(
            slow_by_gotrace <= slow_by_target,
            "{slow_by_gotrace} calls of 32 ms or more, the target saw {slow_by_target}: {stdout}"
        );
    }
}

/// The per-site attach path (kernels before 6.6) counts as exactly as the multi-uprobe link.
#[test]
fn per_site_uprobes_count_exactly() {
    let Some(_serial) = bpf_test() else { return };
    for binary in workloads(&[("1.19", "amd64"), ("1.24.11", "386")]) {
        let out = Command::new(GOTRACE)
            .args([
                "funclat",
                "--json",
                "main.fib",
                "--",
                binary.path.to_str().unwrap(),
                "fib",
                "-n",
                "18",
            ])
            .env("GOTRACE_PER_SITE_UPROBES", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (own, json) = split_output(&out.stdout);
        let hists = only_hists(json);
        let hist = &hists[0];
        assert_eq!(
            field(hist, "count"),
            own_count(&own, "calls main.fib"),
            "{binary}: {hist}"
        );
        assert_eq!(
            field(hist, "unmatched") + field(hist, "lost"),
            0,
            "{binary}: {hist}"
        );
    }
}
