//! `gotrace args`: every call of the traced functions with its arguments (at the entry probe),
//! its results and duration (at each RET probe) and its goroutine. The BPF program copies raw
//! registers, stack and string bytes by a per-function fetch plan ([`crate::plan::capture`])
//! into one ring buffer; [`crate::decode`] turns records into values, [`render`] into lines.

mod render;

use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bpf_types::args_stats;
use crate::cli::{ArgsArgs, RingBuffer};
use crate::configure_breakdown;
use crate::decode::Decoder;
use crate::gobin::runtime::typenames::BinaryTypeNamer;
use crate::gobin::{Arch, GoBinary};
use crate::output::announce::Announcement;
use crate::output::clock::Stamp;
use crate::output::lines;
use crate::plan::capture::{self, InlineRead, Reads};
use crate::plan::sched::SchedPlan;
use crate::plan::signature;
use crate::plan::sites::InlineSites;
use crate::plan::{self, ProbePlan};
use crate::session::bpf::args::*;
use crate::session::guard::{self, DroppedList, GuardPlan};
use crate::session::lifecycle::Wake;
use crate::session::sched::{attach_sched_switch, BreakdownConfig, SchedCounts};
use crate::session::{maps, Consumer, Out, Session, Stop};

// --strsize's range (cli.rs) is what the BPF side can read.
const _: () = assert!(crate::cli::STRSIZE_MAX == capture::MAX_READ);

/// Runs `gotrace args`.
pub fn run(args: &ArgsArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let (plan, calls, inline) = plan_calls(&bin, &patterns, args)?;
    let plans_before_inline = capture::fetch_plans_len(&plan);
    let inline_sites = plan.inline_sites(|index| plans_before_inline + index);
    let max_overhead = args.target.max_overhead_pct()?;
    let dropped = session.guard(GuardPlan::new(&plan, &inline_sites, max_overhead));
    let mut object = MaybeUninit::uninit();
    let reads = (&calls[..], &inline[..], &inline_sites);
    let sched = plan::sched::plan_if(args.breakdown.breakdown, &bin)?;
    let skel = load(
        &session,
        &mut object,
        &bin,
        (&plan, sched.as_ref()),
        reads,
        args,
    )?;
    let namer = BinaryTypeNamer::new(&bin);
    let mut printer = Printer {
        decoder: Decoder::new(&plan, &calls, &inline, &namer, &bin),
        skel: &skel,
        json: args.target.json,
        min_duration: args.min_duration,
        clock_offset: crate::output::clock::monotonic_to_unix_ns(),
        left: args.max_events.unwrap_or(u64::MAX),
        printed: 0,
        lines: Vec::with_capacity(1 << 16),
        reasons: sched.as_ref().map(|s| s.reason_names()),
        funcs: plan.funcs.len(),
        dropped,
        filtering: args.filter.is_some(),
    };
    let mut sites = plan.sites(|_| !args.no_ret);
    sites.extend(
        inline_sites
            .sites
            .iter()
            .zip(&inline)
            .filter(|(_, read)| !(args.no_ret && read.is_end))
            .map(|(site, _)| *site),
    );
    sites.extend(sched.iter().flat_map(|s| s.sites.iter().copied()));
    let _sched_switch = attach_sched_switch(sched.as_ref(), &skel.progs.args_sched_switch)?;
    let announcement = Announcement::of_plan(&plan, &patterns, args.target.verbose);
    let attached = session.attach(&skel, &sites, None, &announcement)?;
    let stop = session.run(&skel, attached, &mut printer)?;
    Ok(stop.exit_code())
}

/// The `--json` summary record: events printed, lost, malformed and unmatched.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    at: Stamp,
    events: u64,
    lost: u64,
    malformed: u64,
    unmatched: u64,
    in_flight_at_start: u64,
    in_flight_at_end: u64,
    /// --breakdown's counters.
    #[serde(flatten)]
    sched: Option<SchedCounts>,
    /// Calls not shown, by why (--where): the condition did not hold, or its value could not
    /// be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    filtered_by_where: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    where_unreadable: Option<u64>,
    /// With `--min-duration`: the calls not shown, by reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_shown: Option<NotShown>,
}

/// The calls `--min-duration` kept from the output, by reason (a call also counted
/// `unmatched`, `lost` or in flight at an edge is not counted again here).
#[derive(Serialize)]
struct NotShown {
    /// Returned sooner than `--min-duration`.
    below_min_duration: u64,
    /// Inlined calls whose end has no probe: they cannot be timed.
    untimed: u64,
}

