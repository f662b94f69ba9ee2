//! Turning `gotrace goroutines` records into output: naming start functions and creation sites
//! (the BPF side sends link-time addresses, PIE or not), keeping the [`Ledger`], and rendering events and the
//! summary as human lines or JSON.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::bpf_types::{self, goroutine_event, goroutine_event_kind};
use crate::cli::GoroutinesArgs;
use crate::gobin::runtime::creation_stack;
use crate::gobin::runtime::start_function::{self, Start, StartFunction};
use crate::gobin::GoBinary;
use crate::output::clock::Stamp;
use crate::output::goroutine_ledger::Ledger;
use crate::output::{clock, lines};

/// What every `--json` event line carries first: when, and which goroutine of which process.
#[derive(Serialize)]
struct EventJson {
    #[serde(serialize_with = "crate::output::lines::exact_u64")]
    ts_ns: u64,
    pid: u32,
    goid: u64,
}

impl EventJson {
    fn of(e: &goroutine_event) -> Self {
        EventJson {
            ts_ns: e.ts_ns,
            pid: e.tgid,
            goid: e.goid,
        }
    }
}

/// A `--json` create event.
#[derive(Serialize)]
struct CreateJson<'a> {
    #[serde(flatten)]
    event: EventJson,
    parent_goid: u64,
    function: &'a str,
    site: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wrapper: Option<&'a str>,
    /// With --stack: "function file:line", the go statement first.
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<Vec<String>>,
}

/// A `--json` exit event.
#[derive(Serialize)]
struct ExitJson {
    #[serde(flatten)]
    event: EventJson,
    lifetime_ns: u64,
}

/// One `--json` summary row (percentiles `null` while none of its goroutines exited).
#[derive(Serialize)]
struct RowJson<'a> {
    function: &'a str,
    site: &'a str,
    created: u64,
    exited: u64,
    alive: u64,
    running_at_process_exit: u64,
    lifetime_p50_ns: Option<u64>,
    lifetime_p99_ns: Option<u64>,
    lifetime_max_ns: Option<u64>,
}

/// The `--json` summary.
#[derive(Serialize)]
struct SummaryJson<'a> {
    r#type: &'static str,
    /// The final summary's: the instant creations and exits stopped counting.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    at: Option<Stamp>,
    rows: Vec<RowJson<'a>>,
    lost: u64,
    #[serde(flatten)]
    edges: SummaryEdges,
    exits_created_before_start: u64,
}

/// The edges of a goroutines trace: goroutine creations (runtime.newproc1 calls) under way
/// when tracing began (not reported as created) and when it ended.
#[derive(Serialize, Debug, Default, Clone, Copy)]
pub struct SummaryEdges {
    /// newproc1 returns of calls that began before tracing did.
    pub in_flight_at_start: u64,
    /// newproc1 calls still open at the stop (0 in an interval summary).
    pub in_flight_at_end: u64,
}

/// Turns records into lines and keeps the ledger.
pub struct Report<'a> {
    bin: &'a GoBinary<'a>,
    filter: Option<glob::Pattern>,
    args: &'a GoroutinesArgs,
    ledger: Ledger,
    /// Start function by `funcval.fn`.
    names: HashMap<u64, Start>,
    /// Creation site by caller PC.
    sites: HashMap<u64, String>,
    /// Add to a BPF timestamp to get Unix time.
    clock_offset: i128,
    /// Lines rendered since the last flush.
    lines: Vec<u8>,
    /// The first error met inside the ring-buffer callback.
    failure: Option<anyhow::Error>,
}

