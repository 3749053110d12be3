//! Randomly generated classic programs, valid by the kernel's rules and
//! using every instruction (loads of each size and mode, each ALU operation
//! with K and X, the extensions the translation maps, stores, both kinds of
//! jump), run by the classic interpreter, translated in bpfkit's VM and
//! translated in the kernel, over random packets: all three agree.
//!
//! And programs for libpcap's machine, whose `ja` may also jump back (into
//! loops, some endless): its classic interpreter and its translation in
//! the VM agree.

mod common;

use bpfkit_abi::ProgramType;
use bpfkit_isa::cbpf::{AluOp, Insn, JmpCond, RetVal, Size, Src};
use bpfkit_pcap::classic::{Filter, Metadata, Packet, SKF_AD_OFF};
use bpfkit_pcap::translate::translate;
use bpfkit_pcap::translate::translate_libpcap;
use bpfkit_vm::{ContextKind, Program, TestRun, Vm};
use proptest::prelude::*;

/// See differential.rs: the program sees the packet from offset 0.
const PREFIX: [u8; 14] = [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x88, 0xb5];

fn meta() -> Metadata {
    Metadata {
        protocol: 0x88b5,
        pkt_type: 0,
        ifindex: 1,
        ..Metadata::default()
    }
}

/// The extensions whose value the VM and a kernel test run agree on.
const ANCILLARY: [u32; 10] = [0, 4, 8, 20, 24, 32, 40, 44, 48, 60];
const ALU: [AluOp; 10] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Mod,
    AluOp::Xor,
];
const COND: [JmpCond; 4] = [JmpCond::Eq, JmpCond::Gt, JmpCond::Ge, JmpCond::Set];
const SIZE: [Size; 3] = [Size::W, Size::H, Size::B];

/// A constant: small, near a packet's length, or any 32 bits.
fn constant(a: u32, b: u32) -> u32 {
    match a % 4 {
        0 => b % 8,
        1 => b % 80,
        2 => b.rotate_left(a % 32),
        _ => b,
    }
}

/// Instruction `i` of `n` from random numbers; jumps stay inside the
/// program and before the final `ret`, and `ja` may go back (to any
/// instruction but itself) when `back` is set.
fn insn(i: usize, n: usize, kind: u8, a: u32, b: u32, back: bool) -> Insn {
    let room = (n - i - 1) as u32; // instructions after this one
    let size = SIZE[(a % 3) as usize];
    let src = if a & 0x100 != 0 {
        Src::X
    } else {
        Src::K(constant(a >> 9, b))
    };
    match kind % 20 {
        0 | 1 => Insn::LdAbs { size, k: b % 70 },
        2 => Insn::LdAbs {
            size,
            k: SKF_AD_OFF + ANCILLARY[(b % 10) as usize],
        },
        3 => Insn::LdInd {
            size,
            k: constant(a >> 3, b),
        },
        4 => Insn::LdImm(constant(a, b)),
        5 => match a % 3 {
            0 => Insn::LdLen,
            1 => Insn::LdxLen,
            _ => Insn::LdxImm(constant(a >> 2, b)),
        },
        6 => Insn::LdMem(b % 16),
        7 => Insn::LdxMem(b % 16),
        8 => Insn::LdxMsh(b % 40),
        9 => Insn::St(b % 16),
        10 => Insn::Stx(b % 16),
        11..=14 => {
            let op = ALU[(b % 10) as usize];
            let src = match (op, src) {
                (AluOp::Div | AluOp::Mod, Src::K(k)) => Src::K(k.max(1)),
                (AluOp::Lsh | AluOp::Rsh, Src::K(k)) => Src::K(k % 32),
                (_, s) => s,
            };
            Insn::Alu { op, src }
        }
        15 => match a % 3 {
            0 => Insn::Neg,
            1 => Insn::Tax { k: 0 },
            _ => Insn::Txa { k: 0 },
        },
        16 if back && a % 2 == 0 && i > 0 => {
            Insn::Ja(((b as usize % i) as u32).wrapping_sub(i as u32 + 1))
        }
        16 if room > 1 => Insn::Ja(b % (room - 1)),
        17 | 18 if room > 1 => {
            let span = room.min(256);
            Insn::Jmp {
                cond: COND[(b % 4) as usize],
                src,
                jt: ((b >> 8) % span) as u8,
                jf: ((b >> 16) % span) as u8,
            }
        }
        19 => Insn::Ret(if a % 2 == 0 {
            RetVal::A
        } else {
            RetVal::K(constant(a >> 1, b))
        }),
        _ => Insn::Tax { k: 0 },
    }
}

