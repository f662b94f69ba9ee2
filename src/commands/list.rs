//! `gotrace list`: what can be traced in a Go binary, and how.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::ListArgs;
use crate::gobin::dwarf::{DwarfInfo, Param};
use crate::gobin::dwarf_inline::{InlinedParam, InlinedSubroutine, ParamLocation};
use crate::gobin::inline::{InlineTable, InlinedInstance};
use crate::gobin::inline_entry::{InlineEntries, ParentFlow};
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
    let inlined = bin.inline_table();
    // Entries need each parent decoded: only with --inlined (seconds on Go's compile).
    let mut flows = args.inlined.then(|| SiteDetails::read(&bin)).transpose()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(out, "{}", header(&bin, dwarf.is_some()))?;
        writeln!(out, "{}", inline_summary(inlined))?;
        writeln!(
            out,
            "{:<60} {:<10} {:<8} {:>6} {:>4} {:>5} {:>7} FILE:LINE",
            "FUNCTION", "ENTRY", "OFFSET", "SIZE", "RETS", "TYPES", "INLINED"
        )?;
    }
    let mut shown = 0usize;
    for func in bin.funcs.iter().filter(|f| matches(f.name)) {
        shown += 1;
        let (file, line) = bin.pclntab.line(func, func.entry)?.unwrap_or(("?", 0));
        let offset = |vaddr: u64| bin.elf.file_offset(vaddr);
        let sites = bin.probe_sites(func);
        let instances: Vec<&InlinedInstance<'_>> = inlined.of(func.name).collect();
        if args.json {
            let mut row = serde_json::json!({
                "function": func.name,
                "entry": func.entry,
                "end": func.end,
                "file_offset": offset(func.entry),
                "file": file,
                "line": line,
            });
            if !instances.is_empty() {
                row["inlined_sites"] = sites_json(&bin, flows.as_mut(), &instances);
            }
            if let Some(info) = &dwarf {
                let sig = info.functions.get(func.name).cloned().unwrap_or_default();
                row["params"] = params_json(info, &sig.params);
                row["results"] = params_json(info, &sig.results);
            }
            match &sites {
                Ok(sites) => {
                    row["entry_probe_offset"] = offset(sites.entry_probe).into();
                    row["ret_offsets"] = sites.ret_sites.iter().map(|&v| offset(v)).collect();
                }
                Err(err) => {
                    row["entry_probe_offset"] = serde_json::Value::Null;
                    row["ret_offsets"] = serde_json::json!([]);
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
            let types_known = dwarf
                .as_ref()
                .is_some_and(|d| d.functions.contains_key(func.name));
            writeln!(
                out,
                "{:<60} {:#010x} {:#08x} {:>6} {:>4} {:>5} {:>7} {}:{}",
                func.name,
                func.entry,
                offset(func.entry).unwrap_or(0),
                func.end - func.entry,
                rets,
                if types_known { "yes" } else { "no" },
                site_count(inlined, instances.len()),
                file,
                line
            )?;
            if args.inlined {
                write_sites(&mut out, &bin, flows.as_mut(), &instances)?;
            }
        }
    }
    // Functions with no out-of-line copy: their only code is inlined into callers.
    let out_of_line: std::collections::HashSet<&str> = bin.funcs.iter().map(|f| f.name).collect();
    let mut inlined_only: Vec<&str> = inlined
        .inlined_functions()
        .filter(|name| matches(name) && !out_of_line.contains(name))
        .collect();
    inlined_only.sort_unstable();
    for name in inlined_only {
        shown += 1;
        let instances: Vec<&InlinedInstance<'_>> = inlined.of(name).collect();
        if args.json {
            let row = serde_json::json!({
                "function": name,
                "inlined_only": true,
                "inlined_sites": sites_json(&bin, flows.as_mut(), &instances),
            });
            writeln!(out, "{row}")?;
        } else {
            let types_known = dwarf
                .as_ref()
                .is_some_and(|d| d.functions.contains_key(name));
            writeln!(
                out,
                "{:<60} {:<10} {:<8} {:>6} {:>4} {:>5} {:>7} (inlined only)",
                name,
                "-",
                "-",
                "-",
                "-",
                if types_known { "yes" } else { "no" },
                instances.len(),
            )?;
            if args.inlined {
                write_sites(&mut out, &bin, flows.as_mut(), &instances)?;
            }
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
    // In text the summary line says it; JSON lines have no room for it.
    if args.json {
        if let Some(problem) = inline_problems(inlined) {
            eprintln!("gotrace: warning: {problem}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The INLINED column: the number of inlined sites, `-` for none, `?` when the binary's
/// inline trees could not be read.
fn site_count(table: &InlineTable<'_>, count: usize) -> String {
    match count {
        0 if table.unavailable.is_some() => "?".to_owned(),
        0 => "-".to_owned(),
        n => n.to_string(),
    }
}

/// One comment line: how many inlined calls were found, and what could not be read.
fn inline_summary(table: &InlineTable<'_>) -> String {
    let found = format!(
        "# {} inlined calls of {} functions",
        table.instances.len(),
        table.inlined_functions().count()
    );
    match inline_problems(table) {
        Some(problem) => format!("{found}; {problem}"),
        None => found,
    }
}

/// What of the inline trees could not be read, if anything.
fn inline_problems(table: &InlineTable<'_>) -> Option<String> {
    if let Some(reason) = &table.unavailable {
        return Some(reason.clone());
    }
    let (first, why) = table.unreadable.first()?;
    Some(format!(
        "the inline trees of {} functions could not be read (their inlined calls are not \
         listed), e.g. {first}: {why}",
        table.unreadable.len()
    ))
}

/// What `--inlined` adds to each site: its entries, from the decoded parents (cached by
/// entry; None: not decodable, e.g. arm64), and its parameters, from DWARF when it has any.
struct SiteDetails {
    flows: HashMap<u64, Option<ParentFlow>>,
    /// DWARF's inlined calls by (parent, function, call line).
    dwarf: HashMap<(String, String, u64), Vec<InlinedSubroutine>>,
}

impl SiteDetails {
    /// Reads the binary's DWARF inlined calls (none without DWARF).
    fn read(bin: &GoBinary<'_>) -> Result<SiteDetails> {
        let mut dwarf: HashMap<_, Vec<InlinedSubroutine>> = HashMap::new();
        for call in bin.dwarf_inlined()?.unwrap_or_default() {
            let key = (call.parent.clone(), call.func.clone(), call.call_line);
            dwarf.entry(key).or_default().push(call);
        }
        Ok(SiteDetails {
            flows: HashMap::new(),
            dwarf,
        })
    }

    /// Where control enters `site`, when its parent can be decoded.
    fn entries(&mut self, bin: &GoBinary<'_>, site: &InlinedInstance<'_>) -> Option<InlineEntries> {
        self.flows
            .entry(site.parent_entry)
            .or_insert_with(|| bin.parent_flow(site.parent_entry).ok())
            .as_ref()
            .map(|flow| flow.entries(&site.ranges))
    }

    /// `site`'s formal parameters as DWARF describes them: the inlined call with the same
    /// parent, function, call line and enclosing calls whose ranges overlap the site's.
    fn params(&self, site: &InlinedInstance<'_>) -> Option<&[InlinedParam]> {
        let key = (
            site.parent.to_owned(),
            site.func.to_owned(),
            u64::try_from(site.call_line).ok()?,
        );
        let overlaps = |ranges: &[(u64, u64)]| {
            ranges
                .iter()
                .any(|&(lo, hi)| site.ranges.iter().any(|&(l, h)| lo < h && l < hi))
        };
        self.dwarf
            .get(&key)?
            .iter()
            .find(|call| call.callers == site.callers && overlaps(&call.ranges))
            .map(|call| call.params.as_slice())
    }
}

/// A parameter and how DWARF locates it: `expr` (one expression for the whole call), `list`
/// (per PC range) or `none` (optimized away).
fn param_location(param: &InlinedParam) -> &'static str {
    match param.location {
        ParamLocation::Expr(_) => "expr",
        ParamLocation::List(_) => "list",
        ParamLocation::None => "none",
    }
}

/// `"inlined_sites"`: one object per inlined call, with file offsets for uprobes. With
/// `flows` (`--inlined`): `entry_offset` is the call's single entry instruction, when the
/// decoded parent shows exactly one that is not also reached from inside the call (else
/// null; `entry_offsets` lists them all, `entries_complete` is false when the parent has
/// indirect jumps), and `params` the DWARF parameters when DWARF describes the call;
/// without, those keys are absent.
fn sites_json(
    bin: &GoBinary<'_>,
    mut flows: Option<&mut SiteDetails>,
    instances: &[&InlinedInstance<'_>],
) -> serde_json::Value {
    let offset = |vaddr: u64| bin.elf.file_offset(vaddr);
    instances
        .iter()
        .map(|site| {
            let mut row = serde_json::json!({
                "parent": site.parent,
                "callers": site.callers,
                "call_file": site.call_file,
                "call_line": site.call_line,
                "mark_offset": offset(site.mark_pc),
                "ranges": site.ranges.iter().map(|&(lo, hi)| [lo, hi]).collect::<Vec<_>>(),
            });
            if let Some(flows) = flows.as_mut() {
                let entries = flows.entries(bin, site);
                let single = entries.as_ref().and_then(|e| match e.points.as_slice() {
                    [only] if !only.reentered => offset(only.pc),
                    _ => None,
                });
                row["entry_offset"] = single.into();
                row["entry_offsets"] = entries
                    .as_ref()
                    .map(|e| e.points.iter().map(|p| offset(p.pc)).collect::<Vec<_>>())
                    .into();
                row["entries_complete"] = entries.as_ref().map(|e| e.indirect_jumps == 0).into();
                if let Some(params) = flows.params(site) {
                    row["params"] = params
                        .iter()
                        .map(|p| serde_json::json!({"name": p.name, "location": param_location(p)}))
                        .collect();
                }
            }
            row
        })
        .collect()
}

/// `--inlined`: the sites of one function, one per line, below its row.
fn write_sites(
    out: &mut impl Write,
    bin: &GoBinary<'_>,
    mut flows: Option<&mut SiteDetails>,
    instances: &[&InlinedInstance<'_>],
) -> Result<()> {
    for site in instances {
        let ranges: Vec<String> = site
            .ranges
            .iter()
            .map(|(lo, hi)| format!("{lo:#x}-{hi:#x}"))
            .collect();
        let via = if site.callers.is_empty() {
            String::new()
        } else {
            format!(" via {}", site.callers.join(" <- "))
        };
        let entries = match flows.as_mut().and_then(|f| f.entries(bin, site)) {
            None => "?".to_owned(),
            Some(e) if e.points.is_empty() => "none".to_owned(),
            Some(e) => e
                .points
                .iter()
                .map(|p| format!("{:#x}{}", p.pc, if p.reentered { "(join)" } else { "" }))
                .collect::<Vec<_>>()
                .join(","),
        };
        let params = flows
            .as_ref()
            .and_then(|f| f.params(site))
            .map(|params| {
                let named: Vec<String> = params
                    .iter()
                    .map(|p| format!("{}({})", p.name, param_location(p)))
                    .collect();
                format!(" params {}", named.join(","))
            })
            .unwrap_or_default();
        writeln!(
            out,
            "    inlined in {}{via} at {}:{} entries {entries} mark {:#x}{params} ranges {}",
            site.parent,
            site.call_file,
            site.call_line,
            site.mark_pc,
            ranges.join(" ")
        )?;
    }
    Ok(())
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
