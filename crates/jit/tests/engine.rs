//! The JIT ends every run as the interpreter does: the same `r0`, memory,
//! instruction count and `RunError` (pc, address, size, reason) for memory
//! faults, the budget, helpers, maps, bpf-to-bpf calls, atomics, callx and
//! callbacks.
#![cfg(target_arch = "x86_64")]

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{ContextKind, FaultKind, MapDef, Program, RegionKind, RunError, TestRun, Vm};

/// The program under both engines: (interpreted, compiled).
fn pair(src: &str, ctx: ContextKind) -> (Program, Program) {
    let insns = assemble(src, Syntax::Llvm).unwrap();
    let interp = Program::with_context(insns, ctx).unwrap();
    let mut jit = interp.clone();
    bpfkit_jit::compile(&mut jit).unwrap();
    assert!(jit.compiled().is_some());
    (interp, jit)
}

/// Runs `src` on `mem` in a fresh VM (set up by `setup`) under each
/// engine, checks they agree on the result, the memory, the instruction
/// count and the maps' contents, and returns the result.
fn agree_with(
    src: &str,
    mem: &[u8],
    budget: u64,
    setup: impl Fn(&mut Vm),
) -> Result<u64, RunError> {
    let (interp, jit) = pair(src, ContextKind::Raw);
    let mut outcomes = Vec::new();
    for p in [&interp, &jit] {
        let mut vm = Vm::new();
        vm.set_budget(budget);
        setup(&mut vm);
        let mut m = mem.to_vec();
        let r = vm.run(p, &mut m);
        let maps: Vec<_> = (0..)
            .map_while(|i| vm.map(i))
            .map(|m| {
                let mut entries = Vec::new();
                let mut key = None;
                while let Ok(Some(k)) = m.next_key(key.as_deref()) {
                    entries.push((k.clone(), m.lookup(&k).unwrap()));
                    key = Some(k);
                }
                entries
            })
            .collect();
        outcomes.push((r, m, vm.last_executed(), maps));
    }
    assert_eq!(outcomes[0], outcomes[1], "interpreter vs JIT for:\n{src}");
    outcomes.pop().unwrap().0
}

fn agree(src: &str, mem: &[u8]) -> Result<u64, RunError> {
    agree_with(src, mem, bpfkit_vm::DEFAULT_BUDGET, |_| {})
}

fn fault(r: Result<u64, RunError>) -> (usize, u64, usize, &'static str, FaultKind) {
    match r {
        Err(RunError::MemoryFault {
            pc,
            addr,
            size,
            access,
            kind,
        }) => (pc, addr, size, access, kind),
        other => panic!("expected a memory fault, got {other:?}"),
    }
}

#[test]
fn loads_and_stores_in_bounds_agree() {
    let src = "r2 = *(u32 *)(r1 + 0)
               r3 = *(u8 *)(r1 + 7)
               *(u16 *)(r1 + 2) = r3
               *(u64 *)(r10 - 8) = r2
               r4 = *(s8 *)(r1 + 7)
               r5 = *(s16 *)(r1 + 6)
               r6 = *(s32 *)(r1 + 4)
               *(u8 *)(r10 - 9) = 200
               r0 = *(u64 *)(r10 - 8)
               r0 += r4
               r0 += r5
               r0 += r6
               r7 = *(u8 *)(r10 - 9)
               r0 += r7
               exit";
    let r = agree(src, &[1, 2, 3, 4, 5, 6, 0x80, 0xff]).unwrap();
    let want = [-1i64 as u64, -128i64 as u64, 0xffff_ffff_ff80_0605, 200]
        .iter()
        .fold(0x0403_0201u64, |acc, v| acc.wrapping_add(*v));
    assert_eq!(r, want);
}

#[test]
fn memory_faults_are_the_interpreters() {
    // Past the end of the input.
    let (pc, _, size, access, kind) = fault(agree("r0 = *(u32 *)(r1 + 6)\nexit", &[0; 8]));
    assert_eq!((pc, size, access), (0, 4, "load"));
    assert_eq!(
        kind,
        FaultKind::OutOfBounds {
            region: RegionKind::Input,
            size: 8
        }
    );
    // Unmapped: a small integer.
    let (_, addr, _, _, kind) = fault(agree("r1 = 16\nr0 = *(u64 *)(r1 + 0)\nexit", &[]));
    assert_eq!((addr, kind), (16, FaultKind::Unmapped));
    // Outside the stack frame, above r10 and below r10-512.
    let (_, _, _, access, kind) = fault(agree("*(u64 *)(r10 + 0) = 1\nr0 = 0\nexit", &[]));
    assert_eq!(access, "store");
    assert_eq!(
        kind,
        FaultKind::OutsideStackFrame {
            frame: 0,
            offset: 0
        }
    );
    let (pc, ..) = fault(agree("r0 = 1\nr0 = *(u8 *)(r10 - 513)\nexit", &[]));
    assert_eq!(pc, 1);
    // Atomics take the same checks.
    let (pc, _, size, access, _) = fault(agree(
        "r1 = r10\nr1 += -1024\nr2 = 1\nlock *(u64 *)(r1 + 0) += r2\nr0 = 0\nexit",
        &[],
    ));
    assert_eq!((pc, size, access), (3, 8, "atomic"));
}

