//! Field paths (issue 25, docs/design.md §19) on a real net/http server
//! (examples/go-targets/httpserver: its own client, sending a fixed list of requests one at a
//! time, its handler printing `served "METHOD" "PATH" "HOST"` for each request it served). The
//! server's log is the oracle: `args --field r.Method --field r.URL.Path --field r.Host` on
//! main.handle gives the same requests, call for call, in order; `args --where` shows exactly
//! the logged requests that satisfy it (and counts the others); `funclat --by r.URL.Path`
//! counts as many calls per path as the log has; without `--field`, `r` is shown as its
//! struct, `r.URL` as its own. On stripped builds, with the handler's signature written, the
//! fields (`args`, `graph --args`) and `funclat --by` keys equal the log too. Go 1.19 and 1.27 (amd64), Go 1.19 386.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::gotrace::{gotrace, user_error_problems, GOTRACE};
use common::serial::bpf_test;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::traced::{field, gotrace_json};
use common::{require, require_root};

/// The builds the oracle runs on.
const BUILDS: &[(&str, &str)] = &[("1.19", "amd64"), ("1.27.3", "amd64"), ("1.19", "386")];

/// A served request as the server logged it: (method, path, host).
type Served = (String, String, String);

/// The server's own log: one entry per `served` line, in order.
fn served(stdout: &[u8]) -> Vec<Served> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("served ")?;
            let quoted: Vec<String> = rest
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            let [method, path, host] = <[String; 3]>::try_from(quoted).ok()?;
            Some((method, path, host))
        })
        .collect()
}

/// Runs `gotrace ARGS -o FILE -- httpserver -rounds 3`; the server's log and gotrace's JSON.
fn traced(binary: &GoBinary, args: &[&str], scratch: &Path) -> (Vec<Served>, Vec<Value>) {
    let out_path = scratch.join("gotrace.json");
    let out = Command::new(GOTRACE)
        .args(args)
        .args(["--json", "-o"])
        .arg(&out_path)
        .arg("--")
        .arg(&binary.path)
        .args(["-rounds", "3", "-sleep", "1ms"])
        .output()
        .expect("gotrace runs");
    assert!(
        out.status.success(),
        "{}: {}",
        binary.label,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_path).expect("gotrace wrote its output");
    let log = served(&out.stdout);
    assert_eq!(
        log.len(),
        21,
        "{}: the server served 3 rounds of 7",
        binary.label
    );
    (log, gotrace_json(text.lines()))
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gotrace-fields-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn builds() -> Vec<GoBinary> {
    BUILDS
        .iter()
        .filter_map(|&(version, goarch)| {
            require(matrix_binary(version, goarch, Variant::Plain, "httpserver"))
        })
        .collect()
}

/// The stripped builds (no DWARF) of the same releases.
fn stripped_builds() -> Vec<GoBinary> {
    BUILDS
        .iter()
        .filter_map(|&(version, goarch)| {
            require(matrix_binary(
                version,
                goarch,
                Variant::Stripped,
                "httpserver",
            ))
        })
        .collect()
}

/// The `--field` arguments of the server's log line: method, path and host.
const LOGGED_FIELDS: [&str; 6] = [
    "--field",
    "r.Method",
    "--field",
    "r.URL.Path",
    "--field",
    "r.Host",
];

/// The call events of `objects`, in time order.
fn calls_in_order(objects: &[Value]) -> Vec<&Value> {
    let mut calls: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "call" || o["type"] == "tree")
        .collect();
    calls.sort_by_key(|c| field(c, "ts_ns"));
    calls
}

/// The requests that `objects`' calls read with [`LOGGED_FIELDS`], in time order.
fn served_by_calls(objects: &[Value]) -> Vec<Served> {
    calls_in_order(objects)
        .iter()
        .map(|c| {
            let f = |expr| field_value(c, expr).to_owned();
            (f("r.Method"), f("r.URL.Path"), f("r.Host"))
        })
        .collect()
}

/// The string value of the field `expr` of a call event (`args`: in `fields`; a `graph` tree's
/// root: among its `args`).
fn field_value<'v>(call: &'v Value, expr: &str) -> &'v str {
    call["fields"]
        .as_array()
        .or_else(|| call["args"].as_array())
        .and_then(|fields| fields.iter().find(|f| f["expr"] == expr))
        .and_then(|f| f["value"].as_str())
        .unwrap_or_else(|| panic!("no string field {expr} in {call}"))
}

#[test]
fn args_fields_equal_the_servers_log_call_for_call() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("args");
    for binary in builds() {
        let args = [&["args", "--no-ret"][..], &LOGGED_FIELDS, &["main.handle"]].concat();
        let (log, objects) = traced(&binary, &args, &scratch);
        assert_eq!(served_by_calls(&objects), log, "{}", binary.label);
        let summary = objects.last().expect("a summary");
        assert_eq!(summary["type"], "summary");
        assert_eq!(field(summary, "lost"), 0, "{}: {summary}", binary.label);
    }
}

