//! `gotrace list`: what can be traced in a Go binary, and how: one row per function
//! ([`rows`]), its inlined calls ([`inlined`]), or the globals ([`globals`]).

mod globals;
mod inlined;
mod json;
mod rows;

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ListArgs;
use crate::gobin::format::inline_tree::InlineTable;
use crate::gobin::{BinaryFile, GoBinary};
use inlined::SiteDetails;
use rows::Rows;

/// Bytes of code decoded by the rows kept resident before they are released.
const CODE_WINDOW: u64 = 4 << 20;

/// Bytes of rows written at a time: the full index of a large binary is tens of MB of JSON,
/// and one write per 8 KiB (`BufWriter`'s default) cost several ms of system time.
const OUT_BUFFER: usize = 256 << 10;

/// Runs `gotrace list`.
pub fn run(args: &ListArgs) -> Result<ExitCode> {
    let file = BinaryFile::open(&args.binary)?;
    let bin = file.parse()?;
    let pattern = crate::plan::optional_glob(args.pattern.as_deref(), "pattern")?;
    let matches = |name: &str| pattern.as_ref().is_none_or(|p| p.matches(name));
    let dwarf = bin.dwarf()?;
    if args.globals {
        return globals::list_globals(&bin, dwarf, &matches, args.json);
    }
    let inlined = bin.inline_table();
    // Entries need each parent decoded: only with --inlined (seconds on Go's compile).
    let details = args.inlined.then(|| SiteDetails::read(&bin)).transpose()?;
    let inlined_only = inlined_only(&bin, &matches);
    let own = bin
        .funcs
        .iter()
        .map(|f| f.name)
        .filter(|name| matches(name));
    let name_width = own
        .chain(inlined_only.iter().copied())
        .map(|name| name.chars().count())
        .fold("FUNCTION".len(), usize::max);
    let mut rows = Rows {
        bin: &bin,
        dwarf,
        inlined,
        details,
        json: args.json,
        name_width,
    };
    let mut out = std::io::BufWriter::with_capacity(OUT_BUFFER, std::io::stdout().lock());
    if !args.json {
        writeln!(out, "{}", header(&bin, dwarf.is_some()))?;
        writeln!(out, "{}", inlined::inline_summary(inlined))?;
        rows.write_titles(&mut out)?;
    }
    let mut shown = 0usize;
    // The rows decode the code in address order: the code behind them need not stay resident.
    let mut resident_from = None;
    for func in bin.funcs.iter().filter(|f| matches(f.name)) {
        rows.write_function(&mut out, func)?;
        shown += 1;
        if let Some(offset) = bin.elf.file_offset(func.entry) {
            let start = *resident_from.get_or_insert(offset);
            if offset.saturating_sub(start) >= CODE_WINDOW {
                file.release(start..offset);
                resident_from = Some(offset);
            }
        }
    }
    for &name in &inlined_only {
        rows.write_inlined_only(&mut out, name)?;
        shown += 1;
    }
    out.flush()?;
    after_rows(args, shown, inlined)?;
    Ok(ExitCode::SUCCESS)
}

/// After `shown` rows: an error when nothing matched; with --json, the warning about inline
/// trees that the text's summary line carries (JSON lines have no room for it).
fn after_rows(args: &ListArgs, shown: usize, inlined: &InlineTable<'_>) -> Result<()> {
    if shown == 0 {
        let (pattern, binary) = (
            args.pattern.as_deref().unwrap_or("*"),
            args.binary.display(),
        );
        anyhow::bail!("no function matches {pattern:?} in {binary} (try `gotrace list {binary}` to see them all)");
    }
    if let Some(problem) = args
        .json
        .then(|| inlined::inline_problems(inlined))
        .flatten()
    {
        eprintln!("gotrace: warning: {problem}");
    }
    Ok(())
}

/// The matching functions that have no out-of-line copy (their only code is inlined into
/// callers), sorted.
fn inlined_only<'b>(bin: &'b GoBinary<'_>, matches: &impl Fn(&str) -> bool) -> Vec<&'b str> {
    let out_of_line: HashSet<&str> = bin.funcs.iter().map(|f| f.name).collect();
    let mut names: Vec<&str> = bin
        .inline_table()
        .inlined_functions()
        .filter(|name| matches(name) && !out_of_line.contains(name))
        .collect();
    names.sort_unstable();
    names
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
        linking(bin),
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

/// How the binary is linked: PIE, dynamically (an ELF interpreter: cgo, or -linkmode=external)
/// or static.
fn linking(bin: &GoBinary<'_>) -> &'static str {
    if bin.elf.is_pie {
        "PIE"
    } else if bin.elf.section(".interp").is_some() {
        "dynamically linked"
    } else {
        "static"
    }
}
