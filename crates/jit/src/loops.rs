//! Strided loops: one-block loops whose loads and stores move through
//! memory by a constant step each iteration. The x86-64 back end gives
//! each a second, unchecked copy: after an iteration, it works out how
//! many more iterations stay inside their regions (the bounds check
//! hoisted out of the loop, as loop versioning does) and runs those with
//! host addresses in the base registers and no checks.

use crate::blocks::{access, target, AccessKind};
use bpfkit_vm::engine::Op;

/// A load or store of a strided loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StridedAccess {
    /// Its base register.
    pub(crate) base: u8,
    /// Its address minus the base register's value when the iteration
    /// starts (the base's own steps before it included).
    pub(crate) offset: i64,
    /// Bytes accessed.
    pub(crate) size: u64,
    /// Whether it writes.
    pub(crate) store: bool,
}

/// A one-block loop whose accesses the back end can check once for many
/// iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StridedLoop {
    /// Index of the block: its last instruction is a conditional jump
    /// back to its first.
    pub(crate) block: usize,
    /// Each base register with the bytes it moves per iteration (>= 0).
    pub(crate) bases: Vec<(u8, i64)>,
    /// The loads and stores, in order.
    pub(crate) accesses: Vec<StridedAccess>,
    /// When the loop only copies memory: its remaining iterations as one
    /// copy.
    pub(crate) copy: Option<CopyIdiom>,
}

/// A strided loop that does nothing but copy memory forward: a load (the
/// loop's `accesses[0]`), a store of the loaded register of the same size
/// (`accesses[1]`), each base stepped by that size, and a counter stepped
/// by a constant that the loop's jump compares with a bound. What is left
/// of it once its iteration count is known is one `memmove` (unless the
/// destination starts inside the source), as LLVM's LoopIdiomRecognize
/// turns such loops into a `memcpy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyIdiom {
    /// The register loaded and stored.
    pub(crate) value: u8,
    /// Whether the load sign-extends.
    pub(crate) signed: bool,
    /// Bytes per iteration (the access size, and each base's step).
    pub(crate) size: u64,
    /// The counter register.
    pub(crate) counter: u8,
    /// What the counter is stepped by (0 < step < 2^63).
    pub(crate) step: u64,
    /// What the loop's jump compares the counter with.
    pub(crate) bound: Bound,
    /// When the loop goes round again.
    pub(crate) again: Again,
}

/// The other side of a counted loop's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// A constant.
    Imm(u64),
    /// A register the loop does not write.
    Reg(u8),
}

/// When a counted loop goes round again, comparing the counter (unsigned,
/// 64 bits) with its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Again {
    /// `counter < bound`.
    Below,
    /// `counter <= bound`.
    AtMost,
    /// `counter != bound`.
    Unequal,
}

impl CopyIdiom {
    /// How many more iterations the loop runs from registers `regs` (its
    /// back edge just taken), or `None` when the counter would wrap
    /// around first (the unchecked copy then runs it iteration by
    /// iteration).
    pub(crate) fn trips(&self, regs: &[u64; 11]) -> Option<u64> {
        let counter = *regs.get(self.counter as usize)?;
        let bound = match self.bound {
            Bound::Imm(v) => v,
            Bound::Reg(r) => *regs.get(r as usize)?,
        };
        let k = self.step;
        // Iteration j (from 1) leaves the counter at counter + j * k and
        // goes round again while that passes the test.
        let trips = match self.again {
            Again::Below if counter < bound => (bound - counter).div_ceil(k),
            Again::AtMost if counter <= bound => (bound - counter) / k + 1,
            // The first j with j * k = bound - counter (mod 2^64) is the
            // quotient when k divides it without wrapping.
            Again::Unequal if (bound.wrapping_sub(counter)) % k == 0 => {
                bound.wrapping_sub(counter) / k
            }
            _ => return None,
        };
        counter.checked_add(trips.checked_mul(k)?)?;
        (trips > 0).then_some(trips)
    }
}

