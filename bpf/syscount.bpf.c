// syscount: system calls counted by syscall number (or by process), with the
// time spent in them, from the raw_syscalls tracepoints. User space reads and
// clears `counts` each interval.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpfkit_core.h"
#include "syscount.h"

const volatile __u32 targ_pid = 0;   /* 0: all processes */
const volatile __u32 by_process = 0; /* key by pid instead of syscall number */

static const struct syscount_value zero_value;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct syscount_value);
} counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int syscount_enter(struct syscall_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	__u32 tid = (__u32)id;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int syscount_exit(struct syscall_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	if (ctx->id < 0)
		return 0;
	__u32 tid = (__u32)id;
	__u64 *start = bpf_map_lookup_elem(&starts, &tid);
	__u64 elapsed = start ? bpf_ktime_get_ns() - *start : 0;
	if (start)
		bpf_map_delete_elem(&starts, &tid);
	__u32 key = by_process ? (__u32)(id >> 32) : (__u32)ctx->id;
	struct syscount_value *v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		bpf_map_update_elem(&counts, &key, &zero_value, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v)
			return 0;
		if (by_process)
			bpf_get_current_comm(&v->comm, sizeof(v->comm));
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, elapsed);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
