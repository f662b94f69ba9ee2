//! `--breakdown`'s kernel side for a program that includes `src/bpf/sched_follow.bpf.h`
//! (docs/design.md §18): its `.rodata` constants, the sizes of its maps, and its
//! `tp_btf/sched_switch` program, loaded and attached only when asked for.

use anyhow::{Context, Result};
use libbpf_rs::Link;

/// What [`configure_breakdown!`] sets: on or off, where casgstatus's arguments are, and how
/// many goroutines (and open calls' starts) the maps hold.
pub struct BreakdownConfig<'p> {
    /// The scheduler probes (None: `--breakdown` is off).
    pub plan: Option<&'p crate::plan::sched::SchedPlan>,
    /// `--max-followed`: goroutines, and open calls' starts, the maps hold.
    pub max_followed: u32,
}

/// Configures an open skeleton's sched_follow.bpf.h part: `$rodata.breakdown`, `.sched`, the
/// maps `followed`, `follow_threads`, `sched_starts`, and whether `$prog` (its sched_switch
/// program) loads at all. A macro because each skeleton has its own copies of the types.
#[macro_export]
macro_rules! configure_breakdown {
    ($rodata:expr, $open:expr, $prog:ident, $config:expr) => {{
        let config: &$crate::session::sched::BreakdownConfig = $config;
        match config.plan {
            Some(plan) => {
                let l = &plan.layout;
                $rodata.breakdown = 1;
                $rodata.sched.in_registers = l.in_registers;
                $rodata.sched.gp_sp_offset = l.gp_sp_offset;
                $rodata.sched.newval_sp_offset = l.newval_sp_offset;
                $rodata.sched.g_waitreason = l.g_waitreason;
                $rodata.sched.g_goid = l.g_goid;
                let followed = config.max_followed.max(1);
                $open.maps.followed.set_max_entries(followed)?;
                $open.maps.follow_threads.set_max_entries(followed)?;
                $open.maps.sched_starts.set_max_entries(followed)?;
            }
            None => {
                $open.progs.$prog.set_autoload(false);
            }
        }
        anyhow::Ok(())
    }};
}

/// Attaches a loaded sched_switch program when `--breakdown` planned the scheduler probes
/// (`plan`); the link must live as long as the session.
pub fn attach_sched_switch(
    plan: Option<&crate::plan::sched::SchedPlan>,
    prog: &libbpf_rs::ProgramMut<'_>,
) -> Result<Option<Link>> {
    plan.map(|_| {
        prog.attach()
            .context("attaching to the kernel's sched_switch tracepoint (--breakdown)")
    })
    .transpose()
}

/// `--breakdown`'s counters (the `sched_stat` map, summed over the CPUs), carried by every
/// command's summary (flattened into its JSON object).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SchedCounts {
    /// Calls whose goroutine could not be followed (`--max-followed` full): their time is
    /// unattributed.
    pub unfollowed: u64,
    /// Times a followed goroutine's thread ran again with no sched_switch seen for it (a
    /// kernel that does not report every switch-in): the CPU time it had since its switch-out
    /// was counted on-CPU, from the thread's own CPU clock, instead of descheduled.
    pub switch_ins_missed: u64,
}

impl SchedCounts {
    /// The counters; None without --breakdown (`on` false).
    pub fn read(on: bool, sched_stat: &impl libbpf_rs::MapCore) -> Result<Option<SchedCounts>> {
        if !on {
            return Ok(None);
        }
        let per_cpu = super::maps::per_cpu::<crate::bpf_types::sched_stats>(sched_stat, 0)?;
        Ok(Some(SchedCounts {
            unfollowed: per_cpu.iter().map(|s| s.unfollowed).sum(),
            switch_ins_missed: per_cpu.iter().map(|s| s.switch_ins_missed).sum(),
        }))
    }

    /// The human summary's tail: ", N unfollowed, M switch-ins missed ..." (empty for None).
    pub fn human_tail(counts: Option<SchedCounts>) -> String {
        counts.map_or(String::new(), |c| format!(", {c}"))
    }
}

impl std::fmt::Display for SchedCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} unfollowed, {} switch-ins missed (made good from the thread's CPU time)",
            self.unfollowed, self.switch_ins_missed
        )
    }
}
