//! Inlined calls, read from the pclntab alone (stripped binaries included): every function's
//! inline tree (`FUNCDATA_InlTree`) and the pc-value table that says which tree entry each
//! instruction belongs to (`PCDATA_InlTreeIndex`), as Go's `runtime/symtab.go` and
//! `runtime/symtabinl.go` read them for tracebacks.
//!
//! An entry of a function's inline tree is one inlined call: which function was inlined,
//! where it was called, and `parentPc`, the offset of an instruction of the caller whose
//! source position is the call site. The compiler picks for it an instruction it emits anyway
//! at that position, or else an inline mark (a NOP: `XCHGL AX, AX` on amd64 and 386); see
//! [`InlinedInstance::mark_pc`]. The tree has no length: its entries are the indices that the
//! pc-value table names, plus their parents.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSegment};

use super::elf::ElfImage;
use super::pclntab::{Func, FuncData, PclnVersion, Pclntab};

/// `PCDATA_InlTreeIndex` (runtime/symtab.go, the same number in go1.14-1.27).
const PCDATA_INL_TREE_INDEX: usize = 2;
/// `FUNCDATA_InlTree` (runtime/symtab.go): 4 in go1.14-1.15, where slot 2 is
/// `FUNCDATA_RegPointerMaps`; 3 from go1.16, which removed it.
fn funcdata_inl_tree(version: PclnVersion) -> usize {
    if version == PclnVersion::Go12 {
        4
    } else {
        3
    }
}

/// Deepest inlining chain followed (a cycle in a corrupt tree stops here).
const MAX_DEPTH: usize = 256;

/// One inlined call of a function: where its code is and where it was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinedInstance<'data> {
    /// The inlined function, as the pclntab names it (e.g. `main.add`).
    pub func: &'data str,
    /// The out-of-line function whose code holds the instance (the outermost caller).
    pub parent: &'data str,
    /// Entry of `parent`.
    pub parent_entry: u64,
    /// The inlined functions the call sits in, innermost first; empty when `parent` calls
    /// `func` directly (a mid-stack inlining chain otherwise).
    pub callers: Vec<&'data str>,
    /// Source file and line of the call.
    pub call_file: &'data str,
    pub call_line: i64,
    /// `parent_entry + parentPc`: an instruction of the caller whose source position is the
    /// call site. It is an inline mark NOP or an instruction the caller executes anyway at
    /// that position (it may be shared by several calls on one line, or hoisted out of the
    /// instance's path), so it is not by itself a "runs once per call" probe site.
    pub mark_pc: u64,
    /// The instance's code: `[lo, hi)` ranges of the instructions that belong to this call
    /// or to calls inlined into it, sorted and merged.
    pub ranges: Vec<(u64, u64)>,
    /// Index of the entry in `parent`'s inline tree.
    pub tree_index: usize,
}

/// Every inlined call of a binary, and what could not be read.
#[derive(Debug, Default)]
pub struct InlineTable<'data> {
    /// By parent entry, then tree index.
    pub instances: Vec<InlinedInstance<'data>>,
    /// Indices into `instances` by inlined function name.
    by_func: HashMap<&'data str, Vec<usize>>,
    /// Functions whose inline tree could not be read, and why.
    pub unreadable: Vec<(&'data str, String)>,
    /// Why no inline tree was read at all (None when they were).
    pub unavailable: Option<String>,
}

impl<'data> InlineTable<'data> {
    /// The inlined instances of `func`, by parent entry.
    pub fn of(&self, func: &str) -> impl Iterator<Item = &InlinedInstance<'data>> {
        self.by_func
            .get(func)
            .into_iter()
            .flatten()
            .map(|&i| &self.instances[i])
    }

    /// The names of every function inlined somewhere.
    pub fn inlined_functions(&self) -> impl Iterator<Item = &'data str> + '_ {
        self.by_func.keys().copied()
    }
}

/// One decoded `inlinedCall` entry.
struct TreeEntry {
    /// Index of the enclosing inlined call (Go < 1.20 stores it; 1.20+ derives it).
    parent: Option<usize>,
    name_off: u32,
    /// Go < 1.20: the call site (file number of the caller's unit, line).
    call_site: Option<(i64, i64)>,
    parent_pc: u32,
}

