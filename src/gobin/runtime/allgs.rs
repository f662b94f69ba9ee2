//! Where a running Go process keeps its goroutines and how to read a parked one
//! (`gotrace goroutines --blocked`): `runtime.allgs` (a `[]*g` of every goroutine ever
//! created, dead ones included, never shrunk) and the fields of `runtime.g` that say whether,
//! why and since when a goroutine is parked, and where it stopped.
//!
//! Where each fact comes from:
//! - `runtime.allgs` (`src/runtime/proc.go`, `var allgs []*g`, the same in Go 1.14–1.27): the
//!   symbol table; in a stripped binary, the one slice `runtime.allgadd` (which appends to it)
//!   reads as three words, its pointer, length and capacity, by absolute address. Its other
//!   globals (`allglock`, `allglen`, `allgptr`) are single words, so the triple names it; the
//!   slice is then checked in the process ([`looks_like_allgs`]).
//! - `goid`, `atomicstatus`, `waitreason`, `stack`: [`super::layout`] (the binary's DWARF, or
//!   the per-Go-version table).
//! - `waitsince`: the binary's DWARF; without it, the int64 right before `waitreason`, as
//!   every release 1.14–1.27 declares it (`waitsince int64` then `waitreason waitReason`;
//!   DWARF of Go 1.19, 1.21, 1.24 and 1.27, amd64 and 386: `waitreason - 8`).
//! - `sched.sp` and `sched.pc`: the binary's DWARF; without it, the words after `stack`
//!   (2 words), `stackguard0`, `stackguard1`, `_panic`, `_defer` and `m`: `sched` is word 7 and
//!   `gobuf` begins `sp, pc` in every release.
//! - The status values (`src/runtime/runtime2.go`): `_Gwaiting` = 4 in every release
//!   1.14–1.27, `_Gleaked` = 10 (Go 1.27: a goroutine the GC found unreachable while parked),
//!   `_Gdead` = 6, and the `_Gscan` bit 0x1000, set while the GC scans the stack (the status
//!   without it is the goroutine's).
//! - `waitsince` (`src/runtime/mgcmark.go` markroot, `mgc.go` gcMark, `proc.go` execute):
//!   a collection's stack scan stamps a parked goroutine whose `waitsince` is 0 with
//!   `work.tstart`, which gcMark sets at the *previous* collection's mark termination (0
//!   before the first); the scheduler zeroes it when the goroutine runs again. Go's tracebacks
//!   print `[chan receive, N minutes]` from it. So it says, roughly, since when the goroutine
//!   has been parked, once a collection has seen it parked.

use anyhow::{Context, Result};

use crate::gobin::code::disasm;
use crate::gobin::GoBinary;

/// `_Gwaiting`: parked in the runtime (runtime2.go).
pub const G_WAITING: u32 = 4;
/// `_Gleaked` (Go 1.27): parked, and found unreachable by the GC.
pub const G_LEAKED: u32 = 10;
/// `_Gdead`: unused (exited, or not started).
pub const G_DEAD: u32 = 6;
/// `_Gscan`: the GC is scanning the stack; the rest of the status is the goroutine's.
pub const G_SCAN: u32 = 0x1000;

/// How [`AllgsLayout::allgs`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllgsSource {
    /// The symbol table's `runtime.allgs`.
    Symbol,
    /// The slice `runtime.allgadd` reads (stripped binaries).
    Code,
}

/// Where `runtime.allgs` is and the offsets of the `runtime.g` fields a parked goroutine is
/// read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllgsLayout {
    /// Link-time address of `runtime.allgs` (a slice: pointer, length, capacity).
    pub allgs: u64,
    /// How `allgs` was found.
    pub allgs_source: AllgsSource,
    /// Pointer size of the target in bytes.
    pub ptr_size: u64,
    /// Offset of `goid` in `runtime.g`.
    pub goid: u64,
    /// `atomicstatus` (a uint32, or `atomic.Uint32` from Go 1.20).
    pub status: u64,
    /// `waitreason` (a byte).
    pub waitreason: u64,
    /// `waitsince` (an int64, nanotime).
    pub waitsince: u64,
    /// Offset of `stack.lo` in `runtime.g`.
    pub stack_lo: u64,
    /// Offset of `stack.hi` in `runtime.g`.
    pub stack_hi: u64,
    /// Offset of `sched.sp` (the saved stack pointer of a parked goroutine): from the DWARF,
    /// else 7 pointers.
    pub sched_sp: u64,
    /// Offset of `sched.pc` (where a parked goroutine resumes): from the DWARF, else 8
    /// pointers.
    pub sched_pc: u64,
}

