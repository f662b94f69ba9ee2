//! `gotrace goroutines`: goroutine creation and exit events (goid, parent, start function,
//! creation site, lifetime) and a summary per start function and creation site.
//!
//! Probes: `runtime.newproc1` at its entry site and every RET (the new g is its result) and
//! `runtime.goexit1` at entry (it runs on the exiting goroutine). Events come through a ring
//! buffer; user space names start functions (unwrapping go-statement wrappers) and sites from
//! the pclntab.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use serde::Serialize;

use crate::cli::GoroutinesArgs;
use crate::creation_stack;
use crate::gobin::runtime_layout::RuntimeLayout;
use crate::gobin::{BinaryFile, GoBinary};
use crate::goroutine_ledger::Ledger;
use crate::load_bias;
use crate::newproc_abi::{self, NewprocAbi};
use crate::plan;
use crate::session::{self, Lifecycle, Site, StopReason, Wake};
use crate::skeletons::{self, goroutines::*, open_skeleton, plain_copy};
use crate::start_function::{self, StartFunction};
use crate::target::{Target, TargetSpec};

/// Cookie kinds (GOROUTINE_SITE_* in src/bpf/gotrace.h).
const SITE_NEWPROC_ENTRY: u64 = 0;
const SITE_NEWPROC_RET: u64 = 1;
const SITE_EXIT: u64 = 2;
/// Event kinds (enum goroutine_event_kind).
const EVENT_CREATED: u32 = 0;
/// How often the ring buffer is drained.
const POLL: Duration = Duration::from_millis(50);
/// newproc1 calls in flight at once: at most one per thread of the traced processes.
const MAX_NEWPROC_IN_FLIGHT: u32 = 16_384;

