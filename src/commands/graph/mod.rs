//! `gotrace graph`: for each call of ROOT, the tree of traced calls beneath it on its goroutine,
//! with durations. The plan is ROOT, the functions it reaches by direct calls
//! ([`crate::plan::reach`]) and the user's PATTERNs; the BPF program (src/bpf/graph.bpf.c)
//! emits ENTER/EXIT records only while a goroutine is inside ROOT, and GOEXIT when
//! runtime.goexit1 ends a goroutine still inside ROOT; with --args those records carry the
//! site's capture, planned and decoded as `gotrace args` does ([`crate::plan::capture`],
//! [`crate::decode`]); with --breakdown each call's EXIT record follows a record of where its
//! time went (src/bpf/sched_follow.bpf.h, as `gotrace args --breakdown`); [`tree`] builds the
//! trees; [`crate::output::calltree`] renders them
//! (human, JSON, folded stacks, SVG).

mod tree;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::mem::MaybeUninit;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bpf_types::{graph_breakdown_event, graph_event, graph_event_kind, graph_stats};
use crate::cli::{GraphArgs, RingBuffer};
use crate::configure_breakdown;
use crate::decode::Decoder;
use crate::gobin::runtime::typenames::BinaryTypeNamer;
use crate::gobin::GoBinary;
use crate::output::announce::Announcement;
use crate::output::breakdown::Breakdown;
use crate::output::calltree::{self, CallTree, FoldedStacks, TreeLine};
use crate::output::clock::Stamp;
use crate::output::lines;
use crate::output::pprof::{Meta, WallProfile};
use crate::plan::capture::{self, Reads};
use crate::plan::sched::SchedPlan;
use crate::plan::signature::{self, UserSignature};
use crate::plan::sites::InlineSites;
use crate::plan::{self, reach, ProbePlan};
use crate::session::bpf::graph::*;
use crate::session::guard::{self, GuardPlan};
use crate::session::lifecycle::Wake;
use crate::session::sched::{attach_sched_switch, BreakdownConfig, SchedCounts};
use crate::session::{maps, Consumer, Out, Session, Stop};
use tree::{Counts, Limits, Record, Step, TreeBuilder};

/// Runs `gotrace graph`.
pub fn run(args: &GraphArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    for (flag, path) in [
        ("--folded", &args.folded),
        ("--svg", &args.svg),
        ("--pprof", &args.pprof),
    ] {
        if let Some(path) = path {
            crate::output::claim_output_file(flag, path)?;
        }
    }
    if args.max_nodes == 0 {
        bail!("--max-nodes must be at least 1 (the root call)");
    }
    let (mut session, file) = Session::resolve(&args.target, spec)?;
    let bin = file.parse()?;
    let (names, written) = signature::parse_patterns(&bin, &patterns)?;
    let (mut plan, n_roots) = plan_graph(&bin, &names, args)?;
    let goexit_id = plan_goexit(&bin, &mut plan)?;
    let calls = args
        .args
        .then(|| plan_captures(&bin, &plan, &written, args))
        .transpose()?;
    let sched = plan::sched::plan_if(args.breakdown.breakdown, &bin)?;
    let max_overhead = args.target.max_overhead_pct()?;
    let mut guard_plan = GuardPlan::new(&plan, &InlineSites::default(), max_overhead);
    // The trees begin and end at ROOT's and goexit1's probes: the guard never detaches them.
    guard_plan.pin((0..n_roots).chain([goexit_id]));
    let dropped = session.guard(guard_plan);
    let mut object = MaybeUninit::uninit();
    let ids = ProgramIds { n_roots, goexit_id };
    let planned = (&plan, calls.as_deref(), sched.as_ref());
    let skel = load(&session, &mut object, &bin, planned, ids, args)?;
    let namer = BinaryTypeNamer::new(&bin);
    let decoder = calls
        .as_deref()
        .map(|calls| Decoder::new(&plan, calls, &[], &namer, &bin));
    let what = format!("{} (gotrace graph {})", patterns[0], patterns.join(" "));
    let mut printer = Printer::new(&bin, &plan, n_roots, &skel, args, decoder, what);
    printer.binary = file.path().display().to_string();
    printer.builder.guard.dropped = dropped;
    printer.reasons = sched.as_ref().map(SchedPlan::reason_names);
    let mut sites = plan.sites(|_| true);
    sites.extend(sched.iter().flat_map(|s| s.sites.iter().copied()));
    let _sched_switch = attach_sched_switch(sched.as_ref(), &skel.progs.graph_sched_switch)?;
    let announcement = Announcement::of_plan(&plan, &patterns, args.target.verbose);
    let attached = session.attach(&skel, &sites, None, &announcement)?;
    let stop = session.run(&skel, attached, &mut printer)?;
    Ok(stop.exit_code())
}

