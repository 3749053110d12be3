// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Counts calls of a user-space function and sends each call's arguments
 * through a ring buffer; a return probe sends the result. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct call {
	__u64 a;
	__u64 b;
	__u64 result;
	__u32 pid;
	__u32 is_return;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} calls SEC(".maps");

__u64 entries = 0;

/* Keeps `struct call` in BTF for the skeleton (BPF_KPROBE works for
 * uprobes too: both take pt_regs). */
struct call *unused_call __attribute__((unused));

SEC("uprobe")
int BPF_KPROBE(on_entry, __u64 a, __u64 b)
{
	struct call *c;

	__sync_fetch_and_add(&entries, 1);
	c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
	if (!c)
		return 0;
	c->a = a;
	c->b = b;
	c->result = 0;
	c->pid = bpf_get_current_pid_tgid() >> 32;
	c->is_return = 0;
	bpf_ringbuf_submit(c, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_return, __u64 result)
{
	struct call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);

	if (!c)
		return 0;
	c->a = 0;
	c->b = 0;
	c->result = result;
	c->pid = bpf_get_current_pid_tgid() >> 32;
	c->is_return = 1;
	bpf_ringbuf_submit(c, 0);
	return 0;
}
