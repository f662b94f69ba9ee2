//! Placing the probes: every gotrace program exists twice, as SEC("uprobe.multi") (one link
//! for every site, Linux 6.6+) and SEC("uprobe") (one perf-event uprobe per site); this module
//! loads the one the kernel supports and attaches it at every [`Site`] with its cookie.
//!
//! Per-site removal is slow, in two parts. Releasing a site's BPF link waits for a tasks-trace
//! RCU grace period (perf_event_detach_bpf_prog; ~25-50 ms) outside any lock, so links are
//! released from many threads at once ([`Attached::disarm`]). Closing the uprobe perf event
//! ends in perf_uprobe_destroy, which holds the global event_mutex across RCU grace periods
//! (tracepoint_synchronize_unregister; from 6.12 also uprobe_unregister_sync): the kernel
//! removes one uprobe per 34 ms (6.1, emulated guest) to 80 ms (6.18 here), and no number of
//! closing threads overlaps them. Expedited grace periods shorten that (6.1: 3 ms each; see
//! [`Expedited`]). So gotrace opens each site's perf event itself and keeps its own
//! descriptor of it: disarming releases the links (the program leaves every site) and the
//! results are printed; the uprobes are removed after, by [`Attached::remove`], measured.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::{
    Link, MapCore, MapFlags, MapHandle, Object, OpenObject, PerfEventOpts, ProgramMut,
    UprobeMultiOpts,
};

use crate::plan::sites::Site;
use crate::session::kernel;

/// The section of the programs attached with one multi-uprobe link.
const MULTI_SECTION: &str = "uprobe.multi";
/// The section of the programs attached with one perf-event uprobe per site.
const SINGLE_SECTION: &str = "uprobe";

/// Threads that release the links (see [`release_links`]).
const DISARM_THREADS: usize = 256;

/// Per-site probes above which gotrace says, before attaching, what removing them will cost.
const ANNOUNCE_REMOVAL_ABOVE: usize = 256;

/// The links holding probes in place. Dropping this detaches them all (links first).
pub struct Attached {
    /// Per-site path: the object's `disarmed` flag (go_runtime.bpf.h).
    disarmed: Option<MapHandle>,
    links: Vec<Link>,
    /// Per-site path: gotrace's own descriptor of each site's perf event, which keeps the
    /// uprobe in place after its link is gone (see the module's doc).
    events: Vec<OwnedFd>,
    /// The group (overload-guard unit: a function) of each link, and of each event.
    link_groups: Vec<u32>,
    event_groups: Vec<u32>,
}

/// What removing the per-site uprobes cost.
pub struct Removal {
    /// Per-site uprobes removed.
    pub probes: usize,
    /// Wall time releasing the links and closing the perf events (removing the uprobes).
    pub took: Duration,
}

impl Attached {
    /// Takes the links and uprobes of groups `taken` out (the overload guard detaches them:
    /// drop the result, or [`Attached::remove`] it, off the session's thread).
    pub fn take_groups(&mut self, taken: &[u32]) -> Attached {
        fn split<T>(
            items: &mut Vec<T>,
            groups: &mut Vec<u32>,
            taken: &[u32],
        ) -> (Vec<T>, Vec<u32>) {
            let (mut out, mut out_groups) = (Vec::new(), Vec::new());
            let (mut kept, mut kept_groups) = (Vec::new(), Vec::new());
            for (item, g) in std::mem::take(items)
                .into_iter()
                .zip(std::mem::take(groups))
            {
                if taken.contains(&g) {
                    out.push(item);
                    out_groups.push(g);
                } else {
                    kept.push(item);
                    kept_groups.push(g);
                }
            }
            (*items, *groups) = (kept, kept_groups);
            (out, out_groups)
        }
        let (links, link_groups) = split(&mut self.links, &mut self.link_groups, taken);
        let (events, event_groups) = split(&mut self.events, &mut self.event_groups, taken);
        Attached {
            disarmed: None,
            link_groups,
            event_groups,
            links,
            events,
        }
    }

    /// Disarms: from now on the probes count and send nothing, so the results are final.
    /// Multi-uprobe path: the one link is released (quick). Per-site path: the programs'
    /// `disarmed` flag is set; links and uprobes stay until [`Attached::remove`] (slow).
    pub fn disarm(&mut self) {
        match &self.disarmed {
            Some(flag) => {
                let (zero, one) = (0u32.to_ne_bytes(), 1u32.to_ne_bytes());
                if flag.update(&zero, &one, MapFlags::ANY).is_err() {
                    release_links(std::mem::take(&mut self.links));
                }
            }
            None => release_links(std::mem::take(&mut self.links)),
        }
    }

    /// Disarms, then removes the per-site uprobes (one at a time in the kernel: see the
    /// module's doc) and says how long that took; None on the multi-uprobe path.
    pub fn remove(mut self) -> Option<Removal> {
        self.disarm();
        if self.events.is_empty() {
            return None;
        }
        let probes = self.events.len();
        let expedited = Expedited::start(probes);
        let started = Instant::now();
        release_links(std::mem::take(&mut self.links));
        self.events.clear();
        let took = started.elapsed();
        drop(expedited);
        Some(Removal { probes, took })
    }
}

