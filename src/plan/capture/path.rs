//! Field paths (docs/design.md §19): the expressions `--field`, `--where` and `funclat --by`
//! take (`r.URL.Path`, `s.cfg.Timeout`, `len(tags)`, `tags[1]`), parsed, then resolved against
//! a function's parameters and the [`TypeTable`] they come from (DWARF's, or a written
//! signature's) into a chain of byte offsets and pointer dereferences. Where those bytes are at
//! a probe hit is [`super::fields`]' business.

use crate::gobin::format::dwarf::{Field, Param, TypeId, TypeKind, TypeTable};

/// Embedded structs searched for a promoted field, at most this deep.
const MAX_EMBED_DEPTH: usize = 4;
/// Steps (fields and indexes) in one expression at most.
pub const MAX_STEPS: usize = 16;

/// One step after the parameter's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.Name` (through pointers and embedded structs).
    Field(String),
    /// `[N]` of an array or a slice.
    Index(u64),
}

/// A parsed expression: a parameter, then fields and indexes, perhaps inside `len(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// As written (trimmed): the name its values carry.
    pub text: String,
    /// The parameter (or receiver) it starts from.
    pub root: String,
    /// The fields and indexes after it, in order.
    pub steps: Vec<Step>,
    /// `len(...)` of a string or slice.
    pub len: bool,
}

/// Parses each `--field` expression; the error names the first bad one.
pub fn parse_all(texts: &[String]) -> anyhow::Result<Vec<Expr>> {
    texts
        .iter()
        .map(|t| parse(t).map_err(|e| anyhow::anyhow!("--field {e}")))
        .collect()
}

/// Parses `root(.field|[N])*` or `len(...)` of it.
pub fn parse(text: &str) -> Result<Expr, String> {
    let text = text.trim();
    let bad = |why: &str| {
        Err(format!(
            "{text:?}: {why} (write a parameter, then .fields and [N] indexes, e.g. r.URL.Path, len(tags), tags[0])"
        ))
    };
    let (inner, len) = match text.strip_prefix("len(").and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (inner.trim(), true),
        None => (text, false),
    };
    let ident_end = |s: &str| {
        s.char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(s.len(), |(i, _)| i)
    };
    let end = ident_end(inner);
    let root = &inner[..end];
    if root.is_empty() || root.starts_with(|c: char| c.is_ascii_digit()) {
        return bad("it does not start with a parameter's name");
    }
    let mut rest = &inner[end..];
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = ident_end(after);
            if end == 0 {
                return bad("a '.' is not followed by a field name");
            }
            steps.push(Step::Field(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(close) = after.find(']') else {
                return bad("a '[' has no ']'");
            };
            let Ok(index) = after[..close].trim().parse::<u64>() else {
                return bad("an index is not a constant non-negative integer");
            };
            steps.push(Step::Index(index));
            rest = &after[close + 1..];
        } else {
            return bad(&format!(
                "unexpected {:?}",
                rest.chars().next().unwrap_or(' ')
            ));
        }
    }
    if steps.len() > MAX_STEPS {
        return bad(&format!("more than {MAX_STEPS} steps"));
    }
    Ok(Expr {
        text: text.to_owned(),
        root: root.to_owned(),
        steps,
        len,
    })
}

/// One operation of a resolved path, from the start of the parameter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Move this many bytes further into the current value.
    Offset(u64),
    /// The current value is a pointer (or a slice's data word): follow it. `nil_name` is the
    /// expression up to it (named when it is nil); `min_len`: a slice indexed by a constant,
    /// whose length (the next word) must be at least this.
    Deref {
        /// The expression up to the pointer.
        nil_name: String,
        /// The least length of an indexed slice (0: not one).
        min_len: u64,
    },
}

/// An expression resolved against one function's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Index of the parameter it starts from.
    pub param: usize,
    /// The operations from the start of that parameter's value.
    pub ops: Vec<Op>,
    /// The type of the value the path ends at.
    pub ty: TypeId,
}

