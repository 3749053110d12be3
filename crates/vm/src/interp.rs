//! The interpreter loop.

use std::any::Any;
use std::sync::Arc;

use crate::error::{FaultKind, RunError};
use crate::memory::{region_base, AddressSpace, RegionKind};
use crate::program::{AtomicKind, Op, Program};

/// Bytes of stack per call frame, as in the kernel.
pub const STACK_PER_FRAME: usize = 512;
/// Maximum call depth including the entry frame (the kernel's `MAX_CALL_FRAMES`).
pub const MAX_FRAMES: usize = 8;
/// Tag of function addresses produced by `lddw rX, func` (bit 63 keeps them
/// clear of both region addresses and helper ids).
pub const FUNC_ADDR_TAG: u64 = 1 << 63;

/// What a helper call asks the interpreter to do next.
#[derive(Debug, Clone)]
pub enum HelperOutcome {
    /// Continue with `r0` set to this value.
    Return(u64),
    /// End the program now with `r0` set to this value.
    Exit(u64),
    /// Replace the running program (`bpf_tail_call`), keeping `r1`.
    TailCall(Arc<Program>),
}

/// The helper id of `bpf_map_lookup_elem`, which has a direct path.
pub(crate) const MAP_LOOKUP_ELEM: i32 = bpfkit_abi::helper::MAP_LOOKUP_ELEM;

/// Tail calls allowed in one chain, as the kernel's `MAX_TAIL_CALL_CNT`.
pub const MAX_TAIL_CALLS: usize = 33;

/// What a lookup of a map value by the built-in `bpf_map_lookup_elem`
/// promises compiled code: while the map's value generation (the word at
/// `generation_word`) is still `generation` and no region of the run has
/// moved, a lookup in the same map (the same `r1`) of the same key gives
/// the same value address, with nothing else to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupMemo {
    /// The key's bytes, little-endian, zero-extended.
    pub key: u64,
    /// Its size in bytes: 4 or 8.
    pub key_size: u8,
    /// The map's value generation the lookup saw.
    pub generation: u64,
    /// Where the map keeps its value generation (an `AtomicU64`), valid
    /// as long as the map: one of the VM's own (memos are made for no
    /// other), which it keeps while it lives, from run to run.
    pub generation_word: *const std::sync::atomic::AtomicU64,
}

/// The interpreter's view of the runtime around a program: helpers and the
/// addresses of maps named by `lddw`.
pub trait Environment {
    /// Calls helper `id` with `r1..r5`.
    fn call_helper(
        &mut self,
        id: i64,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError>;

    /// `call 1` (`bpf_map_lookup_elem`) with `r1..r5`: what
    /// [`Environment::call_helper`] with id 1 returns, by a direct path
    /// where the environment has one (the VM's built-in maps).
    fn map_lookup_elem(
        &mut self,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<HelperOutcome, HelperCallError> {
        self.call_helper(MAP_LOOKUP_ELEM as i64, args, memory)
    }

    /// Whether [`Environment::map_lookup_memo`] may lock shared bytes (an
    /// embedder's lookup helper may do anything); when it does not,
    /// compiled code may hold map values locked across the lookup.
    fn lookup_locks_values(&self) -> bool {
        true
    }

    /// [`Environment::map_lookup_elem`], with a [`LookupMemo`] when the
    /// same lookup would give the same value while nothing moves.
    fn map_lookup_memo(
        &mut self,
        args: [u64; 5],
        memory: &mut AddressSpace,
    ) -> Result<(HelperOutcome, Option<LookupMemo>), HelperCallError> {
        Ok((self.map_lookup_elem(args, memory)?, None))
    }

    /// The value `lddw rX, map[index]` loads (a handle helpers understand).
    fn map_handle(&mut self, index: u32) -> Result<u64, HelperCallError>;

    /// The address `lddw rX, map_value[index] + offset` loads.
    fn map_value_addr(
        &mut self,
        index: u32,
        offset: u32,
        memory: &mut AddressSpace,
    ) -> Result<u64, HelperCallError>;

    /// Starts helper `id` if it is one that calls a program function back
    /// and the environment provides it; `None` makes it an ordinary call.
    fn start_callback(
        &mut self,
        _id: i64,
        _args: [u64; 5],
        _memory: &mut AddressSpace,
    ) -> Option<Result<CallbackStart, HelperCallError>> {
        None
    }

    /// The arguments of `callback`'s next call, counting it, or `None`
    /// when it has visited everything.
    fn next_callback(
        &mut self,
        _callback: &mut Callback,
        _memory: &mut AddressSpace,
    ) -> Result<Option<[u64; 5]>, HelperCallError> {
        Ok(None)
    }

    /// `callback` has made its last call (the helper returns).
    fn end_callback(&mut self, _callback: &Callback) {}

    /// The packet data address for `LD_ABS`/`LD_IND`, if the program has one.
    fn packet(&self) -> Option<u64> {
        None
    }

    /// The 64-bit pointer a 32-bit context load at `addr` yields, if `addr`
    /// is a pointer field (`data`, `data_end`, `data_meta`) of the context.
    fn context_pointer(&self, _addr: u64) -> Option<u64> {
        None
    }
}

/// A helper (or map reference) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperCallError {
    /// No helper with this id.
    Unknown,
    /// The helper faulted; the run ends with this message.
    Fault {
        /// Helper name.
        name: String,
        /// What happened.
        message: String,
    },
}

/// The instruction budget of a run unless [`Vm::set_budget`](crate::Vm::set_budget)
/// says otherwise: 2^24 (16,777,216) instructions, 16 times the 1,000,000
/// instructions the kernel's verifier processes at most (BPF_COMPLEXITY_LIMIT_INSNS),
/// so any program the kernel accepts without bpf_loop-style iteration fits,
/// and a runaway loop ends in tens of milliseconds (the interpreter runs a
/// few nanoseconds an instruction) rather than the 12 seconds 2^32 took.
pub const DEFAULT_BUDGET: u64 = 1 << 24;

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Instructions the run may execute before it stops with
    /// [`RunError::BudgetExhausted`]; [`DEFAULT_BUDGET`] by default.
    pub budget: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            budget: DEFAULT_BUDGET,
        }
    }
}

