//! How the kernel delivers a uprobe on one instruction: emulated in the trap handler, or
//! single-stepped out of line (several times slower per hit, docs/exact-delivery.md).

use crate::gobin::Arch;

/// The kernel's handling of a uprobe on one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SiteClass {
    /// Emulated by the trap handler: no out-of-line step.
    #[serde(rename = "emulated")]
    Emulated,
    /// Copied to the XOL page and single-stepped there.
    #[serde(rename = "single-step")]
    SingleStep,
}

impl SiteClass {
    /// `emulated` or `single-step`, as `gotrace list` prints it.
    pub fn name(self) -> &'static str {
        match self {
            SiteClass::Emulated => "emulated",
            SiteClass::SingleStep => "single-step",
        }
    }
}

/// The class of the instruction whose bytes are `insn` (exactly one instruction, already
/// decoded to its length; arm64: one 4-byte word).
///
/// Provenance: x86 follows `arch_uprobe_analyze_insn` in Linux `arch/x86/kernel/uprobes.c`
/// (6.18): `branch_setup_xol_ops` emulates NOP (`insn_is_nop`: `90` without REP or REX.B,
/// `0F 1F /0`), `JMP rel8/rel32` (`EB`, `E9`), `CALL rel32` (`E8`) and `Jcc rel8/rel32` (`7x`,
/// `0F 8x`), rejecting any branch with a `66` prefix; `push_setup_xol_ops` emulates `PUSH r`
/// (`50`–`57`, or `41 50`–`57` on x86-64, nothing longer). Everything else, `RET` included,
/// is single-stepped. The newer `insn_is_nop` also accepts some MOV/LEA no-ops; those count as
/// single-step here, which can only overstate a cost. arm64 follows `arm_probe_decode_insn` in
/// `arch/arm64/kernel/probes/decode-insn.c`: B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ and RET are
/// simulated; the rest (ADR and literal loads, also simulated, included) count as single-step.
pub fn site_class(arch: Arch, insn: &[u8]) -> SiteClass {
    let emulated = match arch {
        Arch::Amd64 => x86_emulated(insn, true),
        Arch::I386 => x86_emulated(insn, false),
        Arch::Arm64 => {
            <[u8; 4]>::try_from(insn).is_ok_and(|word| arm64_simulated(u32::from_le_bytes(word)))
        }
    };
    if emulated {
        SiteClass::Emulated
    } else {
        SiteClass::SingleStep
    }
}

/// The x86 rules of [`site_class`]; `x86_64` selects 64-bit mode (REX prefixes exist).
fn x86_emulated(insn: &[u8], x86_64: bool) -> bool {
    // Legacy prefixes (groups 1–4): the operand-size (66) and REP (F3) ones matter.
    let (mut legacy, mut operand_size, mut rep) = (0, false, false);
    for &byte in insn {
        match byte {
            0x66 => operand_size = true,
            0xf3 => rep = true,
            0xf0 | 0xf2 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x67 => {}
            _ => break,
        }
        legacy += 1;
    }
    let rest = &insn[legacy..];
    let (rex, opcode) = match rest.split_first() {
        Some((&byte, tail)) if x86_64 && byte & 0xf0 == 0x40 => (Some(byte), tail),
        _ => (None, rest),
    };
    match opcode {
        [0x90] => !rep && rex.is_none_or(|r| r & 1 == 0),
        [0x0f, 0x1f, modrm, ..] => modrm >> 3 & 7 == 0,
        [0xeb | 0xe9 | 0xe8 | 0x70..=0x7f, ..] | [0x0f, 0x80..=0x8f, ..] => !operand_size,
        [0x50..=0x57] => legacy == 0 && rex.is_none_or(|r| r == 0x41),
        _ => false,
    }
}

/// The arm64 instructions `arm_probe_decode_insn` simulates, among those probe sites can be:
/// B, BL (`x00101`), B.cond (`01010100`), CBZ/CBNZ (`x011010`), TBZ/TBNZ (`x011011`), RET.
fn arm64_simulated(word: u32) -> bool {
    #[rustfmt::skip]
    const SIMULATED: [(u32, u32); 5] = [
        (0x7c00_0000, 0x1400_0000), (0xff00_0010, 0x5400_0000), (0x7e00_0000, 0x3400_0000),
        (0x7e00_0000, 0x3600_0000), (0xffff_fc1f, 0xd65f_0000),
    ];
    super::disasm::arm64_matches_any(word, &SIMULATED)
}
