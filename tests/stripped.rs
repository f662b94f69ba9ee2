//! Binaries without DWARF (issue 25, part 4), against the traced programs' own records:
//! - a pattern without a signature traces calls, returns and durations (the arguments are not
//!   read, said once on stderr): argstarget's own record of its calls, and Debian's stripped
//!   caddy under `ab` load, whose access log is its record of every request and its duration;
//! - a written signature naming the standard library's types (`http.ResponseWriter`,
//!   `*http.Request`, laid out from the embedded per-release tables) plans on stripped
//!   httpserver builds of Go 1.19 and 1.27, and `--min-duration` shows exactly the requests
//!   the server's log says slept.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::gotrace::{gotrace, GOTRACE};
use common::prerequisite::installed;
use common::require;
use common::serial::bpf_test;
use common::targets::{matrix_binary, Variant};
use common::traced::{field, split_successful};

/// The note a stripped binary's pattern without a signature prints, once.
const NOT_READ: &str = "are not read, only calls, returns and durations";

/// gotrace's events of one type.
fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The run's summary line.
fn summary(events: &[Value]) -> &Value {
    of_type(events, "summary")
        .pop()
        .unwrap_or_else(|| panic!("no summary in {events:?}"))
}

/// argstarget stripped, `main.strs` and `main.divmod` without signatures: one call and one
/// return with a duration per call the target recorded, no argument read, the note once.
#[test]
fn stripped_pattern_without_signature_traces_calls_and_durations() {
    let Some(_serial) = bpf_test() else { return };
    let Some(binary) = require(matrix_binary(
        "1.24.11",
        "amd64",
        Variant::Stripped,
        "argstarget",
    )) else {
        return;
    };
    let functions = ["main.strs", "main.divmod"];
    let out = gotrace([
        "args",
        "--json",
        functions[0],
        functions[1],
        "--",
        binary.path.to_str().expect("utf-8 path"),
        "-rounds",
        "3",
    ]);
    let (own, events) = split_successful(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches(NOT_READ).count(), 1, "{stderr}");
    for function in functions {
        let recorded = own
            .iter()
            .filter_map(|l| l.strip_prefix("REC "))
            .map(|l| serde_json::from_str::<Value>(l).expect("REC line"))
            .filter(|r| r["function"] == function)
            .count();
        let calls: Vec<&Value> = of_type(&events, "call")
            .into_iter()
            .filter(|e| e["function"] == function)
            .collect();
        let returns: Vec<&Value> = of_type(&events, "return")
            .into_iter()
            .filter(|e| e["function"] == function)
            .collect();
        assert!(recorded > 0, "{binary}: argstarget recorded no {function}");
        assert_eq!(calls.len(), recorded, "{binary}: {function} calls");
        assert_eq!(returns.len(), recorded, "{binary}: {function} returns");
        for call in calls {
            assert_eq!(call["args"], Value::Array(Vec::new()), "{call}");
            assert!(field(call, "goid") >= 1, "{call}");
        }
        for ret in returns {
            assert!(field(ret, "duration_ns") > 0, "{ret}");
        }
    }
    assert_eq!(field(summary(&events), "unmatched"), 0);
    assert_eq!(field(summary(&events), "lost"), 0);
}

/// The `served "METHOD" "PATH" "HOST"` lines of httpserver: its record of the requests.
fn served_paths(own: &[String]) -> Vec<String> {
    own.iter()
        .filter_map(|l| l.strip_prefix("served "))
        .map(|l| {
            let path = l
                .split('"')
                .nth(3)
                .unwrap_or_else(|| panic!("served line {l:?}"));
            path.to_owned()
        })
        .collect()
}