#[test]
fn a_store_to_a_read_only_context_faults_as_in_the_interpreter() {
    // XDP's xdp_md is read-only.
    let (interp, jit) = pair("*(u32 *)(r1 + 0) = 1\nr0 = 2\nexit", ContextKind::Xdp);
    let input = TestRun {
        data_in: vec![0; 64],
        ..TestRun::default()
    };
    let a = Vm::new().test_run(&interp, &input).unwrap_err();
    let b = Vm::new().test_run(&jit, &input).unwrap_err();
    assert_eq!(a, b);
    assert!(matches!(
        b,
        RunError::MemoryFault {
            kind: FaultKind::ReadOnly {
                region: RegionKind::Context
            },
            ..
        }
    ));
}

#[test]
fn xdp_packet_access_through_context_pointers_agrees() {
    // data/data_end come from the context; a bounds-checked packet read.
    let src = "r2 = *(u32 *)(r1 + 0)
               r3 = *(u32 *)(r1 + 4)
               r4 = r2
               r4 += 20
               if r4 > r3 goto drop
               r0 = *(u16 *)(r2 + 12)
               *(u8 *)(r2 + 0) = 0x42
               exit
drop:
               r0 = 1
               exit";
    let (interp, jit) = pair(src, ContextKind::Xdp);
    for len in [14usize, 64] {
        let mut data = vec![0u8; len];
        if len > 13 {
            data[12] = 0x08;
        }
        let input = TestRun {
            data_in: data,
            ..TestRun::default()
        };
        let a = Vm::new().test_run(&interp, &input).unwrap();
        let b = Vm::new().test_run(&jit, &input).unwrap();
        assert_eq!((a.retval, &a.data_out), (b.retval, &b.data_out));
    }
}

#[test]
fn the_budget_ends_runaway_loops_at_the_same_instruction() {
    for budget in [0, 1, 2, 3, 7, 100, 1001] {
        let r = agree_with(
            "r0 = 0\nloop:\nr0 += 1\nr1 = r0\nr1 *= 3\ngoto loop",
            &[],
            budget,
            |_| {},
        );
        assert!(
            matches!(r, Err(RunError::BudgetExhausted { budget: b, .. }) if b == budget),
            "{r:?}"
        );
    }
    // A budget that is just enough.
    assert_eq!(agree_with("r0 = 3\nr0 += 1\nexit", &[], 3, |_| {}), Ok(4));
    assert!(agree_with("r0 = 3\nr0 += 1\nexit", &[], 2, |_| {}).is_err());
}

#[test]
fn division_by_zero_and_signed_overflow_follow_rfc_9669() {
    let src = "r0 = 7
               r1 = 0
               r2 = r0
               r2 /= r1
               r3 = r0
               r3 %= r1
               r4 = -9223372036854775807 ll
               r4 += -1
               r5 = -1
               r6 = r4
               r6 s/= r5
               r7 = r4
               r7 s%= r5
               w8 = -7
               w8 s/= 2
               r0 = r2
               r0 += r3
               r0 ^= r6
               r0 += r7
               r0 += r8
               exit";
    agree(src, &[]).unwrap();
}

#[test]
fn helpers_and_maps_agree() {
    let src = "*(u32 *)(r10 - 4) = 7
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
               r0 = 0
               exit
found:
               r1 = 1
               lock *(u64 *)(r0 + 0) += r1
               r1 = *(u64 *)(r0 + 0)
               r2 = 3
               r2 = atomic_fetch_add((u64 *)(r0 + 0), r2)
               r0 = r2
               exit";
    let setup = |vm: &mut Vm| {
        vm.create_map(MapDef::new(MapType::Hash, 4, 8, 16)).unwrap();
    };
    assert_eq!(agree_with(src, &[], 1 << 20, setup), Ok(0));
    // With the key present: the value is updated in place through the
    // looked-up pointer (the slow path, map values being shared).
    let present = |vm: &mut Vm| {
        let m = vm.create_map(MapDef::new(MapType::Hash, 4, 8, 16)).unwrap();
        let map = vm.map(m).unwrap();
        map.update(&7u32.to_ne_bytes(), &10u64.to_ne_bytes(), 0)
            .unwrap();
    };
    assert_eq!(agree_with(src, &[], 1 << 20, present), Ok(11));
    // An unknown helper and a bad map fail alike.
    assert!(matches!(
        agree("call 9999\nexit", &[]),
        Err(RunError::UnknownHelper { pc: 0, id: 9999 })
    ));
    assert!(agree("r1 = map[fd:3]\nr0 = 0\nexit", &[]).is_err());
}

