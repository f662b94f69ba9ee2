//! The overload guard (docs/design.md §16, DTrace's deadman, Datadog's circuit breaker):
//! every hit of every probe is counted in the kernel per function and site class
//! (`guard_slots`, `enum guard_layout` in src/bpf/gotrace.h); every [`CHECK_EVERY`] the guard
//! prices the hits since the last check by their site class, and while the probes cost the
//! target more than the budget (`--max-overhead`, percent of one CPU) it detaches the
//! function that costs most, says so in one line, and keeps the rest exact. Returning early in
//! BPF would save nothing: the trap is the cost, so a dropped function's links are closed.
//!
//! A dropped function's slots are marked first (its hits count nowhere from that instant on),
//! then its links go in a thread of their own (per-site uprobes take tens of ms each to remove).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, Object};
use serde_json::json;

use crate::bpf_types::{guard_layout, guard_slot, site_kind};
use crate::plan::sites::{InlineSites, Site};
use crate::plan::ProbePlan;
use crate::session::attach::Attached;

/// How often the guard looks at the hits.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The default budget: the probes may cost the target 5 % of one CPU.
pub const DEFAULT_MAX_OVERHEAD_PCT: f64 = 5.0;

/// What one hit costs the target, in ns, by the kernel's handling of the probed instruction.
/// Measured constants until the start-up calibration of each site class (issue 23) is on
/// main: docs/design.md §15 ("about 0.8 µs against 6 µs per hit on this VM", from
/// bench/entry_site.sh's per-call overhead of the flag-checked and single-stepped entries on the
/// 2-core 6.18 VM). An entry whose instruction class the plan does not record, a RET and an
/// inlined call's edge are priced as single-stepped: overstating a cost only drops sooner.
const EMULATED_NS: f64 = 800.0;
const STEPPED_NS: f64 = 6_000.0;

const SLOTS_PER_FUNC: u32 = guard_layout::GUARD_SLOTS_PER_FUNC.0;
const SLOT_ENTRY: u32 = guard_layout::GUARD_SLOT_ENTRY.0;
const SLOT_OTHER: u32 = guard_layout::GUARD_SLOT_OTHER.0;

/// The guard's view of a plan: which function each slot and each site belongs to, and what a
/// hit of each slot costs.
#[derive(Debug, Clone)]
pub struct GuardPlan {
    /// Function names, by planned function id (the unit the guard detaches).
    pub names: Vec<String>,
    /// For each slot of `guard_slots`: its function and the cost of one hit, in ns.
    pub slots: Vec<(u32, f64)>,
    /// `go_layout.guard_inline_base`: the slot of inlined-call site 0.
    pub inline_base: u32,
    /// The budget in ns of probe cost per second; None: `--no-guard` (one link for all sites).
    pub budget_ns_per_s: Option<f64>,
}

impl GuardPlan {
    /// The slots of `plan`'s functions (two each) and of its inlined-call sites.
    pub fn new(plan: &ProbePlan, inline: &InlineSites, max_overhead_pct: Option<f64>) -> GuardPlan {
        let funcs = plan.funcs.len() as u32;
        let mut names = vec![String::new(); funcs as usize];
        let mut slots = vec![(0, STEPPED_NS); (funcs * SLOTS_PER_FUNC) as usize];
        for func in &plan.funcs {
            names[func.id as usize] = func.name.clone();
            let entry = if func.entry_kind == site_kind::SITE_ENTRY_IF_NOT_TAKEN {
                EMULATED_NS
            } else {
                STEPPED_NS
            };
            let base = (func.id * SLOTS_PER_FUNC) as usize;
            slots[base + SLOT_ENTRY as usize] = (func.id, entry);
            slots[base + SLOT_OTHER as usize] = (func.id, STEPPED_NS);
        }
        slots.extend(inline.entries.iter().map(|e| (e.func_id, STEPPED_NS)));
        GuardPlan {
            names,
            slots,
            inline_base: funcs * SLOTS_PER_FUNC,
            budget_ns_per_s: max_overhead_pct.map(|pct| pct / 100.0 * 1e9),
        }
    }

    /// The function (guard unit) site `site` belongs to.
    fn unit_of(&self, site: &Site) -> u32 {
        let (field, kind) = crate::plan::sites::decode(site.cookie);
        let slot = if kind == site_kind::SITE_INLINE {
            self.inline_base + field
        } else {
            field * SLOTS_PER_FUNC
        };
        self.slots.get(slot as usize).map_or(0, |&(unit, _)| unit)
    }

