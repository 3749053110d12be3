/* Record of solisten.bpf.c: one successful or failed listen() on an IPv4 or
 * IPv6 socket. 64 bytes, all fields naturally aligned. */
#ifndef SOLISTEN_H
#define SOLISTEN_H

struct solisten_event {
	__u32 pid;        /* 0: process id (tgid) */
	__u32 tid;        /* 4 */
	__s32 ret;        /* 8: 0, or -errno */
	__s32 fd;         /* 12 */
	__s32 backlog;    /* 16: as passed to listen() */
	__u32 netns;      /* 20: network namespace inode */
	__u16 family;     /* 24: AF_INET (2) or AF_INET6 (10) */
	__u16 port;       /* 26: local port, host order (0 if the socket has none) */
	__u16 protocol;   /* 28: IPPROTO_TCP (6), IPPROTO_SCTP, IPPROTO_MPTCP... */
	__u16 pad;        /* 30 */
	__u8 addr[16];    /* 32: local address, network order; IPv4 in addr[0..4] */
	char comm[16];    /* 48 */
};

#endif
