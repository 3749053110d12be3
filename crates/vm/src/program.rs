//! Pre-decoding: a program is decoded and checked once into a flat array of
//! [`Op`]s with operands resolved and jump targets absolute, so the
//! interpreter's loop is a single `match` per instruction.

use bpfkit_isa::{
    AluOp, AtomicOp, CallTarget, Endian, Imm64, Insn, JmpCond, MemSize, Operand, Reg, SwapBits,
    SxBits, Width,
};

use std::sync::Arc;

use crate::context::ContextKind;
use crate::engine::CompiledCode;
use crate::error::LoadError;

/// Absolute slot index of a jump target.
pub(crate) type Target = u32;

/// The atomic operations, with their width folded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AtomicKind {
    Add,
    Or,
    And,
    Xor,
    Xchg,
    Cmpxchg,
}

/// One pre-decoded instruction. `I` variants take an immediate (already
/// sign-extended for 64-bit operations), `R` variants a source register;
/// register operands are indexes 0..=10, jump targets absolute slot indexes.
/// ALU variants are `(dst, src or imm)`, conditional jumps
/// `(dst, src or imm, target)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Add64I(u8, u64),
    Sub64I(u8, u64),
    Mul64I(u8, u64),
    Div64I(u8, u64),
    Sdiv64I(u8, u64),
    Or64I(u8, u64),
    And64I(u8, u64),
    Lsh64I(u8, u64),
    Rsh64I(u8, u64),
    Mod64I(u8, u64),
    Smod64I(u8, u64),
    Xor64I(u8, u64),
    Mov64I(u8, u64),
    Arsh64I(u8, u64),
    Add64R(u8, u8),
    Sub64R(u8, u8),
    Mul64R(u8, u8),
    Div64R(u8, u8),
    Sdiv64R(u8, u8),
    Or64R(u8, u8),
    And64R(u8, u8),
    Lsh64R(u8, u8),
    Rsh64R(u8, u8),
    Mod64R(u8, u8),
    Smod64R(u8, u8),
    Xor64R(u8, u8),
    Mov64R(u8, u8),
    Arsh64R(u8, u8),
    Add32I(u8, u32),
    Sub32I(u8, u32),
    Mul32I(u8, u32),
    Div32I(u8, u32),
    Sdiv32I(u8, u32),
    Or32I(u8, u32),
    And32I(u8, u32),
    Lsh32I(u8, u32),
    Rsh32I(u8, u32),
    Mod32I(u8, u32),
    Smod32I(u8, u32),
    Xor32I(u8, u32),
    Mov32I(u8, u32),
    Arsh32I(u8, u32),
    Add32R(u8, u8),
    Sub32R(u8, u8),
    Mul32R(u8, u8),
    Div32R(u8, u8),
    Sdiv32R(u8, u8),
    Or32R(u8, u8),
    And32R(u8, u8),
    Lsh32R(u8, u8),
    Rsh32R(u8, u8),
    Mod32R(u8, u8),
    Smod32R(u8, u8),
    Xor32R(u8, u8),
    Mov32R(u8, u8),
    Arsh32R(u8, u8),
    /// dst, src, source bits.
    Movsx64(u8, u8, u8),
    Movsx32(u8, u8, u8),
    Neg64(u8),
    Neg32(u8),
    /// Convert to little-endian: truncation to the width on this little-endian VM.
    Le(u8, u8),
    /// Convert to big-endian / unconditional swap of the low bits.
    Swap(u8, u8),
    Ja(Target),
    Jeq64I(u8, u64, Target),
    Jgt64I(u8, u64, Target),
    Jge64I(u8, u64, Target),
    Jset64I(u8, u64, Target),
    Jne64I(u8, u64, Target),
    Jsgt64I(u8, u64, Target),
    Jsge64I(u8, u64, Target),
    Jlt64I(u8, u64, Target),
    Jle64I(u8, u64, Target),
    Jslt64I(u8, u64, Target),
    Jsle64I(u8, u64, Target),
    Jeq64R(u8, u8, Target),
    Jgt64R(u8, u8, Target),
    Jge64R(u8, u8, Target),
    Jset64R(u8, u8, Target),
    Jne64R(u8, u8, Target),
    Jsgt64R(u8, u8, Target),
    Jsge64R(u8, u8, Target),
    Jlt64R(u8, u8, Target),
    Jle64R(u8, u8, Target),
    Jslt64R(u8, u8, Target),
    Jsle64R(u8, u8, Target),
    Jeq32I(u8, u32, Target),
    Jgt32I(u8, u32, Target),
    Jge32I(u8, u32, Target),
    Jset32I(u8, u32, Target),
    Jne32I(u8, u32, Target),
    Jsgt32I(u8, u32, Target),
    Jsge32I(u8, u32, Target),
    Jlt32I(u8, u32, Target),
    Jle32I(u8, u32, Target),
    Jslt32I(u8, u32, Target),
    Jsle32I(u8, u32, Target),
    Jeq32R(u8, u8, Target),
    Jgt32R(u8, u8, Target),
    Jge32R(u8, u8, Target),
    Jset32R(u8, u8, Target),
    Jne32R(u8, u8, Target),
    Jsgt32R(u8, u8, Target),
    Jsge32R(u8, u8, Target),
    Jlt32R(u8, u8, Target),
    Jle32R(u8, u8, Target),
    Jslt32R(u8, u8, Target),
    Jsle32R(u8, u8, Target),
    /// Helper call by id.
    Call(i32),
    /// Call of a helper that may call a program function back
    /// (bpf_loop, bpf_for_each_map_elem), by id.
    CallWithCallback(i32),
    /// bpf-to-bpf call.
    CallLocal(Target),
    /// Indirect call through a register.
    Callx(u8),
    Exit,
    /// dst, base, offset.
    Ldx8(u8, u8, i16),
    Ldx16(u8, u8, i16),
    Ldx32(u8, u8, i16),
    /// A 32-bit load that may read a context pointer field (XDP, skb programs).
    Ldx32Ctx(u8, u8, i16),
    Ldx64(u8, u8, i16),
    Ldxs8(u8, u8, i16),
    Ldxs16(u8, u8, i16),
    Ldxs32(u8, u8, i16),
    /// base, offset, value.
    St8(u8, i16, u64),
    St16(u8, i16, u64),
    St32(u8, i16, u64),
    St64(u8, i16, u64),
    /// base, src, offset.
    Stx8(u8, u8, i16),
    Stx16(u8, u8, i16),
    Stx32(u8, u8, i16),
    Stx64(u8, u8, i16),
    /// kind, fetch, 64-bit, base, src, offset.
    Atomic(AtomicKind, bool, bool, u8, u8, i16),
    /// size in bytes, packet offset.
    LdAbs(u8, i32),
    /// size in bytes, src register, packet offset.
    LdInd(u8, u8, i32),
    /// `lddw` of a constant (two slots).
    Lddw(u8, u64),
    /// dst = address of the function at the target.
    LdFunc(u8, Target),
    /// dst = address of map `index` (a map handle the VM resolves).
    LdMap(u8, u32),
    /// dst = address of byte `offset` of map `index`'s single value (global data).
    LdMapValue(u8, u32, u32),
    /// The second slot of an `lddw`; never executed.
    LdImm64Tail,
}

