//! Functions that end in a tail call (issue 9): the compiler's promoted-method wrappers of
//! examples/go-targets/tailcalls have no RET of their own (checked with `go tool objdump`),
//! and `gotrace funclat` pairs their entries with their callee's RETs. The target's own
//! printed counts are the oracle: the wrappers' counts equal them, with none lost or
//! unmatched, whether or not the callee is traced too, and a wrapper's calls contain its
//! callee's calls. `gotrace args` on wrappers and callees together gives each function a call
//! and a return event per call the target counted, and the wrappers' results (read at their
//! callee's RET) add up to what the target summed. Their arguments, receiver first (which Go
//! 1.21 and earlier leave out of a wrapper's DWARF), are what the target passed.

mod common;

use common::gotrace::gotrace;
use common::oracle::{go_nm_text_symbols, NmSymbol};
use common::targets::{matrix_binary, GoBinary, Variant};
use common::toolchain::toolchain;
use common::traced::{field, own_count, split_output};
use common::{require, require_root};
use serde_json::Value;

/// The two wrappers, their own-count keys, and their callee.
const WRAPPERS: [(&str, &str); 2] = [
    ("main.(*ByValue).Add", "wrapper_by_value"),
    ("main.(*ByPointer).Add", "wrapper_by_pointer"),
];
const CALLEE: &str = "main.(*Inner).Add";
const ROUNDS: &str = "2000";

/// The matrix builds checked: the stack ABI and 386 (Go 1.19) and the register ABI (1.27).
const BUILDS: [(&str, &str); 4] = [
    ("1.19", "amd64"),
    ("1.19", "386"),
    ("1.27.3", "amd64"),
    ("1.27.3", "386"),
];

/// Every matrix build of the target on amd64 and 386, for the wrappers' arguments.
const ALL_BUILDS: [(&str, &str); 8] = [
    ("1.19", "amd64"),
    ("1.19", "386"),
    ("1.21.13", "amd64"),
    ("1.21.13", "386"),
    ("1.24.11", "amd64"),
    ("1.24.11", "386"),
    ("1.27.3", "amd64"),
    ("1.27.3", "386"),
];

/// `go tool objdump` of one function: its instruction lines.
fn objdump(binary: &GoBinary, version: &'static str, function: &str) -> Vec<String> {
    let go = toolchain(version).expect("toolchain of a built matrix binary");
    let symbol = format!("^{}$", regex_escape(function));
    let output = go
        .command()
        .args(["tool", "objdump", "-s", &symbol])
        .arg(&binary.path)
        .output()
        .expect("run go tool objdump");
    assert!(output.status.success(), "objdump {function} of {binary}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// `s` with the regexp metacharacters of Go function names escaped.
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escape = matches!(c, '.' | '(' | ')' | '*' | '[' | ']');
            escape.then_some('\\').into_iter().chain(Some(c))
        })
        .collect()
}

/// Runs `gotrace <command> --json` on `functions` in a launched tailcalls target: its own
/// lines and gotrace's JSON objects.
fn traced(command: &str, binary: &GoBinary, functions: &[&str]) -> (Vec<String>, Vec<Value>) {
    let mut args = vec![command, "--json"];
    args.extend_from_slice(functions);
    args.extend_from_slice(&[
        "--",
        binary.path.to_str().expect("utf-8 path"),
        "-n",
        ROUNDS,
    ]);
    let output = gotrace(&args);
    assert!(
        output.status.success(),
        "{binary}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    split_output(&output.stdout)
}

/// Runs funclat on `functions` in a launched tailcalls target: its own lines and the
/// histograms by function name.
fn funclat(binary: &GoBinary, functions: &[&str]) -> (Vec<String>, Vec<(String, Value)>) {
    let (own, hists) = traced("funclat", binary, functions);
    let named = hists
        .into_iter()
        .filter(|h| h["type"] == "hist")
        .map(|h| (h["function"].as_str().expect("function").to_owned(), h))
        .collect();
    (own, named)
}

/// The histogram of `function`, checked to have lost and unmatched nothing.
fn hist<'a>(binary: &GoBinary, hists: &'a [(String, Value)], function: &str) -> &'a Value {
    let (_, h) = hists
        .iter()
        .find(|(name, _)| name == function)
        .unwrap_or_else(|| panic!("{binary}: no histogram for {function}: {hists:?}"));
    assert_eq!(
        (field(h, "lost"), field(h, "unmatched")),
        (0, 0),
        "{binary}: {function}: {h}"
    );
    h
}

