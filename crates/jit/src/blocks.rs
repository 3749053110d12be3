//! Straight-line blocks, shared by the back ends: the budget is counted
//! once per block, on entry.

use bpfkit_vm::engine::Op;

/// Which slots start a block: the entry, jump and call targets, and every
/// slot after an instruction that leaves straight-line code (a jump, call,
/// exit, memory access or anything that calls into the machine). A program
/// with `callx` or a callback helper may call any slot, so there every
/// instruction is a block.
pub(crate) fn leaders(ops: &[Op]) -> Vec<bool> {
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
        if !straight(op) && next < n {
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

/// Whether control always continues at the next instruction without
/// calling into the machine or touching memory.
pub(crate) fn straight(op: &Op) -> bool {
    use Op::*;
    if matches!(op, LdFunc(..)) {
        return true;
    }
    !matches!(
        op,
        Call(_)
            | CallWithCallback(_)
            | CallLocal(_)
            | Callx(_)
            | Exit
            | Ldx8(..)
            | Ldx16(..)
            | Ldx32(..)
            | Ldx32Ctx(..)
            | Ldx64(..)
            | Ldxs8(..)
            | Ldxs16(..)
            | Ldxs32(..)
            | St8(..)
            | St16(..)
            | St32(..)
            | St64(..)
            | Stx8(..)
            | Stx16(..)
            | Stx32(..)
            | Stx64(..)
            | Atomic(..)
            | LdAbs(..)
            | LdInd(..)
            | LdMap(..)
            | LdMapValue(..)
            | LdImm64Tail
    ) && target(op).is_none()
}
