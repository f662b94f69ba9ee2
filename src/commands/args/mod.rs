//! `gotrace args`: every call of the traced functions with its arguments (at the entry probe),
//! its results and duration (at each RET probe) and its goroutine. The BPF program copies raw
//! registers, stack and string bytes by a per-function fetch plan ([`crate::plan::capture`])
//! into one ring buffer; [`crate::decode`] turns records into values, [`render`] into lines.

mod render;

use std::cell::RefCell;
use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::Skel;
use serde::Serialize;

use crate::bpf_types::args_stats;
use crate::cli::ArgsArgs;
use crate::decode::Decoder;
use crate::gobin::runtime::typenames::BinaryTypeNamer;
use crate::gobin::{Arch, GoBinary};
use crate::output::clock::Stamp;
use crate::output::lines;
use crate::plan::capture::{self, InlineRead, Reads};
use crate::plan::signature;
use crate::plan::sites::InlineSites;
use crate::plan::{self, ProbePlan};
use crate::session::bpf::{self, args::*, open_skeleton};
use crate::session::drain::{self, RingDrain};
use crate::session::lifecycle::{StopReason, Wake};
use crate::session::{maps, Session};

/// Runs `gotrace args`.
pub fn run(args: &ArgsArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    if args.strsize > capture::MAX_READ {
        bail!("--strsize is at most {}", capture::MAX_READ);
    }
    if !args.ringbuf_kib.is_power_of_two() || !(4..=(1 << 21)).contains(&args.ringbuf_kib) {
        bail!("--ringbuf-kib must be a power of two from 4 to 2097152");
    }
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let (plan, calls, inline) = plan_calls(&bin, &patterns, args)?;
    let plans_before_inline = capture::fetch_plans_len(&plan);
    let inline_sites = plan.inline_sites(|index| plans_before_inline + index);
    let mut object = MaybeUninit::uninit();
    let skel = load_program(
        &mut object,
        &bin,
        &plan,
        (&calls, &inline, &inline_sites),
        session.pid(),
        args,
    )?;
    let namer = BinaryTypeNamer::new(&bin);
    let printer = RefCell::new(Printer {
        decoder: Decoder::new(&plan, &calls, &inline, &namer, &bin),
        json: args.target.json,
        clock_offset: crate::output::clock::monotonic_to_unix_ns(),
        left: args.max_events.unwrap_or(u64::MAX),
        printed: 0,
        lines: Vec::with_capacity(1 << 16),
    });
    let mut ring = RingDrain::start(&skel.maps.events, |bytes| printer.borrow_mut().print(bytes))?;
    let mut sites = plan.sites(|_| !args.no_ret);
    sites.extend(
        inline_sites
            .sites
            .iter()
            .zip(&inline)
            .filter(|(_, read)| !(args.no_ret && read.is_end))
            .map(|(site, _)| *site),
    );
    let attached = session.attach(
        skel.object(),
        &sites,
        None,
        &plan.announcement(&patterns, args.target.verbose),
    )?;
    let (pid, edges) = (session.pid(), session.edges());
    let stop = session.run(attached, &mut ring, |wake, out| {
        let more = printer.borrow_mut().flush(out)?;
        let Wake::Stop(stop) = wake else {
            return Ok(more);
        };
        let counts = printer.borrow().counts();
        write_summary(
            out,
            &skel,
            stop,
            pid,
            counts,
            args.target.json,
            edges.close_ns(),
        )?;
        Ok(true)
    })?;
    Ok(stop.exit_code())
}

/// The last line: events printed, lost, malformed, unmatched and in flight at the edges
/// (calls still open in an exited target count as unmatched, else as in flight at the end; a
/// tail caller's kept under its callee's too). `ts_ns`: the instant entries stopped counting.
fn write_summary(
    out: &mut impl Write,
    skel: &ArgsSkel<'_>,
    stop: StopReason,
    pid: Option<u32>,
    Counts { events, malformed }: Counts,
    json: bool,
    ts_ns: u64,
) -> Result<()> {
    let stats = maps::per_cpu::<args_stats>(&skel.maps.stats, 0)?;
    let lost: u64 = stats.iter().map(|s| s.lost).sum();
    let mut unmatched: u64 = stats.iter().map(|s| s.unmatched).sum();
    let in_flight_at_start: u64 = stats.iter().map(|s| s.in_flight_at_start).sum();
    let open = maps::open_calls(&skel.maps.starts, pid)?.len() as u64;
    let mut in_flight_at_end = 0;
    match stop {
        StopReason::TargetExited(_) => unmatched += open,
        _ => in_flight_at_end = open,
    }
    if json {
        let summary = Summary {
            at: Stamp::at(ts_ns),
            events,
            lost,
            malformed,
            unmatched,
            in_flight_at_start,
            in_flight_at_end,
        };
        lines::write_json_line(out, "summary", &summary)?;
    } else {
        writeln!(
            out,
            "{events} events, {lost} lost, {malformed} malformed, {unmatched} unmatched, {in_flight_at_start} in flight at start, {in_flight_at_end} at end"
        )?;
    }
    Ok(())
}

