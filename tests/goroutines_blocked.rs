//! `gotrace goroutines --blocked -p PID` against examples/go-targets/parked on every matrix
//! toolchain, amd64 (plain, stripped, PIE) and 386 (plain, stripped). The oracle is the
//! target's own runtime: once all its goroutines are parked it prints `runtime.Stack(buf,
//! true)`, Go's own list of its goroutines with each one's wait reason and frames, and then
//! changes nothing. gotrace must list exactly the goroutines that dump shows parked (the
//! dumping goroutine itself is running and then exits), each with the dump's wait reason and
//! the dump's frames (gotrace's stack with the frames Go's tracebacks hide taken out), and a
//! `parked_since_ns` within the target's own runtime.nanotime readings around the collection
//! whose end the runtime stamps it with. The JSON lines match docs/json.md's schemas.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::gotrace::{gotrace, user_error_problems};
use common::serial::bpf_test;
use common::targets::{matrix_binary, repo_root, GoBinary, Variant};
use common::toolchain::MATRIX_GO_VERSIONS;
use common::{installed, require, require_root};
use serde_json::Value;

/// What the target printed: its dump's goroutines (goid → wait reason or state, frames) and
/// the nanotime readings around its first collection.
struct Dump {
    goroutines: BTreeMap<u64, (String, Vec<String>)>,
    gc1: (u64, u64),
}

/// Starts the target and reads its output up to the end of its dump.
fn start(binary: &GoBinary) -> (Child, Dump) {
    let mut child = Command::new(&binary.path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the target starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("the target's dump").expect("utf-8");
    let mut reading = |prefix: &str| -> u64 {
        let line = next();
        line.strip_prefix(prefix)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{binary}: expected {prefix:?}, got {line:?}"))
    };
    let gc1 = (reading("GC1 BEFORE"), reading("GC1 AFTER"));
    assert_eq!(next(), "DUMP BEGIN");
    let mut goroutines = BTreeMap::new();
    let mut current: Option<u64> = None;
    loop {
        let line = next();
        if line == "DUMP END" {
            break;
        }
        if let Some(header) = line.strip_prefix("goroutine ") {
            let goid: u64 = header.split(' ').next().unwrap().parse().unwrap();
            let open = header.find('[').expect("a [state]");
            let state = header[open + 1..header.len() - 2]
                .split(", ")
                .next()
                .unwrap();
            goroutines.insert(goid, (state.to_owned(), Vec::new()));
            current = Some(goid);
        } else if line.is_empty() || line.starts_with('\t') || line.starts_with("created by") {
            continue;
        } else if let Some(goid) = current {
            let call = line.rfind('(').expect("a frame's arguments");
            goroutines
                .get_mut(&goid)
                .unwrap()
                .1
                .push(line[..call].to_owned());
        }
    }
    (child, Dump { goroutines, gc1 })
}

/// Whether Go's tracebacks show a frame of this function (traceback.go showfuncinfo at the
/// default GOTRACEBACK level: not package runtime's unexported functions).
fn shown(function: &str) -> bool {
    match function.strip_prefix("runtime.") {
        Some(rest) => rest.starts_with(|c: char| c.is_ascii_uppercase()),
        None => function.contains('.'),
    }
}

fn check(binary: &GoBinary) -> Vec<String> {
    let (mut child, dump) = start(binary);
    let pid = child.id().to_string();
    let out = gotrace(["goroutines", "--blocked", "--json", "-p", &pid]);
    let _ = child.kill();
    let _ = child.wait();
    let mut problems = Vec::new();
    if !out.status.success() {
        return vec![format!(
            "{binary}: gotrace failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    // A snapshot: `parked` lines and a summary, no `attached` line.
    let json: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let listed: BTreeMap<u64, &Value> = json
        .iter()
        .filter(|v| v["type"] == "parked")
        .map(|v| (v["goid"].as_u64().unwrap(), v))
        .collect();
    let expected: BTreeMap<u64, &(String, Vec<String>)> = dump
        .goroutines
        .iter()
        .filter(|(_, (state, _))| state != "running")
        .map(|(goid, g)| (*goid, g))
        .collect();
    let (listed_ids, expected_ids): (Vec<_>, Vec<_>) =
        (listed.keys().collect(), expected.keys().collect());
    if listed_ids != expected_ids {
        problems.push(format!(
            "{binary}: gotrace lists goroutines {listed_ids:?}, the dump shows parked {expected_ids:?}"
        ));
    }
    for (goid, (reason, frames)) in expected {
        let Some(g) = listed.get(&goid) else { continue };
        if g["wait_reason"] != reason.as_str() {
            problems.push(format!(
                "{binary}: goroutine {goid}: wait reason {} but the dump says {reason:?}",
                g["wait_reason"]
            ));
        }
        let stack: Vec<&str> = g["stack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap())
            .filter(|f| shown(f))
            .collect();
        if &stack != frames {
            problems.push(format!(
                "{binary}: goroutine {goid}: frames {stack:?} but the dump shows {frames:?}"
            ));
        }
        // An exact integer: a number, or the string of its digits beyond 2^53 - 1.
        let since = g["parked_since_ns"]
            .as_u64()
            .or_else(|| g["parked_since_ns"].as_str()?.parse().ok());
        if !since.is_some_and(|since| dump.gc1.0 <= since && since <= dump.gc1.1) {
            problems.push(format!(
                "{binary}: goroutine {goid}: parked_since_ns {since:?} outside the target's first collection {:?}",
                dump.gc1
            ));
        }
    }
    problems.extend(schema_problems(binary, &out.stdout));
    let summary = json.last().expect("a summary");
    for (key, want) in [("unreadable", 0), ("filtered", 0), ("unnamed_reasons", 0)] {
        if summary[key] != want {
            problems.push(format!("{binary}: summary {key} = {}", summary[key]));
        }
    }
    if summary["parked"] != listed.len() || summary["runtime_goroutines"].as_u64() < Some(1) {
        problems.push(format!("{binary}: summary {summary}"));
    }
    problems
}

/// The JSON lines against docs/json.md's schemas (tests/json_schema.py), for Go 1.27 amd64.
fn schema_problems(binary: &GoBinary, stdout: &[u8]) -> Vec<String> {
    if binary.label != "go1.27.3/amd64-plain/parked" {
        return Vec::new();
    }
    let Some(python) = require(installed("python3")) else {
        return Vec::new();
    };
    let file = std::env::temp_dir().join(format!("gotrace-blocked-{}.json", std::process::id()));
    std::fs::write(&file, stdout).unwrap();
    let check = Command::new(python)
        .arg(repo_root().join("tests/json_schema.py"))
        .arg(repo_root().join("docs/json.md"))
        .arg("goroutines --blocked")
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    if check.status.success() {
        return Vec::new();
    }
    vec![format!(
        "{binary}: schema: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    )]
}

#[test]
fn lists_exactly_what_the_runtime_dump_shows_parked() {
    let Some(_guard) = bpf_test() else { return };
    let mut problems = Vec::new();
    let mut checked = 0;
    for &version in MATRIX_GO_VERSIONS {
        for goarch in ["amd64", "386"] {
            for &variant in Variant::for_goarch(goarch) {
                let Some(binary) = require(matrix_binary(version, goarch, variant, "parked"))
                else {
                    continue;
                };
                problems.extend(check(&binary));
                checked += 1;
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("{checked} binaries checked");
}

#[test]
fn blocked_needs_a_process() {
    if !require_root() {
        return;
    }
    let out = gotrace(["goroutines", "--blocked", "/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(user_error_problems(&out), Vec::<String>::new());
}
