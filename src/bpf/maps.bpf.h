/* BTF-defined BPF maps (libbpf's SEC(".maps") convention) by kind, so that each program states
 * only a map's name, key, value and size. The expansion is the struct libbpf expects, so map
 * names and types, and thus the generated skeletons, are those of a hand-written definition.
 * A max_entries of 1 is a placeholder where user space sizes the map before load (each
 * command's open step, set_max_entries); a one-slot array of counters or scratch keeps it. */
#ifndef MAPS_BPF_H
#define MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* A map of `kind` named `name`, from `key_type` to `value_type`, with `entries` entries. */
#define GOTRACE_MAP(name, kind, key_type, value_type, entries) \
	struct {                                               \
		__uint(type, kind);                            \
		__uint(max_entries, entries);                  \
		__type(key, key_type);                         \
		__type(value, value_type);                     \
	} name SEC(".maps")

/* An array indexed by __u32 (one slot, or sized before load). */
#define ARRAY_MAP(name, value_type) GOTRACE_MAP(name, BPF_MAP_TYPE_ARRAY, __u32, value_type, 1)

/* An array with a copy per CPU, so the hot path takes no lock (one slot, or sized before load):
 * counters, or a record under construction too big for the BPF stack. */
#define PERCPU_ARRAY_MAP(name, value_type) \
	GOTRACE_MAP(name, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, value_type, 1)

/* A hash map, sized before load: an entry that does not fit is not stored. */
#define HASH_MAP(name, key_type, value_type) \
	GOTRACE_MAP(name, BPF_MAP_TYPE_HASH, key_type, value_type, 1)

/* A hash map with a copy of each value per CPU, sized before load: an entry that does not fit
 * is not stored. */
#define PERCPU_HASH_MAP(name, key_type, value_type) \
	GOTRACE_MAP(name, BPF_MAP_TYPE_PERCPU_HASH, key_type, value_type, 1)

/* A hash map, sized before load, that evicts its least recently used entry when full. */
#define LRU_HASH_MAP(name, key_type, value_type) \
	GOTRACE_MAP(name, BPF_MAP_TYPE_LRU_HASH, key_type, value_type, 1)

/* A ring buffer of `bytes` bytes (a power of two pages; resized before load). */
#define RINGBUF_MAP(name, bytes)                       \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_RINGBUF);    \
		__uint(max_entries, bytes);            \
	} name SEC(".maps")

#endif
