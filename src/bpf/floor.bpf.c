// SPDX-License-Identifier: GPL-2.0
/* The cost floor for benchmarks: the least a uprobe BPF program can do (count its hits).
 * bench/ compares gotrace's per-call cost with this program's on the same probe sites. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("uprobe.multi")
int floor_hit(struct pt_regs *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&hits, &key);

	if (count)
		(*count)++;
	return 0;
}