/// `--min-duration` in nanoseconds (0: every call is shown).
fn min_duration_ns(args: &ArgsArgs) -> u64 {
    args.min_duration
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Loads the args program, and stores each function's fetch plans and the inlined calls'
/// probes with theirs.
fn load<'o>(
    session: &Session,
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    bin: &GoBinary<'_>,
    (plan, sched): (&ProbePlan, Option<&SchedPlan>),
    (calls, inline, inline_sites): (&[Reads], &[InlineRead], &InlineSites),
    args: &ArgsArgs,
) -> Result<ArgsSkel<'o>> {
    let breakdown = BreakdownConfig {
        plan: sched,
        max_followed: args.breakdown.max_followed,
    };
    let g_goid = u32::try_from(bin.runtime_layout(bin.dwarf()?)?.g_goid)
        .context("goid offset out of range")?;
    let inline_len = u32::try_from(inline.len()).context("too many inlined-call probes")?;
    let ring = Some(args.buffer.bytes(RingBuffer::DEFAULT_KIB));
    let skel = session.load::<ArgsSkelBuilder>(object, &plan.runtime, ring, |rodata, open| {
        rodata.g_goid = g_goid;
        rodata.pair_calls = u32::from(!args.no_ret);
        rodata.walk_stack = u32::from(args.stack);
        rodata.min_duration_ns = min_duration_ns(args);
        let fetch_plans = capture::fetch_plans_len(plan) + inline_len;
        open.maps.fetch_plans.set_max_entries(fetch_plans)?;
        open.maps.inline_sites.set_max_entries(inline_len.max(1))?;
        open.maps
            .starts
            .set_max_entries(args.max_open_calls.max(1))?;
        open.maps.held.set_max_entries(match args.min_duration {
            Some(_) => args.max_open_calls.max(1),
            None => 1,
        })?;
        configure_breakdown!(rodata, open, args_sched_switch, &breakdown)
    })?;
    for (key, fetch) in capture::fetch_plans(plan, calls) {
        maps::store(&skel.maps.fetch_plans, key, &fetch)?;
    }
    for ((index, site), read) in inline_sites.entries.iter().enumerate().zip(inline) {
        maps::store(&skel.maps.inline_sites, index as u32, site)?;
        maps::store(
            &skel.maps.fetch_plans,
            site.fetch_plan,
            &read.plan.to_bpf(read.parent_entry),
        )?;
    }
    Ok(skel)
}

