//! Planning the inlined calls of a function (funclat): for each inlined instance, the probes
//! where its calls start and end ([`crate::gobin::code::inline_probe`]), or why it cannot be probed.

use std::collections::HashMap;

use anyhow::{Context, Result};

use crate::gobin::code::inline_entry::ParentFlow;
use crate::gobin::code::inline_probe::{BranchTest, EntryProbe, ProbeAt};
use crate::gobin::format::inline_tree::InlinedInstance;
use crate::gobin::runtime::never_returns::never_returns;
use crate::gobin::GoBinary;

/// One probe of an inlined call, at a file offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceSite {
    /// File offset of the probed instruction (where the uprobe goes).
    pub file_offset: u64,
    /// Which of its hits count.
    pub test: BranchTest,
    /// Entries: the vaddr of the instance's instruction whose registers and stack a hit
    /// sees (see [`EntryProbe::enters`]); None for exits.
    pub enters: Option<u64>,
}

/// One inlined instance of a planned function.
#[derive(Debug, Clone)]
pub struct PlannedInstance {
    /// The out-of-line function the call is inlined into.
    pub parent: String,
    /// `file:line` of the call.
    pub call_site: String,
    /// The line of `call_site`.
    pub call_line: i64,
    /// The inlined functions the call sits in, innermost first.
    pub callers: Vec<String>,
    /// The instance's code, `[lo, hi)` vaddr ranges.
    pub ranges: Vec<(u64, u64)>,
    /// Vaddr of the parent's entry.
    pub parent_entry: u64,
    /// File offset of the parent's entry (the instance sites' cookies carry their offset
    /// from it).
    pub parent_entry_offset: u64,
    /// Where its calls start (each counting hit is one call).
    pub entries: Vec<InstanceSite>,
    /// Where its calls end (empty when untimed).
    pub exits: Vec<InstanceSite>,
    /// Why its calls are counted but not timed; None: timed.
    pub untimed: Option<String>,
    /// Vaddrs of code its ranges claim that control enters without a call (see
    /// [`crate::gobin::code::inline_probe::InstanceProbes::shared_entries`]): not probed.
    pub shared_entries: Vec<u64>,
}

/// An inlined instance that cannot be probed, so that its calls are missed.
#[derive(Debug, Clone)]
pub struct UnprobedInstance {
    /// The inlined function.
    pub func: String,
    /// The out-of-line function the call is inlined into.
    pub parent: String,
    /// `file:line` of the call.
    pub call_site: String,
    /// Why it cannot be probed.
    pub reason: String,
}

/// Plans inlined instances, decoding each parent once.
#[derive(Default)]
pub struct InstancePlanner {
    flows: HashMap<u64, Result<ParentFlow, String>>,
}

impl InstancePlanner {
    /// The plan of `instance`, or why it cannot be probed.
    pub fn plan(
        &mut self,
        bin: &GoBinary<'_>,
        instance: &InlinedInstance<'_, '_>,
    ) -> Result<PlannedInstance, UnprobedInstance> {
        let call_site = format!("{}:{}", instance.call_file, instance.call_line);
        let unprobed = |reason: String| UnprobedInstance {
            func: instance.func.to_owned(),
            parent: instance.parent.to_owned(),
            call_site: call_site.clone(),
            reason,
        };
        let flow = self
            .flows
            .entry(instance.parent_entry)
            .or_insert_with(|| {
                bin.parent_flow(instance.parent_entry)
                    .map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| unprobed(e.clone()))?;
        let noreturn = |target: u64| bin.func_at(target).is_some_and(|f| never_returns(f.name));
        let probes = flow
            .instance_probes(instance.ranges, noreturn)
            .map_err(&unprobed)?;
        let site = |p: &ProbeAt, enters: Option<u64>| -> Result<InstanceSite> {
            Ok(InstanceSite {
                file_offset: bin
                    .elf
                    .file_offset(p.pc)
                    .with_context(|| format!("address {:#x} is not in the file", p.pc))?,
                test: p.test,
                enters,
            })
        };
        let sites = |probes: &[ProbeAt]| -> Result<Vec<InstanceSite>> {
            probes.iter().map(|p| site(p, None)).collect()
        };
        let offsets = (|| {
            let entries = probes
                .entries
                .iter()
                .map(|e: &EntryProbe| site(&e.at, e.enters))
                .collect::<Result<Vec<_>>>()?;
            let exits = match &probes.exits {
                Ok(exits) => sites(exits)?,
                Err(_) => Vec::new(),
            };
            let parent_entry_offset = bin
                .elf
                .file_offset(instance.parent_entry)
                .context("the parent's entry is not in the file")?;
            Ok::<_, anyhow::Error>((entries, exits, parent_entry_offset))
        })();
        let (entries, exits, parent_entry_offset) =
            offsets.map_err(|e| unprobed(format!("{e:#}")))?;
        if entries.is_empty() {
            return Err(unprobed(
                "no instruction where its calls start was found".to_owned(),
            ));
        }
        Ok(PlannedInstance {
            parent: instance.parent.to_owned(),
            call_site,
            call_line: instance.call_line,
            callers: instance.callers.iter().map(|&c| c.to_owned()).collect(),
            ranges: instance.ranges.to_vec(),
            parent_entry: instance.parent_entry,
            parent_entry_offset,
            entries,
            exits,
            untimed: probes.exits.err(),
            shared_entries: probes.shared_entries,
        })
    }
}
