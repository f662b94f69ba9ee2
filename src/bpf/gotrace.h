/* Everything the BPF programs and the Rust side share: the attach-cookie layout, every kind and
 * limit as an enum, and every map value, plan and event struct. The Rust side never restates a
 * value: it uses the skeleton's generated copies (crate::bpf_types), which exist
 * because the anchor in shared.bpf.c puts each type in the BTF. */
#ifndef GOTRACE_H
#define GOTRACE_H

/* The attach cookie of every probe site, one layout for every program:
 * bits 0-6 the site kind (enum site_kind), bit 7 COOKIE_TAIL_CALLER (on the entry site of a
 * function that leaves by tail calls, whose SITE_TAIL_RET sites complete it), bits 8-39 the planned function's index,
 * bits 40-63 the site's signed offset from the function's entry (args derives the load bias
 * from it; a tail-call target's RET may lie before the entry). */
enum cookie_layout {
	COOKIE_KIND_MASK = 0x7f,
	COOKIE_TAIL_CALLER = 0x80,
	COOKIE_FUNC_SHIFT = 8,
	COOKIE_SITE_SHIFT = 40,
	COOKIE_SITE_BITS = 24,
};

/* What a probe site is to the function that owns it. */
enum site_kind {
	SITE_ENTRY = 0,
	SITE_RET = 1,
	/* An entry probed on the stack check's JBE/JLS: a call only when the branch is not taken
	 * (CF and ZF clear); probe_prologue drops taken hits and reports the rest as SITE_ENTRY. */
	SITE_ENTRY_IF_NOT_TAKEN = 2,
	/* A RET of a tail-call target, planned for the tail-calling function: it completes a
	 * start of that function at the same frame key and is silent otherwise (never lost). */
	SITE_TAIL_RET = 3,
	/* A probe of an inlined call (funclat, args): the cookie's function field is the site's
	 * index in the inline_sites map (struct inline_site says which function and instance), its
	 * site offset is from the entry of the function the call is inlined into. */
	SITE_INLINE = 4,
	/* A probe of the Go scheduler (--breakdown, docs/design.md §18): the cookie's function
	 * field is an enum sched_site; it never counts as a call. */
	SITE_SCHED = 5,
};

/* What a hit of an inlined call's probe means. */
enum inline_role {
	INLINE_START = 0,   /* a call starts (timed) */
	INLINE_COUNT = 1,   /* a call starts that cannot be timed: counted as untimed */
	INLINE_END = 2,     /* the call in progress ends */
};

/* When a hit of a probe on a conditional jump counts (the jump's x86 condition code on the
 * flags before it runs). */
enum branch_test {
	BRANCH_ALWAYS = 0,
	BRANCH_IF_TAKEN = 1,
	BRANCH_IF_NOT_TAKEN = 2,
};

/* One probe site of an inlined call, at its index in the inline_sites map. */
struct inline_site {
	__u32 func_id;         /* the planned function it is a call of */
	__u32 instance;        /* 1 + the instance's index: frame_key.instance of its calls */
	enum inline_role role;
	enum branch_test test;
	__u32 cc;              /* the jump's condition code (low nibble of opcode 7x) */
	__u32 fetch_plan;      /* args: the fetch_plans index of what a hit reads */
};

/* x86 EFLAGS bits the entry check reads (arch/x86/include/uapi/asm/processor-flags.h). */
enum x86_flags {
	X86_FLAG_CF = 0x1,
	X86_FLAG_PF = 0x4,
	X86_FLAG_ZF = 0x40,
	X86_FLAG_SF = 0x80,
	X86_FLAG_OF = 0x800,
};

/* log2 latency slots: slot i holds durations in [2^i, 2^(i+1)) ns (slot 0 also holds 0). */
enum hist_layout {
	GOTRACE_HIST_SLOTS = 64,
};

/* Where the current goroutine's g pointer lives (docs/design.md §5). */
enum g_source {
	G_FROM_R14 = 0,    /* amd64 register ABI (Go >= 1.17) */
	G_FROM_FS_TLS = 1, /* amd64 stack ABI: *(fsbase + tls_offset) */
	G_FROM_GS_TLS = 2, /* 386: *(gs base + tls_offset) */
};

