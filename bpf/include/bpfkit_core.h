/* Minimal kernel types for CO-RE: only the fields the tools read, each struct
 * marked preserve_access_index so that clang records a relocation for every
 * access and the loader rewrites offsets against the running kernel's BTF.
 * Field order and sizes here need not match the kernel; names must. Nested
 * anonymous unions of the kernel are flattened (relocation looks into them). */
#ifndef BPFKIT_CORE_H
#define BPFKIT_CORE_H

#define __core __attribute__((preserve_access_index))

/* Scheduler: task->se.cfs_rq->rq->nr_running (needs CONFIG_FAIR_GROUP_SCHED
 * for cfs_rq->rq, which every distribution kernel sets). */
struct rq {
	unsigned int nr_running;
} __core;

struct cfs_rq {
	struct rq *rq;
} __core;

struct sched_entity {
	struct cfs_rq *cfs_rq;
} __core;

/* Open files: task->files->fdt->fd[fd]->private_data. */
struct file {
	void *private_data;
} __core;

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __core;

struct files_struct {
	struct fdtable *fdt;
} __core;

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct files_struct *files;
	struct sched_entity se;
} __core;

/* Network namespace: sk->__sk_common.skc_net.net->ns.inum. */
struct ns_common {
	unsigned int inum;
} __core;

struct net {
	struct ns_common ns;
} __core;

typedef struct {
	struct net *net;
} possible_net_t;

/* Sixteen address bytes; composite types relocate regardless of their name. */
struct bpfkit_in6_addr {
	__u8 s6_addr[16];
} __core;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num; /* local port, host order */
	unsigned short skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct bpfkit_in6_addr skc_v6_daddr;
	struct bpfkit_in6_addr skc_v6_rcv_saddr;
} __core;

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
} __core;

struct socket {
	struct file *file;
	struct sock *sk;
} __core;

struct tcp_sock {
	__u64 bytes_received;
	__u64 bytes_acked;
} __core;

/* Block layer: rq->q->disk->{major,first_minor}. */
struct gendisk {
	int major;
	int first_minor;
} __core;

struct request_queue {
	struct gendisk *disk;
} __core;

struct request {
	struct request_queue *q;
} __core;

/* Tracepoint records, relocated like kernel structs (their BTF is in vmlinux
 * as trace_event_raw_<class>). Only the fields read are listed. */
struct trace_event_raw_inet_sock_set_state {
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport; /* host order */
	__u16 dport; /* host order */
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __core;

struct trace_event_raw_kmalloc {
	unsigned long call_site;
	const void *ptr;
	__u64 bytes_alloc; /* size_t */
} __core;

struct trace_event_raw_kmem_cache_alloc {
	unsigned long call_site;
	const void *ptr;
	__u64 bytes_alloc; /* size_t */
} __core;

struct trace_event_raw_kfree {
	const void *ptr;
} __core;

struct trace_event_raw_kmem_cache_free {
	const void *ptr;
} __core;

/* The tracepoint formats of syscalls/sys_enter_* and sys_exit_* and of
 * raw_syscalls/sys_enter|sys_exit: a stable ABI, so plain structs. */
struct syscall_enter_ctx {
	unsigned long long common;
	long id;
	unsigned long args[6];
};

struct syscall_exit_ctx {
	unsigned long long common;
	long id;
	long ret;
};

#undef __core

/* Constants of the kernel's UAPI that the tools compare against. */
#define BPFKIT_AF_INET 2
#define BPFKIT_AF_INET6 10
#define BPFKIT_IPPROTO_TCP 6

enum bpfkit_tcp_state {
	BPFKIT_TCP_ESTABLISHED = 1,
	BPFKIT_TCP_SYN_SENT = 2,
	BPFKIT_TCP_SYN_RECV = 3,
	BPFKIT_TCP_FIN_WAIT1 = 4,
	BPFKIT_TCP_CLOSE = 7,
	BPFKIT_TCP_LAST_ACK = 9,
	BPFKIT_TCP_LISTEN = 10,
};

#endif