/// The tailcalls target of each of [`BUILDS`] (none when not root), with its Go version.
fn targets() -> Vec<(&'static str, GoBinary)> {
    targets_of(&BUILDS)
}

/// The tailcalls target of each of `builds` (none when not root), with its Go version.
fn targets_of(builds: &[(&'static str, &'static str)]) -> Vec<(&'static str, GoBinary)> {
    if !require_root() {
        return Vec::new();
    }
    builds
        .iter()
        .filter_map(|&(version, goarch)| {
            let binary = matrix_binary(version, goarch, Variant::Plain, "tailcalls");
            Some((version, require(binary)?))
        })
        .collect()
}

#[test]
fn wrappers_that_tail_call_count_their_own_calls() {
    for (version, binary) in targets() {
        // The oracle's view: no RET of their own, a JMP to the callee (skipped before).
        for (wrapper, _) in WRAPPERS {
            let code = objdump(&binary, version, wrapper);
            assert!(!code.is_empty(), "{binary}: objdump found no {wrapper}");
            assert!(
                !code.iter().any(|l| l.contains("\tRET")),
                "{binary}: {wrapper} has a RET: {code:#?}"
            );
            assert!(
                code.iter()
                    .any(|l| l.contains(&format!("JMP {CALLEE}(SB)"))),
                "{binary}: {wrapper} does not tail-call {CALLEE}: {code:#?}"
            );
        }

        // The wrappers alone, then with their callee traced as well.
        let names: Vec<&str> = WRAPPERS.iter().map(|(name, _)| *name).collect();
        let (own, hists) = funclat(&binary, &names);
        for (wrapper, key) in WRAPPERS {
            let h = hist(&binary, &hists, wrapper);
            assert_eq!(field(h, "count"), own_count(&own, key), "{binary}: {h}");
        }

        let with_callee = [names[0], names[1], CALLEE];
        let (own, hists) = funclat(&binary, &with_callee);
        let mut wrapper_ns = 0;
        for (wrapper, key) in WRAPPERS {
            let h = hist(&binary, &hists, wrapper);
            assert_eq!(field(h, "count"), own_count(&own, key), "{binary}: {h}");
            wrapper_ns += field(h, "total_ns");
        }
        let callee = hist(&binary, &hists, CALLEE);
        assert_eq!(
            field(callee, "count"),
            own_count(&own, "inner_add"),
            "{binary}: {callee}"
        );
        // Every callee call runs inside one wrapper call (inner_add is the wrappers' sum):
        // the wrappers' entries come first and their completions at the same RET.
        assert!(
            wrapper_ns >= field(callee, "total_ns"),
            "{binary}: wrappers' total {wrapper_ns} ns is less than their callee's: {callee}"
        );
    }
}

/// `funclat --breakdown` on the wrappers, their callee and `jump`: a tail caller and its tail
/// callee share a frame key and are open at once, and each call's time is attributed: one
/// breakdown record per function with as many calls as the target counted, and no time left
/// unattributed (one goroutine, far from --max-followed). Before each call kept its own start,
/// a tail caller's whole time was unattributed.
#[test]
fn breakdown_attributes_tail_callers_and_callees() {
    for (_, binary) in targets() {
        let functions = [
            "--breakdown",
            WRAPPERS[0].0,
            WRAPPERS[1].0,
            CALLEE,
            "main.jump",
        ];
        let (own, json) = traced("funclat", &binary, &functions);
        for (function, key) in [
            (WRAPPERS[0].0, WRAPPERS[0].1),
            (WRAPPERS[1].0, WRAPPERS[1].1),
            (CALLEE, "inner_add"),
            ("main.jump", "jump"),
        ] {
            let record = json
                .iter()
                .find(|r| r["type"] == "breakdown" && r["function"] == function)
                .unwrap_or_else(|| panic!("{binary}: no breakdown of {function}: {json:?}"));
            assert_eq!(
                field(record, "calls"),
                own_count(&own, key),
                "{binary}: {record}"
            );
            assert_eq!(
                field(&record["breakdown"], "unattributed_ns"),
                0,
                "{binary}: {function}'s time unattributed: {record}"
            );
            assert!(field(record, "duration_ns") > 0, "{binary}: {record}");
        }
    }
}

