// biolatency: block I/O latency as a power-of-two histogram, overall or per
// disk. The raw tracepoints give the struct request itself, so issue and
// completion are matched exactly by its address (the block_rq_* tracepoint
// records carry only dev and sector, which requeues and merges make ambiguous).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"
#include "biolatency.h"

const volatile __u32 targ_per_disk = 0; /* one histogram per disk */
const volatile __u32 targ_ms = 0;       /* milliseconds instead of microseconds */
const volatile __u32 targ_queued = 0;   /* from insertion into the I/O scheduler, not issue */
const volatile __u32 targ_dev = 0;      /* 0: all disks; else only this dev_t */

static const struct biolatency_hist zero_hist;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* struct request * */
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct biolatency_key);
	__type(value, struct biolatency_hist);
} hists SEC(".maps");

static __always_inline __u32 request_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return (__u32)BPF_CORE_READ(disk, major) << 20 | BPF_CORE_READ(disk, first_minor);
}

static __always_inline int start(struct request *rq, __u64 flags)
{
	if (targ_dev && request_dev(rq) != targ_dev)
		return 0;
	__u64 key = (__u64)rq, ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &key, &ts, flags);
	return 0;
}

/* TP_PROTO(struct request *rq) */
SEC("raw_tracepoint/block_rq_insert")
int biolatency_insert(struct bpf_raw_tracepoint_args *ctx)
{
	if (!targ_queued)
		return 0;
	return start((struct request *)ctx->args[0], BPF_ANY);
}

/* TP_PROTO(struct request *rq) */
SEC("raw_tracepoint/block_rq_issue")
int biolatency_issue(struct bpf_raw_tracepoint_args *ctx)
{
	/* With targ_queued, keep the insertion time; requests that bypass the
	 * scheduler are never inserted and start here. */
	return start((struct request *)ctx->args[0], targ_queued ? BPF_NOEXIST : BPF_ANY);
}

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;
	for (int i = 0; i < BIOLATENCY_SLOTS - 1; i++) {
		if (v <= 1)
			break;
		v >>= 1;
		slot++;
	}
	return slot;
}

/* TP_PROTO(struct request *rq, blk_status_t error, unsigned int nr_bytes) */
SEC("raw_tracepoint/block_rq_complete")
int biolatency_complete(struct bpf_raw_tracepoint_args *ctx)
{
	struct request *rq = (struct request *)ctx->args[0];
	__u64 key = (__u64)rq;
	__u64 *ts = bpf_map_lookup_elem(&starts, &key);
	if (!ts)
		return 0;
	__u64 start = *ts, now = bpf_ktime_get_ns();
	bpf_map_delete_elem(&starts, &key);
	if (now < start)
		return 0;

	struct biolatency_key hkey = { .dev = targ_per_disk ? request_dev(rq) : 0 };
	struct biolatency_hist *hist = bpf_map_lookup_elem(&hists, &hkey);
	if (!hist) {
		bpf_map_update_elem(&hists, &hkey, &zero_hist, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&hists, &hkey);
		if (!hist)
			return 0;
	}
	__u64 v = (now - start) / (targ_ms ? 1000000 : 1000);
	__u32 slot = log2_slot(v);
	if (slot < BIOLATENCY_SLOTS)
		__sync_fetch_and_add(&hist->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
