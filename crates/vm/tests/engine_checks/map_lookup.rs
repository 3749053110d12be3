//! The checks of `map_lookup.rs`, shared by the interpreter's tests (crates/vm)
//! and the JIT's (crates/jit): `super::engine` prepares each program.

use bpfkit_abi::{map_flags, MapType};
use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{FaultKind, HelperOutcome, MapDef, Program, RegionKind, RunError, Vm};

fn prog(src: &str) -> Program {
    super::engine(Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap())
}

fn hash_vm(entries: u32) -> Vm {
    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::Hash, 4, 8, entries))
        .unwrap();
    vm
}

/// Looks key `k` up in map 0 into r0; jumps to `miss` if absent.
fn lookup(k: u32) -> String {
    format!(
        "*(u32 *)(r10 - 4) = {k}\nr2 = r10\nr2 += -4\nr1 = map[fd:0]\ncall 1\nif r0 == 0 goto miss\n"
    )
}

#[test]
fn the_same_element_has_one_address_in_a_run_and_others_their_own() {
    let mut vm = hash_vm(8);
    let map = vm.map(0).unwrap().clone();
    for k in 0..3u32 {
        map.update(&k.to_ne_bytes(), &(10 + k as u64).to_ne_bytes(), 0)
            .unwrap();
    }
    // r6 = &v[1], r7 = &v[2], r8 = &v[1] again: r6 == r8 != r7.
    let src = format!(
        "{}r6 = r0\n{}r7 = r0\n{}r8 = r0\nr0 = 0\nif r6 != r8 goto out\nif r6 == r7 goto out\n\
         r0 = *(u64 *)(r6 + 0)\nr1 = *(u64 *)(r7 + 0)\nr0 <<= 8\nr0 |= r1\nout:\nexit\nmiss:\nr0 = 99\nexit",
        lookup(1),
        lookup(2),
        lookup(1)
    );
    let p = prog(&src);
    for _ in 0..2 {
        assert_eq!(vm.run(&p, &mut []).unwrap(), (11 << 8) | 12);
    }
}

