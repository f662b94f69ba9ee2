//! Instruction decoding of one function: its RET sites, its entry probe sites and its tail
//! calls, each site with the kernel's class for it ([`SiteClass`]).
//!
//! A function's bytes are decoded linearly from its entry to its end (docs/design.md §2
//! and §3): with iced-x86 for amd64 (64-bit mode) and 386 (32-bit mode), as fixed 4-byte words
//! for arm64. Raw bytes are never searched for a RET opcode: a probe inside an instruction
//! corrupts the target.
//!
//! The entry probe goes after Go's stack-check prologue, because `runtime.morestack` re-runs a
//! function from its first byte after growing the stack. A prologue branch is recognised by
//! what it jumps to, not by its exact shape: a conditional branch among the function's first
//! instructions (register loads, compares and subtractions only) whose target block, decoded
//! straight-line, makes exactly one direct call (to morestack) and then jumps back to the
//! entry. The entry probe is the instruction after the last such branch (huge frames have two).
//!
//! That probe is single-stepped by the kernel on Go < 1.21 amd64 and on 386 (`SUBQ`/`SUBL`). The
//! last stack-check branch itself, a `JBE` (Go's `JLS`), is emulated: probed there with the
//! hit counted only when the branch is not taken ([`EntryCheck::NotTakenJbe`]), it fires once
//! per call, because the morestack block jumps back to the entry, before the branch, which then
//! runs again. [`DecodedFunction::entry`] is the cheapest exact entry site of the two.

use anyhow::{anyhow, bail, Result};
use iced_x86::{
    Decoder, DecoderError, DecoderOptions, Instruction, MemorySize, Mnemonic, OpKind, Register,
};

use super::site_class::{site_class, SiteClass};
use crate::gobin::Arch;

/// What decoding one function found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFunction {
    /// Vaddr of the unconditional entry probe site: the first instruction after the
    /// stack-check prologue (so the probe fires once per call even when morestack re-runs the
    /// function); the entry itself when the function has no stack check (NOSPLIT / frameless).
    pub entry_probe: u64,
    /// The instruction at `entry_probe`.
    pub entry_probe_insn: ProbeInsn,
    /// The cheapest exact entry site: `entry_probe` when the kernel emulates it or when there
    /// is no usable stack-check branch, else the stack check's `JBE`, whose hits count only
    /// when it is not taken (`check`). A probe here must apply `check`.
    pub entry: EntrySite,
    /// Vaddr of every return instruction, in address order (empty: the function has no RET;
    /// the caller reports it, it is never guessed).
    pub ret_sites: Vec<u64>,
    /// The class of each RET site, in the order of `ret_sites` (x86: always single-step).
    pub ret_classes: Vec<SiteClass>,
    /// Direct jumps out of the function (tail calls), in address order.
    pub tail_calls: Vec<TailCall>,
}

/// The instruction a probe sits on, as far as uprobe delivery cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeInsn {
    /// Whether the kernel emulates or single-steps it.
    pub class: SiteClass,
    /// Length in bytes.
    pub len: u8,
}

/// An entry probe site and the condition its hits count under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySite {
    /// Vaddr of the probed instruction.
    pub addr: u64,
    /// The instruction there.
    pub insn: ProbeInsn,
    /// Which hits are calls.
    pub check: EntryCheck,
}

/// Which hits of an entry probe are calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryCheck {
    /// Every hit.
    None,
    /// The site is the stack check's `JBE`: a hit is a call only when the branch is not
    /// taken, that is when CF and ZF are both clear in the flags at the probe.
    NotTakenJbe,
}

impl EntrySite {
    /// What the site costs and how it counts: `emulated`, `single-step` or `flag-checked`
    /// (an emulated `JBE` counted when not taken).
    pub fn class_name(&self) -> &'static str {
        match self.check {
            EntryCheck::NotTakenJbe => "flag-checked",
            EntryCheck::None => self.insn.class.name(),
        }
    }
}

/// A direct jump from inside a function to an address outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailCall {
    /// Vaddr of the jump.
    pub site: u64,
    /// Where it jumps: another function's entry in Go code (the caller checks).
    pub target: u64,
}

/// Decodes the function whose bytes are `code`, mapped at vaddr `entry`. `code` is the whole
/// range pclntab gives, [entry, end); trailing INT3 padding (amd64/386) or zero words (arm64)
/// are harmless. An undecodable instruction is an error naming its address.
pub fn decode_function(arch: Arch, code: &[u8], entry: u64) -> Result<DecodedFunction> {
    if code.is_empty() {
        bail!("function at {entry:#x} has no code");
    }
    match arch {
        Arch::Amd64 => decode_x86(64, code, entry),
        Arch::I386 => decode_x86(32, code, entry),
        Arch::Arm64 => decode_arm64(code, entry),
    }
}

