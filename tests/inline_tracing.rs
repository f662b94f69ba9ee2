//! `gotrace funclat` sees every call of a function, inlined or not (issue 10). The oracle is
//! the traced program's own record: examples/go-targets/inlined (calls inlined in a loop, a
//! branch, with early returns, mid-stack, in a closure and in generic code, plus an
//! out-of-line copy through a func value) and examples/go-targets/inlinedloops (inlined calls
//! that start with a loop, spin a timed while, and `sync.(*Mutex).Lock` inlined and through a
//! `sync.Locker`). Every matrix toolchain, amd64 and 386, plain, stripped and PIE. The tests of
//! this file run one at a time (they share the kernel's uprobe state and two cores).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::gotrace::gotrace;
use common::require;
use common::serial::bpf_test;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::toolchain::MATRIX_GO_VERSIONS;
use common::traced::{field, own_count, split_output};
use serde_json::Value;

/// Every (GOARCH, variant) the tracing tests run.
const BUILDS: &[(&str, Variant)] = &[
    ("amd64", Variant::Plain),
    ("amd64", Variant::Stripped),
    ("amd64", Variant::Pie),
    ("386", Variant::Plain),
    ("386", Variant::Stripped),
];

/// Every matrix build of `program` (missing ones follow the prerequisite rule).
fn matrix(program: &str) -> Vec<GoBinary> {
    let mut binaries = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        for &(goarch, variant) in BUILDS {
            binaries.extend(require(matrix_binary(version, goarch, variant, program)));
        }
    }
    binaries
}

/// Adds one build's problems (or the error of its run) to `failures`.
fn collect(binary: &GoBinary, result: Result<Vec<String>, String>, failures: &mut Vec<String>) {
    match result {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => failures.push(format!("{binary}: {}", problems.join("; "))),
        Err(e) => failures.push(format!("{binary}: {e}")),
    }
}

/// One `hist` object of funclat's JSON output, with its function's name.
type Hist = (String, Value);

