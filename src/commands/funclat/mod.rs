//! `gotrace funclat`: in-kernel log2 latency histograms of Go functions, with a uprobe at each
//! function's entry site and at every RET (never a uretprobe; docs/design.md §1-§4).

mod by;
mod live;

use std::collections::BTreeMap;
use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::bpf_types::{func_breakdown, func_hist};
use crate::cli::FunclatArgs;
use crate::configure_breakdown;
use crate::output::announce::Announcement;
use crate::output::breakdown::FunctionBreakdown;
use crate::output::clock::Stamp;
use crate::output::histogram::{Log2Hist, Unit};
use crate::output::lines;
use crate::output::pprof::{Meta, WallProfile};
use crate::plan::capture::{self, by_key::KeyPlan};
use crate::plan::sched::SchedPlan;
use crate::plan::signature;
use crate::plan::sites::InlineSites;
use crate::plan::{self, ProbePlan};
use crate::session::bpf::funclat::*;
use crate::session::guard::{self, DroppedList, GuardPlan};
use crate::session::lifecycle::{PrintClock, Wake};
use crate::session::sched::{attach_sched_switch, BreakdownConfig, SchedCounts};
use crate::session::{maps, Consumer, Out, Session, Stop};
use by::Key;
use live::LiveOutputs;

/// The `--json` `breakdown` record of one function.
#[derive(serde::Serialize)]
struct BreakdownLine<'p> {
    #[serde(flatten)]
    at: Stamp,
    #[serde(flatten)]
    parts: &'p FunctionBreakdown,
}

/// Slowest calls shown per function with --breakdown (at most FUNC_SLOWEST per CPU are kept).
const SLOWEST: usize = 3;

/// Runs `gotrace funclat`.
pub fn run(args: &FunclatArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    claim_pprof(args)?;
    let unit = unit(args);
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let (plan, keys) = plan_funcs(&bin, &patterns, args)?;
    let sched = plan::sched::plan_if(args.breakdown.breakdown, &bin)?;
    let inline_sites = plan.inline_sites(|_| 0);
    let mut live = LiveOutputs::open(args, &session.target, &bin, &plan, unit)?;
    let dropped = session.guard(GuardPlan::new(
        &plan,
        &inline_sites,
        args.target.max_overhead_pct()?,
    ));
    let mut object = MaybeUninit::uninit();
    let skel = load(
        &session,
        &mut object,
        (&plan, keys.as_deref(), sched.as_ref()),
        &inline_sites,
        unit,
        args,
    )?;

    // The maps are read each `wakes` (-i, and more often for --listen and --heatmap); the
    // tables print each -i.
    let wakes = live.start(args.interval);
    let announcement = Announcement::of_plan(&plan, &patterns, args.target.verbose);
    let mut tables = Tables {
        skel: &skel,
        bin: &bin,
        binary: file.path().display().to_string(),
        plan: &plan,
        args,
        unit,
        interval: args.interval,
        live,
        // Before the lifecycle's clock starts in attach: each -i print is due by its wake.
        print_clock: PrintClock::start(args.interval),
        printed: vec![Log2Hist::default(); plan.funcs.len()],
        by: keys.map(|keys| ByKeys {
            kinds: keys.iter().map(|k| k.kind).collect(),
            printed: BTreeMap::new(),
        }),
        dropped,
        reasons: sched.as_ref().map(|s| s.reason_names()),
    };
    let mut sites = plan.sites(|_| true);
    sites.extend_from_slice(&inline_sites.sites);
    sites.extend(sched.iter().flat_map(|s| s.sites.iter().copied()));
    let _sched_switch = attach_sched_switch(sched.as_ref(), &skel.progs.funclat_sched_switch)?;
    let attached = session.attach(&skel, &sites, wakes, &announcement)?;
    let stop = session.run(&skel, attached, &mut tables)?;
    Ok(stop.exit_code())
}

/// --pprof: it carries --breakdown's parts, so it needs --breakdown; its file is created now
/// (a path that cannot be written fails before tracing starts).
fn claim_pprof(args: &FunclatArgs) -> Result<()> {
    let Some(path) = &args.pprof else {
        return Ok(());
    };
    if !args.breakdown.breakdown {
        bail!("--pprof writes where the calls' time went, which funclat measures only with --breakdown: add --breakdown");
    }
    crate::output::claim_output_file("--pprof", path)
}

