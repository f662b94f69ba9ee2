//! Go calling conventions: where each argument and result of a function lives at its entry
//! probe and at its RET probes, computed from DWARF types (docs/design.md §6).
//!
//! Register ABI (amd64, Go >= 1.17) follows `src/cmd/compile/abi-internal.md`: each value is
//! flattened into integer and floating-point pieces; if all its pieces fit in the remaining
//! registers (integer RAX RBX RCX RDI RSI R8 R9 R10 R11, floating X0-X14) it takes them in
//! order, otherwise it goes whole to the stack-argument area, aligned to its type. Results are
//! assigned the same way from the first register again, their stack part starting after the
//! pointer-aligned arguments. Stack ABI (ABI0: Go < 1.17 and 386): every value on the stack.
//! Values outside the calling convention (globals, an inlined call's DWARF-located arguments)
//! are placed where they are. How each value is then decoded is [`super::shape`].

use crate::gobin::format::dwarf::{FuncSig, Param, TypeId, TypeKind, TypeTable};
use crate::gobin::Arch;

use super::shape::{Shape, ValuePlan, MAX_DEPTH};
use super::{
    CallPlan, GlobalRead, Loc, Origin, SitePlan, GLOBALS_AREA, MAX_GLOBALS, MAX_READ, REGS_AREA,
    STACK_WINDOW,
};

/// Integer argument registers of the amd64 register ABI, in assignment order.
pub const AMD64_INT_REGS: [&str; 9] = ["RAX", "RBX", "RCX", "RDI", "RSI", "R8", "R9", "R10", "R11"];
/// Floating-point argument registers of the amd64 register ABI (X0-X14).
const AMD64_FLOAT_REGS: usize = 15;

/// Which calling convention a function uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// ABIInternal with integer arguments in registers (amd64, Go >= 1.17).
    Register,
    /// ABI0: every argument and result on the stack.
    Stack,
}

/// Adds the globals `(name, address, type)` to a site plan: their bytes are copied into the
/// globals area, and strings or slices they hold are read like arguments'.
pub fn add_globals(
    site: &mut SitePlan,
    globals: &[(String, u64, TypeId)],
    types: &TypeTable,
    arch: Arch,
    strsize: u32,
) -> Result<(), String> {
    if globals.len() > MAX_GLOBALS {
        return Err(format!("at most {MAX_GLOBALS} --global"));
    }
    let assigner = Assigner::outside_the_abi(types, arch, strsize);
    let mut used = 0u64;
    for (name, vaddr, ty) in globals {
        let size = types.get(*ty).size;
        let start = align_up(used, 8);
        if start.saturating_add(size) > u64::from(GLOBALS_AREA) {
            return Err(format!(
                "{name} does not fit: --global values take at most {GLOBALS_AREA} bytes in all"
            ));
        }
        used = start + size;
        let mut place = Place::Global(start);
        let shape = assigner.shape(*ty, &mut place, site, 0);
        site.globals.push(GlobalRead {
            vaddr: *vaddr,
            size: size as u32,
            area_offset: start as u32,
        });
        site.global_values.push(ValuePlan {
            name: name.clone(),
            type_name: types.name(*ty).to_owned(),
            shape,
        });
    }
    Ok(())
}

/// Computes where `sig`'s arguments and results live under `abi`.
pub fn call_plan(sig: &FuncSig, types: &TypeTable, arch: Arch, abi: Abi, strsize: u32) -> CallPlan {
    let mut assigner = Assigner {
        types,
        ptr: arch.ptr_size(),
        abi,
        strsize: strsize.min(MAX_READ),
        stack_offset: 0,
        unknown_layout: None,
    };
    let entry = assigner.assign_all(&sig.params);
    assigner.stack_offset = align_up(assigner.stack_offset, assigner.ptr);
    let ret = assigner.assign_all(&sig.results);
    CallPlan { entry, ret }
}

/// Where DWARF puts one value of an inlined call where the call starts, in the captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// Whole, in memory at this offset from SP.
    Stack(u64),
    /// In these spans (registers or stack), one per part of the value as the register ABI
    /// flattens it, in that order.
    Pieces(Vec<Loc>),
    /// Not readable, with why.
    Unreadable(String),
}

