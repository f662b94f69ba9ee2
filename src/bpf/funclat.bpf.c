// SPDX-License-Identifier: GPL-2.0
/* gotrace funclat: in-kernel log2 latency histograms for Go functions.
 * One generic program is attached at each function's entry site and at every RET; the attach
 * cookie says which function and which kind of site (DESIGN.md techniques 1-4). */
#include "go_runtime.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct go_layout layout = {};
/* Histogram unit: 1 (ns), 1000 (us) or 1000000 (ms). */
const volatile __u64 unit_div = 1;

/* Indexed by function id; per CPU so the hot path takes no lock. Sized before load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct func_hist);
} hists SEC(".maps");

/* Calls in flight. LRU so that entries whose return never comes cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1); /* sized before load: --max-open-calls */
	__type(key, struct frame_key);
	__type(value, struct frame_start);
} starts SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 32; i > 0; i >>= 1) {
		if (v >> i) {
			v >>= i;
			slot += i;
		}
	}
	return slot;
}

static __always_inline int funclat_site(struct pt_regs *ctx)
{
	struct probe_hit hit = {};
	struct frame_start *start, new_start = {};
	struct func_hist *hist;
	__u64 now = bpf_ktime_get_ns();
	__u32 func_id;

	if (!probe_prologue(ctx, ctx, &layout, &hit))
		return 0;
	func_id = hit.func_id;
	hist = bpf_map_lookup_elem(&hists, &func_id);
	if (!hist)
		return 0;
	if (!hit.key.g) {
		if (hit.kind != SITE_TAIL_RET)
			hist->lost++;
		return 0;
	}

	if (hit.kind == SITE_ENTRY) {
		new_start.start_ns = now;
		new_start.func_id = func_id;
		/* The common case costs one insert; only a frame key already in use (a call at
		 * this depth that never returned: panic unwinding, Goexit) costs more. */
		if (!bpf_map_update_elem(&starts, &hit.key, &new_start, BPF_NOEXIST))
			return 0;
		start = bpf_map_lookup_elem(&starts, &hit.key);
		if (start) {
			__u32 stale = start->func_id;
			struct func_hist *stale_hist = bpf_map_lookup_elem(&hists, &stale);

			if (stale_hist)
				stale_hist->unmatched++;
		}
		if (bpf_map_update_elem(&starts, &hit.key, &new_start, BPF_ANY))
			hist->lost++;
		return 0;
	}

	start = bpf_map_lookup_elem(&starts, &hit.key);
	if (hit.kind == SITE_TAIL_RET && (!start || start->func_id != func_id))
		return 0; /* the tail-call target returning from a call of its own (or another's) */
	if (!start || start->func_id != func_id) {
		/* A return whose entry was never seen: the entry hit was lost, or the call was
		 * already running when tracing began. Counted, never silently dropped. */
		hist->lost++;
		return 0;
	}
	__u64 delta = now - start->start_ns;
	bpf_map_delete_elem(&starts, &hit.key);
	hist->slots[log2_slot(delta / unit_div) & (GOTRACE_HIST_SLOTS - 1)]++;
	hist->count++;
	hist->total_ns += delta;
	return 0;
}

GOTRACE_UPROBE_PROGRAMS(funclat, funclat_site)
