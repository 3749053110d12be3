//! Decode, encode, assemble and disassemble throughput, in instructions per
//! second, on a generated 100k-instruction program that mixes every
//! instruction class in realistic proportions (mostly ALU, loads, stores
//! and jumps, with calls, atomics and 64-bit loads sprinkled in).

use bpfkit_isa::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LEN: usize = 100_000;

fn program() -> Vec<Insn> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64: deterministic, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let r = |n: u64| Reg::new((n % 10) as u8).unwrap();
    (0..LEN)
        .map(|_| {
            let x = next();
            let (a, b, off, imm) = (
                r(x >> 8),
                r(x >> 16),
                (x >> 24) as i16 % 512,
                (x >> 32) as i32,
            );
            match x % 16 {
                0..=4 => Insn::Alu {
                    width: if x & 32 == 0 { Width::W64 } else { Width::W32 },
                    op: [AluOp::Add, AluOp::Mov, AluOp::And, AluOp::Lsh, AluOp::Xor]
                        [(x >> 40) as usize % 5],
                    dst: a,
                    src: if x & 64 == 0 {
                        Operand::Reg(b)
                    } else {
                        Operand::Imm(imm % 1000)
                    },
                },
                5..=7 => Insn::Load {
                    size: MemSize::W,
                    dst: a,
                    src: b,
                    off,
                },
                8..=9 => Insn::Store {
                    size: MemSize::DW,
                    dst: Reg::R10,
                    src: b,
                    off: -(off.abs()) - 8,
                },
                10..=12 => Insn::Jmp {
                    width: Width::W64,
                    cond: JmpCond::Ne,
                    dst: a,
                    src: Operand::Imm(imm % 100),
                    off: off.abs() % 64,
                },
                13 => Insn::Call(CallTarget::Helper((imm % 200).abs())),
                14 => Insn::LdImm64 {
                    dst: a,
                    imm: Imm64::Value(x),
                },
                _ => Insn::Atomic {
                    dw: true,
                    op: AtomicOp::Add { fetch: x & 8 == 0 },
                    dst: Reg::R10,
                    src: b,
                    off: -8,
                },
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let prog = program();
    let bytes = encode(&prog, ByteOrder::Little);
    let mut g = c.benchmark_group("isa");
    g.throughput(Throughput::Elements(prog.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| decode(&bytes, ByteOrder::Little).unwrap())
    });
    g.bench_function("encode", |b| b.iter(|| encode(&prog, ByteOrder::Little)));
    for (name, syntax) in [("ubpf", Syntax::Ubpf), ("llvm", Syntax::Llvm)] {
        let text = disassemble(&prog, syntax);
        g.bench_function(format!("assemble_{name}"), |b| {
            b.iter(|| assemble(&text, syntax).unwrap())
        });
        g.bench_function(format!("disassemble_{name}"), |b| {
            b.iter(|| disassemble(&prog, syntax))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