/// The strided loops among `blocks` (each a list of slots of `ops`).
///
/// A block qualifies when its last instruction is a conditional jump to
/// its first; everything before is ALU work (no division, which needs the
/// registers the unchecked copy counts in) and loads and stores through
/// base registers other than r10; and each base register is only ever
/// used as a base or stepped by a constant (`b += k`, `b -= k` with a
/// total step of at least 0). Only then can the unchecked copy hold host
/// addresses in the bases without any other instruction seeing them.
pub(crate) fn strided_loops(ops: &[Op], blocks: &[Vec<u32>]) -> Vec<StridedLoop> {
    blocks
        .iter()
        .enumerate()
        .filter_map(|(i, block)| strided(ops, i, block))
        .collect()
}

fn strided(ops: &[Op], index: usize, block: &[u32]) -> Option<StridedLoop> {
    let (&last, body) = block.split_last()?;
    let jump = ops[last as usize];
    // A conditional jump (`target` also names calls and function addresses).
    let conditional = !matches!(jump, Op::Ja(_) | Op::CallLocal(_) | Op::LdFunc(..));
    if !conditional || target(&jump) != Some(*block.first()?) {
        return None;
    }
    // The bases first: every other use of them is then refused.
    let mut bases: Vec<(u8, i64)> = Vec::new();
    for &pc in body {
        let op = ops[pc as usize];
        if let Some(a) = access(&op) {
            let base = a.base;
            if base == 10 {
                return None;
            }
            if !bases.iter().any(|&(b, _)| b == base) {
                bases.push((base, 0));
            }
        }
    }
    if bases.is_empty() {
        return None;
    }
    let base_set = bases.iter().fold(0u16, |set, &(b, _)| set | 1 << (b & 15));
    let is_base = |r: u8| base_set >> (r & 15) & 1 == 1;
    let mut accesses = Vec::new();
    for &pc in body {
        let op = ops[pc as usize];
        if let Some(a) = access(&op) {
            // A load into a base, or a base stored as a value, would see
            // or leak a host address.
            let value = match a.kind {
                AccessKind::Load { dst, .. } => Some(dst),
                AccessKind::Store(src) => Some(src),
                AccessKind::StoreImm(_) => None,
            };
            if value.is_some_and(is_base) {
                return None;
            }
            let moved = bases.iter().find(|(b, _)| *b == a.base)?.1;
            accesses.push(StridedAccess {
                base: a.base,
                offset: moved.checked_add(a.off as i64)?,
                size: a.size as u64,
                store: a.stores(),
            });
            continue;
        }
        match op {
            Op::Add64I(d, k) | Op::Sub64I(d, k) if is_base(d) => {
                let step = if matches!(op, Op::Add64I(..)) {
                    k as i64
                } else {
                    (k as i64).checked_neg()?
                };
                let entry = bases.iter_mut().find(|(b, _)| *b == d)?;
                entry.1 = entry.1.checked_add(step)?;
            }
            _ => {
                let regs = alu_regs(&op)?;
                if regs.iter().flatten().any(|&r| is_base(r)) {
                    return None;
                }
            }
        }
    }
    if jump_regs(&jump).iter().flatten().any(|&r| is_base(r)) {
        return None;
    }
    if bases.iter().any(|&(_, step)| step < 0) {
        return None;
    }
    let copy = copy_idiom(ops, body, jump, &bases, &accesses);
    Some(StridedLoop {
        block: index,
        bases,
        accesses,
        copy,
    })
}

