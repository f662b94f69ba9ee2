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

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use anyhow::{anyhow, Context, Result};
use object::{Object, ObjectSection, ObjectSegment};

use super::elf::ElfImage;
use super::pclntab::{Func, FuncData, LineTable, PclnVersion, Pclntab};

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

    /// The inlined instances of one function (none when nothing was inlined into it), of the
    /// inlined functions `wanted` selects, appended to `out` in tree-index order. On an
    /// error, `out` may hold some of them: the caller drops them.
    fn instances(
        &self,
        func: &Func<'data>,
        wanted: &dyn Fn(&str) -> bool,
        scratch: &mut Scratch<'data>,
        out: &mut Vec<InlinedInstance<'data>>,
    ) -> Result<()> {
        let pclntab = self.pclntab;
        let Some(tree) = pclntab.funcdata(func, funcdata_inl_tree(pclntab.version))? else {
            return Ok(());
        };
        let Some(table) = pclntab.pcdata_table(func, PCDATA_INL_TREE_INDEX)? else {
            return Ok(());
        };
        let base = match tree {
            FuncData::Address(addr) => addr,
            FuncData::GoFuncOffset(off) => self
                .gofunc
                .context("moduledata.gofunc is unknown")?
                .checked_add(off)
                .context("inline tree offset out of range")?,
        };
        scratch.clear();
        let Scratch {
            runs,
            slot_of,
            entries,
            pending,
            names,
            lines,
        } = scratch;
        for run in pclntab.pc_runs(func, table)? {
            runs.push(run?);
        }
        let runs = &*runs;
        let index_at = |pc: u64| {
            let i = runs.partition_point(|r| r.1 <= pc);
            runs.get(i)
                .filter(|r| r.0 <= pc)
                .and_then(|r| usize::try_from(r.2).ok())
        };

        // Every entry the table names, and their parents, decoded once.
        pending.extend(runs.iter().filter_map(|r| usize::try_from(r.2).ok()));
        while let Some(index) = pending.pop() {
            if slot_of.get(index).is_some_and(|&slot| slot != 0) {
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
            // The entry is in the file, which bounds `index` (and so `slot_of`'s length).
            if index >= slot_of.len() {
                slot_of.resize(index + 1, 0);
            }
            entries.push(Decoded {
                index,
                entry,
                parent,
                selected: None,
            });
            slot_of[index] = entries.len();
        }
        // Names first: most parents inline nothing a caller asked for, and the rest (ranges,
        // the line table, the callers' names) is the costly part.
        let mut selected = 0;
        for decoded in entries.iter_mut() {
            if names.get(pclntab, wanted, decoded.entry.name_off)?.1 {
                decoded.selected = Some(selected);
                selected += 1;
            }
        }
        if selected == 0 {
            return Ok(());
        }
        let tree = Tree { slot_of, entries };

        // Each run's instructions belong to its entry and to every entry enclosing it.
        let mut ranges: Vec<Vec<(u64, u64)>> = vec![Vec::new(); selected];
        for &(lo, hi, value) in runs {
            if let Ok(index) = usize::try_from(value) {
                for decoded in tree.chain(index) {
                    if let Some(ranges) = decoded?.selected.and_then(|i| ranges.get_mut(i)) {
                        ranges.push((lo, hi));
                    }
                }
            }
        }
        let lines = match self.pclntab.version {
            PclnVersion::Go120 => {
                pclntab.read_line_table(func, lines)?;
                Some(&*lines)
            }
            _ => None,
        };
        let start = out.len();
        out.reserve(selected);
        let chosen = entries.iter().filter(|decoded| decoded.selected.is_some());
        for (decoded, ranges) in chosen.zip(ranges) {
            let entry = &decoded.entry;
            let mark_pc = func.entry.saturating_add(u64::from(entry.parent_pc));
            let (call_file, call_line) = match (entry.call_site, &lines) {
                (Some((file_no, line)), _) => {
                    (pclntab.file_name(func, file_no)?.unwrap_or("?"), line)
                }
                (None, Some(lines)) => pclntab.line_in(func, lines, mark_pc)?.unwrap_or(("?", 0)),
                (None, None) => ("?", 0),
            };
            let callers = tree
                .chain(decoded.index)
                .skip(1)
                .map(|caller| Ok(names.get(pclntab, wanted, caller?.entry.name_off)?.0))
                .collect::<Result<_>>()?;
            out.push(InlinedInstance {
                func: names.get(pclntab, wanted, entry.name_off)?.0,
                parent: func.name,
                parent_entry: func.entry,
                callers,
                call_file,
                call_line,
                mark_pc,
                ranges: merged(ranges),
                tree_index: decoded.index,
            });
        }
        out[start..].sort_unstable_by_key(|i| i.tree_index);
        Ok(())
    }
}

/// One decoded entry of a function's inline tree.
struct Decoded {
    /// Its index in the tree.
    index: usize,
    entry: TreeEntry,
    /// Tree index of the enclosing inlined call (None: the function calls it directly).
    parent: Option<usize>,
    /// Its position among the instances of the function, when `wanted` selects it.
    selected: Option<usize>,
}

