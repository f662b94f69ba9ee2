/* The prologue every gotrace probe shares: decoding the attach cookie, the process filter,
 * finding the current goroutine (docs/design.md §5) and the frame key (§4). Each
 * program defines `layout` in its .rodata. */
#ifndef GO_RUNTIME_BPF_H
#define GO_RUNTIME_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "gotrace.h"
#include "maps.bpf.h"

/* The gate of exact edges (gotrace.h, struct gate): its own section, so that user space finds
 * it by name and writes the instants through its mmapped copy. */
struct gate gate SEC(".data.gate") = {};

/* The phase the instant `now` lies in (enum gate_phase). */
static __always_inline enum gate_phase gate_phase(__u64 now)
{
	__u64 open = *(volatile __u64 *)&gate.open_ns;
	__u64 close = *(volatile __u64 *)&gate.close_ns;
	__u64 shut = *(volatile __u64 *)&gate.shut_ns;

	if (shut && now >= shut)
		return GATE_SHUT;
	if (!open || now < open)
		return GATE_ATTACHING;
	if (close && now >= close)
		return GATE_DRAINING;
	return GATE_ARMED;
}

/* One more key in the program's map of starts; `late`: it holds only late calls. */
static __always_inline void gate_stored(bool late)
{
	__s64 before = __sync_fetch_and_add(&gate.starts, 1);

	if (late)
		__sync_fetch_and_add(&gate.late, 1);
	if (before + 1 >= *(volatile __s64 *)&gate.start_limit)
		gate.evicting = 1;
}

/* One key fewer in the map of starts (`late` as it was stored or last changed). */
static __always_inline void gate_removed(bool late)
{
	__sync_fetch_and_add(&gate.starts, -1);
	if (late)
		__sync_fetch_and_add(&gate.late, -1);
}

/* A key changed between holding only late calls and not. */
static __always_inline void gate_relabelled(bool was_late, bool is_late)
{
	if (was_late != is_late)
		__sync_fetch_and_add(&gate.late, is_late ? 1 : -1);
}

/* A start could not be stored: from now on a return without its entry may be its. */
static __always_inline void gate_store_failed(void)
{
	gate.evicting = 1;
}

/* Whether a return without its entry is lost (its start may have been evicted or not
 * stored) rather than a call that began before open_ns. */
static __always_inline bool gate_unseen_is_lost(void)
{
	return *(volatile __u32 *)&gate.evicting;
}

/* GDT index of the first TLS descriptor on x86 (arch/x86/include/asm/segment.h). */
#define GDT_ENTRY_TLS_MIN_X86 12

/* Base address of the 32-bit TLS segment selected by the task's %gs. */
static __always_inline __u64 gs_tls_base(struct task_struct *task)
{
	__u16 gsindex = BPF_CORE_READ(task, thread.gsindex);
	__u32 idx = (gsindex >> 3) - GDT_ENTRY_TLS_MIN_X86;
	__u64 desc = 0;

	if (idx >= 3)
		return 0;
	bpf_core_read(&desc, sizeof(desc), &task->thread.tls_array[idx]);
	/* x86 segment descriptor: base bits 0-23 at bits 16-39, bits 24-31 at bits 56-63. */
	return ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24);
}

/* The g pointer of the goroutine running on this thread, or 0 if it cannot be read. */
static __always_inline __u64 current_g(struct pt_regs *ctx, const volatile struct go_layout *l)
{
	struct task_struct *task;
	__u64 base, g = 0;

	switch (l->g_source) {
	case G_FROM_R14:
		/* Through a register: otherwise the compiler may merge this load with the other
		 * cases' loads of g into one load from a ctx-or-stack pointer, which the verifier
		 * rejects ("dereference of modified ctx ptr"). */
		g = ctx->r14;
		barrier_var(g);
		return g;
	case G_FROM_FS_TLS:
		task = bpf_get_current_task_btf();
		base = BPF_CORE_READ(task, thread.fsbase);
		bpf_probe_read_user(&g, 8, (void *)(base + l->tls_offset));
		return g;
	case G_FROM_GS_TLS:
		task = bpf_get_current_task_btf();
		base = gs_tls_base(task);
		if (!base)
			return 0;
		bpf_probe_read_user(&g, 4, (void *)(base + l->tls_offset));
		return g;
	}
	return 0;
}