/// Runs `gotrace goroutines`.
pub fn run(args: &GoroutinesArgs) -> Result<ExitCode> {
    let spec = target_spec(args)?;
    let filter = args
        .filter
        .as_deref()
        .map(glob::Pattern::new)
        .transpose()
        .context("bad --filter pattern (glob syntax: * ? [abc])")?;
    let duration = args.target.duration.map(seconds).transpose()?;
    let interval = args.interval.map(seconds).transpose()?;
    let buffer_bytes = buffer_bytes(args.buffer_mib)?;
    let mut target = Target::resolve(spec)?;
    let file = BinaryFile::open(&target.binary)?;
    let bin = file.parse()?;
    let abi = newproc_abi::for_binary(&bin)?;
    let offsets = runtime_offsets(&bin)?;
    let sched_bp = args
        .stack
        .then(|| creation_stack::sched_bp_offset(&bin))
        .transpose()?;
    let creation = plan::plan(&bin, &["runtime.newproc1".to_owned()], true)?;
    let exit = plan::plan(&bin, &["runtime.goexit1".to_owned()], false)?;
    skeletons::require_bpf_privileges()?;

    let multi = session::kernel_has_uprobe_multi();
    let mut open_object = MaybeUninit::uninit();
    let mut open = open_skeleton!(
        GoroutinesSkelBuilder,
        &mut open_object,
        creation.runtime,
        target.pid,
        |rodata| {
            rodata.runtime_offsets.g_goid = u32::try_from(offsets.g_goid)?;
            rodata.runtime_offsets.g_m = u32::try_from(offsets.g_m)?;
            rodata.runtime_offsets.m_curg = u32::try_from(offsets.m_curg)?;
            rodata.runtime_offsets.g_sched_bp = sched_bp.unwrap_or(0);
            match abi {
                NewprocAbi::Registers => rodata.newproc.in_registers = 1,
                NewprocAbi::Stack {
                    fn_sp_offset,
                    callerpc_sp_offset,
                    result_sp_offset,
                } => {
                    rodata.newproc.fn_sp_offset = fn_sp_offset;
                    rodata.newproc.callerpc_sp_offset = callerpc_sp_offset;
                    rodata.newproc.result_sp_offset = result_sp_offset;
                }
            }
        }
    );
    open.maps.calls.set_max_entries(MAX_NEWPROC_IN_FLIGHT)?;
    open.maps.events.set_max_entries(buffer_bytes)?;
    open.progs.goroutines_multi.set_autoload(multi);
    open.progs.goroutines_single.set_autoload(!multi);
    let skel = skeletons::load(open)?;

    let newproc1 = &creation.funcs[0];
    let goexit1 = &exit.funcs[0];
    let sites: Vec<Site> = std::iter::once((newproc1.entry_site, SITE_NEWPROC_ENTRY))
        .chain(newproc1.ret_sites.iter().map(|&s| (s, SITE_NEWPROC_RET)))
        .chain(std::iter::once((goexit1.entry_site, SITE_EXIT)))
        .map(|(file_offset, cookie)| Site {
            file_offset,
            cookie,
        })
        .collect();
    let prog = if multi {
        &skel.progs.goroutines_multi
    } else {
        &skel.progs.goroutines_single
    };
    let attached = session::attach_sites(prog, multi, target.pid, &target.binary, &sites)?;

    let report = RefCell::new(Report {
        bin: &bin,
        filter,
        args,
        ledger: Ledger::default(),
        names: HashMap::new(),
        sites: HashMap::new(),
        biases: HashMap::new(),
        out: std::io::stdout().lock(),
        failure: None,
    });
    let mut ring = RingBufferBuilder::new();
    ring.add(&skel.maps.events, |bytes: &[u8]| {
        report.borrow_mut().on_record(bytes);
        0
    })?;
    let ring = ring.build()?;
    // Stop signals are caught from here on: a Ctrl-C right after the banner must still detach.
    let mut lifecycle = Lifecycle::start(duration, interval);
    if !args.target.json {
        let mut report = report.borrow_mut();
        writeln!(
            report.out,
            "Tracing goroutines of {}... Hit Ctrl-C to end.",
            target.binary.display()
        )?;
        if !args.summary {
            writeln!(
                report.out,
                "{:<12} {:>7} {:>8} {:<6} DETAILS",
                "TIME(ns)", "PID", "GOID", "EVENT"
            )?;
        }
        report.out.flush()?;
    }
    target.release()?;

    // The lifecycle (signals, -d, -i, target exit) runs on its own thread; this one consumes
    // the ring buffer every POLL (the BPF side never wakes it: no context switch per event).
    let (wakes, woken) = mpsc::channel();
    let watcher = std::thread::spawn(move || loop {
        let wake = lifecycle.wait(&mut target);
        let stop = matches!(wake, Wake::Stop(_));
        if wakes.send(wake).is_err() || stop {
            break;
        }
    });
    let stop = loop {
        std::thread::sleep(POLL);
        ring.consume()?;
        report.borrow_mut().check()?;
        match woken.try_recv() {
            Ok(Wake::Interval) => {
                let lost = read_lost(&skel)?;
                report.borrow_mut().print_summary(lost)?;
            }
            Ok(Wake::Stop(reason)) => break reason,
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => bail!("the session's watcher thread ended"),
        }
    };
    watcher
        .join()
        .map_err(|_| anyhow::anyhow!("the session's watcher thread panicked"))?;
    drop(attached);
    ring.consume()?;
    drop(ring);
    let lost = read_lost(&skel)?;
    let mut report = report.into_inner();
    report.check()?;
    report.print_summary(lost)?;
    Ok(match stop {
        StopReason::TargetExited(Some(code)) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        _ => ExitCode::SUCCESS,
    })
}

/// The target from `BINARY`, `-p PID` or `-- CMD`.
fn target_spec(args: &GoroutinesArgs) -> Result<TargetSpec> {
    let t = &args.target;
    match (&args.binary, t.pid, t.command.is_empty()) {
        (None, Some(pid), true) => Ok(TargetSpec::Pid(pid)),
        (None, None, false) => Ok(TargetSpec::Launch(t.command.clone())),
        (Some(binary), None, true) => Ok(TargetSpec::Binary(binary.clone())),
        _ => bail!("name exactly one target: BINARY, -p PID, or -- CMD ARGS"),
    }
}

fn seconds(secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .context("durations must be positive seconds")
}

/// The ring buffer size in bytes: a power of two number of MiB.
fn buffer_bytes(mib: u32) -> Result<u32> {
    if !mib.is_power_of_two() || mib > 1024 {
        bail!("--buffer-mib must be a power of two from 1 to 1024");
    }
    Ok(mib << 20)
}

