//! Everything gotrace knows about a Go binary, read from the file alone, by concern: its file
//! formats ([`format`]: ELF, build info, pclntab, inline trees, DWARF), its machine code
//! ([`code`]: probe sites, inlined calls' entries and exits) and the Go runtime's facts
//! ([`runtime`]: where g lives, layouts, ABIs that differ by release). This module is the
//! front: [`BinaryFile`] maps a file, [`GoBinary`] parses it. Nothing here knows about BPF.

pub mod code;
pub mod format;
pub mod runtime;

use code::{disasm, inline_entry};
use format::{buildinfo, dwarf, dwarf_inline, elf, inline_tree, pclntab};
use runtime::{generic_dict, layout, method_wrappers};

/// Instruction set of a Go binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86-64 (`GOARCH=amd64`).
    Amd64,
    /// 32-bit x86 (`GOARCH=386`).
    I386,
    /// AArch64 (`GOARCH=arm64`).
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

/// A binary file mapped into memory; [`GoBinary`] borrows from it.
pub struct BinaryFile {
    path: std::path::PathBuf,
    map: memmap2::Mmap,
}

impl BinaryFile {
    /// Opens and maps `path` read-only; a directory or a special file is refused by name.
    pub fn open(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below refuses it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let kind = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .file_type();
        if kind.is_dir() {
            anyhow::bail!(
                "{} is a directory, not a Go binary (give the path of the executable file)",
                path.display()
            );
        }
        if !kind.is_file() {
            anyhow::bail!(
                "{} is not a regular file (a device, pipe or socket), so not a Go binary",
                path.display()
            );
        }
        // SAFETY: the map is read-only and private; gotrace never writes through it. A binary
        // truncated by another process while mapped would fault, as with any mmap reader;
        // executables are replaced by rename, not rewritten in place.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        Ok(BinaryFile {
            path: path.to_owned(),
            map,
        })
    }

    /// The path the binary was opened at.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Drops the pages of file bytes `range` from the process's resident memory; the kernel
    /// maps them again from the page cache if they are read again. A pass over the code in
    /// address order (`list`) so keeps a window of it resident, not the whole text.
    pub fn release(&self, range: std::ops::Range<u64>) {
        let (Ok(start), Ok(end)) = (usize::try_from(range.start), usize::try_from(range.end))
        else {
            return;
        };
        let end = end.min(self.map.len());
        if start < end {
            // SAFETY: the map is private and never written, so a dropped page reads back the
            // same file bytes (with the caveat of `open` for a file changed underneath). A
            // failed advice only leaves the pages resident.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
    }

    /// Parses the mapped bytes as a Go binary; errors name the file.
    pub fn parse(&self) -> anyhow::Result<GoBinary<'_>> {
        use anyhow::Context;
        GoBinary::parse(&self.map).with_context(|| format!("{}", self.path.display()))
    }
}

/// A Go executable, read from its bytes: the single source of Go knowledge for the planner.
pub struct GoBinary<'data> {
    /// The ELF file: segments, sections, symbols, machine.
    pub elf: elf::ElfImage<'data>,
    /// The Go build information (Go version, module path).
    pub build: buildinfo::BuildInfo,
    /// The runtime's function table: names, entries, pc-to-line.
    pub pclntab: pclntab::Pclntab<'data>,
    /// Every function of the pclntab, in address order.
    pub funcs: Vec<pclntab::Func<'data>>,
    /// Every inlined call, read on first use.
    inlined: std::sync::OnceLock<inline_tree::InlineTable<'data>>,
    /// The parsed DWARF (or why it could not be read, with its causes), on first use.
    dwarf: std::sync::OnceLock<Result<Option<dwarf::DwarfInfo>, String>>,
}

impl<'data> GoBinary<'data> {
    /// Reads the ELF headers, build info and pclntab. Fails with one clear sentence on a
    /// non-ELF, non-Go, unsupported or corrupt file.
    pub fn parse(data: &'data [u8]) -> anyhow::Result<Self> {
        use anyhow::Context;
        let elf = elf::ElfImage::parse(data)?;
        let build = buildinfo::BuildInfo::read(&elf);
        let pclntab = find_pclntab(&elf)?;
        let funcs = pclntab
            .funcs()
            .context("reading the pclntab's function table")?;
        Ok(GoBinary {
            elf,
            build,
            pclntab,
            funcs,
            inlined: std::sync::OnceLock::new(),
            dwarf: std::sync::OnceLock::new(),
        })
    }

