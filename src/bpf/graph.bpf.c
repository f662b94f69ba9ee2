// SPDX-License-Identifier: GPL-2.0
/* gotrace graph: the calls beneath each call of ROOT, per goroutine, streamed through one ring
 * buffer. One generic program runs at every traced function's entry site and at each of its
 * RETs. A goroutine is "inside" from a ROOT entry until that ROOT frame's RET; only then are
 * ENTER and EXIT records emitted. A hit outside ROOT costs the prologue and one map lookup.
 * Frames are identified by depth (g.stack.hi - SP), which stack copying preserves; user space
 * pairs ENTER and EXIT records into trees (src/commands/graph/). runtime.goexit1's entry (it
 * runs on the exiting goroutine, after its deferred calls) ends the goroutine's stay inside
 * ROOT when runtime.Goexit unwound it: a GOEXIT record closes the tree at once. With --args
 * (capture_args), ENTER and EXIT records carry the site's capture by its fetch plan
 * (capture.bpf.h, as gotrace args); without it, that path is never taken. With --breakdown
 * (sched_follow.bpf.h, as gotrace args), each call's EXIT or TAIL_EXIT record follows a
 * GRAPH_BREAKDOWN record of where its time went. */
#include "capture.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
/* After `layout`, which it reads. */
#include "sched_follow.bpf.h"
/* offsetof(runtime.g, goid). */
const volatile __u32 g_goid = 0;
/* Planned functions 0 .. n_roots-1 are the ROOT functions. */
const volatile __u32 n_roots = 0;
/* The planned function id of runtime.goexit1 (its entry emits GOEXIT, never ENTER). */
const volatile __u32 goexit_id = ~0U;
/* --args: ENTER/EXIT records are struct graph_args_event. */
const volatile __u32 capture_args = 0;
/* Ring bytes past which a record wakes the consumer (ringbuf_flags). */
const volatile __u64 wakeup_watermark = 0;

/* Goroutines inside ROOT. A plain hash: an entry that does not fit is counted, never evicted. */
HASH_MAP(inside, struct graph_g_key, struct graph_inside); /* sized before load: --max-goroutines */

PERCPU_ARRAY_MAP(stats, struct graph_stats);

/* --args: the record under construction (too big for the BPF stack). */
PERCPU_ARRAY_MAP(scratch, struct graph_args_event);

/* --breakdown: the GRAPH_BREAKDOWN record under construction (too big for the BPF stack). */
PERCPU_ARRAY_MAP(breakdown_scratch, struct graph_breakdown_event);

RINGBUF_MAP(events, 4096); /* sized before load */

/* The per-CPU counters. */
static __always_inline struct graph_stats *counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* At an entry site, the return address minus the function's run-time entry (struct
 * graph_event); 0 when it cannot be read. The entry site lies before the function moves SP
 * (docs/design.md §4: SP there equals SP at its RETs), so SP points at the return address. */
static __always_inline __s64 return_offset(struct pt_regs *ctx, struct probe_hit *hit)
{
	__u64 ret = 0;
	long err;

	if (layout.ptr_size == 4)
		err = bpf_probe_read_user(&ret, 4, (void *)ctx->sp);
	else
		err = bpf_probe_read_user(&ret, 8, (void *)ctx->sp);
	if (err || !ret)
		return 0;
	return (__s64)(ret - (ctx->ip - hit->site_offset));
}

/* Fills a record's header (`return_offset` on ENTER records). */
static __always_inline void fill_head(struct graph_event *e, struct probe_hit *hit, __u64 goid,
				     enum graph_event_kind kind, __u64 now, __s64 return_offset)
{
	e->ts_ns = now;
	e->goid = goid;
	e->depth = hit->key.depth;
	e->tgid = hit->key.tgid;
	e->func_id = hit->func_id;
	e->kind = kind;
	e->pad = 0;
	e->return_offset = return_offset;
}

/* Counts one record lost. */
static __always_inline void count_lost(void)
{
	struct graph_stats *s = counters();

	if (s)
		__sync_fetch_and_add(&s->lost, 1);
}

/* --args: emits the record with the site's capture; counts it lost when it cannot. */
static __always_inline void emit_captured(struct probe_hit *hit, struct pt_regs *ctx, __u64 goid,
					  enum graph_event_kind kind, __u64 now, __s64 return_offset)
{
	__u32 zero = 0, plan_key = fetch_plan_key(hit);
	struct args_fetch *plan = bpf_map_lookup_elem(&fetch_plans, &plan_key);
	struct graph_args_event *r = bpf_map_lookup_elem(&scratch, &zero);
	struct pt_regs regs;
	__u64 size;

	/* The capture indexes registers, which the verifier allows on a copy, not on ctx. */
	if (!plan || !r || bpf_probe_read_kernel(&regs, sizeof(regs), ctx)) {
		count_lost();
		return;
	}
	fill_head(&r->head, hit, goid, kind, now, return_offset);
	r->capture.ts_ns = now;
	r->capture.goid = goid;
	r->capture.pid = hit->key.tgid;
	r->capture.tid = hit->tid;
	r->capture.func_id = hit->func_id;
	r->capture.kind = hit->kind;
	r->capture.n_callers = 0;
	size = offsetof(struct graph_args_event, capture) +
	       capture_frame(&r->capture, plan, &regs, hit->site_offset, &layout);
	if (size > sizeof(*r))
		size = sizeof(*r);
	if (bpf_ringbuf_output(&events, r, size, ringbuf_flags(&events, size, wakeup_watermark)))
		count_lost();
}

/* Emits one record (with the capture when --args, except GOEXIT; an ENTER with its return
 * offset); counts it lost when the ring has no room. */
