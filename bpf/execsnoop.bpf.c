// execsnoop: every execve() and execveat(), with its arguments, from the
// syscall tracepoints (no kprobes needed). The enter tracepoint gathers pid,
// ppid, uid and argv into a per-process hash entry; the exit tracepoint adds
// the return value and sends the record through a ring buffer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"
#include "bpfkit_tool.h"
#include "execsnoop.h"

const volatile __u32 targ_uid = 0xffffffff; /* all users */
const volatile __u32 include_failed = 0;
const volatile __u32 max_args = EXECSNOOP_MAX_ARGS;
const volatile __u32 filter_cgroup = 0; /* only tasks under cgroup_filter[0] */

/* The cgroup of --cgroup: user space stores the directory's fd at index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

static const struct execsnoop_event empty_event;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct execsnoop_event);
	/* Large values: allocate on demand rather than max_entries up front, which
	 * would cost milliseconds of startup. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} execs SEC(".maps");

static __always_inline int enter(const char *filename, const char *const *argv)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	if (targ_uid != 0xffffffff && uid != targ_uid)
		return 0;
	if (filter_cgroup && !bpf_current_task_under_cgroup(&cgroup_filter, 0))
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	/* BPF_ANY: an entry left by an exec whose exit we missed (we attached
	 * between its two tracepoints) must not hide this one. */
	if (bpf_map_update_elem(&execs, &pid, &empty_event, BPF_ANY))
		return 0;
	struct execsnoop_event *e = bpf_map_lookup_elem(&execs, &pid);
	if (!e)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;

	long n = bpf_probe_read_user_str(e->args, EXECSNOOP_ARGSIZE, filename);
	if (n < 0)
		return 0;
	e->args_count = 1;
	e->args_size = n;
	for (int i = 1; i < EXECSNOOP_MAX_ARGS; i++) {
		const char *arg = 0;
		if ((__u32)i >= max_args) {
			bpf_probe_read_user(&arg, sizeof(arg), &argv[i]);
			e->truncated = arg != 0;
			return 0;
		}
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			return 0;
		__u32 size = e->args_size;
		if (size > EXECSNOOP_ARGS_TOTAL - EXECSNOOP_ARGSIZE) {
			e->truncated = 1;
			return 0;
		}
		n = bpf_probe_read_user_str(&e->args[size], EXECSNOOP_ARGSIZE, arg);
		if (n < 0)
			return 0;
		e->args_count++;
		e->args_size += n;
	}
	const char *more = 0;
	bpf_probe_read_user(&more, sizeof(more), &argv[EXECSNOOP_MAX_ARGS]);
	e->truncated = more != 0;
	return 0;
}

static __always_inline int leave(long ret)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct execsnoop_event *e = bpf_map_lookup_elem(&execs, &pid);
	if (!e)
		return 0;
	if (ret < 0 && !include_failed)
		goto cleanup;
	e->retval = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	/* A constant size: clang 14 loses the bound of a computed one, and the
	 * verifier needs it. User space reads only args_size bytes of args. */
	submit_event(e, sizeof(*e));
cleanup:
	bpf_map_delete_elem(&execs, &pid);
	return 0;
}

/* execve(filename, argv, envp) */
SEC("tracepoint/syscalls/sys_enter_execve")
int execsnoop_enter(struct syscall_enter_ctx *ctx)
{
	return enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int execsnoop_exit(struct syscall_exit_ctx *ctx)
{
	return leave(ctx->ret);
}

/* execveat(dirfd, filename, argv, envp, flags): filename as given, which is
 * relative to dirfd, or empty with AT_EMPTY_PATH (fexecve). */
SEC("tracepoint/syscalls/sys_enter_execveat")
int execsnoop_enter_at(struct syscall_enter_ctx *ctx)
{
	return enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int execsnoop_exit_at(struct syscall_exit_ctx *ctx)
{
	return leave(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
