//! Where the current goroutine's g lives, by architecture and ABI: amd64 register ABI (Go ≥
//! 1.17) in R14; amd64 stack ABI in TLS at `fsbase − 8`; 386 in TLS through `gs`. With the
//! pointer size and `g.stack.hi`'s offset, these are the facts every BPF program needs.

use anyhow::{bail, Result};

use crate::gobin::{Arch, GoBinary};

/// Where the BPF side finds the current g (`enum g_source` in src/bpf/gotrace.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GSource {
    /// amd64 register ABI: R14.
    R14,
    /// amd64 stack ABI: TLS at fsbase + offset.
    FsTls(i32),
    /// 386: TLS at the %gs segment base + offset.
    GsTls(i32),
}

/// Facts about the Go runtime of the binary that every BPF program needs.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeFacts {
    /// Where the current goroutine's `g` pointer is.
    pub g_source: GSource,
    /// Pointer size of the target in bytes.
    pub ptr_size: u32,
    /// offsetof(runtime.g, stack.hi): `stack` is g's first field in every Go release.
    pub g_stack_hi: u32,
}

impl RuntimeFacts {
    /// How the BPF side finds g and the stack bounds in `bin` (docs/design.md §5).
    pub fn of(bin: &GoBinary<'_>) -> Result<Self> {
        let arch = bin.elf.arch;
        let g_source = match arch {
            Arch::Amd64 if bin.uses_register_abi() => GSource::R14,
            Arch::Amd64 => GSource::FsTls(-8),
            Arch::I386 => GSource::GsTls(-4),
            Arch::Arm64 => bail!("tracing arm64 binaries is not supported on this machine (only reading them: gotrace list)"),
        };
        let ptr_size = arch.ptr_size() as u32;
        Ok(RuntimeFacts {
            g_source,
            ptr_size,
            g_stack_hi: ptr_size,
        })
    }
}
