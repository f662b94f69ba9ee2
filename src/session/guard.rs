//! The overload guard (docs/design.md §16, DTrace's deadman, Datadog's circuit breaker):
//! every hit of every probe is counted in the kernel per function and site class, each CPU in
//! a row of its own (`guard_hits`, `enum guard_layout` in src/bpf/gotrace.h); every
//! [`CHECK_EVERY`] the guard
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
use libbpf_rs::{MapCore, Object, OpenObject};
use serde_json::json;

use crate::bpf_types::{go_layout, guard_drop, guard_layout, site_kind};
use crate::output::lines::ExactU64;
use crate::plan::sites::{InlineSites, Site};
use crate::plan::ProbePlan;
use crate::session::attach::Attached;
use crate::session::cpu::{self, Baseline, CpuTime};

/// How often the guard looks at the hits.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The default budget: the probes may cost the target 5 % of one CPU.
pub const DEFAULT_MAX_OVERHEAD_PCT: f64 = 5.0;

/// What one hit costs the target, in ns, by the kernel's handling of the probed instruction.
/// Measured constants (bench/entry_site.sh's per-call overhead of the flag-checked and
/// single-stepped entries on the 2-core 6.18 VM, docs/internals.md); where the target's
/// kernel time measures what its hits cost, the guard scales them to it (docs/design.md §16).
/// An entry whose instruction class the plan does not record, a RET and an inlined call's edge
/// are priced as single-stepped: overstating a cost only drops sooner.
const EMULATED_NS: f64 = 800.0;
const STEPPED_NS: f64 = 6_000.0;

const SLOTS_PER_FUNC: u32 = guard_layout::GUARD_SLOTS_PER_FUNC.0;
const SLOT_ENTRY: u32 = guard_layout::GUARD_SLOT_ENTRY.0;
const SLOT_OTHER: u32 = guard_layout::GUARD_SLOT_OTHER.0;
const ROW_ALIGN: u32 = guard_layout::GUARD_ROW_ALIGN.0;

/// The guard's view of a plan: which function each slot and each site belongs to, and what a
/// hit of each slot costs.
#[derive(Debug, Clone)]
pub struct GuardPlan {
    /// Function names, by planned function id (the unit the guard detaches).
    pub names: Vec<String>,
    /// For each slot (`enum guard_layout`): its function and the cost of one hit, in ns.
    pub slots: Vec<(u32, f64)>,
    /// `go_layout.guard_inline_base`: the slot of inlined-call site 0.
    pub inline_base: u32,
    /// The budget in ns of probe cost per second; None: `--no-guard` (one link for all sites).
    pub budget_ns_per_s: Option<f64>,
    /// By function id: never detached (see [`GuardPlan::pin`]).
    pinned: Vec<bool>,
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
            pinned: vec![false; funcs as usize],
        }
    }

    /// Functions (by id) the guard never detaches, whatever they cost: those a command's
    /// output cannot do without (graph's ROOT, where its trees begin).
    pub fn pin(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            if let Some(pinned) = self.pinned.get_mut(id as usize) {
                *pinned = true;
            }
        }
    }

    /// Slots per CPU row of `guard_hits`: every slot, rounded up to whole cache lines; 0
    /// without a budget (nothing is counted).
    fn stride(&self) -> u32 {
        match self.budget_ns_per_s {
            Some(_) => (self.slots.len() as u32).max(1).next_multiple_of(ROW_ALIGN),
            None => 0,
        }
    }

    /// Before load: sets `layout`'s guard fields and sizes the guard's maps in `object` (a
    /// row of hits per possible CPU, a dropped mark per slot).
    pub fn configure(&self, layout: &mut go_layout, object: &mut OpenObject) -> Result<()> {
        let stride = self.stride();
        layout.guard_inline_base = self.inline_base;
        layout.guard_stride = stride;
        // One row shared by every CPU, as the hits were once counted: only for
        // bench/guard_counter.sh's same-run comparison.
        let shared = std::env::var_os("GOTRACE_GUARD_SHARED_ROW").is_some();
        layout.guard_row = if shared { 0 } else { stride };
        if stride == 0 {
            return Ok(());
        }
        let cpus = u32::try_from(libbpf_rs::num_possible_cpus()?)?;
        let hits = stride
            .checked_mul(cpus)
            .context("too many guard slots for this machine's CPUs")?;
        for mut map in object.maps_mut() {
            match map.name().to_str() {
                Some("guard_hits") => map.set_max_entries(hits)?,
                Some("guard_dropped") => map.set_max_entries(stride)?,
                _ => {}
            }
        }
        Ok(())
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
    /// The function's name.
    pub function: String,
    /// Its planned function id.
    pub func_id: u32,
    /// Since the probes were attached.
    pub after: Duration,
    /// When, on the events' clock (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Its hits per second over the last check.
    pub hits_per_s: f64,
    /// What its probes cost the target then, in percent of one CPU.
    pub overhead_pct: f64,
    /// What one of its hits cost the target then, as measured (docs/design.md §16), in ns.
    pub ns_per_hit: f64,
}

