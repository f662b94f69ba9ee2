//! Everything a command prints: latency histograms, decoded Go values, goroutine summaries,
//! times and durations, and the whole-line writer they all go through.

pub mod calltree;
pub mod clock;
pub mod goroutine_ledger;
pub mod goroutine_metrics;
pub mod heatmap;
pub mod histogram;
pub mod lines;
pub mod metrics;
pub mod values;