struct Frame {
    return_pc: usize,
    saved: [u64; 4],
    /// Set when the frame is a callback's: the helper that called it.
    callback: Option<Box<Callback>>,
}

/// A helper that calls a program function back (bpf_loop,
/// bpf_for_each_map_elem), between two calls.
pub(crate) struct Callback {
    /// The function: the value of the helper's `callback_fn` argument.
    pub(crate) func: u64,
    /// Calls made so far; what the helper returns when it is done.
    pub(crate) calls: u64,
    /// What it iterates over.
    pub(crate) kind: CallbackKind,
}

/// What a [`Callback`] iterates over.
pub(crate) enum CallbackKind {
    /// bpf_loop: calls `func(i, ctx)` for `i` in `0..nr`.
    Loop {
        /// Iterations asked for.
        nr: u64,
        /// `callback_ctx`.
        ctx: u64,
    },
    /// bpf_for_each_map_elem: calls `func(map, &key, &value, ctx)` per element.
    MapElements {
        /// The map handle the program passed.
        map_handle: u64,
        /// The map.
        map: crate::maps::Map,
        /// Keys still to visit, snapshot when the helper started.
        keys: std::vec::IntoIter<Vec<u8>>,
        /// Where the callback's key lives (a read-only region).
        key_addr: u64,
        /// `callback_ctx`.
        ctx: u64,
    },
}

/// How a helper that may call back starts.
pub(crate) enum CallbackStart {
    /// It returns at once with this value (bad flags, nothing to visit).
    Return(u64),
    /// It calls back.
    Calls(Box<Callback>),
}

/// The stack of a run: one region per call frame. A live frame's region
/// holds its 512 bytes and a returned frame's is empty, so an access beyond a
/// frame's 512 bytes, below `r10-512` or at or above `r10`, faults, as the
/// kernel's verifier rejects it (check_stack_access_within_bounds), while a
/// pointer into a caller's frame passed to a callee stays valid. A frame's
/// region is made the first time a call reaches its depth, so a run without
/// calls pays for one region only.
#[derive(Default)]
pub(crate) struct Stack {
    /// Region index of each frame made so far in this run.
    regions: [usize; MAX_FRAMES],
    /// Frames `0..made` have a region.
    made: usize,
    /// Buffers of frames, kept between runs.
    pool: StackPool,
    /// Bytes below `r10` the programs run on these frames may have written
    /// in any frame since its buffer was last zeroed (the most of their
    /// [`Program::stack_dirty`]).
    dirty: usize,
    /// Whether the entry frame's region stays in the address space after a
    /// run, for the next run over the same space ([`Stack::resident`]):
    /// the space's layout is then the same from run to run.
    keeps_entry: bool,
    /// Map value regions a run left after the resident entry frame, kept
    /// for the next run over the space: values a run looks up again are
    /// in the space already, at the same addresses, as they stay put in
    /// the kernel from run to run.
    values: usize,
}

/// The most map value regions a run leaves in a space for the next one; a
/// run that brought in more leaves none.
const MAX_RESIDENT_VALUES: usize = 128;

/// Frame buffers kept between runs, each with the bytes at its top (below
/// `r10`) a run may have written since it was last zeroed: a buffer the
/// next run reuses is zeroed that far only, so a run that writes a few
/// bytes of stack (or none) does not pay for zeroing 512 each time.
#[derive(Debug, Default)]
pub(crate) struct StackPool {
    buffers: Vec<(Vec<u8>, usize)>,
}

impl Stack {
    /// Frames whose entry frame stays in the address space from one run to
    /// the next, so that a space run again and again keeps its layout (and
    /// compiled code its tables of it). The space must be the same one on
    /// every run, with no region added or removed between runs.
    pub(crate) fn resident() -> Stack {
        Stack {
            keeps_entry: true,
            ..Stack::default()
        }
    }

    /// How many regions at the end of the space are the frames' or kept
    /// with them: between runs, a resident entry frame once made and the
    /// map values a run left after it.
    pub(crate) fn resident_regions(&self) -> usize {
        self.made + self.values
    }

    /// Takes back every frame's buffer and forgets the frames and the
    /// values kept with them, when the space they were in is cleared.
    pub(crate) fn forget(&mut self, memory: &mut AddressSpace) {
        self.release_from(memory, 0);
        self.values = 0;
    }

    /// Takes the buffers of frames `first..` back into the pool; frames
    /// `..first` stay.
    fn release_from(&mut self, memory: &mut AddressSpace, first: usize) {
        for &index in &self.regions[first..self.made] {
            if let Some(buf) = memory.take_owned(index) {
                self.pool.buffers.push((buf, self.dirty));
            }
        }
        self.made = first;
    }

    /// `r10` of frame `depth` (0 is the entry frame); the frame must exist.
    #[inline(always)]
    pub(crate) fn frame_pointer(&self, depth: usize) -> u64 {
        region_base(self.regions[depth % MAX_FRAMES]) + STACK_PER_FRAME as u64
    }

    /// Makes frame `depth` (at most one deeper than any made so far) live
    /// and zeroed.
    pub(crate) fn enter(&mut self, memory: &mut AddressSpace, depth: usize) {
        if depth < self.made {
            // A live frame (the entry frame again, for the next program of
            // a tail call chain or the next run) has only its top to zero.
            memory.rezero_owned(self.regions[depth], STACK_PER_FRAME, self.dirty);
        } else {
            let buf = match self.pool.buffers.pop() {
                // A whole frame from the pool: only its top may be dirty.
                Some((mut buf, dirty)) if buf.len() == STACK_PER_FRAME => {
                    if dirty > 0 {
                        buf[STACK_PER_FRAME - dirty.min(STACK_PER_FRAME)..].fill(0);
                    }
                    buf
                }
                other => {
                    let mut buf = other.map(|(b, _)| b).unwrap_or_default();
                    buf.clear();
                    buf.resize(STACK_PER_FRAME, 0);
                    buf
                }
            };
            self.regions[self.made % MAX_FRAMES] = memory.len();
            memory.add(RegionKind::Stack, true, buf);
            self.made += 1;
        }
    }

    /// Notes that `program` runs on this stack: what it may write there
    /// must be zeroed before a later run reuses the buffers.
    fn runs(&mut self, program: &Program) {
        let dirty = match program.compiled() {
            Some(code) if !code.writes_as_its_program() => STACK_PER_FRAME,
            _ => program.stack_dirty,
        };
        self.dirty = self.dirty.max(dirty);
    }