/// How this binary's inline trees are laid out and where their bytes are.
struct TreeReader<'a, 'data> {
    elf: &'a ElfImage<'data>,
    pclntab: &'a Pclntab<'data>,
    /// `moduledata.gofunc` (Go 1.18+).
    gofunc: Option<u64>,
}

impl<'data> TreeReader<'_, 'data> {
    /// Size of one `inlinedCall`: 16 bytes since go1.20 (runtime/symtabinl.go), 20 before
    /// (runtime/symtab.go go1.12-1.19).
    fn entry_size(&self) -> u64 {
        if self.pclntab.version >= PclnVersion::Go120 {
            16
        } else {
            20
        }
    }

    /// Decodes entry `index` of the tree at `base`.
    fn entry(&self, base: u64, index: usize) -> Result<TreeEntry> {
        let size = self.entry_size();
        let addr = (index as u64)
            .checked_mul(size)
            .and_then(|off| base.checked_add(off))
            .context("inline tree index out of range")?;
        let bytes = self.elf.bytes_at(addr, size).with_context(|| {
            format!("inline tree entry {index} at {addr:#x} is not in the file")
        })?;
        let i32_at = |off: usize| i32::from_le_bytes(bytes[off..off + 4].try_into().expect("4"));
        let u32_at = |off: usize| u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4"));
        Ok(if self.pclntab.version >= PclnVersion::Go120 {
            // go1.20+ runtime/symtabinl.go: funcID u8, _ [3]byte, nameOff int32,
            // parentPc int32, startLine int32.
            TreeEntry {
                parent: None,
                name_off: u32_at(4),
                call_site: None,
                parent_pc: u32_at(8),
            }
        } else {
            // go1.12-1.19 runtime/symtab.go: parent int16, funcID u8, _ byte, file int32,
            // line int32, func_ int32, parentPc int32.
            let parent = i16::from_le_bytes([bytes[0], bytes[1]]);
            TreeEntry {
                parent: usize::try_from(parent).ok(),
                name_off: u32_at(12),
                call_site: Some((i64::from(i32_at(4)), i64::from(i32_at(8)))),
                parent_pc: u32_at(16),
            }
        })
    }

    /// The inlined instances of one function (empty when nothing was inlined into it), of the
    /// inlined functions `wanted` selects.
    fn instances(
        &self,
        func: &Func<'data>,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<InlinedInstance<'data>>> {
        let pclntab = self.pclntab;
        let Some(tree) = pclntab.funcdata(func, funcdata_inl_tree(pclntab.version))? else {
            return Ok(Vec::new());
        };
        let Some(table) = pclntab.pcdata_table(func, PCDATA_INL_TREE_INDEX)? else {
            return Ok(Vec::new());
        };
        let base = match tree {
            FuncData::Address(addr) => addr,
            FuncData::GoFuncOffset(off) => self
                .gofunc
                .context("moduledata.gofunc is unknown")?
                .checked_add(off)
                .context("inline tree offset out of range")?,
        };
        let runs = pclntab
            .pc_runs(func, table)?
            .collect::<Result<Vec<(u64, u64, i64)>>>()?;
        let index_at = |pc: u64| {
            let i = runs.partition_point(|r| r.1 <= pc);
            runs.get(i)
                .filter(|r| r.0 <= pc)
                .and_then(|r| usize::try_from(r.2).ok())
        };

        // Every entry the table names, and their parents, decoded once.
        let mut entries: HashMap<usize, (TreeEntry, Option<usize>)> = HashMap::new();
        let mut pending: Vec<usize> = runs
            .iter()
            .filter_map(|r| usize::try_from(r.2).ok())
            .collect();
        while let Some(index) = pending.pop() {
            if entries.contains_key(&index) {
                continue;
            }
            let entry = self.entry(base, index)?;
            let parent = match entry.call_site {
                Some(_) => entry.parent,
                // go1.20+: the parent is the entry of the instruction at parentPc
                // (runtime/symtabinl.go inlineUnwinder.next).
                None => index_at(func.entry.saturating_add(u64::from(entry.parent_pc))),
            };
            pending.extend(parent);
            entries.insert(index, (entry, parent));
        }
        // Names first: most parents inline nothing a caller asked for, and the rest (ranges,
        // the line table, the callers' names) is the costly part.
        let mut selected = Vec::new();
        for (&index, (entry, _)) in &entries {
            if wanted(pclntab.name_at(entry.name_off)?) {
                selected.push(index);
            }
        }
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let chain = |index: usize| -> Result<Vec<usize>> {
            let mut chain = vec![index];
            while let Some(&parent) = chain.last().and_then(|i| entries.get(i)?.1.as_ref()) {
                if chain.len() >= MAX_DEPTH || chain.contains(&parent) {
                    bail!("inline tree entry {index} has a cyclic or too deep parent chain");
                }
                chain.push(parent);
            }
            Ok(chain)
        };

        let mut ranges: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
        for &(lo, hi, value) in &runs {
            if let Ok(index) = usize::try_from(value) {
                for i in chain(index)? {
                    ranges.entry(i).or_default().push((lo, hi));
                }
            }
        }
        let lines = match self.pclntab.version {
            PclnVersion::Go120 => Some(pclntab.line_table(func)?),
            _ => None,
        };
        let mut instances = Vec::with_capacity(selected.len());
        for index in selected {
            let entry = &entries[&index].0;
            let mark_pc = func.entry.saturating_add(u64::from(entry.parent_pc));
            let (call_file, call_line) = match (entry.call_site, &lines) {
                (Some((file_no, line)), _) => {
                    (pclntab.file_name(func, file_no)?.unwrap_or("?"), line)
                }
                (None, Some(lines)) => lines.line(mark_pc)?.unwrap_or(("?", 0)),
                (None, None) => ("?", 0),
            };
            let callers = chain(index)?[1..]
                .iter()
                .map(|i| pclntab.name_at(entries[i].0.name_off))
                .collect::<Result<_>>()?;
            instances.push(InlinedInstance {
                func: pclntab.name_at(entry.name_off)?,
                parent: func.name,
                parent_entry: func.entry,
                callers,
                call_file,
                call_line,
                mark_pc,
                ranges: merged(ranges.remove(&index).unwrap_or_default()),
                tree_index: index,
            });
        }
        instances.sort_by_key(|i| i.tree_index);
        Ok(instances)
    }
}

