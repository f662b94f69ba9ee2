//! The Go pclntab reader: every function's name and range, pc -> file:line, pc -> SP delta.
//!
//! Four header formats (docs/design.md §8), told apart by their magic:
//! `0xfffffffb` Go 1.2–1.15, `0xfffffffa` 1.16–1.17, `0xfffffff0` 1.18–1.19, `0xfffffff1` 1.20+.
//! The layouts follow Go's `runtime/symtab.go` and `debug/gosym` (the reference reader).
//! Every read is bounds-checked: a corrupt table yields an error, never a panic.

use anyhow::{bail, Context, Result};

use super::varint::read_uvarint;

/// Which pclntab layout a binary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PclnVersion {
    /// Go 1.2 – 1.15.
    Go12,
    /// Go 1.16 – 1.17.
    Go116,
    /// Go 1.18 – 1.19.
    Go118,
    /// Go 1.20 and later.
    Go120,
}

impl PclnVersion {
    fn from_magic(magic: u32) -> Option<Self> {
        match magic {
            0xffff_fffb => Some(PclnVersion::Go12),
            0xffff_fffa => Some(PclnVersion::Go116),
            0xffff_fff0 => Some(PclnVersion::Go118),
            0xffff_fff1 => Some(PclnVersion::Go120),
            _ => None,
        }
    }

    /// The Go releases that write this layout.
    pub fn releases(self) -> &'static str {
        match self {
            PclnVersion::Go12 => "go1.2-1.15",
            PclnVersion::Go116 => "go1.16-1.17",
            PclnVersion::Go118 => "go1.18-1.19",
            PclnVersion::Go120 => "go1.20+",
        }
    }
}

/// A parsed pclntab. All tables borrow from the binary's bytes.
#[derive(Debug, Clone)]
pub struct Pclntab<'data> {
    /// The table's format, from its header's magic number.
    pub version: PclnVersion,
    /// The whole table, from its header.
    data: &'data [u8],
    /// Instruction size quantum (1 on x86, 4 on arm64).
    quantum: u64,
    ptr_size: usize,
    /// Base that Go 1.18+ function offsets are relative to.
    text_start: u64,
    nfunc: usize,
    /// Function names (1.16+; before that names are offsets into `data`).
    funcnametab: &'data [u8],
    /// Per compilation unit: file numbers -> offsets into `filetab` (1.16+).
    cutab: &'data [u8],
    /// File names (1.16+: NUL-terminated strings; 1.2: u32 offsets into `data`).
    filetab: &'data [u8],
    /// pc-value tables (1.16+; before that offsets are into `data`).
    pctab: &'data [u8],
    /// The function table followed by the function records.
    functab: &'data [u8],
}

/// One function from the table.
#[derive(Debug, Clone)]
pub struct Func<'data> {
    /// The function's symbol name, e.g. `main.(*T).Method`.
    pub name: &'data str,
    /// First instruction's vaddr.
    pub entry: u64,
    /// One past the function's last byte (the next function's entry).
    pub end: u64,
    /// The function's `_func` record.
    record: &'data [u8],
}

/// Little-endian reads that fail instead of panicking.
fn u32_at(bytes: &[u8], off: usize) -> Result<u32> {
    let raw = bytes
        .get(off..off.checked_add(4).context("offset overflow")?)
        .context("pclntab is truncated or corrupt (read past its end)")?;
    Ok(u32::from_le_bytes(raw.try_into().expect("slice of 4")))
}

fn uintptr_at(bytes: &[u8], off: usize, ptr_size: usize) -> Result<u64> {
    if ptr_size == 4 {
        return Ok(u64::from(u32_at(bytes, off)?));
    }
    let raw = bytes
        .get(off..off.checked_add(8).context("offset overflow")?)
        .context("pclntab is truncated or corrupt (read past its end)")?;
    Ok(u64::from_le_bytes(raw.try_into().expect("slice of 8")))
}

fn tail(bytes: &[u8], off: u64) -> Result<&[u8]> {
    usize::try_from(off)
        .ok()
        .and_then(|off| bytes.get(off..))
        .context("pclntab is corrupt (a table offset points past its end)")
}

fn cstr(bytes: &[u8], off: usize) -> Result<&str> {
    let rest = bytes
        .get(off..)
        .context("pclntab is corrupt (name offset out of range)")?;
    // `CStr` finds the NUL a word at a time.
    std::ffi::CStr::from_bytes_until_nul(rest)
        .ok()
        .context("pclntab is corrupt (unterminated name)")?
        .to_str()
        .context("pclntab is corrupt (name is not UTF-8)")
}