    /// The function whose range holds `pc`.
    pub fn func_at(&self, pc: u64) -> Option<&pclntab::Func<'data>> {
        let idx = self
            .funcs
            .partition_point(|f| f.entry <= pc)
            .checked_sub(1)?;
        let func = &self.funcs[idx];
        (pc < func.end).then_some(func)
    }

    /// The function whose entry is `pc` (a tail call's target, say).
    pub fn func_entered_at(&self, pc: u64) -> Option<&pclntab::Func<'data>> {
        self.func_at(pc).filter(|func| func.entry == pc)
    }

    /// The entry probe sites, every RET site and the tail calls of `func`, each site with the
    /// kernel's class for it, by decoding its instructions.
    pub fn probe_sites(&self, func: &pclntab::Func<'_>) -> anyhow::Result<disasm::DecodedFunction> {
        use anyhow::Context;
        let code = self.code(func).context("its code is not in the file")?;
        disasm::decode_function(self.elf.arch, code, func.entry)
    }

    /// Whether Go functions take arguments in registers (amd64 Go 1.17+, arm64 Go 1.18+):
    /// those runtimes have `runtime.spillArgs`, even when stripped (pclntab keeps the name).
    pub fn uses_register_abi(&self) -> bool {
        self.funcs.iter().any(|f| f.name == "runtime.spillArgs")
    }

    /// The binary's DWARF (types, signatures, globals), or None when it has none: parsed on
    /// first use, then shared by every caller. Method wrappers' signatures include the
    /// receivers their DWARF leaves out ([`method_wrappers`]).
    pub fn dwarf(&self) -> anyhow::Result<Option<&dwarf::DwarfInfo>> {
        use anyhow::Context;
        let parsed = self.dwarf.get_or_init(|| {
            let mut info = dwarf::load(&self.elf.file)
                .context("reading DWARF")
                .map_err(|err| format!("{err:#}"))?;
            if let Some(info) = &mut info {
                method_wrappers::complete(self, info);
                generic_dict::complete(info, self.elf.arch.ptr_size());
            }
            Ok(info)
        });
        match parsed {
            Ok(info) => Ok(info.as_ref()),
            Err(err) => Err(anyhow::anyhow!("{err}")),
        }
    }

    /// Every inlined call the binary's DWARF describes (with parameter locations), or None
    /// when it has no DWARF. Reads the whole DWARF; [`GoBinary::inline_table`] needs none.
    pub fn dwarf_inlined(&self) -> anyhow::Result<Option<Vec<dwarf_inline::InlinedSubroutine>>> {
        use anyhow::Context;
        dwarf_inline::inlined_subroutines(&self.elf.file)
            .context("reading DWARF inlined subroutines")
    }

    /// Offsets in runtime.g and runtime.m (goid, stack, m, curg): from the binary's DWARF
    /// (`dwarf`, as [`GoBinary::dwarf`] read it), else the per-Go-version table.
    pub fn runtime_layout(
        &self,
        dwarf: Option<&dwarf::DwarfInfo>,
    ) -> anyhow::Result<layout::RuntimeLayout> {
        use anyhow::Context;
        let version = self.build.go_version.as_deref().unwrap_or("unknown");
        dwarf
            .and_then(|d| d.runtime)
            .or_else(|| layout::for_release(self.build.go_release()?, self.elf.arch))
            .with_context(|| {
                format!("the binary has no DWARF and gotrace has no runtime.g layout for Go version {version}")
            })
    }

    /// The runtime's wait-reason names (`runtime.waitReasonStrings`, else the per-Go-version
    /// table), or None for a stripped binary of a release the table does not know.
    pub fn wait_reasons(&self) -> Option<runtime::wait_reasons::WaitReasons> {
        runtime::wait_reasons::read(&self.elf, self.build.go_release())
    }

    /// Whether `name` is a Go function that exists only inlined into its callers: DWARF
    /// describes it, the pclntab has no code for it.
    pub fn is_inlined_everywhere(&self, name: &str) -> bool {
        let in_dwarf = matches!(self.dwarf(), Ok(Some(info)) if info.functions.contains_key(name));
        in_dwarf && !self.funcs.iter().any(|f| f.name == name)
    }

    /// Every inlined call of the binary, from the pclntab's inline trees (read once, on
    /// first use), with the functions whose tree could not be read.
    pub fn inline_table(&self) -> &inline_tree::InlineTable<'data> {
        self.inlined.get_or_init(|| {
            inline_tree::read(
                &self.elf,
                &self.pclntab,
                &self.funcs,
                self.build.go_version.as_deref(),
            )
        })
    }

    /// The inlined calls of the functions `wanted` selects (read each time: cheaper than
    /// [`GoBinary::inline_table`] when few functions are wanted).
    pub fn inline_table_matching(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> inline_tree::InlineTable<'data> {
        inline_tree::read_matching(
            &self.elf,
            &self.pclntab,
            &self.funcs,
            self.build.go_version.as_deref(),
            wanted,
        )
    }

    /// The decoded control flow of the out-of-line function at `entry` (an inlined call's
    /// parent), for [`inline_entry::ParentFlow::entries`].
    pub fn parent_flow(&self, entry: u64) -> anyhow::Result<inline_entry::ParentFlow> {
        use anyhow::Context;
        let func = self
            .func_at(entry)
            .context("no function at the parent's entry")?;
        let code = self
            .code(func)
            .context("the parent's code is not in the file")?;
        inline_entry::ParentFlow::decode(self.elf.arch, code, func.entry)
    }

    /// The machine code of `func`, from its entry to its end.
    pub fn code(&self, func: &pclntab::Func<'_>) -> Option<&'data [u8]> {
        self.elf.bytes_at(func.entry, func.end - func.entry)
    }
}

