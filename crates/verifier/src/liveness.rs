//! Which registers matter at each instruction, for state pruning: a static,
//! backward pass before the walk, standing in for the kernel's two dynamic
//! mechanisms (kernel/bpf/verifier.c).
//!
//! - **Liveness** (`REG_LIVE_READ`, `clean_live_states`): a register that
//!   every path writes before it reads cannot change what happens next, so
//!   an old state prunes a new one whatever either holds there.
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
//! Both sets hold at the start of an instruction, for the frame executing
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

/// The registers that matter at the start of an instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Read before written on some path (else the value is dead).
    pub read: RegSet,
    /// Of those, the ones whose scalar value may decide something.
    pub precise: RegSet,
}

impl Live {
    /// Every register matters, as a precise value.
    pub const ALL: Live = Live {
        read: RegSet::ALL,
        precise: RegSet::ALL,
    };
}

/// [`Live`] for each slot of `prog` (`None` for lddw's second slot).
pub fn analyze(prog: &[Option<Insn>]) -> Vec<Live> {
    let n = prog.len();
    let mut live = vec![Live::default(); n];
    // Predecessors, so that a change is propagated only where it matters.
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
        let mut out = Live::default();
        for s in successors(pc, insn, n) {
            out.read = out.read.union(live[s].read);
            out.precise = out.precise.union(live[s].precise);
        }
        let new = transfer(insn, out);
        if new != live[pc] {
            live[pc] = new;
            for &p in &preds[pc] {
                if !queued[p] {
                    queued[p] = true;
                    work.push(p);
                }
            }
        }
    }
    live
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
    }
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
        let l = analyze(&p);
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
        let l = analyze(&p);
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
        let l = analyze(&p);
        assert!(l[1].read.contains(3) && !l[1].precise.contains(3));
        assert!(l[0].precise.contains(4) && !l[0].precise.contains(1));
    }
}
