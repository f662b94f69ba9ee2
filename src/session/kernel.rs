//! What the running kernel and this process may do: the privilege and feature checks every
//! tracing command makes before loading, and whether multi-uprobe links exist.

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

/// Whether to attach with one multi-uprobe link (Linux 6.6+). Setting the environment
/// variable GOTRACE_PER_SITE_UPROBES forces one perf-event uprobe per site instead (the path
/// older kernels take; also how the tests exercise it).
pub fn has_uprobe_multi() -> bool {
    std::env::var_os("GOTRACE_PER_SITE_UPROBES").is_none()
        && kernel_release().is_some_and(|(major, minor)| (major, minor) >= (6, 6))
}

/// The running kernel's (major, minor) release.
fn kernel_release() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