/// Releases links. Each release waits for a tasks-trace RCU grace period
/// (perf_event_detach_bpf_prog, ~25-50 ms); on 6.18 that wait is outside any lock and
/// concurrent releases share one (730 sites: ~0.1 s from 256 threads, ~20 s from one).
fn release_links(links: Vec<Link>) {
    if links.len() < 2 {
        return;
    }
    let per_thread = links.len().div_ceil(DISARM_THREADS);
    let mut links = links.into_iter();
    std::thread::scope(|scope| loop {
        let chunk: Vec<Link> = links.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        scope.spawn(move || drop(chunk));
    });
}

impl Removal {
    /// The line gotrace prints (stderr) once the per-site uprobes are gone, when that took
    /// long enough to be noticed.
    pub fn report(&self) -> Option<String> {
        (self.took >= Duration::from_millis(500)).then(|| {
            format!(
                "gotrace: removed {} per-site uprobes in {:.1} s ({:.0} ms each: without \
                 uprobe-multi (Linux 6.6) the kernel removes them one at a time)",
                self.probes,
                self.took.as_secs_f64(),
                self.took.as_secs_f64() * 1000.0 / self.probes as f64
            )
        })
    }
}

/// Marks for loading only the programs of the attach mode this kernel supports.
pub fn choose_program(object: &mut OpenObject) {
    let multi = kernel::has_uprobe_multi();
    for mut prog in object.progs_mut() {
        match prog.section().to_str() {
            Some(MULTI_SECTION) => prog.set_autoload(multi),
            Some(SINGLE_SECTION) => prog.set_autoload(!multi),
            _ => {}
        }
    }
}

/// Attaches the loaded object's uprobe program at every site, with links of their own for each
/// group of sites (the overload guard's units). `pid` None: every process running `binary`.
pub fn attach(
    object: &Object,
    pid: Option<u32>,
    binary: &Path,
    groups: &[Vec<Site>],
) -> Result<Attached> {
    let multi = kernel::has_uprobe_multi();
    let section = if multi { MULTI_SECTION } else { SINGLE_SECTION };
    let prog = object
        .progs_mut()
        .find(|p| p.section().to_str() == Some(section))
        .with_context(|| format!("the BPF object has no SEC(\"{section}\") program"))?;
    if multi && groups.len() > 1 {
        raise_nofile(groups.len())?;
    }
    let mut attached = Attached {
        disarmed: None,
        links: Vec::new(),
        events: Vec::new(),
        link_groups: Vec::new(),
        event_groups: Vec::new(),
    };
    for (group, sites) in groups.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
        let part = attach_sites(&prog, multi, pid, binary, sites)?;
        let group = group as u32;
        attached
            .link_groups
            .extend(std::iter::repeat_n(group, part.links.len()));
        attached
            .event_groups
            .extend(std::iter::repeat_n(group, part.events.len()));
        attached.links.extend(part.links);
        attached.events.extend(part.events);
    }
    if !multi {
        attached.disarmed = object
            .maps()
            .find(|map| map.name().to_str() == Some("disarmed"))
            .map(|map| MapHandle::try_from(&map))
            .transpose()?;
    }
    Ok(attached)
}

/// Attaches `prog` at every site: with one multi-uprobe link when `multi` (the program was
/// loaded as SEC "uprobe.multi"), else one perf-event uprobe per site.
pub fn attach_sites(
    prog: &ProgramMut<'_>,
    multi: bool,
    pid: Option<u32>,
    binary: &Path,
    sites: &[Site],
) -> Result<Attached> {
    let pid = pid.map_or(-1, |p| p as i32);
    if multi {
        let opts = UprobeMultiOpts {
            offsets: sites.iter().map(|s| s.file_offset as usize).collect(),
            cookies: sites.iter().map(|s| s.cookie).collect(),
            ..Default::default()
        };
        let link = prog
            .attach_uprobe_multi_with_opts(pid, binary, "", opts)
            .with_context(|| {
                format!("attaching {} uprobes to {}", sites.len(), binary.display())
            })?;
        return Ok(Attached {
            disarmed: None,
            links: vec![link],
            events: Vec::new(),
            link_groups: vec![0],
            event_groups: Vec::new(),
        });
    }
    // Three descriptors per site while attached: the perf event, libbpf's copy of it, the link.
    raise_nofile(3 * sites.len())?;
    if sites.len() > ANNOUNCE_REMOVAL_ABOVE {
        announce_removal_cost(pid, binary, sites)?;
    }
    let mut attached = Attached {
        disarmed: None,
        links: Vec::with_capacity(sites.len()),
        events: Vec::with_capacity(sites.len()),
        link_groups: vec![0; sites.len()],
        event_groups: vec![0; sites.len()],
    };
    for site in sites {
        let context = || {
            format!(
                "attaching a uprobe at offset {:#x} of {}",
                site.file_offset,
                binary.display()
            )
        };
        let event = open_uprobe(pid, binary, site.file_offset).with_context(context)?;
        let for_libbpf = event.try_clone().with_context(context)?;
        let opts = PerfEventOpts {
            cookie: site.cookie,
            ..Default::default()
        };
        // libbpf owns (and closes at detach) the copy; `event` keeps the uprobe past that.
        let link = prog
            .attach_perf_event_with_opts(for_libbpf.as_raw_fd(), opts)
            .with_context(context)?;
        std::mem::forget(for_libbpf);
        attached.events.push(event);
        attached.links.push(link);
    }
    Ok(attached)
}

