//! The standard library's layouts embedded in gotrace (`src/gobin/runtime/stdlib_types.tsv`)
//! against the DWARF of every installed toolchain, for amd64 and 386; and their generator.
//!
//! `scripts/stdlib-types/main.go` holds one value of each root type. For each toolchain and
//! GOARCH it is built unstripped, and:
//! - the rows gotrace's DWARF reader gives for the types the roots contain (the closure of
//!   `gobin::runtime::stdlib_types`'s module doc) must be exactly the table's column for that
//!   release and pointer size: so a signature naming them plans as an unstripped build would;
//! - every struct of the column must have, in Go's own `debug/dwarf` (tests/oracle/dwarfdump),
//!   the same size and the same fields: names, offsets and type names;
//! - every root type must be in the column with its kind known.
//!
//! `GOTRACE_GENERATE_STDLIB_TYPES=1` (scripts/gen-stdlib-types.sh) writes the table instead,
//! from every toolchain of [`VERSIONS`] (all must be installed).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use common::dwarfdump::run_oracle;
use common::targets::repo_root;
use common::toolchain::{toolchain, Toolchain};
use gotrace::gobin::format::dwarf::{self, DwarfInfo, TypeId, TypeKind, TypeTable};
use gotrace::gobin::runtime::stdlib_types;

/// Every toolchain the table has a column for (scripts/setup.sh installs them).
const VERSIONS: &[&str] = &[
    "1.19", "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

/// GOARCH values and their pointer sizes (arm64 shares amd64's layouts).
const ARCHES: &[(&str, u64)] = &[("amd64", 8), ("386", 4)];

/// Packages whose structs are followed through pointers and slices; any struct is followed
/// by value, since its layout is its container's.
const FOLLOWED: &[&str] = &[
    "net/http",
    "net/url",
    "context",
    "time",
    "errors",
    "bytes",
    "strings",
    "sync",
    "sync/atomic",
    "internal/sync",
    "os",
    "io",
    "io/fs",
    "internal/poll",
    "net",
    "net/netip",
    "bufio",
];

/// The probe program's struct of root types.
const ROOTS: &str = "main.rootTypes";

#[test]
fn embedded_layouts_match_every_toolchains_dwarf() {
    if std::env::var_os("GOTRACE_GENERATE_STDLIB_TYPES").is_some() {
        generate().expect("generating the table");
        return;
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for &version in VERSIONS {
        let Some(go) = common::require(toolchain(version)) else {
            continue;
        };
        for &(goarch, ptr_size) in ARCHES {
            match check(&go, goarch, ptr_size) {
                Ok(found) => problems.extend(found),
                Err(e) => problems.push(format!("go{version} {goarch}: {e:#}")),
            }
            checked += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems in {checked} builds:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The problems of one toolchain and GOARCH.
fn check(go: &Toolchain, goarch: &str, ptr_size: u64) -> Result<Vec<String>> {
    let label = format!("go{} {goarch}", go.version);
    let binary = build_probe(go, goarch)?;
    let info = load(&binary)?;
    let expected = column_rows(&info)?;
    let release = release_of(go.version)?;
    let std = stdlib_types::for_release(release, ptr_size)
        .with_context(|| format!("the table has no column for {label}: regenerate it"))?;
    let embedded: BTreeSet<String> = (0..std.types.len())
        .map(|i| row_text(&std.types, TypeId(i)))
        .collect();
    let mut problems = Vec::new();
    for row in expected.difference(&embedded).take(5) {
        problems.push(format!("{label}: DWARF has a row the table lacks: {row}"));
    }
    for row in embedded.difference(&expected).take(5) {
        problems.push(format!("{label}: the table has a row DWARF lacks: {row}"));
    }
    let oracle = run_oracle(&binary)?;
    let mut structs = 0;
    for i in 0..std.types.len() {
        let ty = std.types.get(TypeId(i));
        let TypeKind::Struct { fields } = &ty.kind else {
            continue;
        };
        if ty.name.starts_with("struct {") {
            continue; // unnamed: debug/dwarf's name for it is spelled differently
        }
        structs += 1;
        let Some(want) = oracle.structs.get(&ty.name) else {
            problems.push(format!("{label}: debug/dwarf has no struct {}", ty.name));
            continue;
        };
        let have: Vec<(String, i64, String)> = fields
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.offset as i64,
                    std.types.name(f.ty).to_owned(),
                )
            })
            .collect();
        let want_fields: Vec<(String, i64, String)> = want
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.offset, go_spelling(&f.type_name)))
            .collect();
        if want.size != ty.size as i64 || have != want_fields {
            problems.push(format!(
                "{label}: {} differs from debug/dwarf: size {} vs {}, fields {have:?} vs {want_fields:?}",
                ty.name, ty.size, want.size
            ));
        }
    }
    if structs < 40 {
        problems.push(format!("{label}: only {structs} structs compared"));
    }
    for root in root_types(&info)? {
        let name = info.types.name(root);
        match std.lookup(name).map(|id| &std.types.get(id).kind) {
            None => problems.push(format!("{label}: root {name} not in the table")),
            Some(TypeKind::Unknown) => problems.push(format!("{label}: root {name} opaque")),
            Some(_) => {}
        }
    }
    Ok(problems)
}

