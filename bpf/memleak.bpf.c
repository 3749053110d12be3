// memleak: outstanding memory allocations, with their size, age and where
// they were made. Kernel mode: the kmem tracepoints (kmalloc, kmem_cache_alloc
// and their frees), allocations keyed by address with the call site. User
// mode: uprobes on libc's malloc, calloc, realloc and free that user space
// attaches for one process (SEC "uprobe"/"uretprobe" name no target), with the
// user stack of each allocation. Attach one mode's programs, not both: they
// share `allocs`.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_core.h"
#include "memleak.h"

const volatile __u64 min_size = 0;
const volatile __u64 max_size = ~0ULL;
const volatile __u32 kernel_stacks = 0; /* kernel mode: also record stacks (costly) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 18); /* user space may raise it before loading */
	__type(key, __u64); /* address */
	__type(value, struct memleak_alloc);
	/* Entries come and go with allocations: allocate them on demand rather
	 * than reserve max_entries of memory up front. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} allocs SEC(".maps");

/* user mode: the size asked for, from entry to return, per thread */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__uint(value_size, MEMLEAK_STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

/* Allocations not recorded because `allocs` was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void record(__u64 addr, __u64 size, __u64 call_site, __s32 stack_id)
{
	if (!addr || size < min_size || size > max_size)
		return;
	struct memleak_alloc a = {
		.size = size,
		.ts_ns = bpf_ktime_get_ns(),
		.call_site = call_site,
		.stack_id = stack_id,
		.pid = bpf_get_current_pid_tgid() >> 32,
	};
	if (bpf_map_update_elem(&allocs, &addr, &a, BPF_ANY)) {
		__u32 zero = 0;
		__u64 *d = bpf_map_lookup_elem(&drops, &zero);
		if (d)
			*d += 1;
	}
}

static __always_inline void forget(__u64 addr)
{
	bpf_map_delete_elem(&allocs, &addr);
}

/* ---- kernel mode ---- */

SEC("tracepoint/kmem/kmalloc")
int memleak_kmalloc(struct trace_event_raw_kmalloc *ctx)
{
	__s32 stack = kernel_stacks ? bpf_get_stackid(ctx, &stack_traces, 0) : -14;
	record((__u64)ctx->ptr, ctx->bytes_alloc, ctx->call_site, stack);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_alloc")
int memleak_kmem_cache_alloc(struct trace_event_raw_kmem_cache_alloc *ctx)
{
	__s32 stack = kernel_stacks ? bpf_get_stackid(ctx, &stack_traces, 0) : -14;
	record((__u64)ctx->ptr, ctx->bytes_alloc, ctx->call_site, stack);
	return 0;
}

SEC("tracepoint/kmem/kfree")
int memleak_kfree(struct trace_event_raw_kfree *ctx)
{
	forget((__u64)ctx->ptr);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_free")
int memleak_kmem_cache_free(struct trace_event_raw_kmem_cache_free *ctx)
{
	forget((__u64)ctx->ptr);
	return 0;
}

/* ---- user mode ----
 * BPF_KPROBE/BPF_KRETPROBE only name the pt_regs arguments; they suit uprobes
 * too (libbpf 1.1, the oldest we build with, has no BPF_UPROBE). */

static __always_inline int alloc_enter(__u64 size)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY);
	return 0;
}

static __always_inline int alloc_exit(struct pt_regs *ctx, __u64 addr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *size = bpf_map_lookup_elem(&sizes, &tid);
	if (!size)
		return 0;
	__u64 n = *size;
	bpf_map_delete_elem(&sizes, &tid);
	record(addr, n, 0, bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	return alloc_enter(size);
}

SEC("uretprobe")
int BPF_KRETPROBE(malloc_exit, void *ret)
{
	return alloc_exit(ctx, (__u64)ret);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 nmemb, __u64 size)
{
	return alloc_enter(nmemb * size);
}

SEC("uretprobe")
int BPF_KRETPROBE(calloc_exit, void *ret)
{
	return alloc_exit(ctx, (__u64)ret);
}

/* realloc(p, n) frees p (unless it fails, which is rare enough to ignore)
 * and returns a new allocation of n bytes. */
SEC("uprobe")
int BPF_KPROBE(realloc_enter, void *ptr, __u64 size)
{
	forget((__u64)ptr);
	return alloc_enter(size);
}

SEC("uretprobe")
int BPF_KRETPROBE(realloc_exit, void *ret)
{
	return alloc_exit(ctx, (__u64)ret);
}

SEC("uprobe")
int BPF_KPROBE(free_enter, void *ptr)
{
	forget((__u64)ptr);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
