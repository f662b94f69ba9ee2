//! The probes of inlined calls in `gotrace args`: what each one reads
//! ([`crate::plan::inlined_args`]) and which call it belongs to, for the decoder.

use anyhow::Result;

use crate::bpf_types::inline_role;
use crate::gobin::format::dwarf::DwarfInfo;
use crate::gobin::GoBinary;
use crate::plan::abi::SitePlan;
use crate::plan::inlined_args::InlinedArgs;
use crate::plan::signature::UserSignature;
use crate::plan::ProbePlan;

/// One probe of an inlined call, by its index in the `inline_sites` map.
pub(crate) struct InlineRead {
    /// The planned function it is a call of.
    pub func_id: u32,
    /// The function the call is inlined into, and the call's `file:line`.
    pub parent: String,
    pub call_site: String,
    /// Where the call ends (its record is a return), not where it starts.
    pub is_end: bool,
    /// What a hit reads.
    pub plan: SitePlan,
    /// Link-time entry of the parent (the probe's cookie carries its offset from it).
    pub parent_entry: u64,
}

/// What each probe of `plan`'s inlined calls reads, in `inline_sites` order.
pub(crate) fn inline_reads(
    bin: &GoBinary<'_>,
    dwarf: Option<&DwarfInfo>,
    plan: &ProbePlan,
    user_sigs: &[UserSignature],
    strsize: u32,
) -> Result<Vec<InlineRead>> {
    if plan.funcs.iter().all(|f| f.instances.is_empty()) {
        return Ok(Vec::new());
    }
    let located = InlinedArgs::new(bin, dwarf, strsize)?;
    Ok(plan
        .inline_probes()
        .map(|probe| {
            let user_sig = user_sigs
                .iter()
                .find(|u| u.function == probe.func.name)
                .map(|u| &u.sig);
            InlineRead {
                func_id: probe.func.id,
                parent: probe.instance.parent.clone(),
                call_site: probe.instance.call_site.clone(),
                is_end: probe.role == inline_role::INLINE_END,
                plan: located.site_plan(&probe, user_sig),
                parent_entry: probe.instance.parent_entry,
            }
        })
        .collect())
}