/// The [`CopyIdiom`] a strided loop (already checked by [`strided`]) is,
/// if it is one.
fn copy_idiom(
    ops: &[Op],
    body: &[u32],
    jump: Op,
    bases: &[(u8, i64)],
    accesses: &[StridedAccess],
) -> Option<CopyIdiom> {
    let [load, store] = accesses else {
        return None;
    };
    let size = load.size;
    if load.store || !store.store || store.size != size {
        return None;
    }
    if bases.iter().any(|&(_, step)| step as u64 != size) {
        return None;
    }
    let mut value = None;
    let mut counter = None;
    for &pc in body {
        let op = ops[pc as usize];
        if let Some(a) = access(&op) {
            match a.kind {
                AccessKind::Load { dst, signed } => value = Some((dst, signed)),
                // The store must write what the load read.
                AccessKind::Store(src) if Some(src) == value.map(|v| v.0) => {}
                _ => return None,
            }
            continue;
        }
        match op {
            Op::Add64I(d, _) | Op::Sub64I(d, _) if bases.iter().any(|&(b, _)| b == d) => {}
            Op::Add64I(d, k) if counter.is_none() && (1..1 << 63).contains(&k) => {
                counter = Some((d, k))
            }
            _ => return None,
        }
    }
    let ((value, signed), (counter, step)) = (value?, counter?);
    if value == counter {
        return None;
    }
    use Op::*;
    let (bound, again) = match jump {
        Jlt64I(d, v, _) if d == counter => (Bound::Imm(v), Again::Below),
        Jle64I(d, v, _) if d == counter => (Bound::Imm(v), Again::AtMost),
        Jne64I(d, v, _) if d == counter => (Bound::Imm(v), Again::Unequal),
        Jlt64R(d, s, _) if d == counter => (Bound::Reg(s), Again::Below),
        Jle64R(d, s, _) if d == counter => (Bound::Reg(s), Again::AtMost),
        Jne64R(d, s, _) if d == counter => (Bound::Reg(s), Again::Unequal),
        Jne64R(s, d, _) if d == counter => (Bound::Reg(s), Again::Unequal),
        Jgt64R(s, d, _) if d == counter => (Bound::Reg(s), Again::Below),
        Jge64R(s, d, _) if d == counter => (Bound::Reg(s), Again::AtMost),
        _ => return None,
    };
    // The body writes only the bases, the counter and the value.
    if matches!(bound, Bound::Reg(r) if r == counter || r == value) {
        return None;
    }
    Some(CopyIdiom {
        value,
        signed,
        size,
        counter,
        step,
        bound,
        again,
    })
}

/// The registers an ALU instruction reads or writes, or `None` for
/// anything else (and for division and modulo).
fn alu_regs(op: &Op) -> Option<[Option<u8>; 2]> {
    use Op::*;
    Some(match *op {
        Add64I(d, _)
        | Sub64I(d, _)
        | Mul64I(d, _)
        | Or64I(d, _)
        | And64I(d, _)
        | Lsh64I(d, _)
        | Rsh64I(d, _)
        | Xor64I(d, _)
        | Mov64I(d, _)
        | Arsh64I(d, _)
        | Add32I(d, _)
        | Sub32I(d, _)
        | Mul32I(d, _)
        | Or32I(d, _)
        | And32I(d, _)
        | Lsh32I(d, _)
        | Rsh32I(d, _)
        | Xor32I(d, _)
        | Mov32I(d, _)
        | Arsh32I(d, _)
        | Neg64(d)
        | Neg32(d)
        | Le(d, _)
        | Swap(d, _)
        | Lddw(d, _) => [Some(d), None],
        Add64R(d, s)
        | Sub64R(d, s)
        | Mul64R(d, s)
        | Or64R(d, s)
        | And64R(d, s)
        | Lsh64R(d, s)
        | Rsh64R(d, s)
        | Xor64R(d, s)
        | Mov64R(d, s)
        | Arsh64R(d, s)
        | Add32R(d, s)
        | Sub32R(d, s)
        | Mul32R(d, s)
        | Or32R(d, s)
        | And32R(d, s)
        | Lsh32R(d, s)
        | Rsh32R(d, s)
        | Xor32R(d, s)
        | Mov32R(d, s)
        | Arsh32R(d, s)
        | Movsx64(d, s, _)
        | Movsx32(d, s, _) => [Some(d), Some(s)],
        _ => return None,
    })
}