impl<'a> Report<'a> {
    /// A report for `bin`, as `args` ask.
    pub fn new(bin: &'a GoBinary<'a>, args: &'a GoroutinesArgs) -> Result<Self> {
        let filter = crate::plan::optional_glob(args.filter.as_deref(), "--filter pattern")?;
        if let Some(pattern) = &filter {
            if !bin.funcs.iter().any(|f| pattern.matches(f.name)) {
                bail!(
                    "--filter {:?} matches no function of this binary, so no goroutine would be shown (start functions are package-qualified, e.g. 'main.*'; `gotrace list BINARY` names them)",
                    pattern.as_str()
                );
            }
        }
        Ok(Report {
            bin,
            filter,
            args,
            ledger: Ledger::default(),
            names: HashMap::new(),
            sites: HashMap::new(),
            clock_offset: clock::monotonic_to_unix_ns(),
            lines: Vec::with_capacity(1 << 16),
            failure: None,
        })
    }

    /// The event table's column titles (human output, events shown).
    pub fn print_header(&mut self) -> Result<()> {
        if !self.args.target.json && !self.args.summary {
            writeln!(
                self.lines,
                "{:<15} {:>7} {:>8} {:<6} DETAILS",
                "TIME", "PID", "GOID", "EVENT"
            )?;
        }
        Ok(())
    }

    /// Handles one ring-buffer record; an error is kept for [`Report::flush`].
    pub fn on_record(&mut self, bytes: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        if let Err(err) = bpf_types::read(bytes).and_then(|e| self.on_event(e)) {
            self.failure = Some(err);
        }
    }

    /// Writes the pending lines; fails with the first error the callback met.
    pub fn flush(&mut self, out: &mut impl Write) -> Result<()> {
        out.write_all(&self.lines)?;
        self.lines.clear();
        out.flush()?;
        self.failure.take().map_or(Ok(()), Err)
    }

    /// `HH:MM:SS.micros` of a BPF timestamp.
    fn time(&self, ts_ns: u64) -> String {
        clock::hms_micros(i128::from(ts_ns) + self.clock_offset)
    }

