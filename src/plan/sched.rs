//! `--breakdown`'s probes of the Go scheduler (docs/design.md §18): `runtime.casgstatus`, and
//! `runtime.entersyscall` / `runtime.exitsyscall` where the release bypasses it
//! ([`crate::gobin::runtime::sched_abi`]), each at its first instruction (all are
//! `//go:nosplit`) with a `SITE_SCHED` cookie naming which one; the BPF `sched_layout` that
//! says where casgstatus's arguments and the g fields are; the wait-reason names.

use anyhow::{bail, Context, Result};

use crate::bpf_types::{sched_layout, sched_site, site_kind};
use crate::gobin::runtime::sched_abi::{self, CasgstatusAbi};
use crate::gobin::runtime::wait_reasons::WaitReasons;
use crate::gobin::GoBinary;
use crate::plan::sites::{cookie, Site};

/// The scheduler probes of one binary and what the BPF side and the renderer need with them.
#[derive(Debug, Clone)]
pub struct SchedPlan {
    /// The probes: casgstatus, and entersyscall / exitsyscall where the release needs them.
    pub sites: Vec<Site>,
    /// Where casgstatus's arguments and the g fields are, for the BPF side.
    pub layout: sched_layout,
    /// The binary's wait-reason names (None: a stripped binary of a release the table lacks).
    pub reasons: Option<WaitReasons>,
}

/// Plans the scheduler probes of `bin` when `--breakdown` asks for them.
pub fn plan_if(wanted: bool, bin: &GoBinary<'_>) -> Result<Option<SchedPlan>> {
    wanted.then(|| plan(bin)).transpose()
}

/// Plans the scheduler probes of `bin`.
pub fn plan(bin: &GoBinary<'_>) -> Result<SchedPlan> {
    let mut functions = vec![("runtime.casgstatus", sched_site::SCHED_CASGSTATUS)];
    if sched_abi::syscalls_bypass_casgstatus(bin) {
        functions.push(("runtime.entersyscall", sched_site::SCHED_ENTERSYSCALL));
        functions.push(("runtime.exitsyscall", sched_site::SCHED_EXITSYSCALL));
    }
    let names: Vec<String> = functions.iter().map(|(n, _)| (*n).to_owned()).collect();
    let planned = crate::plan::plan(bin, &names, false)
        .context("--breakdown probes the runtime's scheduler")?;
    let mut sites = Vec::new();
    for (name, which) in functions {
        let func = planned
            .funcs
            .iter()
            .find(|f| f.name == name)
            .with_context(|| format!("--breakdown needs {name}, which the binary lacks"))?;
        if func.entry_kind != site_kind::SITE_ENTRY || func.entry_site != func.entry_offset {
            bail!("{name} checks its stack in this binary (it is nosplit in every Go release gotrace knows), so --breakdown cannot probe it once per call");
        }
        sites.push(Site {
            file_offset: func.entry_site,
            cookie: cookie(which.0, site_kind::SITE_SCHED, 0),
        });
    }
    let runtime = bin.runtime_layout(bin.dwarf()?)?;
    let (in_registers, gp_sp_offset, newval_sp_offset) = match sched_abi::casgstatus_abi(bin) {
        CasgstatusAbi::Registers => (1, 0, 0),
        CasgstatusAbi::Stack {
            gp_sp_offset,
            newval_sp_offset,
        } => (0, gp_sp_offset, newval_sp_offset),
    };
    let layout = sched_layout {
        in_registers,
        gp_sp_offset,
        newval_sp_offset,
        g_waitreason: u32::try_from(runtime.g_waitreason).context("g.waitreason offset")?,
        g_goid: u32::try_from(runtime.g_goid).context("g.goid offset")?,
        ..Default::default()
    };
    Ok(SchedPlan {
        sites,
        layout,
        reasons: bin.wait_reasons(),
    })
}

impl SchedPlan {
    /// The wait-reason names by waitReason byte (empty when the binary has none).
    pub fn reason_names(&self) -> Vec<String> {
        self.reasons
            .as_ref()
            .map(|r| r.names.clone())
            .unwrap_or_default()
    }
}