/* g.stack.hi of goroutine g. */
static __always_inline __u64 g_stack_hi(__u64 g, const volatile struct go_layout *l)
{
	__u64 hi = 0;

	bpf_probe_read_user(&hi, l->ptr_size, (void *)(g + l->g_stack_hi));
	return hi;
}

/* The overload guard's count of hits, one row per CPU, and its dropped marks (gotrace.h, enum
 * guard_layout). Plain mmapable arrays rather than a per-CPU map: user space sums every slot of
 * every row every ~100 ms through its mapping, without a syscall; each CPU adds in its own
 * cache lines only (an uncontended atomic add: tens of cycles against the µs of a trap,
 * bench/guard_counter.sh). Both sized before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} guard_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct guard_drop);
} guard_dropped SEC(".maps");

/* Counts one hit of a site whose cookie has function field `field` and kind `kind` in this
 * CPU's row (a dropped function's too: its trap is paid until its uprobes are gone); false
 * when the guard has dropped its function (the hit then counts nowhere else).
 * Without a guard (guard_stride 0) every hit is admitted uncounted. */
static __always_inline bool guard_admits(const volatile struct go_layout *l, __u32 field,
					 enum site_kind kind)
{
	__u32 stride = l->guard_stride;

	if (!stride)
		return true;
	__u32 slot = kind == SITE_INLINE ? l->guard_inline_base + field :
		     field * GUARD_SLOTS_PER_FUNC +
			     (kind == SITE_ENTRY || kind == SITE_ENTRY_IF_NOT_TAKEN ?
				      GUARD_SLOT_ENTRY :
				      GUARD_SLOT_OTHER);
	if (slot >= stride)
		return true;
	__u32 index = bpf_get_smp_processor_id() * l->guard_row + slot;
	__u64 *hits = bpf_map_lookup_elem(&guard_hits, &index);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	struct guard_drop *d = bpf_map_lookup_elem(&guard_dropped, &slot);

	return !d || !*(volatile __u32 *)&d->dropped;
}

/* One probe hit, as every program starts from it. */
struct probe_hit {
	__u64 cookie;
	__u32 func_id;        /* the planned function (COOKIE_FUNC_SHIFT) */
	enum site_kind kind;  /* COOKIE_KIND_MASK */
	bool tail_caller;     /* COOKIE_TAIL_CALLER */
	__u32 tid;
	__s64 site_offset;    /* the site's signed offset from the function entry (a tail-call
	                       * target's RET may lie before it) */
	struct frame_key key; /* key.g is 0 when g could not be read (key.depth is then 0) */
	enum gate_phase phase; /* GATE_ARMED or GATE_DRAINING (other hits are dropped) */
};

/* Decodes this hit into `hit`; false when the process is filtered out, its function was
 * dropped by the overload guard, the gate ignores the instant `now` (GATE_ATTACHING,
 * GATE_SHUT), or the hit is a
 * SITE_ENTRY_IF_NOT_TAKEN whose branch is taken (JBE to morestack: not a call, the function
 * runs again from its entry), which no program counts. Such an entry is then SITE_ENTRY. `regs`
 * may be ctx or a copy of it (for g, SP and the flags; a 386 task's flags are in the same
 * pt_regs field). */
