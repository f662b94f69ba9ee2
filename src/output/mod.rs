//! Everything a command prints: latency histograms, decoded Go values, goroutine summaries,
//! times and durations, and the whole-line writer they all go through.

pub mod announce;
pub mod breakdown;
pub mod calltree;
pub mod clock;
pub mod goroutine_ledger;
pub mod goroutine_metrics;
pub mod heatmap;
pub mod histogram;
pub mod lines;
pub mod metrics;
pub mod parked;
pub mod pprof;
pub mod values;

/// Creates (empty) the file an output flag names, so that a directory or an unwritable path
/// fails before tracing starts rather than losing the trace at exit.
pub fn claim_output_file(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::write(path, "").with_context(|| {
        format!(
            "{flag} {}: cannot write there (give a path in an existing, writable directory)",
            path.display()
        )
    })
}

/// `n` and the noun, plural unless `n` is 1: "1 function", "3 functions".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
