//! Property tests: every instruction survives encode/decode and
//! disassemble/assemble in both syntaxes, and decoding never panics.

use bpfkit_isa::*;
use proptest::prelude::*;

fn reg() -> impl Strategy<Value = Reg> {
    (0u8..=10).prop_map(|n| Reg::new(n).unwrap())
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::W32), Just(Width::W64)]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        any::<i32>().prop_map(Operand::Imm),
        reg().prop_map(Operand::Reg)
    ]
}

fn mem_size() -> impl Strategy<Value = MemSize> {
    prop_oneof![
        Just(MemSize::B),
        Just(MemSize::H),
        Just(MemSize::W),
        Just(MemSize::DW)
    ]
}

fn sx_bits() -> impl Strategy<Value = SxBits> {
    prop_oneof![Just(SxBits::B8), Just(SxBits::B16), Just(SxBits::B32)]
}

fn alu() -> impl Strategy<Value = Insn> {
    let op = prop_oneof![
        Just(AluOp::Add),
        Just(AluOp::Sub),
        Just(AluOp::Mul),
        Just(AluOp::Div),
        Just(AluOp::Sdiv),
        Just(AluOp::Or),
        Just(AluOp::And),
        Just(AluOp::Lsh),
        Just(AluOp::Rsh),
        Just(AluOp::Mod),
        Just(AluOp::Smod),
        Just(AluOp::Xor),
        Just(AluOp::Mov),
        Just(AluOp::Arsh),
    ];
    let plain = (width(), op, reg(), operand()).prop_map(|(width, op, dst, src)| Insn::Alu {
        width,
        op,
        dst,
        src,
    });
    // Sign-extending moves: register source only, and no 32-to-32.
    let movsx = (width(), sx_bits(), reg(), reg())
        .prop_filter("movsx32 from 32 bits", |(w, b, _, _)| {
            !(*w == Width::W32 && *b == SxBits::B32)
        })
        .prop_map(|(width, bits, dst, src)| Insn::Alu {
            width,
            op: AluOp::Movsx(bits),
            dst,
            src: Operand::Reg(src),
        });
    prop_oneof![4 => plain, 1 => movsx]
}

fn jmp_cond() -> impl Strategy<Value = JmpCond> {
    prop_oneof![
        Just(JmpCond::Eq),
        Just(JmpCond::Gt),
        Just(JmpCond::Ge),
        Just(JmpCond::Set),
        Just(JmpCond::Ne),
        Just(JmpCond::Sgt),
        Just(JmpCond::Sge),
        Just(JmpCond::Lt),
        Just(JmpCond::Le),
        Just(JmpCond::Slt),
        Just(JmpCond::Sle),
    ]
}

fn imm64() -> impl Strategy<Value = Imm64> {
    prop_oneof![
        4 => any::<u64>().prop_map(Imm64::Value),
        1 => any::<i32>().prop_map(Imm64::MapFd),
        1 => (any::<i32>(), any::<u32>()).prop_map(|(fd, offset)| Imm64::MapValue { fd, offset }),
        1 => (any::<i32>(), any::<i32>())
            .prop_map(|(btf_id, btf_obj_fd)| Imm64::BtfVar { btf_id, btf_obj_fd }),
        1 => any::<i32>().prop_map(Imm64::Func),
        1 => any::<i32>().prop_map(Imm64::MapIdx),
        1 => (any::<i32>(), any::<u32>()).prop_map(|(idx, offset)| Imm64::MapIdxValue { idx, offset }),
    ]
}

fn atomic_op() -> impl Strategy<Value = AtomicOp> {
    prop_oneof![
        any::<bool>().prop_map(|fetch| AtomicOp::Add { fetch }),
        any::<bool>().prop_map(|fetch| AtomicOp::Or { fetch }),
        any::<bool>().prop_map(|fetch| AtomicOp::And { fetch }),
        any::<bool>().prop_map(|fetch| AtomicOp::Xor { fetch }),
        Just(AtomicOp::Xchg),
        Just(AtomicOp::Cmpxchg),
    ]
}