static __always_inline void emit(struct probe_hit *hit, struct pt_regs *regs, __u64 goid,
				 enum graph_event_kind kind, __u64 now)
{
	struct graph_event *e;
	__u64 size = sizeof(*e);
	__s64 ret_off = kind == GRAPH_ENTER ? return_offset(regs, hit) : 0;

	if (capture_args && kind != GRAPH_GOEXIT) {
		emit_captured(hit, regs, goid, kind, now, ret_off);
		return;
	}
	e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e) {
		count_lost();
		return;
	}
	fill_head(e, hit, goid, kind, now, ret_off);
	bpf_ringbuf_submit(e, ringbuf_flags(&events, size, wakeup_watermark));
}

/* --breakdown, at a RET: the returning call's breakdown as a GRAPH_BREAKDOWN record, before
 * its EXIT record; nothing when its start was not followed (user space then names its whole
 * time unattributed); counted lost when the ring has no room. */
static __always_inline void emit_breakdown(struct probe_hit *hit, __u64 goid, __u64 now)
{
	__u32 zero = 0;
	struct graph_breakdown_event *r = bpf_map_lookup_elem(&breakdown_scratch, &zero);
	__u64 size = sizeof(*r);

	if (!r)
		return;
	follow_leave(hit, now, &r->breakdown);
	if (!r->breakdown.followed)
		return;
	fill_head(&r->head, hit, goid, GRAPH_BREAKDOWN, now, 0);
	if (bpf_ringbuf_output(&events, r, size, ringbuf_flags(&events, size, wakeup_watermark)))
		count_lost();
}

static __always_inline int graph_site(struct pt_regs *ctx)
{
	struct probe_hit hit = {};
	struct graph_g_key key = {};
	struct graph_inside *in, opened = {};
	struct graph_stats *s;
	__u64 now, goid = 0;
	bool is_root, is_ret, stale, late;

	if (breakdown && (bpf_get_attach_cookie(ctx) & COOKIE_KIND_MASK) == SITE_SCHED)
		return sched_site(ctx, bpf_get_attach_cookie(ctx));
	/* Not before: the scheduler's sites take an instant only for a followed goroutine. */
	now = bpf_ktime_get_ns();
	if (!probe_prologue(ctx, ctx, &layout, now, &hit))
		return 0;
	if (!hit.key.g) {
		s = counters();
		if (s && hit.phase == GATE_ARMED)
			__sync_fetch_and_add(&s->unreadable, 1);
		return 0;
	}
	is_root = hit.func_id < n_roots;
	is_ret = hit.kind != SITE_ENTRY;
	key.g = hit.key.g;
	key.tgid = hit.key.tgid;
	in = bpf_map_lookup_elem(&inside, &key);
	if (!in && !(is_root && !is_ret)) {
		/* A ROOT call already running when the gate opened, unless its entry may not have
		 * been stored (struct gate). */
		if (is_root && hit.kind == SITE_RET) {
			s = counters();
			if (s && gate_unseen_is_lost())
				__sync_fetch_and_add(&s->unmatched, 1);
			else if (s)
				__sync_fetch_and_add(&s->in_flight_at_start, 1);
		}
		return 0;
	}
	bpf_probe_read_user(&goid, 8, (void *)(hit.key.g + g_goid));
	if (hit.func_id == goexit_id) {
		/* Only an entry can be here (goexit1 never returns). */
		if (!in)
			return 0;
		late = in->late;
		if (!bpf_map_delete_elem(&inside, &key))
			gate_removed(late);
		if (late)
			return 0;
		if (in->goid == goid) {
			emit(&hit, ctx, goid, GRAPH_GOEXIT, now);
		} else {
			s = counters();
			if (s)
				__sync_fetch_and_add(&s->stale, 1);
		}
		return 0;
	}
	if (in) {
		/* The ROOT frame is gone when g now runs another goroutine, when this frame lies
		 * above it, or when a ROOT function starts at its very depth. */
		stale = in->goid != goid || hit.key.depth < in->root_depth ||
			(is_root && !is_ret && hit.key.depth == in->root_depth);
		if (stale) {
			late = in->late;
			if (!bpf_map_delete_elem(&inside, &key))
				gate_removed(late);
			s = counters();
			if (s && !late)
				__sync_fetch_and_add(&s->stale, 1);
			in = NULL;
			if (!(is_root && !is_ret))
				return 0;
		}
	}
	if (in && in->late) {
		/* ROOT was entered after close_ns: followed only to its RET, never reported. */
		if (is_root && is_ret && hit.key.depth == in->root_depth &&
		    !bpf_map_delete_elem(&inside, &key))
			gate_removed(true);
		return 0;
	}
	if (!in) {
		opened.root_depth = hit.key.depth;
		opened.goid = goid;
		opened.late = hit.phase == GATE_DRAINING;
		if (bpf_map_update_elem(&inside, &key, &opened, BPF_NOEXIST)) {
			gate_store_failed();
			s = counters();
			if (s && !opened.late)
				__sync_fetch_and_add(&s->lost, 1);
			return 0;
		}
		gate_stored(opened.late);
		if (opened.late)
			return 0;
	}
	if (breakdown && is_ret)
		emit_breakdown(&hit, goid, now);
	emit(&hit, ctx, goid,
	     !is_ret ? GRAPH_ENTER : hit.kind == SITE_TAIL_RET ? GRAPH_TAIL_EXIT : GRAPH_EXIT, now);
	if (breakdown && !is_ret)
		follow_enter(&hit, now);
	if (in && is_ret && is_root && hit.key.depth == in->root_depth &&
	    !bpf_map_delete_elem(&inside, &key))
		gate_removed(false);
	return 0;
}

GOTRACE_UPROBE_PROGRAMS(graph, graph_site)
GOTRACE_SCHED_SWITCH(graph_sched_switch)
