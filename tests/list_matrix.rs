//! `gotrace list --json` on every binary of the test matrix (scripts/build-targets.sh) and on
//! the esbuild binaries from npm, checked against Go's own readers; and `gotrace list` on bad
//! input.
//!
//! What is compared, exactly:
//! - The functions are joined by entry address. gotrace must list exactly the functions of the
//!   pclntab as Go's `debug/gosym` reads it (tests/oracle/gosym), with the same entry and end.
//! - Binaries with a symbol table are also compared with `go tool nm`'s text symbols (types T
//!   and t), minus `runtime.text` and `runtime.etext`: those two mark the bounds of the text
//!   segment (runtime.text shares its address with the first function, runtime.etext is past
//!   the last one) and are not functions. On the matrix and esbuild 0.3.9 every other text
//!   symbol is a pclntab function at the same address (checked: nm and gosym agree 1:1).
//! - Names are equal after two spelling differences between the symbol table and the pclntab
//!   are removed: the symbol table names the ABI0 body of an assembly function `f.abi0` where
//!   the pclntab says `f`, and spells the middle dot of generated names (`untracedG·4`) as `.`.
//!   Go 1.18–1.20 pclntabs abbreviate everything from the first `[` to the last `]` of a name
//!   as `[...]` (cmd/link's nameParts), so `main.SumOf[go.shape.int_0]` in the symbol table is
//!   `main.SumOf[...]` in the pclntab; a name with `[...]` is compared in that abbreviated form.
//! - file_offset must be where the entry lies in the file, per the ELF program headers.
//! - `params`/`results` appear only if the binary has DWARF (and then at least on main.main).
//! - The file and line of each function must be gosym's for its entry PC (where gosym has one).
//! - Probe sites: `ret_classes` has one valid class per `ret_offsets` entry, `entry_class` is
//!   a valid class, and each tail call's target is a function entry per gosym, named as gosym
//!   names it. (Whether the classes and sites are right is tests/disasm_oracle.rs's, against
//!   objdump.) The text columns say what the JSON says.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{anyhow, bail, Context, Result};
use object::{Object, ObjectSection, ObjectSegment};
use serde_json::{Map, Value};

use common::gotrace::{gotrace, user_error_problems};
use common::oracle::{go_nm_text_symbols, gosym_functions, GosymFunction};
use common::require;
use common::targets::{
    esbuild_binary, matrix_binaries, matrix_binary, GoBinary, Variant, ESBUILD_RELEASES,
};

/// Keys of every line of `gotrace list --json`.
const REQUIRED_KEYS: &[&str] = &[
    "function",
    "entry",
    "end",
    "file_offset",
    "entry_probe_offset",
    "ret_offsets",
    "file",
    "line",
    "entry_class",
    "entry_site_offset",
    "ret_classes",
    "tail_calls",
    "steps_per_call",
];

/// Values of `entry_class` and of `ret_classes` items.
const ENTRY_CLASSES: &[&str] = &["emulated", "single-step", "flag-checked"];
const SITE_CLASSES: &[&str] = &["emulated", "single-step"];

/// Keys present only when the binary has DWARF.
const DWARF_KEYS: &[&str] = &["params", "results"];

/// nm text symbols that mark the bounds of the text segment and are not functions.
const TEXT_BOUNDS: &[&str] = &["runtime.text", "runtime.etext"];

/// Problems reported per binary before the rest are only counted.
const SHOWN_PROBLEMS: usize = 12;