#[test]
fn fields_through_embedded_structs_lengths_and_indexes() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("record");
    for binary in builds() {
        let (log, objects) = traced(
            &binary,
            &[
                "args",
                "--no-ret",
                "--field",
                "s.Hits",
                "--field",
                "s.cfg.Timeout",
                "--field",
                "len(tags)",
                "--field",
                "tags[1]",
                "main.(*server).record",
            ],
            &scratch,
        );
        let calls = calls_in_order(&objects);
        assert_eq!(calls.len(), log.len(), "{}", binary.label);
        for (i, (call, (_, path, _))) in calls.iter().zip(&log).enumerate() {
            let fields = call["fields"].as_array().expect("fields");
            let value = |expr: &str| &fields.iter().find(|f| f["expr"] == expr).unwrap()["value"];
            // The handler's own computation: tags = strings.Split(strings.Trim(path, "/"), "/").
            let tags: Vec<&str> = path.trim_matches('/').split('/').collect();
            assert_eq!(value("s.Hits"), i, "{}: {call}", binary.label);
            assert_eq!(value("s.cfg.Timeout"), 3_000_000_000u64, "{}", binary.label);
            assert_eq!(value("len(tags)"), tags.len(), "{}", binary.label);
            match tags.get(1) {
                Some(tag) => assert_eq!(value("tags[1]"), tag, "{}", binary.label),
                None => {
                    let tag = fields.iter().find(|f| f["expr"] == "tags[1]").unwrap();
                    assert_eq!(tag["value"], Value::Null, "{tag}");
                    assert_eq!(tag["reason"], "index out of range: tags is shorter");
                }
            }
        }
    }
}

#[test]
fn a_request_pointer_is_shown_as_its_struct_two_levels_deep() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("deep");
    for binary in builds() {
        let (log, objects) = traced(&binary, &["args", "--no-ret", "main.handle"], &scratch);
        let calls = calls_in_order(&objects);
        assert_eq!(calls.len(), log.len(), "{}", binary.label);
        for (call, (method, path, host)) in calls.iter().zip(&log) {
            let r = &call["args"][1];
            assert_eq!(r["name"], "r", "{call}");
            let request = &r["pointee"];
            assert_eq!(
                request["Method"],
                method.as_str(),
                "{}: {call}",
                binary.label
            );
            assert_eq!(request["URL"]["pointee"]["Path"], path.as_str(), "{call}");
            let url = request["URL"]["address"].as_str().unwrap_or_default();
            assert!(url.starts_with("0x"), "{call}");
            // http.Request is larger than the 128 bytes read of it on amd64: Host (at byte
            // 128) is cut, and the value says so; on 386 it is read.
            match binary.label.contains("386") {
                true => assert_eq!(request["Host"], host.as_str(), "{call}"),
                false => {
                    assert_eq!(request.get("Host"), None, "{call}");
                    assert_eq!(r["truncated"], true, "{call}");
                }
            }
        }
    }
}

/// The handler's signature as a user writes it for a stripped build.
const HANDLE_SIGNATURE: &str = "main.handle(w http.ResponseWriter, r *http.Request)";

/// Stripped builds (no DWARF) with the handler's signature written: the fields, and the
/// request shown by default, are read through gotrace's embedded layouts of that Go
/// release's net/http and net/url (src/gobin/runtime/stdlib_types.tsv), and equal the
/// server's log call for call.
#[test]
fn stripped_fields_through_the_standard_librarys_layouts() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("stripped");
    for binary in stripped_builds() {
        let args = [
            &["args", "--no-ret"][..],
            &LOGGED_FIELDS,
            &[HANDLE_SIGNATURE],
        ]
        .concat();
        let (log, objects) = traced(&binary, &args, &scratch);
        assert_eq!(served_by_calls(&objects), log, "{}", binary.label);
        // graph --args takes the written signature too: each root call carries the fields.
        let args = [
            &["graph", "--args", "--depth", "0"][..],
            &LOGGED_FIELDS,
            &[HANDLE_SIGNATURE],
        ]
        .concat();
        let (log, objects) = traced(&binary, &args, &scratch);
        assert_eq!(served_by_calls(&objects), log, "{}: graph", binary.label);
        let (log, objects) = traced(&binary, &["args", "--no-ret", HANDLE_SIGNATURE], &scratch);
        let calls = calls_in_order(&objects);
        assert_eq!(calls.len(), log.len(), "{}", binary.label);
        for (call, (method, path, _)) in calls.iter().zip(&log) {
            let request = &call["args"][1]["pointee"];
            assert_eq!(
                request["Method"],
                method.as_str(),
                "{}: {call}",
                binary.label
            );
            assert_eq!(request["URL"]["pointee"]["Path"], path.as_str(), "{call}");
        }
    }
}

