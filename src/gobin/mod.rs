//! Everything gotrace knows about a Go binary, read from the file alone: ELF layout, build
//! info, pclntab (functions, lines, SP deltas), DWARF types, and decoded probe sites.
//! Nothing here knows about BPF.

pub mod buildinfo;
pub mod disasm;
pub mod dwarf;
pub mod elf;
pub mod pclntab;
pub mod runtime_layout;

/// Instruction set of a Go binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    I386,
    Arm64,
}

impl Arch {
    /// Pointer size in bytes.
    pub fn ptr_size(self) -> u64 {
        match self {
            Arch::I386 => 4,
            Arch::Amd64 | Arch::Arm64 => 8,
        }
    }

    /// Go's GOARCH name.
    pub fn goarch(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::I386 => "386",
            Arch::Arm64 => "arm64",
        }
    }
}
