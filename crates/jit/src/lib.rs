//! An x86-64 JIT for bpfkit's userspace VM.
//!
//! [`compile`] translates a [`Program`]'s pre-decoded instructions to x86-64
//! machine code and attaches it, so that every run of the program through a
//! [`Vm`](bpfkit_vm::Vm) executes the machine code instead of the
//! interpreter, with the interpreter's semantics and safety:
//!
//! - every load, store and atomic is checked against the run's regions:
//!   inline against tables of the regions the run owns (stack frames,
//!   context, packet, input), one compare of the address with the first
//!   one an access of its size may not start at, and otherwise through the
//!   VM's own checked access, so a bad access ends the run with the
//!   interpreter's [`RunError`](bpfkit_vm::RunError). Atomics in place are
//!   plain read-modify-write instructions, without `lock`: inline bytes
//!   are the run's alone while it runs (see the next item). The tables are
//!   kept for the next run over the same space
//!   ([`Machine::keep_state`](bpfkit_vm::engine::Machine::keep_state)) and
//!   filled again only when its layout moved, so run after run of a short
//!   program over input of one length ([`Vm::run`](bpfkit_vm::Vm::run),
//!   a test run's repetitions) does not rebuild them;
//! - a map value (shared with its map) becomes inline too once the run
//!   first reaches it: the run holds its bytes locked
//!   ([`SharedBytes::try_hold`](bpfkit_vm::SharedBytes::try_hold)) until
//!   its next call into the machine that may lock them (any but a
//!   built-in lookup or a map handle) or its end, so a thread reading the
//!   map meanwhile waits instead of racing the generated code;
//! - a one-block loop whose loads and stores move by a constant step (a
//!   copy, a scan) has its checks hoisted: at the back edge the run works
//!   out how many more iterations stay in bounds and runs those in an
//!   unchecked copy with host addresses in the base registers, returning
//!   to the checked loop before the first iteration that could fault; a
//!   loop that only copies (load, store of it, bases and a counter
//!   stepped, the counter compared with a bound) has its iterations
//!   counted and, unless the destination starts inside the source,
//!   copied at once (a `memmove`), as LLVM's LoopIdiomRecognize makes
//!   such loops a `memcpy`;
//! - `bpf_map_lookup_elem` tries a lookup cache in the run's context block
//!   first (`lookup`): a lookup of a key in a map the built-in helper
//!   gave before in this run, with the map's value generation unchanged
//!   and no region moved since, gives the same value address without
//!   calling into Rust, as an inline cache does;
//! - the instruction budget (kept in r9) is counted per straight-line
//!   block, on entry, for the block's instructions; loads and stores do
//!   not end blocks (a fault gives back the rest of its block), and a block
//!   that would overrun the budget stops at the instruction the interpreter
//!   stops at, after any access before it that faults;
//! - helpers, maps, call frames, callbacks and packet loads go through
//!   [`bpfkit_vm::engine::Machine`], the same code the interpreter uses.
//!
//! Registers follow the kernel's x86 JIT (arch/x86/net/bpf_jit_comp.c,
//! `reg2hex`): r0 = rax, r1 = rdi, r2 = rsi, r3 = rdx, r4 = rcx, r5 = r8,
//! r6 = rbx, r7 = r13, r8 = r14, r9 = r15, r10 = rbp; r12 holds the run's
//! context block, r9 the budget, r10 and r11 are scratch.
//!
//! [`a64`] is the ARM64 back end: it packages a program as a static
//! aarch64 executable, so the A64 code is checked under qemu-aarch64. On
//! its own ([`qemu::Qemu::run`]) the executable has the conformance
//! suite's memory and helper 5; [`hosted`] makes it a VM engine
//! ([`Engine::JitArm64`]), asking the VM's [`Machine`] for helpers, maps,
//! frames, callbacks and tail calls as the x86-64 code does.
//!
//! [`Machine`]: bpfkit_vm::engine::Machine
//!
//! ```
//! # #[cfg(target_arch = "x86_64")] {
//! use bpfkit_isa::{Insn, Reg, Width, AluOp, Operand};
//! use bpfkit_vm::{Program, Vm};
//! let mut prog = Program::new(vec![
//!     Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(42) },
//!     Insn::Exit,
//! ]).unwrap();
//! bpfkit_jit::compile(&mut prog).unwrap();
//! assert_eq!(Vm::new().run(&prog, &mut []).unwrap(), 42);
//! # }
//! ```
#![warn(missing_docs)]

pub mod a64;
mod blocks;
#[cfg(target_arch = "x86_64")]
mod exec;
pub mod hosted;
#[cfg(target_arch = "x86_64")]
mod lookup;
#[cfg(target_arch = "x86_64")]
mod loops;
pub mod qemu;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_asm;

