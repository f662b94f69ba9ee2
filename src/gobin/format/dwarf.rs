//! DWARF (optional): function parameter and result types, globals, runtime.g / runtime.m layout.
//!
//! [`load`] parses the whole `.debug_info` eagerly in one pass with gimli's raw entry reader
//! (attributes we do not need are skipped, not decoded), then resolves typedef chains. Only the
//! sections that pass needs are decompressed (`.debug_info`, `.debug_abbrev`, `.debug_str`), in
//! any of the three forms Go has written them: plain, GNU `.zdebug_*` (Go <= 1.13) and
//! `SHF_COMPRESSED` (later Go).
//!
//! Go-specific DWARF: every type DIE carries `DW_AT_go_kind` (a `reflect.Kind`); strings and
//! slices are structures with that kind (slices name their element in `DW_AT_go_elem`); maps,
//! channels, funcs and interfaces are typedefs with that kind, pointing at the runtime's
//! representation; a named type is a typedef of its definition. Results are formal parameters
//! with `DW_AT_variable_parameter` set.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use gimli::{constants, AttributeValue, DwAt, DwTag, EndianSlice, Reader as _, RunTimeEndian};
use object::Object;

use crate::gobin::runtime::layout::{LayoutSource, RuntimeLayout};

/// Go's `DW_AT_go_kind`: the type's `reflect.Kind`.
const DW_AT_GO_KIND: DwAt = DwAt(0x2900);
/// Go's `DW_AT_go_elem`: element type of a slice, map, channel.
const DW_AT_GO_ELEM: DwAt = DwAt(0x2902);
/// Go's `DW_AT_go_embedded_field` (a flag on a struct member, Go 1.10+): the field is
/// embedded (`sync.Mutex`, `*Inner`), so its fields and methods are promoted.
const DW_AT_GO_EMBEDDED_FIELD: DwAt = DwAt(0x2903);

/// `reflect.Kind` numbers used in `DW_AT_go_kind`.
mod reflect_kind {
    /// `reflect.Bool`.
    pub const BOOL: u64 = 1;
    /// `reflect.Int`, the first signed integer kind (`INT..=INT64`: Int, Int8 ... Int64).
    pub const INT: u64 = 2;
    /// `reflect.Int64`, the last signed integer kind.
    pub const INT64: u64 = 6;
    /// `reflect.Uint`, the first unsigned integer kind (`UINT..=UINT64`: Uint ... Uint64).
    pub const UINT: u64 = 7;
    /// `reflect.Uint64`, the last unsigned integer kind.
    pub const UINT64: u64 = 11;
    /// `reflect.Uintptr`.
    pub const UINTPTR: u64 = 12;
    /// `reflect.Float32`.
    pub const FLOAT32: u64 = 13;
    /// `reflect.Float64`.
    pub const FLOAT64: u64 = 14;
    /// `reflect.Complex64`.
    pub const COMPLEX64: u64 = 15;
    /// `reflect.Complex128`.
    pub const COMPLEX128: u64 = 16;
    /// `reflect.Chan`.
    pub const CHAN: u64 = 18;
    /// `reflect.Func`.
    pub const FUNC: u64 = 19;
    /// `reflect.Interface`.
    pub const INTERFACE: u64 = 20;
    /// `reflect.Map`.
    pub const MAP: u64 = 21;
    /// `reflect.Slice`.
    pub const SLICE: u64 = 23;
    /// `reflect.String`.
    pub const STRING: u64 = 24;
    /// `reflect.UnsafePointer`.
    pub const UNSAFE_POINTER: u64 = 26;
}

/// Longest typedef chain followed before giving up (a cycle in corrupt input).
const MAX_TYPEDEF_CHAIN: usize = 64;

/// Name given to types that are referenced but never defined (or unreadable).
const UNKNOWN_TYPE_NAME: &str = "<unknown>";

/// Index of a type in a [`TypeTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeId(pub usize);

/// A Go type as DWARF describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoType {
    /// Go spelling, e.g. `int`, `*main.T`, `[]string`, `map[string]int`, `main.T`.
    pub name: String,
    /// Size in bytes (0 when DWARF does not say).
    pub size: u64,
    /// What kind of type, with its element types.
    pub kind: TypeKind,
}

