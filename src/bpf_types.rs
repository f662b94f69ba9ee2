//! The bottom layer: what the BPF programs (C) and Rust share, and nothing else. Every struct,
//! kind and limit of `src/bpf/gotrace.h`, as the Rust copy libbpf-cargo generates from
//! `src/bpf/shared.bpf.c` (Rust never restates a number or a layout of the header), marked
//! [`bytemuck::Pod`], and [`read`], the one path from a map value's or a ring record's bytes to
//! those types. It imports nothing of gotrace, so every layer above (`plan`, `session`,
//! `output`, `commands`) may use it.

/// Declares the module holding one skeleton that build.rs generated from `src/bpf/<name>.bpf.c`.
macro_rules! skeleton {
    ($(#[$doc:meta])* $vis:vis $name:ident) => {
        $(#[$doc])*
        #[allow(clippy::all, clippy::pedantic, dead_code, unused_imports, non_camel_case_types)]
        $vis mod $name {
            include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".skel.rs"));
        }
    };
}
pub(crate) use skeleton;

skeleton!(
    /// The skeleton of `src/bpf/shared.bpf.c`, never loaded: only its `types` are used.
    shared
);

pub use shared::types::*;

/// Marks generated plain-data types as [`bytemuck::Pod`].
macro_rules! plain_data {
    ($($ty:ty),* $(,)?) => {$(
        // SAFETY: a libbpf-cargo generated #[repr(C)] struct (or enum newtype) of integers,
        // integer arrays and such structs. libbpf-cargo writes every hole as an explicit
        // `__pad_N` byte array, so the type has no padding, and every bit pattern is a valid
        // value; it is Copy and 'static.
        unsafe impl bytemuck::Zeroable for $ty {}
        // SAFETY: as above.
        unsafe impl bytemuck::Pod for $ty {}
    )*};
}

plain_data!(
    site_kind,
    inline_role,
    branch_test,
    inline_site,
    g_source,
    deref_kind,
    goroutine_event_kind,
    go_layout,
    frame_key,
    frame_start,
    func_hist,
    by_key_plan,
    by_key,
    args_deref,
    args_global,
    args_field,
    args_field_step,
    args_where,
    args_fetch,
    args_event,
    args_stats,
    goroutine_event,
    goroutine_counters,
    closure_call,
    newproc_call,
    graph_event,
    graph_breakdown_event,
    graph_stats,
    sched_layout,
    sched_counters,
    sched_breakdown,
    sched_stats,
    slow_call,
    func_breakdown,
);

/// Reads a `T` from the start of `bytes` (a map value or a ring-buffer record); an error when
/// the record is shorter than `T`.
pub fn read<T: bytemuck::Pod>(bytes: &[u8]) -> anyhow::Result<T> {
    let bytes = bytes
        .get(..std::mem::size_of::<T>())
        .ok_or_else(|| anyhow::anyhow!("BPF record shorter than {}", std::any::type_name::<T>()))?;
    Ok(bytemuck::pod_read_unaligned(bytes))
}
