//! Placing the probes: every gotrace program exists twice, as SEC("uprobe.multi") (one link
//! for every site, Linux 6.6+) and SEC("uprobe") (one perf-event uprobe per site); this module
//! loads the one the kernel supports and attaches it at every [`Site`] with its cookie.

use std::path::Path;

use anyhow::{Context, Result};
use libbpf_rs::{Link, Object, OpenObject, ProgramMut, UprobeMultiOpts, UprobeOpts};

use crate::plan::sites::Site;
use crate::session::kernel;

/// The section of the programs attached with one multi-uprobe link.
const MULTI_SECTION: &str = "uprobe.multi";
/// The section of the programs attached with one perf-event uprobe per site.
const SINGLE_SECTION: &str = "uprobe";

/// The links holding probes in place, in groups the overload guard may detach one by one
/// (one group per function, or one for all). Dropping this detaches them all.
pub struct Attached {
    pub groups: Vec<Vec<Link>>,
}

/// Threads that release the links at the end (see [`release`]).
const RELEASE_THREADS: usize = 256;

impl Drop for Attached {
    fn drop(&mut self) {
        release(
            std::mem::take(&mut self.groups)
                .into_iter()
                .flatten()
                .collect(),
        );
    }
}

/// Releases `links` from many threads at once: each release waits for a tasks-trace RCU grace
/// period (~25-50 ms here) outside any lock, and concurrent releases share one, so the 1,377
/// per-function links of a guarded `net/http.*` go in well under a second, not a minute.
pub fn release(links: Vec<Link>) {
    if links.len() < 2 {
        return;
    }
    let per_thread = links.len().div_ceil(RELEASE_THREADS);
    let mut links = links.into_iter();
    std::thread::scope(|scope| loop {
        let chunk: Vec<Link> = links.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        scope.spawn(move || drop(chunk));
    });
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
/// group of sites. `pid` None: every process running `binary`.
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
    let groups = groups
        .iter()
        .map(|sites| attach_sites(&prog, multi, pid, binary, sites))
        .collect::<Result<Vec<_>>>()?;
    Ok(Attached { groups })
}

/// Attaches `prog` at every site: with one multi-uprobe link when `multi` (the program was
/// loaded as SEC "uprobe.multi"), else one perf-event uprobe per site. No sites, no link.
pub fn attach_sites(
    prog: &ProgramMut<'_>,
    multi: bool,
    pid: Option<u32>,
    binary: &Path,
    sites: &[Site],
) -> Result<Vec<Link>> {
    let pid = pid.map_or(-1, |p| p as i32);
    if sites.is_empty() {
        return Ok(Vec::new());
    }
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
        return Ok(vec![link]);
    }
    let links = sites
        .iter()
        .map(|site| {
            let opts = UprobeOpts {
                cookie: site.cookie,
                ..Default::default()
            };
            prog.attach_uprobe_with_opts(pid, binary, site.file_offset as usize, opts)
                .with_context(|| {
                    format!(
                        "attaching a uprobe at offset {:#x} of {}",
                        site.file_offset,
                        binary.display()
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(links)
}
