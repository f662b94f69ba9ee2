//! Where a call's time went (`--breakdown`, docs/design.md §18): on the CPU, runnable,
//! in system calls, blocked by the runtime's wait reason, and what could not be attributed,
//! which together are the call's duration; as JSON, as one compact human line, and summed
//! per function.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bpf_types::{breakdown_limits, func_breakdown, sched_breakdown};
use crate::output::clock::human_duration;

/// One call's breakdown, or a sum of them: the parts add up to the duration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Breakdown {
    /// Running on a thread that was on a CPU.
    pub oncpu_ns: u64,
    /// Ready but waiting for a P, or running on a thread the kernel switched out while it
    /// stayed runnable (`descheduled_ns` of it).
    pub runnable_ns: u64,
    /// Of `runnable_ns`: running on a thread the kernel switched out.
    pub descheduled_ns: u64,
    /// In a system call, or running on a thread asleep in the kernel.
    pub syscall_ns: u64,
    /// Parked, by the runtime's own wait-reason string.
    pub blocked_ns: BTreeMap<String, u64>,
    /// Not followed (the goroutine map was full, the call's start was evicted) or in a state
    /// gotrace does not classify.
    pub unattributed_ns: u64,
}

/// Each part of a [`Breakdown`] as a fraction (0 to 1) of the duration.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Share {
    /// `oncpu_ns`'s share.
    pub oncpu: f64,
    /// `runnable_ns`'s share.
    pub runnable: f64,
    /// `descheduled_ns`'s share (part of `runnable`).
    pub descheduled: f64,
    /// `syscall_ns`'s share.
    pub syscall: f64,
    /// `blocked_ns`'s shares, by wait reason.
    pub blocked: BTreeMap<String, f64>,
    /// `unattributed_ns`'s share.
    pub unattributed: f64,
}

/// Names a waitReason byte: the binary's own string, else `waitReason(N)`.
pub fn reason_name(reasons: Option<&[String]>, index: u8) -> String {
    // The BPF side counts every reason from the last slot on in that slot.
    let last = breakdown_limits::BREAKDOWN_REASONS.0 - 1;
    if u32::from(index) >= last {
        return format!("waitReason({last} or more)");
    }
    reasons
        .and_then(|names| names.get(usize::from(index)))
        .cloned()
        .unwrap_or_else(|| format!("waitReason({index})"))
}

impl Breakdown {
    /// Each part's fraction of `duration_ns`.
    fn share_of(&self, duration_ns: u64) -> Share {
        let of = |ns: u64| ns as f64 / duration_ns.max(1) as f64;
        Share {
            oncpu: of(self.oncpu_ns),
            runnable: of(self.runnable_ns),
            descheduled: of(self.descheduled_ns),
            syscall: of(self.syscall_ns),
            blocked: self
                .blocked_ns
                .iter()
                .map(|(reason, &ns)| (reason.clone(), of(ns)))
                .collect(),
            unattributed: of(self.unattributed_ns),
        }
    }

    /// The breakdown a return record carries, for a call of `duration_ns`.
    pub fn of_call(b: &sched_breakdown, duration_ns: u64, reasons: Option<&[String]>) -> Self {
        let mut out = Self::attributed(b, reasons);
        out.fill_unattributed(duration_ns);
        out
    }

    /// The parts a return record attributes (nothing when its call was not followed); the
    /// rest of the call's duration is added by [`Breakdown::fill_unattributed`].
    pub fn attributed(b: &sched_breakdown, reasons: Option<&[String]>) -> Self {
        let mut out = Breakdown::default();
        if b.followed != 0 {
            out.oncpu_ns = b.oncpu_ns;
            out.runnable_ns = b.runnable_ns;
            out.descheduled_ns = b.descheduled_ns;
            out.syscall_ns = b.syscall_ns;
            out.unattributed_ns = b.unknown_ns;
            for (reason, &ns) in (0..=u8::MAX).zip(&b.blocked_ns) {
                if ns != 0 {
                    *out.blocked_ns
                        .entry(reason_name(reasons, reason))
                        .or_default() += ns;
                }
            }
        }
        out
    }