    /// `sites` grouped by function (one group for all without a budget), in the order of
    /// the functions, then one group the guard never drops: the scheduler's probes of
    /// `--breakdown` (SITE_SCHED), which belong to no function and which it does not price.
    pub fn groups(&self, sites: &[Site]) -> Vec<Vec<Site>> {
        if self.budget_ns_per_s.is_none() {
            return vec![sites.to_vec()];
        }
        let mut groups = vec![Vec::new(); self.names.len() + 1];
        for site in sites {
            let unit = match crate::plan::sites::decode(site.cookie).1 {
                site_kind::SITE_SCHED => self.names.len(),
                _ => self.unit_of(site) as usize,
            };
            if let Some(group) = groups.get_mut(unit) {
                group.push(*site);
            }
        }
        groups
    }
}

/// One function the guard detached.
#[derive(Debug, Clone)]
pub struct Dropped {
    pub function: String,
    pub func_id: u32,
    /// Since the probes were attached.
    pub after: Duration,
    /// Its hits per second over the last check.
    pub hits_per_s: f64,
    /// What its probes cost the target then, in percent of one CPU.
    pub overhead_pct: f64,
}

/// The functions a session's guard dropped, shared with the command's renderer.
pub type DroppedList = Arc<Mutex<Vec<Dropped>>>;

/// `guard_slots`, mapped into this process.
struct Slots {
    ptr: *mut guard_slot,
    len: usize,
    bytes: usize,
}

impl Slots {
    fn map(object: &Object) -> Result<Slots> {
        use std::os::fd::{AsFd, AsRawFd};
        let map = object
            .maps()
            .find(|m| m.name().to_str() == Some("guard_slots"))
            .context("the BPF object has no guard_slots map")?;
        let len = map.max_entries() as usize;
        let page = 4096;
        let bytes = (len * std::mem::size_of::<guard_slot>()).div_ceil(page) * page;
        // SAFETY: mapping a BPF_F_MMAPABLE array map's fd, shared, for its whole size; the
        // mapping keeps the map alive until `Drop` unmaps it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            bail!(
                "mapping the guard's counters: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Slots {
            ptr: ptr.cast(),
            len,
            bytes,
        })
    }

    fn hits(&self, slot: usize) -> u64 {
        debug_assert!(slot < self.len);
        // SAFETY: `slot` is inside the mapping; the BPF side updates it with atomic adds.
        unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.ptr.add(slot)).hits)) }
    }

    fn drop_slot(&self, slot: usize) {
        // SAFETY: as in `hits`; the BPF side reads `dropped` with a volatile load.
        unsafe {
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*self.ptr.add(slot)).dropped), 1)
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}

/// The guard of one session.
pub struct Guard {
    plan: GuardPlan,
    slots: Slots,
    last: Vec<u64>,
    last_at: Instant,
    started: Instant,
    json: bool,
    dropped: DroppedList,
    dropped_units: Vec<bool>,
}

impl Guard {
    /// The guard of loaded `object` for `plan`, from now on (call once every link is live).
    pub fn start(
        object: &Object,
        plan: GuardPlan,
        json: bool,
        dropped: DroppedList,
    ) -> Result<Guard> {
        let slots = Slots::map(object)?;
        if slots.len < plan.slots.len() {
            bail!(
                "guard_slots has {} slots, the plan {}",
                slots.len,
                plan.slots.len()
            );
        }
        let last = (0..plan.slots.len()).map(|s| slots.hits(s)).collect();
        let units = plan.names.len();
        Ok(Guard {
            plan,
            slots,
            last,
            last_at: Instant::now(),
            started: Instant::now(),
            json,
            dropped,
            dropped_units: vec![false; units],
        })
    }

