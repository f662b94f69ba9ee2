//! `gotrace funclat`: in-kernel log2 latency histograms of Go functions, with a uprobe at each
//! function's entry site and at every RET (never a uretprobe; DESIGN.md techniques 1-4).

mod live;

use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;

use anyhow::Result;
use libbpf_rs::skel::Skel;

use crate::bpf_types::func_hist;
use crate::cli::FunclatArgs;
use crate::output::histogram::{Log2Hist, Unit};
use crate::plan::sites::InlineSites;
use crate::plan::{self, ProbePlan};
use crate::session::bpf::{self, funclat::*, open_skeleton};
use crate::session::drain::Sleep;
use crate::session::lifecycle::{seconds, PrintClock, StopReason, Wake};
use crate::session::{maps, Session};
use live::LiveOutputs;

/// Runs `gotrace funclat`.
pub fn run(args: &FunclatArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    let unit = match (args.microseconds, args.milliseconds) {
        (true, _) => Unit::Micros,
        (_, true) => Unit::Millis,
        _ => Unit::Nanos,
    };
    let interval = args.interval.map(seconds).transpose()?;
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let inlined = if args.no_inlined {
        plan::Inlined::No
    } else {
        plan::Inlined::Yes
    };
    let plan = plan::plan_with(&bin, &patterns, true, inlined)?;
    let inline_sites = plan.inline_sites(|_| 0);
    let mut live = LiveOutputs::open(args, &session.target, &bin, &plan, unit)?;
    let mut object = MaybeUninit::uninit();
    let skel = load_program(
        &mut object,
        &plan,
        &inline_sites,
        session.pid(),
        unit,
        args.max_open_calls,
    )?;

    // The maps are read each `wakes` (-i, and more often for --listen and --heatmap); the
    // tables print each -i.
    let wakes = live.start(interval);
    let announcement = plan.announcement(&patterns, args.target.verbose);
    // Before the lifecycle's clock starts in attach: each -i print is due by its wake.
    let mut print_clock = PrintClock::start(interval);
    let mut sites = plan.sites(|_| true);
    sites.extend_from_slice(&inline_sites.sites);
    let attached = session.attach(skel.object(), &sites, wakes, &announcement)?;
    let edges = session.edges();
    let (pid, mut printed) = (session.pid(), vec![Log2Hist::default(); plan.funcs.len()]);
    let stop = session.run(attached, &mut Sleep, |wake, out| {
        if wake == Wake::Drained {
            return Ok(true);
        }
        let mut now = read_hists(&skel, &plan)?;
        match wake {
            Wake::Drained | Wake::Interval => {}
            Wake::Stop(stop) => {
                // Calls still open after the drain: in flight at the end, or, in a target
                // that exited, calls that will never return.
                let exited = matches!(stop, StopReason::TargetExited(_));
                for func_id in maps::open_calls(&skel.maps.starts, pid)? {
                    if let Some(hist) = now.get_mut(func_id as usize) {
                        match exited {
                            true => hist.unmatched += 1,
                            false => hist.in_flight_at_end += 1,
                        }
                    }
                }
                live.update(&now);
                if interval.is_none() || now != printed {
                    let ts_ns = edges.close_ns();
                    print_period(out, args, unit, &plan, (&now, &printed), ts_ns)?;
                }
                if args.target.json {
                    let mut total = Log2Hist::default();
                    now.iter().for_each(|h| total.add(h));
                    writeln!(out, "{}", total.summary_json(edges.close_ns()))?;
                }
                live.finish()?;
                if !args.target.json {
                    writeln!(out, "Exiting trace of {} functions", plan.funcs.len())?;
                }
                return Ok(true);
            }
        }
        live.update(&now);
        if print_clock.take_due() {
            let ts_ns = crate::session::gate::monotonic_ns();
            print_period(out, args, unit, &plan, (&now, &printed), ts_ns)?;
            printed = now;
        }
        Ok(true)
    })?;
    Ok(stop.exit_code())
}

/// Opens, sizes and loads the funclat program: one histogram per planned function, room for
/// `max_open_calls` calls in flight, the inlined calls' sites stored.
fn load_program<'o>(
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    plan: &ProbePlan,
    inline_sites: &InlineSites,
    pid: Option<u32>,
    unit: Unit,
    max_open_calls: u32,
) -> Result<FunclatSkel<'o>> {
    crate::session::kernel::require_bpf_privileges()?;

    let mut open = open_skeleton!(FunclatSkelBuilder, object, plan.runtime, pid, |rodata| {
        rodata.unit_div = unit.divisor();
    });
    open.maps.hists.set_max_entries(plan.funcs.len() as u32)?;
    open.maps.starts.set_max_entries(max_open_calls.max(1))?;
    open.maps
        .inline_sites
        .set_max_entries(u32::try_from(inline_sites.entries.len().max(1))?)?;
    let skel = bpf::load(open)?;
    for (index, site) in inline_sites.entries.iter().enumerate() {
        maps::store(&skel.maps.inline_sites, index as u32, site)?;
    }
    Ok(skel)
}

/// Sums every CPU's copy of every function's histogram (cumulative since attach).
fn read_hists(skel: &FunclatSkel<'_>, plan: &ProbePlan) -> Result<Vec<Log2Hist>> {
    plan.funcs
        .iter()
        .map(|f| {
            let mut total = Log2Hist::default();
            for hist in maps::per_cpu::<func_hist>(&skel.maps.hists, f.id)? {
                total.add(&Log2Hist::from(&hist));
            }
            Ok(total)
        })
        .collect()
}

/// Prints what happened since `earlier` for every function; `ts_ns`: the period's end (the
/// instant the histograms were read, or at the stop the instant entries stopped counting).
fn print_period(
    out: &mut impl Write,
    args: &FunclatArgs,
    unit: Unit,
    plan: &ProbePlan,
    (now, earlier): (&[Log2Hist], &[Log2Hist]),
    ts_ns: u64,
) -> Result<()> {
    if args.timestamp && !args.target.json {
        writeln!(out, "\n{}", crate::output::clock::wall_clock_hms())?;
    }
    for ((func, now), earlier) in plan.funcs.iter().zip(now).zip(earlier) {
        let period = now.since(earlier);
        if args.target.json {
            writeln!(out, "{}", period.to_json(&func.name, unit, ts_ns))?;
        } else if period != Log2Hist::default() || plan.funcs.len() == 1 {
            // With many functions, only those that did something (as BCC does).
            writeln!(out, "\nFunction = {}", func.name)?;
            period.print(out, unit)?;
            if period.lost > 0 {
                writeln!(
                    out,
                    "  ({} calls not measured: more than --max-open-calls={} calls in flight at once)",
                    period.lost, args.max_open_calls
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
