//! The checks of crates/vm/tests/engine_checks/run_reuse.rs under the JIT, whose
//! generated code reaches the frames' bytes directly.
#![cfg(target_arch = "x86_64")]

use bpfkit_vm::Program;

/// The JIT: each program runs as compiled code.
fn engine(mut p: Program) -> Program {
    bpfkit_jit::compile(&mut p).unwrap();
    assert!(p.compiled().is_some());
    p
}

#[path = "../../vm/tests/engine_checks/run_reuse.rs"]
mod checks;
