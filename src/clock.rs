//! Wall-clock formatting for human output (local time, like BCC's tools).

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