/// One argument of an inlined call and where it is.
#[derive(Debug, Clone)]
pub struct LocatedValue {
    /// The parameter's name in the source.
    pub name: String,
    /// Its type.
    pub ty: TypeId,
    /// Where its value is at the probed instruction, or why it cannot be read.
    pub source: ValueSource,
}

/// The plan that reads `values` from where DWARF puts them (an inlined call's start).
pub fn located_plan(
    values: &[LocatedValue],
    types: &TypeTable,
    arch: Arch,
    strsize: u32,
) -> SitePlan {
    let assigner = Assigner::outside_the_abi(types, arch, strsize);
    let mut site = SitePlan::default();
    let mut stack_end = 0u64;
    for value in values {
        let size = types.get(value.ty).size;
        let parts = assigner.reg_pieces(value.ty, 0).map(|(i, f)| i + f);
        let shape = match &value.source {
            ValueSource::Unreadable(reason) => Shape::Unreadable {
                reason: reason.clone(),
            },
            ValueSource::Pieces(pieces) if Some(pieces.len()) != parts => Shape::Unreadable {
                reason: format!(
                    "DWARF splits it into {} pieces, where its type has {}",
                    pieces.len(),
                    parts.map_or("no register layout".to_owned(), |n| n.to_string())
                ),
            },
            ValueSource::Pieces(pieces) => {
                for loc in pieces.iter().filter(|l| l.offset >= REGS_AREA) {
                    stack_end = stack_end.max(u64::from(loc.offset - REGS_AREA + loc.size));
                }
                let mut place = Place::Pieces(pieces.as_slice().into(), 0);
                assigner.shape(value.ty, &mut place, &mut site, 0)
            }
            ValueSource::Stack(offset) => {
                stack_end = stack_end.max(offset.saturating_add(size));
                assigner.shape(value.ty, &mut Place::Frame(*offset), &mut site, 0)
            }
        };
        site.values.push(ValuePlan {
            name: value.name.clone(),
            type_name: types.name(value.ty).to_owned(),
            shape,
        });
    }
    site.stack_bytes = u32::try_from(stack_end)
        .unwrap_or(STACK_WINDOW)
        .min(STACK_WINDOW);
    site
}
/// State of one function's assignment.
pub(super) struct Assigner<'a> {
    /// The types the values refer to.
    pub(super) types: &'a TypeTable,
    /// Pointer size of the target in bytes.
    pub(super) ptr: u64,
    /// Register or stack calling convention.
    pub(super) abi: Abi,
    /// Bytes of a string (or `[]byte`) read at most (`--strsize`, clamped).
    pub(super) strsize: u32,
    /// Next free byte of the stack-argument area.
    stack_offset: u64,
    /// The first value whose type DWARF does not describe: every value after it is placed
    /// by its size, which is unknown, so they are unreadable.
    unknown_layout: Option<String>,
}

/// Registers still free while assigning one list (arguments or results).
#[derive(Clone, Copy, Default)]
pub(super) struct RegCursor {
    /// Integer registers taken so far.
    pub(super) ints: usize,
    /// Floating-point registers taken so far.
    pub(super) floats: usize,
}

/// Where the pieces of a value being shaped come from.
pub(super) enum Place {
    Registers(RegCursor),
    /// Byte offset in the stack-argument area.
    Memory(u64),
    /// Byte offset from SP in the captured stack window (a value DWARF puts in memory).
    Frame(u64),
    /// The spans of the frame DWARF puts the value's parts in, in order, and the next one.
    Pieces(std::rc::Rc<[Loc]>, usize),
    /// Byte offset in the bytes of an extra read (a slice element or a pointed-at struct).
    Element(u64),
    /// Byte offset in the globals area.
    Global(u64),
}

impl<'a> Assigner<'a> {
    /// An assigner for values that are not arguments in the calling convention (globals, an
    /// inlined call's DWARF-located arguments): no registers, no stack-argument area.
    pub(super) fn outside_the_abi(types: &'a TypeTable, arch: Arch, strsize: u32) -> Self {
        Assigner {
            types,
            ptr: arch.ptr_size(),
            abi: Abi::Stack,
            strsize: strsize.min(MAX_READ),
            stack_offset: 0,
            unknown_layout: None,
        }
    }

