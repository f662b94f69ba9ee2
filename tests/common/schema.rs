//! gotrace's `--json` output against docs/json.md's JSON Schemas, validated by
//! tests/json_schema.py with Python's `jsonschema` (which scripts/setup.sh installs).

use std::path::Path;
use std::process::Command;

use super::targets::repo_root;

/// The problems tests/json_schema.py found in `file` (`command`'s JSON lines), or None when
/// it found none.
pub fn problems(python: &Path, command: &str, file: &Path) -> Option<String> {
    let check = Command::new(python)
        .arg(repo_root().join("tests/json_schema.py"))
        .arg(repo_root().join("docs/json.md"))
        .arg(command)
        .arg(file)
        .output()
        .expect("python3 runs");
    (!check.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        )
    })
}

/// Asserts that every JSON line of `stdout` (a `command` run's; other lines are ignored)
/// matches its schema; skipped, under the prerequisite rule, without python3.
pub fn check(command: &str, stdout: &[u8]) {
    let Some(python) = super::require(super::installed("python3")) else {
        return;
    };
    let file = std::env::temp_dir().join(format!(
        "gotrace-schema-{command}-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, stdout).unwrap();
    let problems = problems(&python, command, &file);
    let _ = std::fs::remove_file(&file);
    assert!(problems.is_none(), "{command}: {}", problems.unwrap());
}