/// At most this many instructions from the entry are searched for the stack check. The longest
/// shape (Go < 1.17 huge frames) has 8.
const MAX_PROLOGUE_INSNS: usize = 16;

/// At most this many instructions are decoded from a prologue branch's target. A morestack
/// block spills and reloads every argument register around its call (amd64: 9 integer and
/// 15 float registers).
const MAX_MORESTACK_BLOCK_INSNS: usize = 128;

/// One decoded instruction, reduced to what probe placement needs.
#[derive(Debug, Clone, Copy)]
struct Insn {
    addr: u64,
    len: u8,
    flow: Flow,
    /// A register-only move, load, compare or subtraction: something a stack-check prologue is
    /// made of (conditional branches are judged by their target instead).
    stack_check_like: bool,
    /// The kernel's class for a probe here, judged only where [`decode_with`] may place one:
    /// RETs and a stream's first [`MAX_PROLOGUE_INSNS`] + 1 instructions (the entry probe and
    /// the stack check). Most instructions are neither; judging them cost a tenth of `list`.
    class: Option<SiteClass>,
    /// What an entry probe on this instruction must check, were it the last stack-check
    /// branch: [`EntryCheck::NotTakenJbe`] for an x86 `JBE` reached with the stack pointer
    /// unchanged since the stream's start, else [`EntryCheck::None`] (not usable).
    check: EntryCheck,
}

/// Control flow of one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Falls through to the next instruction.
    Next,
    /// A near return: a RET site.
    Ret,
    /// A direct conditional branch to the given vaddr.
    CondBranch(u64),
    /// A direct call to the given vaddr.
    Call(u64),
    /// A direct unconditional jump to the given vaddr.
    Jump(u64),
    /// Anything else that leaves the straight line: indirect jumps and calls, traps,
    /// far returns.
    Other,
}

/// A forward stream of decoded instructions.
trait InsnStream {
    /// The next instruction, `None` at the end of the code, or an error for undecodable bytes.
    fn next_insn(&mut self) -> Option<Result<Insn>>;

    /// Adds the rest of the stream to `body`; an error for undecodable bytes. A stream may
    /// skip, past the prologue, what [`Body::add`] ignores (most instructions: x86 does).
    fn scan_body(&mut self, body: &mut Body) -> Result<()> {
        while let Some(insn) = self.next_insn() {
            body.add(&insn?);
        }
        Ok(())
    }
}

/// What a function's instructions say beyond its prologue: its RET sites, its tail calls and
/// the lowest branch target inside it.
struct Body {
    entry: u64,
    end: u64,
    ret_sites: Vec<u64>,
    ret_classes: Vec<SiteClass>,
    tail_calls: Vec<TailCall>,
    /// The lowest branch target past the entry: a branch back into the prologue would make
    /// a probe on the stack check fire twice for one call.
    lowest_inner_target: u64,
}

impl Body {
    /// Adds one instruction.
    fn add(&mut self, insn: &Insn) {
        match insn.flow {
            Flow::Ret => self.ret(insn.addr, insn.class()),
            Flow::Jump(target) => self.jump(insn.addr, target),
            Flow::CondBranch(target) => self.cond_branch(target),
            Flow::Next | Flow::Call(_) | Flow::Other => {}
        }
    }

    /// A RET at `addr`, of class `class`.
    fn ret(&mut self, addr: u64, class: SiteClass) {
        self.ret_sites.push(addr);
        self.ret_classes.push(class);
    }

    /// A direct jump at `site` to `target`: a tail call when it leaves the function.
    fn jump(&mut self, site: u64, target: u64) {
        if target < self.entry || target >= self.end {
            self.tail_calls.push(TailCall { site, target });
        } else {
            self.cond_branch(target);
        }
    }

    /// A direct conditional branch (or an inner jump) to `target`.
    fn cond_branch(&mut self, target: u64) {
        if target > self.entry {
            self.lowest_inner_target = self.lowest_inner_target.min(target);
        }
    }
}