    /// Names what the parts leave of `duration_ns` unattributed, so that they sum to it.
    pub fn fill_unattributed(&mut self, duration_ns: u64) {
        self.unattributed_ns += duration_ns.saturating_sub(self.total_ns());
    }

    /// Adds `other`'s parts to these.
    pub fn add(&mut self, other: &Breakdown) {
        self.oncpu_ns += other.oncpu_ns;
        self.runnable_ns += other.runnable_ns;
        self.descheduled_ns += other.descheduled_ns;
        self.syscall_ns += other.syscall_ns;
        self.unattributed_ns += other.unattributed_ns;
        for (reason, ns) in &other.blocked_ns {
            *self.blocked_ns.entry(reason.clone()).or_default() += ns;
        }
    }

    /// Takes `other`'s parts from these (what a call spent outside a callee of breakdown
    /// `other`), each at least 0.
    pub fn subtract(&mut self, other: &Breakdown) {
        self.oncpu_ns = self.oncpu_ns.saturating_sub(other.oncpu_ns);
        self.runnable_ns = self.runnable_ns.saturating_sub(other.runnable_ns);
        self.descheduled_ns = self.descheduled_ns.saturating_sub(other.descheduled_ns);
        self.syscall_ns = self.syscall_ns.saturating_sub(other.syscall_ns);
        self.unattributed_ns = self.unattributed_ns.saturating_sub(other.unattributed_ns);
        for (reason, ns) in &other.blocked_ns {
            if let Some(mine) = self.blocked_ns.get_mut(reason) {
                *mine = mine.saturating_sub(*ns);
            }
        }
    }

    /// The parts off the CPU as flame-graph frame names, with their ns (the non-zero ones):
    /// `[runnable]`, `[syscall]`, `[blocked: REASON]`, `[unattributed]`.
    pub fn off_cpu_frames(&self) -> Vec<(String, u64)> {
        [
            ("[runnable]".to_owned(), self.runnable_ns),
            ("[syscall]".to_owned(), self.syscall_ns),
        ]
        .into_iter()
        .chain(
            self.blocked_ns
                .iter()
                .map(|(reason, ns)| (format!("[blocked: {reason}]"), *ns)),
        )
        .chain([("[unattributed]".to_owned(), self.unattributed_ns)])
        .filter(|(_, ns)| *ns != 0)
        .collect()
    }

    /// The parts' sum (the duration, or the sum of the durations).
    pub fn total_ns(&self) -> u64 {
        self.oncpu_ns
            + self.runnable_ns
            + self.syscall_ns
            + self.blocked_ns.values().sum::<u64>()
            + self.unattributed_ns
    }

    /// The non-zero parts, largest blocked reasons first: (label, ns).
    pub fn parts(&self) -> Vec<(String, u64)> {
        let mut blocked: Vec<(String, u64)> = self
            .blocked_ns
            .iter()
            .map(|(reason, ns)| (format!("blocked {reason}"), *ns))
            .collect();
        blocked.sort_by_key(|part| std::cmp::Reverse(part.1));
        let runnable = if self.descheduled_ns != 0 {
            format!(
                "runnable (descheduled {})",
                human_duration(self.descheduled_ns)
            )
        } else {
            "runnable".to_owned()
        };
        [
            ("on-CPU".to_owned(), self.oncpu_ns),
            (runnable, self.runnable_ns),
            ("syscall".to_owned(), self.syscall_ns),
        ]
        .into_iter()
        .chain(blocked)
        .chain([("unattributed".to_owned(), self.unattributed_ns)])
        .filter(|(_, ns)| *ns != 0)
        .collect()
    }