impl AllgsLayout {
    /// The layout of `bin`'s runtime, or why it cannot be known.
    pub fn of(bin: &GoBinary<'_>) -> Result<AllgsLayout> {
        let ptr = bin.elf.arch.ptr_size();
        let (allgs, allgs_source) = match bin.elf.symbol_address("runtime.allgs") {
            Some(address) => (address, AllgsSource::Symbol),
            None => (allgs_by_code(bin)?, AllgsSource::Code),
        };
        let dwarf = bin.dwarf()?;
        let runtime = bin.runtime_layout(dwarf)?;
        let types = dwarf.map(|d| &d.types);
        let field = |path: &[&str], without: u64| match types {
            Some(types) => types.field_offset("runtime.g", path).with_context(|| {
                format!(
                    "the binary's DWARF runtime.g has no field {}",
                    path.join(".")
                )
            }),
            None => Ok(without),
        };
        Ok(AllgsLayout {
            allgs,
            allgs_source,
            ptr_size: ptr,
            goid: runtime.g_goid,
            status: runtime.g_atomicstatus,
            waitreason: runtime.g_waitreason,
            waitsince: field(&["waitsince"], runtime.g_waitreason.saturating_sub(8))?,
            stack_lo: runtime.g_stack_lo,
            stack_hi: runtime.g_stack_hi,
            sched_sp: field(&["sched", "sp"], 7 * ptr)?,
            sched_pc: field(&["sched", "pc"], 8 * ptr)?,
        })
    }
}

/// The address of the one global slice `runtime.allgadd` reads as three consecutive words.
fn allgs_by_code(bin: &GoBinary<'_>) -> Result<u64> {
    let missing = "the binary has no symbol table and gotrace cannot find runtime.allgs in runtime.allgadd's code (amd64 and 386 only)";
    let func = bin
        .funcs
        .iter()
        .find(|f| f.name == "runtime.allgadd")
        .context(missing)?;
    let code = bin.code(func).context(missing)?;
    let words = disasm::global_words(bin.elf.arch, code, func.entry).context(missing)?;
    let ptr = bin.elf.arch.ptr_size();
    let mut slices: Vec<u64> = words
        .iter()
        .copied()
        .filter(|&a| words.contains(&(a + ptr)) && words.contains(&(a + 2 * ptr)))
        .collect();
    slices.sort_unstable();
    slices.dedup();
    match slices[..] {
        [allgs] => Ok(allgs),
        _ => anyhow::bail!("{missing}"),
    }
}

/// Whether a slice header read from the process at `allgs` is plausible: its length within its
/// capacity, and its first goroutine (the first one created, `runtime.main`'s) goroutine 1.
pub fn looks_like_allgs(len: u64, cap: u64, first_goid: Option<u64>) -> bool {
    len <= cap && (len == 0 || first_goid == Some(1))
}

/// Whether a goroutine with this `atomicstatus` is parked (`_Gwaiting`, or `_Gleaked`), and
/// which.
pub fn parked(status: u32) -> Option<&'static str> {
    match status & !G_SCAN {
        G_WAITING => Some("waiting"),
        G_LEAKED => Some("leaked"),
        _ => None,
    }
}

/// Whether the goroutine that started at function `start` is one of the runtime's own, as
/// `runtime.isSystemGoroutine` (traceback.go) decides for `runtime.Stack(buf, true)`: a start
/// function in package runtime other than runtime.main and runtime.corostart (the GC workers,
/// the sweeper, the scavenger, the forced-GC helper, and the finalizer and cleanup goroutines
/// while parked).
pub fn is_runtime_goroutine(start: &str) -> bool {
    start.starts_with("runtime.") && !matches!(start, "runtime.main" | "runtime.corostart")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_states() {
        assert_eq!(parked(G_WAITING), Some("waiting"));
        assert_eq!(parked(G_WAITING | G_SCAN), Some("waiting"));
        assert_eq!(parked(G_LEAKED), Some("leaked"));
        assert_eq!(parked(2), None);
        assert_eq!(parked(G_DEAD), None);
    }

    #[test]
    fn runtime_goroutines() {
        assert!(is_runtime_goroutine("runtime.bgsweep"));
        assert!(is_runtime_goroutine("runtime.gcBgMarkWorker"));
        assert!(!is_runtime_goroutine("runtime.main"));
        assert!(!is_runtime_goroutine("main.main.func1"));
    }
}
