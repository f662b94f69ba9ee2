//! Go calling conventions: where each argument and result of a function lives at its entry
//! probe and at its RET probes, computed from DWARF types (DESIGN.md technique 6).
//!
//! Register ABI (amd64, Go >= 1.17) follows `src/cmd/compile/abi-internal.md`: each value is
//! flattened into integer and floating-point pieces; if all its pieces fit in the remaining
//! registers (integer RAX RBX RCX RDI RSI R8 R9 R10 R11, floating X0-X14) it takes them in
//! order, otherwise it goes whole to the stack-argument area, aligned to its type. Results are
//! assigned the same way from the first register again, their stack part starting after the
//! pointer-aligned arguments. Stack ABI (ABI0: Go < 1.17 and 386): every value on the stack.
//!
//! The plan addresses a captured *frame*: the integer registers at [`REGS_AREA`] slots of 8
//! bytes, then a window of the stack starting at SP (the return address) at [`REGS_AREA`].
//! Strings, `[]byte` and error messages are extra reads ([`Deref`]) the BPF side performs.
//! Everything here is plain data: the BPF program executes it, [`crate::output::values`] decodes.

use std::mem::offset_of;

use crate::bpf_types::{args_event, args_fetch, args_limits as limits};
use crate::gobin::format::dwarf::{FuncSig, Param, TypeId, TypeKind, TypeTable};
use crate::gobin::Arch;

/// Bytes of the frame holding registers (ARGS_REGS slots of 8 bytes, `enum args_reg_slot`).
pub const REGS_AREA: u32 = limits::ARGS_REGS.0 * 8;
/// Bytes of stack captured from SP (ARGS_STACK_WINDOW).
pub const STACK_WINDOW: u32 = limits::ARGS_STACK_WINDOW.0;
/// Bytes of the frame after the stack window holding globals' values (ARGS_GLOBALS_BYTES).
pub const GLOBALS_AREA: u32 = limits::ARGS_GLOBALS_BYTES.0;
/// Globals read per call at most (ARGS_MAX_GLOBALS).
pub const MAX_GLOBALS: usize = limits::ARGS_MAX_GLOBALS.0 as usize;
/// Extra reads per probe hit (ARGS_MAX_DEREFS).
pub const MAX_DEREFS: usize = limits::ARGS_MAX_DEREFS.0 as usize;
/// Longest single extra read, the upper bound of `--strsize` (ARGS_MAX_READ).
pub const MAX_READ: u32 = limits::ARGS_MAX_READ.0;

// The captured frame is the event's regs, stack and globals arrays, contiguous in that order,
// and the plan has room for every deref and global.
const _: () =
    assert!(offset_of!(args_event, stack) - offset_of!(args_event, regs) == REGS_AREA as usize);
const _: () = assert!(
    offset_of!(args_event, globals) - offset_of!(args_event, stack) == STACK_WINDOW as usize
);
const _: () = assert!(
    offset_of!(args_event, deref_len) - offset_of!(args_event, globals) == GLOBALS_AREA as usize
);
const _: () = assert!(
    std::mem::size_of::<[crate::bpf_types::args_deref; MAX_DEREFS]>()
        == offset_of!(args_fetch, n_globals) - offset_of!(args_fetch, derefs)
);
/// Integer argument registers of the amd64 register ABI, in assignment order.
pub const AMD64_INT_REGS: [&str; 9] = ["RAX", "RBX", "RCX", "RDI", "RSI", "R8", "R9", "R10", "R11"];
/// Floating-point argument registers of the amd64 register ABI (X0-X14).
const AMD64_FLOAT_REGS: usize = 15;
/// Slice elements read at most.
pub const MAX_SLICE_ELEMS: u32 = 16;
/// Nesting bound for structs and arrays.
const MAX_DEPTH: usize = 8;
/// Array elements decoded at most.
const MAX_ARRAY_ELEMS: u64 = 64;

/// Which calling convention a function uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// ABIInternal with integer arguments in registers (amd64, Go >= 1.17).
    Register,
    /// ABI0: every argument and result on the stack.
    Stack,
}

/// A span of the captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Byte offset in the frame.
    pub offset: u32,
    /// Size in bytes (1 to 8).
    pub size: u32,
}