/// A checked, pre-decoded program ready to run.
#[derive(Clone, Debug)]
pub struct Program {
    pub(crate) ops: Vec<Op>,
    pub(crate) insns: Vec<Insn>,
    pub(crate) context: ContextKind,
    /// Machine code runs use instead of the interpreter, if attached.
    compiled: Option<Arc<dyn CompiledCode>>,
    /// Bytes below `r10` a run may have written in any frame: the lowest
    /// `r10`-relative store offset when every store is such a store, else
    /// the whole frame (a helper call, an atomic or a store through another
    /// register may write anywhere, even through a forged address). The
    /// next run zeroes only this much of a frame buffer it reuses.
    pub(crate) stack_dirty: usize,
}

/// The bytes below `r10` that the ops of a program may write in a frame (see
/// [`Program::stack_dirty`]).
fn stack_dirty(ops: &[Op]) -> usize {
    const FP: u8 = 10;
    let frame = crate::interp::STACK_PER_FRAME as i64;
    let mut dirty = 0i64;
    for op in ops {
        let (base, off) = match *op {
            Op::St8(b, off, _)
            | Op::St16(b, off, _)
            | Op::St32(b, off, _)
            | Op::St64(b, off, _) => (b, off),
            Op::Stx8(b, _, off)
            | Op::Stx16(b, _, off)
            | Op::Stx32(b, _, off)
            | Op::Stx64(b, _, off) => (b, off),
            Op::Atomic(..) | Op::Call(_) | Op::CallWithCallback(_) | Op::Callx(_) => {
                return frame as usize
            }
            _ => continue,
        };
        if base != FP {
            return frame as usize;
        }
        // A store at r10 + off (off < 0) writes from -off bytes below r10 up;
        // one outside the frame faults and writes nothing.
        dirty = dirty.max((-(off as i64)).clamp(0, frame));
    }
    dirty as usize
}

