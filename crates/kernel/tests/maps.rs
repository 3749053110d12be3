//! Every map type against the running kernel: created, and where user space
//! may, updated, looked up, iterated and deleted through the byte API and
//! the typed views.

mod common;

use std::os::fd::{AsFd, AsRawFd};

use bpfkit_abi::{errno, map_flags, update_flags::*, MapType, ProgramType};
use bpfkit_isa::Insn;
use bpfkit_kernel::map::{
    Array, ArrayOfMaps, BloomFilter, HashMap, HashOfMaps, LpmTrie, PerCpuArray, PerCpuHashMap,
    ProgArray, Queue, Stack,
};
use bpfkit_kernel::{features, fs, KernelMap, MapDefinition};
use common::*;

fn create(t: MapType, key: u32, value: u32, max: u32) -> KernelMap {
    KernelMap::create(
        &MapDefinition::new(&format!("t_{t}"), t, key, value, max),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn k(i: u32) -> Vec<u8> {
    i.to_ne_bytes().to_vec()
}

fn v(i: u64) -> Vec<u8> {
    i.to_ne_bytes().to_vec()
}

/// Update, lookup, next_key iteration and delete through the byte API.
fn round_trip(m: &KernelMap, entries: &[(Vec<u8>, Vec<u8>)]) {
    for (key, value) in entries {
        m.update(key, value, ANY).unwrap();
    }
    for (key, value) in entries {
        assert_eq!(
            m.lookup(key).unwrap().as_ref(),
            Some(value),
            "{}",
            m.map_type()
        );
    }
    let mut keys = m.keys().unwrap();
    keys.sort();
    let mut want: Vec<Vec<u8>> = entries.iter().map(|(k, _)| k.clone()).collect();
    want.sort();
    assert_eq!(keys, want, "{}", m.map_type());
    for (key, _) in entries {
        m.delete(key).unwrap();
        assert_eq!(m.lookup(key).unwrap(), None);
    }
    assert_eq!(m.next_key(None).unwrap(), None);
}

#[test]
fn hash_kinds_round_trip() {
    require_bpf!();
    let entries: Vec<_> = (1..=5).map(|i| (k(i), v(u64::from(i) * 10))).collect();
    for t in [MapType::Hash, MapType::LruHash] {
        round_trip(&create(t, 4, 8, 16), &entries);
    }
    let ncpu = fs::possible_cpus();
    let percpu = |i: u64| -> Vec<u8> {
        (0..ncpu as u64)
            .flat_map(|c| (i + c).to_ne_bytes())
            .collect()
    };
    let entries: Vec<_> = (1..=5).map(|i| (k(i), percpu(u64::from(i)))).collect();
    for t in [MapType::PercpuHash, MapType::LruPercpuHash] {
        round_trip(&create(t, 4, 8, 16), &entries);
    }
    // Errors the VM reproduces.
    let h = create(MapType::Hash, 4, 8, 2);
    assert_eq!(
        h.update(&k(1), &v(1), EXIST).unwrap_err().errno(),
        errno::ENOENT
    );
    h.update(&k(1), &v(1), NOEXIST).unwrap();
    assert_eq!(
        h.update(&k(1), &v(1), NOEXIST).unwrap_err().errno(),
        errno::EEXIST
    );
    h.update(&k(2), &v(2), ANY).unwrap();
    assert_eq!(
        h.update(&k(3), &v(3), ANY).unwrap_err().errno(),
        errno::E2BIG
    );
    assert_eq!(h.lookup(&[0; 3]).unwrap_err().errno(), errno::EINVAL);
    assert_eq!(h.lookup_and_delete(&k(2)).unwrap(), Some(v(2)));
    assert_eq!(h.lookup(&k(2)).unwrap(), None);
}

#[test]
fn arrays_round_trip() {
    require_bpf!();
    let a = create(MapType::Array, 4, 8, 4);
    a.update(&k(1), &v(7), ANY).unwrap();
    assert_eq!(a.lookup(&k(1)).unwrap(), Some(v(7)));
    assert_eq!(a.lookup(&k(0)).unwrap(), Some(v(0)));
    assert_eq!(a.lookup(&k(4)).unwrap(), None);
    assert_eq!(
        a.update(&k(4), &v(1), ANY).unwrap_err().errno(),
        errno::E2BIG
    );
    assert_eq!(
        a.update(&k(1), &v(1), NOEXIST).unwrap_err().errno(),
        errno::EEXIST
    );
    assert_eq!(a.delete(&k(1)).unwrap_err().errno(), errno::EINVAL);
    assert_eq!(a.keys().unwrap(), (0..4).map(k).collect::<Vec<_>>());
    a.freeze().unwrap();
    assert_eq!(
        a.update(&k(1), &v(1), ANY).unwrap_err().errno(),
        errno::EPERM
    );

    let typed = PerCpuArray::<u32>::create("pcpu", 2).unwrap();
    let values: Vec<u32> = (0..fs::possible_cpus() as u32).map(|c| c * 3).collect();
    typed.set(1, &values).unwrap();
    assert_eq!(typed.get(1).unwrap(), Some(values.clone()));
    assert_eq!(typed.get(0).unwrap(), Some(vec![0; values.len()]));
    assert!(typed.set(0, &[1]).is_err() || values.len() == 1);

    let arr = Array::<[u16; 3]>::create("arr", 3).unwrap();
    arr.set(2, &[1, 2, 3]).unwrap();
    assert_eq!(arr.get(2).unwrap(), Some([1, 2, 3]));
    assert_eq!(arr.len(), 3);
}

#[test]
fn typed_hash_maps() {
    require_bpf!();
    let h = HashMap::<u64, [u8; 16]>::create("typed", 8, false).unwrap();
    h.insert(&7, &[7; 16], ANY).unwrap();
    h.insert(&9, &[9; 16], ANY).unwrap();
    assert_eq!(h.get(&7).unwrap(), Some([7; 16]));
    let mut entries = h.entries().unwrap();
    entries.sort();
    assert_eq!(entries, vec![(7, [7; 16]), (9, [9; 16])]);
    assert_eq!(h.take(&9).unwrap(), Some([9; 16]));
    h.remove(&7).unwrap();
    assert!(h.keys().unwrap().is_empty());
    // A view checks the map it is given.
    let wrong = create(MapType::Array, 4, 8, 1);
    assert!(HashMap::<u64, u64, _>::try_from_map(&wrong).is_err());
    let sized = create(MapType::Hash, 4, 8, 1);
    assert!(HashMap::<u64, u64, _>::try_from_map(&sized).is_err());
    assert!(HashMap::<u32, u64, _>::try_from_map(&sized).is_ok());

    let pc = PerCpuHashMap::<u32, u64>::create("pch", 4, true).unwrap();
    let values: Vec<u64> = (0..fs::possible_cpus() as u64).collect();
    pc.insert(&1, &values, ANY).unwrap();
    assert_eq!(pc.get(&1).unwrap(), Some(values));
    pc.remove(&1).unwrap();
    assert_eq!(pc.get(&1).unwrap(), None);
}

#[test]
fn lru_evicts_instead_of_failing() {
    require_bpf!();
    let lru = KernelMap::create(
        &MapDefinition::new("lru", MapType::LruHash, 4, 8, 64).with_flags(map_flags::NO_COMMON_LRU),
        None,
    )
    .unwrap();
    let plain = create(MapType::LruHash, 4, 8, 64);
    for m in [&lru, &plain] {
        for i in 0..1000 {
            m.update(&k(i), &v(u64::from(i)), ANY).unwrap();
        }
        let n = m.keys().unwrap().len();
        assert!(n > 0 && n <= 64, "{n} entries in a 64-entry LRU map");
        assert_eq!(m.lookup(&k(999)).unwrap(), Some(v(999)));
        assert_eq!(
            m.lookup(&k(0)).unwrap(),
            None,
            "the oldest entry was evicted"
        );
    }
}

#[test]
fn lpm_trie_matches_the_longest_prefix() {
    require_bpf!();
    let t = LpmTrie::<[u8; 4], u32>::create("routes", 16).unwrap();
    t.insert(8, &[10, 0, 0, 0], &8, ANY).unwrap();
    t.insert(16, &[10, 1, 0, 0], &16, ANY).unwrap();
    t.insert(24, &[10, 1, 2, 0], &24, ANY).unwrap();
    assert_eq!(t.longest_match(32, &[10, 1, 2, 3]).unwrap(), Some(24));
    assert_eq!(t.longest_match(32, &[10, 1, 9, 9]).unwrap(), Some(16));
    assert_eq!(t.longest_match(32, &[10, 9, 9, 9]).unwrap(), Some(8));
    assert_eq!(t.longest_match(32, &[11, 0, 0, 0]).unwrap(), None);
    t.remove(16, &[10, 1, 0, 0]).unwrap();
    assert_eq!(t.longest_match(32, &[10, 1, 9, 9]).unwrap(), Some(8));
    assert_eq!(t.map().keys().unwrap().len(), 2);
}

#[test]
fn queue_and_stack_order() {
    require_bpf!();
    let q = Queue::<u64>::create("q", 3).unwrap();
    let s = Stack::<u64>::create("s", 3).unwrap();
    for i in 1..=3 {
        q.push(&i, ANY).unwrap();
        s.push(&i, ANY).unwrap();
    }
    assert_eq!(q.map().push(&v(4), ANY).unwrap_err().errno(), errno::E2BIG);
    // BPF_EXIST makes room by dropping the oldest.
    q.push(&4, EXIST).unwrap();
    assert_eq!(q.peek().unwrap(), Some(2));
    let popped: Vec<u64> = std::iter::from_fn(|| q.pop().unwrap()).collect();
    assert_eq!(popped, vec![2, 3, 4]);
    let popped: Vec<u64> = std::iter::from_fn(|| s.pop().unwrap()).collect();
    assert_eq!(popped, vec![3, 2, 1]);
    assert_eq!(s.peek().unwrap(), None);
}

#[test]
fn bloom_filter_has_no_false_negatives() {
    require_bpf!();
    let b = BloomFilter::<u64>::create("bloom", 100, 3).unwrap();
    for i in 0..100u64 {
        b.insert(&(i * 7919)).unwrap();
    }
    for i in 0..100u64 {
        assert!(b.contains(&(i * 7919)).unwrap());
    }
    let false_positives = (1_000_000..1_000_200u64)
        .filter(|x| b.contains(x).unwrap())
        .count();
    assert!(false_positives < 100, "{false_positives} of 200");
    assert_eq!(b.map().info().unwrap().map_extra, 3);
}

#[test]
fn prog_array_holds_a_loaded_program() {
    require_bpf!();
    let prog = load(
        "tail",
        ProgramType::Xdp,
        &[mov(bpfkit_isa::Reg::R0, 2), Insn::Exit],
    )
    .unwrap();
    let pa = ProgArray::create("jmp", 4).unwrap();
    pa.set(2, &prog).unwrap();
    assert_eq!(pa.get_id(2).unwrap(), Some(prog.id()));
    assert_eq!(pa.get_id(1).unwrap(), None);
    assert_eq!(pa.map().keys().unwrap(), (0..4).map(k).collect::<Vec<_>>());
    pa.clear(2).unwrap();
    assert_eq!(pa.get_id(2).unwrap(), None);
}

#[test]
fn maps_of_maps_hold_inner_maps() {
    require_bpf!();
    let inner = create(MapType::Array, 4, 8, 1);
    let other = create(MapType::Array, 4, 8, 1);
    let aom = ArrayOfMaps::create("aom", 2, &inner).unwrap();
    aom.set(1, &other).unwrap();
    assert_eq!(aom.get_id(1).unwrap(), Some(other.id()));
    aom.clear(1).unwrap();
    assert_eq!(aom.get_id(1).unwrap(), None);
    // An inner map of another shape is refused.
    let odd = create(MapType::Array, 4, 4, 1);
    assert_eq!(aom.set(0, &odd).unwrap_err().errno(), errno::EINVAL);

    let hom = HashOfMaps::<u32>::create("hom", 2, &inner).unwrap();
    hom.insert(&42, &other, ANY).unwrap();
    assert_eq!(hom.get_id(&42).unwrap(), Some(other.id()));
    assert_eq!(hom.map().keys().unwrap(), vec![k(42)]);
    hom.remove(&42).unwrap();
    assert_eq!(hom.get_id(&42).unwrap(), None);
}

#[test]
fn fd_holding_maps_round_trip() {
    require_bpf!();
    // Devices by hash (the loopback interface is index 1).
    round_trip(&create(MapType::DevmapHash, 4, 4, 4), &[(k(77), k(1))]);
    // Devices and CPUs by index: iteration walks every index, like arrays.
    let dm = create(MapType::Devmap, 4, 4, 4);
    dm.update(&k(3), &k(1), ANY).unwrap();
    assert_eq!(dm.lookup(&k(3)).unwrap(), Some(k(1)));
    assert_eq!(dm.keys().unwrap(), (0..4).map(k).collect::<Vec<_>>());
    dm.delete(&k(3)).unwrap();
    assert_eq!(dm.lookup(&k(3)).unwrap(), None);
    // A CPU map's value is the queue size of the CPU's kthread.
    let cm = create(MapType::Cpumap, 4, 4, 1);
    cm.update(&k(0), &k(192), ANY).unwrap();
    assert_eq!(cm.lookup(&k(0)).unwrap(), Some(k(192)));
    cm.delete(&k(0)).unwrap();
    assert_eq!(cm.lookup(&k(0)).unwrap(), None);
    // Sockets: the kernel stores the socket and reports its cookie.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for t in [MapType::Sockmap, MapType::Sockhash] {
        let m = create(t, 4, 8, 2);
        m.update(&k(1), &v(sock.as_raw_fd() as u64), ANY).unwrap();
        let cookie = m.lookup(&k(1)).unwrap().unwrap();
        assert_ne!(cookie, v(0));
        // A sockmap is indexed like an array; a sockhash holds only its keys.
        let keys = if t == MapType::Sockmap {
            vec![k(0), k(1)]
        } else {
            vec![k(1)]
        };
        assert_eq!(m.keys().unwrap(), keys);
        m.delete(&k(1)).unwrap();
        assert_eq!(m.lookup(&k(1)).unwrap(), None);
    }
    // Cgroups (v2 only): stored by fd, not readable back from user space.
    let cgroup2 = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
        });
    if let Some(cg) = cgroup2.and_then(|p| std::fs::File::open(p).ok()) {
        let m = create(MapType::CgroupArray, 4, 4, 1);
        m.update(&k(0), &k(cg.as_raw_fd() as u32), ANY).unwrap();
        m.delete(&k(0)).unwrap();
    }
    // Perf event arrays hold perf event fds (see the perf buffer test).
    let perf = create(MapType::PerfEventArray, 4, 4, fs::possible_cpus() as u32);
    assert_eq!(perf.lookup(&k(0)).unwrap_err().errno(), errno::ENOTSUPP);
    // Stack traces are written by programs only.
    let st = create(MapType::StackTrace, 4, 8 * 16, 4);
    assert_eq!(st.lookup(&k(0)).unwrap(), None);
}

