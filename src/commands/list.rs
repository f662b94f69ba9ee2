//! `gotrace list`: what can be traced in a Go binary, and how.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::ListArgs;
use crate::gobin::disasm::DecodedFunction;
use crate::gobin::dwarf::{DwarfInfo, Param};
use crate::gobin::site_class::SiteClass;
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

    let dwarf = bin.dwarf()?;
    if args.globals {
        return list_globals(&bin, dwarf.as_ref(), &matches, args.json);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(out, "{}", header(&bin, dwarf.is_some()))?;
        writeln!(
            out,
            "{:<60} {:<10} {:<8} {:>6} {:>4} {:>5} {:<12} {:>7} {:>4} {:>5} FILE:LINE",
            "FUNCTION",
            "ENTRY",
            "OFFSET",
            "SIZE",
            "RETS",
            "TYPES",
            "ENTRY-SITE",
            "RET-E/S",
            "TAIL",
            "STEPS"
        )?;
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
            if let Some(info) = &dwarf {
                let sig = info.functions.get(func.name).cloned().unwrap_or_default();
                row["params"] = params_json(info, &sig.params);
                row["results"] = params_json(info, &sig.results);
            }
            match &sites {
                Ok(sites) => {
                    row["entry_probe_offset"] = offset(sites.entry_probe).into();
                    row["ret_offsets"] = sites.ret_sites.iter().map(|&v| offset(v)).collect();
                    row["entry_class"] = sites.entry.class_name().into();
                    row["entry_site_offset"] = offset(sites.entry.addr).into();
                    row["ret_classes"] = serde_json::json!(sites.ret_classes);
                    row["tail_calls"] = sites
                        .tail_calls
                        .iter()
                        .map(|call| {
                            serde_json::json!({
                                "offset": offset(call.site),
                                "target": call.target,
                                "function": bin.func_entered_at(call.target).map(|f| f.name),
                            })
                        })
                        .collect();
                    row["steps_per_call"] = steps_per_call(sites).into();
                }
                Err(err) => {
                    for key in ["entry_probe_offset", "entry_class", "entry_site_offset"] {
                        row[key] = serde_json::Value::Null;
                    }
                    for key in ["ret_offsets", "ret_classes", "tail_calls"] {
                        row[key] = serde_json::json!([]);
                    }
                    row["steps_per_call"] = serde_json::Value::Null;
                    row["problem"] = format!("{err:#}").into();
                }
            }
            writeln!(out, "{row}")?;
        } else {
            let rets = match &sites {
                Ok(sites) if sites.ret_sites.is_empty() => "none".to_owned(),
                Ok(sites) => sites.ret_sites.len().to_string(),
                Err(_) => "?".to_owned(),
            };
            let (entry_class, ret_classes, tails, steps) = match &sites {
                Ok(sites) => (
                    sites.entry.class_name(),
                    ret_class_counts(&sites.ret_classes),
                    sites.tail_calls.len().to_string(),
                    steps_per_call(sites).to_string(),
                ),
                Err(_) => ("?", "?".to_owned(), "?".to_owned(), "?".to_owned()),
            };
            let types_known = dwarf
                .as_ref()
                .is_some_and(|d| d.functions.contains_key(func.name));
            writeln!(
                out,
                "{:<60} {:#010x} {:#08x} {:>6} {:>4} {:>5} {:<12} {:>7} {:>4} {:>5} {}:{}",
                func.name,
                func.entry,
                offset(func.entry).unwrap_or(0),
                func.end - func.entry,
                rets,
                if types_known { "yes" } else { "no" },
                entry_class,
                ret_classes,
                tails,
                steps,
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

/// The expected cost class of tracing one call with an entry probe and RET probes: how many
/// of its probe hits the kernel single-steps (the entry site, plus one RET site if any RET is
/// single-stepped; 0 is the cheapest).
fn steps_per_call(sites: &DecodedFunction) -> u8 {
    let single_step = SiteClass::SingleStep;
    u8::from(sites.entry.insn.class == single_step)
        + u8::from(sites.ret_classes.contains(&single_step))
}

/// RET site classes as counts, `emulated/single-step` (`0/2`), or `-` without RET.
fn ret_class_counts(classes: &[SiteClass]) -> String {
    if classes.is_empty() {
        return "-".to_owned();
    }
    let steps = classes
        .iter()
        .filter(|&&class| class == SiteClass::SingleStep)
        .count();
    format!("{}/{steps}", classes.len() - steps)
}

/// `[{"name":..,"type":..}]` for parameters or results.
fn params_json(info: &DwarfInfo, params: &[Param]) -> serde_json::Value {
    params
        .iter()
        .map(|p| serde_json::json!({"name": p.name, "type": info.types.name(p.ty)}))
        .collect()
}

/// `gotrace list --globals`: name, address, size and type of each global.
fn list_globals(
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
        writeln!(out, "{}", header(bin, true))?;
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

/// One line saying what kind of binary this is.
fn header(bin: &GoBinary<'_>, has_dwarf: bool) -> String {
    format!(
        "# {} {} {}, {}, {}, {}, pclntab {}, {} functions",
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
        if has_dwarf { "DWARF" } else { "no DWARF" },
        bin.build
            .main_module
            .as_deref()
            .map_or("main module unknown".to_owned(), |m| format!("module {m}")),
        bin.pclntab.version.releases(),
        bin.funcs.len()
    )
}
