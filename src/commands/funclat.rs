//! `gotrace funclat`: in-kernel log2 latency histograms of Go functions, with a uprobe at each
//! function's entry site and at every RET (never a uretprobe; DESIGN.md techniques 1-4).

use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::cli::FunclatArgs;
use crate::gobin::{BinaryFile, GoBinary};
use crate::heatmap::Heatmap;
use crate::histogram::{Log2Hist, Unit};
use crate::metrics::{Exporter, TargetInfo};
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
    let mut live = LiveOutputs::open(args, &target, &bin, &plan, unit)?;
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
    let started = Instant::now();
    let mut lifecycle = Lifecycle::start(duration, live.start(interval));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    session::announce(&mut out, &plan, &patterns, args.target.json)?;
    target.release()?;

    let mut printed = vec![Log2Hist::default(); plan.funcs.len()];
    let mut next_print = interval.map(|every| (started + every, every));
    let stop = loop {
        match lifecycle.wait(&mut target) {
            Wake::Interval => {
                let now = read_hists(&skel, &plan)?;
                live.update(&now);
                // The wake-ups may come more often than -i (for --listen, --heatmap).
                if let Some((due, every)) = next_print.filter(|&(due, _)| Instant::now() >= due) {
                    print_period(&mut out, args, unit, &plan, &now, &printed)?;
                    printed = now;
                    next_print = Some((due + every, every));
                }
            }
            Wake::Stop(reason) => break reason,
        }
    };
    let mut now = read_hists(&skel, &plan)?;
    drop(attached);
    if let (StopReason::TargetExited(_), Some(pid)) = (stop, target.pid) {
        count_calls_cut_by_exit(&skel, pid, &mut now)?;
    }
    live.update(&now);
    if interval.is_none() || now != printed {
        print_period(&mut out, args, unit, &plan, &now, &printed)?;
    }
    live.finish()?;
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

/// The outputs fed with every reading of the maps while tracing, besides the printed tables:
/// the `--listen` metrics endpoint and the `--heatmap` columns.
struct LiveOutputs {
    exporter: Option<Exporter>,
    heatmap: Option<Heatmap>,
    started: Instant,
}

impl LiveOutputs {
    /// Binds the metrics address and creates the heatmap file (so that bad values fail before
    /// tracing starts).
    fn open(
        args: &FunclatArgs,
        target: &Target,
        bin: &GoBinary<'_>,
        plan: &ProbePlan,
        unit: Unit,
    ) -> Result<LiveOutputs> {
        let names: Vec<String> = plan.funcs.iter().map(|f| f.name.clone()).collect();
        let exporter = match &args.listen {
            Some(listen) => {
                let path =
                    std::fs::canonicalize(&target.binary).unwrap_or_else(|_| target.binary.clone());
                let info = TargetInfo {
                    path: path.to_string_lossy().into_owned(),
                    go_version: bin.build.go_version.clone().unwrap_or_default(),
                    module: bin.build.main_module.clone().unwrap_or_default(),
                    pid: target.pid,
                };
                let exporter = Exporter::serve(listen, names.clone(), unit, info)?;
                eprintln!(
                    "gotrace: serving metrics at http://{}/metrics",
                    exporter.local_addr()
                );
                Some(exporter)
            }
            None => None,
        };
        let heatmap = match &args.heatmap {
            Some(path) => {
                let step = seconds(args.heatmap_step).context("--heatmap-step")?;
                Some(Heatmap::new(path.clone(), step, unit, names)?)
            }
            None => None,
        };
        Ok(LiveOutputs {
            exporter,
            heatmap,
            started: Instant::now(),
        })
    }

    /// Marks the start of tracing; returns how often the maps must be read: every `interval`
    /// (-i), every second for the metrics, every step for the heatmap, whichever is shortest.
    fn start(&mut self, interval: Option<Duration>) -> Option<Duration> {
        self.started = Instant::now();
        let metrics = self.exporter.as_ref().map(|_| Duration::from_secs(1));
        let heatmap = self.heatmap.as_ref().map(|h| h.step());
        [interval, metrics, heatmap].into_iter().flatten().min()
    }

    /// Hands a fresh cumulative snapshot to every output.
    fn update(&mut self, hists: &[Log2Hist]) {
        if let Some(exporter) = &self.exporter {
            exporter.update(hists);
        }
        if let Some(heatmap) = &mut self.heatmap {
            heatmap.record(self.started.elapsed(), hists);
        }
    }

    /// Writes the heatmap.
    fn finish(&self) -> Result<()> {
        self.heatmap.as_ref().map_or(Ok(()), Heatmap::write)
    }
}
