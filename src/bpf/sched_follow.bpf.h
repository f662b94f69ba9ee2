/* --breakdown: following each goroutine inside a traced call through Go's scheduler and the
 * kernel's (docs/design.md §18). A goroutine enters the `followed` map at its first open
 * traced call and leaves it when its last one returns; while there, every state change the
 * runtime makes (runtime.casgstatus; entersyscall/exitsyscall, which Go 1.26+ make without
 * it) and every switch of the thread it runs on (sched_switch) closes the interval since the
 * last one into the part it belongs to (struct sched_counters). A call's breakdown is the
 * difference between the goroutine's counters at its return and at its entry (map
 * `sched_starts`, by frame key and function), so nested calls each get their own. Every other goroutine's
 * transition costs one hash lookup, and none while no goroutine is followed at all (the
 * scheduler's probes and sched_switch return first while `followed_count` is 0). The including
 * program defines `layout` and sets `breakdown` and `sched` in its .rodata. */
#ifndef SCHED_FOLLOW_BPF_H
#define SCHED_FOLLOW_BPF_H

#include "go_runtime.bpf.h"
#include "maps.bpf.h"

/* Whether --breakdown is on. */
const volatile __u32 breakdown = 0;
/* Where casgstatus's arguments and the g fields are. */
const volatile struct sched_layout sched = {};

/* Goroutines inside a traced call. Sized before load. */
HASH_MAP(followed, struct graph_g_key, struct followed_g);

/* Thread id -> the followed goroutine that last ran on it (checked against followed_g.tid). */
HASH_MAP(follow_threads, __u32, struct graph_g_key);

/* An open call: its frame key and its function. A tail caller and its tail callee share one
 * frame key (calls_in_flight.bpf.h) and are open at once; each keeps its own start. */
struct sched_start_key {
	struct frame_key frame;
	__u32 func_id;
	__u32 pad;
};

/* Each open call's copy of its goroutine's counters at entry. Sized like the map of starts. */
LRU_HASH_MAP(sched_starts, struct sched_start_key, struct sched_counters);

/* What --breakdown could not follow, counted per CPU. */
PERCPU_ARRAY_MAP(sched_stat, struct sched_stats);

/* How many goroutines `followed` holds, counted as they enter and leave it. */
__s64 followed_count = 0;

/* Whether any goroutine is followed. A goroutine that enters `followed` on another CPU runs
 * there: none of its transitions can happen here before that CPU counts it. */
static __always_inline bool following(void)
{
	return *(volatile __s64 *)&followed_count != 0;
}

/* A zeroed value to insert from (too big for the BPF stack). */
static const struct followed_g no_follow = {};

/* Closes the interval since f->since_ns into the part f's state puts it in. */
static __always_inline void follow_flush(struct followed_g *f, __u64 now)
{
	__u64 d = now > f->since_ns ? now - f->since_ns : 0;
	__u32 reason = f->reason;

	f->since_ns = now;
	switch (f->state) {
	case FOLLOW_RUNNING:
		if (!f->off_cpu) {
			f->c.oncpu_ns += d;
		} else if (f->preempted) {
			f->c.runnable_ns += d;
			f->c.descheduled_ns += d;
		} else {
			f->c.syscall_ns += d;
		}
		break;
	case FOLLOW_RUNNABLE:
		f->c.runnable_ns += d;
		break;
	case FOLLOW_SYSCALL:
		f->c.syscall_ns += d;
		break;
	case FOLLOW_BLOCKED:
		if (reason >= BREAKDOWN_REASONS)
			reason = BREAKDOWN_REASONS - 1;
		f->c.blocked_ns[reason & (BREAKDOWN_REASONS - 1)] += d;
		break;
	default:
		f->c.unknown_ns += d;
		break;
	}
}

