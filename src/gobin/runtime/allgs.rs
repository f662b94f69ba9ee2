//! Where a running Go process keeps its goroutines and how to read a parked one
//! (`gotrace goroutines --blocked`): `runtime.allgs` (a `[]*g` of every goroutine ever
//! created, dead ones included, never shrunk) and the fields of `runtime.g` that say whether
//! and why a goroutine is parked.
//!
//! Where each fact comes from:
//! - `runtime.allgs`: the symbol table (`src/runtime/proc.go`, `var allgs []*g`, the same in
//!   Go 1.14–1.27); a stripped binary has none, and gotrace says so rather than guess.
//! - The field offsets (`goid`, `atomicstatus`, `waitreason`, `waitsince`, `sched.sp`,
//!   `sched.pc`, `gopc`, `startpc`): the binary's own DWARF `runtime.g`, as for the other
//!   runtime offsets ([`super::layout`]); without DWARF gotrace says so.
//! - The status values (`src/runtime/runtime2.go`): `_Gwaiting` = 4 in every release 1.14–1.27,
//!   `_Gleaked` = 10 (Go 1.27: a goroutine the GC found unreachable while parked), and the
//!   `_Gscan` bit 0x1000, set while the GC scans the stack (the status without it is the
//!   goroutine's).
//! - `waitsince` (`src/runtime/mgcmark.go` markroot, `proc.go`): the GC sets it to the start
//!   time of the first collection that finds the goroutine parked, and the scheduler zeroes it
//!   when the goroutine runs again; Go's own tracebacks print `[chan receive, N minutes]` from
//!   it. So it bounds from below how long the goroutine has been parked, and is 0 until a
//!   collection has run since it parked.

use anyhow::{Context, Result};

use crate::gobin::GoBinary;

/// `_Gwaiting`: parked in the runtime (runtime2.go).
pub const G_WAITING: u32 = 4;
/// `_Gleaked` (Go 1.27): parked, and found unreachable by the GC.
pub const G_LEAKED: u32 = 10;
/// `_Gdead`: unused (exited, or not started).
pub const G_DEAD: u32 = 6;
/// `_Gscan`: the GC is scanning the stack; the rest of the status is the goroutine's.
pub const G_SCAN: u32 = 0x1000;

/// Where `runtime.allgs` is and the offsets of the `runtime.g` fields a parked goroutine is
/// read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllgsLayout {
    /// Link-time address of `runtime.allgs` (a slice: pointer, length, capacity).
    pub allgs: u64,
    pub ptr_size: u64,
    pub goid: u64,
    /// `atomicstatus` (a uint32, or `atomic.Uint32` from Go 1.20).
    pub status: u64,
    /// `waitreason` (a byte).
    pub waitreason: u64,
    /// `waitsince` (an int64, nanotime).
    pub waitsince: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    /// `gopc`: the return address of the go statement that created it.
    pub gopc: u64,
    /// `startpc`: its start function's entry.
    pub startpc: u64,
}

impl AllgsLayout {
    /// The layout of `bin`'s runtime, or why it cannot be known.
    pub fn of(bin: &GoBinary<'_>) -> Result<AllgsLayout> {
        let allgs = bin.elf.symbol_address("runtime.allgs").context(
            "--blocked finds the goroutines through the runtime.allgs symbol, and the binary is stripped (built with -ldflags=-s): run an unstripped build",
        )?;
        let dwarf = bin.dwarf()?.context(
            "--blocked reads runtime.g's fields by the binary's DWARF, and it has none (built with -ldflags=-w): run a build with DWARF",
        )?;
        let types = &dwarf.types;
        let offset = |path: &[&str]| {
            types.field_offset("runtime.g", path).with_context(|| {
                format!(
                    "the binary's DWARF runtime.g has no field {}",
                    path.join(".")
                )
            })
        };
        Ok(AllgsLayout {
            allgs,
            ptr_size: bin.elf.arch.ptr_size(),
            goid: offset(&["goid"])?,
            status: offset(&["atomicstatus"])?,
            waitreason: offset(&["waitreason"])?,
            waitsince: offset(&["waitsince"])?,
            stack_lo: offset(&["stack", "lo"])?,
            stack_hi: offset(&["stack", "hi"])?,
            sched_sp: offset(&["sched", "sp"])?,
            sched_pc: offset(&["sched", "pc"])?,
            gopc: offset(&["gopc"])?,
            startpc: offset(&["startpc"])?,
        })
    }
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
/// function in package runtime other than runtime.main and runtime.corostart (the finalizer
/// and cleanup goroutines, parked, are the runtime's).
pub fn is_runtime_goroutine(start: &str) -> bool {
    start.starts_with("runtime.") && !matches!(start, "runtime.main" | "runtime.corostart")
}