fn r(reg: Reg) -> u8 {
    reg.index()
}

impl Program {
    /// Decodes raw little-endian bytecode and prepares it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, LoadError> {
        let insns = bpfkit_isa::decode(bytes, bpfkit_isa::ByteOrder::Little)?;
        Program::new(insns)
    }

    /// Prepares decoded instructions. Checks, as the kernel does at load
    /// whether or not a verifier runs, every jump and call target, that
    /// jumps stay inside their subprogram and each subprogram ends with
    /// `exit` or `ja`, and that no instruction writes `r10`; memory safety is
    /// checked at run time.
    /// `LdImm64` with `MapFd`/`MapIdx` refers to map index `fd`/`idx` of the
    /// runtime's map table; `MapValue`/`MapIdxValue` to byte `offset` of it.
    pub fn new(insns: Vec<Insn>) -> Result<Program, LoadError> {
        Program::with_context(insns, ContextKind::Raw)
    }

    /// Prepares a program whose `r1` is a context of `context`'s layout.
    pub fn with_context(insns: Vec<Insn>, context: ContextKind) -> Result<Program, LoadError> {
        if insns.is_empty() {
            return Err(LoadError::Empty);
        }
        let slots: usize = insns.iter().map(Insn::slots).sum();
        // A slot index is valid as a jump target only if it starts an instruction.
        let mut starts = vec![false; slots];
        let mut pc = 0;
        for insn in &insns {
            starts[pc] = true;
            pc += insn.slots();
        }
        let subprograms = subprograms(&insns, &starts)?;
        let mut ops = Vec::with_capacity(slots);
        let mut pc = 0;
        for insn in &insns {
            let target = |off: i64| -> Result<Target, LoadError> {
                let t = pc as i64 + 1 + off;
                if t < 0 || t as usize >= slots || !starts[t as usize] {
                    return Err(LoadError::BadJumpTarget { pc, target: t });
                }
                Ok(t as Target)
            };
            if writes_r10(insn) {
                return Err(LoadError::WritesFramePointer { pc });
            }
            let op = match lower(insn, pc, &target)? {
                Op::Ldx32(d, s, off) if context != ContextKind::Raw => Op::Ldx32Ctx(d, s, off),
                op => op,
            };
            ops.push(op);
            if insn.slots() == 2 {
                ops.push(Op::LdImm64Tail);
            }
            pc += insn.slots();
        }
        check_subprogram_bounds(&insns, &subprograms)?;
        let stack_dirty = stack_dirty(&ops);
        Ok(Program {
            ops,
            insns,
            context,
            compiled: None,
            stack_dirty,
        })
    }

    /// The decoded instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The context layout the program expects.
    #[inline]
    pub fn context(&self) -> ContextKind {
        self.context
    }

    /// Number of 8-byte slots.
    pub fn slots(&self) -> usize {
        self.ops.len()
    }

    /// The pre-decoded instructions, one per slot (the second slot of an
    /// `lddw` is [`Op::LdImm64Tail`]): what a compiled engine translates.
    #[inline]
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Makes runs of this program execute `code` instead of the interpreter
    /// (`None` goes back to the interpreter).
    pub fn set_compiled(&mut self, code: Option<Arc<dyn CompiledCode>>) {
        self.compiled = code;
    }

    /// The compiled code runs execute, if any.
    #[inline]
    pub fn compiled(&self) -> Option<&Arc<dyn CompiledCode>> {
        self.compiled.as_ref()
    }
}

