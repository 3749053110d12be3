//! What the test binaries share: the random program generator of the
//! differential tests, and how a VM error reads as the ARM64 back end
//! reports it.
#![allow(dead_code)]

use bpfkit_isa::{
    AluOp, AtomicOp, CallTarget, Endian, Imm64, Insn, JmpCond, MemSize, Operand, Reg, SwapBits,
    SxBits, Width,
};
use bpfkit_jit::a64::FaultKind;
use bpfkit_vm::{region_base, RunError};

/// What a generated program may use beyond plain instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// Everything the VM has: helpers 7, 8, 9999 (unknown), bpf_loop
    /// callbacks, callx, subprogram addresses (the x86-64 JIT).
    All,
    /// What the ARM64 back end has: bpf-to-bpf calls, the conformance
    /// suite's helper 5 and an unknown helper, callx of helper ids (not of
    /// function addresses, which it does not provide).
    Arm64,
}

/// The ARM64 back end's report of a VM error: its kind and pc, if it is
/// one of the errors the back end reports.
pub fn fault_of(e: &RunError) -> Option<(FaultKind, usize)> {
    Some(match *e {
        RunError::MemoryFault { pc, .. } => (FaultKind::Memory, pc),
        RunError::BudgetExhausted { pc, .. } => (FaultKind::Budget, pc),
        RunError::UnknownHelper { pc, .. } => (FaultKind::UnknownHelper, pc),
        RunError::CallDepth { pc, .. } => (FaultKind::CallDepth, pc),
        RunError::BadCallTarget { pc, .. } => (FaultKind::BadCallTarget, pc),
        _ => return None,
    })
}

/// Instruction slots a generated program has at most, before its `exit`.
pub const MAX_INSNS: usize = 40;

fn reg(n: u64) -> Reg {
    Reg::new((n % 11) as u8).unwrap()
}

/// A destination: never r10, which the loader rejects as a destination.
fn dst(n: u64) -> Reg {
    Reg::new((n % 10) as u8).unwrap()
}

/// Immediates that find edge cases: 0, ±1, sign and width boundaries.
fn imm(b: u64) -> i32 {
    const EDGES: [i32; 12] = [0, 1, -1, 2, 7, 31, 32, 63, 64, i32::MIN, i32::MAX, 0x7fff];
    if b & 1 == 0 {
        EDGES[(b >> 1) as usize % EDGES.len()]
    } else {
        (b >> 8) as i32
    }
}

/// Offsets near the edges of the input (64 bytes at r1) and of the frame
/// (r10-512..r10), and random ones.
fn offset(b: u64) -> i16 {
    const EDGES: [i16; 14] = [0, 1, 4, 7, 56, 60, 63, 64, -1, -4, -8, -512, -513, -508];
    if b & 3 != 3 {
        EDGES[(b >> 2) as usize % EDGES.len()]
    } else {
        (b >> 16) as i16
    }
}

/// A memory base: mostly r1 (input) or r10 (stack).
fn base(b: u64) -> Reg {
    match b % 4 {
        0 | 1 => Reg::R1,
        2 => Reg::R10,
        _ => reg(b >> 2),
    }
}

fn size(b: u64) -> MemSize {
    [MemSize::B, MemSize::H, MemSize::W, MemSize::DW][(b % 4) as usize]
}

fn width(b: u64) -> Width {
    if b & 1 == 0 {
        Width::W64
    } else {
        Width::W32
    }
}

/// One instruction from two random words; `targets` is how many
/// instructions a jump may land on (it is resolved to a slot offset later).
enum Gen {
    Insn(Insn),
    /// A jump to instruction `target` of the program (the insn has off 0).
    Jump(Insn, usize),
    /// A call of, or `lddw` of the address of, the subprogram (its offset
    /// is resolved later).
    Sub(Insn),
}

