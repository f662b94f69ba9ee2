//! The probe sites of a plan and their attach cookies, in the one layout every BPF program
//! decodes (`enum cookie_layout` in src/bpf/gotrace.h).

use crate::bpf_types::{branch_test, cookie_layout, inline_role, inline_site, site_kind};
use crate::gobin::code::inline_probe::BranchTest;
use crate::plan::ProbePlan;

/// One place to put a uprobe: a file offset in the binary and the cookie the program sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// File offset of the probed instruction.
    pub file_offset: u64,
    /// The BPF cookie (`bpf_get_attach_cookie`), in `enum cookie_layout`.
    pub cookie: u64,
}

const KIND_MASK: u64 = cookie_layout::COOKIE_KIND_MASK.0 as u64;
const TAIL_CALLER: u64 = cookie_layout::COOKIE_TAIL_CALLER.0 as u64;
const FUNC_SHIFT: u32 = cookie_layout::COOKIE_FUNC_SHIFT.0;
const SITE_SHIFT: u32 = cookie_layout::COOKIE_SITE_SHIFT.0;
const SITE_MASK: u64 = (1 << cookie_layout::COOKIE_SITE_BITS.0) - 1;
// The fields do not overlap and the site offset ends at bit 63.
const _: () = assert!(KIND_MASK < 1 << FUNC_SHIFT);
const _: () = assert!(TAIL_CALLER & KIND_MASK == 0 && TAIL_CALLER < 1 << FUNC_SHIFT);
const _: () = assert!(FUNC_SHIFT + u32::BITS == SITE_SHIFT);
const _: () = assert!(SITE_SHIFT + cookie_layout::COOKIE_SITE_BITS.0 == u64::BITS);
const _: () = assert!(site_kind::SITE_RET.0 as u64 <= KIND_MASK);
const _: () = assert!(site_kind::SITE_ENTRY_IF_NOT_TAKEN.0 as u64 <= KIND_MASK);
const _: () = assert!(site_kind::SITE_TAIL_RET.0 as u64 <= KIND_MASK);
const _: () = assert!(site_kind::SITE_INLINE.0 as u64 <= KIND_MASK);

/// The cookie of a site of kind `kind`, of planned function `func_id`, `site_offset` bytes
/// after the function's entry (two's complement, kept modulo 2^COOKIE_SITE_BITS: the BPF side
/// sign-extends it and derives the load bias from it).
pub fn cookie(func_id: u32, kind: site_kind, site_offset: u64) -> u64 {
    ((site_offset & SITE_MASK) << SITE_SHIFT)
        | (u64::from(func_id) << FUNC_SHIFT)
        | u64::from(kind.0)
}

/// A cookie's function field (an inlined-call site's index for SITE_INLINE) and site kind.
pub fn decode(cookie: u64) -> (u32, site_kind) {
    (
        (cookie >> FUNC_SHIFT) as u32,
        site_kind((cookie & KIND_MASK) as u32),
    )
}

impl ProbePlan {
    /// Every site of every planned function: its entry and, where `with_rets` says so, each of
    /// its RETs and of its tail-call targets' RETs (SITE_TAIL_RET).
    pub fn sites(&self, with_rets: impl Fn(&crate::plan::PlannedFunc) -> bool) -> Vec<Site> {
        let mut sites = Vec::new();
        for func in self.funcs.iter().filter(|f| f.out_of_line) {
            let (rets, tail_rets) = if with_rets(func) {
                (&func.ret_sites[..], &func.tail_ret_sites[..])
            } else {
                (&[][..], &[][..])
            };
            let kinds = std::iter::once((func.entry_site, func.entry_kind))
                .chain(rets.iter().map(|&offset| (offset, site_kind::SITE_RET)))
                .chain(
                    tail_rets
                        .iter()
                        .map(|&offset| (offset, site_kind::SITE_TAIL_RET)),
                );
            let tail_caller = if tail_rets.is_empty() { 0 } else { TAIL_CALLER };
            for (file_offset, kind) in kinds {
                let site_offset = file_offset.wrapping_sub(func.entry_offset);
                let entry_flag = if kind == site_kind::SITE_RET || kind == site_kind::SITE_TAIL_RET
                {
                    0
                } else {
                    tail_caller
                };
                sites.push(Site {
                    file_offset,
                    cookie: cookie(func.id, kind, site_offset) | entry_flag,
                });
            }
        }
        sites
    }
}

