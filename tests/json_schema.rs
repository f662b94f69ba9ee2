//! Every command's `--json` output against the JSON Schemas of docs/json.md (validated by
//! tests/json_schema.py with Python's `jsonschema`, which scripts/setup.sh installs): funclat,
//! args (both also with --breakdown), goroutines and graph on examples/go-targets/edges (Go 1.27 amd64), attached `-p` while
//! it runs, with `-o FILE` (gotrace's output alone in the file); with a field path in each command that
//! takes one (args --field --where, funclat --by, graph --args --field), and funclat and args
//! with --breakdown.

mod common;

use std::process::Command;

use common::gotrace::GOTRACE;
use common::serial::bpf_test;
use common::targets::{matrix_binary, Variant};
use common::traced::start_edges;
use common::{installed, require};

#[test]
fn every_command_matches_docs_json_md() {
    let Some(_guard) = bpf_test() else { return };
    let Some(python) = require(installed("python3")) else {
        return;
    };
    let Some(bin) = require(matrix_binary("1.27.3", "amd64", Variant::Plain, "edges")) else {
        return;
    };
    let scratch = std::env::temp_dir().join(format!("gotrace-json-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut failures = Vec::new();
    let commands: [(&str, &[&str]); 6] = [
        (
            "funclat",
            &["funclat", "--no-guard", "--by", "worker", "main.work"],
        ),
        (
            "args",
            &[
                "args",
                "--field",
                "worker",
                "--where",
                "seq >= 0",
                "--min-duration",
                "1ns",
                "main.work",
            ],
        ),
        (
            "funclat",
            &["funclat", "--no-guard", "--breakdown", "main.work"],
        ),
        ("args", &["args", "--breakdown", "main.work"]),
        ("goroutines", &["goroutines"]),
        (
            "graph",
            &[
                "graph",
                "--args",
                "--field",
                "seq",
                "--breakdown",
                "main.work",
            ],
        ),
    ];
    for (command, args) in commands {
        let (mut target, _) = start_edges(&bin.path, command, None);
        let out = scratch.join(format!("{command}.json"));
        let status = Command::new(GOTRACE)
            .args(args)
            .args(["--json", "-d", "1", "-p", &target.id().to_string(), "-o"])
            .arg(&out)
            .status()
            .expect("gotrace runs");
        // SAFETY: kill(2) on the child we started.
        unsafe { libc::kill(target.id() as i32, libc::SIGTERM) };
        let _ = target.wait();
        assert!(status.success(), "{command}: gotrace failed");
        if let Some(problems) = common::schema::problems(&python, command, &out) {
            failures.push(format!("{command}:\n{problems}"));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
