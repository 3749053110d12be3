//! Which registers matter at each instruction, for state pruning: a static,
//! backward pass before the walk, standing in for the kernel's two dynamic
//! mechanisms (kernel/bpf/verifier.c).
//!
//! - **Liveness** (`REG_LIVE_READ`, `clean_live_states`): a register or a
//!   stack slot of the running frame that every path writes before it
//!   reads cannot change what happens next, so an old state prunes a new
//!   one whatever either holds there ([`stack_liveness`] for the slots).
//! - **Precision** (`mark_chain_precision`, `regsafe`'s `!rold->precise`): a
//!   scalar whose value reaches none of the uses the verifier decides on
//!   can differ between the states: any scalar is as good as any other.
//!   The uses that decide: pointer arithmetic, conditional jumps, helper and
//!   subprogram arguments, stores (the stack is compared exactly, and a
//!   store may be to it), memory addresses and the return value. A value
//!   reaches a use through moves and ALU operations; through memory only by
//!   a store, which already counts as a use.
//!
//! The kernel marks precision along the one path that needed it; this
//! marks it on every path that may, which prunes less but never wrongly.
//! All three sets hold at the start of an instruction, for the frame executing
//! it; callers' frames are compared whole.

use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Insn, Operand, Reg, Width};

/// A set of registers r0..r10, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegSet(pub u16);

impl RegSet {
    /// Every register.
    pub const ALL: RegSet = RegSet(0x7ff);
    /// The argument registers r1..r5.
    const ARGS: RegSet = RegSet(0b11_1110);
    /// What a call clobbers: r0..r5.
    const CALLER_SAVED: RegSet = RegSet(0b11_1111);

    /// Whether register `r` (0..=10) is in the set.
    pub fn contains(self, r: usize) -> bool {
        self.0 & (1 << r) != 0
    }

    fn with(self, r: Reg) -> RegSet {
        RegSet(self.0 | 1 << r.index() as u16)
    }

    fn without(self, r: Reg) -> RegSet {
        RegSet(self.0 & !(1 << r.index() as u16))
    }

    fn union(self, o: RegSet) -> RegSet {
        RegSet(self.0 | o.0)
    }

    fn minus(self, o: RegSet) -> RegSet {
        RegSet(self.0 & !o.0)
    }
}

/// The registers and stack slots that matter at the start of an instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Read before written on some path (else the value is dead).
    pub read: RegSet,
    /// Of those, the ones whose scalar value may decide something.
    pub precise: RegSet,
    /// The frame's own stack slots that may be read before they are
    /// written, one bit each (slot `i`: the bytes from `-8(i+1)` to
    /// `-8i - 1`); see [`stack_liveness`].
    pub stack: u64,
}

impl Live {
    /// Every register matters, as a precise value, and every stack slot.
    pub const ALL: Live = Live {
        read: RegSet::ALL,
        precise: RegSet::ALL,
        stack: u64::MAX,
    };

    /// Whether stack slot `i` of the frame may be read before it is written.
    pub fn stack_slot(&self, i: usize) -> bool {
        slot_may_be_read(self.stack, i)
    }
}

/// Whether slot `i` is in a stack-liveness mask ([`Live::stack`]); slots
/// past the 64 a mask holds always are.
pub fn slot_may_be_read(mask: u64, i: usize) -> bool {
    i >= 64 || mask & (1 << i) != 0
}

/// [`Live`] for each slot of `prog` (`None` for lddw's second slot).
/// `entry_known` says the main program starts as the kernel starts it (r1
/// the context, nothing else set); otherwise its registers may hold
/// anything, pointers to its own stack included.
pub fn analyze(prog: &[Option<Insn>], entry_known: bool) -> Vec<Live> {
    let stack = stack_liveness(prog, entry_known);
    let mut live = registers(prog);
    for (l, s) in live.iter_mut().zip(stack) {
        l.stack = s;
    }
    live
}

fn registers(prog: &[Option<Insn>]) -> Vec<Live> {
    backward(prog, |_, insn, live: &[Live], succs| {
        let mut out = Live::default();
        for s in succs {
            out.read = out.read.union(live[s].read);
            out.precise = out.precise.union(live[s].precise);
        }
        transfer(insn, out)
    })
}

