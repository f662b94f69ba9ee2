//! `gotrace args`: every call of the traced functions with its arguments (at the entry probe),
//! its results and duration (at each RET probe) and its goroutine. The BPF program copies raw
//! registers, stack and string bytes by a per-function fetch plan ([`crate::abi`]) into one
//! ring buffer, without wake-ups; this side polls it and decodes ([`crate::values`]).

use std::io::Write;

use crate::output::WholeLines;
use std::mem::{offset_of, size_of, MaybeUninit};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use serde_json::{json, Value};

use crate::abi::{self, Abi, CallPlan, DerefKind, SitePlan};
use crate::cli::ArgsArgs;
use crate::gobin::dwarf::DwarfInfo;
use crate::gobin::{Arch, BinaryFile, GoBinary};
use crate::plan::{self, ProbePlan};
use crate::session::{self, Lifecycle, Site, StopReason, Wake};
use crate::signature::{self, UserSignature};
use crate::skeletons::{self, args::*, open_skeleton, plain_copy};
use crate::target::Target;
use crate::typenames::BinaryTypeNamer;
use crate::values::{self, Captured};

/// How often the ring buffer is drained (the BPF side never forces a wake-up).
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Cookie bits above this hold the site's offset from the function entry (COOKIE_SITE_SHIFT).
const COOKIE_SITE_SHIFT: u32 = 40;
/// `deref_len` value of a read that failed (ARGS_READ_FAILED).
const READ_FAILED: u32 = u32::MAX;

