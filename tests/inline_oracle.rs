//! The pclntab inline-tree reader (`GoBinary::inline_table`) against Go's own `debug/dwarf`,
//! run through `tests/oracle/inlines` (built with the oracle toolchain), and `gotrace list`'s
//! view of the inlined calls.
//!
//! What is compared, exactly:
//! - On every matrix binary with DWARF (every toolchain, GOARCH and program) and on esbuild
//!   0.3.9 (Go 1.14): the multiset of inlined calls, each as (inlined function, enclosing
//!   out-of-line function, enclosing inlined calls innermost first, call file, call line,
//!   PC ranges merged where they touch) equals the one from the DWARF inlined subroutines.
//! - Every stripped matrix binary reads exactly the same inlined calls as its unstripped
//!   twin (the stripped one finds `moduledata.gofunc` without symbols).
//! - gotrace's own DWARF reader (`GoBinary::dwarf_inlined`) finds the same inlined calls as
//!   `debug/dwarf` on every matrix binary with DWARF, with the same formal parameter names
//!   in the same order, and some of those parameters have a location.
//! - The esbuild binaries without DWARF (Go 1.15-1.17) read every function's tree.
//! - `gotrace list --json` on examples/go-targets/inlined: the `main.*` functions that the
//!   compiler inlined everywhere are listed as inlined-only, each with its sites, and the
//!   INLINED column and `--inlined` agree with the JSON; with `--inlined`, each `main.*` site
//!   has a single entry, and (with DWARF) `main.clamp`'s site the parameters of its source.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use common::gotrace::gotrace;
use common::require;
use common::targets::{esbuild_binary, matrix_binaries, matrix_binary, repo_root, Variant};
use common::toolchain::{oracle_toolchain, MATRIX_GO_VERSIONS};
use gotrace::gobin::format::dwarf_inline::ParamLocation;
use gotrace::gobin::BinaryFile;

/// Differences shown per binary before the rest are only counted.
const SHOWN_PROBLEMS: usize = 8;

/// One inlined call, as both sides are reduced to for comparison.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
struct Site {
    func: String,
    parent: String,
    callers: Vec<String>,
    call_file: String,
    call_line: i64,
    ranges: Vec<[u64; 2]>,
    /// Names of the formal parameters DWARF lists below the call (empty from the pclntab).
    #[serde(default)]
    params: Vec<String>,
}

impl Site {
    /// The same call with its ranges sorted and joined where they touch, and generic names as
    /// the go1.18-1.19 linkers write them into the pclntab (type arguments elided).
    fn normalized(mut self) -> Site {
        self.func = elide_type_arguments(&self.func);
        self.parent = elide_type_arguments(&self.parent);
        for caller in &mut self.callers {
            *caller = elide_type_arguments(caller);
        }
        self.ranges.sort_unstable();
        let mut merged: Vec<[u64; 2]> = Vec::new();
        for [lo, hi] in self.ranges {
            match merged.last_mut() {
                Some(last) if lo <= last[1] => last[1] = last[1].max(hi),
                _ => merged.push([lo, hi]),
            }
        }
        self.ranges = merged;
        self
    }
}

/// `name` with everything from its first `[` to its last `]` shown as `[...]`: the
/// go1.18-1.19 pclntab names instantiations so (`pkg.(*T[...]).M`) where DWARF keeps the shape
/// (`pkg.(*T[go.shape.*uint8_0]).M`); the PC ranges still tell instantiations apart.
fn elide_type_arguments(name: &str) -> String {
    match (name.find('['), name.rfind(']')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}[...]{}", &name[..open], &name[close + 1..])
        }
        _ => name.to_owned(),
    }
}

/// The inlined calls gotrace reads from the pclntab, and the functions it could not read.
fn read_sites(binary: &Path) -> Result<(Vec<Site>, Vec<String>)> {
    let file = BinaryFile::open(binary)?;
    let bin = file.parse()?;
    let table = bin.inline_table();
    if let Some(reason) = &table.unavailable {
        bail!("{reason}");
    }
    let sites = table
        .instances()
        .map(|i| {
            Site {
                func: i.func.to_owned(),
                parent: i.parent.to_owned(),
                callers: i.callers.iter().map(|c| (*c).to_owned()).collect(),
                call_file: i.call_file.to_owned(),
                call_line: i.call_line,
                ranges: i.ranges.iter().map(|&(lo, hi)| [lo, hi]).collect(),
                params: Vec::new(),
            }
            .normalized()
        })
        .collect();
    let unreadable = table
        .unreadable
        .iter()
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    Ok((sites, unreadable))
}

