// SPDX-License-Identifier: GPL-2.0
/* The cost floor for benchmarks: the least a uprobe BPF program can do (count its hits).
 * bench/ compares gotrace's per-call cost with this program's on the same probe sites. */
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

PERCPU_ARRAY_MAP(hits, __u64);

SEC("uprobe.multi")
int floor_hit(struct pt_regs *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&hits, &key);

	if (count)
		(*count)++;
	return 0;
}
