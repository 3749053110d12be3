//! The ARM64 back end as a VM engine (`bpfkit_jit::hosted`): programs that
//! use helpers, maps, frames and tail calls run on A64 code under qemu and
//! end as they do in the interpreter: the same r0 or error, the same maps.

use std::sync::Arc;

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, Syntax};
use bpfkit_jit::hosted::compile_a64;
use bpfkit_jit::qemu::Qemu;
use bpfkit_vm::{MapDef, Program, RunError, Vm};
#[path = "../../vm/benches/common/workloads.rs"]
mod workloads;

mod common;
use common::{cases, in_parallel, program, Calls, Case};

fn qemu() -> Option<Arc<Qemu>> {
    match Qemu::find() {
        Ok(q) => Some(Arc::new(q)),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "{e}");
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Runs `src` with `mem` in a fresh VM with three maps (0: hash, 4-byte
/// keys, 8-byte values, 64 entries; 1: array of 4 16-byte values; 2: array
/// of 1000 8-byte values) on the interpreter and on hosted A64 code; both
/// must give the same result, memory, maps and instructions executed.
/// Returns the result.
fn agree(qemu: &Arc<Qemu>, src: &str, mem: &[u8]) -> Result<u64, RunError> {
    let insns = assemble(src, Syntax::Llvm).expect("assembles");
    let interp = Program::new(insns).expect("loads");
    let mut a64 = interp.clone();
    compile_a64(&mut a64, qemu).expect("compiles");
    let run = |p: &Program| {
        let mut vm = Vm::new();
        vm.create_map(MapDef::new(MapType::Hash, 4, 8, 64)).unwrap();
        vm.create_map(MapDef::new(MapType::Array, 4, 16, 4))
            .unwrap();
        vm.create_map(MapDef::new(MapType::Array, 4, 8, 1000))
            .unwrap();
        let mut m = mem.to_vec();
        let r = vm.run(p, &mut m);
        let mut entries = Vec::new();
        for index in 0..3 {
            let map = vm.map(index).unwrap();
            let mut key: Option<Vec<u8>> = None;
            while let Ok(Some(k)) = map.next_key(key.as_deref()) {
                entries.push((k.clone(), map.lookup(&k)));
                key = Some(k);
            }
        }
        (r, m, entries, vm.last_executed())
    };
    let want = run(&interp);
    let got = run(&a64);
    assert_eq!(got, want, "{src}");
    want.0
}

#[test]
fn the_benchmark_workloads_run_on_a64_as_on_the_interpreter() {
    let Some(q) = qemu() else { return };
    // The hash counter's lookups and updates are the VM's, in its map.
    assert_eq!(agree(&q, workloads::HASH_COUNTER, &[]), Ok(1000));
    assert_eq!(agree(&q, workloads::PRIMES, &[]), Ok(303));
    assert_eq!(
        agree(&q, workloads::PARSE, &workloads::packet()),
        Ok(8080 + 18)
    );
    let mut copy = vec![0u8; 131072];
    copy[..65536].fill(0x5a);
    assert_eq!(agree(&q, workloads::MEMCPY, &copy), Ok(65536));
}

#[test]
fn a_run_that_touches_a_thousand_map_values_keeps_them_all() {
    let Some(q) = qemu() else { return };
    // Each value looked up is a region of its own: far more than fit a
    // small table, and the arena grows as they come.
    let src = "
        r6 = 0
        r7 = 0
    loop:
        *(u32 *)(r10 - 4) = r6
        r2 = r10
        r2 += -4
        r1 = map[fd:2]
        call 1
        if r0 == 0 goto out
        r1 = r6
        r1 *= 3
        *(u64 *)(r0 + 0) = r1
        r2 = *(u64 *)(r0 + 0)
        r7 += r2
        r6 += 1
        if r6 < 1000 goto loop
    out:
        r0 = r7
        exit";
    assert_eq!(agree(&q, src, &[]), Ok(3 * 999 * 1000 / 2));
    // A value past the array's end is no region: the store faults.
    let past = "
        *(u32 *)(r10 - 4) = 3
        r2 = r10
        r2 += -4
        r1 = map[fd:1]
        call 1
        *(u64 *)(r0 + 12) = 1
        r0 = 1
        exit";
    assert!(matches!(
        agree(&q, past, &[]),
        Err(RunError::MemoryFault { pc: 6, .. })
    ));
}

#[test]
fn packet_loads_and_helpers_go_through_the_vm() {
    let Some(q) = qemu() else { return };
    // A packet load (LD_ABS) out of a raw input ends the run with 0, as
    // in the interpreter; an unknown helper is the VM's error.
    assert_eq!(
        agree(&q, "r6 = r1\nr0 = *(u8 *)skb[0]\nr0 = 5\nexit", &[1, 2]),
        Ok(0)
    );
    assert!(matches!(
        agree(&q, "call 9999\nexit", &[]),
        Err(RunError::UnknownHelper { pc: 0, .. })
    ));
    // Helper 7 (bpf_get_prandom_u32) is seeded per VM: both engines see
    // the same values.
    let r = agree(&q, "call 7\nr6 = r0\ncall 7\nr0 ^= r6\nexit", &[]);
    assert!(r.is_ok_and(|v| v != 0));
}

/// Random programs of the x86-64 JIT's differential test (helpers 7 and 8
/// and an unknown one, bpf_loop callbacks, callx of helpers and of the
/// subprogram, its address as a value) run on hosted A64 code as on the
/// interpreter: the same r0 or the same error (kind, pc, address, size),
/// the same memory after the run, after a fault too, and the same
/// instructions executed. Each program is one qemu process.
#[test]
fn random_programs_with_helpers_and_callbacks_agree_on_a64() {
    const PROGRAMS: usize = 2_000;
    let Some(q) = qemu() else { return };
    let compare = |(words, sub, input): &Case| {
        let insns = program(words, sub, Calls::All);
        let interp = Program::new(insns.clone()).expect("generated programs load");
        let mut a64 = interp.clone();
        compile_a64(&mut a64, &q).expect("compiles");
        let outcomes: Vec<_> = [&interp, &a64]
            .into_iter()
            .map(|p| {
                let mut vm = Vm::new();
                vm.set_budget(2_000);
                let mut mem = input.clone();
                let r = vm.run(p, &mut mem);
                (r, mem, vm.last_executed())
            })
            .collect();
        if outcomes[0] == outcomes[1] {
            Ok(outcomes[0].0.clone())
        } else {
            Err(format!(
                "interpreter {:?}\nARM64 {:?}\nprogram:\n{}",
                outcomes[0],
                outcomes[1],
                bpfkit_isa::disassemble(&insns, Syntax::Llvm)
            ))
        }
    };
    let results = in_parallel(&cases(PROGRAMS), compare);
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {PROGRAMS} programs disagree; the first:\n{}",
        failures.len(),
        failures[0]
    );
    let count = |f: fn(&Result<u64, RunError>) -> bool| {
        results.iter().filter(|r| r.as_ref().is_ok_and(f)).count()
    };
    let ok = count(|r| r.is_ok());
    let memory = count(|r| matches!(r, Err(RunError::MemoryFault { .. })));
    let budget = count(|r| matches!(r, Err(RunError::BudgetExhausted { .. })));
    let depth = count(|r| matches!(r, Err(RunError::CallDepth { .. })));
    eprintln!("{PROGRAMS} programs: {ok} returned, {memory} memory faults, {budget} out of budget, {depth} too deep");
    assert!(
        [ok, memory, budget].iter().all(|&n| n > PROGRAMS / 30) && depth > 3,
        "{ok} {memory} {budget} {depth}"
    );
}