/// Resolves `expr` against `params` (types in `types`): a one-line error naming what does not
/// exist, with the names that do (the closest first).
pub fn resolve(
    expr: &Expr,
    params: &[Param],
    types: &TypeTable,
    ptr: u64,
) -> Result<Resolved, String> {
    let Some(param) = params.iter().position(|p| p.name == expr.root) else {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        return Err(format!(
            "{}: no parameter {:?}{}",
            expr.text,
            expr.root,
            suggest(&expr.root, &names, "parameters")
        ));
    };
    let mut ty = params[param].ty;
    let mut ops = Vec::new();
    let mut name = expr.root.clone();
    for step in &expr.steps {
        match step {
            Step::Field(field) => {
                ty = deref_pointers(types, ty, &name, &mut ops);
                let Some(chain) = find_field(types, ty, field, 0) else {
                    let t = types.get(ty);
                    let TypeKind::Struct { .. } = t.kind else {
                        return Err(format!(
                            "{}: {name} is a {}, which has no fields",
                            expr.text,
                            describe(types, ty)
                        ));
                    };
                    let names = field_names(types, ty, 0);
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    return Err(format!(
                        "{}: {} has no field {field:?}{}",
                        expr.text,
                        t.name,
                        suggest(field, &names, "fields")
                    ));
                };
                for (i, f) in chain.iter().enumerate() {
                    if i > 0 {
                        deref_pointers(types, ty, &name, &mut ops);
                    }
                    ops.push(Op::Offset(f.offset));
                    ty = f.ty;
                }
                name = format!("{name}.{field}");
            }
            Step::Index(index) => {
                ty = deref_pointers(types, ty, &name, &mut ops);
                let t = types.get(ty);
                match t.kind {
                    TypeKind::Array { elem, len } => {
                        if *index >= len {
                            return Err(format!(
                                "{}: index {index} is out of range for {name} ({}, {len} elements)",
                                expr.text, t.name
                            ));
                        }
                        ops.push(Op::Offset(index.saturating_mul(types.get(elem).size)));
                        ty = elem;
                    }
                    TypeKind::Slice { elem } => {
                        ops.push(Op::Deref {
                            nil_name: name.clone(),
                            min_len: index + 1,
                        });
                        ops.push(Op::Offset(index.saturating_mul(types.get(elem).size)));
                        ty = elem;
                    }
                    _ => {
                        return Err(format!(
                            "{}: {name} is a {}, which cannot be indexed (arrays and slices can)",
                            expr.text,
                            describe(types, ty)
                        ))
                    }
                }
                name = format!("{name}[{index}]");
            }
        }
    }
    if expr.len {
        let t = types.get(ty);
        if !matches!(t.kind, TypeKind::String | TypeKind::Slice { .. }) {
            return Err(format!(
                "{}: len() of {name}, a {}, is not read (strings and slices are)",
                expr.text,
                describe(types, ty)
            ));
        }
        let Some(int) = types.find("int").filter(|&i| types.get(i).size == ptr) else {
            return Err(format!(
                "{}: the binary's types have no int to give len() its type",
                expr.text
            ));
        };
        ops.push(Op::Offset(ptr));
        ty = int;
    }
    Ok(Resolved { param, ops, ty })
}

/// Follows `ty` through pointers to what they point at (a `*T` has T's fields), recording
/// each dereference; the type reached.
fn deref_pointers(types: &TypeTable, mut ty: TypeId, name: &str, ops: &mut Vec<Op>) -> TypeId {
    for _ in 0..MAX_EMBED_DEPTH {
        match types.get(ty).kind {
            TypeKind::Pointer { elem: Some(elem) } => {
                ops.push(Op::Deref {
                    nil_name: name.to_owned(),
                    min_len: 0,
                });
                ty = elem;
            }
            _ => break,
        }
    }
    ty
}

