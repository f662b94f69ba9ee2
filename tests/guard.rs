//! The overload guard (issue 27 point 2, docs/design.md §16): over its budget it detaches
//! the costliest functions, names them, and keeps the other functions exact; on Debian's caddy
//! under `ab` the guarded throughput stays within 10 % of untraced (same run, alternating).
//! Root-only (skipped when not root and CI is unset).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gotrace::{gotrace, GOTRACE};
use common::serial::bpf_test;
use common::targets::{matrix_binary, Variant};
use common::traced::{field, split_successful};
use common::{installed, require};
use serde_json::Value;

/// The records of `type` in a JSON run.
fn records<'a>(json: &'a [Value], kind: &str) -> Vec<&'a Value> {
    json.iter().filter(|v| v["type"] == kind).collect()
}

/// The hist record of `function`.
fn hist<'a>(json: &'a [Value], function: &str) -> &'a Value {
    json.iter()
        .find(|v| v["type"] == "hist" && v["function"] == function)
        .unwrap_or_else(|| panic!("no hist line for {function}"))
}

/// The Go 1.27 amd64 workloads program, or None under the prerequisite rule.
fn workloads() -> Option<common::targets::GoBinary> {
    require(matrix_binary(
        "1.27.3",
        "amd64",
        Variant::Plain,
        "workloads",
    ))
}

/// The calls of main.handle `workloads deep` makes (1 goroutine).
const HANDLE_CALLS: u64 = 1000;

/// `gotrace COMMAND --json --max-overhead 5 FLAGS... -- workloads deep`: main.deep recurses
/// ~10^5-10^6 times a second (far over 5 % of a CPU in probe hits), main.handle is called
/// once per 1 ms pause on one goroutine. The guard drops main.deep and says so, never
/// main.handle; its records match docs/json.md's schemas and one guard_summary lists the drop.
/// Returns gotrace's JSON records.
fn guarded_deep(command: &str, flags: &[&str]) -> Option<Vec<Value>> {
    let bin = workloads()?;
    let calls = HANDLE_CALLS.to_string();
    let mut argv = vec![command, "--json", "--max-overhead", "5"];
    argv.extend_from_slice(flags);
    argv.extend_from_slice(&["--", bin.path.to_str().unwrap(), "deep", "-g", "1"]);
    argv.extend_from_slice(&["-calls", &calls, "-maxdepth", "400", "-warm", "50"]);
    let out = gotrace(argv);
    let (_own, json) = split_successful(&out);
    let dropped = records(&json, "guard_dropped");
    assert!(
        dropped.iter().any(|d| d["function"] == "main.deep"),
        "the guard did not drop main.deep: {dropped:?}"
    );
    assert!(
        dropped.iter().all(|d| d["function"] != "main.handle"),
        "main.handle (~1,000 calls/s) dropped: {dropped:?}"
    );
    let summary = records(&json, "guard_summary");
    assert_eq!(summary.len(), 1, "one guard_summary: {summary:?}");
    assert!(summary[0]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["function"] == "main.deep"));
    common::schema::check(command, &out.stdout);
    Some(json)
}

/// funclat: main.handle's count is the program's own, nothing lost or unmatched anywhere.
#[test]
fn guard_drops_the_hot_function_and_keeps_the_rest_exact() {
    let Some(_serial) = bpf_test() else { return };
    let Some(json) = guarded_deep("funclat", &["main.deep", "main.handle"]) else {
        return;
    };
    let handle = hist(&json, "main.handle");
    assert_eq!(field(handle, "count"), HANDLE_CALLS, "{handle}");
    for function in ["main.deep", "main.handle"] {
        let h = hist(&json, function);
        assert_eq!(field(h, "lost"), 0, "{h}");
        assert_eq!(field(h, "unmatched"), 0, "{h}");
    }
}

/// args: every call and return of main.handle is printed (the program's own count), with
/// nothing lost or unmatched.
#[test]
fn args_guard_drops_the_hot_function_and_prints_every_call_of_the_rest() {
    let Some(_serial) = bpf_test() else { return };
    let Some(json) = guarded_deep("args", &["main.deep", "main.handle"]) else {
        return;
    };
    for kind in ["call", "return"] {
        let handle = json
            .iter()
            .filter(|v| v["type"] == kind && v["function"] == "main.handle")
            .count() as u64;
        assert_eq!(handle, HANDLE_CALLS, "{kind} records of main.handle");
    }
    assert_nothing_lost_or_unmatched(&json);
}

/// graph with ROOT main.handle: ROOT is never dropped, and every call of main.handle is a
/// tree (the program's own count), with nothing lost or unmatched.
#[test]
fn graph_guard_drops_the_hot_callee_and_keeps_every_tree() {
    let Some(_serial) = bpf_test() else { return };
    let flags = ["--max-depth", "20", "main.handle", "main.deep"];
    let Some(json) = guarded_deep("graph", &flags) else {
        return;
    };
    let trees = json
        .iter()
        .filter(|v| v["type"] == "tree" && v["function"] == "main.handle")
        .count() as u64;
    assert_eq!(trees, HANDLE_CALLS, "trees of main.handle");
    assert_nothing_lost_or_unmatched(&json);
}

/// The one summary record says nothing was lost or unmatched.
fn assert_nothing_lost_or_unmatched(json: &[Value]) {
    let summary = records(json, "summary");
    assert_eq!(summary.len(), 1, "{summary:?}");
    for counter in ["lost", "unmatched"] {
        assert_eq!(field(summary[0], counter), 0, "{}", summary[0]);
    }
}