    /// Makes frame `depth` dead: every access to it faults.
    pub(crate) fn leave(&self, memory: &mut AddressSpace, depth: usize) {
        if depth < self.made {
            memory.reset_owned(self.regions[depth], 0);
        }
    }

    /// The frame and the offset from its `r10` of a faulting access at
    /// `addr`, if `addr` lies within 2 GiB of a frame's `r10` (an underflow
    /// lands at the top of the region before the frame's).
    #[cold]
    fn locate(&self, addr: u64) -> Option<(usize, i64)> {
        (0..self.made)
            .map(|frame| (frame, addr.wrapping_sub(self.frame_pointer(frame)) as i64))
            .filter(|&(_, offset)| offset.abs() < 1 << 31)
            .min_by_key(|&(_, offset)| offset.abs())
    }
}

/// Runs `program` from its first instruction with `r1..r5` set to `args`.
/// The stack frames are added to `memory` for the run and removed
/// afterwards, but for a resident entry frame ([`Stack::resident`]);
/// `frames` keeps their buffers between runs, and `engine` the state
/// compiled code keeps for the next run over `memory` (`None` when no run
/// over it will follow).
#[allow(clippy::too_many_arguments)]
pub(crate) fn execute(
    program: &Program,
    memory: &mut AddressSpace,
    env: &mut dyn Environment,
    args: [u64; 5],
    limits: RunLimits,
    executed: &mut u64,
    frames: &mut Stack,
    engine: Option<&mut EngineState>,
) -> Result<u64, RunError> {
    // The same loop either way; compiled code gets a copy without the
    // interpreter inlined, whose large frame would otherwise be set up on
    // every one of its runs.
    if program.compiled().is_some() {
        execute_chain::<false>(program, memory, env, args, limits, executed, frames, engine)
    } else {
        execute_chain::<true>(program, memory, env, args, limits, executed, frames, engine)
    }
}

/// What compiled code keeps from one run to the next over one address space.
pub(crate) type EngineState = Option<Box<dyn Any + Send>>;

/// The interpreter, kept out of line for [`execute_chain`]`::<false>`.
#[inline(never)]
fn run_outlined(
    program: &Program,
    memory: &mut AddressSpace,
    env: &mut dyn Environment,
    args: [u64; 5],
    remaining: &mut u64,
    budget: u64,
    stack: &mut Stack,
) -> Result<Flow, RunError> {
    run(program, memory, env, args, remaining, budget, stack)
}

/// [`execute`], with the interpreter inlined when `INLINE_INTERP`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn execute_chain<const INLINE_INTERP: bool>(
    program: &Program,
    memory: &mut AddressSpace,
    env: &mut dyn Environment,
    args: [u64; 5],
    limits: RunLimits,
    executed: &mut u64,
    frames: &mut Stack,
    mut engine: Option<&mut EngineState>,
) -> Result<u64, RunError> {
    // The regions before the frames stay; so does a resident entry frame.
    let keep = match frames.made {
        0 => {
            // Each buffer in the pool knows how far it is dirty: only what
            // this run's programs write is new.
            frames.dirty = 0;
            memory.len()
        }
        _ => frames.regions[0],
    };
    let mut tail: Option<Arc<Program>> = None;
    let mut tail_calls = 0;
    let mut budget = limits.budget;
    let result = loop {
        let current = tail.as_deref().unwrap_or(program);
        frames.runs(current);
        // Each program of a tail call chain starts in the entry frame (the
        // kernel reuses the caller's frame; its contents are not promised).
        frames.enter(memory, 0);
        let flow = match current.compiled() {
            Some(code) => {
                let mut machine = crate::engine::Machine::new(
                    current,
                    memory,
                    env,
                    frames,
                    &mut budget,
                    limits.budget,
                    engine.as_deref_mut(),
                );
                code.run(&mut machine, args).map(|flow| match flow {
                    crate::engine::Flow::Exit(v) => Flow::Exit(v),
                    crate::engine::Flow::TailCall(p) => Flow::TailCall(p),
                })
            }
            None if INLINE_INTERP => run(
                current,
                memory,
                env,
                args,
                &mut budget,
                limits.budget,
                frames,
            ),
            None => run_outlined(
                current,
                memory,
                env,
                args,
                &mut budget,
                limits.budget,
                frames,
            ),
        };
        match flow {
            Ok(Flow::Exit(v)) => break Ok(v),
            Ok(Flow::TailCall(next)) => {
                // The kernel falls through once the chain is too long; the
                // helper already returned an error in that case.
                tail_calls += 1;
                if tail_calls > MAX_TAIL_CALLS {
                    break Err(RunError::TailCallLimit {
                        max: MAX_TAIL_CALLS,
                    });
                }
                for depth in 1..MAX_FRAMES {
                    frames.leave(memory, depth);
                }
                tail = Some(next);
            }
            Err(e) => break Err(e),
        }
    };
    let resident = usize::from(frames.keeps_entry && frames.made > 0);
    // Values stay only right after the entry frame: a deeper frame's
    // region among them would have to stay too.
    let values_from = keep + resident;
    frames.values = match memory.len().checked_sub(values_from) {
        Some(n @ 1..=MAX_RESIDENT_VALUES)
            if resident == 1 && frames.made == 1 && memory.only_map_values_from(values_from) =>
        {
            n
        }
        _ => 0,
    };
    frames.release_from(memory, resident);
    memory.truncate(values_from + frames.values);
    *executed = limits.budget - budget;
    result
}

enum Flow {
    Exit(u64),
    TailCall(Arc<Program>),
}

#[inline(always)]
fn ea(base: u64, off: i16) -> u64 {
    base.wrapping_add(off as i64 as u64)
}

/// A faulting access. One near a stack frame names the frame and the offset
/// from its `r10`; `depth` is the current frame, so one into a frame that has
/// returned says so.
#[cold]
pub(crate) fn fault(
    pc: usize,
    stack: &Stack,
    depth: usize,
    addr: u64,
    size: usize,
    access: &'static str,
    kind: FaultKind,
) -> RunError {
    let kind = match stack.locate(addr) {
        Some((frame, offset)) if frame > depth => FaultKind::ReturnedStackFrame {
            frame,
            offset,
            current: depth,
        },
        Some((frame, offset)) => FaultKind::OutsideStackFrame { frame, offset },
        None => kind,
    };
    RunError::MemoryFault {
        pc,
        addr,
        size,
        access,
        kind,
    }
}

