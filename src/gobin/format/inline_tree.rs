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
use super::pclntab::{FileRef, Func, FuncData, PclnVersion, Pclntab};

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

/// One inlined call of a function: where its code is and where it was called. A view into
/// its [`InlineTable`] (`'t`), whose callers and ranges are shared arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlinedInstance<'t, 'data> {
    /// The inlined function, as the pclntab names it (e.g. `main.add`).
    pub func: &'data str,
    /// The out-of-line function whose code holds the instance (the outermost caller).
    pub parent: &'data str,
    /// Entry of `parent`.
    pub parent_entry: u64,
    /// The inlined functions the call sits in, innermost first; empty when `parent` calls
    /// `func` directly (a mid-stack inlining chain otherwise).
    pub callers: &'t [&'data str],
    /// Source file and line of the call.
    pub call_file: &'data str,
    /// Line of the call: from the tree entry before go1.20, else the line of `parentPc`.
    pub call_line: i64,
    /// `parent_entry + parentPc`: an instruction of the caller whose source position is the
    /// call site. It is an inline mark NOP or an instruction the caller executes anyway at
    /// that position (it may be shared by several calls on one line, or hoisted out of the
    /// instance's path), so it is not by itself a "runs once per call" probe site.
    pub mark_pc: u64,
    /// The instance's code: `[lo, hi)` ranges of the instructions that belong to this call
    /// or to calls inlined into it, sorted and merged.
    pub ranges: &'t [(u64, u64)],
}

/// An [`InlinedInstance`] as the table keeps it (40 bytes; tens of thousands in a large
/// binary): names are indices into the table's strings, callers and ranges spans of its
/// shared arrays, with no allocation per instance.
#[derive(Debug)]
struct Stored {
    /// `strings[func]`.
    func: u32,
    /// `strings[call_file]`.
    call_file: u32,
    /// `parents[parent]`.
    parent: u32,
    /// `mark_pc - parent_entry`.
    parent_pc: u32,
    /// `callers[callers.0..callers.1]` of the table.
    callers: (u32, u32),
    /// `ranges[ranges.0..ranges.1]` of the table.
    ranges: (u32, u32),
    call_line: i64,
}

