//! The tracing session every command runs on: resolve the target, load a skeleton
//! ([`Session::load`]), attach its program at the plan's sites, announce, run until a stop
//! (signal, `-d`, target exit) while draining the kernel's buffers into the command's
//! [`Consumer`], detach, and map the exit code. A command supplies its plan, its BPF program's
//! constants and map sizes, and a consumer that decodes and renders; see docs/architecture.md.

pub mod attach;
pub mod bpf;
pub mod cpu;
pub mod drain;
pub mod gate;
pub mod guard;
pub mod kernel;
pub mod lifecycle;
pub mod load;
pub mod maps;
pub mod parked;
pub mod sched;
pub mod target;

use std::io::Write;
use std::mem::MaybeUninit;
use std::ops::ControlFlow::{Break, Continue};
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::OpenObject;
use serde_json::json;

use crate::cli::TraceTarget;
use crate::gobin::runtime::g_location::RuntimeFacts;
use crate::gobin::BinaryFile;
use crate::output::announce::Announcement;
use crate::output::lines::WholeLines;
use crate::plan::sites::Site;
use attach::Attached;
use drain::{Drain, RingDrain, Sleep};
use gate::Gate;
use guard::{DroppedList, Guard, GuardPlan};
use lifecycle::{Lifecycle, StopReason, Wake};
use load::{Common, Loaded, Open, Program, Skeleton};
use target::{Target, TargetSpec};

/// Where every line of a session goes: stdout (whole lines only: a launched target may share
/// it) or the `-o` file.
pub type Out = WholeLines<Box<dyn Write>>;

/// What a command does with what its program delivers: ring-buffer records and wakes arrive
/// on one `&mut self`, on the session's thread, in order.
pub trait Consumer {
    /// One ring-buffer record (programs without a ring buffer deliver none).
    fn record(&mut self, bytes: &[u8]) -> Result<()>;
    /// After each drain of the kernel's buffers and each interval (`-i`); false ends the
    /// session ([`StopReason::Done`]).
    fn wake(&mut self, wake: Wake, out: &mut Out) -> Result<bool>;
    /// Once, at the stop: the probes are detached and every record was delivered.
    fn stop(&mut self, stop: &Stop, out: &mut Out) -> Result<()>;
}

/// What a consumer learns at the stop.
pub struct Stop {
    /// Why the session ended.
    pub reason: StopReason,
    /// The calls still open after the drain (programs that pair entries with returns), as
    /// their planned functions, a tail caller's kept under its callee's included; only calls
    /// that began while entries counted (`maps::open_calls`). In a target that exited they can
    /// never return (a panic unwound them, or the process exited inside them): `unmatched`;
    /// otherwise they are `in_flight_at_end`.
    pub open_calls: Vec<u32>,
    /// The instant entries began to count, on the events' clock (the attached line's `ts_ns`).
    pub open_ns: u64,
    /// The instant entries stopped counting, on the events' clock (every summary's `ts_ns`).
    pub close_ns: u64,
}

impl Stop {
    /// Whether the target exited (its open calls are unmatched, not in flight).
    pub fn target_exited(&self) -> bool {
        matches!(self.reason, StopReason::TargetExited(_))
    }
}

/// One tracing session: the target, the output, and the stop conditions.
pub struct Session {
    /// What is traced: the binary and the process filter.
    pub target: Target,
    /// Where the command's lines go.
    pub out: Out,
    json: bool,
    duration: Option<Duration>,
    drain_timeout: Duration,
    lifecycle: Option<Lifecycle>,
    gate: Option<Gate>,
    guard_plan: Option<GuardPlan>,
    /// The target's CPU time when the guard was set up (before any probe).
    guard_cpu: Option<cpu::CpuTime>,
    guard: Option<Guard>,
    dropped: DroppedList,
}

