//! The creation stack of a goroutine (`gotrace goroutines --stack`): the parent's stack at the go statement. The BPF side follows
//! the frame-pointer chain from the BP that `runtime.systemstack` saved in the parent's
//! `g.sched` before running newproc1 on g0 (amd64 only: Go keeps frame pointers there, not on
//! 386); this module gives it the offset of `g.sched.bp` and names the return addresses.

use anyhow::{bail, Context, Result};

use crate::gobin::{Arch, GoBinary};

/// The first Go release whose `gobuf` has no `ret` field (one word shorter).
const GOBUF_WITHOUT_RET_SINCE: (u32, u32) = (1, 25);

/// offsetof(runtime.g, sched.bp) on amd64, from `src/runtime/runtime2.go`: `sched` follows
/// `stack` (2 words), `stackguard0`, `stackguard1`, `_panic`, `_defer` and `m`; in `gobuf`,
/// `bp` follows `sp, pc, g, ctxt, ret, lr` (Go ≤ 1.24) or `sp, pc, g, ctxt, lr` (Go ≥ 1.25).
pub fn sched_bp_offset(bin: &GoBinary<'_>) -> Result<u32> {
    if bin.elf.arch != Arch::Amd64 {
        bail!(
            "--stack needs frame pointers, which Go keeps on amd64 only (this binary is {})",
            bin.elf.arch.goarch()
        );
    }
    let release = bin
        .build
        .go_release()
        .context("--stack: the binary does not say which Go release built it")?;
    let gobuf_words_before_bp = if release >= GOBUF_WITHOUT_RET_SINCE {
        5
    } else {
        6
    };
    Ok(8 * (7 + gobuf_words_before_bp))
}

/// "function file:line" for each return address of a 0-terminated creation stack, from the
/// go statement (return address `caller_pc`) outwards: the runtime's frames above it (newer
/// Go versions' systemstack keeps a frame of its own) are dropped. Like Go's tracebacks, the
/// line is that of the call (`pc - 1`).
pub fn frames(bin: &GoBinary<'_>, stack: &[u64], caller_pc: u64) -> Vec<String> {
    let len = stack.iter().position(|&pc| pc == 0).unwrap_or(stack.len());
    let stack = &stack[..len];
    let first = stack.iter().position(|&pc| pc == caller_pc).unwrap_or(0);
    stack[first..]
        .iter()
        .map(|&pc| {
            let site = bin.call_site(pc);
            match (site.function, site.file_line) {
                (Some(function), Some((file, line))) => format!("{function} {file}:{line}"),
                (Some(function), None) => function.to_owned(),
                (None, _) => format!("{pc:#x}"),
            }
        })
        .collect()
}
