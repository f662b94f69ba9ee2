//! The rule for missing prerequisites: fail under CI, skip loudly elsewhere.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Whether the tests run under CI (env `CI` set to anything but "", "0" or "false").
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// Returns the prerequisite, or applies the rule to its absence: panics when [`in_ci`],
/// otherwise prints `SKIPPED: <why>` on stderr and returns `None` (the test then returns).
pub fn require<T, E: Display>(prerequisite: Result<T, E>) -> Option<T> {
    match prerequisite {
        Ok(value) => Some(value),
        Err(why) => {
            missing(&format!("{why:#}"));
            None
        }
    }
}

/// True when the process runs as root; otherwise applies the rule (panic under CI, else
/// `SKIPPED:`) and returns false.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        missing(&format!("this test needs root (euid is {euid})"));
    }
    euid == 0
}

/// Reports a missing prerequisite according to the rule.
fn missing(why: &str) {
    if in_ci() {
        panic!("missing prerequisite (CI is set, so this is a failure): {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// An installed program (scripts/setup.sh installs them), or why it is missing.
pub fn installed(program: &str) -> anyhow::Result<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
        .ok_or_else(|| anyhow::anyhow!("{program} is not installed (run scripts/setup.sh)"))
}