/// g.goid, g.m and m.curg offsets: from DWARF, else the per-Go-version table.
fn runtime_offsets(bin: &GoBinary<'_>) -> Result<RuntimeLayout> {
    bin.runtime_layout(bin.dwarf()?.as_ref())
}

/// Events lost in the kernel: no room in the ring buffer, unreadable values, or newproc1
/// returns whose entry was not seen (each is a creation or exit never reported).
fn read_lost(skel: &GoroutinesSkel<'_>) -> Result<u64> {
    let per_cpu = skel
        .maps
        .loss_counters
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)?
        .context("counter map entry missing")?;
    let mut lost = 0;
    for bytes in per_cpu {
        let c: types::goroutine_counters = plain_copy(&bytes)?;
        lost += c.lost + c.unreadable + c.unpaired;
    }
    Ok(lost)
}

/// A `--json` create event.
#[derive(Serialize)]
struct CreateJson<'a> {
    r#type: &'static str,
    ts_ns: u64,
    pid: u32,
    goid: u64,
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
    r#type: &'static str,
    ts_ns: u64,
    pid: u32,
    goid: u64,
    lifetime_ns: u64,
}

/// One `--json` summary row.
#[derive(Serialize)]
struct RowJson<'a> {
    function: &'a str,
    site: &'a str,
    created: u64,
    exited: u64,
    alive: u64,
    lifetime_p50_ns: u64,
    lifetime_p99_ns: u64,
    lifetime_max_ns: u64,
}

/// The `--json` summary.
#[derive(Serialize)]
struct SummaryJson<'a> {
    r#type: &'static str,
    rows: Vec<RowJson<'a>>,
    lost: u64,
}

/// Turns records into output and keeps the ledger.
struct Report<'a, W: Write> {
    bin: &'a GoBinary<'a>,
    filter: Option<glob::Pattern>,
    args: &'a GoroutinesArgs,
    ledger: Ledger,
    /// Start function by `funcval.fn`.
    names: HashMap<u64, StartFunction>,
    /// Creation site by caller PC.
    sites: HashMap<u64, String>,
    /// PIE load bias by process (None: unknown, the process is gone).
    biases: HashMap<u32, Option<u64>>,
    out: W,
    /// The first error met inside the ring-buffer callback.
    failure: Option<anyhow::Error>,
}

