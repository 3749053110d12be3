// tcplife: TCP connections with their duration and bytes moved, from the
// sock:inet_sock_set_state tracepoint alone. The first state change out of
// CLOSE starts a connection; the changes a process causes by a syscall
// (connect: SYN_SENT; close: FIN_WAIT1 or LAST_ACK) name its owner, since the
// others happen in softirq context on behalf of no one; CLOSE sends the record.
// A socket closed with unread data goes from ESTABLISHED straight to CLOSE in
// its owner's close(): still unowned then, it takes the current task, as
// bcc's tcplife does.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"
#include "bpfkit_tool.h"
#include "tcplife.h"

const volatile __u32 targ_pid = 0;    /* 0: all processes */
const volatile __u16 targ_family = 0; /* 0: both; AF_INET or AF_INET6 */

BPFKIT_RECORD_TYPE(tcplife_event);

struct conn {
	__u64 start_ns;
	__u32 pid;
	__u32 pad;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct sock * */
	__type(value, struct conn);
} conns SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int tcplife_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != BPFKIT_IPPROTO_TCP)
		return 0;
	__u16 family = ctx->family;
	if (targ_family && family != targ_family)
		return 0;
	__u64 sk = (__u64)ctx->skaddr;
	int state = ctx->newstate;

	if (state < BPFKIT_TCP_FIN_WAIT1 || state == BPFKIT_TCP_LAST_ACK) {
		struct conn *c = bpf_map_lookup_elem(&conns, &sk);
		if (!c) {
			if (state == BPFKIT_TCP_LAST_ACK)
				return 0; /* began before we did */
			struct conn fresh = { .start_ns = bpf_ktime_get_ns() };
			bpf_map_update_elem(&conns, &sk, &fresh, BPF_NOEXIST);
			c = bpf_map_lookup_elem(&conns, &sk);
			if (!c)
				return 0;
		}
		if (!c->pid && (state == BPFKIT_TCP_SYN_SENT || state == BPFKIT_TCP_LAST_ACK)) {
			c->pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(&c->comm, sizeof(c->comm));
		}
		return 0;
	}
	if (state == BPFKIT_TCP_FIN_WAIT1) {
		struct conn *c = bpf_map_lookup_elem(&conns, &sk);
		if (c && !c->pid) {
			c->pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(&c->comm, sizeof(c->comm));
		}
		return 0;
	}
	if (state != BPFKIT_TCP_CLOSE)
		return 0;

	struct conn *c = bpf_map_lookup_elem(&conns, &sk);
	if (!c)
		return 0;
	if (!c->pid) {
		c->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(&c->comm, sizeof(c->comm));
	}
	if (targ_pid && c->pid != targ_pid)
		goto cleanup;
	struct tcplife_event e = {
		.duration_ns = bpf_ktime_get_ns() - c->start_ns,
		.pid = c->pid,
		.family = family,
		.lport = ctx->sport,
		.rport = ctx->dport,
	};
	struct tcp_sock *tp = (void *)sk;
	e.rx_bytes = BPF_CORE_READ(tp, bytes_received);
	e.tx_bytes = BPF_CORE_READ(tp, bytes_acked);
	__builtin_memcpy(e.comm, c->comm, sizeof(e.comm));
	/* Arrays in the context are read by helper: the verifier forbids loads
	 * through a ctx pointer plus a relocated offset. */
	if (family == BPFKIT_AF_INET) {
		bpf_probe_read_kernel(e.laddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e.raddr, 4, ctx->daddr);
	} else {
		bpf_probe_read_kernel(e.laddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e.raddr, 16, ctx->daddr_v6);
	}
	submit_event(&e, sizeof(e));
cleanup:
	bpf_map_delete_elem(&conns, &sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
