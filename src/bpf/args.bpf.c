// SPDX-License-Identifier: GPL-2.0
/* gotrace args: every call's arguments and results, streamed through one ring buffer.
 * One generic program runs at each function's entry site and at every RET; the attach cookie
 * says which function and which kind of site, and selects a fetch plan (computed in user space
 * from DWARF, src/plan/capture/): how many bytes of stack to copy from SP, and which strings to read.
 * The probes of inlined calls (SITE_INLINE) carry their own plan: where DWARF puts the inlined
 * call's arguments at its start (src/plan/capture/inlined.rs).
 * The program copies raw registers, stack and bytes (capture.bpf.h); user space decodes. */
#include "calls_in_flight.bpf.h"
#include "capture.bpf.h"
#include "inline_sites.bpf.h"
#include "where.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
/* After `layout`, which it reads. */
#include "sched_follow.bpf.h"
/* offsetof(runtime.g, goid). */
const volatile __u32 g_goid = 0;
/* --stack: walk the frame-pointer chain at entry probes (amd64). */
const volatile __u32 walk_stack = 0;
/* Ring bytes past which a record wakes the consumer (ringbuf_flags). */
const volatile __u64 wakeup_watermark = 0;
/* Whether RET sites are probed (so entries are remembered for the duration). */
const volatile __u32 pair_calls = 1;
/* --min-duration: a call's entry record is held (`held`) until its RET, and both are sent
 * only when the call took at least this long; 0 sends every record at once. */
const volatile __u64 min_duration_ns = 0;

/* The event under construction (too big for the BPF stack), with its size so that it can be
 * held as it is. */
PERCPU_ARRAY_MAP(scratch, struct args_held);

/* --min-duration: entry records of the calls in flight, until their RET. Not preallocated
 * (each is ~13 KB): memory is taken only for the calls actually in flight. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* sized before load */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct args_held_key);
	__type(value, struct args_held);
} held SEC(".maps");

PERCPU_ARRAY_MAP(stats, struct args_stats);

/* Calls in flight, for durations. LRU so entries whose return never comes cannot fill it. */
LRU_HASH_MAP(starts, struct frame_key, struct frame_start);

RINGBUF_MAP(events, 4096); /* sized before load */

/* Which counter of struct args_stats. */
enum args_count {
	COUNT_LOST = 0,
	COUNT_UNMATCHED = 1,
	COUNT_IN_FLIGHT_AT_START = 2,
	COUNT_BELOW_MIN_DURATION = 3,
	COUNT_UNTIMED = 4,
	COUNT_FILTERED = 5,
	COUNT_WHERE_UNREADABLE = 6,
};

static __always_inline void count(enum args_count which)
{
	__u32 zero = 0;
	struct args_stats *s = bpf_map_lookup_elem(&stats, &zero);

	if (!s)
		return;
	if (which == COUNT_UNMATCHED)
		__sync_fetch_and_add(&s->unmatched, 1);
	else if (which == COUNT_IN_FLIGHT_AT_START)
		__sync_fetch_and_add(&s->in_flight_at_start, 1);
	else if (which == COUNT_BELOW_MIN_DURATION)
		__sync_fetch_and_add(&s->below_min_duration, 1);
	else if (which == COUNT_UNTIMED)
		__sync_fetch_and_add(&s->untimed, 1);
	else if (which == COUNT_FILTERED)
		__sync_fetch_and_add(&s->filtered, 1);
	else if (which == COUNT_WHERE_UNREADABLE)
		__sync_fetch_and_add(&s->where_unreadable, 1);
	else
		__sync_fetch_and_add(&s->lost, 1);
}

/* The key of the held entry of function `func_id`'s call at `frame`. */
static __always_inline struct args_held_key held_key(const struct frame_key *frame, __u32 func_id)
{
	struct args_held_key key = {};

	key.frame = *frame;
	key.func_id = func_id;
	return key;
}

