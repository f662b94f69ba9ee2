//! What `args` reads at the probes of inlined calls. Where a call starts: its arguments, where
//! DWARF's inlined formal parameters (`DW_TAG_inlined_subroutine`, [`dwarf_inline`]) put them
//! at the instruction the probe sees, evaluated against the parent's frame (the frame base is
//! the CFA: SP + the pclntab's SP delta there + the return address). Where it ends: the names
//! of its results, unread (`?`), since DWARF locates them nowhere there. A value DWARF does not
//! locate is `?` with the reason, never read from a guessed place.

use crate::bpf_types::{args_reg_slot as slot, inline_role};
use crate::gobin::format::dwarf::{DwarfInfo, FuncSig, Param};
use crate::gobin::format::dwarf_inline::{self, InlinedCallIndex, LocatedPiece, PieceLoc};
use crate::gobin::runtime::generic_dict;
use crate::gobin::{Arch, GoBinary};
use crate::plan::sites::InlineProbe;
use crate::plan::ProbePlan;

use super::{
    located_plan, Loc, LocatedValue, Shape, SitePlan, Sources, ValuePlan, ValueSource, REGS_AREA,
    STACK_WINDOW,
};

/// The capture slot (`enum args_reg_slot`) of DWARF register `reg` on `arch`; Err: why it is
/// not captured.
fn register_slot(arch: Arch, reg: u16) -> Result<u32, String> {
    let amd64 = [
        slot::ARGS_REG_AX,
        slot::ARGS_REG_DX,
        slot::ARGS_REG_CX,
        slot::ARGS_REG_BX,
        slot::ARGS_REG_SI,
        slot::ARGS_REG_DI,
        slot::ARGS_REG_BP,
    ];
    // DWARF's i386 numbering (System V i386 psABI): EAX ECX EDX EBX ESP EBP ESI EDI.
    let i386 = [
        Some(slot::ARGS_REG_AX),
        Some(slot::ARGS_REG_CX),
        Some(slot::ARGS_REG_DX),
        Some(slot::ARGS_REG_BX),
        None,
        Some(slot::ARGS_REG_BP),
        Some(slot::ARGS_REG_SI),
        Some(slot::ARGS_REG_DI),
    ];
    let high = [
        slot::ARGS_REG_R8,
        slot::ARGS_REG_R9,
        slot::ARGS_REG_R10,
        slot::ARGS_REG_R11,
        slot::ARGS_REG_R12,
        slot::ARGS_REG_R13,
        slot::ARGS_REG_R14,
        slot::ARGS_REG_R15,
    ];
    let reg = usize::from(reg);
    // DWARF's x86-64 numbering (System V AMD64 psABI): RAX RDX RCX RBX RSI RDI RBP RSP,
    // R8-R15, then the return address column and XMM0-15 (17-32).
    let found = match arch {
        Arch::Amd64 if reg < 7 => Some(amd64[reg]),
        Arch::Amd64 if (8..16).contains(&reg) => Some(high[reg - 8]),
        Arch::I386 if reg < 8 => i386[reg],
        _ => None,
    };
    match found {
        Some(s) => Ok(s.0),
        None if matches!((arch, reg), (Arch::Amd64, 17..=32) | (Arch::I386, 21..=28)) => {
            Err("in an XMM register, which uprobe programs cannot read".to_owned())
        }
        None => Err(format!(
            "in DWARF register {reg}, which gotrace does not capture"
        )),
    }
}

/// Reads what DWARF says of inlined calls, for one binary.
pub struct InlinedArgs<'a, 'd> {
    bin: &'a GoBinary<'d>,
    dwarf: Option<&'a DwarfInfo>,
    calls: InlinedCallIndex,
    strsize: u32,
}