/// One line of `gotrace list --json`, with the fields the tests check.
#[derive(Debug)]
struct Listed {
    function: String,
    entry: u64,
    end: u64,
    file_offset: Option<u64>,
    file: Option<String>,
    line: Option<i64>,
    has_dwarf_keys: bool,
    /// `entry_class`, when not null.
    entry_class: Option<String>,
    /// Number of `ret_offsets`.
    rets: usize,
    /// `ret_classes`, as strings.
    ret_classes: Vec<String>,
    /// `tail_calls`: (target, function).
    tail_calls: Vec<(u64, Option<String>)>,
    steps_per_call: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The matrix and esbuild: function lists against the oracles.

macro_rules! matrix_tests {
    ($($test:ident => $version:literal),* $(,)?) => {$(
        /// Every matrix binary of one toolchain against the oracles.
        #[test]
        fn $test() {
            let Some(binaries) = require(matrix_binaries($version)) else { return };
            check_all(&binaries, check_function_list);
        }
    )*};
}

matrix_tests! {
    list_matches_oracles_go1_19 => "1.19",
    list_matches_oracles_go1_21 => "1.21.13",
    list_matches_oracles_go1_24 => "1.24.11",
    list_matches_oracles_go1_27 => "1.27.3",
}

/// The text columns ENTRY-SITE, RET-E/S, TAIL and STEPS of `gotrace list` say what the JSON
/// says, for every function of the tailcalls target (Go 1.19 and 1.27, amd64 and 386).
#[test]
fn list_text_columns_match_json() {
    for version in ["1.19", "1.27.3"] {
        for goarch in ["amd64", "386"] {
            let Some(binary) = require(matrix_binary(version, goarch, Variant::Plain, "tailcalls"))
            else {
                return;
            };
            let (listed, problems) = list(&binary.path).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(problems.is_empty(), "{binary}: {problems:?}");
            let output = gotrace([Path::new("list"), &binary.path]);
            assert!(output.status.success(), "{binary}: {output:?}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let mut rows = 0;
            // Past the header comments and the column titles; functions that exist only
            // inlined have no sites of their own.
            let functions = stdout.lines().filter(|l| {
                !l.starts_with('#') && !l.starts_with("FUNCTION ") && !l.ends_with("(inlined only)")
            });
            for row in functions {
                // From the right: FILE:LINE STEPS TAIL RET-E/S ENTRY-SITE INLINED TYPES RETS
                // SIZE OFFSET ENTRY; the name (which may hold spaces) is the rest.
                let columns: Vec<&str> = row.split_whitespace().rev().take(11).collect();
                let entry = address(&Value::String(columns[10].to_owned()))
                    .unwrap_or_else(|e| panic!("{binary}: {row:?}: {e:#}"));
                let json = &listed[&entry];
                let emulated_rets = json
                    .ret_classes
                    .iter()
                    .filter(|class| *class == "emulated")
                    .count();
                let ret_counts = if json.rets == 0 {
                    "-".to_owned()
                } else {
                    format!("{emulated_rets}/{}", json.rets - emulated_rets)
                };
                let expected = [
                    json.steps_per_call.map(|steps| steps.to_string()),
                    Some(json.tail_calls.len().to_string()),
                    Some(ret_counts),
                    json.entry_class.clone(),
                ];
                let shown = columns[1..5].iter().map(|c| Some(c.to_string()));
                assert!(
                    shown.eq(expected.iter().cloned()),
                    "{binary}: {row:?}, JSON says {expected:?}"
                );
                rows += 1;
            }
            assert_eq!(rows, listed.len(), "{binary}: rows");
        }
    }
}

#[test]
fn list_matches_oracles_esbuild() {
    check_all(&esbuild_binaries(), check_function_list);
}

#[test]
fn list_file_and_line_match_gosym() {
    let mut binaries = esbuild_binaries();
    for version in common::toolchain::MATRIX_GO_VERSIONS {
        if let Some(found) = require(matrix_binaries(version)) {
            binaries.extend(found);
        }
    }
    check_all(&binaries, check_file_and_line);
}

/// The esbuild binaries that are installed (the prerequisite rule applies to the others).
fn esbuild_binaries() -> Vec<GoBinary> {
    ESBUILD_RELEASES
        .iter()
        .filter_map(|&(package, version, ..)| require(esbuild_binary(package, version)))
        .collect()
}

/// Runs a check on every binary and fails with every binary's problems.
fn check_all(binaries: &[GoBinary], check: fn(&GoBinary) -> Result<Vec<String>>) {
    let mut report = String::new();
    for binary in binaries {
        let problems = check(binary).unwrap_or_else(|e| vec![format!("{e:#}")]);
        if problems.is_empty() {
            eprintln!("ok: {binary}");
            continue;
        }
        report.push_str(&format!(
            "\n{binary} ({}): {} problems\n",
            binary.path.display(),
            problems.len()
        ));
        for problem in problems.iter().take(SHOWN_PROBLEMS) {
            report.push_str(&format!("  {problem}\n"));
        }
        if problems.len() > SHOWN_PROBLEMS {
            report.push_str(&format!(
                "  ... and {} more\n",
                problems.len() - SHOWN_PROBLEMS
            ));
        }
    }
    assert!(
        report.is_empty(),
        "gotrace list disagrees with the oracles:{report}"
    );
}

/// Function names, entries, ends, file offsets and DWARF keys of one binary.
fn check_function_list(binary: &GoBinary) -> Result<Vec<String>> {
    let data = std::fs::read(&binary.path)
        .with_context(|| format!("reading {}", binary.path.display()))?;
    let elf = object::File::parse(&*data).context("object cannot parse the binary")?;
    let (listed, mut problems) = list(&binary.path)?;

    let pclntab = by_entry(gosym_functions(&binary.path)?, |f| f.entry)?;
    compare_functions("gosym", &pclntab, &listed, &mut problems);
    for (entry, function) in &listed {
        if let Some(oracle) = pclntab.get(entry) {
            if function.end != oracle.end {
                problems.push(format!(
                    "{}: end {:#x}, gosym says {:#x}",
                    function.function, function.end, oracle.end
                ));
            }
        }
    }

    check_probe_sites(&pclntab, &listed, &mut problems);

    if binary.has_symbols {
        let symbols = go_nm_text_symbols(&binary.path)?;
        let symbols: Vec<(String, u64)> = symbols
            .into_iter()
            .filter(|symbol| !TEXT_BOUNDS.contains(&symbol.name.as_str()))
            .map(|symbol| (symbol.name, symbol.address))
            .collect();
        let symbols = by_entry(symbols, |symbol| symbol.1)?;
        let symbols = symbols
            .into_iter()
            .map(|(entry, (name, _))| (entry, name))
            .collect();
        compare_functions("go tool nm", &symbols, &listed, &mut problems);
    }

    for function in listed.values() {
        let Some(listed_offset) = function.file_offset else {
            continue; // counted as a missing key
        };
        match file_offset(&elf, function.entry) {
            Some(offset) if offset == listed_offset => {}
            Some(offset) => problems.push(format!(
                "{}: file_offset {listed_offset:#x}, the program headers say {offset:#x}",
                function.function
            )),
            None => problems.push(format!(
                "{}: entry {:#x} is in no PT_LOAD segment",
                function.function, function.entry
            )),
        }
    }

    let has_dwarf = elf.section_by_name(".debug_info").is_some()
        || elf.section_by_name(".zdebug_info").is_some();
    if has_dwarf != binary.has_symbols {
        problems.push(format!(
            "test setup: expected DWARF {}, the binary has DWARF {has_dwarf}",
            binary.has_symbols
        ));
    }
    let with_dwarf_keys = listed
        .values()
        .filter(|function| function.has_dwarf_keys)
        .count();
    if !has_dwarf && with_dwarf_keys > 0 {
        problems.push(format!(
            "no DWARF, yet {with_dwarf_keys} functions have params/results"
        ));
    }
    if has_dwarf
        && !listed
            .values()
            .any(|function| function.function == "main.main" && function.has_dwarf_keys)
    {
        problems.push("DWARF present, yet main.main has no params/results".to_owned());
    }
    Ok(problems)
}

/// The probe-site keys of every function: valid classes, one per RET, at most two
/// single-stepped hits per call, tail calls to gosym's function entries under gosym's names.
fn check_probe_sites(
    pclntab: &BTreeMap<u64, GosymFunction>,
    listed: &BTreeMap<u64, Listed>,
    problems: &mut Vec<String>,
) {
    for function in listed.values() {
        let name = &function.function;
        let Some(entry_class) = &function.entry_class else {
            continue; // a function whose code cannot be decoded has a "problem" instead
        };
        if !ENTRY_CLASSES.contains(&entry_class.as_str()) {
            problems.push(format!("{name}: entry_class {entry_class:?}"));
        }
        if function.ret_classes.len() != function.rets
            || function
                .ret_classes
                .iter()
                .any(|class| !SITE_CLASSES.contains(&class.as_str()))
        {
            problems.push(format!(
                "{name}: ret_classes {:?} for {} RETs",
                function.ret_classes, function.rets
            ));
        }
        if function.steps_per_call.is_none_or(|steps| steps > 2) {
            problems.push(format!(
                "{name}: steps_per_call {:?}",
                function.steps_per_call
            ));
        }
        for (target, callee) in &function.tail_calls {
            let oracle = pclntab.get(target).map(|f| f.name.as_str());
            if oracle.is_none() || oracle != callee.as_deref() {
                problems.push(format!(
                    "{name}: tail call to {target:#x} named {callee:?}, gosym's entry there: \
                     {oracle:?}"
                ));
            }
        }
    }
}

/// File and line of every function against gosym's for the entry PC.
fn check_file_and_line(binary: &GoBinary) -> Result<Vec<String>> {
    // Problems with the output's shape are check_function_list's to report.
    let (listed, _) = list(&binary.path)?;
    let mut problems = Vec::new();
    for oracle in gosym_functions(&binary.path)? {
        let Some(function) = listed.get(&oracle.entry) else {
            continue;
        };
        if oracle.file.is_empty() {
            continue;
        }
        if function.file.as_deref() != Some(oracle.file.as_str())
            || function.line != Some(oracle.line)
        {
            problems.push(format!(
                "{}: {:?}:{:?}, gosym says {}:{}",
                oracle.name, function.file, function.line, oracle.file, oracle.line
            ));
        }
    }
    Ok(problems)
}

/// Compares the oracle's functions (entry -> name) with gotrace's, by entry address.
fn compare_functions<F: AsRef<str>>(
    oracle_name: &str,
    oracle: &BTreeMap<u64, F>,
    listed: &BTreeMap<u64, Listed>,
    problems: &mut Vec<String>,
) {
    for (entry, name) in oracle {
        let name = name.as_ref();
        match listed.get(entry) {
            None => problems.push(format!(
                "{name} at {entry:#x} (from {oracle_name}) is not listed"
            )),
            Some(function) if !same_function_name(name, &function.function) => {
                problems.push(format!(
                    "at {entry:#x}: gotrace lists {:?}, {oracle_name} says {name:?}",
                    function.function
                ))
            }
            Some(_) => {}
        }
    }
    for (entry, function) in listed {
        if !oracle.contains_key(entry) {
            problems.push(format!(
                "{} at {entry:#x} is listed but not in {oracle_name}",
                function.function
            ));
        }
    }
}

impl AsRef<str> for GosymFunction {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// Indexes items by entry address; an error on a duplicate (the oracle's data is 1:1).
fn by_entry<T: std::fmt::Debug>(
    items: Vec<T>,
    entry: impl Fn(&T) -> u64,
) -> Result<BTreeMap<u64, T>> {
    let mut map = BTreeMap::new();
    for item in items {
        let address = entry(&item);
        if let Some(previous) = map.insert(address, item) {
            bail!(
                "oracle lists two functions at {address:#x}: {previous:?} and {:?}",
                map[&address]
            );
        }
    }
    Ok(map)
}

/// Whether a name from an oracle and a name from gotrace denote the same function (see the
/// module comment for the spelling differences allowed).
fn same_function_name(oracle: &str, listed: &str) -> bool {
    let (oracle, listed) = (canonical(oracle), canonical(listed));
    oracle == listed
        || ((oracle.contains("[...]") || listed.contains("[...]"))
            && abbreviated(&oracle) == abbreviated(&listed))
}

/// A name without the symbol table's `.abi0` suffix and with `·` spelled `.`.
fn canonical(name: &str) -> String {
    name.strip_suffix(".abi0").unwrap_or(name).replace('·', ".")
}

/// A name as Go 1.18–1.20 pclntabs store it: first `[` to last `]` replaced by `[...]`.
fn abbreviated(name: &str) -> String {
    match (name.find('['), name.rfind(']')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}[...]{}", &name[..open], &name[close + 1..])
        }
        _ => name.to_owned(),
    }
}

/// The file offset of a virtual address, from the PT_LOAD segment holding it.
fn file_offset(elf: &object::File<'_>, address: u64) -> Option<u64> {
    elf.segments().find_map(|segment| {
        let (offset, size) = segment.file_range();
        let start = segment.address();
        (address >= start && address - start < size).then(|| address - start + offset)
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing gotrace's output.

/// Runs `gotrace list --json BINARY`; returns the functions by entry and the problems found in
/// the output (an error if gotrace failed or listed nothing usable).
fn list(binary: &Path) -> Result<(BTreeMap<u64, Listed>, Vec<String>)> {
    let output = gotrace([Path::new("list"), Path::new("--json"), binary]);
    if !output.status.success() {
        bail!(
            "gotrace list --json failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut listed = BTreeMap::new();
    let mut problems = Vec::new();
    let mut missing_keys = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // Functions that exist only inlined have no code of their own (tests/inline_oracle.rs).
        if line.contains(r#""inlined_only":true"#) {
            continue;
        }
        match parse_listed(line, &mut missing_keys) {
            Ok(function) => {
                if let Some(previous) = listed.insert(function.entry, function) {
                    problems.push(format!(
                        "two functions at {:#x}, one is {:?}",
                        previous.entry, previous.function
                    ));
                }
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    for (key, lines) in missing_keys {
        let shown: Vec<&str> = lines.iter().take(3).map(String::as_str).collect();
        problems.insert(
            0,
            format!(
                "key {key:?} missing in {} lines, e.g. {shown:?}",
                lines.len()
            ),
        );
    }
    if listed.is_empty() {
        bail!(
            "gotrace list --json listed no usable function; first problem: {}",
            problems.first().map_or("none", String::as_str)
        );
    }
    Ok((listed, problems))
}

/// Parses one line of `gotrace list --json`, recording its missing keys (key -> lines); an
/// error if it lacks what identifies a function (function, entry, end) or a field has the
/// wrong type.
fn parse_listed(
    line: &str,
    missing_keys: &mut BTreeMap<&'static str, Vec<String>>,
) -> Result<Listed> {
    let object: Map<String, Value> =
        serde_json::from_str(line).with_context(|| format!("not a JSON object: {line:?}"))?;
    for key in REQUIRED_KEYS
        .iter()
        .filter(|key| !object.contains_key(**key))
    {
        missing_keys.entry(key).or_default().push(line.to_owned());
    }
    let dwarf_keys = DWARF_KEYS
        .iter()
        .filter(|key| object.contains_key(**key))
        .count();
    if dwarf_keys == 1 {
        bail!("only one of {DWARF_KEYS:?} in {line:?}");
    }
    let field = |key: &str| -> Result<Option<u64>> {
        object
            .get(key)
            .map(address)
            .transpose()
            .with_context(|| format!("{key} in {line:?}"))
    };
    let required =
        |key: &str| -> Result<u64> { field(key)?.ok_or_else(|| anyhow!("no {key} in {line:?}")) };
    let strings = |key: &str| -> Vec<String> {
        object
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().unwrap_or("(not a string)").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tail_calls = Vec::new();
    for call in object
        .get("tail_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let target = call
            .get("target")
            .map(address)
            .transpose()?
            .ok_or_else(|| anyhow!("tail call without target in {line:?}"))?;
        let function = call.get("function").and_then(Value::as_str);
        tail_calls.push((target, function.map(str::to_owned)));
    }
    Ok(Listed {
        entry_class: object
            .get("entry_class")
            .and_then(Value::as_str)
            .map(str::to_owned),
        rets: object
            .get("ret_offsets")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        ret_classes: strings("ret_classes"),
        tail_calls,
        steps_per_call: object.get("steps_per_call").and_then(Value::as_u64),
        function: object
            .get("function")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("no function name in {line:?}"))?
            .to_owned(),
        entry: required("entry")?,
        end: required("end")?,
        file_offset: field("file_offset")?,
        file: object
            .get("file")
            .and_then(Value::as_str)
            .map(str::to_owned),
        line: object.get("line").and_then(Value::as_i64),
        has_dwarf_keys: dwarf_keys == DWARF_KEYS.len(),
    })
}

/// An address written as a JSON number or as a string ("0x4a2b40" or decimal).
fn address(value: &Value) -> Result<u64> {
    match value {
        Value::Number(number) => number
            .as_u64()
            .ok_or_else(|| anyhow!("{number} is not an address")),
        Value::String(text) => match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).map_err(|e| anyhow!("{text:?}: {e}")),
            None => text.parse().map_err(|e| anyhow!("{text:?}: {e}")),
        },
        other => bail!("{other} is not an address"),
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit code 2, one line on stderr, no panic.

/// Asserts that gotrace rejected the input as a user error.
fn assert_user_error(what: &str, output: &Output) {
    let problems = user_error_problems(output);
    assert!(
        problems.is_empty(),
        "gotrace list on {what}: {}",
        problems.join("; ")
    );
}

/// A scratch file for one test, with the given contents.
fn scratch_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("list-bad-inputs");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Go binaries to damage: one with the Go 1.18-1.19 pclntab, one with the Go 1.20+ pclntab
/// whose header has no text start (Go 1.26+).
fn damage_subjects() -> Vec<GoBinary> {
    ["1.19", "1.27.3"]
        .into_iter()
        .filter_map(|version| require(matrix_binary(version, "amd64", Variant::Plain, "counter")))
        .collect()
}

/// The file range (offset, size) of the binary's pclntab section.
fn pclntab_range(data: &[u8]) -> (usize, usize) {
    let elf = object::File::parse(data).expect("the test binary is valid ELF");
    let section = [".gopclntab", ".data.rel.ro.gopclntab"]
        .iter()
        .find_map(|name| elf.section_by_name(name))
        .expect("the test binary has a pclntab section");
    let (offset, size) = section.file_range().expect("the pclntab is in the file");
    (
        usize::try_from(offset).expect("offset fits"),
        usize::try_from(size).expect("size fits"),
    )
}

#[test]
fn list_rejects_text_file() {
    let path = scratch_file("text-file.txt", b"this is not an ELF file\nat all\n");
    assert_user_error("a text file", &gotrace([Path::new("list"), &path]));
}

#[test]
fn list_rejects_missing_file() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-binary");
    assert_user_error("a missing file", &gotrace([Path::new("list"), &path]));
}

#[test]
fn list_rejects_directory() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let output = gotrace([Path::new("list"), dir]);
    assert_user_error("a directory", &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is a directory"),
        "gotrace list on a directory does not say it is one: {stderr:?}"
    );
}

#[test]
fn list_rejects_c_binary() {
    let path = Path::new("/bin/true");
    if require(if path.is_file() {
        Ok(())
    } else {
        Err("/bin/true is missing")
    })
    .is_none()
    {
        return;
    }
    assert_user_error("/bin/true", &gotrace([Path::new("list"), path]));
}

#[test]
fn list_rejects_truncated_go_binary() {
    for binary in damage_subjects() {
        let data = std::fs::read(&binary.path).expect("reading the test binary");
        for (what, length) in [("first 4 KiB", 4096), ("first half", data.len() / 2)] {
            let name = format!("truncated-{}-{length}", binary.go_version);
            let path = scratch_file(&name, &data[..length]);
            assert_user_error(
                &format!("the {what} of {binary}"),
                &gotrace([Path::new("list"), &path]),
            );
        }
    }
}

#[test]
fn list_rejects_corrupted_pclntab() {
    for binary in damage_subjects() {
        let data = std::fs::read(&binary.path).expect("reading the test binary");
        let (start, size) = pclntab_range(&data);
        assert!(size > 64, "{binary}: pclntab of {size} bytes");

        let mut bad_magic = data.clone();
        bad_magic[start..start + 4].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        // The header's function count (at offset 8, pointer-sized) far beyond the table.
        let mut huge_count = data.clone();
        huge_count[start + 8..start + 16].fill(0x7f);
        let mut zeroed = data.clone();
        zeroed[start..start + size].fill(0);

        for (what, corrupted) in [
            ("bad magic", bad_magic),
            ("huge function count", huge_count),
            ("zeroed", zeroed),
        ] {
            let path = scratch_file(
                &format!("pclntab-{what}-{}", binary.go_version).replace(' ', "-"),
                &corrupted,
            );
            assert_user_error(
                &format!("{binary} with pclntab {what}"),
                &gotrace([Path::new("list"), &path]),
            );
        }
    }
}

/// Damage anywhere in the pclntab may go unnoticed (a wrong line number is still a table), but
/// gotrace must then either succeed with valid output or fail as a user error, never panic.
#[test]
fn list_survives_damaged_pclntab() {
    const DAMAGE_SITES: usize = 32;
    for binary in damage_subjects() {
        let data = std::fs::read(&binary.path).expect("reading the test binary");
        let (start, size) = pclntab_range(&data);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            // xorshift64: a fixed, reproducible sequence.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for site in 0..DAMAGE_SITES {
            let offset = start + site * (size - 16) / DAMAGE_SITES;
            let mut damaged = data.clone();
            for byte in &mut damaged[offset..offset + 16] {
                *byte = next().to_le_bytes()[0];
            }
            let path = scratch_file(
                &format!("pclntab-damaged-{}-{site}", binary.go_version),
                &damaged,
            );
            let output = gotrace([Path::new("list"), Path::new("--json"), &path]);
            let what = format!(
                "{binary} with 16 random bytes at pclntab+{:#x}",
                offset - start
            );
            if output.status.success() {
                let stdout = String::from_utf8_lossy(&output.stdout);
                for line in stdout.lines() {
                    assert!(
                        serde_json::from_str::<Value>(line).is_ok(),
                        "{what}: output line is not JSON: {line:?}"
                    );
                }
            } else {
                assert_user_error(&what, &output);
            }
        }
    }
}

#[test]
fn list_rejects_pattern_matching_nothing() {
    let Some(binary) = require(matrix_binary("1.19", "amd64", Variant::Plain, "sample")) else {
        return;
    };
    let output = gotrace([
        Path::new("list"),
        &binary.path,
        Path::new("nosuchpackage.*"),
    ]);
    assert_user_error(
        &format!("{binary} with a pattern matching nothing"),
        &output,
    );
}

#[test]
fn name_spellings_are_compared_as_documented() {
    assert!(same_function_name(
        "runtime.memmove.abi0",
        "runtime.memmove"
    ));
    assert!(same_function_name(
        "type:.eq.runtime.untracedG.4",
        "type:.eq.runtime.untracedG·4"
    ));
    assert!(same_function_name(
        "main.(*Pair[string,int]).String",
        "main.(*Pair[...]).String"
    ));
    assert!(same_function_name(
        "type..eq.[2]runtime.Frame",
        "type..eq.[...]runtime.Frame"
    ));
    assert!(!same_function_name(
        "main.SumOf[go.shape.int_0]",
        "main.SumOf[go.shape.float64_0]"
    ));
    assert!(!same_function_name("main.fib", "main.fob"));
}
