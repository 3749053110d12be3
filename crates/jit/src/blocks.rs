//! Straight-line blocks, shared by the back ends: the budget is counted
//! once per block, on entry.

use bpfkit_vm::engine::Op;

/// Whether a load or store ends its block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Accesses {
    /// It does: a fault is always its block's last instruction, so the
    /// whole block was rightly counted.
    EndBlocks,
    /// It does not: the back end gives back the rest of the block's count
    /// when one faults, and runs a block the budget cannot cover whole
    /// with a check before each access (a fault there comes first).
    InBlocks,
}

/// Which slots start a block: the entry, jump and call targets, and every
/// slot after an instruction that leaves straight-line code (a jump, call,
/// exit, anything that calls into the machine, and with
/// [`Accesses::EndBlocks`] a load or store). A program with `callx` or a
/// callback helper may call any slot, so there every instruction is a block.
pub(crate) fn leaders(ops: &[Op], accesses: Accesses) -> Vec<bool> {
    let n = ops.len();
    let every = ops
        .iter()
        .any(|op| matches!(op, Op::Callx(_) | Op::CallWithCallback(_)));
    let mut lead = vec![every; n];
    if n > 0 {
        lead[0] = true;
    }
    for (pc, op) in ops.iter().enumerate() {
        if *op == Op::LdImm64Tail {
            lead[pc] = false;
            continue;
        }
        if let Some(t) = target(op) {
            lead[t as usize] = true;
        }
        let next = pc + if is_wide(op) { 2 } else { 1 };
        let continues = straight(op) || (accesses == Accesses::InBlocks && is_load_store(op));
        if !continues && next < n {
            lead[next] = true;
        }
    }
    lead
}

pub(crate) fn is_wide(op: &Op) -> bool {
    matches!(
        op,
        Op::Lddw(..) | Op::LdFunc(..) | Op::LdMap(..) | Op::LdMapValue(..)
    )
}

/// Jump, call or function-address target of `op`.
pub(crate) fn target(op: &Op) -> Option<u32> {
    use Op::*;
    Some(match *op {
        Ja(t) | CallLocal(t) | LdFunc(_, t) => t,
        Jeq64I(_, _, t)
        | Jgt64I(_, _, t)
        | Jge64I(_, _, t)
        | Jset64I(_, _, t)
        | Jne64I(_, _, t)
        | Jsgt64I(_, _, t)
        | Jsge64I(_, _, t)
        | Jlt64I(_, _, t)
        | Jle64I(_, _, t)
        | Jslt64I(_, _, t)
        | Jsle64I(_, _, t) => t,
        Jeq64R(_, _, t)
        | Jgt64R(_, _, t)
        | Jge64R(_, _, t)
        | Jset64R(_, _, t)
        | Jne64R(_, _, t)
        | Jsgt64R(_, _, t)
        | Jsge64R(_, _, t)
        | Jlt64R(_, _, t)
        | Jle64R(_, _, t)
        | Jslt64R(_, _, t)
        | Jsle64R(_, _, t) => t,
        Jeq32I(_, _, t)
        | Jgt32I(_, _, t)
        | Jge32I(_, _, t)
        | Jset32I(_, _, t)
        | Jne32I(_, _, t)
        | Jsgt32I(_, _, t)
        | Jsge32I(_, _, t)
        | Jlt32I(_, _, t)
        | Jle32I(_, _, t)
        | Jslt32I(_, _, t)
        | Jsle32I(_, _, t) => t,
        Jeq32R(_, _, t)
        | Jgt32R(_, _, t)
        | Jge32R(_, _, t)
        | Jset32R(_, _, t)
        | Jne32R(_, _, t)
        | Jsgt32R(_, _, t)
        | Jsge32R(_, _, t)
        | Jlt32R(_, _, t)
        | Jle32R(_, _, t)
        | Jslt32R(_, _, t)
        | Jsle32R(_, _, t) => t,
        _ => return None,
    })
}

/// A plain load or store (`LDX`, `ST`, `STX`; not an atomic or a context
/// load, which call into the machine), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    /// The base register.
    pub(crate) base: u8,
    /// The offset from it.
    pub(crate) off: i16,
    /// Bytes accessed: 1, 2, 4 or 8.
    pub(crate) size: u8,
    /// What moves.
    pub(crate) kind: AccessKind,
}

/// What a load or store moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessKind {
    /// Memory into register `dst`, sign-extended when `signed`.
    Load { dst: u8, signed: bool },
    /// Register `src` into memory.
    Store(u8),
    /// An immediate into memory (its low bytes).
    StoreImm(u64),
}

impl Access {
    /// Whether it writes memory.
    pub(crate) fn stores(&self) -> bool {
        !matches!(self.kind, AccessKind::Load { .. })
    }
}

/// `op` decoded, if it is a plain load or store.
pub(crate) fn access(op: &Op) -> Option<Access> {
    use AccessKind::*;
    use Op::*;
    let load = |dst, base, off, size, signed| Access {
        base,
        off,
        size,
        kind: Load { dst, signed },
    };
    let store = |base, off, size, kind| Access {
        base,
        off,
        size,
        kind,
    };
    Some(match *op {
        Ldx8(d, s, o) => load(d, s, o, 1, false),
        Ldx16(d, s, o) => load(d, s, o, 2, false),
        Ldx32(d, s, o) => load(d, s, o, 4, false),
        Ldx64(d, s, o) => load(d, s, o, 8, false),
        Ldxs8(d, s, o) => load(d, s, o, 1, true),
        Ldxs16(d, s, o) => load(d, s, o, 2, true),
        Ldxs32(d, s, o) => load(d, s, o, 4, true),
        St8(b, o, v) => store(b, o, 1, StoreImm(v)),
        St16(b, o, v) => store(b, o, 2, StoreImm(v)),
        St32(b, o, v) => store(b, o, 4, StoreImm(v)),
        St64(b, o, v) => store(b, o, 8, StoreImm(v)),
        Stx8(b, s, o) => store(b, o, 1, Store(s)),
        Stx16(b, s, o) => store(b, o, 2, Store(s)),
        Stx32(b, s, o) => store(b, o, 4, Store(s)),
        Stx64(b, s, o) => store(b, o, 8, Store(s)),
        _ => return None,
    })
}

/// Whether `op` is a plain load or store ([`access`]).
pub(crate) fn is_load_store(op: &Op) -> bool {
    access(op).is_some()
}

/// Whether control always continues at the next instruction without
/// calling into the machine or touching memory.
pub(crate) fn straight(op: &Op) -> bool {
    use Op::*;
    if matches!(op, LdFunc(..)) {
        return true;
    }
    !is_load_store(op)
        && !matches!(
            op,
            Call(_)
                | CallWithCallback(_)
                | CallLocal(_)
                | Callx(_)
                | Exit
                | Ldx32Ctx(..)
                | Atomic(..)
                | LdAbs(..)
                | LdInd(..)
                | LdMap(..)
                | LdMapValue(..)
                | LdImm64Tail
        )
        && target(op).is_none()
}
