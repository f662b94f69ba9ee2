//! Reading and writing BPF maps as the shared types: per-CPU values, the calls still open when
//! a traced process exits, and plan entries.

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

/// The calls of process `pid` still open in a `frame_key` → `frame_start` map: after the
/// process exited they can never return (a panic that unwound them, or an exit inside them).
pub fn open_calls(map: &impl MapCore, pid: u32) -> Result<Vec<shared::frame_start>> {
    let mut open = Vec::new();
    for key_bytes in map.keys() {
        let key: shared::frame_key = read(&key_bytes)?;
        if key.tgid != pid {
            continue;
        }
        if let Some(value) = map.lookup(&key_bytes, MapFlags::ANY)? {
            open.push(read(&value)?);
        }
    }
    Ok(open)
}

/// Stores `value` at index `key` of an array map.
pub fn store<T: Pod>(map: &impl MapCore, key: u32, value: &T) -> Result<()> {
    map.update(&key.to_ne_bytes(), bytemuck::bytes_of(value), MapFlags::ANY)
        .with_context(|| format!("writing BPF map entry {key}"))
}
