//! Where control enters an inlined call's code, from the decoded parent (amd64 and 386).
//!
//! The pclntab's `parentPc` is no entry: it is an instruction at the call site's source
//! position, an inline-mark NOP or an instruction the compiler emits anyway at that position
//! (cmd/compile/internal/ssagen, "inline marks"), and that instruction may sit on one path
//! only (Go 1.27 amd64: `main.clamp` inlined into examples/go-targets/inlined has its mark on
//! the `jmp` of one early return). So the entries are found from the code instead: an
//! instruction of the instance's ranges is an entry when an instruction outside the ranges
//! falls through or branches directly to it. An entry that is also reached from inside the
//! ranges (a loop header) runs more than once per call. Indirect jumps (jump tables) are not
//! followed; their number in the parent is reported so a caller can tell the entries may be
//! incomplete.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind};

use crate::gobin::Arch;

/// One place where control enters an inlined call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPoint {
    /// Vaddr of the first instruction run inside the instance.
    pub pc: u64,
    /// Also reached from inside the instance (a loop header, or a join with a path that
    /// entered elsewhere): a probe here alone does not fire once per call.
    pub reentered: bool,
}

/// The entries of one inlined call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineEntries {
    /// In address order.
    pub points: Vec<EntryPoint>,
    /// Indirect jumps in the parent: their targets are unknown, so entries may be missing.
    pub indirect_jumps: usize,
}

/// What one instruction does to control flow and the stack pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlowKind {
    /// Falls through to the next instruction only.
    Plain,
    /// Direct unconditional jump.
    Jmp,
    /// Jump through a register or memory (a jump table): its targets are unknown.
    IndirectJmp,
    /// Conditional branch; the x86 condition code (the low nibble of its `7x` opcode).
    Jcc(u8),
    /// A call (its direct target when known); execution continues after it when it returns.
    Call(Option<u64>),
    Ret,
    /// UD2 or INT3: execution does not continue.
    Trap,
    /// Writes the stack pointer (an epilogue's `ADD SP` or `POP`): the frame is going away.
    WritesSp,
}

/// One decoded instruction's successors.
pub(super) struct Flow {
    /// The instruction's link-time address.
    pub(super) pc: u64,
    /// Address of the next instruction when execution can continue there.
    pub(super) fallthrough: Option<u64>,
    /// Direct branch target.
    pub(super) target: Option<u64>,
    /// What it does to control flow and the stack pointer.
    pub(super) kind: FlowKind,
    /// Whether Linux accepts a uprobe here (`is_prefix_bad` in arch/x86/kernel/uprobes.c
    /// rejects the LOCK and the ES/CS/SS/DS segment prefixes).
    pub(super) probeable: bool,
    /// A direct jump or a load of a constant (`XOR r, r`, `MOV r, imm`, NOP): code the
    /// compiler shares between calls, whose source position may name another call.
    pub(super) trivial: bool,
}

/// The decoded control flow of a parent function, reused for each of its inlined calls.
pub struct ParentFlow {
    flows: Vec<Flow>,
    /// Predecessors of instruction `i`: `preds[pred_start[i]..pred_start[i + 1]]`.
    pred_start: Vec<usize>,
    preds: Vec<usize>,
    entry: u64,
    indirect_jumps: usize,
}

impl ParentFlow {
    /// Decodes the parent's `code` (starting at vaddr `entry`) straight through.
    pub fn decode(arch: Arch, code: &[u8], entry: u64) -> Result<ParentFlow> {
        let bitness = match arch {
            Arch::Amd64 => 64,
            Arch::I386 => 32,
            Arch::Arm64 => bail!("inlined-call entries are decoded for amd64 and 386 only"),
        };
        let mut decoder = Decoder::with_ip(bitness, code, entry, DecoderOptions::NONE);
        let mut flows = Vec::new();
        let mut indirect_jumps = 0;
        for insn in &mut decoder {
            let next = insn.next_ip();
            let direct = matches!(
                insn.op0_kind(),
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
            );
            let branch_target = direct.then(|| insn.near_branch_target());
            let (fallthrough, target, kind) = match insn.mnemonic() {
                Mnemonic::Jmp if direct => (None, branch_target, FlowKind::Jmp),
                Mnemonic::Jmp => {
                    indirect_jumps += 1;
                    (None, None, FlowKind::IndirectJmp)
                }
                Mnemonic::Ret => (None, None, FlowKind::Ret),
                Mnemonic::Ud2 | Mnemonic::Int3 => (None, None, FlowKind::Trap),
                Mnemonic::Call => (Some(next), None, FlowKind::Call(branch_target)),
                mnemonic if direct => match condition_code(mnemonic) {
                    Some(cc) => (Some(next), branch_target, FlowKind::Jcc(cc)),
                    // JRCXZ, LOOP and the like: Go does not emit them; followed, never probed.
                    None => (Some(next), branch_target, FlowKind::Plain),
                },
                _ if writes_sp(&insn) => (Some(next), None, FlowKind::WritesSp),
                _ => (Some(next), None, FlowKind::Plain),
            };
            let start = (insn.ip() - entry) as usize;
            let bytes = &code[start..start + insn.len()];
            flows.push(Flow {
                pc: insn.ip(),
                fallthrough,
                target,
                kind,
                probeable: uprobe_accepts(bytes),
                trivial: kind == FlowKind::Jmp || is_constant_load(&insn),
            });
        }
        let mut flow = ParentFlow {
            flows,
            pred_start: Vec::new(),
            preds: Vec::new(),
            entry,
            indirect_jumps,
        };
        flow.link_predecessors();
        Ok(flow)
    }