/// The struct type `ty` is, or points at (for an embedded `*T`).
fn struct_of(types: &TypeTable, ty: TypeId) -> TypeId {
    match types.get(ty).kind {
        TypeKind::Pointer { elem: Some(elem) } => elem,
        _ => ty,
    }
}

/// The fields leading to `name` in struct `ty`: the field itself, or embedded structs down to
/// a promoted one (shallowest first, as Go's selector rules).
fn find_field(types: &TypeTable, ty: TypeId, name: &str, depth: usize) -> Option<Vec<Field>> {
    let TypeKind::Struct { fields } = &types.get(ty).kind else {
        return None;
    };
    if let Some(f) = fields.iter().find(|f| f.name == name) {
        return Some(vec![f.clone()]);
    }
    if depth >= MAX_EMBED_DEPTH {
        return None;
    }
    fields.iter().filter(|f| f.embedded).find_map(|f| {
        let mut chain = find_field(types, struct_of(types, f.ty), name, depth + 1)?;
        chain.insert(0, f.clone());
        Some(chain)
    })
}

/// The names `x.NAME` may take on struct `ty`: its fields, then promoted ones.
fn field_names(types: &TypeTable, ty: TypeId, depth: usize) -> Vec<String> {
    let TypeKind::Struct { fields } = &types.get(ty).kind else {
        return Vec::new();
    };
    let mut names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    if depth < MAX_EMBED_DEPTH {
        for f in fields.iter().filter(|f| f.embedded) {
            names.extend(field_names(types, struct_of(types, f.ty), depth + 1));
        }
    }
    names
}

/// How a type is named in an error: its name and, when that hides it, its kind.
fn describe(types: &TypeTable, ty: TypeId) -> String {
    let t = types.get(ty);
    let kind = match t.kind {
        TypeKind::Struct { .. } => "struct",
        TypeKind::Pointer { .. } | TypeKind::UnsafePointer => "pointer",
        TypeKind::Interface { .. } => "interface",
        TypeKind::Map => "map",
        TypeKind::Slice { .. } => "slice",
        TypeKind::Array { .. } => "array",
        _ => return t.name.clone(),
    };
    if t.name.is_empty() {
        kind.to_owned()
    } else {
        format!("{} ({kind})", t.name)
    }
}

