/* Map of runqlen.bpf.c: `hists`, an array of struct runqlen_hist indexed by
 * CPU with targ_per_cpu (entries 0..RUNQLEN_MAX_CPUS-1), else entry 0 only. */
#ifndef RUNQLEN_H
#define RUNQLEN_H

#define RUNQLEN_SLOTS 32
#define RUNQLEN_MAX_CPUS 1024

struct runqlen_hist {
	/* 0: slots[n] counts samples that found n tasks waiting for the CPU
	 * (runnable, not running); the last slot also takes longer queues.
	 * 256 bytes. */
	__u64 slots[RUNQLEN_SLOTS];
};

#endif