    /// Fills the predecessor table (compressed rows: one count pass, one fill pass).
    fn link_predecessors(&mut self) {
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for (i, flow) in self.flows.iter().enumerate() {
            for dst in [flow.fallthrough, flow.target].into_iter().flatten() {
                if let Some(j) = self.index(dst) {
                    edges.push((j, i));
                }
            }
        }
        let mut start = vec![0usize; self.flows.len() + 1];
        for &(dst, _) in &edges {
            start[dst + 1] += 1;
        }
        for i in 0..self.flows.len() {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut preds = vec![0usize; edges.len()];
        for (dst, src) in edges {
            preds[fill[dst]] = src;
            fill[dst] += 1;
        }
        self.pred_start = start;
        self.preds = preds;
    }

    /// Predecessors of instruction `i`.
    pub(super) fn predecessors(&self, i: usize) -> &[usize] {
        &self.preds[self.pred_start[i]..self.pred_start[i + 1]]
    }

    /// The decoded instructions, in address order.
    pub(super) fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// Vaddr of the parent's entry.
    pub(super) fn entry(&self) -> u64 {
        self.entry
    }

    /// Index of the instruction at `pc`.
    pub(super) fn index(&self, pc: u64) -> Option<usize> {
        self.flows.binary_search_by_key(&pc, |f| f.pc).ok()
    }

    /// The entries of the inlined call whose code is `ranges` (sorted `[lo, hi)`).
    pub fn entries(&self, ranges: &[(u64, u64)]) -> InlineEntries {
        let inside = |pc: u64| {
            let i = ranges.partition_point(|r| r.1 <= pc);
            ranges.get(i).is_some_and(|r| r.0 <= pc)
        };
        // Fast path: when a single instance instruction has a predecessor outside the ranges
        // (or is the function entry), every path into the instance goes through it.
        let mut candidates = Vec::new();
        for &(lo, hi) in ranges {
            let first = self.flows.partition_point(|f| f.pc < lo);
            for (i, flow) in self.flows[first..].iter().enumerate() {
                if flow.pc >= hi {
                    break;
                }
                let preds = self.predecessors(first + i);
                let from_outside =
                    flow.pc == self.entry || preds.iter().any(|&p| !inside(self.flows[p].pc));
                if from_outside {
                    let reentered = preds.iter().any(|&p| inside(self.flows[p].pc));
                    candidates.push(EntryPoint {
                        pc: flow.pc,
                        reentered,
                    });
                }
            }
        }
        if candidates.len() <= 1 {
            return InlineEntries {
                points: candidates,
                indirect_jumps: self.indirect_jumps,
            };
        }
        // pc -> (reached from outside, reached from inside)
        let mut reached: BTreeMap<u64, (bool, bool)> = BTreeMap::new();
        // Outside: walk from the function entry through the caller's own instructions only;
        // each instance instruction reached that way is where some call begins.
        let mut visited = vec![false; self.flows.len()];
        let mut pending = Vec::new();
        match self.index(self.entry) {
            Some(_) if inside(self.entry) => {
                reached.entry(self.entry).or_default().0 = true;
            }
            Some(first) => {
                visited[first] = true;
                pending.push(first);
            }
            None => {}
        }
        while let Some(i) = pending.pop() {
            let flow = &self.flows[i];
            for dst in [flow.fallthrough, flow.target].into_iter().flatten() {
                if inside(dst) {
                    reached.entry(dst).or_default().0 = true;
                } else if let Some(j) = self.index(dst).filter(|&j| !visited[j]) {
                    visited[j] = true;
                    pending.push(j);
                }
            }
        }
        // Inside: instance instructions that lead to an entry.
        for flow in self.flows.iter().filter(|f| inside(f.pc)) {
            for dst in [flow.fallthrough, flow.target].into_iter().flatten() {
                if let Some(slot) = reached.get_mut(&dst) {
                    slot.1 = true;
                }
            }
        }
        InlineEntries {
            points: reached
                .into_iter()
                .filter(|(_, (outside, _))| *outside)
                .map(|(pc, (_, inside))| EntryPoint {
                    pc,
                    reentered: inside,
                })
                .collect(),
            indirect_jumps: self.indirect_jumps,
        }
    }
}

/// The x86 condition code of a conditional jump (Intel SDM Vol. 2 Table B-1: the low nibble
/// of opcode `7x`), or None for any other mnemonic.
fn condition_code(mnemonic: Mnemonic) -> Option<u8> {
    Some(match mnemonic {
        Mnemonic::Jo => 0,
        Mnemonic::Jno => 1,
        Mnemonic::Jb => 2,
        Mnemonic::Jae => 3,
        Mnemonic::Je => 4,
        Mnemonic::Jne => 5,
        Mnemonic::Jbe => 6,
        Mnemonic::Ja => 7,
        Mnemonic::Js => 8,
        Mnemonic::Jns => 9,
        Mnemonic::Jp => 10,
        Mnemonic::Jnp => 11,
        Mnemonic::Jl => 12,
        Mnemonic::Jge => 13,
        Mnemonic::Jle => 14,
        Mnemonic::Jg => 15,
        _ => return None,
    })
}

/// Whether the instruction writes the stack pointer (Go changes SP only in prologues and
/// epilogues: `SUB`/`ADD SP`, `PUSH`/`POP BP`, `LEAVE`).
fn writes_sp(insn: &iced_x86::Instruction) -> bool {
    use iced_x86::Register;
    match insn.mnemonic() {
        Mnemonic::Push | Mnemonic::Pop | Mnemonic::Leave => true,
        Mnemonic::Add | Mnemonic::Sub | Mnemonic::Mov | Mnemonic::Lea | Mnemonic::And => {
            insn.op0_kind() == OpKind::Register
                && matches!(insn.op0_register(), Register::RSP | Register::ESP)
        }
        _ => false,
    }
}

/// Whether the instruction only puts a constant in a register (or does nothing).
fn is_constant_load(insn: &iced_x86::Instruction) -> bool {
    match insn.mnemonic() {
        Mnemonic::Nop => true,
        Mnemonic::Xor => {
            insn.op0_kind() == OpKind::Register
                && insn.op1_kind() == OpKind::Register
                && insn.op0_register() == insn.op1_register()
        }
        Mnemonic::Mov => {
            insn.op0_kind() == OpKind::Register
                && matches!(
                    insn.op1_kind(),
                    OpKind::Immediate8
                        | OpKind::Immediate16
                        | OpKind::Immediate32
                        | OpKind::Immediate64
                        | OpKind::Immediate32to64
                        | OpKind::Immediate8to32
                        | OpKind::Immediate8to64
                )
        }
        _ => false,
    }
}

/// Whether Linux lets a uprobe sit on an instruction with these bytes: no LOCK (F0) and no
/// ES/CS/SS/DS segment prefix (26/2E/36/3E) among its legacy prefixes.
fn uprobe_accepts(bytes: &[u8]) -> bool {
    for &byte in bytes {
        match byte {
            0xf0 | 0x26 | 0x2e | 0x36 | 0x3e => return false,
            0x64 | 0x65 | 0x66 | 0x67 | 0xf2 | 0xf3 => continue,
            _ => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{EntryPoint, ParentFlow};
    use crate::gobin::Arch;

    /// `0: cmp rax, rbx; 3: jb 9; 5: inc rcx; 8: nop; 9: ret`, an instance at [5, 9).
    const CODE: &[u8] = &[0x48, 0x39, 0xd8, 0x72, 0x04, 0x48, 0xff, 0xc1, 0x90, 0xc3];

    #[test]
    fn fallthrough_into_the_range_is_its_entry() {
        let flow = ParentFlow::decode(Arch::Amd64, CODE, 0).unwrap();
        let entries = flow.entries(&[(5, 9)]);
        assert_eq!(
            entries.points,
            vec![EntryPoint {
                pc: 5,
                reentered: false
            }]
        );
        assert_eq!(entries.indirect_jumps, 0);
    }

    #[test]
    fn branch_target_inside_is_an_entry() {
        let flow = ParentFlow::decode(Arch::Amd64, CODE, 0).unwrap();
        let entries = flow.entries(&[(8, 10)]);
        let expected = vec![
            EntryPoint {
                pc: 8,
                reentered: false,
            },
            EntryPoint {
                pc: 9,
                reentered: true,
            },
        ];
        assert_eq!(entries.points, expected);
    }
}
