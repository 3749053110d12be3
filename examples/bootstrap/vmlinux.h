/* The part of vmlinux.h (`bpftool btf dump file /sys/kernel/btf/vmlinux
 * format c`) that bootstrap.bpf.c uses, so that building it needs no
 * kernel BTF. Records carry preserve_access_index, as in vmlinux.h, so every
 * field access is a CO-RE relocation against the running kernel's layout. */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u32 u32;
typedef __u64 u64;
typedef int pid_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)

struct task_struct {
	int exit_code;
	pid_t tgid;
	struct task_struct *real_parent;
};

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

struct trace_event_raw_sched_process_exec {
	struct trace_entry ent;
	u32 __data_loc_filename;
	pid_t pid;
	pid_t old_pid;
	char __data[0];
};

struct trace_event_raw_sched_process_template {
	struct trace_entry ent;
	char comm[16];
	pid_t pid;
	int prio;
	char __data[0];
};

#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
