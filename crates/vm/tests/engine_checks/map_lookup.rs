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

/// Stores `value` under key `k` of map `fd` (bpf_map_update_elem, BPF_ANY);
/// the program ends with r0 = 98 if the update fails.
fn update(fd: u32, k: u32, value: u64) -> String {
    format!(
        "*(u32 *)(r10 - 4) = {k}\n*(u64 *)(r10 - 16) = {value}\nr2 = r10\nr2 += -4\nr3 = r10\nr3 += -16\n\
         r1 = map[fd:{fd}]\nr4 = 0\ncall 2\nif r0 != 0 goto fail\n"
    )
}

/// Deletes key `k` of map 0; the program ends with r0 = 98 if that fails.
fn delete(k: u32) -> String {
    format!(
        "*(u32 *)(r10 - 4) = {k}\nr2 = r10\nr2 += -4\nr1 = map[fd:0]\ncall 3\nif r0 != 0 goto fail\n"
    )
}

/// Looks key `k` up in map `fd` into r0, which may be 0.
fn lookup_in(fd: u32, k: u32) -> String {
    format!("*(u32 *)(r10 - 4) = {k}\nr2 = r10\nr2 += -4\nr1 = map[fd:{fd}]\ncall 1\n")
}

const ENDINGS: &str = "exit\nmiss:\nr0 = 99\nexit\nfail:\nr0 = 98\nexit";

#[test]
fn a_key_deleted_in_a_run_is_missing_and_re_added_gets_its_new_value() {
    let mut vm = hash_vm(8);
    let map = vm.map(0).unwrap().clone();
    map.update(&4u32.to_ne_bytes(), &40u64.to_ne_bytes(), 0)
        .unwrap();
    // r6 = &v[4] (looked up twice, so the lookup is one the run
    // remembers); after the delete the lookup finds nothing (r7); after
    // the re-add it finds the new element (r8), not the old region.
    let src = format!(
        "{l4}{l4}r6 = r0\n{del}{l}r7 = r0\n{up}{l4}r8 = r0\n{l4}if r0 != r8 goto fail\n\
         r0 = 1\nif r7 != 0 goto out\nr0 = 2\nif r8 == r6 goto out\n\
         r0 = *(u64 *)(r8 + 0)\nr1 = *(u64 *)(r6 + 0)\nr0 <<= 8\nr0 |= r1\nout:\n{ENDINGS}",
        l4 = lookup(4),
        l = lookup_in(0, 4),
        del = delete(4),
        up = update(0, 4, 41),
    );
    let p = prog(&src);
    // The old element's bytes stay what they were; the new ones are 41.
    // The second run starts from what the first left behind.
    for run in 0..2 {
        assert_eq!(vm.run(&p, &mut []).unwrap(), (41 << 8) | 40, "run {run}");
        map.update(&4u32.to_ne_bytes(), &40u64.to_ne_bytes(), 0)
            .unwrap();
    }
}

#[test]
fn user_space_changes_between_runs_are_seen_by_the_next_lookup() {
    let mut vm = hash_vm(8);
    let map = vm.map(0).unwrap().clone();
    map.update(&3u32.to_ne_bytes(), &30u64.to_ne_bytes(), 0)
        .unwrap();
    // Two lookups a run; the second reads the value and adds 1 to it.
    let p = prog(&format!(
        "{l}{l}r1 = 1\nlock *(u64 *)(r0 + 0) += r1\nr0 = *(u64 *)(r0 + 0)\n{ENDINGS}",
        l = lookup(3)
    ));
    assert_eq!(vm.run(&p, &mut []).unwrap(), 31);
    // Replaced in place: the element stays, with the new bytes.
    map.update(&3u32.to_ne_bytes(), &50u64.to_ne_bytes(), 0)
        .unwrap();
    assert_eq!(vm.run(&p, &mut []).unwrap(), 51);
    map.delete(&3u32.to_ne_bytes()).unwrap();
    assert_eq!(vm.run(&p, &mut []).unwrap(), 99, "deleted: a miss");
    map.update(&3u32.to_ne_bytes(), &70u64.to_ne_bytes(), 0)
        .unwrap();
    assert_eq!(vm.run(&p, &mut []).unwrap(), 71);
    assert_eq!(
        map.lookup(&3u32.to_ne_bytes()).unwrap(),
        Some(71u64.to_ne_bytes().to_vec())
    );
}