/// The histograms' unit: -u microseconds, -m milliseconds, else nanoseconds.
fn unit(args: &FunclatArgs) -> Unit {
    match (args.microseconds, args.milliseconds) {
        (true, _) => Unit::Micros,
        (_, true) => Unit::Millis,
        _ => Unit::Nanos,
    }
}

/// The functions `patterns` match (a pattern may end in the function's written signature)
/// and, with --by, each one's key plan, through its written signature else DWARF's.
fn plan_funcs(
    bin: &crate::gobin::GoBinary<'_>,
    patterns: &[String],
    args: &FunclatArgs,
) -> Result<(ProbePlan, Option<Vec<KeyPlan>>)> {
    // --by keys a call at its entry: the functions' own code only.
    let inlined = if args.no_inlined || args.by.is_some() {
        plan::Inlined::No
    } else {
        plan::Inlined::Yes
    };
    let (names, written) = signature::parse_patterns(bin, patterns)?;
    let plan = plan::plan_with(bin, &names, true, inlined)?;
    let Some(text) = &args.by else {
        return Ok((plan, None));
    };
    if args.heatmap.is_some() {
        bail!("--heatmap draws one row per function and does not take --by; drop one of them");
    }
    let expr = capture::path::parse(text).map_err(|e| anyhow::anyhow!("--by {e}"))?;
    let keys = capture::by_key::key_plans(bin, &plan, &written, &expr, args.strsize)?;
    Ok((plan, Some(keys)))
}

/// Loads the funclat program: one histogram per planned function, room for --max-open-calls
/// calls in flight, the inlined calls' sites stored; with --by, each function's key plan and
/// room for --max-keys keys.
fn load<'o>(
    session: &Session,
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    (plan, keys, sched): (&ProbePlan, Option<&[KeyPlan]>, Option<&SchedPlan>),
    inline_sites: &InlineSites,
    unit: Unit,
    args: &FunclatArgs,
) -> Result<FunclatSkel<'o>> {
    let breakdown = BreakdownConfig {
        plan: sched,
        max_followed: args.breakdown.max_followed,
    };
    let funcs = plan.funcs.len() as u32;
    let skel =
        session.load::<FunclatSkelBuilder>(object, &plan.runtime, None, |rodata, open| {
            rodata.unit_div = unit.divisor();
            open.maps.hists.set_max_entries(plan.funcs.len() as u32)?;
            open.maps
                .starts
                .set_max_entries(args.max_open_calls.max(1))?;
            let inline_len = u32::try_from(inline_sites.entries.len().max(1))?;
            open.maps.inline_sites.set_max_entries(inline_len)?;
            if keys.is_some() {
                let funcs = plan.funcs.len() as u32;
                rodata.by_enabled = 1;
                rodata.max_keys = u64::from(args.max_keys);
                open.maps.by_plans.set_max_entries(funcs.max(1))?;
                open.maps
                    .fetch_plans
                    .set_max_entries(capture::fetch_plans_len(plan).max(1))?;
                open.maps
                    .by_open
                    .set_max_entries(args.max_open_calls.max(1))?;
                // Room for every value key, each function's keys without a value, and the
                // keys counted past --max-keys by racing CPUs.
                let room = args.max_keys.saturating_add(funcs.saturating_mul(3) + 64);
                open.maps.by_hists.set_max_entries(room)?;
            }
            let breakdowns = if sched.is_some() { funcs } else { 1 };
            open.maps.breakdowns.set_max_entries(breakdowns)?;
            configure_breakdown!(rodata, open, funclat_sched_switch, &breakdown)
        })?;
    for (index, site) in inline_sites.entries.iter().enumerate() {
        maps::store(&skel.maps.inline_sites, index as u32, site)?;
    }
    if let Some(keys) = keys {
        for (func, key) in plan.funcs.iter().zip(keys) {
            maps::store(&skel.maps.by_plans, func.id, &key.to_bpf())?;
        }
        for (index, fetch) in capture::by_key::key_fetch_plans(plan, keys) {
            maps::store(&skel.maps.fetch_plans, index, &fetch)?;
        }
    }
    Ok(skel)
}