/// ROOT's functions first (ids 0 .. n_roots-1), then the PATTERNs' and the functions ROOT
/// reaches within --depth direct calls (without the runtime unless --runtime).
fn plan_graph(
    bin: &GoBinary<'_>,
    patterns: &[String],
    args: &GraphArgs,
) -> Result<(ProbePlan, u32)> {
    let mut plan = plan::plan(bin, &patterns[..1], true)?;
    let n_roots = u32::try_from(plan.funcs.len()).context("too many ROOT functions")?;
    let roots: Vec<u64> = plan.funcs.iter().map(|f| f.entry).collect();
    if patterns.len() > 1 {
        let extra = plan::plan(bin, &patterns[1..], true)?;
        plan.skipped.extend(extra.skipped);
        plan.add_functions(
            bin,
            extra
                .funcs
                .iter()
                .filter_map(|f| bin.func_entered_at(f.entry)),
        )?;
    }
    let with_runtime = args.runtime && !args.no_runtime;
    plan.add_functions(bin, reach::reachable(bin, &roots, args.depth, with_runtime))?;
    Ok((plan, n_roots))
}

/// The id of runtime.goexit1 in `plan`, added (entry only: it never returns) when the plan does
/// not hold it yet. It runs on a goroutine that runtime.Goexit ends, after its deferred calls.
fn plan_goexit(bin: &GoBinary<'_>, plan: &mut ProbePlan) -> Result<u32> {
    const GOEXIT1: &str = "runtime.goexit1";
    if let Some(f) = plan.funcs.iter().find(|f| f.name == GOEXIT1) {
        return Ok(f.id);
    }
    let mut goexit1 = plan::plan(bin, &[GOEXIT1.to_owned()], false)?
        .funcs
        .into_iter()
        .next()
        .context("runtime.goexit1 not planned")?;
    goexit1.id = u32::try_from(plan.funcs.len()).context("too many functions")?;
    let id = goexit1.id;
    plan.funcs.push(goexit1);
    Ok(id)
}

/// --args: what is read at each planned function's sites, from its written signature else
/// DWARF (as `gotrace args` reads it, strings up to its default --strsize), with the --field
/// paths; for a stripped binary's function without one, only calls and durations (said once).
fn plan_captures(
    bin: &GoBinary<'_>,
    plan: &ProbePlan,
    written: &[UserSignature],
    args: &GraphArgs,
) -> Result<Vec<Reads>> {
    const STRSIZE: u32 = 64;
    let sources = capture::Sources {
        bin,
        dwarf: bin.dwarf()?,
        user_sigs: written,
        strsize: STRSIZE,
    };
    let extra = capture::Extra {
        fields: capture::path::parse_all(&args.fields)?,
        ..capture::Extra::default()
    };
    let calls = capture::call_plans(&sources, plan, &extra)?;
    for note in &calls.notes {
        eprintln!("gotrace: {note}");
    }
    Ok(calls.reads)
}

/// The planned function ids the program treats specially.
struct ProgramIds {
    /// Ids 0 .. n_roots-1 are ROOT's functions.
    n_roots: u32,
    /// runtime.goexit1.
    goexit_id: u32,
}

/// The `file:line` of each ROOT function's entry, by name.
fn root_sites(bin: &GoBinary<'_>, plan: &ProbePlan, n_roots: u32) -> HashMap<String, String> {
    plan.funcs[..n_roots as usize]
        .iter()
        .filter_map(|f| {
            let func = bin.func_entered_at(f.entry)?;
            let (file, line) = bin.pclntab.line(func, func.entry).ok()??;
            Some((f.name.clone(), format!("{file}:{line}")))
        })
        .collect()
}

