//! Start-up benchmark (run by bench/inline.sh, ignored by `cargo test`): opening and indexing
//! a Go binary as today (ELF, build info, pclntab function table) against the same plus
//! inlined-call discovery (every function's inline tree), in the same process, best of 7
//! alternating rounds. Prints times and the ratio; asserts nothing about time.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::toolchain::cache_dir;
use gotrace::gobin::BinaryFile;

/// Rounds of each measurement; the best is kept.
const ROUNDS: usize = 7;

/// Wall time of opening and parsing `path`, with or without the inline trees.
fn startup(path: &Path, inlined: bool) -> (Duration, usize) {
    let start = Instant::now();
    let file = BinaryFile::open(path).expect("open");
    let bin = file.parse().expect("parse");
    let found = if inlined {
        let table = bin.inline_table();
        assert!(table.unavailable.is_none() && table.unreadable.is_empty());
        table.instances().len()
    } else {
        bin.funcs.len()
    };
    (start.elapsed(), found)
}

#[test]
#[ignore = "benchmark: run by bench/inline.sh"]
fn inline_discovery_startup() {
    let binaries = [
        cache_dir().join("go/1.27.3/go/pkg/tool/linux_amd64/compile"),
        cache_dir().join("go/1.27.3/go/bin/go"),
        cache_dir().join("npm/esbuild-linux-64-0.13.15/package/bin/esbuild"),
    ];
    println!(
        "{:<40} {:>10} {:>12} {:>7} {:>8} {:>9}",
        "binary", "today_ms", "inlined_ms", "ratio", "funcs", "inlined"
    );
    for path in binaries.iter().filter(|p| p.is_file()) {
        let (mut today, mut with_inlined) = (Duration::MAX, Duration::MAX);
        let (mut funcs, mut sites) = (0, 0);
        for _ in 0..ROUNDS {
            let (t, n) = startup(path, false);
            today = today.min(t);
            funcs = n;
            let (t, n) = startup(path, true);
            with_inlined = with_inlined.min(t);
            sites = n;
        }
        let name = path.iter().rev().take(2).collect::<Vec<_>>();
        println!(
            "{:<40} {:>10.1} {:>12.1} {:>7.2} {:>8} {:>9}",
            format!(
                "{}/{}",
                name[1].to_string_lossy(),
                name[0].to_string_lossy()
            ),
            today.as_secs_f64() * 1e3,
            with_inlined.as_secs_f64() * 1e3,
            with_inlined.as_secs_f64() / today.as_secs_f64(),
            funcs,
            sites
        );
    }
    println!("goal: inlined <= 2x today and <= 300 ms");
}