/// Runs `gotrace args`.
pub fn run(args: &ArgsArgs) -> Result<ExitCode> {
    let (patterns, spec) = args.target.split(&args.positional)?;
    if args.strsize > abi::MAX_READ {
        bail!("--strsize is at most {}", abi::MAX_READ);
    }
    if !args.ringbuf_kib.is_power_of_two() || !(4..=(1 << 21)).contains(&args.ringbuf_kib) {
        bail!("--ringbuf-kib must be a power of two from 4 to 2097152");
    }
    let duration = args.target.duration.map(session::seconds).transpose()?;
    let mut target = Target::resolve(spec)?;
    let file = BinaryFile::open(&target.binary)?;
    let bin = file.parse()?;
    let mut user_sigs = Vec::new();
    let mut names = Vec::new();
    for pattern in &patterns {
        let (name, written) = signature::split_pattern(pattern);
        if written.is_some() {
            user_sigs.push(signature::parse(pattern, bin.elf.arch.ptr_size())?);
        }
        names.push(name.to_owned());
    }
    let plan = plan::plan(&bin, &names, !args.no_ret)?;
    let dwarf = bin.dwarf()?;
    let calls = call_plans(&bin, dwarf.as_ref(), &plan, &user_sigs, args)?;
    let g_goid = goid_offset(&bin, dwarf.as_ref())?;
    if args.stack && bin.elf.arch != Arch::Amd64 {
        bail!("--stack follows frame pointers, which only amd64 Go binaries have");
    }
    skeletons::require_bpf_privileges()?;

    let multi = session::kernel_has_uprobe_multi();
    let mut open_object = MaybeUninit::uninit();
    let mut open = open_skeleton!(
        ArgsSkelBuilder,
        &mut open_object,
        plan.runtime,
        target.pid,
        |rodata| {
            rodata.g_goid = g_goid;
            rodata.pair_calls = u32::from(!args.no_ret);
            rodata.walk_stack = u32::from(args.stack);
        }
    );
    open.maps
        .fetch_plans
        .set_max_entries(2 * plan.funcs.len() as u32)?;
    open.maps
        .starts
        .set_max_entries(args.max_open_calls.max(1))?;
    open.maps.events.set_max_entries(args.ringbuf_kib << 10)?;
    open.progs.args_multi.set_autoload(multi);
    open.progs.args_single.set_autoload(!multi);
    let skel = skeletons::load(open)?;
    for (func, call) in plan.funcs.iter().zip(&calls) {
        for (kind, site) in [(0u32, &call.entry), (1, &call.ret)] {
            let key = func.id * 2 + kind;
            let fetch = to_bpf_fetch(site, func.entry);
            skel.maps
                .fetch_plans
                .update(&key.to_ne_bytes(), plain_bytes(&fetch), MapFlags::ANY)?;
        }
    }

    let mut sites = Vec::new();
    for f in &plan.funcs {
        let entry_offset = bin
            .elf
            .file_offset(f.entry)
            .context("function entry not in the file")?;
        let rets = if args.no_ret {
            &[][..]
        } else {
            &f.ret_sites[..]
        };
        let kinds = std::iter::once((f.entry_site, 0)).chain(rets.iter().map(|&off| (off, 1)));
        for (file_offset, kind) in kinds {
            // The site's offset from the entry lets the BPF side derive the load bias.
            let site_offset = file_offset.wrapping_sub(entry_offset) & ((1 << 24) - 1);
            sites.push(Site {
                file_offset,
                cookie: (site_offset << COOKIE_SITE_SHIFT) | (u64::from(f.id) << 8) | kind,
            });
        }
    }
    let prog = if multi {
        &skel.progs.args_multi
    } else {
        &skel.progs.args_single
    };
    let attached = session::attach_sites(prog, multi, target.pid, &target.binary, &sites)?;

    // Stop signals are caught from here on: a Ctrl-C right after the banner must still detach.
    let mut lifecycle = Lifecycle::start(duration, Some(POLL_INTERVAL));
    let mut out = WholeLines::new(std::io::stdout().lock());
    session::announce(&mut out, &plan, &patterns, args.target.json)?;
    target.release()?;

    let namer = BinaryTypeNamer::new(&bin);
    let printer = std::cell::RefCell::new(Printer {
        plan: &plan,
        calls: &calls,
        namer: &namer,
        bin: &bin,
        json: args.target.json,
        clock_offset: crate::clock::monotonic_to_unix_ns(),
        max_events: args.max_events.unwrap_or(u64::MAX),
        printed: 0,
        lines: Vec::with_capacity(1 << 16),
        event: Box::new(zeroed_event()),
    });
    let mut ring = RingBufferBuilder::new();
    ring.add(&skel.maps.events, |bytes: &[u8]| {
        printer.borrow_mut().handle(bytes);
        0
    })?;
    let ring = ring.build()?;

    let stop = loop {
        match lifecycle.wait(&mut target) {
            Wake::Interval => {
                ring.consume()?;
                let done = printer.borrow_mut().flush(&mut out)?;
                if done {
                    break StopReason::Signal;
                }
            }
            Wake::Stop(reason) => break reason,
        }
    };
    drop(attached);
    ring.consume()?;
    drop(ring);
    let mut printer = printer.into_inner();
    printer.flush(&mut out)?;
    let (lost, mut unmatched) = read_stats(&skel)?;
    if let (StopReason::TargetExited(_), Some(pid)) = (stop, target.pid) {
        unmatched += calls_cut_by_exit(&skel, pid)?;
    }
    if args.target.json {
        writeln!(
            out,
            "{}",
            json!({"type": "summary", "events": printer.printed, "lost": lost, "unmatched": unmatched})
        )?;
    } else {
        writeln!(
            out,
            "{} events, {lost} lost, {unmatched} unmatched",
            printer.printed
        )?;
    }
    out.flush()?;
    Ok(match stop {
        StopReason::TargetExited(Some(code)) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        _ => ExitCode::SUCCESS,
    })
}

