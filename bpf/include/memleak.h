/* Maps of memleak.bpf.c. `allocs` maps an outstanding allocation's address to
 * struct memleak_alloc; user space walks it, and resolves stack ids through
 * `stack_traces` (BPF_MAP_TYPE_STACK_TRACE: u32 id -> u64 ips[127]). */
#ifndef MEMLEAK_H
#define MEMLEAK_H

#define MEMLEAK_STACK_DEPTH 127 /* PERF_MAX_STACK_DEPTH */

struct memleak_alloc {
	__u64 size;      /* 0: bytes (kernel: bytes_alloc, what the allocator gave) */
	__u64 ts_ns;     /* 8: bpf_ktime_get_ns() at allocation (CLOCK_MONOTONIC) */
	__u64 call_site; /* 16: kernel: the allocating function's address; user: 0 */
	__s32 stack_id;  /* 24: id in stack_traces, or -errno (-EFAULT when not collected) */
	__u32 pid;       /* 28: process that allocated (tgid) */
};

#endif