/// How to decode one value from the frame and the extra reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Int {
        loc: Loc,
        signed: bool,
    },
    Bool {
        loc: Loc,
    },
    /// Pointers, unsafe.Pointer, maps, channels, funcs: printed as hex; a pointer argument to
    /// a struct of scalars also has the struct it points at.
    Pointer {
        loc: Loc,
        pointee: Option<Pointee>,
    },
    Float {
        loc: Loc,
    },
    /// A string (or `[]byte`): `deref` is the index of the read of its bytes.
    String {
        len: Loc,
        deref: usize,
    },
    /// A slice of scalars: its first elements (each decoded by `elem` from its own bytes).
    Slice {
        len: Loc,
        cap: Loc,
        elem: Box<Shape>,
        elem_size: u32,
        deref: usize,
    },
    Struct {
        fields: Vec<(String, Shape)>,
    },
    Array {
        elems: Vec<Shape>,
    },
    /// An interface: the first word (itab or type) and, for `error`, the read of an
    /// `*errors.errorString` message.
    Interface {
        tab: Loc,
        empty: bool,
        /// The read of the itab's type word (non-empty interfaces).
        itab_type: Option<usize>,
        message: Option<usize>,
    },
    /// A value gotrace cannot read, with why.
    Unreadable {
        reason: String,
    },
}

/// The struct a pointer argument points at: `shape` decodes the bytes of read `deref`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointee {
    pub shape: Box<Shape>,
    pub deref: usize,
}

/// One argument or result.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePlan {
    pub name: String,
    pub type_name: String,
    pub shape: Shape,
}

/// What an extra read fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerefKind {
    /// `min(len * scale, max)` bytes at the pointer.
    Counted { ptr: Loc, len: Loc, scale: u32 },
    /// The data word points at a `(ptr, len)` string header (`*errors.errorString`).
    StringHeader { ptr: Loc },
    /// `max` bytes at the pointer + `offset` (an itab's type word).
    Fixed { ptr: Loc, offset: u32 },
}

/// One extra read performed by the BPF program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deref {
    pub kind: DerefKind,
    /// At most this many bytes.
    pub max: u32,
}

/// Everything read at one kind of probe site (entry or RET).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SitePlan {
    pub values: Vec<ValuePlan>,
    /// Bytes of stack to copy from SP.
    pub stack_bytes: u32,
    pub derefs: Vec<Deref>,
    /// Globals read at this site (`--global`), decoded by `global_values`.
    pub globals: Vec<GlobalRead>,
    pub global_values: Vec<ValuePlan>,
}

/// A global variable's bytes, copied into the frame's globals area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalRead {
    /// Link-time address of the global.
    pub vaddr: u64,
    pub size: u32,
    /// Offset in the globals area.
    pub area_offset: u32,
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

/// The arguments (at entry) and results (at each RET) of one function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallPlan {
    pub entry: SitePlan,
    pub ret: SitePlan,
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
    pub name: String,
    pub ty: TypeId,
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
struct Assigner<'a> {
    types: &'a TypeTable,
    ptr: u64,
    abi: Abi,
    strsize: u32,
    /// Next free byte of the stack-argument area.
    stack_offset: u64,
    /// The first value whose type DWARF does not describe: every value after it is placed
    /// by its size, which is unknown, so they are unreadable.
    unknown_layout: Option<String>,
}

/// Registers still free while assigning one list (arguments or results).
#[derive(Clone, Copy, Default)]
struct RegCursor {
    ints: usize,
    floats: usize,
}