pub(crate) fn helper_error(pc: usize, id: i64, e: HelperCallError) -> RunError {
    match e {
        HelperCallError::Unknown => RunError::UnknownHelper { pc, id },
        HelperCallError::Fault { name, message } => RunError::HelperFault { pc, name, message },
    }
}

fn swap(v: u64, bits: u8) -> u64 {
    match bits {
        16 => (v as u16).swap_bytes() as u64,
        32 => (v as u32).swap_bytes() as u64,
        _ => v.swap_bytes(),
    }
}

fn truncate(v: u64, bits: u8) -> u64 {
    match bits {
        16 => v as u16 as u64,
        32 => v as u32 as u64,
        _ => v,
    }
}

fn sign_extend(v: u64, bits: u8) -> u64 {
    match bits {
        8 => v as i8 as i64 as u64,
        16 => v as i16 as i64 as u64,
        _ => v as i32 as i64 as u64,
    }
}

// Signed division and modulo as RFC 9669 defines them: by zero gives 0 (div)
// or leaves the dividend (mod); INT_MIN / -1 wraps.
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}
fn sdiv32(a: u32, b: u32) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i32).wrapping_div(b as i32) as u32 as u64
    }
}
fn smod32(a: u32, b: u32) -> u64 {
    if b == 0 {
        a as u64
    } else {
        (a as i32).wrapping_rem(b as i32) as u32 as u64
    }
}

pub(crate) fn atomic(
    memory: &mut AddressSpace,
    kind: AtomicKind,
    dw: bool,
    addr: u64,
    operand: u64,
    r0: u64,
) -> Result<(u64, Option<u64>), FaultKind> {
    // Returns (old value, new value stored if any). One read-modify-write
    // of memory: a map value is locked once, not for a load and a store.
    let op = |old: u64| atomic_result(kind, dw, old, operand, r0);
    let mut new = None;
    let old = if dw {
        u64::from_le_bytes(memory.modify::<8>(addr, |b| {
            new = op(u64::from_le_bytes(b));
            new.map(u64::to_le_bytes)
        })?)
    } else {
        u32::from_le_bytes(memory.modify::<4>(addr, |b| {
            new = op(u32::from_le_bytes(b) as u64);
            new.map(|v| (v as u32).to_le_bytes())
        })?) as u64
    };
    Ok((old, new))
}

/// [`atomic`] for compiled code, returning the old value: a hot path that
/// builds no `Result` for a writable region and an access that cannot
/// fault, else [`atomic`], which explains the fault. (The interpreter keeps
/// [`atomic`]: this path inlined into its loop slows every instruction.)
#[inline(never)]
pub(crate) fn atomic_for_compiled(
    memory: &mut AddressSpace,
    kind: AtomicKind,
    dw: bool,
    addr: u64,
    operand: u64,
    r0: u64,
) -> Result<u64, FaultKind> {
    let op = |old| atomic_result(kind, dw, old, operand, r0);
    let fast = if dw {
        memory.modify_writable::<8>(addr, op)
    } else {
        memory.modify_writable::<4>(addr, op)
    };
    match fast {
        Some(old) => Ok(old),
        None => atomic(memory, kind, dw, addr, operand, r0).map(|(old, _)| old),
    }
}

/// What atomic `kind` stores over `old` (zero-extended from 32 bits
/// unless `dw`), if anything.
#[inline(always)]
pub(crate) fn atomic_result(
    kind: AtomicKind,
    dw: bool,
    old: u64,
    operand: u64,
    r0: u64,
) -> Option<u64> {
    match kind {
        AtomicKind::Add => Some(old.wrapping_add(operand)),
        AtomicKind::Or => Some(old | operand),
        AtomicKind::And => Some(old & operand),
        AtomicKind::Xor => Some(old ^ operand),
        AtomicKind::Xchg => Some(operand),
        AtomicKind::Cmpxchg => {
            let expected = if dw { r0 } else { r0 as u32 as u64 };
            (old == expected).then_some(operand)
        }
    }
}

/// Registers are kept in a 16-entry array and indexed with `& 15`, so the
/// compiler needs no bounds checks; the loader guarantees indexes ≤ 10.
macro_rules! reg {
    ($regs:ident[$i:expr]) => {
        $regs[($i & 15) as usize]
    };
}

