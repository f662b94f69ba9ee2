//! The tracing session every command runs on: resolve the target, load a skeleton, attach its
//! program at the plan's sites, announce, run until a stop (signal, `-d`, target exit) while
//! draining the kernel's buffers, detach, and map the exit code. A command supplies its plan,
//! its BPF program, its event decoder and its renderer; see docs/architecture.md.

pub mod attach;
pub mod bpf;
pub mod drain;
pub mod guard;
pub mod kernel;
pub mod lifecycle;
pub mod maps;
pub mod target;

use std::io::{StdoutLock, Write};
use std::time::Duration;

use anyhow::Result;
use libbpf_rs::Object;
use serde_json::json;

use crate::cli::TraceTarget;
use crate::gobin::BinaryFile;
use crate::output::lines::WholeLines;
use crate::plan::sites::Site;
use crate::plan::Announcement;
use attach::Attached;
use drain::Drain;
use guard::{DroppedList, Guard, GuardPlan};
use lifecycle::{seconds, Lifecycle, StopReason, Wake};
use target::{Target, TargetSpec};

/// Where every line of a session goes: stdout, whole lines only (a launched target may share it).
pub type Out = WholeLines<StdoutLock<'static>>;

/// One tracing session: the target, the output, and the stop conditions.
pub struct Session {
    pub target: Target,
    pub out: Out,
    json: bool,
    duration: Option<Duration>,
    lifecycle: Option<Lifecycle>,
    guard_plan: Option<GuardPlan>,
    guard: Option<Guard>,
    dropped: DroppedList,
}

impl Session {
    /// Resolves the target the command line names (a launched command is forked, held before
    /// exec) and opens its binary for reading.
    pub fn resolve(args: &TraceTarget, spec: TargetSpec) -> Result<(Session, BinaryFile)> {
        let duration = args.duration.map(seconds).transpose()?;
        let target = Target::resolve(spec)?;
        let file = BinaryFile::open(&target.binary)?;
        let session = Session {
            target,
            out: WholeLines::new(std::io::stdout().lock()),
            json: args.json,
            duration,
            lifecycle: None,
            guard_plan: None,
            guard: None,
            dropped: DroppedList::default(),
        };
        Ok((session, file))
    }

    /// The traced process, or None for every process running the binary.
    pub fn pid(&self) -> Option<u32> {
        self.target.pid
    }

    /// Puts the next [`Session::attach`] under the overload guard (`plan`: the functions its
    /// sites belong to and what their hits cost); returns the list of the functions it will
    /// have dropped, for the command's summary.
    pub fn guard(&mut self, plan: GuardPlan) -> DroppedList {
        self.guard_plan = Some(plan);
        self.dropped.clone()
    }

    /// Prints the plan's notes on stderr, attaches the loaded object's program at every site,
    /// starts the stop conditions (`-i` every `interval`), announces, and lets a launched
    /// target run.
    pub fn attach(
        &mut self,
        object: &Object,
        sites: &[Site],
        interval: Option<Duration>,
        announcement: &Announcement,
    ) -> Result<Attached> {
        for note in &announcement.notes {
            eprintln!("gotrace: {note}");
        }
        let groups = match &self.guard_plan {
            Some(plan) => plan.groups(sites),
            None => vec![sites.to_vec()],
        };
        let attached = attach::attach(object, self.target.pid, &self.target.binary, &groups)?;
        if let Some(plan) = self.guard_plan.take() {
            if plan.budget_ns_per_s.is_some() {
                self.guard = Some(Guard::start(object, plan, self.json, self.dropped.clone())?);
            }
        }
        // Stop signals are caught from here on: a Ctrl-C right after the banner must still
        // detach.
        self.lifecycle = Some(Lifecycle::start(self.duration, interval));
        self.announce(announcement, sites.len())?;
        self.target.release()?;
        Ok(attached)
    }

    /// The human banner, or the JSON `attached` line; flushed, so that a reader waiting for
    /// it knows tracing has begun.
    fn announce(&mut self, announcement: &Announcement, probes: usize) -> Result<()> {
        if self.json {
            let (functions, target) = (announcement.functions, &self.target);
            let line = match target.pid {
                Some(pid) => json!({"type": "attached", "functions": functions,
                                    "probes": probes, "pids": [pid]}),
                None => json!({"type": "attached", "functions": functions,
                               "probes": probes, "binary": target.binary.display().to_string()}),
            };
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

    /// Runs until a stop: between checks, `drain` empties the kernel's buffers (waiting at
    /// most the time it is given); `on_wake` renders after each drain, each interval, and
    /// once more at the stop, after the probes are disarmed and the buffers drained a last
    /// time; per-site uprobes are removed after that (slow: see [`attach`]).
    /// `on_wake` returning false ends the session ([`StopReason::Done`]).
    pub fn run(
        &mut self,
        mut attached: Attached,
        drain: &mut impl Drain,
        mut on_wake: impl FnMut(Wake, &mut Out) -> Result<bool>,
    ) -> Result<StopReason> {
        let mut lifecycle = self
            .lifecycle
            .take()
            .ok_or_else(|| anyhow::anyhow!("Session::run before Session::attach"))?;
        let stop = loop {
            if let Some(guard) = self.guard.as_mut() {
                guard.check(&mut attached, &mut self.out)?;
            }
            match lifecycle.wait(&mut self.target, &mut |timeout| drain.drain(timeout))? {
                Wake::Stop(reason) => break reason,
                wake => {
                    if !on_wake(wake, &mut self.out)? {
                        break StopReason::Done;
                    }
                }
            }
        };
        attached.disarm();
        drain.finish()?;
        on_wake(Wake::Stop(stop), &mut self.out)?;
        self.out.flush()?;
        if let Some(line) = attached.remove().and_then(|removal| removal.report()) {
            eprintln!("{line}");
        }
        Ok(stop)
    }
}