    /// Every [`CHECK_EVERY`]: prices the hits since the last check and, over the budget,
    /// drops the costliest functions (their links and uprobes taken from `attached`) until
    /// under it.
    pub fn check(&mut self, attached: &mut Attached, out: &mut impl Write) -> Result<()> {
        let Some(budget) = self.plan.budget_ns_per_s else {
            return Ok(());
        };
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_at).as_secs_f64();
        if elapsed < CHECK_EVERY.as_secs_f64() {
            return Ok(());
        }
        let units = self.plan.names.len();
        let (mut cost, mut hits) = (vec![0.0f64; units], vec![0u64; units]);
        for (slot, &(unit, ns)) in self.plan.slots.iter().enumerate() {
            let total = self.slots.hits(slot);
            let delta = total.wrapping_sub(self.last[slot]);
            self.last[slot] = total;
            if let Some(c) = cost.get_mut(unit as usize) {
                *c += delta as f64 * ns;
                hits[unit as usize] += delta;
            }
        }
        self.last_at = now;
        let mut total: f64 = cost.iter().sum::<f64>() / elapsed;
        if total <= budget {
            return Ok(());
        }
        // Far over budget, the probes slow the target down, and the rates of what is kept
        // grow once it is freed (caddy: ~40x): aim under the budget by the square root of how
        // far over it the cost is (16x over: keep at most 1/4 of the budget), so that one or
        // two checks, not a chain of them 100 ms apart, bring it under, while a function paced
        // by the clock rather than by the CPU is not dropped with the hot ones.
        let goal = budget * (budget / total).min(1.0).sqrt();
        let mut order: Vec<usize> = (0..units).filter(|&u| !self.dropped_units[u]).collect();
        order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]));
        for unit in order {
            if total <= goal || cost[unit] == 0.0 {
                break;
            }
            self.drop_unit(unit, attached);
            let rate = cost[unit] / elapsed;
            total -= rate;
            let dropped = Dropped {
                function: self.plan.names[unit].clone(),
                func_id: unit as u32,
                after: now.duration_since(self.started),
                hits_per_s: hits[unit] as f64 / elapsed,
                overhead_pct: rate / 1e7,
            };
            self.say(&dropped, budget, out)?;
            self.dropped.lock().unwrap().push(dropped);
        }
        Ok(())
    }

    /// Marks `unit`'s slots dropped, then removes its links and uprobes in a thread of their
    /// own (per-site uprobes take tens of ms each).
    fn drop_unit(&mut self, unit: usize, attached: &mut Attached) {
        self.dropped_units[unit] = true;
        for (slot, &(owner, _)) in self.plan.slots.iter().enumerate() {
            if owner as usize == unit {
                self.slots.drop_slot(slot);
            }
        }
        let group = attached.take_group(unit as u32);
        std::thread::spawn(move || group.remove());
    }

    /// One line on stderr, or a JSON `guard_dropped` record among the results.
    fn say(&self, d: &Dropped, budget: f64, out: &mut impl Write) -> Result<()> {
        let budget_pct = budget / 1e7;
        if self.json {
            let line = json!({"type": "guard_dropped", "function": d.function,
                "after_s": round3(d.after.as_secs_f64()), "hits_per_s": d.hits_per_s.round(),
                "overhead_pct": round3(d.overhead_pct), "max_overhead_pct": budget_pct});
            writeln!(out, "{line}")?;
            out.flush()?;
        } else {
            eprintln!(
                "gotrace: guard: detached {} after {:.1} s: {:.0} probe hits/s cost the target ~{:.1}% of a CPU (budget {}%, --max-overhead, --no-guard)",
                d.function,
                d.after.as_secs_f64(),
                d.hits_per_s,
                d.overhead_pct,
                budget_pct
            );
        }
        Ok(())
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Whether each planned function (by id, `funcs` of them) was dropped.
pub fn dropped_ids(dropped: &DroppedList, funcs: usize) -> Vec<bool> {
    let mut ids = vec![false; funcs];
    for d in dropped.lock().unwrap().iter() {
        if let Some(id) = ids.get_mut(d.func_id as usize) {
            *id = true;
        }
    }
    ids
}

/// The summary of what the guard dropped, for a command's final output: a human block (none
/// when nothing was dropped), or a JSON `guard_summary` record. `open` (by function id): the
/// calls each dropped function still had open, `dropped_by_guard` (neither lost nor unmatched).
pub fn summary(
    dropped: &DroppedList,
    open: &[u64],
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let dropped = dropped.lock().unwrap();
    let open_of = |d: &Dropped| open.get(d.func_id as usize).copied().unwrap_or(0);
    if dropped.is_empty() {
        return Ok(());
    }
    if json {
        let list: Vec<_> = dropped
            .iter()
            .map(|d| {
                json!({"function": d.function, "after_s": round3(d.after.as_secs_f64()),
                            "hits_per_s": d.hits_per_s.round(),
                            "overhead_pct": round3(d.overhead_pct),
                            "dropped_by_guard": open_of(d)})
            })
            .collect();
        writeln!(out, "{}", json!({"type": "guard_summary", "dropped": list}))?;
    } else {
        writeln!(
            out,
            "\nThe overload guard detached {} function(s) (their counts end there; calls they had open: dropped_by_guard):",
            dropped.len()
        )?;
        for d in dropped.iter() {
            writeln!(
                out,
                "  {} after {:.1} s ({:.0} hits/s, ~{:.1}% of a CPU; dropped_by_guard {})",
                d.function,
                d.after.as_secs_f64(),
                d.hits_per_s,
                d.overhead_pct,
                open_of(d)
            )?;
        }
    }
    Ok(())
}

impl crate::cli::TraceTarget {
    /// The guard's budget in percent of one CPU: `--max-overhead`, else the default for a
    /// running process (`-p`: someone else's server, to be left unharmed); None with
    /// `--no-guard`, and for a launched command or BINARY unless `--max-overhead` is given
    /// (their counts stay exact whatever the cost).
    pub fn max_overhead_pct(&self) -> Result<Option<f64>> {
        if self.no_guard {
            return Ok(None);
        }
        match self.max_overhead {
            Some(pct) if !(pct.is_finite() && pct > 0.0) => {
                bail!("--max-overhead takes a positive percentage of one CPU (e.g. 5)")
            }
            Some(pct) => Ok(Some(pct)),
            None => Ok(self.pid.map(|_| DEFAULT_MAX_OVERHEAD_PCT)),
        }
    }
}
