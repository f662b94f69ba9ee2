//! How one value is decoded: its [`Shape`] says which spans of the captured frame and which
//! extra reads hold it, built while [`super::assign`] places the value.

use crate::gobin::format::dwarf::{TypeId, TypeKind};

use super::assign::{Assigner, Place};
use super::{Deref, DerefKind, Loc, SitePlan, MAX_DEREFS, STACK_WINDOW};

/// Slice elements read at most.
pub const MAX_SLICE_ELEMS: u32 = 16;
/// Nesting bound for structs and arrays.
pub(super) const MAX_DEPTH: usize = 8;
/// Array elements decoded at most.
const MAX_ARRAY_ELEMS: u64 = 64;

/// How to decode one value from the frame and the extra reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// An integer (any size; `uintptr` too).
    Int {
        /// Where its bytes are.
        loc: Loc,
        /// Read as signed.
        signed: bool,
    },
    /// A bool.
    Bool {
        /// Where its byte is.
        loc: Loc,
    },
    /// Pointers, unsafe.Pointer, maps, channels, funcs: printed as hex; a pointer argument to
    /// a struct of scalars also has the struct it points at.
    Pointer {
        /// Where the pointer is.
        loc: Loc,
        /// The struct it points at (None: not a pointer to a struct, or not read).
        pointee: Option<Pointee>,
    },
    /// A float (`float32` or `float64`, by the span's size).
    Float {
        /// Where its bytes are.
        loc: Loc,
    },
    /// A string (or `[]byte`): `deref` is the index of the read of its bytes.
    String {
        /// Where its length is.
        len: Loc,
        /// The extra read of its bytes, an index in the site's `derefs`.
        deref: usize,
    },
    /// A slice of scalars: its first elements (each decoded by `elem` from its own bytes).
    Slice {
        /// Where its length is.
        len: Loc,
        /// Where its capacity is.
        cap: Loc,
        /// How one element is decoded, its spans relative to the element's first byte.
        elem: Box<Shape>,
        /// Bytes per element (1 to 8).
        elem_size: u32,
        /// The extra read of its first elements, an index in the site's `derefs`.
        deref: usize,
    },
    /// A struct, field by field.
    Struct {
        /// Each field's name and shape, in order.
        fields: Vec<(String, Shape)>,
    },
    /// An array, element by element.
    Array {
        /// Each element's shape, in order.
        elems: Vec<Shape>,
    },
    /// An interface: the first word (itab or type) and, for `error`, the read of an
    /// `*errors.errorString` message.
    Interface {
        /// Where the first word is.
        tab: Loc,
        /// `any`: the first word is the type, not an itab.
        empty: bool,
        /// The read of the itab's type word (non-empty interfaces).
        itab_type: Option<usize>,
        /// `error`: the read of the message (an index in the site's `derefs`).
        message: Option<usize>,
    },
    /// A value gotrace cannot read, with why.
    Unreadable {
        /// Why, for the user.
        reason: String,
    },
}

/// The struct a pointer argument points at, and where its bytes are.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointee {
    /// How the struct is decoded, its spans in the bytes `source` names.
    pub shape: Box<Shape>,
    /// Where those bytes are read.
    pub source: PointeeSource,
}

/// Where a [`Pointee`]'s bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointeeSource {
    /// A struct of scalars: `shape` decodes the bytes of extra read `deref`.
    Deref(usize),
    /// Any other struct ([`super::deep`]): field read `read` copied its first bytes into the
    /// globals area, where `shape`'s spans are; `cut`: fields past them are not shown.
    Area {
        /// The field read, an index in the site's `field_reads`.
        read: usize,
        /// Fields past the bytes read are not shown.
        cut: bool,
    },
}

/// One argument or result.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePlan {
    /// Its name (the parameter's, the `--global` or the `--field` expression).
    pub name: String,
    /// Its Go type's name.
    pub type_name: String,
    /// How it is decoded.
    pub shape: Shape,
}

impl Assigner<'_> {
    /// The decoding shape of a value of type `ty` at `place`; registers are consumed from
    /// the cursor, memory offsets are relative to the value's start.
    pub(super) fn shape(
        &self,
        ty: TypeId,
        place: &mut Place,
        site: &mut SitePlan,
        depth: usize,
    ) -> Shape {
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
            source: PointeeSource::Deref(site.derefs.len() - 1),
        })
    }

    /// Whether a value of type `ty` is made only of numbers, bools and pointers (it decodes
    /// from its own bytes, with no further reads).
    pub(super) fn only_scalars(&self, ty: TypeId, depth: usize) -> bool {
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
