//! When a session stops: Ctrl-C, SIGTERM, the `-d` deadline or the target's exit; and when it
//! wakes in between: every `-i` interval, and after each drain of the kernel's buffers.

use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::session::target::{Target, TargetState};

/// How long the session waits between checks of signals, deadline and target.
const POLL: Duration = Duration::from_millis(20);

/// The signal (SIGINT or SIGTERM) that asked gotrace to stop, 0 if none yet.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT (Ctrl-C) or SIGTERM.
    Signal,
    /// The `-d` deadline passed.
    Duration,
    /// The command asked to stop (e.g. `--max-events` reached).
    Done,
    /// The target exited, with its exit code when gotrace launched it.
    TargetExited(Option<i32>),
}

impl StopReason {
    /// gotrace's exit code: a launched target's own (128+N if a signal killed it), else 0.
    pub fn exit_code(self) -> std::process::ExitCode {
        match self {
            StopReason::TargetExited(Some(code)) => {
                std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
            }
            _ => std::process::ExitCode::SUCCESS,
        }
    }
}

/// What [`Lifecycle::wait`] woke up for, when not for the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The kernel's buffers were just drained.
    Drained,
    /// An interval (`-i`) elapsed: print and reset.
    Interval,
}

/// Stop conditions and interval clock of one session.
pub struct Lifecycle {
    deadline: Option<Instant>,
    interval: Option<Duration>,
    next_tick: Option<Instant>,
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

    /// Spends at most one poll period in `idle` (which drains the kernel's buffers, waiting up
    /// to the time it is given), then says why it woke: a [`Wake`], or the stop.
    pub fn wait(
        &mut self,
        target: &mut Target,
        idle: &mut dyn FnMut(Duration) -> Result<()>,
    ) -> Result<ControlFlow<StopReason, Wake>> {
        if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
            return Ok(Break(StopReason::Signal));
        }
        if let TargetState::Exited(code) = target.state() {
            return Ok(Break(StopReason::TargetExited(code)));
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Ok(Break(StopReason::Duration));
        }
        if let (Some(tick), Some(interval)) = (self.next_tick, self.interval) {
            if now >= tick {
                self.next_tick = Some(tick + interval);
                return Ok(Continue(Wake::Interval));
            }
        }
        let until_next = [self.deadline, self.next_tick]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .fold(POLL, Duration::min);
        idle(until_next)?;
        Ok(Continue(Wake::Drained))
    }
}

/// When a command's `-i` output is due, for sessions that wake more often than `-i` (to
/// refresh `--listen` metrics or a heatmap). Start it before [`crate::session::Session::attach`]
/// starts the lifecycle's clock, so that each `-i` wake finds the output due.
pub struct PrintClock {
    /// The next due time and the interval; None without `-i`.
    next: Option<(Instant, Duration)>,
}

impl PrintClock {
    /// A clock for `interval` (`-i`), counting from now.
    pub fn start(interval: Option<Duration>) -> PrintClock {
        PrintClock {
            next: interval.map(|every| (Instant::now() + every, every)),
        }
    }

    /// Whether the `-i` output is due now; if so, the next one is due an interval later.
    pub fn take_due(&mut self) -> bool {
        match self.next {
            Some((due, every)) if Instant::now() >= due => {
                self.next = Some((due + every, every));
                true
            }
            _ => false,
        }
    }
}