    fn assign_all(&mut self, params: &[Param]) -> SitePlan {
        let mut site = SitePlan::default();
        let mut regs = RegCursor::default();
        for param in params {
            let ty = param.ty;
            if let Some(unknown) = &self.unknown_layout {
                site.values.push(ValuePlan {
                    name: param.name.clone(),
                    type_name: self.types.name(ty).to_owned(),
                    shape: Shape::Unreadable {
                        reason: format!(
                            "placed after a value of type {unknown}, whose layout DWARF does not give"
                        ),
                    },
                });
                site.origins.push(Origin::Unplaced);
                continue;
            }
            if self.types.get(ty).kind == TypeKind::Unknown {
                self.unknown_layout = Some(self.types.name(ty).to_owned());
            }
            let fits = match self.abi {
                Abi::Register => self.reg_pieces(ty, 0).filter(|(ints, floats)| {
                    regs.ints + ints <= AMD64_INT_REGS.len()
                        && regs.floats + floats <= AMD64_FLOAT_REGS
                }),
                Abi::Stack => None,
            };
            let mut place = if fits.is_some() {
                Place::Registers(regs)
            } else {
                let align = self.align_of(ty, 0);
                let start = align_up(self.stack_offset, align);
                self.stack_offset = start.saturating_add(self.types.get(ty).size);
                Place::Memory(start)
            };
            site.origins.push(match place {
                Place::Registers(cursor) => Origin::Registers {
                    ints: cursor.ints,
                    floats: cursor.floats,
                },
                Place::Memory(start) => Origin::Memory(start),
                _ => Origin::Unplaced,
            });
            let shape = self.shape(ty, &mut place, &mut site, 0);
            if let Place::Registers(after) = place {
                regs = after;
            }
            site.values.push(ValuePlan {
                name: param.name.clone(),
                type_name: self.types.name(ty).to_owned(),
                shape,
            });
        }
        site.stack_bytes = u32::try_from(self.ptr + self.stack_offset)
            .unwrap_or(STACK_WINDOW)
            .min(STACK_WINDOW);
        site
    }

    /// Integer and floating-point register pieces of a value of type `ty`; None when it can
    /// never be register-assigned (arrays of more than one element, unknown types).
    pub(super) fn reg_pieces(&self, ty: TypeId, depth: usize) -> Option<(usize, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let t = self.types.get(ty);
        Some(match &t.kind {
            TypeKind::Bool
            | TypeKind::Int { .. }
            | TypeKind::Uintptr
            | TypeKind::Pointer { .. }
            | TypeKind::UnsafePointer
            | TypeKind::Map
            | TypeKind::Chan
            | TypeKind::Func => (1, 0),
            TypeKind::Float => (0, 1),
            TypeKind::Complex => (0, 2),
            TypeKind::String | TypeKind::Interface { .. } => (2, 0),
            TypeKind::Slice { .. } => (3, 0),
            TypeKind::Struct { fields } => {
                let mut total = (0, 0);
                for field in fields {
                    let (i, f) = self.reg_pieces(field.ty, depth + 1)?;
                    total = (total.0 + i, total.1 + f);
                }
                total
            }
            TypeKind::Array { len: 0, .. } => (0, 0),
            TypeKind::Array { elem, len: 1 } => self.reg_pieces(*elem, depth + 1)?,
            TypeKind::Array { .. } | TypeKind::Unknown => return None,
        })
    }

    /// Alignment of `ty` in memory (Go's rules: 8-byte scalars are 4-aligned on 386).
    fn align_of(&self, ty: TypeId, depth: usize) -> u64 {
        let t = self.types.get(ty);
        let scalar = |size: u64| size.clamp(1, self.ptr);
        match &t.kind {
            TypeKind::Bool | TypeKind::Int { .. } | TypeKind::Float => scalar(t.size),
            TypeKind::Complex => scalar(t.size / 2),
            TypeKind::Struct { fields } if depth <= MAX_DEPTH => fields
                .iter()
                .map(|f| self.align_of(f.ty, depth + 1))
                .max()
                .unwrap_or(1),
            TypeKind::Array { elem, .. } if depth <= MAX_DEPTH => self.align_of(*elem, depth + 1),
            _ => self.ptr,
        }
    }

