/* Values of syscount.bpf.c's `counts` map (read in crates/cli/src/tools/syscount.rs). */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

struct syscount_value {
	__u64 count;      /* 0 */
	__u64 total_ns;   /* 8: time spent in the calls */
	char comm[16];    /* 16: for per-process counts */
};

#endif
