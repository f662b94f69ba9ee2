//! `gotrace args` against real Go processes (issue 4). The oracle is the target itself:
//! `examples/go-targets/argstarget` prints its own record of every call's arguments and results
//! (`REC {...}` lines); gotrace's JSON events must equal those records for every call, on
//! register-ABI amd64 builds and on 386 stack-ABI builds. The tests in this file run one at a
//! time (they share the kernel's uprobe state and the machine's two cores).

mod common;

use common::gotrace::{gotrace, user_error_problems};
use common::serial::serial;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::traced::gotrace_json;
use common::{require, require_root};
use serde_json::{json, Value};

/// The Go 1.24 amd64 argstarget and this file's lock, for a BPF test (None: skip, by the
/// prerequisite rule for root and the binary).
fn argstarget_go1_24() -> Option<(GoBinary, std::sync::MutexGuard<'static, ()>)> {
    if !require_root() {
        return None;
    }
    let binary = require(matrix_binary(
        "1.24.11",
        "amd64",
        Variant::Plain,
        "argstarget",
    ))?;
    Some((binary, serial()))
}

/// Every function of argstarget that gotrace traces.
const FUNCTIONS: &[&str] = &[
    "main.ints",
    "main.bools",
    "main.strs",
    "main.pointer",
    "main.divmod",
    "main.mayFail",
    "main.withFloat",
    "main.point",
    "main.rect",
    "main.big",
    "main.makeBig",
    "main.array",
    "main.Point.Sum",
    "main.(*Point).Move",
    "main.bytesArg",
    "main.area",
    "main.nils",
    "main.ints64",
    "main.describe",
    "main.inGoroutine",
];

/// The --strsize the tests use (argstarget passes a 120-byte string).
const STRSIZE: usize = 64;

/// What one gotrace run printed.
struct Run {
    /// The target's own records, in call order.
    records: Vec<Value>,
    /// gotrace's call/return events, in order.
    events: Vec<Value>,
    summary: Value,
}

impl Run {
    /// gotrace's events of one type ("call" or "return"), in order.
    fn events_of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["type"] == kind).collect()
    }
}

/// Functions of argstarget traced in its stripped build, by the signatures a user writes.
const SIGNATURES: &[&str] = &[
    "main.ints(a int8, b int16, c int32, d int64, e uint8, f uint16, g uint32, h uint64, i int, j uint, k uintptr) int64",
    "main.bools(a, b bool) bool",
    "main.strs(s, t string) (n int, joined string)",
    "main.pointer(p *int) *int",
    "main.divmod(a, b int) (q, r int)",
    "main.withFloat(x float64, n int) int",
    "main.bytesArg(b []byte) int",
    "main.ints64(v []int64, flags []bool) int",
    "main.inGoroutine(id int) int",
];

/// Runs the target under `gotrace args --json` with `functions` (and `extra` options); only
/// the records of traced functions are kept.
fn trace(binary: &GoBinary, functions: &[&str], extra: &[&str], rounds: u32) -> Run {
    let path = binary.path.to_str().expect("utf-8 path");
    let strsize = STRSIZE.to_string();
    let rounds = rounds.to_string();
    let mut args = vec!["args", "--json", "--strsize", &strsize];
    args.extend_from_slice(extra);
    args.extend_from_slice(functions);
    let traced: Vec<&str> = functions
        .iter()
        .map(|f| match f.split_once('(') {
            // A written signature (method names have no spaces).
            Some((name, _)) if f.contains(' ') => name,
            _ => *f,
        })
        .collect();
    args.extend_from_slice(&["--", path, "-rounds", &rounds]);
    let output = gotrace(&args);
    assert!(
        output.status.success(),
        "{binary}: gotrace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut run = Run {
        records: Vec::new(),
        events: Vec::new(),
        summary: Value::Null,
    };
    for line in stdout.lines() {
        if let Some(record) = line.strip_prefix("REC ") {
            let record: Value = serde_json::from_str(record).expect("target record");
            if traced.iter().any(|f| record["function"] == *f) {
                run.records.push(record);
            }
        }
    }
    for event in gotrace_json(stdout.lines()) {
        {
            if event["type"] == "summary" {
                run.summary = event;
            } else {
                run.events.push(event);
            }
        }
    }
    run
}

