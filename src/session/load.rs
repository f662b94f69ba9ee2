//! Opening and loading a command's BPF program. What every program shares is done here once:
//! the privilege check, the attach mode this kernel supports, `.rodata`'s `struct go_layout`
//! (where g lives, the process filter, the overload guard's layout and maps) and the ring
//! buffer's size and wake-up watermark. The
//! command adds only its own constants and map sizes ([`crate::session::Session::load`]).

use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapMut, Object, OpenObject};

use crate::bpf_types::go_layout;
use crate::gobin::runtime::g_location::RuntimeFacts;
use crate::session::guard::GuardPlan;
use crate::session::{attach, drain, kernel};

/// A skeleton the session opens and loads: implemented for each one by `program!` (each
/// skeleton generates its own copy of the shared types).
pub trait Program<'obj>: SkelBuilder<'obj> + Default {
    /// The skeleton's `.rodata`: `layout`, then the command's own constants.
    type Rodata: 'obj;
    /// Takes `.rodata` out of the open skeleton's maps, so that a command sets its constants
    /// and sizes its maps at once (loading does not read it from there).
    fn take_rodata(open: &mut Self::Output) -> Option<&'obj mut Self::Rodata>;
    /// Writes `layout` into `.rodata`.
    fn set_layout(rodata: &mut Self::Rodata, layout: &go_layout);
    /// Sizes the ring buffer (`events`) and sets the fill past which the BPF side wakes its
    /// consumer; an error for a program without a ring buffer.
    fn set_ring(open: &mut Self::Output, rodata: &mut Self::Rodata, bytes: u32) -> Result<()>;
}

/// What the session uses of a loaded skeleton while it runs.
pub trait Loaded {
    /// The loaded object, whose program the session attaches.
    fn object(&self) -> &Object;
    /// The ring buffer the program streams records through, if it has one.
    fn ring(&self) -> Option<&MapMut<'_>>;
    /// The map of calls in flight (`frame_key` → `frame_start`), if the program pairs entries
    /// with returns: at a traced process's exit, the calls still in it never return.
    fn calls_in_flight(&self) -> Option<&MapMut<'_>>;
}

/// The open skeleton `P` returns before loading.
pub type Open<'obj, P> = <P as SkelBuilder<'obj>>::Output;
/// The loaded skeleton of `P`.
pub type Skeleton<'obj, P> = <Open<'obj, P> as OpenSkel<'obj>>::Output;

/// What every program's `.rodata` starts with, and the ring buffer's size.
pub struct Common<'a> {
    /// Where the programs find g and its stack bounds.
    pub runtime: &'a RuntimeFacts,
    /// The traced process, or None for every process running the binary.
    pub pid: Option<u32>,
    /// The ring buffer's size in bytes, for programs that have one.
    pub ring_bytes: Option<u32>,
    /// The overload guard's plan, for a command under one (its maps sized, its slots laid
    /// out); None: nothing counted.
    pub guard: Option<&'a GuardPlan>,
}

/// Opens `P` into `object`, keeps the program of the attach mode this kernel supports, fills
/// what every program shares from `common`, lets `configure` set the command's own
/// constants and map sizes, and loads it.
pub fn load<'obj, P: Program<'obj>>(
    object: &'obj mut MaybeUninit<OpenObject>,
    common: &Common<'_>,
    configure: impl FnOnce(&mut P::Rodata, &mut Open<'obj, P>) -> Result<()>,
) -> Result<Skeleton<'obj, P>> {
    kernel::require_bpf_privileges()?;
    let mut open = P::default()
        .open(object)
        .context("opening the BPF program")?;
    attach::choose_program(open.open_object_mut());
    let rodata = P::take_rodata(&mut open).context("BPF program has no .rodata")?;
    let (g_source, tls_offset) = common.runtime.g_source.to_bpf();
    let mut layout = go_layout {
        g_source,
        tls_offset,
        ptr_size: common.runtime.ptr_size,
        g_stack_hi: common.runtime.g_stack_hi,
        filter_tgid: common.pid.unwrap_or(0),
        guard_inline_base: 0,
        guard_stride: 0,
        guard_row: 0,
    };
    if let Some(guard) = common.guard {
        guard.configure(&mut layout, open.open_object_mut())?;
    }
    P::set_layout(rodata, &layout);
    if let Some(bytes) = common.ring_bytes {
        P::set_ring(&mut open, rodata, bytes)?;
    }
    configure(rodata, &mut open)?;
    open.load()
        .context("the kernel refused the BPF program (set GOTRACE_LIBBPF_LOG=1 to see why)")
}

/// Implements [`Program`] and [`Loaded`] for skeleton module `$skel` (builder `$builder`,
/// loaded skeleton `$loaded`); `ring` names its ring buffer map, `calls` its calls-in-flight
/// map, when it has them.
macro_rules! program {
    ($skel:ident: $builder:ident => $loaded:ident $(, ring: $ring:ident)? $(, calls: $calls:ident)?) => {
        impl<'obj> Program<'obj> for crate::session::bpf::$skel::$builder {
            type Rodata = crate::session::bpf::$skel::types::rodata;

            fn take_rodata(open: &mut Self::Output) -> Option<&'obj mut Self::Rodata> {
                open.maps.rodata_data.take()
            }

            fn set_layout(rodata: &mut Self::Rodata, layout: &go_layout) {
                let to = &mut rodata.layout;
                to.g_source.0 = layout.g_source.0;
                to.tls_offset = layout.tls_offset;
                to.ptr_size = layout.ptr_size;
                to.g_stack_hi = layout.g_stack_hi;
                to.filter_tgid = layout.filter_tgid;
                to.guard_inline_base = layout.guard_inline_base;
                to.guard_stride = layout.guard_stride;
                to.guard_row = layout.guard_row;
            }

            fn set_ring(
                open: &mut Self::Output,
                rodata: &mut Self::Rodata,
                bytes: u32,
            ) -> Result<()> {
                program!(@ring $skel, open, rodata, bytes $(, $ring)?)
            }
        }

        impl Loaded for crate::session::bpf::$skel::$loaded<'_> {
            fn object(&self) -> &Object {
                libbpf_rs::skel::Skel::object(self)
            }

            fn ring(&self) -> Option<&MapMut<'_>> {
                program!(@some $(&self.maps.$ring)?)
            }

            fn calls_in_flight(&self) -> Option<&MapMut<'_>> {
                program!(@some $(&self.maps.$calls)?)
            }
        }
    };
    (@ring $skel:ident, $open:ident, $rodata:ident, $bytes:ident, $ring:ident) => {{
        $rodata.wakeup_watermark = drain::wakeup_watermark($bytes);
        $open.maps.$ring.set_max_entries($bytes)?;
        Ok(())
    }};
    (@ring $skel:ident, $open:ident, $rodata:ident, $bytes:ident) => {{
        let _ = ($open, $rodata, $bytes);
        Err(anyhow::anyhow!("the {} program has no ring buffer", stringify!($skel)))
    }};
    (@some) => {
        None
    };
    (@some $map:expr) => {
        Some($map)
    };
}

program!(funclat: FunclatSkelBuilder => FunclatSkel, calls: starts);
program!(args: ArgsSkelBuilder => ArgsSkel, ring: events, calls: starts);
program!(goroutines: GoroutinesSkelBuilder => GoroutinesSkel, ring: events);
program!(graph: GraphSkelBuilder => GraphSkel, ring: events);