/// The slot index where each subprogram starts, in order: the entry point
/// and every target of a bpf-to-bpf call or of `lddw rX, func` (the kernel's
/// add_subprog_and_kfunc). Each target must start an instruction.
fn subprograms(insns: &[Insn], starts: &[bool]) -> Result<Vec<usize>, LoadError> {
    let mut subprograms = vec![0];
    let mut pc = 0;
    for insn in insns {
        let off = match *insn {
            Insn::Call(CallTarget::Local(off)) => Some(off as i64),
            Insn::LdImm64 {
                imm: Imm64::Func(off),
                ..
            } => Some(off as i64),
            _ => None,
        };
        if let Some(off) = off {
            let target = pc as i64 + 1 + off;
            if target < 0 || target as usize >= starts.len() || !starts[target as usize] {
                return Err(LoadError::BadCallTarget { pc, target });
            }
            subprograms.push(target as usize);
        }
        pc += insn.slots();
    }
    subprograms.sort_unstable();
    subprograms.dedup();
    Ok(subprograms)
}

/// The kernel's check_subprogs: every jump stays inside its subprogram
/// ("jump out of range from insn X to Y"), and each subprogram ends with
/// `exit` or `ja`, so control never falls into the next one.
fn check_subprogram_bounds(insns: &[Insn], subprograms: &[usize]) -> Result<(), LoadError> {
    let slots: usize = insns.iter().map(Insn::slots).sum();
    let mut current = 0;
    let mut pc = 0;
    for insn in insns {
        while current + 1 < subprograms.len() && subprograms[current + 1] <= pc {
            current += 1;
        }
        let start = subprograms[current];
        let end = subprograms.get(current + 1).copied().unwrap_or(slots);
        let off = match *insn {
            Insn::Ja { off } | Insn::Jmp { off, .. } => Some(off as i64),
            Insn::Ja32 { imm } => Some(imm as i64),
            _ => None,
        };
        if let Some(off) = off {
            let target = pc as i64 + 1 + off;
            if target < start as i64 || target >= end as i64 {
                return Err(LoadError::JumpLeavesSubprogram {
                    pc,
                    target,
                    start,
                    end,
                });
            }
        }
        let next = pc + insn.slots();
        if next == end && !matches!(insn, Insn::Exit | Insn::Ja { .. } | Insn::Ja32 { .. }) {
            return Err(if end == slots {
                LoadError::FallsOffEnd { pc }
            } else {
                LoadError::FallsIntoSubprogram { pc, next: end }
            });
        }
        pc = next;
    }
    Ok(())
}

fn writes_r10(insn: &Insn) -> bool {
    let dst = match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::End { dst, .. }
        | Insn::LdImm64 { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::LoadSx { dst, .. } => dst,
        // Fetching atomics write their source register (r0 for cmpxchg).
        Insn::Atomic {
            src,
            op:
                AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true }
                | AtomicOp::Xchg,
            ..
        } => src,
        _ => return false,
    };
    dst == Reg::R10
}

