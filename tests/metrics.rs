//! `gotrace funclat --listen`, `gotrace goroutines --listen` and `--heatmap` with the real
//! components on loopback (issue 12): Debian's `prometheus` server scraping gotrace every
//! 100 ms while it traces `examples/go-targets/counter` or `gotree` through restarts,
//! `promtool check metrics` on the exposition, and the heatmap SVG rendered by headless
//! Chromium. The oracles are the counter's own count of its calls, gotree's own record of its
//! goroutines (from Go's runtime), the Go release that built them, Prometheus's own PromQL
//! evaluation and promtool.
//! The tests of this file run one at a time (they share the kernel's uprobe state and the
//! machine's two cores).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::chromium::{chromium, screenshot};
use common::gotrace::{gotrace, user_error_problems, GOTRACE};
use common::serial::bpf_test;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::traced::{own_count, own_records, OwnRecord};
use common::{installed, require};
use serde_json::Value;

/// The counter built by Go 1.27.3 for amd64, or None under the prerequisite rule.
fn counter() -> Option<GoBinary> {
    require(matrix_binary("1.27.3", "amd64", Variant::Plain, "counter"))
}

/// gotree built by Go 1.24.11 for amd64, or None under the prerequisite rule.
fn gotree() -> Option<GoBinary> {
    require(matrix_binary("1.24.11", "amd64", Variant::Plain, "gotree"))
}