/// Every traced pair of a tail caller and its tail callee in the target, with the target's
/// own count keys: the two wrappers and their callee, the assembly `jump` and its target.
const ARGS_FUNCTIONS: [(&str, &str); 5] = [
    (WRAPPERS[0].0, WRAPPERS[0].1),
    (WRAPPERS[1].0, WRAPPERS[1].1),
    (CALLEE, "inner_add"),
    ("main.jump", "jump"),
    ("main.leaf", "leaf"),
];

/// The events of `function` of type `kind` ("call" or "return").
fn of<'a>(events: &'a [Value], kind: &str, function: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["function"] == function)
        .collect()
}

/// The sum of the single int64 result of each return event.
fn results_sum(binary: &GoBinary, returns: &[&Value]) -> i64 {
    returns
        .iter()
        .map(|r| {
            r["results"][0]["value"]
                .as_i64()
                .unwrap_or_else(|| panic!("{binary}: no int64 result in {r}"))
        })
        .fold(0i64, i64::wrapping_add)
}

#[test]
fn args_pairs_wrappers_with_their_traced_callees() {
    for (_, binary) in targets() {
        let symbols = go_nm_text_symbols(&binary.path).expect("go tool nm");
        // Wrappers and callees together, then the wrappers alone.
        for traced_functions in [&ARGS_FUNCTIONS[..], &ARGS_FUNCTIONS[..2]] {
            check_args(&binary, &symbols, traced_functions);
        }
    }
}

/// One `gotrace args` run on `functions` (with their own-count keys): a call and a paired
/// return event per call the target counted, nothing lost, malformed or unmatched, and the
/// wrappers' results adding up to the target's sum.
fn check_args(binary: &GoBinary, symbols: &[NmSymbol], functions: &[(&str, &str)]) {
    let names: Vec<&str> = functions.iter().map(|(name, _)| *name).collect();
    let (own, objects) = traced("args", binary, &names);
    let (summary, events) = objects.split_last().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{binary}: last line {summary}");
    assert_eq!(
        (
            field(summary, "events"),
            field(summary, "lost"),
            field(summary, "malformed"),
            field(summary, "unmatched")
        ),
        (events.len() as u64, 0, 0, 0),
        "{binary} {names:?}: {summary}"
    );
    let mut total_ns = Vec::new();
    for &(function, key) in functions {
        let (calls, returns) = (of(events, "call", function), of(events, "return", function));
        // A Go function called from assembly (leaf, from jump) has an ABI0 wrapper of the
        // same pclntab name on amd64 (`<name>.abi0` to nm), entered once per call too.
        let abi0 = format!("{function}.abi0");
        let copies = symbols
            .iter()
            .filter(|s| s.name == function || s.name == abi0)
            .count() as u64;
        let count = own_count(&own, key) * copies;
        assert_eq!(
            (calls.len() as u64, returns.len() as u64),
            (count, count),
            "{binary} {names:?}: {function} calls and returns, the target counted {count} ({copies} copies)"
        );
        let ns: u64 = returns
            .iter()
            .map(|r| {
                r["duration_ns"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{binary}: unpaired return {r}"))
            })
            .sum();
        total_ns.push(ns);
    }
    // Every callee call runs inside its wrapper's call, which ends at the same RET.
    if names.contains(&CALLEE) {
        assert!(
            total_ns[0] + total_ns[1] >= total_ns[2],
            "{binary}: the wrappers' total is less than their callee's: {total_ns:?} ns"
        );
    }
    // The target sums every result: the wrappers' (read at (*Inner).Add's RET) and jump's,
    // which are leaf's (2i+1 in round i: n*n in all).
    let rounds: i64 = ROUNDS.parse().expect("rounds");
    let wrappers: Vec<&Value> = WRAPPERS
        .iter()
        .flat_map(|(name, _)| of(events, "return", name))
        .collect();
    assert_eq!(
        results_sum(binary, &wrappers).wrapping_add(rounds * rounds),
        own_count(&own, "sink") as i64,
        "{binary} {names:?}: the wrappers' results do not add up to the target's sum"
    );
}

/// What a wrapper's receiver must be, by the target's own record.
enum ReceiverCheck {
    /// The pointer the target printed under this key.
    Address(&'static str),
    /// A pointer (to a copy the target does not print).
    AnyPointer,
    /// `*Inner` at the address under `scaled_addr`, pointing at total 7 (its initial value).
    ScaledInner,
    /// The ByValue value whose tag and total the target printed.
    ScaledValue,
}

/// Each wrapper whose arguments are checked: its name, its receiver's type and check, its
/// argument's name, and the target's keys for its calls and the sum of that argument.
const ARGUMENT_CHECKS: [(&str, &str, ReceiverCheck, &str, &str, &str); 5] = [
    (
        "main.(*ByValue).Add",
        "*main.ByValue",
        ReceiverCheck::Address("by_value_addr"),
        "d",
        "wrapper_by_value",
        "by_value_d",
    ),
    (
        "main.(*ByPointer).Add",
        "*main.ByPointer",
        ReceiverCheck::Address("by_pointer_addr"),
        "d",
        "wrapper_by_pointer",
        "by_pointer_d",
    ),
    (
        "main.(*ByValue).Scale",
        "*main.ByValue",
        ReceiverCheck::AnyPointer,
        "k",
        "scale_by_value",
        "scale_by_value_k",
    ),
    (
        "main.(*Inner).Scale",
        "*main.Inner",
        ReceiverCheck::ScaledInner,
        "k",
        "scale_by_pointer",
        "scale_by_pointer_k",
    ),
    (
        "main.ByValue.Scale",
        "main.ByValue",
        ReceiverCheck::ScaledValue,
        "k",
        "scale_value_recv",
        "scale_value_recv_k",
    ),
];

/// The value the target printed under `key` (`key value`).
fn own_text<'a>(own: &'a [String], key: &str) -> &'a str {
    own.iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("target printed no {key:?} line; it printed {own:?}"))
}

