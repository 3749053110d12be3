//! Map semantics, type by type, as the kernel defines them (kernel/bpf/
//! arraymap.c, hashtab.c, lpm_trie.c, queue_stack_maps.c, bloom_filter.c).

use bpfkit_abi::{errno, map_flags, update_flags::*, MapType};
use bpfkit_vm::{Map, MapDef};

fn k(i: u32) -> Vec<u8> {
    i.to_ne_bytes().to_vec()
}
fn v(i: u64) -> Vec<u8> {
    i.to_ne_bytes().to_vec()
}
fn errno_of<T: std::fmt::Debug>(r: Result<T, bpfkit_vm::MapError>) -> i32 {
    r.unwrap_err().errno()
}

#[test]
fn array_semantics() {
    let m = Map::new(MapDef::new(MapType::Array, 4, 8, 4), 1).unwrap();
    assert_eq!(
        m.lookup(&k(0)).unwrap(),
        Some(v(0)),
        "elements start zeroed"
    );
    m.update(&k(1), &v(7), ANY).unwrap();
    m.update(&k(1), &v(8), EXIST).unwrap();
    assert_eq!(m.lookup(&k(1)).unwrap(), Some(v(8)));
    assert_eq!(errno_of(m.update(&k(1), &v(9), NOEXIST)), errno::EEXIST);
    assert_eq!(errno_of(m.update(&k(4), &v(9), ANY)), errno::E2BIG);
    assert_eq!(m.lookup(&k(4)).unwrap(), None);
    assert_eq!(errno_of(m.delete(&k(1))), errno::EINVAL);
    assert_eq!(errno_of(m.update(&k(1), &v(1), 7)), errno::EINVAL);
    let keys: Vec<Vec<u8>> = std::iter::successors(m.next_key(None).unwrap(), |key| {
        m.next_key(Some(key)).unwrap()
    })
    .collect();
    assert_eq!(keys, vec![k(0), k(1), k(2), k(3)]);
    assert_eq!(
        m.next_key(Some(&k(99))).unwrap(),
        Some(k(0)),
        "bad key restarts"
    );
    assert_eq!(errno_of(m.lookup(&[0u8; 3])), errno::EINVAL);
}

#[test]
fn hash_semantics() {
    let m = Map::new(MapDef::new(MapType::Hash, 4, 8, 2), 1).unwrap();
    assert_eq!(m.lookup(&k(1)).unwrap(), None);
    assert_eq!(errno_of(m.update(&k(1), &v(1), EXIST)), errno::ENOENT);
    m.update(&k(1), &v(1), NOEXIST).unwrap();
    assert_eq!(errno_of(m.update(&k(1), &v(2), NOEXIST)), errno::EEXIST);
    m.update(&k(2), &v(2), ANY).unwrap();
    assert_eq!(errno_of(m.update(&k(3), &v(3), ANY)), errno::E2BIG, "full");
    m.update(&k(2), &v(22), ANY).unwrap();
    assert_eq!(
        m.lookup(&k(2)).unwrap(),
        Some(v(22)),
        "existing keys update when full"
    );
    m.delete(&k(1)).unwrap();
    assert_eq!(errno_of(m.delete(&k(1))), errno::ENOENT);
    m.update(&k(3), &v(3), ANY).unwrap();
    let mut keys = vec![];
    let mut cur = None;
    while let Some(next) = m.next_key(cur.as_deref()).unwrap() {
        keys.push(next.clone());
        cur = Some(next);
    }
    keys.sort();
    assert_eq!(keys, vec![k(2), k(3)]);
}

#[test]
fn lru_hash_evicts_least_recently_used() {
    let m = Map::new(MapDef::new(MapType::LruHash, 4, 8, 2), 1).unwrap();
    m.update(&k(1), &v(1), ANY).unwrap();
    m.update(&k(2), &v(2), ANY).unwrap();
    m.update(&k(1), &v(11), ANY).unwrap(); // 1 is now the most recent
    m.update(&k(3), &v(3), ANY).unwrap(); // evicts 2
    assert_eq!(m.lookup(&k(2)).unwrap(), None);
    assert_eq!(m.lookup(&k(1)).unwrap(), Some(v(11)));
    assert_eq!(m.lookup(&k(3)).unwrap(), Some(v(3)));
}

#[test]
fn percpu_values_use_the_syscall_layout() {
    let m = Map::new(MapDef::new(MapType::PercpuArray, 4, 4, 2), 3).unwrap();
    assert_eq!(m.value_copies(), 3);
    // Three CPUs, each value padded to 8 bytes.
    let mut all = vec![0u8; 24];
    all[0..4].copy_from_slice(&1u32.to_ne_bytes());
    all[8..12].copy_from_slice(&2u32.to_ne_bytes());
    all[16..20].copy_from_slice(&3u32.to_ne_bytes());
    m.update(&k(0), &all, ANY).unwrap();
    assert_eq!(m.lookup(&k(0)).unwrap(), Some(all));
    assert_eq!(errno_of(m.update(&k(0), &[0u8; 4], ANY)), errno::EINVAL);
    let h = Map::new(MapDef::new(MapType::PercpuHash, 4, 8, 4), 2).unwrap();
    h.update(&k(5), &[v(1), v(2)].concat(), ANY).unwrap();
    assert_eq!(h.lookup(&k(5)).unwrap(), Some([v(1), v(2)].concat()));
}

