//! Helpers shared by the integration tests: where the Go toolchains, the test-matrix binaries
//! and the esbuild binaries are, how to run the `gotrace` binary under test, the oracles nobody
//! here wrote (`go tool nm`, Go's `debug/gosym`), and the rule for missing prerequisites.
//!
//! The prerequisite rule: a test that lacks a toolchain, a binary or root privileges fails when
//! the environment variable `CI` is set, and otherwise skips with a loud `SKIPPED:` line on
//! stderr. Use it as `let Some(x) = common::require(lookup()) else { return };`.

// Each integration test is its own crate and uses only part of these helpers.
#![allow(dead_code, unused_imports)]

pub mod chromium;
pub mod dwarfdump;
pub mod gotrace;
pub mod oracle;
pub mod pprof;
pub mod prerequisite;
pub mod schema;
pub mod serial;
pub mod targets;
pub mod toolchain;
pub mod traced;

pub use prerequisite::{installed, require, require_root};