/* Runtime facts the programs need, from the binary's DWARF or the per-version table. */
struct go_layout {
	enum g_source g_source;
	__s32 tls_offset;    /* offset of g from the TLS base (G_FROM_*_TLS) */
	__u32 ptr_size;      /* 8 or 4 */
	__u32 g_stack_hi;    /* offsetof(runtime.g, stack.hi) */
	__u32 filter_tgid;   /* 0: every process */
	__u32 guard_inline_base; /* guard slot of inlined-call site 0 (enum guard_layout) */
	__u32 guard_stride;  /* guard slots (a CPU row's length); 0: no guard */
	__u32 guard_row;     /* guard_hits index of CPU 1's row: guard_stride, or 0 for one row
	                      * shared by every CPU (GOTRACE_GUARD_SHARED_ROW, for
	                      * bench/guard_counter.sh only) */
};

/* ---- The overload guard (docs/design.md §16) ---- */

/* Every hit of every program is counted in the `guard_hits` map (go_runtime.bpf.h), before
 * anything else filters it: the trap is paid whether the program keeps the hit or not. An
 * out-of-line site of planned function F counts at slot F * GUARD_SLOTS_PER_FUNC +
 * GUARD_SLOT_ENTRY (its entry) or + GUARD_SLOT_OTHER (its RETs and tail-call targets' RETs); the
 * inlined-call site of index I (its cookie's function field) at slot go_layout.guard_inline_base
 * + I. Each CPU counts in a row of its own (`guard_hits[cpu * guard_row + slot]`, rows
 * GUARD_ROW_ALIGN-aligned): no cache line is written by two CPUs. User space sums the rows,
 * prices each slot by its site class, detaches the functions that cost the target most, and
 * sets their slots in `guard_dropped` first, so that from that instant on their hits count
 * nowhere (their calls still open are reported as dropped by the guard, not as lost or
 * unmatched). guard_stride 0: no guard (--no-guard), nothing counted. */
enum guard_layout {
	GUARD_SLOT_ENTRY = 0,
	GUARD_SLOT_OTHER = 1,
	GUARD_SLOTS_PER_FUNC = 2,
	GUARD_ROW_ALIGN = 8, /* slots (__u64) per 64-byte cache line */
};

struct guard_drop {
	__u32 dropped; /* user space: the slot's function was detached by the guard */
	__u32 pad;
};

/* Key pairing an entry with its return (docs/design.md §4). */
struct frame_key {
	__u64 g;
	__u64 depth;         /* g.stack.hi - SP at entry */
	__u32 tgid;
	__u32 instance;      /* 0: a call of the function's own code; an inlined call: 1 + the
	                      * instance's index (inline_site.instance), so that it pairs apart
	                      * from its parent's frame and from other instances in it */
};

/* A call in flight: when it started and which planned function it is. A traced function
 * entered by a tail call from a traced tail caller has the caller's frame key: the caller's
 * start is kept as the outer call until one of them completes it (calls_in_flight.bpf.h). */
struct frame_start {
	__u64 start_ns;
	__u32 func_id;
	__u32 tail_caller;     /* the entry's cookie had COOKIE_TAIL_CALLER */
	__u64 outer_start_ns;
	__u32 outer_func_id;
	__u32 has_outer;
	__u32 late;            /* enum frame_late bits */
	__u32 hidden;          /* args: the call is not shown (--where); its RET is dropped */
};

/* ---- Exact edges: the gate (docs/design.md §14) ---- */

/* Attaching or detaching thousands of sites is no instant, so no hit counts by itself: every
 * program asks the gate (one `struct gate` in its own ".data.gate" section, mmapped by user
 * space) what phase the hit's bpf_ktime_get_ns() instant lies in. The edges are instants on the
 * events' clock (CLOCK_MONOTONIC), chosen by user space a few ms ahead and written before they
 * come, so that an entry counts exactly when open_ns <= now < close_ns, and the JSON `attached`
 * and `summary` lines carry those very instants (ts_ns).
 *
 * Counting a return whose entry was not seen: the maps of starts are LRU maps, and an evicted
 * start also looks like "a return without an entry". The kernel counts the entries it holds
 * (gate.starts: +1 for each inserted key, -1 for each deleted one; a replaced value changes
 * nothing). Until the first eviction that count is exact, and an LRU map evicts only once its
 * population has come near its capacity: user space sets start_limit = capacity -
 * max(capacity / 8, (possible CPUs + 1) * 128 + possible CPUs) (the kernel keeps up to 128 free
 * nodes per CPU list, LOCAL_FREE_TARGET, and may evict when the global free list runs short of
 * them; the CPU term covers concurrent inserts). Once gate.starts has ever reached start_limit,
 * or an insert failed, `evicting` is set for good, and from then on a return without its entry
 * is `lost` (as before the gate); until then it is exactly a call that was running before
 * open_ns: `in_flight_at_start`. graph's map of goroutines inside ROOT is a plain hash (it never
 * evicts): only a failed insert sets `evicting` there. */
