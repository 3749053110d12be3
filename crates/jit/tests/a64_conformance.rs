//! The ARM64 back end passes the bpf_conformance suite: each program is
//! built into a static aarch64 executable with its input and run under
//! qemu-aarch64 (the qemu-user package), which must then print the `r0`
//! the file expects, or fail where the file expects an error.

use std::path::PathBuf;

use bpfkit_jit::a64::FaultKind;
use bpfkit_jit::qemu::{A64Outcome, Qemu};
use bpfkit_vm::conformance::Verdict;
use bpfkit_vm::{Program, Vm};

mod common;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// qemu-aarch64, or `None` after saying why the test skips (a failure
/// under CI, which installs qemu-user).
fn qemu() -> Option<Qemu> {
    match Qemu::find() {
        Ok(q) => Some(q),
        Err(e) => {
            assert!(!ci(), "{e}");
            eprintln!("SKIP: {e}");
            None
        }
    }
}

#[test]
fn bpf_conformance_suite_passes_on_the_arm64_back_end() {
    let Some(qemu) = qemu() else { return };
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/bpf_conformance/tests"
    ));
    if !dir.is_dir() {
        assert!(!ci(), "conformance suite not found at {}", dir.display());
        eprintln!("SKIP: conformance suite not found at {}", dir.display());
        return;
    }
    let outcomes = qemu.conformance_dir(&dir).unwrap();
    let (mut passed, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for o in &outcomes {
        match &o.result {
            Ok(Verdict::Passed) => passed += 1,
            Ok(Verdict::Skipped(_)) => skipped += 1,
            Err(why) => failures.push(format!("{}: {why}", o.path.display())),
        }
    }
    assert_eq!(outcomes.len(), 313);
    assert!(
        failures.is_empty(),
        "{} failed ({passed} passed, {skipped} skipped):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The interpreter runs every file of the suite, so must this.
    assert_eq!((passed, skipped), (313, 0));
}

#[test]
fn arm64_executables_report_results_faults_and_the_budget() {
    let Some(qemu) = qemu() else { return };
    let run = |src: &str, mem: &[u8], budget: u64| {
        let insns = bpfkit_isa::assemble(src, bpfkit_isa::Syntax::Llvm).unwrap();
        let program = Program::new(insns).unwrap();
        let mut a64_mem = mem.to_vec();
        let r = qemu.run(&program, &mut a64_mem, budget).unwrap();
        // The interpreter agrees: the same r0 and memory, or the same error
        // at the same instruction.
        let mut vm = Vm::for_conformance();
        vm.set_budget(budget);
        let mut interp_mem = mem.to_vec();
        let interp = vm.run(&program, &mut interp_mem);
        match (&interp, r) {
            (Ok(a), A64Outcome::Returned(b)) => {
                assert_eq!(*a, b, "{src}");
                assert_eq!(interp_mem, a64_mem, "{src}");
            }
            (Err(e), A64Outcome::Fault { kind, pc }) => {
                assert_eq!(common::fault_of(e), Some((kind, pc)), "{src}: {e}")
            }
            _ => panic!("{src}: {interp:?} vs {r:?}"),
        }
        r
    };
    assert_eq!(run("r0 = 42\nexit", &[], 100), A64Outcome::Returned(42));
    assert_eq!(
        run(
            "r0 = *(u32 *)(r1 + 4)\nr0 += r2\nexit",
            &[1, 0, 0, 0, 7, 0, 0, 0],
            100
        ),
        A64Outcome::Returned(7 + 8)
    );
    // Stores to the input come back, as the VM leaves them.
    let insns = bpfkit_isa::assemble(
        "*(u16 *)(r1 + 1) = 0x1234\nlock *(u32 *)(r1 + 4) += r2\nr0 = 0\nexit",
        bpfkit_isa::Syntax::Llvm,
    )
    .unwrap();
    let mut mem = [0u8; 8];
    let r = qemu
        .run(&Program::new(insns).unwrap(), &mut mem, 100)
        .unwrap();
    assert_eq!(r, A64Outcome::Returned(0));
    assert_eq!(mem, [0, 0x34, 0x12, 0, 8, 0, 0, 0]);
    // Past the input's end, and below the frame.
    assert_eq!(
        run("r0 = *(u32 *)(r1 + 6)\nexit", &[0; 8], 100),
        fault(FaultKind::Memory, 0)
    );
    assert_eq!(
        run("r0 = *(u8 *)(r10 - 513)\nexit", &[], 100),
        fault(FaultKind::Memory, 0)
    );
    // A frame returned from is dead.
    assert_eq!(
        run(
            "call f\nr0 = *(u64 *)(r0 + 0)\nexit\nf:\nr0 = r10\nr0 += -8\nexit",
            &[],
            100
        ),
        fault(FaultKind::Memory, 1)
    );
    // The budget, counted as the interpreter counts it.
    assert_eq!(
        run("r0 = 3\nr0 += 1\nexit", &[], 3),
        A64Outcome::Returned(4)
    );
    assert_eq!(
        run("r0 = 3\nr0 += 1\nexit", &[], 2),
        fault(FaultKind::Budget, 2)
    );
    assert_eq!(run("l:\ngoto l", &[], 1000), fault(FaultKind::Budget, 0));
    // Within a block, past a 64-bit load: the instruction it ran out at.
    assert_eq!(
        run(
            "r0 = 1\nr1 = 0x100000000 ll\nr0 += 1\nr0 += 2\nexit",
            &[],
            3
        ),
        fault(FaultKind::Budget, 4)
    );
    // Helpers, callx and the call depth, each at its instruction.
    assert_eq!(
        run("r1 = 7\nr0 = 1\ncall 5\nexit", &[], 100),
        A64Outcome::Returned(7)
    );
    assert_eq!(
        run("r0 = 1\ncall 9\nexit", &[], 100),
        fault(FaultKind::UnknownHelper, 1)
    );
    assert_eq!(
        run("r0 = 1\nr2 = 6\ncallx r2\nexit", &[], 100),
        fault(FaultKind::BadCallTarget, 2)
    );
    assert_eq!(
        run("call f\nexit\nf:\nr0 = 1\ncall f\nexit", &[], 1000),
        fault(FaultKind::CallDepth, 3)
    );
}

fn fault(kind: FaultKind, pc: usize) -> A64Outcome {
    A64Outcome::Fault { kind, pc }
}