static __always_inline bool probe_prologue(struct pt_regs *ctx, struct pt_regs *regs,
					   const volatile struct go_layout *l, __u64 now,
					   struct probe_hit *hit)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	hit->key.tgid = pid_tgid >> 32;
	if (l->filter_tgid && hit->key.tgid != l->filter_tgid)
		return false;
	hit->phase = gate_phase(now);
	if (hit->phase != GATE_ARMED && hit->phase != GATE_DRAINING)
		return false;
	hit->tid = (__u32)pid_tgid;
	hit->cookie = bpf_get_attach_cookie(ctx);
	hit->func_id = hit->cookie >> COOKIE_FUNC_SHIFT;
	hit->kind = hit->cookie & COOKIE_KIND_MASK;
	hit->tail_caller = hit->cookie & COOKIE_TAIL_CALLER;
	if (!guard_admits(l, hit->func_id, hit->kind))
		return false;
	if (hit->kind == SITE_ENTRY_IF_NOT_TAKEN) {
		if (regs->flags & (X86_FLAG_CF | X86_FLAG_ZF))
			return false;
		hit->kind = SITE_ENTRY;
	}
	hit->site_offset = (__s64)hit->cookie >> COOKIE_SITE_SHIFT; /* sign-extends */
	hit->key.g = current_g(regs, l);
	hit->key.depth = hit->key.g ? g_stack_hi(hit->key.g, l) - PT_REGS_SP(regs) : 0;
	return true;
}

/* Whether x86 condition code `cc` (the low nibble of a Jcc's 7x opcode: O, B, E, BE, S, P, L,
 * LE, each followed by its negation) holds for `flags` (Intel SDM Vol. 1 Table B-1). */
static __always_inline bool x86_condition(__u64 flags, __u32 cc)
{
	bool cf = flags & X86_FLAG_CF, zf = flags & X86_FLAG_ZF, sf = flags & X86_FLAG_SF;
	bool of = flags & X86_FLAG_OF, pf = flags & X86_FLAG_PF;
	bool holds;

	switch ((cc >> 1) & 7) {
	case 0: holds = of; break;
	case 1: holds = cf; break;
	case 2: holds = zf; break;
	case 3: holds = cf || zf; break;
	case 4: holds = sf; break;
	case 5: holds = pf; break;
	case 6: holds = sf != of; break;
	default: holds = zf || sf != of; break;
	}
	return holds != (cc & 1);
}

/* Ring-buffer submit flags: no wake-up per event (docs/design.md §10), but a forced one
 * once the ring holds more than `watermark` bytes, so that the consumer thread, blocked in
 * epoll, drains a burst long before it fills the ring (src/session/drain.rs). */
static __always_inline __u64 ringbuf_flags(void *ring, __u64 adding, __u64 watermark)
{
	return bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) + adding > watermark ?
		       BPF_RB_FORCE_WAKEUP :
		       BPF_RB_NO_WAKEUP;
}

/* Defines a command's program `name` twice, for the two attach types: SEC("uprobe.multi") (one
 * multi-uprobe link for every site, Linux 6.6+) and SEC("uprobe") (one perf-event uprobe per
 * site); user space loads the one the kernel supports (src/session/attach.rs). */
/* Set to 1 by user space when a per-site session stops (src/session/attach.rs): from then on
 * the per-site programs return at once, so the results are final and printed while the
 * uprobes, slow to take off before Linux 6.6, are still being removed. */
ARRAY_MAP(disarmed, __u32);

static __always_inline int is_disarmed(void)
{
	__u32 zero = 0, *flag = bpf_map_lookup_elem(&disarmed, &zero);

	return flag && *flag;
}

#define GOTRACE_UPROBE_PROGRAMS(name, site_fn)            \
	SEC("uprobe.multi")                               \
	int name##_multi(struct pt_regs *ctx)             \
	{                                                 \
		return site_fn(ctx);                      \
	}                                                 \
	SEC("uprobe")                                     \
	int name##_single(struct pt_regs *ctx)            \
	{                                                 \
		if (is_disarmed())                        \
			return 0;                         \
		return site_fn(ctx);                      \
	}

#endif
