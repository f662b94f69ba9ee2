//! Functions that end in a tail call (issue 9): the compiler's promoted-method wrappers of
//! examples/go-targets/tailcalls have no RET of their own (checked with `go tool objdump`),
//! and `gotrace funclat` pairs their entries with their callee's RETs. The target's own
//! printed counts are the oracle: the wrappers' counts equal them, with none lost or
//! unmatched, whether or not the callee is traced too, and a wrapper's calls contain its
//! callee's calls.

mod common;

use common::gotrace::gotrace;
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

/// Runs funclat on `functions` in a launched tailcalls target: its own lines and the
/// histograms by function name.
fn funclat(binary: &GoBinary, functions: &[&str]) -> (Vec<String>, Vec<(String, Value)>) {
    let mut args = vec!["funclat", "--json"];
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
    let (own, hists) = split_output(&output.stdout);
    let named = hists
        .into_iter()
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

#[test]
fn wrappers_that_tail_call_count_their_own_calls() {
    if !require_root() {
        return;
    }
    for (version, goarch) in BUILDS {
        let Some(binary) = require(matrix_binary(version, goarch, Variant::Plain, "tailcalls"))
        else {
            continue;
        };
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