impl<'data> Pclntab<'data> {
    /// Parses the header at the start of `data`. `text_start` is the address of the first
    /// function (`runtime.text`); it is used by Go 1.18+ when the header's own field is 0.
    pub fn parse(data: &'data [u8], text_start: u64) -> Result<Self> {
        if data.len() < 8 {
            bail!("pclntab is truncated (header incomplete)");
        }
        let version = PclnVersion::from_magic(u32_at(data, 0)?)
            .context("pclntab has an unknown header magic (not a Go 1.2+ binary, or corrupt)")?;
        let quantum = u64::from(data[6]);
        let ptr_size = usize::from(data[7]);
        if data[4] != 0
            || data[5] != 0
            || !matches!(quantum, 1 | 2 | 4)
            || !matches!(ptr_size, 4 | 8)
        {
            bail!(
                "pclntab header is corrupt (bad pad, quantum {quantum} or pointer size {ptr_size})"
            );
        }
        let word = |i: usize| uintptr_at(data, 8 + i * ptr_size, ptr_size);
        let nfunc = usize::try_from(word(0)?).context("pclntab is corrupt (function count)")?;
        let mut table = Pclntab {
            version,
            data,
            quantum,
            ptr_size,
            text_start,
            nfunc,
            funcnametab: &[],
            cutab: &[],
            filetab: &[],
            pctab: &[],
            functab: &[],
        };
        match version {
            PclnVersion::Go12 => {
                table.functab = tail(data, 8 + ptr_size as u64)?;
                // nfunc (pc, offset) pairs and the end pc, then the file table's offset.
                let functab_size = nfunc
                    .checked_mul(2)
                    .and_then(|n| n.checked_add(1))
                    .and_then(|n| n.checked_mul(ptr_size))
                    .context("pclntab is corrupt (function count)")?;
                let filetab_off = u32_at(table.functab, functab_size)?;
                table.filetab = tail(data, u64::from(filetab_off))?;
                table.funcnametab = data;
                table.pctab = data;
            }
            PclnVersion::Go116 => {
                table.funcnametab = tail(data, word(2)?)?;
                table.cutab = tail(data, word(3)?)?;
                table.filetab = tail(data, word(4)?)?;
                table.pctab = tail(data, word(5)?)?;
                table.functab = tail(data, word(6)?)?;
            }
            PclnVersion::Go118 | PclnVersion::Go120 => {
                let header_text = word(2)?;
                if header_text != 0 {
                    table.text_start = header_text;
                }
                table.funcnametab = tail(data, word(3)?)?;
                table.cutab = tail(data, word(4)?)?;
                table.filetab = tail(data, word(5)?)?;
                table.pctab = tail(data, word(6)?)?;
                table.functab = tail(data, word(7)?)?;
            }
        }
        // The function table must hold nfunc entries plus the end marker.
        let needed = (table.nfunc as u64)
            .checked_add(1)
            .and_then(|n| n.checked_mul(2 * table.functab_field_size() as u64))
            .context("pclntab is corrupt (function count)")?;
        if needed > table.functab.len() as u64 {
            bail!(
                "pclntab is truncated or corrupt ({} functions do not fit)",
                table.nfunc
            );
        }
        Ok(table)
    }

    /// Size of one field of a function table entry (pc or offset).
    fn functab_field_size(&self) -> usize {
        if self.version >= PclnVersion::Go118 {
            4
        } else {
            self.ptr_size
        }
    }

    /// The pc of function-table slot `i` (slot `nfunc` is the end of the last function).
    fn functab_pc(&self, i: usize) -> Result<u64> {
        let field = self.functab_field_size();
        let raw = uintptr_at(self.functab, 2 * i * field, field)?;
        if self.version < PclnVersion::Go118 {
            return Ok(raw);
        }
        self.text_start.checked_add(raw).with_context(|| {
            format!("pclntab is corrupt (function {i} lies past the end of the address space)")
        })
    }

