/* Minimal kernel types for CO-RE: only the fields the tools read, relocated
 * against the running kernel's BTF at load time. */
#ifndef BPFKIT_CORE_H
#define BPFKIT_CORE_H

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

/* The tracepoint formats of syscalls/sys_enter_* and sys_exit_* (stable ABI). */
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

#endif