/// Decodes the function [entry, end) with the instruction streams `stream_at(vaddr)` builds.
fn decode_with<S: InsnStream>(
    entry: u64,
    end: u64,
    mut stream_at: impl FnMut(u64) -> Option<S>,
) -> Result<DecodedFunction> {
    let mut stream = stream_at(entry).ok_or_else(|| anyhow!("no code at {entry:#x}"))?;
    let mut entry_probe = None;
    let mut check_branch: Option<Insn> = None;
    let mut probe_follows = true;
    let mut in_prologue = true;
    let mut body = Body {
        entry,
        end,
        ret_sites: Vec::new(),
        ret_classes: Vec::new(),
        tail_calls: Vec::new(),
        lowest_inner_target: u64::MAX,
    };
    let mut index = 0;
    // The prologue and the entry probe instruction after it, in full; the rest (nearly all
    // of a function) through the stream's scan for what the body holds.
    while in_prologue || probe_follows {
        let Some(insn) = stream.next_insn() else {
            break;
        };
        let insn = insn?;
        if probe_follows {
            entry_probe = Some((insn.addr, insn.probe_insn()));
            probe_follows = false;
        }
        if in_prologue {
            in_prologue = index < MAX_PROLOGUE_INSNS
                && match insn.flow {
                    Flow::CondBranch(target) => {
                        probe_follows =
                            stream_at(target).is_some_and(|block| is_morestack_block(block, entry));
                        if probe_follows {
                            check_branch = Some(insn);
                        }
                        true
                    }
                    _ => insn.stack_check_like,
                };
        }
        body.add(&insn);
        index += 1;
    }
    stream.scan_body(&mut body)?;
    if probe_follows {
        bail!("function at {entry:#x} ends right after its stack check");
    }
    let (addr, insn) =
        entry_probe.ok_or_else(|| anyhow!("function at {entry:#x} has no instruction"))?;
    let after_check = EntrySite {
        addr,
        insn,
        check: EntryCheck::None,
    };
    let entry_site = match check_branch {
        Some(branch)
            if insn.class == SiteClass::SingleStep
                && branch.class() == SiteClass::Emulated
                && branch.check != EntryCheck::None
                && branch.addr < body.lowest_inner_target =>
        {
            EntrySite {
                addr: branch.addr,
                insn: branch.probe_insn(),
                check: branch.check,
            }
        }
        _ => after_check,
    };
    Ok(DecodedFunction {
        entry_probe: addr,
        entry_probe_insn: insn,
        entry: entry_site,
        ret_sites: body.ret_sites,
        ret_classes: body.ret_classes,
        tail_calls: body.tail_calls,
    })
}

/// Whether `block` is Go's morestack block: straight-line code with exactly one direct call,
/// ending in a jump back to `entry`. (A panic block falling through into the morestack block
/// makes a second call first, so it does not count.)
fn is_morestack_block(mut block: impl InsnStream, entry: u64) -> bool {
    let mut calls = 0;
    for _ in 0..MAX_MORESTACK_BLOCK_INSNS {
        match block.next_insn() {
            Some(Ok(insn)) => match insn.flow {
                Flow::Next => {}
                Flow::Call(_) if calls == 0 => calls = 1,
                Flow::Jump(target) => return calls == 1 && target == entry,
                _ => return false,
            },
            _ => return false,
        }
    }
    false
}

impl Insn {
    /// The class of a probe here (single-step, the costlier, where it was not judged).
    fn class(&self) -> SiteClass {
        self.class.unwrap_or(SiteClass::SingleStep)
    }

    /// What the entry probe needs to know of this instruction.
    fn probe_insn(&self) -> ProbeInsn {
        ProbeInsn {
            class: self.class(),
            len: self.len,
        }
    }
}

/// The code from `addr` on, when `addr` lies inside the function.
fn code_from(code: &[u8], entry: u64, addr: u64) -> Option<&[u8]> {
    let offset = usize::try_from(addr.checked_sub(entry)?).ok()?;
    code.get(offset..).filter(|rest| !rest.is_empty())
}

/// amd64 (`bitness` 64) or 386 (32) with iced-x86.
fn decode_x86(bitness: u32, code: &[u8], entry: u64) -> Result<DecodedFunction> {
    decode_with(entry, end_of(code, entry), |addr| {
        x86_stream(bitness, code, entry, addr)
    })
}

/// The x86 instructions of the function at `entry` from `addr` on.
fn x86_stream(bitness: u32, code: &[u8], entry: u64, addr: u64) -> Option<X86Stream<'_>> {
    let arch = if bitness == 64 {
        Arch::Amd64
    } else {
        Arch::I386
    };
    let rest = code_from(code, entry, addr)?;
    let decoder = Decoder::try_with_ip(bitness, rest, addr, DecoderOptions::NONE).ok()?;
    Some(X86Stream {
        decoder,
        insn: Instruction::default(),
        arch,
        code: rest,
        start: addr,
        entry,
        failed: false,
        sp_written: false,
        decoded: 0,
    })
}

