//! One module per gotrace subcommand.

pub mod args;
pub mod funclat;
pub mod goroutines;
pub mod graph;
pub mod list;
