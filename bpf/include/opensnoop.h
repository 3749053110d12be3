/* Record of opensnoop.bpf.c (decoded in crates/cli/src/tools/opensnoop.rs). */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#define OPENSNOOP_PATH_MAX 256

struct opensnoop_event {
	__u32 pid;        /* 0: process id */
	__u32 tid;        /* 4 */
	__u32 uid;        /* 8 */
	__s32 ret;        /* 12: fd, or -errno */
	__u32 flags;      /* 16: open flags */
	__u32 mode;       /* 20 */
	char comm[16];    /* 24 */
	char path[OPENSNOOP_PATH_MAX]; /* 40 */
};

#endif