/// One instruction of a function whose instructions are `range` (its
/// `exit` is `range.end`), so that its jumps stay inside it.
fn gen(a: u64, b: u64, range: std::ops::Range<usize>, calls: Calls) -> Gen {
    let pick = a >> 8;
    let target = range.start + (b >> 40) as usize % (range.len() + 1);
    let insn = match a % 20 {
        0..=4 => {
            const OPS: [AluOp; 13] = [
                AluOp::Add,
                AluOp::Sub,
                AluOp::Mul,
                AluOp::Div,
                AluOp::Sdiv,
                AluOp::Or,
                AluOp::And,
                AluOp::Lsh,
                AluOp::Rsh,
                AluOp::Mod,
                AluOp::Smod,
                AluOp::Xor,
                AluOp::Mov,
            ];
            let op_index = pick as usize % (OPS.len() + 4);
            let src = if pick & 0x100 == 0 {
                Operand::Imm(imm(b))
            } else {
                Operand::Reg(reg(b))
            };
            let (op, src) = match op_index {
                i if i < OPS.len() => (OPS[i], src),
                13 => (AluOp::Arsh, src),
                14 => (AluOp::Movsx(SxBits::B8), Operand::Reg(reg(b))),
                15 => (AluOp::Movsx(SxBits::B16), Operand::Reg(reg(b))),
                _ => (AluOp::Movsx(SxBits::B32), Operand::Reg(reg(b))),
            };
            let width = match op {
                // 32-bit movsx from 32 bits is not an encoding.
                AluOp::Movsx(SxBits::B32) => Width::W64,
                _ => width(pick >> 12),
            };
            Insn::Alu {
                width,
                op,
                dst: dst(pick >> 16),
                src,
            }
        }
        5 => Insn::Neg {
            width: width(pick),
            dst: dst(pick >> 1),
        },
        6 => {
            let kind = [Endian::ToLe, Endian::ToBe, Endian::Swap][(pick % 3) as usize];
            let bits = [SwapBits::B16, SwapBits::B32, SwapBits::B64][((pick >> 2) % 3) as usize];
            Insn::End {
                kind,
                bits,
                dst: dst(pick >> 4),
            }
        }
        7 | 8 => {
            const CONDS: [JmpCond; 11] = [
                JmpCond::Eq,
                JmpCond::Gt,
                JmpCond::Ge,
                JmpCond::Set,
                JmpCond::Ne,
                JmpCond::Sgt,
                JmpCond::Sge,
                JmpCond::Lt,
                JmpCond::Le,
                JmpCond::Slt,
                JmpCond::Sle,
            ];
            let src = if pick & 1 == 0 {
                Operand::Imm(imm(b))
            } else {
                Operand::Reg(reg(b))
            };
            let insn = Insn::Jmp {
                width: width(pick >> 1),
                cond: CONDS[(pick >> 2) as usize % CONDS.len()],
                dst: reg(pick >> 8),
                src,
                off: 0,
            };
            return Gen::Jump(insn, target);
        }
        9 => return Gen::Jump(Insn::Ja { off: 0 }, target),
        10 => {
            // Addresses of the input and stack regions, near and past their ends.
            let v = match pick % 4 {
                0 => region_base(0).wrapping_add(b % 80),
                1 => region_base(1).wrapping_add(b % 600),
                2 => region_base((b % 4) as usize),
                _ => b,
            };
            Insn::LdImm64 {
                dst: dst(pick >> 2),
                imm: Imm64::Value(v),
            }
        }
        11 => {
            if pick & 1 == 0 {
                Insn::Load {
                    size: size(pick >> 1),
                    dst: dst(pick >> 3),
                    src: base(b),
                    off: offset(b >> 4),
                }
            } else {
                Insn::LoadSx {
                    bits: [SxBits::B8, SxBits::B16, SxBits::B32][((pick >> 1) % 3) as usize],
                    dst: dst(pick >> 3),
                    src: base(b),
                    off: offset(b >> 4),
                }
            }
        }
        12 => Insn::StoreImm {
            size: size(pick),
            dst: base(b),
            off: offset(b >> 4),
            imm: imm(pick >> 2),
        },
        13 => Insn::Store {
            size: size(pick),
            dst: base(b),
            src: reg(pick >> 2),
            off: offset(b >> 4),
        },
        14 => {
            let op = match pick % 10 {
                0 => AtomicOp::Add { fetch: false },
                1 => AtomicOp::Add { fetch: true },
                2 => AtomicOp::Or { fetch: false },
                3 => AtomicOp::Or { fetch: true },
                4 => AtomicOp::And { fetch: false },
                5 => AtomicOp::And { fetch: true },
                6 => AtomicOp::Xor { fetch: false },
                7 => AtomicOp::Xor { fetch: true },
                8 => AtomicOp::Xchg,
                _ => AtomicOp::Cmpxchg,
            };
            Insn::Atomic {
                dw: pick & 0x100 == 0,
                op,
                dst: base(b),
                // Fetching atomics write their source: never r10.
                src: dst(pick >> 9),
                off: offset(b >> 4) & !3,
            }
        }
        16 => return Gen::Sub(Insn::Call(CallTarget::Local(0))),
        17 if calls == Calls::Arm64 => Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: dst(pick),
            src: Operand::Imm(5),
        },
        17 => {
            return Gen::Sub(Insn::LdImm64 {
                dst: dst(pick),
                imm: Imm64::Func(0),
            })
        }
        18 => Insn::Callx { reg: reg(pick) },
        19 if calls == Calls::Arm64 => Insn::Call(CallTarget::Helper(5)),
        19 => {
            // bpf_loop(r1, r2, r3, r4): calls r2 back r1 times when r2 is
            // the subprogram's address (from an lddw above) and r1 is small.
            Insn::Call(CallTarget::Helper(181))
        }
        _ => {
            // Deterministic helpers (bpf_get_prandom_u32 is seeded per VM,
            // bpf_get_smp_processor_id) and one that does not exist.
            let id = match calls {
                Calls::All => [7, 8, 8, 9999][(pick % 4) as usize],
                Calls::Arm64 => [5, 5, 5, 9999][(pick % 4) as usize],
            };
            Insn::Call(CallTarget::Helper(id))
        }
    };
    Gen::Insn(insn)
}

