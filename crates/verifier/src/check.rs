//! The path explorer and the per-instruction rules (the kernel's `do_check`
//! and the `check_*` functions it calls).

use crate::cfg::{check_cfg, Cfg};
use crate::ctx::{CtxLayout, FieldKind};
use crate::liveness::Live;
use crate::scalar::{Cond, Scalar};
use crate::state::{
    regsafe, same_values, subsumes, Fingerprint, Frame, IdMap, RegState, RegType, SlotByte, State,
    MAX_CALL_FRAMES, STACK_SIZE,
};
use crate::{disasm, Loaded, Rejection, Verdict, VerifyOptions};
use bpfkit_abi::{helper_proto, ArgType, AttachType, MapType, ProgramType, RetType};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Imm64, Insn, MemSize, Operand, Reg, Width};
use std::fmt::Write as _;

mod kfunc;

/// `BPF_COMPLEXITY_LIMIT_JMP_SEQ`: pending branches at once.
const MAX_PENDING: usize = 8192;
/// `BPF_MAX_VAR_OFF`: pointer offsets beyond this are refused.
const MAX_VAR_OFF: i64 = 1 << 29;
/// `MAX_PACKET_OFF`.
const MAX_PACKET_OFF: u64 = 0xffff;
/// States remembered per instruction before new ones are dropped. The
/// kernel has no cap and evicts by hit/miss counts, as bpfkit does too; the
/// cap bounds the comparisons per visit. It must exceed a loop's trip
/// count: a loop's states stay in progress (and unevictable) until its last
/// iteration is explored, and an iteration that finds no remembered state
/// cannot prune its other paths (64 made a 1,000-iteration loop with a
/// branch explode).
const MAX_STATES_PER_INSN: usize = 1024;

struct Checkpoint {
    state: State,
    /// What a state it prunes must match ([`Fingerprint::of_old`]).
    fingerprint: Fingerprint,
    /// States it pruned, and states it was compared with and did not.
    hits: u32,
    misses: u32,
    /// Dropped from its instruction's list, its state freed.
    evicted: bool,
    parent: Option<usize>,
    branches: u32,
}

struct Path {
    pc: usize,
    /// The last instruction on this path whose source line is a statement,
    /// not a closing brace (`usize::MAX` when none).
    prev: usize,
    state: State,
    cp: Option<usize>,
    trail: Trail,
}

/// A rule violation at the current instruction.
struct Fail(String);

type R<T> = Result<T, Fail>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(Fail(msg.into()))
}

enum Flow {
    Next,
    Goto(usize),
    /// Both ways are feasible: continue with the first, queue the second.
    Fork(usize, State, usize),
    /// The path ends here.
    End,
}

struct Env<'a> {
    prog: &'a Loaded,
    opts: &'a VerifyOptions,
    prog_type: ProgramType,
    ctx: CtxLayout,
    cfg: Cfg,
    /// The registers that matter at each slot, for pruning.
    live: Vec<Live>,
    cps: Vec<Checkpoint>,
    explored: Vec<Vec<usize>>,
    processed: u64,
    id_gen: u32,
    stack_depth: Vec<u32>,
    log: String,
    /// bpf_loop callback entries (pruned against in-progress states too).
    callback_entry: Vec<bool>,
    /// The registers at program exit, joined over every path that got there.
    exit_regs: Option<[RegState; 11]>,
    /// The instruction before the one being checked, on its path.
    prev_of_failure: usize,
    /// The state at the last entry of each callback call site.
    callback_states: std::collections::HashMap<usize, State>,
    /// Per slot: its source line is only a closing brace (a failure there
    /// is reported at the statement before it).
    closing_brace: Vec<bool>,
    /// Per slot: 1 while every memory access seen there was to the current
    /// frame's own stack, 2 once one was not (see `Verdict::stack_accesses`).
    own_stack: Vec<u8>,
}

pub(crate) fn run(
    prog_type: ProgramType,
    prog: &Loaded,
    opts: &VerifyOptions,
) -> Result<Verdict, Box<Rejection>> {
    let reject = |pc: usize, msg: String| {
        Box::new(Rejection {
            insn: pc,
            disasm: prog
                .slots
                .get(pc)
                .copied()
                .flatten()
                .map(|i| disasm(&i))
                .unwrap_or_default(),
            line: prog.lines.get(pc).cloned().flatten(),
            message: msg,
            state: String::new(),
            path: Vec::new(),
            processed_insns: 0,
            log: String::new(),
        })
    };
    let cfg = check_cfg(&prog.slots, !opts.unprivileged).map_err(|(pc, m)| reject(pc, m))?;
    let ctx = opts
        .ctx_layout
        .clone()
        .unwrap_or_else(|| CtxLayout::for_program(prog_type, prog.ctx_size));
    let n = prog.slots.len();
    let nsub = cfg.subprogs.len();
    let mut env = Env {
        prog,
        opts,
        prog_type,
        ctx,
        live: crate::liveness::analyze(&prog.slots, opts.entry.is_none()),
        cfg,
        cps: Vec::new(),
        explored: vec![Vec::new(); n],
        processed: 0,
        id_gen: 0,
        stack_depth: vec![0; nsub],
        log: String::new(),
        callback_entry: vec![false; n],
        callback_states: std::collections::HashMap::new(),
        prev_of_failure: usize::MAX,
        exit_regs: None,
        own_stack: vec![0; n],
        closing_brace: prog
            .lines
            .iter()
            .map(|l| l.as_ref().is_some_and(|l| l.text.trim() == "}"))
            .collect(),
    };
    let mut frame = Frame::new(0, 0);
    if let Some(entry) = &opts.entry {
        for (r, v) in &entry.regs {
            let map_typed = matches!(
                v.ty,
                RegType::ConstMapPtr | RegType::MapValue | RegType::MapKey
            );
            if *r > 10 || map_typed && v.aux as usize >= prog.maps.len() {
                return Err(reject(
                    0,
                    format!(
                        "entry state: r{r} refers to map {} but {} maps were given",
                        v.aux,
                        prog.maps.len()
                    ),
                ));
            }
            frame.regs[*r as usize] = *v;
        }
        for (off, b) in &entry.stack {
            if !(-(STACK_SIZE as i16)..0).contains(off) {
                return Err(reject(
                    0,
                    format!("entry state: stack offset {off} is outside [-512, -1]"),
                ));
            }
            let (s, i) = frame.byte(*off as i64);
            frame.slot_mut(s).bytes[i] = *b;
        }
    } else {
        frame.regs[1] = RegState::pointer(RegType::Ctx, 0);
    }
    let start = Path {
        pc: 0,
        state: State {
            frames: vec![frame],
            refs: Vec::new(),
            rcu_lock: None,
        },
        cp: None,
        trail: Trail::EMPTY,
        prev: usize::MAX,
    };
    let mut pending = vec![start];
    while let Some(path) = pending.pop() {
        if let Err((pc, msg, state, trail)) = env.explore(path, &mut pending) {
            let mut r = reject(pc, msg);
            // An exit's line is often the closing brace: the line of the
            // statement that led there says more (a `return` that leaks).
            let prev = env.prev_of_failure;
            let brace = r.line.as_ref().is_some_and(|l| l.text.trim() == "}");
            if brace && prev != usize::MAX {
                if let Some(l) = prog.lines.get(prev).cloned().flatten() {
                    r.line = Some(l);
                }
            }
            r.state = state.map(|s| describe(&s)).unwrap_or_default();
            r.path = trail;
            r.processed_insns = env.processed;
            r.log = std::mem::take(&mut env.log);
            return Err(r);
        }
    }
    if let Err((pc, msg)) = env.check_stack_depth() {
        let mut r = reject(pc, msg);
        r.processed_insns = env.processed;
        r.log = std::mem::take(&mut env.log);
        return Err(r);
    }
    Ok(Verdict {
        processed_insns: env.processed,
        total_states: env.cps.len(),
        stack_depth: env.stack_depth.clone(),
        exit_regs: env.exit_regs.map(|r| r.to_vec()),
        log: env.log,
        stack_accesses: env.own_stack.iter().map(|&k| k == 1).collect(),
    })
}

/// The innermost frame's registers and written stack slots, kernel log style.
pub(crate) fn describe(s: &State) -> String {
    let f = s.cur();
    let mut out = String::new();
    for (i, r) in f.regs.iter().enumerate() {
        if r.ty != RegType::NotInit {
            let _ = write!(out, "R{i}={r:?} ");
        }
    }
    for (i, slot) in f.slots().iter().enumerate() {
        let off = -(8 * (i as i64 + 1));
        if slot.bytes.iter().all(|b| *b == SlotByte::Spill) {
            let _ = write!(out, "fp{off}={:?} ", slot.spill);
        } else if slot.bytes.iter().any(|b| *b != SlotByte::Invalid) {
            let t: String = slot
                .bytes
                .iter()
                .map(|b| match b {
                    SlotByte::Invalid => '?',
                    SlotByte::Misc => 'm',
                    SlotByte::Zero => '0',
                    SlotByte::Spill => 'r',
                })
                .collect();
            let _ = write!(out, "fp{off}={t} ");
        }
    }
    if s.frames.len() > 1 {
        let _ = write!(out, "(frame {})", s.frames.len() - 1);
    }
    out.trim_end().to_string()
}

type PathErr = (usize, String, Option<State>, Vec<usize>);

fn bits(w: Width) -> u32 {
    match w {
        Width::W32 => 32,
        Width::W64 => 64,
    }
}

fn op_name(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div | AluOp::Sdiv => "/=",
        AluOp::Mod | AluOp::Smod => "%=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Arsh => "s>>=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::Movsx(_) => "=",
    }
}

fn size_range(bytes: u32) -> Scalar {
    if bytes >= 8 {
        Scalar::UNKNOWN
    } else {
        Scalar::urange(0, (1u64 << (bytes * 8)) - 1)
    }
}

