//! Probe planning: which functions a command's patterns name, and for each the file offsets of
//! its entry site and every RET site, plus the runtime facts the BPF programs need. Plain
//! data, computed from [`GoBinary`] alone (testable without root).

pub mod capture;
pub mod inlined;
pub mod reach;
pub mod sched;
pub mod signature;
pub mod sites;

use anyhow::{bail, Context, Result};
use std::collections::HashSet;

use crate::bpf_types::{g_source as bpf_g_source, site_kind};
use crate::gobin::code::disasm::{DecodedFunction, EntryCheck};
use crate::gobin::runtime::g_location::{GSource, RuntimeFacts};
use crate::gobin::GoBinary;
use inlined::{InstancePlanner, PlannedInstance, UnprobedInstance};

impl GSource {
    /// The `enum g_source` value and TLS offset for the BPF programs.
    pub fn to_bpf(self) -> (bpf_g_source, i32) {
        match self {
            GSource::R14 => (bpf_g_source::G_FROM_R14, 0),
            GSource::FsTls(off) => (bpf_g_source::G_FROM_FS_TLS, off),
            GSource::GsTls(off) => (bpf_g_source::G_FROM_GS_TLS, off),
        }
    }
}

/// One function to probe.
#[derive(Debug, Clone)]
pub struct PlannedFunc {
    /// Index in [`ProbePlan::funcs`], carried in every cookie.
    pub id: u32,
    /// The function's Go name, as the pclntab spells it.
    pub name: String,
    /// Whether the function has code of its own (false: it exists only inlined, and the
    /// entry and RET fields below are empty and unused).
    pub out_of_line: bool,
    /// Its inlined calls (planned only when asked for, see [`Inlined`]).
    pub instances: Vec<PlannedInstance>,
    /// Link-time vaddr of its entry (0 when not `out_of_line`).
    pub entry: u64,
    /// File offset of the entry instruction (sites' cookies carry their offset from it).
    pub entry_offset: u64,
    /// File offset of the entry probe site.
    pub entry_site: u64,
    /// How the entry site counts: `SITE_ENTRY` (every hit) or `SITE_ENTRY_IF_NOT_TAKEN` (the
    /// stack check's JBE, counted when not taken).
    pub entry_kind: site_kind,
    /// File offsets of every RET.
    pub ret_sites: Vec<u64>,
    /// File offsets of the RETs of the functions it tail-calls (transitively), where its
    /// calls end when they leave by a tail call (planned only when RETs are wanted).
    pub tail_ret_sites: Vec<u64>,
}

/// The bench knob naming the entry site: `legacy` (the first instruction after the stack
/// check, as before issue 9) or `flag-checked` (the default: the cheapest exact site).
pub const ENTRY_SITE_ENV: &str = "GOTRACE_ENTRY_SITE";

/// Which entry site planning uses (see [`ENTRY_SITE_ENV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryChoice {
    Legacy,
    FlagChecked,
}

impl EntryChoice {
    fn from_env() -> Result<Self> {
        match std::env::var(ENTRY_SITE_ENV).as_deref() {
            Err(_) | Ok("flag-checked") => Ok(Self::FlagChecked),
            Ok("legacy") => Ok(Self::Legacy),
            Ok(other) => bail!(
                "{ENTRY_SITE_ENV}={other:?} is not an entry site (use legacy or flag-checked, or unset it)"
            ),
        }
    }

    /// The entry vaddr and its site kind.
    fn site(self, decoded: &DecodedFunction) -> (u64, site_kind) {
        match (self, decoded.entry.check) {
            (Self::Legacy, _) => (decoded.entry_probe, site_kind::SITE_ENTRY),
            (Self::FlagChecked, EntryCheck::None) => (decoded.entry.addr, site_kind::SITE_ENTRY),
            (Self::FlagChecked, EntryCheck::NotTakenJbe) => {
                (decoded.entry.addr, site_kind::SITE_ENTRY_IF_NOT_TAKEN)
            }
        }
    }
}

/// At most this many functions are followed through a chain of tail calls.
const MAX_TAIL_TARGETS: usize = 64;

