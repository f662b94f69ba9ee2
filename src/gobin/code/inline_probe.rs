//! Where an inlined call starts and ends, as probe sites (amd64 and 386): the instructions to
//! probe so that each call of an inlined instance is seen once when it starts and once when it
//! ends, from the parent's decoded control flow ([`ParentFlow`]).
//!
//! The compiler schedules an instance's instructions among its parent's and other instances'
//! (Go 1.27 interleaves them), so its PC ranges are not a region control stays in. The call's
//! region is computed instead: `before` is every instruction reachable from the parent's entry
//! without touching the ranges; a call starts on an edge from `before` into the ranges; the
//! region is what is reachable from those entries (not going back into `before`) and can still
//! reach the ranges. A call ends on the edge that leaves the region: from there control can only
//! get back into the ranges through a new entry. An epilogue (`ADD SP`, `POP`) or RET ends the
//! call too (the parent returns); a call to a function that never returns (a panic) does not
//! end it. Where an edge that starts or ends a call leaves a conditional jump whose other edge
//! does not, the probe sits on the jump with a test of the flags ([`BranchTest`]).

use std::collections::BTreeMap;

use super::inline_entry::{FlowKind, ParentFlow};

/// When a hit of a probe on a conditional jump counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchTest {
    /// Every hit.
    Always,
    /// Only when the jump with this x86 condition code is taken.
    IfTaken(u8),
    /// Only when it is not taken.
    IfNotTaken(u8),
}

/// One probe of an inlined call: the instruction and when its hits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeAt {
    /// The probed instruction's link-time address.
    pub pc: u64,
    /// Which of its hits count.
    pub test: BranchTest,
}

/// A probe where calls of an inlined instance start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryProbe {
    /// The probed instruction and when its hits count.
    pub at: ProbeAt,
    /// The instance's first instruction whose registers and stack a hit sees: the entry
    /// itself, or the one entry a jump probed on its way in leads to (a jump changes neither).
    /// None when the probed instruction runs before the entry and may change them.
    pub enters: Option<u64>,
}

/// The probes that see every call of one inlined instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProbes {
    /// A hit that counts is the start of one call.
    pub entries: Vec<EntryProbe>,
    /// A hit that counts is the end of the call in progress; Err says why the calls cannot be
    /// timed (they are counted, untimed).
    pub exits: Result<Vec<ProbeAt>, String>,
    /// Instructions of its ranges that control enters from outside but that are not probed:
    /// only a constant load or jump the compiler shares with other code, reached without a
    /// call, while another entry leads into the call's real code.
    pub shared_entries: Vec<u64>,
}

impl ParentFlow {
    /// The probes of the inlined call whose code is `ranges` (sorted `[lo, hi)`); `noreturn`
    /// says whether a call target never returns. Err: why its calls cannot be counted.
    pub fn instance_probes(
        &self,
        ranges: &[(u64, u64)],
        noreturn: impl Fn(u64) -> bool,
    ) -> Result<InstanceProbes, String> {
        let mut walk = Walk::new(self, ranges, noreturn);
        let entries = walk.entry_probes()?;
        let exits = walk.exit_probes().and_then(|exits| {
            if walk.starts_before_call {
                Err("a call starts just before a CALL instruction, so its start would include the callee".to_owned())
            } else if exits.is_empty() {
                Err("no instruction where the call ends was found (it never returns)".to_owned())
            } else {
                Ok(exits)
            }
        });
        Ok(InstanceProbes {
            entries,
            exits,
            shared_entries: walk.shared_entries.clone(),
        })
    }
}

/// One instance's region in its parent's flow.
struct Walk<'a> {
    flow: &'a ParentFlow,
    /// Instructions in the instance's ranges.
    inside: Vec<bool>,
    /// Reachable from the parent's entry without touching the ranges.
    before: Vec<bool>,
    /// Where the calls go after they start and before they end.
    region: Vec<bool>,
    /// Instructions of the ranges entered from `before` (or the parent's entry itself).
    entry_points: Vec<usize>,
    /// Whether successors of an instruction are followed (false for the ends of the walk).
    noreturn_call: Vec<bool>,
    starts_before_call: bool,
    /// Entries dropped by [`Walk::drop_shared_entries`].
    shared_entries: Vec<u64>,
}

