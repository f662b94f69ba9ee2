// SPDX-License-Identifier: GPL-2.0
/* gotrace funclat: in-kernel log2 latency histograms for Go functions.
 * One generic program is attached at each function's entry site and at every RET; the attach
 * cookie says which function and which kind of site (docs/design.md §1-§4). */
#include "calls_in_flight.bpf.h"
#include "capture.bpf.h"
#include "inline_sites.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
/* After `layout`, which it reads. */
#include "sched_follow.bpf.h"
/* Histogram unit: 1 (ns), 1000 (us) or 1000000 (ms). */
const volatile __u64 unit_div = 1;
/* --by: each call's key is read at its entry (struct by_key_plan); --max-keys. */
const volatile __u32 by_enabled = 0;
const volatile __u64 max_keys = 0;
/* --by: distinct keys given a histogram of their own so far. */
__u64 by_keys_used = 0;

/* Indexed by function id; per CPU so the hot path takes no lock. Sized before load. */
PERCPU_ARRAY_MAP(hists, struct func_hist);

/* Calls in flight. LRU so that entries whose return never comes cannot fill it. Sized before
 * load: --max-open-calls. */
LRU_HASH_MAP(starts, struct frame_key, struct frame_start);

/* --by: each function's key plan, by function id (sized before load). */
ARRAY_MAP(by_plans, struct by_key_plan);

/* --by: the key of each call in flight, by frame key (sized before load: --max-open-calls). */
LRU_HASH_MAP(by_open, struct frame_key, struct by_key);

/* --by: one histogram per key (sized before load: --max-keys, and per function its
 * BY_UNREADABLE, BY_OTHER and BY_NOT_READ keys). */
PERCPU_HASH_MAP(by_hists, struct by_key, struct func_hist);

/* --by: the capture an entry's key is read from, and the key being built (too big for the
 * BPF stack); a zero histogram to insert new keys with. */
PERCPU_ARRAY_MAP(by_capture, struct args_event);

PERCPU_ARRAY_MAP(by_scratch, struct by_key);
PERCPU_ARRAY_MAP(by_zero, struct func_hist);

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

/* --by: reads the key of the call entering at `hit` and keeps it by its frame key. */
static __always_inline void key_entry(struct probe_hit *hit, struct pt_regs *ctx)
{
	__u32 zero = 0, plan_key = hit->func_id * ARGS_PLANS_PER_FUNC + ARGS_PLAN_ENTRY;
	struct by_key_plan *bp = bpf_map_lookup_elem(&by_plans, &hit->func_id);
	struct args_fetch *plan = bpf_map_lookup_elem(&fetch_plans, &plan_key);
	struct args_event *e = bpf_map_lookup_elem(&by_capture, &zero);
	struct by_key *key = bpf_map_lookup_elem(&by_scratch, &zero);
	struct pt_regs regs;

	if (!bp || !plan || !e || !key || bp->source == BY_SOURCE_NONE)
		return;
	if (bpf_probe_read_kernel(&regs, sizeof(regs), ctx))
		return;
	__builtin_memset(key, 0, sizeof(*key));
	key->func_id = hit->func_id;
	capture_frame(e, plan, &regs, hit->site_offset, &layout);
	if (bp->chased && e->field_status[0] != FIELD_READ) {
		key->kind = BY_UNREADABLE;
	} else if (bp->source == BY_SOURCE_FRAME) {
		__u64 off = bp->off, size = bp->size;

		if (off > ARGS_FRAME_BYTES - 8 || size > 8)
			return;
		barrier_var(size);
		size &= 15;
		if (size > 8)
			return;
		bpf_probe_read_kernel(key->bytes, size, (__u8 *)e->regs + off);
		key->len = size;
	} else {
		__u64 n = e->deref_len[0];

		if (n == ARGS_READ_FAILED) {
			key->kind = BY_UNREADABLE;
		} else {
			if (n > BY_KEY_BYTES)
				n = BY_KEY_BYTES;
			barrier_var(n);
			n &= 2 * BY_KEY_BYTES - 1;
			if (n > BY_KEY_BYTES)
				return;
			if (n)
				bpf_probe_read_kernel(key->bytes, n, e->data);
			key->len = n;
			{
				__u64 full = 0, off = bp->len_off;

				if (off <= ARGS_FRAME_BYTES - 8)
					bpf_probe_read_kernel(&full, 8, (__u8 *)e->regs + off);
				if (layout.ptr_size == 4)
					full &= 0xffffffff;
				key->truncated = full > n;
			}
		}
	}
	bpf_map_update_elem(&by_open, &hit->key, key, BPF_ANY);
}

/* --by: records a call of `hit`'s function that took `delta` ns under the key its entry kept
 * (then forgotten); `matched`: the call is reported (else its key is only forgotten). A key
 * the map has no room for is counted lost in the function's own histogram `fn_hist`. */
static __always_inline void key_return(struct probe_hit *hit, struct func_hist *fn_hist,
				       __u64 delta, bool matched)
{
	__u32 zero = 0;
	struct by_key *open = bpf_map_lookup_elem(&by_open, &hit->key);
	struct by_key *key = bpf_map_lookup_elem(&by_scratch, &zero);
	struct func_hist *hist, *blank = bpf_map_lookup_elem(&by_zero, &zero);

	if (!key || !blank)
		return;
	if (open && open->func_id == hit->func_id) {
		__builtin_memcpy(key, open, sizeof(*key));
		bpf_map_delete_elem(&by_open, &hit->key);
	} else {
		__builtin_memset(key, 0, sizeof(*key));
		key->func_id = hit->func_id;
		key->kind = BY_NOT_READ;
	}
	if (!matched)
		return;
	hist = bpf_map_lookup_elem(&by_hists, key);
	if (!hist) {
		if (key->kind == BY_VALUE && __sync_fetch_and_add(&by_keys_used, 1) >= max_keys) {
			__builtin_memset(key, 0, sizeof(*key));
			key->func_id = hit->func_id;
			key->kind = BY_OTHER;
		}
		bpf_map_update_elem(&by_hists, key, blank, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&by_hists, key);
		if (!hist) {
			fn_hist->lost++;
			return;
		}
	}
	record(hist, delta);
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
		if (by_enabled)
			key_return(hit, hist, now - start_ns, true);
		break;
	case LEFT_UNSEEN:
		if (gate_unseen_is_lost())
			hist->lost++;
		else
			hist->in_flight_at_start++;
		break;
	case LEFT_LATE:
		if (by_enabled)
			key_return(hit, hist, 0, false);
		break;
	case LEFT_NOTHING:
		break;
	}
}

static __always_inline int funclat_site(struct pt_regs *ctx)
{
	struct probe_hit hit = {};
	struct func_hist *hist;
	__u64 now;
	__u32 func_id, role = INLINE_START;

	if (breakdown && (bpf_get_attach_cookie(ctx) & COOKIE_KIND_MASK) == SITE_SCHED)
		return sched_site(ctx, bpf_get_attach_cookie(ctx));
	/* Not before: the scheduler's sites take an instant only for a followed goroutine. */
	now = bpf_ktime_get_ns();
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
		if (by_enabled && hit.kind == SITE_ENTRY)
			key_entry(&hit, ctx);
	} else {
		leave(&hit, hist, now);
	}
	return 0;
}

GOTRACE_UPROBE_PROGRAMS(funclat, funclat_site)
GOTRACE_SCHED_SWITCH(funclat_sched_switch)