/// The shape of a Go type. Named types have the kind of their underlying type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    /// `bool`.
    Bool,
    /// An integer of any size but `uintptr` (the size is the type's `size`).
    Int {
        /// `int*` rather than `uint*`.
        signed: bool,
    },
    /// `uintptr`.
    Uintptr,
    /// `float32` or `float64`.
    Float,
    /// `complex64` or `complex128`.
    Complex,
    /// `string` (a pointer and a length).
    String,
    /// `*T`.
    Pointer {
        /// `T` (None: the DWARF names no pointee type).
        elem: Option<TypeId>,
    },
    /// `unsafe.Pointer`, or a pointer DIE with no pointee type and no Go kind.
    UnsafePointer,
    /// `[]T` (a pointer, a length and a capacity).
    Slice {
        /// `T`, from `DW_AT_go_elem`.
        elem: TypeId,
    },
    /// `[N]T`.
    Array {
        /// `T`.
        elem: TypeId,
        /// `N`, from the array's subrange (0 when the DWARF does not say).
        len: u64,
    },
    /// A struct, with its fields.
    Struct {
        /// The fields, in DWARF order.
        fields: Vec<Field>,
    },
    /// A map (the header pointer only; entries are not described).
    Map,
    /// A channel.
    Chan,
    /// A func value.
    Func,
    /// An interface (a type word and a data word).
    Interface {
        /// `any`/`interface{}` (`runtime.eface`: its first word is the type), not one with
        /// methods (`runtime.iface`: its first word is the itab).
        empty: bool,
    },
    /// A type gotrace cannot read, or one the DWARF does not describe.
    Unknown,
}

/// A struct field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name, as the DWARF gives it.
    pub name: String,
    /// Byte offset from the start of the struct.
    pub offset: u64,
    /// The field's type.
    pub ty: TypeId,
    /// An embedded field (DWARF's `DW_AT_go_embedded_field`): its fields are promoted.
    pub embedded: bool,
}

/// Every type found in the DWARF, indexed by [`TypeId`]. Recursive types are fine: fields and
/// elements refer to other entries by id.
#[derive(Debug, Clone, Default)]
pub struct TypeTable {
    types: Vec<GoType>,
}

/// Returned by [`TypeTable::get`] for an id the table does not hold.
static UNKNOWN_TYPE: GoType = GoType {
    name: String::new(),
    size: 0,
    kind: TypeKind::Unknown,
};

impl TypeTable {
    /// A table holding `types`, indexed by position (for plans computed from written types).
    pub fn from_types(types: Vec<GoType>) -> TypeTable {
        TypeTable { types }
    }

    /// The type with this id (an empty `Unknown` type if the id is not from this table).
    pub fn get(&self, id: TypeId) -> &GoType {
        self.types.get(id.0).unwrap_or(&UNKNOWN_TYPE)
    }

    /// The Go name of the type with this id.
    pub fn name(&self, id: TypeId) -> &str {
        &self.get(id).name
    }

    /// The first type with this Go name, e.g. `runtime.g`.
    pub fn find(&self, name: &str) -> Option<TypeId> {
        self.types.iter().position(|t| t.name == name).map(TypeId)
    }

    /// Adds a type the DWARF does not describe (a method wrapper's receiver), returning its id.
    pub(in crate::gobin) fn push(&mut self, ty: GoType) -> TypeId {
        self.types.push(ty);
        TypeId(self.types.len() - 1)
    }

    /// The offset of the field at `path` (`["sched", "sp"]`) in struct type `name`, nested
    /// structs followed.
    pub fn field_offset(&self, name: &str, path: &[&str]) -> Option<u64> {
        let mut id = self.find(name)?;
        let mut offset = 0u64;
        for step in path {
            let f = field(self, id, step)?;
            offset = offset.checked_add(f.offset)?;
            id = f.ty;
        }
        Some(offset)
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when the DWARF described no type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// A function's parameters and results, in DWARF order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuncSig {
    /// The parameters, the receiver first for a method.
    pub params: Vec<Param>,
    /// The results.
    pub results: Vec<Param>,
}

/// One parameter or result (`~r0`, `~r1`... when the result is unnamed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name in the source (`~r0`... for an unnamed result).
    pub name: String,
    /// Its type.
    pub ty: TypeId,
}

/// A package-level variable with a static address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Qualified Go name, e.g. `main.counter`.
    pub name: String,
    /// Link-time virtual address (add the load bias for PIE).
    pub addr: u64,
    /// Its type (None: the DWARF gives none).
    pub ty: Option<TypeId>,
}

/// What the DWARF of a Go binary tells gotrace.
#[derive(Debug, Clone, Default)]
pub struct DwarfInfo {
    /// All Go types seen, indexed by [`TypeId`].
    pub types: TypeTable,
    /// Signatures by Go function name, e.g. `main.(*T).M`.
    pub functions: HashMap<String, FuncSig>,
    /// DWARF's name of the function with code at each entry address (link-time), for the
    /// functions the pclntab names otherwise (Go 1.18-1.19 name every instantiation of a
    /// generic function `pkg.F[...]`, DWARF `pkg.F[go.shape.int_0]`).
    pub names_by_entry: HashMap<u64, String>,
    /// CU-level `DW_TAG_variable`s located by `DW_OP_addr`, in DWARF order.
    pub globals: Vec<Global>,
    /// Offsets in runtime.g / runtime.m, when DWARF describes those structs.
    pub runtime: Option<RuntimeLayout>,
}

