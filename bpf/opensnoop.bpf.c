// opensnoop: open() and openat() with their path, flags and result, from the
// syscall tracepoints. The path is read at entry (user memory may change by
// exit); the result is added at exit and the record sent through a ring buffer.
// A read at entry fails when the path's page is not yet resident (a helper
// cannot fault it in); by exit the kernel's own copy has faulted it in, so the
// path is read again then from the same pointer, as libbpf-tools' opensnoop
// reads it at exit.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpfkit_core.h"
#include "bpfkit_tool.h"
#include "opensnoop.h"

const volatile __u32 targ_pid = 0;       /* 0: all processes */
const volatile __u32 targ_uid = 0xffffffff;
const volatile __u32 failed_only = 0;

static const struct opensnoop_event empty_event;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct opensnoop_event);
	/* Large values: allocate on demand rather than max_entries up front, which
	 * would cost milliseconds of startup. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} starts SEC(".maps");

/* The user pointer of a path the entry could not read, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} unread_paths SEC(".maps");

static __always_inline int enter(const char *path, int flags, int mode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (targ_pid && pid != targ_pid)
		return 0;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	if (targ_uid != 0xffffffff && uid != targ_uid)
		return 0;
	if (bpf_map_update_elem(&starts, &tid, &empty_event, BPF_ANY))
		return 0;
	struct opensnoop_event *e = bpf_map_lookup_elem(&starts, &tid);
	if (!e)
		return 0;
	e->pid = pid;
	e->tid = tid;
	e->uid = uid;
	e->flags = flags;
	e->mode = mode;
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), path) < 0) {
		__u64 ptr = (__u64)path;
		bpf_map_update_elem(&unread_paths, &tid, &ptr, BPF_ANY);
	}
	return 0;
}

static __always_inline int leave(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct opensnoop_event *e = bpf_map_lookup_elem(&starts, &tid);
	if (!e)
		return 0;
	if (failed_only && ret >= 0)
		goto cleanup;
	e->ret = ret;
	__u64 *unread = bpf_map_lookup_elem(&unread_paths, &tid);
	if (unread) {
		bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)*unread);
		bpf_map_delete_elem(&unread_paths, &tid);
	}
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	submit_event(e, sizeof(*e));
cleanup:
	bpf_map_delete_elem(&unread_paths, &tid);
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int opensnoop_enter_openat(struct syscall_enter_ctx *ctx)
{
	return enter((const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int opensnoop_exit_openat(struct syscall_exit_ctx *ctx)
{
	return leave(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_open")
int opensnoop_enter_open(struct syscall_enter_ctx *ctx)
{
	return enter((const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int opensnoop_exit_open(struct syscall_exit_ctx *ctx)
{
	return leave(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
