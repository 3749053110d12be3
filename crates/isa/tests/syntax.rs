//! The forms the two syntaxes must accept, each checked against the
//! instruction it denotes, and error positions.

use bpfkit_isa::*;

fn one(src: &str, syntax: Syntax) -> Insn {
    let v = assemble(src, syntax).unwrap_or_else(|e| panic!("`{src}`: {e}"));
    assert_eq!(v.len(), 1, "`{src}`");
    v[0]
}

fn r(n: u8) -> Reg {
    Reg::new(n).unwrap()
}

#[test]
fn ubpf_forms() {
    let u = |s| one(s, Syntax::Ubpf);
    let mov32 = Insn::Alu {
        width: Width::W32,
        op: AluOp::Mov,
        dst: r(0),
        src: Operand::Imm(1),
    };
    assert_eq!(u("mov32 %r0, 1"), mov32);
    assert_eq!(u("mov32 r0, 1"), mov32);
    assert_eq!(
        u("ldxh %r0, [%r1+2]"),
        Insn::Load {
            size: MemSize::H,
            dst: r(0),
            src: r(1),
            off: 2
        }
    );
    assert_eq!(
        u("lock cmpxchg [%r10-8], %r1"),
        Insn::Atomic {
            dw: true,
            op: AtomicOp::Cmpxchg,
            dst: r(10),
            src: r(1),
            off: -8
        }
    );
    assert_eq!(
        u("lock fetch xor32 [%r1], %r2"),
        Insn::Atomic {
            dw: false,
            op: AtomicOp::Xor { fetch: true },
            dst: r(1),
            src: r(2),
            off: 0
        }
    );
    assert_eq!(u("call %r2"), Insn::Callx { reg: r(2) });
    assert_eq!(u("call 5"), Insn::Call(CallTarget::Helper(5)));
    assert_eq!(
        u("call runtime 7, 2"),
        Insn::Call(CallTarget::Kfunc {
            btf_id: 7,
            module: 2
        })
    );
    assert_eq!(
        u("lddw %r0, 0x1122334455667788"),
        Insn::LdImm64 {
            dst: r(0),
            imm: Imm64::Value(0x1122_3344_5566_7788)
        }
    );
    assert_eq!(
        u("lddw %r1, map[fd:3]"),
        Insn::LdImm64 {
            dst: r(1),
            imm: Imm64::MapFd(3)
        }
    );
    assert_eq!(
        u("movsx1664 %r0, %r1"),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Movsx(SxBits::B16),
            dst: r(0),
            src: Operand::Reg(r(1))
        }
    );
    assert_eq!(
        u("jsle %r1, 0xfffffffe, +1"),
        Insn::Jmp {
            width: Width::W64,
            cond: JmpCond::Sle,
            dst: r(1),
            src: Operand::Imm(-2),
            off: 1
        }
    );
    assert_eq!(
        u("be16 %r3"),
        Insn::End {
            kind: Endian::ToBe,
            bits: SwapBits::B16,
            dst: r(3)
        }
    );
    assert_eq!(
        u("bswap64 %r3"),
        Insn::End {
            kind: Endian::Swap,
            bits: SwapBits::B64,
            dst: r(3)
        }
    );
    assert_eq!(
        u("ldindh %r2, 14"),
        Insn::LdInd {
            size: MemSize::H,
            src: r(2),
            imm: 14
        }
    );
}

#[test]
fn labels_local_calls_and_the_implicit_exit_label() {
    let prog = "  jeq %r1, 0, done\ncall local func\nlddw %r0, 1\ndone:\n  ja exit\nexit\nfunc: mov %r0, 2 # comment\nexit\n";
    let insns = assemble(prog, Syntax::Ubpf).unwrap();
    // Slots: 0 jeq, 1 call, 2-3 lddw, 4 ja, 5 exit, 6 mov, 7 exit.
    assert_eq!(
        insns[0],
        Insn::Jmp {
            width: Width::W64,
            cond: JmpCond::Eq,
            dst: r(1),
            src: Operand::Imm(0),
            off: 3
        }
    );
    assert_eq!(insns[1], Insn::Call(CallTarget::Local(4)));
    assert_eq!(insns[3], Insn::Ja { off: 0 });
    let llvm =
        "if r1 == 0 goto done\ncall func\nr0 = 1 ll\ndone:\ngoto +0\nexit\nfunc:\nr0 = 2\nexit";
    assert_eq!(assemble(llvm, Syntax::Llvm).unwrap(), insns);
}