enum gate_phase {
	GATE_ATTACHING = 0, /* before open_ns (or open_ns still 0): every hit is ignored */
	GATE_ARMED = 1,     /* open_ns <= now < close_ns: every hit counts */
	/* close_ns <= now: an entry is "late": kept in the map only so that its return is
	 * recognised and dropped (never reported); returns complete the calls opened while armed;
	 * graph keeps following a goroutine already inside ROOT until its ROOT call returns. */
	GATE_DRAINING = 2,
	GATE_SHUT = 3,      /* shut_ns <= now: every hit is ignored (results are being read) */
};

/* frame_start.late: which of its calls began after close_ns. */
enum frame_late {
	FRAME_LATE = 1,       /* the call at this frame key */
	FRAME_OUTER_LATE = 2, /* its outer call (a tail caller's) */
};

struct gate {
	__u64 open_ns;     /* user space: entries count from this instant; 0: not yet */
	__u64 close_ns;    /* user space: entries are late from this instant; 0: not yet */
	__u64 shut_ns;     /* user space: every hit is ignored from this instant; 0: not yet */
	__s64 start_limit; /* user space, before open_ns: gate.starts that may mean eviction */
	__s64 starts;      /* BPF: keys in the program's map of starts */
	__s64 late;        /* BPF: of them, keys holding only late calls */
	__u32 evicting;    /* BPF, sticky: a start may have been evicted (or not stored) */
	__u32 pad;
};

/* ---- --breakdown: following goroutines through the scheduler (docs/design.md §18) ---- */

/* Which runtime function a SITE_SCHED probe sits at (its entry). */
enum sched_site {
	SCHED_CASGSTATUS = 0,  /* runtime.casgstatus(gp *g, oldval, newval uint32) */
	SCHED_ENTERSYSCALL = 1, /* runtime.entersyscall (Go >= 1.26 skips casgstatus there) */
	SCHED_EXITSYSCALL = 2,  /* runtime.exitsyscall (likewise) */
};

/* The runtime's goroutine states (runtime2.go, every Go release 1.14-1.27). */
enum go_gstatus {
	GO_GRUNNABLE = 1,
	GO_GRUNNING = 2,
	GO_GSYSCALL = 3,
	GO_GWAITING = 4,
	GO_GDEAD = 6,
	GO_GCOPYSTACK = 8,
	GO_GPREEMPTED = 9,
};

enum breakdown_limits {
	/* Per-goroutine blocked counters, by the waitReason byte; the last slot holds every
	 * reason at or past it (Go 1.27 has 47 names). */
	BREAKDOWN_REASONS = 64,
};

/* What a followed goroutine is doing since `since_ns`. */
enum follow_state {
	FOLLOW_RUNNING = 0,  /* _Grunning: on-CPU, or off it when its thread is switched out */
	FOLLOW_RUNNABLE = 1, /* _Grunnable, _Gpreempted: waiting for a P */
	FOLLOW_SYSCALL = 2,  /* _Gsyscall */
	FOLLOW_BLOCKED = 3,  /* _Gwaiting, for follow.reason */
	FOLLOW_UNKNOWN = 4,  /* a state gotrace does not classify */
};

/* Time a goroutine spent in each part since it was first followed; a call's breakdown is the
 * difference between its return's and its entry's copies. */
struct sched_counters {
	__u64 oncpu_ns;
	__u64 runnable_ns;    /* waiting for a P, plus descheduled_ns */
	__u64 descheduled_ns; /* of runnable_ns: running, on a thread switched out runnable */
	__u64 syscall_ns;     /* in a system call, or running on a thread asleep in the kernel */
	__u64 unknown_ns;
	__u64 blocked_ns[BREAKDOWN_REASONS];
};

/* A goroutine inside at least one traced call (map `followed`, key struct graph_g_key). */
struct followed_g {
	struct sched_counters c;
	__u64 since_ns;
	__u64 goid;
	__u32 state;       /* enum follow_state */
	__u32 reason;      /* FOLLOW_BLOCKED: the waitReason byte */
	__u32 tid;         /* the thread it last ran on */
	__u32 off_cpu;     /* that thread is switched out */
	__u32 preempted;   /* off_cpu: the thread is still runnable (preempted, or it yielded) */
	__u32 open_calls;  /* traced calls open on it */
	__u64 out_exec_ns; /* its thread's CPU time (se.sum_exec_runtime) at its last switch */
};