impl DwarfInfo {
    /// The signature of the function the pclntab names `name` with code at `entry`: by name,
    /// else by DWARF's name for that entry.
    pub fn signature(&self, name: &str, entry: u64) -> Option<&FuncSig> {
        self.functions.get(name).or_else(|| {
            let dwarf_name = self.names_by_entry.get(&entry)?;
            self.functions.get(dwarf_name)
        })
    }
}

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// Reads the DWARF of a Go ELF binary. `Ok(None)`: the binary has no `.debug_info`.
pub fn load(elf: &object::File<'_>) -> Result<Option<DwarfInfo>> {
    let Some((sections, endian)) = sections(elf, false)? else {
        return Ok(None);
    };
    let mut dwarf = sections.borrow(|data| EndianSlice::new(data, endian));
    dwarf.populate_abbreviations_cache(gimli::AbbreviationsCacheStrategy::Duplicates);
    let mut parser = Parser::default();
    let mut units = dwarf.units();
    while let Some(header) = units.next().context("reading a DWARF unit header")? {
        let offset = header.offset();
        parser
            .unit(&dwarf, &header)
            .with_context(|| format!("reading the DWARF unit at {offset:?}"))?;
    }
    Ok(Some(parser.finish()))
}

/// Every DWARF section of a binary, decompressed (or empty).
pub(super) type Sections<'data> = gimli::DwarfSections<Cow<'data, [u8]>>;

/// The DWARF sections of `elf`, decompressed, and their byte order; None without
/// `.debug_info`. `all`: every section, else only those [`load`] reads (the others empty).
pub(super) fn sections<'data>(
    elf: &object::File<'data>,
    all: bool,
) -> Result<Option<(Sections<'data>, RunTimeEndian)>> {
    if elf.section_by_name(".debug_info").is_none() {
        return Ok(None);
    }
    let endian = if elf.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let sections = gimli::DwarfSections::load(|id| section_data(elf, id, all))?;
    Ok(Some((sections, endian)))
}

/// Contents of one DWARF section, decompressed; empty for sections not wanted (`all` false:
/// those [`load`] never reads).
fn section_data<'data>(
    elf: &object::File<'data>,
    id: gimli::SectionId,
    all: bool,
) -> Result<Cow<'data, [u8]>> {
    let needed = all
        || matches!(
            id,
            gimli::SectionId::DebugInfo
                | gimli::SectionId::DebugAbbrev
                | gimli::SectionId::DebugStr
        );
    match elf.section_by_name(id.name()) {
        Some(section) if needed => super::elf::section_data(&section),
        _ => Ok(Cow::Borrowed(&[])),
    }
}

/// The attributes of one DIE that the parser uses.
#[derive(Default)]
struct DieAttrs<'a> {
    name: Option<Reader<'a>>,
    ty: Option<usize>,
    byte_size: Option<u64>,
    go_kind: Option<u64>,
    go_elem: Option<usize>,
    encoding: Option<u64>,
    count: Option<u64>,
    upper_bound: Option<u64>,
    member_offset: Option<u64>,
    go_embedded_field: bool,
    variable_parameter: bool,
    location: Option<Reader<'a>>,
    has_low_pc: bool,
    /// `DW_AT_low_pc` when given as an address (`DW_FORM_addr`: Go's DWARF 4, up to 1.24);
    /// not resolved when an index into `.debug_addr` (Go 1.25+'s DWARF 5), where it only
    /// serves [`DwarfInfo::names_by_entry`], whose names then agree with the pclntab's.
    low_pc: Option<u64>,
    is_inline: bool,
    abstract_origin: Option<usize>,
}

impl DieAttrs<'_> {
    fn name(&self) -> String {
        self.name
            .map(|n| String::from_utf8_lossy(n.slice()).into_owned())
            .unwrap_or_default()
    }
}

/// How the parser treats a DIE, given its tag and its parent.
#[derive(Clone, Copy)]
enum Role {
    /// A type, wherever it is.
    Type,
    /// Below the unit: a subprogram, a global, or the unit itself.
    Top,
    /// A member, subrange or formal parameter of the open parent.
    Child,
}

/// What the DIEs below an open parent DIE contribute to.
enum Parent {
    /// A type whose children (struct members, array subranges) complete it.
    Type { id: TypeId, ty: PendingType },
    /// A subprogram collecting its formal parameters.
    Function(FuncDie),
    /// The compile unit: its children are types, subprograms and globals.
    Unit,
    /// Children that say nothing we use (lexical blocks, inlined calls, local variables...).
    Ignored,
}

/// A type as read from its DIE, before typedef chains are resolved.
struct PendingType {
    name: String,
    size: Option<u64>,
    /// `None` for a typedef whose kind is its target's.
    kind: Option<TypeKind>,
    /// Target of a typedef.
    target: Option<TypeId>,
}

