//! Arbitrary bytecode over arbitrary memory: the interpreter must return a
//! value or an error, within its budget, and never panic.
#![no_main]

use bpfkit_vm::{Program, Vm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: how much of the input is memory; the rest is the program.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mem_len = (split as usize).min(rest.len());
    let (mem, code) = rest.split_at(mem_len);
    if let Ok(program) = Program::from_bytes(code) {
        let mut vm = Vm::new();
        vm.set_budget(100_000);
        let mut mem = mem.to_vec();
        let _ = vm.run(&program, &mut mem);
        assert!(vm.last_executed() <= 100_000);
    }
});