/// The vaddr just past the function.
fn end_of(code: &[u8], entry: u64) -> u64 {
    entry.saturating_add(code.len() as u64)
}

/// iced-x86 decoding, one reused `Instruction`.
struct X86Stream<'a> {
    decoder: Decoder<'a>,
    insn: Instruction,
    arch: Arch,
    /// The bytes decoded, from vaddr `start` on.
    code: &'a [u8],
    start: u64,
    entry: u64,
    /// An undecodable instruction was met: what follows is not aligned to instructions.
    failed: bool,
    /// An instruction of this stream wrote the stack pointer.
    sp_written: bool,
    /// Instructions decoded so far.
    decoded: usize,
}

impl InsnStream for X86Stream<'_> {
    fn next_insn(&mut self) -> Option<Result<Insn>> {
        if self.failed || !self.decoder.can_decode() {
            return None;
        }
        self.decoder.decode_out(&mut self.insn);
        if self.insn.is_invalid() {
            return Some(Err(self.undecodable()));
        }
        let insn = &self.insn;
        let flow = x86_flow(insn);
        let op0_is_register = insn.op0_kind() == OpKind::Register;
        let stack_check_like = match insn.mnemonic() {
            Mnemonic::Mov | Mnemonic::Lea | Mnemonic::Sub => op0_is_register,
            Mnemonic::Cmp | Mnemonic::Nop => true,
            _ => false,
        };
        let check = if insn.mnemonic() == Mnemonic::Jbe && !self.sp_written {
            EntryCheck::NotTakenJbe
        } else {
            EntryCheck::None
        };
        self.sp_written |= match insn.mnemonic() {
            Mnemonic::Push | Mnemonic::Pop | Mnemonic::Call => true,
            Mnemonic::Cmp | Mnemonic::Test => false,
            _ => {
                op0_is_register
                    && matches!(
                        insn.op0_register(),
                        Register::RSP | Register::ESP | Register::SP | Register::SPL
                    )
            }
        };
        let judged = flow == Flow::Ret || self.decoded <= MAX_PROLOGUE_INSNS;
        self.decoded += 1;
        Some(Ok(Insn {
            addr: insn.ip(),
            // An x86 instruction is at most 15 bytes.
            len: insn.len() as u8,
            flow,
            stack_check_like,
            class: judged.then(|| self.class()),
            check,
        }))
    }

    /// Decodes the rest looking at branches and RETs only (a few instructions of work for
    /// each of the others: this loop is most of `list`'s time).
    fn scan_body(&mut self, body: &mut Body) -> Result<()> {
        if self.failed {
            return Ok(());
        }
        while self.decoder.can_decode() {
            self.decoder.decode_out(&mut self.insn);
            let insn = &self.insn;
            match insn.op0_kind() {
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                    // As `x86_flow`: a direct CALL is neither, every other direct branch
                    // but JMP is conditional.
                    let (site, target) = (insn.ip(), insn.near_branch_target());
                    match insn.mnemonic() {
                        Mnemonic::Call => {}
                        Mnemonic::Jmp => body.jump(site, target),
                        _ => body.cond_branch(target),
                    }
                }
                _ if insn.mnemonic() == Mnemonic::Ret => body.ret(insn.ip(), self.class()),
                _ if insn.is_invalid() => return Err(self.undecodable()),
                _ => {}
            }
        }
        Ok(())
    }
}

impl X86Stream<'_> {
    /// The kernel's class for a probe on the instruction just decoded.
    fn class(&self) -> SiteClass {
        // The decoder read these bytes from `code` (empty only if that were not so).
        let offset = self.insn.ip().wrapping_sub(self.start) as usize;
        let bytes = self
            .code
            .get(offset..offset.saturating_add(self.insn.len()))
            .unwrap_or_default();
        site_class(self.arch, bytes)
    }

    /// The error for the undecodable instruction just met; the stream ends there (what
    /// follows is not aligned to instructions).
    #[cold]
    fn undecodable(&mut self) -> anyhow::Error {
        self.failed = true;
        let why = match self.decoder.last_error() {
            DecoderError::NoMoreBytes => "cut off by the function's end",
            _ => "invalid encoding",
        };
        anyhow!(
            "undecodable instruction at {:#x} ({why}) in function at {:#x}",
            self.insn.ip(),
            self.entry
        )
    }
}