/// A type name as `debug/dwarf`'s `Type.String` spells it, in Go's spelling (DWARF's
/// `DW_AT_name`): Go's string and slice headers are DWARF structs, which it prefixes with
/// `struct ` (`struct string`, `*struct []uint8`), and `unsafe.Pointer` is a pointer DIE
/// without a target, `*void`.
fn go_spelling(dwarf_string: &str) -> String {
    let mut out = String::new();
    let mut rest = dwarf_string;
    while let Some(at) = rest.find("struct ") {
        let after = &rest[at + "struct ".len()..];
        let header = after.starts_with("[]")
            || after.strip_prefix("string").is_some_and(|tail| {
                !tail.starts_with(|c: char| c.is_alphanumeric() || c == '.' || c == '_')
            });
        out.push_str(&rest[..at]);
        if !header {
            out.push_str("struct ");
        }
        rest = after;
    }
    out.push_str(rest);
    out.replace("*void", "unsafe.Pointer")
}

/// Writes the table from every toolchain of [`VERSIONS`].
fn generate() -> Result<()> {
    let mut columns = Vec::new();
    let mut masks: BTreeMap<(String, String), u64> = BTreeMap::new();
    for &version in VERSIONS {
        let go = toolchain(version)?;
        let (major, minor) = release_of(version)?;
        for &(goarch, ptr_size) in ARCHES {
            let bit = 1u64 << columns.len();
            columns.push(format!("{major}.{minor}/{}", ptr_size * 8));
            let info = load(&build_probe(&go, goarch)?)?;
            for row in column_rows(&info)? {
                let name = row.split('\t').nth(2).unwrap_or("").to_owned();
                *masks.entry((name, row)).or_default() |= bit;
            }
        }
    }
    let mut out = String::from(
        "# The standard library's types by Go release and pointer size: generated by tests/stdlib_types.rs\n\
         # (scripts/gen-stdlib-types.sh) from each toolchain's DWARF; see src/gobin/runtime/stdlib_types.rs.\n\
         # Each row: hex mask of the columns that have it, kind, size, name, details; tab-separated.\n",
    );
    out.push_str(&format!("columns\t{}\n", columns.join("\t")));
    for ((_, row), mask) in masks {
        out.push_str(&format!("{mask:x}\t{row}\n"));
    }
    let path = repo_root().join("src/gobin/runtime/stdlib_types.tsv");
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
}