#[test]
fn llvm_forms() {
    let l = |s| one(s, Syntax::Llvm);
    assert_eq!(
        l("r0 = *(u32 *)(r1 + 4)"),
        Insn::Load {
            size: MemSize::W,
            dst: r(0),
            src: r(1),
            off: 4
        }
    );
    assert_eq!(
        l("w0 = *(u32 *)(r1 +4)"),
        Insn::Load {
            size: MemSize::W,
            dst: r(0),
            src: r(1),
            off: 4
        }
    );
    assert_eq!(
        l("if r1 s> 5 goto +3"),
        Insn::Jmp {
            width: Width::W64,
            cond: JmpCond::Sgt,
            dst: r(1),
            src: Operand::Imm(5),
            off: 3
        }
    );
    assert_eq!(
        l("if w1 & w2 goto -1 <LBB0_2>"),
        Insn::Jmp {
            width: Width::W32,
            cond: JmpCond::Set,
            dst: r(1),
            src: Operand::Reg(r(2)),
            off: -1
        }
    );
    assert_eq!(
        l("w0 = w1"),
        Insn::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            dst: r(0),
            src: Operand::Reg(r(1))
        }
    );
    assert_eq!(
        l("r1 = 0x1122334455667788 ll"),
        Insn::LdImm64 {
            dst: r(1),
            imm: Imm64::Value(0x1122_3344_5566_7788)
        }
    );
    assert_eq!(
        l("lock *(u64 *)(r10 - 8) += r1"),
        Insn::Atomic {
            dw: true,
            op: AtomicOp::Add { fetch: false },
            dst: r(10),
            src: r(1),
            off: -8
        }
    );
    assert_eq!(
        l("r0 = atomic_fetch_add((u64 *)(r10 - 8), r0)"),
        Insn::Atomic {
            dw: true,
            op: AtomicOp::Add { fetch: true },
            dst: r(10),
            src: r(0),
            off: -8
        }
    );
    assert_eq!(
        l("r1 = atomic64_xchg((u64 *)(r2 +0), r1)"),
        Insn::Atomic {
            dw: true,
            op: AtomicOp::Xchg,
            dst: r(2),
            src: r(1),
            off: 0
        }
    );
    assert_eq!(
        l("w0 = cmpxchg32_32(r3 + 16, w0, w4)"),
        Insn::Atomic {
            dw: false,
            op: AtomicOp::Cmpxchg,
            dst: r(3),
            src: r(4),
            off: 16
        }
    );
    assert_eq!(
        l("r0 = bswap16 r0"),
        Insn::End {
            kind: Endian::Swap,
            bits: SwapBits::B16,
            dst: r(0)
        }
    );
    assert_eq!(
        l("r0 = (s8)r1"),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Movsx(SxBits::B8),
            dst: r(0),
            src: Operand::Reg(r(1))
        }
    );
    assert_eq!(
        l("r0 = *(s8 *)(r1 + 0)"),
        Insn::LoadSx {
            bits: SxBits::B8,
            dst: r(0),
            src: r(1),
            off: 0
        }
    );
    assert_eq!(l("gotol +70000"), Insn::Ja32 { imm: 70000 });
    assert_eq!(l("call 1"), Insn::Call(CallTarget::Helper(1)));
    assert_eq!(
        l("call bpf_map_lookup_elem#1"),
        Insn::Call(CallTarget::Helper(1))
    );
    assert_eq!(l("call pc+4"), Insn::Call(CallTarget::Local(4)));
    assert_eq!(l("callx r5"), Insn::Callx { reg: r(5) });
    assert_eq!(
        l("r0 s/= r1"),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Sdiv,
            dst: r(0),
            src: Operand::Reg(r(1))
        }
    );
    assert_eq!(
        l("w2 = -w2"),
        Insn::Neg {
            width: Width::W32,
            dst: r(2)
        }
    );
    assert_eq!(
        l("r0 = *(u16 *)skb[r1 + 12]"),
        Insn::LdInd {
            size: MemSize::H,
            src: r(1),
            imm: 12
        }
    );
    assert_eq!(
        l("*(u64 *)(r10 - 8) = 0"),
        Insn::StoreImm {
            size: MemSize::DW,
            dst: r(10),
            off: -8,
            imm: 0
        }
    );
    // bpftool xlated lines carry an index and the opcode byte.
    assert_eq!(
        l("  3: (bf) r6 = r1"),
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: r(6),
            src: Operand::Reg(r(1))
        }
    );
    // A wide constant without `ll`, as bpftool prints lddw, is still a 64-bit load.
    assert_eq!(
        l("r1 = 0x100000000"),
        Insn::LdImm64 {
            dst: r(1),
            imm: Imm64::Value(1 << 32)
        }
    );
    assert_eq!(
        l("w1 = 4294967295"),
        Insn::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            dst: r(1),
            src: Operand::Imm(-1)
        }
    );
}