#[test]
fn where_keeps_exactly_the_matching_calls_and_counts_the_others() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("where");
    type Keep = fn(&Served) -> bool;
    let conditions: [(&str, &str, Keep); 4] = [
        ("main.handle", "r.URL.Path ^= \"/api/\"", |s| {
            s.1.starts_with("/api/")
        }),
        ("main.handle", "r.Method != \"GET\"", |s| s.0 != "GET"),
        ("main.handle", "r.Host < \"b\"", |s| s.2.as_str() < "b"),
        ("main.(*server).record", "len(tags) >= 2", |s| {
            s.1.trim_matches('/').split('/').count() >= 2
        }),
    ];
    for binary in builds() {
        for (function, condition, keep) in conditions {
            let args = [
                &["args", "--where", condition][..],
                &LOGGED_FIELDS,
                &[function],
            ]
            .concat();
            let (log, objects) = traced(&binary, &args, &scratch);
            let wanted: Vec<Served> = log.iter().filter(|s| keep(s)).cloned().collect();
            assert_eq!(
                served_by_calls(&objects),
                wanted,
                "{}: {condition}",
                binary.label
            );
            let returns = objects.iter().filter(|o| o["type"] == "return").count();
            assert_eq!(
                returns,
                wanted.len(),
                "{}: {condition}: returns",
                binary.label
            );
            let summary = objects.last().expect("a summary");
            let hidden = (log.len() - wanted.len()) as u64;
            assert_eq!(field(summary, "filtered_by_where"), hidden, "{summary}");
            assert_eq!(field(summary, "where_unreadable"), 0, "{summary}");
            assert_eq!(field(summary, "unmatched"), 0, "{summary}");
        }
    }
}

/// Runs `funclat --by r.URL.Path PATTERN` on `binary`: the calls counted per path, and the
/// server's log counted the same way.
fn by_path_counts(
    binary: &GoBinary,
    pattern: &str,
    scratch: &Path,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (log, objects) = traced(binary, &["funclat", "--by", "r.URL.Path", pattern], scratch);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (_, path, _) in &log {
        *expected.entry(path.clone()).or_default() += 1;
    }
    let counted = objects
        .iter()
        .filter(|o| o["type"] == "hist")
        .map(|h| {
            let key = h["key"].as_str().unwrap_or_else(|| panic!("{h}"));
            (key.to_owned(), field(h, "count"))
        })
        .collect();
    (counted, expected)
}

#[test]
fn funclat_by_path_counts_equal_the_servers_log() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("funclat");
    for binary in builds() {
        let (counted, expected) = by_path_counts(&binary, "main.handle", &scratch);
        assert_eq!(counted, expected, "{}", binary.label);
    }
}

/// Stripped builds with the handler's signature written: `funclat --by r.URL.Path` keys
/// through the embedded net/http and net/url layouts, and counts per path equal the log.
#[test]
fn stripped_funclat_by_path_with_the_signature_written() {
    if !require_root() {
        return;
    }
    let Some(_lock) = bpf_test() else { return };
    let scratch = scratch("funclat-stripped");
    for binary in stripped_builds() {
        let (counted, expected) = by_path_counts(&binary, HANDLE_SIGNATURE, &scratch);
        assert_eq!(counted, expected, "{}", binary.label);
    }
}

#[test]
fn a_path_not_in_the_types_is_one_line_before_attaching() {
    let Some(binary) = require(matrix_binary("1.19", "amd64", Variant::Plain, "httpserver")) else {
        return;
    };
    let Some(stripped) = require(matrix_binary(
        "1.19",
        "amd64",
        Variant::Stripped,
        "httpserver",
    )) else {
        return;
    };
    let path = binary.path.to_str().unwrap();
    let stripped = stripped.path.to_str().unwrap();
    for (args, wanted) in [
        (
            vec!["funclat", "--by", "r.URL.Path", "main.handle", stripped],
            "no DWARF (stripped), so main.handle's parameter types are unknown; write its signature",
        ),
        (
            vec!["funclat", "--by", "req.URL", HANDLE_SIGNATURE, stripped],
            "no traced function has a parameter \"req\"",
        ),
        (
            vec!["args", "--field", "r.Url.Path", "main.handle", path],
            "did you mean URL?",
        ),
        (
            vec!["args", "--field", "req.Method", "main.handle", path],
            "no traced function has a parameter \"req\"",
        ),
        (
            vec!["args", "--field", "r.Method[", "main.handle", path],
            "a '[' has no ']'",
        ),
        (
            vec!["funclat", "--by", "r.Body", "main.handle", path],
            "--by",
        ),
        (
            vec!["args", "--where", "r.Method == 3", "main.handle", path],
            "compares with \"strings\"",
        ),
        (
            vec!["args", "--where", "r.Method", "main.handle", path],
            "no operator",
        ),
    ] {
        let out = gotrace(&args);
        assert_eq!(user_error_problems(&out), Vec::<String>::new(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}