/// The program the words describe: the main function, `exit`, then a
/// subprogram the main function may call (directly, through callx, or as a
/// bpf_loop callback) and that may call itself, and its `exit`.
pub fn program(words: &[(u64, u64)], sub_words: &[(u64, u64)], calls: Calls) -> Vec<Insn> {
    let main = words.len();
    let sub_start = main + 1;
    let sub = sub_start..sub_start + sub_words.len();
    let mut gens: Vec<Gen> = words
        .iter()
        .map(|&(a, b)| gen(a, b, 0..main, calls))
        .collect();
    gens.push(Gen::Insn(Insn::Exit));
    gens.extend(
        sub_words
            .iter()
            .map(|&(a, b)| gen(a, b, sub.clone(), calls)),
    );
    gens.push(Gen::Insn(Insn::Exit));
    let mut insns: Vec<Insn> = gens
        .iter()
        .map(|g| match g {
            Gen::Insn(i) | Gen::Jump(i, _) | Gen::Sub(i) => *i,
        })
        .collect();
    // Slot index of each instruction, then jump offsets in slots.
    let mut slot = Vec::with_capacity(insns.len());
    let mut pc = 0i64;
    for i in &insns {
        slot.push(pc);
        pc += i.slots() as i64;
    }
    for (i, g) in gens.iter().enumerate() {
        match g {
            Gen::Jump(_, target) => {
                let off = (slot[*target] - slot[i] - 1) as i16;
                match &mut insns[i] {
                    Insn::Jmp { off: o, .. } | Insn::Ja { off: o } => *o = off,
                    _ => {}
                }
            }
            Gen::Sub(_) => {
                let off = (slot[sub_start] - slot[i] - 1) as i32;
                match &mut insns[i] {
                    Insn::Call(t) => *t = CallTarget::Local(off),
                    Insn::LdImm64 { imm, .. } => *imm = Imm64::Func(off),
                    _ => {}
                }
            }
            Gen::Insn(_) => {}
        }
    }
    insns
}

/// A generated program's words (its main function's, its subprogram's)
/// and its 64-byte input.
pub type Case = (Vec<(u64, u64)>, Vec<(u64, u64)>, Vec<u8>);

/// `n` cases from a fixed seed, so that a failure reproduces.
pub fn cases(n: usize) -> Vec<Case> {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    let strategy = (
        proptest::collection::vec((any::<u64>(), any::<u64>()), 1..MAX_INSNS),
        proptest::collection::vec((any::<u64>(), any::<u64>()), 0..MAX_INSNS / 4),
        proptest::collection::vec(any::<u8>(), 64),
    );
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// `f` of every item, on as many threads as there are CPUs, in order.
pub fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(threads).max(1))
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
