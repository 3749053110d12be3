//! The JIT's lookup cache (crate::lookup) gives what the machine would: a
//! lookup in a loop under the interpreter and the JIT agrees on results,
//! memory, maps and instructions counted, whatever changes the maps or
//! the regions between two lookups of one key.
#![cfg(target_arch = "x86_64")]

use std::sync::{Arc, Mutex};

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{Backing, HelperOutcome, MapDef, Program, RunError, Vm};

/// What a run left: its result (twice: the second run starts from the
/// first's maps), the instructions counted, and every map's entries.
type Outcome = (
    Result<u64, RunError>,
    Result<u64, RunError>,
    u64,
    Vec<Vec<(Vec<u8>, Vec<u8>)>>,
);

/// `src` under the interpreter and the JIT, each in a VM with `maps` and
/// what `setup` adds (helpers); they must agree. Returns the JIT's last
/// result.
fn agree(src: &str, maps: &[MapDef], setup: impl Fn(&mut Vm)) -> Result<u64, RunError> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    for p in &engines(src) {
        let mut vm = Vm::new();
        vm.set_budget(1 << 20);
        for def in maps {
            vm.create_map(def.clone()).unwrap();
        }
        setup(&mut vm);
        let first = vm.run(p, &mut []);
        let second = vm.run(p, &mut []);
        let mut all = Vec::new();
        for index in 0..maps.len() as u32 {
            let map = vm.map(index).unwrap();
            let mut entries = Vec::new();
            let mut key = None;
            while let Ok(Some(k)) = map.next_key(key.as_deref()) {
                entries.push((k.clone(), map.lookup(&k).unwrap().unwrap()));
                key = Some(k);
            }
            entries.sort();
            all.push(entries);
        }
        outcomes.push((first, second, vm.last_executed(), all));
    }
    assert_eq!(outcomes[0], outcomes[1], "interpreter vs JIT for:\n{src}");
    outcomes.pop().unwrap().1
}

/// `src` for the interpreter, then compiled for the JIT.
fn engines(src: &str) -> [Program; 2] {
    let interp = Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap();
    let mut jit = interp.clone();
    bpfkit_jit::compile(&mut jit).unwrap();
    [interp, jit]
}

fn hash(key_size: u32, entries: u32) -> MapDef {
    MapDef::new(MapType::Hash, key_size, 8, entries)
}

#[test]
fn lookups_in_a_loop_agree_across_deletes_re_adds_and_two_maps() {
    // One call site looks up 8 keys in map 0 (4-byte keys) and map 1
    // (8-byte keys) in turn: the site's key size changes from lookup to
    // lookup. A missing key is added; every 16th iteration deletes one of
    // map 0's keys, so a remembered value must be looked up again.
    let src = "
        r6 = 0
        r9 = 0
    loop:
        r7 = r6
        r7 &= 7
        *(u64 *)(r10 - 8) = r7
        r2 = r10
        r2 += -8
        r1 = map[fd:0]
        r8 = r6
        r8 &= 1
        if r8 == 0 goto lookup
        r1 = map[fd:1]
    lookup:
        call 1
        if r0 == 0 goto add
        r8 = *(u64 *)(r0 + 0)
        r9 += r8
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        goto deletes
    add:
        *(u64 *)(r10 - 16) = 1
        r2 = r10
        r2 += -8
        r3 = r10
        r3 += -16
        r4 = 0
        r1 = map[fd:0]
        r8 = r6
        r8 &= 1
        if r8 == 0 goto update
        r1 = map[fd:1]
    update:
        call 2
    deletes:
        r8 = r6
        r8 &= 15
        if r8 != 15 goto next
        r7 = r6
        r7 >>= 4
        r7 &= 7
        *(u64 *)(r10 - 8) = r7
        r2 = r10
        r2 += -8
        r1 = map[fd:0]
        call 3
    next:
        r6 += 1
        if r6 < 300 goto loop
        r0 = r9
        exit";
    let sum = agree(src, &[hash(4, 64), hash(8, 64)], |_| {}).unwrap();
    assert!(sum > 300, "{sum}");
}

/// A loop of 40 lookups of key 3 in map 0, summing the values; helper 100
/// runs at every 8th iteration with r1 = the value's address.
const LOOKUP_LOOP: &str = "
        r6 = 0
        r9 = 0
    loop:
        *(u32 *)(r10 - 4) = 3
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 == 0 goto next
        r8 = *(u64 *)(r0 + 0)
        r9 += r8
        r7 = r6
        r7 &= 7
        if r7 != 7 goto next
        r1 = r0
        call 100
    next:
        r6 += 1
        if r6 < 40 goto loop
        r0 = r9
        exit";

