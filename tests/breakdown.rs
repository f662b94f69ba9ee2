//! `gotrace args --breakdown` against examples/go-targets/breakdown's own record of every call
//! (docs/design.md §18): each call of main.work spins on the CPU, sleeps, receives from a
//! channel, waits for a sync.Mutex a helper holds and blocks in read(2) on a pipe, and records
//! per phase its wall time, its thread's CPU time (CLOCK_THREAD_CPUTIME_ID) and run delay
//! (/proc/thread-self/schedstat), and the instants just before and just after the helper
//! readied it. Every part of every call's breakdown must equal that record within 10 % or 1 ms
//! (what the target cannot know exactly is bounded instead, see [`with_bounds`]: when a wait
//! began and ended, a sleep's late timer, the read's wake-up; the CPU phase's run delay is
//! runnable time; the thread's CPU time in a wait may be the scheduler's after the goroutine
//! parked), the parts must sum to the duration within 1 %, and
//! nothing may be
//! unattributed. Go 1.19 / 1.21 / 1.24 / 1.27, amd64 (plain, PIE, stripped) and 386 (plain,
//! stripped); with and without CPU-bound competitors on 1.27 amd64 and 386 (runnable time).
//! `funclat --breakdown` and `graph --breakdown` on Go 1.27 amd64 only (the same BPF code),
//! their `--pprof` profiles as Go 1.27's `go tool pprof -top` reads them.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::MutexGuard;

use serde_json::Value;

use common::gotrace::gotrace;
use common::pprof::{top, top_with};
use common::require;
use common::serial::bpf_test;
use common::targets::{matrix_binary, GoBinary, Variant};
use common::toolchain::{oracle_toolchain, MATRIX_GO_VERSIONS};
use common::traced::split_successful;

/// Each phase of the target, in ms.
const PHASE_MS: u64 = 4;

/// The tolerance of a part of `expected` ns summed over `calls` calls: 10 % or 1 ms a call.
fn tolerance(expected: f64, calls: f64) -> f64 {
    (0.1 * expected).max(1e6 * calls)
}

/// The problems of breakdown `b` of `duration` ns against the target's record of the same
/// `calls` calls (summed when more than one).
fn check_breakdown(
    label: &str,
    (b, duration): (&Value, f64),
    own: &HashMap<String, f64>,
    calls: f64,
    mutex: &str,
) -> Vec<String> {
    let part = |key: &str| b[key].as_f64().unwrap_or(f64::NAN);
    let blocked = |reason: &str| b["blocked_ns"][reason].as_f64().unwrap_or(0.0);
    let o = |key: &str| own[key];
    let mut problems = Vec::new();
    let mut near = |what: &str, got: f64, low: f64, high: f64| {
        let (low, high) = (low - tolerance(low, calls), high + tolerance(high, calls));
        if !(low..=high).contains(&got) {
            problems.push(format!(
                "{label}: {what} {:.3} ms, the target's record says {:.3}..{:.3} ms (with tolerance): {b}",
                got / 1e6,
                low / 1e6,
                high / 1e6
            ));
        }
    };
    // The CPU phase's CPU time is the goroutine's; in a wait the thread also runs the
    // scheduler after its goroutine parked (handing its P off, starting an M: 1.2 ms of a
    // channel wait's phase under load), which is the goroutine's blocked time.
    near("on-CPU", part("oncpu_ns"), o("cpu_cpu_ns"), o("cpu_ns"));
    near(
        "blocked chan receive",
        blocked("chan receive"),
        o("chan_low_ns"),
        o("chan_high_ns"),
    );
    near(
        &format!("blocked {mutex}"),
        blocked(mutex),
        o("mutex_low_ns"),
        o("mutex_high_ns"),
    );
    near(
        "blocked sleep",
        blocked("sleep"),
        o("sleep_low_ns"),
        o("sleep_wall_ns"),
    );
    near(
        "syscall",
        part("syscall_ns"),
        o("read_low_ns"),
        o("read_wall_ns"),
    );
    // The CPU phase's run delay is runnable time (the goroutine runs on a descheduled
    // thread); in a wait the thread may wait for a CPU after its goroutine parked, before the
    // thread sleeps, which is blocked time.
    let waits = ["chan", "mutex", "sleep", "read"].map(|w| o(&format!("{w}_low_ns")));
    near(
        "runnable",
        part("runnable_ns"),
        o("cpu_delay_ns"),
        duration - o("cpu_cpu_ns") - waits.iter().sum::<f64>(),
    );
    let sum = part("oncpu_ns")
        + part("runnable_ns")
        + part("syscall_ns")
        + part("unattributed_ns")
        + b["blocked_ns"]
            .as_object()
            .map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum());
    if (sum - duration).abs() > 0.01 * duration {
        problems.push(format!(
            "{label}: parts sum to {sum}, duration {duration}: {b}"
        ));
    }
    if part("unattributed_ns") != 0.0 {
        problems.push(format!("{label}: unattributed time: {b}"));
    }
    if part("descheduled_ns") > part("runnable_ns") {
        problems.push(format!("{label}: descheduled beyond runnable: {b}"));
    }
    if !problems.is_empty() {
        let mut record: Vec<String> = own.iter().map(|(k, v)| format!("{k}={v}")).collect();
        record.sort();
        problems.push(format!(
            "{label}: the target's record: {}",
            record.join(" ")
        ));
    }
    problems
}

