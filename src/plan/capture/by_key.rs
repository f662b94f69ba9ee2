//! `funclat --by EXPR`: what is read at each planned function's entry to key its calls' latency
//! (docs/design.md §19): the field path alone, placed as `gotrace args --field` places it, and
//! where its value lies in the capture (struct by_key_plan): an integer's or a boolean's bytes
//! in the frame, or a string's bytes (the plan's only extra read). Each function's types come
//! from the signature the user wrote (a stripped binary's only source), else DWARF.

use anyhow::{bail, Result};

use crate::bpf_types::{args_fetch, args_plan_index, by_key_plan, by_source};
use crate::gobin::GoBinary;
use crate::plan::signature::{Signatures, UserSignature};
use crate::plan::ProbePlan;

use super::fields::add_field;
use super::path::Expr;
use super::{abi_of, call_plan, Loc, Shape, SitePlan};

/// How a key's bytes are read back as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An integer.
    Int {
        /// Read as signed.
        signed: bool,
    },
    /// A bool.
    Bool,
    /// A string (its bytes up to `--strsize`).
    String,
}

/// One planned function's key: the entry plan that reads it, and where it is.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// The entry plan: the `--by` expression as its one field path.
    pub site: SitePlan,
    /// None: the function has no parameter the expression starts from.
    pub kind: Option<KeyKind>,
    source: by_key_plan,
}

impl KeyPlan {
    /// The BPF side's `struct by_key_plan`.
    pub fn to_bpf(&self) -> by_key_plan {
        self.source
    }
}

/// Each planned function's key plan for `expr` (strings up to `strsize` bytes), through its
/// `written` signature, else DWARF's; an error when the binary has no DWARF and no signature
/// is written, `expr` names what a function's types do not have, its value is neither a
/// string, an integer nor a boolean, or no function has its parameter.
pub fn key_plans(
    bin: &GoBinary<'_>,
    plan: &ProbePlan,
    written: &[UserSignature],
    expr: &Expr,
    strsize: u32,
) -> Result<Vec<KeyPlan>> {
    let dwarf = bin.dwarf()?;
    if dwarf.is_none() && written.is_empty() {
        let first = plan
            .funcs
            .first()
            .map_or("the function", |f| f.name.as_str());
        bail!(
            "--by {}: the binary has no DWARF (stripped), so {first}'s parameter types are unknown; write its signature in the pattern, e.g. 'main.handle(w http.ResponseWriter, r *http.Request)' (docs/signatures.md)",
            expr.text
        );
    }
    let sigs = Signatures { written, dwarf };
    let (arch, abi) = (bin.elf.arch, abi_of(bin));
    let mut any = false;
    let plans = plan
        .funcs
        .iter()
        .map(|func| {
            let none = KeyPlan {
                site: SitePlan::default(),
                kind: None,
                source: by_key_plan::default(),
            };
            let Some((sig, types)) = sigs.of(&func.name, func.entry) else {
                return Ok(none);
            };
            if !sig.params.iter().any(|p| p.name == expr.root) {
                return Ok(none);
            }
            any = true;
            let entry = call_plan(sig, types, arch, abi, strsize).entry;
            let mut site = SitePlan {
                origins: entry.origins,
                stack_bytes: entry.stack_bytes,
                ..SitePlan::default()
            };
            add_field(&mut site, expr, &sig.params, types, arch, strsize)
                .map_err(|e| anyhow::anyhow!("--by {e} (in {})", func.name))?;
            let field = &site.fields[0];
            let mut source = by_key_plan {
                chased: u32::from(field.read.is_some()),
                ..by_key_plan::default()
            };
            let kind = match field.value.shape {
                Shape::Int { loc, signed } => {
                    frame(&mut source, loc);
                    KeyKind::Int { signed }
                }
                Shape::Bool { loc } => {
                    frame(&mut source, loc);
                    KeyKind::Bool
                }
                Shape::String { len, deref: 0 } => {
                    source.source = by_source::BY_SOURCE_STRING;
                    source.len_off = len.offset;
                    KeyKind::String
                }
                Shape::Unreadable { ref reason } => {
                    bail!("--by {}: not readable in {}: {reason}", expr.text, func.name)
                }
                _ => bail!(
                    "--by {}: its {} is not a string, an integer or a boolean, which are what --by keys by",
                    expr.text,
                    field.value.type_name
                ),
            };
            Ok(KeyPlan {
                site,
                kind: Some(kind),
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !any {
        bail!(
            "--by {}: no traced function has a parameter {:?}",
            expr.text,
            expr.root
        );
    }
    Ok(plans)
}

/// A key of `loc.size` bytes at `loc` in the frame.
fn frame(source: &mut by_key_plan, loc: Loc) {
    source.source = by_source::BY_SOURCE_FRAME;
    source.off = loc.offset;
    source.size = loc.size;
}

/// The `fetch_plans` entries (capture.bpf.h) reading each function's key at its entry.
pub fn key_fetch_plans<'a>(
    plan: &'a ProbePlan,
    keys: &'a [KeyPlan],
) -> impl Iterator<Item = (u32, args_fetch)> + 'a {
    plan.funcs.iter().zip(keys).map(|(func, key)| {
        let index =
            func.id * args_plan_index::ARGS_PLANS_PER_FUNC.0 + args_plan_index::ARGS_PLAN_ENTRY.0;
        (index, key.site.to_bpf(func.entry))
    })
}
