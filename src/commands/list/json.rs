//! `gotrace list --json`: one object per line, serialized straight from the binary's tables
//! through borrowed rows (no `serde_json::Value` built per row). Keys are in alphabetical
//! order, the order the output has always had.

use std::io::Write;

use anyhow::Result;
use serde::{Serialize, Serializer};

use super::inlined::{param_location, SiteDetails};
use crate::gobin::code::disasm::{DecodedFunction, TailCall};
use crate::gobin::code::inline_entry::InlineEntries;
use crate::gobin::code::site_class::SiteClass;
use crate::gobin::format::dwarf::{DwarfInfo, FuncSig, Param};
use crate::gobin::format::dwarf_inline::InlinedParam;
use crate::gobin::format::inline_tree::InlinedInstance;
use crate::gobin::format::pclntab::Func;
use crate::gobin::GoBinary;

/// Writes `row` as one line.
fn write_line(out: &mut impl Write, row: &impl Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, row)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The row of a function with code of its own. `sites`: its probe sites, or why they could
/// not be decoded (then its site keys are null or empty, and `problem` says why).
pub fn write_function<'d>(
    out: &mut impl Write,
    bin: &GoBinary<'d>,
    dwarf: Option<&DwarfInfo>,
    func: &Func<'_>,
    (file, line): (&str, i64),
    sites: &Result<DecodedFunction>,
    inlined: Option<Sites<'_, 'd>>,
) -> Result<()> {
    let offset = |vaddr: u64| bin.elf.file_offset(vaddr);
    let sig = dwarf.map(|info| (info, info.signature(func.name, func.entry)));
    let params = |pick: fn(&FuncSig) -> &[Param]| {
        sig.map(|(info, sig)| Params(info, sig.map_or(&[][..], pick)))
    };
    let decoded = sites.as_ref().ok();
    let row = FunctionRow {
        end: func.end,
        entry: func.entry,
        entry_class: decoded.map(|s| s.entry.class_name()),
        entry_probe_offset: decoded.and_then(|s| offset(s.entry_probe)),
        entry_site_offset: decoded.and_then(|s| offset(s.entry.addr)),
        file,
        file_offset: offset(func.entry),
        function: func.name,
        inlined_sites: inlined,
        line,
        params: params(|s| &s.params),
        problem: sites.as_ref().err().map(|err| format!("{err:#}")),
        results: params(|s| &s.results),
        ret_classes: decoded.map_or(&[][..], |s| &s.ret_classes),
        ret_offsets: Offsets(bin, decoded.map_or(&[][..], |s| &s.ret_sites)),
        steps_per_call: decoded.map(super::rows::steps_per_call),
        tail_calls: TailCalls(bin, decoded.map_or(&[][..], |s| &s.tail_calls)),
    };
    write_line(out, &row)
}

/// The row of a function that exists only inlined into its callers.
pub fn write_inlined_only(out: &mut impl Write, name: &str, sites: Sites<'_, '_>) -> Result<()> {
    write_line(
        out,
        &InlinedOnlyRow {
            function: name,
            inlined_only: true,
            inlined_sites: sites,
        },
    )
}

#[derive(Serialize)]
struct FunctionRow<'a, 'd> {
    end: u64,
    entry: u64,
    entry_class: Option<&'static str>,
    entry_probe_offset: Option<u64>,
    entry_site_offset: Option<u64>,
    file: &'a str,
    file_offset: Option<u64>,
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    inlined_sites: Option<Sites<'a, 'd>>,
    line: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<Params<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Params<'a>>,
    ret_classes: &'a [SiteClass],
    ret_offsets: Offsets<'a, 'd>,
    steps_per_call: Option<u8>,
    tail_calls: TailCalls<'a, 'd>,
}

#[derive(Serialize)]
struct InlinedOnlyRow<'a, 'd> {
    function: &'a str,
    inlined_only: bool,
    inlined_sites: Sites<'a, 'd>,
}

