//! The traced process's CPU time as the kernel accounts it (`/proc/PID/stat`: utime and
//! stime of the whole thread group, every thread's sum_exec_runtime split by where its ticks
//! landed): the overload guard's measure of what the probes really cost (docs/design.md §16).
//! A probe hit is a trap handled in the kernel on the target's own thread, so its cost is
//! system time of the target.

use std::time::Instant;

/// The CPU time a process has used, and when it was read.
#[derive(Debug, Clone, Copy)]
pub struct CpuTime {
    /// When it was read.
    pub at: Instant,
    /// Seconds in user mode.
    pub user: f64,
    /// Seconds in the kernel (system calls, faults, and every probe hit's trap).
    pub system: f64,
}

impl CpuTime {
    /// Process `pid`'s CPU time now; None once it is gone (or unreadable).
    pub fn read(pid: u32) -> Option<CpuTime> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: fields counted
        // after its closing one. utime and stime are fields 14 and 15 (proc(5)).
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let mut next = || fields.next()?.parse::<u64>().ok();
        let (user, system) = (next()?, next()?);
        let tick = tick_s();
        Some(CpuTime {
            at: Instant::now(),
            user: user as f64 * tick,
            system: system as f64 * tick,
        })
    }

    /// What was used from `earlier` to `self`: (seconds elapsed, user, system).
    pub fn since(&self, earlier: &CpuTime) -> (f64, f64, f64) {
        (
            self.at.duration_since(earlier.at).as_secs_f64(),
            (self.user - earlier.user).max(0.0),
            (self.system - earlier.system).max(0.0),
        )
    }
}

/// One clock tick (the unit of /proc's CPU times), in seconds.
pub fn tick_s() -> f64 {
    // SAFETY: sysconf reads a constant of the C library; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1.0 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// How the target used the CPU before any probe was placed: its kernel time per second of
/// user time (system calls and faults, which grow with its work), when it did enough to tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    /// Seconds in the kernel per second in user mode, untraced; 0 when unknown (all kernel
    /// time is then put down to the probes, which can only drop sooner).
    pub system_per_user: f64,
}

/// User time below which a window before attaching tells nothing (seconds: 5 ticks).
const MIN_BASELINE_USER_S: f64 = 0.05;

impl Baseline {
    /// The baseline from two readings taken before the probes were attached.
    pub fn between(before: Option<CpuTime>, after: Option<CpuTime>) -> Baseline {
        match (before, after) {
            (Some(b), Some(a)) => {
                let (_, user, system) = a.since(&b);
                Baseline {
                    system_per_user: if user >= MIN_BASELINE_USER_S {
                        system / user
                    } else {
                        0.0
                    },
                }
            }
            _ => Baseline::default(),
        }
    }
}