/// The ABI plan of every planned function, from its DWARF signature, with the `--global`s
/// read at its entry.
fn call_plans(
    bin: &GoBinary<'_>,
    dwarf: Option<&DwarfInfo>,
    plan: &ProbePlan,
    user_sigs: &[UserSignature],
    args: &ArgsArgs,
) -> Result<Vec<CallPlan>> {
    let strsize = args.strsize;
    let abi = if bin.elf.arch == Arch::Amd64 && bin.uses_register_abi() {
        Abi::Register
    } else {
        Abi::Stack
    };
    let globals = args
        .globals
        .iter()
        .map(|name| {
            let dwarf = dwarf.with_context(|| {
                format!("--global {name}: the binary has no DWARF (stripped), so its globals' types are unknown")
            })?;
            let global = dwarf
                .globals
                .iter()
                .find(|g| &g.name == name)
                .with_context(|| {
                    format!("unknown global {name} (see `gotrace list --globals BINARY`)")
                })?;
            let ty = global
                .ty
                .with_context(|| format!("{name}: DWARF gives no type"))?;
            Ok((name.clone(), global.addr, ty))
        })
        .collect::<Result<Vec<_>>>()?;
    plan.funcs
        .iter()
        .map(|func| {
            let written = user_sigs.iter().find(|u| u.function == func.name);
            let mut call = match (written, dwarf) {
                (Some(user), _) => {
                    abi::call_plan(&user.sig, &user.types, bin.elf.arch, abi, strsize)
                }
                (None, Some(dwarf)) => match dwarf.functions.get(&func.name) {
                    Some(sig) => abi::call_plan(sig, &dwarf.types, bin.elf.arch, abi, strsize),
                    None => {
                        eprintln!(
                            "gotrace: {} has no DWARF signature (assembly?): its calls are printed without arguments",
                            func.name
                        );
                        CallPlan::default()
                    }
                },
                (None, None) => bail!(
                    "{}: the binary has no DWARF (stripped), so write its signature, e.g. '{}(n int, s string) (int, error)'",
                    func.name,
                    func.name
                ),
            };
            if let Some(dwarf) = dwarf {
                abi::add_globals(&mut call.entry, &globals, &dwarf.types, bin.elf.arch, strsize)
                    .map_err(anyhow::Error::msg)?;
            }
            Ok(call)
        })
        .collect()
}

/// offsetof(runtime.g, goid).
fn goid_offset(bin: &GoBinary<'_>, dwarf: Option<&DwarfInfo>) -> Result<u32> {
    u32::try_from(bin.runtime_layout(dwarf)?.g_goid).context("goid offset out of range")
}

/// The BPF `struct args_fetch` of a site plan of the function at link-time `func_vaddr`.
fn to_bpf_fetch(site: &SitePlan, func_vaddr: u64) -> types::args_fetch {
    let mut fetch = types::args_fetch {
        func_vaddr,
        stack_bytes: site.stack_bytes,
        n_derefs: site.derefs.len().min(abi::MAX_DEREFS) as u32,
        n_globals: site.globals.len().min(abi::MAX_GLOBALS) as u32,
        ..Default::default()
    };
    for (slot, global) in fetch.globals.iter_mut().zip(&site.globals) {
        slot.vaddr = global.vaddr;
        slot.size = global.size;
        slot.area_off = global.area_offset;
    }
    for (slot, deref) in fetch.derefs.iter_mut().zip(&site.derefs) {
        slot.max = deref.max;
        match deref.kind {
            DerefKind::Counted { ptr, len, scale } => {
                slot.kind = 0;
                slot.ptr_off = ptr.offset as u16;
                slot.len_off = len.offset as u16;
                slot.scale = scale;
            }
            DerefKind::StringHeader { ptr } => {
                slot.kind = 1;
                slot.ptr_off = ptr.offset as u16;
            }
            DerefKind::Fixed { ptr, offset } => {
                slot.kind = 2;
                slot.ptr_off = ptr.offset as u16;
                slot.scale = offset;
            }
        }
    }
    fetch
}