    fn on_event(&mut self, e: goroutine_event) -> Result<()> {
        if e.kind == goroutine_event_kind::GOROUTINE_EXITED {
            return self.on_exit(&e);
        }
        let start = self.start_function(e.start_pc, e.closure_pc);
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !f.matches(&start.function))
        {
            return Ok(());
        }
        let site = self.site(e.caller_pc);
        let stack = self
            .args
            .stack
            .then(|| creation_stack::frames(self.bin, &e.stack, e.caller_pc));
        let row = (start.function.clone(), site.clone());
        self.ledger.created(e.tgid, e.goid, e.ts_ns, row);
        if self.args.summary {
            return Ok(());
        }
        if self.args.target.json {
            let json = CreateJson {
                event: EventJson::of(&e),
                parent_goid: e.parent_goid,
                function: &start.function,
                site: &site,
                wrapper: start.wrapper.as_deref(),
                stack,
            };
            lines::write_json_line(&mut self.lines, "create", &json)?;
            return Ok(());
        }
        let when = self.time(e.ts_ns);
        writeln!(
            self.lines,
            "{when:<15} {:>7} {:>8} {:<6} {} from goroutine {} at {site}",
            e.tgid, e.goid, "create", start.function, e.parent_goid
        )?;
        for frame in stack.iter().flatten() {
            writeln!(self.lines, "{:>41}{frame}", "")?;
        }
        Ok(())
    }

    fn on_exit(&mut self, e: &goroutine_event) -> Result<()> {
        let Some(lifetime_ns) = self.ledger.exited(e.tgid, e.goid, e.ts_ns) else {
            return Ok(());
        };
        if self.args.summary {
            return Ok(());
        }
        if self.args.target.json {
            let json = ExitJson {
                event: EventJson::of(e),
                lifetime_ns,
            };
            lines::write_json_line(&mut self.lines, "exit", &json)?;
        } else {
            let when = self.time(e.ts_ns);
            let lifetime = clock::human_duration(lifetime_ns);
            writeln!(
                self.lines,
                "{when:<15} {:>7} {:>8} {:<6} lifetime {lifetime}",
                e.tgid, e.goid, "exit"
            )?;
        }
        Ok(())
    }

    /// The start function at `pc`, whose closure leads to `closure_pc` (what the code tells
    /// is cached by `pc`).
    fn start_function(&mut self, pc: u64, closure_pc: u64) -> StartFunction {
        let bin = self.bin;
        self.names
            .entry(pc)
            .or_insert_with(|| {
                start_function::resolve(bin, pc).unwrap_or_else(|| {
                    Start::Known(StartFunction {
                        function: format!("{pc:#x}"),
                        wrapper: None,
                    })
                })
            })
            .resolve(bin, closure_pc)
    }

    /// "file:line" of the go statement whose return address is `pc` (cached).
    fn site(&mut self, pc: u64) -> String {
        let bin = self.bin;
        self.sites
            .entry(pc)
            .or_insert_with(|| bin.call_site(pc).file_line_or(pc))
            .clone()
    }

    /// What was seen so far.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Forgets the live goroutines of processes that are gone: they are no longer live.
    pub fn forget_ended_processes(&mut self) {
        for pid in self.ledger.pids() {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                self.ledger.process_ended(pid);
            }
        }
    }

    /// The summary rows (cumulative), live counts and lost events.
    /// `close_ns`: at the stop, the instant creations and exits stopped counting.
    pub fn print_summary(
        &mut self,
        out: &mut impl Write,
        lost: u64,
        edges: SummaryEdges,
        close_ns: Option<u64>,
    ) -> Result<()> {
        self.forget_ended_processes();
        let rows = self.ledger.rows();
        if self.args.target.json {
            let json = SummaryJson {
                r#type: "summary",
                rows: rows
                    .iter()
                    .map(|((function, site), row)| RowJson {
                        function,
                        site,
                        created: row.created,
                        exited: row.exited,
                        alive: row.alive(),
                        running_at_process_exit: row.running_at_process_exit,
                        lifetime_p50_ns: row.lifetime_percentile_ns(50),
                        lifetime_p99_ns: row.lifetime_percentile_ns(99),
                        lifetime_max_ns: row.lifetime_max_ns(),
                    })
                    .collect(),
                lost,
                at: close_ns.map(Stamp::at),
                edges,
                exits_created_before_start: self.ledger.exits_unseen_creation,
            };
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
            out.flush()?;
            return Ok(());
        }
        if self.args.timestamp {
            writeln!(out, "\n{}", clock::wall_clock_hms())?;
        }
        // Columns as wide as their longest entry, so that long paths do not shift the rest.
        let width = |title: &str, cells: &mut dyn Iterator<Item = usize>| {
            cells.fold(title.len(), usize::max)
        };
        let fw = width("FUNCTION", &mut rows.keys().map(|(f, _)| f.chars().count()));
        let sw = width("SITE", &mut rows.keys().map(|(_, s)| s.chars().count()));
        let dur = |ns: Option<u64>| ns.map_or_else(|| "-".to_owned(), clock::human_duration);
        writeln!(
            out,
            "\n{:<fw$} {:<sw$} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
            "FUNCTION", "SITE", "CREATED", "EXITED", "ALIVE", "P50", "P99", "MAX"
        )?;
        for ((function, site), row) in rows {
            writeln!(
                out,
                "{function:<fw$} {site:<sw$} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
                row.created,
                row.exited,
                row.alive(),
                dur(row.lifetime_percentile_ns(50)),
                dur(row.lifetime_percentile_ns(99)),
                dur(row.lifetime_max_ns()),
            )?;
        }
        writeln!(
            out,
            "live goroutines: {} now, {} at peak{}; exits of goroutines created before tracing: {}; lost events: {lost}; creations in flight at start: {}, at end: {}",
            self.ledger.current_live(),
            self.ledger.peak_live(),
            if self.args.target.command.is_empty() {
                " (counting only goroutines created since tracing began)"
            } else {
                ""
            },
            self.ledger.exits_unseen_creation,
            edges.in_flight_at_start,
            edges.in_flight_at_end,
        )?;
        out.flush()?;
        Ok(())
    }
}
