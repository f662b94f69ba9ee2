//! The load bias of a running position-independent executable (DESIGN.md technique 7): what
//! to subtract from a runtime address to get the link-time address the pclntab uses. Read
//! from `/proc/PID/maps`: the mapping of the executable at file offset 0 holds the PT_LOAD
//! segment that starts the file.

use anyhow::{Context, Result};
use object::{Object, ObjectSegment};

use crate::gobin::elf::ElfImage;

/// The load bias of process `pid`, whose executable is `elf`.
pub fn of_process(pid: u32, elf: &ElfImage<'_>) -> Result<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .with_context(|| format!("process {pid} is gone"))?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .with_context(|| format!("reading /proc/{pid}/maps"))?;
    let first_segment = elf
        .file
        .segments()
        .find(|s| s.file_range().0 == 0)
        .map(|s| s.address())
        .context("the binary has no PT_LOAD segment at file offset 0")?;
    let start = first_mapping_at_offset_0(&maps, &exe.to_string_lossy())
        .with_context(|| format!("process {pid} does not map {}", exe.display()))?;
    start
        .checked_sub(first_segment & !0xfff)
        .context("the executable is mapped below its link address")
}

/// Start address of the first mapping of `path` at file offset 0 in a maps listing.
fn first_mapping_at_offset_0(maps: &str, path: &str) -> Option<u64> {
    maps.lines().find_map(|line| {
        // start-end perms offset dev inode pathname
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let offset = fields.nth(1)?;
        let pathname = fields.nth(2)?;
        if pathname != path || u64::from_str_radix(offset, 16).ok()? != 0 {
            return None;
        }
        u64::from_str_radix(range.split('-').next()?, 16).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_offset_0_mapping_of_the_executable() {
        let maps = "\
5581a000-5581b000 r--p 00000000 08:01 42 /usr/lib/other
55f0a0000000-55f0a0100000 r-xp 00000000 08:01 7 /tmp/app
55f0a0100000-55f0a0200000 r--p 00100000 08:01 7 /tmp/app
7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]
";
        assert_eq!(
            first_mapping_at_offset_0(maps, "/tmp/app"),
            Some(0x55f0_a000_0000)
        );
        assert_eq!(first_mapping_at_offset_0(maps, "/tmp/none"), None);
        assert_eq!(first_mapping_at_offset_0("garbage\n\n", "/tmp/app"), None);
    }
}