/// Solves a backward dataflow problem over `prog`'s slots: `step(pc, insn,
/// facts, successors)` gives the fact before `insn` from the facts after
/// it, repeated until nothing changes (a change is passed on only to the
/// instructions that lead to it).
fn backward<T: Copy + Default + PartialEq>(
    prog: &[Option<Insn>],
    step: impl Fn(usize, &Insn, &[T], &mut dyn Iterator<Item = usize>) -> T,
) -> Vec<T> {
    let n = prog.len();
    let mut facts = vec![T::default(); n];
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (pc, insn) in prog.iter().enumerate() {
        if let Some(insn) = insn {
            for s in successors(pc, insn, n) {
                preds[s].push(pc);
            }
        }
    }
    let mut queued = vec![true; n];
    let mut work: Vec<usize> = (0..n).collect();
    while let Some(pc) = work.pop() {
        queued[pc] = false;
        let Some(insn) = &prog[pc] else { continue };
        let new = step(pc, insn, &facts, &mut successors(pc, insn, n));
        if new != facts[pc] {
            facts[pc] = new;
            for &p in &preds[pc] {
                if !queued[p] {
                    queued[p] = true;
                    work.push(p);
                }
            }
        }
    }
    facts
}

/// Where control goes after `insn` within its subprogram (a call returns
/// to the next instruction; exit leaves).
fn successors(pc: usize, insn: &Insn, n: usize) -> impl Iterator<Item = usize> {
    let next = pc + insn.slots();
    let jump = |off: i64| usize::try_from(pc as i64 + 1 + off).ok();
    let (a, b) = match *insn {
        Insn::Exit => (None, None),
        Insn::Ja { off } => (jump(off as i64), None),
        Insn::Ja32 { imm } => (jump(imm as i64), None),
        Insn::Jmp { off, .. } => (Some(next), jump(off as i64)),
        _ => (Some(next), None),
    };
    [a, b].into_iter().flatten().filter(move |&s| s < n)
}

/// The sets before `insn`, from the sets after it.
fn transfer(insn: &Insn, out: Live) -> Live {
    let Live {
        mut read,
        mut precise,
        ..
    } = out;
    // A value read by an instruction that decides something on it.
    let decide = |r: Reg, read: &mut RegSet, precise: &mut RegSet| {
        *read = read.with(r);
        *precise = precise.with(r);
    };
    match *insn {
        Insn::Alu {
            op: AluOp::Mov | AluOp::Movsx(_),
            dst,
            src,
            ..
        } => {
            let dst_read = read.contains(dst.index() as usize);
            let dst_precise = precise.contains(dst.index() as usize);
            read = read.without(dst);
            precise = precise.without(dst);
            if let Operand::Reg(s) = src {
                if dst_read {
                    read = read.with(s);
                }
                if dst_precise {
                    precise = precise.with(s);
                }
            }
        }
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            read = read.with(dst);
            if let Operand::Reg(s) = src {
                // The operand may be rejected for its value (a shift, or
                // bounds pointer arithmetic needs), so it always counts.
                decide(s, &mut read, &mut precise);
            }
            // Pointer arithmetic: a scalar added to a pointer becomes its offset.
            if width == Width::W64 && matches!(op, AluOp::Add | AluOp::Sub) {
                precise = precise.with(dst);
            }
        }
        Insn::Neg { dst, .. } | Insn::End { dst, .. } => read = read.with(dst),
        Insn::LdImm64 { dst, .. } => {
            read = read.without(dst);
            precise = precise.without(dst);
        }
        Insn::Load { dst, src, .. } | Insn::LoadSx { dst, src, .. } => {
            read = read.without(dst);
            precise = precise.without(dst);
            decide(src, &mut read, &mut precise);
        }
        Insn::StoreImm { dst, .. } => decide(dst, &mut read, &mut precise),
        Insn::Store { dst, src, .. } => {
            decide(dst, &mut read, &mut precise);
            decide(src, &mut read, &mut precise);
        }
        Insn::Atomic { op, dst, src, .. } => {
            decide(dst, &mut read, &mut precise);
            decide(src, &mut read, &mut precise);
            if op == AtomicOp::Cmpxchg {
                decide(Reg::R0, &mut read, &mut precise);
            }
        }
        Insn::LdAbs { .. } | Insn::LdInd { .. } => {
            read = read.minus(RegSet::CALLER_SAVED);
            precise = precise.minus(RegSet::CALLER_SAVED);
            decide(Reg::R6, &mut read, &mut precise);
            if let Insn::LdInd { src, .. } = *insn {
                decide(src, &mut read, &mut precise);
            }
        }
        Insn::Jmp { dst, src, .. } => {
            decide(dst, &mut read, &mut precise);
            if let Operand::Reg(s) = src {
                decide(s, &mut read, &mut precise);
            }
        }
        Insn::Ja { .. } | Insn::Ja32 { .. } => {}
        Insn::Call(_) | Insn::Callx { .. } => {
            read = read.minus(RegSet::CALLER_SAVED).union(RegSet::ARGS);
            precise = precise.minus(RegSet::CALLER_SAVED).union(RegSet::ARGS);
            if let Insn::Callx { reg } = *insn {
                decide(reg, &mut read, &mut precise);
            }
            // Kfuncs and subprograms see the caller's frame pointer.
            if matches!(
                *insn,
                Insn::Call(CallTarget::Local(_) | CallTarget::Kfunc { .. })
            ) {
                read = read.with(Reg::R10);
            }
        }
        Insn::Exit => {
            read = RegSet::default().with(Reg::R0);
            precise = read;
        }
    }
    // The frame pointer is read-only and always the same kind of value.
    Live {
        read: read.with(Reg::R10),
        precise: precise.with(Reg::R10),
        stack: 0,
    }
}

