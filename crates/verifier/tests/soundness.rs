//! Soundness: a program bpfkit's verifier accepts never faults in the
//! checked interpreter (bpfkit-vm, whose every memory access is checked
//! against the regions it mapped). Programs are seeded mutants of the
//! hand-written cases, run on packets of several sizes and contents.

mod common;

use bpfkit_abi::ProgramType;
use bpfkit_verifier::{Program, Verifier, VerifyOptions};
use bpfkit_vm::{ContextKind, MapDef, RunError, TestRun, Vm};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn context_of(t: ProgramType) -> Option<ContextKind> {
    match t {
        ProgramType::Xdp => Some(ContextKind::Xdp),
        ProgramType::SocketFilter | ProgramType::CgroupSkb => Some(ContextKind::SkBuffL3),
        ProgramType::SchedCls => Some(ContextKind::SkBuff),
        _ => None,
    }
}

#[test]
fn accepted_programs_never_fault_in_the_checked_interpreter() {
    let seeds: Vec<_> = common::cases()
        .into_iter()
        .filter(|c| context_of(c.prog_type).is_some() && c.reason != "too large")
        .collect();
    let maps = common::maps();
    let total = 3000;
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: total,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (
        any::<usize>(),
        proptest::collection::vec(common::mutation(), 0..4),
        proptest::collection::vec(any::<u8>(), 14..120),
    );
    let (mut accepted, mut runs, mut completed) = (0, 0, 0);
    let mut faults = Vec::new();
    for _ in 0..total {
        let (seed, muts, packet) = strategy.new_tree(&mut runner).unwrap().current();
        let case = &seeds[seed % seeds.len()];
        let mut insns = case.insns();
        for m in &muts {
            common::apply(&mut insns, m);
        }
        let opts = VerifyOptions {
            maps: maps.clone(),
            attach_type: case.attach,
            max_insns: 200_000,
            ..VerifyOptions::default()
        };
        if Verifier::new(case.prog_type)
            .verify(Program::Raw(&insns), &opts)
            .is_err()
        {
            continue;
        }
        accepted += 1;
        let mut vm = Vm::new();
        vm.set_budget(100_000);
        for m in &maps {
            vm.create_map(MapDef::new(
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
            ))
            .expect("the VM takes the cases' maps");
        }
        let ctx = context_of(case.prog_type).unwrap();
        let Ok(prog) = bpfkit_vm::Program::with_context(insns.clone(), ctx) else {
            continue;
        };
        // Every packet length from the Ethernet header up, in a few steps.
        for len in [14, 20, 34, packet.len()] {
            let input = TestRun {
                data_in: packet[..len.min(packet.len())].to_vec(),
                ..TestRun::default()
            };
            runs += 1;
            match vm.test_run(&prog, &input) {
                Err(
                    e @ (RunError::MemoryFault { .. }
                    | RunError::Internal { .. }
                    | RunError::CallDepth { .. }),
                ) => {
                    faults.push(format!(
                        "{} {:?} on a {len}-byte packet: {e}\n{}",
                        case.name,
                        muts,
                        bpfkit_isa::disassemble(&insns, bpfkit_isa::Syntax::Llvm)
                    ));
                    break;
                }
                Ok(_) => completed += 1,
                Err(_) => {}
            }
        }
    }
    println!(
        "soundness: {accepted} of {total} mutants accepted, {runs} runs ({completed} ran to exit), {} faults",
        faults.len()
    );
    assert!(
        accepted >= 600,
        "too few accepted programs to mean anything: {accepted}"
    );
    assert!(
        completed * 2 >= runs,
        "most runs should reach exit: {completed} of {runs}"
    );
    assert!(
        faults.is_empty(),
        "accepted programs that fault:\n{}",
        faults.join("\n\n")
    );
}

#[test]
fn accepted_random_programs_never_fault_either() {
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::XorShift),
    );
    let strategy = (
        proptest::collection::vec(any::<[u8; 8]>(), 1..40),
        proptest::collection::vec(any::<u8>(), 14..120),
        any::<bool>(),
    );
    let (mut accepted, mut faults) = (0, Vec::new());
    for _ in 0..3000 {
        let (slots, packet, xdp) = strategy.new_tree(&mut runner).unwrap().current();
        let insns = common::random_program(&slots);
        let t = if xdp {
            ProgramType::Xdp
        } else {
            ProgramType::SocketFilter
        };
        let opts = VerifyOptions {
            max_insns: 20_000,
            ..VerifyOptions::default()
        };
        if Verifier::new(t)
            .verify(Program::Raw(&insns), &opts)
            .is_err()
        {
            continue;
        }
        accepted += 1;
        let mut vm = Vm::new();
        vm.set_budget(100_000);
        let Ok(prog) = bpfkit_vm::Program::with_context(insns.clone(), context_of(t).unwrap())
        else {
            continue;
        };
        let input = TestRun {
            data_in: packet,
            ..TestRun::default()
        };
        if let Err(
            e @ (RunError::MemoryFault { .. }
            | RunError::Internal { .. }
            | RunError::CallDepth { .. }),
        ) = vm.test_run(&prog, &input)
        {
            faults.push(format!(
                "{e}\n{}",
                bpfkit_isa::disassemble(&insns, bpfkit_isa::Syntax::Llvm)
            ));
        }
    }
    println!(
        "random programs: {accepted} of 3000 accepted, {} faults",
        faults.len()
    );
    assert!(accepted >= 1000, "{accepted}");
    assert!(
        faults.is_empty(),
        "accepted programs that fault:\n{}",
        faults.join("\n\n")
    );
}