/// A fresh directory for one test's files.
fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gotrace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// One HTTP/1.0 GET (no chunked encoding in the answer): status code and body.
fn http_get(port: u16, path: &str, accept: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{accept}\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Percent-encodes a query-string value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server started by the test, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    /// Starts `prometheus` on a free loopback port, scraping `target_port` every 100 ms, with
    /// its TSDB in `dir`; returns once it answers /-/ready.
    fn start(binary: &Path, dir: &Path, target_port: u16) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\nscrape_configs:\n  - job_name: gotrace\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let mut server = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http_get(port, "/-/ready", None), Ok((200, _))) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "prometheus exited ({status}): {}",
                    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "prometheus never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Evaluates an instant PromQL query; returns the (labels, value) of each series.
    fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let (status, body) = http_get(self.port, &path, None).expect("query prometheus");
        assert_eq!(status, 200, "{promql}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("prometheus answers JSON");
        answer["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{promql}: no result in {body}"))
            .iter()
            .map(|series| {
                let value = series["value"][1].as_str().expect("sample value");
                (series["metric"].clone(), value.parse().expect("number"))
            })
            .collect()
    }

    /// The single value `promql` evaluates to.
    fn value(&self, promql: &str) -> f64 {
        let series = self.query(promql);
        assert_eq!(series.len(), 1, "{promql}: one series expected: {series:?}");
        series[0].1
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts gotrace, waits for its banner (probes attached), and hands its later stdout lines
/// to a channel, each with the time it was read.
fn spawn_gotrace(args: &[&str]) -> (Child, mpsc::Receiver<(Instant, String)>) {
    let mut child = Command::new(GOTRACE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start gotrace");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    assert!(banner.starts_with("Tracing "), "no banner: {banner:?}");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if send.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// A `-i` period of funclat's text output: its count and its table (slot low bound -> calls).
#[derive(Default)]
struct Period {
    count: u64,
    table: Vec<(u64, u64)>,
}

/// A row of funclat's table, "LOW -> HIGH : CALLS |***|", as (LOW, CALLS).
fn table_row(line: &str) -> Option<(u64, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [low, "->", _, ":", calls, ..] => Some((low.parse().ok()?, calls.parse().ok()?)),
        _ => None,
    }
}

/// Reads funclat's text periods from `lines` until one with no calls printed after `done`, when
/// the target had made its last call (so every call is in the maps funclat read); returns
/// every period read.
fn periods_until_idle(lines: &mpsc::Receiver<(Instant, String)>, done: Instant) -> Vec<Period> {
    let mut periods = Vec::new();
    let mut current = Period::default();
    loop {
        let (read_at, line) = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("gotrace stopped printing periods");
        if let Some(row) = table_row(&line) {
            current.table.push(row);
        } else if let Some(count) = line.split(", count: ").nth(1) {
            current.count = count.trim().parse().unwrap();
            let idle = current.count == 0 && read_at > done;
            periods.push(std::mem::take(&mut current));
            if idle {
                return periods;
            }
        }
    }
}

/// Runs the counter once at 1000 calls per second for `calls` calls; returns its own count.
fn run_counter(binary: &GoBinary, calls: u64) -> u64 {
    let out = Command::new(&binary.path)
        .args(["-rate", "1000", "-n", &calls.to_string()])
        .output()
        .expect("run counter");
    assert!(out.status.success(), "counter failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    own_count(
        &text.lines().map(str::to_owned).collect::<Vec<_>>(),
        "calls",
    )
}

/// Seconds since the Unix epoch, as Prometheus timestamps are.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill has no memory effects; the pid is a child this test started.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// What a Prometheus test runs on: a Prometheus server scraping 127.0.0.1:`port` every 100 ms,
/// promtool, the test's directory and a private copy of the target binary in it (its own
/// inode: tracing by path must not count other runs of the shared matrix binary on this
/// machine).
struct Scraped {
    server: Prometheus,
    promtool: PathBuf,
    dir: PathBuf,
    binary: GoBinary,
    port: u16,
}

impl Scraped {
    /// Sets up test `name` for a copy of `shared`; None under the prerequisite rule.
    fn start(name: &str, shared: &GoBinary) -> Option<Scraped> {
        let prometheus = require(installed("prometheus"))?;
        let promtool = require(installed("promtool"))?;
        let dir = tempdir(name);
        let file_name = shared.path.file_name().expect("a file name");
        let binary = GoBinary {
            path: dir.join(file_name),
            ..shared.clone()
        };
        std::fs::copy(&shared.path, &binary.path).expect("copy the target binary");
        let port = free_port();
        let server = Prometheus::start(&prometheus, &dir, port);
        Some(Scraped {
            server,
            promtool,
            dir,
            binary,
            port,
        })
    }
}

/// promtool passes gotrace's Prometheus text at `port` without a remark; gotrace answers in
/// OpenMetrics when asked, and 404 off /metrics.
fn check_exposition(promtool: &Path, port: u16) {
    let (status, body) = http_get(port, "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics: {checked:?}\n{body}"
    );
    let (status, open) = http_get(port, "/metrics", Some("application/openmetrics-text")).unwrap();
    assert_eq!(status, 200);
    assert!(open.ends_with("# EOF\n"), "not OpenMetrics: {open}");
    assert_eq!(http_get(port, "/", None).unwrap().0, 404);
}

/// Waits until Prometheus has scraped gotrace after now (so it holds gotrace's snapshot of
/// now), `metric` being one of gotrace's single series. (Prometheus starts scraping a few
/// seconds after it is ready.)
fn wait_for_a_scrape(server: &Prometheus, metric: &str) {
    let after = unix_now();
    let deadline = Instant::now() + Duration::from_secs(60);
    let promql = format!("timestamp({metric})");
    while !server
        .query(&promql)
        .first()
        .is_some_and(|&(_, at)| at > after)
    {
        assert!(
            Instant::now() < deadline,
            "prometheus stopped scraping gotrace"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tracing a binary by path through a target restart, scraped by a real Prometheus every
/// 100 ms for about a minute: Prometheus ends with the counter's own total (both runs), the
/// counter never reset, nothing lost, the median in funclat's own median bucket, the target's
/// Go release; the exposition passes `promtool check metrics`.
#[test]
fn prometheus_scrapes_exact_counts_across_a_restart() {
    let Some(_serial) = bpf_test() else { return };
    let Some(shared) = counter() else { return };
    let Some(Scraped {
        server,
        promtool,
        dir,
        binary,
        port,
    }) = Scraped::start("prometheus", &shared)
    else {
        return;
    };
    let listen = format!("127.0.0.1:{port}");
    let path = binary.path.to_str().unwrap();
    let (mut tracer, lines) = spawn_gotrace(&[
        "funclat",
        "-i",
        "1",
        "--listen",
        &listen,
        "main.doWork",
        path,
    ]);

    // Two runs of 30 s each: a new process (new PID) of the same binary after the first exits.
    let own = run_counter(&binary, 30_000) + run_counter(&binary, 30_000);
    let periods = periods_until_idle(&lines, Instant::now());
    let traced: u64 = periods.iter().map(|p| p.count).sum();
    // The snapshot behind that idle period is in the exporter; wait for a scrape after it.
    wait_for_a_scrape(&server, "gotrace_function_duration_seconds_count");

    let selector = r#"{job="gotrace",function="main.doWork",binary="counter"}"#;
    let count = server.value(&format!(
        "gotrace_function_duration_seconds_count{selector}"
    ));
    let scrapes = server.value(&format!(
        "count_over_time(gotrace_function_duration_seconds_count{selector}[10m])"
    ));
    eprintln!("metrics: {own} calls made, {traced} printed by funclat, {count} in Prometheus after {scrapes} scrapes");
    assert_eq!(own, 60_000, "the counter's own count");
    assert_eq!(
        traced, own,
        "funclat's printed periods vs the counter's own count"
    );
    assert_eq!(count as u64, own, "Prometheus vs the counter's own count");
    assert_eq!(
        server.value(&format!(
            "resets(gotrace_function_duration_seconds_count{selector}[10m])"
        )),
        0.0,
        "the count went down at the target's restart"
    );
    assert!(scrapes > 10.0, "Prometheus scraped only {scrapes} times");
    for loss in ["lost", "unmatched"] {
        assert_eq!(
            server.value(&format!("gotrace_function_calls_{loss}_total{selector}")),
            0.0,
            "{loss} calls"
        );
    }

    // The median: Prometheus's histogram_quantile lands in funclat's own median bucket.
    let mut table: Vec<(u64, u64)> = Vec::new();
    for &(low, calls) in periods.iter().flat_map(|p| &p.table) {
        match table.iter_mut().find(|(l, _)| *l == low) {
            Some(row) => row.1 += calls,
            None => table.push((low, calls)),
        }
    }
    table.sort_unstable();
    let mut below = 0;
    let median_low = table
        .iter()
        .find(|&&(_, calls)| {
            below += calls;
            below * 2 >= own
        })
        .map(|&(low, _)| low)
        .expect("funclat printed a table");
    let median = server.value(&format!(
        "histogram_quantile(0.5, gotrace_function_duration_seconds_bucket{selector})"
    ));
    let (low_s, high_s) = (
        median_low as f64 / 1e9,
        (median_low.max(1) * 2) as f64 / 1e9,
    );
    assert!(
        low_s * 0.999_999 <= median && median <= high_s * 1.000_001,
        "Prometheus's median {median} s is outside funclat's median bucket [{low_s}, {high_s}] s"
    );

    // The target's Go release, from the toolchain that built it, and its build ID as
    // `go tool buildid` reads it.
    let info = server.query(r#"gotrace_target_info{job="gotrace"}"#);
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(
        info[0].0["go_version"],
        format!("go{}", binary.go_version),
        "{info:?}"
    );
    let go = match binary.go_version.as_str() {
        "1.19" => PathBuf::from("/usr/bin/go"),
        version => common::toolchain::cache_dir()
            .join("go")
            .join(version)
            .join("go/bin/go"),
    };
    let buildid = Command::new(go)
        .args(["tool", "buildid"])
        .arg(&binary.path)
        .output()
        .expect("go tool buildid");
    let buildid = String::from_utf8_lossy(&buildid.stdout).trim().to_owned();
    assert!(!buildid.is_empty(), "go tool buildid printed nothing");
    assert_eq!(info[0].0["build_id"], buildid, "{info:?}");

    check_exposition(&promtool, port);

    signal(&tracer, libc::SIGINT);
    let status = tracer.wait().unwrap();
    assert!(status.success(), "gotrace exit status {status}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Goroutines the storm run of gotree starts (3 probe hits each).
const STORM: u64 = 20_000;

/// Runs gotree with `args` to its end; returns its own lines.
fn run_gotree(binary: &GoBinary, args: &[&str]) -> Vec<String> {
    let out = Command::new(&binary.path)
        .args(args)
        .output()
        .expect("run gotree");
    assert!(out.status.success(), "gotree failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until gotrace has printed `n` summaries (each ends with its `live goroutines:` line)
/// read after `after`.
fn summaries_after(lines: &mpsc::Receiver<(Instant, String)>, after: Instant, n: usize) {
    let mut seen = 0;
    while seen < n {
        let (read_at, line) = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("gotrace stopped printing summaries");
        if line.starts_with("live goroutines:") && read_at > after {
            seen += 1;
        }
    }
}

/// A PromQL selector of gotree's goroutines by start function and creation site.
fn goroutine_selector(function: &str, site: &str) -> String {
    format!(r#"{{job="gotrace",binary="gotree",function="{function}",site="{site}"}}"#)
}

/// Checks the lifetime histogram of one label set against the target's own records of its
/// goroutines: each bucket (lifetimes below its `le`) holds at least those certainly below it
/// and at most those possibly below it; `_count` and `_sum` agree.
fn check_lifetimes(server: &Prometheus, selector: &str, own: &[&OwnRecord]) {
    let ranges: Vec<(f64, f64)> = own.iter().filter_map(|r| r.traced_lifetime_ns()).collect();
    let buckets = server.query(&format!(
        "gotrace_goroutine_lifetime_seconds_bucket{selector}"
    ));
    assert!(buckets.len() > 30, "{selector}: {buckets:?}");
    for (labels, count) in &buckets {
        let le: f64 = labels["le"].as_str().unwrap().parse().unwrap();
        let le_ns = le * 1e9;
        let certainly = ranges.iter().filter(|&&(_, high)| high < le_ns).count();
        let possibly = ranges.iter().filter(|&&(low, _)| low < le_ns).count();
        assert!(
            certainly as f64 <= *count && *count <= possibly as f64,
            "{selector}: {count} lifetimes below {le} s; the target's own lifetimes put {certainly} to {possibly} there: {ranges:?}"
        );
    }
    let count = server.value(&format!(
        "gotrace_goroutine_lifetime_seconds_count{selector}"
    ));
    assert_eq!(count, ranges.len() as f64, "{selector}: _count");
    let sum = server.value(&format!("gotrace_goroutine_lifetime_seconds_sum{selector}"));
    let low: f64 = ranges.iter().map(|r| r.0).sum();
    let high: f64 = ranges.iter().map(|r| r.1).sum();
    assert!(
        low <= sum * 1e9 && sum * 1e9 <= high,
        "{selector}: _sum {sum} s outside [{low}, {high}] ns"
    );
}

/// Checks every label set of gotree's records `own` (from every run so far) in Prometheus:
/// created, exited, alive (none: their processes are gone, even those that never exited),
/// and the lifetimes.
fn check_tree_counts(server: &Prometheus, own: &[OwnRecord]) {
    let mut expected: BTreeMap<(&str, &str), Vec<&OwnRecord>> = BTreeMap::new();
    for record in own {
        let key = (record.function.as_str(), record.site.as_str());
        expected.entry(key).or_default().push(record);
    }
    for ((function, site), records) in &expected {
        let selector = goroutine_selector(function, site);
        let created = records.len() as f64;
        let exited = records.iter().filter(|r| r.lifetime_ns.is_some()).count() as f64;
        let value = |metric: &str| server.value(&format!("{metric}{selector}"));
        assert_eq!(
            value("gotrace_goroutines_created_total"),
            created,
            "{selector}"
        );
        assert_eq!(
            value("gotrace_goroutines_exited_total"),
            exited,
            "{selector}"
        );
        assert_eq!(value("gotrace_goroutines_live"), 0.0, "{selector}");
        check_lifetimes(server, &selector, records);
    }
}

/// `gotrace goroutines --listen --listen-sites` tracing gotree by path through three processes
/// (two trees and a storm), scraped by a real Prometheus every 100 ms: per start function and
/// creation site, Prometheus ends with gotree's own record of the goroutines it created and
/// that exited (both trees added up, the storm's exact count), lifetimes in the buckets the
/// target's own measurements allow, none alive once the processes are gone (though some
/// never exited), nothing lost, no counter reset; the exposition passes `promtool`.
#[test]
fn prometheus_counts_goroutines_as_the_target_recorded_them() {
    let Some(_serial) = bpf_test() else { return };
    let Some(shared) = gotree() else { return };
    let Some(Scraped {
        server,
        promtool,
        dir,
        binary,
        port,
    }) = Scraped::start("prometheus-goroutines", &shared)
    else {
        return;
    };
    let listen = format!("127.0.0.1:{port}");
    let path = binary.path.to_str().unwrap();
    let (mut tracer, lines) = spawn_gotrace(&[
        "goroutines",
        "--summary",
        "-i",
        "1",
        "--listen",
        &listen,
        "--listen-sites",
        path,
    ]);

    // Three processes of the same binary, one after the other; Prometheus scrapes gotrace
    // before the first starts and after each ends. The metrics are refreshed with each
    // summary; between two summaries printed after a process ended, the ring was drained of
    // every event of it.
    let unseen = "gotrace_goroutines_exited_unseen_creation_total";
    let settle = || {
        summaries_after(&lines, Instant::now(), 2);
        wait_for_a_scrape(&server, unseen);
    };
    wait_for_a_scrape(&server, unseen);
    let mut own = own_records(&run_gotree(&binary, &[]));
    settle();
    check_tree_counts(&server, &own);
    own.extend(own_records(&run_gotree(&binary, &[])));
    settle();
    check_tree_counts(&server, &own);
    let storm = run_gotree(&binary, &["-storm", &STORM.to_string()]);
    assert_eq!(own_count(&storm, "storm"), STORM);
    settle();
    check_tree_counts(&server, &own);
    assert_eq!(own.len(), 22, "gotree's own records: {own:?}");
    assert!(
        own.iter().any(|r| r.lifetime_ns.is_none()),
        "gotree left no goroutine blocked"
    );
    // The main package's label sets are those of the target's records, and the storm's.
    let traced: BTreeSet<String> = server
        .query(r#"gotrace_goroutines_created_total{job="gotrace",function=~"main\\..*"}"#)
        .iter()
        .map(|(labels, _)| labels["function"].as_str().unwrap().to_owned())
        .collect();
    let mut recorded: BTreeSet<String> = own.iter().map(|r| r.function.clone()).collect();
    recorded.insert("main.stormWorker".to_owned());
    assert_eq!(traced, recorded, "start functions of the main package");
    let storm_selector = r#"{job="gotrace",function="main.stormWorker"}"#;
    for metric in [
        "gotrace_goroutines_created_total",
        "gotrace_goroutines_exited_total",
    ] {
        let count = server.value(&format!("sum({metric}{storm_selector})"));
        assert_eq!(count, STORM as f64, "{metric} of the storm");
    }
    let lost = server.value(r#"sum(gotrace_goroutine_events_lost_total{job="gotrace"})"#);
    assert_eq!(lost, 0.0, "lost events");
    assert_eq!(
        server.value(unseen),
        0.0,
        "exits whose creation was not seen"
    );
    let resets =
        server.value(r#"max(resets(gotrace_goroutines_created_total{job="gotrace"}[10m]))"#);
    assert_eq!(resets, 0.0, "a count went down at a restart");
    let scrapes = server.value(r#"count_over_time(gotrace_target_info{job="gotrace"}[10m])"#);
    assert!(scrapes > 10.0, "Prometheus scraped only {scrapes} times");
    let info = server.query(r#"gotrace_target_info{job="gotrace"}"#);
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(
        info[0].0["go_version"],
        format!("go{}", binary.go_version),
        "{info:?}"
    );
    eprintln!(
        "goroutine metrics: gotree's own {} records and the storm's {STORM} goroutines match Prometheus after {scrapes} scrapes",
        own.len()
    );

    check_exposition(&promtool, port);

    signal(&tracer, libc::SIGINT);
    let status = tracer.wait().unwrap();
    assert!(status.success(), "gotrace exit status {status}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The heatmap of a launched counter: its cells add up to the counter's own count, and headless
/// Chromium renders it at the SVG's size with the colour of the busiest cell. The screenshot is
/// kept under the target directory as a test artifact.
#[test]
fn heatmap_adds_up_and_renders_in_chromium() {
    let Some(_serial) = bpf_test() else { return };
    let Some(binary) = counter() else { return };
    let Some(chromium) = require(chromium()) else {
        return;
    };
    let dir = tempdir("heatmap");
    let svg_path = dir.join("heatmap.svg");
    let out = Command::new(GOTRACE)
        .args(["funclat", "--heatmap"])
        .arg(&svg_path)
        .args(["--heatmap-step", "0.25", "main.doWork", "--"])
        .arg(&binary.path)
        .args(["-rate", "1000", "-n", "2000"])
        .output()
        .expect("run gotrace");
    assert!(out.status.success(), "gotrace failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let own = own_count(
        &text.lines().map(str::to_owned).collect::<Vec<_>>(),
        "calls",
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // The values of an attribute, in document order, as numbers where they are.
    let attribute_values = |name: &str| -> Vec<u64> {
        svg.split(&format!(" {name}=\""))
            .skip(1)
            .filter_map(|rest| rest[..rest.find('"').unwrap()].parse().ok())
            .collect()
    };
    let cells = attribute_values("data-count");
    assert_eq!(
        cells.iter().sum::<u64>(),
        own,
        "heatmap cells vs the counter's own count"
    );
    assert_eq!(
        attribute_values("data-calls"),
        vec![own],
        "the panel's total"
    );
    assert!(cells.len() > 4, "{} cells: too few columns?", cells.len());
    // The root element's size comes first.
    let width = attribute_values("width")[0];
    let height = attribute_values("height")[0];

    let shot = screenshot(
        &chromium,
        &svg_path,
        (width, height),
        "funclat-heatmap",
        &dir,
    );
    assert_eq!((shot.width, shot.height), (width as u32, height as u32));
    let pixels = shot.pixels;
    // The busiest cell and the legend's last swatch are drawn in the scale's darkest colour.
    let darkest = [0xbd, 0x00, 0x26];
    let dark_pixels = pixels
        .iter()
        .filter(|p| p.iter().zip(darkest).all(|(&a, b)| a.abs_diff(b) <= 3))
        .count();
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    eprintln!(
        "heatmap: {} cells, {width}x{height}, {dark_pixels} darkest pixels, screenshot {}",
        cells.len(),
        shot.path.display()
    );
    assert!(
        dark_pixels >= 16 * 16,
        "the darkest colour is missing from the rendering"
    );
    assert!(white > 0 && white < pixels.len(), "a blank rendering");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad --listen and --heatmap values fail before tracing, in one line with exit code 2 (funclat
/// and goroutines).
#[test]
fn bad_listen_and_heatmap_values_are_one_line_errors() {
    let Some(binary) = counter() else { return };
    let path = binary.path.to_str().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let cases: [&[&str]; 4] = [
        &["--listen", "nonsense"],
        &["--listen", &taken],
        &["--heatmap", "/nonexistent/dir/heatmap.svg"],
        &[
            "--heatmap",
            "/tmp/gotrace-step-zero.svg",
            "--heatmap-step",
            "0",
        ],
    ];
    for flags in cases {
        let mut args = vec!["funclat"];
        args.extend_from_slice(flags);
        args.extend(["main.doWork", path]);
        let problems = user_error_problems(&gotrace(&args));
        assert!(problems.is_empty(), "{flags:?}: {problems:?}");
    }
    let Some(tree) = gotree() else { return };
    for listen in ["nonsense", &taken] {
        let args = [
            "goroutines",
            "--listen",
            listen,
            tree.path.to_str().unwrap(),
        ];
        let problems = user_error_problems(&gotrace(args));
        assert!(
            problems.is_empty(),
            "goroutines --listen {listen}: {problems:?}"
        );
    }
}
