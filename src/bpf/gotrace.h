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

#endif
