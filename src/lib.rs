//! gotrace as a library. The folders follow the data: [`gobin`] reads the Go binary, [`plan`]
//! decides what to probe and how to read it, [`session`] loads, attaches and drains the BPF
//! programs (`src/bpf/`), [`output`] renders, and [`commands`] are thin compositions of those.
//! The `gotrace` binary is a thin `main` over [`commands`]; benches and fuzz targets use the
//! readers directly. See docs/architecture.md.

#![warn(missing_docs)]

pub mod bpf_types;
pub mod cli;
pub mod commands;
pub mod decode;
pub mod gobin;
pub mod output;
pub mod plan;
pub mod session;
