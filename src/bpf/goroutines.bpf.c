// SPDX-License-Identifier: GPL-2.0
/* gotrace goroutines: goroutine creation and exit events.
 * One generic program is attached at runtime.newproc1's entry site, at each of its RETs and at
 * runtime.goexit1's entry; the cookie's function (enum goroutine_func) and kind say which.
 * newproc1 runs on the system stack (g is g0): the parent is g.m.curg. Its entry and RET are
 * paired by the frame key (docs/design.md §4); the RET reads the new g (the result) and
 * its goid. goexit1 runs on the exiting goroutine itself. Code addresses are sent link-time: the
 * load bias (PIE) is the probe's IP minus newproc1's link-time entry and the cookie's site
 * offset, so a process that exited before user space saw its events is still named. */
#include "go_runtime.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
const volatile struct goroutine_layout runtime_offsets = {};
const volatile struct newproc_abi newproc = {};
/* runtime.newproc1's link-time entry (with the cookie's site offset: the load bias). */
const volatile __u64 newproc1_entry = 0;
/* Ring bytes past which a record wakes the consumer (ringbuf_flags). */
const volatile __u64 wakeup_watermark = 0;

/* newproc1 calls in flight, keyed by frame. Sized before load. */
LRU_HASH_MAP(calls, struct frame_key, struct newproc_call);

/* Go-statement wrappers that call through their closure, by link-time entry: the offset of
 * the captured word (high 32 bits) and of the code pointer in what it points at (low 32 bits),
 * as the wrapper loads them (src/gobin/start_function.rs closure_calls). Sized before load. */
HASH_MAP(closure_calls, __u64, struct closure_call);

RINGBUF_MAP(events, 1 << 24); /* resized before load: --buffer-mb */

PERCPU_ARRAY_MAP(loss_counters, struct goroutine_counters);

/* Reads a pointer-sized value of the target at addr (0 when unreadable). */
static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, layout.ptr_size, (void *)addr);
	return v;
}

/* The goid of g (goid is 8 bytes on every architecture). */
static __always_inline __u64 goid_of(__u64 g)
{
	__u64 goid = 0;

	bpf_probe_read_user(&goid, 8, (void *)(g + runtime_offsets.g_goid));
	return goid;
}

/* A newproc1 value: a register (in_registers) or a pointer-sized stack slot at SP+offset. */
static __always_inline __u64 newproc_value(__u64 sp, __u64 reg, __u32 sp_offset)
{
	if (newproc.in_registers)
		return reg;
	return read_ptr(sp + sp_offset);
}

/* The parent's return addresses, by the frame-pointer chain from the BP that systemstack
 * saved in parent->sched when it switched to g0 (the BP of runtime.newproc's frame). */
static __always_inline void creation_stack(__u64 parent, struct newproc_call *call)
{
	__u64 bp = read_ptr(parent + runtime_offsets.g_sched_bp);

	for (int i = 0; i < GOROUTINE_STACK_DEPTH && bp; i++) {
		call->stack[i] = read_ptr(bp + layout.ptr_size);
		bp = read_ptr(bp);
	}
}

/* A run-time code address made link-time (0 stays 0: unknown). */
static __always_inline __u64 unbias(__u64 pc, __u64 bias)
{
	return pc ? pc - bias : 0;
}

/* The code pointer the wrapper at link-time `start_pc` will call through its closure `fn`,
 * link-time; 0 when start_pc is no such wrapper or a read fails. */
static __always_inline __u64 closure_target(__u64 fn, __u64 start_pc, __u64 bias)
{
	struct closure_call *plan = bpf_map_lookup_elem(&closure_calls, &start_pc);
	__u64 word;

	if (!plan)
		return 0;
	word = read_ptr(fn + plan->closure_offset);
	return word ? unbias(read_ptr(word + plan->target_offset), bias) : 0;
}

