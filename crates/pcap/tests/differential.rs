//! Classic interpreter vs the translated program in bpfkit's VM vs the
//! kernel, over every listing of libpcap's filter tests (filter_accept.json)
//! and packets crafted, generated and read from libpcap's savefiles.

mod common;

use bpfkit_abi::ProgramType;
use bpfkit_isa::cbpf;
use bpfkit_pcap::classic::{Filter, Metadata, Packet, ValidateErrorKind};
use bpfkit_pcap::translate::translate;
use bpfkit_vm::{ContextKind, Program as VmProgram, TestRun, Vm};
use common::*;
use proptest::prelude::*;

/// The 14 bytes put in front of each packet for `BPF_PROG_TEST_RUN`, which
/// hands a socket filter the data after an Ethernet header (eth_type_trans
/// pulls it): with them the program sees the packet itself from offset 0.
/// A zero destination makes it PACKET_HOST on the loopback device, and the
/// local experimental EtherType 0x88b5 becomes `skb->protocol` without
/// triggering the IPv4/IPv6 header checks of bpf_prog_test_run_skb.
const PREFIX: [u8; 14] = [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x88, 0xb5];
/// The largest packet a test run takes after [`PREFIX`] (bpf_test_init).
const MAX_TEST_RUN: usize = 4096 - 64 - 320 - PREFIX.len();

/// What the kernel's skb looks like to the extensions in such a test run.
fn test_run_metadata() -> Metadata {
    Metadata {
        protocol: 0x88b5,
        pkt_type: 0,
        ifindex: 1,
        ..Metadata::default()
    }
}

fn test_run_input(packet: &[u8]) -> Vec<u8> {
    let mut d = PREFIX.to_vec();
    d.extend_from_slice(packet);
    d
}

/// A listing with its three runnable forms.
struct Prepared {
    name: String,
    classic: Filter,
    ebpf: Vec<bpfkit_isa::Insn>,
    vm: VmProgram,
}

