//! What the session announces once the probes are live: the human banner's object, the JSON
//! `attached` line's function count, and the notes on what a plan could not probe (functions
//! skipped, inlined calls missed or counted untimed), rendered from a [`ProbePlan`].

use crate::output::count;
use crate::plan::{ProbePlan, NO_RET};

/// What the session says once the probes are live.
pub struct Announcement {
    /// The human banner's object: `Tracing {what}... Hit Ctrl-C to end.`
    pub what: String,
    /// Functions traced (the JSON `attached` line's `functions`).
    pub functions: usize,
    /// What the user should know about the plan (functions skipped, inlined calls missed),
    /// one line each on stderr.
    pub notes: Vec<String>,
}

impl Announcement {
    /// What the session announces: the functions traced and notes on the functions a glob
    /// matched but that cannot be probed and the inlined calls that are missed or untimed (one
    /// line, or one per function when `verbose`).
    pub fn of_plan(plan: &ProbePlan, patterns: &[String], verbose: bool) -> Announcement {
        let mut notes = Vec::new();
        if verbose {
            for (name, reason) in &plan.skipped {
                notes.push(format!("skipping {name}: {reason}"));
            }
        } else if !plan.skipped.is_empty() {
            let no_ret = plan.skipped.iter().filter(|(_, r)| r == NO_RET).count();
            let why = match (no_ret == plan.skipped.len(), plan.skipped.len()) {
                (true, 1) => "that never returns".to_owned(),
                (true, _) => "that never return".to_owned(),
                (false, 1) => "that cannot be probed".to_owned(),
                (false, _) => format!("that cannot be probed ({no_ret} never return)"),
            };
            notes.push(format!(
                "skipped {} {why}; --verbose lists them",
                count(plan.skipped.len(), "function")
            ));
        }
        if verbose {
            for func in &plan.funcs {
                for i in &func.instances {
                    if let Some(why) = &i.untimed {
                        notes.push(format!(
                            "{} inlined in {} at {} is counted, not timed: {why}",
                            func.name, i.parent, i.call_site
                        ));
                    }
                    for pc in &i.shared_entries {
                        notes.push(format!(
                            "{} inlined in {} at {}: {pc:#x} is shared code the call's position names, reached without a call: not probed",
                            func.name, i.parent, i.call_site
                        ));
                    }
                }
            }
            for u in &plan.unprobed {
                notes.push(format!(
                    "cannot probe {} inlined in {} at {}: {} (its calls there are missed)",
                    u.func, u.parent, u.call_site, u.reason
                ));
            }
        } else if !plan.unprobed.is_empty() {
            notes.push(format!(
                "{} of {} cannot be probed and are missed (first: {} in {}: {}); --verbose lists them",
                count(plan.unprobed.len(), "inlined call"),
                {
                    let mut funcs: Vec<&str> = plan.unprobed.iter().map(|u| u.func.as_str()).collect();
                    funcs.sort_unstable();
                    funcs.dedup();
                    count(funcs.len(), "function")
                },
                plan.unprobed[0].func,
                plan.unprobed[0].parent,
                plan.unprobed[0].reason
            ));
        }
        Announcement {
            what: format!(
                "{} for {:?}",
                count(plan.funcs.len(), "function"),
                patterns.join(" ")
            ),
            functions: plan.funcs.len(),
            notes,
        }
    }
}
