//! Capture planning: what a probe hit copies (registers, a stack window, globals, extra reads)
//! and how each value is decoded from those bytes — plain data the BPF program executes and
//! [`crate::decode`] decodes.
//!
//! - [`assign`]: Go's calling conventions — where each argument and result lives at the entry
//!   and RET probes (register assignment, stack layout), from DWARF types (docs/design.md §6);
//! - [`shape`]: how one value is decoded from the captured frame and the extra reads;
//! - [`encode`]: the BPF side's `struct args_fetch` for a site plan;
//! - [`calls`]: what is read at every kind of site of the planned functions, from written
//!   signatures or DWARF, with `--global`s; [`tail`]: results at tail callees' RETs;
//! - [`inlined`]: what is read at the probes of inlined calls, where DWARF locates the values;
//! - [`deep`]: struct pointers followed into the globals area, within a byte budget.
//!
//! The plan addresses a captured *frame*: the integer registers at [`REGS_AREA`] slots of 8
//! bytes, then a window of the stack starting at SP (the return address) at [`REGS_AREA`],
//! then the globals area. Strings, `[]byte` and error messages are extra reads ([`Deref`]) the
//! BPF side performs.

pub mod assign;
pub mod by_key;
pub mod calls;
pub mod deep;
pub mod encode;
pub mod fields;
pub mod filter;
pub mod inlined;
pub mod path;
pub mod shape;
pub mod tail;

use crate::bpf_types::args_limits as limits;
use crate::bpf_types::{where_kind, where_op};
use crate::gobin::format::dwarf::DwarfInfo;
use crate::gobin::GoBinary;
use crate::plan::signature::{Signatures, UserSignature};

pub use assign::{add_globals, call_plan, located_plan, Abi, LocatedValue, ValueSource};
pub use calls::{
    abi_of, call_plans, fetch_plans, fetch_plans_len, CallPlans, Extra, Reads, SITE_PLANS,
};
pub use inlined::{inline_reads, InlineRead};
pub use shape::{Pointee, PointeeSource, Shape, ValuePlan};

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
/// Field paths chased per probe hit (ARGS_MAX_FIELDS).
pub const MAX_FIELDS: usize = limits::ARGS_MAX_FIELDS.0 as usize;
/// Pointer reads after a chased field path's first pointer (ARGS_MAX_FIELD_STEPS).
pub const MAX_FIELD_STEPS: usize = limits::ARGS_MAX_FIELD_STEPS.0 as usize;
/// Longest single extra read, the upper bound of `--strsize` (ARGS_MAX_READ).
pub const MAX_READ: u32 = limits::ARGS_MAX_READ.0;

/// What reads are planned from.
pub struct Sources<'a, 'd> {
    /// The traced binary.
    pub bin: &'a GoBinary<'d>,
    /// Its DWARF; None when it is stripped.
    pub dwarf: Option<&'a DwarfInfo>,
    /// The signatures the user wrote, which win over DWARF's.
    pub user_sigs: &'a [UserSignature],
    /// Bytes of each string and `[]byte` read at most (--strsize).
    pub strsize: u32,
}

impl Sources<'_, '_> {
    /// Each function's signature: the one the user wrote, else DWARF's.
    pub fn signatures(&self) -> Signatures<'_> {
        Signatures {
            written: self.user_sigs,
            dwarf: self.dwarf,
        }
    }
}

/// A span of the captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Byte offset in the frame.
    pub offset: u32,
    /// Size in bytes (1 to 8).
    pub size: u32,
}

/// What an extra read fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerefKind {
    /// `min(len * scale, max)` bytes at the pointer.
    Counted {
        /// Where the pointer is.
        ptr: Loc,
        /// Where the element count is.
        len: Loc,
        /// Bytes per element.
        scale: u32,
    },
    /// The data word points at a `(ptr, len)` string header (`*errors.errorString`).
    StringHeader {
        /// Where the data word is.
        ptr: Loc,
    },
    /// `max` bytes at the pointer + `offset` (an itab's type word).
    Fixed {
        /// Where the pointer is.
        ptr: Loc,
        /// Bytes from the pointer to the first byte read.
        offset: u32,
    },
}

/// One extra read performed by the BPF program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deref {
    /// Where the pointer (and a length) are in the frame, and how many bytes it reads.
    pub kind: DerefKind,
    /// At most this many bytes.
    pub max: u32,
}

