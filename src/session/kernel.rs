//! What the running kernel and this process may do: the privilege and feature checks every
//! tracing command makes before loading, and whether multi-uprobe links exist (probed by trying).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use anyhow::{bail, Result};

/// Capability bits (linux/capability.h) that allow loading tracing BPF programs.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails with one clear line unless this process may load uprobe BPF programs on this kernel.
pub fn require_bpf_privileges() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        bail!("tracing needs root (or the CAP_BPF and CAP_PERFMON capabilities): run gotrace with sudo");
    }
    require_kernel_features()
}

/// Fails with one clear line when the kernel lacks what every gotrace program needs.
fn require_kernel_features() -> Result<()> {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!("this kernel has no BTF (/sys/kernel/btf/vmlinux): gotrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
    }
    if !std::path::Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        bail!("this kernel has no uprobes (/sys/bus/event_source/devices/uprobe): gotrace needs CONFIG_UPROBE_EVENTS=y");
    }
    Ok(())
}

/// Whether to attach with one multi-uprobe link (Linux 6.6+, or a backport). Setting the
/// environment variable GOTRACE_PER_SITE_UPROBES forces one perf-event uprobe per site instead
/// (the path older kernels take; also how the tests exercise it). The kernel is asked once per
/// process ([`probe_uprobe_multi`]).
pub fn has_uprobe_multi() -> bool {
    static PROBED: OnceLock<bool> = OnceLock::new();
    std::env::var_os("GOTRACE_PER_SITE_UPROBES").is_none()
        && *PROBED.get_or_init(probe_uprobe_multi)
}

/// Whether the kernel creates multi-uprobe links, found by trying, as cilium/ebpf's
/// `haveBPFLinkUprobeMulti` does (a kernel version says nothing of a backport or of a kernel
/// built without it): load `r0 = 0; exit` as a kprobe program expecting
/// `BPF_TRACE_UPROBE_MULTI`, then ask for such a link on `/`. A kernel that has them gets as
/// far as the path and refuses a directory with EBADF; one that does not refuses the attach
/// type with EINVAL (or the program, with E2BIG, before the attach type existed).
fn probe_uprobe_multi() -> bool {
    use libbpf_rs::libbpf_sys as sys;
    let instruction = |code| sys::bpf_insn {
        code,
        ..Default::default()
    };
    // BPF_ALU64 | BPF_MOV | BPF_K (r0 = 0), then BPF_JMP | BPF_EXIT.
    let program = [instruction(0xb7), instruction(0x95)];
    let mut load = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    // SAFETY: every pointer is to a live local (NUL-terminated names, a 2-instruction array)
    // and `load` is a sized, zero-initialised options struct, as libbpf requires.
    let fd = unsafe {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_KPROBE,
            c"gotrace_upm".as_ptr(),
            c"GPL".as_ptr(),
            program.as_ptr(),
            program.len() as _,
            &mut load,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: bpf_prog_load returned a new fd that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(fd) };
    let offsets: [std::ffi::c_ulong; 1] = [0];
    let mut link = sys::bpf_link_create_opts {
        sz: std::mem::size_of::<sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    link.__bindgen_anon_1.uprobe_multi = sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
        path: c"/".as_ptr(),
        offsets: offsets.as_ptr(),
        cnt: 1,
        ..Default::default()
    };
    // SAFETY: the program fd is open; `link` is sized and points to live locals.
    let fd =
        unsafe { sys::bpf_link_create(prog.as_raw_fd(), 0, sys::BPF_TRACE_UPROBE_MULTI, &link) };
    if fd >= 0 {
        // A link on a directory: not expected, but it means the kernel has them.
        // SAFETY: bpf_link_create returned a new fd that nothing else owns.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        return true;
    }
    -fd == libc::EBADF
}

#[cfg(test)]
mod tests {
    /// The probe agrees with the kernel's own symbol table: uprobe-multi links exist where
    /// the kernel has the function that creates them (needs root, like every probe).
    #[test]
    fn uprobe_multi_probe_agrees_with_kallsyms() {
        if super::require_bpf_privileges().is_err() {
            eprintln!("skipped: needs root");
            return;
        }
        let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
        let has_attach = kallsyms
            .lines()
            .any(|line| line.ends_with(" bpf_uprobe_multi_link_attach"));
        assert_eq!(super::probe_uprobe_multi(), has_attach);
    }
}