/// Every inlined call of a binary, and what could not be read.
#[derive(Debug, Default)]
pub struct InlineTable<'data> {
    /// By parent entry, then tree index.
    stored: Vec<Stored>,
    /// The inlined functions' names and the call sites' files.
    strings: Vec<&'data str>,
    /// Name and entry of each function holding inlined calls.
    parents: Vec<(&'data str, u64)>,
    /// Every instance's callers, one span each.
    callers: Vec<&'data str>,
    /// Every instance's ranges, one span each.
    ranges: Vec<(u64, u64)>,
    /// Indices into `stored` by inlined function name.
    by_func: HashMap<&'data str, Vec<u32>, BuildHasherDefault<WordHasher>>,
    /// Functions whose inline tree could not be read, and why.
    pub unreadable: Vec<(&'data str, String)>,
    /// Why no inline tree was read at all (None when they were).
    pub unavailable: Option<String>,
}

impl<'data> InlineTable<'data> {
    /// The view of stored instance `i`.
    fn instance(&self, i: usize) -> InlinedInstance<'_, 'data> {
        let s = &self.stored[i];
        let span = |(lo, hi): (u32, u32)| lo as usize..hi as usize;
        let (parent, parent_entry) = self.parents[s.parent as usize];
        InlinedInstance {
            func: self.strings[s.func as usize],
            parent,
            parent_entry,
            callers: &self.callers[span(s.callers)],
            call_file: self.strings[s.call_file as usize],
            call_line: s.call_line,
            mark_pc: parent_entry.saturating_add(u64::from(s.parent_pc)),
            ranges: &self.ranges[span(s.ranges)],
        }
    }

    /// Every inlined call, by parent entry, then tree index.
    pub fn instances(&self) -> impl ExactSizeIterator<Item = InlinedInstance<'_, 'data>> {
        (0..self.stored.len()).map(|i| self.instance(i))
    }

    /// The inlined instances of `func`, by parent entry.
    pub fn of(&self, func: &str) -> impl Iterator<Item = InlinedInstance<'_, 'data>> {
        self.by_func
            .get(func)
            .into_iter()
            .flatten()
            .map(|&i| self.instance(i as usize))
    }

    /// The names of every function inlined somewhere.
    pub fn inlined_functions(&self) -> impl Iterator<Item = &'data str> + '_ {
        self.by_func.keys().copied()
    }

    /// Drops what was added since `mark`: the instances of a function whose tree turned
    /// out unreadable (the strings stay, for the next functions).
    fn truncate(&mut self, (stored, parents, callers, ranges): (usize, usize, usize, usize)) {
        self.stored.truncate(stored);
        self.parents.truncate(parents);
        self.callers.truncate(callers);
        self.ranges.truncate(ranges);
    }

    /// Where the next function's instances, callers and ranges start.
    fn mark(&self) -> (usize, usize, usize, usize) {
        (
            self.stored.len(),
            self.parents.len(),
            self.callers.len(),
            self.ranges.len(),
        )
    }

    /// The index in `strings` of the string that `key` names, read by `read` and added on
    /// first use (`ids` remembers them).
    fn intern(
        &mut self,
        ids: &mut StringIds,
        key: StringKey,
        read: impl FnOnce() -> Result<&'data str>,
    ) -> Result<u32> {
        match ids.entry(key) {
            Entry::Occupied(id) => Ok(*id.get()),
            Entry::Vacant(slot) => {
                let id = u32::try_from(self.strings.len()).context("too many names")?;
                self.strings.push(read()?);
                Ok(*slot.insert(id))
            }
        }
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
        out: &mut InlineTable<'data>,
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
            chosen,
            spans,
            ends,
            grouped,
            marks,
            sites,
            ids,
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
        for (slot, decoded) in entries.iter().enumerate() {
            if names.get(pclntab, wanted, decoded.entry.name_off)?.1 {
                chosen.push((decoded.index, slot));
            }
        }
        if chosen.is_empty() {
            return Ok(());
        }
        // Ranked in tree-index order, the table's order.
        chosen.sort_unstable();
        for (rank, &(_, slot)) in chosen.iter().enumerate() {
            entries[slot].selected = Some(rank);
        }
        let tree = Tree { slot_of, entries };

        // Each run's instructions belong to its entry and to every entry enclosing it.
        for &(lo, hi, value) in runs {
            if let Ok(index) = usize::try_from(value) {
                for decoded in tree.chain(index) {
                    if let Some(rank) = decoded?.selected {
                        spans.push((rank, lo, hi));
                    }
                }
            }
        }
        let ends = group_by_rank(spans, chosen.len(), ends, grouped);
        let call_sites = self.call_sites(func, &tree, chosen, marks, sites)?;
        out.stored.reserve(chosen.len());
        let parent = u32::try_from(out.parents.len()).context("too many functions")?;
        out.parents.push((func.name, func.entry));
        for (rank, &(index, slot)) in chosen.iter().enumerate() {
            let entry = &tree.entries[slot].entry;
            let callers_start = out.callers.len();
            for caller in tree.chain(index).skip(1) {
                let name = names.get(pclntab, wanted, caller?.entry.name_off)?.0;
                out.callers.push(name);
            }
            let ranges_start = out.ranges.len();
            let first = rank.checked_sub(1).map_or(0, |previous| ends[previous]);
            merge_into(
                &mut out.ranges,
                ranges_start,
                grouped[first..ends[rank]].iter().copied(),
            );
            let span = |start: usize, end: usize| -> Result<(u32, u32)> {
                Ok((
                    u32::try_from(start).context("too many inlined calls")?,
                    u32::try_from(end).context("too many inlined calls")?,
                ))
            };
            let name = names.get(pclntab, wanted, entry.name_off)?.0;
            let (file, call_line) = call_sites[rank];
            let call_file = match file {
                Some(file) => out.intern(ids, StringKey::File(file), || pclntab.file_at(file))?,
                None => out.intern(ids, StringKey::Unknown, || Ok("?"))?,
            };
            let stored = Stored {
                func: out.intern(ids, StringKey::Name(entry.name_off), || Ok(name))?,
                call_file,
                parent,
                parent_pc: entry.parent_pc,
                callers: span(callers_start, out.callers.len())?,
                ranges: span(ranges_start, out.ranges.len())?,
                call_line,
            };
            out.stored.push(stored);
        }
        Ok(())
    }
}

impl TreeReader<'_, '_> {
    /// The call site (file, None when unknown, and line) of each `chosen` entry of `func`'s
    /// `tree`, in `chosen`'s order, written to `sites`. Before go1.20 the entries hold them;
    /// from go1.20 they are the source positions of the entries' `parentPc`, which one pass
    /// over the function's line tables reads in pc order (`marks`: a buffer for that order).
    fn call_sites<'s>(
        &self,
        func: &Func<'_>,
        tree: &Tree<'_>,
        chosen: &[(usize, usize)],
        marks: &mut Vec<(u32, usize)>,
        sites: &'s mut Vec<(Option<FileRef>, i64)>,
    ) -> Result<&'s [(Option<FileRef>, i64)]> {
        let pclntab = self.pclntab;
        sites.clear();
        if self.pclntab.version != PclnVersion::Go120 {
            for &(_, slot) in chosen {
                sites.push(match tree.entries[slot].entry.call_site {
                    Some((file_no, line)) => (pclntab.file_ref(func, file_no)?, line),
                    None => (None, 0),
                });
            }
            return Ok(sites);
        }
        marks.clear();
        marks.extend(
            chosen
                .iter()
                .enumerate()
                .map(|(rank, &(_, slot))| (tree.entries[slot].entry.parent_pc, rank)),
        );
        marks.sort_unstable();
        sites.resize(chosen.len(), (None, 0));
        let mut lines = pclntab.line_cursor(func)?;
        for &(parent_pc, rank) in &*marks {
            let mark_pc = func.entry.saturating_add(u64::from(parent_pc));
            if let Some((file_no, line)) = lines.at(mark_pc)? {
                if let Some(file) = pclntab.file_ref(func, file_no)? {
                    sites[rank] = (Some(file), line);
                }
            }
        }
        Ok(sites)
    }
}