/// --no-guard with --max-overhead: nothing dropped, nothing said, the count exact.
#[test]
fn no_guard_drops_nothing() {
    let Some(_serial) = bpf_test() else { return };
    let Some(bin) = workloads() else { return };
    let out = gotrace([
        "funclat",
        "--json",
        "--max-overhead",
        "5",
        "--no-guard",
        "main.deep",
        "--",
        bin.path.to_str().unwrap(),
        "deep",
        "-g",
        "2",
        "-calls",
        "50",
        "-maxdepth",
        "200",
        "-warm",
        "50",
    ]);
    let (own, json) = split_successful(&out);
    assert!(records(&json, "guard_dropped").is_empty());
    let deep = hist(&json, "main.deep");
    assert_eq!(
        field(deep, "count"),
        common::traced::own_count(&own, "calls main.deep"),
        "{deep}"
    );
}

/// A caddy serving one small file on 127.0.0.1; killed on drop.
struct Caddy {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Caddy {
    fn start(caddy: &std::path::Path, port: u16) -> Caddy {
        let dir = std::env::temp_dir().join(format!("gotrace-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "hello from caddy\n").unwrap();
        let child = Command::new(caddy)
            .args([
                "file-server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--root",
            ])
            .arg(&dir)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/index.html");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "caddy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Caddy { child, url, dir }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Requests per second of one `ab -k -c 20` run bounded by `secs` seconds.
fn ab_rps(ab: &std::path::Path, url: &str, secs: u32) -> f64 {
    let out = Command::new(ab)
        .args([
            "-k",
            "-c",
            "20",
            "-t",
            &secs.to_string(),
            "-n",
            "10000000",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Requests per second:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("ab: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Guarded rounds of the caddy test (an untraced round before each and after the last).
const CADDY_ROUNDS: usize = 5;

/// Debian's caddy (stripped Go) under `ab -k -c 20` on loopback, traced by
/// `funclat 'net/http.*' -p` (1,377 functions) with the default guard: the median over
/// [`CADDY_ROUNDS`] guarded rounds, each against the untraced rounds either side of it, is at
/// least 90 % of untraced, and the dropped functions are named. The window starts at the
/// attached line, so the guard's first checks (0.1-0.7 s at ~3 % of caddy's throughput, until
/// it has detached what every request calls) are inside it. On an idle machine the untraced
/// rounds agree within ~17 % and the ratio came out 0.92-1.02; when other work on the machine
/// moves the untraced baseline itself by more than the margin (a shared VM at load 16-22:
/// 6,100-24,200 req/s a minute apart), a local run says so and skips; under CI it fails.
/// bench/guard.sh measures the same with --no-guard beside it.
#[test]
fn caddy_keeps_90_percent_of_its_throughput_under_the_guard() {
    let Some(_serial) = bpf_test() else { return };
    let (Some(caddy), Some(ab)) = (require(installed("caddy")), require(installed("ab"))) else {
        return;
    };
    let server = Caddy::start(&caddy, 18191);
    let pid = server.child.id().to_string();
    ab_rps(&ab, &server.url, 1); // warm-up
    let (mut untraced, mut guarded) = (Vec::new(), Vec::new());
    let mut last = Vec::new();
    for _ in 0..CADDY_ROUNDS {
        untraced.push(ab_rps(&ab, &server.url, 6));
        let mut tracer = Command::new(GOTRACE)
            .args(["funclat", "--json", "net/http.*", "-p", &pid])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(tracer.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
        assert!(first.contains("\"attached\""), "{first}");
        guarded.push(ab_rps(&ab, &server.url, 6));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert!(tracer.wait().unwrap().success());
        last = rest
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    }
    untraced.push(ab_rps(&ab, &server.url, 6));
    // The VM is shared: each guarded round against the untraced rounds either side of it.
    let mut ratios: Vec<f64> = guarded
        .iter()
        .enumerate()
        .map(|(i, g)| g / ((untraced[i] + untraced[i + 1]) / 2.0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    eprintln!("caddy req/s: untraced {untraced:?}, guarded {guarded:?}; median ratio {ratio:.3}");
    let (lo, hi) = untraced
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &u| (lo.min(u), hi.max(u)));
    if ratio < 0.9 && hi > 1.15 * lo && !common::prerequisite::in_ci() {
        // Other work on the machine moved the baseline itself by more than the margin.
        eprintln!("SKIPPED: untraced throughput varied {lo:.0}-{hi:.0} req/s between rounds");
    } else {
        assert!(
            ratio >= 0.9,
            "guarded throughput {ratio:.3} of untraced (< 0.9)"
        );
    }
    let dropped = records(&last, "guard_dropped");
    assert!(!dropped.is_empty(), "nothing dropped");
    assert!(dropped
        .iter()
        .all(|d| d["function"].as_str().unwrap().starts_with("net/http.")
            && d["hits_per_s"].as_f64().unwrap() > 0.0));
    let summary = records(&last, "guard_summary");
    assert_eq!(
        summary[0]["dropped"].as_array().unwrap().len(),
        dropped.len()
    );
}

/// goroutines has no guard (its two runtime probes are never detached), so a guard flag is
/// refused in one line with exit code 2, not silently ignored. No root needed: it is refused
/// before anything is read or loaded.
#[test]
fn goroutines_refuses_the_guard_flags() {
    for flag in [&["--max-overhead", "5"][..], &["--no-guard"]] {
        let mut argv = vec!["goroutines"];
        argv.extend_from_slice(flag);
        argv.extend(["-p", "1"]);
        let out = gotrace(argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{flag:?}: one line: {stderr}");
        assert!(stderr.contains("drop the flag"), "{flag:?}: {stderr}");
    }
}