fn lower(
    insn: &Insn,
    pc: usize,
    target: &dyn Fn(i64) -> Result<Target, LoadError>,
) -> Result<Op, LoadError> {
    Ok(match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => lower_alu(width, op, r(dst), src),
        Insn::Neg { width, dst } => match width {
            Width::W64 => Op::Neg64(r(dst)),
            Width::W32 => Op::Neg32(r(dst)),
        },
        Insn::End { kind, bits, dst } => {
            let bits = match bits {
                SwapBits::B16 => 16,
                SwapBits::B32 => 32,
                SwapBits::B64 => 64,
            };
            match kind {
                Endian::ToLe => Op::Le(r(dst), bits),
                Endian::ToBe | Endian::Swap => Op::Swap(r(dst), bits),
            }
        }
        Insn::Ja { off } => Op::Ja(target(off as i64)?),
        Insn::Ja32 { imm } => Op::Ja(target(imm as i64)?),
        Insn::Jmp {
            width,
            cond,
            dst,
            src,
            off,
        } => lower_jmp(width, cond, r(dst), src, target(off as i64)?),
        Insn::Call(CallTarget::Helper(id)) if crate::builtins::calls_back(id) => {
            Op::CallWithCallback(id)
        }
        Insn::Call(CallTarget::Helper(id)) => Op::Call(id),
        Insn::Call(CallTarget::Local(off)) => Op::CallLocal(target(off as i64)?),
        Insn::Call(CallTarget::Kfunc { .. }) => {
            return Err(LoadError::Unsupported {
                pc,
                what: "a kfunc call",
            })
        }
        Insn::Callx { reg } => Op::Callx(r(reg)),
        Insn::Exit => Op::Exit,
        Insn::LdImm64 { dst, imm } => match imm {
            Imm64::Value(v) => Op::Lddw(r(dst), v),
            Imm64::Func(off) => Op::LdFunc(r(dst), target(off as i64)?),
            Imm64::MapFd(i) | Imm64::MapIdx(i) => Op::LdMap(r(dst), i as u32),
            Imm64::MapValue { fd: i, offset } | Imm64::MapIdxValue { idx: i, offset } => {
                Op::LdMapValue(r(dst), i as u32, offset)
            }
            Imm64::BtfVar { .. } => {
                return Err(LoadError::Unsupported {
                    pc,
                    what: "a kernel variable (ksym)",
                })
            }
        },
        Insn::Load {
            size,
            dst,
            src,
            off,
        } => match size {
            MemSize::B => Op::Ldx8(r(dst), r(src), off),
            MemSize::H => Op::Ldx16(r(dst), r(src), off),
            MemSize::W => Op::Ldx32(r(dst), r(src), off),
            MemSize::DW => Op::Ldx64(r(dst), r(src), off),
        },
        Insn::LoadSx {
            bits,
            dst,
            src,
            off,
        } => match bits {
            SxBits::B8 => Op::Ldxs8(r(dst), r(src), off),
            SxBits::B16 => Op::Ldxs16(r(dst), r(src), off),
            SxBits::B32 => Op::Ldxs32(r(dst), r(src), off),
        },
        Insn::StoreImm {
            size,
            dst,
            off,
            imm,
        } => {
            let v = imm as i64 as u64;
            match size {
                MemSize::B => Op::St8(r(dst), off, v),
                MemSize::H => Op::St16(r(dst), off, v),
                MemSize::W => Op::St32(r(dst), off, v),
                MemSize::DW => Op::St64(r(dst), off, v),
            }
        }
        Insn::Store {
            size,
            dst,
            src,
            off,
        } => match size {
            MemSize::B => Op::Stx8(r(dst), r(src), off),
            MemSize::H => Op::Stx16(r(dst), r(src), off),
            MemSize::W => Op::Stx32(r(dst), r(src), off),
            MemSize::DW => Op::Stx64(r(dst), r(src), off),
        },
        Insn::Atomic {
            dw,
            op,
            dst,
            src,
            off,
        } => {
            let (kind, fetch) = match op {
                AtomicOp::Add { fetch } => (AtomicKind::Add, fetch),
                AtomicOp::Or { fetch } => (AtomicKind::Or, fetch),
                AtomicOp::And { fetch } => (AtomicKind::And, fetch),
                AtomicOp::Xor { fetch } => (AtomicKind::Xor, fetch),
                AtomicOp::Xchg => (AtomicKind::Xchg, true),
                AtomicOp::Cmpxchg => (AtomicKind::Cmpxchg, true),
            };
            Op::Atomic(kind, fetch, dw, r(dst), r(src), off)
        }
        Insn::LdAbs { size, imm } => Op::LdAbs(size.bytes() as u8, imm),
        Insn::LdInd { size, src, imm } => Op::LdInd(size.bytes() as u8, r(src), imm),
    })
}