/// A `DW_TAG_subprogram` and its formal parameters.
struct FuncDie {
    name: FuncName,
    /// Has code (`DW_AT_low_pc`); preferred over an abstract DIE of the same name.
    concrete: bool,
    /// Where its code starts, when DWARF gives it as an address.
    entry: Option<u64>,
    /// `DW_AT_inline`: the abstract DIE of an inlined function, referred to by the concrete
    /// out-of-line copy (if any) and by inlined instances.
    is_abstract: bool,
    offset: usize,
    params: Vec<ParamDie>,
}

/// How a subprogram DIE names its function.
enum FuncName {
    Own(String),
    /// `DW_AT_abstract_origin`: the name is on the abstract DIE at this offset.
    Origin(usize),
}

/// A formal parameter below a subprogram.
enum ParamDie {
    Own {
        offset: usize,
        param: Param,
        is_result: bool,
    },
    /// `DW_AT_abstract_origin`: the parameter of the abstract DIE at this offset.
    Origin(usize),
}

/// A function signature and whether it came from a concrete (out-of-line) subprogram.
struct FoundFunc {
    sig: FuncSig,
    concrete: bool,
}

/// What one pass over `.debug_info` collects.
#[derive(Default)]
struct Parser {
    /// Types by id; `None` until (unless) the DIE is read.
    types: Vec<Option<PendingType>>,
    /// Type ids by `.debug_info` offset of their DIE.
    ids: HashMap<usize, TypeId>,
    /// The type given to parameters and elements whose type DWARF does not say.
    unknown: Option<TypeId>,
    functions: HashMap<String, FoundFunc>,
    /// Names of concrete subprograms by entry address.
    names_by_entry: HashMap<u64, String>,
    /// Names of abstract subprograms by offset.
    abstract_funcs: HashMap<usize, String>,
    /// Parameters of abstract subprograms by offset, and whether each is a result.
    abstract_params: HashMap<usize, (Param, bool)>,
    /// Concrete copies of inlined functions, resolved once every abstract DIE is known.
    instances: Vec<FuncDie>,
    globals: Vec<Global>,
}

impl Parser {
    /// The id of the type DIE at this `.debug_info` offset, allocated on first mention.
    fn id_at(&mut self, offset: usize) -> TypeId {
        let types = &mut self.types;
        *self.ids.entry(offset).or_insert_with(|| {
            types.push(None);
            TypeId(types.len() - 1)
        })
    }

    /// The id of the type at this optional offset, or of a shared unknown type.
    fn id_or_unknown(&mut self, offset: Option<usize>) -> TypeId {
        match offset {
            Some(offset) => self.id_at(offset),
            None => *self.unknown.get_or_insert_with(|| {
                self.types.push(None);
                TypeId(self.types.len() - 1)
            }),
        }
    }

    /// Reads every DIE of one unit, depth first, keeping the chain of open parents.
    fn unit(
        &mut self,
        dwarf: &gimli::Dwarf<Reader<'_>>,
        header: &gimli::UnitHeader<Reader<'_>>,
    ) -> Result<()> {
        let abbreviations = dwarf.abbreviations(header)?;
        let mut entries = header.entries_raw(&abbreviations, None)?;
        let ptr_size = u64::from(header.address_size());
        let mut open: Vec<(isize, Parent)> = Vec::new();
        while !entries.is_empty() {
            let depth = entries.next_depth();
            let unit_offset = entries.next_offset();
            let Some(abbrev) = entries.read_abbreviation()? else {
                continue;
            };
            while open.last().is_some_and(|(d, _)| *d >= depth) {
                if let Some((_, parent)) = open.pop() {
                    self.close(parent);
                }
            }
            let tag = abbrev.tag();
            let role = match open.last() {
                _ if is_type_tag(tag) => Role::Type,
                None | Some((_, Parent::Unit)) if is_interesting(tag) => Role::Top,
                Some((d, Parent::Type { .. } | Parent::Function { .. }))
                    if *d == depth - 1 && is_interesting(tag) =>
                {
                    Role::Child
                }
                _ => {
                    // Says nothing we use, nor do its children.
                    entries.skip_attributes(abbrev.attributes())?;
                    if abbrev.has_children() {
                        open.push((depth, Parent::Ignored));
                    }
                    continue;
                }
            };
            let mut attrs = DieAttrs::default();
            for spec in abbrev.attributes() {
                if is_wanted(spec.name()) {
                    let attr = entries.read_attribute(*spec)?;
                    record(dwarf, header, &mut attrs, attr.name(), attr.value())?;
                } else {
                    entries.skip_attributes(std::slice::from_ref(spec))?;
                }
            }
            let Some(offset) = unit_offset.to_debug_info_offset(header).map(|o| o.0) else {
                bail!("DIE offset {unit_offset:?} outside its unit");
            };
            let new_parent = match (role, open.last_mut()) {
                (Role::Type, _) => {
                    let id = self.id_at(offset);
                    let ty = self.type_die(tag, &attrs, ptr_size);
                    Parent::Type { id, ty }
                }
                (Role::Child, Some((_, parent))) => self.child(parent, tag, &attrs, offset),
                _ => self.top(tag, &attrs, offset, ptr_size),
            };
            if abbrev.has_children() {
                open.push((depth, new_parent));
            } else {
                self.close(new_parent);
            }
        }
        while let Some((_, parent)) = open.pop() {
            self.close(parent);
        }
        Ok(())
    }

