//! Facts about the Go runtime that differ by release and architecture: where g lives and its
//! field offsets, which functions never return, `newproc1`'s ABI, what a goroutine starts,
//! method wrappers' and generic dictionaries' missing parameters, type descriptors, creation
//! stacks, the names of the reasons a goroutine waits, where the scheduler changes their states.

pub mod allgs;
pub mod creation_stack;
pub mod g_location;
pub mod generic_dict;
pub mod layout;
pub mod method_wrappers;
pub mod never_returns;
pub mod newproc_abi;
pub mod sched_abi;
pub mod start_function;
pub mod stdlib_types;
pub mod typenames;
pub mod wait_reasons;
