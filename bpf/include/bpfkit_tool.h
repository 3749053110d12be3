/* What every event tool shares: the ring buffer user space reads, a per-CPU
 * count of records that did not fit, and the function that sends a record.
 * Each tool is one compilation unit, so defining the maps here is safe. */
#ifndef BPFKIT_TOOL_H
#define BPFKIT_TOOL_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Sends `size` bytes at `event`; counts it in `drops` when the buffer is full. */
static __always_inline void submit_event(void *event, __u64 size)
{
	if (bpf_ringbuf_output(&events, event, size, 0)) {
		__u32 zero = 0;
		__u64 *d = bpf_map_lookup_elem(&drops, &zero);
		if (d)
			*d += 1;
	}
}

/* Puts `struct T` in the object's BTF (as an unused .rodata constant) when no
 * global or map names it, so that tools like `bpfkit load --event-type T` and
 * `bpftool btf dump` can decode records by their type. */
#define BPFKIT_RECORD_TYPE(T) static const struct T __btf_##T __attribute__((used))

#endif
