//! `.go.buildinfo`: the Go version and main module the linker recorded (Go 1.13+).
//!
//! Layout (see Go's `debug/buildinfo`): a 32-byte header starting with `\xff Go buildinf:`,
//! then the pointer size and a flags byte. With flag bit 1 (Go 1.18+) the version and module
//! info follow inline as varint-length strings; before that the header holds two pointers
//! to Go string headers.

use super::elf::ElfImage;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const FLAG_BIG_ENDIAN: u8 = 1;
const FLAG_INLINE_STRINGS: u8 = 2;

/// What `.go.buildinfo` says about the build.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// e.g. `go1.21.13`.
    pub go_version: Option<String>,
    /// The main module's path (`mod` line), or the main package path (`path` line).
    pub main_module: Option<String>,
}

/// The Go build ID the linker records in the `.note.go.buildid` ELF note (`go tool buildid`
/// prints it): a note with name "Go" and type 4 whose description is the ID text
/// (src/cmd/link/internal/ld/elf.go, `ELF_NOTE_GOBUILDID_TAG`). None when absent (stripped of
/// notes, external linking) or malformed.
pub fn go_build_id(elf: &ElfImage<'_>) -> Option<String> {
    use object::{Object, ObjectSection};
    let note = elf.file.section_by_name(".note.go.buildid")?.data().ok()?;
    let word =
        |at: usize| Some(u32::from_le_bytes(note.get(at..at + 4)?.try_into().ok()?) as usize);
    let (name_len, desc_len, kind) = (word(0)?, word(4)?, word(8)?);
    let desc_start = 12usize.checked_add(name_len.checked_add(3)? & !3)?;
    let desc = note.get(desc_start..desc_start.checked_add(desc_len)?)?;
    (kind == 4 && note.get(12..15) == Some(b"Go\0"))
        .then(|| String::from_utf8_lossy(desc).into_owned())
}

impl BuildInfo {
    /// Reads the build info, or an empty one when the binary has none (Go < 1.13, corrupt).
    pub fn read(elf: &ElfImage<'_>) -> BuildInfo {
        let Some(blob) = find_blob(elf) else {
            return BuildInfo::default();
        };
        let (version, modinfo) = if blob[15] & FLAG_INLINE_STRINGS != 0 {
            let mut rest = &blob[HEADER_LEN..];
            let version = read_varint_string(&mut rest);
            let modinfo = read_varint_string(&mut rest);
            (version, modinfo)
        } else {
            // Any byte may sit here in a corrupt file; read_ptr accepts only 4 and 8.
            let ptr_size = usize::from(blob[14]);
            let big_endian = blob[15] & FLAG_BIG_ENDIAN != 0;
            let string_at = |field: usize| {
                let field_bytes = blob.get(16 + field * ptr_size..)?;
                let header = read_ptr(field_bytes, ptr_size, big_endian)?;
                read_go_string(elf, header, ptr_size, big_endian)
            };
            (string_at(0), string_at(1))
        };
        BuildInfo {
            go_version: version.filter(|v| v.starts_with("go") || v.starts_with("devel")),
            main_module: modinfo.as_deref().and_then(main_module),
        }
    }

    /// The (major, minor) Go release, e.g. (1, 21) for `go1.21.13`.
    pub fn go_release(&self) -> Option<(u32, u32)> {
        parse_release(self.go_version.as_deref()?)
    }
}

/// Parses `go1.21.13`, `go1.19`, `go1.22rc1` into (major, minor).
pub fn parse_release(version: &str) -> Option<(u32, u32)> {
    let rest = version.strip_prefix("go")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor_text = parts.next()?;
    let digits = minor_text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(minor_text.len());
    Some((major, minor_text[..digits].parse().ok()?))
}

/// The first 32-byte-aligned header carrying the magic, with enough bytes after it.
fn find_blob<'a>(elf: &'a ElfImage<'_>) -> Option<std::borrow::Cow<'a, [u8]>> {
    let (_, data) = elf.section(".go.buildinfo")?;
    (data.len() >= HEADER_LEN && data.starts_with(MAGIC)).then_some(data)
}

fn read_ptr(bytes: &[u8], ptr_size: usize, big_endian: bool) -> Option<u64> {
    let raw = bytes.get(..ptr_size)?;
    Some(match (ptr_size, big_endian) {
        (4, false) => u64::from(u32::from_le_bytes(raw.try_into().ok()?)),
        (4, true) => u64::from(u32::from_be_bytes(raw.try_into().ok()?)),
        (8, false) => u64::from_le_bytes(raw.try_into().ok()?),
        (8, true) => u64::from_be_bytes(raw.try_into().ok()?),
        _ => return None,
    })
}

/// Reads a Go string header (ptr, len) at `vaddr` and the bytes it points to.
fn read_go_string(
    elf: &ElfImage<'_>,
    vaddr: u64,
    ptr_size: usize,
    big_endian: bool,
) -> Option<String> {
    let header = elf.bytes_at(vaddr, 2 * ptr_size as u64)?;
    let ptr = read_ptr(header, ptr_size, big_endian)?;
    let len = read_ptr(&header[ptr_size..], ptr_size, big_endian)?;
    Some(text(elf.bytes_at(ptr, len)?))
}

/// Reads a uvarint-length-prefixed string, advancing `rest`.
fn read_varint_string(rest: &mut &[u8]) -> Option<String> {
    let (len, used) = crate::gobin::format::varint::read_uvarint(rest)?;
    let bytes = rest.get(used..used.checked_add(usize::try_from(len).ok()?)?)?;
    *rest = &rest[used + bytes.len()..];
    Some(text(bytes))
}

/// Bytes as text, without the 16-byte sentinels Go puts around module info (as
/// `debug/buildinfo` strips them).
fn text(bytes: &[u8]) -> String {
    let unwrapped = match bytes.len() {
        n if n >= 33 && bytes[n - 17] == b'\n' => &bytes[16..n - 16],
        _ => bytes,
    };
    String::from_utf8_lossy(unwrapped).into_owned()
}

/// The main module from the module info text (`path\t...`, `mod\t<path>\t<version>...`).
fn main_module(modinfo: &str) -> Option<String> {
    let field = |key: &str| {
        modinfo.lines().find_map(|line| {
            let mut cols = line.split('\t');
            (cols.next() == Some(key))
                .then(|| cols.next().map(str::to_owned))
                .flatten()
        })
    };
    field("mod").or_else(|| field("path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("go1.21.13"), Some((1, 21)));
        assert_eq!(parse_release("go1.19"), Some((1, 19)));
        assert_eq!(parse_release("go1.22rc1"), Some((1, 22)));
        assert_eq!(parse_release("devel +abc"), None);
    }

    #[test]
    fn module_line() {
        let info = "path\texample\nmod\texample\t(devel)\t\n";
        assert_eq!(main_module(info).as_deref(), Some("example"));
        let wrapped = b"0123456789abcdefpath\tcmd/compile\nbuild\t-x\n0123456789abcdef";
        assert_eq!(main_module(&text(wrapped)).as_deref(), Some("cmd/compile"));
    }
}
