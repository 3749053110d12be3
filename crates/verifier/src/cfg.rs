//! Control-flow checks before any state is explored (the kernel's
//! `check_subprogs` and `check_cfg`): subprogram boundaries, jump targets,
//! reachability, and where states are worth remembering for pruning.

use bpfkit_isa::{CallTarget, Imm64, Insn};

/// What the control-flow pass learnt about a program.
#[derive(Debug, Clone)]
pub struct Cfg {
    /// First slot of each subprogram, ascending; subprogram 0 starts at 0.
    pub subprogs: Vec<usize>,
    /// The subprogram of each slot.
    pub subprog_of: Vec<usize>,
    /// Slots where a state is remembered for pruning (`mark_prune_point`).
    pub prune: Vec<bool>,
    /// Static call edges: (caller subprogram, callee subprogram).
    pub calls: Vec<(usize, usize)>,
}

/// A control-flow error: the slot and the message.
pub type CfgError = (usize, String);

fn target(pc: usize, off: i32) -> i64 {
    pc as i64 + 1 + off as i64
}

/// Runs the checks over a slot-indexed program (`None` for the second slot of `lddw`).
pub fn check_cfg(prog: &[Option<Insn>], allow_loops: bool) -> Result<Cfg, CfgError> {
    let n = prog.len();
    if n == 0 {
        return Err((0, "the program has no instructions".into()));
    }
    let valid = |t: i64| t >= 0 && (t as usize) < n && prog[t as usize].is_some();
    // check_subprogs: entries are the targets of bpf-to-bpf calls and of function pointers.
    let mut subprogs = vec![0usize];
    for (pc, insn) in prog.iter().enumerate() {
        let Some(insn) = insn else { continue };
        let t = match insn {
            Insn::Call(CallTarget::Local(off)) => target(pc, *off),
            // `i + imm + 1`, as add_subprog_and_kfunc computes it.
            Insn::LdImm64 {
                imm: Imm64::Func(off),
                ..
            } => target(pc, *off),
            _ => continue,
        };
        if !valid(t) {
            return Err((
                pc,
                format!("call to invalid destination: insn {pc} calls {t}"),
            ));
        }
        subprogs.push(t as usize);
    }
    subprogs.sort_unstable();
    subprogs.dedup();
    let mut subprog_of = vec![0; n];
    let mut s = 0;
    for (pc, slot) in subprog_of.iter_mut().enumerate() {
        while s + 1 < subprogs.len() && subprogs[s + 1] <= pc {
            s += 1;
        }
        *slot = s;
    }
    // Jumps stay inside their subprogram; each subprogram ends in exit or a jump.
    let mut calls = Vec::new();
    for (pc, insn) in prog.iter().enumerate() {
        let Some(insn) = insn else { continue };
        match insn {
            Insn::Ja { .. } | Insn::Ja32 { .. } | Insn::Jmp { .. } => {
                let t = target(pc, insn.branch_offset().unwrap_or(0));
                if t < 0 || t as usize >= n {
                    return Err((pc, format!("jump out of range from insn {pc} to {t}")));
                }
                if prog[t as usize].is_none() {
                    return Err((pc, format!("jump to the middle of ldimm64 insn {}", t - 1)));
                }
                if subprog_of[t as usize] != subprog_of[pc] {
                    return Err((pc, format!("jump out of range from insn {pc} to {t}")));
                }
            }
            Insn::Call(CallTarget::Local(off)) => {
                let t = target(pc, *off) as usize;
                calls.push((subprog_of[pc], subprog_of[t]));
            }
            _ => {}
        }
    }
    for (i, &start) in subprogs.iter().enumerate() {
        let end = subprogs.get(i + 1).copied().unwrap_or(n);
        let mut last = end - 1;
        if prog[last].is_none() {
            last -= 1;
        }
        let _ = start;
        match prog[last] {
            Some(Insn::Exit | Insn::Ja { .. } | Insn::Ja32 { .. }) => {}
            _ => return Err((last, "last insn is not an exit or jmp".into())),
        }
    }
    // check_cfg: depth-first walk from insn 0; every slot must be reached.
    let mut prune = vec![false; n];
    for &s in &subprogs {
        prune[s] = true;
    }
    let mut seen = vec![0u8; n]; // 0 unseen, 1 on the DFS stack, 2 done
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    seen[0] = 1;
    while let Some(&mut (pc, ref mut k)) = stack.last_mut() {
        let insn = prog[pc].expect("walk visits instruction starts");
        let mut succ: Vec<usize> = Vec::with_capacity(2);
        match insn {
            Insn::Exit => {}
            Insn::Ja { .. } | Insn::Ja32 { .. } => {
                succ.push(target(pc, insn.branch_offset().unwrap_or(0)) as usize)
            }
            Insn::Jmp { off, .. } => {
                succ.push(pc + 1);
                succ.push(target(pc, off as i32) as usize);
            }
            Insn::Call(CallTarget::Local(off)) => {
                succ.push(pc + 1);
                succ.push(target(pc, off) as usize);
            }
            Insn::LdImm64 {
                imm: Imm64::Func(off),
                ..
            } => {
                succ.push(pc + 2);
                succ.push(target(pc, off) as usize);
            }
            i => succ.push(pc + i.slots()),
        }
        if *k < succ.len() {
            let t = succ[*k];
            *k += 1;
            if t >= n {
                return Err((pc, format!("jump out of range from insn {pc} to {t}")));
            }
            let is_branch = matches!(insn, Insn::Jmp { .. } | Insn::Ja { .. } | Insn::Ja32 { .. });
            if is_branch || matches!(insn, Insn::Call(_)) {
                prune[t] = true;
            }
            if let Insn::Call(_) = insn {
                prune[pc + 1] = true;
            }
            match seen[t] {
                0 => {
                    seen[t] = 1;
                    stack.push((t, 0));
                }
                1 if !allow_loops && !matches!(insn, Insn::Call(_)) => {
                    return Err((pc, format!("back-edge from insn {pc} to {t}")));
                }
                _ => {}
            }
        } else {
            seen[pc] = 2;
            stack.pop();
        }
    }
    for (pc, insn) in prog.iter().enumerate() {
        if insn.is_some() && seen[pc] == 0 {
            return Err((pc, format!("unreachable insn {pc}")));
        }
    }
    Ok(Cfg {
        subprogs,
        subprog_of,
        prune,
        calls,
    })
}