/// A hex pointer as printed (`0x...`).
fn hex(text: &str) -> u64 {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u64::from_str_radix(digits, 16).unwrap_or_else(|_| panic!("{text:?} is not a hex pointer"))
}

#[test]
fn args_reads_wrappers_arguments_as_the_target_passed() {
    for (_, binary) in targets_of(&ALL_BUILDS) {
        let names: Vec<&str> = ARGUMENT_CHECKS.iter().map(|c| c.0).collect();
        let (own, objects) = traced("args", &binary, &names);
        let (summary, events) = objects.split_last().expect("a summary line");
        assert_eq!(
            (field(summary, "lost"), field(summary, "malformed")),
            (0, 0),
            "{binary}: {summary}"
        );
        for (function, receiver_type, check, arg, count_key, sum_key) in &ARGUMENT_CHECKS {
            let calls = of(events, "call", function);
            assert_eq!(
                calls.len() as u64,
                own_count(&own, count_key),
                "{binary}: calls of {function}"
            );
            let mut sum = 0i64;
            for call in calls {
                let args = call["args"].as_array().expect("args");
                assert_eq!(args.len(), 2, "{binary}: {call}");
                let (receiver, value) = (&args[0], &args[1]);
                assert_eq!(receiver["type"], *receiver_type, "{binary}: {call}");
                assert_eq!(value["name"], *arg, "{binary}: {call}");
                check_receiver(&binary, &own, check, receiver);
                sum += value["value"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("{binary}: {arg} unread in {call}"));
            }
            assert_eq!(
                sum,
                own_count(&own, sum_key) as i64,
                "{binary}: the {arg}s {function} was passed"
            );
        }
    }
}

/// Checks one receiver value against the target's record.
fn check_receiver(binary: &GoBinary, own: &[String], check: &ReceiverCheck, receiver: &Value) {
    let pointer = || {
        hex(receiver["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{binary}: receiver {receiver} is not a pointer")))
    };
    match check {
        ReceiverCheck::Address(key) => {
            assert_eq!(pointer(), hex(own_text(own, key)), "{binary}: {receiver}")
        }
        ReceiverCheck::AnyPointer => assert_ne!(pointer(), 0, "{binary}: {receiver}"),
        ReceiverCheck::ScaledInner => {
            assert_eq!(
                pointer(),
                hex(own_text(own, "scaled_addr")),
                "{binary}: {receiver}"
            );
            assert_eq!(receiver["pointee"]["total"], 7, "{binary}: {receiver}");
        }
        ReceiverCheck::ScaledValue => {
            let value = &receiver["value"];
            assert_eq!(
                (value["tag"].as_str(), value["Inner"]["total"].as_u64()),
                (
                    Some(own_text(own, "scaled_tag")),
                    Some(own_count(own, "scaled_total"))
                ),
                "{binary}: {receiver}"
            );
        }
    }
}