/// Where the pieces of a value being shaped come from.
enum Place {
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
    fn outside_the_abi(types: &'a TypeTable, arch: Arch, strsize: u32) -> Self {
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
    fn reg_pieces(&self, ty: TypeId, depth: usize) -> Option<(usize, usize)> {
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
    fn piece(&self, place: &mut Place, float: bool, delta: u64, size: u64) -> Option<Loc> {
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

    /// The decoding shape of a value of type `ty` at `place`; registers are consumed from
    /// the cursor, memory offsets are relative to the value's start.
    fn shape(&self, ty: TypeId, place: &mut Place, site: &mut SitePlan, depth: usize) -> Shape {
        let in_memory = !matches!(place, Place::Registers(_));
        let beyond = || Shape::Unreadable {
            reason: format!("beyond the {STACK_WINDOW}-byte stack window gotrace copies"),
        };
        let t = self.types.get(ty);
        let ptr = self.ptr;
        match &t.kind {
            TypeKind::Bool => self
                .piece(place, false, 0, 1)
                .map_or_else(beyond, |loc| Shape::Bool { loc }),
            TypeKind::Int { signed } => {
                self.piece(place, false, 0, t.size)
                    .map_or_else(beyond, |loc| Shape::Int {
                        loc,
                        signed: *signed,
                    })
            }
            TypeKind::Uintptr => self
                .piece(place, false, 0, t.size)
                .map_or_else(beyond, |loc| Shape::Int { loc, signed: false }),
            TypeKind::Pointer { elem } => {
                let Some(loc) = self.piece(place, false, 0, ptr) else {
                    return beyond();
                };
                let pointee = elem
                    .filter(|_| depth == 0)
                    .and_then(|elem| self.pointee(elem, loc, site));
                Shape::Pointer { loc, pointee }
            }
            TypeKind::UnsafePointer | TypeKind::Map | TypeKind::Chan | TypeKind::Func => self
                .piece(place, false, 0, ptr)
                .map_or_else(beyond, |loc| Shape::Pointer { loc, pointee: None }),
            TypeKind::Float => match self.piece(place, true, 0, t.size) {
                Some(loc) => Shape::Float { loc },
                None if in_memory => beyond(),
                None => Shape::Unreadable {
                    reason: "passed in an XMM register, which uprobe programs cannot read".into(),
                },
            },
            TypeKind::Complex => {
                let half = t.size / 2;
                let (re, im) = (
                    self.piece(place, true, 0, half),
                    self.piece(place, true, half, half),
                );
                match (re, im) {
                    (Some(_), Some(_)) => Shape::Unreadable {
                        reason: "complex numbers are not decoded".into(),
                    },
                    _ if in_memory => beyond(),
                    _ => Shape::Unreadable {
                        reason: "passed in XMM registers, which uprobe programs cannot read".into(),
                    },
                }
            }
            TypeKind::String => {
                let data = self.piece(place, false, 0, ptr);
                let len = self.piece(place, false, ptr, ptr);
                self.counted(site, data, len, 1, self.strsize)
            }
            TypeKind::Slice { elem } => {
                let data = self.piece(place, false, 0, ptr);
                let len = self.piece(place, false, ptr, ptr);
                let cap = self.piece(place, false, 2 * ptr, ptr);
                let elem_type = self.types.get(*elem);
                let elem_size = u32::try_from(elem_type.size).unwrap_or(u32::MAX);
                if elem_size == 1 && matches!(elem_type.kind, TypeKind::Int { .. }) {
                    return self.counted(site, data, len, 1, self.strsize);
                }
                let mut elem_place = Place::Element(0);
                let elem_shape = self.shape(*elem, &mut elem_place, site, depth + 1);
                let scalar = matches!(
                    elem_shape,
                    Shape::Int { .. }
                        | Shape::Bool { .. }
                        | Shape::Pointer { .. }
                        | Shape::Float { .. }
                );
                let (Some(cap), true, 1..=8) = (cap, scalar, elem_size) else {
                    return Shape::Unreadable {
                        reason: format!("slices of {} are not decoded", elem_type.name),
                    };
                };
                match self.counted(
                    site,
                    data,
                    len,
                    elem_size,
                    elem_size.saturating_mul(MAX_SLICE_ELEMS),
                ) {
                    Shape::String { len, deref } => Shape::Slice {
                        len,
                        cap,
                        elem: Box::new(elem_shape),
                        elem_size,
                        deref,
                    },
                    unreadable => unreadable,
                }
            }
            TypeKind::Interface { empty } => {
                let tab = self.piece(place, false, 0, ptr);
                let data = self.piece(place, false, ptr, ptr);
                let (Some(tab), Some(data)) = (tab, data) else {
                    return beyond();
                };
                // A non-empty interface's first word is an itab, which may have been built at
                // run time: read its type word (itab._type) in the process.
                let itab_type = (!*empty && site.derefs.len() < MAX_DEREFS).then(|| {
                    site.derefs.push(Deref {
                        kind: DerefKind::Fixed {
                            ptr: tab,
                            offset: ptr as u32,
                        },
                        max: ptr as u32,
                    });
                    site.derefs.len() - 1
                });
                let message = (t.name == "error" && site.derefs.len() < MAX_DEREFS).then(|| {
                    site.derefs.push(Deref {
                        kind: DerefKind::StringHeader { ptr: data },
                        max: self.strsize,
                    });
                    site.derefs.len() - 1
                });
                Shape::Interface {
                    tab,
                    empty: *empty,
                    itab_type,
                    message,
                }
            }
            TypeKind::Struct { fields } => {
                if depth >= MAX_DEPTH {
                    self.skip(ty, place);
                    return Shape::Unreadable {
                        reason: format!("nested deeper than {MAX_DEPTH} levels"),
                    };
                }
                let fields = fields
                    .iter()
                    .map(|f| {
                        let mut inner = self.nested(place, f.offset);
                        let shape = self.shape(f.ty, &mut inner, site, depth + 1);
                        self.resume(place, inner);
                        (f.name.clone(), shape)
                    })
                    .collect();
                Shape::Struct { fields }
            }
            TypeKind::Array { elem, len } => {
                let size = self.types.get(*elem).size;
                if depth >= MAX_DEPTH || *len > MAX_ARRAY_ELEMS {
                    self.skip(ty, place);
                    return Shape::Unreadable {
                        reason: format!("arrays longer than {MAX_ARRAY_ELEMS} elements or nested deeper than {MAX_DEPTH} levels are not decoded"),
                    };
                }
                let elems = (0..*len)
                    .map(|i| {
                        let mut inner = self.nested(place, i.saturating_mul(size));
                        let shape = self.shape(*elem, &mut inner, site, depth + 1);
                        self.resume(place, inner);
                        shape
                    })
                    .collect();
                Shape::Array { elems }
            }
            TypeKind::Unknown => Shape::Unreadable {
                reason: format!("type {} is not described by DWARF", t.name),
            },
        }
    }

    /// The struct a pointer at `ptr` points at, read by the BPF side, when it is a struct of
    /// scalars no larger than `--strsize` (pointers are followed one level deep).
    fn pointee(&self, elem: TypeId, ptr: Loc, site: &mut SitePlan) -> Option<Pointee> {
        let t = self.types.get(elem);
        let size = u32::try_from(t.size).ok()?;
        let fits = matches!(t.kind, TypeKind::Struct { .. })
            && size > 0
            && size <= self.strsize
            && self.only_scalars(elem, 0)
            && site.derefs.len() < MAX_DEREFS;
        if !fits {
            return None;
        }
        let shape = self.shape(elem, &mut Place::Element(0), site, 1);
        site.derefs.push(Deref {
            kind: DerefKind::Fixed { ptr, offset: 0 },
            max: size,
        });
        Some(Pointee {
            shape: Box::new(shape),
            deref: site.derefs.len() - 1,
        })
    }

    /// Whether a value of type `ty` is made only of numbers, bools and pointers (it decodes
    /// from its own bytes, with no further reads).
    fn only_scalars(&self, ty: TypeId, depth: usize) -> bool {
        match &self.types.get(ty).kind {
            TypeKind::Bool
            | TypeKind::Int { .. }
            | TypeKind::Uintptr
            | TypeKind::Float
            | TypeKind::Pointer { .. }
            | TypeKind::UnsafePointer
            | TypeKind::Map
            | TypeKind::Chan
            | TypeKind::Func => true,
            TypeKind::Struct { fields } => {
                depth < MAX_DEPTH && fields.iter().all(|f| self.only_scalars(f.ty, depth + 1))
            }
            TypeKind::Array { elem, len } => {
                depth < MAX_DEPTH && *len <= MAX_ARRAY_ELEMS && self.only_scalars(*elem, depth + 1)
            }
            _ => false,
        }
    }

    /// The place of a component at byte `offset` of a value at `place`.
    fn nested(&self, place: &Place, offset: u64) -> Place {
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
    fn resume(&self, place: &mut Place, inner: Place) {
        match (place, inner) {
            (Place::Registers(cursor), Place::Registers(after)) => *cursor = after,
            (Place::Pieces(_, next), Place::Pieces(_, after)) => *next = after,
            _ => {}
        }
    }

    /// Consumes the registers of a value that is not decoded.
    fn skip(&self, ty: TypeId, place: &mut Place) {
        match (place, self.reg_pieces(ty, 0)) {
            (Place::Registers(cursor), Some((ints, floats))) => {
                cursor.ints += ints;
                cursor.floats += floats;
            }
            (Place::Pieces(_, next), Some((ints, floats))) => *next += ints + floats,
            _ => {}
        }
    }

    /// A string-like value: `len` bytes (times `scale`) at `data`, read by the BPF side.
    fn counted(
        &self,
        site: &mut SitePlan,
        data: Option<Loc>,
        len: Option<Loc>,
        scale: u32,
        max: u32,
    ) -> Shape {
        let (Some(ptr), Some(len)) = (data, len) else {
            return Shape::Unreadable {
                reason: format!("beyond the {STACK_WINDOW}-byte stack window gotrace copies"),
            };
        };
        if site.derefs.len() >= MAX_DEREFS {
            return Shape::Unreadable {
                reason: format!("more than {MAX_DEREFS} strings in one call"),
            };
        }
        site.derefs.push(Deref {
            kind: DerefKind::Counted { ptr, len, scale },
            max,
        });
        Shape::String {
            len,
            deref: site.derefs.len() - 1,
        }
    }
}

/// `value` rounded up to a multiple of `align` (align >= 1).
fn align_up(value: u64, align: u64) -> u64 {
    let align = align.max(1);
    value.div_ceil(align).saturating_mul(align)
}

impl SitePlan {
    /// The BPF side's `struct args_fetch` for this site plan of the function whose link-time
    /// entry is `func_vaddr`.
    pub fn to_bpf(&self, func_vaddr: u64) -> args_fetch {
        use crate::bpf_types::deref_kind;
        let mut fetch = args_fetch {
            func_vaddr,
            stack_bytes: self.stack_bytes,
            n_derefs: self.derefs.len().min(MAX_DEREFS) as u32,
            n_globals: self.globals.len().min(MAX_GLOBALS) as u32,
            ..Default::default()
        };
        for (slot, global) in fetch.globals.iter_mut().zip(&self.globals) {
            slot.vaddr = global.vaddr;
            slot.size = global.size;
            slot.area_off = global.area_offset;
        }
        for (slot, deref) in fetch.derefs.iter_mut().zip(&self.derefs) {
            slot.max = deref.max;
            // Frame offsets are below REGS_AREA + STACK_WINDOW + GLOBALS_AREA, within u16.
            match deref.kind {
                DerefKind::Counted { ptr, len, scale } => {
                    slot.kind = deref_kind::DEREF_COUNTED;
                    slot.ptr_off = ptr.offset as u16;
                    slot.len_off = len.offset as u16;
                    slot.scale = scale;
                }
                DerefKind::StringHeader { ptr } => {
                    slot.kind = deref_kind::DEREF_STRING_HEADER;
                    slot.ptr_off = ptr.offset as u16;
                }
                DerefKind::Fixed { ptr, offset } => {
                    slot.kind = deref_kind::DEREF_FIXED;
                    slot.ptr_off = ptr.offset as u16;
                    slot.scale = offset;
                }
            }
        }
        fetch
    }
}

const _: () = assert!(REGS_AREA + STACK_WINDOW + GLOBALS_AREA <= u16::MAX as u32);

#[cfg(test)]
mod tests {
    //! Expected placements are worked out by hand from abi-internal.md's rules and its
    //! examples; the integration test (tests/args.rs) checks the same rules against real calls.
    use super::*;
    use crate::gobin::format::dwarf::{Field, GoType};

    /// Type ids of the table built by [`table`].
    const INT8: TypeId = TypeId(0);
    const INT: TypeId = TypeId(1);
    const STRING: TypeId = TypeId(2);
    const POINT: TypeId = TypeId(3);
    const FLOAT64: TypeId = TypeId(4);
    const BIG: TypeId = TypeId(5);
    const ARRAY3: TypeId = TypeId(6);
    const ARRAY1: TypeId = TypeId(7);
    const INT64: TypeId = TypeId(8);
    const INT32: TypeId = TypeId(9);
    const INT16: TypeId = TypeId(10);
    const OPAQUE: TypeId = TypeId(11);

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