/* Forgets the held entry of a call that will never return through a probe. */
static __always_inline void drop_held(const struct frame_key *frame, __u32 func_id)
{
	struct args_held_key key = held_key(frame, func_id);

	bpf_map_delete_elem(&held, &key);
}

/* --min-duration, at a matched RET: sends the call's held entry record and returns true when
 * the call took at least min_duration_ns; otherwise drops it, counted, and returns false. */
static __always_inline bool release_held(struct probe_hit *hit, __u64 duration)
{
	struct args_held_key key = held_key(&hit->key, hit->func_id);
	struct args_held *h;
	__u64 size;

	if (duration < min_duration_ns) {
		bpf_map_delete_elem(&held, &key);
		count(COUNT_BELOW_MIN_DURATION);
		return false;
	}
	h = bpf_map_lookup_elem(&held, &key);
	if (!h) {
		/* Its entry was not held (the map was full): the call is lost. */
		count(COUNT_LOST);
		return false;
	}
	size = h->size;
	if (size > sizeof(struct args_event))
		size = sizeof(struct args_event);
	if (size < 8)
		size = 8;
	if (bpf_ringbuf_output(&events, &h->event, size, ringbuf_flags(&events, size, wakeup_watermark)))
		count(COUNT_LOST);
	bpf_map_delete_elem(&held, &key);
	return true;
}

