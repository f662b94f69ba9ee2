//! Machine-code analysis (x86; arm64 for RETs only): decoding a function for its entry and
//! RET sites and tail calls, how the kernel delivers a probe on each instruction, and where
//! an inlined call's code is entered and left.

pub mod disasm;
pub mod inline_entry;
pub mod inline_probe;
pub mod site_class;
