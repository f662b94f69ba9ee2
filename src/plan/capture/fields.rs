//! Field paths at a probe site (docs/design.md §19): a resolved path ([`super::path`]) becomes
//! either a span of the captured frame (a field of a value passed in registers or on the stack)
//! or a [`FieldRead`] the BPF side performs: the first pointer on the way is a word of the
//! frame, each further one a read at a fixed offset, and the value's bytes land in the globals
//! area, where the value is then decoded like any argument (strings in it read like a
//! global's).

use crate::gobin::format::dwarf::{Param, TypeId, TypeKind, TypeTable};
use crate::gobin::Arch;

use super::assign::{align_up, Assigner, Place, RegCursor};
use super::path::{self, Op};
use super::shape::{Shape, ValuePlan, MAX_DEPTH};
use super::{
    FieldRead, FieldStep, FieldValue, Origin, SitePlan, GLOBALS_AREA, MAX_FIELDS, MAX_FIELD_STEPS,
};

/// Adds the value of `expr` (parsed) to `site`, an entry plan of the calling convention for
/// `params` (types in `types`); an error names what `expr` does not find, or what does not fit.
pub fn add_field(
    site: &mut SitePlan,
    expr: &path::Expr,
    params: &[Param],
    types: &TypeTable,
    arch: Arch,
    strsize: u32,
) -> Result<(), String> {
    if site.fields.len() >= MAX_FIELDS {
        return Err(format!(
            "{}: at most {MAX_FIELDS} field paths per call",
            expr.text
        ));
    }
    let assigner = Assigner::outside_the_abi(types, arch, strsize);
    let resolved = path::resolve(expr, params, types, assigner.ptr)?;
    let type_name = types.name(resolved.ty).to_owned();
    let value = |shape| ValuePlan {
        name: expr.text.clone(),
        type_name: type_name.clone(),
        shape,
    };
    let origin = site.origins.get(resolved.param).copied();
    let param_ty = params[resolved.param].ty;
    // The offset into the parameter's own value before the first dereference.
    let first_deref = resolved
        .ops
        .iter()
        .position(|op| matches!(op, Op::Deref { .. }));
    let in_value: u64 = resolved.ops[..first_deref.unwrap_or(resolved.ops.len())]
        .iter()
        .map(|op| match op {
            Op::Offset(n) => *n,
            Op::Deref { .. } => 0,
        })
        .sum();
    let place_at = |offset: u64| -> Option<Place> {
        match origin? {
            Origin::Memory(start) => Some(Place::Memory(start.checked_add(offset)?)),
            Origin::Registers { ints, floats } => {
                let (i, f) = pieces_before(types, param_ty, offset, assigner.ptr)?;
                Some(Place::Registers(RegCursor {
                    ints: ints + i,
                    floats: floats + f,
                }))
            }
            Origin::Unplaced => None,
        }
    };
    let unplaced = || Shape::Unreadable {
        reason: format!(
            "{} is not where gotrace can read it (after a value of unknown layout)",
            params[resolved.param].name
        ),
    };
    let Some(first_deref) = first_deref else {
        // The whole path lies inside the parameter's value.
        let shape = match place_at(in_value) {
            Some(mut place) => assigner.shape(resolved.ty, &mut place, site, 0),
            None => unplaced(),
        };
        site.fields.push(FieldValue {
            value: value(shape),
            read: None,
        });
        return Ok(());
    };
    let Op::Deref {
        nil_name,
        min_len: base_min_len,
    } = &resolved.ops[first_deref]
    else {
        unreachable!("first_deref is a Deref")
    };
    let ptr = assigner.ptr;
    let base = place_at(in_value).and_then(|mut p| assigner.piece(&mut p, false, 0, ptr));
    let base_len = match *base_min_len {
        0 => Some(None),
        min => place_at(in_value + ptr)
            .and_then(|mut p| assigner.piece(&mut p, false, 0, ptr))
            .map(|loc| Some((loc, min))),
    };
    let (Some(base), Some(base_len)) = (base, base_len) else {
        site.fields.push(FieldValue {
            value: value(unplaced()),
            read: None,
        });
        return Ok(());
    };
    let mut names = vec![nil_name.clone()];
    let mut steps = Vec::new();
    let mut offset = 0u64;
    for op in &resolved.ops[first_deref + 1..] {
        match op {
            Op::Offset(n) => offset = offset.saturating_add(*n),
            Op::Deref { nil_name, min_len } => {
                steps.push(FieldStep {
                    offset,
                    min_len: *min_len,
                });
                names.push(nil_name.clone());
                offset = 0;
            }
        }
    }
    if steps.len() > MAX_FIELD_STEPS {
        return Err(format!(
            "{}: follows {} pointers, gotrace follows at most {}",
            expr.text,
            steps.len() + 1,
            MAX_FIELD_STEPS + 1
        ));
    }
    let too_far = steps
        .iter()
        .map(|s| s.offset.max(s.min_len))
        .chain([offset]);
    if too_far.max().unwrap_or(0) > u64::from(u32::MAX)
        || base_len.is_some_and(|(_, min)| min > u64::from(u32::MAX))
    {
        return Err(format!("{}: an offset or index beyond 4 GiB", expr.text));
    }
    let size = types.get(resolved.ty).size;
    let area_offset = area_used(site);
    if size == 0 || area_offset + size > u64::from(GLOBALS_AREA) {
        return Err(format!(
            "{}: its {type_name} takes {size} bytes, and --global and --field values take at most {GLOBALS_AREA} bytes in all",
            expr.text
        ));
    }
    let shape = assigner.shape(resolved.ty, &mut Place::Global(area_offset), site, 0);
    site.field_reads.push(FieldRead {
        base,
        base_len,
        steps,
        offset,
        size: size as u32,
        area_offset: area_offset as u32,
        names,
    });
    site.fields.push(FieldValue {
        value: value(shape),
        read: Some(site.field_reads.len() - 1),
    });
    Ok(())
}