/// File offsets of addresses (null where an address is not in the file).
struct Offsets<'a, 'd>(&'a GoBinary<'d>, &'a [u64]);

impl Serialize for Offsets<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|&vaddr| self.0.elf.file_offset(vaddr)))
    }
}

/// `[{"function":..,"offset":..,"target":..}]`.
struct TailCalls<'a, 'd>(&'a GoBinary<'d>, &'a [TailCall]);

impl Serialize for TailCalls<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            function: Option<&'a str>,
            offset: Option<u64>,
            target: u64,
        }
        let bin = self.0;
        s.collect_seq(self.1.iter().map(|call| Row {
            function: bin.func_entered_at(call.target).map(|f| f.name),
            offset: bin.elf.file_offset(call.site),
            target: call.target,
        }))
    }
}

/// `[{"name":..,"type":..}]` for parameters or results.
struct Params<'a>(&'a DwarfInfo, &'a [Param]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            name: &'a str,
            #[serde(rename = "type")]
            ty: &'a str,
        }
        s.collect_seq(self.1.iter().map(|p| Row {
            name: &p.name,
            ty: self.0.types.name(p.ty),
        }))
    }
}

/// `"inlined_sites"`: one object per inlined call, with file offsets for uprobes. With
/// `details` (`--inlined`): `entry_offset` is the call's single entry instruction, when the
/// decoded parent shows exactly one that is not also reached from inside the call (else
/// null; `entry_offsets` lists them all, `entries_complete` is false when the parent has
/// indirect jumps), and `params` the DWARF parameters when DWARF describes the call;
/// without, those keys are absent.
pub struct Sites<'a, 'data> {
    /// The binary listed.
    pub bin: &'a GoBinary<'data>,
    /// The inlined calls to write.
    pub instances: &'a [InlinedInstance<'a, 'data>],
    /// `--inlined`: the details, and each instance's entries (None: its parent could not be
    /// decoded).
    pub details: Option<(&'a SiteDetails, &'a [Option<InlineEntries>])>,
}

impl Serialize for Sites<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bin = self.bin;
        let offset = |vaddr: u64| bin.elf.file_offset(vaddr);
        s.collect_seq(self.instances.iter().enumerate().map(|(i, site)| {
            let details = self
                .details
                .map(|(details, entries)| (details, entries.get(i).and_then(Option::as_ref)));
            let entries = details.map(|(_, entries)| entries);
            SiteRow {
                call_file: site.call_file,
                call_line: site.call_line,
                callers: site.callers,
                entries_complete: entries.map(|e| e.map(|e| e.indirect_jumps == 0)),
                entry_offset: entries.map(|e| {
                    e.and_then(|e| match e.points.as_slice() {
                        [only] if !only.reentered => offset(only.pc),
                        _ => None,
                    })
                }),
                entry_offsets: entries.map(|e| e.map(|e| EntryOffsets(bin, e))),
                mark_offset: offset(site.mark_pc),
                params: details
                    .and_then(|(details, _)| details.params(site))
                    .map(SiteParams),
                parent: site.parent,
                ranges: site.ranges,
            }
        }))
    }
}

#[derive(Serialize)]
struct SiteRow<'a, 'd> {
    call_file: &'a str,
    call_line: i64,
    callers: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    entries_complete: Option<Option<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_offset: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_offsets: Option<Option<EntryOffsets<'a, 'd>>>,
    mark_offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<SiteParams<'a>>,
    parent: &'a str,
    ranges: &'a [(u64, u64)],
}

/// The file offsets of an inlined call's entries.
struct EntryOffsets<'a, 'd>(&'a GoBinary<'d>, &'a InlineEntries);

impl Serialize for EntryOffsets<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.points.iter().map(|p| self.0.elf.file_offset(p.pc)))
    }
}

/// `[{"location":..,"name":..}]`: an inlined call's DWARF parameters.
struct SiteParams<'a>(&'a [InlinedParam]);

impl Serialize for SiteParams<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            location: &'static str,
            name: &'a str,
        }
        s.collect_seq(self.0.iter().map(|p| Row {
            location: param_location(p),
            name: &p.name,
        }))
    }
}
