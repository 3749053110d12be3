//! Map values the JIT holds locked while generated code reads and writes
//! them in place (`SharedBytes::try_hold`): helpers that lock them see the
//! program's stores, an embedder's lookup helper may read them, and
//! another thread reading the map meanwhile waits rather than races.
#![cfg(target_arch = "x86_64")]

use std::sync::mpsc;
use std::time::Duration;

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{HelperOutcome, Map, MapDef, Program, RunError, Vm};

/// Runs `f` on a thread of its own and waits for its answer: a deadlock
/// (a held value locked again) fails the test instead of hanging it.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).ok());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run finished (a held map value was not locked again)")
}

/// `src` under the interpreter and the JIT, in a VM with `defs` and what
/// `setup` adds; both must give the same result and map 0's value at key
/// 0. Returns the result.
fn agree(src: &str, defs: &[MapDef], setup: fn(&mut Vm)) -> Result<u64, RunError> {
    let interp = Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap();
    let mut jit = interp.clone();
    bpfkit_jit::compile(&mut jit).unwrap();
    let defs = defs.to_vec();
    let outcomes: Vec<_> = [interp, jit]
        .into_iter()
        .map(|p| {
            let defs = defs.clone();
            within_a_minute(move || {
                let mut vm = Vm::new();
                for def in defs {
                    vm.create_map(def).unwrap();
                }
                setup(&mut vm);
                let r = vm.run(&p, &mut []);
                let value = vm.map(0).unwrap().lookup(&0u32.to_ne_bytes());
                (r, value, vm.last_executed())
            })
        })
        .collect();
    assert_eq!(outcomes[0], outcomes[1], "interpreter vs JIT for:\n{src}");
    outcomes[0].0.clone()
}

fn array(value_size: u32, entries: u32) -> MapDef {
    MapDef::new(MapType::Array, 4, value_size, entries)
}

/// The u64 at key 0 of `map`, read through the map (which locks the value).
fn read_u64(map: &Map) -> u64 {
    let bytes = map.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    u64::from_ne_bytes(bytes[..8].try_into().unwrap())
}

/// Registers helper 100: the u64 at key 0 of map 0.
fn value_reader(vm: &mut Vm) {
    let map: Map = vm.map(0).unwrap().clone();
    vm.helpers_mut().register(100, "read_value", move |_, _| {
        Ok(HelperOutcome::Return(read_u64(&map)))
    });
}

/// Looks up key 0 of map 0 into r6, then ten times adds to the value in
/// place (an atomic and a store) and asks helper 100 for it.
const ADD_THEN_ASK: &str = "
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 == 0 goto out
        r6 = r0
        r7 = 0
        r8 = 0
    loop:
        r1 = 3
        lock *(u64 *)(r6 + 0) += r1
        r1 = *(u64 *)(r6 + 0)
        r1 += 1
        *(u64 *)(r6 + 0) = r1
        call 100
        r7 += r0
        r8 += 1
        if r8 < 10 goto loop
        r0 = r7
    out:
        exit";

#[test]
fn a_helper_that_locks_a_held_value_sees_the_programs_stores() {
    // Each iteration adds 4 and the helper reads the sum so far.
    let r = agree(ADD_THEN_ASK, &[array(8, 1)], value_reader);
    assert_eq!(r, Ok((1..=10).map(|i| 4 * i).sum()));
}

#[test]
fn an_update_of_a_held_value_lands_in_it() {
    // bpf_map_update_elem writes the value the program holds: the
    // program's next load sees the new bytes.
    let src = "
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 == 0 goto out
        r6 = r0
        r1 = 5
        lock *(u64 *)(r6 + 0) += r1
        *(u64 *)(r10 - 16) = 100
        r1 = map[fd:0]
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 0
        call 2
        r1 = 1
        r1 = atomic_fetch_add((u64 *)(r6 + 0), r1)
        r0 = r1
    out:
        exit";
    assert_eq!(agree(src, &[array(8, 1)], |_| {}), Ok(100));
}

#[test]
fn an_embedders_lookup_helper_may_read_held_values() {
    // Global data (map_value) is held once the program's atomic reaches
    // it; an embedder's lookup helper that reads it must find it unlocked.
    let src = "
        r6 = map[fd:0][0]+0
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        r1 = map[fd:1]
        r3 = 7
        lock *(u64 *)(r6 + 0) += r3
        call 1
        r1 = 1
        lock *(u64 *)(r6 + 0) += r1
        exit";
    let r = agree(src, &[array(8, 1), array(8, 1)], |vm| {
        let map: Map = vm.map(0).unwrap().clone();
        vm.helpers_mut().register(1, "my_lookup", move |_, _| {
            Ok(HelperOutcome::Return(read_u64(&map)))
        });
    });
    assert_eq!(r, Ok(7));
}

#[test]
fn another_thread_reading_a_held_value_waits_for_the_run() {
    // A million atomic adds to one value with no call in between: the
    // run holds the value throughout, so a reader on another thread sees
    // it before the run or after it, never half-way, and no add is lost.
    const ADDS: u64 = 1_000_000;
    let src = format!(
        "
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 == 0 goto out
        r6 = 0
    loop:
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        r6 += 1
        if r6 < {ADDS} goto loop
    out:
        r0 = 0
        exit"
    );
    let mut p = Program::new(assemble(&src, Syntax::Llvm).unwrap()).unwrap();
    bpfkit_jit::compile(&mut p).unwrap();
    let mut vm = Vm::new();
    vm.set_budget(1 << 26);
    vm.create_map(array(8, 1)).unwrap();
    let map: Map = vm.map(0).unwrap().clone();
    let (started, seen_start) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = vec![read_u64(&map)];
        started.send(()).unwrap();
        while *seen.last().unwrap() < ADDS {
            seen.push(read_u64(&map));
        }
        seen
    });
    seen_start.recv().unwrap();
    assert_eq!(vm.run(&p, &mut []), Ok(0));
    let seen = reader.join().unwrap();
    assert!(
        seen.iter().all(|&v| v == 0 || v == ADDS),
        "a reader saw the value mid-run: {:?}",
        seen.iter().find(|&&v| v != 0 && v != ADDS)
    );
    assert_eq!(*seen.last().unwrap(), ADDS);
}