/// Sorts ranges and joins the ones that touch or overlap.
fn merged(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Reads the inline tree of every function in `funcs`. `go_version` is the build info's
/// (`go1.14`...): Go 1.2-1.15 share one pclntab magic, and gotrace reads the trees of 1.14+.
pub fn read<'data>(
    elf: &ElfImage<'data>,
    pclntab: &Pclntab<'data>,
    funcs: &[Func<'data>],
    go_version: Option<&str>,
) -> InlineTable<'data> {
    read_matching(elf, pclntab, funcs, go_version, &|_| true)
}

/// [`read`], keeping only the instances of the inlined functions `wanted` selects (the parents
/// that inline none of them cost a pass over their inline-index table and tree names only).
pub fn read_matching<'data>(
    elf: &ElfImage<'data>,
    pclntab: &Pclntab<'data>,
    funcs: &[Func<'data>],
    go_version: Option<&str>,
    wanted: &dyn Fn(&str) -> bool,
) -> InlineTable<'data> {
    let mut table = InlineTable::default();
    let minor = go_version.and_then(go_minor);
    if pclntab.version == PclnVersion::Go12 && minor.is_none_or(|m| m < 14) {
        table.unavailable = Some(format!(
            "inline trees not read: Go version {} is not known to be 1.14 or later (the \
             funcdata numbering gotrace reads)",
            go_version.unwrap_or("unknown")
        ));
        return table;
    }
    let gofunc = if pclntab.version >= PclnVersion::Go118 {
        match find_gofunc(elf, pclntab, funcs, minor) {
            Some(addr) => Some(addr),
            None => {
                table.unavailable = Some(
                    "inline trees not read: moduledata.gofunc not found (no go:func.* symbol, \
                     no runtime.firstmoduledata in the data)"
                        .to_owned(),
                );
                return table;
            }
        }
    } else {
        None
    };
    let reader = TreeReader {
        elf,
        pclntab,
        gofunc,
    };
    for func in funcs {
        match reader.instances(func, wanted) {
            Ok(found) => table.instances.extend(found),
            Err(err) => table.unreadable.push((func.name, format!("{err:#}"))),
        }
    }
    for (i, instance) in table.instances.iter().enumerate() {
        table.by_func.entry(instance.func).or_default().push(i);
    }
    table
}

