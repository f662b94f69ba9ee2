//! Deeper default values (docs/design.md §19, issue 25): a pointer argument to a struct is
//! shown as the struct, as Delve and `%+v` do, instead of a bare address. A struct of scalars
//! that fits `--strsize` is one extra read ([`super::shape`]); any other struct is copied by a
//! field read ([`super::FieldRead`] without steps) into what `--global` and `--field` leave of
//! the globals area, at most [`STRUCT_BYTES`] of it: the fields wholly inside those bytes are
//! decoded like any argument (their strings are extra reads), the ones past them are cut and
//! the value says so. The struct pointers among its fields are followed the same way, down to
//! [`LEVELS`] structs from the argument, after the struct's own strings have their reads.

use crate::gobin::format::dwarf::{Param, TypeId, TypeKind, TypeTable};
use crate::gobin::Arch;

use super::assign::{Assigner, Place};
use super::fields::area_used;
use super::shape::{Pointee, PointeeSource, Shape};
use super::{FieldRead, Loc, SitePlan, GLOBALS_AREA, MAX_FIELDS};

/// Bytes of one struct read at most.
pub const STRUCT_BYTES: u64 = 128;
/// Structs followed from an argument at most (the argument's, then those it points at).
pub const LEVELS: usize = 2;

/// Follows the struct pointers among the entry values of `params` (`site`'s values, in
/// order) whose struct no extra read holds, within the room the globals area and the field
/// reads have left.
pub fn deepen(site: &mut SitePlan, params: &[Param], types: &TypeTable, arch: Arch, strsize: u32) {
    let assigner = Assigner::outside_the_abi(types, arch, strsize);
    let mut values = std::mem::take(&mut site.values);
    for (value, param) in values.iter_mut().zip(params) {
        follow_pointer(&assigner, &mut value.shape, param.ty, &param.name, 1, site);
    }
    site.values = values;
}

/// When `shape` is a pointer of type `ty` to a struct with no pointee yet, gives it the
/// struct's fields read into the globals area (`level`: structs followed so far, this one
/// included).
fn follow_pointer(
    assigner: &Assigner<'_>,
    shape: &mut Shape,
    ty: TypeId,
    name: &str,
    level: usize,
    site: &mut SitePlan,
) {
    let types = assigner.types;
    let (
        Shape::Pointer {
            loc,
            pointee: pointee @ None,
        },
        TypeKind::Pointer { elem: Some(elem) },
    ) = (shape, &types.get(ty).kind)
    else {
        return;
    };
    *pointee = read_struct(assigner, *loc, *elem, name, level, site);
}

/// The struct of type `ty` that the pointer at `ptr` (called `name`) points at, as far as
/// [`STRUCT_BYTES`], the globals area's room and the field reads left allow; None when not
/// a struct or no field fits.
fn read_struct(
    assigner: &Assigner<'_>,
    ptr: Loc,
    ty: TypeId,
    name: &str,
    level: usize,
    site: &mut SitePlan,
) -> Option<Pointee> {
    let types = assigner.types;
    let TypeKind::Struct { fields } = &types.get(ty).kind else {
        return None;
    };
    let area_offset = area_used(site);
    let room = u64::from(GLOBALS_AREA).saturating_sub(area_offset);
    let budget = types.get(ty).size.min(STRUCT_BYTES).min(room);
    let end = |f: &crate::gobin::format::dwarf::Field| f.offset + types.get(f.ty).size;
    let read: Vec<_> = fields.iter().filter(|f| end(f) <= budget).collect();
    let size = read.iter().map(|f| end(f)).max().unwrap_or(0);
    if size == 0 || site.field_reads.len() >= MAX_FIELDS {
        return None;
    }
    site.field_reads.push(FieldRead {
        base: ptr,
        base_len: None,
        steps: Vec::new(),
        offset: 0,
        size: size as u32,
        area_offset: area_offset as u32,
        names: vec![name.to_owned()],
    });
    let index = site.field_reads.len() - 1;
    let mut shapes: Vec<(String, Shape)> = read
        .iter()
        .map(|f| {
            let mut place = Place::Global(area_offset + f.offset);
            (f.name.clone(), assigner.shape(f.ty, &mut place, site, 1))
        })
        .collect();
    // The struct's own strings first, then the structs it points at.
    if level < LEVELS {
        for ((field, shape), f) in shapes.iter_mut().zip(&read) {
            let inner = format!("{name}.{field}");
            follow_pointer(assigner, shape, f.ty, &inner, level + 1, site);
        }
    }
    Some(Pointee {
        shape: Box::new(Shape::Struct { fields: shapes }),
        source: PointeeSource::Area {
            read: index,
            cut: read.len() < fields.len(),
        },
    })
}
