//! `gotrace funclat`: in-kernel log2 latency histograms of Go functions, with a uprobe at each
//! function's entry site and at every RET (never a uretprobe; DESIGN.md techniques 1-4).

use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::cli::FunclatArgs;
use crate::gobin::BinaryFile;
use crate::histogram::{Log2Hist, Unit};
use crate::plan::{self, ProbePlan};
use crate::session::{self, seconds, Lifecycle, Site, StopReason, Wake};
use crate::skeletons::{self, funclat::*, open_skeleton, plain_copy};
use crate::target::Target;

/// Cookie of a probe site: function id and site kind (see COOKIE_* in src/bpf/gotrace.h).
fn cookie(func_id: u32, is_ret: bool) -> u64 {
    (u64::from(func_id) << 8) | u64::from(is_ret)
}

/// Runs `gotrace funclat`.
pub fn run(args: &FunclatArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    let unit = match (args.microseconds, args.milliseconds) {
        (true, _) => Unit::Micros,
        (_, true) => Unit::Millis,
        _ => Unit::Nanos,
    };
    let duration = args.target.duration.map(seconds).transpose()?;
    let interval = args.interval.map(seconds).transpose()?;
    let mut target = Target::resolve(spec)?;
    let file = BinaryFile::open(&target.binary)?;
    let bin = file.parse()?;
    let plan = plan::plan(&bin, &patterns, true)?;
    skeletons::require_bpf_privileges()?;

    let multi = session::kernel_has_uprobe_multi();
    let mut open_object = MaybeUninit::uninit();
    let mut open = open_skeleton!(
        FunclatSkelBuilder,
        &mut open_object,
        plan.runtime,
        target.pid,
        |rodata| {
            rodata.unit_div = unit.divisor();
        }
    );
    open.maps.hists.set_max_entries(plan.funcs.len() as u32)?;
    open.maps
        .starts
        .set_max_entries(args.max_open_calls.max(1))?;
    open.progs.funclat_multi.set_autoload(multi);
    open.progs.funclat_single.set_autoload(!multi);
    let skel = skeletons::load(open)?;

    let sites: Vec<Site> = plan
        .funcs
        .iter()
        .flat_map(|f| {
            std::iter::once(Site {
                file_offset: f.entry_site,
                cookie: cookie(f.id, false),
            })
            .chain(f.ret_sites.iter().map(|&off| Site {
                file_offset: off,
                cookie: cookie(f.id, true),
            }))
        })
        .collect();
    let prog = if multi {
        &skel.progs.funclat_multi
    } else {
        &skel.progs.funclat_single
    };
    let attached = session::attach_sites(prog, multi, target.pid, &target.binary, &sites)?;

    // Stop signals are caught from here on: a Ctrl-C right after the banner must still detach.
    let mut lifecycle = Lifecycle::start(duration, interval);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    session::announce(&mut out, &plan, &patterns, args.target.json)?;
    target.release()?;

    let mut printed = vec![Log2Hist::default(); plan.funcs.len()];
    let stop = loop {
        match lifecycle.wait(&mut target) {
            Wake::Interval => {
                let now = read_hists(&skel, &plan)?;
                print_period(&mut out, args, unit, &plan, &now, &printed)?;
                printed = now;
            }
            Wake::Stop(reason) => break reason,
        }
    };
    let mut now = read_hists(&skel, &plan)?;
    drop(attached);
    if let (StopReason::TargetExited(_), Some(pid)) = (stop, target.pid) {
        count_calls_cut_by_exit(&skel, pid, &mut now)?;
    }
    if interval.is_none() || now != printed {
        print_period(&mut out, args, unit, &plan, &now, &printed)?;
    }
    if !args.target.json {
        writeln!(out, "Exiting trace of {} functions", plan.funcs.len())?;
    }
    Ok(match stop {
        StopReason::TargetExited(Some(code)) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        _ => ExitCode::SUCCESS,
    })
}

/// Sums every CPU's copy of every function's histogram (cumulative since attach).
fn read_hists(skel: &FunclatSkel<'_>, plan: &ProbePlan) -> Result<Vec<Log2Hist>> {
    plan.funcs
        .iter()
        .map(|f| {
            let per_cpu = skel
                .maps
                .hists
                .lookup_percpu(&f.id.to_ne_bytes(), MapFlags::ANY)?
                .context("histogram map entry missing")?;
            let mut total = Log2Hist::default();
            for bytes in per_cpu {
                total.add(&from_bpf(&bytes)?);
            }
            Ok(total)
        })
        .collect()
}

/// Counts as unmatched the calls still open in process `pid` after it exited: they can never
/// return (typically a panic that ended the program, or `os.Exit` inside the call).
fn count_calls_cut_by_exit(skel: &FunclatSkel<'_>, pid: u32, hists: &mut [Log2Hist]) -> Result<()> {
    for key_bytes in skel.maps.starts.keys() {
        let key: types::frame_key = plain_copy(&key_bytes)?;
        if key.tgid != pid {
            continue;
        }
        if let Some(value) = skel.maps.starts.lookup(&key_bytes, MapFlags::ANY)? {
            let start: types::frame_start = plain_copy(&value)?;
            if let Some(hist) = hists.get_mut(start.func_id as usize) {
                hist.unmatched += 1;
            }
        }
    }
    Ok(())
}

/// Converts one CPU's `struct func_hist` (the skeleton's generated type) into a histogram.
fn from_bpf(bytes: &[u8]) -> Result<Log2Hist> {
    let hist: types::func_hist = plain_copy(bytes)?;
    Ok(Log2Hist {
        slots: hist.slots,
        count: hist.count,
        total_ns: hist.total_ns,
        unmatched: hist.unmatched,
        lost: hist.lost,
    })
}

/// Prints what happened since `earlier` for every function.
fn print_period(
    out: &mut impl Write,
    args: &FunclatArgs,
    unit: Unit,
    plan: &ProbePlan,
    now: &[Log2Hist],
    earlier: &[Log2Hist],
) -> Result<()> {
    if args.timestamp && !args.target.json {
        writeln!(out, "\n{}", crate::clock::wall_clock_hms())?;
    }
    for ((func, now), earlier) in plan.funcs.iter().zip(now).zip(earlier) {
        let period = now.since(earlier);
        if args.target.json {
            writeln!(out, "{}", period.to_json(&func.name, unit))?;
        } else if period != Log2Hist::default() || plan.funcs.len() == 1 {
            // With many functions, only those that did something (as BCC does).
            writeln!(out, "\nFunction = {}", func.name)?;
            period.print(out, unit)?;
            if period.lost > 0 {
                writeln!(
                    out,
                    "  ({} calls not measured: already running when tracing began, or more than --max-open-calls={} calls in flight at once)",
                    period.lost, args.max_open_calls
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
