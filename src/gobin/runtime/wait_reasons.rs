//! The runtime's names of the reasons a goroutine waits (`g.waitreason`, a `waitReason` byte):
//! the strings `runtime.waitReasonStrings` holds, read from the binary itself, or for a
//! stripped binary from a per-Go-version table (docs/design.md §18).
//!
//! `runtime.waitReasonStrings` is a `[N]string` in the data section: N pairs of a pointer and a
//! length, each naming `waitReason(i)` (index 0, `waitReasonZero`, is ""). The symbol holds
//! the array's size, so N needs no table. The order changed between releases (Go 1.26 moved
//! the channel and select reasons), so a stripped binary's names come from the table row of
//! its release, and a release the table does not know gets none rather than another's.
//!
//! Where each table row comes from: the `runtime.waitReasonStrings` of a program built with
//! each toolchain, read with Go's `debug/elf` (tests/oracle/dwarfdump), for Go 1.19.8,
//! 1.21.13, 1.22.10, 1.23.9, 1.24.11, 1.25.5, 1.26.6 and 1.27.3 (1.26 and 1.27 are equal), and
//! of esbuild 0.3.9 (Go 1.14.2); `tests/dwarf_oracle.rs` checks every row against every
//! toolchain installed here, for amd64, 386 and arm64, and against that esbuild. Go 1.15–1.18
//! and 1.20 were not read: their stripped binaries get no names (their unstripped ones are
//! read by symbol).

use crate::gobin::format::elf::ElfImage;

/// Where a [`WaitReasons`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitReasonSource {
    /// The binary's own `runtime.waitReasonStrings`.
    Symbol,
    /// The per-Go-version table in this module.
    Table,
}

/// The runtime's wait-reason names, indexed by the `waitReason` byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitReasons {
    /// The names, at their `waitReason` values (`waitReasonZero`, 0, is empty).
    pub names: Vec<String>,
    /// Where they came from.
    pub source: WaitReasonSource,
}

impl WaitReasons {
    /// The name of wait reason `index` as the runtime prints it; None past the array.
    pub fn name(&self, index: u8) -> Option<&str> {
        self.names.get(usize::from(index)).map(String::as_str)
    }
}

/// The binary's wait-reason names: by symbol, else by the table row of `release` (Go's
/// (major, minor)); None when neither is there.
pub fn read(elf: &ElfImage<'_>, release: Option<(u32, u32)>) -> Option<WaitReasons> {
    from_symbol(elf).or_else(|| {
        Some(WaitReasons {
            names: for_release(release?)?
                .into_iter()
                .map(str::to_string)
                .collect(),
            source: WaitReasonSource::Table,
        })
    })
}

/// Longest wait-reason string read from a binary; a longer length means a corrupt array.
const MAX_NAME_LEN: u64 = 256;

/// Most entries read from the array; a bigger symbol means a corrupt one.
const MAX_REASONS: u64 = 256;

/// `runtime.waitReasonStrings` read from `.symtab` and the data it points at; None when the
/// symbol is absent or any string lies outside the file.
pub fn from_symbol(elf: &ElfImage<'_>) -> Option<WaitReasons> {
    let ptr = elf.arch.ptr_size();
    let (address, size) = elf.symbol("runtime.waitReasonStrings")?;
    let count = size / (2 * ptr);
    if count == 0 || count > MAX_REASONS {
        return None;
    }
    let array = elf.bytes_at(address, count * 2 * ptr)?;
    let word = |bytes: &[u8]| {
        bytes
            .iter()
            .take(ptr as usize)
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
    };
    let names = array
        .chunks_exact(2 * ptr as usize)
        .map(|pair| {
            let (data, len) = (word(pair), word(&pair[ptr as usize..]));
            if len == 0 {
                return Some(String::new());
            }
            if len > MAX_NAME_LEN {
                return None;
            }
            let bytes = elf.bytes_at(data, len)?;
            Some(String::from_utf8_lossy(bytes).into_owned())
        })
        .collect::<Option<Vec<_>>>()?;
    Some(WaitReasons {
        names,
        source: WaitReasonSource::Symbol,
    })
}

/// The table's names for Go (major, minor), when it has that release.
pub fn for_release((major, minor): (u32, u32)) -> Option<Vec<&'static str>> {
    if major != 1 {
        return None;
    }
    rows()
        .find(|((first, last), _)| (*first..=*last).contains(&minor))
        .map(|(_, names)| names.split('|').collect())
}

/// The table (see the module doc for the source of each row): lines of `FIRST LAST`, a tab and
/// the names joined by `|`; `#` starts a comment line.
const TABLE: &str = include_str!("wait_reasons.txt");

/// The table's rows: Go 1.x minor versions (inclusive) and their names joined by `|`.
fn rows() -> impl Iterator<Item = ((u32, u32), &'static str)> {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (minors, names) = line.split_once('\t')?;
            let (first, last) = minors.split_once(' ')?;
            Some(((first.parse().ok()?, last.parse().ok()?), names))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_releases_have_no_names() {
        assert_eq!(for_release((1, 20)), None);
        assert_eq!(for_release((1, 18)), None);
        assert_eq!(for_release((1, 13)), None);
        assert_eq!(for_release((1, 28)), None);
        assert_eq!(for_release((2, 1)), None);
    }

    #[test]
    fn every_row_starts_with_the_zero_reason() {
        let lines = TABLE.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(rows().count(), lines, "every table line parses");
        assert!(rows().all(|(_, names)| names.starts_with('|')));
    }
}