/* The thread f ran on is seen running (`exec_ns`: its CPU time now) while f says it is
 * switched out: the kernel ran it again without a sched_switch this program saw (seen on this
 * VM's kernel with bpftrace too: a thread switched out twice with no switch-in between). The
 * CPU time it had since its switch-out is on-CPU time of the interval being closed; only the
 * rest stays descheduled (or syscall). Call before follow_flush. */
static __always_inline void follow_missed_switch_in(struct followed_g *f, __u64 exec_ns, __u64 now)
{
	struct sched_stats *stats;
	__u32 zero = 0;
	__u64 ran, span;

	if (!f->off_cpu || f->state != FOLLOW_RUNNING || exec_ns <= f->out_exec_ns ||
	    now <= f->since_ns)
		return;
	stats = bpf_map_lookup_elem(&sched_stat, &zero);
	if (stats)
		stats->switch_ins_missed++;
	ran = exec_ns - f->out_exec_ns;
	span = now - f->since_ns;
	if (ran > span)
		ran = span;
	f->c.oncpu_ns += ran;
	f->since_ns += ran;
	f->out_exec_ns = exec_ns;
}

/* This thread's CPU time so far (se.sum_exec_runtime: exact at a switch, else as of the last
 * scheduler tick). */
static __always_inline __u64 thread_exec_ns(struct task_struct *task)
{
	return BPF_CORE_READ(task, se.sum_exec_runtime);
}

/* follow_flush from a probe on thread `tid`: when that is the thread f runs on, it is on its
 * CPU now, which makes good a switch-in no sched_switch reported (its CPU time as of the last
 * tick). */
static __always_inline void follow_flush_here(struct followed_g *f, __u32 tid, __u64 now)
{
	if (f->tid == tid)
		follow_missed_switch_in(f, thread_exec_ns(bpf_get_current_task_btf()), now);
	follow_flush(f, now);
}

/* The goroutine runs on this thread, on its CPU, from now. */
static __always_inline void follow_running(struct followed_g *f, struct graph_g_key *key,
					   __u32 tid, __u32 state)
{
	struct graph_g_key *on_thread = bpf_map_lookup_elem(&follow_threads, &tid);

	f->state = state;
	f->off_cpu = 0;
	f->preempted = 0;
	f->tid = tid;
	if (!on_thread || on_thread->g != key->g || on_thread->tgid != key->tgid)
		bpf_map_update_elem(&follow_threads, &tid, key, BPF_ANY);
}

/* The goroutine is no longer followed. */
static __always_inline void follow_end(struct followed_g *f, struct graph_g_key *key)
{
	__u32 tid = f->tid;
	struct graph_g_key *on_thread = bpf_map_lookup_elem(&follow_threads, &tid);

	if (on_thread && on_thread->g == key->g && on_thread->tgid == key->tgid)
		bpf_map_delete_elem(&follow_threads, &tid);
	if (bpf_map_delete_elem(&followed, key) == 0)
		__sync_fetch_and_add(&followed_count, -1);
}

/* follow_enter's work. A global function, as follow_leave is: its locals stay out of the
 * including program's stack frame (args' would pass 512 bytes). */