impl Session {
    /// Resolves the target the command line names (a launched command is forked, held before
    /// exec) and opens its binary for reading.
    pub fn resolve(args: &TraceTarget, spec: TargetSpec) -> Result<(Session, BinaryFile)> {
        let duration = args.duration;
        let sink: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            )),
            None => Box::new(std::io::stdout().lock()),
        };
        let target = Target::resolve(spec)?;
        let file = BinaryFile::open(&target.binary)?;
        let session = Session {
            target,
            out: WholeLines::new(sink),
            json: args.json,
            duration,
            drain_timeout: args.drain_timeout,
            lifecycle: None,
            gate: None,
            guard_plan: None,
            guard_cpu: None,
            guard: None,
            dropped: DroppedList::default(),
        };
        Ok((session, file))
    }

    /// The traced process, or None for every process running the binary.
    pub fn pid(&self) -> Option<u32> {
        self.target.pid
    }

    /// Puts the next [`Session::load`] and [`Session::attach`] under the overload guard
    /// (`plan`: the functions its sites belong to and what their hits cost); returns the list
    /// of the functions it will have dropped, for the command's summary.
    pub fn guard(&mut self, plan: GuardPlan) -> DroppedList {
        self.guard_plan = Some(plan);
        self.guard_cpu = self.target.pid.and_then(cpu::CpuTime::read);
        self.dropped.clone()
    }

    /// Opens program `P` into `object`, fills what every program shares (where g lives from
    /// `runtime`, the process filter, a ring buffer of `ring_bytes`), lets `configure` set the
    /// command's constants (`.rodata`) and map sizes, and loads it; see [`load`].
    pub fn load<'obj, P: Program<'obj>>(
        &self,
        object: &'obj mut MaybeUninit<OpenObject>,
        runtime: &RuntimeFacts,
        ring_bytes: Option<u32>,
        configure: impl FnOnce(&mut P::Rodata, &mut Open<'obj, P>) -> Result<()>,
    ) -> Result<Skeleton<'obj, P>> {
        let common = Common {
            runtime,
            pid: self.target.pid,
            ring_bytes,
            guard: self.guard_plan.as_ref(),
        };
        load::load::<P>(object, &common, configure)
    }

    /// Prints the plan's notes on stderr, attaches the loaded program at every site, starts
    /// the stop conditions (`-i` every `interval`), announces, and lets a launched target run.
    pub fn attach(
        &mut self,
        skel: &impl Loaded,
        sites: &[Site],
        interval: Option<Duration>,
        announcement: &Announcement,
    ) -> Result<Attached> {
        for note in &announcement.notes {
            eprintln!("gotrace: {note}");
        }
        let gate = Gate::find(skel.object())?;
        let pid = self.target.pid;
        // How the target used the CPU from the guard's set-up to now, untraced.
        let baseline = cpu::Baseline::between(self.guard_cpu, pid.and_then(cpu::CpuTime::read));
        let groups = match &self.guard_plan {
            Some(plan) => plan.groups(sites),
            None => vec![sites.to_vec()],
        };
        let attached =
            attach::attach(skel.object(), self.target.pid, &self.target.binary, &groups)?;
        // Every link is live: hits count from one instant on (docs/design.md §14).
        let open_ns = gate.arm();
        self.gate = Some(gate);
        if let Some(plan) = self.guard_plan.take() {
            if plan.budget_ns_per_s.is_some() {
                self.guard = Some(Guard::start(
                    skel.object(),
                    plan,
                    (pid, baseline),
                    self.json,
                    self.dropped.clone(),
                )?);
            }
        }
        // Stop signals are caught from here on: a Ctrl-C right after the banner must still
        // detach.
        self.lifecycle = Some(Lifecycle::start(self.duration, interval));
        self.announce(announcement, sites.len(), open_ns)?;
        self.target.release()?;
        Ok(attached)
    }

    /// The human banner, or the JSON `attached` line (`ts_ns`: the instant entries began to
    /// count); flushed, so that a reader waiting for it knows tracing has begun.
    fn announce(&mut self, announcement: &Announcement, probes: usize, open_ns: u64) -> Result<()> {
        if self.json {
            let (functions, target) = (announcement.functions, &self.target);
            let mut line = json!({"type": "attached", "ts_ns": crate::output::lines::ExactU64(open_ns),
                                  "time": crate::output::clock::rfc3339(open_ns),
                                  "functions": functions, "probes": probes});
            match target.pid {
                Some(pid) => line["pids"] = json!([pid]),
                None => line["binary"] = json!(target.binary.display().to_string()),
            }
            writeln!(self.out, "{line}")?;
        } else {
            writeln!(
                self.out,
                "Tracing {}... Hit Ctrl-C to end.",
                announcement.what
            )?;
        }
        self.out.flush()?;
        Ok(())
    }

    /// Runs until a stop: between checks of the stop conditions the program's ring buffer (if
    /// any) is drained into `consumer`, which also wakes after each drain and each interval.
    /// The stop (docs/design.md §14): entries stop counting (`close_ns`), the calls in
    /// flight return (at most `--drain-timeout`; not when the target exited: its open calls
    /// never will), every hit ends (`shut_ns`), the probes are disarmed, the ring drained a
    /// last time, and the consumer told why, with the calls still open; per-site uprobes are
    /// removed after that (slow: see [`attach`]).
    pub fn run(
        &mut self,
        skel: &impl Loaded,
        mut attached: Attached,
        consumer: &mut impl Consumer,
    ) -> Result<StopReason> {
        let mut lifecycle = self
            .lifecycle
            .take()
            .ok_or_else(|| anyhow::anyhow!("Session::run before Session::attach"))?;
        let mut drain: Box<dyn Drain> = match skel.ring() {
            Some(ring) => Box::new(RingDrain::start(ring)?),
            None => Box::new(Sleep),
        };
        let reason = loop {
            if let Some(guard) = self.guard.as_mut() {
                guard.check(&mut attached, &mut self.out)?;
            }
            let mut idle = |timeout| drain.drain(timeout, &mut |record| consumer.record(record));
            match lifecycle.wait(&mut self.target, &mut idle)? {
                Break(reason) => break reason,
                Continue(wake) => {
                    if !consumer.wake(wake, &mut self.out)? {
                        break StopReason::Done;
                    }
                }
            }
        };
        let gate = self
            .gate
            .take()
            .ok_or_else(|| anyhow::anyhow!("Session::run without a gate"))?;
        let close_ns = gate.close();
        if !matches!(reason, StopReason::TargetExited(_)) {
            gate.drain(self.drain_timeout, &mut |timeout| {
                drain.drain(timeout, &mut |record| consumer.record(record))
            })?;
        }
        gate.shut();
        attached.disarm();
        drain.finish(&mut |record| consumer.record(record))?;
        let open_calls = match skel.calls_in_flight() {
            Some(calls) => maps::open_calls(calls, self.target.pid)?,
            None => Vec::new(),
        };
        let stop = Stop {
            reason,
            open_calls,
            open_ns: gate.open_ns(),
            close_ns,
        };
        consumer.stop(&stop, &mut self.out)?;
        self.out.flush()?;
        if let Some(line) = attached.remove().and_then(|removal| removal.report()) {
            eprintln!("{line}");
        }
        Ok(reason)
    }
}