/// Any instruction the model can express.
fn insn() -> impl Strategy<Value = Insn> {
    let swap_bits = prop_oneof![
        Just(SwapBits::B16),
        Just(SwapBits::B32),
        Just(SwapBits::B64)
    ];
    let endian = prop_oneof![Just(Endian::ToLe), Just(Endian::ToBe), Just(Endian::Swap)];
    let call = prop_oneof![
        any::<i32>().prop_map(CallTarget::Helper),
        any::<i32>().prop_map(CallTarget::Local),
        (any::<i32>(), any::<i16>())
            .prop_map(|(btf_id, module)| CallTarget::Kfunc { btf_id, module }),
    ];
    let legacy_size = prop_oneof![Just(MemSize::B), Just(MemSize::H), Just(MemSize::W)];
    prop_oneof![
        8 => alu(),
        1 => (width(), reg()).prop_map(|(width, dst)| Insn::Neg { width, dst }),
        1 => (endian, swap_bits, reg()).prop_map(|(kind, bits, dst)| Insn::End { kind, bits, dst }),
        1 => any::<i16>().prop_map(|off| Insn::Ja { off }),
        1 => any::<i32>().prop_map(|imm| Insn::Ja32 { imm }),
        4 => (width(), jmp_cond(), reg(), operand(), any::<i16>()).prop_map(
            |(width, cond, dst, src, off)| Insn::Jmp { width, cond, dst, src, off }
        ),
        1 => call.prop_map(Insn::Call),
        1 => reg().prop_map(|reg| Insn::Callx { reg }),
        1 => Just(Insn::Exit),
        2 => (reg(), imm64()).prop_map(|(dst, imm)| Insn::LdImm64 { dst, imm }),
        2 => (mem_size(), reg(), reg(), any::<i16>())
            .prop_map(|(size, dst, src, off)| Insn::Load { size, dst, src, off }),
        1 => (sx_bits(), reg(), reg(), any::<i16>())
            .prop_map(|(bits, dst, src, off)| Insn::LoadSx { bits, dst, src, off }),
        1 => (mem_size(), reg(), any::<i16>(), any::<i32>())
            .prop_map(|(size, dst, off, imm)| Insn::StoreImm { size, dst, off, imm }),
        2 => (mem_size(), reg(), reg(), any::<i16>())
            .prop_map(|(size, dst, src, off)| Insn::Store { size, dst, src, off }),
        2 => (any::<bool>(), atomic_op(), reg(), reg(), any::<i16>())
            .prop_map(|(dw, op, dst, src, off)| Insn::Atomic { dw, op, dst, src, off }),
        1 => (legacy_size.clone(), any::<i32>()).prop_map(|(size, imm)| Insn::LdAbs { size, imm }),
        1 => (legacy_size, reg(), any::<i32>())
            .prop_map(|(size, src, imm)| Insn::LdInd { size, src, imm }),
    ]
}

/// Whatever assembles must print back to text that assembles to the same
/// program; whatever fails must point inside the input.
fn assert_reassembles(text: &str, syntax: Syntax) -> Result<(), TestCaseError> {
    match assemble(text, syntax) {
        Ok(insns) => {
            let again = disassemble(&insns, syntax);
            prop_assert_eq!(assemble(&again, syntax), Ok(insns), "{}", again);
        }
        Err(e) => {
            prop_assert!(
                e.line >= 1 && e.line <= text.lines().count().max(1),
                "{}",
                e
            );
            prop_assert!(e.column >= 1, "{}", e);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn decode_inverts_encode(prog in proptest::collection::vec(insn(), 1..8)) {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = encode(&prog, order);
            prop_assert_eq!(decode(&bytes, order).unwrap(), prog.clone());
            // And the bytes are canonical: re-encoding reproduces them.
            prop_assert_eq!(encode(&decode(&bytes, order).unwrap(), order), bytes);
        }
    }

    #[test]
    fn assemble_inverts_disassemble(insn in insn()) {
        for syntax in [Syntax::Ubpf, Syntax::Llvm] {
            let text = insn.display(syntax).to_string();
            let back = assemble(&text, syntax);
            prop_assert_eq!(back, Ok(vec![insn]), "{:?}: `{}`", syntax, text);
        }
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            if let Ok(insns) = decode(&bytes, order) {
                prop_assert_eq!(encode(&insns, order), bytes.clone());
            }
        }
    }

    #[test]
    fn assemble_never_panics(text in "[ -~\\n]{0,80}") {
        for syntax in [Syntax::Ubpf, Syntax::Llvm] {
            assert_reassembles(&text, syntax)?;
        }
    }

    #[test]
    fn assemble_never_panics_on_unicode(text in "(\\PC|\n){0,60}") {
        for syntax in [Syntax::Ubpf, Syntax::Llvm] {
            assert_reassembles(&text, syntax)?;
        }
    }

    /// Near-misses of valid text (one character replaced, inserted or
    /// deleted) probe the parsers far better than random text.
    #[test]
    fn mutated_instructions_never_panic(
        insn in insn(),
        at in any::<prop::sample::Index>(),
        ch in prop::char::range(' ', '~'),
        how in 0..3u8,
    ) {
        for syntax in [Syntax::Ubpf, Syntax::Llvm] {
            let mut text: Vec<char> = insn.display(syntax).to_string().chars().collect();
            let i = at.index(text.len() + 1);
            match how {
                0 if i < text.len() => text[i] = ch,
                1 if i < text.len() => { text.remove(i); }
                _ => text.insert(i, ch),
            }
            let text: String = text.into_iter().collect();
            assert_reassembles(&text, syntax)?;
        }
    }
}
