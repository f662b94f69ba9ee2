//! Exact edges (docs/design.md §14): the gate every program asks before a hit counts
//! (`struct gate` in src/bpf/gotrace.h, where the phases and the counting rule are described).
//! Entries count from `open_ns` (written once every link is attached) until `close_ns`
//! (written at the stop); then the calls in flight may return, bounded by `--drain-timeout`;
//! `shut_ns` ends every hit before the results are read. The instants are on the events' clock
//! (CLOCK_MONOTONIC, which `bpf_ktime_get_ns` reads) and chosen a few ms ahead, so that they are
//! the exact edges the JSON `attached` and `summary` lines report.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::{AsRawLibbpf, MapCore, MapType, Object};

use crate::bpf_types as shared;

/// The section (and map) of the gate in every program (go_runtime.bpf.h).
const GATE_SECTION: &str = ".data.gate";

/// The maps whose keys `gate.starts` counts: the map of starts of funclat and args
/// (calls_in_flight.bpf.h) and goroutines' newproc1 calls. Other LRU maps of a program
/// (funclat's `--by` keys, `--breakdown`'s followed goroutines) are not counted there.
const STARTS_MAPS: [&str; 2] = ["starts", "calls"];

/// How far ahead an edge is written: the store must land before the instant comes.
const MARGIN: Duration = Duration::from_millis(5);

/// How often the drain looks at the calls still open.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// Free nodes the kernel's LRU lists keep per CPU (kernel/bpf/bpf_lru_list.h,
/// LOCAL_FREE_TARGET): eviction may begin while that many per CPU are still unused.
const LRU_LOCAL_FREE_TARGET: i64 = 128;

/// CLOCK_MONOTONIC now, in ns: the clock of `bpf_ktime_get_ns` and of every `ts_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes to it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// The gate of a loaded program, through libbpf's mmapped copy of its ".data.gate" map.
pub struct Gate {
    gate: *mut shared::gate,
    /// Keys of the program's map of starts that may mean eviction (struct gate).
    start_limit: i64,
}

impl Gate {
    /// Finds the gate of `object` and the capacity of its LRU map of starts ([`STARTS_MAPS`];
    /// a program without one, like graph's plain hash, never evicts). The object must outlive the gate.
    pub fn find(object: &Object) -> Result<Gate> {
        let mut gate = None;
        let mut lru_capacity = None;
        for map in object.maps() {
            if map.name().to_str() == Some(GATE_SECTION) {
                let mut size: libbpf_rs::libbpf_sys::size_t = 0;
                // SAFETY: the map is a loaded internal map; libbpf keeps its mmapped value
                // (re-mapped onto the kernel's map at load) for the object's lifetime.
                let ptr = unsafe {
                    libbpf_rs::libbpf_sys::bpf_map__initial_value(
                        map.as_libbpf_object().as_ptr(),
                        &mut size,
                    )
                };
                if ptr.is_null() || (size as usize) < std::mem::size_of::<shared::gate>() {
                    bail!("the BPF object's {GATE_SECTION} map is not mapped");
                }
                gate = Some(ptr.cast::<shared::gate>());
            } else if map.map_type() == MapType::LruHash
                && STARTS_MAPS.contains(&map.name().to_str().unwrap_or(""))
            {
                lru_capacity = Some(i64::from(map.max_entries()));
            }
        }
        let gate = gate.with_context(|| format!("the BPF object has no {GATE_SECTION} map"))?;
        let cpus = libbpf_rs::num_possible_cpus().map_or(1, |n| n as i64);
        let start_limit = lru_capacity.map_or(i64::MAX, |capacity| {
            capacity - (capacity / 8).max((cpus + 1) * LRU_LOCAL_FREE_TARGET + cpus)
        });
        Ok(Gate { gate, start_limit })
    }

    /// Writes one of the user-space fields (a naturally aligned u64/i64: one store).
    fn write(&self, field: impl FnOnce(*mut shared::gate) -> *mut u64, value: u64) {
        // SAFETY: `self.gate` points at the live mmapped gate (see `find`); the BPF side reads
        // these fields with volatile loads.
        unsafe { std::ptr::write_volatile(field(self.gate), value) };
    }

    /// Writes an edge `MARGIN` ahead and waits until it has come; returns its instant. Says
    /// on stderr if the store landed late (the edge may then be inexact by that much).
    fn set_edge(&self, field: impl FnOnce(*mut shared::gate) -> *mut u64) -> u64 {
        let at = monotonic_ns() + MARGIN.as_nanos() as u64;
        self.write(field, at);
        let landed = monotonic_ns();
        if landed >= at {
            eprintln!(
                "gotrace: the tracing edge was written {} µs late; calls at that edge may be miscounted",
                (landed - at) / 1000
            );
        }
        // One reading per turn: the clock may pass `at` between a check and a second reading.
        loop {
            let now = monotonic_ns();
            if now >= at {
                break at;
            }
            std::thread::sleep(Duration::from_nanos(at - now));
        }
    }

    /// Arms the gate once every link is attached: entries count from the returned instant.
    pub fn arm(&self) -> u64 {
        // SAFETY: as in `write`; start_limit is read by the BPF side only once armed.
        unsafe { std::ptr::write_volatile(&raw mut (*self.gate).start_limit, self.start_limit) };
        // SAFETY: only the address of a field of the live gate (see `find`); `write` stores to it.
        self.set_edge(|g| unsafe { &raw mut (*g).open_ns })
    }

    /// The instant `arm` returned (entries count from it).
    pub fn open_ns(&self) -> u64 {
        // SAFETY: as in `write`; only user space writes this field.
        unsafe { std::ptr::read_volatile(&raw const (*self.gate).open_ns) }
    }

    /// Stops admitting entries; returns the instant.
    pub fn close(&self) -> u64 {
        // SAFETY: only the address of a field of the live gate (see `find`); `write` stores to it.
        self.set_edge(|g| unsafe { &raw mut (*g).close_ns })
    }

    /// Keys of the map of starts holding a call opened while armed.
    fn open_calls(&self) -> i64 {
        // SAFETY: as in `write`; the BPF side updates these with atomic adds.
        unsafe {
            std::ptr::read_volatile(&raw const (*self.gate).starts)
                - std::ptr::read_volatile(&raw const (*self.gate).late)
        }
    }

    /// Waits until every call opened while armed has returned, or `timeout` has passed;
    /// `idle` (the session's drain of the kernel's buffers) runs meanwhile.
    pub fn drain(
        &self,
        timeout: Duration,
        idle: &mut dyn FnMut(Duration) -> Result<()>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.open_calls() > 0 && Instant::now() < deadline {
            idle(DRAIN_POLL)?;
        }
        Ok(())
    }

    /// Ends every hit: from here on the maps only change by the probes already running, which
    /// finish before this returns.
    pub fn shut(&self) {
        // SAFETY: only the address of a field of the live gate (see `find`); `write` stores to it.
        self.write(|g| unsafe { &raw mut (*g).shut_ns }, monotonic_ns());
        std::thread::sleep(Duration::from_millis(1));
    }
}