static __always_inline void emit(struct goroutine_counters *counters, __u32 tgid,
				 enum goroutine_event_kind kind,
				 __u64 goid, const struct newproc_call *call)
{
	struct goroutine_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		counters->lost++;
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->goid = goid;
	e->tgid = tgid;
	e->kind = kind;
	e->parent_goid = call ? call->parent_goid : 0;
	e->start_pc = call ? call->start_pc : 0;
	e->caller_pc = call ? call->caller_pc : 0;
	e->closure_pc = call ? call->closure_pc : 0;
	for (int i = 0; i < GOROUTINE_STACK_DEPTH; i++)
		e->stack[i] = call ? call->stack[i] : 0;
	bpf_ringbuf_submit(e, ringbuf_flags(&events, 0, wakeup_watermark));
}

static __always_inline int goroutine_site(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct probe_hit hit = {};
	struct goroutine_counters *counters;
	struct newproc_call call = {}, *pending;
	__u64 g, m, fn, bias, now = bpf_ktime_get_ns();
	__u64 sp = PT_REGS_SP(ctx), ax = ctx->ax, cx = ctx->cx;
	bool late;

	if (!probe_prologue(ctx, ctx, &layout, now, &hit))
		return 0;
	counters = bpf_map_lookup_elem(&loss_counters, &zero);
	if (!counters)
		return 0;
	g = hit.key.g;
	if (hit.func_id == GOROUTINE_FUNC_NEWPROC1 && hit.kind == SITE_ENTRY) {
		/* A failure here is counted once, by the RET that finds no pending call. */
		if (!g)
			return 0;
		m = read_ptr(g + runtime_offsets.g_m);
		g = m ? read_ptr(m + runtime_offsets.m_curg) : 0;
		fn = newproc_value(sp, ax, newproc.fn_sp_offset);
		if (!fn)
			return 0;
		/* No curg: the runtime itself creates the main goroutine (parent 0). */
		call.parent_goid = g ? goid_of(g) : 0;
		bias = ctx->ip - newproc1_entry - hit.site_offset;
		if (g && runtime_offsets.g_sched_bp)
			creation_stack(g, &call);
		for (int i = 0; i < GOROUTINE_STACK_DEPTH; i++)
			call.stack[i] = unbias(call.stack[i], bias);
		call.start_pc = unbias(read_ptr(fn), bias);
		call.closure_pc = closure_target(fn, call.start_pc, bias);
		call.caller_pc = unbias(newproc_value(sp, cx, newproc.callerpc_sp_offset), bias);
		/* While the gate drains, the call is stored as late: its RET emits nothing. */
		call.late = hit.phase == GATE_DRAINING;
		if (!bpf_map_update_elem(&calls, &hit.key, &call, BPF_NOEXIST)) {
			gate_stored(call.late);
			return 0;
		}
		pending = bpf_map_lookup_elem(&calls, &hit.key);
		late = pending && pending->late;
		if (bpf_map_update_elem(&calls, &hit.key, &call, BPF_ANY))
			gate_store_failed();
		else if (pending)
			gate_relabelled(late, call.late);
		else
			gate_stored(call.late);
		return 0;
	}
	if (!g) {
		if (hit.phase == GATE_ARMED)
			counters->unreadable++;
		return 0;
	}
	if (hit.func_id == GOROUTINE_FUNC_GOEXIT1) {
		/* An exit is an entry-only event: it counts while the gate is armed. */
		if (hit.phase == GATE_ARMED)
			emit(counters, hit.key.tgid, GOROUTINE_EXITED, goid_of(g), 0);
		return 0;
	}
	pending = bpf_map_lookup_elem(&calls, &hit.key);
	if (!pending) {
		/* newproc1 was already running when the gate opened, unless its call may have
		 * been evicted or not stored (struct gate). */
		if (gate_unseen_is_lost())
			counters->unpaired++;
		else
			counters->in_flight_at_start++;
		return 0;
	}
	call = *pending;
	if (!bpf_map_delete_elem(&calls, &hit.key))
		gate_removed(call.late);
	if (call.late)
		return 0;
	g = newproc_value(sp, ax, newproc.result_sp_offset);
	if (!g) {
		counters->unreadable++;
		return 0;
	}
	emit(counters, hit.key.tgid, GOROUTINE_CREATED, goid_of(g), &call);
	return 0;
}

GOTRACE_UPROBE_PROGRAMS(goroutines, goroutine_site)