/* Where runtime.casgstatus's gp and newval are at its entry: in registers (amd64 register
 * ABI: RAX, ECX) or at these offsets from SP (stack ABI), and the g fields read. */
struct sched_layout {
	__u32 in_registers;
	__u32 gp_sp_offset;
	__u32 newval_sp_offset;
	__u32 g_waitreason;
	__u32 g_goid;
	__u32 pad;
};

/* One call's breakdown in its return record: its parts sum to its duration, less
 * unattributed time (user space names that part). */
struct sched_breakdown {
	__u64 oncpu_ns;
	__u64 runnable_ns;
	__u64 descheduled_ns;
	__u64 syscall_ns;
	__u64 unknown_ns;
	__u64 blocked_ns[BREAKDOWN_REASONS]; /* by waitReason byte (as sched_counters) */
	__u32 followed; /* 0: the goroutine or the call's start was not followed */
	__u32 pad;
};

/* funclat --breakdown keeps, per function and CPU, this many of its slowest calls. */
enum func_breakdown_limits {
	FUNC_SLOWEST = 3,
};

/* One of a function's slowest calls. */
struct slow_call {
	__u64 duration_ns;
	__u64 ts_ns;        /* its return */
	__u64 goid;
	struct sched_breakdown breakdown;
};

/* funclat --breakdown, per function, per CPU: the sums of its calls' breakdowns and its
 * slowest calls (in no order; an empty slot has duration 0). */
struct func_breakdown {
	__u64 calls;        /* matched calls, followed or not */
	__u64 duration_ns;  /* their durations' sum */
	struct sched_breakdown total; /* the followed ones' parts summed (total.followed: count) */
	struct slow_call slowest[FUNC_SLOWEST];
};

/* Counters of --breakdown (per CPU). */
struct sched_stats {
	__u64 unfollowed; /* calls whose goroutine could not be followed (map full) */
	__u64 switch_ins_missed; /* a followed goroutine's thread ran again with no sched_switch
				  * seen: made good from its CPU time (follow_missed_switch_in) */
};

/* ---- gotrace funclat ---- */

/* Per function, per CPU: the latency histogram and the loss counters. */
struct func_hist {
	__u64 slots[GOTRACE_HIST_SLOTS];
	__u64 count;
	__u64 total_ns;
	__u64 unmatched;     /* entries whose return never came (panic, Goexit) */
	__u64 lost;          /* calls not measured: entry not recorded (map full, g unreadable)
	                      * or a return whose entry may have been evicted (struct gate) */
	__u64 in_flight_at_start; /* returns of calls that began before open_ns */
	__u64 in_flight_at_end;   /* user space: calls still open after the drain */
	__u64 inlined;       /* of `count`: calls of inlined instances */
	__u64 untimed;       /* of `inlined`: calls counted where they cannot be timed */
};

/* ---- gotrace funclat --by ---- */

/* With --by EXPR, each call's latency also goes into a histogram of its key: EXPR's value at
 * the entry (read by the function's fetch plan into an args_event, as gotrace args reads a
 * field path), kept in the by_hists hash map up to --max-keys distinct keys; later keys go to
 * the function's BY_OTHER histogram. */
enum by_limits {
	BY_KEY_BYTES = 128, /* longest string key (funclat --strsize) */
};

/* What a histogram's key is. */
enum by_key_kind {
	BY_VALUE = 0,      /* a value: `len` bytes (a string's, or an integer's little-endian) */
	BY_UNREADABLE = 1, /* EXPR could not be read: a nil pointer on the way, unreadable memory */
	BY_OTHER = 2,      /* any value after --max-keys distinct keys */
	BY_NOT_READ = 3,   /* the call's entry was not keyed (its key was evicted, or the function
			    * has no parameter EXPR starts from, or a tail call shared its frame) */
};

/* Where a function's key is in its captured args_event. */
enum by_source {
	BY_SOURCE_NONE = 0,   /* the function has no parameter EXPR starts from */
	BY_SOURCE_FRAME = 1,  /* `size` bytes at frame offset `off` (integers, booleans) */
	BY_SOURCE_STRING = 2, /* the bytes of extra read 0; the string's length at `len_off` */
};

/* One planned function's key (the by_plans map, by function id). `chased`: the key is read
 * through field path 0, whose args_event.field_status says whether it could be. */
