//! Differential test: random programs — arithmetic, jumps and loops, loads,
//! stores and atomics at addresses in and out of their regions, helper
//! calls, and a subprogram reached by bpf-to-bpf calls, callx and bpf_loop
//! callbacks (and calling itself) — run under the interpreter and the JIT must agree on `r0` or the
//! error (its kind, pc, address and size), on the memory after the run and
//! on the instructions executed. Each engine's VM runs every program twice,
//! after all the programs before it, over input of a few lengths: the JIT's
//! tables of the VM's space, kept from run to run while its layout stays,
//! then serve programs other than the one they were made for, and runs
//! after faults, deep calls and budget exhaustion.
#![cfg(target_arch = "x86_64")]

use bpfkit_vm::RunError;
use bpfkit_vm::{Program, Vm};
use proptest::prelude::*;

mod common;
use common::{program, Calls, MAX_INSNS};

/// How the runs ended, to check the generator reaches every outcome.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    memory_faults: usize,
    budget: usize,
    other_errors: usize,
    /// Runs that ended past the call depth limit: the subprogram ran, recursively.
    call_depth: usize,
}

#[test]
fn interpreter_and_jit_agree_on_random_programs() {
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (
        proptest::collection::vec((any::<u64>(), any::<u64>()), 1..MAX_INSNS),
        proptest::collection::vec((any::<u64>(), any::<u64>()), 0..MAX_INSNS / 4),
        proptest::collection::vec(any::<u8>(), 60..=64),
    );
    let vms = std::cell::RefCell::new([Vm::new(), Vm::new()]);
    for vm in vms.borrow_mut().iter_mut() {
        vm.set_budget(2_000);
    }
    runner
        .run(&strategy, |(words, sub_words, input)| {
            let insns = program(&words, &sub_words, Calls::All);
            let interp = Program::new(insns.clone()).expect("generated programs load");
            let mut jit = interp.clone();
            bpfkit_jit::compile(&mut jit).unwrap();
            let mut outcomes = [Vec::new(), Vec::new()];
            let mut vms = vms.borrow_mut();
            for ((p, vm), outcomes) in [&interp, &jit]
                .into_iter()
                .zip(vms.iter_mut())
                .zip(&mut outcomes)
            {
                for _ in 0..2 {
                    let mut mem = input.clone();
                    let r = vm.run(p, &mut mem);
                    outcomes.push((r, mem, vm.last_executed()));
                }
            }
            prop_assert_eq!(&outcomes[0], &outcomes[1], "program:\n{:#?}", insns);
            let mut t = tally.borrow_mut();
            match &outcomes[0][0].0 {
                Ok(_) => t.ok += 1,
                Err(RunError::MemoryFault { .. }) => t.memory_faults += 1,
                Err(RunError::BudgetExhausted { .. }) => t.budget += 1,
                Err(RunError::CallDepth { .. }) => {
                    t.call_depth += 1;
                    t.other_errors += 1
                }
                Err(_) => t.other_errors += 1,
            }
            Ok(())
        })
        .unwrap();
    let t = tally.into_inner();
    // Every kind of ending is well represented (each over 3% of 10,000).
    assert!(
        [t.ok, t.memory_faults, t.budget, t.other_errors]
            .iter()
            .all(|&n| n > 300)
            && t.call_depth > 30,
        "{t:?}"
    );
    eprintln!("{t:?}");
}