/// The vaddrs of the RETs where a call of `decoded`'s function ends when it leaves by a tail
/// call: the RETs of its tail-call targets, and of theirs, in address order.
fn tail_ret_vaddrs(bin: &GoBinary<'_>, decoded: &DecodedFunction) -> Result<Vec<u64>> {
    let mut rets: Vec<u64> = tail_callees(bin, decoded)?
        .into_iter()
        .flat_map(|(_, callee)| callee.ret_sites)
        .collect();
    rets.sort_unstable();
    rets.dedup();
    Ok(rets)
}

/// The functions `decoded`'s tail calls reach, and theirs, each with its decoded code. A
/// target that is not a function entry is not followed (the decoder offers only jumps out of
/// the function).
pub fn tail_callees<'b, 'data>(
    bin: &'b GoBinary<'data>,
    decoded: &DecodedFunction,
) -> Result<
    Vec<(
        &'b crate::gobin::format::pclntab::Func<'data>,
        DecodedFunction,
    )>,
> {
    let mut queue: Vec<u64> = decoded.tail_calls.iter().map(|t| t.target).collect();
    let mut seen: Vec<u64> = Vec::new();
    let mut callees = Vec::new();
    while let Some(target) = queue.pop() {
        if seen.contains(&target) {
            continue;
        }
        if seen.len() == MAX_TAIL_TARGETS {
            bail!("its tail calls reach more than {MAX_TAIL_TARGETS} functions");
        }
        seen.push(target);
        let Some(callee) = bin.funcs.iter().find(|f| f.entry == target) else {
            continue;
        };
        let sites = bin
            .probe_sites(callee)
            .with_context(|| format!("its tail-call target {}", callee.name))?;
        queue.extend(sites.tail_calls.iter().map(|t| t.target));
        callees.push((callee, sites));
    }
    Ok(callees)
}

/// What the patterns resolved to.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// The functions to probe, at their `id`s.
    pub funcs: Vec<PlannedFunc>,
    /// Functions a glob matched but that cannot be probed, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Inlined calls of the planned functions that cannot be probed (their calls are missed).
    pub unprobed: Vec<UnprobedInstance>,
    /// Where the BPF side finds g and its stack bounds in this binary.
    pub runtime: RuntimeFacts,
}

/// Whether a plan includes the inlined calls of the functions it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inlined {
    /// Only the functions' own code (`--no-inlined`, and every command but funclat and args).
    No,
    /// Every inlined instance too; a function that exists only inlined is matched.
    Yes,
}

/// Why a function without a RET instruction (of its own or of a tail-call target) is skipped.
pub const NO_RET: &str =
    "has no RET instruction and no tail call to a function with one (it never returns), so its return cannot be probed";

/// Compiles an optional glob given as `what` on the command line (e.g. "--filter pattern"),
/// with the one-line error every command gives for bad glob syntax.
pub fn optional_glob(pattern: Option<&str>, what: &str) -> Result<Option<glob::Pattern>> {
    pattern
        .map(glob::Pattern::new)
        .transpose()
        .with_context(|| format!("bad {what} (glob syntax: * ? [abc])"))
}

/// One pattern of the command line, compiled once: a glob, or the exact name of a function.
struct NameMatcher<'p> {
    pattern: &'p str,
    /// None: the pattern names one function (it uses no glob syntax).
    glob: Option<glob::Pattern>,
}

impl<'p> NameMatcher<'p> {
    fn new(pattern: &'p str) -> Result<Self> {
        let is_glob =
            pattern.contains(['*', '?']) || (pattern.contains('[') && !pattern.contains("[...]"));
        let glob = is_glob
            .then(|| glob::Pattern::new(pattern))
            .transpose()
            .with_context(|| format!("bad pattern {pattern:?} (glob syntax: * ? [abc])"))?;
        Ok(NameMatcher { pattern, glob })
    }

    fn matches(&self, name: &str) -> bool {
        match &self.glob {
            Some(glob) => glob.matches(name),
            None => name == self.pattern,
        }
    }
}

/// Resolves `patterns` against the binary (the functions' own code only). A pattern naming one
/// function fails with a clear message when that function is unknown, inlined away, or has no
/// RET (when `need_ret`); a glob that matches nothing fails; glob matches that cannot be
/// probed are skipped and listed.
pub fn plan(bin: &GoBinary<'_>, patterns: &[String], need_ret: bool) -> Result<ProbePlan> {
    plan_with(bin, patterns, need_ret, Inlined::No)
}

