/* Sockets from file descriptors, and their addresses, via CO-RE reads. */
#ifndef BPFKIT_SOCK_H
#define BPFKIT_SOCK_H

#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"

/* The socket open as `fd` in the current task, or NULL when fd is out of range,
 * not open, or not a socket (a socket's file and the file's socket point at
 * each other; any other file's private_data does not). */
static __always_inline struct sock *fd_to_sock(int fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

/* An inet socket's family, ports (host order) and addresses (network order;
 * IPv4 in the first four bytes). Returns the family, 0 for non-inet sockets. */
static __always_inline __u16 sock_addrs(struct sock *sk, __u16 *lport, __u16 *rport,
					__u8 laddr[16], __u8 raddr[16])
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == BPFKIT_AF_INET) {
		BPF_CORE_READ_INTO((__be32 *)laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__be32 *)raddr, sk, __sk_common.skc_daddr);
	} else if (family == BPFKIT_AF_INET6) {
		BPF_CORE_READ_INTO((struct bpfkit_in6_addr *)laddr, sk,
				   __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct bpfkit_in6_addr *)raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	*lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return family;
}

/* The inode number of the socket's network namespace (as in /proc/PID/ns/net). */
static __always_inline __u32 sock_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

#endif