    /// One compact line: `on-CPU 3.0ms · blocked sleep 5.0ms · ...`.
    pub fn human(&self) -> String {
        self.parts()
            .into_iter()
            .map(|(label, ns)| format!("{label} {}", human_duration(ns)))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// Where a function's calls' time went (`funclat --breakdown`): the parts summed over its
/// calls, each part's share of their durations, and its slowest calls' breakdowns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionBreakdown {
    /// The function's Go name.
    pub function: String,
    /// Its calls timed (entry and RET seen), followed or not.
    pub calls: u64,
    /// Their durations' sum, in ns.
    pub duration_ns: u64,
    /// The parts summed over those calls (the calls not followed: unattributed).
    pub breakdown: Breakdown,
    /// Each part's fraction of `duration_ns` (blocked by reason).
    pub share: Share,
    /// The slowest calls, slowest first.
    pub slowest: Vec<SlowCall>,
}

/// One of a function's slowest calls.
#[derive(Debug, Clone, Serialize)]
pub struct SlowCall {
    /// Its return, CLOCK_MONOTONIC ns.
    #[serde(serialize_with = "crate::output::lines::exact_u64")]
    pub ts_ns: u64,
    /// The goroutine it ran on.
    pub goid: u64,
    /// Its duration in ns.
    pub duration_ns: u64,
    /// Where that time went.
    pub breakdown: Breakdown,
}

impl FunctionBreakdown {
    /// Sums every CPU's copy of a function's `func_breakdown`; keeps its `keep` slowest calls.
    pub fn of_function(
        function: &str,
        per_cpu: &[func_breakdown],
        reasons: Option<&[String]>,
        keep: usize,
    ) -> Self {
        let mut out = FunctionBreakdown {
            function: function.to_owned(),
            ..Default::default()
        };
        for cpu in per_cpu {
            out.calls += cpu.calls;
            out.duration_ns += cpu.duration_ns;
            // Calls not followed are in the durations but in no part: unattributed below.
            out.breakdown
                .add(&Breakdown::of_call(&cpu.total, 0, reasons));
            out.slowest
                .extend(
                    cpu.slowest
                        .iter()
                        .filter(|s| s.duration_ns != 0)
                        .map(|s| SlowCall {
                            ts_ns: s.ts_ns,
                            goid: s.goid,
                            duration_ns: s.duration_ns,
                            breakdown: Breakdown::of_call(&s.breakdown, s.duration_ns, reasons),
                        }),
                );
        }
        out.breakdown.unattributed_ns += out.duration_ns.saturating_sub(out.breakdown.total_ns());
        out.slowest
            .sort_by_key(|s| std::cmp::Reverse(s.duration_ns));
        out.slowest.truncate(keep);
        out.share = out.breakdown.share_of(out.duration_ns);
        out
    }

    /// The human lines: the parts with their shares, then the slowest calls.
    pub fn human(&self) -> String {
        let total = self.duration_ns.max(1) as f64;
        let mut text = format!(
            "Where the time of {} ({}) went:\n  {}\n",
            self.function,
            crate::output::count(self.calls as usize, "call"),
            self.breakdown
                .parts()
                .iter()
                .map(|(label, ns)| {
                    let pct = *ns as f64 * 100.0 / total;
                    format!("{label} {} ({pct:.1}%)", human_duration(*ns))
                })
                .collect::<Vec<_>>()
                .join(" · ")
        );
        for call in &self.slowest {
            text += &format!(
                "  slowest: {} goid {}: {}\n",
                human_duration(call.duration_ns),
                call.goid,
                call.breakdown.human()
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sum_to_the_duration() {
        let mut b = sched_breakdown {
            followed: 1,
            oncpu_ns: 10,
            runnable_ns: 5,
            descheduled_ns: 2,
            syscall_ns: 3,
            ..Default::default()
        };
        b.blocked_ns[2] = 7;
        b.blocked_ns[63] = 1;
        let names: Vec<String> = ["", "a", "IO wait"].map(str::to_owned).to_vec();
        let out = Breakdown::of_call(&b, 30, Some(&names));
        assert_eq!(out.blocked_ns["IO wait"], 7);
        assert_eq!(out.blocked_ns["waitReason(63 or more)"], 1);
        assert_eq!(out.unattributed_ns, 4);
        assert_eq!(out.total_ns(), 30);
        let unfollowed = Breakdown::of_call(&sched_breakdown::default(), 30, None);
        assert_eq!(unfollowed.unattributed_ns, 30);
    }
}
