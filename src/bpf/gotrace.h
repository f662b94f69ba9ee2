/* Structures shared by the BPF programs and the Rust side (which uses the skeleton's
 * generated copies of them, never a hand-written mirror). */
#ifndef GOTRACE_H
#define GOTRACE_H

/* log2 latency slots: slot i holds durations in [2^i, 2^(i+1)) ns (slot 0 also holds 0). */
#define GOTRACE_HIST_SLOTS 64

/* Where the current goroutine's g pointer lives (DESIGN.md technique 5). */
enum g_source {
	G_FROM_R14 = 0,    /* amd64 register ABI (Go >= 1.17) */
	G_FROM_FS_TLS = 1, /* amd64 stack ABI: *(fsbase + tls_offset) */
	G_FROM_GS_TLS = 2, /* 386: *(gs base + tls_offset) */
};

/* The attach cookie of every probe: which planned function and which kind of site. */
#define COOKIE_KIND_ENTRY 0
#define COOKIE_KIND_RET 1
#define COOKIE_FUNC_SHIFT 8

/* Runtime facts the programs need, from the binary's DWARF or the per-version table. */
struct go_layout {
	__u32 g_source;      /* enum g_source */
	__s32 tls_offset;    /* offset of g from the TLS base (G_FROM_*_TLS) */
	__u32 ptr_size;      /* 8 or 4 */
	__u32 g_stack_hi;    /* offsetof(runtime.g, stack.hi) */
	__u32 filter_tgid;   /* 0: every process */
};

/* Per function, per CPU: the latency histogram and the loss counters. */
struct func_hist {
	__u64 slots[GOTRACE_HIST_SLOTS];
	__u64 count;
	__u64 total_ns;
	__u64 unmatched;     /* entries whose return never came (panic, Goexit) */
	__u64 lost;          /* calls not measured: entry not recorded (map full, g unreadable)
	                      * or a return whose entry was never seen */
};

/* Key pairing an entry with its return (DESIGN.md technique 4). */
struct frame_key {
	__u64 g;
	__u64 depth;         /* g.stack.hi - SP at entry */
	__u32 tgid;
	__u32 pad;
};

struct frame_start {
	__u64 start_ns;
	__u32 func_id;
	__u32 pad;
};

/* gotrace goroutines: the probe kinds (low byte of the cookie). */
#define GOROUTINE_SITE_NEWPROC_ENTRY 0
#define GOROUTINE_SITE_NEWPROC_RET 1
#define GOROUTINE_SITE_EXIT 2

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
#define GOROUTINE_STACK_DEPTH 16

enum goroutine_event_kind {
	GOROUTINE_CREATED = 0,
	GOROUTINE_EXITED = 1,
};

/* One ring-buffer record of gotrace goroutines. */
struct goroutine_event {
	__u64 ts_ns;
	__u64 goid;
	__u64 parent_goid;   /* created only */
	__u64 start_pc;      /* created only: funcval.fn */
	__u64 caller_pc;     /* created only: the go statement's return address */
	__u32 tgid;
	__u32 kind;          /* enum goroutine_event_kind */
	__u64 stack[GOROUTINE_STACK_DEPTH]; /* created, with --stack: 0-terminated */
};

/* What newproc1's entry saw, waiting for its RET. */
struct newproc_call {
	__u64 start_pc;
	__u64 caller_pc;
	__u64 parent_goid;
	__u64 stack[GOROUTINE_STACK_DEPTH];
};

/* Loss counters of gotrace goroutines (per CPU); each lost event is counted once. */
struct goroutine_counters {
	__u64 lost;          /* events the ring buffer had no room for */
	__u64 unreadable;    /* newproc1 RETs and goexit1 hits where g or the new g was unreadable */
	__u64 unpaired;      /* newproc1 RETs whose entry was not recorded (or not seen) */
};

#endif