/// `gotrace funclat --json [extra...] PATTERNS... -- BINARY ARGS...`: the target's own lines
/// and gotrace's histograms with their function names (Go 1.19 names two instantiations of a
/// generic function alike).
fn funclat(
    binary: &GoBinary,
    extra: &[&str],
    patterns: &[&str],
    target_args: &[&str],
) -> Result<(Vec<String>, Vec<Hist>), String> {
    let path = binary.path.to_str().expect("utf-8 path");
    let mut args = vec!["funclat", "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(patterns);
    args.push("--");
    args.push(path);
    args.extend_from_slice(target_args);
    let output = gotrace(&args);
    if !output.status.success() {
        return Err(format!(
            "gotrace failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let (own, objects) = split_output(&output.stdout);
    let hists = objects
        .into_iter()
        .filter(|o| o["type"] == "hist")
        .map(|o| (o["function"].as_str().expect("function").to_owned(), o))
        .collect();
    Ok((own, hists))
}

/// The function a record belongs to: generic instantiations count as one
/// (`main.maxOf[go.shape.int]` -> `main.maxOf`), as the target records them.
fn record_name(name: &str) -> &str {
    name.split('[').next().unwrap_or(name)
}

/// One function's `INL {...}` record in examples/go-targets/inlined: how many times it ran
/// and the sum of each argument it saw.
struct InlRecord {
    calls: u64,
    arg_sums: BTreeMap<String, i64>,
}

/// The `INL {...}` records of examples/go-targets/inlined, by function.
fn inl_records(own: &[String]) -> BTreeMap<String, InlRecord> {
    own.iter()
        .filter_map(|l| l.strip_prefix("INL "))
        .map(|json| {
            let record: Value = serde_json::from_str(json).expect("INL record");
            let arg_sums = record["args"]
                .as_object()
                .expect("args")
                .iter()
                .map(|(name, sum)| (name.clone(), sum.as_i64().expect("sum")))
                .collect();
            (
                record["function"].as_str().expect("function").to_owned(),
                InlRecord {
                    calls: record["calls"].as_u64().expect("calls"),
                    arg_sums,
                },
            )
        })
        .collect()
}

#[test]
fn every_inlined_call_is_counted_exactly() {
    let Some(_guard) = bpf_test() else { return };
    let mut failures = Vec::new();
    for binary in matrix("inlined") {
        let result = funclat(&binary, &[], &["main.*"], &["-n", "300"]).map(|(own, hists)| {
            let records = inl_records(&own);
            let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
            let mut problems = Vec::new();
            let mut inlined = 0;
            for (name, hist) in &hists {
                *counted.entry(record_name(name)).or_default() += field(hist, "count");
                inlined += field(hist, "inlined_calls");
                for key in ["unmatched", "lost", "untimed"] {
                    if field(hist, key) != 0 {
                        problems.push(format!("{name}: {key} {}", field(hist, key)));
                    }
                }
            }
            if records.is_empty() {
                problems.push("the target printed no record".to_owned());
            }
            for (func, record) in &records {
                let (calls, got) = (
                    record.calls,
                    counted.get(func.as_str()).copied().unwrap_or(0),
                );
                if got != calls {
                    problems.push(format!("{func}: ran {calls} times, funclat counted {got}"));
                }
            }
            if inlined == 0 {
                problems.push("no call was counted as inlined".to_owned());
            }
            problems
        });
        collect(&binary, result, &mut failures);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn no_inlined_traces_only_the_out_of_line_copy() {
    let Some(_guard) = bpf_test() else { return };
    let mut failures = Vec::new();
    for binary in MATRIX_GO_VERSIONS
        .iter()
        .filter_map(|&v| require(matrix_binary(v, "amd64", Variant::Plain, "inlined")))
    {
        // The target calls add N/10 times through its func value (out of line).
        match funclat(&binary, &["--no-inlined"], &["main.add"], &["-n", "300"]) {
            Ok((_, hists)) => {
                let hist = &hists[0].1;
                let (count, inlined) = (field(hist, "count"), field(hist, "inlined_calls"));
                if count != 30 || inlined != 0 || hists.len() != 1 || hists[0].0 != "main.add" {
                    failures.push(format!(
                        "{binary}: count {count} (30 expected), inlined_calls {inlined}, {} histograms",
                        hists.len()
                    ));
                }
            }
            Err(e) => failures.push(format!("{binary}: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn loops_spins_and_mutex_locks_are_counted_and_timed() {
    let Some(_guard) = bpf_test() else { return };
    let mut failures = Vec::new();
    for binary in matrix("inlinedloops") {
        let patterns = ["main.sum", "main.spin", "sync.(*Mutex).Lock"];
        let stdlib_locks = match funclat(&binary, &[], &["sync.(*Mutex).Lock"], &["0"]) {
            Ok((own, hists)) if own_count(&own, "lock_calls") == 0 && hists.len() == 1 => {
                field(&hists[0].1, "count")
            }
            Ok((own, hists)) => {
                failures.push(format!("{binary}: with 0 iterations: {own:?} {hists:?}"));
                continue;
            }
            Err(e) => {
                failures.push(format!("{binary}: {e}"));
                continue;
            }
        };
        if stdlib_locks > 2 {
            failures.push(format!(
                "{binary}: {stdlib_locks} locks with 0 iterations (the library locks at most once or twice)"
            ));
        }
        let result = funclat(&binary, &[], &patterns, &["1000"]).map(|(own, hists)| {
            let mut problems = Vec::new();
            for (func, key) in [
                ("main.sum", "sum_calls"),
                ("main.spin", "spin_calls"),
                ("sync.(*Mutex).Lock", "lock_calls"),
            ] {
                let Some((_, hist)) = hists.iter().find(|(name, _)| name == func) else {
                    problems.push(format!("no histogram for {func}"));
                    continue;
                };
                let calls = own_count(&own, key);
                // The standard library may lock a mutex of its own (Go 1.24's
                // internal/godebug.update does, once, at start-up): what a run with no
                // iterations counts is the library's, and must be all that is added.
                let library = if func.starts_with("sync.") {
                    stdlib_locks
                } else {
                    0
                };
                if field(hist, "count") != calls + library {
                    problems.push(format!(
                        "{func}: ran {calls} times (+{library} by the library), counted {hist}"
                    ));
                }
                for key in ["unmatched", "lost", "untimed"] {
                    if field(hist, key) != 0 {
                        problems.push(format!("{func}: {key} in {hist}"));
                    }
                }
            }
            // Each spin lasts between the shortest and longest the target timed around it
            // (the traced span is inside the target's; half the shortest leaves room for the
            // target's own clock reads): its buckets must overlap that range.
            let (min, max) = (
                own_count(&own, "spin_min_ns"),
                own_count(&own, "spin_max_ns"),
            );
            let spin = hists.iter().find(|(name, _)| name == "main.spin");
            if let Some(buckets) = spin.and_then(|(_, h)| h["buckets"].as_array()) {
                for bucket in buckets {
                    if field(bucket, "low") > max || field(bucket, "high") < min / 2 {
                        problems.push(format!(
                            "main.spin: bucket {bucket} outside the target's own {min}..{max} ns"
                        ));
                    }
                }
            }
            problems
        });
        collect(&binary, result, &mut failures);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn human_output_says_how_many_calls_were_inlined() {
    let Some(_guard) = bpf_test() else { return };
    let Some(binary) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "inlined")) else {
        return;
    };
    let path = binary.path.to_str().expect("utf-8 path");
    let output = gotrace(["funclat", "main.add", "--", path, "-n", "300"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    // add runs 330 times: 300 inlined in the loop, 30 out of line.
    assert!(
        stdout.contains("count: 330")
            && stdout.contains("inlined: 300 of the calls, 0 of them untimed"),
        "{stdout}"
    );
}

/// What `gotrace args` showed of one function's calls.
#[derive(Default)]
struct ArgsSeen {
    calls: u64,
    inlined: u64,
    /// By argument: the sum of the values read and how many calls left it unread (`?`).
    args: BTreeMap<String, (f64, u64)>,
    /// Why values were left unread.
    reasons: BTreeSet<String>,
}

/// A traced run of `gotrace args`: the target's own lines, what was seen by function, and
/// problems in the events.
type ArgsRun = (Vec<String>, BTreeMap<String, ArgsSeen>, Vec<String>);

/// `gotrace args --json PATTERN -- BINARY ARGS...`: the target's own lines, what
/// the call events showed by function (generic instantiations as one), and the problems
/// found in the events themselves (an unread value without a reason, an inlined event without
/// its parent or call site, anything lost, malformed or unmatched).
fn args_run(binary: &GoBinary, pattern: &str, target_args: &[&str]) -> Result<ArgsRun, String> {
    let path = binary.path.to_str().expect("utf-8 path");
    let mut argv = vec!["args", "--json", pattern, "--", path];
    argv.extend_from_slice(target_args);
    let output = gotrace(&argv);
    if !output.status.success() {
        return Err(format!(
            "gotrace failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let (own, objects) = split_output(&output.stdout);
    let mut seen: BTreeMap<String, ArgsSeen> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut summaries = 0;
    for event in &objects {
        match event["type"].as_str() {
            Some("summary") => {
                summaries += 1;
                for key in ["lost", "malformed", "unmatched"] {
                    if field(event, key) != 0 {
                        problems.push(format!("{key} in {event}"));
                    }
                }
            }
            Some(kind @ ("call" | "return")) => {
                let values = if kind == "call" { "args" } else { "results" };
                for value in event[values].as_array().expect("values") {
                    if value["value"].is_null() && !value["reason"].is_string() {
                        problems.push(format!("a null value without a reason in {event}"));
                    }
                }
                let inlined = event["inlined"] == true;
                if inlined
                    && !(event["inlined_in"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("main."))
                        && event["call_site"]
                            .as_str()
                            .and_then(|site| site.rsplit_once(':'))
                            .is_some_and(|(file, line)| {
                                file.ends_with("main.go") && line.parse::<u32>().is_ok()
                            }))
                {
                    problems.push(format!(
                        "an inlined event without parent or call site: {event}"
                    ));
                }
                if kind == "return" {
                    continue;
                }
                let name = event["function"].as_str().expect("function");
                let entry = seen.entry(record_name(name).to_owned()).or_default();
                entry.calls += 1;
                entry.inlined += u64::from(inlined);
                for value in event["args"].as_array().expect("args") {
                    let arg = value["name"].as_str().expect("name").to_owned();
                    let (sum, unread) = entry.args.entry(arg).or_default();
                    match value["value"].as_f64() {
                        Some(v) => *sum += v,
                        None => {
                            *unread += 1;
                            entry.reasons.insert(value["reason"].to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if summaries != 1 {
        problems.push(format!("{summaries} summaries"));
    }
    Ok((own, seen, problems))
}

#[test]
fn args_of_inlined_calls_equal_the_targets_record() {
    let Some(_guard) = bpf_test() else { return };
    let mut failures = Vec::new();
    let builds = [
        ("amd64", Variant::Plain),
        ("amd64", Variant::Pie),
        ("386", Variant::Plain),
    ];
    for &version in MATRIX_GO_VERSIONS {
        for binary in builds.iter().filter_map(|&(goarch, variant)| {
            require(matrix_binary(version, goarch, variant, "inlined"))
        }) {
            let result =
                args_run(&binary, "main.*", &["-n", "200"]).map(|(own, seen, mut problems)| {
                    let records = inl_records(&own);
                    if records.is_empty() {
                        problems.push("the target printed no record".to_owned());
                    }
                    // (function, argument) pairs of inlined calls whose every value was read.
                    let mut inlined_read = Vec::new();
                    for (func, record) in &records {
                        let Some(got) = seen.get(func) else {
                            problems.push(format!("{func}: no call event"));
                            continue;
                        };
                        if got.calls != record.calls {
                            problems.push(format!(
                                "{func}: ran {} times, {} call events",
                                record.calls, got.calls
                            ));
                            continue;
                        }
                        for (arg, &sum) in &record.arg_sums {
                            match got.args.get(arg) {
                                // Every value is a whole number, a float64 one or an int, whose
                                // sum the target keeps as a float64 and prints truncated.
                                Some(&(read, 0)) if read as i64 == sum => {
                                    if got.inlined > 0 {
                                        inlined_read.push(format!("{func}.{arg}"));
                                    }
                                }
                                Some(&(read, 0)) => problems.push(format!(
                                "{func}: {arg} summed {sum} in the target, {read} in the events"
                            )),
                                Some(_) => {}
                                None => problems.push(format!("{func}: no argument {arg}")),
                            }
                        }
                    }
                    if seen.values().all(|s| s.inlined == 0) {
                        problems.push("no call event says inlined".to_owned());
                    }
                    if inlined_read.is_empty() {
                        problems.push(
                            "no argument of an inlined function was read at every call".to_owned(),
                        );
                    }
                    problems
                });
            collect(&binary, result, &mut failures);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn args_on_a_stripped_binary_say_why_inlined_calls_are_unread() {
    let Some(_guard) = bpf_test() else { return };
    let mut failures = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        for binary in ["amd64", "386"].iter().filter_map(|&goarch| {
            require(matrix_binary(version, goarch, Variant::Stripped, "inlined"))
        }) {
            let result = args_run(&binary, "main.add(a, b int) int", &["-n", "200"]).map(
                |(own, seen, mut problems)| {
                    let calls = inl_records(&own).get("main.add").map_or(0, |r| r.calls);
                    let Some(got) = seen.get("main.add") else {
                        return vec!["no call event of main.add".to_owned()];
                    };
                    // The target adds i for i < 200 inlined in its loop (on every toolchain)
                    // and for i < 20 out of line through its func value: the signature reads
                    // the out-of-line calls (b sums to 190); the inlined ones are `?` with the
                    // reason (no DWARF).
                    let b = got.args.get("b").copied();
                    if calls != 220 || (got.calls, got.inlined, b) != (220, 200, Some((190.0, 200))) {
                        problems.push(format!(
                            "add ran {calls} times; {} call events, {} inlined, b (sum read, unread) {b:?}",
                            got.calls, got.inlined
                        ));
                    }
                    if !got.reasons.iter().all(|r| r.contains("no DWARF")) {
                        problems.push(format!("reasons: {:?}", got.reasons));
                    }
                    problems
                },
            );
            collect(&binary, result, &mut failures);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
