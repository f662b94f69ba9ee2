//! Decoding capture records (`struct args_event`, which `gotrace args` streams and `gotrace
//! graph --args` appends to its own records): the event header, the captured frame and the
//! extra reads, into the function's named values by its capture plan ([`crate::plan::capture`]).
//! Every command that reads values decodes them here; [`crate::output::values`] renders them.

pub mod values;

use std::mem::offset_of;

use crate::bpf_types::{args_event, args_read_status, site_kind};
use crate::gobin::format::symbols::CallSite;
use crate::gobin::runtime::typenames::BinaryTypeNamer;
use crate::gobin::GoBinary;
use crate::output::values::NamedValue;
use crate::plan::capture::{self, InlineRead, Reads, SITE_PLANS};
use crate::plan::{PlannedFunc, ProbePlan};
use values::Captured;

/// One decoded probe hit.
pub struct CallEvent<'p> {
    /// The record's header (its `data` is not copied).
    pub header: &'p args_event,
    /// The planned function the record names (its header's `func_id`).
    pub func: &'p PlannedFunc,
    /// A RET hit (results and duration), not an entry (arguments).
    pub is_ret: bool,
    /// The probe of an inlined call that made the record (None: the function's own code).
    pub inlined: Option<&'p InlineRead>,
    /// Arguments (entry) or results (RET).
    pub values: Vec<NamedValue>,
    /// `--global` values, at entry.
    pub globals: Vec<NamedValue>,
    /// `--field` values, at entry.
    pub fields: Vec<NamedValue>,
    /// `--stack`, at entry: each caller's call site (with its return address).
    pub callers: Vec<(u64, CallSite<'p>)>,
}

/// Decodes records by the plans of one session.
pub struct Decoder<'p> {
    plan: &'p ProbePlan,
    calls: &'p [Reads],
    inline: &'p [InlineRead],
    namer: &'p BinaryTypeNamer<'p, 'p>,
    bin: &'p GoBinary<'p>,
    headers: Headers,
}

/// The only way to a record's header: a record that cannot be decoded is counted here, so
/// none is dropped silently.
struct Headers {
    /// Functions with a plan (a valid record's `func_id` is below).
    funcs: usize,
    /// The planned function of each inlined-call probe (a valid SITE_INLINE record names one
    /// of them, and its function).
    inline_funcs: Vec<u32>,
    /// The header of the record being decoded (the struct is too big for the stack).
    header: Box<args_event>,
    /// Records not decoded: shorter than the header, or naming no planned function or no
    /// site kind of ours.
    malformed: u64,
}

impl Headers {
    fn new(funcs: usize, inline_funcs: Vec<u32>) -> Self {
        Headers {
            funcs,
            inline_funcs,
            header: bytemuck::zeroed_box(),
            malformed: 0,
        }
    }

    /// The header of `record`, or None (counted) when the record is malformed.
    fn read(&mut self, record: &[u8]) -> Option<&args_event> {
        let Some(bytes) = record.get(..HEADER_LEN) else {
            self.malformed += 1;
            return None;
        };
        bytemuck::bytes_of_mut(&mut *self.header)[..HEADER_LEN].copy_from_slice(bytes);
        let e = &*self.header;
        let kind_known = SITE_PLANS.iter().any(|&(kind, _)| kind == e.kind)
            || (e.kind == site_kind::SITE_INLINE
                && self.inline_funcs.get(e.inline_site as usize) == Some(&e.func_id));
        if (e.func_id as usize) < self.funcs && kind_known {
            Some(e)
        } else {
            self.malformed += 1;
            None
        }
    }
}

/// Offset of the extra reads' bytes in a record: everything before is the header.
const HEADER_LEN: usize = offset_of!(args_event, data);
/// The captured frame: registers, stack window and globals, contiguous (checked in plan/capture/encode.rs).
const FRAME: std::ops::Range<usize> = offset_of!(args_event, regs)
    ..offset_of!(args_event, regs)
        + (capture::REGS_AREA + capture::STACK_WINDOW + capture::GLOBALS_AREA) as usize;