__noinline int follow_enter_call(struct probe_hit *hit, __u64 now)
{
	struct sched_start_key start_key = {};
	struct graph_g_key gkey = {};
	struct followed_g *f;
	__u64 goid = 0;

	if (!hit || !breakdown)
		return 0;
	gkey.g = hit->key.g;
	gkey.tgid = hit->key.tgid;
	bpf_probe_read_user(&goid, 8, (void *)(hit->key.g + sched.g_goid));
	f = bpf_map_lookup_elem(&followed, &gkey);
	if (f && f->goid != goid) {
		/* A g reused by a later goroutine: the earlier one's calls never returned. */
		if (bpf_map_delete_elem(&followed, &gkey) == 0)
			__sync_fetch_and_add(&followed_count, -1);
		f = NULL;
	}
	if (!f) {
		if (bpf_map_update_elem(&followed, &gkey, &no_follow, BPF_NOEXIST) == 0) {
			__sync_fetch_and_add(&followed_count, 1);
			f = bpf_map_lookup_elem(&followed, &gkey);
		}
		if (!f) {
			__u32 zero = 0;
			struct sched_stats *s = bpf_map_lookup_elem(&sched_stat, &zero);

			if (s)
				s->unfollowed++;
			return 0;
		}
		f->goid = goid;
		f->since_ns = now;
		f->tid = 0;
	}
	follow_flush_here(f, hit->tid, now);
	follow_running(f, &gkey, hit->tid, FOLLOW_RUNNING);
	f->open_calls++;
	start_key.frame = hit->key;
	start_key.func_id = hit->func_id;
	bpf_map_update_elem(&sched_starts, &start_key, &f->c, BPF_ANY);
	return 0;
}

/* A traced call enters on the hit's goroutine: follow it (or go on following it) and keep
 * its counters as the call's start. Without --breakdown the verifier drops the call. */
static __always_inline void follow_enter(struct probe_hit *hit, __u64 now)
{
	if (breakdown)
		follow_enter_call(hit, now);
}

/* A traced call returns (matched): its breakdown into `out`; the goroutine is no longer
 * followed once its last traced call returned. A global function, so that the verifier checks
 * its loop once rather than on every path of the program that calls it. */
__noinline int follow_leave(struct probe_hit *hit, __u64 now, struct sched_breakdown *out)
{
	struct graph_g_key gkey = {};
	struct sched_start_key key = {};
	struct sched_counters *start;
	struct followed_g *f;

	if (!hit || !out)
		return 0;
	/* A map key from the stack: before 6.2 the verifier takes no argument memory as one. */
	key.frame = hit->key;
	key.func_id = hit->func_id;
	gkey.g = key.frame.g;
	gkey.tgid = key.frame.tgid;
	out->followed = 0;
	if (!breakdown)
		return 0;
	f = bpf_map_lookup_elem(&followed, &gkey);
	start = bpf_map_lookup_elem(&sched_starts, &key);
	if (!f || !start)
		return 0;
	follow_flush_here(f, hit->tid, now);
	follow_running(f, &gkey, hit->tid, FOLLOW_RUNNING);
	out->followed = 1;
	out->oncpu_ns = f->c.oncpu_ns - start->oncpu_ns;
	out->runnable_ns = f->c.runnable_ns - start->runnable_ns;
	out->descheduled_ns = f->c.descheduled_ns - start->descheduled_ns;
	out->syscall_ns = f->c.syscall_ns - start->syscall_ns;
	out->unknown_ns = f->c.unknown_ns - start->unknown_ns;
	for (__u32 i = 0; i < BREAKDOWN_REASONS; i++)
		out->blocked_ns[i] = f->c.blocked_ns[i] - start->blocked_ns[i];
	bpf_map_delete_elem(&sched_starts, &key);
	if (f->open_calls > 1)
		f->open_calls--;
	else
		follow_end(f, &gkey);
	return 0;
}