    /// Handles a DIE directly below the unit (or the unit itself) that is not a type: a
    /// subprogram or a global. Returns what its children contribute to.
    fn top(&mut self, tag: DwTag, attrs: &DieAttrs<'_>, offset: usize, ptr_size: u64) -> Parent {
        match tag {
            constants::DW_TAG_compile_unit => Parent::Unit,
            constants::DW_TAG_subprogram => {
                let name = match (attrs.name, attrs.abstract_origin) {
                    (Some(_), _) => FuncName::Own(attrs.name()),
                    (None, Some(origin)) => FuncName::Origin(origin),
                    (None, None) => return Parent::Ignored,
                };
                Parent::Function(FuncDie {
                    name,
                    concrete: attrs.has_low_pc,
                    entry: attrs.low_pc,
                    is_abstract: attrs.is_inline,
                    offset,
                    params: Vec::new(),
                })
            }
            constants::DW_TAG_variable => {
                self.global(attrs, ptr_size);
                Parent::Ignored
            }
            _ => Parent::Ignored,
        }
    }

    /// Reads a type DIE (without its children).
    fn type_die(&mut self, tag: DwTag, attrs: &DieAttrs<'_>, ptr_size: u64) -> PendingType {
        use reflect_kind as k;
        let kind = match (tag, attrs.go_kind) {
            (constants::DW_TAG_typedef, Some(k::CHAN)) => Some(TypeKind::Chan),
            (constants::DW_TAG_typedef, Some(k::FUNC)) => Some(TypeKind::Func),
            (constants::DW_TAG_typedef, Some(k::MAP)) => Some(TypeKind::Map),
            (constants::DW_TAG_typedef, Some(k::INTERFACE)) => {
                Some(TypeKind::Interface { empty: false })
            }
            (constants::DW_TAG_typedef, _) => None,
            (constants::DW_TAG_base_type, kind) => Some(base_kind(kind, attrs)),
            (constants::DW_TAG_pointer_type, Some(k::UNSAFE_POINTER))
            | (constants::DW_TAG_pointer_type, None)
                if attrs.ty.is_none() =>
            {
                Some(TypeKind::UnsafePointer)
            }
            (constants::DW_TAG_pointer_type, _) => Some(TypeKind::Pointer {
                elem: attrs.ty.map(|t| self.id_at(t)),
            }),
            (constants::DW_TAG_structure_type, Some(k::STRING)) => Some(TypeKind::String),
            (constants::DW_TAG_structure_type, Some(k::SLICE)) => Some(TypeKind::Slice {
                elem: self.id_or_unknown(attrs.go_elem),
            }),
            (constants::DW_TAG_structure_type, _) => Some(TypeKind::Struct { fields: Vec::new() }),
            (constants::DW_TAG_array_type, _) => Some(TypeKind::Array {
                elem: self.id_or_unknown(attrs.ty),
                len: 0,
            }),
            (constants::DW_TAG_subroutine_type, _) => Some(TypeKind::Func),
            _ => Some(TypeKind::Unknown),
        };
        let size = match tag {
            constants::DW_TAG_pointer_type | constants::DW_TAG_subroutine_type => {
                Some(attrs.byte_size.unwrap_or(ptr_size))
            }
            _ => attrs.byte_size,
        };
        let target = match tag {
            constants::DW_TAG_typedef => attrs.ty.map(|t| self.id_at(t)),
            _ => None,
        };
        PendingType {
            name: attrs.name(),
            size,
            kind,
            target,
        }
    }

    /// Records a CU-level variable whose location is a single `DW_OP_addr`.
    fn global(&mut self, attrs: &DieAttrs<'_>, ptr_size: u64) {
        let (Some(_), Some(mut location)) = (attrs.name, attrs.location) else {
            return;
        };
        if location.read_u8().ok() != Some(constants::DW_OP_addr.0) {
            return;
        }
        let Some(addr) = u8::try_from(ptr_size)
            .ok()
            .and_then(|size| location.read_address(size).ok())
        else {
            return;
        };
        if location.is_empty() {
            let ty = attrs.ty.map(|t| self.id_at(t));
            self.globals.push(Global {
                name: attrs.name(),
                addr,
                ty,
            });
        }
    }