/// Map 0 with key 3 holding 1.
fn with_key_3(vm: &mut Vm) -> bpfkit_vm::Map {
    let map = vm.map(0).unwrap().clone();
    map.update(&3u32.to_ne_bytes(), &1u64.to_ne_bytes(), 0)
        .unwrap();
    map
}

#[test]
fn a_map_changed_by_a_helper_mid_run_is_looked_up_again() {
    // The helper deletes key 3 and adds it again with a new value: the
    // map's value generation moves on, and the next lookup must see the
    // new element.
    let sum = agree(LOOKUP_LOOP, &[hash(4, 8)], |vm| {
        let map = with_key_3(vm);
        let mut next = 10u64;
        vm.helpers_mut()
            .register(100, "replace_key_3", move |_, _| {
                map.delete(&3u32.to_ne_bytes()).unwrap();
                map.update(&3u32.to_ne_bytes(), &next.to_ne_bytes(), 0)
                    .unwrap();
                next *= 10;
                Ok(HelperOutcome::Return(0))
            });
    })
    .unwrap();
    // The first run's last helper call left 10^5; in the second run, 8
    // lookups each see 10^5, 10^6, ..., 10^9.
    assert_eq!(sum, 8 * 11111 * 100_000);
}

#[test]
fn a_value_region_a_helper_replaces_is_looked_up_again() {
    // The helper swaps the bytes of the value's region for its own: the
    // regions moved, so the cache is emptied and the lookup asks again.
    let sum = agree(LOOKUP_LOOP, &[hash(4, 8)], |vm| {
        with_key_3(vm);
        vm.helpers_mut().register(100, "swap_region", |ctx, a| {
            let index = (a[0] >> 32) as usize - 1;
            if let Some(region) = ctx.memory.region_mut(index) {
                region.backing = Backing::Owned(7u64.to_ne_bytes().to_vec());
            }
            Ok(HelperOutcome::Return(0))
        });
    })
    .unwrap();
    assert_eq!(sum, 40);
}

#[test]
fn an_embedders_lookup_helper_is_asked_every_time() {
    // An embedder's helper 1 replaces the built-in lookup, which then
    // gives no memo: every iteration calls it.
    let calls = Arc::new(Mutex::new(0u64));
    let counted = calls.clone();
    let src = LOOKUP_LOOP.replace("call 100", "r0 = r0");
    agree(&src, &[hash(4, 8)], move |vm| {
        let calls = counted.clone();
        // The built-in would find key 3 and never call the helper.
        with_key_3(vm);
        vm.helpers_mut().register(1, "my_lookup", move |_, _| {
            *calls.lock().unwrap() += 1;
            // No element: the loop goes on to its next iteration.
            Ok(HelperOutcome::Return(0))
        });
    })
    .unwrap();
    // Two engines, two runs each, 40 iterations each.
    assert_eq!(*calls.lock().unwrap(), 4 * 40);
}

#[test]
fn a_key_pointer_that_leaves_the_stack_faults_where_the_interpreter_does() {
    // r7 walks the key pointer down the stack 64 bytes at a time: the
    // remembered key stops matching, then the pointer leaves the frame
    // and the lookup's read of the key faults.
    let src = "
        r7 = r10
        r7 += -8
        r9 = 0
    loop:
        *(u32 *)(r10 - 8) = 3
        r2 = r7
        r1 = map[fd:0]
        call 1
        if r0 == 0 goto next
        r8 = *(u64 *)(r0 + 0)
        r9 += r8
    next:
        r6 += 1
        r8 = r6
        r8 &= 3
        if r8 != 3 goto loop
        r7 += -64
        goto loop";
    let r = agree(src, &[hash(4, 8)], |vm| {
        with_key_3(vm);
    });
    assert!(
        matches!(
            r,
            Err(RunError::HelperFault { .. }) | Err(RunError::MemoryFault { .. })
        ),
        "{r:?}"
    );
}

#[test]
fn lru_and_array_lookups_in_a_loop_agree() {
    // An LRU map (not remembered: a lookup marks the key used) with more
    // keys than room, and an array.
    let src = "
        r6 = 0
    loop:
        r7 = r6
        r7 %= 11
        *(u32 *)(r10 - 4) = r7
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 != 0 goto array
        *(u64 *)(r10 - 16) = 1
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 0
        r1 = map[fd:0]
        call 2
    array:
        r7 = r6
        r7 &= 3
        *(u32 *)(r10 - 4) = r7
        r2 = r10
        r2 += -4
        r1 = map[fd:1]
        call 1
        if r0 == 0 goto next
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
    next:
        r6 += 1
        if r6 < 200 goto loop
        r0 = r6
        exit";
    let maps = [
        MapDef::new(MapType::LruHash, 4, 8, 8),
        MapDef::new(MapType::Array, 4, 8, 4),
    ];
    assert_eq!(agree(src, &maps, |_| {}), Ok(200));
}