/* A SITE_SCHED probe: the runtime changes a goroutine's state. */
static __always_inline int sched_site(struct pt_regs *ctx, __u64 cookie)
{
	__u64 pid_tgid, now;
	struct graph_g_key gkey = {};
	__u32 site = cookie >> COOKIE_FUNC_SHIFT, newval = 0, tid;
	struct followed_g *f;

	if (!following())
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	gkey.tgid = pid_tgid >> 32;
	tid = (__u32)pid_tgid;
	if (layout.filter_tgid && gkey.tgid != layout.filter_tgid)
		return 0;
	if (site == SCHED_CASGSTATUS) {
		if (sched.in_registers) {
			gkey.g = ctx->ax;
			newval = (__u32)ctx->cx;
		} else {
			__u64 sp = PT_REGS_SP(ctx);

			bpf_probe_read_user(&gkey.g, layout.ptr_size == 4 ? 4 : 8,
					    (void *)(sp + sched.gp_sp_offset));
			bpf_probe_read_user(&newval, 4, (void *)(sp + sched.newval_sp_offset));
		}
	} else {
		gkey.g = current_g(ctx, &layout);
		newval = site == SCHED_ENTERSYSCALL ? GO_GSYSCALL : GO_GRUNNING;
	}
	f = bpf_map_lookup_elem(&followed, &gkey);
	if (!f)
		return 0;
	now = bpf_ktime_get_ns();
	follow_flush_here(f, tid, now);
	switch (newval) {
	case GO_GRUNNING:
	case GO_GCOPYSTACK:
		follow_running(f, &gkey, tid, FOLLOW_RUNNING);
		break;
	case GO_GSYSCALL:
		follow_running(f, &gkey, tid, FOLLOW_SYSCALL);
		break;
	case GO_GRUNNABLE:
	case GO_GPREEMPTED:
		f->state = FOLLOW_RUNNABLE;
		break;
	case GO_GWAITING: {
		__u8 reason = 0;

		bpf_probe_read_user(&reason, 1, (void *)(gkey.g + sched.g_waitreason));
		f->state = FOLLOW_BLOCKED;
		f->reason = reason;
		break;
	}
	case GO_GDEAD:
		/* The goroutine ended inside its calls (runtime.Goexit, a panic's exit). */
		follow_end(f, &gkey);
		break;
	default:
		f->state = FOLLOW_UNKNOWN;
		break;
	}
	return 0;
}

/* The kernel switches `prev` out and `next` in: a followed goroutine running on either
 * thread is off or back on its CPU from now; `runnable`: the thread switched out stays
 * runnable (preempted, or it yielded), else it sleeps in the kernel. */
static __always_inline void follow_switch(struct task_struct *task, bool off, bool runnable,
					  __u64 now)
{
	__u32 tid = BPF_CORE_READ(task, pid);
	struct graph_g_key *gkey;
	struct followed_g *f;
	__u64 exec_ns;

	if (layout.filter_tgid && BPF_CORE_READ(task, tgid) != layout.filter_tgid)
		return;
	gkey = bpf_map_lookup_elem(&follow_threads, &tid);
	if (!gkey)
		return;
	f = bpf_map_lookup_elem(&followed, gkey);
	if (!f || f->tid != tid || (f->state != FOLLOW_RUNNING && f->state != FOLLOW_SYSCALL))
		return;
	exec_ns = thread_exec_ns(task);
	if (off)
		follow_missed_switch_in(f, exec_ns, now);
	follow_flush(f, now);
	f->off_cpu = off;
	f->preempted = off && runnable;
	f->out_exec_ns = exec_ns;
}

/* The sched_switch program of a program that includes this header. Whether `prev` stays
 * runnable is the tracepoint's own `prev_state` (the state __schedule() acted on; kernels
 * 5.18+): prev->__state, read here, can already say TASK_RUNNING for a thread that went to
 * sleep, when a waker on another CPU runs between the dequeue and the tracepoint (kernel commit
 * fa2c3254d7cf), and the thread's sleep would be counted as descheduled. */
#define GOTRACE_SCHED_SWITCH(name)                                                      \
	SEC("tp_btf/sched_switch")                                                      \
	int BPF_PROG(name, bool preempt, struct task_struct *prev, struct task_struct *next, \
		     unsigned int prev_state)                                           \
	{                                                                               \
		if (!following())                                                       \
			return 0;                                                       \
		__u64 now = bpf_ktime_get_ns();                                         \
		bool runnable = preempt || prev_state == 0 /* TASK_RUNNING */;          \
		follow_switch(prev, true, runnable, now);                               \
		follow_switch(next, false, false, now);                                 \
		return 0;                                                               \
	}

#endif