/// What a register may hold, as far as its own frame's stack goes: the
/// forward half of the stack liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameRef {
    /// Never a pointer into this frame's stack.
    Not,
    /// Exactly `r10 + k`.
    At(i32),
    /// Maybe a pointer anywhere into this frame's stack.
    Any,
}

impl FrameRef {
    fn join(self, o: FrameRef) -> FrameRef {
        if self == o {
            self
        } else if self == FrameRef::Not && o == FrameRef::Not {
            FrameRef::Not
        } else {
            FrameRef::Any
        }
    }
}

/// Slots covering bytes `[off, off + size)` below the frame pointer
/// (`off` negative), as a mask; everything when they leave the frame.
fn slot_mask(off: i32, size: i32) -> u64 {
    let (lo, hi) = (off, off + size);
    if lo < -512 || hi > 0 || size <= 0 {
        return u64::MAX;
    }
    let first = ((-hi) / 8) as u32;
    let last = ((-lo - 1) / 8) as u32;
    let n = last - first + 1;
    let ones = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    ones << first
}

/// A whole slot written by an 8-byte store at `off`, as a mask.
fn slot_written(off: i32, size: i32) -> u64 {
    if size == 8 && off % 8 == 0 && (-512..0).contains(&off) {
        1 << ((-off - 1) / 8)
    } else {
        0
    }
}

