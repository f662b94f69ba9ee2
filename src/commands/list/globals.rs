//! `gotrace list --globals`: the binary's global variables, from DWARF.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::gobin::format::dwarf::DwarfInfo;
use crate::gobin::GoBinary;

/// `gotrace list --globals`: name, address, size and type of each global.
pub fn list_globals(
    bin: &GoBinary<'_>,
    dwarf: Option<&DwarfInfo>,
    matches: &dyn Fn(&str) -> bool,
    json: bool,
) -> Result<ExitCode> {
    let info = dwarf.with_context(|| {
        "this binary has no DWARF, so its globals are unknown (it was built with -ldflags=-w or stripped)"
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !json {
        writeln!(out, "{}", super::header(bin, true))?;
        writeln!(out, "{:<60} {:<18} {:>8} TYPE", "GLOBAL", "ADDRESS", "SIZE")?;
    }
    let mut shown = 0usize;
    for global in info.globals.iter().filter(|g| matches(&g.name)) {
        shown += 1;
        let ty = global.ty.map(|t| info.types.get(t));
        if json {
            let row = serde_json::json!({
                "global": global.name,
                "address": global.addr,
                "size": ty.map(|t| t.size),
                "type": ty.map(|t| t.name.as_str()),
            });
            writeln!(out, "{row}")?;
        } else {
            writeln!(
                out,
                "{:<60} {:#018x} {:>8} {}",
                global.name,
                global.addr,
                ty.map_or("?".to_owned(), |t| t.size.to_string()),
                ty.map_or("?", |t| t.name.as_str())
            )?;
        }
    }
    out.flush()?;
    anyhow::ensure!(
        shown > 0,
        "no global matches the pattern (try `gotrace list --globals BINARY`)"
    );
    Ok(ExitCode::SUCCESS)
}
