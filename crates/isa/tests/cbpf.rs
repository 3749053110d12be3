//! Classic BPF: tcpdump-compiled programs decode, re-encode and print
//! exactly as `tcpdump -d` (fixtures from tests/fixtures/cbpf/regen.sh).

use std::fs;
use std::path::Path;

use bpfkit_isa::cbpf::{self, AluOp, Insn, JmpCond, RetVal, Size, SockFilter, Src};
use bpfkit_isa::ByteOrder;
use proptest::prelude::*;

/// `tcpdump -ddd`: an instruction count, then `code jt jf k` per line.
fn parse_ddd(text: &str) -> Vec<SockFilter> {
    let mut lines = text.lines();
    let count: usize = lines.next().unwrap().trim().parse().unwrap();
    let filters: Vec<SockFilter> = lines
        .map(|l| {
            let f: Vec<u32> = l.split_whitespace().map(|v| v.parse().unwrap()).collect();
            SockFilter {
                code: f[0] as u16,
                jt: f[1] as u8,
                jf: f[2] as u8,
                k: f[3],
            }
        })
        .collect();
    assert_eq!(filters.len(), count);
    filters
}

#[test]
fn tcpdump_programs_print_exactly_like_tcpdump_d() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cbpf");
    let filters: Vec<String> = fs::read_to_string(dir.join("filters.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(filters.len() >= 40);
    for (i, filter) in filters.iter().enumerate() {
        let raw = parse_ddd(&fs::read_to_string(dir.join(format!("{i:02}.ddd"))).unwrap());
        let expected = fs::read_to_string(dir.join(format!("{i:02}.d"))).unwrap();
        let bytes: Vec<u8> = raw
            .iter()
            .flat_map(|f| f.to_bytes(ByteOrder::Little))
            .collect();
        let insns =
            cbpf::decode(&bytes, ByteOrder::Little).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(cbpf::encode(&insns, ByteOrder::Little), bytes, "{filter}");
        assert_eq!(cbpf::dump(&insns), expected, "{filter}");
    }
}

#[test]
fn instructions_tcpdump_never_emits_print_like_libpcap() {
    let line = |insn: Insn, n: usize| insn.tcpdump(n).to_string();
    assert_eq!(line(Insn::Ja(3), 4), "(004) ja       8");
    assert_eq!(
        line(
            Insn::LdInd {
                size: Size::W,
                k: 2
            },
            0
        ),
        "(000) ld       [x + 2]"
    );
    assert_eq!(line(Insn::LdxMem(3), 1), "(001) ldx      M[3]");
    assert_eq!(line(Insn::LdxImm(0x10), 1), "(001) ldx      #0x10");
    assert_eq!(line(Insn::Stx(15), 9), "(009) stx      M[15]");
    assert_eq!(line(Insn::Txa { k: 0 }, 2), "(002) txa      ");
    assert_eq!(line(Insn::Ret(RetVal::A), 2), "(002) ret      ");
    assert_eq!(
        line(Insn::Ret(RetVal::K(u32::MAX)), 2),
        "(002) ret      #-1"
    );
    assert_eq!(line(Insn::Ret(RetVal::X), 2), "(002) unimp    0xe");
    assert_eq!(line(Insn::LdxLen, 2), "(002) unimp    0x81");
    assert_eq!(line(Insn::LdLen, 2), "(002) ld       #pktlen");
    assert_eq!(
        line(
            Insn::LdAbs {
                size: Size::H,
                k: 0xffff_f000 + 44
            },
            0
        ),
        "(000) ldh      [vlan_tci]"
    );
    assert_eq!(
        line(
            Insn::Jmp {
                cond: JmpCond::Gt,
                src: Src::X,
                jt: 0,
                jf: 255
            },
            7
        ),
        "(007) jgt      x                jt 8\tjf 263"
    );
    assert_eq!(
        line(
            Insn::Alu {
                op: AluOp::Xor,
                src: Src::K(255)
            },
            0
        ),
        "(000) xor      #0xff"
    );
}

#[test]
fn reserved_fields_and_unknown_opcodes_are_rejected() {
    let bad = [
        SockFilter {
            code: 0x06,
            jt: 1,
            jf: 0,
            k: 0,
        }, // ret #0 with jt set
        SockFilter {
            code: 0x87,
            jt: 0,
            jf: 2,
            k: 0,
        }, // txa with jf set
        SockFilter {
            code: 0x84,
            jt: 0,
            jf: 0,
            k: 5,
        }, // neg with k set
        SockFilter {
            code: 0x18,
            jt: 0,
            jf: 0,
            k: 0,
        }, // BPF_LD|BPF_DW|BPF_IMM does not exist
        SockFilter {
            code: 0xc4,
            jt: 0,
            jf: 0,
            k: 0,
        }, // no ALU op 0xc0
        SockFilter {
            code: 0x1d,
            jt: 0,
            jf: 0,
            k: 9,
        }, // jeq x with k set
    ];
    for (i, f) in bad.into_iter().enumerate() {
        assert!(Insn::decode(f, i).is_err(), "{f:?} decoded");
    }
    let err = cbpf::decode(&[0; 12], ByteOrder::Little).unwrap_err();
    assert_eq!(err.index, 1);
}

fn src() -> impl Strategy<Value = Src> {
    prop_oneof![any::<u32>().prop_map(Src::K), Just(Src::X)]
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![Just(Size::W), Just(Size::H), Just(Size::B)]
}

fn insn() -> impl Strategy<Value = Insn> {
    let alu_op = prop_oneof![
        Just(AluOp::Add),
        Just(AluOp::Sub),
        Just(AluOp::Mul),
        Just(AluOp::Div),
        Just(AluOp::Or),
        Just(AluOp::And),
        Just(AluOp::Lsh),
        Just(AluOp::Rsh),
        Just(AluOp::Mod),
        Just(AluOp::Xor),
    ];
    let cond = prop_oneof![
        Just(JmpCond::Eq),
        Just(JmpCond::Gt),
        Just(JmpCond::Ge),
        Just(JmpCond::Set)
    ];
    prop_oneof![
        (size(), any::<u32>()).prop_map(|(size, k)| Insn::LdAbs { size, k }),
        (size(), any::<u32>()).prop_map(|(size, k)| Insn::LdInd { size, k }),
        any::<u32>().prop_map(Insn::LdImm),
        Just(Insn::LdLen),
        any::<u32>().prop_map(Insn::LdMem),
        any::<u32>().prop_map(Insn::LdxImm),
        Just(Insn::LdxLen),
        any::<u32>().prop_map(Insn::LdxMem),
        any::<u32>().prop_map(Insn::LdxMsh),
        any::<u32>().prop_map(Insn::St),
        any::<u32>().prop_map(Insn::Stx),
        (alu_op, src()).prop_map(|(op, src)| Insn::Alu { op, src }),
        Just(Insn::Neg),
        any::<u32>().prop_map(Insn::Ja),
        (cond, src(), any::<u8>(), any::<u8>()).prop_map(|(cond, src, jt, jf)| Insn::Jmp {
            cond,
            src,
            jt,
            jf
        }),
        prop_oneof![
            any::<u32>().prop_map(RetVal::K),
            Just(RetVal::A),
            Just(RetVal::X)
        ]
        .prop_map(Insn::Ret),
        any::<u32>().prop_map(|k| Insn::Tax { k }),
        any::<u32>().prop_map(|k| Insn::Txa { k }),
    ]
}

proptest! {
    #[test]
    fn decode_inverts_encode(prog in proptest::collection::vec(insn(), 0..16)) {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = cbpf::encode(&prog, order);
            prop_assert_eq!(cbpf::decode(&bytes, order).unwrap(), prog.clone());
        }
    }

    #[test]
    fn decode_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(insns) = cbpf::decode(&bytes, ByteOrder::Little) {
            prop_assert_eq!(cbpf::encode(&insns, ByteOrder::Little), bytes);
            let _ = cbpf::dump(&insns);
        }
    }
}