// Inlined into its two callers (execute_chain::<true>, run_outlined), as it
// was into its one caller before there were two.
#[inline(always)]
fn run(
    program: &Program,
    memory: &mut AddressSpace,
    env: &mut dyn Environment,
    args: [u64; 5],
    remaining: &mut u64,
    budget: u64,
    stack: &mut Stack,
) -> Result<Flow, RunError> {
    let ops = &program.ops[..];
    let mut regs = [0u64; 16];
    regs[1..6].copy_from_slice(&args);
    regs[10] = stack.frame_pointer(0);
    let mut frames: Vec<Frame> = Vec::new();
    let mut pc: usize = 0;

    macro_rules! load {
        ($n:literal, $t:ty, $base:expr, $off:expr) => {{
            let addr = ea(reg!(regs[$base]), $off);
            match memory.load::<$n>(addr) {
                Ok(b) => <$t>::from_le_bytes(b),
                Err(k) => return Err(fault(pc, stack, frames.len(), addr, $n, "load", k)),
            }
        }};
    }
    macro_rules! store {
        ($n:literal, $t:ty, $base:expr, $off:expr, $v:expr) => {{
            let addr = ea(reg!(regs[$base]), $off);
            if let Err(k) = memory.store::<$n>(addr, ($v as $t).to_le_bytes()) {
                return Err(fault(pc, stack, frames.len(), addr, $n, "store", k));
            }
        }};
    }
    macro_rules! jump {
        ($cond:expr, $t:expr) => {
            if $cond {
                pc = $t as usize;
                continue;
            }
        };
    }

    loop {
        if *remaining == 0 {
            return Err(RunError::BudgetExhausted { pc, budget });
        }
        *remaining -= 1;
        // The loader ends every program with exit or a jump, and checks every
        // jump target, so pc stays in bounds; `get` keeps that a checked fact.
        let Some(&op) = ops.get(pc) else {
            return Err(RunError::Internal { pc });
        };
        match op {
            Op::Add64I(d, v) => reg!(regs[d]) = reg!(regs[d]).wrapping_add(v),
            Op::Sub64I(d, v) => reg!(regs[d]) = reg!(regs[d]).wrapping_sub(v),
            Op::Mul64I(d, v) => reg!(regs[d]) = reg!(regs[d]).wrapping_mul(v),
            Op::Div64I(d, v) => reg!(regs[d]) = reg!(regs[d]).checked_div(v).unwrap_or(0),
            Op::Sdiv64I(d, v) => reg!(regs[d]) = sdiv64(reg!(regs[d]), v),
            Op::Or64I(d, v) => reg!(regs[d]) |= v,
            Op::And64I(d, v) => reg!(regs[d]) &= v,
            Op::Lsh64I(d, v) => reg!(regs[d]) = reg!(regs[d]).wrapping_shl(v as u32),
            Op::Rsh64I(d, v) => reg!(regs[d]) = reg!(regs[d]).wrapping_shr(v as u32),
            Op::Mod64I(d, v) => {
                let a = reg!(regs[d]);
                reg!(regs[d]) = a.checked_rem(v).unwrap_or(a)
            }
            Op::Smod64I(d, v) => reg!(regs[d]) = smod64(reg!(regs[d]), v),
            Op::Xor64I(d, v) => reg!(regs[d]) ^= v,
            Op::Mov64I(d, v) => reg!(regs[d]) = v,
            Op::Arsh64I(d, v) => {
                reg!(regs[d]) = (reg!(regs[d]) as i64).wrapping_shr(v as u32) as u64
            }
            Op::Add64R(d, s) => reg!(regs[d]) = reg!(regs[d]).wrapping_add(reg!(regs[s])),
            Op::Sub64R(d, s) => reg!(regs[d]) = reg!(regs[d]).wrapping_sub(reg!(regs[s])),
            Op::Mul64R(d, s) => reg!(regs[d]) = reg!(regs[d]).wrapping_mul(reg!(regs[s])),
            Op::Div64R(d, s) => {
                reg!(regs[d]) = reg!(regs[d]).checked_div(reg!(regs[s])).unwrap_or(0)
            }
            Op::Sdiv64R(d, s) => reg!(regs[d]) = sdiv64(reg!(regs[d]), reg!(regs[s])),
            Op::Or64R(d, s) => reg!(regs[d]) |= reg!(regs[s]),
            Op::And64R(d, s) => reg!(regs[d]) &= reg!(regs[s]),
            Op::Lsh64R(d, s) => reg!(regs[d]) = reg!(regs[d]).wrapping_shl(reg!(regs[s]) as u32),
            Op::Rsh64R(d, s) => reg!(regs[d]) = reg!(regs[d]).wrapping_shr(reg!(regs[s]) as u32),
            Op::Mod64R(d, s) => {
                let a = reg!(regs[d]);
                reg!(regs[d]) = a.checked_rem(reg!(regs[s])).unwrap_or(a)
            }
            Op::Smod64R(d, s) => reg!(regs[d]) = smod64(reg!(regs[d]), reg!(regs[s])),
            Op::Xor64R(d, s) => reg!(regs[d]) ^= reg!(regs[s]),
            Op::Mov64R(d, s) => reg!(regs[d]) = reg!(regs[s]),
            Op::Arsh64R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as i64).wrapping_shr(reg!(regs[s]) as u32) as u64
            }
            Op::Add32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_add(v) as u64,
            Op::Sub32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_sub(v) as u64,
            Op::Mul32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_mul(v) as u64,
            Op::Div32I(d, v) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32).checked_div(v).unwrap_or(0) as u64
            }
            Op::Sdiv32I(d, v) => reg!(regs[d]) = sdiv32(reg!(regs[d]) as u32, v),
            Op::Or32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32 | v) as u64,
            Op::And32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32 & v) as u64,
            Op::Lsh32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_shl(v) as u64,
            Op::Rsh32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_shr(v) as u64,
            Op::Mod32I(d, v) => {
                let a = reg!(regs[d]) as u32;
                reg!(regs[d]) = a.checked_rem(v).unwrap_or(a) as u64
            }
            Op::Smod32I(d, v) => reg!(regs[d]) = smod32(reg!(regs[d]) as u32, v),
            Op::Xor32I(d, v) => reg!(regs[d]) = (reg!(regs[d]) as u32 ^ v) as u64,
            Op::Mov32I(d, v) => reg!(regs[d]) = v as u64,
            Op::Arsh32I(d, v) => {
                reg!(regs[d]) = (reg!(regs[d]) as i32).wrapping_shr(v) as u32 as u64
            }
            Op::Add32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_add(reg!(regs[s]) as u32) as u64
            }
            Op::Sub32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_sub(reg!(regs[s]) as u32) as u64
            }
            Op::Mul32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_mul(reg!(regs[s]) as u32) as u64
            }
            Op::Div32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32)
                    .checked_div(reg!(regs[s]) as u32)
                    .unwrap_or(0) as u64
            }
            Op::Sdiv32R(d, s) => reg!(regs[d]) = sdiv32(reg!(regs[d]) as u32, reg!(regs[s]) as u32),
            Op::Or32R(d, s) => reg!(regs[d]) = (reg!(regs[d]) as u32 | reg!(regs[s]) as u32) as u64,
            Op::And32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32 & reg!(regs[s]) as u32) as u64
            }
            Op::Lsh32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_shl(reg!(regs[s]) as u32) as u64
            }
            Op::Rsh32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_shr(reg!(regs[s]) as u32) as u64
            }
            Op::Mod32R(d, s) => {
                let a = reg!(regs[d]) as u32;
                reg!(regs[d]) = a.checked_rem(reg!(regs[s]) as u32).unwrap_or(a) as u64
            }
            Op::Smod32R(d, s) => reg!(regs[d]) = smod32(reg!(regs[d]) as u32, reg!(regs[s]) as u32),
            Op::Xor32R(d, s) => {
                reg!(regs[d]) = (reg!(regs[d]) as u32 ^ reg!(regs[s]) as u32) as u64
            }
            Op::Mov32R(d, s) => reg!(regs[d]) = reg!(regs[s]) as u32 as u64,
            Op::Arsh32R(d, s) => {
                reg!(regs[d]) =
                    (reg!(regs[d]) as i32).wrapping_shr(reg!(regs[s]) as u32) as u32 as u64
            }
            Op::Movsx64(d, s, bits) => reg!(regs[d]) = sign_extend(reg!(regs[s]), bits),
            Op::Movsx32(d, s, bits) => {
                reg!(regs[d]) = sign_extend(reg!(regs[s]), bits) as u32 as u64
            }
            Op::Neg64(d) => reg!(regs[d]) = reg!(regs[d]).wrapping_neg(),
            Op::Neg32(d) => reg!(regs[d]) = (reg!(regs[d]) as u32).wrapping_neg() as u64,
            Op::Le(d, bits) => reg!(regs[d]) = truncate(reg!(regs[d]), bits),
            Op::Swap(d, bits) => reg!(regs[d]) = swap(reg!(regs[d]), bits),
            Op::Ja(t) => {
                pc = t as usize;
                continue;
            }
            Op::Jeq64I(d, v, t) => jump!(reg!(regs[d]) == v, t),
            Op::Jgt64I(d, v, t) => jump!(reg!(regs[d]) > v, t),
            Op::Jge64I(d, v, t) => jump!(reg!(regs[d]) >= v, t),
            Op::Jset64I(d, v, t) => jump!(reg!(regs[d]) & v != 0, t),
            Op::Jne64I(d, v, t) => jump!(reg!(regs[d]) != v, t),
            Op::Jsgt64I(d, v, t) => jump!((reg!(regs[d]) as i64) > v as i64, t),
            Op::Jsge64I(d, v, t) => jump!((reg!(regs[d]) as i64) >= v as i64, t),
            Op::Jlt64I(d, v, t) => jump!(reg!(regs[d]) < v, t),
            Op::Jle64I(d, v, t) => jump!(reg!(regs[d]) <= v, t),
            Op::Jslt64I(d, v, t) => jump!((reg!(regs[d]) as i64) < v as i64, t),
            Op::Jsle64I(d, v, t) => jump!((reg!(regs[d]) as i64) <= v as i64, t),
            Op::Jeq64R(d, s, t) => jump!(reg!(regs[d]) == reg!(regs[s]), t),
            Op::Jgt64R(d, s, t) => jump!(reg!(regs[d]) > reg!(regs[s]), t),
            Op::Jge64R(d, s, t) => jump!(reg!(regs[d]) >= reg!(regs[s]), t),
            Op::Jset64R(d, s, t) => jump!(reg!(regs[d]) & reg!(regs[s]) != 0, t),
            Op::Jne64R(d, s, t) => jump!(reg!(regs[d]) != reg!(regs[s]), t),
            Op::Jsgt64R(d, s, t) => jump!((reg!(regs[d]) as i64) > reg!(regs[s]) as i64, t),
            Op::Jsge64R(d, s, t) => jump!((reg!(regs[d]) as i64) >= reg!(regs[s]) as i64, t),
            Op::Jlt64R(d, s, t) => jump!(reg!(regs[d]) < reg!(regs[s]), t),
            Op::Jle64R(d, s, t) => jump!(reg!(regs[d]) <= reg!(regs[s]), t),
            Op::Jslt64R(d, s, t) => jump!((reg!(regs[d]) as i64) < reg!(regs[s]) as i64, t),
            Op::Jsle64R(d, s, t) => jump!((reg!(regs[d]) as i64) <= reg!(regs[s]) as i64, t),
            Op::Jeq32I(d, v, t) => jump!(reg!(regs[d]) as u32 == v, t),
            Op::Jgt32I(d, v, t) => jump!(reg!(regs[d]) as u32 > v, t),
            Op::Jge32I(d, v, t) => jump!(reg!(regs[d]) as u32 >= v, t),
            Op::Jset32I(d, v, t) => jump!(reg!(regs[d]) as u32 & v != 0, t),
            Op::Jne32I(d, v, t) => jump!(reg!(regs[d]) as u32 != v, t),
            Op::Jsgt32I(d, v, t) => jump!((reg!(regs[d]) as i32) > v as i32, t),
            Op::Jsge32I(d, v, t) => jump!((reg!(regs[d]) as i32) >= v as i32, t),
            Op::Jlt32I(d, v, t) => jump!((reg!(regs[d]) as u32) < v, t),
            Op::Jle32I(d, v, t) => jump!(reg!(regs[d]) as u32 <= v, t),
            Op::Jslt32I(d, v, t) => jump!((reg!(regs[d]) as i32) < v as i32, t),
            Op::Jsle32I(d, v, t) => jump!((reg!(regs[d]) as i32) <= v as i32, t),
            Op::Jeq32R(d, s, t) => jump!(reg!(regs[d]) as u32 == reg!(regs[s]) as u32, t),
            Op::Jgt32R(d, s, t) => jump!(reg!(regs[d]) as u32 > reg!(regs[s]) as u32, t),
            Op::Jge32R(d, s, t) => jump!(reg!(regs[d]) as u32 >= reg!(regs[s]) as u32, t),
            Op::Jset32R(d, s, t) => jump!(reg!(regs[d]) as u32 & reg!(regs[s]) as u32 != 0, t),
            Op::Jne32R(d, s, t) => jump!(reg!(regs[d]) as u32 != reg!(regs[s]) as u32, t),
            Op::Jsgt32R(d, s, t) => jump!((reg!(regs[d]) as i32) > reg!(regs[s]) as i32, t),
            Op::Jsge32R(d, s, t) => jump!((reg!(regs[d]) as i32) >= reg!(regs[s]) as i32, t),
            Op::Jlt32R(d, s, t) => jump!((reg!(regs[d]) as u32) < reg!(regs[s]) as u32, t),
            Op::Jle32R(d, s, t) => jump!(reg!(regs[d]) as u32 <= reg!(regs[s]) as u32, t),
            Op::Jslt32R(d, s, t) => jump!((reg!(regs[d]) as i32) < reg!(regs[s]) as i32, t),
            Op::Jsle32R(d, s, t) => jump!((reg!(regs[d]) as i32) <= reg!(regs[s]) as i32, t),
            Op::Call(id) => {
                let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
                let outcome = if id == MAP_LOOKUP_ELEM {
                    env.map_lookup_elem(args, memory)
                } else {
                    env.call_helper(id as i64, args, memory)
                };
                match outcome {
                    Ok(HelperOutcome::Return(v)) => regs[0] = v,
                    Ok(HelperOutcome::Exit(v)) => return Ok(Flow::Exit(v)),
                    Ok(HelperOutcome::TailCall(p)) => return Ok(Flow::TailCall(p)),
                    Err(e) => return Err(helper_error(pc, id as i64, e)),
                }
            }
            Op::CallWithCallback(id) => {
                let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
                match env.start_callback(id as i64, args, memory) {
                    None => match env.call_helper(id as i64, args, memory) {
                        Ok(HelperOutcome::Return(v)) => regs[0] = v,
                        Ok(HelperOutcome::Exit(v)) => return Ok(Flow::Exit(v)),
                        Ok(HelperOutcome::TailCall(p)) => return Ok(Flow::TailCall(p)),
                        Err(e) => return Err(helper_error(pc, id as i64, e)),
                    },
                    Some(Ok(CallbackStart::Return(v))) => regs[0] = v,
                    Some(Ok(CallbackStart::Calls(callback))) => {
                        let call = CallSite {
                            pc,
                            id,
                            return_pc: pc + 1,
                        };
                        if let Some(t) = call_back(
                            ops,
                            env,
                            &mut frames,
                            &mut regs,
                            memory,
                            stack,
                            call,
                            callback,
                        )? {
                            pc = t;
                            continue;
                        }
                    }
                    Some(Err(e)) => return Err(helper_error(pc, id as i64, e)),
                }
            }
            Op::CallLocal(t) => {
                enter_frame(&mut frames, &mut regs, memory, pc, pc + 1, stack, None)?;
                pc = t as usize;
                continue;
            }
            Op::Callx(s) => {
                let target = reg!(regs[s]);
                if target & FUNC_ADDR_TAG != 0 {
                    let t = (target & !FUNC_ADDR_TAG) as usize;
                    if !matches!(ops.get(t), Some(op) if *op != Op::LdImm64Tail) {
                        return Err(RunError::BadCallTarget { pc, target });
                    }
                    enter_frame(&mut frames, &mut regs, memory, pc, pc + 1, stack, None)?;
                    pc = t;
                    continue;
                }
                // Otherwise the register holds a helper id, as uBPF and the
                // conformance suite use callx.
                let id = target as i64;
                let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
                match env.call_helper(id, args, memory) {
                    Ok(HelperOutcome::Return(v)) => regs[0] = v,
                    Ok(HelperOutcome::Exit(v)) => return Ok(Flow::Exit(v)),
                    Ok(HelperOutcome::TailCall(p)) => return Ok(Flow::TailCall(p)),
                    Err(HelperCallError::Unknown) => {
                        return Err(RunError::BadCallTarget { pc, target })
                    }
                    Err(e) => return Err(helper_error(pc, id, e)),
                }
            }
            Op::Exit => match frames.pop() {
                None => return Ok(Flow::Exit(regs[0])),
                Some(f) => {
                    stack.leave(memory, frames.len() + 1);
                    regs[6..10].copy_from_slice(&f.saved);
                    regs[10] = stack.frame_pointer(frames.len());
                    if let Some(callback) = f.callback {
                        // A callback returned: 0 asks for the next call, 1 stops.
                        let call = CallSite {
                            pc: f.return_pc - 1,
                            id: callback_helper_id(&callback),
                            return_pc: f.return_pc,
                        };
                        if regs[0] == 0 {
                            if let Some(t) = call_back(
                                ops,
                                env,
                                &mut frames,
                                &mut regs,
                                memory,
                                stack,
                                call,
                                callback,
                            )? {
                                pc = t;
                                continue;
                            }
                        } else {
                            regs[0] = callback.calls;
                            env.end_callback(&callback);
                        }
                    }
                    pc = f.return_pc;
                    continue;
                }
            },
            Op::Ldx8(d, s, off) => reg!(regs[d]) = load!(1, u8, s, off) as u64,
            Op::Ldx16(d, s, off) => reg!(regs[d]) = load!(2, u16, s, off) as u64,
            Op::Ldx32(d, s, off) => reg!(regs[d]) = load!(4, u32, s, off) as u64,
            Op::Ldx32Ctx(d, s, off) => {
                let addr = ea(reg!(regs[s]), off);
                reg!(regs[d]) = match env.context_pointer(addr) {
                    Some(ptr) => ptr,
                    None => load!(4, u32, s, off) as u64,
                }
            }
            Op::Ldx64(d, s, off) => reg!(regs[d]) = load!(8, u64, s, off),
            Op::Ldxs8(d, s, off) => reg!(regs[d]) = load!(1, i8, s, off) as i64 as u64,
            Op::Ldxs16(d, s, off) => reg!(regs[d]) = load!(2, i16, s, off) as i64 as u64,
            Op::Ldxs32(d, s, off) => reg!(regs[d]) = load!(4, i32, s, off) as i64 as u64,
            Op::St8(b, off, v) => store!(1, u8, b, off, v),
            Op::St16(b, off, v) => store!(2, u16, b, off, v),
            Op::St32(b, off, v) => store!(4, u32, b, off, v),
            Op::St64(b, off, v) => store!(8, u64, b, off, v),
            Op::Stx8(b, s, off) => store!(1, u8, b, off, reg!(regs[s])),
            Op::Stx16(b, s, off) => store!(2, u16, b, off, reg!(regs[s])),
            Op::Stx32(b, s, off) => store!(4, u32, b, off, reg!(regs[s])),
            Op::Stx64(b, s, off) => store!(8, u64, b, off, reg!(regs[s])),
            Op::Atomic(kind, fetch, dw, b, s, off) => {
                let addr = ea(reg!(regs[b]), off);
                let size = if dw { 8 } else { 4 };
                match atomic(memory, kind, dw, addr, reg!(regs[s]), regs[0]) {
                    Ok((old, _)) => {
                        if kind == AtomicKind::Cmpxchg {
                            regs[0] = old;
                        } else if fetch {
                            reg!(regs[s]) = old;
                        }
                    }
                    Err(k) => return Err(fault(pc, stack, frames.len(), addr, size, "atomic", k)),
                }
            }
            Op::LdAbs(size, imm) => {
                if !packet_load(memory, env, &mut regs, size, imm as i64 as u64) {
                    // The kernel ends the program with 0 on an out-of-bounds packet load.
                    return Ok(Flow::Exit(0));
                }
            }
            Op::LdInd(size, s, imm) => {
                let off = (reg!(regs[s]) as u32 as u64).wrapping_add(imm as i64 as u64);
                if !packet_load(memory, env, &mut regs, size, off) {
                    return Ok(Flow::Exit(0));
                }
            }
            // The two-slot loads skip their second slot.
            Op::Lddw(d, v) => {
                reg!(regs[d]) = v;
                pc += 2;
                continue;
            }
            Op::LdFunc(d, t) => {
                reg!(regs[d]) = FUNC_ADDR_TAG | t as u64;
                pc += 2;
                continue;
            }
            Op::LdMap(d, index) => match env.map_handle(index) {
                Ok(v) => {
                    reg!(regs[d]) = v;
                    pc += 2;
                    continue;
                }
                Err(e) => return Err(helper_error(pc, -1, e)),
            },
            Op::LdMapValue(d, index, offset) => match env.map_value_addr(index, offset, memory) {
                Ok(v) => {
                    reg!(regs[d]) = v;
                    pc += 2;
                    continue;
                }
                Err(e) => return Err(helper_error(pc, -1, e)),
            },
            // The loader never lets control reach a second slot.
            Op::LdImm64Tail => return Err(RunError::Internal { pc }),
        }
        pc += 1;
    }
}

