//! Mutation fuzzing of everything gotrace computes from a binary before it needs root: real Go
//! binaries (every pclntab format, DWARF and stripped, amd64, 386, arm64, PIE) get single- and
//! multi-byte mutations aimed at the ELF headers, the build info, the pclntab header, function
//! table and records, the DWARF sections and the code, and random truncations. On each mutant,
//! what `list --json` reads and what `funclat`, `args` and `goroutines` plan must give a result
//! or an error, never a panic.
//!
//! Deterministic: every mutant has its own seed, derived from the binary's, so a failure names
//! the binary, the mutant and its edits. `GOTRACE_FUZZ_ROUNDS=N` sets the mutants per binary
//! (default [`DEFAULT_ROUNDS`], sized for the suite); `GOTRACE_FUZZ_SEED=N` changes the seeds.
//! The suite builds the library with overflow checks (Cargo.toml), so an arithmetic overflow
//! is a panic here, not a silently wrapped number. A stack overflow or a failed allocation
//! would abort the whole test process instead of failing one mutant.

mod common;

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use common::require;
use common::targets::{esbuild_binary, matrix_binary, repo_root, Variant};
use common::toolchain::toolchain;
use gotrace::gobin::runtime::{creation_stack, newproc_abi};
use gotrace::gobin::{Arch, GoBinary};
use gotrace::plan::capture::{self as abi, Abi};
use gotrace::plan::{self, capture::inlined::InlinedArgs, Inlined};
use object::elf::SHF_COMPRESSED;
use object::{Object, ObjectSection, ObjectSegment, SectionFlags};

/// Mutants per binary in the suite.
const DEFAULT_ROUNDS: usize = 400;

/// Patterns planned as `funclat` and `args` would (with whether a RET is needed, and whether
/// inlined calls are planned too): a glob with its inlined calls (whose inline trees, entry
/// edges and DWARF-located arguments are read), the functions `goroutines` plans, and an
/// unknown name (the "did you mean" and "inlined everywhere" paths).
const PLANNED: &[(&str, bool, Inlined)] = &[
    ("main.*", true, Inlined::Yes),
    ("runtime.newproc1", true, Inlined::No),
    ("runtime.goexit1", false, Inlined::No),
    ("main.main", true, Inlined::No),
    (UNKNOWN_NAME, true, Inlined::Yes),
];

/// A function no binary has.
const UNKNOWN_NAME: &str = "main.noSuchFunctionAnywhere";

/// The per-function readers of `list` visit every how-many-th function of a mutant, and every
/// function whose code a mutation touched.
const FUNC_STRIDE: usize = 61;

/// `--strsize` of the planned `args` calls.
const STRSIZE: u32 = 64;

/// xorshift64*: a small deterministic generator (the test must be reproducible).
struct Rng(u64);