/// Loads the graph program (with --args, the fetch plans stored; with --breakdown, the
/// scheduler's probes configured).
fn load<'o>(
    session: &Session,
    object: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    bin: &GoBinary<'_>,
    (plan, calls, sched): (&ProbePlan, Option<&[Reads]>, Option<&SchedPlan>),
    ids: ProgramIds,
    args: &GraphArgs,
) -> Result<GraphSkel<'o>> {
    let g_goid = u32::try_from(bin.runtime_layout(bin.dwarf()?)?.g_goid)
        .context("goid offset out of range")?;
    let ring = Some(args.buffer.bytes(RingBuffer::DEFAULT_KIB));
    let breakdown = BreakdownConfig {
        plan: sched,
        max_followed: args.breakdown.max_followed,
    };
    let skel = session.load::<GraphSkelBuilder>(object, &plan.runtime, ring, |rodata, open| {
        rodata.g_goid = g_goid;
        rodata.n_roots = ids.n_roots;
        rodata.goexit_id = ids.goexit_id;
        rodata.capture_args = u32::from(calls.is_some());
        open.maps
            .inside
            .set_max_entries(args.max_goroutines.max(1))?;
        if calls.is_some() {
            let fetch_plans = capture::fetch_plans_len(plan);
            open.maps.fetch_plans.set_max_entries(fetch_plans)?;
        }
        configure_breakdown!(rodata, open, graph_sched_switch, &breakdown)
    })?;
    if let Some(calls) = calls {
        for (key, fetch) in capture::fetch_plans(plan, calls) {
            maps::store(&skel.maps.fetch_plans, key, &fetch)?;
        }
    }
    Ok(skel)
}

/// Turns ring-buffer records into trees and the trees into output; at the stop, the files
/// and the summary.
struct Printer<'p, 'o> {
    builder: TreeBuilder,
    bin: &'p GoBinary<'p>,
    /// Each planned function's link-time entry, by id.
    entries: Vec<u64>,
    /// --args: decodes each record's capture.
    decoder: Option<Decoder<'p>>,
    root_sites: HashMap<String, String>,
    skel: &'p GraphSkel<'o>,
    args: &'p GraphArgs,
    /// The flame graph's title.
    what: String,
    /// The traced binary's path (for --pprof).
    binary: String,
    clock_offset: i128,
    min_ns: Option<u64>,
    folded: Option<FoldedStacks>,
    pprof: Option<WallProfile>,
    /// Output formatted since the last flush.
    text: Vec<u8>,
    trees: u64,
    below_min: u64,
    /// Ring records that are no graph record (shorter than its header, or of no known kind).
    malformed_records: u64,
    /// --breakdown: the binary's wait-reason names (empty when it has none).
    reasons: Option<Vec<String>>,
    /// --breakdown: each returning call's attributed parts until its EXIT record, by process,
    /// goroutine and depth.
    pending: HashMap<(u32, u64, u64), Breakdown>,
}

impl<'p, 'o> Printer<'p, 'o> {
    /// A printer of `plan`'s trees (its first `n_roots` functions are ROOT).
    fn new(
        bin: &'p GoBinary<'p>,
        plan: &ProbePlan,
        n_roots: u32,
        skel: &'p GraphSkel<'o>,
        args: &'p GraphArgs,
        decoder: Option<Decoder<'p>>,
        what: String,
    ) -> Self {
        let names = plan.funcs.iter().map(|f| f.name.clone()).collect();
        let limits = Limits {
            max_depth: args.max_depth,
            max_nodes: args.max_nodes,
        };
        Printer {
            builder: TreeBuilder::new(names, n_roots, limits),
            bin,
            entries: plan.funcs.iter().map(|f| f.entry).collect(),
            decoder,
            root_sites: root_sites(bin, plan, n_roots),
            skel,
            args,
            what,
            binary: String::new(),
            clock_offset: crate::output::clock::monotonic_to_unix_ns(),
            min_ns: args
                .min
                .map(|min| min.as_nanos().try_into().unwrap_or(u64::MAX)),
            folded: (args.folded.is_some() || args.svg.is_some()).then(FoldedStacks::default),
            pprof: args
                .pprof
                .is_some()
                .then(|| WallProfile::new(args.breakdown.breakdown)),
            text: Vec::new(),
            trees: 0,
            below_min: 0,
            malformed_records: 0,
            reasons: None,
            pending: HashMap::new(),
        }
    }
}