/// A bpf-to-bpf call (or a helper's call of a callback): saves the
/// callee-saved registers and where to return, and gives the callee a fresh,
/// zeroed 512-byte frame.
#[allow(clippy::too_many_arguments)]
fn enter_frame(
    frames: &mut Vec<Frame>,
    regs: &mut [u64; 16],
    memory: &mut AddressSpace,
    pc: usize,
    return_pc: usize,
    stack: &mut Stack,
    callback: Option<Box<Callback>>,
) -> Result<(), RunError> {
    if frames.len() + 1 >= MAX_FRAMES {
        return Err(RunError::CallDepth {
            pc,
            max: MAX_FRAMES,
        });
    }
    frames.push(Frame {
        return_pc,
        saved: [regs[6], regs[7], regs[8], regs[9]],
        callback,
    });
    stack.enter(memory, frames.len());
    regs[10] = stack.frame_pointer(frames.len());
    Ok(())
}

/// The helper call a callback belongs to.
#[derive(Clone, Copy)]
struct CallSite {
    pc: usize,
    id: i32,
    return_pc: usize,
}

pub(crate) fn callback_helper_id(callback: &Callback) -> i32 {
    match callback.kind {
        CallbackKind::Loop { .. } => crate::builtins::LOOP,
        CallbackKind::MapElements { .. } => crate::builtins::FOR_EACH_MAP_ELEM,
    }
}