/// The planned functions and, for each, its ABI plan: from the user's written signature, else
/// DWARF; `--global`s read at each entry.
fn plan_calls(
    bin: &GoBinary<'_>,
    patterns: &[String],
    args: &ArgsArgs,
) -> Result<(ProbePlan, Vec<Reads>, Vec<InlineRead>)> {
    let (names, user_sigs) = signature::parse_patterns(bin, patterns)?;
    // --where is decided at the functions' own entries, not at their inlined calls.
    let inlined = if args.no_inlined || args.filter.is_some() {
        plan::Inlined::No
    } else {
        plan::Inlined::Yes
    };
    let plan = plan::plan_with(bin, &names, !args.no_ret, inlined)?;
    let sources = capture::Sources {
        bin,
        dwarf: bin.dwarf()?,
        user_sigs: &user_sigs,
        strsize: args.strsize,
    };
    let extra = capture::Extra {
        globals: args.globals.clone(),
        fields: capture::path::parse_all(&args.fields)?,
        filter: args
            .filter
            .as_deref()
            .map(capture::filter::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    let calls = capture::call_plans(&sources, &plan, &extra)?;
    for note in &calls.notes {
        eprintln!("gotrace: {note}");
    }
    if args.stack && bin.elf.arch != Arch::Amd64 {
        bail!("--stack follows frame pointers, which only amd64 Go binaries have");
    }
    let inline = capture::inline_reads(&sources, &plan)?;
    Ok((plan, calls.reads, inline))
}

/// Turns ring-buffer records into output lines, and ends with the summary.
struct Printer<'p, 'o> {
    decoder: Decoder<'p>,
    skel: &'p ArgsSkel<'o>,
    json: bool,
    /// `--min-duration`: the summary counts the calls not shown for it.
    min_duration: Option<std::time::Duration>,
    clock_offset: i128,
    /// Events still to print before --max-events is reached.
    left: u64,
    printed: u64,
    /// Lines formatted since the last flush.
    lines: Vec<u8>,
    /// The planned functions, and those the overload guard dropped.
    funcs: usize,
    dropped: DroppedList,
    /// --where was given (the summary counts the calls it hid).
    filtering: bool,
    /// --breakdown: the binary's wait-reason names (empty when it has none).
    reasons: Option<Vec<String>>,
}

impl Consumer for Printer<'_, '_> {
    /// Decodes one record into `lines` (ignored once --max-events were printed).
    fn record(&mut self, bytes: &[u8]) -> Result<()> {
        if self.left == 0 {
            return Ok(());
        }
        let Some(event) = self.decoder.decode(bytes) else {
            return Ok(());
        };
        if self.json {
            render::json_line(&mut self.lines, &event, self.reasons.as_deref());
        } else {
            let reasons = self.reasons.as_deref();
            render::human_line(&mut self.lines, &event, self.clock_offset, reasons);
        }
        self.left -= 1;
        self.printed += 1;
        Ok(())
    }

    /// Writes the pending lines; false once --max-events were printed.
    fn wake(&mut self, _: Wake, out: &mut Out) -> Result<bool> {
        self.flush(out)
    }

    fn stop(&mut self, stop: &Stop, out: &mut Out) -> Result<()> {
        self.flush(out)?;
        self.write_summary(out, stop)
    }
}

impl Printer<'_, '_> {
    /// Writes the pending lines; false once --max-events were printed.
    fn flush(&mut self, out: &mut impl Write) -> Result<bool> {
        out.write_all(&self.lines)?;
        out.flush()?;
        self.lines.clear();
        Ok(self.left > 0)
    }

    /// What the overload guard dropped, then the last line: the instant entries stopped
    /// counting, events printed, lost, malformed, unmatched and in flight at the edges (calls
    /// still open in an exited target count as unmatched, else as in flight at the end; a tail
    /// caller's kept under its callee's too; a dropped function's are dropped_by_guard).
    fn write_summary(&self, out: &mut impl Write, stop: &Stop) -> Result<()> {
        let (events, malformed) = (self.printed, self.decoder.malformed());
        let stats = maps::per_cpu::<args_stats>(&self.skel.maps.stats, 0)?;
        let lost: u64 = stats.iter().map(|s| s.lost).sum();
        let mut unmatched: u64 = stats.iter().map(|s| s.unmatched).sum();
        let in_flight_at_start: u64 = stats.iter().map(|s| s.in_flight_at_start).sum();
        let sched = SchedCounts::read(self.reasons.is_some(), &self.skel.maps.sched_stat)?;
        let not_shown = self.min_duration.map(|_| NotShown {
            below_min_duration: stats.iter().map(|s| s.below_min_duration).sum(),
            untimed: stats.iter().map(|s| s.untimed).sum(),
        });
        let filtering = self.filtering;
        let filtered = filtering.then(|| stats.iter().map(|s| s.filtered).sum::<u64>());
        let where_unreadable =
            filtering.then(|| stats.iter().map(|s| s.where_unreadable).sum::<u64>());
        let (open, open_dropped) = guard::split_open(&self.dropped, &stop.open_calls, self.funcs);
        guard::summary(&self.dropped, &open_dropped, self.json, out)?;
        let open = open.len() as u64;
        let mut in_flight_at_end = 0;
        match stop.target_exited() {
            true => unmatched += open,
            false => in_flight_at_end = open,
        }
        if self.json {
            let summary = Summary {
                at: Stamp::at(stop.close_ns),
                events,
                lost,
                malformed,
                unmatched,
                in_flight_at_start,
                in_flight_at_end,
                not_shown,
                filtered_by_where: filtered,
                where_unreadable,
                sched,
            };
            lines::write_json_line(out, "summary", &summary)?;
        } else {
            let not_shown = match (&not_shown, self.min_duration) {
                (Some(n), Some(min)) => format!(
                    "; not shown: {} calls below --min-duration {}, {} untimed inlined calls",
                    n.below_min_duration,
                    crate::output::clock::human_duration(
                        u64::try_from(min.as_nanos()).unwrap_or(u64::MAX)
                    ),
                    n.untimed
                ),
                _ => String::new(),
            };
            writeln!(
                out,
                "{events} events, {lost} lost, {malformed} malformed, {unmatched} unmatched, {in_flight_at_start} in flight at start, {in_flight_at_end} at end{not_shown}{}",
                SchedCounts::human_tail(sched)
            )?;
            if let (Some(filtered), Some(unreadable)) = (filtered, where_unreadable) {
                writeln!(
                    out,
                    "calls not shown: {filtered} where --where did not hold, {unreadable} where its value could not be read"
                )?;
            }
        }
        Ok(())
    }
}
