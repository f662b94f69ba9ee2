//! Reading a traced run's stdout: gotrace's JSON lines and the launched target's own lines
//! share it (the target inherits gotrace's stdout).

use std::collections::HashMap;

use serde_json::Value;

/// Splits stdout into the target's own lines and gotrace's JSON objects (after the
/// `attached` line, see [`gotrace_json`]).
pub fn split_output(stdout: &[u8]) -> (Vec<String>, Vec<Value>) {
    let text = String::from_utf8_lossy(stdout);
    let (json, own): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('{'));
    (
        own.into_iter().map(str::to_owned).collect(),
        gotrace_json(json),
    )
}

/// A gotrace run that must have succeeded (else its stderr is the failure), split as
/// [`split_output`] splits its stdout.
pub fn split_successful(out: &std::process::Output) -> (Vec<String>, Vec<Value>) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    split_output(&out.stdout)
}

/// gotrace's JSON lines (the lines of stdout that start with `{`), parsed. The first must be
/// the `attached` line every tracing command prints once its probes are live
/// (`{"type":"attached","functions":N,"probes":M,"pids":[..]}` or `"binary":..`); it is
/// checked and left out.
pub fn gotrace_json<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Value> {
    let mut objects = lines.into_iter().filter(|l| l.starts_with('{')).map(|l| {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))
    });
    let attached = objects.next().expect("gotrace printed no JSON line");
    assert_eq!(attached["type"], "attached", "first JSON line: {attached}");
    assert!(field(&attached, "functions") >= 1, "{attached}");
    assert!(
        field(&attached, "probes") >= field(&attached, "functions"),
        "{attached}"
    );
    assert!(
        attached["pids"].as_array().is_some_and(|p| !p.is_empty())
            || attached["binary"].is_string(),
        "{attached}"
    );
    objects.collect()
}

/// The number the target printed as `<key> <number>`.
pub fn own_count(lines: &[String], key: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("target printed no {key:?} line; it printed {lines:?}"))
}

/// An unsigned field of a JSON object.
pub fn field(object: &Value, key: &str) -> u64 {
    object[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {object}"))
}

/// One goroutine as `examples/go-targets/gotree` recorded it.
#[derive(Debug)]
pub struct OwnRecord {
    pub goid: u64,
    pub parent: u64,
    pub function: String,
    /// The function whose go statement created it ("created by" in runtime.Stack).
    pub creator: String,
    pub site: String,
    /// From just before the go statement to the goroutine's last statement; None: still
    /// alive when the program exited.
    pub lifetime_ns: Option<u64>,
    /// How long after the lifetime's start the go statement had certainly created it.
    pub window_ns: u64,
}

impl OwnRecord {
    /// The range (ns) a tracer's creation-to-exit lifetime of this goroutine must lie in,
    /// within 1 ms + 5 %: from the latest moment the target knows the goroutine existed
    /// (creation happened inside the window its parent bracketed the go statement with) to its
    /// last statement. None: still alive when the program exited.
    pub fn traced_lifetime_ns(&self) -> Option<(f64, f64)> {
        let own_ns = self.lifetime_ns?;
        let latest_start = own_ns.saturating_sub(self.window_ns) as f64;
        let slack = 1e6 + 0.05 * own_ns as f64;
        Some((latest_start - slack, own_ns as f64 + slack))
    }
}

/// The target's `goroutine goid=.. parent=.. func=.. site=.. lifetime_ns=.. window_ns=..` lines.
pub fn own_records(lines: &[String]) -> Vec<OwnRecord> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("goroutine "))
        .map(|l| {
            let fields: HashMap<&str, &str> =
                l.split(' ').filter_map(|kv| kv.split_once('=')).collect();
            let lifetime: i64 = fields["lifetime_ns"].parse().unwrap();
            OwnRecord {
                goid: fields["goid"].parse().unwrap(),
                parent: fields["parent"].parse().unwrap(),
                function: fields["func"].to_owned(),
                creator: fields["creator"].to_owned(),
                site: fields["site"].to_owned(),
                lifetime_ns: u64::try_from(lifetime).ok(),
                window_ns: fields["window_ns"].parse().unwrap(),
            }
        })
        .collect()
}

/// Starts examples/go-targets/edges for `command` (goroutines: `-spawn`, a goroutine per
/// iteration), writing its record to `record` if given, and waits for its `ready` line; the
/// rest of its stdout is returned with it.
pub fn start_edges(
    binary: &std::path::Path,
    command: &str,
    record: Option<&std::path::Path>,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut target = std::process::Command::new(binary);
    if let Some(path) = record {
        target.arg("-out").arg(path);
    }
    if command == "goroutines" {
        target.arg("-spawn");
    }
    let mut target = target
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the edges target starts");
    let mut lines = std::io::BufReader::new(target.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    (target, lines)
}
