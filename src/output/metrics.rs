//! Prometheus exporter behind `--listen ADDR`: serves the owner's latest snapshot at
//! `GET /metrics` (Prometheus text format, or OpenMetrics when the scraper's `Accept` asks for
//! it), encoded with the `prometheus-client` crate. One HTTP server and one `gotrace_target_info`
//! for every command; each command brings its families as a [`Metrics`] snapshot
//! ([`FunclatMetrics`] here, `goroutine_metrics::GoroutineMetrics` for `gotrace goroutines`).
//!
//! funclat's histograms are the exact cumulative counts read from the kernel maps, bucketed as
//! the kernel bucketed them (log2 slots, `le` = the slot's upper bound), never re-observed.
//! Series per traced function: one `_bucket` per exposed slot plus `+Inf`, `_sum`, `_count`,
//! and the two loss counters (see [`exposed_slots`] and [`series_per_function`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit as MetricUnit};

use crate::gobin::GoBinary;
use crate::output::histogram::{Log2Hist, Unit, SLOTS};

/// Facts about the traced program, exposed as the labels of `gotrace_target_info`.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// Full path of the traced executable.
    pub path: String,
    /// Go release that built it (e.g. `go1.21.13`), empty when the binary does not say.
    pub go_version: String,
    /// Main module (or package) path from the build info, empty when absent.
    pub module: String,
    /// The Go build ID (`go tool buildid`), empty when the binary has none.
    pub build_id: String,
    /// The one traced process (`-p`, or a launched command); None: every process running it.
    pub pid: Option<u32>,
}

impl TargetInfo {
    /// The facts about the traced program: its executable `binary` (read as `bin`) and the one
    /// process traced, if any.
    pub fn of(binary: &Path, pid: Option<u32>, bin: &GoBinary<'_>) -> TargetInfo {
        let path = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_owned());
        TargetInfo {
            path: path.to_string_lossy().into_owned(),
            go_version: bin.build.go_version.clone().unwrap_or_default(),
            module: bin.build.main_module.clone().unwrap_or_default(),
            build_id: crate::gobin::format::buildinfo::go_build_id(&bin.elf).unwrap_or_default(),
            pid,
        }
    }

    /// The executable's file name, the `binary` label of every series.
    fn binary(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// `own` labels followed by those every series carries: `binary`, and `pid` when one
    /// process is traced.
    pub fn labels(&self, own: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        let mut set = own;
        set.push(("binary", self.binary().to_owned()));
        if let Some(pid) = self.pid {
            set.push(("pid", pid.to_string()));
        }
        set
    }

    /// Encodes `gotrace_target_info`.
    fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut info = encoder.encode_descriptor(
            "gotrace_target",
            "The traced program: executable, Go release, main module, and the PID when one process is traced",
            None,
            MetricType::Info,
        )?;
        let mut set = vec![
            ("binary", self.binary().to_owned()),
            ("path", self.path.clone()),
            ("go_version", self.go_version.clone()),
            ("module", self.module.clone()),
            ("build_id", self.build_id.clone()),
        ];
        if let Some(pid) = self.pid {
            set.push(("pid", pid.to_string()));
        }
        info.encode_info(&set)
    }
}

/// A command's metric families: the snapshot the owner keeps up to date and each scrape
/// encodes.
pub trait Metrics: std::fmt::Debug + Send + 'static {
    /// Encodes every family of this snapshot; each series carries `target.labels(..)`.
    fn encode(&self, target: &TargetInfo, encoder: &mut DescriptorEncoder) -> std::fmt::Result;
}

/// Encodes the latest snapshot, then `gotrace_target_info`, on each scrape.
#[derive(Debug)]
struct Exposition<M> {
    latest: Arc<Mutex<M>>,
    target: TargetInfo,
}

impl<M: Metrics> Collector for Exposition<M> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .encode(&self.target, &mut encoder)?;
        self.target.encode(&mut encoder)
    }
}

/// Which counter of a histogram a metric exposes.
type Counted = fn(&Log2Hist) -> u64;

