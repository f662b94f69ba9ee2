//! What `gotrace list` says of inlined calls: the INLINED column, the summary line, the
//! `inlined_sites` JSON, `--inlined` site lines, and the functions that exist only inlined.

use crate::output::count;
use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;

use crate::gobin::code::inline_entry::{InlineEntries, ParentFlow};
use crate::gobin::format::dwarf_inline::{InlinedCallIndex, InlinedParam, ParamLocation};
use crate::gobin::format::inline_tree::{InlineTable, InlinedInstance};
use crate::gobin::GoBinary;

/// The INLINED column: the number of inlined sites, `-` for none, `?` when the binary's
/// inline trees could not be read.
pub fn site_count(table: &InlineTable<'_>, count: usize) -> String {
    match count {
        0 if table.unavailable.is_some() => "?".to_owned(),
        0 => "-".to_owned(),
        n => n.to_string(),
    }
}

/// One comment line: how many inlined calls were found, and what could not be read.
pub fn inline_summary(table: &InlineTable<'_>) -> String {
    let found = format!(
        "# {} of {}",
        count(table.instances().len(), "inlined call"),
        count(table.inlined_functions().count(), "function")
    );
    match inline_problems(table) {
        Some(problem) => format!("{found}; {problem}"),
        None => found,
    }
}

/// What of the inline trees could not be read, if anything.
pub fn inline_problems(table: &InlineTable<'_>) -> Option<String> {
    if let Some(reason) = &table.unavailable {
        return Some(reason.clone());
    }
    let (first, why) = table.unreadable.first()?;
    Some(format!(
        "the inline trees of {} could not be read (their inlined calls are not \
         listed), e.g. {first}: {why}",
        count(table.unreadable.len(), "function")
    ))
}

/// What `--inlined` adds to each site: its entries, from the decoded parents (cached by
/// entry; None: not decodable, e.g. arm64), and its parameters, from DWARF when it has any.
pub struct SiteDetails {
    flows: HashMap<u64, Option<ParentFlow>>,
    /// DWARF's inlined calls.
    dwarf: InlinedCallIndex,
}

impl SiteDetails {
    /// Reads the binary's DWARF inlined calls (none without DWARF).
    pub fn read(bin: &GoBinary<'_>) -> Result<SiteDetails> {
        Ok(SiteDetails {
            flows: HashMap::new(),
            dwarf: InlinedCallIndex::new(bin.dwarf_inlined()?.unwrap_or_default()),
        })
    }

    /// Where control enters `site`, when its parent can be decoded.
    pub fn entries(
        &mut self,
        bin: &GoBinary<'_>,
        site: &InlinedInstance<'_, '_>,
    ) -> Option<InlineEntries> {
        self.flows
            .entry(site.parent_entry)
            .or_insert_with(|| bin.parent_flow(site.parent_entry).ok())
            .as_ref()
            .map(|flow| flow.entries(site.ranges))
    }

    /// `site`'s formal parameters as DWARF describes them: the inlined call with the same
    /// parent, function, call line and enclosing calls whose ranges overlap the site's.
    pub fn params(&self, site: &InlinedInstance<'_, '_>) -> Option<&[InlinedParam]> {
        self.dwarf
            .find(
                site.parent,
                site.func,
                site.call_line,
                site.callers,
                site.ranges,
            )
            .map(|call| call.params.as_slice())
    }
}

/// A parameter and how DWARF locates it: `expr` (one expression for the whole call), `list`
/// (per PC range) or `none` (optimized away).
pub fn param_location(param: &InlinedParam) -> &'static str {
    match param.location {
        ParamLocation::Expr(_) => "expr",
        ParamLocation::List(_) => "list",
        ParamLocation::None => "none",
    }
}

/// `--inlined`: the sites of one function, one per line, below its row.
pub fn write_sites(
    out: &mut impl Write,
    bin: &GoBinary<'_>,
    mut flows: Option<&mut SiteDetails>,
    instances: &[InlinedInstance<'_, '_>],
) -> Result<()> {
    for site in instances {
        let ranges: Vec<String> = site
            .ranges
            .iter()
            .map(|(lo, hi)| format!("{lo:#x}-{hi:#x}"))
            .collect();
        let via = if site.callers.is_empty() {
            String::new()
        } else {
            format!(" via {}", site.callers.join(" <- "))
        };
        let entries = match flows.as_mut().and_then(|f| f.entries(bin, site)) {
            None => "?".to_owned(),
            Some(e) if e.points.is_empty() => "none".to_owned(),
            Some(e) => e
                .points
                .iter()
                .map(|p| format!("{:#x}{}", p.pc, if p.reentered { "(join)" } else { "" }))
                .collect::<Vec<_>>()
                .join(","),
        };
        let params = flows
            .as_ref()
            .and_then(|f| f.params(site))
            .map(|params| {
                let named: Vec<String> = params
                    .iter()
                    .map(|p| format!("{}({})", p.name, param_location(p)))
                    .collect();
                format!(" params {}", named.join(","))
            })
            .unwrap_or_default();
        writeln!(
            out,
            "    inlined in {}{via} at {}:{} entries {entries} mark {:#x}{params} ranges {}",
            site.parent,
            site.call_file,
            site.call_line,
            site.mark_pc,
            ranges.join(" ")
        )?;
    }
    Ok(())
}
