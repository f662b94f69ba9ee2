//! Reading a traced run's stdout: gotrace's JSON lines and the launched target's own lines
//! share it (the target inherits gotrace's stdout).

use serde_json::Value;

/// Splits stdout into the target's own lines and gotrace's JSON objects (after the
/// `attached` line, see [`gotrace_json`]).
pub fn split_output(stdout: &[u8]) -> (Vec<String>, Vec<Value>) {
    let text = String::from_utf8_lossy(stdout);
    let (json, own): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('{'));
    (
        own.into_iter().map(str::to_owned).collect(),
        gotrace_json(json),
    )
}

/// gotrace's JSON lines (the lines of stdout that start with `{`), parsed. The first must be
/// the `attached` line every tracing command prints once its probes are live
/// (`{"type":"attached","functions":N,"probes":M,"pids":[..]}` or `"binary":..`); it is
/// checked and left out.
pub fn gotrace_json<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Value> {
    let mut objects = lines.into_iter().filter(|l| l.starts_with('{')).map(|l| {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))
    });
    let attached = objects.next().expect("gotrace printed no JSON line");
    assert_eq!(attached["type"], "attached", "first JSON line: {attached}");
    assert!(field(&attached, "functions") >= 1, "{attached}");
    assert!(
        field(&attached, "probes") >= field(&attached, "functions"),
        "{attached}"
    );
    assert!(
        attached["pids"].as_array().is_some_and(|p| !p.is_empty())
            || attached["binary"].is_string(),
        "{attached}"
    );
    objects.collect()
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