/// Everything read at one kind of probe site (entry or RET).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SitePlan {
    /// How each argument (entry) or result (RET) is decoded, in order.
    pub values: Vec<ValuePlan>,
    /// Where each of `values` starts, for plans of the calling convention (empty otherwise):
    /// field paths into a value start there.
    pub origins: Vec<Origin>,
    /// Bytes of stack to copy from SP.
    pub stack_bytes: u32,
    /// The extra reads, by the index the values' shapes name them with.
    pub derefs: Vec<Deref>,
    /// Globals read at this site (`--global`), decoded by `global_values`.
    pub globals: Vec<GlobalRead>,
    /// How each of `globals` is decoded, in the same order.
    pub global_values: Vec<ValuePlan>,
    /// Field paths read at this site (`--field`, `--where`, `funclat --by`), each decoded by
    /// its own plan; the chased ones are read by `field_reads` into the globals area.
    pub fields: Vec<FieldValue>,
    /// The reads through pointers into the globals area (struct args_field): the chased
    /// `fields`' and the deeper default values' ([`deep`]).
    pub field_reads: Vec<FieldRead>,
    /// `args --where`: the condition a call's entry must satisfy to be shown.
    pub filter: Option<Filter>,
}

/// A `--where` condition as the BPF side decides it (struct args_where): its value an
/// integer of `size` bytes at frame offset `off`, or a string (extra read `deref`, its length
/// at `off`); `field`: the field read it comes through, if chased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The comparison (`==`, `<`, `^=` ...).
    pub op: where_op,
    /// Signed or unsigned integer, or string.
    pub kind: where_kind,
    /// Frame offset of the integer, or of the string's length.
    pub off: u32,
    /// Bytes of the integer.
    pub size: u32,
    /// A string's extra read: the index in `derefs` of its bytes.
    pub deref: u32,
    /// The index in `field_reads` it comes through, when the value is chased (None: in the
    /// frame).
    pub field: Option<u32>,
    /// The integer constant (an unsigned one's bits).
    pub value: i64,
    /// The string constant.
    pub bytes: Vec<u8>,
}

/// Where a value of the calling convention starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Its pieces take the registers from these counts of integer and floating-point
    /// registers on.
    Registers {
        /// Integer registers taken by the values before it.
        ints: usize,
        /// Floating-point registers taken by the values before it.
        floats: usize,
    },
    /// Whole in the stack-argument area, at this byte offset.
    Memory(u64),
    /// Not placed: after a value whose layout is unknown.
    Unplaced,
}

/// A field path's value at one site.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue {
    /// Its decoding plan, named by the expression as written.
    pub value: ValuePlan,
    /// The index of its read in `field_reads`, when it follows pointers (else its value lies
    /// in the frame, where `value` finds it).
    pub read: Option<usize>,
}

/// How the BPF side reaches a field path's value (struct args_field): the pointer in the frame
/// at `base`, then a pointer read at each step's offset, then `size` bytes at `offset` from the
/// last pointer into the globals area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRead {
    /// Where the first pointer is in the frame.
    pub base: Loc,
    /// A slice indexed by a constant: its length's span and the least length the index needs.
    pub base_len: Option<(Loc, u64)>,
    /// The pointer reads after the base, in order.
    pub steps: Vec<FieldStep>,
    /// Bytes from the last pointer to the value.
    pub offset: u64,
    /// Bytes of the value copied.
    pub size: u32,
    /// Offset in the globals area.
    pub area_offset: u32,
    /// What each pointer of the chain is called (the base's first, then each step's), to
    /// name the one that was nil.
    pub names: Vec<String>,
}

/// One pointer read of a [`FieldRead`]: the pointer at `offset` from the current one, and
/// (a slice indexed by a constant) the least length the word after it must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldStep {
    /// Bytes from the current pointer to the next one.
    pub offset: u64,
    /// The least length the word after the next pointer must hold (0: not a slice index).
    pub min_len: u64,
}

/// A global variable's bytes, copied into the frame's globals area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalRead {
    /// Link-time address of the global.
    pub vaddr: u64,
    /// Bytes copied.
    pub size: u32,
    /// Offset in the globals area.
    pub area_offset: u32,
}

/// The arguments (at entry) and results (at each RET) of one function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallPlan {
    /// What the entry probe reads: the arguments.
    pub entry: SitePlan,
    /// What each RET probe reads: the results.
    pub ret: SitePlan,
}
