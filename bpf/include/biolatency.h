/* Maps of biolatency.bpf.c. `hists` is a hash from struct biolatency_key to
 * struct biolatency_hist; user space reads it (and deletes entries to reset). */
#ifndef BIOLATENCY_H
#define BIOLATENCY_H

#define BIOLATENCY_SLOTS 32

struct biolatency_key {
	__u32 dev; /* 0: kernel dev_t (major << 20 | minor) of the disk; 0 unless targ_per_disk */
};

struct biolatency_hist {
	/* 0: slots[i] counts latencies whose log2 is i (slot 0: 0 and 1), in
	 * microseconds, or milliseconds with targ_ms; the last slot also takes
	 * everything larger. 256 bytes. */
	__u64 slots[BIOLATENCY_SLOTS];
};

#endif