/// N of a `go1.N...` version string.
fn go_minor(version: &str) -> Option<u32> {
    let rest = version.strip_prefix("go1.")?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    minor.parse().ok()
}

/// `moduledata.gofunc`, the base of Go 1.18+ funcdata offsets: the `go:func.*` symbol
/// (`go.func.*` in go1.18-1.19), else the field of `runtime.firstmoduledata`, found in the
/// data by its first word (the pclntab's address) and its `minpc` (the first function).
/// `minor` is the Go 1.N release from the build info.
fn find_gofunc(
    elf: &ElfImage<'_>,
    pclntab: &Pclntab<'_>,
    funcs: &[Func<'_>],
    minor: Option<u32>,
) -> Option<u64> {
    if let Some(addr) = ["go:func.*", "go.func.*"]
        .iter()
        .find_map(|name| elf.symbol_address(name))
    {
        return Some(addr);
    }
    let pclntab_offset = pclntab.file_offset(elf.data)?;
    let pclntab_vaddr = elf.file.segments().find_map(|seg| {
        let (offset, size) = seg.file_range();
        let delta = pclntab_offset.checked_sub(offset)?;
        (delta < size).then(|| seg.address() + delta)
    })?;
    let minpc = funcs.first()?.entry;
    // runtime/symtab.go moduledata, in words: pcHeader 0, six slices 1-18, findfunctab 19,
    // minpc 20, maxpc 21, text 22 ... rodata, gofunc: word 38 in go1.18-1.19, 40 in
    // go1.20-1.26 (covctrs, ecovctrs added before end), 43 in go1.27 (three more words
    // before rodata); checked against the go:func.* symbol of each release.
    let gofunc_word = match (pclntab.version, minor) {
        (PclnVersion::Go118, _) => 38,
        (_, Some(minor)) if minor >= 27 => 43,
        _ => 40,
    };
    let ptr = pclntab.ptr_size();
    let word = |bytes: &[u8], i: usize| -> Option<u64> {
        let raw = bytes.get(i * ptr..(i + 1) * ptr)?;
        Some(if ptr == 8 {
            u64::from_le_bytes(raw.try_into().ok()?)
        } else {
            u64::from(u32::from_le_bytes(raw.try_into().ok()?))
        })
    };
    // go1.26+ puts moduledata in its own section.
    [".go.module", ".noptrdata", ".data", ".data.rel.ro"]
        .iter()
        .filter_map(|name| elf.file.section_by_name(name)?.data().ok())
        .find_map(|bytes| {
            (0..bytes.len()).step_by(ptr).find_map(|off| {
                let candidate = &bytes[off..];
                (word(candidate, 0)? == pclntab_vaddr && word(candidate, 20)? == minpc)
                    .then(|| word(candidate, gofunc_word))
                    .flatten()
                    .filter(|&gofunc| elf.bytes_at(gofunc, 1).is_some())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::{go_minor, merged};

    #[test]
    fn merges_touching_ranges() {
        assert_eq!(
            merged(vec![(10, 20), (0, 5), (5, 8), (15, 30), (40, 41)]),
            vec![(0, 8), (10, 30), (40, 41)]
        );
    }

    #[test]
    fn go_versions() {
        assert_eq!(go_minor("go1.14"), Some(14));
        assert_eq!(go_minor("go1.21.13"), Some(21));
        assert_eq!(go_minor("go1.27rc1"), Some(27));
        assert_eq!(go_minor("devel"), None);
    }
}
