/* Record of tcplife.bpf.c: one TCP connection, sent when it reaches CLOSE.
 * 88 bytes, all fields naturally aligned. */
#ifndef TCPLIFE_H
#define TCPLIFE_H

struct tcplife_event {
	__u64 duration_ns; /* 0: from the first state change out of CLOSE */
	__u64 rx_bytes;    /* 8: tcp_sock.bytes_received */
	__u64 tx_bytes;    /* 16: tcp_sock.bytes_acked */
	__u32 pid;         /* 24: process that connected or closed; 0 if unknown */
	__u16 family;      /* 28: AF_INET (2) or AF_INET6 (10) */
	__u16 lport;       /* 30: host order */
	__u16 rport;       /* 32: host order */
	__u16 pad[3];      /* 34 */
	__u8 laddr[16];    /* 40: network order; IPv4 in laddr[0..4] */
	__u8 raddr[16];    /* 56 */
	char comm[16];     /* 72: empty if pid is 0 */
};

#endif
