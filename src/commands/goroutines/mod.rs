//! `gotrace goroutines`: goroutine creation and exit events (goid, parent, start function,
//! creation site, lifetime) and a summary per start function and creation site.
//!
//! Probes: `runtime.newproc1` at its entry site and every RET (the new g is its result) and
//! `runtime.goexit1` at entry (it runs on the exiting goroutine). Events come through a ring
//! buffer; [`report`] names start functions and sites and renders; with `--listen`, the
//! ledger's counts are also served as Prometheus metrics, refreshed every second.

mod blocked;
mod report;

use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::bpf_types::{
    closure_call, frame_key, goroutine_counters, goroutine_func, newproc_call, read,
};
use crate::cli::GoroutinesArgs;
use crate::gobin::runtime::newproc_abi::{self, NewprocAbi};
use crate::gobin::runtime::{creation_stack, start_function};
use crate::gobin::GoBinary;
use crate::output::announce::Announcement;
use crate::output::goroutine_metrics::GoroutineMetrics;
use crate::output::metrics::{Exporter, TargetInfo};
use crate::plan::{self, ProbePlan};
use crate::session::bpf::goroutines::*;
use crate::session::lifecycle::{PrintClock, Wake};
use crate::session::{maps, Consumer, Out, Session, Stop};
use report::{Report, SummaryEdges};

/// newproc1 calls in flight at once: at most one per thread of the traced processes.
const MAX_NEWPROC_IN_FLIGHT: u32 = 16_384;

/// How often the `--listen` metrics are refreshed.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// Runs `gotrace goroutines`.
pub fn run(args: &GoroutinesArgs) -> Result<ExitCode> {
    if args.target.max_overhead.is_some() || args.target.no_guard {
        bail!("--max-overhead and --no-guard are for funclat, args and graph: goroutines probes only the runtime's goroutine creation and exit, which the overload guard never detaches; drop the flag");
    }
    if args.blocked {
        return blocked::run(args);
    }
    let spec = args.target.spec(args.binary.as_deref())?;
    let interval = args.interval;
    let buffer_bytes = args
        .buffer
        .bytes(crate::cli::RingBuffer::GOROUTINES_DEFAULT_KIB);
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let plan = goroutine_plan(&bin)?;
    let report = Report::new(&bin, args)?;
    let exporter = args
        .listen
        .as_deref()
        .map(|listen| {
            let metrics = GoroutineMetrics::new(args.listen_sites);
            Exporter::serve(
                listen,
                metrics,
                TargetInfo::of(&session.target.binary, session.pid(), &bin),
            )
        })
        .transpose()?;

    let mut object = MaybeUninit::uninit();
    let skel = load(&session, &mut object, &bin, &plan, args, buffer_bytes)?;
    let what = format!("goroutines of {}", session.target.binary.display());
    let announcement = Announcement {
        what,
        functions: plan.funcs.len(),
        notes: Vec::new(),
    };
    let sites = plan.sites(|f| f.id == goroutine_func::GOROUTINE_FUNC_NEWPROC1.0);
    // Wakes every -i, and every second for --listen; the summary prints each -i (counted from
    // before the lifecycle's clock starts, so that each -i wake finds it due).
    let wakes = [interval, exporter.as_ref().map(|_| METRICS_EVERY)]
        .into_iter()
        .flatten()
        .min();
    let mut events = Events {
        report,
        skel: &skel,
        exporter,
        print_clock: PrintClock::start(interval),
        pid: session.pid(),
    };
    let attached = session.attach(&skel, &sites, wakes, &announcement)?;
    events.report.print_header()?;
    let stop = session.run(&skel, attached, &mut events)?;
    Ok(stop.exit_code())
}

/// Loads the goroutines program for `bin`: where newproc1 keeps its values and its entry, the
/// runtime offsets, the wrappers that call through their closure.
fn load<'o>(
    session: &Session,
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    bin: &GoBinary<'_>,
    plan: &ProbePlan,
    args: &GoroutinesArgs,
    buffer_bytes: u32,
) -> Result<GoroutinesSkel<'o>> {
    let abi = newproc_abi::for_binary(bin)?;
    let offsets = bin.runtime_layout(bin.dwarf()?)?;
    let sched_bp = args
        .stack
        .then(|| creation_stack::sched_bp_offset(bin))
        .transpose()?;
    let newproc1 = plan
        .funcs
        .iter()
        .find(|f| f.id == goroutine_func::GOROUTINE_FUNC_NEWPROC1.0)
        .context("runtime.newproc1 not planned")?;
    let closure_calls = start_function::closure_calls(bin);
    let ring = Some(buffer_bytes);
    let skel =
        session.load::<GoroutinesSkelBuilder>(object, &plan.runtime, ring, |rodata, open| {
            rodata.newproc1_entry = newproc1.entry;
            let layout = &mut rodata.runtime_offsets;
            layout.g_goid = u32::try_from(offsets.g_goid)?;
            layout.g_m = u32::try_from(offsets.g_m)?;
            layout.m_curg = u32::try_from(offsets.m_curg)?;
            layout.g_sched_bp = sched_bp.unwrap_or(0);
            let newproc = &mut rodata.newproc;
            match abi {
                NewprocAbi::Registers => newproc.in_registers = 1,
                NewprocAbi::Stack {
                    fn_sp_offset,
                    callerpc_sp_offset,
                    result_sp_offset,
                } => {
                    newproc.fn_sp_offset = fn_sp_offset;
                    newproc.callerpc_sp_offset = callerpc_sp_offset;
                    newproc.result_sp_offset = result_sp_offset;
                }
            }
            open.maps.calls.set_max_entries(MAX_NEWPROC_IN_FLIGHT)?;
            let closure_len = u32::try_from(closure_calls.len().max(1))?;
            open.maps.closure_calls.set_max_entries(closure_len)?;
            Ok(())
        })?;
    for (entry, call) in closure_calls {
        let plan = closure_call {
            closure_offset: call.closure_offset,
            target_offset: call.target_offset,
        };
        skel.maps
            .closure_calls
            .update(
                &entry.to_ne_bytes(),
                bytemuck::bytes_of(&plan),
                MapFlags::ANY,
            )
            .context("writing the closure_calls BPF map")?;
    }
    Ok(skel)
}