/// The kernel's stack liveness (`REG_LIVE_READ` on stack slots,
/// `clean_func_state`), statically: per instruction, the slots of the
/// running frame's own stack that some path may read before writing. A
/// slot no path reads cannot change what happens next, so pruning need not
/// compare it.
///
/// A forward pass first finds which registers hold `r10 + k` for a known
/// `k`. A read through such a register reads its slots; through any other
/// register that may point into the frame (a pointer filled from the
/// stack, or `r10` plus a variable), every slot; through a register that
/// cannot (the context, a map value, a helper's result), none. A helper
/// may read everything above a stack pointer it is given; a call of a BPF
/// function may read the whole frame. Only an aligned 8-byte store writes
/// a whole slot.
pub fn stack_liveness(prog: &[Option<Insn>], entry_known: bool) -> Vec<u64> {
    let n = prog.len();
    if n == 0 {
        return Vec::new();
    }
    // Forward: what each register holds at the start of each slot.
    let mut at: Vec<Option<[FrameRef; 11]>> = vec![None; n];
    let mut entry = [FrameRef::Not; 11];
    entry[10] = FrameRef::At(0);
    if !entry_known {
        entry[1..10].fill(FrameRef::Any);
    }
    at[0] = Some(entry);
    // Subprograms and callbacks start with their caller's pointers, which
    // are never into their own frame.
    let mut callee = [FrameRef::Not; 11];
    callee[10] = FrameRef::At(0);
    for (pc, insn) in prog.iter().enumerate() {
        let t = match insn {
            Some(Insn::Call(CallTarget::Local(off))) => pc as i64 + 1 + *off as i64,
            Some(Insn::LdImm64 {
                imm: bpfkit_isa::Imm64::Func(off),
                ..
            }) => pc as i64 + 1 + *off as i64,
            _ => continue,
        };
        if let Ok(t) = usize::try_from(t) {
            if t < n && t != 0 {
                at[t] = Some(callee);
            }
        }
    }
    let mut work: Vec<usize> = (0..n).filter(|&pc| at[pc].is_some()).collect();
    while let Some(pc) = work.pop() {
        let (Some(insn), Some(regs)) = (&prog[pc], at[pc]) else {
            continue;
        };
        let out = frame_refs_after(insn, regs);
        for s in successors(pc, insn, n) {
            let merged = match at[s] {
                None => out,
                Some(old) => core::array::from_fn(|r| old[r].join(out[r])),
            };
            if at[s] != Some(merged) {
                at[s] = Some(merged);
                work.push(s);
            }
        }
    }
    // Backward: the slots read before written.
    backward(prog, |pc, insn, live: &[u64], succs| {
        let regs = at[pc].unwrap_or([FrameRef::Any; 11]);
        let out = succs.fold(0, |acc, s| acc | live[s]);
        stack_transfer(insn, &regs, out)
    })
}

/// The slots read through `base + off` for `size` bytes.
fn read_through(base: FrameRef, off: i16, size: i32) -> u64 {
    match base {
        FrameRef::Not => 0,
        FrameRef::At(k) => slot_mask(k + off as i32, size),
        FrameRef::Any => u64::MAX,
    }
}

fn stack_transfer(insn: &Insn, regs: &[FrameRef; 11], out: u64) -> u64 {
    let r = |reg: Reg| regs[reg.index() as usize];
    match *insn {
        Insn::Load { size, src, off, .. } => out | read_through(r(src), off, size.bytes() as i32),
        Insn::LoadSx { bits, src, off, .. } => {
            out | read_through(r(src), off, (bits.bits() / 8) as i32)
        }
        Insn::Store { size, dst, off, .. } | Insn::StoreImm { size, dst, off, .. } => {
            match r(dst) {
                FrameRef::At(k) => out & !slot_written(k + off as i32, size.bytes() as i32),
                _ => out,
            }
        }
        Insn::Atomic { dw, dst, off, .. } => {
            out | read_through(r(dst), off, if dw { 8 } else { 4 })
        }
        Insn::Call(CallTarget::Helper(_) | CallTarget::Kfunc { .. }) => {
            // A helper may read anything above a stack pointer it is given.
            regs[1..=5].iter().fold(out, |l, a| {
                l | match *a {
                    FrameRef::Not => 0,
                    FrameRef::At(k) => slot_mask(k, -k),
                    FrameRef::Any => u64::MAX,
                }
            })
        }
        // A BPF function may read the frame through any pointer it gets.
        Insn::Call(CallTarget::Local(_)) | Insn::Callx { .. } => u64::MAX,
        Insn::Exit => 0,
        _ => out,
    }
}

