//! Every map type against the running kernel: created, and where user space
//! may, updated, looked up, iterated and deleted through the byte API (the
//! typed views are the `bpfkit` crate's, tested there on both backends).

mod common;

use std::os::fd::{AsFd, AsRawFd};

use bpfkit_abi::{errno, map_flags, update_flags::*, MapType};
use bpfkit_kernel::{features, fs, KernelMap, MapDefinition};

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