    /// Every function, in address order.
    pub fn funcs(&self) -> Result<Vec<Func<'data>>> {
        (0..self.nfunc).map(|i| self.func(i)).collect()
    }

    /// Function number `i`.
    pub fn func(&self, i: usize) -> Result<Func<'data>> {
        let field = self.functab_field_size();
        let entry = self.functab_pc(i)?;
        let end = self.functab_pc(i + 1)?;
        if end < entry {
            bail!("pclntab is corrupt (function table not sorted at entry {i})");
        }
        let func_off = uintptr_at(self.functab, (2 * i + 1) * field, field)?;
        let records = if self.version == PclnVersion::Go12 {
            self.data
        } else {
            self.functab
        };
        let record = tail(records, func_off)?;
        let name_off = self.record_field(record, 1)?;
        let name = cstr(self.funcnametab, name_off as usize)?;
        Ok(Func {
            name,
            entry,
            end,
            record,
        })
    }

    /// Field `n` (1-based, after the entry) of a `_func` record, as `debug/gosym` numbers
    /// them: 1 nameoff, 2 args, 3 deferreturn, 4 pcsp, 5 pcfile, 6 pcln, 7 npcdata, 8 cuOffset.
    fn record_field(&self, record: &[u8], n: usize) -> Result<u32> {
        let entry_size = if self.version >= PclnVersion::Go118 {
            4
        } else {
            self.ptr_size
        };
        u32_at(record, entry_size + (n - 1) * 4)
    }

    /// Runs the pc-value table at `table_off` for `func` and returns the value at `pc`.
    fn pc_value(&self, func: &Func<'_>, table_off: u32, pc: u64) -> Result<Option<i64>> {
        if pc < func.entry || pc >= func.end {
            return Ok(None);
        }
        for run in self.pc_runs(func, table_off)? {
            let (_, hi, value) = run?;
            if pc < hi {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// The runs of the pc-value table at `table_off` for `func`: `(lo, hi, value)`, in pc
    /// order, clipped to the function (none when `table_off` is 0, i.e. no table).
    pub fn pc_runs(&self, func: &Func<'_>, table_off: u32) -> Result<PcRuns<'data>> {
        let bytes = if table_off == 0 {
            &[]
        } else {
            tail(self.pctab, u64::from(table_off))?
        };
        Ok(PcRuns {
            bytes,
            pc: func.entry,
            end: if table_off == 0 { func.entry } else { func.end },
            value: -1,
            first: true,
            quantum: self.quantum,
        })
    }

    /// Size of the fixed part of a `_func` record, before its pcdata offsets. From Go's
    /// `runtime/runtime2.go` `_func` of each release: go1.12-1.15 entry uintptr + 7 x u32 +
    /// funcID, 2 pad, nfuncdata (u8 each); go1.16-1.17 adds cuOffset (u32); go1.18-1.19 makes
    /// entry a u32 offset (entryOff); go1.20+ adds startLine (u32). `nfuncdata` is the last
    /// byte in every one of them.
    fn func_fixed_size(&self) -> usize {
        match self.version {
            PclnVersion::Go12 => self.ptr_size + 32,
            PclnVersion::Go116 => self.ptr_size + 36,
            PclnVersion::Go118 => 40,
            PclnVersion::Go120 => 44,
        }
    }

    /// `func`'s `_func.funcID` (`runtime.funcID`, `internal/abi.FuncID` from Go 1.21): the
    /// byte three before `nfuncdata` in every release's record (see `func_fixed_size`).
    pub fn func_id(&self, func: &Func<'_>) -> Result<u8> {
        func.record
            .get(self.func_fixed_size() - 4)
            .copied()
            .context("pclntab is truncated or corrupt (read past its end)")
    }

    /// The offset of `func`'s pcdata table number `table` (`runtime.pcdatastart`), or None
    /// when the function has fewer tables or that one is absent (offset 0).
    pub fn pcdata_table(&self, func: &Func<'_>, table: usize) -> Result<Option<u32>> {
        let npcdata = self.record_field(func.record, 7)? as usize;
        if table >= npcdata {
            return Ok(None);
        }
        let off = u32_at(func.record, self.func_fixed_size() + 4 * table)?;
        Ok((off != 0).then_some(off))
    }

    /// `func`'s funcdata slot `slot` (`runtime.funcdata`), or None when absent. Go 1.18+
    /// stores a u32 offset from `moduledata.gofunc` (`^0` = absent); earlier releases store
    /// a pointer-sized address (0 = absent), the array 8-aligned on 64-bit targets.
    pub fn funcdata(&self, func: &Func<'_>, slot: usize) -> Result<Option<FuncData>> {
        let fixed = self.func_fixed_size();
        let nfuncdata = usize::from(
            *func
                .record
                .get(fixed - 1)
                .context("pclntab is truncated or corrupt (read past its end)")?,
        );
        if slot >= nfuncdata {
            return Ok(None);
        }
        let npcdata = self.record_field(func.record, 7)? as usize;
        let mut off = npcdata
            .checked_mul(4)
            .and_then(|n| n.checked_add(fixed))
            .context("pclntab is corrupt (pcdata count)")?;
        if self.version >= PclnVersion::Go118 {
            let value = u32_at(func.record, off + 4 * slot)?;
            return Ok((value != u32::MAX).then_some(FuncData::GoFuncOffset(u64::from(value))));
        }
        if self.ptr_size == 8 && off % 8 != 0 {
            off += 4;
        }
        let value = uintptr_at(func.record, off + self.ptr_size * slot, self.ptr_size)?;
        Ok((value != 0).then_some(FuncData::Address(value)))
    }

    /// Pointer size of the target (4 or 8).
    pub fn ptr_size(&self) -> usize {
        self.ptr_size
    }

    /// A function name at offset `off` of the name table (what `_func.nameOff` and
    /// `inlinedCall.nameOff`/`func_` point at).
    pub fn name_at(&self, off: u32) -> Result<&'data str> {
        cstr(self.funcnametab, off as usize)
    }

    /// Offset of the table's header in `file`, the bytes of the whole binary it was parsed
    /// from (None if it is not a part of them).
    pub fn file_offset(&self, file: &[u8]) -> Option<u64> {
        let start = file.as_ptr() as usize;
        let offset = (self.data.as_ptr() as usize).checked_sub(start)?;
        (offset < file.len()).then_some(offset as u64)
    }

    /// The SP delta (bytes the function has pushed on its frame) at `pc`.
    pub fn sp_delta(&self, func: &Func<'_>, pc: u64) -> Result<Option<i64>> {
        let pcsp = self.record_field(func.record, 4)?;
        self.pc_value(func, pcsp, pc)
    }

    /// Source file and line of `pc` inside `func`.
    pub fn line(&self, func: &Func<'_>, pc: u64) -> Result<Option<(&'data str, i64)>> {
        let pcfile = self.record_field(func.record, 5)?;
        let pcln = self.record_field(func.record, 6)?;
        let (Some(file_no), Some(line)) = (
            self.pc_value(func, pcfile, pc)?,
            self.pc_value(func, pcln, pc)?,
        ) else {
            return Ok(None);
        };
        let Some(file) = self.file_name(func, file_no)? else {
            return Ok(None);
        };
        Ok(Some((file, line)))
    }

    /// A cursor over `func`'s source positions at increasing pcs, which decodes its file
    /// and line tables once, forward, and no further than the last pc asked for.
    pub fn line_cursor(&self, func: &Func<'_>) -> Result<LineCursor<'data>> {
        let runs = |field| self.pc_runs(func, self.record_field(func.record, field)?);
        Ok(LineCursor {
            files: runs(5)?,
            lines: runs(6)?,
            file: None,
            line: None,
        })
    }

    /// The name of file number `file_no` of `func`'s compilation unit (Go 1.16+: an index
    /// into the unit's slice of `cutab`; before: into the global file table).
    pub fn file_name(&self, func: &Func<'_>, file_no: i64) -> Result<Option<&'data str>> {
        match self.file_ref(func, file_no)? {
            Some(file) => self.file_at(file).map(Some),
            None => Ok(None),
        }
    }

    /// Where [`Pclntab::file_name`] finds the name of file number `file_no` of `func`'s
    /// unit: the same [`FileRef`] for every function that names the same file, so that a
    /// reader of many call sites reads each name once ([`Pclntab::file_at`]).
    pub fn file_ref(&self, func: &Func<'_>, file_no: i64) -> Result<Option<FileRef>> {
        let Ok(file_no) = usize::try_from(file_no) else {
            return Ok(None);
        };
        let off = match self.version {
            PclnVersion::Go12 => u32_at(self.filetab, file_no.saturating_mul(4))?,
            _ => {
                let cu = self.record_field(func.record, 8)? as usize;
                let off = u32_at(self.cutab, cu.saturating_add(file_no).saturating_mul(4))?;
                if off == u32::MAX {
                    return Ok(None);
                }
                off
            }
        };
        Ok(Some(FileRef(off)))
    }

    /// The file name at `file` (see [`Pclntab::file_ref`]).
    pub fn file_at(&self, file: FileRef) -> Result<&'data str> {
        match self.version {
            PclnVersion::Go12 => cstr(self.data, file.0 as usize),
            _ => cstr(self.filetab, file.0 as usize),
        }
    }
}

/// A file name's offset in its table (Go 1.16+: `filetab`; before: the whole pclntab).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef(pub u32);

/// Where a funcdata table is: Go 1.18+ offsets from `moduledata.gofunc`, earlier addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncData {
    /// Go 1.18+: an offset from `moduledata.gofunc`.
    GoFuncOffset(u64),
    /// Before Go 1.18: a link-time address.
    Address(u64),
}

/// `func`'s source positions at increasing pcs (see [`Pclntab::line_cursor`]).
pub struct LineCursor<'data> {
    files: PcRuns<'data>,
    lines: PcRuns<'data>,
    /// The last run read of each table.
    file: Option<(u64, u64, i64)>,
    line: Option<(u64, u64, i64)>,
}

impl LineCursor<'_> {
    /// File number and line at `pc`, which is not below the pc of the previous call (None
    /// where a table has no run for `pc`, as [`Pclntab::line`]).
    pub fn at(&mut self, pc: u64) -> Result<Option<(i64, i64)>> {
        let file = run_at(&mut self.files, &mut self.file, pc)?;
        let line = run_at(&mut self.lines, &mut self.line, pc)?;
        Ok(file.zip(line))
    }
}

