//! The VM and the kernel agree: the same map assertions pass on both, and
//! the same objects give the same results and leave the same map contents.

use std::path::PathBuf;

use bpfkit::abi::{errno, map_flags, update_flags::*, MapType, ProgramType};
use bpfkit::isa::{assemble, Syntax};
use bpfkit::kernel::{KernelMap, MapDefinition, ProgramLoad};
use bpfkit::maps::{BloomFilter, HashMap, LpmTrie, RawMap};
use bpfkit::object::ObjectSpec;
use bpfkit::vm::{Map, MapDef};
use bpfkit::{dump, Backend, Ebpf, EbpfLoader, RunResult};

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

fn load(spec: ObjectSpec, backend: Backend) -> Ebpf {
    EbpfLoader::new().backend(backend).load_spec(spec).unwrap()
}

/// Runs program `name` of `obj` once on packet `data`.
fn run(obj: &Ebpf, name: &str, data: &[u8], ctx: &[u8]) -> Result<RunResult, bpfkit::Error> {
    obj.program(name)?.test_run(data, ctx)
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
        let xdp = load(fixture("xdp_parser.bpf.o"), b);
        let results: Vec<_> = packets
            .iter()
            .map(|p| run(&xdp, "xdp_parser", p, &[]).unwrap())
            .collect();
        let counts = dump(xdp.map("proto_count").unwrap()).unwrap();
        let sock = load(fixture("socket.bpf.o"), b);
        let filtered: Vec<u32> = [packet(17, 7777), packet(17, 7778), packet(6, 7777)]
            .iter()
            .map(|p| run(&sock, "udp_port_filter", p, &[]).unwrap().retval)
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

/// A program from assembly, loaded into either backend and run as
/// `BPF_PROG_TEST_RUN` runs it.
enum RawProgram {
    Vm(Box<bpfkit::vm::Vm>, bpfkit::vm::Program),
    Kernel(bpfkit::kernel::Program),
}

impl RawProgram {
    fn load(backend: Backend, prog_type: ProgramType, src: &str) -> RawProgram {
        let insns = assemble(src, Syntax::Llvm).unwrap();
        match backend {
            Backend::Vm => RawProgram::Vm(
                Box::new(bpfkit::vm::Vm::new()),
                bpfkit::vm::Program::with_context(
                    insns,
                    bpfkit::vm::object::context_for(prog_type),
                )
                .unwrap(),
            ),
            Backend::Kernel => RawProgram::Kernel(
                bpfkit::kernel::Program::load(&ProgramLoad {
                    name: "parity",
                    prog_type,
                    expected_attach_type: None,
                    insns: &insns,
                    license: "GPL",
                    kern_version: 0,
                    btf: None,
                    attach_btf_id: 0,
                    core_relos: Vec::new(),
                })
                .unwrap(),
            ),
        }
    }

    /// The return value and output packet, or the error as text.
    fn run(&mut self, data: &[u8], ctx: &[u8]) -> Result<(u32, Vec<u8>), String> {
        match self {
            RawProgram::Vm(vm, p) => vm
                .test_run(
                    p,
                    &bpfkit::vm::TestRun {
                        data_in: data.to_vec(),
                        ctx_in: ctx.to_vec(),
                        repeat: 1,
                    },
                )
                .map(|r| (r.retval as u32, r.data_out))
                .map_err(|e| e.to_string()),
            RawProgram::Kernel(p) => p
                .test_run(data, ctx, 1)
                .map(|r| (r.retval, r.data_out))
                .map_err(|e| e.to_string()),
        }
    }
}

/// An Ethernet frame of `len` bytes to `dst` with `ethertype` and, after
/// the Ethernet header, 0x45 (an IPv4 header's first byte).
/// Shorter frames are cut from a 15-byte one.
fn frame(len: usize, dst: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = vec![0u8; len.max(15)];
    f[..6].copy_from_slice(&dst);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f[14] = 0x45;
    f.truncate(len);
    f
}

const OTHER_HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

#[test]
fn skb_test_runs_agree_on_fields_and_refused_input() {
    use bpfkit::vm::sk_buff;
    for b in backends() {
        for t in [ProgramType::SocketFilter, ProgramType::SchedCls] {
            let field =
                |off: usize| RawProgram::load(b, t, &format!("r0 = *(u32 *)(r1 + {off})\nexit"));
            let what = format!("{b:?} {t:?}");
            // pkt_type: eth_type_trans on the loopback device (all-zero address).
            let mut pkt_type = field(sk_buff::PKT_TYPE);
            for (dst, expected) in [
                (OTHER_HOST, 3),
                ([0; 6], 0),
                ([0xff; 6], 2),
                ([1, 0, 0x5e, 0, 0, 1], 2),
            ] {
                assert_eq!(
                    pkt_type.run(&frame(64, dst, 0x0800), &[]).unwrap().0,
                    expected,
                    "{what}: pkt_type for {dst:x?}"
                );
            }
            // ifindex: the loopback device, whether or not a context is given.
            let mut ifindex = field(sk_buff::IFINDEX);
            let ipv4 = frame(64, OTHER_HOST, 0x0800);
            assert_eq!(ifindex.run(&ipv4, &[]).unwrap().0, 1, "{what}: ifindex");
            assert_eq!(
                ifindex.run(&ipv4, &[0; 192]).unwrap().0,
                1,
                "{what}: ifindex with ctx"
            );
            // protocol: the EtherType in network order, ETH_P_802_2 for a length.
            let mut protocol = field(sk_buff::PROTOCOL);
            assert_eq!(
                protocol.run(&ipv4, &[]).unwrap().0,
                0x0008,
                "{what}: protocol"
            );
            assert_eq!(
                protocol.run(&frame(64, OTHER_HOST, 0x0040), &[]).unwrap().0,
                0x0400,
                "{what}: protocol of an 802.3 frame"
            );
            // len: L3 programs see the packet from the network header.
            let mut len = field(sk_buff::LEN);
            let l3 = t == ProgramType::SocketFilter;
            let (retval, data_out) = len.run(&ipv4, &[]).unwrap();
            assert_eq!(retval, if l3 { 50 } else { 64 }, "{what}: len");
            // What comes back: the frame, with a zeroed Ethernet header for L3.
            let mut expected_out = ipv4.clone();
            if l3 {
                expected_out[..14].fill(0);
            }
            assert_eq!(data_out, expected_out, "{what}: data_out");
            // Sizes: an Ethernet header at least, and the whole IP header of IPv4/IPv6.
            for (input, accepted) in [
                (frame(13, OTHER_HOST, 0), false),
                (frame(14, OTHER_HOST, 0x1234), true),
                (frame(18, OTHER_HOST, 0x0800), false),
                (frame(18, OTHER_HOST, 0x1234), true),
                (frame(33, OTHER_HOST, 0x0800), false),
                (frame(34, OTHER_HOST, 0x0800), true),
                (frame(53, OTHER_HOST, 0x86dd), false),
                (frame(54, OTHER_HOST, 0x86dd), true),
            ] {
                let r = len.run(&input, &[]);
                assert_eq!(r.is_ok(), accepted, "{what}: {} bytes: {r:?}", input.len());
            }
            // A context field the caller may not set.
            let mut ctx = vec![0u8; 192];
            ctx[sk_buff::PKT_TYPE] = 1;
            assert!(len.run(&ipv4, &ctx).is_err(), "{what}: pkt_type in ctx_in");
            ctx[sk_buff::PKT_TYPE] = 0;
            ctx[sk_buff::MARK] = 7;
            assert!(len.run(&ipv4, &ctx).is_ok(), "{what}: mark in ctx_in");
        }
    }
}

fn vm_fixture(name: &str) -> ObjectSpec {
    ObjectSpec::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../vm/tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn callback_helpers_agree() {
    let pkt = frame(64, OTHER_HOST, 0x0800);
    for b in backends() {
        let obj = load(vm_fixture("callbacks.bpf.o"), b);
        // bpf_loop(10) stopping at 7: 0 + ... + 7 = 28 over 8 calls.
        let r = run(&obj, "loop_sum", &pkt, &[]).unwrap();
        assert_eq!(r.retval, 28 * 100 + 8, "{b:?}: bpf_loop");
        let values = obj.map("values").unwrap();
        for k in 0..4u32 {
            values
                .update(&k.to_ne_bytes(), &(k as u64 + 1).to_ne_bytes(), ANY)
                .unwrap();
        }
        let table = obj.map("table").unwrap();
        for (k, v) in [(5u32, 2u64), (6, 3)] {
            table
                .update(&k.to_ne_bytes(), &v.to_ne_bytes(), ANY)
                .unwrap();
        }
        // sum of key * value: array 0 + 2 + 6 + 12, hash 10 + 18; 4 + 2 elements.
        let r = run(&obj, "each_elem", &pkt, &[]).unwrap();
        assert_eq!(r.retval, 48 * 100 + 6, "{b:?}: bpf_for_each_map_elem");
        let values = obj.map("values").unwrap();
        for k in 0..4u32 {
            assert_eq!(
                values.lookup(&k.to_ne_bytes()).unwrap(),
                Some((k as u64 + 11).to_ne_bytes().to_vec()),
                "{b:?}: values[{k}] written through the callback"
            );
        }
        let table = obj.map("table").unwrap();
        assert_eq!(
            table.lookup(&6u32.to_ne_bytes()).unwrap(),
            Some(13u64.to_ne_bytes().to_vec()),
            "{b:?}: table[6] written through the callback"
        );
    }
}