/// The functions a session's guard dropped, shared with the command's renderer.
pub type DroppedList = Arc<Mutex<Vec<Dropped>>>;

/// A BPF_F_MMAPABLE array map of `T`s, mapped into this process.
struct Mapped<T> {
    ptr: *mut T,
    len: usize,
    bytes: usize,
}

impl<T> Mapped<T> {
    fn map(object: &Object, name: &str) -> Result<Mapped<T>> {
        use std::os::fd::{AsFd, AsRawFd};
        let map = object
            .maps()
            .find(|m| m.name().to_str() == Some(name))
            .with_context(|| format!("the BPF object has no {name} map"))?;
        let len = map.max_entries() as usize;
        let page = 4096;
        let bytes = (len * std::mem::size_of::<T>()).div_ceil(page) * page;
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
            bail!("mapping {name}: {}", std::io::Error::last_os_error());
        }
        Ok(Mapped {
            ptr: ptr.cast(),
            len,
            bytes,
        })
    }
}

impl<T> Drop for Mapped<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}

/// The guard's maps: each CPU's row of hits, and the dropped marks.
struct Slots {
    hits: Mapped<u64>,
    drops: Mapped<guard_drop>,
    /// Slots per row.
    stride: usize,
}

impl Slots {
    fn map(object: &Object) -> Result<Slots> {
        let hits = Mapped::map(object, "guard_hits")?;
        let drops: Mapped<guard_drop> = Mapped::map(object, "guard_dropped")?;
        Ok(Slots {
            stride: drops.len,
            hits,
            drops,
        })
    }

    /// The hits of `slot`, summed over every CPU's row.
    fn hits(&self, slot: usize) -> u64 {
        debug_assert!(slot < self.stride);
        (slot..self.hits.len)
            .step_by(self.stride)
            // SAFETY: `index` is inside the mapping; the BPF side updates it with atomic adds.
            .map(|index| unsafe { std::ptr::read_volatile(self.hits.ptr.add(index)) })
            .fold(0u64, u64::wrapping_add)
    }

    fn drop_slot(&self, slot: usize) {
        debug_assert!(slot < self.drops.len);
        // SAFETY: `slot` is inside the mapping; the BPF side reads `dropped` with a volatile
        // load.
        unsafe {
            std::ptr::write_volatile(
                std::ptr::addr_of_mut!((*self.drops.ptr.add(slot)).dropped),
                1,
            )
        }
    }
}

/// Measured cost over classes' cost above which a measurement is taken for noise: a stepped
/// hit would cost 0.6 ms.
const MAX_SCALE: f64 = 100.0;

/// The share of the target's CPU time the probes must take for it to measure their cost.
const MIN_PROBE_SHARE: f64 = 0.5;

/// The share of the target's kernel time its hits must come to, priced by class, for that
/// time to measure their cost.
const MIN_PRICED_SHARE: f64 = 0.1;

/// An epoch longer than this starts afresh (a target's load changes).
const EPOCH_MAX: Duration = Duration::from_secs(1);

/// The hits since an epoch began (the guard's start, the end of its last removal, or
/// [`EPOCH_MAX`] ago), and the target's CPU time then.
struct Epoch {
    at: Instant,
    cpu: Option<CpuTime>,
    /// By function: its hits priced at its site classes' costs, in ns.
    priced_ns: Vec<f64>,
    /// By function: its hits.
    hits: Vec<u64>,
}