/// Slice elements gotrace prints at most.
const SLICE_ELEMS: usize = 16;

/// What gotrace must print for a value the target recorded as `own` for a `type_name`, and
/// the extra keys it must carry (`truncated`, `len`, `cap`).
fn expected(
    own: &Value,
    type_name: &str,
    register_abi: bool,
) -> (Value, Vec<(&'static str, Value)>) {
    if type_name.starts_with("float") && register_abi {
        return (Value::Null, Vec::new());
    }
    if let Some(elems) = own.get("slice") {
        // The target records a slice as its first 16 elements with len and cap.
        let len = own["len"].as_u64().unwrap_or(0);
        let shown = if elems.is_null() {
            json!([])
        } else {
            elems.clone()
        };
        return (
            shown,
            vec![
                ("len", own["len"].clone()),
                ("cap", own["cap"].clone()),
                ("truncated", json!(len > SLICE_ELEMS as u64)),
            ],
        );
    }
    if let Some(pointee) = own.get("pointee") {
        return (own["ptr"].clone(), vec![("pointee", pointee.clone())]);
    }
    let bytes = match own {
        Value::String(s) if matches!(type_name, "string" | "[]uint8" | "[]byte") => {
            Some(s.as_bytes().to_vec())
        }
        Value::Object(o) if o.contains_key("hex") => Some(unhex(o["hex"].as_str().unwrap_or(""))),
        _ => None,
    };
    match bytes {
        Some(bytes) => {
            let cut = &bytes[..bytes.len().min(STRSIZE)];
            // The exact bytes go with the text whenever they are not UTF-8.
            let hex = match std::str::from_utf8(cut) {
                Ok(_) => Value::Null,
                Err(_) => json!(cut.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            };
            (
                json!(String::from_utf8_lossy(cut)),
                vec![("truncated", json!(bytes.len() > STRSIZE)), ("hex", hex)],
            )
        }
        // Nil (null in the record) is null without a reason.
        None if own.is_null() => (Value::Null, vec![("reason", Value::Null)]),
        None => (own.clone(), Vec::new()),
    }
}

/// The bytes of a lowercase hex string.
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Compares gotrace's values (args or results of one event) with the target's record.
fn compare_values(
    what: &str,
    ours: &Value,
    own: &Value,
    register_abi: bool,
    problems: &mut Vec<String>,
) {
    let (Some(ours), Some(own)) = (ours.as_array(), own.as_array()) else {
        problems.push(format!("{what}: not lists: gotrace {ours}, target {own}"));
        return;
    };
    if ours.len() != own.len() {
        problems.push(format!(
            "{what}: gotrace has {} values, target {}",
            ours.len(),
            own.len()
        ));
        return;
    }
    for (value, own) in ours.iter().zip(own) {
        let type_name = value["type"].as_str().unwrap_or("");
        let (mut want, keys) = expected(own, type_name, register_abi);
        // docs/json.md: an integer beyond ±(2^53 - 1) is written as its decimal digits.
        if want
            .as_i64()
            .map_or(want.is_u64(), |v| v.unsigned_abs() > (1 << 53) - 1)
        {
            want = json!(want.to_string());
        }
        if value["value"] != want {
            problems.push(format!("{what}: {value} but the target recorded {own}"));
        }
        for (key, want) in keys {
            if value[key] != want {
                problems.push(format!("{what}: {value}: {key} should be {want}"));
            }
        }
        if want.is_null() && !own.is_null() && !value["reason"].is_string() {
            problems.push(format!("{what}: {value}: null without a reason"));
        }
    }
}

/// Traces argstarget built by `version` for `goarch` and checks every call.
fn check_matrix_binary(version: &'static str, goarch: &'static str) {
    check_variant(version, goarch, Variant::Plain);
}

/// Traces one build of argstarget and checks every call against the target's record: every
/// function with `--global main.counter`, or for stripped builds the functions of
/// [`SIGNATURES`] by their written signatures.
fn check_variant(version: &'static str, goarch: &'static str, variant: Variant) {
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary(version, goarch, variant, "argstarget")) else {
        return;
    };
    let _serial = serial();
    let register_abi = goarch == "amd64";
    let rounds = 3;
    let stripped = variant == Variant::Stripped;
    let run = if stripped {
        trace(&binary, SIGNATURES, &[], rounds)
    } else {
        trace(
            &binary,
            FUNCTIONS,
            &[
                "--global",
                "main.counter",
                "--global",
                "runtime.buildVersion",
            ],
            rounds,
        )
    };
    assert!(
        !run.records.is_empty(),
        "{binary}: the target printed no records"
    );
    let (calls, returns) = (run.events_of("call"), run.events_of("return"));
    let mut problems = Vec::new();
    if calls.len() != run.records.len() || returns.len() != run.records.len() {
        problems.push(format!(
            "{} records but {} call and {} return events",
            run.records.len(),
            calls.len(),
            returns.len()
        ));
    }
    for (i, ((record, call), ret)) in run.records.iter().zip(&calls).zip(&returns).enumerate() {
        let function = &record["function"];
        if &call["function"] != function || &ret["function"] != function {
            problems.push(format!(
                "call {i}: target called {function}, gotrace saw {} / {}",
                call["function"], ret["function"]
            ));
            continue;
        }
        compare_values(
            &format!("call {i} {function} args"),
            &call["args"],
            &record["args"],
            register_abi,
            &mut problems,
        );
        compare_values(
            &format!("call {i} {function} results"),
            &ret["results"],
            &record["results"],
            register_abi,
            &mut problems,
        );
        // main.counter as the target counted it; runtime.buildVersion (a string global) is
        // the version of the toolchain that built the target.
        let counter = json!({"name": "main.counter", "value": record["counter"]});
        let build_version = call["globals"][1]["value"].as_str().unwrap_or("");
        if !stripped
            && (call["globals"][0] != counter
                || !build_version.starts_with(&format!("go{version}")))
        {
            problems.push(format!(
                "call {i}: globals {} but main.counter was {} and the toolchain go{version}",
                call["globals"], record["counter"]
            ));
        }
        if !record["goid"].is_null() && call["goid"] != record["goid"] {
            problems.push(format!(
                "call {i}: goid {} but the target ran in goroutine {}",
                call["goid"], record["goid"]
            ));
        }
        if call["goid"] != ret["goid"] || !ret["duration_ns"].is_u64() {
            problems.push(format!("call {i}: goid or duration wrong: {call} / {ret}"));
        }
    }
    let want_summary = json!({"type": "summary", "events": 2 * run.records.len(), "lost": 0, "malformed": 0, "unmatched": 0,
                              "in_flight_at_start": 0, "in_flight_at_end": 0});
    // The instant entries stopped counting (docs/json.md) is checked by tests/edges.rs.
    let mut summary = run.summary.clone();
    for edge in ["ts_ns", "time"] {
        summary.as_object_mut().and_then(|s| s.remove(edge));
    }
    if summary != want_summary {
        problems.push(format!("summary {} (want {want_summary})", run.summary));
    }
    assert!(
        problems.is_empty(),
        "{binary}: {} of {} calls differ from the target's record:\n{}",
        problems.len(),
        run.records.len(),
        problems.join("\n")
    );
    eprintln!(
        "{binary}: {} calls equal the target's record",
        run.records.len()
    );
}

#[test]
fn register_abi_go1_19_amd64() {
    check_matrix_binary("1.19", "amd64");
}

#[test]
fn register_abi_go1_24_amd64() {
    check_matrix_binary("1.24.11", "amd64");
}

#[test]
fn stack_abi_go1_19_386() {
    check_matrix_binary("1.19", "386");
}

#[test]
fn stack_abi_go1_24_386() {
    check_matrix_binary("1.24.11", "386");
}

#[test]
fn register_abi_go1_27_amd64() {
    check_matrix_binary("1.27.3", "amd64");
}

#[test]
fn pie_go1_24_amd64() {
    check_variant("1.24.11", "amd64", Variant::Pie);
}

#[test]
fn stripped_with_written_signatures_go1_24_amd64() {
    check_variant("1.24.11", "amd64", Variant::Stripped);
}

#[test]
fn stripped_with_written_signatures_go1_19_386() {
    check_variant("1.19", "386", Variant::Stripped);
}

/// `--no-ret` probes entries only; `--max-events` stops after that many events.
#[test]
fn no_ret_and_max_events() {
    let Some((binary, _serial)) = argstarget_go1_24() else {
        return;
    };
    let run = trace(
        &binary,
        &["main.strs"],
        &["--no-ret", "--max-events", "5"],
        3,
    );
    let kinds: Vec<&Value> = run.events.iter().map(|e| &e["type"]).collect();
    assert_eq!(kinds, vec!["call"; 5], "{binary}: events {:?}", run.events);
    assert_eq!(run.summary["events"], 5, "{binary}: {}", run.summary);
    for (event, record) in run.events.iter().zip(&run.records) {
        let mut problems = Vec::new();
        compare_values(
            "main.strs",
            &event["args"],
            &record["args"],
            true,
            &mut problems,
        );
        assert!(problems.is_empty(), "{binary}: {problems:?}");
    }
}

/// On a stripped binary, a struct type a signature cannot lay out, `--global` (no symbol
/// table) and unknown names are one-line user errors.
#[test]
fn user_errors() {
    let Some(stripped) = require(matrix_binary(
        "1.24.11",
        "amd64",
        Variant::Stripped,
        "argstarget",
    )) else {
        return;
    };
    let path = stripped.path.to_str().expect("utf-8 path");
    for args in [
        vec!["args", "main.strs(p main.Point)", path],
        vec![
            "args",
            "--global",
            "main.counter",
            "main.strs(s, t string)",
            path,
        ],
        vec!["args", "main.nosuch", path],
    ] {
        let output = gotrace(&args);
        let problems = user_error_problems(&output);
        assert!(problems.is_empty(), "{args:?}: {problems:?}");
    }
}

/// The target's own count of `main.hot` calls (its `HOT_CALLS` line).
fn hot_calls(binary: &GoBinary, ringbuf_kib: &str, calls: &str) -> (u64, Run) {
    let output = gotrace([
        "args",
        "--json",
        "--ringbuf-kib",
        ringbuf_kib,
        "main.hot",
        "--",
        binary.path.to_str().expect("utf-8 path"),
        "-rounds",
        "0",
        "-hot",
        calls,
    ]);
    assert!(
        output.status.success(),
        "{binary}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let own = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HOT_CALLS ")?.parse().ok())
        .expect("target printed HOT_CALLS");
    let mut run = Run {
        records: Vec::new(),
        events: Vec::new(),
        summary: Value::Null,
    };
    for event in gotrace_json(stdout.lines()) {
        if event["type"] == "summary" {
            run.summary = event;
        } else {
            run.events.push(event);
        }
    }
    (own, run)
}

