/* The four benchmark workloads of workloads.rs written in C, compiled by
 * the JIT benchmark (crates/jit/benches/jit.rs) with `clang -O2` into a
 * shared object at bench start: the "native C" column. The small hash map
 * here also backs uBPF's hash counter run, whose helpers 1 and 2
 * (map_lookup_elem, map_update_elem) are c_map_lookup and c_map_update. */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

uint64_t c_primes(void)
{
    uint64_t count = 0;
    for (uint64_t n = 2; n < 2000; n++) {
        for (uint64_t d = 2;; d++) {
            if (d * d > n) {
                count++;
                break;
            }
            if (n % d == 0)
                break;
        }
    }
    return count;
}

/* Copies the first 64 KiB of mem to the next 64 KiB, 8 bytes at a time. */
uint64_t c_memcpy(uint8_t *mem)
{
    for (size_t i = 0; i < 65536; i += 8) {
        uint64_t v;
        memcpy(&v, mem + i, 8);
        memcpy(mem + 65536 + i, &v, 8);
    }
    return 65536;
}

/* Ethernet/IPv4/TCP: destination port plus the SYN and ACK flag bits. */
uint64_t c_parse(const uint8_t *p, size_t len)
{
    if (len < 14 || (p[12] | (p[13] << 8)) != 0x8)
        return 0;
    size_t l4 = 14 + ((size_t)(p[14] & 15) << 2);
    if (l4 + 20 > len || p[23] != 6)
        return 0;
    return (uint64_t)((p[l4 + 2] << 8) | p[l4 + 3]) + (p[l4 + 13] & 18);
}

struct c_slot {
    uint32_t used;
    uint32_t key;
    uint64_t value;
};

/* Open addressing, linear probing, u32 keys and u64 values. */
struct c_map {
    uint32_t mask;
    uint32_t count;
    uint32_t max_entries;
    struct c_slot slots[];
};

void *c_map_new(uint32_t max_entries)
{
    uint32_t cap = 1;
    while (cap < 2 * max_entries)
        cap <<= 1;
    struct c_map *m = calloc(1, sizeof(*m) + cap * sizeof(struct c_slot));
    if (m) {
        m->mask = cap - 1;
        m->max_entries = max_entries;
    }
    return m;
}

void c_map_free(void *m)
{
    free(m);
}

static struct c_slot *c_map_find(struct c_map *m, uint32_t key, int insert)
{
    uint32_t i = (key * 2654435761u) & m->mask;
    for (;;) {
        struct c_slot *s = &m->slots[i];
        if (s->used && s->key == key)
            return s;
        if (!s->used)
            return insert ? s : NULL;
        i = (i + 1) & m->mask;
    }
}

/* bpf_map_lookup_elem(map, key): the value's address, or 0. */
uint64_t c_map_lookup(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
    (void)a3;
    (void)a4;
    (void)a5;
    uint32_t k;
    memcpy(&k, (const void *)(uintptr_t)key, 4);
    struct c_slot *s = c_map_find((struct c_map *)(uintptr_t)map, k, 0);
    return s ? (uint64_t)(uintptr_t)&s->value : 0;
}

/* bpf_map_update_elem(map, key, value, flags) with flags BPF_ANY:
 * 0, or -E2BIG (-7) when the map is full. */
uint64_t c_map_update(uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t a5)
{
    (void)flags;
    (void)a5;
    struct c_map *m = (struct c_map *)(uintptr_t)map;
    uint32_t k;
    memcpy(&k, (const void *)(uintptr_t)key, 4);
    struct c_slot *s = c_map_find(m, k, 1);
    if (!s->used) {
        if (m->count >= m->max_entries)
            return (uint64_t)-7;
        s->used = 1;
        s->key = k;
        m->count++;
    }
    memcpy(&s->value, (const void *)(uintptr_t)value, 8);
    return 0;
}

/* The hash counter: 1000 increments over 64 keys, as the eBPF program does
 * (lookup, atomic add when present, update with 1 when absent). */
uint64_t c_hash_counter(void *map)
{
    uint64_t i;
    for (i = 0; i < 1000; i++) {
        uint32_t key = (uint32_t)(i & 63);
        uint64_t v = c_map_lookup((uint64_t)(uintptr_t)map, (uint64_t)(uintptr_t)&key, 0, 0, 0);
        if (v) {
            __atomic_fetch_add((uint64_t *)(uintptr_t)v, 1, __ATOMIC_SEQ_CST);
        } else {
            uint64_t one = 1;
            c_map_update((uint64_t)(uintptr_t)map, (uint64_t)(uintptr_t)&key,
                         (uint64_t)(uintptr_t)&one, 0, 0);
        }
    }
    return i;
}
