//! The results of a call that ends in a tail call. A function that leaves by `JMP callee`
//! hands the callee its own frame: the callee's RET returns to the function's caller, at the
//! function's entry SP, with the callee's results where the caller reads the function's. So
//! they are read at the callee's RETs by the callee's result layout (the function's own may
//! differ: a wrapper that adjusts its receiver in place still returns where its callee does),
//! and named as the function's own results when their types are the callee's. Otherwise each
//! result is unreadable, with why.

use anyhow::{Context, Result};

use super::{CallPlan, Shape, SitePlan, ValuePlan};
use crate::gobin::GoBinary;
use crate::plan::{self, PlannedFunc};

/// What `func` returns when a call of it ends at a tail callee's RET: read by the callees'
/// result layout under `own`'s names (its results as its signature has them), or `own`'s
/// values unreadable with why. `signature_of` gives a function's ABI plan by name and entry, when known.
pub fn tail_ret_plan(
    bin: &GoBinary<'_>,
    func: &PlannedFunc,
    own: &SitePlan,
    signature_of: impl Fn(&str, u64) -> Option<CallPlan>,
) -> Result<SitePlan> {
    if func.tail_ret_sites.is_empty() || own.values.is_empty() {
        return Ok(own.clone());
    }
    let code = bin
        .funcs
        .iter()
        .find(|f| f.entry == func.entry)
        .with_context(|| format!("{} is not in the pclntab", func.name))?;
    let decoded = bin
        .probe_sites(code)
        .with_context(|| format!("decoding {}", func.name))?;
    let callees: Vec<_> = plan::tail_callees(bin, &decoded)?
        .into_iter()
        .filter(|(_, sites)| !sites.ret_sites.is_empty())
        .map(|(callee, _)| {
            let ret = signature_of(callee.name, callee.entry).map(|call| call.ret);
            (callee.name, ret)
        })
        .collect();
    Ok(results_of(&func.name, own, &callees))
}

/// `func`'s results `own` as read by its tail `callees`' result layouts (None: unknown).
fn results_of(func: &str, own: &SitePlan, callees: &[(&str, Option<SitePlan>)]) -> SitePlan {
    let Some((first, _)) = callees.first() else {
        return own.clone();
    };
    let mut layout: Option<&SitePlan> = None;
    for (callee, callee_layout) in callees {
        let Some(callee_layout) = callee_layout else {
            let reason =
                format!("{func} ends in a tail call to {callee}, whose signature is unknown");
            return unreadable(own, &reason);
        };
        if layout.is_some_and(|l| !same_layout(l, callee_layout)) {
            let reason = format!(
                "{func} ends in tail calls to {first} and {callee}, which return their results in different places"
            );
            return unreadable(own, &reason);
        }
        layout = Some(callee_layout);
    }
    let Some(layout) = layout else {
        return own.clone();
    };
    let types = |site: &SitePlan| -> Vec<String> {
        site.values.iter().map(|v| v.type_name.clone()).collect()
    };
    if types(layout) != types(own) {
        let reason = format!(
            "{func} returns ({}) but ends in a tail call to {first}, which returns ({})",
            types(own).join(", "),
            types(layout).join(", ")
        );
        return unreadable(own, &reason);
    }
    let mut plan = layout.clone();
    for (value, mine) in plan.values.iter_mut().zip(&own.values) {
        value.name.clone_from(&mine.name);
    }
    plan
}

/// Whether two result plans read the same types from the same places (names aside).
fn same_layout(a: &SitePlan, b: &SitePlan) -> bool {
    let places = |site: &SitePlan| -> Vec<(String, Shape)> {
        site.values
            .iter()
            .map(|v| (v.type_name.clone(), v.shape.clone()))
            .collect()
    };
    (a.stack_bytes, &a.derefs, &a.globals) == (b.stack_bytes, &b.derefs, &b.globals)
        && places(a) == places(b)
}

/// `own`'s values, each unreadable for `reason`, reading nothing.
fn unreadable(own: &SitePlan, reason: &str) -> SitePlan {
    SitePlan {
        values: own
            .values
            .iter()
            .map(|v| ValuePlan {
                name: v.name.clone(),
                type_name: v.type_name.clone(),
                shape: Shape::Unreadable {
                    reason: reason.to_owned(),
                },
            })
            .collect(),
        ..SitePlan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::capture::Loc;

    /// A site plan of results `(name, type, register offset)`.
    fn results(values: &[(&str, &str, u32)]) -> SitePlan {
        SitePlan {
            values: values
                .iter()
                .map(|&(name, type_name, offset)| ValuePlan {
                    name: name.to_owned(),
                    type_name: type_name.to_owned(),
                    shape: Shape::Int {
                        loc: Loc { offset, size: 8 },
                        signed: true,
                    },
                })
                .collect(),
            ..SitePlan::default()
        }
    }

    fn reasons(site: &SitePlan) -> Vec<&str> {
        site.values
            .iter()
            .map(|v| match &v.shape {
                Shape::Unreadable { reason } => reason.as_str(),
                _ => "readable",
            })
            .collect()
    }

    #[test]
    fn callee_layout_under_the_callers_names() {
        // A function whose own layout places its result elsewhere: the callee's wins.
        let own = results(&[("~r0", "int64", 0x10)]);
        let callee = results(&[("total", "int64", 0x14)]);
        let plan = results_of("w", &own, &[("c", Some(callee.clone()))]);
        assert_eq!(plan.values[0].name, "~r0");
        assert_eq!(plan.values[0].shape, callee.values[0].shape);
        // Two callees with one layout (names aside) read the same way.
        let renamed = results(&[("sum", "int64", 0x14)]);
        let both = [("c", Some(callee.clone())), ("d", Some(renamed))];
        assert_eq!(results_of("w", &own, &both), plan);
        // No tail callee with a RET: the function's own plan.
        assert_eq!(results_of("w", &own, &[]), own);
    }

    #[test]
    fn unreadable_with_why_when_the_layout_does_not_allow() {
        let own = results(&[("~r0", "int64", 0)]);
        let unknown = results_of("w", &own, &[("c", None)]);
        assert_eq!(
            reasons(&unknown),
            ["w ends in a tail call to c, whose signature is unknown"]
        );
        let other_type = results_of("w", &own, &[("c", Some(results(&[("s", "uint8", 0)])))]);
        assert_eq!(
            reasons(&other_type),
            ["w returns (int64) but ends in a tail call to c, which returns (uint8)"]
        );
        let apart = [
            ("c", Some(results(&[("a", "int64", 0)]))),
            ("d", Some(results(&[("b", "int64", 8)]))),
        ];
        assert_eq!(
            reasons(&results_of("w", &own, &apart)),
            ["w ends in tail calls to c and d, which return their results in different places"]
        );
        assert_eq!(unknown.stack_bytes, 0);
        assert!(unknown.derefs.is_empty());
    }
}