/// Every probe hit is either printed or counted as lost: with a ring buffer far too small for
/// the call rate, `events + lost` still equals the target's own count of calls (entry and
/// return each); with the default ring buffer nothing is lost.
#[test]
fn loss_is_counted_never_silent() {
    let Some((binary, _serial)) = argstarget_go1_24() else {
        return;
    };
    for (ring, must_lose) in [("16", true), ("32768", false)] {
        let (own, run) = hot_calls(&binary, ring, "20000");
        let lost = run.summary["lost"].as_u64().expect("lost");
        let events = run.summary["events"].as_u64().expect("events");
        assert_eq!(
            events,
            run.events.len() as u64,
            "{binary}: summary {}",
            run.summary
        );
        assert_eq!(
            events + lost,
            2 * own,
            "{binary} ring {ring} KiB: {}",
            run.summary
        );
        assert_eq!(run.summary["unmatched"], 0, "{binary}: {}", run.summary);
        assert_eq!(
            lost > 0,
            must_lose,
            "{binary} ring {ring} KiB: {}",
            run.summary
        );
        eprintln!("{binary}: ring {ring} KiB: {own} calls, {events} events, {lost} lost");
    }
}

/// `--stack` frames equal the target's own `runtime.Callers` (its `STACK` lines) on every call.
fn check_stack(version: &'static str, variant: Variant) {
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary(version, "amd64", variant, "argstarget")) else {
        return;
    };
    let _serial = serial();
    let output = gotrace([
        "args",
        "--json",
        "--stack",
        "main.stackLeaf",
        "--",
        binary.path.to_str().expect("utf-8 path"),
        "-rounds",
        "4",
    ]);
    assert!(
        output.status.success(),
        "{binary}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let own: Vec<Value> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("STACK "))
        .map(|l| serde_json::from_str(l).expect("STACK record"))
        .collect();
    let calls: Vec<Value> = gotrace_json(stdout.lines())
        .into_iter()
        .filter(|e| e["type"] == "call")
        .collect();
    assert_eq!(own.len(), 4, "{binary}: target printed {own:?}");
    assert_eq!(calls.len(), own.len(), "{binary}: calls {calls:?}");
    for (call, own) in calls.iter().zip(&own) {
        assert_eq!(
            call["stack"], own["stack"],
            "{binary}: gotrace {call}\ntarget {own}"
        );
    }
    eprintln!("{binary}: {} stacks equal runtime.Callers", own.len());
}