/// Makes `callback`'s next call: enters a frame for it with its arguments
/// and returns where to jump, or, when it is done, sets `r0` to what the
/// helper returns (the calls made) and returns `None`.
#[allow(clippy::too_many_arguments)]
fn call_back(
    ops: &[Op],
    env: &mut dyn Environment,
    frames: &mut Vec<Frame>,
    regs: &mut [u64; 16],
    memory: &mut AddressSpace,
    stack: &mut Stack,
    call: CallSite,
    mut callback: Box<Callback>,
) -> Result<Option<usize>, RunError> {
    let args = match env.next_callback(&mut callback, memory) {
        Ok(Some(args)) => args,
        Ok(None) => {
            regs[0] = callback.calls;
            env.end_callback(&callback);
            return Ok(None);
        }
        Err(e) => return Err(helper_error(call.pc, call.id as i64, e)),
    };
    let func = callback.func;
    let target = (func & !FUNC_ADDR_TAG) as usize;
    if func & FUNC_ADDR_TAG == 0 || !matches!(ops.get(target), Some(op) if *op != Op::LdImm64Tail) {
        return Err(RunError::HelperFault {
            pc: call.pc,
            name: crate::builtins::helper_name(call.id).to_string(),
            message: format!("callback_fn {func:#x} is not a function of the program"),
        });
    }
    enter_frame(
        frames,
        regs,
        memory,
        call.pc,
        call.return_pc,
        stack,
        Some(callback),
    )?;
    regs[1..6].copy_from_slice(&args);
    Ok(Some(target))
}

