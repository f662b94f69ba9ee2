//! `args --where 'EXPR OP CONST'`: the condition a call's entry must satisfy to be shown,
//! parsed, then placed in a site plan as the BPF side's `struct args_where` (where.bpf.h
//! decides it on the capture). EXPR is a field path ([`super::path`]) read like `--field`'s.

use crate::bpf_types::{where_kind, where_limits, where_op};
use crate::gobin::format::dwarf::{Param, TypeTable};
use crate::gobin::Arch;

use super::fields::add_field;
use super::path::{self, Expr};
use super::{Filter, Shape, SitePlan};

/// The longest string constant (WHERE_BYTES - 1).
const MAX_STRING: usize = where_limits::WHERE_BYTES.0 as usize - 1;

/// A constant of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    /// An integer (decimal or `0x` hex, perhaps negative).
    Int(i128),
    /// `true` or `false`.
    Bool(bool),
    /// A `"string"` (JSON escapes), as bytes.
    Str(Vec<u8>),
}

/// A parsed `--where`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// As written.
    pub text: String,
    /// The value compared (left of the operator).
    pub expr: Expr,
    /// The operator.
    pub op: where_op,
    /// The constant compared with (right of it).
    pub constant: Constant,
}

/// The operators, longest first (so that `<=` is not read as `<`).
const OPS: [(&str, where_op); 7] = [
    ("==", where_op::WHERE_EQ),
    ("!=", where_op::WHERE_NE),
    ("<=", where_op::WHERE_LE),
    (">=", where_op::WHERE_GE),
    ("^=", where_op::WHERE_PREFIX),
    ("<", where_op::WHERE_LT),
    (">", where_op::WHERE_GT),
];

/// Parses `EXPR OP CONST`: OP one of == != < <= > >= and ^= (string prefix); CONST an integer
/// (decimal, 0x hex, negative), true/false, or a double-quoted string.
pub fn parse(text: &str) -> Result<Condition, String> {
    let bad = |why: String| {
        Err(format!(
            "--where {text:?}: {why} (write EXPR OP CONST, e.g. 'r.Method == \"POST\"', 'len(tags) > 2', 'r.URL.Path ^= \"/api/\"')"
        ))
    };
    // The operator: the first one outside a quoted string.
    let quote = text.find('"').unwrap_or(text.len());
    let found = OPS
        .iter()
        .filter_map(|&(op, code)| Some((text[..quote].find(op)?, op, code)))
        .min_by_key(|&(at, op, _)| (at, std::cmp::Reverse(op.len())));
    let Some((at, op, code)) = found else {
        return bad("no operator".into());
    };
    let expr = match path::parse(&text[..at]) {
        Ok(expr) => expr,
        Err(e) => return bad(e),
    };
    let constant = text[at + op.len()..].trim();
    let constant = if let Some(inner) = constant.strip_prefix('"').and_then(|c| c.strip_suffix('"'))
    {
        let Ok(s) = serde_json::from_str::<String>(&format!("\"{inner}\"")) else {
            return bad(format!("bad string constant {constant}"));
        };
        if s.len() > MAX_STRING {
            return bad(format!("string constants are at most {MAX_STRING} bytes"));
        }
        Constant::Str(s.into_bytes())
    } else if constant == "true" || constant == "false" {
        Constant::Bool(constant == "true")
    } else {
        let (negative, digits) = match constant.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, constant),
        };
        let value = match digits.strip_prefix("0x") {
            Some(hex) => i128::from_str_radix(hex, 16),
            None => digits.parse::<i128>(),
        };
        match value {
            Ok(v) if v <= i128::from(u64::MAX) => Constant::Int(if negative { -v } else { v }),
            _ => {
                return bad(format!(
                    "{constant:?} is not an integer, true, false or a \"string\""
                ))
            }
        }
    };
    if code == where_op::WHERE_PREFIX && !matches!(constant, Constant::Str(_)) {
        return bad("^= compares strings".into());
    }
    Ok(Condition {
        text: text.trim().to_owned(),
        expr,
        op: code,
        constant,
    })
}

/// Places `cond` in `site`, the entry plan of a function with `params` (types in `types`):
/// its value read as a field path that is not shown; an error when the path does not resolve
/// or the constant does not fit the value's type.
pub fn add_where(
    site: &mut SitePlan,
    cond: &Condition,
    params: &[Param],
    types: &TypeTable,
    arch: Arch,
) -> Result<(), String> {
    let bytes = where_limits::WHERE_BYTES.0;
    add_field(site, &cond.expr, params, types, arch, bytes)?;
    let field = site.fields.pop().expect("add_field added one");
    let mismatch = |what: &str| {
        Err(format!(
            "--where {}: {} is a {}, which {what}",
            cond.text, cond.expr.text, field.value.type_name
        ))
    };
    let mut w = Filter {
        op: cond.op,
        kind: where_kind::WHERE_SIGNED,
        off: 0,
        size: 0,
        deref: 0,
        field: field.read.map(|i| i as u32),
        value: 0,
        bytes: Vec::new(),
    };
    match (&field.value.shape, &cond.constant) {
        (Shape::Int { loc, signed }, Constant::Int(v)) => {
            let bits = 8 * loc.size.min(8);
            let (min, max) = match signed {
                true => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
                false => (0, (1i128 << bits) - 1),
            };
            if *v < min || *v > max {
                return mismatch(&format!("cannot hold {v}"));
            }
            w.kind = if *signed {
                where_kind::WHERE_SIGNED
            } else {
                where_kind::WHERE_UNSIGNED
            };
            (w.off, w.size, w.value) = (loc.offset, loc.size, *v as i64);
        }
        (Shape::Bool { loc }, Constant::Bool(b)) => {
            if !matches!(cond.op, where_op::WHERE_EQ | where_op::WHERE_NE) {
                return mismatch("compares with == and != only");
            }
            w.kind = where_kind::WHERE_UNSIGNED;
            (w.off, w.size, w.value) = (loc.offset, 1, i64::from(*b));
        }
        (Shape::String { len, deref }, Constant::Str(s)) => {
            w.kind = where_kind::WHERE_STRING;
            (w.off, w.deref, w.bytes) = (len.offset, *deref as u32, s.clone());
        }
        (Shape::Unreadable { reason }, _) => {
            return mismatch(&format!("is not readable: {reason}"))
        }
        (Shape::Int { .. }, _) => return mismatch("compares with integers"),
        (Shape::Bool { .. }, _) => return mismatch("compares with true and false"),
        (Shape::String { .. }, _) => return mismatch("compares with \"strings\""),
        _ => return mismatch("--where does not compare (integers, booleans and strings it does)"),
    }
    site.filter = Some(w);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_and_constants() {
        let c = parse("r.Method == \"POST\"").unwrap();
        assert_eq!(c.op, where_op::WHERE_EQ);
        assert_eq!(c.constant, Constant::Str(b"POST".to_vec()));
        let c = parse("len(tags)<=2").unwrap();
        assert_eq!((c.op, c.constant), (where_op::WHERE_LE, Constant::Int(2)));
        let c = parse("x > -0x10").unwrap();
        assert_eq!((c.op, c.constant), (where_op::WHERE_GT, Constant::Int(-16)));
        let c = parse("p ^= \"/a<b\"").unwrap();
        assert_eq!(c.op, where_op::WHERE_PREFIX);
        assert_eq!(parse("ok != true").unwrap().constant, Constant::Bool(true));
        for bad in ["x", "x == ", "x == y", "x ^= 3", "== 3", "x == \"unclosed"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