/// Control flow of an x86 instruction, from its mnemonic and whether its operand is a direct
/// near branch target (iced's own flow-control tables need a feature this crate leaves off).
fn x86_flow(insn: &Instruction) -> Flow {
    let direct = matches!(
        insn.op0_kind(),
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
    );
    match insn.mnemonic() {
        Mnemonic::Ret => Flow::Ret,
        Mnemonic::Call if direct => Flow::Call(insn.near_branch_target()),
        Mnemonic::Jmp if direct => Flow::Jump(insn.near_branch_target()),
        // Jcc, JRCXZ, LOOP, XBEGIN: the only other instructions with a near branch target.
        _ if direct => Flow::CondBranch(insn.near_branch_target()),
        Mnemonic::Call
        | Mnemonic::Jmp
        | Mnemonic::Retf
        | Mnemonic::Iret
        | Mnemonic::Iretd
        | Mnemonic::Iretq
        | Mnemonic::Int3
        | Mnemonic::Int
        | Mnemonic::Int1
        | Mnemonic::Into
        | Mnemonic::Ud0
        | Mnemonic::Ud1
        | Mnemonic::Ud2
        | Mnemonic::Hlt
        | Mnemonic::Syscall
        | Mnemonic::Sysenter
        | Mnemonic::Sysexit
        | Mnemonic::Sysret => Flow::Other,
        _ => Flow::Next,
    }
}

/// arm64: the function must be whole, aligned 4-byte words.
fn decode_arm64(code: &[u8], entry: u64) -> Result<DecodedFunction> {
    if entry % 4 != 0 || code.len() % 4 != 0 {
        bail!(
            "arm64 function at {entry:#x} ({} bytes) is not made of aligned 4-byte words",
            code.len()
        );
    }
    decode_with(entry, end_of(code, entry), |addr| {
        arm64_stream(code, entry, addr)
    })
}

/// The arm64 instructions of the function at `entry` from `addr` on.
fn arm64_stream(code: &[u8], entry: u64, addr: u64) -> Option<Arm64Stream<'_>> {
    Some(Arm64Stream {
        words: code_from(code, entry, addr)?.chunks_exact(4),
        addr,
    })
}

/// The target of every direct call in the function at `entry` (`code` as for
/// [`decode_function`]), in address order, up to the first undecodable instruction.
pub fn direct_call_targets(arch: Arch, code: &[u8], entry: u64) -> Vec<u64> {
    fn targets(mut stream: impl InsnStream) -> Vec<u64> {
        std::iter::from_fn(|| stream.next_insn()?.ok())
            .filter_map(|insn| match insn.flow {
                Flow::Call(target) => Some(target),
                _ => None,
            })
            .collect()
    }
    match arch {
        Arch::Amd64 => x86_stream(64, code, entry, entry).map(targets),
        Arch::I386 => x86_stream(32, code, entry, entry).map(targets),
        Arch::Arm64 => arm64_stream(code, entry, entry).map(targets),
    }
    .unwrap_or_default()
}

/// The link-time address of every pointer-sized global the function at `entry` (`code` as for
/// [`decode_function`]) loads, stores or compares by its absolute address (amd64: RIP-relative;
/// 386: a displacement with no base or index register), in address order, up to the first
/// undecodable instruction; `LEA`s (an address taken, not a word read) are left out. None on
/// arm64 (its globals are reached by ADRP pairs, not followed).
pub fn global_words(arch: Arch, code: &[u8], entry: u64) -> Option<Vec<u64>> {
    let (bitness, pointer) = match arch {
        Arch::Amd64 => (64, MemorySize::UInt64),
        Arch::I386 => (32, MemorySize::UInt32),
        Arch::Arm64 => return None,
    };
    let mut decoder = Decoder::try_with_ip(bitness, code, entry, DecoderOptions::NONE).ok()?;
    let insns = std::iter::from_fn(move || {
        decoder
            .can_decode()
            .then(|| decoder.decode())
            .filter(|insn| !insn.is_invalid())
    });
    Some(
        insns
            .filter(|insn| insn.mnemonic() != Mnemonic::Lea)
            .filter(|insn| (0..insn.op_count()).any(|i| insn.op_kind(i) == OpKind::Memory))
            .filter(|insn| insn.memory_size() == pointer && insn.memory_index() == Register::None)
            .filter_map(|insn| match insn.memory_base() {
                Register::RIP | Register::EIP => Some(insn.ip_rel_memory_address()),
                Register::None if bitness == 32 => Some(insn.memory_displacement64()),
                _ => None,
            })
            .collect(),
    )
}

