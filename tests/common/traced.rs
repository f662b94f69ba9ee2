//! Reading a traced run's stdout: gotrace's JSON lines and the launched target's own lines
//! share it (the target inherits gotrace's stdout).

use serde_json::Value;

/// Splits stdout into the target's own lines and gotrace's JSON objects.
pub fn split_output(stdout: &[u8]) -> (Vec<String>, Vec<Value>) {
    let text = String::from_utf8_lossy(stdout);
    let (json, own): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('{'));
    let objects = json
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    (own.into_iter().map(str::to_owned).collect(), objects)
}

/// The number the target printed as `<key> <number>`.
pub fn own_count(lines: &[String], key: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("target printed no {key:?} line; it printed {lines:?}"))
}

/// An unsigned field of a JSON object.
pub fn field(object: &Value, key: &str) -> u64 {
    object[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {object}"))
}
