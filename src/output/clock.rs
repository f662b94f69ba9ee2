//! Time for human output: wall-clock times (local, like BCC's tools) and durations.

/// The local time now as `HH:MM:SS`.
pub fn wall_clock_hms() -> String {
    let mut now: libc::time_t = 0;
    // SAFETY: `tm` is plain data that localtime_r fully initialises on success; both pointers
    // are to valid locals.
    let tm = unsafe {
        libc::time(&mut now);
        let mut tm = std::mem::zeroed::<libc::tm>();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Nanoseconds of CLOCK_REALTIME minus CLOCK_MONOTONIC (what BPF's `bpf_ktime_get_ns` reads):
/// add it to a BPF timestamp to get Unix time.
pub fn monotonic_to_unix_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// Clock `clock` now, in ns (CLOCK_MONOTONIC is BPF's `bpf_ktime_get_ns` and Go's `nanotime`).
pub fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes to it.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// An instant in a JSON line (the `attached` and `summary` edges): `ts_ns` on the events' clock
/// (CLOCK_MONOTONIC) and `time`, the same instant as RFC 3339 UTC wall-clock time.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// CLOCK_MONOTONIC ns.
    #[serde(serialize_with = "crate::output::lines::exact_u64")]
    pub ts_ns: u64,
    /// The same instant as RFC 3339 UTC wall-clock time.
    pub time: String,
}

impl Stamp {
    /// The stamp of CLOCK_MONOTONIC instant `ts_ns`.
    pub fn at(ts_ns: u64) -> Stamp {
        Stamp {
            ts_ns,
            time: rfc3339(ts_ns),
        }
    }
}

/// A CLOCK_MONOTONIC instant (a `ts_ns`) as UTC RFC 3339 wall-clock time with
/// nanoseconds, e.g. `2026-05-01T12:00:00.123456789Z` (the JSON `time` field).
pub fn rfc3339(monotonic_ns: u64) -> String {
    let unix_ns = i128::from(monotonic_ns) + monotonic_to_unix_ns();
    let secs = libc::time_t::try_from(unix_ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    // SAFETY: `tm` is plain data that gmtime_r fully initialises on success; both pointers
    // are to valid locals.
    let tm = unsafe {
        let mut tm = std::mem::zeroed::<libc::tm>();
        libc::gmtime_r(&secs, &mut tm);
        tm
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// A Unix time in nanoseconds as local `HH:MM:SS.micros`.
pub fn hms_micros(unix_ns: i128) -> String {
    let secs = libc::time_t::try_from(unix_ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let micros = unix_ns.rem_euclid(1_000_000_000) / 1000;
    // SAFETY: `tm` is plain data that localtime_r fully initialises on success; both pointers
    // are to valid locals.
    let tm = unsafe {
        let mut tm = std::mem::zeroed::<libc::tm>();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

/// A duration for people, as Go prints one rounded: `950ns`, `1.2µs`, `3.4ms`, `5.67s`.
pub fn human_duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let cases = [
            (12, "12ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2.0ms"),
            (3_000_000_000, "3.00s"),
        ];
        for (ns, shown) in cases {
            assert_eq!(human_duration(ns), shown);
        }
    }
}
