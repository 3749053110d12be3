/* The record execsnoop.bpf.c sends to user space (crates/cli/src/tools/execsnoop.rs
 * decodes it). All fields are naturally aligned; `args` holds `args_count`
 * NUL-terminated strings in `args_size` bytes, the first being the filename. */
#ifndef EXECSNOOP_H
#define EXECSNOOP_H

#define EXECSNOOP_MAX_ARGS 20
#define EXECSNOOP_ARGSIZE 128
#define EXECSNOOP_ARGS_TOTAL (EXECSNOOP_MAX_ARGS * EXECSNOOP_ARGSIZE)

struct execsnoop_event {
	__u32 pid;         /* offset 0 */
	__u32 ppid;        /* 4 */
	__u32 uid;         /* 8 */
	__s32 retval;      /* 12 */
	__u32 args_count;  /* 16 */
	__u32 args_size;   /* 20 */
	__u32 truncated;   /* 24: more arguments than were captured */
	__u32 pad;         /* 28 */
	char comm[16];     /* 32 */
	char args[EXECSNOOP_ARGS_TOTAL]; /* 48 */
};

#endif