#[test]
fn an_update_in_a_run_of_a_key_looked_up_changes_the_same_element() {
    let mut vm = hash_vm(8);
    vm.map(0)
        .unwrap()
        .update(&2u32.to_ne_bytes(), &20u64.to_ne_bytes(), 0)
        .unwrap();
    // The kernel's prealloc maps may give an update a new element; the VM
    // updates in place, so a pointer a program holds sees the new bytes,
    // and a later lookup returns the same address.
    let src = format!(
        "{l}{l}r6 = r0\n{up}{l}r7 = r0\nr0 = 0\nif r7 != r6 goto out\nr0 = *(u64 *)(r6 + 0)\nout:\n{ENDINGS}",
        l = lookup(2),
        up = update(0, 2, 21),
    );
    assert_eq!(vm.run(&prog(&src), &mut []).unwrap(), 21);
}

#[test]
fn an_lru_lookup_in_a_run_still_marks_the_key_used() {
    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::LruHash, 4, 8, 2))
        .unwrap();
    let map = vm.map(0).unwrap().clone();
    for k in [1u32, 2] {
        map.update(&k.to_ne_bytes(), &(k as u64 * 10).to_ne_bytes(), 0)
            .unwrap();
    }
    // 1, 2, then 1 again: 1 is the most recently used, so adding 3
    // evicts 2 (a second lookup of 1 that skipped the map would leave
    // 1 the least recently used, and evict it instead).
    let src = format!(
        "{l1}{l2}{l1}{up}{m1}r6 = r0\n{m2}r7 = r0\nr0 = 1\nif r6 == 0 goto out\nr0 = 2\nif r7 != 0 goto out\n\
         r0 = *(u64 *)(r6 + 0)\nout:\n{ENDINGS}",
        l1 = lookup(1),
        l2 = lookup(2),
        up = update(0, 3, 30),
        m1 = lookup_in(0, 1),
        m2 = lookup_in(0, 2),
    );
    assert_eq!(vm.run(&prog(&src), &mut []).unwrap(), 10);
    assert_eq!(map.lookup(&2u32.to_ne_bytes()).unwrap(), None);
    assert_eq!(
        map.lookup(&3u32.to_ne_bytes()).unwrap(),
        Some(30u64.to_ne_bytes().to_vec())
    );
}

#[test]
fn the_same_key_in_two_maps_and_on_two_cpus_finds_each_ones_value() {
    let mut vm = Vm::new();
    vm.set_cpus(2);
    vm.create_map(MapDef::new(MapType::Hash, 4, 8, 8)).unwrap();
    vm.create_map(MapDef::new(MapType::Array, 4, 8, 8)).unwrap();
    vm.create_map(MapDef::new(MapType::PercpuHash, 4, 8, 8))
        .unwrap();
    vm.map(0)
        .unwrap()
        .update(&1u32.to_ne_bytes(), &5u64.to_ne_bytes(), 0)
        .unwrap();
    vm.map(1)
        .unwrap()
        .update(&1u32.to_ne_bytes(), &6u64.to_ne_bytes(), 0)
        .unwrap();
    let mut both = 7u64.to_ne_bytes().to_vec();
    both.extend(8u64.to_ne_bytes());
    vm.map(2)
        .unwrap()
        .update(&1u32.to_ne_bytes(), &both, 0)
        .unwrap();
    // r0 = map0[1] | map1[1] << 8 | map2[1] << 16, each looked up twice.
    let src = format!(
        "{a}{a}r6 = *(u64 *)(r0 + 0)\n{b}{b}r7 = *(u64 *)(r0 + 0)\n{c}{c}r8 = *(u64 *)(r0 + 0)\n\
         {a}r0 = *(u64 *)(r0 + 0)\nif r0 != r6 goto fail\n\
         r7 <<= 8\nr8 <<= 16\nr0 = r6\nr0 |= r7\nr0 |= r8\n{ENDINGS}",
        a = lookup_in(0, 1).replace("call 1\n", "call 1\nif r0 == 0 goto miss\n"),
        b = lookup_in(1, 1).replace("call 1\n", "call 1\nif r0 == 0 goto miss\n"),
        c = lookup_in(2, 1).replace("call 1\n", "call 1\nif r0 == 0 goto miss\n"),
    );
    let p = prog(&src);
    for cpu in [0u32, 1, 0] {
        vm.set_current_cpu(cpu);
        let want = 5 | 6 << 8 | (7 + cpu as u64) << 16;
        assert_eq!(vm.run(&p, &mut []).unwrap(), want, "cpu {cpu}");
    }
}