impl Env<'_> {
    fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    fn line_str(&self, pc: usize) -> String {
        match self.prog.lines.get(pc).cloned().flatten() {
            Some(l) => l.to_string(),
            None => format!("insn {pc}"),
        }
    }

    /// Ends a path: its nearest checkpoint has one live branch fewer (`update_branch_counts`).
    fn finish(&mut self, mut cp: Option<usize>) {
        while let Some(i) = cp {
            let c = &mut self.cps[i];
            c.branches -= 1;
            if c.branches > 0 {
                break;
            }
            cp = c.parent;
        }
    }

    /// `is_state_visited`: true when `path` can stop here.
    fn is_state_visited(&mut self, path: &mut Path) -> R<bool> {
        let pc = path.pc;
        let uninit_ok = !self.opts.unprivileged;
        let live = &self.live[pc];
        let mut cur_bits = if self.explored[pc].is_empty() {
            None
        } else {
            Some(Fingerprint::bits_of(&path.state))
        };
        let mut evicted = false;
        for &ci in &self.explored[pc] {
            let c = &mut self.cps[ci];
            // Neither test below can pass when the fingerprints differ
            // (`same_values` needs every register equal).
            let may = cur_bits
                .as_mut()
                .is_some_and(|b| c.fingerprint.may_subsume(b, &path.state));
            if c.branches > 0 {
                if !may {
                    continue;
                }
                if self.callback_entry[pc] {
                    if subsumes(&c.state, &path.state, uninit_ok, live) {
                        return Ok(true);
                    }
                    continue;
                }
                if same_values(&c.state, &path.state) {
                    return fail(format!("infinite loop detected at insn {pc}"));
                }
                continue;
            }
            if may && subsumes(&c.state, &path.state, uninit_ok, live) {
                c.hits += 1;
                return Ok(true);
            }
            // `is_state_visited`'s eviction: a state that keeps failing
            // to prune is dropped, and its memory with it.
            c.misses += 1;
            if c.misses > c.hits * 3 + 3 {
                c.state = State::default();
                c.evicted = true;
                evicted = true;
            }
        }
        if evicted {
            let cps = &self.cps;
            self.explored[pc].retain(|&ci| !cps[ci].evicted);
        }
        // The kernel adds a state in a loop only every 100 instructions or
        // 20 jumps, since iterations differ; its lists are unbounded. Here
        // each list is capped (MAX_STATES_PER_INSN), which bounds the cost
        // of a long loop, and a state in each pass of a loop's body prunes
        // the other paths of that pass, which spacing them out loses.
        if self.explored[pc].len() < MAX_STATES_PER_INSN {
            self.cps.push(Checkpoint {
                fingerprint: Fingerprint::of_old(&path.state, &self.live[pc]),
                hits: 0,
                misses: 0,
                evicted: false,
                state: path.state.clone(),
                parent: path.cp,
                branches: 1,
            });
            let id = self.cps.len() - 1;
            self.explored[pc].push(id);
            path.cp = Some(id);
        }
        Ok(false)
    }

    fn explore(&mut self, mut path: Path, pending: &mut Vec<Path>) -> Result<(), PathErr> {
        loop {
            let pc = path.pc;
            self.prev_of_failure = path.prev;
            if self.cfg.prune[pc] {
                match self.is_state_visited(&mut path) {
                    Ok(true) => {
                        if self.opts.log {
                            let _ = writeln!(self.log, "{pc}: safe");
                        }
                        self.finish(path.cp);
                        return Ok(());
                    }
                    Ok(false) => {}
                    Err(Fail(m)) => return Err((pc, m, Some(path.state), path.trail.to_vec())),
                }
            }
            self.processed += 1;
            if self.processed > self.opts.max_insns {
                // Name the loop: the last jump taken, when it went back
                // (where the count runs out within the body says little).
                let back_edge = path.trail.last().filter(|&j| {
                    self.prog.slots[j].is_some_and(|i| match i {
                        Insn::Ja { off } | Insn::Jmp { off, .. } => off < 0,
                        Insn::Ja32 { imm } => imm < 0,
                        _ => false,
                    })
                });
                return Err((
                    back_edge.unwrap_or(pc),
                    format!(
                        "BPF program is too large. Processed {} insn (the kernel's limit is {}): {} \
                         may not terminate, or its bound is not known",
                        self.processed,
                        self.opts.max_insns,
                        match back_edge {
                            Some(j) => format!("the loop that jumps back at insn {j}"),
                            None => "a loop".to_string(),
                        }
                    ),
                    Some(path.state),
                    path.trail.to_vec(),
                ));
            }
            let insn =
                self.prog.slots[pc].expect("the CFG check keeps paths on instruction starts");
            let flow = match self.step(pc, &insn, &mut path.state) {
                Ok(f) => f,
                Err(Fail(m)) => return Err((pc, m, Some(path.state), path.trail.to_vec())),
            };
            if self.opts.log {
                let _ = writeln!(
                    self.log,
                    "{pc}: {} ; {}",
                    disasm(&insn),
                    describe(&path.state)
                );
            }
            if !self.closing_brace[pc] {
                path.prev = pc;
            }
            match flow {
                Flow::Next => path.pc = pc + insn.slots(),
                Flow::Goto(t) => {
                    if t != pc + insn.slots() {
                        path.trail.push(pc);
                    }
                    path.pc = t;
                }
                Flow::Fork(first, other_state, other_pc) => {
                    if pending.len() >= MAX_PENDING {
                        return Err((
                            pc,
                            format!("The sequence of {MAX_PENDING} jumps is too complex."),
                            Some(path.state),
                            path.trail.to_vec(),
                        ));
                    }
                    if let Some(c) = path.cp {
                        self.cps[c].branches += 1;
                    }
                    let mut trail = path.trail;
                    trail.push(pc);
                    pending.push(Path {
                        prev: path.prev,
                        pc: other_pc,
                        state: other_state,
                        cp: path.cp,
                        trail,
                    });
                    if first != pc + insn.slots() {
                        path.trail.push(pc);
                    }
                    path.pc = first;
                }
                Flow::End => {
                    self.finish(path.cp);
                    return Ok(());
                }
            }
        }
    }

    // ---- register access (`check_reg_arg`) ----

    fn read(&self, s: &State, r: Reg) -> R<RegState> {
        let v = s.cur().regs[r.index() as usize];
        if v.ty == RegType::NotInit {
            return fail(format!(
                "R{} !read_ok: the register is read before anything is written to it",
                r.index()
            ));
        }
        Ok(v)
    }

    fn write(&self, s: &mut State, r: Reg, v: RegState) -> R<()> {
        if r == Reg::R10 {
            return fail("frame pointer is read only");
        }
        s.cur_mut().regs[r.index() as usize] = v;
        Ok(())
    }

    fn step(&mut self, pc: usize, insn: &Insn, s: &mut State) -> R<Flow> {
        match *insn {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => self.alu(s, width, op, dst, src).map(|_| Flow::Next),
            Insn::Neg { width, dst } => {
                let d = self.read(s, dst)?;
                if d.is_pointer() {
                    if self.opts.unprivileged {
                        return fail(format!(
                            "R{} pointer arithmetic with neg prohibited",
                            dst.index()
                        ));
                    }
                    return self.write(s, dst, RegState::unknown()).map(|_| Flow::Next);
                }
                let v = d.var.neg(bits(width));
                self.write(s, dst, RegState::scalar(v)).map(|_| Flow::Next)
            }
            Insn::End { kind, bits: b, dst } => {
                let d = self.read(s, dst)?;
                if d.is_pointer() && self.opts.unprivileged {
                    return fail(format!("R{} pointer arithmetic prohibited", dst.index()));
                }
                let n = b.bits();
                let v = match (kind, d.var.as_const()) {
                    (bpfkit_isa::Endian::ToLe, _) if !d.is_pointer() => d.var.truncate(n / 8),
                    (_, Some(c)) if !d.is_pointer() => {
                        let c = match n {
                            16 => (c as u16).swap_bytes() as u64,
                            32 => (c as u32).swap_bytes() as u64,
                            _ => c.swap_bytes(),
                        };
                        Scalar::constant(c)
                    }
                    _ => size_range(n / 8),
                };
                self.write(s, dst, RegState::scalar(v)).map(|_| Flow::Next)
            }
            Insn::Ja { off } => Ok(Flow::Goto((pc as i64 + 1 + off as i64) as usize)),
            Insn::Ja32 { imm } => Ok(Flow::Goto((pc as i64 + 1 + imm as i64) as usize)),
            Insn::Jmp {
                width,
                cond,
                dst,
                src,
                off,
            } => self.cond_jmp(
                pc,
                s,
                width,
                Cond::of(cond),
                dst,
                src,
                (pc as i64 + 1 + off as i64) as usize,
            ),
            Insn::Call(CallTarget::Helper(id)) => self.helper_call(pc, s, id),
            Insn::Call(CallTarget::Local(off)) => {
                let t = (pc as i64 + 1 + off as i64) as usize;
                self.push_frame(pc, s, t, false)?;
                Ok(Flow::Goto(t))
            }
            Insn::Call(CallTarget::Kfunc { btf_id, .. }) => self.kfunc_call(pc, s, btf_id),
            Insn::Callx { .. } => fail("indirect calls (callx) are not supported"),
            Insn::Exit => self.exit(pc, s),
            Insn::LdImm64 { dst, imm } => {
                let v = self.ld_imm64(pc, imm)?;
                self.write(s, dst, v).map(|_| Flow::Next)
            }
            Insn::Load {
                size,
                dst,
                src,
                off,
            } => {
                let base = self.read(s, src)?;
                let v = self.mem_access(
                    pc,
                    s,
                    src,
                    base,
                    off as i64,
                    size.bytes() as u32,
                    Access::Read,
                )?;
                let v = v.unwrap_or_else(RegState::unknown);
                self.write(s, dst, v).map(|_| Flow::Next)
            }
            Insn::LoadSx {
                bits: b,
                dst,
                src,
                off,
            } => {
                let base = self.read(s, src)?;
                let bytes = b.bits() / 8;
                let v = self.mem_access(pc, s, src, base, off as i64, bytes, Access::Read)?;
                let v = match v {
                    Some(r) if r.ty == RegType::Scalar => {
                        RegState::scalar(r.var.sign_extend(b.bits()))
                    }
                    _ => RegState::scalar(Scalar::srange(
                        -(1i64 << (b.bits() - 1)),
                        (1i64 << (b.bits() - 1)) - 1,
                    )),
                };
                self.write(s, dst, v).map(|_| Flow::Next)
            }
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => {
                let base = self.read(s, dst)?;
                let v = self.read(s, src)?;
                self.mem_access(
                    pc,
                    s,
                    dst,
                    base,
                    off as i64,
                    size.bytes() as u32,
                    Access::Write(Some(v), src.index()),
                )?;
                Ok(Flow::Next)
            }
            Insn::StoreImm {
                size,
                dst,
                off,
                imm,
            } => {
                let base = self.read(s, dst)?;
                if base.ty == RegType::Ctx {
                    return fail(format!(
                        "BPF_ST stores into R{} ctx are not allowed",
                        dst.index()
                    ));
                }
                let v = RegState::scalar(
                    Scalar::constant(imm as i64 as u64).truncate(size.bytes() as u32),
                );
                let v = if size == MemSize::DW {
                    RegState::scalar(Scalar::constant(imm as i64 as u64))
                } else {
                    v
                };
                self.mem_access(
                    pc,
                    s,
                    dst,
                    base,
                    off as i64,
                    size.bytes() as u32,
                    Access::Write(Some(v), 255),
                )?;
                Ok(Flow::Next)
            }
            Insn::Atomic {
                dw,
                op,
                dst,
                src,
                off,
            } => self.atomic(pc, s, dw, op, dst, src, off),
            Insn::LdAbs { size, .. } | Insn::LdInd { size, .. } => {
                // check_ld_abs
                use ProgramType as P;
                if !matches!(self.prog_type, P::SocketFilter | P::SchedCls | P::SchedAct) {
                    return fail("BPF_LD_[ABS|IND] instructions not allowed for this program type");
                }
                if !s.refs.is_empty() {
                    return fail("BPF_LD_[ABS|IND] cannot be mixed with socket references");
                }
                if let Insn::LdInd { src, .. } = *insn {
                    self.read(s, src)?;
                }
                let r6 = self.read(s, Reg::R6)?;
                if r6.ty != RegType::Ctx {
                    return fail("at the time of BPF_LD_ABS|IND R6 != pointer to skb");
                }
                let f = s.cur_mut();
                for r in 1..=5 {
                    f.regs[r] = RegState::NOT_INIT;
                }
                f.regs[0] = RegState::scalar(size_range(size.bytes() as u32));
                Ok(Flow::Next)
            }
        }
    }

    fn ld_imm64(&mut self, pc: usize, imm: Imm64) -> R<RegState> {
        let map_ref = self.prog.map_refs.get(&pc).copied();
        let map_at = |idx: usize| -> R<()> {
            if idx >= self.prog.maps.len() {
                return fail(format!(
                    "invalid map index {idx} (have {} maps): the instruction refers to a map the program was not given",
                    self.prog.maps.len()
                ));
            }
            Ok(())
        };
        if let Some((idx, off)) = map_ref {
            return Ok(match off {
                None => RegState::pointer(RegType::ConstMapPtr, idx as u32),
                Some(o) => {
                    let m = &self.prog.maps[idx];
                    if o >= m.value_size.max(1) && m.value_size != 0 {
                        return fail(format!(
                            "invalid access to map value pointer, value_size={} off={o}",
                            m.value_size
                        ));
                    }
                    let mut r = RegState::pointer(RegType::MapValue, idx as u32);
                    r.off = o as i32;
                    r
                }
            });
        }
        Ok(match imm {
            Imm64::Value(v) => RegState::scalar(Scalar::constant(v)),
            Imm64::MapFd(i) | Imm64::MapIdx(i) => {
                map_at(i as usize)?;
                RegState::pointer(RegType::ConstMapPtr, i as u32)
            }
            Imm64::MapValue { fd, offset } | Imm64::MapIdxValue { idx: fd, offset } => {
                map_at(fd as usize)?;
                let m = &self.prog.maps[fd as usize];
                if offset >= m.value_size {
                    return fail(format!(
                        "invalid access to map value pointer, value_size={} off={offset}",
                        m.value_size
                    ));
                }
                let mut r = RegState::pointer(RegType::MapValue, fd as u32);
                r.off = offset as i32;
                r
            }
            Imm64::Func(_) if !self.prog.func_info => {
                return fail(
                    "missing btf func_info: function pointers (callbacks) need the program's BTF",
                );
            }
            // Relative to the slot after the first half, as the kernel's add_subprog reads it.
            Imm64::Func(off) => {
                RegState::pointer(RegType::Func, (pc as i64 + 1 + off as i64) as u32)
            }
            Imm64::BtfVar { .. } => RegState::pointer(RegType::BtfId, 0),
        })
    }

    // ---- ALU (`check_alu_op`, `adjust_reg_min_max_vals`, `adjust_ptr_min_max_vals`) ----

    fn alu(&mut self, s: &mut State, width: Width, op: AluOp, dst: Reg, src: Operand) -> R<()> {
        let w = bits(width);
        let srcv = match src {
            Operand::Imm(i) => {
                let v = if w == 32 {
                    i as u32 as u64
                } else {
                    i as i64 as u64
                };
                RegState::scalar(Scalar::constant(v))
            }
            Operand::Reg(r) => self.read(s, r)?,
        };
        if let AluOp::Mov | AluOp::Movsx(_) = op {
            let v = if srcv.is_pointer() {
                match (op, width) {
                    (AluOp::Mov, Width::W64) => srcv,
                    _ => {
                        if self.opts.unprivileged {
                            return fail(format!("R{} partial copy of pointer", dst.index()));
                        }
                        RegState::scalar(if w == 32 {
                            Scalar::urange(0, u32::MAX as u64)
                        } else {
                            Scalar::UNKNOWN
                        })
                    }
                }
            } else {
                let mut v = srcv;
                match (op, width) {
                    (AluOp::Mov, Width::W64) => {
                        // Copies share an id so a bounds check on one bounds both (`sync_linked_regs`).
                        if let Operand::Reg(r) = src {
                            if v.var.as_const().is_none() {
                                if v.id == 0 {
                                    v.id = self.new_id();
                                    s.cur_mut().regs[r.index() as usize].id = v.id;
                                }
                            } else {
                                v.id = 0;
                            }
                        }
                        v
                    }
                    (AluOp::Mov, Width::W32) => RegState::scalar(v.var.zext32()),
                    (AluOp::Movsx(b), Width::W64) => RegState::scalar(v.var.sign_extend(b.bits())),
                    (AluOp::Movsx(b), Width::W32) => {
                        RegState::scalar(v.var.zext32().sign_extend(b.bits()).zext32())
                    }
                    _ => unreachable!("only moves reach here"),
                }
            };
            return self.write(s, dst, v);
        }
        let d = self.read(s, dst)?;
        if let Operand::Imm(i) = src {
            if matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod) && i == 0 {
                return fail("div by zero");
            }
            if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) && (i < 0 || i as u32 >= w) {
                return fail(format!("invalid shift {i}"));
            }
        }
        if matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod)
            && !self.opts.allow_div_by_zero
        {
            if srcv.is_pointer() {
                return fail("Only numbers can be used as divisors");
            }
            let zero_possible = if w == 32 {
                srcv.var.u32min == 0
            } else {
                srcv.var.umin == 0
            };
            if zero_possible {
                return fail("Possible division by zero");
            }
        }
        let v = if d.is_pointer() || srcv.is_pointer() {
            self.ptr_alu(s, width, op, dst, d, srcv)?
        } else {
            RegState::scalar(d.var.alu(op, &srcv.var, w))
        };
        self.write(s, dst, v)
    }

    fn ptr_alu(
        &mut self,
        _s: &mut State,
        width: Width,
        op: AluOp,
        dst: Reg,
        d: RegState,
        src: RegState,
    ) -> R<RegState> {
        let dn = dst.index();
        if d.is_pointer() && src.is_pointer() {
            if op == AluOp::Sub && !self.opts.unprivileged {
                return Ok(RegState::unknown());
            }
            return fail(format!("R{dn} pointer {} pointer prohibited", op_name(op)));
        }
        let (ptr, off, scalar_is_dst) = if d.is_pointer() {
            (d, src, false)
        } else {
            (src, d, true)
        };
        // A BTF-typed value may be a number as well as a kernel pointer: what
        // the kernel refuses on a pointer becomes an unknown number here.
        if ptr.ty == RegType::BtfId
            && !self.opts.unprivileged
            && (width == Width::W32
                || !matches!(op, AluOp::Add | AluOp::Sub)
                || scalar_is_dst && op == AluOp::Sub)
        {
            return Ok(RegState::unknown());
        }
        if width == Width::W32 {
            if op == AluOp::Sub && !self.opts.unprivileged {
                return Ok(RegState::unknown());
            }
            return fail(format!("R{dn} 32-bit pointer arithmetic prohibited"));
        }
        let name = ptr.ty.name(ptr.maybe_null);
        if ptr.maybe_null {
            return fail(format!(
                "R{dn} pointer arithmetic on {name} prohibited, null-check it first"
            ));
        }
        let known = off.var.as_const().map(|c| c as i64);
        match ptr.ty {
            RegType::Ctx
            | RegType::MapValue
            | RegType::MapKey
            | RegType::Stack
            | RegType::PacketMeta
            | RegType::Packet
            | RegType::BtfId
            | RegType::Mem
            | RegType::Func => {}
            RegType::ConstMapPtr if known == Some(0) && op == AluOp::Add => {}
            _ => return fail(format!("R{dn} pointer arithmetic on {name} prohibited")),
        }
        if let Some(k) = known {
            if k >= MAX_VAR_OFF || k <= -MAX_VAR_OFF {
                return fail(format!(
                    "math between {name} pointer and {k} is not allowed"
                ));
            }
        } else if off.var.smin <= -MAX_VAR_OFF {
            return fail(format!(
                "value {} makes {name} pointer be out of bounds",
                off.var.smin
            ));
        }
        let mut r = ptr;
        match op {
            AluOp::Add | AluOp::Sub => {
                if op == AluOp::Sub {
                    if scalar_is_dst {
                        return fail(format!("R{dn} tried to subtract pointer from scalar"));
                    }
                    if ptr.ty == RegType::Stack && known.is_none() {
                        return fail(format!("R{dn} subtraction from stack pointer prohibited"));
                    }
                }
                let k = known.map(|k| {
                    if op == AluOp::Sub {
                        k.wrapping_neg()
                    } else {
                        k
                    }
                });
                match k {
                    Some(k) if (ptr.off as i64 + k) == (ptr.off as i64 + k) as i32 as i64 => {
                        r.off = (ptr.off as i64 + k) as i32;
                    }
                    _ => {
                        r.var = ptr.var.alu(op, &off.var, 64);
                        if matches!(ptr.ty, RegType::Packet | RegType::PacketMeta) {
                            r.id = self.new_id();
                            r.range = 0;
                        }
                        if self.opts.unprivileged && ptr.ty == RegType::Stack {
                            return fail(format!(
                                "R{dn} variable stack access prohibited for !root"
                            ));
                        }
                    }
                }
            }
            AluOp::And | AluOp::Or | AluOp::Xor => {
                return fail(format!(
                    "R{dn} bitwise operator {} on pointer prohibited",
                    op_name(op)
                ))
            }
            _ => {
                return fail(format!(
                    "R{dn} pointer arithmetic with {} operator prohibited",
                    op_name(op)
                ))
            }
        }
        if r.off as i64 >= MAX_VAR_OFF || r.off as i64 <= -MAX_VAR_OFF {
            return fail(format!("{name} pointer offset {} is not allowed", r.off));
        }
        if r.var.smin <= -MAX_VAR_OFF || r.var.smax >= MAX_VAR_OFF && r.var.umax != u64::MAX {
            // check_reg_sane_offset on the result.
            if r.var.smin <= -MAX_VAR_OFF {
                return fail(format!(
                    "value {} makes {name} pointer be out of bounds",
                    r.var.smin
                ));
            }
        }
        Ok(r)
    }

    // ---- jumps (`check_cond_jmp_op`) ----

    #[allow(clippy::too_many_arguments)]
    fn cond_jmp(
        &mut self,
        pc: usize,
        s: &mut State,
        width: Width,
        cond: Cond,
        dst: Reg,
        src: Operand,
        target: usize,
    ) -> R<Flow> {
        let w = bits(width);
        let d = self.read(s, dst)?;
        let (sv, src_reg) = match src {
            Operand::Imm(i) => {
                let v = if w == 32 {
                    i as u32 as u64
                } else {
                    i as i64 as u64
                };
                (RegState::scalar(Scalar::constant(v)), None)
            }
            Operand::Reg(r) => (self.read(s, r)?, Some(r)),
        };
        let next = pc + 1;
        if !d.is_pointer() && !sv.is_pointer() {
            // The fall-through side continues in `s`; the state is copied
            // only when both sides are feasible.
            let t = Scalar::refine(&d.var, &sv.var, cond, w);
            let f = Scalar::refine(&d.var, &sv.var, cond.negate(), w);
            return Ok(match (t, f) {
                (Some((a, b)), Some((fa, fb))) => {
                    let mut taken = s.clone();
                    set_scalar(&mut taken, dst, a, src_reg, b);
                    set_scalar(s, dst, fa, src_reg, fb);
                    Flow::Fork(next, taken, target)
                }
                (Some((a, b)), None) => {
                    set_scalar(s, dst, a, src_reg, b);
                    Flow::Goto(target)
                }
                (None, Some((fa, fb))) => {
                    set_scalar(s, dst, fa, src_reg, fb);
                    Flow::Next
                }
                (None, None) => Flow::End,
            });
        }
        // Pointers: the fall-through side continues in `s`, the taken side
        // in a copy when both may happen.
        let null_cmp = w == 64 && matches!(cond, Cond::Eq | Cond::Ne);
        let (ptr, other) = if d.is_pointer() { (d, sv) } else { (sv, d) };
        let other_zero = other.is_const(0);
        if null_cmp && other_zero && ptr.maybe_null {
            // Null checks (`mark_ptr_or_null_regs`).
            let mut taken = s.clone();
            let (null_side, nonnull_side) = if cond == Cond::Eq {
                (&mut taken, &mut *s)
            } else {
                (&mut *s, &mut taken)
            };
            mark_ptr_or_null(null_side, ptr.id, true);
            mark_ptr_or_null(nonnull_side, ptr.id, false);
            return Ok(Flow::Fork(next, taken, target));
        }
        if null_cmp && other_zero && !matches!(ptr.ty, RegType::BtfId | RegType::Scalar) {
            // A non-NULL pointer is never 0 (`is_branch_taken`).
            return Ok(if cond == Cond::Ne {
                Flow::Goto(target)
            } else {
                Flow::Next
            });
        }
        if d.is_pointer() && sv.is_pointer() {
            let mut taken = s.clone();
            self.pkt_compare(&mut taken, s, cond, &d, &sv, w)?;
            return Ok(Flow::Fork(next, taken, target));
        }
        if self.opts.unprivileged {
            return fail(format!("R{} pointer comparison prohibited", dst.index()));
        }
        Ok(Flow::Fork(next, s.clone(), target))
    }

    /// `try_match_pkt_pointers` and `find_good_pkt_pointers`.
    fn pkt_compare(
        &self,
        taken: &mut State,
        fall: &mut State,
        cond: Cond,
        d: &RegState,
        sv: &RegState,
        w: u32,
    ) -> R<()> {
        if w != 64 {
            if self.opts.unprivileged {
                return fail("pointer comparison prohibited");
            }
            return Ok(());
        }
        let is_pkt = |r: &RegState| r.ty == RegType::Packet;
        let is_end = |r: &RegState| r.ty == RegType::PacketEnd;
        let is_meta = |r: &RegState| r.ty == RegType::PacketMeta;
        let init_pkt =
            |r: &RegState| r.ty == RegType::Packet && r.off == 0 && r.var.as_const() == Some(0);
        // (pointer being checked, the limit is on the right)
        let (reg, left) = if (is_pkt(d) && is_end(sv)) || (is_meta(d) && init_pkt(sv)) {
            (d, true)
        } else if (is_end(d) && is_pkt(sv)) || (init_pkt(d) && is_meta(sv)) {
            (sv, false)
        } else {
            if self.opts.unprivileged {
                return fail("pointer comparison prohibited");
            }
            return Ok(());
        };
        // Normalize to `reg OP limit`.
        let c = if left { cond } else { cond.swap() };
        match c {
            Cond::Gt => find_good_pkt_pointers(fall, reg, false),
            Cond::Ge => find_good_pkt_pointers(fall, reg, true),
            Cond::Lt => find_good_pkt_pointers(taken, reg, true),
            Cond::Le => find_good_pkt_pointers(taken, reg, false),
            _ => {}
        }
        Ok(())
    }

    // ---- memory (`check_mem_access`) ----

    #[allow(clippy::too_many_arguments)]
    fn mem_access(
        &mut self,
        pc: usize,
        s: &mut State,
        base_reg: Reg,
        base: RegState,
        insn_off: i64,
        size: u32,
        access: Access,
    ) -> R<Option<RegState>> {
        let rn = base_reg.index();
        let write = matches!(access, Access::Write(..));
        let value = match access {
            Access::Write(v, _) => v,
            Access::Read => None,
        };
        let value_reg = match access {
            Access::Write(_, r) => r,
            Access::Read => 255,
        };
        let leak = |what: &str| -> R<()> {
            if let Some(v) = value {
                if v.is_pointer() && self.opts.unprivileged {
                    return fail(format!("R{value_reg} leaks addr into {what}"));
                }
            }
            Ok(())
        };
        if base.maybe_null {
            let origin = if base.origin != 0 || base.ty != RegType::NotInit {
                format!(
                    ": the value returned by {} at {} is used without a NULL check",
                    helper_proto(base.aux_helper())
                        .map(|p| format!("bpf_{}", p.name))
                        .unwrap_or_else(|| "a helper".into()),
                    self.line_str(base.origin as usize)
                )
            } else {
                String::new()
            };
            return fail(format!(
                "R{rn} invalid mem access '{}': R{rn} may be NULL here{origin}",
                base.ty.name(true)
            ));
        }
        let off = base.off as i64 + insn_off;
        if base.ty != RegType::Stack {
            if let Some(k) = self.own_stack.get_mut(pc) {
                *k = 2;
            }
        }
        match base.ty {
            RegType::NotInit => fail(format!("R{rn} !read_ok")),
            RegType::Scalar => fail(format!(
                "R{rn} invalid mem access 'scalar': R{rn} holds a number, not a pointer"
            )),
            RegType::Ctx => {
                if base.off != 0 {
                    return fail(format!(
                        "dereference of modified ctx ptr R{rn} off={} disallowed",
                        base.off
                    ));
                }
                if base.var.as_const() != Some(0) {
                    return fail(format!(
                        "variable ctx access var_off={:?} disallowed",
                        base.var.var
                    ));
                }
                if let Some(v) = value {
                    if v.is_pointer() {
                        if self.opts.unprivileged {
                            return fail(format!("R{value_reg} leaks addr into ctx"));
                        }
                        if self.opts.ctx_layout.is_some() {
                            return fail("Cannot write to context pointer field");
                        }
                    }
                }
                let kind = self.ctx.access(off, size, write).map_err(|m| {
                    Fail(format!(
                        "{m} (the {} context of {} programs)",
                        self.ctx.name,
                        self.prog_type.name()
                    ))
                })?;
                Ok(Some(match kind {
                    FieldKind::Scalar => RegState::scalar(size_range(size)),
                    FieldKind::Packet => RegState::pointer(RegType::Packet, 0),
                    FieldKind::PacketEnd => RegState::pointer(RegType::PacketEnd, 0),
                    FieldKind::PacketMeta => RegState::pointer(RegType::PacketMeta, 0),
                    // tp_btf arguments are trusted (`prog_args_trusted`).
                    FieldKind::BtfArg => RegState {
                        trusted: true,
                        ..RegState::pointer(RegType::BtfId, 0)
                    },
                    FieldKind::BtfId => {
                        let mut r = RegState::pointer(RegType::BtfId, 0);
                        r.trusted = true;
                        r.maybe_null = true;
                        r.id = self.new_id();
                        r
                    }
                }))
            }
            RegType::Stack => {
                let r = self.stack_access(s, rn, &base, off, size, value, write)?;
                let own = base.aux as usize + 1 == s.frames.len();
                if let Some(k) = self.own_stack.get_mut(pc) {
                    *k = if own && *k != 2 { 1 } else { 2 };
                }
                Ok(r)
            }
            RegType::MapValue | RegType::MapKey => {
                leak("map")?;
                let m = &self.prog.maps[base.aux as usize];
                let limit = if base.ty == RegType::MapKey {
                    m.key_size
                } else {
                    m.value_size
                };
                let what = if base.ty == RegType::MapKey {
                    "map key"
                } else {
                    "map value"
                };
                self.region_check(rn, &base, off, size, limit as i64, |o, sz| {
                    format!(
                        "invalid access to {what}, value_size={limit} off={o} size={sz} (map {})",
                        m.name
                    )
                })?;
                if write && m.read_only {
                    return fail(format!(
                        "write into map forbidden, value_size={limit} off={off} size={size} (map {} is read-only)",
                        m.name
                    ));
                }
                if !write {
                    if let (Some(data), Some(v)) = (&m.frozen_data, base.var.as_const()) {
                        let o = (off + v as i64) as usize;
                        if o + size as usize <= data.len() {
                            let mut b = [0u8; 8];
                            b[..size as usize].copy_from_slice(&data[o..o + size as usize]);
                            return Ok(Some(RegState::scalar(Scalar::constant(
                                u64::from_le_bytes(b),
                            ))));
                        }
                    }
                }
                let _ = pc;
                Ok(Some(RegState::scalar(size_range(size))))
            }
            RegType::Mem => {
                leak("mem")?;
                let limit = base.aux as i64;
                self.region_check(rn, &base, off, size, limit, |o, sz| {
                    format!("invalid access to memory, mem_size={limit} off={o} size={sz}")
                })?;
                Ok(Some(RegState::scalar(size_range(size))))
            }
            RegType::Packet | RegType::PacketMeta => {
                leak("packet")?;
                use ProgramType as P;
                if write
                    && !matches!(
                        self.prog_type,
                        P::Xdp
                            | P::SchedCls
                            | P::SchedAct
                            | P::LwtXmit
                            | P::SkSkb
                            | P::SkMsg
                            | P::LwtSeg6local
                    )
                    && self.opts.ctx_layout.is_none()
                {
                    return fail(format!(
                        "cannot write into packet (R{rn}): {} programs may only read it",
                        self.prog_type.name()
                    ));
                }
                if base.var.smin < 0 {
                    return fail(format!(
                        "R{rn} min value is negative, either use unsigned index or do a if (index >=0) check."
                    ));
                }
                if off < 0 || off + size as i64 > base.range as i64 {
                    return fail(format!(
                        "invalid access to packet, off={off} size={size}, R{rn}(id={},off={},r={}): \
                         the bytes are not known to be inside the packet; compare the pointer with data_end first",
                        base.id, base.off, base.range
                    ));
                }
                Ok(Some(RegState::scalar(size_range(size))))
            }
            RegType::BtfId => {
                if write {
                    return fail(format!(
                        "only read is supported (R{rn} points to a kernel object)"
                    ));
                }
                // A u64 field of a kernel object may itself point to one (PTR_TO_BTF_ID walk).
                Ok(Some(if size == 8 {
                    RegState::pointer(RegType::BtfId, 0)
                } else {
                    RegState::scalar(size_range(size))
                }))
            }
            t => fail(format!("R{rn} invalid mem access '{}'", t.name(false))),
        }
    }

    /// `check_mem_region_access`: `[off + var, off + var + size)` inside `[0, limit)`.
    fn region_check(
        &self,
        rn: u8,
        base: &RegState,
        off: i64,
        size: u32,
        limit: i64,
        msg: impl Fn(i64, u32) -> String,
    ) -> R<()> {
        let v = &base.var;
        if v.smin < 0 && (v.smin == i64::MIN || off + v.smin < 0) {
            return fail(format!(
                "R{rn} min value is negative, either use unsigned index or do a if (index >=0) check."
            ));
        }
        let lo = off + v.smin.max(0);
        if lo < 0 || lo + size as i64 > limit {
            return fail(msg(lo, size));
        }
        if v.umax >= MAX_VAR_OFF as u64 {
            return fail(format!(
                "R{rn} unbounded memory access, make sure to bounds check any such access ({})",
                msg(off, size)
            ));
        }
        let hi = off + v.umax as i64;
        if hi + size as i64 > limit {
            return fail(format!(
                "{} (with the variable offset up to {}: R{rn} max value is outside of the allowed memory range)",
                msg(hi, size),
                v.umax
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn stack_access(
        &mut self,
        s: &mut State,
        rn: u8,
        base: &RegState,
        off: i64,
        size: u32,
        value: Option<RegState>,
        write: bool,
    ) -> R<Option<RegState>> {
        let frame_no = base.aux as usize;
        if frame_no >= s.frames.len() {
            return fail(format!(
                "R{rn} points into the stack of a function that has returned (frame {frame_no})"
            ));
        }
        let what = if write { "write to" } else { "read from" };
        let (lo, hi) = match base.var.as_const() {
            Some(c) => (off + c as i64, off + c as i64),
            None => {
                if base.var.smin <= -MAX_VAR_OFF || base.var.smax >= MAX_VAR_OFF {
                    return fail(format!(
                        "invalid unbounded variable-offset {what} stack R{rn}"
                    ));
                }
                (off + base.var.smin, off + base.var.smax)
            }
        };
        if lo < -(STACK_SIZE as i64) || hi + size as i64 > 0 {
            return fail(format!(
                "invalid {what} stack R{rn} off={lo} size={size}: the stack is {STACK_SIZE} bytes below the frame pointer"
            ));
        }
        if lo == hi && lo % size as i64 != 0 {
            return fail(format!("misaligned stack access off {lo} size {size}"));
        }
        let sub = s.frames[frame_no].subprog;
        self.stack_depth[sub] = self.stack_depth[sub].max((-lo) as u32);
        let uninit_ok = !self.opts.unprivileged;
        let frame = &mut s.frames[frame_no];
        if write {
            let v = value.expect("writes carry a value");
            if lo != hi {
                // check_stack_write_var_off
                if v.is_pointer() && self.opts.unprivileged {
                    return fail("spilled ptr in range of var-offset stack write");
                }
                for o in lo..hi + size as i64 {
                    let (sl, i) = frame.byte(o);
                    unspill(frame, sl);
                    let b = &mut frame.slot_mut(sl).bytes[i];
                    *b = if v.is_const(0) && *b == SlotByte::Zero {
                        SlotByte::Zero
                    } else {
                        SlotByte::Misc
                    };
                }
                return Ok(None);
            }
            let (sl, _) = frame.byte(lo);
            let aligned = lo % 8 == 0;
            if v.is_pointer() && size != 8 {
                return fail(format!(
                    "invalid size of register spill: a pointer (R{}) needs an 8-byte store",
                    rn
                ));
            }
            if aligned && size == 8 {
                let slot = frame.slot_mut(sl);
                slot.bytes = [SlotByte::Spill; 8];
                slot.spill = v;
                return Ok(None);
            }
            // A narrow scalar at the start of a slot is spilled too (save_register_state with size).
            if aligned && v.ty == RegType::Scalar && !v.is_const(0) {
                unspill(frame, sl);
                let slot = frame.slot_mut(sl);
                for b in slot.bytes[..size as usize].iter_mut() {
                    *b = SlotByte::Spill;
                }
                slot.spill = RegState::scalar(v.var.truncate(size));
                return Ok(None);
            }
            unspill(frame, sl);
            for o in lo..lo + size as i64 {
                let (sl, i) = frame.byte(o);
                frame.slot_mut(sl).bytes[i] = if v.is_const(0) {
                    SlotByte::Zero
                } else {
                    SlotByte::Misc
                };
            }
            return Ok(None);
        }
        // Reads.
        if lo == hi {
            let (sl, i) = frame.byte(lo);
            let slot = *frame.slot(sl);
            if slot.bytes.iter().all(|b| *b == SlotByte::Spill) {
                if size == 8 {
                    return Ok(Some(slot.spill));
                }
                if slot.spill.is_pointer() {
                    return fail(format!("invalid size of register fill: R{rn} off={lo} reads {size} bytes of a spilled pointer"));
                }
                if i == 0 {
                    return Ok(Some(RegState::scalar(slot.spill.var.truncate(size))));
                }
                return Ok(Some(RegState::scalar(size_range(size))));
            }
            let spilled = slot
                .bytes
                .iter()
                .take_while(|b| **b == SlotByte::Spill)
                .count();
            if i == 0
                && spilled == size as usize
                && slot.bytes[spilled..].iter().all(|b| *b != SlotByte::Spill)
            {
                return Ok(Some(slot.spill));
            }
        }
        let mut all_zero = true;
        for o in lo..hi + size as i64 {
            let (sl, i) = frame.byte(o);
            match frame.slot(sl).bytes[i] {
                SlotByte::Zero => {}
                SlotByte::Invalid if !uninit_ok => {
                    return fail(format!(
                        "invalid read from stack off {o} size {size}: the byte is read before it is written"
                    ));
                }
                SlotByte::Spill if frame.slot(sl).spill.is_pointer() && self.opts.unprivileged => {
                    return fail(format!("leaking pointer from stack off {o}"));
                }
                _ => all_zero = false,
            }
        }
        Ok(Some(RegState::scalar(if all_zero {
            Scalar::constant(0)
        } else {
            size_range(size)
        })))
    }

    #[allow(clippy::too_many_arguments)]
    fn atomic(
        &mut self,
        pc: usize,
        s: &mut State,
        dw: bool,
        op: AtomicOp,
        dst: Reg,
        src: Reg,
        off: i16,
    ) -> R<Flow> {
        let size = if dw { 8 } else { 4 };
        let base = self.read(s, dst)?;
        let v = self.read(s, src)?;
        if op == AtomicOp::Cmpxchg {
            self.read(s, Reg::R0)?;
        }
        if v.is_pointer() && self.opts.unprivileged {
            return fail(format!("R{} leaks addr into mem", src.index()));
        }
        if matches!(
            base.ty,
            RegType::Ctx | RegType::Packet | RegType::PacketMeta | RegType::BtfId
        ) {
            return fail(format!(
                "BPF_ATOMIC stores into R{} {} is not allowed",
                dst.index(),
                base.ty.name(false)
            ));
        }
        let old = self.mem_access(pc, s, dst, base, off as i64, size, Access::Read)?;
        if let Some(o) = old {
            if o.is_pointer() {
                return fail("atomic operation on a spilled pointer is not allowed");
            }
        }
        self.mem_access(
            pc,
            s,
            dst,
            base,
            off as i64,
            size,
            Access::Write(Some(RegState::unknown()), src.index()),
        )?;
        let result = RegState::scalar(if dw { Scalar::UNKNOWN } else { size_range(4) });
        match op {
            AtomicOp::Cmpxchg => self.write(s, Reg::R0, result)?,
            AtomicOp::Xchg
            | AtomicOp::Add { fetch: true }
            | AtomicOp::Or { fetch: true }
            | AtomicOp::And { fetch: true }
            | AtomicOp::Xor { fetch: true } => self.write(s, src, result)?,
            _ => {}
        }
        Ok(Flow::Next)
    }

    // ---- calls (`check_func_call`, `check_helper_call`, `prepare_func_exit`) ----

    fn push_frame(&mut self, pc: usize, s: &mut State, target: usize, callback: bool) -> R<()> {
        if s.frames.len() >= MAX_CALL_FRAMES {
            return fail(format!(
                "the call stack of {} frames is too deep !",
                s.frames.len() + 1
            ));
        }
        let sub = self.cfg.subprog_of[target];
        let mut f = Frame::new(s.frames.len() as u32, sub);
        f.callsite = pc;
        f.ret_pc = pc + 1;
        f.callback = callback;
        if !callback {
            let caller = s.cur();
            f.regs[1..=5].copy_from_slice(&caller.regs[1..=5]);
        }
        s.frames.push(f);
        Ok(())
    }

    fn exit(&mut self, pc: usize, s: &mut State) -> R<Flow> {
        let r0 = s.cur().regs[0];
        if s.frames.len() > 1 {
            let callee = s.frames.pop().expect("more than one frame");
            if r0.ty == RegType::NotInit {
                return fail("R0 !read_ok: the function returns without setting r0");
            }
            if r0.ty == RegType::Stack && r0.aux as usize == s.frames.len() {
                return fail("cannot return stack pointer to the caller");
            }
            let caller = s.cur_mut();
            if callee.callback {
                // The callback's r0 must be 0 (continue) or 1 (stop): `check_return_code` on callbacks.
                if r0.ty != RegType::Scalar || r0.var.umax > 1 {
                    return fail(format!(
                        "At callback return the register R0 has {r0:?} should have been in [0, 1]"
                    ));
                }
                caller.regs[0] = RegState::unknown();
            } else {
                caller.regs[0] = r0;
            }
            for r in 1..=5 {
                caller.regs[r] = RegState::NOT_INIT;
            }
            if callee.callback {
                // The callback may run again: explore another iteration as well.
                let mut again = s.clone();
                again.frames.last_mut().unwrap().regs[0] = RegState::NOT_INIT;
                let entry = self.callback_restart(&mut again, &callee)?;
                return Ok(Flow::Fork(callee.ret_pc, again, entry));
            }
            return Ok(Flow::Goto(callee.ret_pc));
        }
        if let Some(&(id, at)) = s.refs.first() {
            return fail(match self.prog.kfuncs.get(&at) {
                Some(name) => format!(
                    "Unreleased reference id={id} alloc_insn={at}: the reference from {name} at {} \
                     is not released on this path{}",
                    self.line_str(at),
                    kfunc::releaser_of(name)
                        .map(|r| format!(" (release it with {r})"))
                        .unwrap_or_default()
                ),
                None => format!(
                    "Unreleased reference id={id} alloc_insn={at}: the memory reserved by bpf_ringbuf_reserve at {} \
                     is neither submitted nor discarded on this path",
                    self.line_str(at)
                ),
            });
        }
        if let Some(at) = s.rcu_lock {
            return fail(format!(
                "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region: \
                 the lock taken at {} is not unlocked on this path",
                self.line_str(at)
            ));
        }
        if r0.ty == RegType::NotInit {
            return fail("R0 !read_ok: the program exits without setting r0");
        }
        if r0.is_pointer() && self.opts.unprivileged {
            return fail("R0 leaks addr as return value");
        }
        if let Some((lo, hi)) = self.return_range() {
            if r0.is_pointer() {
                return fail(format!(
                    "At program exit the register R0 is not a known value ({})",
                    r0.ty.name(r0.maybe_null)
                ));
            }
            if r0.var.smin < lo || r0.var.smax > hi {
                return fail(format!(
                    "At program exit the register R0 has {:?} should have been in [{lo}, {hi}]",
                    r0.var
                ));
            }
        }
        let _ = pc;
        let regs = s.cur().regs;
        self.exit_regs = Some(match self.exit_regs.take() {
            None => regs,
            Some(mut acc) => {
                for (a, r) in acc.iter_mut().zip(&regs) {
                    *a = join_reg(a, r);
                }
                acc
            }
        });
        Ok(Flow::End)
    }

    fn callback_restart(&mut self, s: &mut State, callee: &Frame) -> R<usize> {
        let entry = self.cfg.subprogs[callee.subprog];
        self.widen_for_callback(s, callee.callsite);
        self.push_frame(callee.callsite, s, entry, true)?;
        let f = s.cur_mut();
        f.ret_pc = callee.ret_pc;
        f.entry_args = callee.entry_args;
        f.regs[1..=5].copy_from_slice(&callee.entry_args);
        Ok(entry)
    }

    /// Before a callback runs again, scalars its callers hold that changed
    /// since the previous entry become unknown, so iterations converge. (The
    /// kernel gets there by ignoring scalars not marked precise; without
    /// precision tracking, widening what changes is the sound equivalent.)
    fn widen_for_callback(&mut self, s: &mut State, callsite: usize) {
        if let Some(prev) = self.callback_states.get(&callsite) {
            let n = prev.frames.len().min(s.frames.len());
            for (f, p) in s.frames[..n].iter_mut().zip(&prev.frames[..n]) {
                for (r, pr) in f.regs.iter_mut().zip(&p.regs) {
                    if r.ty == RegType::Scalar && r != pr {
                        *r = RegState::unknown();
                    }
                }
                for (i, slot) in f.slots_mut().iter_mut().enumerate() {
                    let ps = p.slot(i);
                    if slot.bytes.iter().all(|b| *b == SlotByte::Spill)
                        && slot.spill.ty == RegType::Scalar
                        && slot != ps
                    {
                        slot.spill = RegState::unknown();
                    } else if slot != ps && !slot.bytes.contains(&SlotByte::Spill) {
                        for (b, pb) in slot.bytes.iter_mut().zip(&ps.bytes) {
                            if *b == SlotByte::Zero && *pb != SlotByte::Zero {
                                *b = SlotByte::Misc;
                            }
                        }
                    }
                }
            }
        }
        self.callback_states.insert(callsite, s.clone());
    }

    /// `check_return_code`: the range r0 must be in at program exit.
    fn return_range(&self) -> Option<(i64, i64)> {
        use ProgramType as P;
        let at = self.prog.attach_type;
        match self.prog_type {
            P::CgroupSkb => Some(if at == Some(AttachType::CgroupInetEgress) {
                (0, 3)
            } else {
                (0, 1)
            }),
            P::CgroupSock | P::SockOps | P::CgroupDevice | P::CgroupSysctl | P::CgroupSockopt => {
                Some((0, 1))
            }
            P::CgroupSockAddr => Some(match at {
                Some(AttachType::CgroupInet4Bind | AttachType::CgroupInet6Bind) => (0, 3),
                Some(
                    AttachType::CgroupUdp4Recvmsg
                    | AttachType::CgroupUdp6Recvmsg
                    | AttachType::CgroupInet4Getpeername
                    | AttachType::CgroupInet6Getpeername
                    | AttachType::CgroupInet4Getsockname
                    | AttachType::CgroupInet6Getsockname,
                ) => (1, 1),
                _ => (0, 1),
            }),
            P::SkLookup | P::Netfilter => Some((0, 1)),
            P::Lsm => Some((-4095, 0)),
            P::Tracing => match at {
                Some(AttachType::TraceFentry | AttachType::TraceFexit) => Some((0, 0)),
                _ => None,
            },
            _ => None,
        }
    }

    /// `release_reference`: the reference is gone, and so is every pointer
    /// that held it.
    fn release_reference(&self, s: &mut State, ref_id: u32) -> R<()> {
        if !s.refs.iter().any(|(i, _)| *i == ref_id) {
            return fail("release of an unacquired reference");
        }
        s.refs.retain(|(i, _)| *i != ref_id);
        let priv_ = !self.opts.unprivileged;
        s.for_each_reg(|r| {
            if r.ref_obj_id == ref_id {
                *r = if priv_ {
                    RegState::unknown()
                } else {
                    RegState::NOT_INIT
                };
            }
        });
        Ok(())
    }

    fn helper_call(&mut self, pc: usize, s: &mut State, id: i32) -> R<Flow> {
        let Some(proto) = helper_proto(id) else {
            return fail(format!(
                "invalid func unknown#{id}: bpfkit does not know this helper"
            ));
        };
        let name = proto.name;
        if !proto.group.allows(self.prog_type) && self.opts.ctx_layout.is_none() {
            return fail(format!(
                "unknown func bpf_{name}#{id}: {} programs cannot call it",
                self.prog_type.name()
            ));
        }
        if proto.gpl_only && !self.prog.gpl {
            return fail(format!(
                "cannot call GPL-restricted function bpf_{name}#{id} from non-GPL compatible program"
            ));
        }
        // The argument registers only: a frame's registers are 1 KiB.
        let regs: [RegState; 6] = core::array::from_fn(|i| s.cur().regs[i]);
        let mut map: Option<usize> = None;
        let mut release: Option<u32> = None;
        let mut callback: Option<usize> = None;
        let mut ringbuf_size = 0u32;
        let mut const_key: Option<u64> = None;
        for (i, &arg) in proto.args.iter().enumerate() {
            let rn = i + 1;
            let r = regs[rn];
            if arg == ArgType::DontCare {
                break;
            }
            if r.ty == RegType::NotInit {
                return fail(format!(
                    "R{rn} !read_ok: argument {rn} of bpf_{name} is not set"
                ));
            }
            let ty_err = |expected: &str| -> Fail {
                Fail(format!(
                    "R{rn} type={} expected={expected} (argument {rn} of bpf_{name})",
                    r.ty.name(r.maybe_null)
                ))
            };
            let mem_like = |r: &RegState| {
                !r.maybe_null
                    && matches!(
                        r.ty,
                        RegType::Stack
                            | RegType::MapValue
                            | RegType::MapKey
                            | RegType::Packet
                            | RegType::PacketMeta
                            | RegType::Mem
                    )
            };
            match arg {
                ArgType::DontCare => {}
                ArgType::Anything => {
                    if r.is_pointer() && self.opts.unprivileged {
                        return fail(format!("R{rn} leaks addr into helper function"));
                    }
                }
                ArgType::ConstMapPtr => {
                    if r.ty != RegType::ConstMapPtr {
                        return Err(ty_err("map_ptr"));
                    }
                    map = Some(r.aux as usize);
                    self.check_map_compat(id, name, r.aux as usize)?;
                }
                ArgType::MapKey | ArgType::MapValue | ArgType::UninitMapValue => {
                    let m =
                        map.ok_or_else(|| Fail(format!("R{rn}: bpf_{name} needs a map in R1")))?;
                    if !mem_like(&r) {
                        return Err(ty_err("fp, pkt, pkt_meta, map_key, map_value"));
                    }
                    let info = &self.prog.maps[m];
                    let sz = if arg == ArgType::MapKey {
                        info.key_size
                    } else {
                        info.value_size
                    };
                    let write = arg == ArgType::UninitMapValue;
                    if arg == ArgType::MapKey {
                        const_key = constant_key(s, &r, sz);
                    }
                    self.helper_mem(pc, s, rn, r, sz, write, name)?;
                }
                ArgType::Mem | ArgType::UninitMem | ArgType::MemOrNull => {
                    let size_reg = regs[rn + 1];
                    if arg == ArgType::MemOrNull && r.is_const(0) {
                        continue;
                    }
                    if !mem_like(&r) {
                        return Err(ty_err("fp, pkt, pkt_meta, map_key, map_value, mem"));
                    }
                    if size_reg.ty != RegType::Scalar {
                        return fail(format!(
                            "R{} type={} expected=scalar (size of argument {rn} of bpf_{name})",
                            rn + 1,
                            size_reg.ty.name(size_reg.maybe_null)
                        ));
                    }
                    let v = size_reg.var;
                    if v.smin < 0 {
                        return fail(format!(
                            "R{} min value is negative, either use unsigned or 'var &= const'",
                            rn + 1
                        ));
                    }
                    let zero_ok = proto.args.get(i + 1) == Some(&ArgType::ConstSizeOrZero);
                    if v.umax == 0 {
                        if !zero_ok {
                            return fail(format!("R{} invalid zero-sized read", rn + 1));
                        }
                        continue;
                    }
                    if v.umax >= MAX_VAR_OFF as u64 {
                        return fail(format!(
                            "R{} unbounded memory access, use 'var &= const' or 'if (var < const)'",
                            rn + 1
                        ));
                    }
                    self.helper_mem(pc, s, rn, r, v.umax as u32, arg == ArgType::UninitMem, name)?;
                }
                ArgType::ConstSize | ArgType::ConstSizeOrZero => {
                    if r.ty != RegType::Scalar {
                        return Err(ty_err("scalar"));
                    }
                }
                ArgType::ConstAllocSizeOrZero => {
                    let Some(c) = r.var.as_const().filter(|_| r.ty == RegType::Scalar) else {
                        return fail(format!(
                            "R{rn} is not a known constant (argument {rn} of bpf_{name})"
                        ));
                    };
                    ringbuf_size = c as u32;
                }
                ArgType::Ctx => {
                    if r.ty != RegType::Ctx {
                        return Err(ty_err("ctx"));
                    }
                    if r.off != 0 || r.var.as_const() != Some(0) {
                        return fail(format!(
                            "dereference of modified ctx ptr R{rn} off={} disallowed",
                            r.off
                        ));
                    }
                }
                ArgType::RingbufMem => {
                    if r.ty != RegType::Mem || r.ref_obj_id == 0 || r.maybe_null {
                        return Err(ty_err("ringbuf_mem"));
                    }
                    if r.off != 0 || r.var.as_const() != Some(0) {
                        return fail(format!(
                            "R{rn} must have zero offset when passed to release func"
                        ));
                    }
                    release = Some(r.ref_obj_id);
                }
                ArgType::Func => {
                    if r.ty != RegType::Func {
                        return Err(ty_err("func"));
                    }
                    callback = Some(r.aux as usize);
                }
                ArgType::StackOrNull => {
                    if !(r.is_const(0) || r.ty == RegType::Stack) {
                        return Err(ty_err("fp"));
                    }
                }
                ArgType::ConstStr => {
                    if r.ty != RegType::MapValue {
                        return Err(ty_err("map_value"));
                    }
                    if !self.prog.maps[r.aux as usize].read_only {
                        return fail(format!("R{rn} does not point to a readonly map'"));
                    }
                }
                ArgType::Long => {
                    if !mem_like(&r) {
                        return Err(ty_err("fp, map_value"));
                    }
                    self.helper_mem(pc, s, rn, r, 8, true, name)?;
                }
                ArgType::BtfId => {
                    if r.ty != RegType::BtfId || r.maybe_null {
                        return Err(ty_err("ptr_"));
                    }
                }
                ArgType::SpinLock => {
                    if r.ty != RegType::MapValue {
                        return Err(ty_err("map_value"));
                    }
                }
            }
        }
        if let Some(ref_id) = release {
            self.release_reference(s, ref_id)?;
        }
        if proto.changes_pkt_data {
            s.for_each_reg(|r| {
                if matches!(
                    r.ty,
                    RegType::Packet | RegType::PacketMeta | RegType::PacketEnd
                ) {
                    *r = RegState::unknown();
                }
            });
        }
        let f = s.cur_mut();
        for r in 1..=5 {
            f.regs[r] = RegState::NOT_INIT;
        }
        let r0 = match proto.ret {
            RetType::Integer => RegState::unknown(),
            RetType::Void => RegState::NOT_INIT,
            RetType::MapValueOrNull => {
                let m = map.expect("lookup takes a map");
                let mut r = RegState::pointer(RegType::MapValue, m as u32);
                let info = &self.prog.maps[m];
                // An array element with a constant in-range key always exists
                // (can_elide_value_nullness, Linux 6.12+).
                let elide = matches!(info.map_type, MapType::Array | MapType::PercpuArray)
                    && const_key.is_some_and(|k| k < info.max_entries as u64);
                if !elide {
                    r.maybe_null = true;
                    r.id = self.new_id();
                }
                r.origin = pc as u32;
                r
            }
            RetType::RingbufMemOrNull => {
                let mut r = RegState::pointer(RegType::Mem, ringbuf_size);
                r.maybe_null = true;
                r.id = self.new_id();
                r.ref_obj_id = r.id;
                r.origin = pc as u32;
                s.refs.push((r.id, pc));
                r
            }
            RetType::BtfIdTask => kfunc::object_pointer(bpfkit_abi::KernelObject::Task),
        };
        s.cur_mut().regs[0] = r0;
        if let Some(cb) = callback {
            // The callback may run zero times (continue past the call) or more.
            let mut call = s.clone();
            let args = if id == bpfkit_abi::helper::FOR_EACH_MAP_ELEM {
                // for_each_map_elem: (map, key, value, ctx).
                let m = map.expect("for_each_map_elem takes a map") as u32;
                [
                    RegState::pointer(RegType::ConstMapPtr, m),
                    RegState::pointer(RegType::MapKey, m),
                    RegState::pointer(RegType::MapValue, m),
                    regs[3],
                    RegState::NOT_INIT,
                ]
            } else {
                // bpf_loop: (index, ctx).
                [
                    RegState::scalar(Scalar::urange(0, u32::MAX as u64)),
                    regs[3],
                    RegState::NOT_INIT,
                    RegState::NOT_INIT,
                    RegState::NOT_INIT,
                ]
            };
            self.widen_for_callback(&mut call, pc);
            self.push_frame(pc, &mut call, cb, true)?;
            let f = call.cur_mut();
            f.entry_args = args;
            f.regs[1..=5].copy_from_slice(&args);
            self.callback_entry[cb] = true;
            self.cfg.prune[cb] = true;
            return Ok(Flow::Fork(pc + 1, call, cb));
        }
        Ok(Flow::Next)
    }

    /// `check_map_func_compatibility`, for the map types whose helpers are special.
    fn check_map_compat(&self, id: i32, name: &str, map: usize) -> R<()> {
        use bpfkit_abi::helper as h;
        let t = self.prog.maps[map].map_type;
        let ok = match t {
            MapType::Ringbuf => matches!(
                id,
                h::RINGBUF_OUTPUT | h::RINGBUF_RESERVE | h::RINGBUF_QUERY
            ),
            MapType::PerfEventArray => matches!(id, h::PERF_EVENT_OUTPUT | 22 | 55),
            MapType::ProgArray => id == h::TAIL_CALL,
            MapType::StackTrace => id == h::GET_STACKID,
            _ => true,
        };
        let ok2 = match id {
            h::RINGBUF_OUTPUT | h::RINGBUF_RESERVE | h::RINGBUF_QUERY => t == MapType::Ringbuf,
            h::PERF_EVENT_OUTPUT => t == MapType::PerfEventArray,
            h::TAIL_CALL => t == MapType::ProgArray,
            h::GET_STACKID => t == MapType::StackTrace,
            _ => true,
        };
        if !ok || !ok2 {
            return fail(format!(
                "cannot pass map_type {} into func bpf_{name}#{id} (map {})",
                t.as_u32(),
                self.prog.maps[map].name
            ));
        }
        Ok(())
    }

    /// `check_helper_mem_access`: `size` bytes at `r` readable (or writable).
    #[allow(clippy::too_many_arguments)]
    fn helper_mem(
        &mut self,
        pc: usize,
        s: &mut State,
        rn: usize,
        r: RegState,
        size: u32,
        write: bool,
        name: &str,
    ) -> R<()> {
        let reg = Reg::new(rn as u8).expect("argument registers are r1-r5");
        if size == 0 {
            return Ok(());
        }
        match r.ty {
            RegType::Stack => {
                // check_stack_range_initialized
                let off = r.off as i64;
                let (lo, hi) = (off + r.var.smin, off + r.var.smax);
                if lo < -(STACK_SIZE as i64) || hi + size as i64 > 0 || r.var.smin <= -MAX_VAR_OFF {
                    return fail(format!(
                        "invalid indirect access to stack R{rn} off={lo} size={size} (argument of bpf_{name})"
                    ));
                }
                if r.aux as usize >= s.frames.len() {
                    return fail(format!(
                        "R{rn} points into the stack of a function that has returned (frame {})",
                        r.aux
                    ));
                }
                let sub = s.frames[r.aux as usize].subprog;
                self.stack_depth[sub] = self.stack_depth[sub].max((-lo) as u32);
                let frame = &mut s.frames[r.aux as usize];
                for o in lo..hi + size as i64 {
                    let (sl, i) = frame.byte(o);
                    if write {
                        unspill(frame, sl);
                        frame.slot_mut(sl).bytes[i] = SlotByte::Misc;
                    } else if frame.slot(sl).bytes[i] == SlotByte::Invalid && self.opts.unprivileged
                    {
                        return fail(format!(
                            "invalid indirect read from stack R{rn} off {lo}+{} size {size}",
                            o - lo
                        ));
                    }
                }
                Ok(())
            }
            _ => {
                let access = if write {
                    Access::Write(Some(RegState::unknown()), 255)
                } else {
                    Access::Read
                };
                // Check both ends of the region with one access each.
                self.mem_access(pc, s, reg, r, 0, 1, access)?;
                if size > 1 {
                    self.mem_access(pc, s, reg, r, size as i64 - 1, 1, access)?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Access {
    Read,
    /// The value stored and the register it came from (255 for an immediate).
    Write(Option<RegState>, u8),
}

/// The smallest abstract value holding both: registers of different kinds
/// join to "not initialized" (nothing known).
fn join_reg(a: &RegState, b: &RegState) -> RegState {
    if a.ty != b.ty || a.ty == RegType::NotInit {
        return RegState::NOT_INIT;
    }
    if a.ty == RegType::Scalar {
        return RegState::scalar(a.var.join(&b.var));
    }
    if a.off != b.off || a.aux != b.aux {
        return RegState::NOT_INIT;
    }
    RegState {
        var: a.var.join(&b.var),
        maybe_null: a.maybe_null || b.maybe_null,
        range: a.range.min(b.range),
        trusted: a.trusted && b.trusted,
        ..*a
    }
}

/// The key a map helper gets, when it is a constant on the stack
/// (`get_constant_map_key`: a spilled constant or zeroed bytes).
fn constant_key(s: &State, r: &RegState, size: u32) -> Option<u64> {
    if r.ty != RegType::Stack || size == 0 || size > 8 {
        return None;
    }
    let off = r.off as i64 + r.var.as_const()? as i64;
    if off < -(STACK_SIZE as i64) || off + size as i64 > 0 {
        return None;
    }
    let frame = s.frames.get(r.aux as usize)?;
    let (sl, i) = frame.byte(off);
    let slot = frame.slot(sl);
    if i == 0
        && slot.bytes[..size as usize]
            .iter()
            .all(|b| *b == SlotByte::Spill)
    {
        return slot
            .spill
            .var
            .as_const()
            .filter(|_| slot.spill.ty == RegType::Scalar);
    }
    (off..off + size as i64)
        .all(|o| {
            let (sl, i) = frame.byte(o);
            frame.slot(sl).bytes[i] == SlotByte::Zero
        })
        .then_some(0)
}

/// Branches a rejection reports: the most recent ones.
const TRAIL_LEN: usize = 64;

/// The last [`TRAIL_LEN`] branches a path took, in a ring kept inline:
/// every fork copies its path's trail, and a `Vec` would cost an
/// allocation each time (long loops would otherwise also make the copy
/// grow with the whole history).
#[derive(Clone, Copy)]
struct Trail {
    ring: [u32; TRAIL_LEN],
    /// Where the oldest entry is, once the ring is full.
    start: usize,
    len: usize,
}

impl Trail {
    const EMPTY: Trail = Trail {
        ring: [0; TRAIL_LEN],
        start: 0,
        len: 0,
    };

    /// Records a branch taken at `pc`, forgetting the oldest when full.
    fn push(&mut self, pc: usize) {
        if self.len < TRAIL_LEN {
            self.ring[self.len] = pc as u32;
            self.len += 1;
        } else {
            self.ring[self.start] = pc as u32;
            self.start = (self.start + 1) % TRAIL_LEN;
        }
    }

    /// The most recent branch.
    fn last(&self) -> Option<usize> {
        (self.len > 0).then(|| self.ring[(self.start + self.len - 1) % TRAIL_LEN] as usize)
    }

    /// Oldest first.
    fn to_vec(self) -> Vec<usize> {
        (0..self.len)
            .map(|i| self.ring[(self.start + i) % TRAIL_LEN] as usize)
            .collect()
    }
}

/// A write over part of a spilled register leaves the rest as plain data.
fn unspill(frame: &mut Frame, sl: usize) {
    let slot = frame.slot_mut(sl);
    if slot.bytes.contains(&SlotByte::Spill) {
        for b in slot.bytes.iter_mut() {
            if *b == SlotByte::Spill {
                *b = SlotByte::Misc;
            }
        }
        slot.spill = RegState::NOT_INIT;
    }
}

/// Sets refined scalars, and those linked to them by id (`sync_linked_regs`).
fn set_scalar(s: &mut State, dst: Reg, a: Scalar, src: Option<Reg>, b: Scalar) {
    let apply = |s: &mut State, r: Reg, v: Scalar| {
        let id = s.cur().regs[r.index() as usize].id;
        s.cur_mut().regs[r.index() as usize].var = v;
        if id != 0 {
            s.for_each_reg(|x| {
                if x.ty == RegType::Scalar && x.id == id {
                    x.var = v;
                }
            });
        }
    };
    apply(s, dst, a);
    if let Some(r) = src {
        apply(s, r, b);
    }
}

/// `mark_ptr_or_null_regs`: every copy of a possibly-NULL pointer learns the outcome.
fn mark_ptr_or_null(s: &mut State, id: u32, is_null: bool) {
    if id == 0 {
        return;
    }
    let mut released = None;
    s.for_each_reg(|r| {
        if r.maybe_null && r.id == id {
            if is_null {
                if r.ref_obj_id != 0 {
                    released = Some(r.ref_obj_id);
                }
                *r = RegState::scalar(Scalar::constant(0));
            } else {
                r.maybe_null = false;
                if r.ty != RegType::Mem || r.ref_obj_id == 0 {
                    // Keep the id for packet-like linking only on references.
                    r.id = 0;
                }
            }
        }
    });
    if let Some(rid) = released {
        s.refs.retain(|(i, _)| *i != rid);
    }
}

/// `find_good_pkt_pointers`: packet pointers with `reg`'s id may be read up to its offset.
fn find_good_pkt_pointers(s: &mut State, reg: &RegState, right_open: bool) {
    if reg.off < 0 || (reg.off == 0 && right_open) {
        return;
    }
    if reg.var.umax > MAX_PACKET_OFF || reg.var.umax + reg.off as u64 > MAX_PACKET_OFF {
        return;
    }
    let new_range = reg.off - right_open as i32;
    let (ty, id) = (reg.ty, reg.id);
    s.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.range = r.range.max(new_range);
        }
    });
}

impl RegState {
    /// The helper id that produced this value, from the call at `origin` (for messages).
    fn aux_helper(&self) -> i32 {
        match self.ty {
            RegType::MapValue => bpfkit_abi::helper::MAP_LOOKUP_ELEM,
            RegType::Mem => bpfkit_abi::helper::RINGBUF_RESERVE,
            _ => 0,
        }
    }
}

impl Env<'_> {
    /// `check_max_stack_depth`: the deepest call chain's frames fit in 512 bytes.
    fn check_stack_depth(&self) -> Result<(), (usize, String)> {
        let n = self.cfg.subprogs.len();
        let depth = |i: usize| (self.stack_depth[i].max(1)).div_ceil(32) * 32;
        // Longest path in the (acyclic, once recursion is refused) call graph.
        fn walk(
            i: usize,
            calls: &[(usize, usize)],
            depth: &dyn Fn(usize) -> u32,
            seen: &mut Vec<bool>,
            chain: &mut Vec<usize>,
        ) -> (u32, Vec<usize>) {
            if seen[i] {
                return (0, Vec::new());
            }
            seen[i] = true;
            chain.push(i);
            let mut best = (0, Vec::new());
            for &(a, b) in calls {
                if a == i {
                    let r = walk(b, calls, depth, seen, chain);
                    if r.0 > best.0 {
                        best = r;
                    }
                }
            }
            chain.pop();
            seen[i] = false;
            let mut v = vec![i];
            v.extend(best.1);
            (best.0 + depth(i), v)
        }
        let mut seen = vec![false; n];
        let (total, chain) = walk(0, &self.cfg.calls, &depth, &mut seen, &mut Vec::new());
        if total as usize > STACK_SIZE && chain.len() > 1 {
            return Err((
                self.cfg.subprogs[*chain.last().unwrap()],
                format!(
                    "combined stack size of {} calls is {total}. Too large",
                    chain.len()
                ),
            ));
        }
        Ok(())
    }
}

#[allow(dead_code)]
fn _unused(_: &IdMap) -> bool {
    regsafe(
        &RegState::NOT_INIT,
        &RegState::NOT_INIT,
        &mut IdMap::default(),
    )
}