/// What funclat does at each wake: reads the histograms, feeds the live outputs, prints the
/// tables each -i and at the stop.
struct Tables<'s, 'o> {
    skel: &'s FunclatSkel<'o>,
    /// The traced binary (--pprof names its frames from it), and its path.
    bin: &'s crate::gobin::GoBinary<'s>,
    binary: String,
    plan: &'s ProbePlan,
    args: &'s FunclatArgs,
    unit: Unit,
    interval: Option<Duration>,
    live: LiveOutputs,
    print_clock: PrintClock,
    /// The histograms as of the last -i print.
    printed: Vec<Log2Hist>,
    /// --by: the keyed histograms.
    by: Option<ByKeys>,
    /// The functions the overload guard dropped.
    dropped: DroppedList,
    /// --breakdown: the binary's wait-reason names (empty when it has none).
    reasons: Option<Vec<String>>,
}

/// --by: each function's key kind, and the keyed histograms as of the last -i print.
struct ByKeys {
    kinds: Vec<Option<capture::by_key::KeyKind>>,
    printed: BTreeMap<Key, Log2Hist>,
}

impl Consumer for Tables<'_, '_> {
    /// The program has no ring buffer: it aggregates in its maps.
    fn record(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }

    fn wake(&mut self, wake: Wake, out: &mut Out) -> Result<bool> {
        if wake == Wake::Drained {
            return Ok(true);
        }
        let now = read_hists(self.skel, self.plan)?;
        let keyed = self.read_keyed()?;
        self.live
            .update(&now, keyed.as_ref(), &guard::dropped_names(&self.dropped));
        if self.print_clock.take_due() {
            let ts_ns = crate::session::gate::monotonic_ns();
            self.print_period(out, (&now, &self.printed), keyed.as_ref(), ts_ns)?;
            self.printed = now;
            if let (Some(by), Some(keyed)) = (&mut self.by, keyed) {
                by.printed = keyed;
            }
        }
        Ok(true)
    }

    /// The last tables and (--json) the summary of their totals; calls still open are in
    /// flight at the end, or, in a target that exited, unmatched (a tail caller's call kept
    /// under its callee's too), or dropped_by_guard when the overload guard dropped their
    /// function (its probes were gone before they returned).
    fn stop(&mut self, stop: &Stop, out: &mut Out) -> Result<()> {
        let mut now = read_hists(self.skel, self.plan)?;
        let funcs = self.plan.funcs.len();
        let (open, open_dropped) = guard::split_open(&self.dropped, &stop.open_calls, funcs);
        for func_id in open {
            if let Some(hist) = now.get_mut(func_id as usize) {
                match stop.target_exited() {
                    true => hist.unmatched += 1,
                    false => hist.in_flight_at_end += 1,
                }
            }
        }
        let keyed = self.read_keyed()?;
        self.live
            .update(&now, keyed.as_ref(), &guard::dropped_names(&self.dropped));
        let keys_moved = match (&self.by, &keyed) {
            (Some(by), Some(keyed)) => &by.printed != keyed,
            _ => false,
        };
        if self.interval.is_none() || now != self.printed || keys_moved {
            self.print_period(out, (&now, &self.printed), keyed.as_ref(), stop.close_ns)?;
        }
        self.print_breakdowns(out, stop)?;
        let sched = SchedCounts::read(self.reasons.is_some(), &self.skel.maps.sched_stat)?;
        guard::summary(&self.dropped, &open_dropped, self.args.target.json, out)?;
        if self.args.target.json {
            let mut total = Log2Hist::default();
            now.iter().for_each(|h| total.add(h));
            let mut summary = total.summary_json(stop.close_ns);
            if let (Some(object), Some(serde_json::Value::Object(counts))) = (
                summary.as_object_mut(),
                sched.map(serde_json::to_value).transpose()?,
            ) {
                object.extend(counts);
            }
            writeln!(out, "{summary}")?;
        } else if let Some(sched) = sched {
            writeln!(out, "\n--breakdown: {sched}")?;
        }
        self.live.finish()?;
        if !self.args.target.json {
            writeln!(
                out,
                "Exiting trace of {}",
                crate::output::count(self.plan.funcs.len(), "function")
            )?;
        }
        Ok(())
    }
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

impl Tables<'_, '_> {
    /// --breakdown, at the stop: where each function's calls' time went (a JSON `breakdown`
    /// record per function, `ts_ns` the instant entries stopped counting), and --pprof.
    fn print_breakdowns(&self, out: &mut impl Write, stop: &Stop) -> Result<()> {
        let Some(reasons) = self.reasons.as_deref() else {
            return Ok(());
        };
        let mut profile = self.args.pprof.as_ref().map(|_| WallProfile::new(true));
        for func in &self.plan.funcs {
            let per_cpu = maps::per_cpu::<func_breakdown>(&self.skel.maps.breakdowns, func.id)?;
            let parts =
                FunctionBreakdown::of_function(&func.name, &per_cpu, Some(reasons), SLOWEST);
            if let Some(profile) = &mut profile {
                profile.add_function(func.entry, &func.name, &parts.breakdown);
            }
            if self.args.target.json {
                let at = Stamp::at(stop.close_ns);
                lines::write_json_line(out, "breakdown", &BreakdownLine { at, parts: &parts })?;
            } else if parts.calls != 0 {
                write!(out, "\n{}", parts.human())?;
            }
        }
        if let (Some(path), Some(profile)) = (&self.args.pprof, profile) {
            let meta = Meta {
                binary: self.binary.clone(),
                window: (stop.open_ns, stop.close_ns),
                comment: format!("gotrace funclat {}", self.args.positional.join(" ")),
            };
            profile.write_file(self.bin, &meta, path)?;
        }
        Ok(())
    }

