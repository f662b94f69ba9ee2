//! The BPF side's `struct args_fetch` (src/bpf/gotrace.h) for a site plan; the frame layout
//! the plans address is checked against `struct args_event` at compile time.

use std::mem::offset_of;

use crate::bpf_types::{args_deref, args_event, args_fetch, args_field, args_where, deref_kind};

use super::{
    DerefKind, FieldRead, Filter, SitePlan, GLOBALS_AREA, MAX_DEREFS, MAX_FIELDS, MAX_GLOBALS,
    REGS_AREA, STACK_WINDOW,
};

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
    std::mem::size_of::<[args_deref; MAX_DEREFS]>()
        == offset_of!(args_fetch, n_globals) - offset_of!(args_fetch, derefs)
);
const _: () = assert!(
    std::mem::size_of::<[args_field; MAX_FIELDS]>()
        == offset_of!(args_fetch, filter) - offset_of!(args_fetch, fields)
);
const _: () = assert!(REGS_AREA + STACK_WINDOW + GLOBALS_AREA <= u16::MAX as u32);

impl SitePlan {
    /// The BPF side's `struct args_fetch` for this site plan of the function whose link-time
    /// entry is `func_vaddr`.
    pub fn to_bpf(&self, func_vaddr: u64) -> args_fetch {
        let mut fetch = args_fetch {
            func_vaddr,
            stack_bytes: self.stack_bytes,
            n_derefs: self.derefs.len().min(MAX_DEREFS) as u32,
            n_globals: self.globals.len().min(MAX_GLOBALS) as u32,
            n_fields: self.field_reads.len().min(MAX_FIELDS) as u32,
            ..Default::default()
        };
        for (slot, global) in fetch.globals.iter_mut().zip(&self.globals) {
            slot.vaddr = global.vaddr;
            slot.size = global.size;
            slot.area_off = global.area_offset;
        }
        for (slot, read) in fetch.fields.iter_mut().zip(&self.field_reads) {
            *slot = read.to_bpf();
        }
        if let Some(filter) = &self.filter {
            fetch.filter = filter.to_bpf();
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

impl FieldRead {
    /// The BPF side's `struct args_field` (offsets within the frame fit u16, checked above;
    /// a step's offset within a Go struct fits u32).
    fn to_bpf(&self) -> args_field {
        let mut field = args_field {
            base_off: self.base.offset as u16,
            base_len_off: self.base_len.map_or(0, |(loc, _)| loc.offset as u16),
            base_min_len: self.base_len.map_or(0, |(_, min)| min as u32),
            n_steps: self.steps.len() as u32,
            offset: self.offset as u32,
            size: self.size,
            area_off: self.area_offset,
            ..Default::default()
        };
        for (slot, step) in field.steps.iter_mut().zip(&self.steps) {
            slot.offset = step.offset as u32;
            slot.min_len = step.min_len as u32;
        }
        field
    }
}

impl Filter {
    /// The BPF side's `struct args_where` (a string constant is shorter than its bytes,
    /// checked when parsed).
    fn to_bpf(&self) -> args_where {
        let mut w = args_where {
            op: self.op,
            kind: self.kind,
            off: self.off,
            size: self.size,
            deref: self.deref,
            chased: u32::from(self.field.is_some()),
            field: self.field.unwrap_or(0),
            value: self.value,
            ..Default::default()
        };
        let n = self.bytes.len().min(w.bytes.len());
        w.bytes[..n].copy_from_slice(&self.bytes[..n]);
        w.len = n as u32;
        w
    }
}