/// The sites only in `ours` and only in `theirs`, as multisets.
fn differences(ours: Vec<Site>, theirs: Vec<Site>) -> (Vec<Site>, Vec<Site>) {
    let mut counts: BTreeMap<Site, i64> = BTreeMap::new();
    for site in ours {
        *counts.entry(site).or_default() += 1;
    }
    for site in theirs {
        *counts.entry(site).or_default() -= 1;
    }
    let (mut ours_only, mut theirs_only) = (Vec::new(), Vec::new());
    for (site, n) in counts {
        let side = if n > 0 {
            &mut ours_only
        } else {
            &mut theirs_only
        };
        side.extend(std::iter::repeat_n(site, n.unsigned_abs() as usize));
    }
    (ours_only, theirs_only)
}

/// Call file of the calls inlined into compiler-generated code.
const AUTOGENERATED: &str = "<autogenerated>";

/// One line per site found on one side only.
fn describe(ours_only: &[Site], theirs_only: &[Site], ours: &str, theirs: &str) -> Vec<String> {
    let ours_lines = ours_only.iter().map(|s| format!("only {ours}: {s:?}"));
    let theirs_lines = theirs_only.iter().map(|s| format!("only {theirs}: {s:?}"));
    ours_lines.chain(theirs_lines).collect()
}

/// Compares one binary with DWARF against the oracle; `with_ranges`: also the PC ranges.
fn check_against_dwarf(binary: &Path, with_ranges: bool) -> Result<Vec<String>> {
    let (mut ours, mut problems) = read_sites(binary)?;
    if ours.is_empty() {
        bail!("gotrace found no inlined call");
    }
    let mut theirs = oracle_sites(binary)?;
    for site in &mut theirs {
        site.params.clear();
    }
    if !with_ranges {
        for site in ours.iter_mut().chain(theirs.iter_mut()) {
            site.ranges.clear();
        }
    }
    let wrapped: Vec<Site> = ours
        .iter()
        .filter(|s| s.call_file == AUTOGENERATED)
        .cloned()
        .collect();
    let (ours_only, mut theirs_only) = differences(ours, theirs);
    // The same call where the pclntab's call site is `<autogenerated>:1` (the position of the
    // caller's instruction at parentPc, which is also what the runtime's tracebacks print) and
    // DWARF names a source line (go1.27 package initializers).
    let mut relocated = 0;
    let mut rest = Vec::new();
    for site in ours_only {
        let twin = theirs_only.iter().position(|t| {
            site.call_file == AUTOGENERATED
                && (&t.func, &t.parent, &t.callers, &t.ranges)
                    == (&site.func, &site.parent, &site.callers, &site.ranges)
        });
        match twin {
            Some(i) => {
                theirs_only.remove(i);
                relocated += 1;
            }
            None => rest.push(site),
        }
    }
    // Calls inlined into compiler-generated wrappers, directly or through another inlined
    // call: the compiler describes some in DWARF and not others.
    let (in_wrappers, ours_only): (Vec<Site>, Vec<Site>) = rest.into_iter().partition(|site| {
        let outermost = site.callers.last().unwrap_or(&site.func);
        let outer_callers = site.callers.len().saturating_sub(1);
        wrapped.iter().any(|w| {
            w.parent == site.parent && &w.func == outermost && w.callers.len() == outer_callers
        })
    });
    if relocated + in_wrappers.len() > 0 {
        eprintln!(
            "{}: {} inlined calls in wrappers have no DWARF; {} have call site <autogenerated>:1 \
             where DWARF names a line",
            binary.display(),
            in_wrappers.len(),
            relocated
        );
    }
    theirs_only.truncate(SHOWN_PROBLEMS);
    problems.extend(describe(&ours_only, &theirs_only, "gotrace", "debug/dwarf"));
    Ok(problems)
}

