/* Calls in flight: pairing each entry with its return by frame key (docs/design.md §4),
 * including a traced tail caller and its traced tail callee, which share one frame key
 * (§13). funclat and args keep the same map of starts (LRU_HASH, struct frame_key ->
 * struct frame_start) and differ only in what they do with the outcome. */
#ifndef CALLS_IN_FLIGHT_BPF_H
#define CALLS_IN_FLIGHT_BPF_H

#include "go_runtime.bpf.h"

/* What an entry found at its frame key: calls that never returned (panic unwinding, Goexit),
 * each with its planned function, and whether its own start could not be stored. Late calls
 * (begun after close_ns, struct gate) are never reported, so neither is their non-return. */
struct entered {
	bool unmatched;       /* the call that had this frame key */
	bool outer_unmatched; /* and its tail caller's, kept as its outer call */
	bool lost;
	__u32 func_id;
	__u32 outer_func_id;
};

/* Whether the key holding `start` holds only late calls (the gate's `late` count). */
static __always_inline bool start_is_late(const struct frame_start *start)
{
	return (start->late & FRAME_LATE) && (!start->has_outer || (start->late & FRAME_OUTER_LATE));
}

/* Records an entry: a new start at its frame key. A start already there is a call at this
 * depth that never returned, unless it is a tail caller's and this is another function: then
 * this is its tail call, and the caller's start becomes the outer call. An entry while the
 * gate drains is stored as late: its return is then recognised and dropped. */
static __always_inline struct entered calls_enter(void *starts, struct probe_hit *hit, __u64 now)
{
	struct frame_start *start, new_start = {};
	struct entered out = {};
	bool late = hit->phase == GATE_DRAINING, was_late = false, replacing = false;

	new_start.start_ns = now;
	new_start.func_id = hit->func_id;
	new_start.tail_caller = hit->tail_caller;
	new_start.late = late ? FRAME_LATE : 0;
	/* The common case costs one insert; only a frame key already in use costs more. */
	if (!bpf_map_update_elem(starts, &hit->key, &new_start, BPF_NOEXIST)) {
		gate_stored(late);
		return out;
	}
	start = bpf_map_lookup_elem(starts, &hit->key);
	if (start) {
		replacing = true;
		was_late = start_is_late(start);
		out.outer_unmatched = start->has_outer && !(start->late & FRAME_OUTER_LATE);
		out.outer_func_id = start->outer_func_id;
		if (start->tail_caller && start->func_id != hit->func_id) {
			new_start.outer_start_ns = start->start_ns;
			new_start.outer_func_id = start->func_id;
			new_start.has_outer = 1;
			if (start->late & FRAME_LATE)
				new_start.late |= FRAME_OUTER_LATE;
		} else {
			out.unmatched = !(start->late & FRAME_LATE);
			out.func_id = start->func_id;
		}
	}
	if (bpf_map_update_elem(starts, &hit->key, &new_start, BPF_ANY)) {
		gate_store_failed();
		out.lost = !late;
	} else if (replacing) {
		gate_relabelled(was_late, start_is_late(&new_start));
	} else {
		gate_stored(start_is_late(&new_start));
	}
	return out;
}

/* What a return site completed. */
enum left {
	LEFT_NOTHING = 0, /* a tail-call target's RET that is no return of this function */
	LEFT_UNSEEN = 1,  /* a RET of this function whose entry was never seen */
	LEFT_MATCHED = 2, /* a call of this function, started *start_ns */
	LEFT_LATE = 3,    /* a call of this function that began after close_ns: not reported */
};

/* A RET (or a tail-call target's RET) of the hit's function: completes its start, whether the
 * call at this frame key or the outer call (its tail caller's). Probes at one address run in
 * any order: the call completed first leaves the other one in place. */
static __always_inline enum left calls_leave(void *starts, struct probe_hit *hit, __u64 *start_ns)
{
	struct frame_start *start = bpf_map_lookup_elem(starts, &hit->key);
	bool was_late, late;

	if (start && start->func_id == hit->func_id) {
		*start_ns = start->start_ns;
		late = start->late & FRAME_LATE;
		was_late = start_is_late(start);
		if (!start->has_outer) {
			if (!bpf_map_delete_elem(starts, &hit->key))
				gate_removed(was_late);
			return late ? LEFT_LATE : LEFT_MATCHED;
		}
		start->start_ns = start->outer_start_ns;
		start->func_id = start->outer_func_id;
		start->tail_caller = 1;
		start->has_outer = 0;
		start->late = start->late & FRAME_OUTER_LATE ? FRAME_LATE : 0;
		gate_relabelled(was_late, start_is_late(start));
		return late ? LEFT_LATE : LEFT_MATCHED;
	}
	/* A return whose entry was never seen: the call was already running when the gate
	 * opened, or its start was evicted or not stored (gate_unseen_is_lost). */
	if (hit->kind != SITE_TAIL_RET)
		return LEFT_UNSEEN;
	if (start && start->has_outer && start->outer_func_id == hit->func_id) {
		*start_ns = start->outer_start_ns;
		late = start->late & FRAME_OUTER_LATE;
		was_late = start_is_late(start);
		start->has_outer = 0;
		start->late &= FRAME_LATE;
		gate_relabelled(was_late, start_is_late(start));
		return late ? LEFT_LATE : LEFT_MATCHED;
	}
	/* Otherwise the target returns from a call of its own, or of another tail caller. */
	return LEFT_NOTHING;
}

#endif