/// How a go-statement wrapper reaches the function it calls through its closure context
/// (DX, on amd64 and 386): its one indirect `CALL R`, where R was loaded as
/// `*(*(DX + closure_offset) + target_offset)`. A captured funcval (a function literal or a
/// func value) has `target_offset` 0; a captured interface's itab has the method's `fun` slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClosureCall {
    /// The captured word's offset in the wrapper's closure.
    pub closure_offset: u32,
    /// The code pointer's offset in what that word points at.
    pub target_offset: u32,
}

/// The largest load offset [`closure_call`] follows (a negative displacement is no closure's).
const MAX_CLOSURE_OFFSET: u32 = 1 << 16;

/// What a register holds, as far as [`closure_call`] follows it.
#[derive(Clone, Copy)]
enum Loaded {
    /// The closure's word at this offset.
    Word(u32),
    /// A code pointer reached from the closure.
    Code(ClosureCall),
}

/// The [`ClosureCall`] of the function at `entry` (`code` as for [`decode_function`]) when it
/// makes exactly one indirect call and that call's target is loaded from its closure context
/// in two pointer-sized loads; None otherwise (arm64 is not followed).
///
/// Registers are followed in address order; a register's value is forgotten at every branch
/// target (another path may reach it), when any instruction names the register as its first
/// operand, and (every register) at a direct call or an instruction with implicit register
/// results.
pub fn closure_call(arch: Arch, code: &[u8], entry: u64) -> Option<ClosureCall> {
    let (bitness, pointer) = match arch {
        Arch::Amd64 => (64, MemorySize::UInt64),
        Arch::I386 => (32, MemorySize::UInt32),
        Arch::Arm64 => return None,
    };
    let decode = || {
        let mut decoder = Decoder::try_with_ip(bitness, code, entry, DecoderOptions::NONE).ok()?;
        Some(std::iter::from_fn(move || {
            decoder
                .can_decode()
                .then(|| decoder.decode())
                .filter(|insn| !insn.is_invalid())
        }))
    };
    let branch_targets: std::collections::HashSet<u64> = decode()?
        .filter(|insn| matches!(x86_flow(insn), Flow::Jump(_) | Flow::CondBranch(_)))
        .map(|insn| insn.near_branch_target())
        .collect();
    let mut loaded: std::collections::HashMap<u32, Loaded> = Default::default();
    let mut context_live = true;
    let mut calls = Vec::new();
    for insn in decode()? {
        if branch_targets.contains(&insn.ip()) {
            loaded.clear();
        }
        let op0 = (insn.op_count() > 0 && insn.op0_kind() == OpKind::Register)
            .then(|| gpr(insn.op0_register()))
            .flatten();
        match insn.mnemonic() {
            Mnemonic::Call => match op0 {
                Some(target) => calls.push(match loaded.get(&target) {
                    Some(Loaded::Code(call)) => Some(*call),
                    _ => None,
                }),
                None if matches!(x86_flow(&insn), Flow::Call(_)) => {
                    loaded.clear();
                    context_live = false;
                }
                None => calls.push(None),
            },
            Mnemonic::Mov
                if insn.op1_kind() == OpKind::Memory
                    && insn.memory_size() == pointer
                    && insn.memory_index() == Register::None
                    && matches!(insn.memory_segment(), Register::DS | Register::SS) =>
            {
                let base = gpr(insn.memory_base());
                // Closure words and itab slots lie a few words into their objects.
                let offset = u32::try_from(insn.memory_displacement64())
                    .ok()
                    .filter(|off| *off < MAX_CLOSURE_OFFSET);
                let value = match (offset, base.and_then(|b| loaded.get(&b))) {
                    (Some(off), _) if base == Some(CONTEXT_GPR) && context_live => {
                        Some(Loaded::Word(off))
                    }
                    (Some(off), Some(Loaded::Word(word))) => Some(Loaded::Code(ClosureCall {
                        closure_offset: *word,
                        target_offset: off,
                    })),
                    _ => None,
                };
                if let Some(dest) = op0 {
                    context_live &= dest != CONTEXT_GPR;
                    match value {
                        Some(value) => loaded.insert(dest, value),
                        None => loaded.remove(&dest),
                    };
                }
            }
            mnemonic if has_implicit_register_results(&insn, mnemonic) => {
                loaded.clear();
                context_live = false;
            }
            _ => {
                if let Some(dest) = op0 {
                    context_live &= dest != CONTEXT_GPR;
                    loaded.remove(&dest);
                }
            }
        }
    }
    match calls[..] {
        [Some(call)] => Some(call),
        _ => None,
    }
}