impl Rng {
    /// A generator for mutant `index` of a run seeded with `seed` (splitmix64 of both).
    fn for_mutant(seed: u64, index: usize) -> Rng {
        let mut z = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A named byte range of the file that mutations aim at.
#[derive(Debug, Clone)]
struct Region {
    name: String,
    range: Range<usize>,
    /// The DWARF reader reads these bytes (ELF headers and DWARF sections).
    dwarf_input: bool,
}

/// One edit of a mutant.
#[derive(Debug, Clone, Copy)]
enum Edit {
    /// Set one byte.
    Byte { at: usize, value: u8 },
    /// Flip one bit.
    Bit { at: usize, bit: u8 },
    /// Write a little-endian field of `width` bytes (1, 2, 4 or 8) with an edge-case value.
    Field { at: usize, width: usize, value: u64 },
    /// Set `len` consecutive bytes to random values (drawn from `seed`).
    Burst { at: usize, len: usize, seed: u64 },
}

/// Little-endian value of `bytes` (at most 8; missing bytes read as 0).
fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Little-endian field of `width` bytes at `at`, 0 past the end.
fn le_at(data: &[u8], at: usize, width: usize) -> u64 {
    le(data.get(at..).unwrap_or(&[]).get(..width).unwrap_or(&[]))
}

impl Edit {
    /// A random edit inside `range` of `data`.
    fn random(rng: &mut Rng, data: &[u8], range: &Range<usize>) -> Edit {
        let at = range.start + rng.below(range.len());
        match rng.below(4) {
            0 => Edit::Byte {
                at,
                value: rng.next() as u8,
            },
            1 => Edit::Bit {
                at,
                bit: rng.below(8) as u8,
            },
            2 => {
                let width = [1, 2, 4, 8][rng.below(4)];
                let at = range.start + (at - range.start) / width * width;
                Edit::Field {
                    at,
                    width,
                    value: edge_value(rng, width, le_at(data, at, width)),
                }
            }
            _ => Edit::Burst {
                at,
                len: 2 + rng.below(31),
                seed: rng.next() | 1,
            },
        }
    }

    /// Applies the edit, saving each byte it overwrites in `undo`.
    fn apply(self, data: &mut [u8], undo: &mut Vec<(usize, u8)>) {
        let mut set = |at: usize, new: &dyn Fn(u8) -> u8| {
            if let Some(byte) = data.get_mut(at) {
                undo.push((at, *byte));
                *byte = new(*byte);
            }
        };
        match self {
            Edit::Byte { at, value } => set(at, &|_| value),
            Edit::Bit { at, bit } => set(at, &|old| old ^ (1 << bit)),
            Edit::Field { at, width, value } => {
                for (i, &byte) in value.to_le_bytes()[..width].iter().enumerate() {
                    set(at + i, &|_| byte);
                }
            }
            Edit::Burst { at, len, seed } => {
                let mut rng = Rng(seed);
                for i in 0..len {
                    let byte = rng.next() as u8;
                    set(at + i, &|_| byte);
                }
            }
        }
    }
}

/// Edge cases for a field of `width` bytes: zero, one, the sign boundaries, all ones, the
/// original plus or minus one, doubled, or a random number.
fn edge_value(rng: &mut Rng, width: usize, original: u64) -> u64 {
    let max = u64::MAX >> (64 - 8 * width as u32);
    let value = match rng.below(9) {
        0 => 0,
        1 => 1,
        2 => max >> 1,
        3 => (max >> 1) + 1,
        4 => max,
        5 => original.wrapping_add(1),
        6 => original.wrapping_sub(1),
        7 => original.wrapping_mul(2),
        _ => rng.next(),
    };
    value & max
}

/// The regions of a Go ELF binary worth mutating.
fn regions(data: &[u8]) -> Result<Vec<Region>> {
    let file = object::File::parse(data).context("the unmutated binary is not valid ELF")?;
    let mut regions = Vec::new();
    let mut add = |name: &str, start: u64, len: u64| {
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .unwrap_or(usize::MAX)
            .min(data.len());
        if start < end {
            regions.push(Region {
                name: name.to_owned(),
                range: start..end,
                dwarf_input: !name.starts_with("build info")
                    && !name.starts_with("pclntab")
                    && name != "code",
            });
        }
    };
    // ELF header, then e_phoff, e_shoff and the four u16 of the header table sizes.
    let (header_len, phoff, shoff, sizes) = if data[4] == 2 {
        (64, le_at(data, 0x20, 8), le_at(data, 0x28, 8), 0x36)
    } else {
        (52, le_at(data, 0x1c, 4), le_at(data, 0x20, 4), 0x2a)
    };
    let half = |i: usize| le_at(data, sizes + 2 * i, 2);
    add("ELF header", 0, header_len);
    add("program headers", phoff, half(0) * half(1));
    add("section headers", shoff, half(2) * half(3));
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        let Some((offset, size)) = section.file_range() else {
            continue;
        };
        let compressed = name.starts_with(".zdebug") || has_shf_compressed(&section);
        match name {
            ".go.buildinfo" => {
                add("build info", offset, size);
                for (what, offset, len) in buildinfo_pointees(&file, data, offset) {
                    add(what, offset, len);
                }
            }
            ".gopclntab" => {
                for (what, start, len) in pclntab_parts(&data[offset as usize..][..size as usize]) {
                    add(what, offset + start, len);
                }
            }
            ".text" => add("code", offset, size),
            _ if ["debug_info", "debug_abbrev", "debug_str"]
                .iter()
                .any(|part| name.ends_with(part)) =>
            {
                add(name, offset, size);
                if compressed {
                    add(&format!("{name} compression header"), offset, 24);
                }
            }
            _ => {}
        }
    }
    Ok(regions)
}

/// Whether the section's data is compressed (ELF `SHF_COMPRESSED`).
fn has_shf_compressed(section: &object::Section<'_, '_>) -> bool {
    matches!(section.flags(), SectionFlags::Elf { sh_flags, .. } if sh_flags.0 & SHF_COMPRESSED.0 != 0)
}

/// The pclntab's header, name/file/pc tables, function table and function records, as
/// (name, offset in the table, length), read as Go's `debug/gosym` lays them out.
fn pclntab_parts(table: &[u8]) -> Vec<(&'static str, u64, u64)> {
    let ptr = u64::from(table[7]);
    let word = |i: u64| le_at(table, (8 + i * ptr) as usize, ptr as usize);
    let (functab, field, header) = match le_at(table, 0, 4) {
        0xffff_fffb => (8 + ptr, ptr, 8 + ptr),
        0xffff_fffa => (word(6), ptr, 8 + 7 * ptr),
        _ => (word(7), 4, 8 + 8 * ptr),
    };
    let functab_len = (word(0) + 1) * 2 * field;
    let records = functab + functab_len;
    vec![
        ("pclntab header", 0, header),
        (
            "pclntab names, files and pc tables",
            header,
            functab - header,
        ),
        ("pclntab function table", functab, functab_len),
        (
            "pclntab function records",
            records,
            (table.len() as u64).saturating_sub(records),
        ),
    ]
}

/// Go < 1.18 build info points at two Go string headers (version, module info): those
/// headers and their bytes, as (name, file offset, length).
fn buildinfo_pointees(
    file: &object::File<'_>,
    data: &[u8],
    offset: u64,
) -> Vec<(&'static str, u64, u64)> {
    let blob = &data[offset as usize..];
    if blob[15] & 2 != 0 {
        return Vec::new();
    }
    let ptr = usize::from(blob[14]);
    let file_offset = |vaddr: u64| {
        file.segments().find_map(|seg| {
            let (start, size) = seg.file_range();
            let delta = vaddr.checked_sub(seg.address())?;
            (delta < size).then_some(start + delta)
        })
    };
    let mut parts = Vec::new();
    for field in 0..2 {
        let Some(header) = file_offset(le_at(blob, 16 + field * ptr, ptr)) else {
            continue;
        };
        parts.push(("build info string header", header, 2 * ptr as u64));
        let string = le_at(data, header as usize, ptr);
        if let Some(bytes) = file_offset(string) {
            let len = le_at(data, header as usize + ptr, ptr);
            parts.push(("build info string", bytes, len));
        }
    }
    parts
}

/// How far the readers got on one input.
#[derive(Debug, Default, Clone, Copy)]
struct Reach {
    parsed: bool,
    dwarf: bool,
    planned: bool,
}

/// The unmutated binary's DWARF, which a mutant that changed none of the DWARF reader's
/// input shares.
type DwarfCache = Option<gotrace::gobin::format::dwarf::DwarfInfo>;

/// Runs, on `data`, what `list --json` and the planning of `funclat`, `args` and
/// `goroutines` compute before they need root. `touched` are the file offsets the mutation
/// changed: the functions whose code holds one are decoded too. `same_dwarf`: the mutation
/// left the DWARF reader's input alone, so its DWARF is this (and the unknown-name plan, which
/// reads DWARF again, is skipped).
fn exercise(data: &[u8], touched: &[usize], same_dwarf: Option<&DwarfCache>) -> Reach {
    let Ok(bin) = GoBinary::parse(data) else {
        return Reach::default();
    };
    let dwarf = match same_dwarf {
        Some(cached) => cached.as_ref(),
        None => bin.dwarf().ok().flatten(),
    };
    let mut reach = Reach {
        parsed: true,
        dwarf: dwarf.is_some(),
        planned: false,
    };
    // `list --globals`, and the `args --global` reads.
    let mut globals = Vec::new();
    if let Some(info) = dwarf {
        for global in &info.globals {
            if let Some(ty) = global.ty {
                let _ = (info.types.get(ty).size, info.types.name(ty));
                if globals.len() < abi::MAX_GLOBALS {
                    globals.push((global.name.clone(), global.addr, ty));
                }
            }
        }
    }
    let arch = bin.elf.arch;
    let call_abi = if arch == Arch::Amd64 && bin.uses_register_abi() {
        Abi::Register
    } else {
        Abi::Stack
    };
    // The argument plan `args` makes from a function's DWARF signature.
    let call_plan = |name: &str| {
        let Some(info) = dwarf else { return };
        if let Some(sig) = info.functions.get(name) {
            let mut call = abi::call_plan(sig, &info.types, arch, call_abi, STRSIZE);
            let _ = abi::add_globals(&mut call.entry, &globals, &info.types, arch, STRSIZE);
        }
    };
    // `list`: the header line, then per function its line, file offset, probe sites and
    // argument types (here, their plan too: `args` takes any function name).
    let _ = (bin.build.go_release(), bin.build.main_module.as_deref());
    for (i, func) in bin.funcs.iter().enumerate() {
        let code_touched = || {
            bin.elf.file_offset(func.entry).is_some_and(|start| {
                let len = func.end - func.entry;
                touched
                    .iter()
                    .any(|&t| (t as u64).checked_sub(start).is_some_and(|d| d < len))
            })
        };
        if i % FUNC_STRIDE == 0 || code_touched() {
            let _ = bin.pclntab.line(func, func.entry);
            let _ = bin.pclntab.sp_delta(func, func.entry);
            let _ = bin.probe_sites(func);
            call_plan(func.name);
        }
    }
    // `funclat` and `args` planning.
    for &(pattern, need_ret, inlined) in PLANNED {
        if pattern == UNKNOWN_NAME && same_dwarf.is_some() {
            continue;
        }
        let Ok(plan) = plan::plan_with(&bin, &[pattern.to_owned()], need_ret, inlined) else {
            continue;
        };
        reach.planned = true;
        for func in &plan.funcs {
            call_plan(&func.name);
        }
        // What `args` reads at each inlined call, when the mutation may have changed the
        // DWARF that locates its arguments (the pclntab side is read by the planning above).
        if same_dwarf.is_none() && plan.funcs.iter().any(|f| !f.instances.is_empty()) {
            if let Ok(located) = InlinedArgs::new(&bin, dwarf, STRSIZE) {
                for probe in plan.inline_probes() {
                    let _ = located.site_plan(&probe, None);
                }
            }
        }
    }
    // `goroutines`.
    let _ = bin.runtime_layout(dwarf);
    let _ = newproc_abi::for_binary(&bin);
    let _ = creation_stack::sched_bp_offset(&bin);
    reach
}

thread_local! {
    /// Set while this thread runs the readers on a mutant.
    static IN_MUTANT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last panic inside a mutant happened (file:line).
    static PANICKED_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Installs (once) a panic hook that stays silent for panics inside a mutant, which are
/// collected and reported, and prints every other panic (the test's own assertions).
fn quiet_panics_in_mutants() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_MUTANT.get() {
                let at = info.location().map(ToString::to_string).unwrap_or_default();
                PANICKED_AT.set(at);
            } else {
                default(info);
            }
        }));
    });
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// Fuzzes the binary at `path`: the unmutated binary must read and plan, every mutant must
/// not panic, and enough mutants must get past the ELF and pclntab readers for the deeper
/// readers to be exercised.
fn fuzz(label: &str, path: &std::path::Path, seed: u64) {
    quiet_panics_in_mutants();
    let original =
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let regions = regions(&original).unwrap_or_else(|e| panic!("{label}: {e:#}"));
    let unmutated = exercise(&original, &[], None);
    let cache: DwarfCache = GoBinary::parse(&original)
        .ok()
        .and_then(|bin| bin.dwarf().ok().flatten().cloned());
    // gotrace reads arm64 binaries but plans no probes for them.
    let plans = object::File::parse(&*original)
        .is_ok_and(|f| f.architecture() != object::Architecture::Aarch64);
    assert!(
        unmutated.parsed && unmutated.planned == plans,
        "{label}: the unmutated binary does not read and plan ({unmutated:?})"
    );
    let rounds = env_number("GOTRACE_FUZZ_ROUNDS", DEFAULT_ROUNDS as u64) as usize;
    let seed = seed ^ env_number("GOTRACE_FUZZ_SEED", 0);
    let mut data = original.clone();
    let mut undo = Vec::new();
    let mut failures = Vec::new();
    let (mut parsed, mut with_dwarf, mut planned) = (0, 0, 0);
    for mutant in 0..rounds {
        let mut rng = Rng::for_mutant(seed, mutant);
        let region = &regions[rng.below(regions.len())];
        let mut dwarf_touched = region.dwarf_input;
        let (input, what): (&[u8], String) = if rng.below(20) == 0 {
            let len = region.range.start + rng.below(region.range.len());
            dwarf_touched = true;
            (
                &data[..len],
                format!("truncated to {len:#x} bytes ({})", region.name),
            )
        } else {
            let edits = if rng.below(2) == 0 {
                1
            } else {
                2 + rng.below(7)
            };
            let mut described = Vec::new();
            for i in 0..edits {
                // Multi-byte mutants stay in one region half the time.
                let region = if i == 0 || rng.below(2) == 0 {
                    region
                } else {
                    &regions[rng.below(regions.len())]
                };
                dwarf_touched |= region.dwarf_input;
                let edit = Edit::random(&mut rng, &data, &region.range);
                edit.apply(&mut data, &mut undo);
                described.push(format!("{}: {edit:?}", region.name));
            }
            (&data, described.join("; "))
        };
        let touched: Vec<usize> = undo.iter().map(|&(at, _)| at).collect();
        IN_MUTANT.set(true);
        let same_dwarf = (!dwarf_touched).then_some(&cache);
        let result = catch_unwind(AssertUnwindSafe(|| exercise(input, &touched, same_dwarf)));
        IN_MUTANT.set(false);
        match result {
            Ok(reach) => {
                parsed += usize::from(reach.parsed);
                with_dwarf += usize::from(reach.dwarf);
                planned += usize::from(reach.planned);
            }
            Err(panic) => failures.push(format!(
                "{label} mutant {mutant} (seed {seed:#x}): {what}: panicked at {}: {}",
                PANICKED_AT.take(),
                panic_message(&*panic)
            )),
        }
        for (at, byte) in undo.drain(..).rev() {
            data[at] = byte;
        }
    }
    eprintln!(
        "{label}: {rounds} mutants over {} regions: {parsed} read, {with_dwarf} with DWARF, \
         {planned} planned, {} panicked",
        regions.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {rounds} mutants panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        parsed * 4 >= rounds,
        "{label}: only {parsed} of {rounds} mutants were read past the ELF and pclntab readers"
    );
}