/// Runs `gotrace COMMAND... --breakdown --json` on `calls` calls of main.work in `bin` (with
/// `compete` CPU-bound goroutines): its JSON records and the target's own, one per call.
fn trace(
    command: &[&str],
    bin: &GoBinary,
    calls: u32,
    compete: u32,
) -> (Vec<Value>, Vec<HashMap<String, f64>>) {
    // A stripped binary's function is traced by its written signature.
    let function = match bin.has_symbols {
        true => "main.work",
        false => "main.work(p uintptr)",
    };
    let out = gotrace(command.iter().map(|word| word.as_ref()).chain([
        "--breakdown".as_ref(),
        "--json".as_ref(),
        function.as_ref(),
        "--".as_ref(),
        bin.path.as_os_str(),
        "-calls".as_ref(),
        calls.to_string().as_ref(),
        "-phase".as_ref(),
        format!("{PHASE_MS}ms").as_ref(),
        "-compete".as_ref(),
        compete.to_string().as_ref(),
    ]));
    let (own_lines, json) = split_successful(&out);
    // Every command's summary carries --breakdown's counters: nothing left unfollowed here (one
    // goroutine at a time), and the switch-ins made good from the thread's CPU clock counted
    // (docs/json.md).
    let summary = json.last().filter(|v| v["type"] == "summary");
    let counters = summary.map(|s| (s["unfollowed"].as_u64(), s["switch_ins_missed"].as_u64()));
    assert!(
        matches!(counters, Some((Some(0), Some(_)))),
        "{command:?}: the summary's unfollowed and switch_ins_missed: {summary:?}"
    );
    let own = own_lines
        .iter()
        .filter_map(|l| l.strip_prefix("call "))
        .map(|l| {
            with_bounds(
                l.split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
                    .collect(),
            )
        })
        .collect();
    (json, own)
}

/// Adds to a call's record the bounds of its waits, in ns (`W_low_ns`, and `W_high_ns` for the
/// chan and mutex waits; summed over calls they bound the sums). A wait the helper ends (chan, mutex; the read's system
/// call) ends between the helper's instants before and after it readied the goroutine
/// (`W_readied_ns`, `W_done_ns`), and began at the phase's start, or later by what the thread
/// ran or waited for a CPU before it parked (`W_cpu_ns`, `W_delay_ns`); a helper that readied
/// it before it parked (it was that late) leaves no wait. A sleep's timer may fire late: its
/// wait lies between the requested time, less the same, and the phase's wall time. The read's
/// system call lasts until its thread runs again: after the write, plus a wake-up the thread's
/// run delay misses when it goes through an idle CPU's queue (the kernel enqueues the thread
/// only once that CPU takes the IPI), so its bound is the phase's wall time.
fn with_bounds(mut call: HashMap<String, f64>) -> HashMap<String, f64> {
    let phase = (PHASE_MS * 1_000_000) as f64;
    for wait in ["chan", "mutex", "sleep", "read"] {
        let get = |what: &str| call[&format!("{wait}_{what}_ns")];
        let ends = if wait == "sleep" {
            phase
        } else {
            get("readied")
        };
        let low = (ends - get("cpu") - get("delay")).max(0.0);
        let high = get("done").max(0.0);
        call.insert(format!("{wait}_low_ns"), low);
        if wait == "chan" || wait == "mutex" {
            call.insert(format!("{wait}_high_ns"), high);
        }
    }
    call
}

