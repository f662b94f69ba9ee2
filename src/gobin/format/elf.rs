//! ELF layout of a Go binary: architecture, PIE, symbols, PT_LOAD segments, and the mapping
//! from virtual addresses to file offsets that uprobes need (docs/design.md §7).

use anyhow::{bail, Context, Result};
use object::{Object, ObjectKind, ObjectSection, ObjectSegment, ObjectSymbol};

use crate::gobin::Arch;

/// Largest ratio of uncompressed to compressed size that zlib can reach (its documented
/// limit is 1032:1); zstd reaches about 32768:1 (a 128 KiB run-length block in a few bytes).
const MAX_ZLIB_RATIO: u64 = 1032;
const MAX_ZSTD_RATIO: u64 = 32768;

/// A section's bytes, decompressed if it is compressed. The decompressor allocates (and
/// zeroes) the size the section's header claims before reading a byte, so a claim larger
/// than the compressed bytes could ever produce is refused as corrupt: one damaged header
/// must not cost gigabytes of memory.
pub fn section_data<'data>(
    section: &object::Section<'data, '_>,
) -> Result<std::borrow::Cow<'data, [u8]>> {
    let name = section.name().unwrap_or("?");
    let compressed = section
        .compressed_data()
        .with_context(|| format!("section {name} has a corrupt compression header"))?;
    let ratio = match compressed.format {
        object::CompressionFormat::None => 1,
        object::CompressionFormat::Zstandard => MAX_ZSTD_RATIO,
        _ => MAX_ZLIB_RATIO,
    };
    let possible = (compressed.data.len() as u64).saturating_mul(ratio);
    if compressed.uncompressed_size > possible {
        bail!(
            "section {name} is corrupt: its header claims {} bytes uncompressed, more than its {} compressed bytes can hold",
            compressed.uncompressed_size,
            compressed.data.len()
        );
    }
    compressed
        .decompress()
        .with_context(|| format!("section {name} cannot be decompressed"))
}

/// One PT_LOAD segment: where its bytes sit in memory and in the file.
#[derive(Debug, Clone, Copy)]
pub struct LoadSegment {
    /// Link-time virtual address of the segment's first byte (`p_vaddr`).
    pub vaddr: u64,
    /// Offset of that byte in the file (`p_offset`).
    pub file_offset: u64,
    /// Bytes of the segment in the file (`p_filesz`; the rest of `p_memsz` is zeroed).
    pub file_size: u64,
}

/// The parts of the ELF file the rest of gotrace needs.
pub struct ElfImage<'data> {
    /// The parsed ELF file (sections, symbols).
    pub file: object::File<'data>,
    /// The whole file's bytes.
    pub data: &'data [u8],
    /// The machine, from the ELF header's `e_machine`.
    pub arch: Arch,
    /// Position-independent executable (ET_DYN): addresses are relative to a load base.
    pub is_pie: bool,
    /// No `.symtab` (e.g. built with `-ldflags=-s`).
    pub stripped: bool,
    segments: Vec<LoadSegment>,
}

impl<'data> ElfImage<'data> {
    /// The PT_LOAD segments, in file order.
    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments
    }

    /// Parses the ELF header, segments and architecture.
    pub fn parse(data: &'data [u8]) -> Result<Self> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            bail!("not an ELF file");
        }
        let file = object::File::parse(data)
            .context("corrupt or truncated ELF file (its headers cannot be read)")?;
        let arch = match file.architecture() {
            object::Architecture::X86_64 => Arch::Amd64,
            object::Architecture::I386 => Arch::I386,
            object::Architecture::Aarch64 => Arch::Arm64,
            other => bail!("unsupported architecture {other:?}: gotrace reads amd64, 386 and arm64 Go binaries"),
        };
        let is_pie = match file.kind() {
            ObjectKind::Executable => false,
            ObjectKind::Dynamic => true,
            other => bail!("not an executable (ELF kind {other:?})"),
        };
        let stripped = file.section_by_name(".symtab").is_none();
        let segments = file
            .segments()
            .map(|seg| {
                let (file_offset, file_size) = seg.file_range();
                LoadSegment {
                    vaddr: seg.address(),
                    file_offset,
                    file_size,
                }
            })
            .collect();
        Ok(ElfImage {
            file,
            data,
            arch,
            is_pie,
            stripped,
            segments,
        })
    }

    /// File offset of a virtual address (as in the file, before any PIE load base).
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments.iter().find_map(|seg| {
            let delta = vaddr.checked_sub(seg.vaddr)?;
            (delta < seg.file_size)
                .then(|| seg.file_offset.checked_add(delta))
                .flatten()
        })
    }

    /// The bytes of the file from `vaddr` for `len` bytes, if they are all in the file.
    pub fn bytes_at(&self, vaddr: u64, len: u64) -> Option<&'data [u8]> {
        let (seg, delta) = self.segments.iter().find_map(|seg| {
            let delta = vaddr.checked_sub(seg.vaddr)?;
            (delta.checked_add(len)? <= seg.file_size).then_some((seg, delta))
        })?;
        let start = usize::try_from(seg.file_offset.checked_add(delta)?).ok()?;
        self.data
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }

    /// Contents and address of a section, decompressed if needed.
    pub fn section(&self, name: &str) -> Option<(u64, std::borrow::Cow<'data, [u8]>)> {
        let section = self.file.section_by_name(name)?;
        let data = section_data(&section).ok()?;
        Some((section.address(), data))
    }

    /// Address of a symbol in `.symtab` (absent in stripped binaries).
    pub fn symbol_address(&self, name: &str) -> Option<u64> {
        self.symbol(name).map(|(address, _)| address)
    }

    /// Address and size of a symbol in `.symtab` (absent in stripped binaries).
    pub fn symbol(&self, name: &str) -> Option<(u64, u64)> {
        self.file
            .symbols()
            .find(|sym| sym.name_bytes().is_ok_and(|n| n == name.as_bytes()))
            .map(|sym| (sym.address(), sym.size()))
    }
}