/// The kernel's switch that makes every RCU grace period an expedited one.
const RCU_EXPEDITED: &str = "/sys/kernel/rcu_expedited";

/// Expedited RCU grace periods while the per-site uprobes are removed: each removal waits for
/// normal ones under the global event_mutex (on 6.1: 34 ms each normally, 3 ms expedited,
/// measured in the emulated guest; 6.18 also waits for tasks-trace ones, which this does not
/// shorten: 80 -> 55 ms). System-wide while it lasts (other waiters' grace periods are
/// expedited too, at the cost of IPIs to every CPU), restored after; GOTRACE_NO_EXPEDITE=1
/// leaves the setting alone.
struct Expedited {
    /// The value to write back, when gotrace changed it.
    restore: Option<String>,
}

impl Expedited {
    fn start(probes: usize) -> Expedited {
        let mut restore = None;
        if probes > 1 && std::env::var_os("GOTRACE_NO_EXPEDITE").is_none() {
            if let Ok(before) = std::fs::read_to_string(RCU_EXPEDITED) {
                if before.trim() == "0" && std::fs::write(RCU_EXPEDITED, "1").is_ok() {
                    restore = Some(before);
                }
            }
        }
        Expedited { restore }
    }
}

impl Drop for Expedited {
    fn drop(&mut self) {
        if let Some(before) = self.restore.take() {
            let _ = std::fs::write(RCU_EXPEDITED, before.trim());
        }
    }
}

/// perf_event_open's flag for a close-on-exec descriptor (linux/perf_event.h).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1): all a uprobe event needs.
#[repr(C)]
#[derive(Default)]
struct UprobeAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// The binary's path (a pointer to a C string).
    config1: u64,
    /// The probe's file offset.
    config2: u64,
}

/// Opens a uprobe perf event at `offset` of `binary` (pid -1: every process), as libbpf does.
fn open_uprobe(pid: i32, binary: &Path, offset: u64) -> Result<OwnedFd> {
    let kind: u32 = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")
        .context("reading the uprobe PMU's type")?
        .trim()
        .parse()
        .context("parsing the uprobe PMU's type")?;
    let path = std::ffi::CString::new(binary.as_os_str().as_encoded_bytes())?;
    let attr = UprobeAttr {
        kind,
        size: std::mem::size_of::<UprobeAttr>() as u32,
        config1: path.as_ptr() as u64,
        config2: offset,
        ..Default::default()
    };
    let cpu = if pid == -1 { 0 } else { -1 };
    // SAFETY: attr is a valid perf_event_attr prefix of the size it states; path outlives the
    // call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const UprobeAttr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("perf_event_open (uprobe)");
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Raises RLIMIT_NOFILE's soft limit (up to the hard one) so that `more` descriptors fit
/// beside those open now; one line saying how many are needed when the hard limit is too low.
fn raise_nofile(more: usize) -> Result<()> {
    let open = std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count());
    let needed = (open + more + 64) as libc::rlim_t;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        bail!(
            "per-site uprobes (no uprobe-multi before Linux 6.6) need {needed} open files here, \
             but RLIMIT_NOFILE's hard limit is {}: raise it (ulimit -Hn {needed}) or trace fewer \
             functions",
            limit.rlim_max
        );
    }
    limit.rlim_cur = needed;
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
    }
    Ok(())
}

/// Says (stderr) what removing the per-site uprobes will cost, measured by placing and
/// removing one at the first site three times, as [`Attached::remove`] will.
fn announce_removal_cost(pid: i32, binary: &Path, sites: &[Site]) -> Result<()> {
    const SAMPLES: u32 = 3;
    let expedited = Expedited::start(sites.len());
    let mut took = Duration::ZERO;
    for _ in 0..SAMPLES {
        let probe = open_uprobe(pid, binary, sites[0].file_offset)
            .context("measuring the removal of one uprobe")?;
        let started = Instant::now();
        drop(probe);
        took += started.elapsed();
    }
    drop(expedited);
    let each = took / SAMPLES;
    eprintln!(
        "gotrace: {} per-site uprobes (no uprobe-multi before Linux 6.6): removing them will \
         take about {:.0} s after the results are printed ({:.0} ms each, measured; the kernel \
         removes them one at a time)",
        sites.len(),
        each.as_secs_f64() * sites.len() as f64,
        each.as_secs_f64() * 1000.0
    );
    Ok(())
}
