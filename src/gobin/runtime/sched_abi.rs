//! Where the Go scheduler's state changes can be seen, for `--breakdown` (docs/design.md §18).
//!
//! `runtime.casgstatus(gp *g, oldval, newval uint32)` makes nearly every change of a
//! goroutine's state in every Go release 1.14 – 1.27, and is `//go:nosplit` in all of them
//! (`src/runtime/proc.go`), so a probe on its first instruction fires once per call. The
//! register ABI (amd64, Go ≥ 1.17) passes gp, oldval, newval in RAX, RBX, RCX; the stack ABI
//! (386, amd64 before 1.17) lays them out from SP + pointer size: gp, then the two uint32s.
//!
//! From Go 1.26, `reentersyscall` and `exitsyscall` switch `_Grunning` ↔ `_Gsyscall` with a
//! compare-and-swap of their own and call casgstatus only when it fails; their callers
//! `runtime.entersyscall` and `runtime.exitsyscall` (both `//go:nosplit` in every release)
//! are probed there instead.

use crate::gobin::{Arch, GoBinary};

/// Where casgstatus's `gp` and `newval` are at its first instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasgstatusAbi {
    /// gp in RAX, newval in ECX.
    Registers,
    /// Offsets from SP.
    Stack {
        /// Bytes from SP to `gp`.
        gp_sp_offset: u32,
        /// Bytes from SP to `newval`.
        newval_sp_offset: u32,
    },
}

/// The first Go release whose syscall transitions bypass casgstatus.
const SYSCALL_CAS_SINCE: (u32, u32) = (1, 26);

/// casgstatus's ABI in this binary.
pub fn casgstatus_abi(bin: &GoBinary<'_>) -> CasgstatusAbi {
    if bin.elf.arch == Arch::Amd64 && bin.uses_register_abi() {
        return CasgstatusAbi::Registers;
    }
    let ptr = bin.elf.arch.ptr_size() as u32;
    CasgstatusAbi::Stack {
        gp_sp_offset: ptr,
        // gp, then oldval (a uint32), then newval.
        newval_sp_offset: 2 * ptr + 4,
    }
}

/// Whether `runtime.entersyscall` and `runtime.exitsyscall` must be probed: the release
/// switches to and from `_Gsyscall` without casgstatus, or the binary does not say its
/// release (probing them then costs a second hit per system call, never a wrong part).
pub fn syscalls_bypass_casgstatus(bin: &GoBinary<'_>) -> bool {
    bin.build
        .go_release()
        .is_none_or(|release| release >= SYSCALL_CAS_SINCE)
}