/// `gotrace funclat`'s families: one latency histogram and two loss counters per function,
/// and one series per function the overload guard detached.
#[derive(Debug)]
pub struct FunclatMetrics {
    functions: Vec<String>,
    unit: Unit,
    hists: Vec<Log2Hist>,
    detached: Vec<String>,
    /// funclat --by: (function index, key label, histogram) of every key; when any, the
    /// duration histograms are these, labelled `key`.
    keyed: Vec<(usize, String, Log2Hist)>,
}

impl FunclatMetrics {
    /// The families of `functions` (histograms in `unit`), all zero.
    pub fn new(functions: Vec<String>, unit: Unit) -> FunclatMetrics {
        let hists = vec![Log2Hist::default(); functions.len()];
        FunclatMetrics {
            functions,
            unit,
            hists,
            detached: Vec::new(),
            keyed: Vec::new(),
        }
    }

    /// Takes a fresh cumulative snapshot (one histogram per function, in plan order) and the
    /// functions the overload guard has detached so far.
    pub fn set(&mut self, hists: &[Log2Hist], detached: &[String]) {
        self.hists.clear();
        self.hists.extend_from_slice(hists);
        self.detached.clear();
        self.detached.extend_from_slice(detached);
    }

    /// funclat --by: takes a fresh cumulative snapshot of every key's histogram (function
    /// index, the key's label value); at most --max-keys value keys, plus per function its
    /// `(other)`, `(unreadable)` and `(not read)` (docs/fleet.md).
    pub fn set_keyed<'h>(&mut self, rows: impl IntoIterator<Item = (usize, String, &'h Log2Hist)>) {
        self.keyed.clear();
        self.keyed.extend(
            rows.into_iter()
                .map(|(f, key, hist)| (f, key, hist.clone())),
        );
    }
}

/// The histogram slots exposed as buckets: slots 0..n, n the first whose upper bound reaches an
/// hour. Slower calls are still counted exactly, in `+Inf` (and `_count`, `_sum`).
pub fn exposed_slots(unit: Unit) -> usize {
    const HOUR_NS: u128 = 3_600_000_000_000;
    (1..=SLOTS)
        .find(|&n| (1u128 << n) * u128::from(unit.divisor()) >= HOUR_NS)
        .unwrap_or(SLOTS)
}

/// Series exposed per traced function: buckets, `+Inf`, `_sum`, `_count`, lost, unmatched.
pub fn series_per_function(unit: Unit) -> usize {
    exposed_slots(unit) + 5
}

/// Upper bound in seconds of log2 slot `slot`: calls there lasted less than 2^(slot+1) units.
fn slot_upper_seconds(slot: usize, unit: Unit) -> f64 {
    2f64.powi(slot as i32 + 1) * unit.divisor() as f64 / 1e9
}