    /// Handles a direct child of an open parent.
    fn child(
        &mut self,
        parent: &mut Parent,
        tag: DwTag,
        attrs: &DieAttrs<'_>,
        offset: usize,
    ) -> Parent {
        match (parent, tag) {
            (Parent::Type { ty, .. }, constants::DW_TAG_member) => {
                if let Some(TypeKind::Struct { fields }) = &mut ty.kind {
                    let field_ty = self.id_or_unknown(attrs.ty);
                    fields.push(Field {
                        name: attrs.name(),
                        offset: attrs.member_offset.unwrap_or(0),
                        ty: field_ty,
                        embedded: attrs.go_embedded_field,
                    });
                }
            }
            (Parent::Type { ty, .. }, constants::DW_TAG_subrange_type) => {
                if let Some(TypeKind::Array { len, .. }) = &mut ty.kind {
                    *len = attrs
                        .count
                        .or_else(|| attrs.upper_bound.map(|u| u.saturating_add(1)))
                        .unwrap_or(0);
                }
            }
            (Parent::Function(func), constants::DW_TAG_formal_parameter) => {
                let param = match (attrs.name, attrs.abstract_origin) {
                    (None, Some(origin)) => ParamDie::Origin(origin),
                    _ => ParamDie::Own {
                        offset,
                        param: Param {
                            name: attrs.name(),
                            ty: self.id_or_unknown(attrs.ty),
                        },
                        is_result: attrs.variable_parameter,
                    },
                };
                func.params.push(param);
            }
            _ => {}
        }
        Parent::Ignored
    }

    /// Stores what an open parent collected.
    fn close(&mut self, parent: Parent) {
        match parent {
            Parent::Type { id, ty } => {
                if let Some(slot) = self.types.get_mut(id.0) {
                    *slot = Some(ty);
                }
            }
            Parent::Function(func) => {
                if func.is_abstract {
                    self.remember_abstract(&func);
                }
                match &func.name {
                    FuncName::Own(name) => {
                        let sig = self.signature(&func.params);
                        self.add_function(name.clone(), sig, func.concrete, func.entry);
                    }
                    FuncName::Origin(_) => self.instances.push(func),
                }
            }
            Parent::Unit | Parent::Ignored => {}
        }
    }

    /// Keeps the name and parameters of an abstract subprogram for its concrete copies.
    fn remember_abstract(&mut self, func: &FuncDie) {
        if let FuncName::Own(name) = &func.name {
            self.abstract_funcs.insert(func.offset, name.clone());
        }
        for param in &func.params {
            if let ParamDie::Own {
                offset,
                param,
                is_result,
            } = param
            {
                self.abstract_params
                    .insert(*offset, (param.clone(), *is_result));
            }
        }
    }

    /// The signature of a subprogram; a parameter whose abstract origin is unknown gets an
    /// empty name and the unknown type.
    fn signature(&mut self, params: &[ParamDie]) -> FuncSig {
        let mut sig = FuncSig::default();
        for param in params {
            let (param, is_result) = match param {
                ParamDie::Own {
                    param, is_result, ..
                } => (param.clone(), *is_result),
                ParamDie::Origin(origin) => match self.abstract_params.get(origin) {
                    Some((param, is_result)) => (param.clone(), *is_result),
                    None => (
                        Param {
                            name: String::new(),
                            ty: self.id_or_unknown(None),
                        },
                        false,
                    ),
                },
            };
            if is_result {
                sig.results.push(param);
            } else {
                sig.params.push(param);
            }
        }
        sig
    }

    /// Records a signature: a concrete subprogram replaces an abstract one of the same name,
    /// otherwise the first one seen stays. `entry`: where its code starts, if known.
    fn add_function(&mut self, name: String, sig: FuncSig, concrete: bool, entry: Option<u64>) {
        if let Some(entry) = entry {
            self.names_by_entry
                .entry(entry)
                .or_insert_with(|| name.clone());
        }
        let keep_old = self
            .functions
            .get(&name)
            .is_some_and(|old| old.concrete || !concrete);
        if !keep_old {
            self.functions.insert(name, FoundFunc { sig, concrete });
        }
    }

    /// Resolves typedef chains and concrete copies of inlined functions, and builds the final
    /// tables.
    fn finish(mut self) -> DwarfInfo {
        for func in std::mem::take(&mut self.instances) {
            let FuncName::Origin(origin) = func.name else {
                continue;
            };
            if let Some(name) = self.abstract_funcs.get(&origin).cloned() {
                let sig = self.signature(&func.params);
                self.add_function(name, sig, func.concrete, func.entry);
            }
        }
        let pending = self.types;
        let resolved: Vec<GoType> = (0..pending.len())
            .map(|i| resolve(&pending, TypeId(i)))
            .collect();
        let types = TypeTable { types: resolved };
        let runtime = runtime_layout(&types);
        DwarfInfo {
            types,
            functions: self
                .functions
                .into_iter()
                .map(|(name, found)| (name, found.sig))
                .collect(),
            names_by_entry: self.names_by_entry,
            globals: self.globals,
            runtime,
        }
    }
}