/// Collects the problems of many binaries and fails with a report if there are any.
fn report(results: Vec<(String, Result<Vec<String>>)>) {
    let mut failures = Vec::new();
    for (label, result) in results {
        match result {
            Ok(problems) if problems.is_empty() => {}
            Ok(problems) => {
                let mut text = format!("{label}: {} problems", problems.len());
                for problem in problems.iter().take(SHOWN_PROBLEMS) {
                    text.push_str(&format!("\n    {problem}"));
                }
                failures.push(text);
            }
            Err(e) => failures.push(format!("{label}: {e:#}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn matrix_inline_trees_match_debug_dwarf() {
    let mut results = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        let Some(binaries) = require(matrix_binaries(version)) else {
            return;
        };
        for binary in binaries.iter().filter(|b| b.has_symbols) {
            results.push((
                binary.label.clone(),
                check_against_dwarf(&binary.path, true),
            ));
        }
    }
    report(results);
}

/// The inlined calls gotrace's DWARF reader finds, and how many parameters have a location.
fn read_dwarf_sites(binary: &Path) -> Result<(Vec<Site>, usize)> {
    let file = BinaryFile::open(binary)?;
    let bin = file.parse()?;
    let calls = bin.dwarf_inlined()?.context("no DWARF")?;
    let located = calls
        .iter()
        .flat_map(|c| &c.params)
        .filter(|p| p.location != ParamLocation::None)
        .count();
    let sites = calls
        .into_iter()
        .map(|c| {
            Site {
                func: c.func,
                parent: c.parent,
                callers: c.callers,
                call_file: c.call_file,
                call_line: c.call_line as i64,
                ranges: c.ranges.iter().map(|&(lo, hi)| [lo, hi]).collect(),
                params: c.params.into_iter().map(|p| p.name).collect(),
            }
            .normalized()
        })
        .collect();
    Ok((sites, located))
}

#[test]
fn dwarf_inlined_subroutines_match_debug_dwarf() {
    let mut results = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        let Some(binaries) = require(matrix_binaries(version)) else {
            return;
        };
        for binary in binaries.iter().filter(|b| b.has_symbols) {
            let result = (|| {
                let (ours, located) = read_dwarf_sites(&binary.path)?;
                if located == 0 {
                    bail!("no inlined parameter has a location");
                }
                let (ours_only, theirs_only) = differences(ours, oracle_sites(&binary.path)?);
                Ok(describe(&ours_only, &theirs_only, "gotrace", "debug/dwarf"))
            })();
            results.push((binary.label.clone(), result));
        }
    }
    report(results);
}

#[test]
fn esbuild_go1_14_inline_tree_matches_debug_dwarf() {
    let Some(binary) = require(esbuild_binary("esbuild-linux-64", "0.3.9")) else {
        return;
    };
    report(vec![(
        binary.label.clone(),
        check_against_dwarf(&binary.path, false),
    )]);
}

#[test]
fn stripped_binaries_read_the_same_inlined_calls_as_their_twins() {
    let mut results = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        let Some(binaries) = require(matrix_binaries(version)) else {
            return;
        };
        for stripped in binaries.iter().filter(|b| !b.has_symbols) {
            let twin = stripped
                .path
                .to_string_lossy()
                .replace("-stripped/", "-plain/");
            let result = (|| {
                let (ours, mut problems) = read_sites(&stripped.path)?;
                let (theirs, _) = read_sites(Path::new(&twin))?;
                if ours.is_empty() {
                    bail!("no inlined call found");
                }
                let (ours_only, theirs_only) = differences(ours, theirs);
                problems.extend(describe(&ours_only, &theirs_only, "stripped", "unstripped"));
                Ok(problems)
            })();
            results.push((stripped.label.clone(), result));
        }
    }
    report(results);
}

#[test]
fn esbuild_without_dwarf_reads_every_inline_tree() {
    let mut results = Vec::new();
    for (package, version) in [
        ("esbuild-linux-64", "0.7.22"),
        ("esbuild-linux-64", "0.8.57"),
        ("esbuild-linux-64", "0.13.15"),
        ("esbuild-linux-32", "0.8.45"),
    ] {
        let Some(binary) = require(esbuild_binary(package, version)) else {
            return;
        };
        let result = read_sites(&binary.path).and_then(|(sites, unreadable)| {
            if sites.len() < 1000 {
                bail!("only {} inlined calls found in esbuild", sites.len());
            }
            Ok(unreadable)
        });
        results.push((binary.label.clone(), result));
    }
    report(results);
}

#[test]
fn list_shows_inlined_only_functions_and_their_sites() {
    let mut results = Vec::new();
    for &version in MATRIX_GO_VERSIONS {
        for (goarch, variant) in [
            ("amd64", Variant::Plain),
            ("amd64", Variant::Stripped),
            ("amd64", Variant::Pie),
            ("386", Variant::Plain),
        ] {
            let Some(binary) = require(matrix_binary(version, goarch, variant, "inlined")) else {
                return;
            };
            results.push((binary.label.clone(), check_list(&binary.path)));
        }
    }
    report(results);
}

/// `gotrace list` on the inlined target: JSON, text and `--inlined` against the oracle sites
/// (or, stripped, against the library's own, already checked against the twin).
fn check_list(binary: &Path) -> Result<Vec<String>> {
    let (sites, _) = read_sites(binary)?;
    let json = gotrace([
        Path::new("list"),
        Path::new("--json"),
        binary,
        Path::new("main.*"),
    ]);
    if !json.status.success() {
        bail!("list --json: {}", String::from_utf8_lossy(&json.stderr));
    }
    let mut problems = Vec::new();
    let mut rows = BTreeMap::new();
    for line in String::from_utf8_lossy(&json.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let name = row["function"].as_str().context("no function")?.to_owned();
        rows.insert(name, row);
    }
    // main.top, main.mid and main.leaf exist only inlined on every toolchain.
    for name in ["main.top", "main.mid", "main.leaf", "main.clamp"] {
        let expected = sites.iter().filter(|s| s.func == name).count();
        match rows.get(name) {
            None => problems.push(format!("{name} is not listed")),
            Some(row) => {
                if row["inlined_only"] != serde_json::Value::Bool(true) {
                    problems.push(format!("{name} is not marked inlined_only: {row}"));
                }
                let listed = row["inlined_sites"].as_array().map_or(0, Vec::len);
                if expected == 0 || listed != expected {
                    problems.push(format!(
                        "{name}: {listed} sites listed, {expected} in the inline trees"
                    ));
                }
            }
        }
    }
    // main.add has an out-of-line copy (called through a func value) and inlined sites.
    match rows.get("main.add") {
        Some(row) if row.get("entry").is_some() => {
            let listed = row["inlined_sites"].as_array().map_or(0, Vec::len);
            let expected = sites.iter().filter(|s| s.func == "main.add").count();
            if listed == 0 || listed != expected {
                problems.push(format!(
                    "main.add: {listed} sites listed, {expected} expected"
                ));
            }
        }
        other => problems.push(format!("main.add is not listed with its entry: {other:?}")),
    }
    // --inlined --json: every main.* site has one entry; with DWARF, main.clamp's site has
    // the parameters its source declares, in order.
    let detailed = gotrace([
        Path::new("list"),
        Path::new("--json"),
        Path::new("--inlined"),
        binary,
        Path::new("main.*"),
    ]);
    let has_dwarf = !binary.to_string_lossy().contains("-stripped/");
    for line in String::from_utf8_lossy(&detailed.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        for site in row["inlined_sites"].as_array().into_iter().flatten() {
            if !site["entry_offset"].is_u64() {
                problems.push(format!("{}: no single entry: {site}", row["function"]));
            }
            if row["function"] == "main.clamp" && has_dwarf {
                let names: Vec<&str> = site["params"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                if names != ["x", "lo", "hi"] {
                    problems.push(format!("main.clamp's site has params {names:?}"));
                }
            }
        }
    }
    // Text: the INLINED column and one `inlined in` line per site with --inlined.
    let text = gotrace([
        Path::new("list"),
        Path::new("--inlined"),
        binary,
        Path::new("main.top"),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    let expected = sites.iter().filter(|s| s.func == "main.top").count();
    let row = text.lines().find(|l| l.starts_with("main.top "));
    if !row.is_some_and(|r| r.contains(&format!(" {expected} (inlined only)"))) {
        problems.push(format!("text row of main.top: {row:?}"));
    }
    let site_lines = text
        .lines()
        .filter(|l| l.trim_start().starts_with("inlined in "))
        .count();
    if site_lines != expected {
        problems.push(format!(
            "--inlined printed {site_lines} sites of main.top, expected {expected}"
        ));
    }
    Ok(problems)
}

/// Runs the inlines oracle on a binary.
fn oracle_sites(binary: &Path) -> Result<Vec<Site>> {
    let output = std::process::Command::new(oracle()?)
        .arg(binary)
        .output()
        .context("running the inlines oracle")?;
    if !output.status.success() {
        bail!(
            "inlines oracle on {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Site>(line)
                .map(Site::normalized)
                .with_context(|| format!("inlines oracle line {line:?}"))
        })
        .collect()
}

/// The inlines oracle, built once per process with the oracle toolchain.
fn oracle() -> Result<PathBuf> {
    static ORACLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ORACLE
        .get_or_init(|| {
            let build = || -> Result<PathBuf> {
                let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inlines-oracle");
                let partial = target.with_extension(format!("tmp{}", std::process::id()));
                let output = oracle_toolchain()?
                    .command()
                    .current_dir(repo_root().join("tests/oracle/inlines"))
                    .args(["build", "-trimpath", "-buildvcs=false", "-o"])
                    .arg(&partial)
                    .arg(".")
                    .output()
                    .context("running go build for the inlines oracle")?;
                if !output.status.success() {
                    bail!(
                        "building tests/oracle/inlines: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
                std::fs::rename(&partial, &target)?;
                Ok(target)
            };
            build().map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}
