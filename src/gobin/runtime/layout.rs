//! Field offsets of runtime.g and runtime.m: from DWARF, or a per-Go-version table when stripped.
//!
//! Where each table row comes from (Linux; amd64 and arm64 share every offset):
//! - Go 1.19, 1.21–1.27, all three architectures: read from the DWARF of binaries built with
//!   each toolchain (`tests/dwarf_oracle.rs` checks every one that is installed).
//! - Go 1.14 amd64: the DWARF of esbuild 0.3.9.
//! - From the runtime source (`src/runtime/runtime2.go`): Go 1.13, 1.14.6, 1.16.14, 1.17.13,
//!   1.18 and 1.20.6 (every other row of those versions). Go 1.15 was not read: 1.14 and 1.16
//!   declare the same fields up to `g.goid` and `m.curg`. The offsets follow Go's layout rules,
//!   checked on the DWARF versions: `gobuf` is 7 words until Go 1.24 (6 from 1.25, `ret`
//!   removed), `int64`/`uint64` are 4-aligned on 386, `m` gained `_ uint32` after `divmod` in
//!   1.19 and `g` gained `syscallbp` in 1.23.
//! - `g.atomicstatus` and `g.waitreason` (issue 26): the DWARF of Go 1.19, 1.21–1.27 (amd64,
//!   386, arm64, `tests/dwarf_oracle.rs`); for Go 1.13–1.18 the same fields precede them as in
//!   1.19 (`param`, then `atomicstatus uint32`, `stackLock uint32`, `goid`, `schedlink`,
//!   `waitsince int64`, `waitreason`), which the 1.14 esbuild DWARF confirms on amd64.

use crate::gobin::Arch;

/// Where a [`RuntimeLayout`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutSource {
    /// The binary's own DWARF types runtime.g and runtime.m.
    Dwarf,
    /// The per-Go-version table in this module.
    Table,
}

/// Byte offsets of the runtime fields gotrace reads from a goroutine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RuntimeLayout {
    /// `g.goid`.
    pub g_goid: u64,
    /// `g.stack.lo`.
    pub g_stack_lo: u64,
    /// `g.stack.hi`.
    pub g_stack_hi: u64,
    /// `g.m`.
    pub g_m: u64,
    /// `m.curg`.
    pub m_curg: u64,
    /// `g.atomicstatus` (a uint32: `_Grunning`, `_Gwaiting`, ...).
    pub g_atomicstatus: u64,
    /// `g.waitreason` (a `waitReason` byte, [`crate::gobin::runtime::wait_reasons`]).
    pub g_waitreason: u64,
    /// Where these offsets were read.
    pub source: LayoutSource,
}

/// The offsets that moved between Go releases; `g.stack` and `g.m` never did.
#[derive(Clone, Copy)]
struct Moved {
    /// `g.goid`.
    goid: u64,
    /// `m.curg`.
    curg: u64,
    /// `g.atomicstatus`.
    atomicstatus: u64,
    /// `g.waitreason`.
    waitreason: u64,
}

/// The [`Moved`] offsets of a range of Go releases, for 64-bit (amd64, arm64) and 386.
struct Row {
    /// Go 1.x minor versions the row covers, inclusive.
    minors: (u32, u32),
    b64: Moved,
    b386: Moved,
}

/// A [`Row`] from `[goid, curg, atomicstatus, waitreason]` for 64-bit and for 386.
const fn row(minors: (u32, u32), b64: [u64; 4], b386: [u64; 4]) -> Row {
    const fn moved([goid, curg, atomicstatus, waitreason]: [u64; 4]) -> Moved {
        Moved {
            goid,
            curg,
            atomicstatus,
            waitreason,
        }
    }
    Row {
        minors,
        b64: moved(b64),
        b386: moved(b386),
    }
}

/// Layout by Go minor version (see the module doc for the source of each row): `goid`,
/// `curg`, `atomicstatus`, `waitreason` for 64-bit, then for 386.
const TABLE: &[Row] = &[
    row((13, 18), [152, 192, 144, 176], [80, 104, 72, 100]),
    row((19, 22), [152, 192, 144, 176], [80, 108, 72, 100]),
    row((23, 24), [160, 192, 152, 184], [84, 108, 76, 104]),
    row((25, 27), [152, 184, 144, 176], [80, 100, 72, 100]),
];

/// The layout for a Go (major, minor) release ([`crate::gobin::format::buildinfo::BuildInfo::go_release`])
/// and architecture, when the table knows that release.
pub fn for_release((major, minor): (u32, u32), arch: Arch) -> Option<RuntimeLayout> {
    if major != 1 {
        return None;
    }
    let row = TABLE
        .iter()
        .find(|row| (row.minors.0..=row.minors.1).contains(&minor))?;
    let ptr = arch.ptr_size();
    let moved = match arch {
        Arch::Amd64 | Arch::Arm64 => row.b64,
        Arch::I386 => row.b386,
    };
    Some(RuntimeLayout {
        g_goid: moved.goid,
        g_stack_lo: 0,
        g_stack_hi: ptr,
        g_m: 6 * ptr,
        m_curg: moved.curg,
        g_atomicstatus: moved.atomicstatus,
        g_waitreason: moved.waitreason,
        source: LayoutSource::Table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_versions_have_no_layout() {
        assert_eq!(for_release((1, 12), Arch::Amd64), None);
        assert_eq!(for_release((1, 28), Arch::Amd64), None);
        assert_eq!(for_release((2, 21), Arch::I386), None);
    }
}
