//! `gotrace goroutines`: goroutine creation and exit events (goid, parent, start function,
//! creation site, lifetime) and a summary per start function and creation site.
//!
//! Probes: `runtime.newproc1` at its entry site and every RET (the new g is its result) and
//! `runtime.goexit1` at entry (it runs on the exiting goroutine). Events come through a ring
//! buffer; [`report`] names start functions and sites and renders; with `--listen`, the
//! ledger's counts are also served as Prometheus metrics, refreshed every second.

mod report;

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::Skel;
use libbpf_rs::{MapCore, MapFlags};

use crate::bpf_types::{
    closure_call, frame_key, goroutine_counters, goroutine_func, newproc_call, read,
};
use crate::cli::GoroutinesArgs;
use crate::gobin::runtime::newproc_abi::{self, NewprocAbi};
use crate::gobin::runtime::{creation_stack, start_function};
use crate::gobin::GoBinary;
use crate::output::goroutine_metrics::GoroutineMetrics;
use crate::output::metrics::{Exporter, TargetInfo};
use crate::plan::Announcement;
use crate::plan::{self, ProbePlan};
use crate::session::bpf::{self, goroutines::*, open_skeleton};
use crate::session::drain::{self, RingDrain};
use crate::session::lifecycle::{seconds, PrintClock, Wake};
use crate::session::{maps, Session};
use report::{Report, SummaryEdges};

/// newproc1 calls in flight at once: at most one per thread of the traced processes.
const MAX_NEWPROC_IN_FLIGHT: u32 = 16_384;

/// How often the `--listen` metrics are refreshed.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// Runs `gotrace goroutines`.
pub fn run(args: &GoroutinesArgs) -> Result<ExitCode> {
    let spec = args.target.spec(args.binary.as_deref())?;
    let interval = args.interval.map(seconds).transpose()?;
    let buffer_bytes = buffer_bytes(args.buffer_mib)?;
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let plan = goroutine_plan(&bin)?;
    let mut report = Report::new(&bin, args)?;
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
    let skel = load_program(&mut object, &bin, &plan, session.pid(), args, buffer_bytes)?;

    let report_cell = RefCell::new(&mut report);
    let mut ring = RingDrain::start(&skel.maps.events, |bytes| {
        report_cell.borrow_mut().on_record(bytes)
    })?;
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
    let mut print_clock = PrintClock::start(interval);
    let attached = session.attach(skel.object(), &sites, wakes, &announcement)?;
    report_cell.borrow_mut().print_header()?;
    let (edges, pid) = (session.edges(), session.pid());
    let stop = session.run(attached, &mut ring, |wake, out| {
        let mut report = report_cell.borrow_mut();
        report.flush(out)?;
        if wake == Wake::Drained {
            return Ok(true);
        }
        let losses = read_losses(&skel)?;
        report.forget_ended_processes();
        if let Some(exporter) = &exporter {
            exporter.update(|metrics| metrics.observe(report.ledger(), losses));
        }
        if print_clock.take_due() || matches!(wake, Wake::Stop(_)) {
            let lost = losses.lost + losses.unreadable + losses.unpaired;
            let stopping = matches!(wake, Wake::Stop(_));
            let in_flight = SummaryEdges {
                in_flight_at_start: losses.in_flight_at_start,
                in_flight_at_end: if stopping {
                    open_creations(&skel, pid)?
                } else {
                    0
                },
            };
            let ts_ns = stopping.then(|| edges.close_ns());
            report.print_summary(out, lost, in_flight, ts_ns)?;
        }
        Ok(true)
    })?;
    Ok(stop.exit_code())
}

/// Opens, fills and loads the goroutines program for `bin`: where newproc1 keeps its values and
/// its entry, the runtime offsets, the ring buffer size, the wrappers that call through their
/// closure.
fn load_program<'o>(
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    bin: &GoBinary<'_>,
    plan: &ProbePlan,
    pid: Option<u32>,
    args: &GoroutinesArgs,
    buffer_bytes: u32,
) -> Result<GoroutinesSkel<'o>> {
    let abi = newproc_abi::for_binary(bin)?;
    let offsets = bin.runtime_layout(bin.dwarf()?)?;
    let sched_bp = args
        .stack
        .then(|| creation_stack::sched_bp_offset(bin))
        .transpose()?;
    crate::session::kernel::require_bpf_privileges()?;
    let newproc1 = plan
        .funcs
        .iter()
        .find(|f| f.id == goroutine_func::GOROUTINE_FUNC_NEWPROC1.0)
        .context("runtime.newproc1 not planned")?;
    let closure_calls = start_function::closure_calls(bin);
    let mut open = open_skeleton!(GoroutinesSkelBuilder, object, plan.runtime, pid, |rodata| {
        rodata.wakeup_watermark = drain::wakeup_watermark(buffer_bytes);
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
    });
    open.maps.calls.set_max_entries(MAX_NEWPROC_IN_FLIGHT)?;
    open.maps.events.set_max_entries(buffer_bytes)?;
    open.maps
        .closure_calls
        .set_max_entries(u32::try_from(closure_calls.len().max(1))?)?;
    let skel = bpf::load(open)?;
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
/// the gate was armed.
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

/// The ring buffer size in bytes: a power of two number of MiB.
fn buffer_bytes(mib: u32) -> Result<u32> {
    if !mib.is_power_of_two() || mib > 1024 {
        bail!("--buffer-mib must be a power of two from 1 to 1024");
    }
    Ok(mib << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_must_be_a_power_of_two() {
        assert_eq!(buffer_bytes(16).unwrap(), 16 << 20);
        assert!(buffer_bytes(3).is_err());
        assert!(buffer_bytes(0).is_err());
    }
}