impl<'a, 'd> InlinedArgs<'a, 'd> {
    /// Reads the binary's DWARF inlined calls (none when it has no DWARF).
    pub fn new(
        bin: &'a GoBinary<'d>,
        dwarf: Option<&'a DwarfInfo>,
        strsize: u32,
    ) -> anyhow::Result<Self> {
        let calls = match dwarf {
            Some(_) => InlinedCallIndex::new(bin.dwarf_inlined()?.unwrap_or_default()),
            None => InlinedCallIndex::default(),
        };
        Ok(InlinedArgs {
            bin,
            dwarf,
            calls,
            strsize,
        })
    }

    /// What a hit of `probe` reads: the arguments at a start, the (unread) results at an end.
    /// `user_sig` is the signature the user wrote for the function, if any.
    pub fn site_plan(&self, probe: &InlineProbe<'_>, user_sig: Option<&FuncSig>) -> SitePlan {
        let instance = probe.instance;
        let call = self.calls.find(
            &instance.parent,
            &probe.func.name,
            instance.call_line,
            &instance.callers,
            &instance.ranges,
        );
        // By the pclntab's name, else by DWARF's name of this call's function (Go 1.18-1.19
        // name a generic function's instantiations alike in the pclntab).
        let sig = self
            .dwarf
            .and_then(|d| {
                d.functions
                    .get(&probe.func.name)
                    .or_else(|| d.functions.get(&call?.func))
            })
            .or(user_sig);
        let Some(sig) = sig else {
            return SitePlan::default();
        };
        // An inlined call has no dictionary argument (its body uses the dictionary the caller
        // knows statically), unless DWARF's inlined call lists one.
        let params: Vec<Param> = sig
            .params
            .iter()
            .filter(|p| {
                p.name != generic_dict::DICT_NAME
                    || call.is_some_and(|c| c.params.iter().any(|q| q.name == p.name))
            })
            .cloned()
            .collect();
        let type_name = |ty| match (self.dwarf, user_sig) {
            (Some(d), _) => d.types.name(ty).to_owned(),
            _ => "?".to_owned(),
        };
        let unread = |params: &[Param], reason: &str| SitePlan {
            values: params
                .iter()
                .map(|p| ValuePlan {
                    name: p.name.clone(),
                    type_name: type_name(p.ty),
                    shape: Shape::Unreadable {
                        reason: reason.to_owned(),
                    },
                })
                .collect(),
            ..SitePlan::default()
        };
        if probe.role == inline_role::INLINE_END {
            return unread(
                &sig.results,
                "an inlined call's results are not read (DWARF locates them nowhere where it ends)",
            );
        }
        let Some(dwarf) = self.dwarf else {
            return unread(
                &params,
                "the binary has no DWARF (stripped), which is what locates an inlined call's arguments",
            );
        };
        let Some(call) = call else {
            return unread(&params, "DWARF does not describe this inlined call");
        };
        let Some(pc) = probe.site.enters else {
            return unread(
                &params,
                "this call's start is probed on the instruction before it, which may change its arguments",
            );
        };
        let values: Vec<LocatedValue> = params
            .iter()
            .map(|param| LocatedValue {
                name: param.name.clone(),
                ty: param.ty,
                source: self.source(call, &param.name, pc, instance.parent_entry),
            })
            .collect();
        located_plan(&values, &dwarf.types, self.bin.elf.arch, self.strsize)
    }