/// The registers a conditional jump compares.
fn jump_regs(op: &Op) -> [Option<u8>; 2] {
    use Op::*;
    match *op {
        Jeq64I(d, ..)
        | Jgt64I(d, ..)
        | Jge64I(d, ..)
        | Jset64I(d, ..)
        | Jne64I(d, ..)
        | Jsgt64I(d, ..)
        | Jsge64I(d, ..)
        | Jlt64I(d, ..)
        | Jle64I(d, ..)
        | Jslt64I(d, ..)
        | Jsle64I(d, ..)
        | Jeq32I(d, ..)
        | Jgt32I(d, ..)
        | Jge32I(d, ..)
        | Jset32I(d, ..)
        | Jne32I(d, ..)
        | Jsgt32I(d, ..)
        | Jsge32I(d, ..)
        | Jlt32I(d, ..)
        | Jle32I(d, ..)
        | Jslt32I(d, ..)
        | Jsle32I(d, ..) => [Some(d), None],
        Jeq64R(d, s, _)
        | Jgt64R(d, s, _)
        | Jge64R(d, s, _)
        | Jset64R(d, s, _)
        | Jne64R(d, s, _)
        | Jsgt64R(d, s, _)
        | Jsge64R(d, s, _)
        | Jlt64R(d, s, _)
        | Jle64R(d, s, _)
        | Jslt64R(d, s, _)
        | Jsle64R(d, s, _)
        | Jeq32R(d, s, _)
        | Jgt32R(d, s, _)
        | Jge32R(d, s, _)
        | Jset32R(d, s, _)
        | Jne32R(d, s, _)
        | Jsgt32R(d, s, _)
        | Jsge32R(d, s, _)
        | Jlt32R(d, s, _)
        | Jle32R(d, s, _)
        | Jslt32R(d, s, _)
        | Jsle32R(d, s, _) => [Some(d), Some(s)],
        // Anything else compares nothing a base could be (the caller has
        // already required a conditional jump).
        _ => [None, None],
    }
}