fn program(back: bool) -> impl Strategy<Value = Vec<Insn>> {
    prop::collection::vec((any::<u8>(), any::<u32>(), any::<u32>()), 1..48).prop_map(move |body| {
        // Every scratch word written first, so that any later read is valid
        // on every path (check_load_and_stores); then the body; then `ret a`.
        let mut p: Vec<Insn> = (0..16).map(Insn::St).collect();
        let n = 16 + body.len() + 1;
        for (j, (kind, a, b)) in body.into_iter().enumerate() {
            p.push(insn(16 + j, n, kind, a, b, back));
        }
        p.push(Insn::Ret(RetVal::A));
        p
    })
}

fn packets() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..90), 8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn classic_vm_and_kernel_agree_on_random_programs(insns in program(false), packets in packets()) {
        let classic = Filter::new(insns.clone()).unwrap_or_else(|e| panic!("{e}: {insns:?}"));
        let ebpf = translate(&insns).unwrap();
        let prog = Program::with_context(ebpf.clone(), ContextKind::SkBuffL3).unwrap();
        let kernel = match bpfkit_kernel::check_bpf_access() {
            Ok(()) => Some(
                bpfkit_kernel::Program::load(&bpfkit_kernel::ProgramLoad {
                    name: "cbpf_random",
                    prog_type: ProgramType::SocketFilter,
                    expected_attach_type: None,
                    insns: &ebpf,
                    license: "GPL",
                    kern_version: 0,
                    btf: None,
                    attach_btf_id: 0,
                    core_relos: Vec::new(),
                })
                .unwrap_or_else(|e| panic!("kernel refuses {}: {e}", bpfkit_isa::cbpf::dump(&insns))),
            ),
            Err(why) => {
                common::skip(&format!("cannot use bpf(): {why}; VM only"));
                None
            }
        };
        let mut vm = Vm::new();
        for packet in &packets {
            let mut p = Packet::new(packet);
            p.meta = meta();
            let want = classic.run(&p);
            let mut data_in = PREFIX.to_vec();
            data_in.extend_from_slice(packet);
            let got = vm
                .test_run(&prog, &TestRun { data_in: data_in.clone(), ..TestRun::default() })
                .unwrap()
                .retval;
            prop_assert_eq!(got, want as u64, "VM on {:02x?}\n{}", packet, bpfkit_isa::cbpf::dump(&insns));
            if let Some(k) = &kernel {
                let got = k.test_run(&data_in, &[], 1).unwrap().retval;
                prop_assert_eq!(got, want, "kernel on {:02x?}\n{}", packet, bpfkit_isa::cbpf::dump(&insns));
            }
        }
    }

    #[test]
    fn libpcaps_machine_and_its_translation_agree_on_random_programs_with_loops(
        insns in program(true),
        packets in packets(),
    ) {
        let classic = Filter::libpcap(insns.clone()).unwrap_or_else(|e| panic!("{e}: {insns:?}"));
        let ebpf = translate_libpcap(&insns).unwrap();
        let prog = Program::with_context(ebpf, ContextKind::SkBuffL3).unwrap();
        let mut vm = Vm::new();
        for packet in &packets {
            let want = classic.run(&Packet::new(packet));
            let mut data_in = PREFIX.to_vec();
            data_in.extend_from_slice(packet);
            let got = vm
                .test_run(&prog, &TestRun { data_in, ..TestRun::default() })
                .unwrap()
                .retval;
            prop_assert_eq!(got, want as u64, "VM on {:02x?}\n{}", packet, bpfkit_isa::cbpf::dump(&insns));
        }
    }
}
