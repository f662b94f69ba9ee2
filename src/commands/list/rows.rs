//! One `gotrace list` row per function: where it is, its probe sites and their cost class, its
//! types, its inlined calls; as a text line or one JSON object.

use std::io::Write;

use anyhow::Result;

use super::inlined::{self, SiteDetails};
use super::json;
use crate::gobin::code::disasm::DecodedFunction;
use crate::gobin::code::inline_entry::InlineEntries;
use crate::gobin::code::site_class::SiteClass;
use crate::gobin::format::dwarf::DwarfInfo;
use crate::gobin::format::inline_tree::{InlineTable, InlinedInstance};
use crate::gobin::format::pclntab::Func;
use crate::gobin::GoBinary;

/// What every row needs: the binary, its DWARF and inline trees, and the `--inlined` details.
pub struct Rows<'a, 'data> {
    /// The binary listed.
    pub bin: &'a GoBinary<'data>,
    /// Its DWARF (None: stripped of it).
    pub dwarf: Option<&'a DwarfInfo>,
    /// Every inlined call of the binary.
    pub inlined: &'a InlineTable<'data>,
    /// `--inlined`: each site's entries and parameters.
    pub details: Option<SiteDetails>,
    /// `--json`: rows as JSON lines, not table lines.
    pub json: bool,
    /// Width of the FUNCTION column: the longest name listed, so that no name shifts the
    /// columns after it.
    pub name_width: usize,
}

/// What the columns after FUNCTION mean, under the titles of the text output and in
/// `gotrace list --help`.
pub const LEGEND: &str = "# ENTRY-SITE: how the entry probe runs (emulated, flag-checked, or single-step: the slowest); RET-E/S: RET probes emulated/single-stepped; TAIL: tail calls out; STEPS: single-steps per traced call (0 is cheapest); `gotrace list --help` explains every column";