struct by_key_plan {
	enum by_source source;
	__u32 off;
	__u32 size;
	__u32 len_off;
	__u32 chased;
	__u32 pad;
};

/* A by_hists key. Every byte past `len` is zero. */
struct by_key {
	__u32 func_id;
	enum by_key_kind kind;
	__u32 len;
	__u32 truncated; /* a string longer than --strsize: its first --strsize bytes */
	__u8 bytes[BY_KEY_BYTES];
};

/* ---- gotrace args ---- */

/* Sizes of the captured frame and of the extra reads (crate::plan::abi plans within them). */
enum args_limits {
	ARGS_REGS = 16,             /* 8-byte register slots at the start of the frame */
	ARGS_STACK_WINDOW = 384,    /* bytes of stack copied from SP */
	ARGS_GLOBALS_BYTES = 256,   /* bytes for --global values and chased field paths' values */
	ARGS_MAX_GLOBALS = 4,
	ARGS_MAX_DEREFS = 16,       /* extra reads per hit */
	ARGS_MAX_READ = 4096,       /* longest extra read */
	ARGS_DATA_CAP = 8192,       /* bytes of extra reads per event */
	ARGS_MAX_FRAMES = 16,       /* --stack return addresses */
	ARGS_MAX_FIELDS = 8,        /* field paths chased per hit (--field, --where) */
	ARGS_MAX_FIELD_STEPS = 7,   /* pointer reads after a field path's first pointer */
};

/* The slot of each integer register in args_event.regs: the amd64 register ABI's argument
 * registers in assignment order, then the others (where DWARF may put an inlined call's
 * arguments). A 386 task's registers are in the same pt_regs fields (eax in ax...). */
enum args_reg_slot {
	ARGS_REG_AX = 0,
	ARGS_REG_BX = 1,
	ARGS_REG_CX = 2,
	ARGS_REG_DI = 3,
	ARGS_REG_SI = 4,
	ARGS_REG_R8 = 5,
	ARGS_REG_R9 = 6,
	ARGS_REG_R10 = 7,
	ARGS_REG_R11 = 8,
	ARGS_REG_DX = 9,
	ARGS_REG_R12 = 10,
	ARGS_REG_R13 = 11,
	ARGS_REG_R14 = 12,
	ARGS_REG_R15 = 13,
	ARGS_REG_BP = 14,
};
_Static_assert(ARGS_REG_BP < ARGS_REGS, "every args_reg_slot fits in args_event.regs");

/* args_event.deref_len of a read that failed. */
enum args_read_status {
	ARGS_READ_FAILED = 0xffffffff,
};

/* How an extra read finds its bytes. */
enum deref_kind {
	DEREF_COUNTED = 0,       /* min(len * scale, max) bytes at the pointer */
	DEREF_STRING_HEADER = 1, /* the pointer points at a (ptr, len) string header */
	DEREF_FIXED = 2,         /* `max` bytes at the pointer + `scale` */
};

/* One extra read: offsets are into the captured frame (registers, then stack from SP). */
struct args_deref {
	__u16 ptr_off;
	__u16 len_off;
	__u32 scale; /* COUNTED: element size; FIXED: byte offset from the pointer */
	__u32 max;
	enum deref_kind kind;
};

/* A field path's value (docs/design.md §19): the pointer in the frame at base_off (a slice
 * indexed by a constant: with at least base_min_len elements, its length at base_len_off), then
 * for each step the pointer at that offset from the current one (a step's min_len: the word
 * after that pointer, a slice's length, must be at least that), then `size` bytes at `offset`
 * from the last pointer, into the globals area at area_off. */
struct args_field_step {
	__u32 offset;
	__u32 min_len;
};

struct args_field {
	__u16 base_off;
	__u16 base_len_off;
	__u32 base_min_len;
	__u32 n_steps;
	__u32 offset;
	__u32 size;
	__u32 area_off;
	struct args_field_step steps[ARGS_MAX_FIELD_STEPS];
};

/* args_event.field_status of a field path: 0 read, else what stopped it (high byte) at which
 * pointer of the chain (low byte: 0 the base, i + 1 the one step i reads). */
enum args_field_status {
	FIELD_READ = 0,
	FIELD_NIL = 0x100,          /* that pointer was nil */
	FIELD_OUT_OF_RANGE = 0x200, /* that slice was shorter than the constant index */
	FIELD_FAULT = 0x300,        /* what that pointer points at could not be read */
	FIELD_STEP_MASK = 0xff,
};