fn frame_refs_after(insn: &Insn, mut regs: [FrameRef; 11]) -> [FrameRef; 11] {
    let i = |reg: Reg| reg.index() as usize;
    match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let d = regs[i(dst)];
            regs[i(dst)] = match (op, src) {
                (AluOp::Mov, Operand::Reg(s)) if width == Width::W64 => regs[i(s)],
                (AluOp::Mov | AluOp::Movsx(_), Operand::Imm(_)) => FrameRef::Not,
                (AluOp::Add | AluOp::Sub, Operand::Imm(v)) if width == Width::W64 => match d {
                    FrameRef::At(k) => {
                        let k = if op == AluOp::Add { k + v } else { k - v };
                        if (-(1 << 20)..(1 << 20)).contains(&k) {
                            FrameRef::At(k)
                        } else {
                            FrameRef::Any
                        }
                    }
                    other => other,
                },
                (_, Operand::Reg(s)) => {
                    if d == FrameRef::Not && regs[i(s)] == FrameRef::Not {
                        FrameRef::Not
                    } else {
                        FrameRef::Any
                    }
                }
                _ => {
                    if d == FrameRef::Not {
                        FrameRef::Not
                    } else {
                        FrameRef::Any
                    }
                }
            };
        }
        Insn::Neg { dst, .. } | Insn::End { dst, .. } if regs[i(dst)] != FrameRef::Not => {
            regs[i(dst)] = FrameRef::Any;
        }
        Insn::LdImm64 { dst, .. } => regs[i(dst)] = FrameRef::Not,
        // A stack pointer is restored only by a fill from the stack.
        Insn::Load { dst, src, .. } | Insn::LoadSx { dst, src, .. } => {
            regs[i(dst)] = if regs[i(src)] == FrameRef::Not {
                FrameRef::Not
            } else {
                FrameRef::Any
            };
        }
        Insn::Atomic { op, dst, src, .. } => {
            let from_frame = regs[i(dst)] != FrameRef::Not;
            let fetched = if from_frame {
                FrameRef::Any
            } else {
                FrameRef::Not
            };
            match op {
                AtomicOp::Cmpxchg => regs[0] = regs[0].join(fetched),
                _ => regs[i(src)] = regs[i(src)].join(fetched),
            }
        }
        Insn::LdAbs { .. } | Insn::LdInd { .. } => regs[..6].fill(FrameRef::Not),
        Insn::Call(CallTarget::Helper(_) | CallTarget::Kfunc { .. }) => {
            regs[..6].fill(FrameRef::Not)
        }
        // A BPF function may return a pointer it was given.
        Insn::Call(CallTarget::Local(_)) | Insn::Callx { .. } => {
            regs[..6].fill(FrameRef::Not);
            regs[0] = FrameRef::Any;
        }
        _ => {}
    }
    regs
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfkit_isa::MemSize;

    fn mov(dst: Reg, src: Operand) -> Insn {
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst,
            src,
        }
    }

    fn slots(p: Vec<Insn>) -> Vec<Option<Insn>> {
        p.into_iter().map(Some).collect()
    }

    #[test]
    fn a_register_written_before_it_is_read_is_dead() {
        // 0: r1 = 1; 1: r2 = r1; 2: r0 = 0; 3: exit
        let p = slots(vec![
            mov(Reg::R1, Operand::Imm(1)),
            mov(Reg::R2, Operand::Reg(Reg::R1)),
            mov(Reg::R0, Operand::Imm(0)),
            Insn::Exit,
        ]);
        let l = analyze(&p, true);
        assert!(!l[0].read.contains(1));
        // r1 is copied at 1, but into r2, which nothing reads.
        assert!(!l[1].read.contains(1));
        assert!(!l[2].read.contains(1) && !l[2].read.contains(0));
        assert!(l[3].read.contains(0) && l[3].precise.contains(0));
    }

    #[test]
    fn a_value_stored_to_memory_is_precise_until_the_store_and_free_after() {
        // 0: r2 = r1 (an unknown)  1: *(u64 *)(r6 + 0) = r2  2: r0 = 0  3: exit
        let p = slots(vec![
            mov(Reg::R2, Operand::Reg(Reg::R1)),
            Insn::Store {
                size: MemSize::DW,
                dst: Reg::R6,
                src: Reg::R2,
                off: 0,
            },
            mov(Reg::R0, Operand::Imm(0)),
            Insn::Exit,
        ]);
        let l = analyze(&p, true);
        assert!(l[0].precise.contains(1));
        assert!(l[1].precise.contains(2));
        assert!(!l[2].read.contains(2));
    }

    #[test]
    fn a_scalar_only_copied_into_dead_registers_is_imprecise_but_a_compared_one_is_not() {
        // 0: r3 = r1  1: r3 += 1 (a scalar op on a value nothing decides on)
        // 2: if r4 > 5 goto 4  3: r0 = 0  4: r0 = 1  5: exit
        let p = slots(vec![
            mov(Reg::R3, Operand::Reg(Reg::R1)),
            Insn::Alu {
                width: Width::W32,
                op: AluOp::Add,
                dst: Reg::R3,
                src: Operand::Imm(1),
            },
            Insn::Jmp {
                width: Width::W64,
                cond: bpfkit_isa::JmpCond::Gt,
                dst: Reg::R4,
                src: Operand::Imm(5),
                off: 1,
            },
            mov(Reg::R0, Operand::Imm(0)),
            mov(Reg::R0, Operand::Imm(1)),
            Insn::Exit,
        ]);
        let l = analyze(&p, true);
        assert!(l[1].read.contains(3) && !l[1].precise.contains(3));
        assert!(l[0].precise.contains(4) && !l[0].precise.contains(1));
    }

    fn asm(src: &str) -> Vec<Option<Insn>> {
        let mut out = Vec::new();
        for i in bpfkit_isa::assemble(src, bpfkit_isa::Syntax::Llvm).unwrap() {
            out.push(Some(i));
            if i.slots() == 2 {
                out.push(None);
            }
        }
        out
    }

    #[test]
    fn a_slot_written_whole_before_every_read_is_dead_until_then() {
        // Slot 1 (fp-16) is written at 1 and read at 2; before 1 it is dead.
        let l = stack_liveness(
            &asm("r1 = 1\n*(u64 *)(r10 - 16) = r1\nr0 = *(u64 *)(r10 - 16)\nexit"),
            true,
        );
        assert_eq!(l[0] & 0b10, 0);
        assert_eq!(l[1] & 0b10, 0);
        assert_eq!(l[2], 0b10);
        assert_eq!(l[3], 0);
    }

    #[test]
    fn a_partial_write_does_not_kill_the_slot() {
        let l = stack_liveness(
            &asm("*(u32 *)(r10 - 8) = 1\nr0 = *(u64 *)(r10 - 8)\nexit"),
            true,
        );
        assert_eq!(l[0], 0b1);
    }

    #[test]
    fn a_helper_may_read_everything_above_the_pointer_it_gets() {
        // r2 = fp - 12 given to a helper: slots 0 and 1 (fp-16 .. fp-1).
        let l = stack_liveness(
            &asm("r2 = r10\nr2 += -12\nr1 = 0\ncall 1\nr0 = 0\nexit"),
            true,
        );
        assert_eq!(l[3], 0b11);
        assert_eq!(l[0], 0b11);
    }

    #[test]
    fn a_pointer_filled_from_the_stack_may_read_any_slot() {
        // The stack pointer spilled at 2 and filled at 3 reads through r3.
        let l = stack_liveness(
            &asm(
                "r2 = r10\nr2 += -40\n*(u64 *)(r10 - 8) = r2\nr3 = *(u64 *)(r10 - 8)\nr0 = *(u64 *)(r3 + 0)\nexit",
            ),
            true,
        );
        assert_eq!(l[4], u64::MAX);
        // A context field read through r1 reads no slot.
        let l = stack_liveness(&asm("r0 = *(u32 *)(r1 + 0)\nexit"), true);
        assert_eq!(l[0], 0);
        // Unless the entry state is not the kernel's: r1 may be anything.
        let l = stack_liveness(&asm("r0 = *(u32 *)(r1 + 0)\nexit"), false);
        assert_eq!(l[0], u64::MAX);
    }

    #[test]
    fn a_bpf_function_call_may_read_the_whole_frame() {
        let l = stack_liveness(
            &asm("call pc+2\nr0 = 0\nexit\nr0 = *(u64 *)(r1 + 0)\nexit"),
            true,
        );
        assert_eq!(l[0], u64::MAX);
        // The callee's own frame starts dead: its r1 is the caller's.
        assert_eq!(l[3], 0);
    }
}