    /// The next piece of `size` bytes: a register, or memory at the current offset + `delta`.
    pub(super) fn piece(
        &self,
        place: &mut Place,
        float: bool,
        delta: u64,
        size: u64,
    ) -> Option<Loc> {
        let size = u32::try_from(size).ok()?;
        match place {
            Place::Registers(cursor) if float => {
                cursor.floats += 1;
                None
            }
            Place::Registers(cursor) => {
                let slot = cursor.ints;
                cursor.ints += 1;
                Some(Loc {
                    offset: u32::try_from(slot * 8).ok()?,
                    size,
                })
            }
            Place::Element(base) => Some(Loc {
                offset: u32::try_from(base.checked_add(delta)?).ok()?,
                size,
            }),
            Place::Frame(base) => {
                let from_sp = base.checked_add(delta)?;
                let end = from_sp.checked_add(u64::from(size))?;
                (end <= u64::from(STACK_WINDOW)).then_some(Loc {
                    offset: REGS_AREA + u32::try_from(from_sp).ok()?,
                    size,
                })
            }
            Place::Pieces(pieces, next) => {
                // A piece holds a part at its start (little-endian registers and memory).
                let loc = pieces.get(*next)?;
                *next += 1;
                Some(Loc {
                    offset: loc.offset,
                    size: size.min(loc.size),
                })
            }
            Place::Global(base) => Some(Loc {
                offset: REGS_AREA + STACK_WINDOW + u32::try_from(base.checked_add(delta)?).ok()?,
                size,
            }),
            Place::Memory(base) => {
                let from_sp = self.ptr.checked_add(*base)?.checked_add(delta)?;
                let end = from_sp.checked_add(u64::from(size))?;
                (end <= u64::from(STACK_WINDOW)).then_some(Loc {
                    offset: REGS_AREA + u32::try_from(from_sp).ok()?,
                    size,
                })
            }
        }
    }

    /// The place of a component at byte `offset` of a value at `place`.
    pub(super) fn nested(&self, place: &Place, offset: u64) -> Place {
        match place {
            Place::Registers(cursor) => Place::Registers(*cursor),
            Place::Pieces(pieces, next) => Place::Pieces(pieces.clone(), *next),
            Place::Memory(base) => Place::Memory(base.saturating_add(offset)),
            Place::Frame(base) => Place::Frame(base.saturating_add(offset)),
            Place::Element(base) => Place::Element(base.saturating_add(offset)),
            Place::Global(base) => Place::Global(base.saturating_add(offset)),
        }
    }

    /// Carries the registers a component consumed back to its parent.
    pub(super) fn resume(&self, place: &mut Place, inner: Place) {
        match (place, inner) {
            (Place::Registers(cursor), Place::Registers(after)) => *cursor = after,
            (Place::Pieces(_, next), Place::Pieces(_, after)) => *next = after,
            _ => {}
        }
    }

    /// Consumes the registers of a value that is not decoded.
    pub(super) fn skip(&self, ty: TypeId, place: &mut Place) {
        match (place, self.reg_pieces(ty, 0)) {
            (Place::Registers(cursor), Some((ints, floats))) => {
                cursor.ints += ints;
                cursor.floats += floats;
            }
            (Place::Pieces(_, next), Some((ints, floats))) => *next += ints + floats,
            _ => {}
        }
    }
}

/// `value` rounded up to a multiple of `align` (align >= 1).
pub(super) fn align_up(value: u64, align: u64) -> u64 {
    let align = align.max(1);
    value.div_ceil(align).saturating_mul(align)
}

#[cfg(test)]
mod tests {
    //! Expected placements are worked out by hand from abi-internal.md's rules and its
    //! examples; the integration test (tests/args.rs) checks the same rules against real calls.
    use super::*;
    use crate::gobin::format::dwarf::{Field, GoType};
    use crate::plan::capture::DerefKind;

    /// Declares the type ids of the table built by [`table`], in its order.
    macro_rules! type_ids {
        ($($name:ident = $id:literal),*) => { $(const $name: TypeId = TypeId($id);)* };
    }
    type_ids! { INT8 = 0, INT = 1, STRING = 2, POINT = 3, FLOAT64 = 4, BIG = 5, ARRAY3 = 6,
    ARRAY1 = 7, INT64 = 8, INT32 = 9, INT16 = 10, OPAQUE = 11 }