/// The address of the first Go function: `runtime.text`, else the start of `.text`.
fn text_start(elf: &elf::ElfImage<'_>) -> u64 {
    use object::{Object, ObjectSection};
    elf.symbol_address("runtime.text")
        .or_else(|| elf.file.section_by_name(".text").map(|s| s.address()))
        .unwrap_or(0)
}

/// Finds the pclntab: the `.gopclntab` section, the `runtime.pclntab` symbol, or (stripped
/// PIE builds keep it inside `.data.rel.ro`) a scan of read-only data for a valid header.
fn find_pclntab<'data>(elf: &elf::ElfImage<'data>) -> anyhow::Result<pclntab::Pclntab<'data>> {
    use anyhow::bail;
    use object::{Object, ObjectSection};

    let text = text_start(elf);
    let section_bytes = |name: &str| {
        let section = elf.file.section_by_name(name)?;
        let (offset, size) = section.file_range()?;
        elf.data
            .get(usize::try_from(offset).ok()?..usize::try_from(offset.checked_add(size)?).ok()?)
    };
    if let Some(bytes) = section_bytes(".gopclntab") {
        return pclntab::Pclntab::parse(bytes, text);
    }
    if let (Some(start), Some(end)) = (
        elf.symbol_address("runtime.pclntab"),
        elf.symbol_address("runtime.epclntab"),
    ) {
        if let Some(bytes) = end
            .checked_sub(start)
            .and_then(|len| elf.bytes_at(start, len))
        {
            return pclntab::Pclntab::parse(bytes, text);
        }
    }
    for name in [".data.rel.ro", ".rodata", ".noptrdata"] {
        let Some(bytes) = section_bytes(name) else {
            continue;
        };
        if let Some(table) = scan_for_pclntab(bytes, text, elf.arch) {
            return Ok(table);
        }
    }
    if elf.file.section_by_name(".go.buildinfo").is_some()
        || elf.symbol_address("runtime.main").is_some()
    {
        bail!("Go pclntab not found or corrupt: the binary's function table cannot be read");
    }
    bail!("not a Go binary (no Go function table and no Go build info)");
}

/// Tries every aligned occurrence of a pclntab magic in `bytes`; the first that parses and
/// whose first function lies at the text start wins.
fn scan_for_pclntab<'data>(
    bytes: &'data [u8],
    text: u64,
    arch: Arch,
) -> Option<pclntab::Pclntab<'data>> {
    let align = arch.ptr_size() as usize;
    (0..bytes.len().saturating_sub(8))
        .step_by(align)
        .find_map(|off| {
            let candidate = &bytes[off..];
            if !pclntab::MAGICS.iter().any(|m| candidate.starts_with(m))
                || usize::from(candidate[7]) != align
            {
                return None;
            }
            let table = pclntab::Pclntab::parse(candidate, text).ok()?;
            let first = table.func(0).ok()?;
            (first.entry == text).then_some(table)
        })
}