/// The probes of the planned functions' inlined calls: the sites to attach, and the
/// `inline_sites` map entries their cookies index (`struct inline_site`).
#[derive(Debug, Default)]
pub struct InlineSites {
    /// The sites to attach; a site's cookie holds its index in `entries`.
    pub sites: Vec<Site>,
    /// The `inline_sites` map's entries, in index order.
    pub entries: Vec<inline_site>,
}

/// One probe of a planned inlined call, as [`ProbePlan::inline_probes`] lists them.
pub struct InlineProbe<'p> {
    /// The planned function whose inlined call it is.
    pub func: &'p crate::plan::PlannedFunc,
    /// 1 + the instance's index over the whole plan: its calls' `frame_key.instance`.
    pub instance_key: u32,
    /// The inlined instance probed.
    pub instance: &'p crate::plan::inlined::PlannedInstance,
    /// The probe's instruction and test.
    pub site: &'p crate::plan::inlined::InstanceSite,
    /// Whether a hit starts a timed call, starts an untimed one or ends one.
    pub role: inline_role,
}

impl ProbePlan {
    /// Every entry and exit probe of every planned inlined instance, in the order of their
    /// indices in the `inline_sites` map.
    pub fn inline_probes(&self) -> impl Iterator<Item = InlineProbe<'_>> {
        self.funcs
            .iter()
            .flat_map(|f| f.instances.iter().map(move |i| (f, i)))
            .enumerate()
            .flat_map(|(index, (func, instance))| {
                let start_role = if instance.untimed.is_some() {
                    inline_role::INLINE_COUNT
                } else {
                    inline_role::INLINE_START
                };
                let roles = instance
                    .entries
                    .iter()
                    .map(move |s| (s, start_role))
                    .chain(instance.exits.iter().map(|s| (s, inline_role::INLINE_END)));
                roles.map(move |(site, role)| InlineProbe {
                    func,
                    instance_key: index as u32 + 1,
                    instance,
                    site,
                    role,
                })
            })
    }

    /// The sites and `inline_sites` entries of [`ProbePlan::inline_probes`]; `fetch_plan`
    /// gives each probe's `inline_site.fetch_plan` (args), from its index.
    pub fn inline_sites(&self, fetch_plan: impl Fn(u32) -> u32) -> InlineSites {
        let mut out = InlineSites::default();
        for probe in self.inline_probes() {
            let (test, cc) = match probe.site.test {
                BranchTest::Always => (branch_test::BRANCH_ALWAYS, 0),
                BranchTest::IfTaken(cc) => (branch_test::BRANCH_IF_TAKEN, cc),
                BranchTest::IfNotTaken(cc) => (branch_test::BRANCH_IF_NOT_TAKEN, cc),
            };
            let site_index = out.entries.len() as u32;
            out.entries.push(inline_site {
                func_id: probe.func.id,
                instance: probe.instance_key,
                role: probe.role,
                test,
                cc: u32::from(cc),
                fetch_plan: fetch_plan(site_index),
            });
            out.sites.push(Site {
                file_offset: probe.site.file_offset,
                cookie: cookie(
                    site_index,
                    site_kind::SITE_INLINE,
                    probe
                        .site
                        .file_offset
                        .wrapping_sub(probe.instance.parent_entry_offset),
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_fields() {
        let c = cookie(7, site_kind::SITE_RET, 0x1234);
        assert_eq!(c & KIND_MASK, 1);
        assert_eq!((c >> FUNC_SHIFT) as u32, 7);
        assert_eq!(c >> SITE_SHIFT, 0x1234);
        assert_eq!(cookie(1, site_kind::SITE_ENTRY, 1 << 30) >> SITE_SHIFT, 0);
    }

    #[test]
    fn site_offsets_before_the_entry_sign_extend() {
        // A tail-call target's RET 16 bytes before the caller's entry: the BPF side's
        // arithmetic shift gives back -16.
        let c = cookie(3, site_kind::SITE_TAIL_RET, 0u64.wrapping_sub(16));
        assert_eq!((c as i64) >> SITE_SHIFT, -16);
        assert_eq!(c & KIND_MASK, u64::from(site_kind::SITE_TAIL_RET.0));
        assert_eq!(c & TAIL_CALLER, 0);
    }
}
