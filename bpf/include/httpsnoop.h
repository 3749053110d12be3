/* Record of httpsnoop.bpf.c: the 88-byte struct below, then `data_len` bytes
 * of payload (READ and WRITE records only), so a record is 88 + data_len
 * bytes long (user space sees that exact length). */
#ifndef HTTPSNOOP_H
#define HTTPSNOOP_H

#define HTTPSNOOP_MAX_DATA 4096 /* upper bound of the max_bytes knob */

enum httpsnoop_kind {
	HTTPSNOOP_ACCEPT = 0, /* accept()/accept4() returned fd */
	HTTPSNOOP_READ = 1,   /* read()/recvfrom() on fd returned len > 0 bytes */
	HTTPSNOOP_WRITE = 2,  /* write()/sendto() on fd returned len > 0 bytes */
	HTTPSNOOP_CLOSE = 3,  /* close(fd): the connection is no longer tracked */
};

struct httpsnoop_event {
	__u64 ts_ns;     /* 0: bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 pid;       /* 8: process (tgid) */
	__u32 tid;       /* 12 */
	__s32 fd;        /* 16 */
	__u16 kind;      /* 20: enum httpsnoop_kind */
	__u16 family;    /* 22: AF_INET (2), AF_INET6 (10); 0 if the socket was not found */
	__u16 lport;     /* 24: local port, host order */
	__u16 rport;     /* 26: remote port, host order */
	__u32 len;       /* 28: bytes the call moved (READ, WRITE); else 0 */
	__u32 data_len;  /* 32: bytes of data[] present: min(len, max_bytes) */
	__u32 pad;       /* 36 */
	__u8 laddr[16];  /* 40: network order; IPv4 in laddr[0..4] */
	__u8 raddr[16];  /* 56 */
	char comm[16];   /* 72 */
	__u8 data[];     /* 88: the first data_len bytes moved */
};

#endif