    fn ty(name: &str, size: u64, kind: TypeKind) -> GoType {
        GoType {
            name: name.into(),
            size,
            kind,
        }
    }

    /// Types for a 64-bit (`ptr` 8) or 32-bit (`ptr` 4) target.
    fn table(ptr: u64) -> TypeTable {
        let field = |name: &str, offset: u64, ty: TypeId| Field {
            name: name.into(),
            offset,
            ty,
            embedded: false,
        };
        TypeTable::from_types(vec![
            ty("int8", 1, TypeKind::Int { signed: true }),
            ty("int", ptr, TypeKind::Int { signed: true }),
            ty("string", 2 * ptr, TypeKind::String),
            ty(
                "main.Point",
                4 * ptr,
                TypeKind::Struct {
                    fields: vec![
                        field("X", 0, INT),
                        field("Y", ptr, INT),
                        field("Name", 2 * ptr, STRING),
                    ],
                },
            ),
            ty("float64", 8, TypeKind::Float),
            ty(
                "main.Big",
                10 * ptr,
                TypeKind::Struct {
                    fields: (0..10)
                        .map(|i| field(&format!("F{i}"), i * ptr, INT))
                        .collect(),
                },
            ),
            ty("[3]int", 3 * ptr, TypeKind::Array { elem: INT, len: 3 }),
            ty("[1]int", ptr, TypeKind::Array { elem: INT, len: 1 }),
            ty("int64", 8, TypeKind::Int { signed: true }),
            ty("int32", 4, TypeKind::Int { signed: true }),
            ty("int16", 2, TypeKind::Int { signed: true }),
            ty("main.Opaque", 0, TypeKind::Unknown),
        ])
    }

    fn sig(params: &[TypeId], results: &[TypeId]) -> FuncSig {
        let list = |ids: &[TypeId], prefix: &str| {
            ids.iter()
                .enumerate()
                .map(|(i, &ty)| Param {
                    name: format!("{prefix}{i}"),
                    ty,
                })
                .collect()
        };
        FuncSig {
            params: list(params, "p"),
            results: list(results, "~r"),
        }
    }

    fn reg(slot: u32, size: u32) -> Loc {
        Loc {
            offset: slot * 8,
            size,
        }
    }

    fn stack(from_sp: u32, size: u32) -> Loc {
        Loc {
            offset: REGS_AREA + from_sp,
            size,
        }
    }

    fn int(loc: Loc) -> Shape {
        Shape::Int { loc, signed: true }
    }

    fn amd64(params: &[TypeId], results: &[TypeId]) -> CallPlan {
        call_plan(
            &sig(params, results),
            &table(8),
            Arch::Amd64,
            Abi::Register,
            64,
        )
    }

    #[test]
    fn registers_in_order_with_structs_flattened() {
        let plan = amd64(&[INT8, STRING, POINT], &[]);
        let shapes: Vec<&Shape> = plan.entry.values.iter().map(|v| &v.shape).collect();
        assert_eq!(shapes[0], &int(reg(0, 1)));
        assert_eq!(
            shapes[1],
            &Shape::String {
                len: reg(2, 8),
                deref: 0
            }
        );
        let Shape::Struct { fields } = shapes[2] else {
            panic!("{:?}", shapes[2])
        };
        assert_eq!(fields[0].1, int(reg(3, 8)));
        assert_eq!(fields[1].1, int(reg(4, 8)));
        assert_eq!(
            fields[2].1,
            Shape::String {
                len: reg(6, 8),
                deref: 1
            }
        );
        assert_eq!(
            plan.entry.derefs[1].kind,
            DerefKind::Counted {
                ptr: reg(5, 8),
                len: reg(6, 8),
                scale: 1
            }
        );
    }

    #[test]
    fn tenth_integer_goes_to_the_stack() {
        let plan = amd64(&[INT; 10], &[]);
        assert_eq!(plan.entry.values[8].shape, int(reg(8, 8)));
        assert_eq!(plan.entry.values[9].shape, int(stack(8, 8)));
        assert_eq!(plan.entry.stack_bytes, 16);
    }