/// `spans` (`(rank, lo, hi)`, ranks below `ranks`, each rank's spans in pc order) grouped by
/// rank into `grouped`, in pc order within each rank (a counting sort, which keeps the
/// order); returns where each rank's spans end in `grouped` (`ends`).
fn group_by_rank<'e>(
    spans: &[(usize, u64, u64)],
    ranks: usize,
    ends: &'e mut Vec<usize>,
    grouped: &mut Vec<(u64, u64)>,
) -> &'e [usize] {
    ends.clear();
    ends.resize(ranks + 1, 0);
    for &(rank, ..) in spans {
        ends[rank + 1] += 1;
    }
    for rank in 1..=ranks {
        ends[rank] += ends[rank - 1];
    }
    // `ends[rank]` is now where the rank's spans start: each placed span moves it on, to
    // where they end.
    grouped.clear();
    grouped.resize(spans.len(), (0, 0));
    for &(rank, lo, hi) in spans {
        grouped[ends[rank]] = (lo, hi);
        ends[rank] += 1;
    }
    ends.truncate(ranks);
    ends
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
    /// The tree index and position in `entries` of each entry `wanted` selects.
    chosen: Vec<(usize, usize)>,
    /// `(rank in chosen, lo, hi)`: each run of the function's code, once per selected entry
    /// it belongs to.
    spans: Vec<(usize, u64, u64)>,
    /// `spans` grouped by rank ([`group_by_rank`]), and where each rank's end.
    ends: Vec<usize>,
    grouped: Vec<(u64, u64)>,
    /// The chosen entries' `parentPc` and rank, in pc order, and their call sites by rank
    /// ([`TreeReader::call_sites`]).
    marks: Vec<(u32, usize)>,
    sites: Vec<(Option<FileRef>, i64)>,
    /// The table's strings by what they are read from.
    ids: StringIds,
}

