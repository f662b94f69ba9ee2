//! Go 1.27's own `go tool pprof` as an oracle of the profiles gotrace writes: its `-top`
//! table per sample type.

use std::collections::BTreeMap;
use std::path::Path;

use super::toolchain::oracle_toolchain;

/// Flat (self) and cumulative ns per function.
pub type Totals = BTreeMap<String, (u64, u64)>;

/// `go tool pprof ARGS FILE`'s stdout.
pub fn pprof(args: &[&str], file: &Path) -> String {
    let go = oracle_toolchain().expect("Go 1.27");
    let output = go
        .command()
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .output()
        .expect("running go tool pprof");
    assert!(
        output.status.success(),
        "go tool pprof {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// `-top -unit=ns` rows of sample type `sample`: function → (flat, cum), with `(inline)`
/// dropped from the name, and the header's total.
pub fn top(file: &Path, sample: &str) -> (Totals, u64) {
    top_with(file, sample, &[])
}

/// [`top`] with further options (`-focus=REGEXP`: the samples with a matching frame only;
/// the header's total stays the profile's).
pub fn top_with(file: &Path, sample: &str, options: &[&str]) -> (Totals, u64) {
    let index = format!("-sample_index={sample}");
    let mut args = vec![
        "-top",
        "-unit=ns",
        "-nodefraction=0",
        "-nodecount=100000",
        &index,
    ];
    args.extend_from_slice(options);
    let text = pprof(&args, file);
    let ns = |s: &str| -> u64 {
        match s {
            "0" => 0,
            s => s
                .strip_suffix("ns")
                .expect("a value in ns")
                .parse()
                .unwrap(),
        }
    };
    let total = text
        .lines()
        .find_map(|l| l.split_once("Total samples = "))
        .map(|(_, rest)| ns(rest.split_whitespace().next().unwrap()))
        .expect("a Total samples line");
    let rows = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let name = cols[5..].join(" ");
            let name = name.trim_end_matches(" (inline)").to_owned();
            (name, (ns(cols[0]), ns(cols[3])))
        })
        .collect();
    (rows, total)
}
