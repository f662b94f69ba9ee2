// SPDX-License-Identifier: GPL-2.0
/* gotrace funclat: in-kernel log2 latency histograms for Go functions.
 * One generic program is attached at each function's entry site and at every RET; the attach
 * cookie says which function and which kind of site (docs/design.md §1-§4). */
#include "calls_in_flight.bpf.h"
#include "inline_sites.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
/* Histogram unit: 1 (ns), 1000 (us) or 1000000 (ms). */
const volatile __u64 unit_div = 1;

/* Indexed by function id; per CPU so the hot path takes no lock. Sized before load. */
PERCPU_ARRAY_MAP(hists, struct func_hist);

/* Calls in flight. LRU so that entries whose return never comes cannot fill it. Sized before
 * load: --max-open-calls. */
LRU_HASH_MAP(starts, struct frame_key, struct frame_start);

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 32; i > 0; i >>= 1) {
		if (v >> i) {
			v >>= i;
			slot += i;
		}
	}
	return slot;
}

/* Counts one more call of function `func_id` that never returned. */
static __always_inline void count_unmatched(__u32 func_id)
{
	struct func_hist *hist = bpf_map_lookup_elem(&hists, &func_id);

	if (hist)
		hist->unmatched++;
}

/* Records one call of `hist`'s function that took `delta` ns. */
static __always_inline void record(struct func_hist *hist, __u64 delta)
{
	hist->slots[log2_slot(delta / unit_div) & (GOTRACE_HIST_SLOTS - 1)]++;
	hist->count++;
	hist->total_ns += delta;
}

/* An entry: its start, and every call it finds that never returned counted. */
static __always_inline void enter(struct probe_hit *hit, struct func_hist *hist, __u64 now)
{
	struct entered in = calls_enter(&starts, hit, now);

	if (in.outer_unmatched)
		count_unmatched(in.outer_func_id);
	if (in.unmatched)
		count_unmatched(in.func_id);
	if (in.lost)
		hist->lost++;
}

/* A RET (or a tail-call target's RET): the call it completes recorded; a return whose entry
 * was never seen counted, never silently dropped: as lost when its start may have been evicted
 * or not stored, else as a call already running when the gate opened (struct gate). */
static __always_inline void leave(struct probe_hit *hit, struct func_hist *hist, __u64 now)
{
	__u64 start_ns = 0;

	switch (calls_leave(&starts, hit, &start_ns)) {
	case LEFT_MATCHED:
		record(hist, now - start_ns);
		if (hit->key.instance)
			hist->inlined++;
		break;
	case LEFT_UNSEEN:
		if (gate_unseen_is_lost())
			hist->lost++;
		else
			hist->in_flight_at_start++;
		break;
	case LEFT_LATE:
	case LEFT_NOTHING:
		break;
	}
}

static __always_inline int funclat_site(struct pt_regs *ctx)
{
	struct probe_hit hit = {};
	struct func_hist *hist;
	__u64 now = bpf_ktime_get_ns();
	__u32 func_id, role = INLINE_START;

	if (!probe_prologue(ctx, ctx, &layout, now, &hit))
		return 0;
	if (hit.kind == SITE_INLINE) {
		struct inline_site *site = inline_hit(ctx, &hit);

		if (!site)
			return 0;
		role = site->role;
	}
	func_id = hit.func_id;
	hist = bpf_map_lookup_elem(&hists, &func_id);
	if (!hist)
		return 0;
	if (hit.kind == SITE_INLINE && role == INLINE_COUNT) {
		/* An untimed call needs no frame key; it counts while the gate is armed. */
		if (hit.phase != GATE_ARMED)
			return 0;
		hist->count++;
		hist->inlined++;
		hist->untimed++;
		return 0;
	}
	if (!hit.key.g) {
		/* A tail-call target's RET without g may be no call of this function at all; while
		 * the gate drains, a call without g is no call of the window. */
		if (hit.kind != SITE_TAIL_RET && hit.phase == GATE_ARMED)
			hist->lost++;
		return 0;
	}
	if (hit.kind == SITE_ENTRY || (hit.kind == SITE_INLINE && role == INLINE_START)) {
		enter(&hit, hist, now);
	} else {
		leave(&hit, hist, now);
	}
	return 0;
}

GOTRACE_UPROBE_PROGRAMS(funclat, funclat_site)
