//! Bounded fuzzing of the binary readers, run in the suite: real Go binaries with random byte
//! corruptions (in the ELF headers, the pclntab, the DWARF, the code) and random truncations.
//! Every reader must return Ok or Err, never panic. Deterministic (seeded), so a failure names
//! the seed and the mutation that reproduce it.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::require;
use common::targets::{esbuild_binary, matrix_binary, Variant};
use gotrace::gobin::GoBinary;
use object::{Object, ObjectSection};

/// Mutated copies tried per binary.
const ROUNDS: usize = 300;

/// xorshift64*: a small deterministic generator (the test must be reproducible).
struct Rng(u64);

impl Rng {
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

/// Byte ranges worth corrupting: ELF header and section table, pclntab, DWARF, code.
fn regions(data: &[u8]) -> Vec<(usize, usize)> {
    let mut regions = vec![(0, 64.min(data.len()))];
    let file = object::File::parse(data).expect("test binaries are valid ELF");
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        let interesting = name == ".gopclntab"
            || name == ".text"
            || name == ".go.buildinfo"
            || name == ".data.rel.ro"
            || name.contains("debug_info")
            || name.contains("debug_abbrev");
        if let (true, Some((off, size))) = (interesting, section.file_range()) {
            regions.push((off as usize, (off + size) as usize));
        }
    }
    if let Some(shoff) = data.get(0x28..0x30) {
        let shoff = u64::from_le_bytes(shoff.try_into().unwrap()) as usize;
        regions.push((shoff.min(data.len()), data.len()));
    }
    regions
}

/// Runs every reader over `data`; returns a description if one panicked.
fn exercise(data: &[u8]) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let Ok(bin) = GoBinary::parse(data) else {
            return;
        };
        for func in bin.funcs.iter().step_by(7) {
            let _ = bin.probe_sites(func);
            let _ = bin.pclntab.line(func, func.entry);
            let _ = bin.pclntab.sp_delta(func, func.entry + 1);
        }
        let _ = bin.dwarf();
    }));
    result.err().map(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn fuzz(label: &str, original: &[u8], seed: u64) {
    let mut rng = Rng(seed);
    let regions = regions(original);
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let mut data = original.to_vec();
        let what = match rng.below(4) {
            0 => {
                let len = rng.below(data.len());
                data.truncate(len);
                format!("truncated to {len} bytes")
            }
            _ => {
                let (start, end) = regions[rng.below(regions.len())];
                let flips = 1 + rng.below(16);
                for _ in 0..flips {
                    if end > start {
                        let at = start + rng.below(end - start);
                        data[at] = rng.next() as u8;
                    }
                }
                format!("{flips} random bytes in {start:#x}..{end:#x}")
            }
        };
        if let Some(panic) = exercise(&data) {
            failures.push(format!(
                "{label} seed {seed:#x} round {round}: {what}: panicked: {panic}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ROUNDS} mutations panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn readers_never_panic_on_corrupt_binaries() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut binaries = Vec::new();
    for (version, goarch, variant) in [
        ("1.19", "amd64", Variant::Plain),
        ("1.27.3", "amd64", Variant::Pie),
        ("1.24.11", "386", Variant::Stripped),
        ("1.27.3", "arm64", Variant::Plain),
    ] {
        binaries.extend(require(matrix_binary(version, goarch, variant, "sample")));
    }
    binaries.extend(require(esbuild_binary("esbuild-linux-64", "0.3.9")));
    for (i, binary) in binaries.iter().enumerate() {
        let data = std::fs::read(&binary.path).unwrap();
        fuzz(&binary.to_string(), &data, 0x9e37_79b9_7f4a_7c15 ^ i as u64);
    }
}