impl Consumer for Printer<'_, '_> {
    /// Applies one record.
    fn record(&mut self, bytes: &[u8]) -> Result<()> {
        let Ok(e) = crate::bpf_types::read::<graph_event>(bytes) else {
            self.malformed_records += 1;
            return Ok(());
        };
        let step = match e.kind {
            graph_event_kind::GRAPH_ENTER => Step::Enter,
            graph_event_kind::GRAPH_EXIT => Step::Exit,
            graph_event_kind::GRAPH_TAIL_EXIT => Step::TailExit,
            graph_event_kind::GRAPH_GOEXIT => Step::Goexit,
            graph_event_kind::GRAPH_BREAKDOWN => {
                self.keep_breakdown(bytes);
                return Ok(());
            }
            _ => {
                self.malformed_records += 1;
                return Ok(());
            }
        };
        // --args: ENTER and EXIT records carry their capture (struct graph_args_event).
        let values = match &mut self.decoder {
            Some(decoder) if step != Step::Goexit => decoder
                .decode(bytes.get(size_of::<graph_event>()..).unwrap_or(&[]))
                .map(|mut call| {
                    call.values.append(&mut call.fields);
                    call.values
                }),
            _ => None,
        };
        let entry_pc = self.entries.get(e.func_id as usize).copied().unwrap_or(0);
        let return_pc = match (step, e.return_offset) {
            (Step::Enter, offset) if offset != 0 && entry_pc != 0 => {
                entry_pc.wrapping_add_signed(offset)
            }
            _ => 0,
        };
        // --breakdown: a call closed by its RET without a breakdown record was not followed.
        let breakdown = match (step, &self.reasons) {
            (Step::Exit | Step::TailExit, Some(_)) => Some(
                self.pending
                    .remove(&(e.tgid, e.goid, e.depth))
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let record = Record {
            pid: e.tgid,
            goid: e.goid,
            func_id: e.func_id,
            depth: e.depth,
            ts_ns: e.ts_ns,
            step,
            entry_pc,
            return_pc,
            values,
            breakdown,
        };
        let mut done = Vec::new();
        self.builder.apply(record, &mut |tree| done.push(tree));
        for tree in done {
            self.print(tree);
        }
        Ok(())
    }

    fn wake(&mut self, _: Wake, out: &mut Out) -> Result<bool> {
        self.flush(out)?;
        Ok(true)
    }

    /// Closes and prints the trees still open, writes the files and the summary.
    fn stop(&mut self, stop: &Stop, out: &mut Out) -> Result<()> {
        let mut done = Vec::new();
        self.builder.finish(&mut |tree| done.push(tree));
        for tree in done {
            self.print(tree);
        }
        self.flush(out)?;
        self.write_files(stop)?;
        let stats = maps::per_cpu::<graph_stats>(&self.skel.maps.stats, 0)?;
        let guarded = &self.builder.guard;
        guard::summary(&guarded.dropped, &guarded.open, self.args.target.json, out)?;
        self.write_summary(out, &stats, stop.close_ns)?;
        self.hint_without_trees(&self.args.positional[0]);
        out.flush()?;
        Ok(())
    }
}

impl Printer<'_, '_> {
    /// Keeps a GRAPH_BREAKDOWN record's parts for the EXIT record that follows it.
    fn keep_breakdown(&mut self, bytes: &[u8]) {
        let Ok(r) = crate::bpf_types::read::<graph_breakdown_event>(bytes) else {
            self.malformed_records += 1;
            return;
        };
        let parts = Breakdown::attributed(&r.breakdown, self.reasons.as_deref());
        let head = r.head;
        self.pending
            .insert((head.tgid, head.goid, head.depth), parts);
    }

    /// Writes the trees formatted since the last flush.
    fn flush(&mut self, out: &mut Out) -> Result<()> {
        out.write_all(&self.text)?;
        self.text.clear();
        out.flush()?;
        Ok(())
    }

    /// Formats one completed tree (if slower than --min).
    fn print(&mut self, mut tree: CallTree) {
        if self.min_ns.is_some_and(|min| tree.root.duration_ns <= min) {
            self.below_min += 1;
            return;
        }
        self.trees += 1;
        tree.root_site = self.root_sites.get(&tree.root.function).cloned();
        if self.args.target.json {
            // JSON's ts_ns is the events' clock (CLOCK_MONOTONIC, docs/json.md); into a Vec,
            // serialising cannot fail.
            let _ = lines::write_json_line(&mut self.text, "tree", &TreeLine::new(&tree));
        } else {
            // People read wall-clock time.
            tree.ts_ns = u64::try_from(i128::from(tree.ts_ns) + self.clock_offset).unwrap_or(0);
            calltree::render_human(&tree, &mut self.text);
        }
        if let Some(folded) = &mut self.folded {
            folded.add(&tree);
        }
        if let Some(pprof) = &mut self.pprof {
            pprof.add(&tree);
        }
    }

    /// Writes --folded, --svg and --pprof.
    fn write_files(&self, stop: &Stop) -> Result<()> {
        let (args, what) = (self.args, &self.what);
        let traced_ns = stop.close_ns.saturating_sub(stop.open_ns);
        let create = |path: &std::path::Path| {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .with_context(|| format!("cannot write {}", path.display()))
        };
        if let (Some(path), Some(pprof)) = (&args.pprof, &self.pprof) {
            let meta = Meta {
                binary: self.binary.clone(),
                window: (stop.open_ns, stop.close_ns),
                comment: format!("gotrace graph {}", args.positional.join(" ")),
            };
            pprof.write_file(self.bin, &meta, path)?;
        }
        let Some(folded) = &self.folded else {
            return Ok(());
        };
        if let Some(path) = &args.folded {
            let mut file = create(path)?;
            folded.write_folded(&mut file)?;
            file.flush()?;
        }
        if let Some(path) = &args.svg {
            let mut file = create(path)?;
            let subtitle = format!(
                "{} root calls in {}",
                self.trees,
                crate::output::clock::human_duration(traced_ns)
            );
            folded.write_svg(&mut file, what, &subtitle)?;
            file.flush()?;
        }
        Ok(())
    }

    /// Why no tree was printed, on stderr, when none was.
    fn hint_without_trees(&self, root: &str) {
        if self.trees > 0 {
            return;
        }
        if self.below_min > 0 {
            eprintln!("gotrace: hint: no tree printed: every call of {root} took less than --min");
        } else {
            eprintln!("gotrace: hint: no call of {root} started while tracing; a call already running when tracing began (a server's main loop, a long-lived worker) is never recorded: pick a function called for each request, or launch the program with -- CMD");
        }
    }

    /// The last line: trees printed and every record or call that is not in one; `ts_ns`:
    /// the instant ROOT entries stopped counting.
    fn write_summary(&self, out: &mut impl Write, stats: &[graph_stats], ts_ns: u64) -> Result<()> {
        let Counts {
            unmatched,
            truncated,
            open_at_end,
        } = self.builder.counts;
        let summary = Summary {
            at: Stamp::at(ts_ns),
            trees: self.trees,
            lost: stats.iter().map(|s| s.lost).sum(),
            unreadable: stats.iter().map(|s| s.unreadable).sum(),
            // ROOT RETs the kernel saw outside ROOT, and EXITs the trees could not place.
            unmatched: unmatched + stats.iter().map(|s| s.unmatched).sum::<u64>(),
            truncated_calls: truncated,
            below_min: self.below_min,
            in_flight_at_start: stats.iter().map(|s| s.in_flight_at_start).sum(),
            in_flight_at_end: open_at_end,
            // Records that are no graph record, and (--args) captures that could not be
            // decoded (their calls are in the trees without values).
            malformed: self.malformed_records + self.decoder.as_ref().map_or(0, Decoder::malformed),
            sched: SchedCounts::read(self.reasons.is_some(), &self.skel.maps.sched_stat)?,
        };
        Ok(lines::write_summary(out, self.args.target.json, &summary)?)
    }
}

/// The summary: the instant ROOT entries stopped counting, trees printed, and every record or
/// call that is not in one; serialized, the `--json` `summary` record.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    at: Stamp,
    trees: u64,
    lost: u64,
    unreadable: u64,
    unmatched: u64,
    truncated_calls: u64,
    below_min: u64,
    in_flight_at_start: u64,
    in_flight_at_end: u64,
    malformed: u64,
    /// --breakdown's counters.
    #[serde(flatten)]
    sched: Option<SchedCounts>,
}

impl fmt::Display for Summary {
    /// The text summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} trees, {} lost, {} malformed, {} unreadable, {} unmatched, {} truncated calls, {} below --min, {} in flight at start, {} at end",
            self.trees,
            self.lost,
            self.malformed,
            self.unreadable,
            self.unmatched,
            self.truncated_calls,
            self.below_min,
            self.in_flight_at_start,
            self.in_flight_at_end
        )?;
        f.write_str(&SchedCounts::human_tail(self.sched))
    }
}