impl Epoch {
    fn start(pid: Option<u32>, units: usize) -> Epoch {
        Epoch {
            at: Instant::now(),
            cpu: pid.and_then(CpuTime::read),
            priced_ns: vec![0.0; units],
            hits: vec![0; units],
        }
    }
}

/// The scale of the classes' prices the guard trusts when an epoch cannot measure it, and the
/// most an epoch may measure: [`MAX_SCALE`] until the first drop, then what was measured
/// then, with every probe in place. Once the costliest functions are gone the probes' time is
/// small and the target's own kernel time (its system calls, when no baseline tells them
/// apart) would be put down to the few hits left, pricing them far too high.
#[derive(Debug, Clone, Copy)]
struct Scales {
    trusted: f64,
    ceiling: f64,
}

/// CPUs a target must use for the guard to assume the probes hold its work back (a target
/// below it, say one calling a traced function 1,000 times a second and sleeping otherwise,
/// would not call it more often without the probes).
const BUSY_CPUS: f64 = 0.5;

/// Clock ticks of user time an epoch must hold for the target's work, and so how much its
/// calls would grow once others are dropped, to be measured: /proc's reading is a tick off at
/// most, which over fewer ticks (the first 100 ms check of a target whose probes take nearly
/// all its CPU) can make a function called 300 times a second look as if it would cost several
/// percent once the hot one is gone.
const MIN_WORK_TICKS: f64 = 5.0;

/// What the probes cost the target over an epoch, measured (docs/design.md §16).
struct Pricing {
    /// Seconds the epoch lasted.
    elapsed: f64,
    /// The measured cost of a hit over its class's cost (at least 1).
    scale: f64,
    /// The target's CPU seconds outside the probes in the epoch; None when its CPU time is
    /// unknown (every process running a binary), or when its user time is under
    /// [`MIN_WORK_TICKS`] (too few ticks to tell its work; the kept functions are priced at
    /// their cost now, and a later check drops any that grew).
    work: Option<f64>,
    /// The target's CPU seconds per second without the probes, at least.
    free_rate: f64,
}

impl Pricing {
    /// The epoch's measure (docs/design.md §16). The target's kernel time beyond what its
    /// work takes there untraced (`baseline`) is the probes'; over the hits priced by class it
    /// gives the scale of every price; its user time is its work. /proc counts in clock ticks
    /// (10 ms), so a difference of two readings may be a tick off: the probes' time is taken a
    /// tick short (the scale is not overstated) and the work half a tick long (a target whose
    /// user time did not reach a tick did about that much work).
    fn of(epoch: &Epoch, now: Option<CpuTime>, baseline: Baseline, scales: Scales) -> Pricing {
        let Scales { trusted, ceiling } = scales;
        let priced = epoch.priced_ns.iter().sum::<f64>() / 1e9;
        let Some((elapsed, user, system)) = now.zip(epoch.cpu).map(|(n, e)| n.since(&e)) else {
            return Pricing {
                elapsed: epoch.at.elapsed().as_secs_f64(),
                scale: trusted,
                work: None,
                free_rate: 0.0,
            };
        };
        let (elapsed, tick) = (elapsed.max(1e-3), cpu::tick_s());
        let per_user = baseline.system_per_user;
        let probes = system - tick - per_user * (user + tick);
        // Measured only where the probes take most of the target's CPU time: elsewhere, and
        // where the hits' classes price them far below the kernel time, that time may be the
        // target's own (system calls the baseline did not see, or none was taken).
        let measurable =
            probes >= MIN_PROBE_SHARE * (user + system) && priced >= MIN_PRICED_SHARE * system;
        let scale = if measurable {
            (probes / priced).clamp(1.0, ceiling)
        } else {
            trusted
        };
        Pricing {
            elapsed,
            scale,
            work: (user >= MIN_WORK_TICKS * tick).then(|| (user + tick / 2.0) * (1.0 + per_user)),
            free_rate: (user + system).max(scale * priced) / elapsed,
        }
    }

    /// What functions whose hits priced by class come to `priced_ns` cost the target per
    /// second now, in CPU seconds.
    fn rate(&self, priced_ns: f64) -> f64 {
        self.scale * priced_ns / 1e9 / self.elapsed
    }