static __always_inline int args_site(struct pt_regs *ctx)
{
	struct probe_hit hit = {};
	struct inline_site *inlined = NULL;
	__u32 zero = 0, plan_key, matched = 0, inline_index = 0;
	struct args_fetch *plan;
	struct args_held *slot;
	struct args_event *e;
	__u64 now, start_ns = 0, sp, size;
	bool paired = false;
	/* One copy of the registers: direct ctx loads on several paths get merged by the
	 * compiler into a modified-ctx access the verifier refuses. */
	struct pt_regs regs;
	bool is_ret;
	__u64 goid = 0;

	if (breakdown && (bpf_get_attach_cookie(ctx) & COOKIE_KIND_MASK) == SITE_SCHED)
		return sched_site(ctx, bpf_get_attach_cookie(ctx));
	/* Not before: the scheduler's sites take an instant only for a followed goroutine. */
	now = bpf_ktime_get_ns();
	if (bpf_probe_read_kernel(&regs, sizeof(regs), ctx))
		return 0;
	if (!probe_prologue(ctx, &regs, &layout, now, &hit))
		return 0;
	if (hit.kind == SITE_INLINE) {
		inline_index = hit.func_id;
		inlined = inline_hit(&regs, &hit);
		if (!inlined)
			return 0;
		is_ret = inlined->role == INLINE_END;
		plan_key = inlined->fetch_plan;
	} else {
		/* A tail-call target's RET is this function's return only when it completes one of
		 * this function's calls (calls_leave); it has a plan of its own (the tail callee's
		 * result layout, src/plan/capture/tail.rs), and user space sees its kind. */
		is_ret = hit.kind != SITE_ENTRY;
		plan_key = fetch_plan_key(&hit);
	}
	plan = bpf_map_lookup_elem(&fetch_plans, &plan_key);
	slot = bpf_map_lookup_elem(&scratch, &zero);
	if (!plan || !slot)
		return 0;
	e = &slot->event;
	sp = regs.sp;
	if (!hit.key.g) {
		/* A tail-call target's RET without g may be no call of this function at all; while
		 * the gate drains, a call without g is no call of the window. */
		if (hit.kind != SITE_TAIL_RET && hit.phase == GATE_ARMED)
			count(COUNT_LOST);
		return 0;
	}
	bpf_probe_read_user(&goid, 8, (void *)(hit.key.g + g_goid));
	e->breakdown.followed = 0;

	if (!is_ret) {
		/* An inlined call that cannot be timed (INLINE_COUNT) has no return to pair. */
		paired = pair_calls && !(inlined && inlined->role == INLINE_COUNT);

		if (paired) {
			struct entered in = calls_enter(&starts, &hit, now);

			if (in.unmatched) {
				count(COUNT_UNMATCHED);
				if (min_duration_ns)
					drop_held(&hit.key, in.func_id);
			}
			if (in.outer_unmatched) {
				count(COUNT_UNMATCHED);
				if (min_duration_ns)
					drop_held(&hit.key, in.outer_func_id);
			}
			if (in.lost)
				count(COUNT_LOST); /* its return will not be paired */
			else if (hit.phase == GATE_ARMED)
				follow_enter(&hit, now);
		}
		/* An entry while the gate drains is no call of the window: stored (paired) only so
		 * that its return is recognised. */
		if (hit.phase != GATE_ARMED)
			return 0;
		if (min_duration_ns && !paired) {
			count(COUNT_UNTIMED);
			return 0;
		}
	} else {
		struct frame_start *open = bpf_map_lookup_elem(&starts, &hit.key);

		/* A call --where hid at its entry: its return is not shown either. */
		bool hidden = open && open->func_id == hit.func_id && open->hidden;
		switch (calls_leave(&starts, &hit, &start_ns)) {
		case LEFT_MATCHED:
			if (hidden)
				return 0;
			matched = 1;
			follow_leave(&hit, now, &e->breakdown);
			if (min_duration_ns && !release_held(&hit, now - start_ns))
				return 0;
			break;
		case LEFT_UNSEEN:
			/* Still shown (results, no duration); with --min-duration not shown (its
			 * duration is unknown), and counted all the same. */
			count(gate_unseen_is_lost() ? COUNT_LOST : COUNT_IN_FLIGHT_AT_START);
			if (min_duration_ns)
				return 0;
			break;
		case LEFT_LATE:
		case LEFT_NOTHING:
			return 0;
		}
	}

	e->ts_ns = now;
	e->pid = hit.key.tgid;
	e->tid = hit.tid;
	e->func_id = hit.func_id;
	e->kind = hit.kind;
	e->matched = matched;
	e->inline_site = inline_index;
	e->duration_ns = matched ? now - start_ns : 0;
	e->n_callers = 0;
	if (walk_stack && !is_ret) {
		/* Before the function's PUSH RBP: [SP] returns into the caller, RBP is the caller's
		 * frame, whose [RBP + 8] returns into its caller, and so on. */
		__u64 fp = regs.bp, pc = 0;

		bpf_probe_read_user(&pc, 8, (void *)sp);
		for (int i = 0; i < ARGS_MAX_FRAMES; i++) {
			if (!pc)
				break;
			e->callers[i] = pc;
			e->n_callers = i + 1;
			pc = 0;
			if (!fp || bpf_probe_read_user(&pc, 8, (void *)(fp + 8)) ||
			    bpf_probe_read_user(&fp, 8, (void *)fp))
				break;
		}
	}
	e->goid = goid;
	size = capture_frame(e, plan, &regs, hit.site_offset, &layout);
	if (!is_ret && plan->filter.op != WHERE_NONE) {
		int holds = where_holds(e, &plan->filter, &layout);

		if (holds <= 0) {
			count(holds < 0 ? COUNT_WHERE_UNREADABLE : COUNT_FILTERED);
			if (paired) {
				struct frame_start *open = bpf_map_lookup_elem(&starts, &hit.key);

				if (open && open->func_id == hit.func_id)
					open->hidden = 1;
			}
			return 0;
		}
	}
	if (min_duration_ns && !is_ret) {
		struct args_held_key key = held_key(&hit.key, hit.func_id);

		slot->size = size;
		/* Not held: its RET finds nothing and counts the call lost. */
		bpf_map_update_elem(&held, &key, slot, BPF_ANY);
		return 0;
	}
	if (bpf_ringbuf_output(&events, e, size, ringbuf_flags(&events, size, wakeup_watermark)))
		count(COUNT_LOST);
	return 0;
}

GOTRACE_UPROBE_PROGRAMS(args, args_site)
GOTRACE_SCHED_SWITCH(args_sched_switch)
