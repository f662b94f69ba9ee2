//! The goroutines of a running process that are parked right now (`gotrace goroutines
//! --blocked`), read from user space: `runtime.allgs` and each goroutine's `runtime.g` through
//! `/proc/PID/mem` ([`crate::gobin::runtime::allgs`] says where), and each parked goroutine's
//! stack unwound from its saved `g.sched` by the pclntab's SP deltas, as Go's own traceback
//! unwinds it. Nothing is probed and the process is not stopped: a goroutine that changes
//! state while it is read may read inconsistently, and is then counted `unreadable`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result};

use crate::gobin::runtime::allgs::{self, AllgsLayout, AllgsSource, G_DEAD};
use crate::gobin::GoBinary;

/// Frames unwound per goroutine at most.
const MAX_FRAMES: usize = 64;

/// Goroutines read at most (a corrupt length stops here).
const MAX_GOROUTINES: u64 = 10_000_000;

/// One parked goroutine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedG {
    /// Its goroutine id (`g.goid`).
    pub goid: u64,
    /// `waiting` or `leaked` ([`allgs::parked`]).
    pub state: &'static str,
    /// The `waitReason` byte.
    pub wait_reason: u8,
    /// `g.waitsince` (CLOCK_MONOTONIC ns; 0: no collection has seen it parked yet).
    pub waitsince_ns: i64,
    /// Link-time return addresses, innermost first: where it parked (in runtime.gopark), then
    /// each caller's, up to runtime.goexit's when the unwind reached it.
    pub stack: Vec<u64>,
}

/// What one read of the process found.
#[derive(Debug, Default)]
pub struct Parked {
    /// The parked goroutines, in `allgs` order.
    pub goroutines: Vec<ParkedG>,
    /// Goroutines in `allgs` that are not dead (parked or not).
    pub live: u64,
    /// Goroutines whose `g` could not be read.
    pub unreadable: u64,
    /// CLOCK_MONOTONIC ns when the read began.
    pub read_ns: u64,
}

/// The memory of a process, with link-time addresses made run-time by the load bias.
struct Memory {
    mem: File,
    bias: u64,
    ptr_size: u64,
}

impl Memory {
    fn bytes(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        self.mem.read_exact_at(&mut buf, addr).ok()?;
        Some(buf)
    }

    /// A little-endian unsigned value of `size` bytes at run-time address `addr`.
    fn uint(&self, addr: u64, size: u64) -> Option<u64> {
        let bytes = self.bytes(addr, size as usize)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |acc, &b| acc << 8 | u64::from(b)),
        )
    }

    fn word(&self, addr: u64) -> Option<u64> {
        self.uint(addr, self.ptr_size)
    }
}

/// Reads the parked goroutines of process `pid` running `bin`.
pub fn read(pid: u32, bin: &GoBinary<'_>, layout: &AllgsLayout) -> Result<Parked> {
    let mem = File::open(format!("/proc/{pid}/mem"))
        .with_context(|| format!("cannot read the memory of process {pid}"))?;
    let bias = if bin.elf.is_pie {
        load_bias(pid, bin)?
    } else {
        0
    };
    let memory = Memory {
        mem,
        bias,
        ptr_size: layout.ptr_size,
    };
    let mut parked = Parked {
        read_ns: u64::try_from(crate::output::clock::clock_ns(libc::CLOCK_MONOTONIC)).unwrap_or(0),
        ..Parked::default()
    };
    // The slice header: pointer, length, capacity.
    let header = |index: u64| {
        memory
            .word(layout.allgs.wrapping_add(bias + index * layout.ptr_size))
            .with_context(|| format!("cannot read runtime.allgs in process {pid}"))
    };
    let (array, len, cap) = (header(0)?, header(1)?, header(2)?);
    if layout.allgs_source == AllgsSource::Code {
        let first = memory
            .word(array)
            .and_then(|g| memory.uint(g.wrapping_add(layout.goid), 8));
        anyhow::ensure!(
            allgs::looks_like_allgs(len, cap, first),
            "the slice gotrace found in runtime.allgadd's code is not runtime.allgs in process {pid} (the binary is stripped): run an unstripped build"
        );
    }
    let len = len.min(MAX_GOROUTINES);
    for i in 0..len {
        let Some(g) = memory.word(array.wrapping_add(i * layout.ptr_size)) else {
            parked.unreadable += 1;
            continue;
        };
        match read_g(&memory, bin, layout, g) {
            Some(Read::Dead) => {}
            Some(Read::Live(g)) => {
                parked.live += 1;
                parked.goroutines.extend(g);
            }
            None => parked.unreadable += 1,
        }
    }
    Ok(parked)
}

