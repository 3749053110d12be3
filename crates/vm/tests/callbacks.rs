//! Helpers that call a program function back: bpf_loop and
//! bpf_for_each_map_elem run the callback in a new frame with the kernel's
//! arguments; timers are refused with a clear error.

use bpfkit_abi::{errno, MapType};
use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{HelperOutcome, MapDef, Program, RunError, Vm};

fn prog(src: &str) -> Program {
    Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap()
}

fn neg(e: i32) -> u64 {
    (-(e as i64)) as u64
}

/// bpf_loop(10, add_index, &sum, 0): r0 = sum * 100 + iterations.
const LOOP_SUM: &str = "
    *(u64 *)(r10 - 8) = 0
    r1 = 10
    r2 = func[add_index]
    r3 = r10
    r3 += -8
    r4 = 0
    call 181
    r1 = *(u64 *)(r10 - 8)
    r1 *= 100
    r0 += r1
    exit
add_index:
    r3 = *(u64 *)(r2 + 0)
    r3 += r1
    *(u64 *)(r2 + 0) = r3
    r0 = 0
    exit";

#[test]
fn bpf_loop_calls_back_with_the_index_and_ctx() {
    assert_eq!(Vm::new().run(&prog(LOOP_SUM), &mut []).unwrap(), 4500 + 10);
}

#[test]
fn bpf_loop_stops_when_the_callback_returns_1() {
    // Stops at i == 3: the helper returns i + 1 = 4 calls.
    let p = prog(
        "r1 = 100
         r2 = func[cb]
         r3 = 0
         r4 = 0
         call 181
         exit
cb:
         r0 = 0
         if r1 != 3 goto out
         r0 = 1
out:
         exit",
    );
    assert_eq!(Vm::new().run(&p, &mut []).unwrap(), 4);
}

#[test]
fn bpf_loop_refuses_flags_and_too_many_loops_as_the_kernel() {
    let run = |nr: &str, flags: &str| {
        let p = prog(&format!(
            "r1 = {nr} ll
             r2 = func[cb]
             r3 = 0
             r4 = {flags}
             call 181
             exit
cb:
             r0 = 0
             exit"
        ));
        Vm::new().run(&p, &mut []).unwrap()
    };
    assert_eq!(run("0", "0"), 0, "zero loops");
    assert_eq!(run("3", "1"), neg(errno::EINVAL));
    assert_eq!(
        run("0x800001", "0"),
        neg(errno::E2BIG),
        "more than BPF_MAX_LOOPS"
    );
}

#[test]
fn a_callback_has_its_own_frame_and_keeps_the_callers_registers() {
    // The callback uses its own r10 and r6; the caller's r6 and stack survive.
    let p = prog(
        "r6 = 7
         *(u64 *)(r10 - 8) = 5
         r1 = 2
         r2 = func[cb]
         r3 = r10
         r3 += -8
         r4 = 0
         call 181
         r0 = *(u64 *)(r10 - 8)
         r0 *= r6
         exit
cb:
         r6 = 1000
         *(u64 *)(r10 - 512) = r6
         r4 = *(u64 *)(r2 + 0)
         r4 += 1
         *(u64 *)(r2 + 0) = r4
         r0 = 0
         exit",
    );
    // (5 + 2) * 7
    assert_eq!(Vm::new().run(&p, &mut []).unwrap(), 49);
}

#[test]
fn nested_callbacks_count_toward_the_call_depth() {
    // Each callback calls bpf_loop again: the eighth frame is refused.
    let p = prog(
        "r1 = 1
         r2 = func[cb]
         r3 = 0
         r4 = 0
         call 181
         exit
cb:
         r1 = 1
         r2 = func[cb]
         r3 = 0
         r4 = 0
         call 181
         r0 = 0
         exit",
    );
    assert!(matches!(
        Vm::new().run(&p, &mut []),
        Err(RunError::CallDepth { max: 8, .. })
    ));
}