/// `program` of `examples/go-targets` built by Go `version` for `goarch` with its DWARF left
/// uncompressed (`-ldflags=-compressdwarf=false`), so that DWARF mutations reach the DWARF
/// reader instead of stopping at zlib.
fn uncompressed_dwarf_binary(
    version: &'static str,
    goarch: &str,
    program: &str,
) -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-targets");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(format!("go{version}-{goarch}-{program}"));
    toolchain(version)?.build(
        &repo_root().join("examples/go-targets").join(program),
        goarch,
        &["-ldflags=-compressdwarf=false"],
        &out,
    )?;
    let data = std::fs::read(&out)?;
    let file = object::File::parse(&*data)?;
    let info = file
        .section_by_name(".debug_info")
        .context("the build has no .debug_info")?;
    if has_shf_compressed(&info) {
        bail!("the build's .debug_info is still compressed");
    }
    Ok(out)
}

macro_rules! fuzz_matrix {
    ($($test:ident => $version:literal, $goarch:literal, $variant:ident, $seed:literal;)*) => {$(
        /// One binary of the build matrix.
        #[test]
        fn $test() {
            let Some(binary) =
                require(matrix_binary($version, $goarch, Variant::$variant, "sample"))
            else {
                return;
            };
            fuzz(&binary.label, &binary.path, $seed);
        }
    )*};
}