/// The `--json` summary record: the instant entries stopped counting, events printed, lost,
/// malformed, unmatched and in flight at the edges.
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
}

/// Opens, sizes and loads the args program, and stores each function's fetch plans and the
/// inlined calls' probes with theirs.
fn load_program<'o>(
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    bin: &GoBinary<'_>,
    plan: &ProbePlan,
    (calls, inline, inline_sites): (&[Reads], &[InlineRead], &InlineSites),
    pid: Option<u32>,
    args: &ArgsArgs,
) -> Result<ArgsSkel<'o>> {
    let g_goid = u32::try_from(bin.runtime_layout(bin.dwarf()?)?.g_goid)
        .context("goid offset out of range")?;
    crate::session::kernel::require_bpf_privileges()?;

    let mut open = open_skeleton!(ArgsSkelBuilder, object, plan.runtime, pid, |rodata| {
        rodata.g_goid = g_goid;
        rodata.pair_calls = u32::from(!args.no_ret);
        rodata.walk_stack = u32::from(args.stack);
        rodata.wakeup_watermark = drain::wakeup_watermark(args.ringbuf_kib << 10);
    });
    let inline_len = u32::try_from(inline.len()).context("too many inlined-call probes")?;
    open.maps
        .fetch_plans
        .set_max_entries(capture::fetch_plans_len(plan) + inline_len)?;
    open.maps.inline_sites.set_max_entries(inline_len.max(1))?;
    open.maps
        .starts
        .set_max_entries(args.max_open_calls.max(1))?;
    open.maps.events.set_max_entries(args.ringbuf_kib << 10)?;
    let skel = bpf::load(open)?;
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
    let mut user_sigs = Vec::new();
    let mut names = Vec::new();
    for pattern in patterns {
        let (name, written) = signature::split_pattern(pattern);
        if written.is_some() {
            user_sigs.push(signature::parse(pattern, bin.elf.arch.ptr_size())?);
        }
        names.push(name.to_owned());
    }
    let inlined = if args.no_inlined {
        plan::Inlined::No
    } else {
        plan::Inlined::Yes
    };
    let plan = plan::plan_with(bin, &names, !args.no_ret, inlined)?;
    let dwarf = bin.dwarf()?;
    let calls = capture::call_plans(bin, dwarf, &plan, &user_sigs, args.strsize, &args.globals)?;
    for note in &calls.notes {
        eprintln!("gotrace: {note}");
    }
    if args.stack && bin.elf.arch != Arch::Amd64 {
        bail!("--stack follows frame pointers, which only amd64 Go binaries have");
    }
    let inline = capture::inline_reads(bin, dwarf, &plan, &user_sigs, args.strsize)?;
    Ok((plan, calls.reads, inline))
}

/// Turns ring-buffer records into output lines.
struct Printer<'p> {
    decoder: Decoder<'p>,
    json: bool,
    clock_offset: i128,
    /// Events still to print before --max-events is reached.
    left: u64,
    printed: u64,
    /// Lines formatted since the last flush.
    lines: Vec<u8>,
}

/// What the summary says of the records the printer saw.
#[derive(Clone, Copy)]
struct Counts {
    /// Events printed.
    events: u64,
    /// Records that could not be decoded.
    malformed: u64,
}

impl Printer<'_> {
    fn counts(&self) -> Counts {
        Counts {
            events: self.printed,
            malformed: self.decoder.malformed(),
        }
    }

    /// Decodes one record into `lines` (ignored once --max-events were printed).
    fn print(&mut self, bytes: &[u8]) {
        if self.left == 0 {
            return;
        }
        let Some(event) = self.decoder.decode(bytes) else {
            return;
        };
        if self.json {
            render::json_line(&mut self.lines, &event);
        } else {
            render::human_line(&mut self.lines, &event, self.clock_offset);
        }
        self.left -= 1;
        self.printed += 1;
    }

    /// Writes the pending lines; false once --max-events were printed.
    fn flush(&mut self, out: &mut impl Write) -> Result<bool> {
        out.write_all(&self.lines)?;
        out.flush()?;
        self.lines.clear();
        Ok(self.left > 0)
    }
}
