//! What is read at every kind of site of the planned functions: arguments at the entry,
//! results at their own RETs and at their tail callees' RETs ([`super::tail`]), each function's
//! plan from the signature the user wrote, else DWARF, with the `--global`s read at its entry.

use anyhow::{bail, Context, Result};

use crate::bpf_types::{args_fetch, args_plan_index, site_kind};
use crate::gobin::{Arch, GoBinary};
use crate::plan::ProbePlan;

use super::deep;
use super::fields::add_field;
use super::filter::{add_where, Condition};
use super::path::Expr;
use super::{add_globals, call_plan, tail, Abi, CallPlan, SitePlan, Sources};

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

/// The calling convention of the binary's Go functions.
pub fn abi_of(bin: &GoBinary<'_>) -> Abi {
    if bin.elf.arch == Arch::Amd64 && bin.uses_register_abi() {
        Abi::Register
    } else {
        Abi::Stack
    }
}

/// What is read besides the arguments and results: `--global`s, `--field` paths and the
/// `--where` condition.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// `--global` names, as written.
    pub globals: Vec<String>,
    /// `--field` expressions.
    pub fields: Vec<Expr>,
    /// `--where` (None: every call is shown).
    pub filter: Option<Condition>,
}

/// The read plans of every planned function, and notes for the user (functions whose calls
/// are read without arguments, and why).
pub struct CallPlans {
    /// What is read for each planned function, by its id.
    pub reads: Vec<Reads>,
    /// Lines for the user about functions whose arguments are not read.
    pub notes: Vec<String>,
}

/// What is read for every planned function (from `sources`): its ABI plan from its written
/// signature, else DWARF (strings and bytes read up to `strsize`), `extra`'s globals and field paths read at the entry of each function with a
/// parameter they start from (an error when one names what its types do not have, or no
/// function has its parameter), its `--where` (every function must have its parameter), the
/// structs its pointer arguments point at ([`deep`]), and its results at tail callees' RETs.
pub fn call_plans(sources: &Sources<'_, '_>, plan: &ProbePlan, extra: &Extra) -> Result<CallPlans> {
    let Sources {
        bin,
        dwarf,
        strsize,
        ..
    } = *sources;
    let (global_names, fields) = (&extra.globals, &extra.fields);
    let arch = bin.elf.arch;
    let abi = abi_of(bin);
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
    // A function's signature (and the table of its types): the one the user wrote, else
    // DWARF's; its ABI plan from that.
    let sigs = sources.signatures();
    let sig_of = |name: &str, entry: u64| sigs.of(name, entry);
    let signature_of = |name: &str, entry: u64| {
        let (sig, types) = sig_of(name, entry)?;
        Some(call_plan(sig, types, arch, abi, strsize))
    };
    let mut rooted = vec![false; fields.len()];
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
            if let Some(cond) = &extra.filter {
                let Some((sig, types)) = sig_of(&func.name, func.entry) else {
                    bail!("--where {}: {} has no signature to read it from", cond.text, func.name);
                };
                if !sig.params.iter().any(|p| p.name == cond.expr.root) {
                    let names: Vec<&str> = sig.params.iter().map(|p| p.name.as_str()).collect();
                    bail!(
                        "--where {}: {} has no parameter {:?} (its parameters: {}); trace only functions that have it",
                        cond.text, func.name, cond.expr.root, names.join(", ")
                    );
                }
                add_where(&mut call.entry, cond, &sig.params, types, arch).map_err(|e| {
                    anyhow::anyhow!("{e} (in {})", func.name)
                })?;
            }
            if let Some((sig, types)) = sig_of(&func.name, func.entry) {
                for (expr, rooted) in fields.iter().zip(&mut rooted) {
                    if sig.params.iter().any(|p| p.name == expr.root) {
                        *rooted = true;
                        add_field(&mut call.entry, expr, &sig.params, types, arch, strsize)
                            .map_err(|e| anyhow::anyhow!("--field {e} (in {})", func.name))?;
                    }
                }
                // Last: the structs take what the globals and fields leave.
                deep::deepen(&mut call.entry, &sig.params, types, arch, strsize);
            }
            let tail_ret = tail::tail_ret_plan(bin, func, &call.ret, signature_of)?;
            Ok(Reads { call, tail_ret })
        })
        .collect::<Result<_>>()?;
    if let Some((expr, _)) = fields.iter().zip(&rooted).find(|(_, rooted)| !**rooted) {
        let first = plan
            .funcs
            .first()
            .and_then(|f| sig_of(&f.name, f.entry).map(|s| (f, s)));
        let known = first.map_or(String::new(), |(f, (sig, _))| {
            let names: Vec<&str> = sig.params.iter().map(|p| p.name.as_str()).collect();
            format!(" ({}'s parameters: {})", f.name, names.join(", "))
        });
        let stripped = match unread.first() {
            Some(first) => format!(
                "; the binary has no DWARF (stripped): write {first}'s signature (docs/signatures.md)"
            ),
            None => String::new(),
        };
        bail!(
            "--field {}: no traced function has a parameter {:?}{known}{stripped}",
            expr.text,
            expr.root
        );
    }
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