/// One `g` as read.
enum Read {
    Dead,
    /// Not dead; parked when Some.
    Live(Option<ParkedG>),
}

/// Reads the `g` at run-time address `g`.
fn read_g(memory: &Memory, bin: &GoBinary<'_>, layout: &AllgsLayout, g: u64) -> Option<Read> {
    let field = |offset: u64, size: u64| memory.uint(g.wrapping_add(offset), size);
    let status = u32::try_from(field(layout.status, 4)?).ok()?;
    if status & !allgs::G_SCAN == G_DEAD {
        return Some(Read::Dead);
    }
    let Some(state) = allgs::parked(status) else {
        return Some(Read::Live(None));
    };
    let word = |offset: u64| field(offset, layout.ptr_size);
    let stack = (word(layout.stack_lo)?, word(layout.stack_hi)?);
    let (sp, pc) = (word(layout.sched_sp)?, word(layout.sched_pc)?);
    Some(Read::Live(Some(ParkedG {
        goid: field(layout.goid, 8)?,
        state,
        wait_reason: u8::try_from(field(layout.waitreason, 1)?).ok()?,
        waitsince_ns: field(layout.waitsince, 8)? as i64,
        stack: unwind(memory, bin, stack, sp, pc),
    })))
}

/// The link-time return addresses of a parked goroutine's frames, from its saved `sp` and `pc`
/// (run-time), innermost first: each frame's size at its PC from the pclntab's SP deltas
/// (`runtime.gentraceback`: the caller's return address sits just above the frame). Stops at
/// the first PC no function holds, at runtime.goexit, outside the goroutine's `stack`, or at
/// [`MAX_FRAMES`].
fn unwind(memory: &Memory, bin: &GoBinary<'_>, stack: (u64, u64), sp: u64, pc: u64) -> Vec<u64> {
    let mut frames = Vec::new();
    let (mut sp, mut pc) = (sp, pc.wrapping_sub(memory.bias));
    while frames.len() < MAX_FRAMES && pc != 0 {
        // The first PC is a return address too (mcall's, in gopark).
        let Some(func) = bin.func_at(pc.saturating_sub(1)) else {
            break;
        };
        frames.push(pc);
        if func.name == "runtime.goexit" {
            break;
        }
        let Ok(Some(delta)) = bin.pclntab.sp_delta(func, pc.saturating_sub(1)) else {
            break;
        };
        let Some(fp) = u64::try_from(delta)
            .ok()
            .and_then(|d| sp.checked_add(d)?.checked_add(memory.ptr_size))
        else {
            break;
        };
        if fp <= stack.0 || fp > stack.1 {
            break;
        }
        let Some(ret) = memory.word(fp - memory.ptr_size) else {
            break;
        };
        (sp, pc) = (fp, ret.wrapping_sub(memory.bias));
    }
    frames
}

/// Run-time minus link-time address of a PIE process: where the mapping of the file's first
/// byte starts, less the address the file's segment at offset 0 was linked at.
fn load_bias(pid: u32, bin: &GoBinary<'_>) -> Result<u64> {
    let exe = std::fs::metadata(format!("/proc/{pid}/exe"))
        .with_context(|| format!("cannot read /proc/{pid}/exe"))?;
    let linked = bin
        .elf
        .segments()
        .iter()
        .find(|s| s.file_offset == 0)
        .map_or(0, |s| s.vaddr);
    let maps = File::open(format!("/proc/{pid}/maps"))
        .with_context(|| format!("cannot read /proc/{pid}/maps"))?;
    use std::os::unix::fs::MetadataExt;
    for line in BufReader::new(maps).lines() {
        let line = line?;
        // start-end perms offset dev inode path
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [range, _, offset, _, inode, ..] = cols[..] else {
            continue;
        };
        if inode.parse::<u64>().ok() != Some(exe.ino()) || u64::from_str_radix(offset, 16) != Ok(0)
        {
            continue;
        }
        let start = range.split('-').next().unwrap_or("");
        let start = u64::from_str_radix(start, 16).context("a /proc/PID/maps line")?;
        return Ok(start.wrapping_sub(linked & !0xfff));
    }
    anyhow::bail!("process {pid} does not map its executable (/proc/{pid}/maps)")
}
