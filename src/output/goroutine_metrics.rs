//! The families `gotrace goroutines --listen` serves: goroutines created and exited, alive
//! now, and their lifetimes, per start function (and creation site with `--listen-sites`),
//! plus every event gotrace could not account for. A snapshot of the [`Ledger`] taken by
//! [`GoroutineMetrics::observe`] and served by [`crate::output::metrics::Exporter`].
//!
//! Cardinality: at most [`MAX_LABEL_SETS`] label sets have series of their own, each
//! [`SERIES_PER_LABEL_SET`] series, in the order they were first seen; label sets seen later
//! are all counted under `function="(other)"` (and `site="(other)"`), so that totals stay
//! exact and no series ever moves between label sets.

use std::collections::HashMap;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::bpf_types::goroutine_counters;
use crate::output::goroutine_ledger::{Ledger, Row, RowKey};
use crate::output::metrics::{encode_seconds_histograms, Metrics, TargetInfo};

/// Label sets with series of their own; the later ones share the [`OTHER`] label set.
pub const MAX_LABEL_SETS: usize = 256;

/// The `function` (and `site`) of the label set beyond [`MAX_LABEL_SETS`].
pub const OTHER: &str = "(other)";

/// The lifetime buckets' bounds are 2^n ns for n in this range: 1.024 µs to 73 minutes (the
/// first power of two past an hour). Longer lifetimes are counted in `+Inf`.
const FIRST_BOUND_LOG2: u32 = 10;
const LAST_BOUND_LOG2: u32 = 42;

/// Lifetime buckets exposed, `+Inf` aside.
const BOUNDS: usize = (LAST_BOUND_LOG2 - FIRST_BOUND_LOG2 + 1) as usize;

/// Series per label set: created, exited, alive, the lifetime buckets, `+Inf`, `_sum`,
/// `_count`.
pub const SERIES_PER_LABEL_SET: usize = 3 + BOUNDS + 3;

/// What one label set counts.
#[derive(Debug, Clone)]
struct Totals {
    created: u64,
    exited: u64,
    alive: u64,
    lifetime_sum_ns: u128,
    /// Lifetimes per bucket (not cumulative): below 2^FIRST_BOUND_LOG2 ns, then one per power
    /// of two, the last one (index BOUNDS) beyond 2^LAST_BOUND_LOG2 ns.
    lifetimes: [u64; BOUNDS + 1],
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            created: 0,
            exited: 0,
            alive: 0,
            lifetime_sum_ns: 0,
            lifetimes: [0; BOUNDS + 1],
        }
    }
}

impl Totals {
    /// Adds a ledger row, of which `alive` goroutines are alive now.
    fn add(&mut self, row: &Row, alive: u64) {
        self.created += row.created;
        self.exited += row.exited;
        self.alive += alive;
        self.lifetime_sum_ns += row.lifetime_sum_ns();
        for (top, count) in row.lifetime_bins() {
            // The bin is below 2^bits ns, and (bins never straddle a power of two) not below
            // 2^(bits-1): it belongs to the bucket whose bound is 2^bits.
            let bits = u64::BITS - top.leading_zeros();
            let bucket = (bits.max(FIRST_BOUND_LOG2) - FIRST_BOUND_LOG2) as usize;
            self.lifetimes[bucket.min(BOUNDS)] += count;
        }
    }

    /// The lifetime buckets for the encoder: (bound in seconds, count), `+Inf` last.
    fn buckets(&self) -> Vec<(f64, u64)> {
        (FIRST_BOUND_LOG2..=LAST_BOUND_LOG2)
            .map(|n| 2f64.powi(n as i32) / 1e9)
            .chain([f64::INFINITY])
            .zip(self.lifetimes)
            .collect()
    }
}

/// The goroutine families' snapshot.
#[derive(Debug, Clone)]
pub struct GoroutineMetrics {
    /// Label sets are (function, site) rather than (function, "").
    by_site: bool,
    /// Where each label set with series of its own is in `totals`.
    index: HashMap<RowKey, usize>,
    /// The label sets with series of their own, in the order first seen.
    totals: Vec<(RowKey, Totals)>,
    /// The label sets beyond the first [`MAX_LABEL_SETS`], once there is one.
    other: Option<Totals>,
    exits_unseen_creation: u64,
    losses: goroutine_counters,
}

impl GoroutineMetrics {
    /// Empty families, labelled by start function, and by creation site too when `by_site`.
    pub fn new(by_site: bool) -> GoroutineMetrics {
        GoroutineMetrics {
            by_site,
            index: HashMap::new(),
            totals: Vec::new(),
            other: None,
            exits_unseen_creation: 0,
            losses: goroutine_counters::default(),
        }
    }

    /// Takes the ledger's counts now (cumulative since tracing began) and the kernel side's
    /// loss counters (summed over CPUs).
    pub fn observe(&mut self, ledger: &Ledger, losses: goroutine_counters) {
        for (_, totals) in &mut self.totals {
            *totals = Totals::default();
        }
        if let Some(other) = &mut self.other {
            *other = Totals::default();
        }
        let live = ledger.live_by_row();
        for (key, row) in ledger.rows() {
            let alive = live.get(key).copied().unwrap_or(0);
            self.totals_of(key).add(row, alive);
        }
        self.exits_unseen_creation = ledger.exits_unseen_creation;
        self.losses = losses;
    }