/// Kind of a `DW_TAG_base_type`, from its Go kind or else its DWARF encoding.
fn base_kind(go_kind: Option<u64>, attrs: &DieAttrs<'_>) -> TypeKind {
    use reflect_kind as k;
    match go_kind {
        Some(k::BOOL) => TypeKind::Bool,
        Some(k::INT..=k::INT64) => TypeKind::Int { signed: true },
        Some(k::UINT..=k::UINT64) => TypeKind::Int { signed: false },
        Some(k::UINTPTR) => TypeKind::Uintptr,
        Some(k::FLOAT32 | k::FLOAT64) => TypeKind::Float,
        Some(k::COMPLEX64 | k::COMPLEX128) => TypeKind::Complex,
        Some(_) => TypeKind::Unknown,
        None => match attrs
            .encoding
            .and_then(|e| u8::try_from(e).ok())
            .map(gimli::DwAte)
        {
            Some(constants::DW_ATE_boolean) => TypeKind::Bool,
            Some(constants::DW_ATE_signed | constants::DW_ATE_signed_char) => {
                TypeKind::Int { signed: true }
            }
            Some(constants::DW_ATE_unsigned | constants::DW_ATE_unsigned_char) => {
                if attrs.name.is_some_and(|n| n.slice() == b"uintptr") {
                    TypeKind::Uintptr
                } else {
                    TypeKind::Int { signed: false }
                }
            }
            Some(constants::DW_ATE_float) => TypeKind::Float,
            Some(constants::DW_ATE_complex_float) => TypeKind::Complex,
            _ => TypeKind::Unknown,
        },
    }
}

/// The final form of one type: typedefs take their size from the end of their chain and
/// their kind from the first DIE in the chain that has one; an interface is empty when its
/// chain ends at `runtime.eface`.
fn resolve(pending: &[Option<PendingType>], id: TypeId) -> GoType {
    let Some(Some(ty)) = pending.get(id.0) else {
        return GoType {
            name: UNKNOWN_TYPE_NAME.to_string(),
            size: 0,
            kind: TypeKind::Unknown,
        };
    };
    let chain = typedef_chain(pending, id);
    let size = chain.iter().find_map(|t| t.size).unwrap_or(0);
    let kind = match chain.iter().find_map(|t| t.kind.as_ref()) {
        Some(TypeKind::Interface { .. }) => TypeKind::Interface {
            empty: chain.last().is_some_and(|t| t.name == "runtime.eface"),
        },
        Some(kind) => kind.clone(),
        None => TypeKind::Unknown,
    };
    GoType {
        name: ty.name.clone(),
        size,
        kind,
    }
}

/// The type and the typedef targets after it, up to the first non-typedef (bounded).
fn typedef_chain(pending: &[Option<PendingType>], id: TypeId) -> Vec<&PendingType> {
    let mut chain = Vec::new();
    let mut next = Some(id);
    while let Some(Some(Some(ty))) = next.map(|id| pending.get(id.0)) {
        chain.push(ty);
        if chain.len() >= MAX_TYPEDEF_CHAIN {
            break;
        }
        next = ty.target;
    }
    chain
}

/// True for the tags of type DIEs, which are read wherever they are (Go puts most below the
/// unit, and the typedefs of a generic function's dictionary parameters below the function).
fn is_type_tag(tag: DwTag) -> bool {
    matches!(
        tag,
        constants::DW_TAG_base_type
            | constants::DW_TAG_pointer_type
            | constants::DW_TAG_structure_type
            | constants::DW_TAG_typedef
            | constants::DW_TAG_array_type
            | constants::DW_TAG_subroutine_type
            | constants::DW_TAG_unspecified_type
    )
}

/// True for the other tags whose DIEs the parser reads, where their parent is one it reads.
fn is_interesting(tag: DwTag) -> bool {
    matches!(
        tag,
        constants::DW_TAG_subrange_type
            | constants::DW_TAG_member
            | constants::DW_TAG_subprogram
            | constants::DW_TAG_formal_parameter
            | constants::DW_TAG_variable
            | constants::DW_TAG_compile_unit
    )
}