    /// What they will cost per second once the others are gone: their calls grow with the
    /// target's work, which grows back to what the CPU it uses now allows
    /// (`free_rate * c / (work + c)`, c their cost in the epoch). Without the target's CPU
    /// time, their cost now.
    /// A target using less than [`BUSY_CPUS`] is not held back by the probes: its calls will
    /// not grow once others are gone, and their cost now is the prediction.
    fn predicted(&self, priced_ns: f64) -> f64 {
        let cost = self.scale * priced_ns / 1e9;
        match self.work {
            Some(work) if cost > 0.0 && self.free_rate >= BUSY_CPUS => {
                self.free_rate * cost / (work + cost)
            }
            _ => self.rate(priced_ns),
        }
    }
}

/// The guard of one session.
pub struct Guard {
    plan: GuardPlan,
    slots: Slots,
    /// Each slot's hits at the last check.
    last: Vec<u64>,
    last_at: Instant,
    epoch: Epoch,
    pid: Option<u32>,
    baseline: Baseline,
    started: Instant,
    json: bool,
    dropped: DroppedList,
    dropped_units: Vec<bool>,
    /// The last measured scale of the classes' prices (`Pricing::scale`; 1 until measured)
    /// and the most a later epoch may measure.
    scales: Scales,
}

impl Guard {
    /// The guard of loaded `object` for `plan`, from now on (call once every link is live);
    /// `pid`: the target whose CPU time measures the cost (None: every process running the
    /// binary, priced by class alone), `baseline`: how it used the CPU before the probes.
    pub fn start(
        object: &Object,
        plan: GuardPlan,
        target: (Option<u32>, Baseline),
        json: bool,
        dropped: DroppedList,
    ) -> Result<Guard> {
        let slots = Slots::map(object)?;
        if slots.stride < plan.slots.len() {
            bail!(
                "guard_dropped has {} slots, the plan {}",
                slots.stride,
                plan.slots.len()
            );
        }
        let last = (0..plan.slots.len()).map(|s| slots.hits(s)).collect();
        let units = plan.names.len();
        let (pid, baseline) = target;
        Ok(Guard {
            plan,
            slots,
            last,
            last_at: Instant::now(),
            epoch: Epoch::start(pid, units),
            pid,
            baseline,
            started: Instant::now(),
            json,
            dropped,
            dropped_units: vec![false; units],
            scales: Scales {
                trusted: 1.0,
                ceiling: MAX_SCALE,
            },
        })
    }

    /// Adds the hits since the last check to the epoch.
    fn count(&mut self) {
        for (slot, &(unit, ns)) in self.plan.slots.iter().enumerate() {
            let total = self.slots.hits(slot);
            let delta = total.wrapping_sub(self.last[slot]);
            self.last[slot] = total;
            if let Some(priced) = self.epoch.priced_ns.get_mut(unit as usize) {
                *priced += delta as f64 * ns;
                self.epoch.hits[unit as usize] += delta;
            }
        }
    }

    /// Every [`CHECK_EVERY`]: measures what the probes cost over the epoch and, when what the
    /// kept functions will cost is over the budget, drops the costliest (their links and
    /// uprobes taken from `attached`) until it is within it (a function that fits the budget is kept).
    pub fn check(&mut self, attached: &mut Attached, out: &mut impl Write) -> Result<()> {
        let Some(budget) = self.plan.budget_ns_per_s.map(|ns| ns / 1e9) else {
            return Ok(());
        };
        let now = Instant::now();
        if now.duration_since(self.last_at) < CHECK_EVERY {
            return Ok(());
        }
        self.last_at = now;
        self.count();
        let units = self.plan.names.len();
        let now_cpu = self.pid.and_then(CpuTime::read);
        let pricing = Pricing::of(&self.epoch, now_cpu, self.baseline, self.scales);
        self.scales.trusted = pricing.scale;
        let kept = |dropped: &[bool], epoch: &Epoch| -> f64 {
            (0..units)
                .filter(|&u| !dropped[u])
                .map(|u| epoch.priced_ns[u])
                .sum()
        };
        let mut priced = kept(&self.dropped_units, &self.epoch);
        if pricing.predicted(priced) <= budget {
            if now.duration_since(self.epoch.at) >= EPOCH_MAX {
                self.epoch = Epoch::start(self.pid, units);
            }
            return Ok(());
        }
        let mut order: Vec<usize> = (0..units)
            .filter(|&u| !self.dropped_units[u] && !self.plan.pinned[u])
            .collect();
        order.sort_by(|&a, &b| self.epoch.priced_ns[b].total_cmp(&self.epoch.priced_ns[a]));
        let mut drop = Vec::new();
        for unit in order {
            let cost = self.epoch.priced_ns[unit];
            if pricing.predicted(priced) <= budget || cost == 0.0 {
                break;
            }
            priced -= cost;
            drop.push(unit as u32);
            let hits = self.epoch.hits[unit];
            let dropped = Dropped {
                function: self.plan.names[unit].clone(),
                func_id: unit as u32,
                after: now.duration_since(self.started),
                ts_ns: crate::session::gate::monotonic_ns(),
                hits_per_s: hits as f64 / pricing.elapsed,
                overhead_pct: pricing.rate(cost) * 100.0,
                ns_per_hit: pricing.scale * cost / hits.max(1) as f64,
            };
            self.say(&dropped, budget * 100.0, out)?;
            self.dropped.lock().unwrap().push(dropped);
        }
        if !drop.is_empty() {
            if !self.dropped_units.contains(&true) {
                self.scales.ceiling = pricing.scale;
            }
            self.drop_units(&drop, attached);
            self.epoch = Epoch::start(self.pid, units);
        }
        Ok(())
    }