/// The closure context register, DX, as [`gpr`] numbers it.
const CONTEXT_GPR: u32 = 2;

/// The general-purpose register `reg` is part of, numbered as the encoding does (AX 0, CX 1,
/// DX 2, ... R15 15) from iced's register order (AL-BL, AH-BH, SPL-R15L, then the 16-, 32- and
/// 64-bit registers, each in encoding order); None for any other register.
fn gpr(reg: Register) -> Option<u32> {
    let r = reg as u32;
    let first = [
        Register::RAX,
        Register::EAX,
        Register::AX,
        Register::AH,
        Register::AL,
    ]
    .into_iter()
    .find(|first| r >= *first as u32)?;
    Some(r - first as u32).filter(|n| *n < 16)
}

/// Whether `insn` writes registers other than its first operand (the multiply, divide and
/// sign-extension forms with DX results, exchanges, string instructions, CPUID, RDTSC).
fn has_implicit_register_results(insn: &Instruction, mnemonic: Mnemonic) -> bool {
    insn.has_rep_prefix()
        || insn.has_repne_prefix()
        || matches!(
            mnemonic,
            Mnemonic::Mul
                | Mnemonic::Imul
                | Mnemonic::Div
                | Mnemonic::Idiv
                | Mnemonic::Cwd
                | Mnemonic::Cdq
                | Mnemonic::Cqo
                | Mnemonic::Xchg
                | Mnemonic::Xadd
                | Mnemonic::Cmpxchg
                | Mnemonic::Cmpxchg8b
                | Mnemonic::Cmpxchg16b
                | Mnemonic::Cpuid
                | Mnemonic::Rdtsc
                | Mnemonic::Rdtscp
                | Mnemonic::Syscall
                | Mnemonic::Lodsb
                | Mnemonic::Lodsw
                | Mnemonic::Lodsd
                | Mnemonic::Lodsq
        )
}

/// Fixed-width arm64 decoding: only the encodings probe placement needs are told apart.
struct Arm64Stream<'a> {
    words: std::slice::ChunksExact<'a, u8>,
    addr: u64,
}

impl InsnStream for Arm64Stream<'_> {
    fn next_insn(&mut self) -> Option<Result<Insn>> {
        let bytes = self.words.next()?;
        let word = u32::from_le_bytes(bytes.try_into().ok()?);
        let addr = self.addr;
        self.addr = addr.wrapping_add(4);
        Some(Ok(Insn {
            addr,
            len: 4,
            flow: arm64_flow(word, addr),
            stack_check_like: arm64_is_stack_check_like(word),
            class: Some(site_class(Arch::Arm64, bytes)),
            // Go's arm64 check branch is B.LS, whose not-taken test (C set, Z clear) is not
            // the x86 one; the entry probe stays after it.
            check: EntryCheck::None,
        }))
    }
}

/// arm64 `RET Xn` (plain `RET` is `RET X30`, 0xd65f03c0).
const ARM64_RET_MASK: u32 = 0xffff_fc1f;
const ARM64_RET: u32 = 0xd65f_0000;

/// Control flow of the arm64 instruction `word` at `addr`.
fn arm64_flow(word: u32, addr: u64) -> Flow {
    // Branch displacement: `bits` wide at bit `shift`, signed, in words. A target outside
    // the address space (only in a corrupt function) leaves the straight line to nowhere.
    let target = |shift: u32, bits: u32, flow: fn(u64) -> Flow| {
        let field = (word >> shift) & ((1 << bits) - 1);
        let words = i64::from(((field << (32 - bits)) as i32) >> (32 - bits));
        addr.checked_add_signed(words * 4).map_or(Flow::Other, flow)
    };
    if word & ARM64_RET_MASK == ARM64_RET {
        Flow::Ret
    } else if word & 0xfc00_0000 == 0x1400_0000 {
        target(0, 26, Flow::Jump) // B
    } else if word & 0xfc00_0000 == 0x9400_0000 {
        target(0, 26, Flow::Call) // BL
    } else if word & 0xff00_0000 == 0x5400_0000 || word & 0x7e00_0000 == 0x3400_0000 {
        target(5, 19, Flow::CondBranch) // B.cond, CBZ/CBNZ
    } else if word & 0x7e00_0000 == 0x3600_0000 {
        target(5, 14, Flow::CondBranch) // TBZ/TBNZ
    } else if word & 0xfe00_0000 == 0xd600_0000
        || word & 0xff00_0000 == 0xd400_0000
        || word & 0xffff_0000 == 0
    {
        // BR/BLR/ERET…, exception generation (BRK, SVC), UDF (zero padding between functions)
        Flow::Other
    } else {
        Flow::Next
    }
}