/// `LD_ABS`/`LD_IND`: r0 = big-endian packet bytes at `off`; false when out of bounds.
fn packet_load(
    memory: &AddressSpace,
    env: &dyn Environment,
    regs: &mut [u64; 16],
    size: u8,
    off: u64,
) -> bool {
    match packet_value(memory, env, size, off) {
        Some(v) => {
            regs[0] = v;
            true
        }
        None => false,
    }
}

/// The big-endian value of `size` packet bytes at `off`; `None` when out of bounds.
pub(crate) fn packet_value(
    memory: &AddressSpace,
    env: &dyn Environment,
    size: u8,
    off: u64,
) -> Option<u64> {
    let base = env.packet()?;
    if off > u32::MAX as u64 {
        return None;
    }
    let b = memory.read(base.wrapping_add(off), size as usize).ok()?;
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
}

/// A helper call by id as `Op::Call` makes it: `Ok(r0)` to continue, or
/// how the run stops.
pub(crate) fn call_helper_step(
    env: &mut dyn Environment,
    memory: &mut AddressSpace,
    pc: usize,
    id: i64,
    args: [u64; 5],
) -> Result<u64, Result<crate::engine::Flow, RunError>> {
    use crate::engine::Flow as F;
    match env.call_helper(id, args, memory) {
        Ok(HelperOutcome::Return(v)) => Ok(v),
        Ok(HelperOutcome::Exit(v)) => Err(Ok(F::Exit(v))),
        Ok(HelperOutcome::TailCall(p)) => Err(Ok(F::TailCall(p))),
        Err(e) => Err(Err(helper_error(pc, id, e))),
    }
}