fn lower_alu(width: Width, op: AluOp, d: u8, src: Operand) -> Op {
    match (width, src) {
        (Width::W64, Operand::Imm(imm)) => {
            let v = imm as i64 as u64;
            match op {
                AluOp::Add => Op::Add64I(d, v),
                AluOp::Sub => Op::Sub64I(d, v),
                AluOp::Mul => Op::Mul64I(d, v),
                AluOp::Div => Op::Div64I(d, v),
                AluOp::Sdiv => Op::Sdiv64I(d, v),
                AluOp::Or => Op::Or64I(d, v),
                AluOp::And => Op::And64I(d, v),
                AluOp::Lsh => Op::Lsh64I(d, v),
                AluOp::Rsh => Op::Rsh64I(d, v),
                AluOp::Mod => Op::Mod64I(d, v),
                AluOp::Smod => Op::Smod64I(d, v),
                AluOp::Xor => Op::Xor64I(d, v),
                // The decoder only accepts movsx with a register source.
                AluOp::Mov | AluOp::Movsx(_) => Op::Mov64I(d, v),
                AluOp::Arsh => Op::Arsh64I(d, v),
            }
        }
        (Width::W64, Operand::Reg(s)) => {
            let s = r(s);
            match op {
                AluOp::Add => Op::Add64R(d, s),
                AluOp::Sub => Op::Sub64R(d, s),
                AluOp::Mul => Op::Mul64R(d, s),
                AluOp::Div => Op::Div64R(d, s),
                AluOp::Sdiv => Op::Sdiv64R(d, s),
                AluOp::Or => Op::Or64R(d, s),
                AluOp::And => Op::And64R(d, s),
                AluOp::Lsh => Op::Lsh64R(d, s),
                AluOp::Rsh => Op::Rsh64R(d, s),
                AluOp::Mod => Op::Mod64R(d, s),
                AluOp::Smod => Op::Smod64R(d, s),
                AluOp::Xor => Op::Xor64R(d, s),
                AluOp::Mov => Op::Mov64R(d, s),
                AluOp::Movsx(b) => Op::Movsx64(d, s, b.bits() as u8),
                AluOp::Arsh => Op::Arsh64R(d, s),
            }
        }
        (Width::W32, Operand::Imm(imm)) => {
            let v = imm as u32;
            match op {
                AluOp::Add => Op::Add32I(d, v),
                AluOp::Sub => Op::Sub32I(d, v),
                AluOp::Mul => Op::Mul32I(d, v),
                AluOp::Div => Op::Div32I(d, v),
                AluOp::Sdiv => Op::Sdiv32I(d, v),
                AluOp::Or => Op::Or32I(d, v),
                AluOp::And => Op::And32I(d, v),
                AluOp::Lsh => Op::Lsh32I(d, v),
                AluOp::Rsh => Op::Rsh32I(d, v),
                AluOp::Mod => Op::Mod32I(d, v),
                AluOp::Smod => Op::Smod32I(d, v),
                AluOp::Xor => Op::Xor32I(d, v),
                AluOp::Mov | AluOp::Movsx(_) => Op::Mov32I(d, v),
                AluOp::Arsh => Op::Arsh32I(d, v),
            }
        }
        (Width::W32, Operand::Reg(s)) => {
            let s = r(s);
            match op {
                AluOp::Add => Op::Add32R(d, s),
                AluOp::Sub => Op::Sub32R(d, s),
                AluOp::Mul => Op::Mul32R(d, s),
                AluOp::Div => Op::Div32R(d, s),
                AluOp::Sdiv => Op::Sdiv32R(d, s),
                AluOp::Or => Op::Or32R(d, s),
                AluOp::And => Op::And32R(d, s),
                AluOp::Lsh => Op::Lsh32R(d, s),
                AluOp::Rsh => Op::Rsh32R(d, s),
                AluOp::Mod => Op::Mod32R(d, s),
                AluOp::Smod => Op::Smod32R(d, s),
                AluOp::Xor => Op::Xor32R(d, s),
                AluOp::Mov => Op::Mov32R(d, s),
                AluOp::Movsx(b) => Op::Movsx32(d, s, b.bits() as u8),
                AluOp::Arsh => Op::Arsh32R(d, s),
            }
        }
    }
}

