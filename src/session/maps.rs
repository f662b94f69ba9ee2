//! Reading and writing BPF maps as the shared types: per-CPU values, the calls still open at
//! the stop, and plan entries.

use anyhow::{Context, Result};
use bytemuck::Pod;
use libbpf_rs::{MapCore, MapFlags};

use crate::bpf_types::{self as shared, read};

/// Every CPU's copy of the value at `key` of a per-CPU array.
pub fn per_cpu<T: Pod>(map: &impl MapCore, key: u32) -> Result<Vec<T>> {
    map.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)?
        .with_context(|| format!("BPF map entry {key} missing"))?
        .iter()
        .map(|bytes| read(bytes))
        .collect()
}

/// The calls still open in a `frame_key` → `frame_start` map, as their planned functions (a
/// tail caller's call kept under its callee's is one more), of process `pid` (None: of every
/// process). Only calls opened while the gate was armed: a late call (begun after `close_ns`)
/// is no call of the trace. After the stop's drain they are `in_flight_at_end`; in a process
/// that exited they can never return (a panic that unwound them, or an exit inside them):
/// `unmatched`.
pub fn open_calls(map: &impl MapCore, pid: Option<u32>) -> Result<Vec<u32>> {
    let mut open = Vec::new();
    for key_bytes in map.keys() {
        let key: shared::frame_key = read(&key_bytes)?;
        if pid.is_some_and(|pid| key.tgid != pid) {
            continue;
        }
        if let Some(value) = map.lookup(&key_bytes, MapFlags::ANY)? {
            let call: shared::frame_start = read(&value)?;
            // A call `args --where` hid is counted as not shown already.
            if call.late & shared::frame_late::FRAME_LATE.0 == 0 && call.hidden == 0 {
                open.push(call.func_id);
            }
            if call.has_outer != 0 && call.late & shared::frame_late::FRAME_OUTER_LATE.0 == 0 {
                open.push(call.outer_func_id);
            }
        }
    }
    Ok(open)
}

/// Stores `value` at index `key` of an array map.
pub fn store<T: Pod>(map: &impl MapCore, key: u32, value: &T) -> Result<()> {
    map.update(&key.to_ne_bytes(), bytemuck::bytes_of(value), MapFlags::ANY)
        .with_context(|| format!("writing BPF map entry {key}"))
}