#[test]
fn a_value_pointer_is_bounded_by_the_value() {
    let mut vm = hash_vm(8);
    vm.map(0)
        .unwrap()
        .update(&5u32.to_ne_bytes(), &7u64.to_ne_bytes(), 0)
        .unwrap();
    // Twice in one run, so the second lookup takes the found-again path.
    let src = format!(
        "{}{}r0 = *(u64 *)(r0 + 4)\nexit\nmiss:\nr0 = 99\nexit",
        lookup(5),
        lookup(5)
    );
    match vm.run(&prog(&src), &mut []) {
        Err(RunError::MemoryFault {
            size: 8,
            kind:
                FaultKind::OutOfBounds {
                    region: RegionKind::MapValue,
                    size: 8,
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn read_only_values_reject_stores_but_not_a_failed_cmpxchg() {
    let mut vm = Vm::new();
    let mut def = MapDef::new(MapType::Array, 4, 8, 1);
    def.map_flags = map_flags::RDONLY_PROG;
    vm.create_map(def).unwrap();
    vm.map(0)
        .unwrap()
        .update(&0u32.to_ne_bytes(), &3u64.to_ne_bytes(), 0)
        .unwrap();
    // cmpxchg expecting 4 finds 3: nothing is stored, so nothing faults.
    let cmpxchg = format!(
        "{}r1 = 9\nr6 = r0\nr0 = 4\nr0 = cmpxchg_64(r6 + 0, r0, r1)\nexit\nmiss:\nr0 = 99\nexit",
        lookup(0)
    );
    assert_eq!(vm.run(&prog(&cmpxchg), &mut []).unwrap(), 3);
    let add = format!(
        "{}r1 = 1\nlock *(u64 *)(r0 + 0) += r1\nr0 = 0\nexit\nmiss:\nr0 = 99\nexit",
        lookup(0)
    );
    match vm.run(&prog(&add), &mut []) {
        Err(RunError::MemoryFault {
            access: "atomic",
            kind: FaultKind::ReadOnly {
                region: RegionKind::MapValue,
            },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let value = vm.map(0).unwrap().lookup(&0u32.to_ne_bytes()).unwrap();
    assert_eq!(value, Some(3u64.to_ne_bytes().to_vec()), "value unchanged");
}

#[test]
fn keys_may_live_in_input_memory_or_in_another_maps_value() {
    let mut vm = hash_vm(8);
    // Map 1: an array whose value 0 holds the key 6 for map 0.
    vm.create_map(MapDef::new(MapType::Array, 4, 4, 1)).unwrap();
    vm.map(1)
        .unwrap()
        .update(&0u32.to_ne_bytes(), &6u32.to_ne_bytes(), 0)
        .unwrap();
    for k in [6u32, 9] {
        vm.map(0)
            .unwrap()
            .update(&k.to_ne_bytes(), &(k as u64 * 100).to_ne_bytes(), 0)
            .unwrap();
    }
    // r1 = input memory holding key 9.
    let from_input = prog(
        "r2 = r1\nr1 = map[fd:0]\ncall 1\nif r0 == 0 goto miss\nr0 = *(u64 *)(r0 + 0)\nexit\nmiss:\nr0 = 99\nexit",
    );
    assert_eq!(vm.run(&from_input, &mut 9u32.to_ne_bytes()).unwrap(), 900);
    let from_value = prog(
        "*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[fd:1]\ncall 1\nif r0 == 0 goto miss\n\
         r2 = r0\nr1 = map[fd:0]\ncall 1\nif r0 == 0 goto miss\nr0 = *(u64 *)(r0 + 0)\nexit\nmiss:\nr0 = 99\nexit",
    );
    assert_eq!(vm.run(&from_value, &mut []).unwrap(), 600);
    // A key past the end of its region is the helper's fault, named.
    match vm.run(&from_input, &mut [1, 2]) {
        Err(RunError::HelperFault { name, message, .. }) => {
            assert_eq!(name, "bpf_map_lookup_elem");
            assert!(message.contains("reading key (4 bytes"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_embedder_helper_1_replaces_the_direct_lookup() {
    let mut vm = hash_vm(8);
    vm.map(0)
        .unwrap()
        .update(&1u32.to_ne_bytes(), &5u64.to_ne_bytes(), 0)
        .unwrap();
    vm.helpers_mut().register(1, "my_lookup", |_, a| {
        Ok(HelperOutcome::Return(a[2] + 1000))
    });
    let p = prog(&format!("r3 = 7\n{}exit\nmiss:\nr0 = 99\nexit", lookup(1)));
    assert_eq!(vm.run(&p, &mut []).unwrap(), 1007);
}

#[test]
fn a_counter_over_many_keys_counts_each_in_its_own_element() {
    let mut vm = hash_vm(64);
    // The benchmark's counter: 1000 increments over 64 keys.
    let p = prog(
        "
        r6 = 0
    loop:
        r1 = r6
        r1 &= 63
        *(u32 *)(r10 - 4) = r1
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 != 0 goto found
        *(u64 *)(r10 - 16) = 1
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r1 = map[fd:0]
        r4 = 0
        call 2
        goto next
    found:
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
    next:
        r6 += 1
        if r6 < 1000 goto loop
        r0 = r6
        exit",
    );
    for _ in 0..2 {
        assert_eq!(vm.run(&p, &mut []).unwrap(), 1000);
    }
    let map = vm.map(0).unwrap();
    for k in 0..64u32 {
        let want = 2 * (1000 / 64 + u64::from(k < 1000 % 64));
        let got = map.lookup(&k.to_ne_bytes()).unwrap().unwrap();
        assert_eq!(got, want.to_ne_bytes().to_vec(), "key {k}");
    }
}
