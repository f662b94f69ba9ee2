//! `gotrace graph --pprof FILE` (issue 26) against two oracles nobody here wrote: Go 1.27's own
//! `go tool pprof`, which reads the file (`-top`: every function's flat and cumulative time
//! must equal the sums of gotrace's JSON trees to the nanosecond, and the total the root calls'
//! wall time; `-raw`: the call sites), and the traced program's record of its callers as Go's
//! runtime names them (`examples/go-targets/pprofstack`: runtime.CallersFrames, inlined calls
//! expanded): every caller stack of main.leaf in the profile, inline lines included, is one the
//! target recorded, and each one it recorded is there.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::gotrace::GOTRACE;
use common::pprof::{pprof, top, Totals};
use common::require;
use common::serial::bpf_test;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::toolchain::oracle_toolchain;
use common::traced::field;
use serde_json::Value;

/// Adds `node`'s self time to its function's flat and, once per function on the stack
/// `path` leads to (recursion counts once, as pprof counts it), to their cumulative time.
fn add_totals(node: &Value, path: &mut Vec<String>, totals: &mut Totals) {
    let function = node["function"].as_str().expect("function").to_owned();
    let children = node["children"].as_array().expect("children");
    let inner: u64 = children.iter().map(|c| field(c, "duration_ns")).sum();
    let self_ns = field(node, "duration_ns").saturating_sub(inner);
    path.push(function.clone());
    totals.entry(function).or_default().0 += self_ns;
    let on_stack: BTreeSet<&String> = path.iter().collect();
    for f in on_stack {
        totals.entry(f.clone()).or_default().1 += self_ns;
    }
    for child in children {
        add_totals(child, path, totals);
    }
    path.pop();
}

/// `-raw`'s samples as (value, location ids, leaf first).
type Samples = Vec<(u64, Vec<u64>)>;

/// `-raw`'s locations by id, as their lines (`function file:line`, innermost first).
type Locations = BTreeMap<u64, Vec<String>>;

/// `-raw`'s samples and locations.
fn raw(file: &Path) -> (Samples, Locations) {
    let text = pprof(&["-raw"], file);
    let mut samples = Vec::new();
    let mut locations = Locations::new();
    let mut section = "";
    let mut current = 0;
    for line in text.lines() {
        match line.trim_end() {
            "Samples:" | "Locations" | "Mappings" => {
                section = line.trim_end();
                continue;
            }
            _ => {}
        }
        match section {
            "Samples:" if line.contains(": ") => {
                let (value, ids) = line.trim().split_once(": ").unwrap();
                let ids = ids.split_whitespace().map(|i| i.parse().unwrap()).collect();
                samples.push((value.parse().unwrap(), ids));
            }
            "Locations" => {
                // `  N: 0xADDR M=1 func file:line:col s=S`, then one line per outer frame.
                let words: Vec<&str> = line.split_whitespace().collect();
                let frame = if let Some(id) = words[0].strip_suffix(':') {
                    current = id.parse().unwrap();
                    &words[3..5]
                } else {
                    &words[0..2]
                };
                let file_line = frame[1].rsplit_once(':').unwrap().0;
                locations
                    .entry(current)
                    .or_default()
                    .push(format!("{} {file_line}", frame[0]));
            }
            _ => {}
        }
    }
    (samples, locations)
}