/// How many iterations, starting with registers `regs`, keep every access
/// of `lp` inside the region its first iteration reaches, as `region(i)`
/// describes region index `i` (host address, loadable and storable bytes,
/// for regions the run owns). Also gives each base's host-minus-guest
/// delta, into `deltas` (by register). 0 when any access is outside or
/// not in an owned region, or one base reaches two regions.
pub(crate) fn safe_iterations(
    lp: &StridedLoop,
    regs: &[u64; 11],
    mut region: impl FnMut(usize) -> Option<(u64, u64, u64)>,
    deltas: &mut [u64; 11],
) -> u64 {
    let mut seen = [false; 11];
    let mut iterations = u64::MAX;
    for a in &lp.accesses {
        let b = a.base as usize & 15;
        let Some(&start) = regs.get(b) else {
            return 0;
        };
        let addr = start.wrapping_add(a.offset as u64);
        let index = (addr >> 32).wrapping_sub(1) as usize;
        let off = addr & 0xffff_ffff;
        let Some((host, loadable, storable)) = region(index) else {
            return 0;
        };
        let len = if a.store { storable } else { loadable };
        if off + a.size > len {
            return 0;
        }
        let delta = host.wrapping_sub(bpfkit_vm::region_base(index));
        if seen[b] && deltas[b] != delta {
            return 0;
        }
        seen[b] = true;
        deltas[b] = delta;
        let step = lp
            .bases
            .iter()
            .find(|&&(r, _)| r as usize == b)
            .map_or(0, |&(_, s)| s as u64);
        // Iteration k (from 0) reaches off + k * step + size; a base that
        // does not move stays in bounds for good.
        if let Some(more) = (len - a.size - off).checked_div(step) {
            iterations = iterations.min(more + 1);
        }
    }
    iterations
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfkit_isa::{assemble, Syntax};
    use bpfkit_vm::Program;

    fn loops(src: &str) -> Vec<StridedLoop> {
        let p = Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap();
        let ops = p.ops();
        let lead = crate::blocks::leaders(ops, crate::blocks::Accesses::InBlocks);
        let mut blocks: Vec<Vec<u32>> = Vec::new();
        for (pc, op) in ops.iter().enumerate() {
            if *op == Op::LdImm64Tail {
                continue;
            }
            if lead[pc] || blocks.is_empty() {
                blocks.push(Vec::new());
            }
            blocks.last_mut().unwrap().push(pc as u32);
        }
        strided_loops(ops, &blocks)
    }

    const COPY: &str = "
        r2 = r1
        r2 += 64
        r3 = 0
    copy:
        r4 = *(u64 *)(r1 + 0)
        *(u64 *)(r2 + 8) = r4
        r1 += 8
        r2 += 8
        r3 += 8
        if r3 < 64 goto copy
        exit";

    #[test]
    fn a_copy_loop_is_strided_with_each_base_and_offset() {
        let found = loops(COPY);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bases, vec![(1, 8), (2, 8)]);
        assert_eq!(
            found[0].accesses,
            vec![
                StridedAccess {
                    base: 1,
                    offset: 0,
                    size: 8,
                    store: false
                },
                StridedAccess {
                    base: 2,
                    offset: 8,
                    size: 8,
                    store: true
                },
            ]
        );
    }

    #[test]
    fn a_copy_loop_is_a_copy_idiom_counting_the_iterations_left() {
        let copy = loops(COPY)[0].copy.clone().expect("a copy idiom");
        assert_eq!(
            (copy.value, copy.signed, copy.size, copy.counter, copy.step),
            (4, false, 8, 3, 8)
        );
        assert_eq!((copy.bound, copy.again), (Bound::Imm(64), Again::Below));
        let at = |counter: u64| {
            let mut regs = [0; 11];
            regs[3] = counter;
            regs[5] = 64;
            regs
        };
        // After the first iteration (r3 = 8) seven are left; from 60, one
        // (to 68).
        assert_eq!(copy.trips(&at(8)), Some(7));
        assert_eq!(copy.trips(&at(60)), Some(1));
        for (from, to, expect) in [
            // `<=` runs once more at the bound.
            ("if r3 < 64", "if r3 <= 64", [Some(8), Some(1)]),
            // `!=` must meet the bound exactly: not from 60.
            ("if r3 < 64", "if r3 != 64", [Some(7), None]),
            // Bounds in a register, either side of the compare.
            ("if r3 < 64", "if r3 < r5", [Some(7), Some(1)]),
            ("if r3 < 64", "if r5 > r3", [Some(7), Some(1)]),
            ("if r3 < 64", "if r5 >= r3", [Some(8), Some(1)]),
            ("if r3 < 64", "if r5 != r3", [Some(7), None]),
        ] {
            let src = COPY.replace(from, to);
            let copy = loops(&src)[0].copy.clone().expect(to);
            assert_eq!([copy.trips(&at(8)), copy.trips(&at(60))], expect, "{to}");
        }
        // A counter past an `!=` bound meets it only after wrapping
        // around.
        let src = COPY.replace("if r3 < 64", "if r3 != 64");
        let copy = loops(&src)[0].copy.clone().unwrap();
        assert_eq!(copy.trips(&at(72)), None);
    }

    #[test]
    fn a_strided_loop_doing_more_than_copying_is_no_copy_idiom() {
        for (from, to) in [
            // The value changed on its way.
            ("*(u64 *)(r2 + 8) = r4", "r4 += 1\n*(u64 *)(r2 + 8) = r4"),
            // Another register stored, or a constant.
            ("*(u64 *)(r2 + 8) = r4", "*(u64 *)(r2 + 8) = r5"),
            ("*(u64 *)(r2 + 8) = r4", "*(u64 *)(r2 + 8) = 0"),
            // Sizes that differ, or a step that is not the size.
            ("*(u64 *)(r2 + 8) = r4", "*(u32 *)(r2 + 8) = r4"),
            ("r1 += 8", "r1 += 16"),
            // A second counter, or one stepped down.
            ("r3 += 8", "r3 += 8\nr5 += 1"),
            ("r3 += 8", "r3 += -8"),
            // Signed or 32-bit compares.
            ("if r3 < 64", "if r3 s< 64"),
            ("if r3 < 64", "if w3 < 64"),
            // A bound the loop writes.
            ("if r3 < 64", "if r3 < r4"),
        ] {
            let src = COPY.replace(from, to);
            assert_ne!(src, COPY);
            let found = loops(&src);
            assert!(found.iter().all(|l| l.copy.is_none()), "{to}");
        }
    }

    #[test]
    fn a_base_used_otherwise_is_refused() {
        for (from, to) in [
            // Compared by the loop's jump.
            ("if r3 < 64 goto copy", "if r1 < r3 goto copy"),
            // Read by other arithmetic.
            ("r3 += 8", "r3 += r1"),
            // Stored as a value.
            ("*(u64 *)(r2 + 8) = r4", "*(u64 *)(r2 + 8) = r1"),
            // Loaded into.
            ("r4 = *(u64 *)(r1 + 0)", "r2 = *(u64 *)(r1 + 0)"),
            // Stepped backwards, or by a register.
            ("r1 += 8", "r1 -= 8"),
            ("r2 += 8", "r2 += r3"),
            // Division needs the scratch registers.
            ("r3 += 8", "r3 += 8\nr3 /= 1"),
            // The frame pointer cannot hold a host address.
            ("*(u64 *)(r2 + 8) = r4", "*(u64 *)(r10 - 8) = r4"),
            // Not a conditional loop.
            ("if r3 < 64 goto copy", "goto copy"),
        ] {
            let src = COPY.replace(from, to);
            assert_ne!(src, COPY);
            assert_eq!(loops(&src), Vec::new(), "{to}");
        }
    }

    #[test]
    fn a_call_back_to_the_blocks_start_is_no_loop() {
        let src = "
            call sub
            exit
        sub:
            r6 = *(u8 *)(r1 + 7)
            r1 += 1
            call sub
            exit";
        assert_eq!(loops(src), Vec::new());
    }

    #[test]
    fn safe_iterations_stop_at_the_first_access_that_would_leave() {
        let lp = &loops(COPY)[0];
        let base = bpfkit_vm::region_base(0);
        let mut regs = [0; 11];
        regs[1] = base;
        regs[2] = base + 64;
        let mut deltas = [0; 11];
        // 128 bytes: the store at r2 + 8 (byte 72) reaches bytes 120..128
        // in its 7th iteration; the load would last 16.
        let region = |i: usize| (i == 0).then_some((0x1000, 128, 128));
        assert_eq!(safe_iterations(lp, &regs, region, &mut deltas), 7);
        assert_eq!(deltas[1], 0x1000u64.wrapping_sub(base));
        assert_eq!(deltas[2], deltas[1]);
        // One byte short: 6.
        let short = |i: usize| (i == 0).then_some((0x1000, 127, 127));
        assert_eq!(safe_iterations(lp, &regs, short, &mut deltas), 6);
        // Read-only: no store fits.
        let read_only = |i: usize| (i == 0).then_some((0x1000, 128, 0));
        assert_eq!(safe_iterations(lp, &regs, read_only, &mut deltas), 0);
        // A region the run does not own.
        assert_eq!(safe_iterations(lp, &regs, |_| None, &mut deltas), 0);
    }
}
