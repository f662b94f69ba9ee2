//! The attach / lifecycle layer shared by every tracing command: attaching one generic BPF
//! program at many probe sites (each with its cookie), and running until Ctrl-C, SIGTERM, the
//! `-d` deadline, or the target's exit. Every link lives in [`Attached`]; dropping it detaches
//! every probe.

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{Link, ProgramMut, UprobeMultiOpts, UprobeOpts};

use crate::target::{Target, TargetState};

/// One place to put a uprobe: a file offset in the binary and the cookie the program sees.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    pub file_offset: u64,
    pub cookie: u64,
}

/// The links holding probes in place. Dropping this detaches them all.
pub struct Attached {
    _links: Vec<Link>,
}

/// Attaches `prog` at every site: with one multi-uprobe link when `multi` (the program was
/// loaded as SEC "uprobe.multi"), else one perf-event uprobe per site (SEC "uprobe"), the
/// fallback for kernels without multi-uprobe links. `pid` None: every process.
pub fn attach_sites(
    prog: &ProgramMut<'_>,
    multi: bool,
    pid: Option<u32>,
    binary: &Path,
    sites: &[Site],
) -> Result<Attached> {
    let pid = pid.map_or(-1, |p| p as i32);
    if multi {
        let opts = UprobeMultiOpts {
            offsets: sites.iter().map(|s| s.file_offset as usize).collect(),
            cookies: sites.iter().map(|s| s.cookie).collect(),
            ..Default::default()
        };
        let link = prog
            .attach_uprobe_multi_with_opts(pid, binary, "", opts)
            .with_context(|| {
                format!("attaching {} uprobes to {}", sites.len(), binary.display())
            })?;
        return Ok(Attached { _links: vec![link] });
    }
    let links = sites
        .iter()
        .map(|site| {
            let opts = UprobeOpts {
                cookie: site.cookie,
                ..Default::default()
            };
            prog.attach_uprobe_with_opts(pid, binary, site.file_offset as usize, opts)
                .with_context(|| {
                    format!(
                        "attaching a uprobe at offset {:#x} of {}",
                        site.file_offset,
                        binary.display()
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Attached { _links: links })
}

/// Whether to attach with one multi-uprobe link (Linux 6.6+). Setting the environment
/// variable GOTRACE_PER_SITE_UPROBES forces one perf-event uprobe per site instead (the path
/// older kernels take; also how the tests exercise it).
pub fn kernel_has_uprobe_multi() -> bool {
    std::env::var_os("GOTRACE_PER_SITE_UPROBES").is_none()
        && kernel_release().is_some_and(|(major, minor)| (major, minor) >= (6, 6))
}

fn kernel_release() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A `-d` / `-i` value in seconds as a Duration; an error unless positive and finite.
pub fn seconds(secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .context("durations must be positive seconds")
}

/// The signal (SIGINT or SIGTERM) that asked gotrace to stop, 0 if none yet.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    Duration,
    /// The target exited, with its exit code when gotrace launched it.
    TargetExited(Option<i32>),
}

/// Drives a tracing session: wakes every interval, stops on signal, deadline or target exit.
pub struct Lifecycle {
    deadline: Option<Instant>,
    interval: Option<Duration>,
    next_tick: Option<Instant>,
}

/// What [`Lifecycle::wait`] woke up for.
pub enum Wake {
    /// An interval elapsed: print and reset.
    Interval,
    Stop(StopReason),
}

impl Lifecycle {
    /// Installs the SIGINT/SIGTERM handlers and starts the clocks.
    pub fn start(duration: Option<Duration>, interval: Option<Duration>) -> Lifecycle {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
        }
        let now = Instant::now();
        Lifecycle {
            deadline: duration.map(|d| now + d),
            interval,
            next_tick: interval.map(|i| now + i),
        }
    }

    /// Sleeps until the next interval or a reason to stop.
    pub fn wait(&mut self, target: &mut Target) -> Wake {
        const POLL: Duration = Duration::from_millis(20);
        loop {
            if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
                return Wake::Stop(StopReason::Signal);
            }
            if let TargetState::Exited(code) = target.state() {
                return Wake::Stop(StopReason::TargetExited(code));
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return Wake::Stop(StopReason::Duration);
            }
            if let (Some(tick), Some(interval)) = (self.next_tick, self.interval) {
                if now >= tick {
                    self.next_tick = Some(tick + interval);
                    return Wake::Interval;
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Tells the user what is being traced, once the probes are in place: one stderr line per
/// function a glob matched but that cannot be probed, then (unless `json`) the banner in BCC's
/// words. Flushed, so that a reader waiting for the banner knows tracing has begun.
pub fn announce(
    out: &mut impl std::io::Write,
    plan: &crate::plan::ProbePlan,
    patterns: &[String],
    json: bool,
) -> std::io::Result<()> {
    for (name, reason) in &plan.skipped {
        eprintln!("gotrace: skipping {name}: {reason}");
    }
    if !json {
        writeln!(
            out,
            "Tracing {} functions for {:?}... Hit Ctrl-C to end.",
            plan.funcs.len(),
            patterns.join(" ")
        )?;
    }
    out.flush()
}
