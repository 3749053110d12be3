//! The hook compiled engines (the JIT in `bpfkit-jit`) run through, so the
//! VM keeps one set of semantics: a [`Program`] may carry [`CompiledCode`],
//! which [`Vm`](crate::Vm)'s runs then execute instead of the interpreter,
//! each program of a tail call chain on its own terms. The compiled code
//! reaches everything that is not plain arithmetic — slow-path memory
//! accesses, helpers, maps, call frames, callbacks, packet loads — through
//! a [`Machine`], whose methods build the very errors the interpreter
//! builds, so both engines end a run the same way.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use crate::error::{FaultKind, RunError};
pub use crate::interp::LookupMemo;
pub use crate::interp::FUNC_ADDR_TAG;
use crate::interp::{
    atomic_for_compiled, call_helper_step, callback_helper_id, fault, helper_error, packet_value,
    Callback, CallbackStart, EngineState, Environment, HelperCallError, Stack,
};
use crate::interp::{HelperOutcome, MAX_FRAMES};
use crate::memory::AddressSpace;
pub use crate::program::{AtomicKind, Op};
use crate::Program;

/// The helper id [`Machine::map_lookup_elem`] stands for (`bpf_map_lookup_elem`).
pub const MAP_LOOKUP_ELEM: i32 = crate::interp::MAP_LOOKUP_ELEM;

/// What atomic `kind` stores over `old` (zero-extended from 32 bits unless
/// `dw`) with operand `operand` and, for cmpxchg, `r0`: the interpreter's
/// rule, for compiled code doing an atomic on bytes it holds. `None` when
/// it stores nothing (a cmpxchg that does not match).
#[inline]
pub fn atomic_value(kind: AtomicKind, dw: bool, old: u64, operand: u64, r0: u64) -> Option<u64> {
    crate::interp::atomic_result(kind, dw, old, operand, r0)
}

/// Machine code (or any other executable form) of a [`Program`], attached
/// with [`Program::set_compiled`].
pub trait CompiledCode: Send + Sync + Debug {
    /// Runs the program from its first instruction with `r1..r5` = `args`,
    /// in the entry frame the machine has made.
    fn run(&self, machine: &mut Machine<'_>, args: [u64; 5]) -> Result<Flow, RunError>;

    /// Whether the code writes memory only where the program's own store,
    /// atomic and call instructions would (code generated from them does).
    /// The VM then zeroes, before it reuses a stack frame's buffer, only
    /// the bytes the program's stores could have reached; otherwise (the
    /// default) the whole frame.
    fn writes_as_its_program(&self) -> bool {
        false
    }
}

/// How a run of one program of a tail call chain ended.
#[derive(Debug)]
pub enum Flow {
    /// The program (or a helper) ended the run with this `r0`.
    Exit(u64),
    /// A helper replaced the program (`bpf_tail_call`).
    TailCall(Arc<Program>),
}

/// A run must stop: the program or a helper ended it, or it failed. Compiled
/// code unwinds to its entry and returns [`Halt::into_result`].
#[derive(Debug)]
pub struct Halt(Result<Flow, RunError>);

impl Halt {
    /// What the run of the program returns.
    pub fn into_result(self) -> Result<Flow, RunError> {
        self.0
    }
}

impl From<RunError> for Halt {
    fn from(e: RunError) -> Halt {
        Halt(Err(e))
    }
}

/// Where an indirect call (`callx`) or a callback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStep {
    /// Nothing to call: continue after the call with `r0` = this value.
    Return(u64),
    /// Call the function at this slot with `r1..r5` = `args` (for a
    /// callback; unchanged registers for `callx`), in a frame already made.
    Call {
        /// Slot index of the function.
        target: usize,
        /// Arguments, when the runtime sets them (callbacks).
        args: Option<[u64; 5]>,
    },
}

/// A helper's call of a program function, between two calls.
struct PendingCallback {
    pc: usize,
    id: i32,
    callback: Box<Callback>,
}

/// The runtime state of one program run, as compiled code sees it.
pub struct Machine<'a> {
    pub(crate) program: &'a Program,
    pub(crate) memory: &'a mut AddressSpace,
    pub(crate) env: &'a mut dyn Environment,
    pub(crate) stack: &'a mut Stack,
    pub(crate) remaining: &'a mut u64,
    pub(crate) budget: u64,
    /// Live frames above the entry frame.
    depth: usize,
    callbacks: Vec<PendingCallback>,
    /// Where compiled code keeps state for the next run over this address
    /// space, when one may follow.
    engine: Option<&'a mut EngineState>,
}