impl<'p> Decoder<'p> {
    /// A decoder for the functions of `plan` with what is read at their sites, `calls`, and
    /// at the probes of their inlined calls, `inline`.
    pub fn new(
        plan: &'p ProbePlan,
        calls: &'p [Reads],
        inline: &'p [InlineRead],
        namer: &'p BinaryTypeNamer<'p, 'p>,
        bin: &'p GoBinary<'p>,
    ) -> Self {
        Decoder {
            plan,
            calls,
            inline,
            namer,
            bin,
            headers: Headers::new(
                plan.funcs.len().min(calls.len()),
                inline.iter().map(|read| read.func_id).collect(),
            ),
        }
    }

    /// Records that could not be decoded so far (see [`Decoder::decode`]).
    pub fn malformed(&self) -> u64 {
        self.headers.malformed
    }

    /// Decodes one record; None, counted in [`Decoder::malformed`], when it is shorter than
    /// its header or names no planned function or no site kind.
    pub fn decode<'s>(&'s mut self, bytes: &'s [u8]) -> Option<CallEvent<'s>>
    where
        'p: 's,
    {
        let e = self.headers.read(bytes)?;
        let func = &self.plan.funcs[e.func_id as usize];
        let call = &self.calls[e.func_id as usize];
        let inlined =
            (e.kind == site_kind::SITE_INLINE).then(|| &self.inline[e.inline_site as usize]);
        let (is_ret, site) = match inlined {
            Some(read) => (read.is_end, &read.plan),
            None => (e.kind != site_kind::SITE_ENTRY, call.site(e.kind)),
        };
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
            field_status: &e.field_status,
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
            inlined,
            values: values::decode_site(&site.values, &captured, self.namer),
            globals: values::decode_globals(
                &site.global_values,
                e.globals_failed,
                &captured,
                self.namer,
            ),
            fields: values::decode_fields(
                &site.fields,
                &site.field_reads,
                &e.field_status,
                &captured,
                self.namer,
            ),
            callers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first `HEADER_LEN` bytes of a record of function `func_id`, kind `kind`.
    fn record(func_id: u32, kind: site_kind) -> Vec<u8> {
        let mut e: Box<args_event> = bytemuck::zeroed_box();
        e.func_id = func_id;
        e.kind = kind;
        bytemuck::bytes_of(&*e)[..HEADER_LEN].to_vec()
    }

    #[test]
    fn every_malformed_record_is_counted() {
        let mut headers = Headers::new(2, vec![1]);
        let valid = record(1, site_kind::SITE_RET);
        assert!(headers.read(&valid).is_some());
        assert!(headers.read(&record(0, site_kind::SITE_ENTRY)).is_some());
        assert_eq!(headers.malformed, 0);

        assert!(headers.read(&valid[..HEADER_LEN - 1]).is_none(), "short");
        assert!(headers.read(&[]).is_none(), "empty");
        assert!(
            headers.read(&record(2, site_kind::SITE_ENTRY)).is_none(),
            "no function"
        );
        assert!(headers
            .read(&record(u32::MAX, site_kind::SITE_RET))
            .is_none());
        assert!(headers.read(&record(1, site_kind::SITE_TAIL_RET)).is_some());
        // A site kind the BPF program never sends to user space.
        let taken_check = site_kind::SITE_ENTRY_IF_NOT_TAKEN;
        assert!(headers.read(&record(0, taken_check)).is_none(), "kind");
        assert_eq!(headers.malformed, 5);

        // A valid record after them is still decoded, with the header it carries.
        let e = headers.read(&valid).expect("valid record");
        assert_eq!((e.func_id, e.kind), (1, site_kind::SITE_RET));
        assert_eq!(headers.malformed, 5);
    }
}