    /// Where the inlined call `call`'s parameter `name` is at `pc` of the parent entered at
    /// `parent_entry`.
    fn source(
        &self,
        call: &dwarf_inline::InlinedSubroutine,
        name: &str,
        pc: u64,
        parent_entry: u64,
    ) -> ValueSource {
        let unreadable = |reason: &str| ValueSource::Unreadable(reason.to_owned());
        let Some(param) = call.params.iter().find(|p| p.name == name && !p.is_result) else {
            return unreadable(
                "DWARF lists no location for it in this inlined call (optimized away)",
            );
        };
        let Some(expr) = param.location.at(pc) else {
            return unreadable("DWARF gives it no location where this call starts");
        };
        let arch = self.bin.elf.arch;
        let pieces = match dwarf_inline::location_pieces(expr, arch.ptr_size() as u8) {
            Ok(pieces) if pieces.is_empty() => {
                return unreadable(
                    "DWARF gives it an empty location where this call starts (optimized away)",
                )
            }
            Ok(pieces) => pieces,
            Err(reason) => return ValueSource::Unreadable(reason),
        };
        // The frame base (CFA) is SP before the parent's call pushed its return address.
        let cfa_from_sp = || -> Result<i64, String> {
            let func = self
                .bin
                .func_at(parent_entry)
                .ok_or("its parent function is not in the pclntab")?;
            let delta = self
                .bin
                .pclntab
                .sp_delta(func, pc)
                .ok()
                .flatten()
                .ok_or("the pclntab gives no SP delta where this call starts")?;
            Ok(delta + arch.ptr_size() as i64)
        };
        let from_sp = |offset: i64| -> Result<u64, String> {
            u64::try_from(cfa_from_sp()? + offset).map_err(|_| "DWARF puts it below SP".to_owned())
        };
        match pieces.as_slice() {
            [LocatedPiece {
                loc: PieceLoc::FrameOffset(offset),
                size: None,
            }] => match from_sp(*offset) {
                Ok(offset) => ValueSource::Stack(offset),
                Err(reason) => ValueSource::Unreadable(reason),
            },
            pieces => {
                let ptr = arch.ptr_size() as u32;
                let locs: Result<Vec<Loc>, String> = pieces
                    .iter()
                    .map(|piece| {
                        let size = piece.size.map_or(Ok(ptr), |s| {
                            u32::try_from(s).map_err(|_| "a piece of it is too large".to_owned())
                        })?;
                        match piece.loc {
                            PieceLoc::Register(reg) => Ok(Loc {
                                offset: register_slot(arch, reg)? * 8,
                                size: size.min(8),
                            }),
                            PieceLoc::FrameOffset(offset) => {
                                let from_sp = from_sp(offset)?;
                                if from_sp + u64::from(size) > u64::from(STACK_WINDOW) {
                                    return Err(format!(
                                        "beyond the {}-byte stack window gotrace copies",
                                        STACK_WINDOW
                                    ));
                                }
                                Ok(Loc {
                                    offset: REGS_AREA + from_sp as u32,
                                    size,
                                })
                            }
                            PieceLoc::Missing => Err("a part of it was optimized away".to_owned()),
                        }
                    })
                    .collect();
                match locs {
                    Ok(locs) => ValueSource::Pieces(locs),
                    Err(reason) => ValueSource::Unreadable(reason),
                }
            }
        }
    }
}

/// One probe of an inlined call, by its index in the `inline_sites` map.
pub struct InlineRead {
    /// The planned function it is a call of.
    pub func_id: u32,
    /// The function the call is inlined into, and the call's `file:line`.
    pub parent: String,
    /// `file:line` of the call.
    pub call_site: String,
    /// Where the call ends (its record is a return), not where it starts.
    pub is_end: bool,
    /// What a hit reads.
    pub plan: SitePlan,
    /// Link-time entry of the parent (the probe's cookie carries its offset from it).
    pub parent_entry: u64,
}

/// What each probe of `plan`'s inlined calls reads, in `inline_sites` order.
pub fn inline_reads(
    sources: &Sources<'_, '_>,
    plan: &ProbePlan,
) -> anyhow::Result<Vec<InlineRead>> {
    if plan.funcs.iter().all(|f| f.instances.is_empty()) {
        return Ok(Vec::new());
    }
    let located = InlinedArgs::new(sources.bin, sources.dwarf, sources.strsize)?;
    Ok(plan
        .inline_probes()
        .map(|probe| {
            let user_sig = sources
                .signatures()
                .written(&probe.func.name)
                .map(|u| &u.sig);
            InlineRead {
                func_id: probe.func.id,
                parent: probe.instance.parent.clone(),
                call_site: probe.instance.call_site.clone(),
                is_end: probe.role == inline_role::INLINE_END,
                plan: located.site_plan(&probe, user_sig),
                parent_entry: probe.instance.parent_entry,
            }
        })
        .collect())
}
