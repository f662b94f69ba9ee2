//! Log2 latency histograms: accumulation of the per-CPU BPF copies, and output in BCC
//! funclatency's `print_log2_hist` format or as JSON.

use std::io::Write;

use crate::bpf_types::{func_hist, hist_layout};

/// Number of log2 slots (GOTRACE_HIST_SLOTS in src/bpf/gotrace.h).
pub const SLOTS: usize = hist_layout::GOTRACE_HIST_SLOTS.0 as usize;

/// One function's histogram and counters over some period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log2Hist {
    /// slots[i]: calls lasting [2^i, 2^(i+1)) units (slot 0 also holds 0).
    pub slots: [u64; SLOTS],
    /// Calls counted (`untimed` ones too, which are not in `slots`).
    pub count: u64,
    /// Their summed durations, in ns.
    pub total_ns: u64,
    /// Entries whose return never came (panic, Goexit).
    pub unmatched: u64,
    /// Calls not measured: entry not recorded (map full, g unreadable), or a return whose
    /// entry may have been evicted (struct gate in gotrace.h).
    pub lost: u64,
    /// Returns of calls that began before tracing did (struct gate in gotrace.h).
    pub in_flight_at_start: u64,
    /// Calls still running when tracing ended (after the drain).
    pub in_flight_at_end: u64,
    /// Of `count`: calls of inlined instances of the function.
    pub inlined: u64,
    /// Of `inlined`: calls counted where they cannot be timed (in `count`, not in `slots`).
    pub untimed: u64,
}

impl Default for Log2Hist {
    fn default() -> Self {
        Log2Hist {
            slots: [0; SLOTS],
            count: 0,
            total_ns: 0,
            unmatched: 0,
            lost: 0,
            in_flight_at_start: 0,
            in_flight_at_end: 0,
            inlined: 0,
            untimed: 0,
        }
    }
}

impl From<&func_hist> for Log2Hist {
    /// One CPU's copy of a function's BPF histogram.
    fn from(hist: &func_hist) -> Self {
        Log2Hist {
            slots: hist.slots,
            count: hist.count,
            total_ns: hist.total_ns,
            unmatched: hist.unmatched,
            lost: hist.lost,
            in_flight_at_start: hist.in_flight_at_start,
            in_flight_at_end: hist.in_flight_at_end,
            inlined: hist.inlined,
            untimed: hist.untimed,
        }
    }
}

impl Log2Hist {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Log2Hist) {
        for (a, b) in self.slots.iter_mut().zip(other.slots.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.total_ns += other.total_ns;
        self.unmatched += other.unmatched;
        self.lost += other.lost;
        self.in_flight_at_start += other.in_flight_at_start;
        self.in_flight_at_end += other.in_flight_at_end;
        self.inlined += other.inlined;
        self.untimed += other.untimed;
    }

    /// What happened since `earlier` (both cumulative).
    pub fn since(&self, earlier: &Log2Hist) -> Log2Hist {
        let mut diff = self.clone();
        for (a, b) in diff.slots.iter_mut().zip(earlier.slots.iter()) {
            *a -= b;
        }
        diff.count -= earlier.count;
        diff.total_ns -= earlier.total_ns;
        diff.unmatched -= earlier.unmatched;
        diff.lost -= earlier.lost;
        diff.in_flight_at_start -= earlier.in_flight_at_start;
        diff.in_flight_at_end -= earlier.in_flight_at_end;
        diff.inlined -= earlier.inlined;
        diff.untimed -= earlier.untimed;
        diff
    }

    /// Slot i's bounds as BCC prints them: [2^i, 2^(i+1)-1], the first as 0 -> 1.
    fn bounds(slot: usize) -> (u64, u64) {
        let high = (1u128 << (slot + 1)) - 1;
        let low = if slot == 0 { 0 } else { 1u128 << slot };
        (low as u64, high.min(u128::from(u64::MAX)) as u64)
    }

