//! One BPF test at a time within a test binary: tests that load programs and trace targets
//! share the kernel's uprobes and the machine's two cores, and their exact counts assume no
//! other tracer of the same file runs beside them.

use std::sync::{Mutex, MutexGuard};

use super::prerequisite::require_root;

/// Serialises the tests of one test binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes the binary's lock (a test that panicked while holding it does not stop the others).
pub fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a BPF test: takes the lock and applies the root prerequisite rule (None: skip).
pub fn bpf_test() -> Option<MutexGuard<'static, ()>> {
    let guard = serial();
    require_root().then_some(guard)
}