    /// Marks `units`' slots dropped, then removes their links and uprobes in a thread of
    /// their own (per-site uprobes take tens of ms each).
    fn drop_units(&mut self, units: &[u32], attached: &mut Attached) {
        for &unit in units {
            self.dropped_units[unit as usize] = true;
        }
        for (slot, &(owner, _)) in self.plan.slots.iter().enumerate() {
            if self.dropped_units[owner as usize] {
                self.slots.drop_slot(slot);
            }
        }
        let groups = attached.take_groups(units);
        std::thread::spawn(move || groups.remove());
    }

    /// One line on stderr, or a JSON `guard_dropped` record among the results.
    fn say(&self, d: &Dropped, budget_pct: f64, out: &mut impl Write) -> Result<()> {
        if self.json {
            let line = json!({"type": "guard_dropped", "ts_ns": ExactU64(d.ts_ns), "function": d.function,
                "after_s": round3(d.after.as_secs_f64()), "hits_per_s": d.hits_per_s.round(),
                "overhead_pct": round3(d.overhead_pct), "ns_per_hit": d.ns_per_hit.round(),
                "max_overhead_pct": budget_pct});
            writeln!(out, "{line}")?;
            out.flush()?;
        } else {
            eprintln!(
                "gotrace: guard: detached {} after {:.1} s: {:.0} probe hits/s (~{:.1} µs each) cost the target ~{:.1}% of a CPU (budget {}%, --max-overhead, --no-guard)",
                d.function,
                d.after.as_secs_f64(),
                d.hits_per_s,
                d.ns_per_hit / 1e3,
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

/// The names of the functions dropped so far, in the order they were.
pub fn dropped_names(dropped: &DroppedList) -> Vec<String> {
    let dropped = dropped.lock().unwrap();
    dropped.iter().map(|d| d.function.clone()).collect()
}

/// The calls still open at the stop (`open_calls`, their planned function ids, `funcs` of
/// them) of the functions the guard kept, and, by function id, the count of those of the
/// functions it dropped (`dropped_by_guard`: their probes were gone before they returned).
pub fn split_open(dropped: &DroppedList, open_calls: &[u32], funcs: usize) -> (Vec<u32>, Vec<u64>) {
    let mut ids = vec![false; funcs];
    for d in dropped.lock().unwrap().iter() {
        if let Some(id) = ids.get_mut(d.func_id as usize) {
            *id = true;
        }
    }
    let mut open_dropped = vec![0u64; funcs];
    let mut kept = Vec::with_capacity(open_calls.len());
    for &func_id in open_calls {
        match ids.get(func_id as usize) {
            Some(true) => open_dropped[func_id as usize] += 1,
            _ => kept.push(func_id),
        }
    }
    (kept, open_dropped)
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
                json!({"function": d.function, "ts_ns": ExactU64(d.ts_ns),
                       "after_s": round3(d.after.as_secs_f64()),
                       "hits_per_s": d.hits_per_s.round(),
                       "overhead_pct": round3(d.overhead_pct),
                       "ns_per_hit": d.ns_per_hit.round(),
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