#[test]
fn the_cache_tells_maps_keys_and_key_sizes_apart() {
    // One call site looks up a sequence of (map, key) pairs from the
    // input: map 0 has 8-byte keys, maps 1 and 2 4-byte ones. Each step
    // after the first could take a slot another step filled if the cache
    // compared less than it does:
    // - map 0 with key 5 + 2^32 while the site reads 4-byte keys finds map
    //   0's key 5 in its slot (the key size tells them apart);
    // - map 1 with key 5 finds map 2's key 5 (the map does);
    // - map 1 with key 149, which shares key 5's slot, finds key 5 (the
    //   key does).
    let steps: [(u64, u64); 7] = [
        (0, 5),
        (1, 9),
        (0, 5 + (1 << 32)),
        (2, 5),
        (1, 5),
        (1, 149),
        (0, 5),
    ];
    let mut input = Vec::new();
    for _ in 0..3 {
        for (map, key) in steps {
            input.extend_from_slice(&map.to_le_bytes());
            input.extend_from_slice(&key.to_le_bytes());
        }
    }
    let src = format!(
        "
        r6 = r1
        r7 = r1
        r7 += {len}
        r9 = 0
    loop:
        r8 = *(u64 *)(r6 + 8)
        *(u64 *)(r10 - 8) = r8
        r8 = *(u64 *)(r6 + 0)
        r2 = r10
        r2 += -8
        r1 = map[fd:0]
        if r8 == 0 goto lookup
        r1 = map[fd:1]
        if r8 == 1 goto lookup
        r1 = map[fd:2]
    lookup:
        call 1
        r9 *= 3
        if r0 == 0 goto next
        r0 = *(u64 *)(r0 + 0)
        r9 += r0
    next:
        r6 += 16
        if r6 < r7 goto loop
        r0 = r9
        exit",
        len = input.len()
    );
    let maps = [hash(8, 8), hash(4, 8), hash(4, 8)];
    let fill = |vm: &mut Vm| {
        let put = |index: u32, key: &[u8], value: u64| {
            vm.map(index)
                .unwrap()
                .update(key, &value.to_ne_bytes(), 0)
                .unwrap()
        };
        put(0, &5u64.to_ne_bytes(), 50);
        put(1, &9u32.to_ne_bytes(), 90);
        put(1, &5u32.to_ne_bytes(), 55);
        put(1, &149u32.to_ne_bytes(), 77);
        put(2, &5u32.to_ne_bytes(), 500);
    };
    let mut results = Vec::new();
    for p in &engines(&src) {
        let mut vm = Vm::new();
        for def in &maps {
            vm.create_map(def.clone()).unwrap();
        }
        fill(&mut vm);
        let mut mem = input.clone();
        results.push(vm.run_vec(p, &mut mem).unwrap());
    }
    assert_eq!(results[0], results[1], "interpreter vs JIT");
    // Base 3, one digit-sum per step: 50, 90, 0, 500, 55, 77, 50.
    let expect = (0..3).flat_map(|_| [50u64, 90, 0, 500, 55, 77, 50]);
    assert_eq!(
        results[1],
        expect.fold(0u64, |acc, v| acc.wrapping_mul(3).wrapping_add(v))
    );
}

#[test]
fn random_lookup_loops_agree_with_the_interpreter() {
    // Loops that look keys up, add to the values, update and delete, in
    // two of four maps (4- and 8-byte hash keys, an array, a small LRU)
    // chosen by turns, over keys, periods and budgets drawn at random.
    use proptest::test_runner::{Config, TestRunner};
    const CASES: u32 = 3_000;
    let maps = [
        hash(4, 16),
        hash(8, 16),
        MapDef::new(MapType::Array, 4, 8, 16),
        MapDef::new(MapType::LruHash, 4, 8, 4),
    ];
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        (0u32..4, 0u32..4),
        (1u32..5, 1u32..40),
        (1u32..20, 0u32..20, 0u32..20),
        (0u32..3, 1u32..300),
        50u64..20_000,
    );
    let finished = std::cell::Cell::new(0);
    runner
        .run(
            &strategy,
            |(
                (map_a, map_b),
                (mul, modulus),
                (period, delete_at, update_at),
                (add, iterations),
                budget,
            )| {
                let src = format!(
                    "
                    r6 = 0
                    r9 = 0
                loop:
                    r7 = r6
                    r7 *= {mul}
                    r7 %= {modulus}
                    *(u64 *)(r10 - 8) = r7
                    r2 = r10
                    r2 += -8
                    r1 = map[fd:{map_a}]
                    r8 = r6
                    r8 &= 1
                    if r8 == 0 goto pick
                    r1 = map[fd:{map_b}]
                pick:
                    r8 = r6
                    r8 %= {period}
                    if r8 == {delete_at} goto delete
                    if r8 == {update_at} goto update
                    call 1
                    if r0 == 0 goto next
                    r8 = *(u64 *)(r0 + 0)
                    r9 += r8
                    r8 = {add}
                    lock *(u64 *)(r0 + 0) += r8
                    goto next
                update:
                    *(u64 *)(r10 - 16) = r6
                    r3 = r10
                    r3 += -16
                    r4 = 0
                    call 2
                    goto next
                delete:
                    call 3
                next:
                    r6 += 1
                    if r6 < {iterations} goto loop
                    r0 = r9
                    exit"
                );
                let vm_budget = |vm: &mut Vm| vm.set_budget(budget);
                if agree(&src, &maps, vm_budget).is_ok() {
                    finished.set(finished.get() + 1);
                }
                Ok(())
            },
        )
        .unwrap();
    eprintln!("{} of {CASES} lookup loops finished", finished.get());
    assert!(
        finished.get() > CASES / 4,
        "{} of {CASES} finished",
        finished.get()
    );
}