/* A global variable at link-time address `vaddr` (plus the event's load bias). */
struct args_global {
	__u64 vaddr;
	__u32 size;
	__u32 area_off; /* offset in the event's globals area */
};

/* What to capture at one kind of site of one function; the fetch_plans map holds one per
 * (function, site kind), at index func_id * ARGS_PLANS_PER_FUNC + ARGS_PLAN_<kind>. */
enum args_plan_index {
	ARGS_PLAN_ENTRY = 0,
	ARGS_PLAN_RET = 1,
	ARGS_PLAN_TAIL_RET = 2, /* the function's results at its tail callees' RETs */
	ARGS_PLANS_PER_FUNC = 3,
};

/* args --where EXPR OP CONST: decided at the entry on the capture, from field path `field`'s
 * value (its status in args_event.field_status when `chased`). */
enum where_op {
	WHERE_NONE = 0,
	WHERE_EQ = 1,
	WHERE_NE = 2,
	WHERE_LT = 3,
	WHERE_LE = 4,
	WHERE_GT = 5,
	WHERE_GE = 6,
	WHERE_PREFIX = 7, /* strings: the value starts with the constant */
};

enum where_kind {
	WHERE_SIGNED = 0,   /* an integer of `size` bytes at frame offset `off` */
	WHERE_UNSIGNED = 1, /* the same, unsigned (booleans: 0 or 1) */
	WHERE_STRING = 2,   /* the bytes of extra read `deref`; the string's length at `off` */
};

enum where_limits {
	WHERE_BYTES = 64, /* a string constant is shorter than this */
};

struct args_where {
	enum where_op op;
	enum where_kind kind;
	__u32 off;
	__u32 size;
	__u32 deref;
	__u32 chased;
	__u32 field;
	__u32 len;     /* bytes of the string constant */
	__s64 value;   /* the integer constant */
	__u8 bytes[WHERE_BYTES];
};

struct args_fetch {
	__u64 func_vaddr; /* link-time entry of the function: with the cookie's site offset,
	                   * the probed instruction's link-time address */
	__u32 stack_bytes;
	__u32 n_derefs;
	struct args_deref derefs[ARGS_MAX_DEREFS];
	__u32 n_globals;
	__u32 n_fields;
	struct args_global globals[ARGS_MAX_GLOBALS];
	struct args_field fields[ARGS_MAX_FIELDS];
	struct args_where filter; /* --where (op WHERE_NONE: none) */
};

/* One event; only the used part of `data` is sent. */
struct args_event {
	__u64 ts_ns;
	__u64 goid;
	__u64 duration_ns;
	__u32 pid;
	__u32 tid;
	__u32 func_id;
	enum site_kind kind; /* SITE_ENTRY, SITE_RET, SITE_TAIL_RET (read by that plan) or
			      * SITE_INLINE (read by the inline site's plan) */
	__u32 matched;   /* RET: 1 when its entry was seen (duration_ns is valid) */
	__u32 data_len;
	__u32 globals_failed; /* bit i: global i could not be read */
	__u32 inline_site;    /* SITE_INLINE: the site's index in inline_sites */
	__u64 load_bias;      /* run-time minus link-time address (PIE), from the probe's IP */
	__u32 n_callers;
	__u32 pad2;
	struct sched_breakdown breakdown; /* a matched RET, with --breakdown */
	__u64 callers[ARGS_MAX_FRAMES]; /* entry, --stack: return addresses, innermost first */
	__u64 regs[ARGS_REGS];
	__u8 stack[ARGS_STACK_WINDOW];
	__u8 globals[ARGS_GLOBALS_BYTES];
	__u32 deref_len[ARGS_MAX_DEREFS]; /* bytes read, or ARGS_READ_FAILED */
	__u32 field_status[ARGS_MAX_FIELDS]; /* enum args_field_status of each field path */
	__u8 data[ARGS_DATA_CAP + ARGS_MAX_READ];
};

/* Loss accounting, per CPU. */
struct args_stats {
	__u64 lost;      /* events not delivered (ring buffer full, g unreadable) and calls
	                  * whose start could not be stored */
	__u64 unmatched; /* entries overwritten without a RET */
	__u64 in_flight_at_start; /* RETs of calls that began before open_ns */
	__u64 below_min_duration; /* --min-duration: calls that returned sooner (neither event
				   * shown) */
	__u64 untimed;   /* --min-duration: calls that cannot be timed (inlined calls whose
			  * end has no probe), so never shown */
	__u64 filtered;  /* calls not shown: --where did not hold */
	__u64 where_unreadable; /* calls not shown: --where's value could not be read */
};

