//! Decoding `gotrace args` ring-buffer records: the event header, the captured frame and the
//! extra reads, into the function's named values by its call plan.

use std::mem::offset_of;

use crate::gobin::symbols::CallSite;
use crate::gobin::typenames::BinaryTypeNamer;
use crate::gobin::GoBinary;
use crate::output::values::{self, Captured, NamedValue};
use crate::plan::abi::{self, CallPlan};
use crate::plan::{PlannedFunc, ProbePlan};
use crate::session::bpf::shared::types::{args_event, args_read_status, site_kind};

/// One decoded probe hit.
pub struct CallEvent<'p> {
    /// The record's header (its `data` is not copied).
    pub header: &'p args_event,
    pub func: &'p PlannedFunc,
    /// A RET hit (results and duration), not an entry (arguments).
    pub is_ret: bool,
    /// Arguments (entry) or results (RET).
    pub values: Vec<NamedValue<'p>>,
    /// `--global` values, at entry.
    pub globals: Vec<NamedValue<'p>>,
    /// `--stack`, at entry: each caller's call site (with its return address).
    pub callers: Vec<(u64, CallSite<'p>)>,
}

/// Decodes records by the plans of one session.
pub struct Decoder<'p> {
    plan: &'p ProbePlan,
    calls: &'p [CallPlan],
    namer: &'p BinaryTypeNamer<'p, 'p>,
    bin: &'p GoBinary<'p>,
    /// The header of the record being decoded (the struct is too big for the stack).
    header: Box<args_event>,
}

/// Offset of the extra reads' bytes in a record: everything before is the header.
const HEADER_LEN: usize = offset_of!(args_event, data);
/// The captured frame: registers, stack window and globals, contiguous (checked in abi.rs).
const FRAME: std::ops::Range<usize> = offset_of!(args_event, regs)
    ..offset_of!(args_event, regs)
        + (abi::REGS_AREA + abi::STACK_WINDOW + abi::GLOBALS_AREA) as usize;

impl<'p> Decoder<'p> {
    /// A decoder for the functions of `plan` with their call plans `calls`.
    pub fn new(
        plan: &'p ProbePlan,
        calls: &'p [CallPlan],
        namer: &'p BinaryTypeNamer<'p, 'p>,
        bin: &'p GoBinary<'p>,
    ) -> Self {
        Decoder {
            plan,
            calls,
            namer,
            bin,
            header: bytemuck::zeroed_box(),
        }
    }

    /// Decodes one record; None when it is too short or names no planned function.
    pub fn decode<'s>(&'s mut self, bytes: &'s [u8]) -> Option<CallEvent<'s>>
    where
        'p: 's,
    {
        let header = bytes.get(..HEADER_LEN)?;
        bytemuck::bytes_of_mut(&mut *self.header)[..HEADER_LEN].copy_from_slice(header);
        let e: &args_event = &self.header;
        let func = self.plan.funcs.get(e.func_id as usize)?;
        let call = self.calls.get(e.func_id as usize)?;
        let is_ret = e.kind == site_kind::SITE_RET;
        let site = if is_ret { &call.ret } else { &call.entry };
        let data = &bytes[HEADER_LEN..];
        let mut cursor = 0usize;
        let derefs = e
            .deref_len
            .iter()
            .take(site.derefs.len())
            .map(|&len| {
                if len == args_read_status::ARGS_READ_FAILED.0 {
                    return None;
                }
                let piece = data.get(cursor..cursor.checked_add(len as usize)?);
                cursor += len as usize;
                piece
            })
            .collect();
        let captured = Captured {
            frame: bytes.get(FRAME).unwrap_or(&[]),
            derefs,
        };
        self.namer.set_load_bias(e.load_bias);
        let bin = self.bin;
        let callers = e
            .callers
            .iter()
            .take(if is_ret { 0 } else { e.n_callers as usize })
            .map(|&pc| (pc, bin.call_site(pc.wrapping_sub(e.load_bias))))
            .collect();
        Some(CallEvent {
            header: e,
            func,
            is_ret,
            values: values::decode_site(&site.values, &captured, self.namer),
            globals: values::decode_globals(
                &site.global_values,
                e.globals_failed,
                &captured,
                self.namer,
            ),
            callers,
        })
    }
}