    /// --by: every key's histogram, cumulative (None without --by).
    fn read_keyed(&self) -> Result<Option<BTreeMap<Key, Log2Hist>>> {
        self.by
            .as_ref()
            .map(|by| by::read_keyed(&self.skel.maps.by_hists, &by.kinds))
            .transpose()
    }

    /// Prints what happened since `earlier` for every function (--by: for every key);
    /// `ts_ns`: the period's end (the instant the histograms were read; at the stop, the
    /// instant entries stopped counting).
    fn print_period(
        &self,
        out: &mut impl Write,
        (now, earlier): (&[Log2Hist], &[Log2Hist]),
        keyed: Option<&BTreeMap<Key, Log2Hist>>,
        ts_ns: u64,
    ) -> Result<()> {
        if self.args.timestamp && !self.args.target.json {
            writeln!(out, "\n{}", crate::output::clock::wall_clock_hms())?;
        }
        if let (Some(by), Some(keyed)) = (&self.by, keyed) {
            return self.print_keyed(out, (keyed, &by.printed), ts_ns);
        }
        for ((func, now), earlier) in self.plan.funcs.iter().zip(now).zip(earlier) {
            let period = now.since(earlier);
            if self.args.target.json {
                writeln!(out, "{}", period.to_json(&func.name, self.unit, ts_ns))?;
            } else if period != Log2Hist::default() || self.plan.funcs.len() == 1 {
                // With many functions, only those that did something (as BCC does).
                writeln!(out, "\nFunction = {}", func.name)?;
                period.print(out, self.unit)?;
                if period.lost > 0 {
                    writeln!(
                        out,
                        "  ({} not measured: more than --max-open-calls={} calls in flight at once)",
                        crate::output::count(period.lost as usize, "call"), self.args.max_open_calls
                    )?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

impl Tables<'_, '_> {
    /// --by: prints what happened since `earlier` for every key of every function.
    fn print_keyed(
        &self,
        out: &mut impl Write,
        (now, earlier): (&BTreeMap<Key, Log2Hist>, &BTreeMap<Key, Log2Hist>),
        ts_ns: u64,
    ) -> Result<()> {
        let expr = self.args.by.as_deref().unwrap_or_default();
        for (key, hist) in now {
            let period = hist.since(earlier.get(key).unwrap_or(&Log2Hist::default()));
            let Some(func) = self.plan.funcs.get(key.func_id as usize) else {
                continue;
            };
            if self.args.target.json {
                let line = period.to_json(&func.name, self.unit, ts_ns);
                writeln!(out, "{}", by::keyed_json(line, key))?;
            } else if period.count > 0 {
                let cut = if key.truncated { "..." } else { "" };
                writeln!(
                    out,
                    "\nFunction = {}, {expr} = {}{cut}",
                    func.name, key.text
                )?;
                period.print(out, self.unit)?;
            }
        }
        out.flush()?;
        Ok(())
    }
}