/// [`plan`], with the matched functions' inlined calls when `inlined` says so.
pub fn plan_with(
    bin: &GoBinary<'_>,
    patterns: &[String],
    need_ret: bool,
    inlined: Inlined,
) -> Result<ProbePlan> {
    let runtime = RuntimeFacts::of(bin)?;
    let mut funcs: Vec<PlannedFunc> = Vec::new();
    let mut skipped = Vec::new();
    let mut planner = FuncPlanner::new(bin, need_ret, &mut funcs, &mut skipped)?;
    let mut instances = InstancePlanner::default();
    let mut unprobed = Vec::new();
    let matchers = patterns
        .iter()
        .map(|pattern| NameMatcher::new(pattern))
        .collect::<Result<Vec<_>>>()?;
    let inline_table = match inlined {
        Inlined::No => None,
        Inlined::Yes => {
            Some(bin.inline_table_matching(&|name| matchers.iter().any(|m| m.matches(name))))
        }
    };
    let inline_table = inline_table.as_ref();
    let out_of_line_names: HashSet<&str> = bin.funcs.iter().map(|f| f.name).collect();
    for matcher in &matchers {
        let (pattern, exact) = (matcher.pattern, matcher.glob.is_none());
        let name_matches = |name: &str| matcher.matches(name);
        let matched: Vec<_> = bin.funcs.iter().filter(|f| name_matches(f.name)).collect();
        // Functions that exist only inlined, in name order.
        let mut inline_only: Vec<&str> = inline_table
            .map(|t| {
                t.inlined_functions()
                    .filter(|name| name_matches(name) && !out_of_line_names.contains(name))
                    .collect()
            })
            .unwrap_or_default();
        inline_only.sort_unstable();
        if matched.is_empty() && inline_only.is_empty() {
            bail!("{}", not_found_message(bin, pattern, exact));
        }
        for name in inline_only {
            if planner.funcs.iter().any(|p| p.name == name) {
                continue;
            }
            planner.funcs.push(PlannedFunc {
                id: u32::try_from(planner.funcs.len()).context("too many functions")?,
                name: name.to_owned(),
                out_of_line: false,
                instances: Vec::new(),
                entry: 0,
                entry_offset: 0,
                entry_site: 0,
                entry_kind: site_kind::SITE_ENTRY,
                ret_sites: Vec::new(),
                tail_ret_sites: Vec::new(),
            });
        }
        for func in matched {
            planner.add(func, exact)?;
        }
    }
    if let Some(table) = inline_table {
        for func in &mut funcs {
            for instance in table.of(&func.name) {
                match instances.plan(bin, &instance) {
                    Ok(planned) => func.instances.push(planned),
                    Err(missed) => unprobed.push(missed),
                }
            }
        }
        funcs.retain(|f| f.out_of_line || !f.instances.is_empty());
        for (id, func) in funcs.iter_mut().enumerate() {
            func.id = u32::try_from(id).context("too many functions")?;
        }
    }
    if funcs.is_empty() {
        let reasons: Vec<String> = skipped
            .iter()
            .map(|(n, r)| format!("{n} {r}"))
            .chain(
                unprobed
                    .iter()
                    .map(|u| format!("{} inlined in {}: {}", u.func, u.parent, u.reason)),
            )
            .take(3)
            .collect();
        bail!(
            "no function matched by {patterns:?} can be probed ({})",
            reasons.join("; ")
        );
    }
    Ok(ProbePlan {
        funcs,
        skipped,
        unprobed,
        runtime,
    })
}

/// Plans out-of-line functions into `funcs`, each once (by entry): probed, or when it cannot
/// be, an error if the user named it `exact`ly, else it goes to `skipped` with the reason.
struct FuncPlanner<'p, 'b, 'd> {
    bin: &'b GoBinary<'d>,
    need_ret: bool,
    entry_choice: EntryChoice,
    /// Entries of the functions planned (or skipped) so far: a set, as globs match thousands.
    entries: HashSet<u64>,
    funcs: &'p mut Vec<PlannedFunc>,
    skipped: &'p mut Vec<(String, String)>,
}

