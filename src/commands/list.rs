//! `gotrace list`: what can be traced in a Go binary, and how.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::ListArgs;
use crate::gobin::{BinaryFile, GoBinary};

/// Runs `gotrace list`.
pub fn run(args: &ListArgs) -> Result<ExitCode> {
    let file = BinaryFile::open(&args.binary)?;
    let bin = file.parse()?;
    let pattern = args
        .pattern
        .as_deref()
        .map(glob::Pattern::new)
        .transpose()
        .context("bad pattern (glob syntax: * ? [abc])")?;
    let matches = |name: &str| pattern.as_ref().is_none_or(|p| p.matches(name));

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(out, "{}", header(&bin))?;
    }
    let mut shown = 0usize;
    for func in bin.funcs.iter().filter(|f| matches(f.name)) {
        shown += 1;
        let (file, line) = bin.pclntab.line(func, func.entry)?.unwrap_or(("?", 0));
        let offset = |vaddr: u64| bin.elf.file_offset(vaddr);
        let sites = bin.probe_sites(func);
        if args.json {
            let mut row = serde_json::json!({
                "function": func.name,
                "entry": func.entry,
                "end": func.end,
                "file_offset": offset(func.entry),
                "file": file,
                "line": line,
            });
            match &sites {
                Ok(sites) => {
                    row["entry_probe_offset"] = offset(sites.entry_probe).into();
                    row["ret_offsets"] = sites.ret_sites.iter().map(|&v| offset(v)).collect();
                }
                Err(err) => row["problem"] = format!("{err:#}").into(),
            }
            writeln!(out, "{row}")?;
        } else {
            let rets = match &sites {
                Ok(sites) if sites.ret_sites.is_empty() => "none".to_owned(),
                Ok(sites) => sites.ret_sites.len().to_string(),
                Err(_) => "?".to_owned(),
            };
            writeln!(
                out,
                "{:<60} {:#010x} {:#08x} {:>6} {:>4} {}:{}",
                func.name,
                func.entry,
                offset(func.entry).unwrap_or(0),
                func.end - func.entry,
                rets,
                file,
                line
            )?;
        }
    }
    out.flush()?;
    if shown == 0 {
        let pattern = args.pattern.as_deref().unwrap_or("*");
        anyhow::bail!(
            "no function matches {pattern:?} in {} (try `gotrace list {}` to see them all)",
            args.binary.display(),
            args.binary.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line saying what kind of binary this is.
fn header(bin: &GoBinary<'_>) -> String {
    format!(
        "# {} {} {}, {}, {}, pclntab {}, {} functions",
        bin.build
            .go_version
            .as_deref()
            .unwrap_or("go version unknown"),
        bin.elf.arch.goarch(),
        if bin.elf.is_pie { "PIE" } else { "static" },
        if bin.elf.stripped {
            "stripped"
        } else {
            "with symbols"
        },
        bin.build
            .main_module
            .as_deref()
            .map_or("main module unknown".to_owned(), |m| format!("module {m}")),
        bin.pclntab.version.releases(),
        bin.funcs.len()
    )
}
