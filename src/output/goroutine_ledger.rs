//! The book `gotrace goroutines` keeps of what it saw: the goroutines alive now (keyed by
//! (pid, goid), because runtime g structs are reused after exit) and, per start function and
//! creation site, how many were created and exited and how long they lived (in a fixed-size
//! HDR histogram: memory does not grow with the number of goroutines). Plain data, fed by
//! events, testable without BPF.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

/// Significant decimal digits the lifetime percentiles keep: relative error below 1%, and at
/// most ~30 KiB per row for lifetimes up to hours.
const LIFETIME_DIGITS: u8 = 2;

/// One summary row's key: start function and creation site.
pub type RowKey = (String, String);

/// Totals for one start function and creation site.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Goroutines created while tracing.
    pub created: u64,
    /// Of those, the ones that exited.
    pub exited: u64,
    /// Goroutines still running when their process exited (they never exit on their own).
    pub running_at_process_exit: u64,
    /// Lifetimes of the exited ones, in ns.
    lifetimes_ns: Histogram<u64>,
    /// The longest lifetime, exact.
    max_ns: u64,
    /// The sum of the lifetimes, exact.
    sum_ns: u128,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            created: 0,
            exited: 0,
            running_at_process_exit: 0,
            lifetimes_ns: Histogram::new(LIFETIME_DIGITS).expect("2 significant digits are valid"),
            max_ns: 0,
            sum_ns: 0,
        }
    }
}

impl Row {
    /// Goroutines created and alive now: not exited, and their process still runs.
    pub fn alive(&self) -> u64 {
        self.created - self.exited - self.running_at_process_exit
    }

    /// Records one exited goroutine's lifetime.
    fn record_lifetime(&mut self, ns: u64) {
        self.exited += 1;
        if self.lifetimes_ns.record(ns).is_err() {
            self.lifetimes_ns.saturating_record(ns);
        }
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += u128::from(ns);
    }

    /// The percentile `p` (0–100] of the lifetimes, within 1%; None when none exited.
    pub fn lifetime_percentile_ns(&self, p: u64) -> Option<u64> {
        (!self.lifetimes_ns.is_empty()).then(|| {
            self.lifetimes_ns
                .value_at_percentile(p as f64)
                .min(self.max_ns)
        })
    }

    /// The longest lifetime; None when none exited.
    pub fn lifetime_max_ns(&self) -> Option<u64> {
        (!self.lifetimes_ns.is_empty()).then_some(self.max_ns)
    }

    /// The sum of the lifetimes of the exited ones, in ns (exact).
    pub fn lifetime_sum_ns(&self) -> u128 {
        self.sum_ns
    }

    /// The recorded lifetimes as histogram bins: (the largest lifetime in ns the bin holds,
    /// how many). Bins never straddle a power of two ns (each bin of the HDR histogram is
    /// 2^k ns wide and starts at a multiple of its width), so counts below 2^n ns are exact.
    pub fn lifetime_bins(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.lifetimes_ns
            .iter_recorded()
            .map(|bin| (bin.value_iterated_to(), bin.count_at_value()))
    }
}

/// A goroutine created while tracing, not yet exited.
#[derive(Debug, Clone)]
struct Live {
    created_ns: u64,
    row: RowKey,
}

/// Everything seen so far.
#[derive(Debug, Default)]
pub struct Ledger {
    live: HashMap<(u32, u64), Live>,
    rows: BTreeMap<RowKey, Row>,
    peak_live: usize,
    /// Exits of goroutines whose creation was not seen (created before tracing began).
    pub exits_unseen_creation: u64,
}

impl Ledger {
    /// Records a creation. A goid still marked live in that process (its exit was lost) is
    /// replaced.
    pub fn created(&mut self, pid: u32, goid: u64, ts_ns: u64, row: RowKey) {
        self.rows.entry(row.clone()).or_default().created += 1;
        self.live.insert(
            (pid, goid),
            Live {
                created_ns: ts_ns,
                row,
            },
        );
        self.peak_live = self.peak_live.max(self.live.len());
    }

