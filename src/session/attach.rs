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

/// The links holding probes in place. Dropping this detaches them all.
pub struct Attached {
    _links: Vec<Link>,
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

/// Attaches the loaded object's uprobe program at every site. `pid` None: every process
/// running `binary`.
pub fn attach(
    object: &Object,
    pid: Option<u32>,
    binary: &Path,
    sites: &[Site],
) -> Result<Attached> {
    let multi = kernel::has_uprobe_multi();
    let section = if multi { MULTI_SECTION } else { SINGLE_SECTION };
    let prog = object
        .progs_mut()
        .find(|p| p.section().to_str() == Some(section))
        .with_context(|| format!("the BPF object has no SEC(\"{section}\") program"))?;
    attach_sites(&prog, multi, pid, binary, sites)
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
        return Ok(Attached { _links: vec![link] });
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
    Ok(Attached { _links: links })
}
