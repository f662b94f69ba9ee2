//! Where `runtime.newproc1` keeps the values `gotrace goroutines` reads: its `fn *funcval` and
//! `callerpc uintptr` parameters at entry and its `*g` result at each RET.
//!
//! The signature, from `src/runtime/proc.go` of each toolchain:
//! - Go 1.18 – 1.22: `newproc1(fn *funcval, callergp *g, callerpc uintptr) *g`
//! - Go 1.23 – 1.27: `newproc1(fn *funcval, callergp *g, callerpc uintptr, parked bool,
//!   waitreason waitReason) *g` (`waitReason` is a uint8)
//! - Go 1.15 – 1.17 passed `argp` and `narg` as well and are not supported.
//!
//! The register ABI (amd64, Go ≥ 1.17) assigns fn, callergp, callerpc to RAX, RBX, RCX and
//! the result to RAX. The stack ABI (386) lays the arguments out from SP+ptrsize (the return
//! address is at SP) and the result after them, aligned to the pointer size.

use anyhow::{bail, Context, Result};

use crate::gobin::{Arch, GoBinary};

/// How the BPF side reads newproc1's values (mirrors `struct newproc_abi` in gotrace.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewprocAbi {
    /// fn in RAX, callerpc in RCX, the result in RAX.
    Registers,
    /// Offsets from SP at entry (equal to SP at each RET).
    Stack {
        /// Bytes from SP to `fn`.
        fn_sp_offset: u32,
        /// Bytes from SP to `callerpc`.
        callerpc_sp_offset: u32,
        /// Bytes from SP to the `*g` result.
        result_sp_offset: u32,
    },
}

/// The first Go release whose newproc1 has the `parked` and `waitreason` parameters.
const PARKED_PARAMS_SINCE: (u32, u32) = (1, 23);
/// The first Go release with the three-parameter newproc1 (no `argp`, `narg`).
const SUPPORTED_SINCE: (u32, u32) = (1, 18);

/// newproc1's ABI for this binary, from its Go version and architecture.
pub fn for_binary(bin: &GoBinary<'_>) -> Result<NewprocAbi> {
    let release = bin
        .build
        .go_release()
        .context("the binary does not say which Go release built it (no build info), so runtime.newproc1's parameters are unknown")?;
    if release < SUPPORTED_SINCE {
        bail!(
            "built with Go {}.{}: gotrace goroutines supports binaries built with Go 1.18 or later",
            release.0,
            release.1
        );
    }
    if bin.elf.arch == Arch::Amd64 && bin.uses_register_abi() {
        return Ok(NewprocAbi::Registers);
    }
    Ok(stack_layout(
        bin.elf.arch.ptr_size() as u32,
        release >= PARKED_PARAMS_SINCE,
    ))
}

/// The stack-ABI offsets for a pointer size, with or without `parked bool, waitreason uint8`.
fn stack_layout(ptr: u32, parked_params: bool) -> NewprocAbi {
    // fn, callergp, callerpc: one word each.
    let mut args_size = 3 * ptr;
    if parked_params {
        args_size += 2;
    }
    let results_start = args_size.div_ceil(ptr) * ptr;
    NewprocAbi::Stack {
        fn_sp_offset: ptr,
        callerpc_sp_offset: ptr + 2 * ptr,
        result_sp_offset: ptr + results_start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_offsets_follow_the_signature() {
        assert_eq!(
            stack_layout(4, false),
            NewprocAbi::Stack {
                fn_sp_offset: 4,
                callerpc_sp_offset: 12,
                result_sp_offset: 16
            }
        );
        assert_eq!(
            stack_layout(4, true),
            NewprocAbi::Stack {
                fn_sp_offset: 4,
                callerpc_sp_offset: 12,
                result_sp_offset: 20
            }
        );
    }
}