    /// Records an exit; returns the lifetime when the creation was seen.
    pub fn exited(&mut self, pid: u32, goid: u64, ts_ns: u64) -> Option<u64> {
        let Some(live) = self.live.remove(&(pid, goid)) else {
            self.exits_unseen_creation += 1;
            return None;
        };
        let lifetime = ts_ns.saturating_sub(live.created_ns);
        self.rows
            .entry(live.row)
            .or_default()
            .record_lifetime(lifetime);
        Some(lifetime)
    }

    /// Forgets every live goroutine of a process that ended (it has no more exits to give).
    pub fn process_ended(&mut self, pid: u32) {
        let rows = &mut self.rows;
        self.live.retain(|&(p, _), live| {
            if p == pid {
                rows.entry(live.row.clone())
                    .or_default()
                    .running_at_process_exit += 1;
            }
            p != pid
        });
    }

    /// The processes with live goroutines.
    pub fn pids(&self) -> std::collections::BTreeSet<u32> {
        self.live.keys().map(|&(pid, _)| pid).collect()
    }

    /// The summary rows, by function then site.
    pub fn rows(&self) -> &BTreeMap<RowKey, Row> {
        &self.rows
    }

    /// Goroutines alive now (created while tracing), by summary row.
    pub fn live_by_row(&self) -> HashMap<&RowKey, u64> {
        let mut counts = HashMap::new();
        for live in self.live.values() {
            *counts.entry(&live.row).or_default() += 1;
        }
        counts
    }

    /// Goroutines alive now (created while tracing).
    pub fn current_live(&self) -> usize {
        self.live.len()
    }

    /// The most goroutines alive at once (created while tracing).
    pub fn peak_live(&self) -> usize {
        self.peak_live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str) -> RowKey {
        (f.to_owned(), "main.go:1".to_owned())
    }

    #[test]
    fn lifetimes_and_live_counts() {
        let mut ledger = Ledger::default();
        ledger.created(1, 10, 100, key("main.a"));
        ledger.created(1, 11, 150, key("main.a"));
        ledger.created(2, 10, 120, key("main.b"));
        assert_eq!(ledger.peak_live(), 3);
        assert_eq!(ledger.exited(1, 10, 400), Some(300));
        assert_eq!(ledger.exited(1, 99, 400), None);
        assert_eq!(ledger.exits_unseen_creation, 1);
        assert_eq!(ledger.current_live(), 2);
        let row = &ledger.rows()[&key("main.a")];
        assert_eq!((row.created, row.exited, row.alive()), (2, 1, 1));
        assert_eq!(row.lifetime_percentile_ns(50), Some(300));
        assert_eq!(row.lifetime_sum_ns(), 300);
        assert_eq!(ledger.live_by_row()[&key("main.a")], 1);
        assert_eq!(ledger.pids().into_iter().collect::<Vec<_>>(), vec![1, 2]);
        ledger.process_ended(1);
        assert_eq!(ledger.current_live(), 1);
        let row = &ledger.rows()[&key("main.a")];
        assert_eq!((row.alive(), row.running_at_process_exit), (0, 1));
        assert_eq!(ledger.peak_live(), 3);
    }

    #[test]
    fn percentiles_within_a_hundredth() {
        let mut row = Row::default();
        for ns in (1..=100_000u64).rev() {
            row.created += 1;
            row.record_lifetime(ns * 1000);
        }
        let near = |got: Option<u64>, want: u64| {
            let got = got.unwrap();
            assert!(
                got.abs_diff(want) * 100 <= want,
                "{got} is not within 1% of {want}"
            );
            true
        };
        assert!(near(row.lifetime_percentile_ns(50), 50_000_000));
        assert!(near(row.lifetime_percentile_ns(99), 99_000_000));
        assert_eq!(row.lifetime_max_ns(), Some(100_000_000));
        assert_eq!(row.lifetime_sum_ns(), 1000 * 100_000 * 100_001 / 2);
        // Counts below each power of two, from the bins, are exact.
        for n in 10..=27 {
            let below: u64 = row
                .lifetime_bins()
                .filter(|&(top, _)| top < 1 << n)
                .map(|(_, count)| count)
                .sum();
            assert_eq!(
                below,
                (((1u64 << n) - 1) / 1000).min(100_000),
                "below 2^{n} ns"
            );
        }
        assert_eq!(Row::default().lifetime_percentile_ns(99), None);
    }
}