/// Indices of interned strings by what they are read from.
type StringIds = HashMap<StringKey, u32, BuildHasherDefault<WordHasher>>;

/// What a string of an [`InlineTable`] is read from: the name at a `nameOff`, a file name,
/// or the `?` of a call site whose file is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StringKey {
    Name(u32),
    File(FileRef),
    Unknown,
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
        self.chosen.clear();
        self.spans.clear();
    }
}

/// Function names by `nameOff` (the same few thousand inlined functions recur in every
/// tree), each with whether `wanted` selects it.
#[derive(Default)]
struct Names<'data>(HashMap<u32, (&'data str, bool), BuildHasherDefault<WordHasher>>);

/// A hash of a name offset, an address or a name: one multiplication (by a constant of the
/// Fx hash) per word, its high bits rotated down to where the map picks buckets. SipHash cost
/// as much as reading a name, and as much again to find each listed function's inlined calls
/// by its name.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.write_u64(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(last));
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

/// Appends `sorted` ranges to `out`, joining the ones that touch or overlap each other or the
/// last of `out[start..]`.
fn merge_into(out: &mut Vec<(u64, u64)>, start: usize, sorted: impl Iterator<Item = (u64, u64)>) {
    for (lo, hi) in sorted {
        match out.get_mut(start..).and_then(<[_]>::last_mut) {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
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
    read_parents(elf, pclntab, funcs, funcs, go_version, wanted)
}

/// [`read_matching`] over the inline trees of `parents` only, a subset of the binary's
/// functions `funcs` (all of them, in address order: the first is `moduledata.minpc`).
pub fn read_parents<'data>(
    elf: &ElfImage<'data>,
    pclntab: &Pclntab<'data>,
    funcs: &[Func<'data>],
    parents: &[Func<'data>],
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
    for func in parents {
        let start = table.mark();
        if let Err(err) = reader.instances(func, wanted, &mut scratch, &mut table) {
            table.truncate(start);
            table.unreadable.push((func.name, format!("{err:#}")));
        }
    }
    // Grouped by the name's string index first: each name was read once per nameOff, and
    // hashing an index is cheaper than hashing the name. Equal names at two offsets meet
    // below.
    let mut by_id: HashMap<u32, Vec<u32>, BuildHasherDefault<WordHasher>> = HashMap::default();
    for (i, instance) in (0u32..).zip(&table.stored) {
        by_id.entry(instance.func).or_default().push(i);
    }
    table.by_func.reserve(by_id.len());
    for (id, indices) in by_id {
        match table.by_func.entry(table.strings[id as usize]) {
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
    use super::{go_minor, merge_into};

    #[test]
    fn merges_touching_ranges() {
        let mut out = vec![(0, 100)];
        let sorted = [(0, 5), (5, 8), (10, 20), (15, 30), (40, 41)];
        merge_into(&mut out, 1, sorted.into_iter());
        assert_eq!(out, vec![(0, 100), (0, 8), (10, 30), (40, 41)]);
    }

    #[test]
    fn go_versions() {
        assert_eq!(go_minor("go1.14"), Some(14));
        assert_eq!(go_minor("go1.21.13"), Some(21));
        assert_eq!(go_minor("go1.27rc1"), Some(27));
        assert_eq!(go_minor("devel"), None);
    }
}
