//! `gotrace goroutines --blocked -p PID`: the goroutines parked right now, read once from the
//! process's memory ([`crate::session::parked`]: no probes, the process is not stopped), named
//! from the binary (wait reasons, stacks with their inlined frames) and rendered by
//! [`crate::output::parked`].

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::GoroutinesArgs;
use crate::gobin::format::symbols::SourceFrame;
use crate::gobin::runtime::allgs::{self, AllgsLayout};
use crate::gobin::runtime::wait_reasons::WaitReasons;
use crate::gobin::{BinaryFile, GoBinary};
use crate::output::lines::ExactU64;
use crate::output::parked::{Frame, ParkedGoroutine, ParkedReport};
use crate::session::parked::{self, Parked, ParkedG};
use crate::session::target::TargetSpec;

/// Runs `gotrace goroutines --blocked`.
pub fn run(args: &GoroutinesArgs) -> Result<ExitCode> {
    let pid = match args.target.spec(args.binary.as_deref())? {
        TargetSpec::Pid(pid) => pid,
        _ => bail!("--blocked reads the goroutines of one running process: name it with -p PID"),
    };
    let filter = crate::plan::optional_glob(args.filter.as_deref(), "--filter pattern")?;
    let file = BinaryFile::open(std::path::Path::new(&format!("/proc/{pid}/exe")))
        .with_context(|| format!("process {pid} is not running a readable Go binary"))?;
    let bin = file.parse()?;
    let layout = AllgsLayout::of(&bin)?;
    // A stripped binary of a release the table lacks: listed by number, counted.
    let reasons = bin.wait_reasons();
    let read = parked::read(pid, &bin, &layout)?;
    let mut report = name(&bin, pid, &read, reasons.as_ref(), filter.as_ref());
    report.sort();
    let mut out: Box<dyn std::io::Write> = match &args.target.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    report.write(&mut out, args.target.json)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The report of what [`parked::read`] found: each goroutine named (start function, wait
/// reason, stack, park site), the runtime's own and those `filter` leaves out counted.
fn name(
    bin: &GoBinary<'_>,
    pid: u32,
    read: &Parked,
    reasons: Option<&WaitReasons>,
    filter: Option<&glob::Pattern>,
) -> ParkedReport {
    let mut report = ParkedReport {
        pid,
        ts_ns: read.read_ns,
        not_parked: read.live - read.goroutines.len() as u64,
        unreadable: read.unreadable,
        ..ParkedReport::default()
    };
    let frames = bin.call_site_frames(
        &read
            .goroutines
            .iter()
            .flat_map(|g| g.stack.clone())
            .collect::<Vec<_>>(),
    );
    for g in &read.goroutines {
        let stack: Vec<Frame> = g
            .stack
            .iter()
            .flat_map(|pc| frames.get(pc).into_iter().flatten())
            .map(frame)
            .collect();
        let function = start_function(bin, g);
        if allgs::is_runtime_goroutine(&function) {
            report.runtime_goroutines += 1;
            continue;
        }
        if filter.is_some_and(|p| !p.matches(&function)) {
            report.filtered += 1;
            continue;
        }
        let wait_reason = match reasons.and_then(|r| r.name(g.wait_reason)) {
            Some(name) => name.to_owned(),
            None => {
                report.unnamed_reasons += 1;
                format!("waitReason({})", g.wait_reason)
            }
        };
        let park = park_frame(&stack);
        let parked_since_ns = u64::try_from(g.waitsince_ns).ok().filter(|&ns| ns != 0);
        report.goroutines.push(ParkedGoroutine {
            pid,
            goid: g.goid,
            state: g.state,
            wait_reason,
            parked_since_ns: parked_since_ns.map(ExactU64),
            parked_for_ns: parked_since_ns.map(|since| read.read_ns.saturating_sub(since)),
            function,
            park_function: park.map_or_else(|| "?".to_owned(), |f| f.function.clone()),
            park_site: park.map_or_else(|| "?".to_owned(), |f| format!("{}:{}", f.file, f.line)),
            stack,
        });
    }
    report
}
fn frame(f: &SourceFrame<'_>) -> Frame {
    Frame {
        function: f.function.to_owned(),
        file: f.file.to_owned(),
        line: f.line,
    }
}

/// The function runtime.goexit called (its frame's return address is in runtime.goexit), or
/// `?` when the unwind stopped before it.
fn start_function(bin: &GoBinary<'_>, g: &ParkedG) -> String {
    let name = |pc: u64| bin.func_at(pc.saturating_sub(1)).map(|f| f.name);
    match g.stack[..] {
        [.., caller, goexit] if name(goexit) == Some("runtime.goexit") => name(caller),
        _ => None,
    }
    .unwrap_or("?")
    .to_owned()
}

/// The innermost frame outside the standard library (whose package path's first element has
/// no dot, other than `main`), else the innermost outside package runtime; never a wrapper the
/// compiler generated (file `<autogenerated>`).
fn park_frame(stack: &[Frame]) -> Option<&Frame> {
    let written = || stack.iter().filter(|f| f.file != "<autogenerated>");
    written()
        .find(|f| !is_standard_library(&f.function))
        .or_else(|| written().find(|f| !f.function.starts_with("runtime.")))
}

/// Whether Go function `name` (`net/http.(*conn).serve`) is in a standard-library package.
fn is_standard_library(name: &str) -> bool {
    let (dir, last) = name.rsplit_once('/').unwrap_or(("", name));
    let package = last.split('.').next().unwrap_or("");
    let first = if dir.is_empty() {
        package
    } else {
        dir.split('/').next().unwrap_or("")
    };
    let main = dir.is_empty() && package == "main";
    !main && !first.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_library_names() {
        assert!(is_standard_library("runtime.gopark"));
        assert!(is_standard_library("sync.(*Mutex).lockSlow"));
        assert!(is_standard_library("internal/poll.(*FD).Read"));
        assert!(is_standard_library("net/http.(*conn).serve"));
        assert!(!is_standard_library("main.worker"));
        assert!(!is_standard_library("main.main.func1"));
        assert!(!is_standard_library("github.com/a/b.(*T).Run"));
        assert!(!is_standard_library("example.com/m.F"));
    }
}
