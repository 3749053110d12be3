// httpsnoop: the traffic of accepted connections, from syscall tracepoints.
// accept()/accept4() returning fd starts tracking (pid, fd) with the socket's
// addresses, found through the task's file table (CO-RE); read(), recvfrom(),
// write() and sendto() on a tracked fd send the first max_bytes bytes moved;
// close() ends it. Reads and writes of untracked fds cost one hash lookup.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"
#include "bpfkit_sock.h"
#include "bpfkit_tool.h"
#include "httpsnoop.h"

const volatile __u32 targ_pid = 0;   /* 0: all processes */
const volatile __u16 targ_lport = 0; /* 0: all; else only connections accepted on this local port */
const volatile __u32 max_bytes = 512; /* payload bytes per record, at most HTTPSNOOP_MAX_DATA */

BPFKIT_RECORD_TYPE(httpsnoop_event);

struct conn_key {
	__u32 pid;
	__s32 fd;
};

struct conn {
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* Tracked connections. LRU: entries of processes that exit without close()
 * make room for new ones rather than fill the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

/* A read or write in progress on a tracked fd, from entry to exit, per thread. */
struct io {
	__u64 buf;
	__s32 fd;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct io);
} ios SEC(".maps");

/* Threads in accept(), to match entry and exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u8);
} accepting SEC(".maps");

/* A record is too large for the stack: build it here. */
struct record {
	__u8 bytes[sizeof(struct httpsnoop_event) + HTTPSNOOP_MAX_DATA];
} __attribute__((aligned(8)));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record);
} scratch SEC(".maps");

static __always_inline struct httpsnoop_event *new_event(__u64 id, __s32 fd, __u16 kind,
							 const struct conn *c)
{
	__u32 zero = 0;
	struct record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return NULL;
	struct httpsnoop_event *e = (void *)r;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->kind = kind;
	e->family = c->family;
	e->lport = c->lport;
	e->rport = c->rport;
	e->len = 0;
	e->data_len = 0;
	e->pad = 0;
	__builtin_memcpy(e->laddr, c->laddr, sizeof(e->laddr));
	__builtin_memcpy(e->raddr, c->raddr, sizeof(e->raddr));
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	return e;
}

static __always_inline int accept_enter(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	__u32 tid = (__u32)id;
	__u8 one = 1;
	bpf_map_update_elem(&accepting, &tid, &one, BPF_ANY);
	return 0;
}

static __always_inline int accept_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	if (!bpf_map_lookup_elem(&accepting, &tid))
		return 0;
	bpf_map_delete_elem(&accepting, &tid);
	if (ret < 0)
		return 0;

	struct conn c = {};
	struct sock *sk = fd_to_sock(ret);
	if (sk)
		c.family = sock_addrs(sk, &c.lport, &c.rport, c.laddr, c.raddr);
	if (targ_lport && c.lport != targ_lport)
		return 0;
	struct conn_key key = { .pid = id >> 32, .fd = ret };
	bpf_map_update_elem(&conns, &key, &c, BPF_ANY);
	struct httpsnoop_event *e = new_event(id, ret, HTTPSNOOP_ACCEPT, &c);
	if (e)
		submit_event(e, sizeof(*e));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int httpsnoop_enter_accept(struct syscall_enter_ctx *ctx)
{
	return accept_enter();
}

SEC("tracepoint/syscalls/sys_exit_accept")
int httpsnoop_exit_accept(struct syscall_exit_ctx *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int httpsnoop_enter_accept4(struct syscall_enter_ctx *ctx)
{
	return accept_enter();
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int httpsnoop_exit_accept4(struct syscall_exit_ctx *ctx)
{
	return accept_exit(ctx->ret);
}

/* read(fd, buf, n), recvfrom(fd, buf, n, ...), write(fd, buf, n) and
 * sendto(fd, buf, n, ...) share their first two arguments. */
static __always_inline int io_enter(struct syscall_enter_ctx *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .pid = id >> 32, .fd = ctx->args[0] };
	if (!bpf_map_lookup_elem(&conns, &key))
		return 0;
	__u32 tid = (__u32)id;
	struct io io = { .buf = ctx->args[1], .fd = key.fd, .kind = kind };
	bpf_map_update_elem(&ios, &tid, &io, BPF_ANY);
	return 0;
}

static __always_inline int io_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct io *io = bpf_map_lookup_elem(&ios, &tid);
	if (!io)
		return 0;
	struct io done = *io;
	bpf_map_delete_elem(&ios, &tid);
	if (ret <= 0)
		return 0;
	struct conn_key key = { .pid = id >> 32, .fd = done.fd };
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	struct httpsnoop_event *e = new_event(id, done.fd, done.kind, c);
	if (!e)
		return 0;
	e->len = ret;
	__u64 n = ret < max_bytes ? ret : max_bytes;
	/* The empty asm hides n's origin from clang, which would otherwise pass
	 * ret itself (equal to n on some paths) with no bound the verifier sees. */
	asm volatile("" : "+r"(n));
	if (n > HTTPSNOOP_MAX_DATA)
		n = HTTPSNOOP_MAX_DATA;
	/* Read after the call: a read's data is then in the buffer, and a
	 * write's is still there. */
	if (bpf_probe_read_user(e->data, n, (const void *)done.buf))
		n = 0;
	e->data_len = n;
	submit_event(e, sizeof(*e) + n);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int httpsnoop_enter_read(struct syscall_enter_ctx *ctx)
{
	return io_enter(ctx, HTTPSNOOP_READ);
}

SEC("tracepoint/syscalls/sys_exit_read")
int httpsnoop_exit_read(struct syscall_exit_ctx *ctx)
{
	return io_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int httpsnoop_enter_recvfrom(struct syscall_enter_ctx *ctx)
{
	return io_enter(ctx, HTTPSNOOP_READ);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int httpsnoop_exit_recvfrom(struct syscall_exit_ctx *ctx)
{
	return io_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_write")
int httpsnoop_enter_write(struct syscall_enter_ctx *ctx)
{
	return io_enter(ctx, HTTPSNOOP_WRITE);
}

SEC("tracepoint/syscalls/sys_exit_write")
int httpsnoop_exit_write(struct syscall_exit_ctx *ctx)
{
	return io_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int httpsnoop_enter_sendto(struct syscall_enter_ctx *ctx)
{
	return io_enter(ctx, HTTPSNOOP_WRITE);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int httpsnoop_exit_sendto(struct syscall_exit_ctx *ctx)
{
	return io_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int httpsnoop_enter_close(struct syscall_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .pid = id >> 32, .fd = ctx->args[0] };
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	struct httpsnoop_event *e = new_event(id, key.fd, HTTPSNOOP_CLOSE, c);
	if (e)
		submit_event(e, sizeof(*e));
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