/// Stripped httpserver with `main.handle(w http.ResponseWriter, r *http.Request)` written and
/// `--min-duration`: the calls shown are exactly the requests under /slow/ the server logged
/// (as many, each with its `r.URL.Path` under /slow/, both events of each), the others are
/// counted as below it, and the written types are the standard library's as DWARF names them.
///
/// The server's slow requests sleep 250ms and the threshold is 200ms: its other requests take
/// microseconds, so no stall of a loaded machine moves a request across it.
fn check_min_duration(version: &'static str) {
    let Some(_serial) = bpf_test() else { return };
    let Some(binary) = require(matrix_binary(
        version,
        "amd64",
        Variant::Stripped,
        "httpserver",
    )) else {
        return;
    };
    let out = gotrace([
        "args",
        "--json",
        "--min-duration",
        "200ms",
        "--field",
        "r.URL.Path",
        "main.handle(w http.ResponseWriter, r *http.Request)",
        "--",
        binary.path.to_str().expect("utf-8 path"),
        "-rounds",
        "2",
        "-sleep",
        "250ms",
    ]);
    let (own, events) = split_successful(&out);
    let served = served_paths(&own);
    let slow = served.iter().filter(|p| p.starts_with("/slow/")).count() as u64;
    assert_eq!(
        served.len() as u64,
        common::traced::own_count(&own, "requests")
    );
    assert!(slow > 0, "{binary}: no slow request served: {served:?}");
    let calls = of_type(&events, "call");
    let returns = of_type(&events, "return");
    assert_eq!(calls.len() as u64, slow, "{binary}: {calls:?}");
    assert_eq!(returns.len() as u64, slow, "{binary}: {returns:?}");
    for call in &calls {
        let path = call["fields"][0]["value"].as_str().unwrap_or_default();
        assert!(path.starts_with("/slow/"), "{binary}: {call}");
        let types: Vec<&Value> = call["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| &a["type"])
            .collect();
        assert_eq!(
            types,
            ["net/http.ResponseWriter", "*net/http.Request"],
            "{call}"
        );
    }
    for ret in &returns {
        assert!(field(ret, "duration_ns") >= 200_000_000, "{ret}");
    }
    let summary = summary(&events);
    assert_eq!(
        field(&summary["not_shown"], "below_min_duration"),
        served.len() as u64 - slow,
        "{summary}"
    );
    assert_eq!(field(summary, "lost"), 0, "{summary}");
}

#[test]
fn stripped_min_duration_shows_the_slow_requests_go1_19() {
    check_min_duration("1.19");
}

#[test]
fn stripped_min_duration_shows_the_slow_requests_go1_27() {
    check_min_duration("1.27.3");
}

/// Debian's caddy file server on 127.0.0.1 with its access log (stderr) in a file; killed on
/// drop.
struct Caddy {
    child: Child,
    dir: std::path::PathBuf,
}

impl Caddy {
    fn start(caddy: &Path, port: u16) -> Caddy {
        let dir = std::env::temp_dir().join(format!("gotrace-stripped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "hello from caddy\n").unwrap();
        let log = std::fs::File::create(dir.join("access.log")).unwrap();
        let child = Command::new(caddy)
            .args(["file-server", "--access-log", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--root")
            .arg(&dir)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "caddy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Caddy { child, dir }
    }

    /// Stops caddy and returns the durations (ns) of the requests its access log recorded.
    fn stop(mut self) -> Vec<u64> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap();
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["msg"] == "handled request")
            .map(|l| {
                let secs = l["duration"].as_f64().unwrap_or_else(|| panic!("{l}"));
                (secs * 1e9).round() as u64
            })
            .collect()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's stripped caddy under `ab -k -c 8` load, traced by a glob over its HTTP server's
/// methods without a signature: `ServeHTTP` has one call and one return per request caddy's
/// access log records, and since caddy times each request inside ServeHTTP (start at its
/// entry, logged in its deferred closure), each traced duration is at least the logged one:
/// sorted, the traced durations dominate the logged ones element by element.
#[test]
fn stripped_caddy_glob_traces_calls_and_durations_under_load() {
    let Some(_serial) = bpf_test() else { return };
    let (Some(caddy), Some(ab)) = (require(installed("caddy")), require(installed("ab"))) else {
        return;
    };
    const REQUESTS: u64 = 3000;
    // A port free a moment ago (other test binaries may run servers of their own).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let server = Caddy::start(&caddy, port);
    let pid = server.child.id().to_string();
    let out_file = std::env::temp_dir().join(format!("gotrace-caddy-{}.json", std::process::id()));
    let mut tracer = Command::new(GOTRACE)
        .args(["args", "--json", "--no-guard", "-o"])
        .arg(&out_file)
        .args([
            "github.com/caddyserver/caddy/v2/modules/caddyhttp.(*Server).*",
            "-p",
            &pid,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out_file).is_ok_and(|t| t.contains("\"attached\"")) {
        assert!(Instant::now() < deadline, "gotrace did not attach to caddy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ab_out = Command::new(ab)
        .args(["-k", "-c", "8", "-n", &REQUESTS.to_string()])
        .arg(format!("http://127.0.0.1:{port}/index.html"))
        .output()
        .unwrap();
    let ab_text = String::from_utf8_lossy(&ab_out.stdout);
    assert!(
        ab_text.contains(&format!("Complete requests:      {REQUESTS}")),
        "{ab_text}"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let mut stderr = String::new();
    std::io::Read::read_to_string(tracer.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(tracer.wait().unwrap().success(), "{stderr}");
    let logged = server.stop();
    let text = std::fs::read_to_string(&out_file).unwrap();
    let _ = std::fs::remove_file(&out_file);
    let events = common::traced::gotrace_json(text.lines());
    assert_eq!(stderr.matches(NOT_READ).count(), 1, "{stderr}");
    assert_eq!(logged.len() as u64, REQUESTS, "caddy's access log");
    let serve = "github.com/caddyserver/caddy/v2/modules/caddyhttp.(*Server).ServeHTTP";
    let calls = of_type(&events, "call")
        .into_iter()
        .filter(|e| e["function"] == serve)
        .count() as u64;
    let mut traced: Vec<u64> = of_type(&events, "return")
        .into_iter()
        .filter(|e| e["function"] == serve)
        .map(|e| field(e, "duration_ns"))
        .collect();
    let summary = summary(&events);
    assert_eq!(field(summary, "lost"), 0, "{summary}");
    assert_eq!(calls, REQUESTS, "{summary}");
    assert_eq!(traced.len() as u64, REQUESTS, "{summary}");
    let mut logged = logged;
    traced.sort_unstable();
    logged.sort_unstable();
    // The log's float seconds round to the nanosecond either way.
    let shorter: Vec<(u64, u64)> = traced
        .iter()
        .zip(&logged)
        .filter(|(t, l)| **t + 1 < **l)
        .map(|(t, l)| (*t, *l))
        .collect();
    assert!(
        shorter.is_empty(),
        "{} traced durations shorter than caddy's own, e.g. {:?}",
        shorter.len(),
        &shorter[..shorter.len().min(5)]
    );
    eprintln!(
        "caddy: {REQUESTS} requests, ServeHTTP median {} ns traced, {} ns logged",
        traced[traced.len() / 2],
        logged[logged.len() / 2]
    );
}