/* --min-duration: a call's entry record held in the kernel (args.bpf.c's `held`) until its
 * RET decides whether the call was slow enough to be shown. */
struct args_held {
	__u64 size; /* bytes of `event` that are sent */
	struct args_event event;
};

/* Key of a held entry: the call's frame and its function (a tail caller and its callee
 * share the frame). */
struct args_held_key {
	struct frame_key frame;
	__u32 func_id;
	__u32 pad;
};

/* ---- gotrace goroutines ---- */

/* The planned functions of gotrace goroutines (their index in the cookie). */
enum goroutine_func {
	GOROUTINE_FUNC_NEWPROC1 = 0, /* entry and every RET */
	GOROUTINE_FUNC_GOEXIT1 = 1,  /* entry only */
};

/* Where runtime.newproc1 keeps what the goroutines program reads: in registers (amd64
 * register ABI: fn in RAX, callerpc in RCX, the result in RAX) or at these offsets from SP
 * (stack ABI; SP at entry and at RET is the same). */
struct newproc_abi {
	__u32 in_registers;
	__u32 fn_sp_offset;
	__u32 callerpc_sp_offset;
	__u32 result_sp_offset;
};

/* Offsets of the runtime fields the goroutines program reads. */
struct goroutine_layout {
	__u32 g_goid;
	__u32 g_m;
	__u32 m_curg;
	__u32 g_sched_bp;    /* offsetof(g, sched.bp); 0: no creation stacks (--stack off) */
};

/* Return addresses of a creation stack (--stack), innermost (the go statement) first. */
enum goroutine_limits {
	GOROUTINE_STACK_DEPTH = 16,
};

enum goroutine_event_kind {
	GOROUTINE_CREATED = 0,
	GOROUTINE_EXITED = 1,
};

/* One ring-buffer record of gotrace goroutines (code addresses link-time). */
struct goroutine_event {
	__u64 ts_ns;
	__u64 goid;
	__u64 parent_goid;   /* created only */
	__u64 start_pc;      /* created only: funcval.fn */
	__u64 caller_pc;     /* created only: the go statement's return address */
	__u64 closure_pc;    /* created only: the code pointer a go wrapper calls through its
			      * closure (closure_calls map), or 0 */
	__u32 tgid;
	enum goroutine_event_kind kind;
	__u64 stack[GOROUTINE_STACK_DEPTH]; /* created, with --stack: 0-terminated */
};

/* How a go wrapper calls through its closure (closure_calls map value, by the wrapper's
 * link-time entry): the code pointer is *(*(fn + closure_offset) + target_offset). */
struct closure_call {
	__u32 closure_offset; /* the captured word's offset in the wrapper's closure */
	__u32 target_offset;  /* the code pointer's offset in what that word points at */
};

/* What newproc1's entry saw, waiting for its RET. */
struct newproc_call {
	__u64 start_pc;
	__u64 caller_pc;
	__u64 closure_pc;
	__u64 parent_goid;
	__u64 stack[GOROUTINE_STACK_DEPTH];
	__u64 late;          /* the entry came after close_ns: its RET emits nothing */
};

/* Loss counters of gotrace goroutines (per CPU); each lost event is counted once. */
struct goroutine_counters {
	__u64 lost;          /* events the ring buffer had no room for */
	__u64 unreadable;    /* newproc1 RETs and goexit1 hits where g or the new g was unreadable */
	__u64 unpaired;      /* newproc1 RETs whose entry was not recorded (struct gate) */
	__u64 in_flight_at_start; /* newproc1 RETs of calls that began before open_ns */
};

/* ---- gotrace graph ---- */

enum graph_event_kind {
	GRAPH_ENTER = 0, /* a traced function began, on a goroutine inside ROOT */
	GRAPH_EXIT = 1,  /* one of its RETs ran */
	/* A RET of a function it tail-calls ran: its return when it left by that tail call,
	 * else nothing (user space drops it when no call of it is open at that depth). */
	GRAPH_TAIL_EXIT = 2,
	/* runtime.goexit1 ran on a goroutine inside ROOT (runtime.Goexit): every open call of
	 * its tree ended there, without a RET. */
	GRAPH_GOEXIT = 3,
	/* --breakdown: the breakdown of the call whose EXIT or TAIL_EXIT record comes next on
	 * this goroutine at this depth (struct graph_breakdown_event). */
	GRAPH_BREAKDOWN = 4,
};