/// "; did you mean X? (the KIND: a, b, c)" for the names closest to `wanted`.
fn suggest(wanted: &str, names: &[&str], kind: &str) -> String {
    if names.is_empty() {
        return format!(" (it has no {kind})");
    }
    let lower = wanted.to_lowercase();
    let best = names.iter().copied().max_by(|a, b| {
        let score = |n: &str| strsim::jaro_winkler(&lower, &n.to_lowercase());
        score(a).total_cmp(&score(b))
    });
    let mut listed: Vec<&str> = names.iter().copied().take(12).collect();
    if names.len() > listed.len() {
        listed.push("...");
    }
    match best.filter(|b| strsim::jaro_winkler(&lower, &b.to_lowercase()) > 0.7) {
        Some(best) => format!("; did you mean {best}? ({kind}: {})", listed.join(", ")),
        None => format!(" ({kind}: {})", listed.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gobin::format::dwarf::GoType;

    #[test]
    fn parses_fields_indexes_and_len() {
        let e = parse(" len(r.URL.Path) ").unwrap();
        assert_eq!(e.root, "r");
        assert!(e.len);
        assert_eq!(
            e.steps,
            [Step::Field("URL".into()), Step::Field("Path".into())]
        );
        let e = parse("tags[2].Name").unwrap();
        assert_eq!(e.steps, [Step::Index(2), Step::Field("Name".into())]);
        for bad in ["", "1x", "r.", "r[", "r[-1]", "r[i]", "r->x", "r.URL Path"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    fn types() -> TypeTable {
        let field = |name: &str, offset: u64, ty: usize| Field {
            name: name.into(),
            offset,
            ty: TypeId(ty),
            embedded: name == "stats",
        };
        let t = |name: &str, size: u64, kind: TypeKind| GoType {
            name: name.into(),
            size,
            kind,
        };
        TypeTable::from_types(vec![
            /* 0 */ t("int", 8, TypeKind::Int { signed: true }),
            /* 1 */ t("string", 16, TypeKind::String),
            /* 2 */
            t(
                "url.URL",
                40,
                TypeKind::Struct {
                    fields: vec![field("Scheme", 0, 1), field("Path", 24, 1)],
                },
            ),
            /* 3 */
            t(
                "*url.URL",
                8,
                TypeKind::Pointer {
                    elem: Some(TypeId(2)),
                },
            ),
            /* 4 */
            t(
                "main.stats",
                16,
                TypeKind::Struct {
                    fields: vec![field("Hits", 0, 0), field("Errors", 8, 0)],
                },
            ),
            /* 5 */
            t(
                "main.req",
                48,
                TypeKind::Struct {
                    fields: vec![
                        field("Method", 0, 1),
                        field("URL", 16, 3),
                        field("stats", 24, 4),
                        field("Tags", 40, 7),
                    ],
                },
            ),
            /* 6 */
            t(
                "*main.req",
                8,
                TypeKind::Pointer {
                    elem: Some(TypeId(5)),
                },
            ),
            /* 7 */ t("[]string", 24, TypeKind::Slice { elem: TypeId(1) }),
        ])
    }

    fn params() -> Vec<Param> {
        vec![Param {
            name: "r".into(),
            ty: TypeId(6),
        }]
    }

    fn deref(name: &str) -> Op {
        Op::Deref {
            nil_name: name.into(),
            min_len: 0,
        }
    }

    #[test]
    fn resolves_through_pointers_and_embedded_structs() {
        let types = types();
        let r = resolve(&parse("r.URL.Path").unwrap(), &params(), &types, 8).unwrap();
        assert_eq!(
            r.ops,
            [deref("r"), Op::Offset(16), deref("r.URL"), Op::Offset(24)]
        );
        assert_eq!(r.ty, TypeId(1));
        let r = resolve(&parse("r.Errors").unwrap(), &params(), &types, 8).unwrap();
        assert_eq!(r.ops, [deref("r"), Op::Offset(24), Op::Offset(8)]);
        let r = resolve(&parse("len(r.Tags)").unwrap(), &params(), &types, 8).unwrap();
        assert_eq!(r.ops, [deref("r"), Op::Offset(40), Op::Offset(8)]);
        assert_eq!(r.ty, TypeId(0));
        let r = resolve(&parse("r.Tags[2]").unwrap(), &params(), &types, 8).unwrap();
        assert_eq!(
            r.ops,
            [
                deref("r"),
                Op::Offset(40),
                Op::Deref {
                    nil_name: "r.Tags".into(),
                    min_len: 3
                },
                Op::Offset(32)
            ]
        );
    }

    /// `URL *url.URL` is named as its type is, but only the embedded `stats` promotes its
    /// fields: `r.Path` is no name of main.req, as in Go.
    #[test]
    fn unknown_names_are_errors_with_suggestions() {
        let types = types();
        let err = |text: &str| resolve(&parse(text).unwrap(), &params(), &types, 8).unwrap_err();
        assert_eq!(
            err("r.Url.Path"),
            "r.Url.Path: main.req has no field \"Url\"; did you mean URL? (fields: Method, URL, stats, Tags, Hits, Errors)"
        );
        assert!(err("req.Method").contains("no parameter \"req\"; did you mean r?"));
        assert!(err("r.Path").contains("main.req has no field \"Path\""));
        assert!(err("r.Method.X").contains("r.Method is a string, which has no fields"));
        assert!(err("len(r.URL)").contains("is not read"));
        assert!(err("r.Method[0]").contains("cannot be indexed"));
    }
}
