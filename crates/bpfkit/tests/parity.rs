//! The VM and the kernel agree: the same map assertions pass on both, and
//! the same objects give the same results and leave the same map contents.

use std::path::PathBuf;

use bpfkit::abi::{errno, map_flags, update_flags::*, MapType};
use bpfkit::kernel::{KernelMap, MapDefinition};
use bpfkit::maps::{BloomFilter, HashMap, LpmTrie, RawMap};
use bpfkit::object::ObjectSpec;
use bpfkit::vm::{Map, MapDef};
use bpfkit::{dump, Backend, Object};

/// A map of either backend.
fn make(backend: Backend, t: MapType, k: u32, v: u32, max: u32, flags: u32) -> Box<dyn RawMap> {
    match backend {
        Backend::Vm => {
            let mut def = MapDef::new(t, k, v, max);
            def.map_flags = flags;
            Box::new(Map::new(def, 1).unwrap())
        }
        Backend::Kernel => Box::new(
            KernelMap::create(
                &MapDefinition {
                    name: "parity".into(),
                    map_type: t,
                    key_size: k,
                    value_size: v,
                    max_entries: max,
                    map_flags: flags,
                    map_extra: 0,
                    numa_node: None,
                    btf: None,
                },
                None,
            )
            .unwrap(),
        ),
    }
}

fn backends() -> Vec<Backend> {
    match bpfkit::kernel::check_bpf_access() {
        Ok(()) => vec![Backend::Vm, Backend::Kernel],
        Err(why) => {
            eprintln!("SKIP (kernel half): cannot use bpf(): {why}");
            vec![Backend::Vm]
        }
    }
}

fn errno_of<T>(r: Result<T, bpfkit::maps::MapError>) -> i32 {
    r.err().map(|e| e.errno).unwrap_or(0)
}

#[test]
fn map_semantics_agree() {
    for b in backends() {
        let k = |i: u32| i.to_ne_bytes().to_vec();
        let v = |i: u64| i.to_ne_bytes().to_vec();
        // Hash.
        let h = make(b, MapType::Hash, 4, 8, 2, 0);
        assert_eq!(
            errno_of(h.update(&k(1), &v(1), EXIST)),
            errno::ENOENT,
            "{b:?}"
        );
        h.update(&k(1), &v(1), NOEXIST).unwrap();
        assert_eq!(
            errno_of(h.update(&k(1), &v(1), NOEXIST)),
            errno::EEXIST,
            "{b:?}"
        );
        h.update(&k(2), &v(2), ANY).unwrap();
        assert_eq!(errno_of(h.update(&k(3), &v(3), ANY)), errno::E2BIG, "{b:?}");
        h.delete(&k(1)).unwrap();
        assert_eq!(errno_of(h.delete(&k(1))), errno::ENOENT, "{b:?}");
        assert_eq!(
            h.next_key(Some(&k(99))).unwrap(),
            Some(k(2)),
            "{b:?}: unknown key restarts"
        );
        // Array.
        let a = make(b, MapType::Array, 4, 8, 2, 0);
        assert_eq!(errno_of(a.update(&k(2), &v(0), ANY)), errno::E2BIG, "{b:?}");
        assert_eq!(
            errno_of(a.update(&k(0), &v(0), NOEXIST)),
            errno::EEXIST,
            "{b:?}"
        );
        assert_eq!(errno_of(a.delete(&k(0))), errno::EINVAL, "{b:?}");
        assert_eq!(a.next_key(Some(&k(1))).unwrap(), None, "{b:?}");
        // Typed layer over either backend.
        let typed: HashMap<_, u32, u64> = HashMap::new(make(b, MapType::Hash, 4, 8, 4, 0)).unwrap();
        typed.insert(&7, &70, ANY).unwrap();
        assert_eq!(typed.get(&7).unwrap(), Some(70), "{b:?}");
        assert!(
            HashMap::<_, u64, u64>::new(make(b, MapType::Hash, 4, 8, 4, 0)).is_err(),
            "{b:?}: size check"
        );
        // Queue and stack.
        let q = make(b, MapType::Queue, 0, 8, 2, 0);
        q.push(&v(1), ANY).unwrap();
        q.push(&v(2), ANY).unwrap();
        assert_eq!(errno_of(q.push(&v(3), ANY)), errno::E2BIG, "{b:?}");
        q.push(&v(3), EXIST).unwrap();
        assert_eq!(q.pop().unwrap(), Some(v(2)), "{b:?}");
        let s = make(b, MapType::Stack, 0, 8, 2, 0);
        s.push(&v(1), ANY).unwrap();
        s.push(&v(2), ANY).unwrap();
        assert_eq!(s.pop().unwrap(), Some(v(2)), "{b:?}");
        // LPM trie.
        let lpm = make(b, MapType::LpmTrie, 8, 8, 8, map_flags::NO_PREALLOC);
        let key = |plen: u32, ip: [u8; 4]| [plen.to_ne_bytes().to_vec(), ip.to_vec()].concat();
        lpm.update(&key(8, [10, 0, 0, 0]), &v(8), ANY).unwrap();
        lpm.update(&key(24, [10, 1, 2, 0]), &v(24), ANY).unwrap();
        assert_eq!(
            lpm.lookup(&key(32, [10, 1, 2, 3])).unwrap(),
            Some(v(24)),
            "{b:?}"
        );
        assert_eq!(
            lpm.lookup(&key(32, [10, 1, 3, 3])).unwrap(),
            Some(v(8)),
            "{b:?}"
        );
        assert_eq!(
            errno_of(lpm.update(&key(33, [0; 4]), &v(0), ANY)),
            errno::EINVAL,
            "{b:?}"
        );
        // Bloom filter.
        let bloom = make(b, MapType::BloomFilter, 0, 8, 16, 0);
        bloom.push(&v(5), ANY).unwrap();
        assert!(bloom.peek(Some(&v(5))).unwrap().is_some(), "{b:?}");
    }
}