impl<'p, 'b, 'd> FuncPlanner<'p, 'b, 'd> {
    /// A planner adding to `funcs` and `skipped`, which already hold a plan's functions.
    fn new(
        bin: &'b GoBinary<'d>,
        need_ret: bool,
        funcs: &'p mut Vec<PlannedFunc>,
        skipped: &'p mut Vec<(String, String)>,
    ) -> Result<Self> {
        Ok(FuncPlanner {
            bin,
            need_ret,
            entry_choice: EntryChoice::from_env()?,
            entries: funcs
                .iter()
                .filter(|f| f.out_of_line)
                .map(|f| f.entry)
                .collect(),
            funcs,
            skipped,
        })
    }

    /// Plans `func`, unless a function at its entry was planned (or skipped) already.
    fn add(&mut self, func: &crate::gobin::format::pclntab::Func<'_>, exact: bool) -> Result<()> {
        if !self.entries.insert(func.entry) {
            return Ok(());
        }
        let sites = self.bin.probe_sites(func).and_then(|s| {
            let tail_rets = if self.need_ret {
                tail_ret_vaddrs(self.bin, &s)?
            } else {
                Vec::new()
            };
            Ok((s, tail_rets))
        });
        let problem = match &sites {
            Err(err) => Some(format!("{err:#}")),
            Ok((s, tail)) if self.need_ret && s.ret_sites.is_empty() && tail.is_empty() => {
                Some(NO_RET.to_owned())
            }
            Ok(_) => None,
        };
        if let Some(reason) = problem {
            if exact {
                bail!("{}: {reason}", func.name);
            }
            self.skipped.push((func.name.to_owned(), reason));
            return Ok(());
        }
        let (sites, tail_rets) = sites?;
        let (entry_site, entry_kind) = self.entry_choice.site(&sites);
        let offset = |vaddr: u64| {
            self.bin
                .elf
                .file_offset(vaddr)
                .with_context(|| format!("{}: address {vaddr:#x} is not in the file", func.name))
        };
        self.funcs.push(PlannedFunc {
            id: u32::try_from(self.funcs.len()).context("too many functions")?,
            name: func.name.to_owned(),
            out_of_line: true,
            instances: Vec::new(),
            entry: func.entry,
            entry_offset: offset(func.entry)?,
            entry_site: offset(entry_site)?,
            entry_kind,
            ret_sites: sites
                .ret_sites
                .iter()
                .map(|&v| offset(v))
                .collect::<Result<_>>()?,
            tail_ret_sites: tail_rets
                .iter()
                .map(|&v| offset(v))
                .collect::<Result<_>>()?,
        });
        Ok(())
    }
}

impl ProbePlan {
    /// Adds `extra` functions (each probed entry and RETs) after the planned ones, as a glob's
    /// matches: one that cannot be probed is skipped with its reason, one already planned is
    /// left as it is.
    pub fn add_functions<'f, 'd: 'f>(
        &mut self,
        bin: &GoBinary<'_>,
        extra: impl IntoIterator<Item = &'f crate::gobin::format::pclntab::Func<'d>>,
    ) -> Result<()> {
        let mut planner = FuncPlanner::new(bin, true, &mut self.funcs, &mut self.skipped)?;
        for func in extra {
            planner.add(func, false)?;
        }
        Ok(())
    }
}

/// "unknown function" with the nearest names, or "inlined" when DWARF knows it.
fn not_found_message(bin: &GoBinary<'_>, pattern: &str, exact: bool) -> String {
    if !exact {
        return format!(
            "no function matches {pattern:?} (see `gotrace list BINARY` for the names)"
        );
    }
    if bin.is_inlined_everywhere(pattern) {
        return format!(
            "{pattern} is inlined into its callers and has no code of its own to probe (rebuild with -gcflags='-l' or mark it //go:noinline)"
        );
    }
    // A name without its package (`doWork` for `main.doWork`) ranks above every near miss.
    let suffix = format!(".{pattern}");
    let mut near: Vec<(f64, &str)> = bin
        .funcs
        .iter()
        .map(|f| {
            let score = if f.name.ends_with(&suffix) {
                2.0
            } else {
                strsim::jaro_winkler(pattern, f.name)
            };
            (score, f.name)
        })
        .filter(|(score, _)| *score > 0.85)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    let names: Vec<&str> = near.iter().take(3).map(|(_, n)| *n).collect();
    if names.is_empty() {
        format!("unknown function {pattern} (see `gotrace list BINARY` for the names)")
    } else {
        format!(
            "unknown function {pattern}; did you mean {}?",
            names.join(", ")
        )
    }
}