/// What goroutines does with the events: the report prints each one, and at each wake the
/// loss counters feed the metrics and, each -i and at the stop, the summary.
struct Events<'s, 'o> {
    report: Report<'s>,
    skel: &'s GoroutinesSkel<'o>,
    exporter: Option<Exporter<GoroutineMetrics>>,
    print_clock: PrintClock,
    /// The traced process (None: every process running the binary).
    pid: Option<u32>,
}

impl Events<'_, '_> {
    /// Prints the pending events; unless only drained, updates the metrics and prints the
    /// summary each -i and at the stop (`wake` None, `close_ns` the instant creations and
    /// exits stopped counting).
    fn flush(&mut self, wake: Option<Wake>, close_ns: Option<u64>, out: &mut Out) -> Result<()> {
        self.report.flush(out)?;
        if wake == Some(Wake::Drained) {
            return Ok(());
        }
        let losses = read_losses(self.skel)?;
        self.report.forget_ended_processes();
        if let Some(exporter) = &self.exporter {
            exporter.update(|metrics| metrics.observe(self.report.ledger(), losses));
        }
        if self.print_clock.take_due() || wake.is_none() {
            let lost = losses.lost + losses.unreadable + losses.unpaired;
            let edges = SummaryEdges {
                in_flight_at_start: losses.in_flight_at_start,
                in_flight_at_end: match close_ns {
                    Some(_) => open_creations(self.skel, self.pid)?,
                    None => 0,
                },
            };
            self.report.print_summary(out, lost, edges, close_ns)?;
        }
        Ok(())
    }
}

impl Consumer for Events<'_, '_> {
    fn record(&mut self, bytes: &[u8]) -> Result<()> {
        self.report.on_record(bytes);
        Ok(())
    }

    fn wake(&mut self, wake: Wake, out: &mut Out) -> Result<bool> {
        self.flush(Some(wake), None, out)?;
        Ok(true)
    }

    fn stop(&mut self, stop: &Stop, out: &mut Out) -> Result<()> {
        self.flush(None, Some(stop.close_ns), out)
    }
}

/// The kernel side's loss counters, summed over CPUs.
fn read_losses(skel: &GoroutinesSkel<'_>) -> Result<goroutine_counters> {
    let mut sum = goroutine_counters::default();
    for c in maps::per_cpu::<goroutine_counters>(&skel.maps.loss_counters, 0)? {
        sum.lost += c.lost;
        sum.unreadable += c.unreadable;
        sum.unpaired += c.unpaired;
        sum.in_flight_at_start += c.in_flight_at_start;
    }
    Ok(sum)
}

/// runtime.newproc1 calls of `pid` (None: any process) still open at the stop, begun while
/// creations counted.
fn open_creations(skel: &GoroutinesSkel<'_>, pid: Option<u32>) -> Result<u64> {
    let mut open = 0;
    for key_bytes in skel.maps.calls.keys() {
        let key: frame_key = read(&key_bytes)?;
        if pid.is_some_and(|pid| key.tgid != pid) {
            continue;
        }
        if let Some(value) = skel.maps.calls.lookup(&key_bytes, MapFlags::ANY)? {
            open += u64::from(read::<newproc_call>(&value)?.late == 0);
        }
    }
    Ok(open)
}

/// runtime.newproc1 (entry and RETs) and runtime.goexit1 (entry only: it never returns), at
/// the indexes `enum goroutine_func` gives them.
fn goroutine_plan(bin: &GoBinary<'_>) -> Result<ProbePlan> {
    let mut plan = plan::plan(bin, &["runtime.newproc1".to_owned()], true)?;
    let exit = plan::plan(bin, &["runtime.goexit1".to_owned()], false)?;
    let mut goexit1 = exit
        .funcs
        .into_iter()
        .next()
        .context("runtime.goexit1 not planned")?;
    goexit1.id = goroutine_func::GOROUTINE_FUNC_GOEXIT1.0;
    plan.funcs.push(goexit1);
    Ok(plan)
}