#[test]
fn typed_lpm_trie_and_bloom_filter_agree() {
    for b in backends() {
        // IPv4 prefixes: 10.0.0.0/8 -> 1, 10.1.0.0/16 -> 2.
        let trie: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::new(make(b, MapType::LpmTrie, 8, 4, 16, map_flags::NO_PREALLOC)).unwrap();
        trie.insert(8, &[10, 0, 0, 0], &1).unwrap();
        trie.insert(16, &[10, 1, 0, 0], &2).unwrap();
        assert_eq!(
            trie.longest_match(&[10, 1, 2, 3]).unwrap(),
            Some(2),
            "{b:?}"
        );
        assert_eq!(
            trie.longest_match(&[10, 9, 9, 9]).unwrap(),
            Some(1),
            "{b:?}"
        );
        assert_eq!(trie.longest_match(&[11, 0, 0, 1]).unwrap(), None, "{b:?}");
        trie.remove(16, &[10, 1, 0, 0]).unwrap();
        assert_eq!(
            trie.longest_match(&[10, 1, 2, 3]).unwrap(),
            Some(1),
            "{b:?}"
        );
        assert!(LpmTrie::<_, [u8; 2], u32>::new(make(
            b,
            MapType::LpmTrie,
            8,
            4,
            16,
            map_flags::NO_PREALLOC
        ))
        .is_err());

        let bloom: BloomFilter<_, u64> =
            BloomFilter::new(make(b, MapType::BloomFilter, 0, 8, 64, 0)).unwrap();
        for x in [3u64, 5, 7] {
            bloom.insert(&x).unwrap();
        }
        for x in [3u64, 5, 7] {
            assert!(bloom.contains(&x).unwrap(), "{b:?}: no false negatives");
        }
        // 64 entries, a few bits each: 1000 absent values hit few false positives.
        let false_hits = (1000..2000u64)
            .filter(|x| bloom.contains(x).unwrap())
            .count();
        assert!(false_hits < 100, "{b:?}: {false_hits} false positives");
    }
}

fn fixture(name: &str) -> ObjectSpec {
    ObjectSpec::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../object/tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn packet(proto: u8, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    p[14] = 0x45;
    p[23] = proto;
    p[36..38].copy_from_slice(&dport.to_be_bytes());
    p
}

#[test]
fn the_same_objects_give_the_same_results() {
    let packets = [
        packet(17, 53),
        packet(17, 54),
        packet(6, 53),
        packet(1, 0),
        packet(17, 53),
    ];
    let mut outcomes = Vec::new();
    for b in backends() {
        let mut xdp = Object::load(&fixture("xdp_parser.bpf.o"), b).unwrap();
        let results: Vec<_> = packets
            .iter()
            .map(|p| xdp.test_run("xdp_parser", p, &[]).unwrap())
            .collect();
        let counts = dump(xdp.map("proto_count").unwrap()).unwrap();
        let mut sock = Object::load(&fixture("socket.bpf.o"), b).unwrap();
        let filtered: Vec<u32> = [packet(17, 7777), packet(17, 7778), packet(6, 7777)]
            .iter()
            .map(|p| sock.test_run("udp_port_filter", p, &[]).unwrap().retval)
            .collect();
        outcomes.push((b, results, counts, filtered));
    }
    let (_, vm_results, vm_counts, vm_filtered) = &outcomes[0];
    assert_eq!(
        vm_results.iter().map(|r| r.retval).collect::<Vec<_>>(),
        vec![1, 2, 2, 2, 1]
    );
    assert_eq!(vm_filtered, &vec![50, 0, 0], "L3 length of a 64-byte frame");
    for (b, results, counts, filtered) in &outcomes[1..] {
        assert_eq!(
            results, vm_results,
            "{b:?} vs VM: return values and packets"
        );
        assert_eq!(counts, vm_counts, "{b:?} vs VM: proto_count contents");
        assert_eq!(filtered, vm_filtered, "{b:?} vs VM: socket filter");
    }
}