/// The value of the run of `runs` that holds `pc`, reading on from `last`, the last run read
/// (the runs are in pc order, and `pc` is not below the pc of the previous call).
fn run_at(
    runs: &mut impl Iterator<Item = Result<(u64, u64, i64)>>,
    last: &mut Option<(u64, u64, i64)>,
    pc: u64,
) -> Result<Option<i64>> {
    loop {
        if let Some((lo, hi, value)) = *last {
            if pc < hi {
                return Ok((lo <= pc).then_some(value));
            }
        }
        match runs.next() {
            Some(run) => *last = Some(run?),
            None => return Ok(None),
        }
    }
}

/// The runs of one pc-value table (see [`Pclntab::pc_runs`]).
pub struct PcRuns<'data> {
    bytes: &'data [u8],
    pc: u64,
    end: u64,
    value: i64,
    first: bool,
    quantum: u64,
}

impl Iterator for PcRuns<'_> {
    type Item = Result<(u64, u64, i64)>;

    /// Decodes one (value delta, pc delta) pair, as `runtime.pcvalue` / `debug/gosym` step.
    /// Always inlined: the inline-index tables of every function go through it, and as a
    /// call it returned each run through memory, which stalled the loop (perf, Go's compile).
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pc >= self.end {
            return None;
        }
        let Some((uvdelta, used)) = read_uvarint(self.bytes) else {
            return Some(Err(corrupt_pc_value_table()));
        };
        self.bytes = self.bytes.get(used..).unwrap_or_default();
        if uvdelta == 0 && !self.first {
            // The end of the table: no more runs, however often asked.
            self.end = self.pc;
            return None;
        }
        let Some((pcdelta, used)) = read_uvarint(self.bytes) else {
            return Some(Err(corrupt_pc_value_table()));
        };
        self.bytes = self.bytes.get(used..).unwrap_or_default();
        let vdelta = if uvdelta & 1 != 0 {
            !((uvdelta >> 1) as i64)
        } else {
            (uvdelta >> 1) as i64
        };
        self.first = false;
        self.value = match self.value.checked_add(vdelta) {
            Some(value) => value,
            None => {
                return Some(Err(anyhow::anyhow!(
                    "pclntab is corrupt (pc-value table value overflows)"
                )))
            }
        };
        let lo = self.pc;
        self.pc = lo.saturating_add(pcdelta.saturating_mul(self.quantum));
        Some(Ok((lo, self.pc.min(self.end), self.value)))
    }
}

impl std::iter::FusedIterator for PcRuns<'_> {}

/// The error of a truncated or overlong varint in a pc-value table (kept out of
/// [`PcRuns::next`]'s inlined body).
#[cold]
fn corrupt_pc_value_table() -> anyhow::Error {
    anyhow::anyhow!("pclntab is corrupt (pc-value table)")
}

/// The four magics, little-endian, for scanning raw bytes for a table.
pub const MAGICS: [[u8; 4]; 4] = [
    0xffff_fffbu32.to_le_bytes(),
    0xffff_fffau32.to_le_bytes(),
    0xffff_fff0u32.to_le_bytes(),
    0xffff_fff1u32.to_le_bytes(),
];
