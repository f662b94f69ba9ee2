/* The probes of inlined calls (SITE_INLINE, docs/design.md §12): which function and
 * instance each one belongs to, and when its hits count. funclat and args share the map and
 * the test. */
#ifndef INLINE_SITES_BPF_H
#define INLINE_SITES_BPF_H

#include "go_runtime.bpf.h"

/* The probe sites of inlined calls, by the index their SITE_INLINE cookies carry. Sized before
 * load (one entry at least), filled after. */
ARRAY_MAP(inline_sites, struct inline_site);

/* A hit of an inlined call's probe: from here on the hit is its function's, at a frame key of
 * its own instance. Returns the site, or NULL when the hit does not count (a branch test that
 * fails). `regs` is ctx or a copy of it (for the flags). */
static __always_inline struct inline_site *inline_hit(struct pt_regs *regs, struct probe_hit *hit)
{
	__u32 index = hit->func_id;
	struct inline_site *site = bpf_map_lookup_elem(&inline_sites, &index);

	if (!site)
		return NULL;
	if (site->test != BRANCH_ALWAYS &&
	    x86_condition(regs->flags, site->cc) != (site->test == BRANCH_IF_TAKEN))
		return NULL;
	hit->func_id = site->func_id;
	hit->tail_caller = false;
	hit->key.instance = site->instance;
	return site;
}

#endif
