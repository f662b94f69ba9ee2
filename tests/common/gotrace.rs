//! Running the `gotrace` binary under test.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Path of the gotrace binary cargo built for this test run.
pub const GOTRACE: &str = env!("CARGO_BIN_EXE_gotrace");

/// Runs gotrace with the arguments and returns its output (panics only if it cannot start).
pub fn gotrace<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(GOTRACE)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {GOTRACE}: {e}"))
}

/// Checks that a run failed the way every user error must: exit code 2, exactly one line on
/// stderr, nothing that looks like a panic. Returns a description of each violation.
pub fn user_error_problems(output: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = Vec::new();
    if output.status.code() != Some(2) {
        problems.push(format!("exit status is {}, expected code 2", output.status));
    }
    if stderr.lines().count() != 1 {
        problems.push(format!(
            "stderr has {} lines, expected exactly one",
            stderr.lines().count()
        ));
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push("stderr shows a panic".to_owned());
    }
    if !problems.is_empty() {
        problems.push(format!("stderr was: {stderr:?}"));
    }
    problems
}