    /// The totals of the label set of ledger row `key` (a new label set gets its own while
    /// there are fewer than [`MAX_LABEL_SETS`]).
    fn totals_of(&mut self, key: &RowKey) -> &mut Totals {
        let site = if self.by_site { key.1.as_str() } else { "" };
        let label = (key.0.clone(), site.to_owned());
        let next = self.totals.len();
        match self.index.get(&label) {
            Some(&at) => &mut self.totals[at].1,
            None if next < MAX_LABEL_SETS => {
                self.index.insert(label.clone(), next);
                self.totals.push((label, Totals::default()));
                &mut self.totals[next].1
            }
            None => self.other.get_or_insert_with(Totals::default),
        }
    }

    /// Every label set with its totals, [`OTHER`] last.
    fn label_sets<'a>(
        &'a self,
        target: &'a TargetInfo,
    ) -> impl Iterator<Item = (Vec<(&'static str, String)>, &'a Totals)> + 'a {
        let own = self
            .totals
            .iter()
            .map(|((f, s), t)| (f.as_str(), s.as_str(), t));
        let other = self.other.iter().map(|t| (OTHER, OTHER, t));
        own.chain(other).map(move |(function, site, totals)| {
            let mut set = vec![("function", function.to_owned())];
            if self.by_site {
                set.push(("site", site.to_owned()));
            }
            (target.labels(set), totals)
        })
    }
}

/// Which count of a label set a per-label-set counter or gauge exposes.
type Counted = fn(&Totals) -> u64;