fn lower_jmp(width: Width, cond: JmpCond, d: u8, src: Operand, t: Target) -> Op {
    use JmpCond::*;
    match (width, src) {
        (Width::W64, Operand::Imm(imm)) => {
            let v = imm as i64 as u64;
            match cond {
                Eq => Op::Jeq64I(d, v, t),
                Gt => Op::Jgt64I(d, v, t),
                Ge => Op::Jge64I(d, v, t),
                Set => Op::Jset64I(d, v, t),
                Ne => Op::Jne64I(d, v, t),
                Sgt => Op::Jsgt64I(d, v, t),
                Sge => Op::Jsge64I(d, v, t),
                Lt => Op::Jlt64I(d, v, t),
                Le => Op::Jle64I(d, v, t),
                Slt => Op::Jslt64I(d, v, t),
                Sle => Op::Jsle64I(d, v, t),
            }
        }
        (Width::W64, Operand::Reg(s)) => {
            let s = r(s);
            match cond {
                Eq => Op::Jeq64R(d, s, t),
                Gt => Op::Jgt64R(d, s, t),
                Ge => Op::Jge64R(d, s, t),
                Set => Op::Jset64R(d, s, t),
                Ne => Op::Jne64R(d, s, t),
                Sgt => Op::Jsgt64R(d, s, t),
                Sge => Op::Jsge64R(d, s, t),
                Lt => Op::Jlt64R(d, s, t),
                Le => Op::Jle64R(d, s, t),
                Slt => Op::Jslt64R(d, s, t),
                Sle => Op::Jsle64R(d, s, t),
            }
        }
        (Width::W32, Operand::Imm(imm)) => {
            let v = imm as u32;
            match cond {
                Eq => Op::Jeq32I(d, v, t),
                Gt => Op::Jgt32I(d, v, t),
                Ge => Op::Jge32I(d, v, t),
                Set => Op::Jset32I(d, v, t),
                Ne => Op::Jne32I(d, v, t),
                Sgt => Op::Jsgt32I(d, v, t),
                Sge => Op::Jsge32I(d, v, t),
                Lt => Op::Jlt32I(d, v, t),
                Le => Op::Jle32I(d, v, t),
                Slt => Op::Jslt32I(d, v, t),
                Sle => Op::Jsle32I(d, v, t),
            }
        }
        (Width::W32, Operand::Reg(s)) => {
            let s = r(s);
            match cond {
                Eq => Op::Jeq32R(d, s, t),
                Gt => Op::Jgt32R(d, s, t),
                Ge => Op::Jge32R(d, s, t),
                Set => Op::Jset32R(d, s, t),
                Ne => Op::Jne32R(d, s, t),
                Sgt => Op::Jsgt32R(d, s, t),
                Sge => Op::Jsge32R(d, s, t),
                Lt => Op::Jlt32R(d, s, t),
                Le => Op::Jle32R(d, s, t),
                Slt => Op::Jslt32R(d, s, t),
                Sle => Op::Jsle32R(d, s, t),
            }
        }
    }
}