#[test]
fn lpm_trie_longest_prefix_match() {
    let mut def = MapDef::new(MapType::LpmTrie, 8, 8, 8);
    assert_eq!(
        errno_of(Map::new(def.clone(), 1)),
        errno::EINVAL,
        "needs NO_PREALLOC"
    );
    def.map_flags = map_flags::NO_PREALLOC;
    let m = Map::new(def, 1).unwrap();
    let key = |plen: u32, ip: [u8; 4]| [plen.to_ne_bytes().to_vec(), ip.to_vec()].concat();
    m.update(&key(8, [10, 0, 0, 0]), &v(8), ANY).unwrap();
    m.update(&key(16, [10, 1, 0, 0]), &v(16), ANY).unwrap();
    m.update(&key(32, [10, 1, 2, 3]), &v(32), ANY).unwrap();
    assert_eq!(m.lookup(&key(32, [10, 1, 2, 3])).unwrap(), Some(v(32)));
    assert_eq!(m.lookup(&key(32, [10, 1, 9, 9])).unwrap(), Some(v(16)));
    assert_eq!(m.lookup(&key(32, [10, 9, 9, 9])).unwrap(), Some(v(8)));
    assert_eq!(m.lookup(&key(32, [11, 0, 0, 0])).unwrap(), None);
    assert_eq!(
        m.lookup(&key(12, [10, 1, 2, 3])).unwrap(),
        Some(v(8)),
        "query prefix caps the match"
    );
    assert_eq!(
        errno_of(m.update(&key(33, [0; 4]), &v(0), ANY)),
        errno::EINVAL
    );
    assert_eq!(
        errno_of(m.update(&key(8, [10, 0, 0, 0]), &v(0), NOEXIST)),
        errno::EEXIST
    );
    m.delete(&key(16, [10, 1, 0, 0])).unwrap();
    assert_eq!(m.lookup(&key(32, [10, 1, 9, 9])).unwrap(), Some(v(8)));
    assert_eq!(errno_of(m.delete(&key(16, [10, 1, 0, 0]))), errno::ENOENT);
}

#[test]
fn queue_and_stack_order() {
    let q = Map::new(MapDef::new(MapType::Queue, 0, 8, 2), 1).unwrap();
    q.push(&v(1), ANY).unwrap();
    q.push(&v(2), ANY).unwrap();
    assert_eq!(errno_of(q.push(&v(3), ANY)), errno::E2BIG);
    q.push(&v(3), EXIST).unwrap(); // drops the oldest (1)
    assert_eq!(q.peek(None).unwrap(), Some(v(2)));
    assert_eq!(q.pop().unwrap(), Some(v(2)));
    assert_eq!(q.pop().unwrap(), Some(v(3)));
    assert_eq!(q.pop().unwrap(), None);
    let s = Map::new(MapDef::new(MapType::Stack, 0, 8, 4), 1).unwrap();
    s.push(&v(1), ANY).unwrap();
    s.push(&v(2), ANY).unwrap();
    assert_eq!(s.pop().unwrap(), Some(v(2)));
    assert_eq!(s.pop().unwrap(), Some(v(1)));
    assert_eq!(
        errno_of(Map::new(MapDef::new(MapType::Queue, 4, 8, 2), 1)),
        errno::EINVAL
    );
}

#[test]
fn bloom_filter_membership() {
    let b = Map::new(MapDef::new(MapType::BloomFilter, 0, 8, 16), 1).unwrap();
    b.push(&v(42), ANY).unwrap();
    assert!(b.peek(Some(&v(42))).unwrap().is_some());
    assert!(b.peek(Some(&v(43))).unwrap().is_none());
}

#[test]
fn map_in_map_holds_compatible_maps_by_id() {
    let mut def = MapDef::new(MapType::ArrayOfMaps, 4, 4, 2);
    def.inner = Some(Box::new(MapDef::new(MapType::Array, 4, 8, 1)));
    let outer = Map::new(def, 1).unwrap();
    let inner = Map::new(MapDef::new(MapType::Array, 4, 8, 1), 1).unwrap();
    let wrong = Map::new(MapDef::new(MapType::Array, 4, 4, 1), 1).unwrap();
    outer.update(&k(0), &inner.id().to_ne_bytes(), ANY).unwrap();
    assert_eq!(
        outer.lookup(&k(0)).unwrap(),
        Some(inner.id().to_ne_bytes().to_vec())
    );
    assert_eq!(
        errno_of(outer.update(&k(1), &wrong.id().to_ne_bytes(), ANY)),
        errno::EINVAL
    );
    assert_eq!(
        errno_of(outer.update(&k(1), &u32::MAX.to_ne_bytes(), ANY)),
        errno::EBADF
    );
}

#[test]
fn ring_buffer_size_rules() {
    assert_eq!(
        errno_of(Map::new(MapDef::new(MapType::Ringbuf, 0, 0, 1000), 1)),
        errno::EINVAL
    );
    let r = Map::new(MapDef::new(MapType::Ringbuf, 0, 0, 4096), 1).unwrap();
    assert_eq!(r.drain_ringbuf().unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(r.ringbuf_stats().unwrap().capacity, 4096);
}
