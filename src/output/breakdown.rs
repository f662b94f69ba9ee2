//! Where a call's time went (`--breakdown`, docs/design.md §18): on the CPU, runnable,
//! in system calls, blocked by the runtime's wait reason, and what could not be attributed,
//! which together are the call's duration; as JSON, as one compact human line, and summed
//! per function.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bpf_types::{breakdown_limits, sched_breakdown};
use crate::output::clock::human_duration;

/// One call's breakdown, or a sum of them; the parts add up to the duration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Breakdown {
    /// Running on a thread that was on a CPU.
    pub oncpu_ns: u64,
    /// Ready but waiting for a P, or running on a thread the kernel switched out while it
    /// stayed runnable (`descheduled_ns` of it).
    pub runnable_ns: u64,
    pub descheduled_ns: u64,
    /// In a system call, or running on a thread asleep in the kernel.
    pub syscall_ns: u64,
    /// Parked, by the runtime's own wait-reason string.
    pub blocked_ns: BTreeMap<String, u64>,
    /// Not followed (the goroutine map was full, the call's start was evicted) or in a state
    /// gotrace does not classify.
    pub unattributed_ns: u64,
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
    /// The breakdown a return record carries, for a call of `duration_ns`.
    pub fn of_call(b: &sched_breakdown, duration_ns: u64, reasons: Option<&[String]>) -> Self {
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
        let attributed = out.oncpu_ns
            + out.runnable_ns
            + out.syscall_ns
            + out.blocked_ns.values().sum::<u64>()
            + out.unattributed_ns;
        out.unattributed_ns += duration_ns.saturating_sub(attributed);
        out
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