/// What reading one function's inline tree fills, kept from one function to the next so that
/// its buffers are allocated once.
#[derive(Default)]
struct Scratch<'data> {
    /// The runs of the function's inline-index table.
    runs: Vec<(u64, u64, i64)>,
    /// By tree index (the trees are dense, 0..n): 1 + the position of the entry in
    /// `entries`, 0 when it was not decoded.
    slot_of: Vec<usize>,
    /// The entries decoded, in decoding order.
    entries: Vec<Decoded>,
    /// Tree indices still to decode.
    pending: Vec<usize>,
    /// Names read so far, for every function.
    names: Names<'data>,
    /// The function's line table (Go 1.20+, where the entries do not hold their call site).
    lines: LineTable,
}

impl Scratch<'_> {
    /// Forgets the previous function's tree (the names stay).
    fn clear(&mut self) {
        for decoded in &self.entries {
            if let Some(slot) = self.slot_of.get_mut(decoded.index) {
                *slot = 0;
            }
        }
        self.entries.clear();
        self.runs.clear();
        self.pending.clear();
    }
}

/// Function names by `nameOff` (the same few thousand inlined functions recur in every
/// tree), each with whether `wanted` selects it.
#[derive(Default)]
struct Names<'data>(HashMap<u32, (&'data str, bool), BuildHasherDefault<OffsetHasher>>);

/// A hash of a name offset or address: one multiplication (by a constant of the Fx hash),
/// its high bits rotated down to where the map picks buckets. SipHash cost as much as
/// reading the name.
#[derive(Default)]
struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

impl<'data> Names<'data> {
    /// The name at `name_off` and whether `wanted` selects it.
    fn get(
        &mut self,
        pclntab: &Pclntab<'data>,
        wanted: &dyn Fn(&str) -> bool,
        name_off: u32,
    ) -> Result<(&'data str, bool)> {
        if let Some(&known) = self.0.get(&name_off) {
            return Ok(known);
        }
        let name = pclntab.name_at(name_off)?;
        let known = (name, wanted(name));
        self.0.insert(name_off, known);
        Ok(known)
    }
}

/// One function's decoded inline tree.
#[derive(Clone, Copy)]
struct Tree<'s> {
    slot_of: &'s [usize],
    entries: &'s [Decoded],
}

impl<'s> Tree<'s> {
    /// The decoded entry at tree index `index`.
    fn slot(&self, index: usize) -> Option<usize> {
        self.slot_of.get(index)?.checked_sub(1)
    }

    /// The entries from `index` out to the outermost inlined call, `index`'s first; an error
    /// in place of the entry past [`MAX_DEPTH`] (a cycle included).
    fn chain(self, index: usize) -> Chain<'s> {
        Chain {
            tree: self,
            index,
            next: self.slot(index),
            depth: 0,
        }
    }
}

/// See [`Tree::chain`].
struct Chain<'s> {
    tree: Tree<'s>,
    /// Where the chain starts.
    index: usize,
    /// Position in `tree.entries` of the next entry.
    next: Option<usize>,
    /// Entries yielded so far.
    depth: usize,
}

impl<'s> Iterator for Chain<'s> {
    type Item = Result<&'s Decoded>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoded = self.tree.entries.get(self.next?)?;
        if self.depth >= MAX_DEPTH {
            self.next = None;
            return Some(Err(anyhow!(
                "inline tree entry {} has a cyclic or too deep parent chain",
                self.index
            )));
        }
        self.depth += 1;
        self.next = decoded.parent.and_then(|parent| self.tree.slot(parent));
        Some(Ok(decoded))
    }
}

/// Sorts ranges and joins the ones that touch or overlap.
fn merged(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    // `dedup_by` hands each range with the last one kept, and drops it when it returns true.
    ranges.dedup_by(|next, last| {
        let joined = next.0 <= last.1;
        if joined {
            last.1 = last.1.max(next.1);
        }
        joined
    });
    ranges
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
    let mut scratch = Scratch::default();
    for func in funcs {
        let start = table.instances.len();
        if let Err(err) = reader.instances(func, wanted, &mut scratch, &mut table.instances) {
            table.instances.truncate(start);
            table.unreadable.push((func.name, format!("{err:#}")));
        }
    }
    // Grouped by the name's address first: each name was read once per nameOff, and hashing
    // an address is cheaper than hashing the name. Equal names at two offsets meet below.
    let mut by_address: HashMap<usize, Vec<usize>, BuildHasherDefault<OffsetHasher>> =
        HashMap::default();
    for (i, instance) in table.instances.iter().enumerate() {
        by_address
            .entry(instance.func.as_ptr() as usize)
            .or_default()
            .push(i);
    }
    table.by_func.reserve(by_address.len());
    for indices in by_address.into_values() {
        let Some(instance) = indices.first().and_then(|&i| table.instances.get(i)) else {
            continue;
        };
        match table.by_func.entry(instance.func) {
            Entry::Vacant(slot) => {
                slot.insert(indices);
            }
            Entry::Occupied(mut slot) => {
                let all = slot.get_mut();
                all.extend(indices);
                all.sort_unstable();
            }
        }
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