#[test]
fn errors_name_line_and_column() {
    let err = |s, syntax| assemble(s, syntax).unwrap_err();
    let e = err("mov %r0, 1\nmov %r0, %r11\n", Syntax::Ubpf);
    assert_eq!((e.line, e.column), (2, 10));
    assert_eq!(e.kind, AsmErrorKind::BadRegister("%r11".into()));
    assert_eq!(e.to_string(), "2:10: invalid register `%r11` (r0..r10)");

    let e = err("exit\n  frob r1", Syntax::Llvm);
    assert_eq!((e.line, e.column), (2, 3));

    let e = err("ja nowhere", Syntax::Ubpf);
    assert_eq!(
        (e.line, e.column, e.kind),
        (1, 4, AsmErrorKind::UnknownLabel("nowhere".into()))
    );

    let e = err("w0 = r1", Syntax::Llvm);
    assert_eq!(
        (e.line, e.column, e.kind),
        (1, 6, AsmErrorKind::WidthMismatch)
    );

    let e = err("r0 = *(u32 *)(r1 + 40000)", Syntax::Llvm);
    assert_eq!((e.line, e.column), (1, 20));

    let e = err("a:\na:\nexit", Syntax::Llvm);
    assert_eq!(
        (e.line, e.kind),
        (2, AsmErrorKind::DuplicateLabel("a".into()))
    );

    let e = err("exit extra", Syntax::Ubpf);
    assert_eq!((e.line, e.column), (1, 6));

    // Label offsets that do not fit a 16-bit jump are an error, not a wrap.
    let far = format!("ja end\n{}end: exit\n", "mov %r0, 0\n".repeat(40000));
    let e = err(&far, Syntax::Ubpf);
    assert_eq!(
        e.kind,
        AsmErrorKind::TargetTooFar {
            label: "end".into(),
            offset: 40000
        }
    );
}

/// `bpftool prog dump xlated` output (kernel disasm.c spelling: hex jump
/// immediates, `pc+N` offsets, `(r1 +4)` addresses, named helpers,
/// `atomic64_*` atomics) assembles as the LLVM syntax.
#[test]
fn bpftool_xlated_listing_assembles() {
    let listing = "\
   0: (bf) r6 = r1
   1: (61) r2 = *(u32 *)(r6 +4)
   2: (b7) r0 = 0
   3: (65) if r2 s> 0x5 goto pc+4
   4: (7a) *(u64 *)(r10 -8) = 0
   5: (85) call bpf_ktime_get_ns#5
   6: (db) r0 = atomic64_fetch_add((u64 *)(r10 -8), r0)
   7: (85) call pc+1
   8: (95) exit
   9: (b4) w0 = 1
  10: (95) exit
";
    let insns = assemble(listing, Syntax::Llvm).unwrap();
    assert_eq!(insns.len(), 11);
    assert_eq!(
        insns[3],
        Insn::Jmp {
            width: Width::W64,
            cond: JmpCond::Sgt,
            dst: r(2),
            src: Operand::Imm(5),
            off: 4
        }
    );
    assert_eq!(insns[5], Insn::Call(CallTarget::Helper(5)));
    assert_eq!(insns[7], Insn::Call(CallTarget::Local(1)));
    assert_eq!(
        insns[6],
        Insn::Atomic {
            dw: true,
            op: AtomicOp::Add { fetch: true },
            dst: r(10),
            src: r(0),
            off: -8
        }
    );
}

#[test]
fn labelled_targets_print_and_assemble_back_in_both_syntaxes() {
    use bpfkit_isa::{CallTarget, JmpCond, Operand, Reg, Width};
    let prog = [
        Insn::Jmp {
            width: Width::W64,
            cond: JmpCond::Eq,
            dst: Reg::R1,
            src: Operand::Imm(0),
            off: 2,
        },
        Insn::Call(CallTarget::Local(2)),
        Insn::Ja { off: 0 },
        Insn::Ja32 { imm: -4 },
        Insn::Exit,
    ];
    let labels = ["func", "done", "func", "start", ""];
    for syntax in [Syntax::Llvm, Syntax::Ubpf] {
        let mut text = String::from("\t.section xdp,\"ax\",@progbits\n\t.globl start\nstart:\n");
        for (i, (insn, label)) in prog.iter().zip(labels).enumerate() {
            if i == 3 {
                text.push_str("func:\n");
            }
            if i == 4 {
                text.push_str("done:\n");
            }
            let shown = if label.is_empty() {
                insn.display(syntax).to_string()
            } else {
                insn.display(syntax).with_target(label).to_string()
            };
            assert!(label.is_empty() || shown.ends_with(label), "{shown}");
            text.push_str(&format!("{i:>6}: {shown}\n"));
        }
        assert_eq!(
            assemble(&text, syntax).unwrap(),
            prog,
            "{syntax:?}:\n{text}"
        );
    }
    assert_eq!(
        prog[1]
            .display(Syntax::Llvm)
            .with_target("func")
            .to_string(),
        "call func"
    );
    assert_eq!(
        prog[0]
            .display(Syntax::Llvm)
            .with_target("done")
            .to_string(),
        "if r1 == 0 goto done"
    );
    assert_eq!(
        prog[0]
            .display(Syntax::Ubpf)
            .with_target("done")
            .to_string(),
        "jeq %r1, 0, done"
    );
    // Instructions without a target ignore the label.
    assert_eq!(
        Insn::Exit
            .display(Syntax::Llvm)
            .with_target("x")
            .to_string(),
        "exit"
    );
}
