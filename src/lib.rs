//! gotrace as a library: the binary reader (`gobin`), probe planning, the BPF sessions and the
//! commands. The `gotrace` binary is a thin `main` over [`commands`]; benches and fuzz targets
//! use the readers directly.

pub mod abi;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod creation_stack;
pub mod gobin;
pub mod goroutine_ledger;
pub mod heatmap;
pub mod histogram;
pub mod load_bias;
pub mod metrics;
pub mod newproc_abi;
pub mod output;
pub mod plan;
pub mod session;
pub mod signature;
pub mod skeletons;
pub mod start_function;
pub mod target;
pub mod typenames;
pub mod values;