/// True for the attributes the parser reads (all others are skipped undecoded).
fn is_wanted(name: DwAt) -> bool {
    matches!(
        name,
        constants::DW_AT_name
            | constants::DW_AT_type
            | constants::DW_AT_byte_size
            | constants::DW_AT_encoding
            | constants::DW_AT_count
            | constants::DW_AT_upper_bound
            | constants::DW_AT_data_member_location
            | constants::DW_AT_variable_parameter
            | constants::DW_AT_location
            | constants::DW_AT_low_pc
            | constants::DW_AT_inline
            | constants::DW_AT_abstract_origin
            | DW_AT_GO_KIND
            | DW_AT_GO_ELEM
            | DW_AT_GO_EMBEDDED_FIELD
    )
}

/// Stores one attribute value in `attrs`.
fn record<'a>(
    dwarf: &gimli::Dwarf<Reader<'a>>,
    header: &gimli::UnitHeader<Reader<'a>>,
    attrs: &mut DieAttrs<'a>,
    name: DwAt,
    value: AttributeValue<Reader<'a>>,
) -> Result<()> {
    match name {
        constants::DW_AT_name => {
            attrs.name = match value {
                AttributeValue::String(s) => Some(s),
                AttributeValue::DebugStrRef(offset) => Some(dwarf.debug_str.get_str(offset)?),
                _ => None,
            }
        }
        constants::DW_AT_type => attrs.ty = reference(header, &value),
        DW_AT_GO_ELEM => attrs.go_elem = reference(header, &value),
        constants::DW_AT_byte_size => attrs.byte_size = value.udata_value(),
        constants::DW_AT_encoding => {
            attrs.encoding = match value {
                AttributeValue::Encoding(e) => Some(u64::from(e.0)),
                other => other.udata_value(),
            }
        }
        constants::DW_AT_count => attrs.count = value.udata_value(),
        constants::DW_AT_upper_bound => attrs.upper_bound = value.udata_value(),
        constants::DW_AT_data_member_location => attrs.member_offset = member_offset(&value),
        constants::DW_AT_variable_parameter => {
            attrs.variable_parameter = matches!(value, AttributeValue::Flag(true))
        }
        constants::DW_AT_location => attrs.location = value.exprloc_value().map(|e| e.0),
        constants::DW_AT_low_pc => {
            attrs.has_low_pc = true;
            if let AttributeValue::Addr(addr) = value {
                attrs.low_pc = Some(addr);
            }
        }
        constants::DW_AT_inline => attrs.is_inline = true,
        constants::DW_AT_abstract_origin => attrs.abstract_origin = reference(header, &value),
        DW_AT_GO_KIND => attrs.go_kind = value.udata_value(),
        DW_AT_GO_EMBEDDED_FIELD => {
            attrs.go_embedded_field = matches!(value, AttributeValue::Flag(true))
        }
        _ => {}
    }
    Ok(())
}

/// A reference attribute as a `.debug_info` offset.
fn reference(
    header: &gimli::UnitHeader<Reader<'_>>,
    value: &AttributeValue<Reader<'_>>,
) -> Option<usize> {
    match *value {
        AttributeValue::UnitRef(offset) => offset.to_debug_info_offset(header).map(|o| o.0),
        AttributeValue::DebugInfoRef(offset) => Some(offset.0),
        _ => None,
    }
}

/// `DW_AT_data_member_location`: a constant, or (old DWARF) `DW_OP_plus_uconst N`.
fn member_offset(value: &AttributeValue<Reader<'_>>) -> Option<u64> {
    if let Some(offset) = value.udata_value() {
        return Some(offset);
    }
    let mut expr = value.exprloc_value()?.0;
    if expr.read_u8().ok()? != constants::DW_OP_plus_uconst.0 {
        return None;
    }
    let offset = expr.read_uleb128().ok()?;
    expr.is_empty().then_some(offset)
}

/// Field offsets of runtime.g and runtime.m, when DWARF describes them.
fn runtime_layout(types: &TypeTable) -> Option<RuntimeLayout> {
    let g = types.find("runtime.g")?;
    let m = types.find("runtime.m")?;
    let stack = field(types, g, "stack")?;
    Some(RuntimeLayout {
        g_goid: field(types, g, "goid")?.offset,
        g_stack_lo: stack
            .offset
            .checked_add(field(types, stack.ty, "lo")?.offset)?,
        g_stack_hi: stack
            .offset
            .checked_add(field(types, stack.ty, "hi")?.offset)?,
        g_m: field(types, g, "m")?.offset,
        m_curg: field(types, m, "curg")?.offset,
        g_atomicstatus: field(types, g, "atomicstatus")?.offset,
        g_waitreason: field(types, g, "waitreason")?.offset,
        source: LayoutSource::Dwarf,
    })
}

/// The field of this name in a struct type.
fn field<'t>(types: &'t TypeTable, id: TypeId, name: &str) -> Option<&'t Field> {
    match &types.get(id).kind {
        TypeKind::Struct { fields } => fields.iter().find(|f| f.name == name),
        _ => None,
    }
}
