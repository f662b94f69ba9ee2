//! Instruction decoding of one function: its RET sites and its entry probe site.
//! TEMPORARY stand-in until the decoder branch lands.

use super::Arch;

/// What decoding one function found.
pub struct DecodedFunction {
    pub entry_probe: u64,
    pub ret_sites: Vec<u64>,
}

/// Decodes one function.
pub fn decode_function(arch: Arch, code: &[u8], entry: u64) -> anyhow::Result<DecodedFunction> {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let bits = if arch == Arch::I386 { 32 } else { 64 };
    let mut dec = Decoder::with_ip(bits, code, entry, DecoderOptions::NONE);
    let mut ret_sites = Vec::new();
    let mut entry_probe = entry;
    let mut prev_jcc = false;
    for (n, insn) in (&mut dec).into_iter().enumerate() {
        if prev_jcc && n < 6 && entry_probe == entry {
            entry_probe = insn.ip();
        }
        prev_jcc = insn.mnemonic() == Mnemonic::Jbe;
        if insn.mnemonic() == Mnemonic::Ret {
            ret_sites.push(insn.ip());
        }
    }
    Ok(DecodedFunction {
        entry_probe,
        ret_sites,
    })
}