/// Every listing that the kernel would accept as a socket filter, translated.
/// The kernel refuses libpcap's `protochain` loops (a backward `ja`) and a
/// few programs of libpcap's that read a scratch word no path wrote (a
/// libpcap bug the kernel's check_load_and_stores catches); no others.
fn prepared() -> Vec<Prepared> {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for l in listings() {
        let classic = match Filter::new(l.insns.clone()) {
            Ok(f) => f,
            Err(e) => {
                let loop_ = matches!(e.kind, ValidateErrorKind::JumpsBack { .. })
                    && l.aliases.iter().any(|a| a.contains("protochain"));
                let unwritten = matches!(e.kind, ValidateErrorKind::UninitializedMemory(_));
                assert!(loop_ || unwritten, "{}: {e}", l.name);
                refused.push(l.name);
                continue;
            }
        };
        let ebpf = translate(&l.insns).unwrap_or_else(|e| panic!("{}: {e}", l.name));
        let vm = VmProgram::with_context(ebpf.clone(), ContextKind::SkBuffL3)
            .unwrap_or_else(|e| panic!("{}: VM refuses the translation: {e}", l.name));
        out.push(Prepared {
            name: l.name,
            classic,
            ebpf,
            vm,
        });
    }
    assert!(
        refused.len() * 20 < out.len(),
        "{} listings refused: {refused:?}",
        refused.len()
    );
    assert!(out.len() > 1100, "only {} listings", out.len());
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Asserts the classic interpreter and the VM agree on `packet`.
fn check_vm(vm: &mut Vm, progs: &[Prepared], packet: &[u8]) {
    if packet.len() > MAX_TEST_RUN {
        return;
    }
    let input = TestRun {
        data_in: test_run_input(packet),
        ..TestRun::default()
    };
    let mut p = Packet::new(packet);
    p.meta = test_run_metadata();
    for prog in progs {
        let want = prog.classic.run(&p);
        let got = vm
            .test_run(&prog.vm, &input)
            .unwrap_or_else(|e| panic!("{}: VM run failed: {e}", prog.name))
            .retval;
        assert_eq!(
            got,
            want as u64,
            "{}: VM {got} vs classic {want} on packet {}",
            prog.name,
            hex(packet)
        );
    }
}

/// Both the frame and its layer-3 part (what a DLT_RAW listing expects).
fn with_l3(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in frames {
        if f.len() > 14 {
            out.push(f[14..].to_vec());
        }
        out.push(f);
    }
    out
}

#[test]
fn every_listing_prints_back_as_tcpdump_printed_it() {
    let collapse = |s: &str| {
        s.lines()
            .map(|l| {
                l.split(';')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            // libpcap 1.10, whose printer bpfkit follows, has no name for
            // `ldx #pktlen`; the listings come from a later libpcap.
            .map(|l| l.replace("unimp 0x81", "ldx #pktlen"))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    };
    let all = listings();
    assert!(all.len() > 1100, "only {} listings", all.len());
    for l in &all {
        assert_eq!(
            collapse(&cbpf::dump(&l.insns)),
            collapse(&l.text),
            "{}",
            l.name
        );
    }
}

#[test]
fn classic_and_vm_agree_on_crafted_and_saved_packets() {
    let progs = prepared();
    let mut vm = Vm::new();
    let mut packets = with_l3(crafted_frames());
    for name in savefile_names() {
        packets.extend(read_savefile(&name).1.into_iter().map(|p| p.data));
    }
    assert!(packets.len() > 200, "{} packets", packets.len());
    for packet in &packets {
        check_vm(&mut vm, &progs, packet);
    }
    // The programs are not all trivially equal: many accept something.
    let accepting = progs
        .iter()
        .filter(|p| {
            packets.iter().any(|pk| {
                let mut p2 = Packet::new(pk);
                p2.meta = test_run_metadata();
                p.classic.run(&p2) != 0
            })
        })
        .count();
    // Most of the rest are for link types other than Ethernet and raw IP.
    assert!(
        accepting > 400,
        "only {accepting} listings accept any packet"
    );
}

fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            0x0800u16, 0x86dd, 0x0806, 0x8035, 0x8100, 0x88a8, 0x8864, 0x0040,
        ]),
        prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
        prop::sample::select(vec![6u8, 17, 1, 58, 0, 44, 132, 50, 51]),
        any::<bool>(),
        any::<[u8; 6]>(),
        prop::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(
            |(ethertype, version, proto, unfragmented, dst, mut payload)| {
                // Structure enough to get past the filters' first tests.
                if let Some(b) = payload.get_mut(0) {
                    *b = version;
                }
                let proto_at = if version == 0x60 { 6 } else { 9 };
                if let Some(b) = payload.get_mut(proto_at) {
                    *b = proto;
                }
                if unfragmented && version != 0x60 && payload.len() > 8 {
                    payload[6] = 0;
                    payload[7] = 0;
                }
                eth(dst, MAC_B, ethertype, &payload)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn classic_and_vm_agree_on_generated_frames(frame in frame_strategy()) {
        thread_local! {
            static PROGS: Vec<Prepared> = prepared();
        }
        PROGS.with(|progs| {
            let mut vm = Vm::new();
            for p in with_l3(vec![frame]) {
                check_vm(&mut vm, progs, &p);
            }
        });
    }
}

#[test]
fn the_kernel_agrees_with_classic_on_crafted_packets() {
    if let Err(why) = bpfkit_kernel::check_bpf_access() {
        skip(&format!("cannot use bpf(): {why}"));
        return;
    }
    let progs = prepared();
    let packets = with_l3(crafted_frames());
    let started = std::time::Instant::now();
    let mut runs = 0;
    for prog in &progs {
        let loaded = bpfkit_kernel::Program::load(&bpfkit_kernel::ProgramLoad {
            name: "cbpf_xlated",
            prog_type: ProgramType::SocketFilter,
            expected_attach_type: None,
            insns: &prog.ebpf,
            license: "GPL",
            kern_version: 0,
            btf: None,
            attach_btf_id: 0,
            core_relos: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("{}: the kernel refuses the translation: {e}", prog.name));
        for packet in &packets {
            let mut p = Packet::new(packet);
            p.meta = test_run_metadata();
            let want = prog.classic.run(&p);
            let got = loaded
                .test_run(&test_run_input(packet), &[], 1)
                .unwrap_or_else(|e| panic!("{}: test run: {e}", prog.name))
                .retval;
            assert_eq!(
                got,
                want,
                "{}: kernel {got} vs classic {want} on packet {}",
                prog.name,
                hex(packet)
            );
            runs += 1;
        }
    }
    eprintln!("{runs} kernel runs in {:?}", started.elapsed());
}

/// filter_apply.json gives the result of an expression on each packet of a
/// savefile; where filter_accept.json has that expression's listing for the
/// savefile's link type, the classic interpreter must accept exactly those
/// packets. (The accepted length differs: libpcap compiles with the
/// savefile's snapshot length.)
#[test]
fn listings_accept_the_savefile_packets_libpcap_accepts() {
    let path = shared().join("filter_apply.json");
    let blocks: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let all = listings();
    let mut checked = 0;
    for b in &blocks {
        if b.get("netmask").is_some() {
            continue;
        }
        let expr = b["expr"].as_str().unwrap();
        let savefile = b["savefile"].as_str().unwrap();
        let (file_linktype, packets) = read_savefile(savefile);
        let want: Vec<bool> = b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap() != 0)
            .collect();
        assert_eq!(want.len(), packets.len(), "{savefile}");
        for l in all.iter().filter(|l| {
            l.aliases.iter().any(|a| a == expr) && linktype(&l.dlt) == Some(file_linktype)
        }) {
            let f = Filter::new(l.insns.clone()).unwrap();
            let got: Vec<bool> = packets
                .iter()
                .map(|p| {
                    f.run(&Packet {
                        data: &p.data,
                        wire_len: p.orig_len,
                        meta: Metadata::default(),
                    }) != 0
                })
                .collect();
            assert_eq!(got, want, "{} on {savefile} ({expr})", l.name);
            checked += 1;
        }
    }
    assert!(
        checked >= 60,
        "only {checked} listing/savefile pairs checked"
    );
}

/// Programs for what libpcap's listings seldom do: division and shifts by
/// X, constants with the top bit set, each extension the translation maps,
/// 32-bit wrapping of `X + k`, loads far out of bounds.
const EDGE_PROGRAMS: &[&str] = &[
    "(000) ldx #0x0\n(001) ld #0xa\n(002) div x\n(003) ret #5\n",
    "(000) ldb [0]\n(001) tax\n(002) ld #0x64\n(003) mod x\n(004) ret a\n",
    "(000) ld #0x1\n(001) ldx #0x21\n(002) lsh x\n(003) ret a\n",
    "(000) ld #0x80000000\n(001) ldx #0x3f\n(002) rsh x\n(003) ret a\n",
    "(000) ld #0xffffffff\n(001) jeq #0xffffffff jt 2\tjf 3\n(002) ret #1\n(003) ret #2\n",
    "(000) ld [0]\n(001) jgt #0x80000000 jt 2\tjf 3\n(002) ret #1\n(003) ret #2\n",
    "(000) ldb [0]\n(001) jset #0x1 jt 2\tjf 4\n(002) ret #1\n(003) ret #2\n(004) ret #3\n",
    "(000) ldb [1]\n(001) ldx #0x10\n(002) jge x jt 3\tjf 4\n(003) ret #1\n(004) ret #2\n",
    "(000) ld [proto]\n(001) ret a\n",
    "(000) ldh [type]\n(001) ret a\n",
    "(000) ld [ifidx]\n(001) ret a\n",
    "(000) ld [mark]\n(001) add #1\n(002) ret a\n",
    "(000) ld [queue]\n(001) add #1\n(002) ret a\n",
    "(000) ld [rxhash]\n(001) add #1\n(002) ret a\n",
    "(000) ld [vlan_tci]\n(001) add #1\n(002) ret a\n",
    "(000) ldb [vlanp]\n(001) add #1\n(002) ret a\n",
    "(000) ld [vlan_tpid]\n(001) add #1\n(002) ret a\n",
    "(000) ld #0xf0f0\n(001) ldx #0xff\n(002) ld [xor_x]\n(003) ret a\n",
    "(000) ldx #0xffffffff\n(001) ldb [x + 2]\n(002) ret a\n",
    "(000) ldx #0x1\n(001) ldh [x + -1]\n(002) ret a\n",
    "(000) ld [2147483647]\n(001) ret #1\n",
    "(000) ldx #0x2\n(001) ld [x + 2147483646]\n(002) ret #1\n",
    "(000) ldxb 4*([14]&0xf)\n(001) ld #pktlen\n(002) sub x\n(003) neg\n(004) ret a\n",
    "(000) ldx #pktlen\n(001) txa\n(002) st M[7]\n(003) stx M[8]\n(004) ld #0x3\n(005) ldx M[7]\n(006) mul x\n(007) ld M[8]\n(008) ret a\n",
    "(000) ld #0x5\n(001) ja 3\n(002) ret #9\n(003) ret a\n",
];

#[test]
fn edge_programs_agree_in_classic_vm_and_kernel() {
    let kernel = match bpfkit_kernel::check_bpf_access() {
        Ok(()) => true,
        Err(why) => {
            skip(&format!("cannot use bpf(): {why}; checking the VM only"));
            false
        }
    };
    let packets = with_l3(crafted_frames());
    let mut vm = Vm::new();
    for text in EDGE_PROGRAMS {
        let insns = cbpf::parse_listing(text).unwrap();
        let classic = Filter::new(insns.clone()).unwrap_or_else(|e| panic!("{text}: {e}"));
        let ebpf = translate(&insns).unwrap();
        let prog = VmProgram::with_context(ebpf.clone(), ContextKind::SkBuffL3).unwrap();
        let loaded = kernel.then(|| {
            bpfkit_kernel::Program::load(&bpfkit_kernel::ProgramLoad {
                name: "cbpf_edge",
                prog_type: ProgramType::SocketFilter,
                expected_attach_type: None,
                insns: &ebpf,
                license: "GPL",
                kern_version: 0,
                btf: None,
                attach_btf_id: 0,
                core_relos: Vec::new(),
            })
            .unwrap_or_else(|e| panic!("{text}: {e}"))
        });
        for packet in &packets {
            let mut p = Packet::new(packet);
            p.meta = test_run_metadata();
            let want = classic.run(&p);
            let input = TestRun {
                data_in: test_run_input(packet),
                ..TestRun::default()
            };
            let got = vm.test_run(&prog, &input).unwrap().retval;
            assert_eq!(got, want as u64, "VM on {text} with {}", hex(packet));
            if let Some(k) = &loaded {
                let got = k.test_run(&input.data_in, &[], 1).unwrap().retval;
                assert_eq!(got, want, "kernel on {text} with {}", hex(packet));
            }
        }
    }
}

#[test]
fn edge_programs_return_what_the_kernel_semantics_say() {
    let run = |text: &str, packet: &[u8]| {
        let f = Filter::new(cbpf::parse_listing(text).unwrap()).unwrap();
        let mut p = Packet::new(packet);
        p.meta = test_run_metadata();
        f.run(&p)
    };
    let e = EDGE_PROGRAMS;
    assert_eq!(run(e[0], &[]), 0, "division by X = 0 returns 0");
    assert_eq!(run(e[1], &[7]), 100 % 7);
    assert_eq!(run(e[1], &[0]), 0, "modulo by X = 0 returns 0");
    assert_eq!(run(e[2], &[]), 2, "shift counts are masked to 5 bits");
    assert_eq!(run(e[3], &[]), 1);
    assert_eq!(run(e[4], &[]), 1, "0xffffffff compares unsigned");
    assert_eq!(run(e[5], &[0x80, 0, 0, 1]), 1);
    assert_eq!(run(e[5], &[0x80, 0, 0, 0]), 2);
    assert_eq!(run(e[8], &[]), 0x88b5);
    assert_eq!(run(e[10], &[]), 1);
    assert_eq!(run(e[17], &[]), 0xf0f0 ^ 0xff);
    assert_eq!(run(e[18], &[1, 2, 3]), 2, "X + k wraps at 32 bits");
    assert_eq!(run(e[19], &[0xaa, 0xbb, 0xcc]), 0xaabb);
    assert_eq!(run(e[20], &[0; 64]), 0);
    assert_eq!(run(e[21], &[0; 64]), 0);
    assert_eq!(run(e[23], &[0; 9]), 9);
    assert_eq!(run(e[24], &[]), 5);
}
