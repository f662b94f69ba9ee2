/* Calls in flight: pairing each entry with its return by frame key (docs/design.md §4),
 * including a traced tail caller and its traced tail callee, which share one frame key
 * (§13). funclat and args keep the same map of starts (LRU_HASH, struct frame_key ->
 * struct frame_start) and differ only in what they do with the outcome. */
#ifndef CALLS_IN_FLIGHT_BPF_H
#define CALLS_IN_FLIGHT_BPF_H

#include "go_runtime.bpf.h"

/* What an entry found at its frame key: calls that never returned (panic unwinding, Goexit),
 * each with its planned function, and whether its own start could not be stored. */
struct entered {
	bool unmatched;       /* the call that had this frame key */
	bool outer_unmatched; /* and its tail caller's, kept as its outer call */
	bool lost;
	__u32 func_id;
	__u32 outer_func_id;
};

/* Records an entry: a new start at its frame key. A start already there is a call at this
 * depth that never returned, unless it is a tail caller's and this is another function: then
 * this is its tail call, and the caller's start becomes the outer call. */
static __always_inline struct entered calls_enter(void *starts, struct probe_hit *hit, __u64 now)
{
	struct frame_start *start, new_start = {};
	struct entered out = {};

	new_start.start_ns = now;
	new_start.func_id = hit->func_id;
	new_start.tail_caller = hit->tail_caller;
	/* The common case costs one insert; only a frame key already in use costs more. */
	if (!bpf_map_update_elem(starts, &hit->key, &new_start, BPF_NOEXIST))
		return out;
	start = bpf_map_lookup_elem(starts, &hit->key);
	if (start) {
		out.outer_unmatched = start->has_outer;
		out.outer_func_id = start->outer_func_id;
		if (start->tail_caller && start->func_id != hit->func_id) {
			new_start.outer_start_ns = start->start_ns;
			new_start.outer_func_id = start->func_id;
			new_start.has_outer = 1;
		} else {
			out.unmatched = true;
			out.func_id = start->func_id;
		}
	}
	out.lost = bpf_map_update_elem(starts, &hit->key, &new_start, BPF_ANY) != 0;
	return out;
}

/* What a return site completed. */
enum left {
	LEFT_NOTHING = 0, /* a tail-call target's RET that is no return of this function */
	LEFT_UNSEEN = 1,  /* a RET of this function whose entry was never seen */
	LEFT_MATCHED = 2, /* a call of this function, started *start_ns */
};

/* A RET (or a tail-call target's RET) of the hit's function: completes its start, whether the
 * call at this frame key or the outer call (its tail caller's). Probes at one address run in
 * any order: the call completed first leaves the other one in place. */
static __always_inline enum left calls_leave(void *starts, struct probe_hit *hit, __u64 *start_ns)
{
	struct frame_start *start = bpf_map_lookup_elem(starts, &hit->key);

	if (start && start->func_id == hit->func_id) {
		*start_ns = start->start_ns;
		if (!start->has_outer) {
			bpf_map_delete_elem(starts, &hit->key);
			return LEFT_MATCHED;
		}
		start->start_ns = start->outer_start_ns;
		start->func_id = start->outer_func_id;
		start->tail_caller = 1;
		start->has_outer = 0;
		return LEFT_MATCHED;
	}
	/* A return whose entry was never seen: the entry hit was lost, or the call was already
	 * running when tracing began. */
	if (hit->kind != SITE_TAIL_RET)
		return LEFT_UNSEEN;
	if (start && start->has_outer && start->outer_func_id == hit->func_id) {
		*start_ns = start->outer_start_ns;
		start->has_outer = 0;
		return LEFT_MATCHED;
	}
	/* Otherwise the target returns from a call of its own, or of another tail caller. */
	return LEFT_NOTHING;
}

#endif
