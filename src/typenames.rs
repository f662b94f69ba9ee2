//! Dynamic type names of interface values, read from the Go runtime's type descriptors in the
//! binary file: an itab (or, for `any`, the type itself) points at an `abi.Type` whose `Str`
//! name offset is relative to the module's `runtime.types` section.

use crate::gobin::varint::read_uvarint;
use crate::gobin::GoBinary;
use crate::values::TypeNamer;

/// `abi.TFlagExtraStar`: the stored name has a `*` prefix that is not part of it.
const TFLAG_EXTRA_STAR: u8 = 1 << 1;

/// Reads type names from the binary's own type descriptors.
pub struct BinaryTypeNamer<'a, 'data> {
    bin: &'a GoBinary<'data>,
    /// `runtime.types` (None in stripped binaries).
    types_base: Option<u64>,
    /// Process traced, for a PIE binary's load bias.
    pid: Option<u32>,
    /// Run-time address minus link-time address, read on first use (after exec).
    load_bias: std::cell::OnceCell<Option<u64>>,
    /// Go >= 1.17 writes name lengths as varints (before: 2 bytes, big endian).
    varint_names: bool,
}

impl<'a, 'data> BinaryTypeNamer<'a, 'data> {
    /// A namer for `bin`, traced in process `pid` (needed for PIE binaries' load bias).
    pub fn new(bin: &'a GoBinary<'data>, pid: Option<u32>) -> Self {
        BinaryTypeNamer {
            bin,
            types_base: bin.elf.symbol_address("runtime.types"),
            pid,
            load_bias: std::cell::OnceCell::new(),
            varint_names: bin.build.go_release().is_none_or(|r| r >= (1, 17)),
        }
    }

    fn word(&self, vaddr: u64) -> Option<u64> {
        let ptr = self.bin.elf.arch.ptr_size();
        let bytes = self.bin.elf.bytes_at(vaddr, ptr)?;
        let mut word = [0u8; 8];
        word.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(u64::from_le_bytes(word))
    }

    fn type_name(&self, type_vaddr: u64) -> Option<String> {
        let ptr = self.bin.elf.arch.ptr_size();
        let tflag = *self
            .bin
            .elf
            .bytes_at(type_vaddr + 2 * ptr + 4, 1)?
            .first()?;
        let str_off = self.bin.elf.bytes_at(type_vaddr + 4 * ptr + 8, 4)?;
        let str_off = i32::from_le_bytes(str_off.try_into().ok()?);
        let name_at = self.types_base?.checked_add_signed(i64::from(str_off))?;
        let header = self
            .bin
            .elf
            .bytes_at(name_at, 11.min(self.remaining(name_at)?))?;
        let (len, used) = if self.varint_names {
            let (len, used) = read_uvarint(header.get(1..)?)?;
            (len, used + 1)
        } else {
            let bytes = header.get(1..3)?;
            (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 3)
        };
        let name = self.bin.elf.bytes_at(name_at + used as u64, len)?;
        let name = String::from_utf8_lossy(name);
        let name = if tflag & TFLAG_EXTRA_STAR != 0 {
            name.strip_prefix('*').unwrap_or(&name).to_owned()
        } else {
            name.into_owned()
        };
        Some(name)
    }

    /// Bytes of the file from `vaddr` to the end of its segment (at most 11).
    fn remaining(&self, vaddr: u64) -> Option<u64> {
        (1..=11)
            .rev()
            .find(|&n| self.bin.elf.bytes_at(vaddr, n).is_some())
    }
}

impl TypeNamer for BinaryTypeNamer<'_, '_> {
    fn dynamic_type(&self, first_word: u64, empty: bool) -> Result<String, String> {
        let bias = self
            .load_bias
            .get_or_init(|| {
                if self.bin.elf.is_pie {
                    self.pid.and_then(pie_load_bias)
                } else {
                    Some(0)
                }
            })
            .ok_or("PIE binary traced without -p or --: its load address is unknown")?;
        if self.types_base.is_none() {
            return Err("stripped binary: type names need the symbol table".into());
        }
        let first = first_word.wrapping_sub(bias);
        let type_addr = if empty {
            Some(first)
        } else {
            self.word(first + self.bin.elf.arch.ptr_size())
                .map(|t| t.wrapping_sub(bias))
        };
        type_addr
            .and_then(|t| self.type_name(t))
            .ok_or_else(|| "type descriptor built at run time (not in the binary)".into())
    }
}

/// Load bias of the PIE binary mapped by process `pid`: the start of its first mapping (file
/// offset 0), from /proc/PID/maps.
pub fn pie_load_bias(pid: u32) -> Option<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let offset = fields.nth(1)?;
        let path = fields.nth(2)?;
        (path == exe.to_str()? && u64::from_str_radix(offset, 16).ok()? == 0)
            .then(|| u64::from_str_radix(range.split('-').next()?, 16).ok())
            .flatten()
    })
}
