//! Dynamic type names of interface values, read from the Go runtime's type descriptors in the
//! binary file: an itab (or, for `any`, the type itself) points at an `abi.Type` whose `Str`
//! name offset is relative to the module's `runtime.types` section.

use crate::gobin::format::varint::read_uvarint;
use crate::gobin::GoBinary;

/// Names the dynamic type of an interface from its type descriptor's address.
pub trait TypeNamer {
    /// The Go type name of the type descriptor at run-time address `type_word`, or why it
    /// cannot be known.
    fn dynamic_type(&self, type_word: u64) -> Result<String, String>;
}

/// `abi.TFlagExtraStar`: the stored name has a `*` prefix that is not part of it.
const TFLAG_EXTRA_STAR: u8 = 1 << 1;

/// Reads type names from the binary's own type descriptors.
pub struct BinaryTypeNamer<'a, 'data> {
    bin: &'a GoBinary<'data>,
    /// `runtime.types` (None in stripped binaries).
    types_base: Option<u64>,
    /// Run-time address minus link-time address in the process of the event being decoded.
    load_bias: std::cell::Cell<u64>,
    /// Go >= 1.17 writes name lengths as varints (before: 2 bytes, big endian).
    varint_names: bool,
}

impl<'a, 'data> BinaryTypeNamer<'a, 'data> {
    /// A namer for `bin`.
    pub fn new(bin: &'a GoBinary<'data>) -> Self {
        BinaryTypeNamer {
            bin,
            types_base: bin.elf.symbol_address("runtime.types"),
            load_bias: std::cell::Cell::new(0),
            varint_names: bin.build.go_release().is_none_or(|r| r >= (1, 17)),
        }
    }

    /// Sets the load bias (PIE) of the process whose values are decoded next.
    pub fn set_load_bias(&self, bias: u64) {
        self.load_bias.set(bias);
    }

    fn type_name(&self, type_vaddr: u64) -> Option<String> {
        let ptr = self.bin.elf.arch.ptr_size();
        let tflag = *self
            .bin
            .elf
            .bytes_at(type_vaddr.checked_add(2 * ptr + 4)?, 1)?
            .first()?;
        let str_off = self
            .bin
            .elf
            .bytes_at(type_vaddr.checked_add(4 * ptr + 8)?, 4)?;
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
        let name = self
            .bin
            .elf
            .bytes_at(name_at.checked_add(used as u64)?, len)?;
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
    fn dynamic_type(&self, type_word: u64) -> Result<String, String> {
        if self.types_base.is_none() {
            return Err("stripped binary: type names need the symbol table".into());
        }
        self.type_name(type_word.wrapping_sub(self.load_bias.get()))
            .ok_or_else(|| "type descriptor not in the binary".into())
    }
}