/// The runtime's own name of a sync.Mutex wait, as the binary spells it.
fn mutex_reason(bin: &GoBinary) -> &'static str {
    let binary = std::fs::read(&bin.path).unwrap();
    if binary.windows(15).any(|w| w == b"sync.Mutex.Lock") {
        "sync.Mutex.Lock"
    } else {
        "semacquire"
    }
}

/// `args --breakdown` on `calls` calls: every call's breakdown checked; the problems found.
fn args_calls(bin: &GoBinary, calls: u32, compete: u32) -> Vec<String> {
    let label = format!("{} -compete {compete}", bin.label);
    let (json, own) = trace(&["args"], bin, calls, compete);
    let returns: Vec<&Value> = json.iter().filter(|v| v["type"] == "return").collect();
    if returns.len() != calls as usize || own.len() != calls as usize {
        return vec![format!(
            "{label}: {} returns and {} own records for {calls} calls",
            returns.len(),
            own.len()
        )];
    }
    let mutex = mutex_reason(bin);
    eprintln!("{label}: {} calls", returns.len());
    returns
        .iter()
        .zip(&own)
        .enumerate()
        .flat_map(|(i, (ret, own))| {
            let duration = ret["duration_ns"].as_f64().unwrap();
            let label = format!("{label} call {i}");
            check_breakdown(&label, (&ret["breakdown"], duration), own, 1.0, mutex)
        })
        .collect()
}