use bpfkit_vm::Program;

#[cfg(target_arch = "x86_64")]
pub use x86::JitProgram;

/// Why a program could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The assembler refused an instruction sequence (a bug in the JIT).
    #[error("assembling the program failed: {0}")]
    Assemble(String),
    /// Executable memory could not be mapped.
    #[error("mapping executable memory: {0}")]
    Memory(#[from] std::io::Error),
    /// This machine's architecture has no back end.
    #[error("the JIT has no back end for this architecture")]
    Unsupported,
    /// The ARM64 back end's emulator is missing or could not start.
    #[error(transparent)]
    Qemu(Box<qemu::QemuError>),
}

/// Why a program could not be compiled in verified-unchecked mode.
#[derive(Debug, thiserror::Error)]
pub enum VerifiedJitError {
    /// bpfkit's verifier does not accept the program.
    #[error("the verifier rejects the program: {0}")]
    Rejected(Box<bpfkit_verifier::Rejection>),
    /// Compiling failed.
    #[error(transparent)]
    Jit(#[from] JitError),
}

/// Which engine runs programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The interpreter of `bpfkit-vm`.
    Interpreter,
    /// The JIT (the default where it has a back end: x86-64).
    Jit,
    /// The ARM64 back end, its code run under qemu-aarch64 (Debian package
    /// `qemu-user`) with the VM's helpers and maps ([`hosted`]): for
    /// checking A64 code on another machine, as each run starts qemu.
    JitArm64,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::native()
    }
}

impl Engine {
    /// The engine used unless one is chosen: the JIT on x86-64, the
    /// interpreter elsewhere.
    pub fn native() -> Engine {
        if cfg!(target_arch = "x86_64") {
            Engine::Jit
        } else {
            Engine::Interpreter
        }
    }

    /// Prepares `program` to run on this engine: compiles it for the JIT,
    /// removes compiled code for the interpreter.
    pub fn prepare(self, program: &mut Program) -> Result<(), JitError> {
        match self {
            Engine::Interpreter => {
                program.set_compiled(None);
                Ok(())
            }
            Engine::Jit => compile(program),
            Engine::JitArm64 => {
                let qemu = qemu::Qemu::find().map_err(|e| JitError::Qemu(Box::new(e)))?;
                hosted::compile_a64(program, &std::sync::Arc::new(qemu))
            }
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "interp" | "interpreter" => Ok(Engine::Interpreter),
            "jit" => Ok(Engine::Jit),
            "jit-arm64" => Ok(Engine::JitArm64),
            _ => Err(format!(
                "unknown engine `{s}` (expected `interp`, `jit` or `jit-arm64`)"
            )),
        }
    }
}

/// Verifies `program` with `verifier` and `opts` and, when it is accepted,
/// compiles it as [`compile`] does except that the loads and stores the
/// verifier proved to stay within the running function's own stack frame
/// (pointers derived from `r10`, at constant or bounded offsets) get no
/// bounds check ("verified-unchecked"); every other access stays checked.
/// Returns the verifier's verdict.
///
/// The verifier is trusted as the kernel trusts its own: its stack model
/// (512 bytes per frame, `r10` read-only) is the VM's.
pub fn compile_verified(
    program: &mut Program,
    verifier: &bpfkit_verifier::Verifier,
    opts: &bpfkit_verifier::VerifyOptions,
) -> Result<bpfkit_verifier::Verdict, VerifiedJitError> {
    let verdict = verifier
        .verify(bpfkit_verifier::Program::Raw(program.insns()), opts)
        .map_err(VerifiedJitError::Rejected)?;
    #[cfg(target_arch = "x86_64")]
    {
        // The verifier counts slots as the program's ops do; a mismatch
        // (never expected) leaves every access checked.
        let own_stack = if verdict.stack_accesses.len() == program.ops().len() {
            verdict.stack_accesses.clone()
        } else {
            Vec::new()
        };
        let code = x86::JitProgram::compile_trusting(program, own_stack)?;
        program.set_compiled(Some(std::sync::Arc::new(code)));
        Ok(verdict)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Err(JitError::Unsupported.into())
    }
}

/// Compiles `program` to machine code and attaches it, so that runs of the
/// program execute it.
pub fn compile(program: &mut Program) -> Result<(), JitError> {
    #[cfg(target_arch = "x86_64")]
    {
        let code = x86::JitProgram::compile(program)?;
        program.set_compiled(Some(std::sync::Arc::new(code)));
        Ok(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = program;
        Err(JitError::Unsupported)
    }
}