/// Traces pprofstack with --json and --pprof and checks the profile against pprof's reading
/// of it and the target's own record of its callers.
fn check(version: &'static str, goarch: &'static str, variant: Variant) {
    let Some(binary) = require(matrix_binary(version, goarch, variant, "pprofstack")) else {
        return;
    };
    if require(oracle_toolchain()).is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("gotrace-pprof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (profile, json_file) = (dir.join("wall.pb.gz"), dir.join("trees.json"));
    let output = run_traced(&binary, &profile, &json_file);
    assert!(
        output.status.success(),
        "{binary}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let own: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let json: Vec<Value> = std::fs::read_to_string(&json_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let trees: Vec<&Value> = json.iter().filter(|v| v["type"] == "tree").collect();
    let roots: u64 = own
        .iter()
        .find_map(|l| l.strip_prefix("roots "))
        .expect("the target's roots line")
        .parse()
        .unwrap();
    assert_eq!(trees.len() as u64, roots, "{binary}: a tree per root call");

    // Flat and cumulative time per function, and the total.
    let mut expected = Totals::new();
    for tree in &trees {
        add_totals(tree, &mut Vec::new(), &mut expected);
    }
    let wall: u64 = trees.iter().map(|t| field(t, "duration_ns")).sum();
    let (reported, total) = top(&profile, "wall");
    assert_eq!(
        total, wall,
        "{binary}: pprof's total vs the root calls' wall time"
    );
    for (function, times) in &expected {
        assert_eq!(reported.get(function), Some(times), "{binary}: {function}");
    }
    for (function, (flat, _)) in &reported {
        if !expected.contains_key(function) {
            // Only the inlined callers gotrace does not trace; they hold no time of their own.
            assert_eq!(*flat, 0, "{binary}: {function} is no traced function");
            assert!(
                ["main.via", "main.via2"].contains(&function.as_str()),
                "{function}"
            );
        }
    }

    // main.leaf's callers, as the target's runtime named them.
    let recorded: BTreeSet<String> = own
        .iter()
        .filter_map(|l| l.strip_prefix("callers "))
        .map(|l| l.rsplit_once(" count=").unwrap().0.to_owned())
        .collect();
    assert_eq!(
        recorded.len(),
        4,
        "{binary}: the target's call sites: {own:?}"
    );
    let (samples, locations) = raw(&profile);
    let leaf_entry = locations
        .iter()
        .find(|(_, lines)| lines.len() == 1 && lines[0].starts_with("main.leaf "))
        .map(|(id, _)| *id);
    let mut seen = BTreeSet::new();
    for (_, ids) in samples.iter().filter(|(_, ids)| Some(ids[0]) == leaf_entry) {
        // The caller's frames up to main.root: the call site's lines, then (main.mid's call)
        // the next call site's.
        let mut frames = Vec::new();
        for id in &ids[1..] {
            frames.extend(locations[id].iter().cloned());
        }
        seen.insert(frames.join(";"));
    }
    assert_eq!(seen, recorded, "{binary}: main.leaf's callers");
    check_window(&binary, &profile, &json);
    std::fs::remove_dir_all(&dir).ok();
}

/// The profile's time and duration, as `go tool pprof -raw` prints them, are the window in
/// which entries counted: from the attached line's `time` to the summary's `ts_ns`.
fn check_window(binary: &GoBinary, profile: &Path, json: &[Value]) {
    let text = pprof(&["-raw"], profile);
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{binary}: no {key} in pprof -raw"))
            .to_owned()
    };
    let (attached, summary) = (&json[0], &json[json.len() - 1]);
    // "2026-12-07 21:12:41.24737922 +0000 UTC" against "2026-12-07T21:12:41.247379240Z":
    // the same date, and the same second of the day within 1 ms.
    let seconds = |hms: &str| -> f64 {
        hms.split(':')
            .map(|part| part.parse::<f64>().unwrap())
            .fold(0.0, |sum, part| sum * 60.0 + part)
    };
    let time = header("Time: ");
    let (date, rest) = time.split_once(' ').unwrap();
    let expected = attached["time"].as_str().unwrap().trim_end_matches('Z');
    let (expected_date, expected_hms) = expected.split_once('T').unwrap();
    assert_eq!(date, expected_date, "{binary}: profile time {time}");
    let hms = rest.split(' ').next().unwrap();
    assert!(
        (seconds(hms) - seconds(expected_hms)).abs() < 1e-3,
        "{binary}: profile time {time}, attached at {expected}"
    );
    // Go prints the duration with "%.4v": its String() cut to 4 characters ("17.155152ms" is
    // "17.1"); the window's length in Go's unit for it must start with those digits.
    let window_ns = (field(summary, "ts_ns") - field(attached, "ts_ns")) as f64;
    let unit = [1e9, 1e6, 1e3, 1.0]
        .into_iter()
        .find(|&unit| window_ns >= unit)
        .unwrap();
    assert!(window_ns < 60e9, "{binary}: a window of {window_ns} ns");
    let printed = header("Duration: ");
    let decimals = printed.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    let value = window_ns / unit;
    let shown: f64 = printed.parse().unwrap();
    assert!(
        shown <= value + 1e-9 && value - shown < 10f64.powi(-decimals),
        "{binary}: profile duration {printed}, the window {window_ns} ns"
    );
}

/// `gotrace graph --json -o TREES --pprof PROFILE --depth 0 main.root 'main.*' -- BINARY`.
fn run_traced(binary: &GoBinary, profile: &Path, trees: &Path) -> std::process::Output {
    Command::new(GOTRACE)
        .args(["graph", "--json", "--depth", "0", "-o"])
        .arg(trees)
        .arg("--pprof")
        .arg(profile)
        .args(["main.root", "main.*", "--"])
        .arg(&binary.path)
        .output()
        .expect("running gotrace")
}

#[test]
fn pprof_totals_and_call_sites_match_go_tool_pprof_and_the_target() {
    let Some(_serial) = bpf_test() else {
        return;
    };
    for (version, goarch, variant) in [
        ("1.27.3", "amd64", Variant::Plain),
        ("1.27.3", "amd64", Variant::Pie),
        ("1.27.3", "386", Variant::Plain),
        ("1.24.11", "amd64", Variant::Stripped),
        ("1.19", "amd64", Variant::Plain),
    ] {
        check(version, goarch, variant);
    }
}