impl<'data> Rows<'_, 'data> {
    /// The column titles of the text output.
    pub fn write_titles(&self, out: &mut impl Write) -> Result<()> {
        writeln!(out, "{LEGEND}")?;
        let width = self.name_width;
        writeln!(
            out,
            "{:<width$} {:<10} {:<8} {:>6} {:>4} {:>5} {:>7} {:<12} {:>7} {:>4} {:>5} FILE:LINE",
            "FUNCTION",
            "ENTRY",
            "OFFSET",
            "SIZE",
            "RETS",
            "TYPES",
            "INLINED",
            "ENTRY-SITE",
            "RET-E/S",
            "TAIL",
            "STEPS"
        )?;
        Ok(())
    }

    /// Whether DWARF gives the parameter types of `name`, with code at `entry` if it has any.
    fn types_known(&self, name: &str, entry: Option<u64>) -> bool {
        self.dwarf.is_some_and(|d| match entry {
            Some(entry) => d.signature(name, entry).is_some(),
            None => d.functions.contains_key(name),
        })
    }

    /// The row of a function with code of its own.
    pub fn write_function(&mut self, out: &mut impl Write, func: &Func<'_>) -> Result<()> {
        let bin = self.bin;
        let (file, line) = bin.pclntab.line(func, func.entry)?.unwrap_or(("?", 0));
        let offset = |vaddr: u64| bin.elf.file_offset(vaddr);
        let sites = bin.probe_sites(func);
        let instances: Vec<InlinedInstance<'_, '_>> = self.inlined.of(func.name).collect();
        if self.json {
            let entries = self.site_entries(&instances);
            let inlined = (!instances.is_empty()).then(|| self.json_sites(&instances, &entries));
            let line = (file, line);
            return json::write_function(out, bin, self.dwarf, func, line, &sites, inlined);
        }
        let (rets, entry_class, ret_classes, tails, steps) = match &sites {
            Ok(sites) => (
                match sites.ret_sites.len() {
                    0 => "none".to_owned(),
                    n => n.to_string(),
                },
                sites.entry.class_name(),
                ret_class_counts(&sites.ret_classes),
                sites.tail_calls.len().to_string(),
                steps_per_call(sites).to_string(),
            ),
            Err(_) => (
                "?".to_owned(),
                "?",
                "?".to_owned(),
                "?".to_owned(),
                "?".to_owned(),
            ),
        };
        let width = self.name_width;
        writeln!(
            out,
            "{:<width$} {:#010x} {:#08x} {:>6} {:>4} {:>5} {:>7} {:<12} {:>7} {:>4} {:>5} {file}:{line}",
            func.name,
            func.entry,
            offset(func.entry).unwrap_or(0),
            func.end - func.entry,
            rets,
            if self.types_known(func.name, Some(func.entry)) { "yes" } else { "no" },
            inlined::site_count(self.inlined, instances.len()),
            entry_class,
            ret_classes,
            tails,
            steps,
        )?;
        self.write_site_lines(out, &instances)
    }

    /// The row of a function that exists only inlined into its callers.
    pub fn write_inlined_only(&mut self, out: &mut impl Write, name: &str) -> Result<()> {
        let instances: Vec<InlinedInstance<'_, '_>> = self.inlined.of(name).collect();
        if self.json {
            let entries = self.site_entries(&instances);
            return json::write_inlined_only(out, name, self.json_sites(&instances, &entries));
        }
        let width = self.name_width;
        writeln!(
            out,
            "{:<width$} {:<10} {:<8} {:>6} {:>4} {:>5} {:>7} (inlined only)",
            name,
            "-",
            "-",
            "-",
            "-",
            if self.types_known(name, None) {
                "yes"
            } else {
                "no"
            },
            instances.len(),
        )?;
        self.write_site_lines(out, &instances)
    }

    /// `--inlined`: each site's entries, from its decoded parent (None: not decodable).
    fn site_entries(
        &mut self,
        instances: &[InlinedInstance<'_, '_>],
    ) -> Option<Vec<Option<InlineEntries>>> {
        let details = self.details.as_mut()?;
        Some(
            instances
                .iter()
                .map(|site| details.entries(self.bin, site))
                .collect(),
        )
    }

    /// The `inlined_sites` of `instances`, with `--inlined`'s `entries`.
    fn json_sites<'s>(
        &'s self,
        instances: &'s [InlinedInstance<'s, 'data>],
        entries: &'s Option<Vec<Option<InlineEntries>>>,
    ) -> json::Sites<'s, 'data> {
        json::Sites {
            bin: self.bin,
            instances,
            details: self.details.as_ref().zip(entries.as_deref()),
        }
    }

    /// `--inlined`: one line per inlined site below the function's row.
    fn write_site_lines(
        &mut self,
        out: &mut impl Write,
        instances: &[InlinedInstance<'_, '_>],
    ) -> Result<()> {
        match self.details.as_mut() {
            Some(details) => inlined::write_sites(out, self.bin, Some(details), instances),
            None => Ok(()),
        }
    }
}

/// The expected cost class of tracing one call with an entry probe and RET probes: how many
/// of its probe hits the kernel single-steps (the entry site, plus one RET site if any RET is
/// single-stepped; 0 is the cheapest).
pub fn steps_per_call(sites: &DecodedFunction) -> u8 {
    let single_step = SiteClass::SingleStep;
    u8::from(sites.entry.insn.class == single_step)
        + u8::from(sites.ret_classes.contains(&single_step))
}

/// RET site classes as counts, `emulated/single-step` (`0/2`), or `-` without RET.
fn ret_class_counts(classes: &[SiteClass]) -> String {
    if classes.is_empty() {
        return "-".to_owned();
    }
    let steps = classes
        .iter()
        .filter(|&&class| class == SiteClass::SingleStep)
        .count();
    format!("{}/{steps}", classes.len() - steps)
}