#[test]
fn stack_equals_runtime_callers_go1_19() {
    check_stack("1.19", Variant::Plain);
}

#[test]
fn stack_equals_runtime_callers_go1_27() {
    check_stack("1.27.3", Variant::Plain);
}

#[test]
fn stack_equals_runtime_callers_go1_24_pie() {
    check_stack("1.24.11", Variant::Pie);
}

/// Stripped, without a signature: the function is traced (its arguments are not read) and
/// its stacks come from the pclntab alone.
#[test]
fn stack_equals_runtime_callers_go1_27_stripped() {
    check_stack("1.27.3", Variant::Stripped);
}

/// A call that panics never reaches a RET: it is counted as unmatched, the others return.
#[test]
fn panicking_calls_are_unmatched() {
    let Some((binary, _serial)) = argstarget_go1_24() else {
        return;
    };
    let run = trace(&binary, &["main.mayPanic"], &[], 3);
    let (calls, returns) = (run.events_of("call"), run.events_of("return"));
    let returned: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| !r["results"].is_null())
        .collect();
    let panicked = run.records.len() - returned.len();
    assert!(panicked > 0, "{binary}: the target recorded no panic");
    assert_eq!(calls.len(), run.records.len(), "{binary}");
    for (call, record) in calls.iter().zip(&run.records) {
        assert_eq!(
            call["args"][0]["value"], record["args"][0],
            "{binary}: {call}"
        );
    }
    assert_eq!(returns.len(), returned.len(), "{binary}");
    for (ret, record) in returns.iter().zip(&returned) {
        assert_eq!(
            ret["results"][0]["value"], record["results"][0],
            "{binary}: {ret}"
        );
    }
    assert_eq!(
        run.summary["unmatched"], panicked,
        "{binary}: {}",
        run.summary
    );
    assert_eq!(run.summary["lost"], 0, "{binary}: {}", run.summary);
}

