//! Runs reuse the VM's buffers (address space, stack frames) to keep the
//! per-run cost low; these tests check that nothing a run leaves behind is
//! visible to the next one: every frame starts zeroed, whatever the
//! previous run (or the previous repetition of a test run) stored in it.

use bpfkit_vm::Program;

/// The interpreter: programs run as they are.
fn engine(p: Program) -> Program {
    p
}

#[path = "engine_checks/run_reuse.rs"]
mod checks;