/// The first byte of the globals area no global or field read uses yet, 8-aligned.
pub(super) fn area_used(site: &SitePlan) -> u64 {
    let globals = site
        .globals
        .iter()
        .map(|g| u64::from(g.area_offset) + u64::from(g.size));
    let fields = site
        .field_reads
        .iter()
        .map(|f| u64::from(f.area_offset) + u64::from(f.size));
    align_up(globals.chain(fields).max().unwrap_or(0), 8)
}

/// The integer and floating-point register pieces of a value of type `ty` that lie before
/// byte `offset` (the register ABI flattens a value in field order); None when `offset` is
/// not where a piece starts.
fn pieces_before(types: &TypeTable, ty: TypeId, offset: u64, ptr: u64) -> Option<(usize, usize)> {
    let mut pieces = Vec::new();
    flatten(types, ty, 0, ptr, &mut pieces, 0);
    if offset > 0 && !pieces.iter().any(|&(at, _)| at == offset) {
        return None;
    }
    let before = pieces.iter().filter(|&&(at, _)| at < offset);
    Some(before.fold(
        (0, 0),
        |(i, f), &(_, float)| {
            if float {
                (i, f + 1)
            } else {
                (i + 1, f)
            }
        },
    ))
}

/// The register pieces of a value of type `ty` at byte `base`: (offset, is a float).
fn flatten(
    types: &TypeTable,
    ty: TypeId,
    base: u64,
    ptr: u64,
    out: &mut Vec<(u64, bool)>,
    depth: usize,
) {
    let t = types.get(ty);
    let words = |n: u64, out: &mut Vec<(u64, bool)>| {
        out.extend((0..n).map(|i| (base + i * ptr, false)));
    };
    match &t.kind {
        TypeKind::Float => out.push((base, true)),
        TypeKind::Complex => out.extend([(base, true), (base + t.size / 2, true)]),
        TypeKind::String | TypeKind::Interface { .. } => words(2, out),
        TypeKind::Slice { .. } => words(3, out),
        TypeKind::Struct { fields } if depth < MAX_DEPTH => {
            for f in fields {
                flatten(types, f.ty, base + f.offset, ptr, out, depth + 1);
            }
        }
        TypeKind::Array { elem, len: 1 } if depth < MAX_DEPTH => {
            flatten(types, *elem, base, ptr, out, depth + 1)
        }
        TypeKind::Array { .. } | TypeKind::Struct { .. } | TypeKind::Unknown => {}
        _ => out.push((base, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::capture::{call_plan, Abi, DerefKind, Loc, REGS_AREA, STACK_WINDOW};
    use crate::plan::signature;

    fn entry(sig: &str) -> (SitePlan, signature::UserSignature) {
        let user = signature::parse(sig, 8, Err("no standard library")).unwrap();
        let plan = call_plan(&user.sig, &user.types, Arch::Amd64, Abi::Register, 64);
        (plan.entry, user)
    }

    fn add(site: &mut SitePlan, user: &signature::UserSignature, text: &str) -> Result<(), String> {
        let expr = path::parse(text).unwrap();
        add_field(site, &expr, &user.sig.params, &user.types, Arch::Amd64, 64)
    }

    #[test]
    fn a_field_in_registers_is_read_from_them() {
        let (mut site, user) = entry("main.f(n int, s string, b []byte)");
        add(&mut site, &user, "len(s)").unwrap();
        add(&mut site, &user, "len(b)").unwrap();
        let shapes: Vec<&Shape> = site.fields.iter().map(|f| &f.value.shape).collect();
        // n in RAX, s in RBX RCX, b in RDI RSI R8: the lengths are RCX and RSI.
        assert_eq!(
            shapes,
            [
                &Shape::Int {
                    loc: Loc {
                        offset: 16,
                        size: 8
                    },
                    signed: true
                },
                &Shape::Int {
                    loc: Loc {
                        offset: 32,
                        size: 8
                    },
                    signed: true
                }
            ]
        );
        assert!(site.field_reads.is_empty());
    }

    #[test]
    fn a_slice_element_is_a_chased_read_checked_against_its_length() {
        let (mut site, user) = entry("main.f(n int, b []int, p *int)");
        add(&mut site, &user, "b[2]").unwrap();
        let read = &site.field_reads[0];
        assert_eq!(read.base, Loc { offset: 8, size: 8 });
        assert_eq!(
            read.base_len,
            Some((
                Loc {
                    offset: 16,
                    size: 8
                },
                3
            ))
        );
        assert_eq!((read.offset, read.size, read.area_offset), (16, 8, 0));
        assert_eq!(read.names, ["b"]);
        assert_eq!(
            site.fields[0].value.shape,
            Shape::Int {
                loc: Loc {
                    offset: REGS_AREA + STACK_WINDOW,
                    size: 8
                },
                signed: true
            }
        );
        let err = add(&mut site, &user, "p.X").unwrap_err();
        assert!(
            err.contains("p is a *int (pointer), which has no fields"),
            "{err}"
        );
    }

    #[test]
    fn a_chased_string_is_read_from_the_globals_area() {
        let (mut site, user) = entry("main.f(n int, p *string)");
        // `p` itself is a pointer in RBX: read in place.
        add(&mut site, &user, "p").unwrap();
        assert!(site.field_reads.is_empty());
        let (mut site, user) = entry("main.f(ps []string)");
        add(&mut site, &user, "ps[1]").unwrap();
        let area = REGS_AREA + STACK_WINDOW;
        assert_eq!(
            site.derefs.last().unwrap().kind,
            DerefKind::Counted {
                ptr: Loc {
                    offset: area,
                    size: 8
                },
                len: Loc {
                    offset: area + 8,
                    size: 8
                },
                scale: 1
            }
        );
    }
}
