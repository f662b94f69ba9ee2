// SPDX-License-Identifier: GPL-2.0
/* gotrace funclat: in-kernel log2 latency histograms for Go functions.
 * One generic program is attached at each function's entry site and at every RET; the attach
 * cookie says which function and which kind of site (docs/design.md §1-§4). */
#include "calls_in_flight.bpf.h"
#include "inline_sites.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
/* After `layout`, which it reads. */
#include "sched_follow.bpf.h"
/* Histogram unit: 1 (ns), 1000 (us) or 1000000 (ms). */
const volatile __u64 unit_div = 1;

/* Indexed by function id; per CPU so the hot path takes no lock. Sized before load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct func_hist);
} hists SEC(".maps");

/* Calls in flight. LRU so that entries whose return never comes cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1); /* sized before load: --max-open-calls */
	__type(key, struct frame_key);
	__type(value, struct frame_start);
} starts SEC(".maps");

/* --breakdown: per function (sized before load), per CPU, its calls' breakdowns. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct func_breakdown);
} breakdowns SEC(".maps");

/* One call's breakdown while it is added up (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sched_breakdown);
} breakdown_scratch SEC(".maps");

/* --breakdown: the returning call's breakdown added to its function's, and kept if it is one
 * of the slowest this CPU saw. A global function: the verifier checks its loop once. */
__noinline int add_breakdown(struct probe_hit *hit, __u64 now, __u64 duration)
{
	__u32 zero = 0, func_id, slot = 0;
	struct sched_breakdown *b = bpf_map_lookup_elem(&breakdown_scratch, &zero);
	struct func_breakdown *fb;

	if (!hit || !b)
		return 0;
	func_id = hit->func_id;
	fb = bpf_map_lookup_elem(&breakdowns, &func_id);
	if (!fb)
		return 0;
	follow_leave(hit, now, b);
	fb->calls++;
	fb->duration_ns += duration;
	if (b->followed) {
		fb->total.followed++;
		fb->total.oncpu_ns += b->oncpu_ns;
		fb->total.runnable_ns += b->runnable_ns;
		fb->total.descheduled_ns += b->descheduled_ns;
		fb->total.syscall_ns += b->syscall_ns;
		fb->total.unknown_ns += b->unknown_ns;
		for (__u32 i = 0; i < BREAKDOWN_REASONS; i++)
			fb->total.blocked_ns[i] += b->blocked_ns[i];
	}
	for (__u32 i = 1; i < FUNC_SLOWEST; i++) {
		if (fb->slowest[i].duration_ns < fb->slowest[slot].duration_ns)
			slot = i;
	}
	if (slot < FUNC_SLOWEST && duration > fb->slowest[slot].duration_ns) {
		fb->slowest[slot].duration_ns = duration;
		fb->slowest[slot].ts_ns = now;
		bpf_probe_read_user(&fb->slowest[slot].goid, 8, (void *)(hit->key.g + sched.g_goid));
		fb->slowest[slot].breakdown = *b;
	}
	return 0;
}

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
	else if (hit->phase == GATE_ARMED)
		follow_enter(hit, now);
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
		if (breakdown)
			add_breakdown(hit, now, now - start_ns);
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

	if (breakdown && (bpf_get_attach_cookie(ctx) & COOKIE_KIND_MASK) == SITE_SCHED)
		return sched_site(ctx, bpf_get_attach_cookie(ctx));
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
GOTRACE_SCHED_SWITCH(funclat_sched_switch)