impl<'a> Walk<'a> {
    fn new(flow: &'a ParentFlow, ranges: &[(u64, u64)], noreturn: impl Fn(u64) -> bool) -> Self {
        let flows = flow.flows();
        let in_ranges = |pc: u64| {
            let i = ranges.partition_point(|r| r.1 <= pc);
            ranges.get(i).is_some_and(|r| r.0 <= pc)
        };
        let inside: Vec<bool> = flows.iter().map(|f| in_ranges(f.pc)).collect();
        let noreturn_call = flows
            .iter()
            .map(|f| matches!(f.kind, FlowKind::Call(Some(target)) if noreturn(target)))
            .collect();
        let mut walk = Walk {
            flow,
            inside,
            before: vec![false; flows.len()],
            region: vec![false; flows.len()],
            entry_points: Vec::new(),
            noreturn_call,
            starts_before_call: false,
            shared_entries: Vec::new(),
        };
        walk.walk_before();
        walk.walk_region();
        walk.drop_shared_entries();
        walk
    }

    /// Successors of instruction `i` along which execution continues; `in_call`: within an
    /// inlined call, which a write of SP (the parent's epilogue) ends.
    fn successors(&self, i: usize, in_call: bool) -> impl Iterator<Item = usize> + '_ {
        let flow = &self.flow.flows()[i];
        let ends = match flow.kind {
            FlowKind::Ret | FlowKind::Trap | FlowKind::IndirectJmp => true,
            FlowKind::WritesSp => in_call,
            _ => self.noreturn_call[i],
        };
        [flow.fallthrough, flow.target]
            .into_iter()
            .flatten()
            .filter(move |_| !ends)
            .filter_map(|pc| self.flow.index(pc))
    }

    /// Fills `before` and `entry_points`.
    fn walk_before(&mut self) {
        let Some(first) = self.flow.index(self.flow.entry()) else {
            return;
        };
        let mut entered = vec![false; self.inside.len()];
        if self.inside[first] {
            entered[first] = true;
        } else {
            self.before[first] = true;
            let mut pending = vec![first];
            while let Some(i) = pending.pop() {
                let next: Vec<usize> = self.successors(i, false).collect();
                for j in next {
                    if self.inside[j] {
                        entered[j] = true;
                    } else if !self.before[j] {
                        self.before[j] = true;
                        pending.push(j);
                    }
                }
            }
        }
        // A jump table outside the ranges may enter them where no direct edge leads: an
        // instruction of the ranges nothing flows into is such a target (or dead code).
        let indirect_outside = self
            .flow
            .flows()
            .iter()
            .enumerate()
            .any(|(i, f)| f.kind == FlowKind::IndirectJmp && !self.inside[i]);
        for (i, slot) in entered.iter_mut().enumerate() {
            if indirect_outside && self.inside[i] && self.flow.predecessors(i).is_empty() {
                *slot = true;
            }
        }
        self.entry_points = (0..entered.len()).filter(|&i| entered[i]).collect();
    }

    /// Drops the entries whose own part of the region is only trivial code (a constant load
    /// and a jump) when another entry leads into real code: the compiler gave a constant or a
    /// jump it shares with the parent the source position of the inlined call (Go 1.19 386:
    /// the `XOR CX, CX` that starts the next loop carries an inlined loop's `i := 0`), so
    /// control passes there without any call.
    fn drop_shared_entries(&mut self) {
        let flows = self.flow.flows();
        let trivial: Vec<bool> = self
            .entry_points
            .iter()
            .map(|&e| {
                let mut seen = vec![e];
                let mut pending = vec![e];
                while let Some(i) = pending.pop() {
                    if !flows[i].trivial {
                        return false;
                    }
                    for j in self.successors(i, true) {
                        if self.region[j] && !seen.contains(&j) && !self.entry_points.contains(&j) {
                            seen.push(j);
                            pending.push(j);
                        }
                    }
                }
                true
            })
            .collect();
        if trivial.iter().all(|&t| t) || !trivial.iter().any(|&t| t) {
            return;
        }
        let mut kept = Vec::new();
        for (&e, &t) in self.entry_points.iter().zip(&trivial) {
            if t {
                self.shared_entries.push(flows[e].pc);
            } else {
                kept.push(e);
            }
        }
        self.entry_points = kept;
        self.region.iter_mut().for_each(|r| *r = false);
        self.walk_region();
    }

    /// Fills `region`: reachable from the entries without going back into `before`, and able
    /// to reach the ranges again.
    fn walk_region(&mut self) {
        let n = self.inside.len();
        let mut forward = vec![false; n];
        let mut pending = self.entry_points.clone();
        for &i in &pending {
            forward[i] = true;
        }
        while let Some(i) = pending.pop() {
            let next: Vec<usize> = self.successors(i, true).collect();
            for j in next {
                if !self.before[j] && !forward[j] {
                    forward[j] = true;
                    pending.push(j);
                }
            }
        }
        let mut pending: Vec<usize> = (0..n).filter(|&i| forward[i] && self.inside[i]).collect();
        for &i in &pending {
            self.region[i] = true;
        }
        while let Some(j) = pending.pop() {
            for &p in self.flow.predecessors(j) {
                if forward[p] && !self.region[p] && self.successors(p, true).any(|s| s == j) {
                    self.region[p] = true;
                    pending.push(p);
                }
            }
        }
    }

    /// A probe at instruction `i` whose hits count when its edges to instructions `counts`
    /// selects are taken: Always when both edges (or the only one) count.
    fn probe_on_edges(&self, i: usize, counts: impl Fn(usize) -> bool) -> BranchTest {
        let flow = &self.flow.flows()[i];
        let idx = |pc: Option<u64>| pc.and_then(|pc| self.flow.index(pc));
        match flow.kind {
            FlowKind::Jcc(cc) => {
                let taken = idx(flow.target).is_none_or(&counts);
                let not_taken = idx(flow.fallthrough).is_none_or(&counts);
                match (taken, not_taken) {
                    (true, false) => BranchTest::IfTaken(cc),
                    (false, true) => BranchTest::IfNotTaken(cc),
                    _ => BranchTest::Always,
                }
            }
            _ => BranchTest::Always,
        }
    }

    /// The probes that see each call start once.
    fn entry_probes(&mut self) -> Result<Vec<EntryProbe>, String> {
        let flows = self.flow.flows();
        let mut probes: BTreeMap<u64, (BranchTest, Option<u64>)> = BTreeMap::new();
        for &e in &self.entry_points {
            let preds = self.flow.predecessors(e);
            let reentered = preds.iter().any(|&p| self.region[p]);
            if !reentered && flows[e].probeable {
                probes.insert(flows[e].pc, (BranchTest::Always, Some(flows[e].pc)));
                continue;
            }
            let outside: Vec<usize> = preds.iter().copied().filter(|&p| self.before[p]).collect();
            if outside.is_empty() {
                return Err(format!(
                    "its entry {:#x} cannot be probed and no instruction leads to it from outside",
                    flows[e].pc
                ));
            }
            for p in outside {
                if !flows[p].probeable {
                    return Err(format!(
                        "its entry {:#x} is reached from {:#x}, where Linux refuses a uprobe",
                        flows[e].pc, flows[p].pc
                    ));
                }
                if matches!(flows[p].kind, FlowKind::Call(_)) {
                    self.starts_before_call = true;
                }
                let entries = &self.entry_points;
                let test = self.probe_on_edges(p, |j| entries.contains(&j));
                let enters = match (flows[p].kind, test) {
                    (FlowKind::Jmp, _) | (FlowKind::Jcc(_), BranchTest::IfTaken(_)) => {
                        flows[p].target
                    }
                    (FlowKind::Jcc(_), BranchTest::IfNotTaken(_)) => flows[p].fallthrough,
                    _ => None,
                };
                probes.insert(flows[p].pc, (test, enters));
            }
        }
        Ok(probes
            .into_iter()
            .map(|(pc, (test, enters))| EntryProbe {
                at: ProbeAt { pc, test },
                enters,
            })
            .collect())
    }

    /// The probes that see each call end once, or why there are none. Each edge leaving the
    /// region is probed at its target when only the region leads there (no test, and no hit
    /// on the passes that stay, such as a loop's back edge), else at its source.
    fn exit_probes(&self) -> Result<Vec<ProbeAt>, String> {
        let flows = self.flow.flows();
        let mut probes: BTreeMap<u64, BranchTest> = BTreeMap::new();
        let leaves = |pc: u64| self.flow.index(pc).is_none_or(|j| !self.region[j]);
        for u in (0..flows.len()).filter(|&u| self.region[u]) {
            let flow = &flows[u];
            let edges: Vec<u64> = match flow.kind {
                FlowKind::Ret | FlowKind::WritesSp => {
                    if !flow.probeable {
                        return Err(format!(
                            "it ends at {:#x}, where Linux refuses a uprobe",
                            flow.pc
                        ));
                    }
                    probes.insert(flow.pc, BranchTest::Always);
                    continue;
                }
                FlowKind::IndirectJmp => {
                    return Err(format!(
                        "an indirect jump at {:#x} leaves it for unknown places",
                        flow.pc
                    ))
                }
                FlowKind::Trap => continue,
                FlowKind::Call(_) if self.noreturn_call[u] => continue,
                FlowKind::Call(_) | FlowKind::Jmp | FlowKind::Jcc(_) | FlowKind::Plain => {
                    [flow.fallthrough, flow.target]
                        .into_iter()
                        .flatten()
                        .filter(|&pc| leaves(pc))
                        .collect()
                }
            };
            // The edges probed at their source.
            let mut at_source = Vec::new();
            for pc in edges {
                match self.only_from_region(Some(pc)) {
                    Some(j) if flows[j].probeable => {
                        probes.insert(flows[j].pc, BranchTest::Always);
                    }
                    _ => at_source.push(pc),
                }
            }
            if at_source.is_empty() {
                continue;
            }
            if matches!(flow.kind, FlowKind::Call(_)) || !flow.probeable {
                return Err(format!(
                    "it ends after {:#x}, at code other paths also reach",
                    flow.pc
                ));
            }
            let test = match flow.kind {
                FlowKind::Jcc(cc) if at_source.len() == 1 => {
                    if Some(at_source[0]) == flow.target {
                        BranchTest::IfTaken(cc)
                    } else {
                        BranchTest::IfNotTaken(cc)
                    }
                }
                _ => BranchTest::Always,
            };
            probes.insert(flow.pc, test);
        }
        Ok(probes
            .into_iter()
            .map(|(pc, test)| ProbeAt { pc, test })
            .collect())
    }

    /// The instruction at `pc` when it is outside the region and every edge into it comes from
    /// the region (so reaching it means a call just ended).
    fn only_from_region(&self, pc: Option<u64>) -> Option<usize> {
        let j = self.flow.index(pc?)?;
        let preds = self.flow.predecessors(j);
        (!self.region[j] && !preds.is_empty() && preds.iter().all(|&p| self.region[p])).then_some(j)
    }
}

