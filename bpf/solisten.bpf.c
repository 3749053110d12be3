// solisten: listen() on IPv4 and IPv6 sockets, with the local address and port,
// backlog, protocol and network namespace, from the syscall tracepoints. The
// entry remembers fd and backlog per thread; the exit finds the socket through
// the task's file table (CO-RE), by then bound even if listen() picked the port.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"
#include "bpfkit_sock.h"
#include "bpfkit_tool.h"
#include "solisten.h"

const volatile __u32 targ_pid = 0; /* 0: all processes */

BPFKIT_RECORD_TYPE(solisten_event);

struct listen_args {
	__s32 fd;
	__s32 backlog;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct listen_args);
} listens SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_listen")
int solisten_enter(struct syscall_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	__u32 tid = (__u32)id;
	struct listen_args args = { .fd = ctx->args[0], .backlog = ctx->args[1] };
	bpf_map_update_elem(&listens, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int solisten_exit(struct syscall_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct listen_args *args = bpf_map_lookup_elem(&listens, &tid);
	if (!args)
		return 0;
	struct solisten_event e = {
		.pid = id >> 32,
		.tid = tid,
		.ret = ctx->ret,
		.fd = args->fd,
		.backlog = args->backlog,
	};
	bpf_map_delete_elem(&listens, &tid);

	struct sock *sk = fd_to_sock(e.fd);
	if (!sk)
		return 0; /* not a socket (listen failed with ENOTSOCK or EBADF) */
	__u8 raddr[16];
	__u16 rport;
	e.family = sock_addrs(sk, &e.port, &rport, e.addr, raddr);
	if (!e.family)
		return 0; /* AF_UNIX and the like */
	e.protocol = BPF_CORE_READ(sk, sk_protocol);
	e.netns = sock_netns(sk);
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	submit_event(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
