//! bpfkit's verdict on each hand-written case of `common`, and the words
//! its rejection must contain. `kernel_diff.rs` checks the same cases
//! against the running kernel.

mod common;

use bpfkit_verifier::{Program, Verifier, VerifyOptions};

#[test]
fn hand_written_cases_get_the_expected_verdicts() {
    let mut wrong = Vec::new();
    for case in common::cases() {
        let opts = VerifyOptions {
            maps: common::maps(),
            attach_type: case.attach,
            kfunc_names: common::kfunc_names(),
            ..VerifyOptions::default()
        };
        let insns = case.insns();
        let started = std::time::Instant::now();
        let got = Verifier::new(case.prog_type).verify(Program::Raw(&insns), &opts);
        let took = started.elapsed();
        if took.as_millis() > 200 {
            println!("{}: {took:?}", case.name);
        }
        match (&got, case.accept) {
            (Ok(_), true) => {}
            (Err(r), false) if r.message.contains(case.reason) => {}
            (Ok(_), false) => wrong.push(format!(
                "{} [{}]: accepted, expected a rejection",
                case.name, case.category
            )),
            (Err(r), true) => {
                wrong.push(format!("{} [{}]: rejected: {r}", case.name, case.category))
            }
            (Err(r), false) => wrong.push(format!(
                "{} [{}]: rejected, but the message does not say `{}`: {r}",
                case.name, case.category, case.reason
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unprivileged_rules_refuse_pointer_leaks_and_comparisons() {
    let opts = VerifyOptions {
        unprivileged: true,
        maps: common::maps(),
        ..VerifyOptions::default()
    };
    let v = Verifier::new(bpfkit_abi::ProgramType::SocketFilter);
    let leak = common::cases()
        .into_iter()
        .find(|c| c.name.starts_with("pointer returned"))
        .unwrap();
    let err = v.verify(Program::Raw(&leak.insns()), &opts).unwrap_err();
    assert!(
        err.message.contains("R0 leaks addr as return value"),
        "{err}"
    );
    let cmp = bpfkit_isa::assemble(
        "r1 = r10\nr2 = 5\nif r1 > r2 goto +0\nr0 = 0\nexit",
        bpfkit_isa::Syntax::Llvm,
    )
    .unwrap();
    let err = v.verify(Program::Raw(&cmp), &opts).unwrap_err();
    assert!(
        err.message.contains("pointer comparison prohibited"),
        "{err}"
    );
    let uninit = bpfkit_isa::assemble(
        "r0 = *(u64 *)(r10 - 8)\nr0 = 0\nexit",
        bpfkit_isa::Syntax::Llvm,
    )
    .unwrap();
    let err = v.verify(Program::Raw(&uninit), &opts).unwrap_err();
    assert!(err.message.contains("invalid read from stack"), "{err}");
    let ok = VerifyOptions {
        unprivileged: false,
        ..opts
    };
    assert!(v.verify(Program::Raw(&uninit), &ok).is_ok());
}

#[test]
fn bpf_loop_callbacks_are_walked_until_they_converge() {
    let opts = VerifyOptions {
        func_info: true,
        ..VerifyOptions::default()
    };
    let v = Verifier::new(bpfkit_abi::ProgramType::SocketFilter);
    let asm = |ret: &str| {
        format!(
            "r1 = 0\n*(u64 *)(r10 - 8) = r1\nr1 = 10\nr2 = func[cb]\nr3 = r10\nr3 += -8\nr4 = 0\ncall 181\nr0 = 0\nexit\n\
             cb:\nr3 = *(u64 *)(r2 + 0)\nr3 += 1\n*(u64 *)(r2 + 0) = r3\n{ret}\nexit"
        )
    };
    let ok = bpfkit_isa::assemble(&asm("r0 = 0"), bpfkit_isa::Syntax::Llvm).unwrap();
    let verdict = v
        .verify(Program::Raw(&ok), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        verdict.processed_insns < 10_000,
        "{}",
        verdict.processed_insns
    );
    let bad = bpfkit_isa::assemble(&asm("r0 = 5"), bpfkit_isa::Syntax::Llvm).unwrap();
    let err = v.verify(Program::Raw(&bad), &opts).unwrap_err();
    assert!(err.message.contains("callback return"), "{err}");
    // The callback's ctx is the caller's stack: writing past it is caught.
    let oob = bpfkit_isa::assemble(
        &asm("r0 = 0
*(u64 *)(r2 + 8) = r0"),
        bpfkit_isa::Syntax::Llvm,
    )
    .unwrap();
    let err = v.verify(Program::Raw(&oob), &opts).unwrap_err();
    assert!(err.message.contains("stack"), "{err}");
}

#[test]
fn a_pointer_to_a_returned_frame_is_refused_not_a_panic() {
    // The callee stores its own frame pointer into the caller's stack; the
    // caller reads it back after the return and dereferences it.
    let asm =
        "r1 = r10\nr1 += -8\ncall f\nr2 = *(u64 *)(r10 - 8)\nr0 = *(u64 *)(r2 - 8)\nr0 = 0\nexit\n\
               f:\nr2 = r10\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit";
    let insns = bpfkit_isa::assemble(asm, bpfkit_isa::Syntax::Llvm).unwrap();
    let v = Verifier::new(bpfkit_abi::ProgramType::SocketFilter);
    let err = v
        .verify(Program::Raw(&insns), &VerifyOptions::default())
        .unwrap_err();
    assert!(err.message.contains("has returned"), "{err}");
}

#[test]
fn arbitrary_bytecode_is_verified_or_refused_never_a_panic() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = proptest::collection::vec(any::<[u8; 8]>(), 1..40);
    let (mut decoded, mut accepted) = (0, 0);
    for _ in 0..3000 {
        let slots = strategy.new_tree(&mut runner).unwrap().current();
        let insns = common::random_program(&slots);
        decoded += 1;
        for t in [
            bpfkit_abi::ProgramType::SocketFilter,
            bpfkit_abi::ProgramType::Xdp,
        ] {
            let opts = VerifyOptions {
                maps: common::maps(),
                max_insns: 20_000,
                ..VerifyOptions::default()
            };
            accepted += Verifier::new(t).verify(Program::Raw(&insns), &opts).is_ok() as usize;
        }
    }
    assert!(decoded > 2000, "only {decoded} programs decoded");
    println!("{decoded} decoded, {accepted} verdicts accept");
}