#[test]
fn bpf_for_each_map_elem_visits_each_element_with_key_value_and_ctx() {
    let mut vm = Vm::new();
    let map = vm.create_map(MapDef::new(MapType::Hash, 4, 8, 16)).unwrap();
    for (k, v) in [(1u32, 10u64), (2, 20), (3, 30)] {
        vm.map(map)
            .unwrap()
            .update(&k.to_ne_bytes(), &v.to_ne_bytes(), 0)
            .unwrap();
    }
    // ctx accumulates key * value; each value is doubled in place.
    // r0 = elements visited * 10000 + sum.
    let p = prog(
        "*(u64 *)(r10 - 8) = 0
         r1 = map[fd:0]
         r2 = func[cb]
         r3 = r10
         r3 += -8
         r4 = 0
         call 164
         r1 = *(u64 *)(r10 - 8)
         r0 *= 10000
         r0 += r1
         exit
cb:
         r5 = *(u32 *)(r2 + 0)
         r6 = *(u64 *)(r3 + 0)
         r5 *= r6
         r6 <<= 1
         *(u64 *)(r3 + 0) = r6
         r7 = *(u64 *)(r4 + 0)
         r7 += r5
         *(u64 *)(r4 + 0) = r7
         r0 = 0
         exit",
    );
    assert_eq!(vm.run(&p, &mut []).unwrap(), 3 * 10000 + 10 + 40 + 90);
    for (k, v) in [(1u32, 20u64), (2, 40), (3, 60)] {
        assert_eq!(
            vm.map(map).unwrap().lookup(&k.to_ne_bytes()).unwrap(),
            Some(v.to_ne_bytes().to_vec()),
            "value of key {k} doubled through the callback's pointer"
        );
    }
    // The key is read-only to the callback, as PTR_TO_MAP_KEY.
    let write_key = prog(
        "r1 = map[fd:0]
         r2 = func[cb]
         r3 = 0
         r4 = 0
         call 164
         exit
cb:
         *(u32 *)(r2 + 0) = 9
         r0 = 0
         exit",
    );
    assert!(matches!(
        vm.run(&write_key, &mut []),
        Err(RunError::MemoryFault {
            access: "store",
            ..
        })
    ));
}

#[test]
fn bpf_for_each_map_elem_stops_on_1_and_counts_the_elements_visited() {
    let mut vm = Vm::new();
    vm.create_map(MapDef::new(MapType::Array, 4, 8, 5)).unwrap();
    let p = prog(
        "r1 = map[fd:0]
         r2 = func[cb]
         r3 = 0
         r4 = 0
         call 164
         exit
cb:
         r0 = 0
         r5 = *(u32 *)(r2 + 0)
         if r5 != 1 goto out
         r0 = 1
out:
         exit",
    );
    // Keys 0 and 1 are visited; the callback stops at 1.
    assert_eq!(vm.run(&p, &mut []).unwrap(), 2);
    // Repeated calls in one run each visit all five elements.
    let many = prog(
        "r6 = 0
again:
         r1 = map[fd:0]
         r2 = func[cb]
         r3 = 0
         r4 = 0
         call 164
         r6 += 1
         if r6 < 2000 goto again
         exit
cb:
         r0 = 0
         exit",
    );
    assert_eq!(vm.run(&many, &mut []).unwrap(), 5);
}

#[test]
fn timers_are_refused_with_a_clear_error_and_find_vma_finds_nothing() {
    let timer = prog("r1 = 0\nr2 = 0\nr3 = 0\ncall 169\nexit");
    let e = Vm::new().run(&timer, &mut []).unwrap_err();
    assert!(
        e.to_string()
            .contains("bpf_timer_init: BPF timers are not supported in the userspace VM"),
        "{e}"
    );
    let find_vma = prog(
        "r1 = 0
         r2 = 0x1000
         r3 = func[cb]
         r4 = 0
         r5 = 0
         call 180
         exit
cb:
         r0 = 0
         exit",
    );
    assert_eq!(
        Vm::new().run(&find_vma, &mut []).unwrap(),
        neg(errno::ENOENT)
    );
}

#[test]
fn an_embedder_helper_replaces_bpf_loop() {
    let mut vm = Vm::new();
    vm.helpers_mut().register(181, "my_loop", |_, args| {
        Ok(HelperOutcome::Return(args[0] + 1))
    });
    assert_eq!(vm.run(&prog(LOOP_SUM), &mut []).unwrap(), 11);
}

#[test]
fn the_clang_compiled_callbacks_fixture_runs() {
    let spec = bpfkit_object::ObjectSpec::from_file(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/callbacks.bpf.o"),
    )
    .unwrap();
    let mut vm = Vm::new();
    let obj = vm.load_object(&spec).unwrap();
    let mut pkt = vec![0u8; 64];
    pkt[12] = 0x08;
    let run = |vm: &mut Vm, name: &str| {
        vm.test_run(
            &obj.programs[name],
            &bpfkit_vm::TestRun {
                data_in: pkt.clone(),
                ctx_in: vec![],
                repeat: 1,
            },
        )
        .unwrap()
        .retval
    };
    assert_eq!(run(&mut vm, "loop_sum"), 28 * 100 + 8);
    let values = vm.map(obj.maps["values"]).unwrap().clone();
    for k in 0..4u32 {
        values
            .update(&k.to_ne_bytes(), &(k as u64 + 1).to_ne_bytes(), 0)
            .unwrap();
    }
    // Array: 0 + 2 + 6 + 12 over 4 elements; the hash is empty.
    assert_eq!(run(&mut vm, "each_elem"), 20 * 100 + 4);
    assert_eq!(
        values.lookup(&3u32.to_ne_bytes()).unwrap(),
        Some(14u64.to_ne_bytes().to_vec())
    );
}