/// Real old Go binaries (esbuild from npm: Go 1.14-1.17, amd64 stack and register ABI, 386):
/// `syscall.Getenv` must show the GODEBUG value gotrace's test put in the environment. The
/// binaries without DWARF are traced with the signature a user would write.
#[test]
fn esbuild_getenv_matches_the_environment() {
    use common::targets::{esbuild_binary, ESBUILD_RELEASES};
    if !require_root() {
        return;
    }
    let _serial = serial();
    const GODEBUG: &str = "madvdontneed=1";
    for &(package, version, ..) in ESBUILD_RELEASES {
        let Some(binary) = require(esbuild_binary(package, version)) else {
            continue;
        };
        let function = if binary.has_symbols {
            "syscall.Getenv"
        } else {
            "syscall.Getenv(key string) (value string, found bool)"
        };
        let output = std::process::Command::new(common::gotrace::GOTRACE)
            .args(["args", "--json", function, "--"])
            .arg(&binary.path)
            .arg("--version")
            .env("GODEBUG", GODEBUG)
            .output()
            .expect("run gotrace");
        assert!(
            output.status.success(),
            "{binary}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let events: Vec<Value> = gotrace_json(String::from_utf8_lossy(&output.stdout).lines());
        let position = events
            .iter()
            .position(|e| e["type"] == "call" && e["args"][0]["value"] == "GODEBUG")
            .unwrap_or_else(|| panic!("{binary}: no call with key GODEBUG in {events:?}"));
        let ret = events[position + 1..]
            .iter()
            .find(|e| e["type"] == "return")
            .unwrap_or_else(|| panic!("{binary}: no return after the GODEBUG call"));
        assert_eq!(ret["results"][0]["value"], GODEBUG, "{binary}: {ret}");
        assert_eq!(ret["results"][1]["value"], true, "{binary}: {ret}");
        assert_eq!(ret["goid"], events[position]["goid"], "{binary}");
        eprintln!("{binary}: syscall.Getenv(\"GODEBUG\") = {GODEBUG:?}, true");
    }
}

/// Traces argstarget in human mode and checks each call line of the functions whose calls the
/// target also prints with Go's fmt (`HUMAN main.f(a=%v, b=%q)`): nil values as `<nil>`,
/// pointers unquoted, a pointer to a struct as `&{W:3 H:-4}`, bytes with `%q` escapes.
fn check_human(version: &'static str, goarch: &'static str) {
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary(version, goarch, Variant::Plain, "argstarget")) else {
        return;
    };
    let _serial = serial();
    let path = binary.path.to_str().expect("utf-8 path");
    let strsize = STRSIZE.to_string();
    let output = gotrace([
        "args",
        "--strsize",
        &strsize,
        "main.pointer",
        "main.area",
        "main.nils",
        "main.bytesArg",
        "--",
        path,
        "-rounds",
        "2",
    ]);
    assert!(
        output.status.success(),
        "{binary}: gotrace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let own: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("HUMAN "))
        .collect();
    let ours: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once(" → ").map(|(_, call)| call))
        .collect();
    assert!(own.len() >= 12, "{binary}: the target printed {own:?}");
    assert_eq!(
        ours, own,
        "{binary}: gotrace's call lines differ from Go's fmt"
    );
    eprintln!("{binary}: {} call lines equal Go's fmt", own.len());
}