/// The rows (kind, size, name, details; tab-separated) of every type the roots contain.
fn column_rows(info: &DwarfInfo) -> Result<BTreeSet<String>> {
    let types = &info.types;
    let followed = followed_types(types, root_types(info)?);
    let mut rows: BTreeSet<String> = followed.iter().map(|&id| row_text(types, id)).collect();
    let mut named: HashSet<String> = followed
        .iter()
        .map(|&id| types.name(id).to_owned())
        .collect();
    for &id in &followed {
        for referenced in references(types, id) {
            let referenced = canonical(types, referenced);
            if !followed.contains(&referenced) && named.insert(types.name(referenced).to_owned()) {
                let ty = types.get(referenced);
                rows.insert(format!("unknown\t{}\t{}", ty.size, ty.name));
            }
        }
    }
    Ok(rows)
}

/// The types of the probe's root fields.
fn root_types(info: &DwarfInfo) -> Result<Vec<TypeId>> {
    let roots = info
        .types
        .find(ROOTS)
        .with_context(|| format!("no {ROOTS} in DWARF"))?;
    match &info.types.get(roots).kind {
        TypeKind::Struct { fields } => Ok(fields.iter().map(|f| f.ty).collect()),
        _ => bail!("{ROOTS} is no struct"),
    }
}

/// The roots and every type reached from them by value, or through a pointer or slice into
/// a [`FOLLOWED`] package (or to an unnamed type); each as the first type of its name, which
/// is what a lookup by name finds.
fn followed_types(types: &TypeTable, roots: Vec<TypeId>) -> HashSet<TypeId> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<TypeId> = roots.into();
    while let Some(id) = queue.pop_front() {
        let id = canonical(types, id);
        if !seen.insert(id) {
            continue;
        }
        match &types.get(id).kind {
            TypeKind::Struct { fields } => queue.extend(fields.iter().map(|f| f.ty)),
            TypeKind::Array { elem, .. } => queue.push_back(*elem),
            TypeKind::Pointer { elem: Some(elem) } | TypeKind::Slice { elem }
                if is_followed(types.name(*elem)) =>
            {
                queue.push_back(*elem)
            }
            _ => {}
        }
    }
    seen
}

/// The first type of `id`'s name.
fn canonical(types: &TypeTable, id: TypeId) -> TypeId {
    types.find(types.name(id)).unwrap_or(id)
}

/// The types `id`'s row names.
fn references(types: &TypeTable, id: TypeId) -> Vec<TypeId> {
    match &types.get(id).kind {
        TypeKind::Struct { fields } => fields.iter().map(|f| f.ty).collect(),
        TypeKind::Array { elem, .. } | TypeKind::Slice { elem } => vec![*elem],
        TypeKind::Pointer { elem: Some(elem) } => vec![*elem],
        _ => Vec::new(),
    }
}

/// Whether a type named so is followed through pointers: unnamed, or of a [`FOLLOWED`]
/// package.
fn is_followed(name: &str) -> bool {
    let base = name.split('[').next().unwrap_or(name);
    let unnamed = ["*", "[", "map[", "func(", "struct ", "chan ", "<-chan "];
    if unnamed.iter().any(|p| name.starts_with(p)) || !base.contains('.') {
        return true;
    }
    let package = base.rsplit_once('.').map_or("", |(package, _)| package);
    FOLLOWED.contains(&package)
}

/// One row's text, as the table writes it (after the mask).
fn row_text(types: &TypeTable, id: TypeId) -> String {
    stdlib_types::row_of(types.get(id), |t| types.name(t).to_owned()).join("\t")
}

/// The probe built by `go` for `goarch`, unstripped, into cargo's scratch directory.
fn build_probe(go: &Toolchain, goarch: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stdlib-types");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(format!("probe-{}-{goarch}", go.version));
    go.build(&repo_root().join("scripts/stdlib-types"), goarch, &[], &out)?;
    Ok(out)
}

/// gotrace's reading of a binary's DWARF.
fn load(binary: &Path) -> Result<DwarfInfo> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let elf = object::File::parse(&*data).context("parsing the ELF")?;
    dwarf::load(&elf)?.ok_or_else(|| anyhow!("{}: no DWARF", binary.display()))
}

/// (major, minor) of a toolchain version such as `1.21.13`.
fn release_of(version: &str) -> Result<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next().context("version")?.parse()?;
    let minor = parts.next().context("version")?.parse()?;
    Ok((major, minor))
}
