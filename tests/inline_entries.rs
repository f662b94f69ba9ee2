//! The entries of inlined calls (`GoBinary::parent_flow` + `ParentFlow::entries`) proved with
//! counts: examples/go-targets/inlined runs under gdb (the counter nobody here wrote), with a
//! breakpoint at every entry of every inlined call of its `main.*` functions and at the
//! entry probe site of their out-of-line copies; the hits per function must equal the
//! program's own record of how many times the function ran. Every matrix toolchain, amd64
//! and 386, plain and stripped (PIE relocates the addresses, so it is left to the tracing
//! tests).
//!
//! The same run shows why `parentPc` (the inline mark) is no counting site: its hits are
//! printed next to the entries' for comparison (on Go 1.27 amd64 `main.clamp`'s mark is the
//! `jmp` of one early return), never asserted.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use common::require;
use common::targets::{matrix_binary, Variant};
use common::toolchain::MATRIX_GO_VERSIONS;
use gotrace::gobin::BinaryFile;

/// Loop iterations of the target (`-n`).
const ITERATIONS: &str = "300";

/// The function a record or a breakpoint belongs to: generic instantiations count as one
/// (`main.maxOf[go.shape.int]` -> `main.maxOf`), as the target records them.
fn record_name(name: &str) -> &str {
    name.split('[').next().unwrap_or(name)
}

/// One breakpoint: which function it counts, and whether it is an inline mark (shown only).
struct Breakpoint {
    pc: u64,
    func: String,
    mark: bool,
}

/// Breakpoints at the entries of every inlined `main.*` call and at the entry probe of every
/// out-of-line `main.*` function.
fn breakpoints(binary: &Path) -> Result<Vec<Breakpoint>> {
    let file = BinaryFile::open(binary)?;
    let bin = file.parse()?;
    let mut points = Vec::new();
    for func in bin.funcs.iter().filter(|f| f.name.starts_with("main.")) {
        let sites = bin.probe_sites(func)?;
        points.push(Breakpoint {
            pc: sites.entry_probe,
            func: record_name(func.name).to_owned(),
            mark: false,
        });
    }
    let table = bin.inline_table();
    for site in table.instances().filter(|i| i.func.starts_with("main.")) {
        let entries = bin.parent_flow(site.parent_entry)?.entries(site.ranges);
        if entries.points.iter().any(|p| p.reentered) {
            bail!(
                "{} in {}: an entry is also reached from inside: {entries:?}",
                site.func,
                site.parent
            );
        }
        for point in &entries.points {
            points.push(Breakpoint {
                pc: point.pc,
                func: record_name(site.func).to_owned(),
                mark: false,
            });
        }
        points.push(Breakpoint {
            pc: site.mark_pc,
            func: record_name(site.func).to_owned(),
            mark: true,
        });
    }
    Ok(points)
}

/// Runs the target under gdb with `points`; returns the hits of each, in order, and the
/// target's own records (function -> calls).
fn run_under_gdb(
    binary: &Path,
    points: &[Breakpoint],
) -> Result<(Vec<u64>, BTreeMap<String, u64>)> {
    let out = std::env::temp_dir().join(format!("inline-entries-{}.out", std::process::id()));
    let mut script = String::from(
        "set pagination off\nset confirm off\nhandle SIGURG nostop noprint pass\nset environment GODEBUG=asyncpreemptoff=1\n",
    );
    for point in points {
        script.push_str(&format!(
            "break *{:#x}\ncommands\nsilent\ncontinue\nend\n",
            point.pc
        ));
    }
    script.push_str(&format!(
        "run -n {ITERATIONS} > {}\ninfo breakpoints\nquit\n",
        out.display()
    ));
    let script_path = out.with_extension("gdb");
    std::fs::write(&script_path, script)?;
    let output = Command::new("gdb")
        .args(["-q", "-batch", "-x"])
        .arg(&script_path)
        .arg(binary)
        .output()
        .context("running gdb")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `info breakpoints`: a row per breakpoint ("N  breakpoint keep y ADDR ..."), followed by
    // "breakpoint already hit K time(s)" when it was hit.
    let mut hits = Vec::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.get(1) == Some(&"breakpoint") && words[0].parse::<usize>().is_ok() {
            hits.push(0);
        } else if let Some(rest) = line.trim().strip_prefix("breakpoint already hit ") {
            let n = rest.split_whitespace().next().unwrap_or("0").parse()?;
            *hits.last_mut().context("hit count before any breakpoint")? = n;
        }
    }
    if hits.len() != points.len() {
        bail!(
            "gdb listed {} breakpoints, {} were set: {}",
            hits.len(),
            points.len(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let own = std::fs::read_to_string(&out).context("the target's output")?;
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&script_path);
    let mut records = BTreeMap::new();
    for line in own.lines() {
        if let Some(json) = line.strip_prefix("INL ") {
            let record: serde_json::Value = serde_json::from_str(json)?;
            records.insert(
                record["function"].as_str().context("function")?.to_owned(),
                record["calls"].as_u64().context("calls")?,
            );
        }
    }
    if records.is_empty() {
        bail!("the target printed no record: {own:?}");
    }
    Ok((hits, records))
}

#[test]
fn inlined_call_entries_count_every_call() {
    if Command::new("gdb").arg("--version").output().is_err() {
        require::<(), _>(Err("gdb is not installed"));
        return;
    }
    let mut failures = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        for (goarch, variant) in [
            ("amd64", Variant::Plain),
            ("amd64", Variant::Stripped),
            ("386", Variant::Plain),
            ("386", Variant::Stripped),
        ] {
            let Some(binary) = require(matrix_binary(version, goarch, variant, "inlined")) else {
                return;
            };
            let result = (|| {
                let points = breakpoints(&binary.path)?;
                let (hits, records) = run_under_gdb(&binary.path, &points)?;
                let mut counted: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
                for (point, hits) in points.iter().zip(hits) {
                    let slot = counted.entry(point.func.as_str()).or_default();
                    if point.mark {
                        slot.1 += hits;
                    } else {
                        slot.0 += hits;
                    }
                }
                let mut problems = Vec::new();
                for (func, calls) in &records {
                    let (entries, marks) = counted.get(func.as_str()).copied().unwrap_or_default();
                    eprintln!(
                        "{binary}: {func}: ran {calls}, entries hit {entries}, marks hit {marks}"
                    );
                    if entries != *calls {
                        problems.push(format!("{func}: ran {calls} times, entries hit {entries}"));
                    }
                }
                Ok::<_, anyhow::Error>(problems)
            })();
            match result {
                Ok(problems) if problems.is_empty() => {}
                Ok(problems) => failures.push(format!("{binary}: {}", problems.join("; "))),
                Err(e) => failures.push(format!("{binary}: {e:#}")),
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