    #[test]
    fn a_struct_that_does_not_fit_goes_whole_to_the_stack_and_later_ints_still_use_registers() {
        let plan = amd64(&[INT, BIG, INT], &[]);
        assert_eq!(plan.entry.values[0].shape, int(reg(0, 8)));
        let Shape::Struct { fields } = &plan.entry.values[1].shape else {
            panic!()
        };
        assert_eq!(fields[0].1, int(stack(8, 8)));
        assert_eq!(fields[9].1, int(stack(8 + 72, 8)));
        assert_eq!(plan.entry.values[2].shape, int(reg(1, 8)));
    }

    #[test]
    fn arrays_longer_than_one_go_to_the_stack() {
        let plan = amd64(&[ARRAY3, ARRAY1], &[]);
        assert_eq!(
            plan.entry.values[0].shape,
            Shape::Array {
                elems: vec![int(stack(8, 8)), int(stack(16, 8)), int(stack(24, 8))]
            }
        );
        assert_eq!(
            plan.entry.values[1].shape,
            Shape::Array {
                elems: vec![int(reg(0, 8))]
            }
        );
    }

    #[test]
    fn register_floats_are_unreadable_and_take_no_integer_register() {
        let plan = amd64(&[FLOAT64, INT], &[]);
        assert!(matches!(
            &plan.entry.values[0].shape,
            Shape::Unreadable { reason } if reason.contains("XMM")
        ));
        assert_eq!(plan.entry.values[1].shape, int(reg(0, 8)));
    }

    #[test]
    fn results_restart_at_rax_and_stack_results_follow_stack_arguments() {
        let mut params = vec![INT; 10];
        params.push(INT8);
        let plan = amd64(&params, &[INT, ARRAY3]);
        assert_eq!(plan.ret.values[0].shape, int(reg(0, 8)));
        // Stack arguments: the 10th int at 0, the int8 at 8; results start pointer-aligned.
        assert_eq!(
            plan.ret.values[1].shape,
            Shape::Array {
                elems: vec![
                    int(stack(8 + 16, 8)),
                    int(stack(8 + 24, 8)),
                    int(stack(8 + 32, 8))
                ]
            }
        );
    }

    #[test]
    fn stack_abi_on_386_aligns_8_byte_integers_to_4() {
        let plan = call_plan(
            &sig(&[INT8, INT64, INT32], &[INT16]),
            &table(4),
            Arch::I386,
            Abi::Stack,
            64,
        );
        let at = |v: &ValuePlan| v.shape.clone();
        assert_eq!(at(&plan.entry.values[0]), int(stack(4, 1)));
        assert_eq!(at(&plan.entry.values[1]), int(stack(8, 8)));
        assert_eq!(at(&plan.entry.values[2]), int(stack(16, 4)));
        assert_eq!(at(&plan.ret.values[0]), int(stack(20, 2)));
    }

    #[test]
    fn values_after_one_of_unknown_layout_are_unreadable() {
        for (arch, abi, ptr) in [(Arch::Amd64, Abi::Register, 8), (Arch::I386, Abi::Stack, 4)] {
            let plan = call_plan(
                &sig(&[INT, OPAQUE, INT], &[INT]),
                &table(ptr),
                arch,
                abi,
                64,
            );
            let reasons: Vec<String> = plan
                .entry
                .values
                .iter()
                .chain(&plan.ret.values)
                .map(|v| match &v.shape {
                    Shape::Unreadable { reason } => reason.clone(),
                    _ => "readable".into(),
                })
                .collect();
            let after =
                "placed after a value of type main.Opaque, whose layout DWARF does not give";
            assert_eq!(
                reasons,
                [
                    "readable",
                    "type main.Opaque is not described by DWARF",
                    after,
                    after
                ]
            );
        }
    }

    #[test]
    fn stack_abi_floats_are_read() {
        let plan = call_plan(
            &sig(&[FLOAT64], &[]),
            &table(8),
            Arch::Amd64,
            Abi::Stack,
            64,
        );
        assert_eq!(
            plan.entry.values[0].shape,
            Shape::Float { loc: stack(8, 8) }
        );
    }
}