#[test]
fn atomics_agree_on_the_stack() {
    let src = "*(u64 *)(r10 - 8) = 100
               *(u32 *)(r10 - 12) = 5
               r1 = 3
               lock *(u64 *)(r10 - 8) += r1
               r1 = 0xf0
               lock *(u64 *)(r10 - 8) |= r1
               r1 = 0x3c
               r1 = atomic_fetch_and((u64 *)(r10 - 8), r1)
               r2 = 9
               r2 = atomic_fetch_xor((u64 *)(r10 - 8), r2)
               r3 = 77
               r3 = xchg_64(r10 - 8, r3)
               r0 = 77
               r4 = 88
               r0 = cmpxchg_64(r10 - 8, r0, r4)
               w0 = 5
               w5 = 6
               w0 = cmpxchg32_32(r10 - 12, w0, w5)
               r6 = *(u64 *)(r10 - 8)
               r7 = *(u32 *)(r10 - 12)
               r0 += r1
               r0 += r2
               r0 += r3
               r0 += r6
               r0 += r7
               exit";
    agree(src, &[]).unwrap();
}

#[test]
fn bpf_to_bpf_calls_have_their_own_frames() {
    let ok = "*(u64 *)(r10 - 8) = 40
              r1 = r10
              r1 += -8
              r6 = 9
              call f
              r0 = *(u64 *)(r10 - 8)
              r0 += r6
              exit
f:
              *(u64 *)(r10 - 512) = 2
              r2 = *(u64 *)(r10 - 512)
              r3 = *(u64 *)(r1 + 0)
              r3 += r2
              *(u64 *)(r1 + 0) = r3
              r6 = 1000
              r0 = 0
              exit";
    assert_eq!(agree(ok, &[]), Ok(51));
    // Reading a returned frame through a pointer the callee handed back.
    let returned = "call f
                    r0 = *(u64 *)(r0 + 0)
                    exit
f:
                    r0 = r10
                    r0 += -8
                    exit";
    let (_, _, _, _, kind) = fault(agree(returned, &[]));
    assert!(
        matches!(kind, FaultKind::ReturnedStackFrame { frame: 1, .. }),
        "{kind:?}"
    );
    // Unbounded recursion hits the call depth limit.
    let deep = "call f\nexit\nf:\ncall f\nexit";
    assert!(matches!(
        agree(deep, &[]),
        Err(RunError::CallDepth { max: 8, .. })
    ));
}

#[test]
fn callx_reaches_functions_and_helpers() {
    let src = "r1 = func[f]
               callx r1
               r6 = r0
               r2 = 0
               exit
f:
               r0 = 5
               exit";
    assert_eq!(agree(src, &[]), Ok(5));
    // A value that is neither a function address nor a helper.
    assert!(matches!(
        agree("r1 = 123456\ncallx r1\nexit", &[]),
        Err(RunError::BadCallTarget {
            pc: 1,
            target: 123456
        })
    ));
    // A helper id: bpf_get_smp_processor_id (8).
    assert_eq!(agree("r1 = 8\ncallx r1\nexit", &[]), Ok(0));
}

#[test]
fn callbacks_agree() {
    let src = "r6 = 7
               *(u64 *)(r10 - 8) = 5
               r1 = 2
               r2 = func[cb]
               r3 = r10
               r3 += -8
               r4 = 0
               call 181
               r1 = *(u64 *)(r10 - 8)
               r0 *= 100
               r0 += r1
               r0 *= r6
               exit
cb:
               r6 = 1000
               *(u64 *)(r10 - 512) = r6
               r4 = *(u64 *)(r2 + 0)
               r4 += r1
               r4 += 1
               *(u64 *)(r2 + 0) = r4
               r0 = 0
               exit";
    assert_eq!(agree(src, &[]), Ok((200 + 5 + 1 + 2) * 7));
    let nested = "r1 = 1\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall 181\nexit\ncb:\nr1 = 1\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall 181\nr0 = 0\nexit";
    assert!(matches!(
        agree(nested, &[]),
        Err(RunError::CallDepth { max: 8, .. })
    ));
}

#[test]
fn a_panicking_helper_panics_through_the_jit() {
    let (_, jit) = pair("call 77\nexit", ContextKind::Raw);
    let mut vm = Vm::new();
    vm.helpers_mut()
        .register(77, "boom", |_, _| panic!("helper exploded"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vm.run(&jit, &mut [])));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"helper exploded"));
}

#[test]
fn code_compiled_for_another_program_is_refused() {
    let (_, a) = pair("r0 = 1\nexit", ContextKind::Raw);
    let (mut b, _) = pair("r0 = 2\nexit", ContextKind::Raw);
    b.set_compiled(a.compiled().cloned());
    assert_eq!(
        Vm::new().run(&b, &mut []),
        Err(RunError::Internal { pc: 0 })
    );
    assert_eq!(bpfkit_jit::Engine::default(), bpfkit_jit::Engine::Jit);
}