    /// Writes the table like libbpf-tools' `print_log2_hist`, then avg/total/count and the
    /// loss counters.
    pub fn print(&self, out: &mut impl Write, unit: Unit) -> std::io::Result<()> {
        if let Some(idx_max) = self.slots.iter().rposition(|&v| v > 0) {
            let val_max = self.slots.iter().copied().max().unwrap_or(0);
            let (pad, label_width, width, stars) = if idx_max <= 32 {
                (5, 19, 10, 40)
            } else {
                (15, 29, 20, 20)
            };
            writeln!(
                out,
                "{:pad$}{:<label_width$} : count    distribution",
                "",
                unit.label()
            )?;
            for (slot, &val) in self.slots.iter().enumerate().take(idx_max + 1) {
                let (low, high) = Self::bounds(slot);
                let filled = (val * stars / val_max.max(1)) as usize;
                writeln!(
                    out,
                    "{low:>width$} -> {high:<width$} : {val:<8} |{}{}|",
                    "*".repeat(filled),
                    " ".repeat(stars as usize - filled)
                )?;
            }
        }
        // Untimed calls are counted but have no duration.
        let avg = self
            .total_ns
            .checked_div(self.count - self.untimed)
            .unwrap_or(0);
        writeln!(
            out,
            "\navg = {} {}, total: {} {}, count: {}",
            unit.in_unit(avg),
            unit.label(),
            unit.in_unit(self.total_ns),
            unit.label(),
            self.count
        )?;
        if self.inlined > 0 {
            writeln!(
                out,
                "inlined: {} of the calls, {} of them untimed (counted, not in the histogram)",
                self.inlined, self.untimed
            )?;
        }
        writeln!(
            out,
            "unmatched: {} (entries without a return: panics, Goexit), lost: {}, in flight at start: {}, at end: {}",
            self.unmatched, self.lost, self.in_flight_at_start, self.in_flight_at_end
        )
    }

    /// The `--json` summary line of every function's totals; `ts_ns`: the instant entries
    /// stopped counting.
    pub fn summary_json(&self, ts_ns: u64) -> serde_json::Value {
        serde_json::json!({
            "type": "summary",
            "ts_ns": crate::output::lines::ExactU64(ts_ns),
            "time": crate::output::clock::rfc3339(ts_ns),
            "count": self.count,
            "unmatched": self.unmatched,
            "lost": self.lost,
            "in_flight_at_start": self.in_flight_at_start,
            "in_flight_at_end": self.in_flight_at_end,
        })
    }

    /// The `--json` object for one function; `ts_ns`: the end of the period it covers.
    pub fn to_json(&self, function: &str, unit: Unit, ts_ns: u64) -> serde_json::Value {
        let buckets: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(slot, &count)| {
                let (low, high) = Self::bounds(slot);
                serde_json::json!({"low": low, "high": high, "count": count})
            })
            .collect();
        serde_json::json!({
            "type": "hist",
            "ts_ns": crate::output::lines::ExactU64(ts_ns),
            "function": function,
            "unit": unit.short(),
            "count": self.count,
            "total_ns": self.total_ns,
            "buckets": buckets,
            "unmatched": self.unmatched,
            "lost": self.lost,
            "in_flight_at_start": self.in_flight_at_start,
            "in_flight_at_end": self.in_flight_at_end,
            "inlined_calls": self.inlined,
            "untimed": self.untimed,
        })
    }
}

/// The unit histograms are bucketed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds.
    Nanos,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
}

impl Unit {
    /// Nanoseconds per unit (the BPF side divides by this before bucketing).
    pub fn divisor(self) -> u64 {
        match self {
            Unit::Nanos => 1,
            Unit::Micros => 1_000,
            Unit::Millis => 1_000_000,
        }
    }

    fn in_unit(self, ns: u64) -> u64 {
        ns / self.divisor()
    }

    fn label(self) -> &'static str {
        match self {
            Unit::Nanos => "nsecs",
            Unit::Micros => "usecs",
            Unit::Millis => "msecs",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Unit::Nanos => "ns",
            Unit::Micros => "us",
            Unit::Millis => "ms",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_bounds() {
        assert_eq!(Log2Hist::bounds(0), (0, 1));
        assert_eq!(Log2Hist::bounds(1), (2, 3));
        assert_eq!(Log2Hist::bounds(10), (1024, 2047));
        assert_eq!(Log2Hist::bounds(63), (1 << 63, u64::MAX));
    }

    #[test]
    fn table_matches_bcc_layout() {
        let mut hist = Log2Hist::default();
        hist.slots[1] = 2;
        hist.slots[3] = 4;
        hist.count = 6;
        hist.total_ns = 60;
        let mut out = Vec::new();
        hist.print(&mut out, Unit::Nanos).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "     nsecs               : count    distribution");
        assert_eq!(
            lines[2],
            "         2 -> 3          : 2        |********************                    |"
        );
        assert_eq!(
            lines[4],
            "         8 -> 15         : 4        |****************************************|"
        );
        assert_eq!(lines[6], "avg = 10 nsecs, total: 60 nsecs, count: 6");
    }
}