#[test]
fn a_counter_over_more_keys_than_a_run_remembers_counts_each() {
    // 4096 increments over 512 keys: lookups the space remembers give
    // way to others all the time.
    let mut vm = hash_vm(512);
    let p = prog(
        "
        r6 = 0
    loop:
        r1 = r6
        r1 *= 7
        r1 &= 511
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
        if r6 < 4096 goto loop
        r0 = r6
        exit",
    );
    assert_eq!(vm.run(&p, &mut []).unwrap(), 4096);
    assert_eq!(vm.run(&p, &mut []).unwrap(), 4096);
    let map = vm.map(0).unwrap();
    for k in 0..512u32 {
        let got = map.lookup(&k.to_ne_bytes()).unwrap().unwrap();
        assert_eq!(got, 16u64.to_ne_bytes().to_vec(), "key {k}");
    }
}

#[test]
fn every_atomic_on_a_map_value_reads_modifies_and_writes_the_maps_bytes() {
    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::Array, 4, 24, 1))
        .unwrap();
    let map = vm.map(0).unwrap().clone();
    // u64 at 0, u32 at 8 and 12, u64 at 16.
    let mut value = 100u64.to_le_bytes().to_vec();
    value.extend(0xf0f0u32.to_le_bytes());
    value.extend(7u32.to_le_bytes());
    value.extend(1u64.to_le_bytes());
    map.update(&0u32.to_ne_bytes(), &value, 0).unwrap();
    let p = prog(&format!(
        "{}r6 = r0
        r1 = 5
        r1 = atomic_fetch_add((u64 *)(r6 + 0), r1)
        w2 = 255
        w2 = atomic_fetch_and((u32 *)(r6 + 8), w2)
        w3 = 8
        lock *(u32 *)(r6 + 12) ^= w3
        r4 = 9
        r4 = xchg_64(r6 + 16, r4)
        w0 = 15
        w5 = 99
        w0 = cmpxchg32_32(r6 + 12, w0, w5)
        r7 = r0
        r0 = 1
        r5 = 2
        r0 = cmpxchg_64(r6 + 16, r0, r5)
        r8 = r0
        r0 = r1
        r0 <<= 16
        r0 |= r2
        r0 <<= 8
        r0 |= r4
        r0 <<= 8
        r0 |= r7
        r0 <<= 8
        r0 |= r8
        exit
        miss:
        r0 = 99
        exit",
        lookup(0)
    ));
    // Fetched: 100, 0xf0f0, 1; the 32-bit cmpxchg found 15 (7 ^ 8) and
    // stored 99; the 64-bit one found 9, not 1, and stored nothing.
    let want = (((100u64 << 16 | 0xf0f0) << 8 | 1) << 8 | 15) << 8 | 9;
    assert_eq!(vm.run(&p, &mut []).unwrap(), want);
    let mut after = 105u64.to_le_bytes().to_vec();
    after.extend(0xf0u32.to_le_bytes());
    after.extend(99u32.to_le_bytes());
    after.extend(9u64.to_le_bytes());
    assert_eq!(map.lookup(&0u32.to_ne_bytes()).unwrap(), Some(after));
    // Eight bytes at offset 20 of a 24-byte value: past its end.
    let past = prog(&format!(
        "{}r1 = 1\nlock *(u64 *)(r0 + 20) += r1\nr0 = 0\nexit\nmiss:\nr0 = 99\nexit",
        lookup(0)
    ));
    match vm.run(&past, &mut []) {
        Err(RunError::MemoryFault {
            access: "atomic",
            size: 8,
            kind:
                FaultKind::OutOfBounds {
                    region: RegionKind::MapValue,
                    size: 24,
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