#[test]
fn human_values_as_go_prints_them_go1_19_386() {
    check_human("1.19", "386");
}

#[test]
fn human_values_as_go_prints_them_go1_24_amd64() {
    check_human("1.24.11", "amd64");
}

#[test]
fn human_values_as_go_prints_them_go1_27_386() {
    check_human("1.27.3", "386");
}

/// A shape instantiation takes its dictionary before its own parameters, which Go's DWARF
/// left out before 1.27: goshapes runs `go generic[int](6)`, so gotrace must show `v` = 6
/// after `.dict` (not the dictionary's address as `v`), on every matrix toolchain.
#[test]
fn generic_shape_arguments_follow_the_dictionary() {
    if !require_root() {
        return;
    }
    let _guard = serial();
    let mut failures = Vec::new();
    for &version in common::toolchain::MATRIX_GO_VERSIONS {
        for goarch in ["amd64", "386"] {
            let Some(binary) = require(matrix_binary(version, goarch, Variant::Plain, "goshapes"))
            else {
                continue;
            };
            let path = binary.path.to_str().expect("utf-8 path");
            let output = gotrace(["args", "--json", "main.generic*", "--", path]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let calls: Vec<Value> = gotrace_json(stdout.lines())
                .into_iter()
                .filter(|e| e["type"] == "call")
                .collect();
            let names: Vec<&str> = calls
                .iter()
                .flat_map(|c| c["args"].as_array().into_iter().flatten())
                .filter_map(|a| a["name"].as_str())
                .collect();
            let v = calls
                .first()
                .and_then(|c| c["args"].as_array()?.iter().find(|a| a["name"] == "v"))
                .map(|a| a["value"].clone());
            if !output.status.success()
                || calls.len() != 1
                || names != [".dict", "v"]
                || v != Some(json!(6))
            {
                failures.push(format!("{binary}: {calls:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
