//! `gotrace goroutines --blocked`: the goroutines parked right now, oldest first (a leak is
//! the goroutine that has waited longest), each with its wait reason, park site and stack;
//! then one row per wait reason and park site; then what was not listed and why.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::clock::{human_duration, Stamp};
use super::lines::{write_json_line, ExactU64};

/// One frame of a parked goroutine's stack (inlined calls are frames of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The function, as the pclntab names it.
    pub function: String,
    /// Its source file.
    pub file: String,
    /// The line in `file`.
    pub line: i64,
}

/// One parked goroutine, named.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedGoroutine {
    /// The process it belongs to.
    pub pid: u32,
    /// Its goroutine id (`g.goid`).
    pub goid: u64,
    /// `waiting`, or `leaked` (Go 1.27: the GC found it unreachable).
    pub state: &'static str,
    /// The runtime's own name for why it waits (`chan receive`, `sync.Mutex.Lock`, ...).
    pub wait_reason: String,
    /// The runtime's own estimate of when it parked, `g.waitsince` (CLOCK_MONOTONIC ns; what
    /// Go's tracebacks print as `[chan receive, N minutes]`): the first collection that finds
    /// it parked stamps it with when the collection before that one ended its marking, so it
    /// parked after about then. None until a collection has stamped it (the first collection
    /// of a process stamps 0).
    pub parked_since_ns: Option<ExactU64>,
    /// `ts_ns - parked_since_ns`.
    pub parked_for_ns: Option<u64>,
    /// Its start function (the frame runtime.goexit called).
    pub function: String,
    /// Where it parked: its innermost frame outside the standard library, else outside package
    /// runtime.
    pub park_function: String,
    /// `file:line` of the park function's frame.
    pub park_site: String,
    /// Innermost first.
    pub stack: Vec<Frame>,
}

/// One read of a process's goroutines.
#[derive(Debug, Default)]
pub struct ParkedReport {
    /// The process read.
    pub pid: u32,
    /// CLOCK_MONOTONIC ns of the read.
    pub ts_ns: u64,
    /// Listed, oldest first.
    pub goroutines: Vec<ParkedGoroutine>,
    /// Live goroutines not parked (running, runnable, in a system call).
    pub not_parked: u64,
    /// Parked goroutines of the runtime's own (GC workers, sweeper, ...), as
    /// `runtime.Stack(buf, true)` leaves them out.
    pub runtime_goroutines: u64,
    /// Parked goroutines whose start function `--filter` does not match.
    pub filtered: u64,
    /// Goroutines whose `runtime.g` could not be read (changing while read, or freed).
    pub unreadable: u64,
    /// Listed goroutines whose wait-reason byte the binary's names do not cover (listed as
    /// `waitReason(N)`).
    pub unnamed_reasons: u64,
}

impl ParkedReport {
    /// Sorts the goroutines oldest first (those no collection has seen yet last), then by
    /// goid.
    pub fn sort(&mut self) {
        self.goroutines.sort_by_key(|g| {
            (
                g.parked_since_ns.is_none(),
                g.parked_since_ns.map(|t| t.0),
                g.goid,
            )
        });
    }

    /// Writes every goroutine, the rows and the counts: as JSON lines (`parked`, then
    /// `summary`), or as tables.
    pub fn write(&self, out: &mut impl Write, json: bool) -> io::Result<()> {
        if json {
            for g in &self.goroutines {
                write_json_line(
                    out,
                    "parked",
                    &JsonParked {
                        ts_ns: self.ts_ns,
                        g,
                    },
                )?;
            }
            return write_json_line(out, "summary", &self.summary());
        }
        self.write_human(out)
    }

    fn write_human(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{:>8}  {:<7}  {:<24}  {:>11}  {:<40}  PARK SITE",
            "GOID", "STATE", "WAIT REASON", "PARKED FOR", "PARKED IN"
        )?;
        for g in &self.goroutines {
            writeln!(
                out,
                "{:>8}  {:<7}  {:<24}  {:>11}  {:<40}  {}",
                g.goid,
                g.state,
                g.wait_reason,
                parked_for(g.parked_for_ns),
                g.park_function,
                g.park_site
            )?;
        }
        let summary = self.summary();
        writeln!(out)?;
        writeln!(
            out,
            "{:>8}  {:>11}  {:<24}  PARKED IN",
            "COUNT", "OLDEST", "WAIT REASON"
        )?;
        for row in &summary.rows {
            writeln!(
                out,
                "{:>8}  {:>11}  {:<24}  {} ({})",
                row.count,
                parked_for(row.oldest_parked_for_ns),
                row.wait_reason,
                row.park_function,
                row.park_site
            )?;
        }
        writeln!(
            out,
            "process {}: {} parked ({} with an unnamed wait reason), {} not parked; not listed: {} parked of the runtime's own, {} filtered, {} unreadable",
            self.pid,
            summary.parked,
            summary.unnamed_reasons,
            summary.not_parked,
            summary.runtime_goroutines,
            summary.filtered,
            summary.unreadable
        )?;
        writeln!(
            out,
            "PARKED FOR: the runtime's own estimate (g.waitsince, stamped by the garbage collector as for Go's tracebacks); -: no collection has stamped it yet"
        )
    }

    /// The rows by wait reason and park site (oldest first) and the counts.
    fn summary(&self) -> Summary {
        let mut rows: BTreeMap<(&str, &str, &str), Row> = BTreeMap::new();
        for g in &self.goroutines {
            let row = rows
                .entry((&g.wait_reason, &g.park_function, &g.park_site))
                .or_insert_with(|| Row {
                    wait_reason: g.wait_reason.clone(),
                    park_function: g.park_function.clone(),
                    park_site: g.park_site.clone(),
                    count: 0,
                    oldest_parked_for_ns: None,
                });
            row.count += 1;
            row.oldest_parked_for_ns = row.oldest_parked_for_ns.max(g.parked_for_ns);
        }
        let mut rows: Vec<Row> = rows.into_values().collect();
        rows.sort_by_key(|r| {
            (
                std::cmp::Reverse(r.oldest_parked_for_ns),
                std::cmp::Reverse(r.count),
            )
        });
        Summary {
            stamp: Stamp::at(self.ts_ns),
            pid: self.pid,
            parked: self.goroutines.len() as u64,
            not_parked: self.not_parked,
            runtime_goroutines: self.runtime_goroutines,
            filtered: self.filtered,
            unreadable: self.unreadable,
            unnamed_reasons: self.unnamed_reasons,
            rows,
        }
    }
}

/// `PARKED FOR`: about this long, or `-` when no collection has stamped it.
fn parked_for(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format!("~{}", human_duration(ns)))
}

/// A `parked` JSON line.
#[derive(Serialize)]
struct JsonParked<'g> {
    #[serde(serialize_with = "super::lines::exact_u64")]
    ts_ns: u64,
    #[serde(flatten)]
    g: &'g ParkedGoroutine,
}

/// Goroutines parked for one wait reason at one park site.
#[derive(Serialize)]
struct Row {
    wait_reason: String,
    park_function: String,
    park_site: String,
    count: u64,
    oldest_parked_for_ns: Option<u64>,
}

/// The `summary` line of `goroutines --blocked`.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    stamp: Stamp,
    pid: u32,
    parked: u64,
    not_parked: u64,
    runtime_goroutines: u64,
    filtered: u64,
    unreadable: u64,
    unnamed_reasons: u64,
    rows: Vec<Row>,
}
