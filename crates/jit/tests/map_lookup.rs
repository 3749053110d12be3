//! The checks of crates/vm/tests/engine_checks/map_lookup.rs under the JIT, whose
//! `call 1` goes to the machine's direct entry (Machine::map_lookup_memo).
#![cfg(target_arch = "x86_64")]

use bpfkit_vm::Program;

/// The JIT: each program runs as compiled code.
fn engine(mut p: Program) -> Program {
    bpfkit_jit::compile(&mut p).unwrap();
    assert!(p.compiled().is_some());
    p
}

#[path = "../../vm/tests/engine_checks/map_lookup.rs"]
mod checks;
