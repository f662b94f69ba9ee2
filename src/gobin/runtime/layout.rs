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
    pub source: LayoutSource,
}

/// `g.goid`, `m.curg`, `g.atomicstatus` and `g.waitreason` for 64-bit (amd64, arm64) and 386;
/// `g.stack` and `g.m` never moved.
struct Row {
    /// Go 1.x minor versions the row covers, inclusive.
    minors: (u32, u32),
    goid_64: u64,
    curg_64: u64,
    goid_386: u64,
    curg_386: u64,
    /// `g.atomicstatus` and `g.waitreason`, 64-bit then 386.
    status_64: (u64, u64),
    status_386: (u64, u64),
}

/// Layout by Go minor version (see the module doc for the source of each row).
const TABLE: &[Row] = &[
    Row {
        minors: (13, 18),
        goid_64: 152,
        curg_64: 192,
        goid_386: 80,
        curg_386: 104,
        status_64: (144, 176),
        status_386: (72, 100),
    },
    Row {
        minors: (19, 22),
        goid_64: 152,
        curg_64: 192,
        goid_386: 80,
        curg_386: 108,
        status_64: (144, 176),
        status_386: (72, 100),
    },
    Row {
        minors: (23, 24),
        goid_64: 160,
        curg_64: 192,
        goid_386: 84,
        curg_386: 108,
        status_64: (152, 184),
        status_386: (76, 104),
    },
    Row {
        minors: (25, 27),
        goid_64: 152,
        curg_64: 184,
        goid_386: 80,
        curg_386: 100,
        status_64: (144, 176),
        status_386: (72, 100),
    },
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
    let (g_goid, m_curg, (g_atomicstatus, g_waitreason)) = match arch {
        Arch::Amd64 | Arch::Arm64 => (row.goid_64, row.curg_64, row.status_64),
        Arch::I386 => (row.goid_386, row.curg_386, row.status_386),
    };
    Some(RuntimeLayout {
        g_goid,
        g_stack_lo: 0,
        g_stack_hi: ptr,
        g_m: 6 * ptr,
        m_curg,
        g_atomicstatus,
        g_waitreason,
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
