//! Arbitrary bytecode over arbitrary memory: the interpreter returns a
//! value or an error with a clean message (see `error_message.rs`), within
//! its budget, and never panics; and a run is repeatable: the same program
//! on the same memory, run again on the same runtime (which reuses its
//! stack and scratch buffers), gives the same result and leaves the same
//! memory.
//!
//! Input layout: one byte, how many of the following bytes are memory
//! (at most what there is); the rest is little-endian bytecode, cut to
//! whole instructions (a ragged length only reaches the decoder's length
//! check, which the isa `decode` target covers).
//!
//! Shared by the cargo-fuzz target `run` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_vm::{Program, Vm};

#[allow(clippy::duplicate_mod)] // Also included by the conformance_case check.
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

/// The instruction budget of each run.
pub const BUDGET: u64 = 100_000;

/// Splits an input into memory and whole instructions of bytecode.
pub fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&mem_len, rest) = data.split_first()?;
    let (mem, code) = rest.split_at(usize::from(mem_len).min(rest.len()));
    Some((mem, &code[..code.len() / 8 * 8]))
}

/// Checks one input; panics on a finding. True if the program loaded.
pub fn check(data: &[u8]) -> bool {
    let Some((mem, code)) = split(data) else {
        return false;
    };
    let program = match Program::from_bytes(code) {
        Ok(p) => p,
        Err(e) => {
            error_message::assert_clean(&e);
            return false;
        }
    };
    // The conformance runtime: its only helper is deterministic, so two
    // runs must agree.
    let mut vm = Vm::for_conformance();
    vm.set_budget(BUDGET);
    let mut first_mem = mem.to_vec();
    let first = vm.run(&program, &mut first_mem);
    assert!(vm.last_executed() <= BUDGET);
    if let Err(e) = &first {
        error_message::assert_clean(e);
    }
    let mut second_mem = mem.to_vec();
    let second = vm.run(&program, &mut second_mem);
    assert_eq!(first, second, "a second run of the same program differs");
    assert_eq!(
        first_mem, second_mem,
        "a second run leaves different memory"
    );

    // The default runtime, with the built-in helpers (time, random, maps).
    let mut vm = Vm::new();
    vm.set_budget(BUDGET);
    let mut mem = mem.to_vec();
    if let Err(e) = vm.run(&program, &mut mem) {
        error_message::assert_clean(&e);
    }
    assert!(vm.last_executed() <= BUDGET);
    true
}