/// Sums the per-CPU loss counters: (lost, unmatched).
fn read_stats(skel: &ArgsSkel<'_>) -> Result<(u64, u64)> {
    let per_cpu = skel
        .maps
        .stats
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)?
        .context("stats map entry missing")?;
    let mut totals = (0, 0);
    for bytes in per_cpu {
        let stats: types::args_stats = plain_copy(&bytes)?;
        totals.0 += stats.lost;
        totals.1 += stats.unmatched;
    }
    Ok(totals)
}

/// Calls still open in process `pid` after it exited: they can never return (a panic that
/// unwound them, or an exit inside the call).
fn calls_cut_by_exit(skel: &ArgsSkel<'_>, pid: u32) -> Result<u64> {
    let mut open = 0;
    for key_bytes in skel.maps.starts.keys() {
        let key: types::frame_key = plain_copy(&key_bytes)?;
        open += u64::from(key.tgid == pid);
    }
    Ok(open)
}

/// Turns ring-buffer events into output lines.
struct Printer<'a> {
    plan: &'a ProbePlan,
    calls: &'a [CallPlan],
    namer: &'a BinaryTypeNamer<'a, 'a>,
    bin: &'a GoBinary<'a>,
    json: bool,
    clock_offset: i128,
    max_events: u64,
    printed: u64,
    /// Lines formatted since the last flush.
    lines: Vec<u8>,
    /// The header of the event being decoded.
    event: Box<types::args_event>,
}