fuzz_matrix! {
    fuzz_go1_19_amd64 => "1.19", "amd64", Plain, 0x1019;
    fuzz_go1_21_amd64_stripped => "1.21.13", "amd64", Stripped, 0x1021;
    fuzz_go1_24_386 => "1.24.11", "386", Plain, 0x1024;
    fuzz_go1_27_amd64_pie => "1.27.3", "amd64", Pie, 0x1027;
    fuzz_go1_27_arm64 => "1.27.3", "arm64", Plain, 0x2027;
}

macro_rules! fuzz_esbuild {
    ($($test:ident => $package:literal, $version:literal, $seed:literal;)*) => {$(
        /// One esbuild release from npm (the Go 1.14-1.17 formats).
        #[test]
        fn $test() {
            let Some(binary) = require(esbuild_binary($package, $version)) else { return };
            fuzz(&binary.label, &binary.path, $seed);
        }
    )*};
}

fuzz_esbuild! {
    fuzz_esbuild_go1_14 => "esbuild-linux-64", "0.3.9", 0x1014;
    fuzz_esbuild_go1_15 => "esbuild-linux-64", "0.7.22", 0x1015;
    fuzz_esbuild_go1_15_386 => "esbuild-linux-32", "0.8.45", 0x2015;
    fuzz_esbuild_go1_16 => "esbuild-linux-64", "0.8.57", 0x1016;
    fuzz_esbuild_go1_17 => "esbuild-linux-64", "0.13.15", 0x1017;
}

macro_rules! fuzz_uncompressed_dwarf {
    ($($test:ident => $version:literal, $goarch:literal, $seed:literal;)*) => {$(
        /// A build whose DWARF is not compressed, so mutations reach the DWARF reader.
        #[test]
        fn $test() {
            let Some(path) = require(uncompressed_dwarf_binary($version, $goarch, "argstarget"))
            else {
                return;
            };
            let label = format!("go{}/{}/argstarget (uncompressed DWARF)", $version, $goarch);
            fuzz(&label, &path, $seed);
        }
    )*};
}

fuzz_uncompressed_dwarf! {
    fuzz_go1_27_amd64_dwarf => "1.27.3", "amd64", 0x3027;
    fuzz_go1_19_386_dwarf => "1.19", "386", 0x3019;
}
