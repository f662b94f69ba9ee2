//! What is read at every kind of site of the planned functions: arguments at the entry,
//! results at their own RETs and at their tail callees' RETs ([`super::tail`]), each function's
//! plan from the signature the user wrote, else DWARF, with the `--global`s read at its entry.

use anyhow::{Context, Result};

use crate::bpf_types::{args_fetch, args_plan_index, site_kind};
use crate::gobin::format::dwarf::DwarfInfo;
use crate::gobin::{Arch, GoBinary};
use crate::plan::signature::UserSignature;
use crate::plan::ProbePlan;

use super::{add_globals, call_plan, tail, Abi, CallPlan, SitePlan};

/// The kinds of site a record comes from, each with the index of its fetch plan (args_site
/// picks the same).
pub const SITE_PLANS: [(site_kind, args_plan_index); 3] = [
    (site_kind::SITE_ENTRY, args_plan_index::ARGS_PLAN_ENTRY),
    (site_kind::SITE_RET, args_plan_index::ARGS_PLAN_RET),
    (
        site_kind::SITE_TAIL_RET,
        args_plan_index::ARGS_PLAN_TAIL_RET,
    ),
];

/// What is read at each kind of site of one planned function.
#[derive(Debug, Clone)]
pub struct Reads {
    /// Arguments at the entry, results at its own RETs.
    call: CallPlan,
    /// Results at its tail callees' RETs ([`tail`]).
    tail_ret: SitePlan,
}

impl Reads {
    /// The plan of sites of `kind` (one of [`SITE_PLANS`]; any other is read as a RET).
    pub fn site(&self, kind: site_kind) -> &SitePlan {
        if kind == site_kind::SITE_ENTRY {
            &self.call.entry
        } else if kind == site_kind::SITE_TAIL_RET {
            &self.tail_ret
        } else {
            &self.call.ret
        }
    }
}

/// The entries a `fetch_plans` map (capture.bpf.h) needs for `plan`'s functions.
pub fn fetch_plans_len(plan: &ProbePlan) -> u32 {
    args_plan_index::ARGS_PLANS_PER_FUNC.0 * plan.funcs.len() as u32
}

/// Each planned function's fetch plans, one per kind of site, with their `fetch_plans` keys.
pub fn fetch_plans<'a>(
    plan: &'a ProbePlan,
    calls: &'a [Reads],
) -> impl Iterator<Item = (u32, args_fetch)> + 'a {
    plan.funcs.iter().zip(calls).flat_map(|(func, reads)| {
        SITE_PLANS.iter().map(move |&(kind, index)| {
            let key = func.id * args_plan_index::ARGS_PLANS_PER_FUNC.0 + index.0;
            (key, reads.site(kind).to_bpf(func.entry))
        })
    })
}

/// The read plans of every planned function, and notes for the user (functions whose calls
/// are read without arguments, and why).
pub struct CallPlans {
    pub reads: Vec<Reads>,
    pub notes: Vec<String>,
}

/// What is read for every planned function: its ABI plan from its written signature, else
/// DWARF, with the globals `global_names` read at its entry (strings and bytes up to
/// `strsize`), and its results at tail callees' RETs.
pub fn call_plans(
    bin: &GoBinary<'_>,
    dwarf: Option<&DwarfInfo>,
    plan: &ProbePlan,
    user_sigs: &[UserSignature],
    strsize: u32,
    global_names: &[String],
) -> Result<CallPlans> {
    let arch = bin.elf.arch;
    let abi = if arch == Arch::Amd64 && bin.uses_register_abi() {
        Abi::Register
    } else {
        Abi::Stack
    };
    let globals = global_names
        .iter()
        .map(|name| {
            let dwarf = dwarf.with_context(|| {
                format!("--global {name}: the binary has no DWARF (stripped), so its globals' types are unknown")
            })?;
            let global = dwarf
                .globals
                .iter()
                .find(|g| &g.name == name)
                .with_context(|| {
                    format!("unknown global {name} (see `gotrace list --globals BINARY`)")
                })?;
            let ty = global
                .ty
                .with_context(|| format!("{name}: DWARF gives no type"))?;
            Ok((name.clone(), global.addr, ty))
        })
        .collect::<Result<Vec<_>>>()?;
    // A function's ABI plan from the signature the user wrote, else DWARF's.
    let signature_of = |name: &str, entry: u64| {
        if let Some(user) = user_sigs.iter().find(|u| u.function == name) {
            return Some(call_plan(&user.sig, &user.types, arch, abi, strsize));
        }
        let dwarf = dwarf?;
        let sig = dwarf.signature(name, entry)?;
        Some(call_plan(sig, &dwarf.types, arch, abi, strsize))
    };
    let mut notes = Vec::new();
    let mut unread = Vec::new();
    let reads: Vec<Reads> = plan
        .funcs
        .iter()
        .map(|func| {
            let mut call = match (signature_of(&func.name, func.entry), dwarf) {
                (Some(call), _) => call,
                (None, Some(_)) => {
                    if func.out_of_line {
                        notes.push(format!(
                            "{} has no DWARF signature (assembly?): its calls are printed without arguments",
                            func.name
                        ));
                    }
                    CallPlan::default()
                }
                (None, None) => {
                    unread.push(func.name.as_str());
                    CallPlan::default()
                }
            };
            if let Some(dwarf) = dwarf {
                add_globals(&mut call.entry, &globals, &dwarf.types, arch, strsize)
                    .map_err(anyhow::Error::msg)?;
            }
            let tail_ret = tail::tail_ret_plan(bin, func, &call.ret, signature_of)?;
            Ok(Reads { call, tail_ret })
        })
        .collect::<Result<_>>()?;
    if let Some(first) = unread.first() {
        notes.push(unread_note(first, unread.len()));
    }
    Ok(CallPlans { reads, notes })
}

/// The one note for the functions of a binary without DWARF that have no written signature:
/// their calls, returns and durations are traced, their arguments and results not read.
fn unread_note(first: &str, count: usize) -> String {
    let which = match count {
        1 => first.to_owned(),
        n => format!("{n} functions ({first}, ...)"),
    };
    format!(
        "the binary has no DWARF (stripped): the arguments and results of {which} are not read, only calls, returns and durations; to read them write the signature, e.g. '{first}(n int, s string) (int, error)' (docs/signatures.md)"
    )
}