impl Printer<'_> {
    /// Decodes one event into `lines` (ignored once --max-events were printed).
    fn handle(&mut self, bytes: &[u8]) {
        if self.printed >= self.max_events {
            return;
        }
        let header_len = offset_of!(types::args_event, data);
        let Some(header) = bytes.get(..header_len) else {
            return;
        };
        // SAFETY: `self.event` is a #[repr(C)] struct of integers (any bit pattern is valid)
        // of size_of::<args_event>() >= header_len bytes; `header` holds header_len bytes and
        // does not overlap the box.
        unsafe {
            std::ptr::copy_nonoverlapping(
                header.as_ptr(),
                std::ptr::from_mut(&mut *self.event).cast::<u8>(),
                header_len,
            );
        }
        let data = bytes.get(header_len..).unwrap_or(&[]);
        let frame_start = offset_of!(types::args_event, regs);
        let frame = bytes
            .get(
                frame_start
                    ..frame_start
                        + (abi::REGS_AREA + abi::STACK_WINDOW + abi::GLOBALS_AREA) as usize,
            )
            .unwrap_or(&[]);
        let e = &*self.event;
        let (Some(func), Some(call)) = (
            self.plan.funcs.get(e.func_id as usize),
            self.calls.get(e.func_id as usize),
        ) else {
            return;
        };
        let is_ret = e.kind != 0;
        let site = if is_ret { &call.ret } else { &call.entry };
        let mut cursor = 0usize;
        let derefs = e
            .deref_len
            .iter()
            .take(site.derefs.len())
            .map(|&len| {
                if len == READ_FAILED {
                    return None;
                }
                let piece = data.get(cursor..cursor.checked_add(len as usize)?);
                cursor += len as usize;
                piece
            })
            .collect();
        let captured = Captured { frame, derefs };
        self.namer.set_load_bias(e.load_bias);
        let decoded = values::decode_site(&site.values, &captured, self.namer);
        let globals =
            values::decode_globals(&site.global_values, e.globals_failed, &captured, self.namer);
        if self.json {
            let stack = (!is_ret && e.n_callers > 0).then(|| Value::Array(self.callers(e)));
            let out = &mut self.lines;
            let kind = if is_ret { "return" } else { "call" };
            out.extend_from_slice(
                format!(
                    "{{\"type\":\"{kind}\",\"ts_ns\":{},\"pid\":{},\"tid\":{},\"goid\":{},\"function\":",
                    e.ts_ns, e.pid, e.tid, e.goid
                )
                .as_bytes(),
            );
            values::put_json(out, func.name.as_str());
            if is_ret {
                if e.matched != 0 {
                    out.extend_from_slice(format!(",\"duration_ns\":{}", e.duration_ns).as_bytes());
                } else {
                    out.extend_from_slice(b",\"duration_ns\":null");
                }
                out.extend_from_slice(b",\"results\":");
                values::write_json_list(out, &decoded);
            } else {
                out.extend_from_slice(b",\"args\":");
                values::write_json_list(out, &decoded);
                if !globals.is_empty() {
                    out.extend_from_slice(b",\"globals\":");
                    values::write_json_list(out, &globals);
                }
                if let Some(stack) = stack {
                    out.extend_from_slice(b",\"stack\":");
                    values::put_json(out, &stack);
                }
            }
            out.extend_from_slice(b"}\n");
            self.printed += 1;
            return;
        }
        let line = {
            let when = crate::clock::hms_micros(i128::from(e.ts_ns) + self.clock_offset);
            let list = |sep: &str, named: bool| {
                decoded
                    .iter()
                    .map(|v| {
                        let text = v.human();
                        if named {
                            format!("{}={text}", v.name)
                        } else {
                            text
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            if is_ret {
                let took = if e.matched != 0 {
                    format_duration(e.duration_ns)
                } else {
                    "(entry not seen)".to_owned()
                };
                format!(
                    "{when} pid {} goid {} ← {} = ({}) {took}",
                    e.pid,
                    e.goid,
                    func.name,
                    list(", ", false)
                )
            } else {
                let globals: String = globals
                    .iter()
                    .map(|g| format!(" {}={}", g.name, g.human()))
                    .collect();
                let stack: String = self
                    .callers(e)
                    .iter()
                    .map(|frame| {
                        format!(
                            "\n    at {} ({}:{})",
                            frame["function"].as_str().unwrap_or("?"),
                            frame["file"].as_str().unwrap_or("?"),
                            frame["line"]
                        )
                    })
                    .collect();
                format!(
                    "{when} pid {} goid {} → {}({}){globals}{stack}",
                    e.pid,
                    e.goid,
                    func.name,
                    list(", ", true)
                )
            }
        };
        self.lines.extend_from_slice(line.as_bytes());
        self.lines.push(b'\n');
        self.printed += 1;
    }

    /// The callers of an entry event: function, file and line of each return address (of
    /// the call instruction before it, as Go's runtime.CallersFrames reports them).
    fn callers(&self, e: &types::args_event) -> Vec<Value> {
        e.callers
            .iter()
            .take(e.n_callers as usize)
            .map(|&pc| {
                let call_pc = pc.wrapping_sub(e.load_bias).wrapping_sub(1);
                let func = self.bin.func_at(call_pc);
                let line = func.and_then(|f| self.bin.pclntab.line(f, call_pc).ok().flatten());
                json!({
                    "function": func.map_or("?", |f| f.name),
                    "file": line.map_or("?", |(file, _)| file),
                    "line": line.map_or(0, |(_, line)| line),
                })
            })
            .collect()
    }

    /// Writes the pending lines; true once --max-events were printed.
    fn flush(&mut self, out: &mut impl Write) -> Result<bool> {
        out.write_all(&self.lines)?;
        out.flush()?;
        self.lines.clear();
        Ok(self.printed >= self.max_events)
    }
}

/// A duration like `1.2µs`.
fn format_duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// An all-zero event.
fn zeroed_event() -> types::args_event {
    // SAFETY: args_event is a skeleton-generated #[repr(C)] struct of integers and integer
    // arrays, for which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// The bytes of a plain skeleton struct, for a map update.
fn plain_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is a skeleton-generated #[repr(C)] plain-data struct; viewing its
    // size_of::<T>() initialised bytes as u8 is valid for the borrow's lifetime.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), size_of::<T>()) }
}