#[cfg(test)]
mod tests {
    use super::{BranchTest, EntryProbe, ProbeAt};
    use crate::gobin::code::inline_entry::ParentFlow;
    use crate::gobin::Arch;

    /// `0: cmp rax, rbx; 3: jb 9; 5: inc rcx; 8: nop; 9: ret`.
    const CODE: &[u8] = &[0x48, 0x39, 0xd8, 0x72, 0x04, 0x48, 0xff, 0xc1, 0x90, 0xc3];

    /// `0: cmp rax, rbx; 3: je 9; 5: jb 9; 7: jmp 5; 9: ret`: the loop's `jb` leaves the
    /// instance [5, 9) when taken, for the RET that the path around it also reaches.
    const LOOP: &[u8] = &[0x48, 0x39, 0xd8, 0x74, 0x04, 0x72, 0x02, 0xeb, 0xfc, 0xc3];

    /// The probes of the instance `ranges` of amd64 `code`: (its one entry probe as (pc, test,
    /// enters), its exits).
    fn probes(code: &[u8], ranges: &[(u64, u64)]) -> (EntryProbe, Result<Vec<ProbeAt>, String>) {
        let flow = ParentFlow::decode(Arch::Amd64, code, 0).unwrap();
        let probes = flow.instance_probes(ranges, |_| false).unwrap();
        let [entry] = probes.entries[..] else {
            panic!("one entry probe expected: {:?}", probes.entries);
        };
        (entry, probes.exits)
    }