impl<W: Write> Report<'_, W> {
    /// Handles one ring-buffer record; errors are kept for [`Report::check`].
    fn on_record(&mut self, bytes: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        if let Err(err) = plain_copy(bytes).and_then(|e| self.on_event(&e)) {
            self.failure = Some(err);
        }
    }

    /// Fails with the first error the callback met.
    fn check(&mut self) -> Result<()> {
        self.failure.take().map_or(Ok(()), Err)
    }

    fn on_event(&mut self, e: &types::goroutine_event) -> Result<()> {
        if e.kind != EVENT_CREATED {
            let Some(lifetime_ns) = self.ledger.exited(e.tgid, e.goid, e.ts_ns) else {
                return Ok(());
            };
            if self.args.summary {
                return Ok(());
            }
            if self.args.target.json {
                let json = ExitJson {
                    r#type: "exit",
                    ts_ns: e.ts_ns,
                    pid: e.tgid,
                    goid: e.goid,
                    lifetime_ns,
                };
                writeln!(self.out, "{}", serde_json::to_string(&json)?)?;
            } else {
                writeln!(
                    self.out,
                    "{:<12} {:>7} {:>8} {:<6} lifetime {}",
                    e.ts_ns,
                    e.tgid,
                    e.goid,
                    "exit",
                    human_ns(lifetime_ns)
                )?;
            }
            return Ok(());
        }
        let mut e = *e;
        if self.bin.elf.is_pie {
            let bin = self.bin;
            let bias = *self
                .biases
                .entry(e.tgid)
                .or_insert_with(|| load_bias::of_process(e.tgid, &bin.elf).ok());
            let bias = bias.unwrap_or(0);
            for pc in std::iter::once(&mut e.start_pc)
                .chain(std::iter::once(&mut e.caller_pc))
                .chain(e.stack.iter_mut())
                .filter(|pc| **pc != 0)
            {
                *pc = pc.wrapping_sub(bias);
            }
        }
        let start = self.start_function(e.start_pc);
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
        self.ledger.created(
            e.tgid,
            e.goid,
            e.ts_ns,
            (start.function.clone(), site.clone()),
        );
        if self.args.summary {
            return Ok(());
        }
        if self.args.target.json {
            let json = CreateJson {
                r#type: "create",
                ts_ns: e.ts_ns,
                pid: e.tgid,
                goid: e.goid,
                parent_goid: e.parent_goid,
                function: &start.function,
                site: &site,
                wrapper: start.wrapper.as_deref(),
                stack,
            };
            writeln!(self.out, "{}", serde_json::to_string(&json)?)?;
        } else {
            writeln!(
                self.out,
                "{:<12} {:>7} {:>8} {:<6} {} from goroutine {} at {}",
                e.ts_ns, e.tgid, e.goid, "create", start.function, e.parent_goid, site
            )?;
            for frame in stack.iter().flatten() {
                writeln!(self.out, "{:>38}{frame}", "")?;
            }
        }
        Ok(())
    }

    /// The start function at `pc` (cached).
    fn start_function(&mut self, pc: u64) -> StartFunction {
        let bin = self.bin;
        self.names
            .entry(pc)
            .or_insert_with(|| {
                start_function::resolve(bin, pc).unwrap_or_else(|| StartFunction {
                    function: format!("{pc:#x}"),
                    wrapper: None,
                })
            })
            .clone()
    }

    /// "file:line" of the go statement whose return address is `pc` (cached). Like Go's
    /// tracebacks, the line is that of `pc - 1`, the call instruction.
    fn site(&mut self, pc: u64) -> String {
        let bin = self.bin;
        self.sites
            .entry(pc)
            .or_insert_with(|| {
                let call = pc.saturating_sub(1);
                bin.func_at(call)
                    .and_then(|f| bin.pclntab.line(f, call).ok().flatten())
                    .map_or_else(
                        || format!("{pc:#x}"),
                        |(file, line)| format!("{file}:{line}"),
                    )
            })
            .clone()
    }

    /// The summary rows (cumulative), live counts and lost events.
    fn print_summary(&mut self, lost: u64) -> Result<()> {
        // Goroutines of processes that are gone are no longer live.
        for pid in self.ledger.pids() {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                self.ledger.process_ended(pid);
            }
        }
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
                        lifetime_p50_ns: row.lifetime_percentile_ns(50),
                        lifetime_p99_ns: row.lifetime_percentile_ns(99),
                        lifetime_max_ns: row.lifetime_max_ns(),
                    })
                    .collect(),
                lost,
            };
            writeln!(self.out, "{}", serde_json::to_string(&json)?)?;
            self.out.flush()?;
            return Ok(());
        }
        writeln!(
            self.out,
            "\n{:<40} {:<40} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
            "FUNCTION", "SITE", "CREATED", "EXITED", "ALIVE", "P50", "P99", "MAX"
        )?;
        for ((function, site), row) in rows {
            writeln!(
                self.out,
                "{function:<40} {site:<40} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
                row.created,
                row.exited,
                row.alive(),
                human_ns(row.lifetime_percentile_ns(50)),
                human_ns(row.lifetime_percentile_ns(99)),
                human_ns(row.lifetime_max_ns()),
            )?;
        }
        writeln!(
            self.out,
            "live goroutines: {} now, {} at peak; exits of goroutines created before tracing: {}; lost events: {lost}",
            self.ledger.current_live(),
            self.ledger.peak_live(),
            self.ledger.exits_unseen_creation,
        )?;
        self.out.flush()?;
        Ok(())
    }
}

/// A duration for people: ns, µs, ms or s with 3 significant decimals.
fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.3}us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.3}ms", ns as f64 / 1e6),
        _ => format!("{:.3}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_ns(12), "12ns");
        assert_eq!(human_ns(1_500), "1.500us");
        assert_eq!(human_ns(2_000_000), "2.000ms");
        assert_eq!(human_ns(3_000_000_000), "3.000s");
    }

    #[test]
    fn buffer_must_be_a_power_of_two() {
        assert_eq!(buffer_bytes(16).unwrap(), 16 << 20);
        assert!(buffer_bytes(3).is_err());
        assert!(buffer_bytes(0).is_err());
    }
}