impl Metrics for GoroutineMetrics {
    fn encode(&self, target: &TargetInfo, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let per_label_set: [(&str, &str, MetricType, Counted); 3] = [
            (
                "gotrace_goroutines_created",
                "Goroutines created (go statements run) while tracing, by start function",
                MetricType::Counter,
                |t| t.created,
            ),
            (
                "gotrace_goroutines_exited",
                "Goroutines created while tracing that have exited, by start function",
                MetricType::Counter,
                |t| t.exited,
            ),
            (
                "gotrace_goroutines_live",
                "Goroutines created while tracing and alive now (those of processes that ended are not), by start function",
                MetricType::Gauge,
                |t| t.alive,
            ),
        ];
        for (name, help, kind, value) in per_label_set {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for (set, totals) in self.label_sets(target) {
                let mut family = metric.encode_family(&set)?;
                match kind {
                    MetricType::Gauge => family.encode_gauge(&value(totals))?,
                    _ => family.encode_counter::<NoLabelSet, _, u64>(&value(totals), None)?,
                }
            }
        }
        encode_seconds_histograms(
            encoder,
            "gotrace_goroutine_lifetime",
            "Lifetimes of the goroutines created while tracing that have exited (creation to exit), by start function",
            self.label_sets(target).map(|(set, totals)| {
                let buckets = totals.buckets();
                let count = buckets.iter().map(|&(_, n)| n).sum();
                (set, totals.lifetime_sum_ns as f64 / 1e9, count, buckets)
            }),
        )?;
        let mut lost = encoder.encode_descriptor(
            "gotrace_goroutine_events_lost",
            "Creation and exit events gotrace could not record, by reason: buffer_full (the kernel buffer had no room), unreadable (the goroutine could not be read), unpaired (a creation's entry was not seen)",
            None,
            MetricType::Counter,
        )?;
        let l = &self.losses;
        for (reason, count) in [
            ("buffer_full", l.lost),
            ("unreadable", l.unreadable),
            ("unpaired", l.unpaired),
        ] {
            let set = target.labels(vec![("reason", reason.to_owned())]);
            lost.encode_family(&set)?
                .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
        }
        let mut unseen = encoder.encode_descriptor(
            "gotrace_goroutines_exited_unseen_creation",
            "Exits of goroutines whose creation gotrace did not see (created before tracing began), so with no start function",
            None,
            MetricType::Counter,
        )?;
        unseen
            .encode_family(&target.labels(Vec::new()))?
            .encode_counter::<NoLabelSet, _, u64>(&self.exits_unseen_creation, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::metrics::tests::exposition;

    fn key(function: &str, site: &str) -> RowKey {
        (function.to_owned(), site.to_owned())
    }

    /// main.a from two sites: one exited after 3 µs, one after 2 hours, one alive; main.b
    /// exited after exactly 2^20 ns.
    fn ledger() -> Ledger {
        let mut ledger = Ledger::default();
        ledger.created(1, 10, 0, key("main.a", "a.go:1"));
        ledger.created(1, 11, 0, key("main.a", "a.go:2"));
        ledger.created(1, 12, 0, key("main.a", "a.go:2"));
        ledger.created(1, 13, 0, key("main.b", "b.go:1"));
        ledger.exited(1, 10, 3_000);
        ledger.exited(1, 11, 7_200_000_000_000);
        ledger.exited(1, 13, 1 << 20);
        ledger.exited(1, 99, 5);
        ledger
    }

    fn losses() -> goroutine_counters {
        goroutine_counters {
            lost: 4,
            unreadable: 1,
            unpaired: 0,
            in_flight_at_start: 0,
        }
    }

    fn assert_lines(body: &str, lines: &[String]) {
        for line in lines {
            assert!(
                body.contains(&format!("{line}\n")),
                "no {line:?} in:\n{body}"
            );
        }
    }

    #[test]
    fn by_function_counts_and_buckets() {
        let mut metrics = GoroutineMetrics::new(false);
        metrics.observe(&ledger(), losses());
        let body = exposition(metrics, Some(42));
        let a = r#"function="main.a",binary="server",pid="42""#;
        let b = r#"function="main.b",binary="server",pid="42""#;
        let bucket = |labels: &str, le: &str, n: u64| {
            format!("gotrace_goroutine_lifetime_seconds_bucket{{{labels},le=\"{le}\"}} {n}")
        };
        assert_lines(
            &body,
            &[
                format!("gotrace_goroutines_created_total{{{a}}} 3"),
                format!("gotrace_goroutines_exited_total{{{a}}} 2"),
                format!("gotrace_goroutines_live{{{a}}} 1"),
                format!("gotrace_goroutines_created_total{{{b}}} 1"),
                bucket(a, "2.048e-06", 0),
                bucket(a, "4.096e-06", 1),
                bucket(a, "4398.046511104", 1),
                bucket(a, "+Inf", 2),
                format!("gotrace_goroutine_lifetime_seconds_sum{{{a}}} 7200.000003"),
                format!("gotrace_goroutine_lifetime_seconds_count{{{a}}} 2"),
                // Exactly 2^20 ns is not below 2^20 ns.
                bucket(b, "0.001048576", 0),
                bucket(b, "0.002097152", 1),
                r#"gotrace_goroutine_events_lost_total{reason="buffer_full",binary="server",pid="42"} 4"#.to_owned(),
                r#"gotrace_goroutine_events_lost_total{reason="unpaired",binary="server",pid="42"} 0"#.to_owned(),
                r#"gotrace_goroutines_exited_unseen_creation_total{binary="server",pid="42"} 1"#.to_owned(),
            ],
        );
        assert!(!body.contains("site="), "{body}");
        let series = body.lines().filter(|l| !l.starts_with('#')).count();
        // Two label sets, three loss reasons, the unseen exits, the target's info.
        assert_eq!(series, 2 * SERIES_PER_LABEL_SET + 3 + 1 + 1, "{body}");
    }

    #[test]
    fn by_site_and_the_alive_of_ended_processes() {
        let mut ledger = ledger();
        let mut metrics = GoroutineMetrics::new(true);
        metrics.observe(&ledger, losses());
        let a2 = r#"function="main.a",site="a.go:2",binary="server""#;
        assert_lines(
            &exposition(metrics.clone(), None),
            &[
                format!("gotrace_goroutines_created_total{{{a2}}} 2"),
                format!("gotrace_goroutines_live{{{a2}}} 1"),
            ],
        );
        ledger.process_ended(1);
        metrics.observe(&ledger, losses());
        assert_lines(
            &exposition(metrics.clone(), None),
            &[
                format!("gotrace_goroutines_created_total{{{a2}}} 2"),
                format!("gotrace_goroutines_exited_total{{{a2}}} 1"),
                format!("gotrace_goroutines_live{{{a2}}} 0"),
            ],
        );
    }

    #[test]
    fn label_sets_beyond_the_cap_are_counted_together() {
        let mut ledger = Ledger::default();
        let mut metrics = GoroutineMetrics::new(false);
        // The last function sorts first: a label set keeps its place by first appearance.
        ledger.created(1, 1, 0, key("main.z", "z.go:1"));
        metrics.observe(&ledger, losses());
        for i in 0..MAX_LABEL_SETS + 10 {
            ledger.created(
                1,
                100 + i as u64,
                0,
                key(&format!("main.f{i:04}"), "f.go:1"),
            );
        }
        metrics.observe(&ledger, losses());
        metrics.observe(&ledger, losses());
        let body = exposition(metrics.clone(), None);
        let created = |function: &str| {
            format!(
                "gotrace_goroutines_created_total{{function=\"{function}\",binary=\"server\"}} "
            )
        };
        assert!(
            body.contains(&format!("{}1\n", created("main.z"))),
            "{body}"
        );
        assert!(body.contains(&format!("{}1\n", created("main.f0000"))));
        assert!(body.contains(&format!("{}1\n", created("main.f0254"))));
        assert!(!body.contains(&created("main.f0255")));
        assert!(body.contains(&format!("{}11\n", created(OTHER))), "{body}");
        let label_sets = body.matches("gotrace_goroutines_created_total{").count();
        assert_eq!(label_sets, MAX_LABEL_SETS + 1);
    }
}
