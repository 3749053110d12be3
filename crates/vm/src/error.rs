//! Errors: loading a program, and faults that end a run.

use crate::memory::RegionKind;

/// Why a memory access faulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind {
    /// The address lies in no region.
    #[error("address is not in any region")]
    Unmapped,
    /// The access runs past the end of its region.
    #[error("access past the end of the {region:?} region ({size} bytes)")]
    OutOfBounds {
        /// The region.
        region: RegionKind,
        /// Its size.
        size: usize,
    },
    /// An access near a stack frame but outside it: each call frame has 512
    /// bytes, `r10-512` up to `r10`, as in the kernel.
    #[error(
        "stack access at r10{offset:+} of frame {frame} is outside the frame's 512 bytes \
         (r10-512 up to r10)"
    )]
    OutsideStackFrame {
        /// The nearest frame (0 is the entry frame).
        frame: usize,
        /// Offset of the access from that frame's `r10`.
        offset: i64,
    },
    /// An access to the stack frame of a call that has returned.
    #[error(
        "stack access at r10{offset:+} of frame {frame}, whose call has returned \
         (the current frame is {current})"
    )]
    ReturnedStackFrame {
        /// The frame the address lies in.
        frame: usize,
        /// Offset of the access from that frame's `r10`.
        offset: i64,
        /// The frame running.
        current: usize,
    },
    /// A store to a read-only region.
    #[error("store to read-only {region:?} region")]
    ReadOnly {
        /// The region.
        region: RegionKind,
    },
}

/// A program could not be prepared for execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytecode does not decode.
    #[error(transparent)]
    Decode(#[from] bpfkit_isa::DecodeError),
    /// The program has no instructions.
    #[error("program is empty")]
    Empty,
    /// A jump leaves the program or lands inside an `lddw`.
    #[error("instruction {pc}: jump target {target} is outside the program or inside lddw")]
    BadJumpTarget {
        /// The jump's slot index.
        pc: usize,
        /// The target slot index.
        target: i64,
    },
    /// A bpf-to-bpf call or `lddw rX, func` names a target outside the
    /// program or inside `lddw`.
    #[error("instruction {pc}: call target {target} is outside the program or inside lddw")]
    BadCallTarget {
        /// The call's slot index.
        pc: usize,
        /// The target slot index.
        target: i64,
    },
    /// A jump leaves the subprogram it is in, which the kernel rejects
    /// (check_subprogs: "jump out of range").
    #[error(
        "instruction {pc}: jump to {target} leaves its subprogram (instructions \
         {start}..{end}); the kernel rejects jumps between subprograms"
    )]
    JumpLeavesSubprogram {
        /// The jump's slot index.
        pc: usize,
        /// The target slot index.
        target: i64,
        /// First slot of the jump's subprogram.
        start: usize,
        /// Slot after its last.
        end: usize,
    },
    /// A subprogram's last instruction is not `exit` or `ja`, so execution
    /// would run on into the next subprogram.
    #[error(
        "instruction {pc}: execution can fall through into the subprogram at {next} \
         (a subprogram must end with exit or ja)"
    )]
    FallsIntoSubprogram {
        /// Slot index of the subprogram's last instruction.
        pc: usize,
        /// First slot of the next subprogram.
        next: usize,
    },
    /// Writes to `r10`, the read-only frame pointer.
    #[error("instruction {pc}: r10 is read-only")]
    WritesFramePointer {
        /// Slot index.
        pc: usize,
    },
    /// An instruction this runtime does not run (for example a kfunc call).
    #[error("instruction {pc}: {what} is not supported by the userspace VM")]
    Unsupported {
        /// Slot index.
        pc: usize,
        /// What it is.
        what: &'static str,
    },
    /// The program's last instruction can fall through past the end.
    #[error("instruction {pc}: execution can fall off the end of the program")]
    FallsOffEnd {
        /// Slot index of the last instruction.
        pc: usize,
    },
}

/// A run ended abnormally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// A load, store or atomic touched memory it may not.
    #[error("instruction {pc}: {size}-byte {access} at {addr:#x}: {kind}")]
    MemoryFault {
        /// Slot index of the faulting instruction.
        pc: usize,
        /// The address.
        addr: u64,
        /// Access size in bytes.
        size: usize,
        /// `load`, `store` or `atomic`.
        access: &'static str,
        /// Why it faulted.
        kind: FaultKind,
    },
    /// The instruction budget ran out.
    #[error(
        "instruction budget of {budget} exhausted at instruction {pc} (runaway loop?); \
         raise it with Vm::set_budget or `bpfkit run --budget N`"
    )]
    BudgetExhausted {
        /// Slot index where it ran out.
        pc: usize,
        /// The budget.
        budget: u64,
    },
    /// A helper id with nothing registered.
    #[error("instruction {pc}: call to unknown helper {id}")]
    UnknownHelper {
        /// Slot index.
        pc: usize,
        /// Helper id.
        id: i64,
    },
    /// A helper failed in a way that must end the run.
    #[error("instruction {pc}: helper {name}: {message}")]
    HelperFault {
        /// Slot index.
        pc: usize,
        /// Helper name.
        name: String,
        /// What happened.
        message: String,
    },
    /// More than 8 nested bpf-to-bpf calls.
    #[error("instruction {pc}: call depth exceeds {max} frames")]
    CallDepth {
        /// Slot index.
        pc: usize,
        /// The limit.
        max: usize,
    },
    /// [`Vm::test_run`](crate::Vm::test_run) input that the kernel's
    /// `BPF_PROG_TEST_RUN` refuses.
    #[error("test run input refused, as the kernel refuses it with errno {errno}: {reason}")]
    InvalidInput {
        /// The errno the kernel returns (`EINVAL`).
        errno: i32,
        /// What is wrong with the input.
        reason: String,
    },
    /// A tail call chain grew past the kernel's limit.
    #[error("more than {max} tail calls in one chain")]
    TailCallLimit {
        /// The limit.
        max: usize,
    },
    /// Control reached a place the loader rules out (a bug in bpfkit).
    #[error("instruction {pc}: internal error: control left the program")]
    Internal {
        /// Slot index.
        pc: usize,
    },
    /// The engine running compiled code failed outside the program: for
    /// the ARM64 back end, the emulator running it.
    #[error("the engine failed: {reason}")]
    Engine {
        /// What failed.
        reason: String,
    },
    /// `callx` to a value that is neither a helper id nor a function address.
    #[error("instruction {pc}: callx target {target:#x} is not a function")]
    BadCallTarget {
        /// Slot index.
        pc: usize,
        /// The value in the register.
        target: u64,
    },
}