/* One ring-buffer record of gotrace graph. */
struct graph_event {
	__u64 ts_ns;
	__u64 goid;
	__u64 depth;         /* g.stack.hi - SP at the site: equal at an entry and its RETs */
	__u32 tgid;
	__u32 func_id;
	enum graph_event_kind kind;
	__u32 pad;
	/* ENTER: the call's return address minus the function's entry, both run-time (with the
	 * link-time entry, the caller's link-time return address: PIE or not); 0 when it could
	 * not be read, and on every other kind. */
	__s64 return_offset;
};

/* A record of gotrace graph --args: the graph record, then the capture at its site by the
 * function's fetch plan (struct args_event, only its used part is sent). */
struct graph_args_event {
	struct graph_event head;
	struct args_event capture;
};

/* A GRAPH_BREAKDOWN record: the graph record's header, then the call's breakdown. */
struct graph_breakdown_event {
	struct graph_event head;
	struct sched_breakdown breakdown;
};

/* Key of the per-goroutine state: the process and its g. */
struct graph_g_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

/* A goroutine inside ROOT: the outermost open ROOT frame's depth, and the goid that owned g
 * when it opened (a g reused by a later goroutine is not inside). */
struct graph_inside {
	__u64 root_depth;
	__u64 goid;
	__u64 late;          /* ROOT was entered after close_ns: nothing is emitted for it */
};

/* Loss counters of gotrace graph (per CPU). */
struct graph_stats {
	__u64 lost;          /* events the ring buffer had no room for */
	__u64 unreadable;    /* hits whose g could not be read */
	__u64 stale;         /* ROOT frames closed without their RET (the goroutine left ROOT by
			      * panic unwinding): found at the goroutine's next hit */
	__u64 unmatched;     /* ROOT RETs on a goroutine with no ROOT call open whose entry may
			      * not have been stored (struct gate) */
	__u64 in_flight_at_start; /* ROOT RETs of calls that began before open_ns */
};

/* Every shared type and enum, so that BTF (and so the generated Rust) carries each of them. */
struct gotrace_shared_types {
	enum cookie_layout cookie_layout;
	enum site_kind site_kind;
	enum inline_role inline_role;
	enum branch_test branch_test;
	struct inline_site inline_site;
	enum x86_flags x86_flags;
	enum hist_layout hist_layout;
	enum args_limits args_limits;
	enum args_read_status args_read_status;
	enum args_reg_slot args_reg_slot;
	enum args_plan_index args_plan_index;
	enum args_field_status args_field_status;
	enum where_op where_op;
	enum where_kind where_kind;
	enum where_limits where_limits;
	struct args_where args_where;
	enum goroutine_func goroutine_func;
	enum goroutine_limits goroutine_limits;
	struct go_layout go_layout;
	enum guard_layout guard_layout;
	struct guard_drop guard_drop;
	struct frame_key frame_key;
	struct frame_start frame_start;
	struct func_hist func_hist;
	enum by_limits by_limits;
	enum by_key_kind by_key_kind;
	enum by_source by_source;
	struct by_key_plan by_key_plan;
	struct by_key by_key;
	struct args_fetch args_fetch;
	struct args_event args_event;
	struct args_stats args_stats;
	struct args_held args_held;
	struct args_held_key args_held_key;
	struct newproc_abi newproc_abi;
	struct goroutine_layout goroutine_layout;
	struct goroutine_event goroutine_event;
	struct newproc_call newproc_call;
	struct closure_call closure_call;
	struct goroutine_counters goroutine_counters;
	enum graph_event_kind graph_event_kind;
	struct graph_event graph_event;
	struct graph_args_event graph_args_event;
	struct graph_breakdown_event graph_breakdown_event;
	struct graph_g_key graph_g_key;
	struct graph_inside graph_inside;
	struct graph_stats graph_stats;
	enum gate_phase gate_phase;
	enum frame_late frame_late;
	struct gate gate;
	enum sched_site sched_site;
	enum go_gstatus go_gstatus;
	enum breakdown_limits breakdown_limits;
	enum follow_state follow_state;
	struct sched_counters sched_counters;
	struct followed_g followed_g;
	struct sched_layout sched_layout;
	struct sched_breakdown sched_breakdown;
	struct sched_stats sched_stats;
	enum func_breakdown_limits func_breakdown_limits;
	struct slow_call slow_call;
	struct func_breakdown func_breakdown;
};

#endif