#[test]
fn every_part_equals_the_targets_own_record() {
    let Some(_guard) = bpf_test() else { return };
    let mut problems = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        for (goarch, variants) in [
            (
                "amd64",
                &[Variant::Plain, Variant::Pie, Variant::Stripped][..],
            ),
            ("386", &[Variant::Plain, Variant::Stripped][..]),
        ] {
            for &variant in variants {
                let Some(bin) = require(matrix_binary(version, goarch, variant, "breakdown"))
                else {
                    return;
                };
                problems.extend(args_calls(&bin, 2, 0));
                if version == "1.27.3" && variant == Variant::Plain {
                    problems.extend(args_calls(&bin, 2, 2));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The BPF test lock and the target built by Go 1.27 for amd64 (plain), which the funclat and
/// graph tests trace (None: skipped).
fn go1_27_target() -> Option<(MutexGuard<'static, ()>, GoBinary)> {
    let guard = bpf_test()?;
    let bin = require(matrix_binary(
        "1.27.3",
        "amd64",
        Variant::Plain,
        "breakdown",
    ))?;
    Some((guard, bin))
}

/// A path in the temporary directory for this test process's `name`.
fn temp_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gotrace-bd-{}-{name}", std::process::id()))
}

/// `funclat --breakdown` (main.work, and main.spin it calls): main.work's parts against the
/// sums of the target's records of its calls, and its slowest call against the target's
/// slowest; `--pprof` as Go 1.27's `go tool pprof -top` reads it against the JSON records
/// ([`check_funclat_pprof`]).
#[test]
fn funclat_sums_equal_the_targets_own_records() {
    let Some((_guard, bin)) = go1_27_target() else {
        return;
    };
    let calls = 3;
    let profile = temp_file("funclat.pb.gz");
    let command = ["funclat", "--pprof", profile.to_str().unwrap(), "main.spin"];
    let (json, own) = trace(&command, &bin, calls, 0);
    let records: Vec<&Value> = json.iter().filter(|v| v["type"] == "breakdown").collect();
    assert_eq!(records.len(), 2, "{json:?}");
    let record = *records
        .iter()
        .find(|r| r["function"] == "main.work")
        .expect("main.work's breakdown record");
    assert_eq!(record["calls"], calls, "{record}");
    let mut summed: HashMap<String, f64> = HashMap::new();
    for call in &own {
        for (key, value) in call {
            *summed.entry(key.clone()).or_default() += value;
        }
    }
    let duration = record["duration_ns"].as_f64().unwrap();
    let mut problems = check_breakdown(
        &bin.label,
        (&record["breakdown"], duration),
        &summed,
        calls as f64,
        mutex_reason(&bin),
    );
    let slowest_own = own.iter().map(|c| c["wall_ns"]).fold(0.0, f64::max);
    let slowest = record["slowest"][0]["duration_ns"].as_f64().unwrap();
    if (slowest - slowest_own).abs() > tolerance(slowest_own, 1.0) {
        problems.push(format!(
            "slowest call {slowest} ns, the target's {slowest_own} ns"
        ));
    }
    if require(oracle_toolchain()).is_some() {
        problems.extend(check_funclat_pprof(&profile, &records));
    }
    let _ = std::fs::remove_file(&profile);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The problems of funclat's `--pprof` file against its JSON breakdown `records`, as `go tool
/// pprof -top` reads it: per function, its cumulative `wall`, `oncpu` and `offcpu` time equal
/// its record's duration, on-CPU part and the rest; with `-focus` on the function, each
/// off-CPU frame's `offcpu` time equals that part of its record; over all functions, each
/// frame's time and the total `wall` time equal the records' sums.
fn check_funclat_pprof(profile: &Path, records: &[&Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let tops: HashMap<&str, _> = ["wall", "oncpu", "offcpu"]
        .into_iter()
        .map(|sample| (sample, top(profile, sample)))
        .collect();
    let mut all_frames: HashMap<String, u64> = HashMap::new();
    let mut all_wall = 0;
    for record in records {
        let function = record["function"].as_str().unwrap();
        let duration = record["duration_ns"].as_u64().unwrap();
        all_wall += duration;
        let oncpu = parts(record)["oncpu_ns"];
        for (sample, ns) in [
            ("wall", duration),
            ("oncpu", oncpu),
            ("offcpu", duration - oncpu),
        ] {
            let got = tops[sample].0.get(function).map_or(0, |t| t.1);
            if got != ns {
                problems.push(format!(
                    "pprof: {function} {sample} {got} ns, its breakdown record {ns} ns"
                ));
            }
        }
        let frames = off_cpu_frames(record);
        for (frame, ns) in &frames {
            *all_frames.entry(frame.clone()).or_default() += ns;
        }
        let focus = format!("-focus=^{}$", function.replace('.', "\\."));
        let (focused, _) = top_with(profile, "offcpu", &[&focus]);
        let got = frames_of(&focused);
        if got != frames {
            problems.push(format!(
                "pprof -focus {function}: off-CPU frames {got:?}, its breakdown record {frames:?}"
            ));
        }
    }
    let got = frames_of(&tops["offcpu"].0);
    if got != all_frames || tops["wall"].1 != all_wall {
        problems.push(format!(
            "pprof: off-CPU frames {got:?} and wall {} ns, the breakdown records' {all_frames:?} and {all_wall} ns",
            tops["wall"].1
        ));
    }
    problems
}

/// The off-CPU frames (`[...]`) among `-top`'s rows, with their flat time.
fn frames_of(rows: &common::pprof::Totals) -> HashMap<String, u64> {
    rows.iter()
        .filter(|(name, _)| name.starts_with('['))
        .map(|(name, (flat, _))| (name.clone(), *flat))
        .collect()
}

/// The flame-graph frames of `node`'s parts off the CPU (`[blocked: REASON]`, `[runnable]`,
/// `[syscall]`, `[unattributed]`), the non-zero ones, with their ns.
fn off_cpu_frames(node: &Value) -> HashMap<String, u64> {
    parts(node)
        .into_iter()
        .filter(|(part, ns)| part != "oncpu_ns" && *ns != 0)
        .map(|(part, ns)| (frame_of(&part), ns))
        .collect()
}

/// The flame-graph frame of a part as [`parts`] names it.
fn frame_of(part: &str) -> String {
    match part.strip_prefix("blocked ") {
        Some(reason) => format!("[blocked: {reason}]"),
        None => format!("[{}]", part.trim_end_matches("_ns")),
    }
}

/// Every part of `node`'s breakdown, its blocked reasons as `blocked REASON`, by name.
fn parts(node: &Value) -> HashMap<String, u64> {
    let b = &node["breakdown"];
    let mut out: HashMap<String, u64> =
        ["oncpu_ns", "runnable_ns", "syscall_ns", "unattributed_ns"]
            .iter()
            .map(|k| ((*k).to_owned(), b[*k].as_u64().unwrap_or(0)))
            .collect();
    for (reason, ns) in b["blocked_ns"].as_object().into_iter().flatten() {
        out.insert(format!("blocked {reason}"), ns.as_u64().unwrap_or(0));
    }
    out
}

/// The problems of `node` and its descendants: a node closed by its RET without a breakdown,
/// parts that do not sum to its duration exactly, and a child's part beyond its parent's
/// (the child's time lies within the parent's).
fn check_nodes(label: &str, node: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let function = node["function"].as_str().unwrap_or("?");
    if node["unwound"] == true {
        return problems;
    }
    if !node["breakdown"].is_object() {
        return vec![format!("{label}: {function} has no breakdown: {node}")];
    }
    let mine = parts(node);
    let sum: u64 = mine.values().sum();
    if sum != node["duration_ns"].as_u64().unwrap() || mine["unattributed_ns"] != 0 {
        problems.push(format!(
            "{label}: {function}'s parts sum to {sum}: {}",
            node["breakdown"]
        ));
    }
    for child in node["children"].as_array().into_iter().flatten() {
        for (part, ns) in parts(child) {
            if ns > mine.get(&part).copied().unwrap_or(0) {
                problems.push(format!(
                    "{label}: {} has {part} {ns} beyond its caller {function}'s: {}",
                    child["function"], node["breakdown"]
                ));
            }
        }
        problems.extend(check_nodes(label, child));
    }
    problems
}

/// Adds each function's on- and off-CPU time on the stacks beneath `node` (once per stack, as
/// pprof's cumulative time counts a recursive function) from the nodes' breakdowns.
fn add_cumulative(node: &Value, path: &mut Vec<String>, totals: &mut HashMap<String, (u64, u64)>) {
    let function = node["function"].as_str().unwrap().to_owned();
    if !path.contains(&function) {
        let mine = parts(node);
        let total = totals.entry(function.clone()).or_default();
        total.0 += mine["oncpu_ns"];
        total.1 += mine.values().sum::<u64>() - mine["oncpu_ns"];
    }
    path.push(function);
    for child in node["children"].as_array().into_iter().flatten() {
        add_cumulative(child, path, totals);
    }
    path.pop();
}

/// `graph --breakdown`: each tree's root (main.work) against the target's record of the call,
/// and every node's parts summing to its duration and within its caller's; `--folded`: the
/// weights sum to the roots' durations, and each off-CPU frame's (`[blocked: REASON]`,
/// `[runnable]`, `[syscall]`) over all stacks to that part of the roots' breakdowns; `--pprof`
/// as Go 1.27's `go tool pprof -top` reads it: per function, its cumulative `oncpu` and
/// `offcpu` time equal its calls' breakdowns' (on the CPU, and the rest), per off-CPU frame its
/// `offcpu` time the roots' part, and `wall` their sum.
#[test]
fn graph_nodes_equal_the_targets_own_records() {
    let Some((_guard, bin)) = go1_27_target() else {
        return;
    };
    let calls = 2;
    let folded = temp_file("graph.folded");
    let folded_arg = folded.to_str().unwrap();
    let profile = temp_file("graph.pb.gz");
    let profile_arg = profile.to_str().unwrap();
    // main.work's direct callees only: deeper ones (spin's clock reads) would add their probes'
    // cost to the root outside the target's marks.
    let command = [
        "graph",
        "--depth",
        "1",
        "--folded",
        folded_arg,
        "--pprof",
        profile_arg,
    ];
    let (json, own) = trace(&command, &bin, calls, 0);
    let trees: Vec<&Value> = json.iter().filter(|v| v["type"] == "tree").collect();
    assert_eq!(trees.len(), calls as usize, "{json:?}");
    assert_eq!(own.len(), calls as usize);
    let mutex = mutex_reason(&bin);
    let mut problems = Vec::new();
    for (i, (tree, own)) in trees.iter().zip(&own).enumerate() {
        let label = format!("{} graph call {i}", bin.label);
        let duration = tree["duration_ns"].as_f64().unwrap();
        problems.extend(check_breakdown(
            &label,
            (&tree["breakdown"], duration),
            own,
            1.0,
            mutex,
        ));
        problems.extend(check_nodes(&label, tree));
    }
    // Each frame's weight summed over the stacks it ends, and the roots' parts summed.
    let mut frames: HashMap<String, u64> = HashMap::new();
    let text = std::fs::read_to_string(&folded).expect("--folded written");
    let _ = std::fs::remove_file(&folded);
    for line in text.lines() {
        let (stack, ns) = line.rsplit_once(' ').expect("`stack ns`");
        let leaf = stack.rsplit(';').next().unwrap().to_owned();
        *frames.entry(leaf).or_default() += ns.parse::<u64>().unwrap();
        *frames.entry("(all)".to_owned()).or_default() += ns.parse::<u64>().unwrap();
    }
    let mut roots: HashMap<String, u64> = HashMap::new();
    for tree in &trees {
        *roots.entry("(all)".to_owned()).or_default() += tree["duration_ns"].as_u64().unwrap();
        for (part, ns) in parts(tree) {
            *roots.entry(frame_of(&part)).or_default() += ns;
        }
    }
    for (frame, ns) in &roots {
        let drawn = frames.get(frame).copied().unwrap_or(0);
        if frame != "[oncpu]" && frame != "[unattributed]" && drawn != *ns {
            problems.push(format!(
                "folded: {frame} weighs {drawn} ns, the roots' breakdowns {ns} ns: {text}"
            ));
        }
    }
    if require(oracle_toolchain()).is_some() {
        let (wall, wall_total) = top(&profile, "wall");
        let (oncpu, oncpu_total) = top(&profile, "oncpu");
        let (offcpu, offcpu_total) = top(&profile, "offcpu");
        if wall_total != roots["(all)"] || oncpu_total + offcpu_total != wall_total {
            problems.push(format!(
                "pprof: wall {wall_total} ns = oncpu {oncpu_total} + offcpu {offcpu_total}, the roots' durations {}",
                roots["(all)"]
            ));
        }
        let mut expected = HashMap::new();
        for tree in &trees {
            add_cumulative(tree, &mut Vec::new(), &mut expected);
        }
        for (function, (on, off)) in &expected {
            let got = (
                oncpu.get(function).map_or(0, |t| t.1),
                offcpu.get(function).map_or(0, |t| t.1),
            );
            if got != (*on, *off) || wall.get(function).map(|t| t.1) != Some(on + off) {
                problems.push(format!(
                    "pprof: {function} cumulative oncpu/offcpu {got:?} ns, its calls' breakdowns ({on}, {off})"
                ));
            }
        }
        for (frame, ns) in &roots {
            let got = offcpu.get(frame).map_or(0, |t| t.0);
            if frame.starts_with('[') && frame != "[oncpu]" && got != *ns {
                problems.push(format!(
                    "pprof: {frame} offcpu {got} ns, the roots' breakdowns {ns} ns"
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&profile);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
