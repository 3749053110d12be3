// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Counts the packets an interface receives, by IP protocol (0 for non-IP),
 * and passes them all on. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

/* Bytes seen in all, a global the user side reads from .bss. */
__u64 total_bytes = 0;

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 proto = 0;
	__u64 *count;

	__sync_fetch_and_add(&total_bytes, data_end - data);
	if ((void *)(eth + 1) > data_end)
		goto out;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) <= data_end)
			proto = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) <= data_end)
			proto = ip6->nexthdr;
	}
out:
	count = bpf_map_lookup_elem(&packets, &proto);
	if (count)
		*count += 1;
	return XDP_PASS;
}
