// SPDX-License-Identifier: GPL-2.0
/* No program: an anchor that puts every type and enum of gotrace.h in the BTF, so that the
 * generated skeleton carries their Rust copies (crate::bpf_types). Never loaded. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "gotrace.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct gotrace_shared_types shared_types = {};
