//! The tracing session every command runs on: resolve the target, load a skeleton, attach its
//! program at the plan's sites, announce, run until a stop (signal, `-d`, target exit) while
//! draining the kernel's buffers, detach, and map the exit code. A command supplies its plan,
//! its BPF program, its event decoder and its renderer; see docs/architecture.md.

pub mod attach;
pub mod bpf;
pub mod drain;
pub mod gate;
pub mod kernel;
pub mod lifecycle;
pub mod maps;
pub mod target;

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::Object;
use serde_json::json;

use crate::cli::TraceTarget;
use crate::gobin::BinaryFile;
use crate::output::lines::WholeLines;
use crate::plan::sites::Site;
use crate::plan::Announcement;
use attach::Attached;
use drain::Drain;
use gate::{Edges, Gate};
use lifecycle::{seconds, Lifecycle, StopReason, Wake};
use target::{Target, TargetSpec};

/// Where every line of a session goes: stdout (whole lines only: a launched target may share
/// it) or the `-o` file.
pub type Out = WholeLines<Box<dyn Write>>;

/// One tracing session: the target, the output, and the stop conditions.
pub struct Session {
    pub target: Target,
    pub out: Out,
    json: bool,
    duration: Option<Duration>,
    drain_timeout: Duration,
    lifecycle: Option<Lifecycle>,
    gate: Option<Gate>,
    edges: Edges,
}

impl Session {
    /// Resolves the target the command line names (a launched command is forked, held before
    /// exec) and opens its binary for reading.
    pub fn resolve(args: &TraceTarget, spec: TargetSpec) -> Result<(Session, BinaryFile)> {
        let duration = args.duration.map(seconds).transpose()?;
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
            drain_timeout: args.drain_timeout()?,
            lifecycle: None,
            gate: None,
            edges: Edges::default(),
        };
        Ok((session, file))
    }

    /// The session's edges (the instants entries began and stopped counting), for the
    /// renderers' summaries; set by [`Session::attach`] and at the stop.
    pub fn edges(&self) -> Edges {
        self.edges.clone()
    }

    /// The traced process, or None for every process running the binary.
    pub fn pid(&self) -> Option<u32> {
        self.target.pid
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
        let mut gate = Gate::find(object)?;
        gate.edges = self.edges.clone();
        let attached = attach::attach(object, self.target.pid, &self.target.binary, sites)?;
        // Every link is live: hits count from one instant on (DESIGN.md technique 14).
        let open_ns = gate.arm();
        self.gate = Some(gate);
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
            let mut line = json!({"type": "attached", "ts_ns": open_ns,
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

    /// Runs until a stop: between checks, `drain` empties the kernel's buffers (waiting at
    /// most the time it is given); `on_wake` renders after each drain, each interval, and
    /// once more at the stop. `on_wake` returning false ends the session
    /// ([`StopReason::Done`]). The stop (DESIGN.md technique 14): entries stop counting
    /// (`close_ns`), the calls in flight return (at most `--drain-timeout`; not when the
    /// target exited: its open calls never will), every hit ends (`shut_ns`), the probes are
    /// disarmed, the buffers drained a last time, `on_wake` renders the results, and only then
    /// are per-site uprobes removed (slow: see [`attach`]).
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
            match lifecycle.wait(&mut self.target, &mut |timeout| drain.drain(timeout))? {
                Wake::Stop(reason) => break reason,
                wake => {
                    if !on_wake(wake, &mut self.out)? {
                        break StopReason::Done;
                    }
                }
            }
        };
        if let Some(gate) = self.gate.take() {
            gate.close();
            if !matches!(stop, StopReason::TargetExited(_)) {
                gate.drain(self.drain_timeout, &mut |timeout| drain.drain(timeout))?;
            }
            gate.shut();
        }
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