/// Looks up key 3 in map 0 (a hash) and key 4 in map 1 (a per-CPU hash:
/// another key, so that the lookups have slots of their own) and returns
/// map 0's value times 1000 plus map 1's (0 for a missing one).
const TWO_LOOKUPS: &str = "
    *(u32 *)(r10 - 4) = 3
    *(u32 *)(r10 - 8) = 4
    r2 = r10
    r2 += -4
    r1 = map[fd:0]
    call 1
    r6 = 0
    if r0 == 0 goto second
    r6 = *(u64 *)(r0 + 0)
    r6 *= 1000
second:
    r2 = r10
    r2 += -8
    r1 = map[fd:1]
    call 1
    if r0 == 0 goto done
    r0 = *(u64 *)(r0 + 0)
    r6 += r0
done:
    r0 = r6
    exit";

#[test]
fn lookups_kept_from_run_to_run_see_what_changed_between_runs() {
    // Values a run looked up stay in the VM's space for the next run, and
    // the JIT's lookups of them with it: whatever changes between runs
    // (values rewritten, a key deleted and added again, the CPU, the
    // lookup helper) the next run sees, under either engine.
    let key = 3u32.to_ne_bytes();
    let u64s = |v: &[u64]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
    for p in &engines(TWO_LOOKUPS) {
        let mut vm = Vm::new();
        vm.set_cpus(2);
        vm.create_map(hash(4, 8)).unwrap();
        vm.create_map(MapDef::new(MapType::PercpuHash, 4, 8, 8))
            .unwrap();
        let (values, per_cpu) = (vm.map(0).unwrap().clone(), vm.map(1).unwrap().clone());
        values.update(&key, &u64s(&[1]), 0).unwrap();
        per_cpu
            .update(&4u32.to_ne_bytes(), &u64s(&[10, 20]), 0)
            .unwrap();
        assert_eq!(vm.run(p, &mut []), Ok(1010));
        assert_eq!(vm.run(p, &mut []), Ok(1010), "the same again");
        values.update(&key, &u64s(&[2]), 0).unwrap();
        assert_eq!(vm.run(p, &mut []), Ok(2010), "a value rewritten");
        values.delete(&key).unwrap();
        assert_eq!(vm.run(p, &mut []), Ok(10), "a key deleted");
        values.update(&key, &u64s(&[5]), 0).unwrap();
        assert_eq!(vm.run(p, &mut []), Ok(5010), "a key added again");
        vm.set_current_cpu(1);
        assert_eq!(vm.run(p, &mut []), Ok(5020), "another CPU's value");
        vm.helpers_mut()
            .register(1, "no_lookup", |_, _| Ok(HelperOutcome::Return(0)));
        assert_eq!(vm.run(p, &mut []), Ok(0), "an embedder's lookup");
    }
}

#[test]
fn a_value_keeps_its_address_from_run_to_run() {
    // As in the kernel, where a map value stays put while its element
    // lives: the second run's lookup gives the first's address.
    let src = "
        *(u32 *)(r10 - 4) = 3
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        exit";
    let mut addresses = Vec::new();
    for p in &engines(src) {
        let mut vm = Vm::new();
        vm.create_map(hash(4, 8)).unwrap();
        with_key_3(&mut vm);
        let first = vm.run(p, &mut []).unwrap();
        assert_ne!(first, 0);
        assert_eq!(vm.run(p, &mut []), Ok(first));
        addresses.push(first);
    }
    assert_eq!(addresses[0], addresses[1], "interpreter vs JIT");
}