impl<'a> Machine<'a> {
    pub(crate) fn new(
        program: &'a Program,
        memory: &'a mut AddressSpace,
        env: &'a mut dyn Environment,
        stack: &'a mut Stack,
        remaining: &'a mut u64,
        budget: u64,
        engine: Option<&'a mut EngineState>,
    ) -> Machine<'a> {
        Machine {
            program,
            memory,
            env,
            stack,
            remaining,
            budget,
            depth: 0,
            callbacks: Vec::new(),
            engine,
        }
    }

    /// Takes the state compiled code kept with [`Machine::keep_state`] in
    /// the last run over this run's address space, if there was one and
    /// runs over the space go on. Only runs over that same space get it
    /// back, so it may describe the space: its regions, as they were at
    /// some [`AddressSpace::layout_version`]. Code of any program (the
    /// next of a tail call chain, another program run over the space) may
    /// get it: state that is not its own it drops.
    pub fn take_state(&mut self) -> Option<Box<dyn Any + Send>> {
        self.engine.as_deref_mut()?.take()
    }

    /// Whether a run over this address space may follow, so that state
    /// given to [`Machine::keep_state`] is kept.
    pub fn keeps_state(&self) -> bool {
        self.engine.is_some()
    }

    /// Keeps `state` for the next run over this address space (dropped
    /// when none will follow, as for a space the caller prepared).
    pub fn keep_state(&mut self, state: Box<dyn Any + Send>) {
        if let Some(slot) = self.engine.as_deref_mut() {
            *slot = Some(state);
        }
    }

    /// The program running.
    #[inline]
    pub fn program(&self) -> &Program {
        self.program
    }

    /// The run's regions. Compiled code may access owned regions' bytes
    /// directly between two calls into the machine; any call may change
    /// the regions (frames, map values), so it must look again after each.
    #[inline]
    pub fn memory(&mut self) -> &mut AddressSpace {
        self.memory
    }

    /// Instructions the run may still execute.
    #[inline]
    pub fn remaining(&self) -> u64 {
        *self.remaining
    }

    /// Records the instructions the run may still execute.
    #[inline]
    pub fn set_remaining(&mut self, remaining: u64) {
        *self.remaining = remaining;
    }

    /// The error of running out of budget at `pc` (the budget is then spent).
    pub fn budget_exhausted(&mut self, pc: usize) -> Halt {
        *self.remaining = 0;
        Halt(Err(RunError::BudgetExhausted {
            pc,
            budget: self.budget,
        }))
    }

    /// The current call depth (0 in the entry frame).
    #[inline]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// `r10` of the current frame.
    #[inline]
    pub fn frame_pointer(&self) -> u64 {
        self.stack.frame_pointer(self.depth)
    }

    fn fault(&self, pc: usize, addr: u64, size: usize, access: &'static str, k: FaultKind) -> Halt {
        Halt(Err(fault(
            pc, self.stack, self.depth, addr, size, access, k,
        )))
    }

    /// Loads `size` (1, 2, 4 or 8) bytes at `addr` for the instruction at
    /// `pc`, zero-extended.
    #[inline]
    pub fn load(&mut self, pc: usize, addr: u64, size: usize) -> Result<u64, Halt> {
        let r = match size {
            1 => self.memory.load::<1>(addr).map(|b| b[0] as u64),
            2 => self
                .memory
                .load::<2>(addr)
                .map(|b| u16::from_le_bytes(b) as u64),
            4 => self
                .memory
                .load::<4>(addr)
                .map(|b| u32::from_le_bytes(b) as u64),
            _ => self.memory.load::<8>(addr).map(u64::from_le_bytes),
        };
        r.map_err(|k| self.fault(pc, addr, size, "load", k))
    }

    /// A 32-bit load that may read a context pointer field (`Op::Ldx32Ctx`).
    pub fn load_context32(&mut self, pc: usize, addr: u64) -> Result<u64, Halt> {
        match self.env.context_pointer(addr) {
            Some(ptr) => Ok(ptr),
            None => self.load(pc, addr, 4),
        }
    }

    /// Stores the low `size` bytes of `value` at `addr`.
    #[inline]
    pub fn store(&mut self, pc: usize, addr: u64, size: usize, value: u64) -> Result<(), Halt> {
        let b = value.to_le_bytes();
        let r = match size {
            1 => self.memory.store::<1>(addr, [b[0]]),
            2 => self.memory.store::<2>(addr, [b[0], b[1]]),
            4 => self.memory.store::<4>(addr, [b[0], b[1], b[2], b[3]]),
            _ => self.memory.store::<8>(addr, b),
        };
        r.map_err(|k| self.fault(pc, addr, size, "store", k))
    }

    /// An atomic operation at `addr` with operand `src` (and `r0` for
    /// cmpxchg); returns the old value.
    #[inline]
    pub fn atomic(
        &mut self,
        pc: usize,
        kind: AtomicKind,
        dw: bool,
        addr: u64,
        src: u64,
        r0: u64,
    ) -> Result<u64, Halt> {
        let size = if dw { 8 } else { 4 };
        match atomic_for_compiled(self.memory, kind, dw, addr, src, r0) {
            Ok(old) => Ok(old),
            Err(k) => Err(self.fault(pc, addr, size, "atomic", k)),
        }
    }

    /// `LD_ABS`/`LD_IND`: the big-endian packet bytes at `off`; an
    /// out-of-bounds load ends the program with 0, as in the kernel.
    pub fn packet_load(&mut self, size: u8, off: u64) -> Result<u64, Halt> {
        packet_value(self.memory, self.env, size, off).ok_or(Halt(Ok(Flow::Exit(0))))
    }

    /// The value `lddw rX, map[index]` loads.
    pub fn map_handle(&mut self, pc: usize, index: u32) -> Result<u64, Halt> {
        self.env
            .map_handle(index)
            .map_err(|e| Halt(Err(helper_error(pc, -1, e))))
    }

    /// The address `lddw rX, map_value[index] + offset` loads.
    pub fn map_value_addr(&mut self, pc: usize, index: u32, offset: u32) -> Result<u64, Halt> {
        self.env
            .map_value_addr(index, offset, self.memory)
            .map_err(|e| Halt(Err(helper_error(pc, -1, e))))
    }

    /// Calls helper `id` for the instruction at `pc`; returns `r0`.
    pub fn call_helper(&mut self, pc: usize, id: i32, args: [u64; 5]) -> Result<u64, Halt> {
        call_helper_step(self.env, self.memory, pc, id as i64, args).map_err(Halt)
    }

    /// `call 1` (`bpf_map_lookup_elem`) at `pc` with `r1..r5` = `args`;
    /// returns `r0`, the same as [`Machine::call_helper`] with id 1 by the
    /// environment's direct path to its maps, and when compiled code may
    /// give the same result again without asking (see [`LookupMemo`]).
    #[inline]
    pub fn map_lookup_memo(
        &mut self,
        pc: usize,
        args: [u64; 5],
    ) -> Result<(u64, Option<LookupMemo>), Halt> {
        let id = MAP_LOOKUP_ELEM as i64;
        match self.env.map_lookup_memo(args, self.memory) {
            Ok((HelperOutcome::Return(v), memo)) => Ok((v, memo)),
            Ok((HelperOutcome::Exit(v), _)) => Err(Halt(Ok(Flow::Exit(v)))),
            Ok((HelperOutcome::TailCall(p), _)) => Err(Halt(Ok(Flow::TailCall(p)))),
            Err(e) => Err(Halt(Err(helper_error(pc, id, e)))),
        }
    }

    /// Whether [`Machine::map_lookup_memo`] may lock map values (it does
    /// not for the built-in lookup): compiled code holding values locked
    /// ([`crate::SharedBytes::try_hold`]) must let go of them first if so.
    #[inline]
    pub fn lookup_locks_values(&self) -> bool {
        self.env.lookup_locks_values()
    }

    /// Enters a new frame for a bpf-to-bpf call at `pc`; returns the new `r10`.
    pub fn enter_frame(&mut self, pc: usize) -> Result<u64, Halt> {
        // The interpreter's enter_frame: the entry frame plus the callee's
        // must stay within MAX_FRAMES.
        if self.depth + 2 > MAX_FRAMES {
            return Err(Halt(Err(RunError::CallDepth {
                pc,
                max: MAX_FRAMES,
            })));
        }
        self.depth += 1;
        self.stack.enter(self.memory, self.depth);
        Ok(self.frame_pointer())
    }

    /// Leaves the current frame (its `exit`); returns the caller's `r10`.
    pub fn leave_frame(&mut self) -> u64 {
        if self.depth > 0 {
            self.stack.leave(self.memory, self.depth);
            self.depth -= 1;
        }
        self.frame_pointer()
    }

    /// `callx` with `target` (the register's value) at `pc`: a function
    /// address enters a frame and asks for the call; otherwise the value is
    /// a helper id, as uBPF and the conformance suite use callx.
    pub fn callx(&mut self, pc: usize, target: u64, args: [u64; 5]) -> Result<CallStep, Halt> {
        if target & FUNC_ADDR_TAG != 0 {
            let t = (target & !FUNC_ADDR_TAG) as usize;
            if !matches!(self.program.ops.get(t), Some(op) if *op != Op::LdImm64Tail) {
                return Err(Halt(Err(RunError::BadCallTarget { pc, target })));
            }
            self.enter_frame(pc)?;
            return Ok(CallStep::Call {
                target: t,
                args: None,
            });
        }
        let id = target as i64;
        match self.env.call_helper(id, args, self.memory) {
            Ok(HelperOutcome::Return(v)) => Ok(CallStep::Return(v)),
            Ok(HelperOutcome::Exit(v)) => Err(Halt(Ok(Flow::Exit(v)))),
            Ok(HelperOutcome::TailCall(p)) => Err(Halt(Ok(Flow::TailCall(p)))),
            Err(HelperCallError::Unknown) => Err(Halt(Err(RunError::BadCallTarget { pc, target }))),
            Err(e) => Err(Halt(Err(helper_error(pc, id, e)))),
        }
    }

    /// A helper that may call a program function back (`Op::CallWithCallback`)
    /// at `pc`: either it returns at once, or the first call is asked for.
    pub fn start_callback(&mut self, pc: usize, id: i32, args: [u64; 5]) -> Result<CallStep, Halt> {
        match self.env.start_callback(id as i64, args, self.memory) {
            None => self.call_helper(pc, id, args).map(CallStep::Return),
            Some(Ok(CallbackStart::Return(v))) => Ok(CallStep::Return(v)),
            Some(Ok(CallbackStart::Calls(callback))) => self.call_back(pc, id, callback),
            Some(Err(e)) => Err(Halt(Err(helper_error(pc, id as i64, e)))),
        }
    }

    /// The callback function the innermost callback helper called returned
    /// `r0` (its frame already left): 0 asks for the next call, anything
    /// else stops the helper, which returns the calls made.
    pub fn callback_returned(&mut self, r0: u64) -> Result<CallStep, Halt> {
        let Some(pending) = self.callbacks.pop() else {
            return Err(Halt(Err(RunError::Internal { pc: 0 })));
        };
        if r0 == 0 {
            self.call_back(pending.pc, pending.id, pending.callback)
        } else {
            self.env.end_callback(&pending.callback);
            Ok(CallStep::Return(pending.callback.calls))
        }
    }

    /// The interpreter's call_back: the next call of `callback`, or what the
    /// helper returns when it is done.
    fn call_back(
        &mut self,
        pc: usize,
        id: i32,
        mut callback: Box<Callback>,
    ) -> Result<CallStep, Halt> {
        let args = match self.env.next_callback(&mut callback, self.memory) {
            Ok(Some(args)) => args,
            Ok(None) => {
                self.env.end_callback(&callback);
                return Ok(CallStep::Return(callback.calls));
            }
            Err(e) => return Err(Halt(Err(helper_error(pc, id as i64, e)))),
        };
        let func = callback.func;
        let target = (func & !FUNC_ADDR_TAG) as usize;
        if func & FUNC_ADDR_TAG == 0
            || !matches!(self.program.ops.get(target), Some(op) if *op != Op::LdImm64Tail)
        {
            return Err(Halt(Err(RunError::HelperFault {
                pc,
                name: crate::builtins::helper_name(id).to_string(),
                message: format!("callback_fn {func:#x} is not a function of the program"),
            })));
        }
        self.enter_frame(pc)?;
        debug_assert_eq!(id, callback_helper_id(&callback));
        self.callbacks.push(PendingCallback { pc, id, callback });
        Ok(CallStep::Call {
            target,
            args: Some(args),
        })
    }
}