/// One histogram family in seconds: `name` with `help`, one histogram per label set, each given
/// as (labels, sum in seconds, count, cumulative (upper bound, count) buckets).
pub(crate) fn encode_seconds_histograms(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histograms: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64, u64, Vec<(f64, u64)>)>,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(
        name,
        help,
        Some(&MetricUnit::Seconds),
        MetricType::Histogram,
    )?;
    for (set, sum_seconds, count, buckets) in histograms {
        metric.encode_family(&set)?.encode_histogram::<NoLabelSet>(
            sum_seconds,
            count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

/// Per-bucket (not cumulative) counts for the encoder: the exposed slots, then `+Inf` holding
/// the slower slots. Returns them with the total count (the sum of every slot, so that `+Inf`
/// always equals `_count` even when a snapshot raced with a kernel-side update).
fn buckets(hist: &Log2Hist, unit: Unit) -> (Vec<(f64, u64)>, u64) {
    let shown = exposed_slots(unit);
    let mut out: Vec<(f64, u64)> = hist.slots[..shown]
        .iter()
        .enumerate()
        .map(|(slot, &count)| (slot_upper_seconds(slot, unit), count))
        .collect();
    out.push((f64::INFINITY, hist.slots[shown..].iter().sum()));
    (out, hist.slots.iter().sum())
}

impl Metrics for FunclatMetrics {
    fn encode(&self, target: &TargetInfo, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let labels = |function: &str| target.labels(vec![("function", function.to_owned())]);
        let keyed = self.keyed.iter().filter_map(|(f, key, hist)| {
            let function = self.functions.get(*f)?;
            let set = target.labels(vec![("function", function.clone()), ("key", key.clone())]);
            Some((set, hist))
        });
        let plain = self
            .functions
            .iter()
            .zip(&self.hists)
            .map(|(function, hist)| (labels(function), hist));
        let series: Vec<_> = if self.keyed.is_empty() {
            plain.collect()
        } else {
            keyed.collect()
        };
        encode_seconds_histograms(
            encoder,
            "gotrace_function_duration",
            "Duration of Go function calls (entry to return), from gotrace's in-kernel log2 histograms; cumulative since tracing began",
            series.into_iter().map(|(set, hist)| {
                let (buckets, count) = buckets(hist, self.unit);
                (set, hist.total_ns as f64 / 1e9, count, buckets)
            }),
        )?;
        let counters: [(&str, &str, Counted); 2] = [
            (
                "gotrace_function_calls_lost",
                "Calls not measured: already running when tracing began, or evicted beyond --max-open-calls",
                |h| h.lost,
            ),
            (
                "gotrace_function_calls_unmatched",
                "Calls entered that never returned normally (panics, runtime.Goexit, the process exiting inside the call)",
                |h| h.unmatched,
            ),
        ];
        for (name, help, value) in counters {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (function, hist) in self.functions.iter().zip(&self.hists) {
                let set = labels(function);
                metric
                    .encode_family(&set)?
                    .encode_counter::<NoLabelSet, _, u64>(&value(hist), None)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "gotrace_guard_detached_functions",
            "Functions the overload guard detached because their probes cost the target more than --max-overhead (1 each; their other series stop growing then)",
            None,
            MetricType::Counter,
        )?;
        for function in &self.detached {
            metric
                .encode_family(&labels(function))?
                .encode_counter::<NoLabelSet, _, u64>(&1u64, None)?;
        }
        Ok(())
    }
}

/// A running `/metrics` endpoint serving the snapshot `M`. The HTTP thread lives as long as
/// the process.
pub struct Exporter<M> {
    latest: Arc<Mutex<M>>,
}

impl<M: Metrics> Exporter<M> {
    /// Binds `listen` (HOST:PORT), says where on stderr (useful with port 0), and serves
    /// `metrics` (and `target`'s info) from a background thread, as [`Exporter::update`]
    /// changes them.
    pub fn serve(listen: &str, metrics: M, target: TargetInfo) -> Result<Exporter<M>> {
        let listener = TcpListener::bind(listen).with_context(|| {
            format!("--listen {listen}: cannot listen there (give a free HOST:PORT, e.g. 127.0.0.1:9464)")
        })?;
        let addr = listener.local_addr()?;
        let latest = Arc::new(Mutex::new(metrics));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Exposition {
            latest: Arc::clone(&latest),
            target,
        }));
        std::thread::Builder::new()
            .name("metrics-http".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // A client that misbehaves only loses its own response.
                    let _ = respond(stream, &registry);
                }
            })?;
        eprintln!("gotrace: serving metrics at http://{addr}/metrics");
        Ok(Exporter { latest })
    }

    /// Changes the served snapshot (a scrape sees it before or after, never half-changed).
    pub fn update(&self, change: impl FnOnce(&mut M)) {
        change(&mut self.latest.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Largest request head read; longer heads get 431.
const MAX_HEAD: usize = 16 * 1024;

/// Answers one HTTP/1.x request: `GET /metrics` (or `HEAD`) with the metrics, 404 for other
/// paths, 405 for other methods. One request per connection.
fn respond(stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut openmetrics = false;
    let mut head = request_line.len();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        head += n;
        if n == 0 || line == "\r\n" || line == "\n" || head > MAX_HEAD {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("accept") {
                openmetrics |= value.contains("application/openmetrics-text");
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = if head > MAX_HEAD {
        (
            "431 Request Header Fields Too Large",
            "text/plain",
            String::new(),
        )
    } else if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        )
    } else if path != "/metrics" {
        ("404 Not Found", "text/plain", "see /metrics\n".to_owned())
    } else {
        let mut body = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut body, registry)
                .map_err(std::io::Error::other)?;
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            )
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut body, registry)
                .map_err(std::io::Error::other)?;
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
        }
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The Prometheus text of `metrics` for a server binary (PID `pid` when Some).
    pub(crate) fn exposition(metrics: impl Metrics, pid: Option<u32>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Exposition {
            latest: Arc::new(Mutex::new(metrics)),
            target: TargetInfo {
                path: "/srv/bin/server".to_owned(),
                go_version: "go1.21.13".to_owned(),
                module: "example.com/server".to_owned(),
                build_id: "abc/def".to_owned(),
                pid,
            },
        }));
        let mut body = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut body, &registry).unwrap();
        body
    }

    fn text(hists: Vec<Log2Hist>, unit: Unit, pid: Option<u32>) -> String {
        let mut metrics = FunclatMetrics::new(vec!["main.(*T).do\"it\"".to_owned()], unit);
        metrics.set(&hists, &[]);
        exposition(metrics, pid)
    }

    #[test]
    fn each_function_the_guard_detached_is_one_series() {
        let names = vec!["main.hot".to_owned(), "main.cold".to_owned()];
        let mut metrics = FunclatMetrics::new(names, Unit::Nanos);
        let hists = vec![Log2Hist::default(); 2];
        metrics.set(&hists, &["main.hot".to_owned()]);
        let body = exposition(metrics, Some(7));
        let line = r#"gotrace_guard_detached_functions_total{function="main.hot",binary="server",pid="7"} 1"#;
        assert!(body.contains(&format!("{line}\n")), "{body}");
        assert_eq!(
            body.matches("gotrace_guard_detached_functions_total{")
                .count(),
            1
        );
    }

    #[test]
    fn slots_become_cumulative_buckets_in_seconds() {
        let mut hist = Log2Hist::default();
        hist.slots[0] = 1; // 0-1 us
        hist.slots[10] = 4; // 1024-2047 us
        hist.slots[40] = 2; // beyond an hour: only in +Inf
        hist.count = 7;
        hist.total_ns = 3_000_000;
        hist.lost = 3;
        let body = text(vec![hist], Unit::Micros, Some(42));
        let labels = r#"function="main.(*T).do\"it\"",binary="server",pid="42""#;
        for line in [
            format!("gotrace_function_duration_seconds_bucket{{{labels},le=\"2e-06\"}} 1"),
            format!("gotrace_function_duration_seconds_bucket{{{labels},le=\"0.002048\"}} 5"),
            format!("gotrace_function_duration_seconds_bucket{{{labels},le=\"4294.967296\"}} 5"),
            format!("gotrace_function_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 7"),
            format!("gotrace_function_duration_seconds_count{{{labels}}} 7"),
            format!("gotrace_function_duration_seconds_sum{{{labels}}} 0.003"),
            format!("gotrace_function_calls_lost_total{{{labels}}} 3"),
            format!("gotrace_function_calls_unmatched_total{{{labels}}} 0"),
        ] {
            assert!(
                body.contains(&format!("{line}\n")),
                "no {line:?} in:\n{body}"
            );
        }
        assert!(body.contains(r#"gotrace_target_info{binary="server",path="/srv/bin/server",go_version="go1.21.13",module="example.com/server",build_id="abc/def",pid="42"} 1"#), "{body}");
        let buckets = body.matches("_bucket{").count();
        assert_eq!(buckets, exposed_slots(Unit::Micros) + 1);
        let series = body.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(series, series_per_function(Unit::Micros) + 1);
    }

    #[test]
    fn the_top_bucket_reaches_an_hour_in_every_unit() {
        for unit in [Unit::Nanos, Unit::Micros, Unit::Millis] {
            let n = exposed_slots(unit);
            assert!(slot_upper_seconds(n - 1, unit) >= 3600.0);
            assert!(slot_upper_seconds(n - 2, unit) < 3600.0);
        }
    }
}