    fn at(pc: u64, test: BranchTest) -> ProbeAt {
        ProbeAt { pc, test }
    }

    fn entry(pc: u64, test: BranchTest, enters: u64) -> EntryProbe {
        EntryProbe {
            at: at(pc, test),
            enters: Some(enters),
        }
    }

    #[test]
    fn a_jcc_leaving_for_shared_code_is_probed_with_its_condition() {
        // The entry 5 is the loop header, entered again from 7: probed on the way in, on the
        // `je` when not taken (ZF clear: condition code 4).
        let (entry_probe, exits) = probes(LOOP, &[(5, 9)]);
        assert_eq!(entry_probe, entry(3, BranchTest::IfNotTaken(4), 5));
        assert_eq!(exits, Ok(vec![at(5, BranchTest::IfTaken(2))]));
    }

    #[test]
    fn a_call_in_a_branch_starts_at_its_first_instruction_and_ends_where_it_falls_out() {
        let (entry_probe, exits) = probes(CODE, &[(5, 8)]);
        assert_eq!(entry_probe, entry(5, BranchTest::Always, 5));
        // Only the instance leads to the NOP at 8.
        assert_eq!(exits, Ok(vec![at(8, BranchTest::Always)]));
    }

    #[test]
    fn edges_leaving_for_code_only_the_call_reaches_are_probed_there() {
        // The instance is [0, 9): `jb 9` leaves it when taken, the NOP falls out of it; only
        // the instance leads to the RET at 9, which is probed instead.
        let (entry_probe, exits) = probes(CODE, &[(0, 9)]);
        assert_eq!(entry_probe, entry(0, BranchTest::Always, 0));
        assert_eq!(exits, Ok(vec![at(9, BranchTest::Always)]));
    }
}
