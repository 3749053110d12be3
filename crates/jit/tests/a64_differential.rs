//! Differential test of the ARM64 back end: random programs (the generator
//! of differential.rs, limited to what the back end provides) run in the
//! interpreter and, as static aarch64 executables, under qemu-aarch64
//! (package qemu-user). They must agree on `r0` and the input memory after
//! the run, or on the error: its kind and the pc of the instruction
//! (memory after a fault is not compared: the executable does not report
//! it).

use bpfkit_jit::a64::FaultKind;
use bpfkit_jit::qemu::{A64Outcome, Qemu};
use bpfkit_vm::{Program, Vm};

mod common;
use common::{cases, fault_of, in_parallel, program, Calls};

/// Programs per run: each is one qemu process (about 15 ms), two at a time.
const PROGRAMS: usize = 2_000;

/// The instruction budget of each run, small enough that loops end.
const BUDGET: u64 = 2_000;

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    memory: usize,
    budget: usize,
    unknown_helper: usize,
    call_depth: usize,
    bad_call_target: usize,
    /// Runs the back end refused (`callx` of a value with bit 63 set, which
    /// it takes for a function address it does not provide).
    unsupported: usize,
}

/// How a program both engines agree on ended.
enum Ending {
    Returned,
    Fault(FaultKind),
    /// The back end refused it; nothing to compare.
    Unsupported,
}

/// How one program went on both engines; `Err` describes a disagreement.
fn compare(
    qemu: &Qemu,
    words: &[(u64, u64)],
    sub: &[(u64, u64)],
    input: &[u8],
) -> Result<Ending, String> {
    let insns = program(words, sub, Calls::Arm64);
    let prog = Program::new(insns.clone()).map_err(|e| format!("loading: {e}"))?;
    let mut vm = Vm::for_conformance();
    vm.set_budget(BUDGET);
    let mut interp_mem = input.to_vec();
    let interp = vm.run(&prog, &mut interp_mem);
    let mut a64_mem = input.to_vec();
    let a64 = qemu
        .run(&prog, &mut a64_mem, BUDGET)
        .map_err(|e| e.to_string())?;
    let agreed = match (&interp, a64) {
        (Ok(a), A64Outcome::Returned(b)) => *a == b && interp_mem == a64_mem,
        (Err(e), A64Outcome::Fault { kind, pc }) => fault_of(e) == Some((kind, pc)),
        (_, A64Outcome::Unsupported) => return Ok(Ending::Unsupported),
        _ => false,
    };
    if !agreed {
        return Err(format!(
            "interpreter {interp:?}, ARM64 {a64:?}\nmemory after: {interp_mem:?}\n\
             ARM64 memory: {a64_mem:?}\nprogram:\n{}",
            bpfkit_isa::disassemble(&insns, bpfkit_isa::Syntax::Llvm)
        ));
    }
    Ok(match a64 {
        A64Outcome::Fault { kind, .. } => Ending::Fault(kind),
        _ => Ending::Returned,
    })
}

#[test]
fn interpreter_and_arm64_back_end_agree_on_random_programs() {
    let qemu = match Qemu::find() {
        Ok(q) => q,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{e}");
            eprintln!("SKIP: {e}");
            return;
        }
    };
    let results = in_parallel(&cases(PROGRAMS), |(w, sub, input)| {
        compare(&qemu, w, sub, input)
    });
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(Ending::Returned) => t.ok += 1,
            Ok(Ending::Fault(FaultKind::Memory)) => t.memory += 1,
            Ok(Ending::Fault(FaultKind::Budget)) => t.budget += 1,
            Ok(Ending::Fault(FaultKind::UnknownHelper)) => t.unknown_helper += 1,
            Ok(Ending::Fault(FaultKind::CallDepth)) => t.call_depth += 1,
            Ok(Ending::Fault(FaultKind::BadCallTarget)) => t.bad_call_target += 1,
            Ok(Ending::Unsupported) => t.unsupported += 1,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {PROGRAMS} programs disagree; the first:\n{}",
        failures.len(),
        failures[0]
    );
    eprintln!("{PROGRAMS} programs: {t:?}");
    // Every ending is well represented, and the back end refuses few.
    assert!(
        [
            t.ok,
            t.memory,
            t.budget,
            t.unknown_helper,
            t.bad_call_target
        ]
        .iter()
        .all(|&n| n > PROGRAMS / 50)
            && t.call_depth > 5
            && t.unsupported < PROGRAMS / 50,
        "{t:?}"
    );
}