/// The encodings Go's arm64 stack checks use: `MOVD 16(g), R16` (LDR unsigned offset),
/// constants (MOVZ/MOVN/MOVK, ORR immediate), SUB/SUBS/CMP (immediate, shifted or extended
/// register), and NOP.
fn arm64_is_stack_check_like(word: u32) -> bool {
    #[rustfmt::skip]
    const ENCODINGS: [(u32, u32); 6] = [
        (0xffc0_0000, 0xf940_0000), (0x1f80_0000, 0x1280_0000), (0x1f80_0000, 0x1200_0000),
        (0x1f00_0000, 0x1100_0000), (0x1f00_0000, 0x0b00_0000), (0xffff_ffff, 0xd503_201f),
    ];
    arm64_matches_any(word, &ENCODINGS)
}

/// Whether `word` matches one of the (mask, value) encodings.
pub(in crate::gobin) fn arm64_matches_any(word: u32, encodings: &[(u32, u32)]) -> bool {
    encodings.iter().any(|&(mask, value)| word & mask == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from a hex string (as `go tool objdump` prints them).
    fn bytes(hex: &str) -> Vec<u8> {
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `go r.Run(5)`'s wrapper `main.main.func10` of examples/go-targets/goshapes, Go 1.21.13
    /// amd64, as `go tool objdump` shows it: `MOVQ 0x8(DX), CX; MOVQ 0x18(CX), CX; CALL CX`.
    #[test]
    fn interface_call_through_a_captured_itab() {
        let code = bytes(
            "493b6610 762a 55 4889e5 4883ec10 4d8b6620 4d85e4 7520 488b4a08 488b4210
             488b4918 bb05000000 ffd1 4883c410 5d c3 e86bb9fdff ebc9 4c8d6c2420 0f1f4000
             4d392c24 75d1 49892424 ebcb",
        );
        assert_eq!(
            closure_call(Arch::Amd64, &code, 0x47fe60),
            Some(ClosureCall {
                closure_offset: 8,
                target_offset: 0x18
            })
        );
    }

    /// The literal's wrapper `main.main.func13` of goshapes, Go 1.19 386:
    /// `MOVL 0x4(DX), DX; MOVL 0(DX), AX; CALL AX` (the context register is overwritten).
    #[test]
    fn literal_call_through_a_captured_funcval() {
        let code = bytes(
            "658b0d00000000 8b89fcffffff 3b6108 7624 83ec08 8b5910 85db 7521 8b5204 8b02
             c744240400000000 c7042440420f00 ffd0 83c408 c3 e82573fdff ebc3 8d7c240c 393b
             75d7 8923 ebd3",
        );
        let call = Some(ClosureCall {
            closure_offset: 4,
            target_offset: 0,
        });
        assert_eq!(closure_call(Arch::I386, &code, 0x80d00c0), call);
        // With DX written (XORL DX, DX) before the loads, the chain is not the closure's.
        let mut clobbered = code.clone();
        clobbered.splice(28..28, bytes("31d2"));
        assert_eq!(closure_call(Arch::I386, &clobbered, 0x80d00c0), None);
    }

    /// goshapes' `main.main.func10`, Go 1.19 386: a direct call, no closure call.
    #[test]
    fn direct_call_is_no_closure_call() {
        let code = bytes(
            "658b0d00000000 8b89fcffffff 3b6108 7621 83ec08 8b5910 85db 751e 8b4204 890424
             c744240405000000 e851f6ffff 83c408 c3 e82872fdff ebc6 8d7c240c 393b 75da 8923
             ebd6",
        );
        assert_eq!(closure_call(Arch::I386, &code, 0x80d01c0), None);
    }

    #[test]
    fn registers_by_encoding_number() {
        assert_eq!(gpr(Register::DL), Some(CONTEXT_GPR));
        assert_eq!(gpr(Register::DH), Some(CONTEXT_GPR));
        assert_eq!(gpr(Register::EDX), Some(CONTEXT_GPR));
        assert_eq!(gpr(Register::RDX), Some(CONTEXT_GPR));
        assert_eq!(gpr(Register::R15D), Some(15));
        assert_eq!(gpr(Register::SPL), Some(4));
        assert_eq!(gpr(Register::XMM0), None);
        assert_eq!(gpr(Register::None), None);
    }
}
