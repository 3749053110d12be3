// runqlen: run-queue length, sampled by a perf event on every CPU (user space
// opens a CPU-clock event per CPU at, say, 99 Hz and attaches this program).
// Each sample reads the length of the current CPU's queue through CO-RE:
// current->se.cfs_rq->rq->nr_running counts every runnable task of the CPU,
// of all scheduling classes, the running one included.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_core.h"
#include "runqlen.h"

const volatile __u32 targ_per_cpu = 0; /* one histogram per CPU */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RUNQLEN_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct runqlen_hist);
} hists SEC(".maps");

SEC("perf_event")
int runqlen_sample(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u64 len = BPF_CORE_READ(task, se.cfs_rq, rq, nr_running);
	/* The task this sample interrupted is running, not waiting; the idle
	 * task (pid 0) is not counted in nr_running at all. */
	if (len > 0 && (__u32)bpf_get_current_pid_tgid() != 0)
		len--;
	if (len >= RUNQLEN_SLOTS)
		len = RUNQLEN_SLOTS - 1;

	__u32 key = targ_per_cpu ? bpf_get_smp_processor_id() : 0;
	struct runqlen_hist *hist = bpf_map_lookup_elem(&hists, &key);
	if (!hist)
		return 0;
	if (targ_per_cpu)
		hist->slots[len]++; /* only this CPU writes its entry */
	else
		__sync_fetch_and_add(&hist->slots[len], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