#[test]
fn ring_buffers_and_the_rest_are_created() {
    require_bpf!();
    let rb = create(MapType::Ringbuf, 0, 0, 4096 * 4);
    assert_eq!(rb.info().unwrap().max_entries, 4096 * 4);
    // Not a power of two pages: refused.
    let bad = KernelMap::create(
        &MapDefinition::new("bad", MapType::Ringbuf, 0, 0, 5000),
        None,
    );
    assert!(bad.is_err());
    // Every other type: the feature probe creates one (storage maps with BTF).
    for &t in MapType::ALL {
        if t == MapType::Unspec {
            continue;
        }
        let ok = features::map_type(t).unwrap();
        if !ok {
            eprintln!("map type {t} is not available on this kernel");
        }
        let always = !matches!(t, MapType::Arena | MapType::StructOps);
        assert!(ok || !always, "{t} could not be created");
    }
}

#[test]
fn batches_read_write_and_drain() {
    require_bpf!();
    let h = create(MapType::Hash, 4, 8, 256);
    let keys: Vec<Vec<u8>> = (0..200).map(k).collect();
    let values: Vec<Vec<u8>> = (0..200).map(|i| v(i * 2)).collect();
    let pairs: Vec<(&[u8], &[u8])> = keys
        .iter()
        .zip(&values)
        .map(|(a, b)| (&a[..], &b[..]))
        .collect();
    assert_eq!(h.update_batch(&pairs, ANY).unwrap(), 200);
    let mut all = h.batch_entries(16, false).unwrap();
    all.sort();
    let mut want: Vec<_> = keys.iter().cloned().zip(values.iter().cloned()).collect();
    want.sort();
    assert_eq!(all, want);
    let first: Vec<&[u8]> = keys[..50].iter().map(|k| &k[..]).collect();
    assert_eq!(h.delete_batch(&first).unwrap(), 50);
    assert_eq!(h.batch_entries(7, true).unwrap().len(), 150);
    assert_eq!(h.next_key(None).unwrap(), None);

    // Arrays batch too, per-CPU values included.
    let pa = create(MapType::PercpuArray, 4, 4, 10);
    let entries = pa.batch_entries(4, false).unwrap();
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[0].1.len(), 8 * fs::possible_cpus());
}

#[test]
fn maps_reopen_by_id_and_fd() {
    require_bpf!();
    let m = create(MapType::Hash, 4, 8, 4);
    m.update(&k(1), &v(1), ANY).unwrap();
    let again = KernelMap::from_id(m.id()).unwrap();
    assert_eq!(again.lookup(&k(1)).unwrap(), Some(v(1)));
    assert_eq!(again.name(), m.name());
    let dup = KernelMap::from_fd(m.as_fd().try_clone_to_owned().unwrap()).unwrap();
    assert_eq!(
        (dup.key_size(), dup.value_size(), dup.max_entries()),
        (4, 8, 4)
    );
}
