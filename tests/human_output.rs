//! Issue 13.6: the output a person reads. `funclat` on a glob says in one line how many matched
//! functions it skipped because they never return (`--verbose` names them), checked against
//! `go tool nm` and GNU objdump; `goroutines` prints wall-clock times, a summary table whose
//! columns line up, `-` for the lifetimes of goroutines that never exited (the target's own
//! record says which), ALIVE that agrees with its "live goroutines" line, and whole lines when
//! the launched target writes to the same stdout.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::gotrace::gotrace;
use common::oracle::go_nm_text_symbols;
use common::targets::{matrix_binary, Variant};
use common::traced::own_records;
use common::{require, require_root};

/// The names `objdump` shows a `ret` in, among `names` (GNU objdump, one function at a time).
fn functions_with_ret(binary: &std::path::Path, names: &[String]) -> BTreeSet<String> {
    names
        .iter()
        .filter(|name| {
            let out = Command::new("objdump")
                .args(["-d", "--no-show-raw-insn"])
                .arg(format!("--disassemble={name}"))
                .arg(binary)
                .output()
                .expect("running objdump");
            assert!(out.status.success(), "objdump failed on {name}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("<{name}>:")),
                "objdump lists no {name}"
            );
            text.lines().any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|m| m.starts_with("ret"))
            })
        })
        .cloned()
        .collect()
}

/// `runtime.goPanic*` (the bounds-check panics) never return: objdump shows no `ret` in any
/// of them. `funclat` on that glob with `main.doWork` traces the one and says in one line that
/// it skipped the others, as many as `go tool nm` lists; with `--verbose` it names each one.
#[test]
fn never_returning_functions_are_summed_up_in_one_line() {
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary("1.24.11", "amd64", Variant::Plain, "counter")) else {
        return;
    };
    let Some(symbols) = require(go_nm_text_symbols(&binary.path)) else {
        return;
    };
    let panics: Vec<String> = symbols
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with("runtime.goPanic"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(panics.len() >= 10, "go tool nm lists only {panics:?}");
    assert!(functions_with_ret(&binary.path, &panics).is_empty());

    let path = binary.path.to_str().unwrap();
    let run = |verbose: bool| {
        let mut args = vec!["funclat", "-d", "0.2"];
        if verbose {
            args.push("--verbose");
        }
        args.extend(["runtime.goPanic*", "main.doWork", path]);
        let out = gotrace(&args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run(false);
    let skip_lines: Vec<&str> = quiet.lines().filter(|l| l.contains("skip")).collect();
    assert_eq!(
        skip_lines,
        [format!(
            "gotrace: skipped {} functions that never return; --verbose lists them",
            panics.len()
        )],
        "{quiet}"
    );
    let verbose = run(true);
    let named: BTreeSet<String> = verbose
        .lines()
        .filter_map(|l| l.strip_prefix("gotrace: skipping "))
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.to_owned()))
        .collect();
    assert_eq!(named, panics.iter().cloned().collect(), "{verbose}");
}

/// Seconds since midnight of an `HH:MM:SS.ffffff` time.
fn seconds_of_day(time: &str) -> Option<f64> {
    let (hms, frac) = time.split_once('.')?;
    if frac.len() != 6 {
        return None;
    }
    let parts: Vec<u32> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else { return None };
    Some(f64::from(h * 3600 + m * 60 + s) + format!("0.{frac}").parse::<f64>().ok()?)
}

/// The wall clock now, as seconds since midnight, from `date` (the same zone gotrace uses).
fn now_seconds_of_day() -> f64 {
    let out = Command::new("date").arg("+%H:%M:%S.%6N").output().unwrap();
    seconds_of_day(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

/// How every line the gotree target writes to its stdout begins (examples/go-targets/gotree):
/// it shares gotrace's stdout, so its whole lines may come anywhere between gotrace's.
const GOTREE_OWN_LINES: [&str; 5] = [
    "main goid=",
    "goroutine goid=",
    "storm ",
    "elapsed_ns ",
    "per_second ",
];

#[test]
fn goroutines_reads_like_a_table() {
    if !require_root() {
        return;
    }
    let Some(binary) = require(matrix_binary("1.24.11", "amd64", Variant::Plain, "gotree")) else {
        return;
    };
    let before = now_seconds_of_day();
    let out = gotrace(["goroutines", "--", binary.path.to_str().unwrap()]);
    let after = now_seconds_of_day();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();

    // Every line is whole: the target's own, or one of gotrace's kinds.
    let header = lines
        .iter()
        .position(|l| l.starts_with("TIME "))
        .expect("no event header");
    let table = lines
        .iter()
        .position(|l| l.starts_with("FUNCTION "))
        .expect("no summary table");
    let mut events = 0;
    for line in &lines[header + 1..table] {
        if GOTREE_OWN_LINES.iter().any(|p| line.starts_with(p)) || line.is_empty() {
            continue;
        }
        let time = line.split_whitespace().next().unwrap_or("");
        let seconds = seconds_of_day(time)
            .unwrap_or_else(|| panic!("not a whole event line with a wall-clock time: {line:?}"));
        // Midnight between `before` and `after` would wrap; the run takes seconds.
        if before <= after {
            assert!(
                (before - 1.0..=after + 1.0).contains(&seconds),
                "{line:?} not between {before} and {after}"
            );
        }
        assert!(
            [" create ", " exit "].iter().any(|k| line.contains(k)),
            "{line:?}"
        );
        events += 1;
    }
    assert!(events > 10, "{text}");

    // The table: right-aligned columns, so every row as wide as the header.
    let rows: Vec<&String> = lines[table..]
        .iter()
        .take_while(|l| !l.is_empty() && !l.starts_with("live goroutines"))
        .collect();
    let width = rows[0].len();
    for row in &rows {
        assert_eq!(row.len(), width, "misaligned row {row:?} in\n{text}");
    }

    // Goroutines that never exited (lifetime -1 in the target's own record) have no
    // lifetime percentiles: `-`, not 0ns.
    let own = own_records(&lines);
    let never_exited: BTreeSet<&str> = own
        .iter()
        .filter(|r| r.lifetime_ns.is_none())
        .map(|r| r.function.as_str())
        .collect();
    let exited: BTreeSet<&str> = own
        .iter()
        .filter(|r| r.lifetime_ns.is_some())
        .map(|r| r.function.as_str())
        .collect();
    assert!(!never_exited.is_empty(), "{own:?}");
    let mut alive_sum = 0;
    for row in &rows[1..] {
        let cells: Vec<&str> = row.split_whitespace().collect();
        let function = cells[0];
        let percentiles = &cells[cells.len() - 3..];
        alive_sum += cells[cells.len() - 4].parse::<u64>().unwrap();
        if never_exited.contains(function) && !exited.contains(function) {
            assert_eq!(percentiles, ["-", "-", "-"], "{row}");
        }
        assert!(!percentiles.contains(&"0ns"), "{row}");
    }
    let live = lines
        .iter()
        .find_map(|l| l.strip_prefix("live goroutines: "))
        .expect("no live goroutines line");
    let now: u64 = live.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(alive_sum, now, "ALIVE column vs {live:?}");
}
