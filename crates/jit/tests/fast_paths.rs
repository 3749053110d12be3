//! The JIT's shortcuts keep the interpreter's results: stack accesses at
//! constant offsets from `r10` go straight to the frame (no region-table
//! check, visible in the listing), map handles are loaded once per run,
//! and the budget is taken per block in one step.
#![cfg(target_arch = "x86_64")]

use bpfkit_abi::MapType;
use bpfkit_isa::{assemble, Syntax};
use bpfkit_jit::JitProgram;
use bpfkit_vm::{MapDef, Program, RunError, Vm};

/// The result, memory, instruction count and the first map's entries of
/// `src` under the interpreter and the JIT, which must agree.
fn agree(src: &str, mem: &[u8], budget: u64, maps: &[MapDef]) -> Result<u64, RunError> {
    let interp = Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap();
    let mut jit = interp.clone();
    bpfkit_jit::compile(&mut jit).unwrap();
    let mut outcomes = Vec::new();
    for p in [&interp, &jit] {
        let mut vm = Vm::new();
        vm.set_budget(budget);
        for def in maps {
            vm.create_map(def.clone()).unwrap();
        }
        let mut m = mem.to_vec();
        // Twice: the second run must not see the first's cached handles
        // or frame addresses wrongly.
        let first = vm.run(p, &mut m);
        let r = vm.run(p, &mut m);
        let mut entries = Vec::new();
        if let Some(map) = vm.map(0) {
            let mut key = None;
            while let Ok(Some(k)) = map.next_key(key.as_deref()) {
                entries.push((k.clone(), map.lookup(&k).unwrap()));
                key = Some(k);
            }
        }
        outcomes.push((first, r, m, vm.last_executed(), entries));
    }
    assert_eq!(outcomes[0], outcomes[1], "interpreter vs JIT for:\n{src}");
    outcomes.pop().unwrap().1
}

/// How many region-table bounds checks (`cmp` of the region number in r10
/// against the table's size at [r12]) the listing of `src` has in the
/// program's code (out-of-line paths repeat some for budget ends).
fn table_checks(src: &str) -> usize {
    let p = Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap();
    let code = JitProgram::compile(&p).unwrap();
    code.listing(&p)
        .lines()
        .take_while(|l| !l.starts_with("; out-of-line paths"))
        .filter(|l| l.contains("cmp r10,[r12]"))
        .count()
}

#[test]
fn constant_stack_offsets_skip_the_region_table() {
    let inside = "
        *(u64 *)(r10 - 8) = 7
        r3 = 0x04030201
        *(u32 *)(r10 - 512) = r3
        r0 = *(u64 *)(r10 - 8)
        r2 = *(u32 *)(r10 - 512)
        r0 += r2
        exit";
    assert_eq!(table_checks(inside), 0);
    assert_eq!(
        agree(inside, &[1, 2, 3, 4], 1 << 20, &[]),
        Ok(7 + 0x0403_0201)
    );
    // Outside the frame, or through another register: the checked path,
    // and the interpreter's fault.
    let outside = "
        r0 = *(u64 *)(r10 - 516)
        exit";
    assert_eq!(table_checks(outside), 1);
    assert!(matches!(
        agree(outside, &[], 1 << 20, &[]),
        Err(RunError::MemoryFault { pc: 0, .. })
    ));
    let above = "
        r0 = *(u8 *)(r10 + 0)
        exit";
    assert_eq!(table_checks(above), 1);
    assert!(agree(above, &[], 1 << 20, &[]).is_err());
    let derived = "
        r2 = r10
        r2 += -8
        *(u64 *)(r2 + 0) = 5
        r0 = *(u64 *)(r10 - 8)
        exit";
    assert_eq!(table_checks(derived), 1);
    assert_eq!(agree(derived, &[], 1 << 20, &[]), Ok(5));
}

#[test]
fn stack_fast_path_follows_bpf_to_bpf_frames() {
    // The callee's r10 is its own frame: its stores must not land in the
    // caller's, whose value survives the call.
    let src = "
        *(u64 *)(r10 - 8) = 11
        call sub
        r1 = *(u64 *)(r10 - 8)
        r0 += r1
        exit
    sub:
        *(u64 *)(r10 - 8) = 30
        r0 = *(u64 *)(r10 - 8)
        exit";
    assert_eq!(agree(src, &[], 1 << 20, &[]), Ok(41));
    // Through a pointer derived from r10: the callee's frame, a region
    // that appears when the call first enters it, has its own entry in
    // the inline tables (and the caller's stays as it was).
    let derived = "
        r6 = r10
        r6 += -8
        *(u64 *)(r6 + 0) = 11
        call sub
        r1 = *(u64 *)(r6 + 0)
        r0 += r1
        exit
    sub:
        r2 = r10
        r2 += -16
        *(u64 *)(r2 + 8) = 30
        *(u64 *)(r2 + 0) = 1
        r0 = *(u64 *)(r2 + 8)
        r3 = *(u64 *)(r2 + 0)
        r0 += r3
        exit";
    assert_eq!(agree(derived, &[], 1 << 20, &[]), Ok(42));
}

#[test]
fn map_handles_are_cached_per_run_with_the_interpreters_contents() {
    let src = "
        r6 = 0
    loop:
        *(u32 *)(r10 - 4) = r6
        *(u64 *)(r10 - 16) = r6
        r1 = map[fd:0]
        r2 = r10
        r2 += -4
        r3 = r10
        r3 += -16
        r4 = 0
        call 2
        r1 = map[fd:1]
        r2 = r10
        r2 += -4
        call 1
        if r0 == 0 goto next
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
    next:
        r6 += 1
        if r6 < 10 goto loop
        r0 = r6
        exit";
    let maps = [
        MapDef::new(MapType::Hash, 4, 8, 16),
        MapDef::new(MapType::Array, 4, 8, 4),
    ];
    assert_eq!(agree(src, &[], 1 << 20, &maps), Ok(10));
}

#[test]
fn budget_stops_where_the_interpreter_stops() {
    let src = "
        r0 = 0
    loop:
        r0 += 1
        *(u64 *)(r10 - 8) = r0
        r1 = *(u64 *)(r10 - 8)
        goto loop";
    for budget in [1, 2, 3, 4, 5, 6, 7, 100, 1001] {
        assert!(matches!(
            agree(src, &[], budget, &[]),
            Err(RunError::BudgetExhausted { .. })
        ));
    }
}

#[test]
fn inline_checks_end_exactly_at_a_regions_last_byte() {
    // The inline tables hold, per access size, the first address an access
    // may not start at. Around every region end, for every size, loads and
    // stores (register and immediate) must fit or fault as the interpreter
    // says, including regions shorter than the access.
    for len in [0usize, 1, 2, 3, 4, 7, 8, 9, 16] {
        let mem: Vec<u8> = (1..=len as u8).collect();
        for (size, ty) in [(1i64, "u8"), (2, "u16"), (4, "u32"), (8, "u64")] {
            for off in (len as i64 - size - 1).max(0)..=len as i64 {
                let load = format!("r0 = *({ty} *)(r1 + {off})\nexit");
                let store = format!("r2 = 0x5a5a5a5a\n*({ty} *)(r1 + {off}) = r2\nr0 = 1\nexit");
                let store_imm = format!("*({ty} *)(r1 + {off}) = 0x77\nr0 = 2\nexit");
                let fits = off + size <= len as i64;
                for src in [load, store, store_imm] {
                    let r = agree(&src, &mem, 1 << 20, &[]);
                    assert_eq!(
                        r.is_ok(),
                        fits,
                        "len {len}, size {size}, offset {off}:\n{src}"
                    );
                }
            }
        }
    }
}

#[test]
fn loads_and_stores_inside_a_block_fault_and_count_as_the_interpreter_does() {
    // Loads and stores do not end budget blocks: a fault gives back the
    // rest of its block, and a budget that ends inside a block must still
    // see an earlier access fault first. Every budget from 1 up, so the
    // budget ends before, at and after each access; `agree` also compares
    // the instructions counted and the memory left.
    let straight = "
        r0 = 1
        r0 += 1
        r2 = *(u64 *)(r1 + 0)
        r0 += r2
        *(u64 *)(r1 + 8) = r0
        r0 += 1
        *(u32 *)(r1 + 12) = 9
        r3 = *(u64 *)(r1 + 64)
        r0 += 1
        r0 += 1
        exit";
    let looped = "
        r0 = 0
        r4 = 0
    again:
        r2 = *(u8 *)(r1 + 0)
        r0 += r2
        *(u8 *)(r1 + 1) = r0
        r1 += 1
        r4 += 1
        if r4 < 100 goto again
        exit";
    for src in [straight, looped] {
        let mut outcomes = Vec::new();
        for budget in 1..=120 {
            outcomes.push(agree(src, &[3; 16], budget, &[]));
        }
        // The budget runs out in the first few, a fault ends the rest.
        assert!(matches!(outcomes[0], Err(RunError::BudgetExhausted { .. })));
        assert!(matches!(
            outcomes.last(),
            Some(Err(RunError::MemoryFault { .. }))
        ));
    }
}

/// A copy loop over the input, `len` bytes from offset 0 to `dst`; after
/// it, the bases are used again (as a value and as a base).
fn copy_loop(len: u32, dst: u32) -> String {
    format!(
        "
        r2 = r1
        r2 += {dst}
        r3 = 0
    copy:
        r4 = *(u8 *)(r1 + 0)
        r4 += 1
        *(u8 *)(r2 + 0) = r4
        *(u16 *)(r2 + 1) = 0x77
        r1 += 1
        r2 += 1
        r3 += 1
        if r3 < {len} goto copy
        r5 = *(u8 *)(r2 - 1)
        r0 = r1
        r0 += r5
        exit"
    )
}

#[test]
fn strided_loops_run_unchecked_only_as_far_as_their_accesses_stay_in_bounds() {
    let p = Program::new(assemble(&copy_loop(64, 64), Syntax::Llvm).unwrap()).unwrap();
    assert_eq!(JitProgram::compile(&p).unwrap().strided_loops(), 1);
    // Memory that fits the loop exactly, is one byte short (the last
    // 16-bit store faults), far too short, or longer: the unchecked copy
    // must hand over to the checked one in time for the same fault, with
    // the same bytes written and instructions counted.
    for mem_len in [131, 130, 129, 100, 64, 200, 1000] {
        let mem: Vec<u8> = (0..mem_len).map(|i| i as u8).collect();
        let r = agree(&copy_loop(64, 64), &mem, 1 << 20, &[]);
        assert_eq!(
            r.is_ok(),
            mem_len >= 130,
            "memory of {mem_len} bytes: {r:?}"
        );
    }
    // Long loops, so that the unchecked copy runs many iterations, ending
    // at and just past the region's end.
    for (len, mem_len) in [(4000, 8002), (4000, 8001), (4000, 4100)] {
        let r = agree(&copy_loop(len, len), &vec![5; mem_len], 1 << 20, &[]);
        assert_eq!(
            r.is_ok(),
            mem_len >= 2 * len as usize + 2,
            "{len}/{mem_len}: {r:?}"
        );
    }
}

#[test]
fn the_budget_ends_inside_a_strided_loop_where_the_interpreter_says() {
    // Every budget across the loop's run: the unchecked copy leaves for
    // the checked head when a whole iteration no longer fits.
    let src = copy_loop(40, 40);
    for budget in (1..=400).step_by(3) {
        let r = agree(&src, &[9; 82], budget, &[]);
        assert_eq!(
            r.is_ok(),
            budget >= 3 + 40 * 8 + 4,
            "budget {budget}: {r:?}"
        );
    }
}

#[test]
fn a_strided_loop_over_a_map_value_keeps_its_checks() {
    // Map values are shared with the map, not owned by the run: the
    // unchecked copy is not entered, and the checked loop still faults at
    // the value's end.
    for n in [8, 9] {
        let src = format!(
            "
            *(u32 *)(r10 - 4) = 0
            r2 = r10
            r2 += -4
            r1 = map[fd:0]
            call 1
            if r0 == 0 goto out
            r3 = 0
        fill:
            *(u8 *)(r0 + 0) = 7
            r0 += 1
            r3 += 1
            if r3 < {n} goto fill
            r0 = r3
        out:
            exit"
        );
        let r = agree(&src, &[], 1 << 20, &[MapDef::new(MapType::Array, 4, 8, 1)]);
        assert_eq!(r.is_ok(), n == 8, "{n} bytes into an 8-byte value: {r:?}");
    }
}

/// How a copy loop's counter (r3) runs: from `start` in steps of `step`,
/// with `bound` (also in r5) for its test.
#[derive(Clone, Copy)]
struct Counter {
    start: u32,
    step: u32,
    bound: u32,
}

/// 20 iterations: from 0 in steps of 3, bound 60.
const TWENTY: Counter = Counter {
    start: 0,
    step: 3,
    bound: 60,
};

/// Every load a copy loop may do, with its size.
const LOADS: [(&str, u32); 7] = [
    ("*(u8 *)", 1),
    ("*(u16 *)", 2),
    ("*(u32 *)", 4),
    ("*(u64 *)", 8),
    ("*(s8 *)", 1),
    ("*(s16 *)", 2),
    ("*(s32 *)", 4),
];

/// A loop that only copies elements of `size` bytes (loaded with `load`)
/// from `src` to `dst` in the input, counted by r3 as `counter` says and
/// tested with `test`; r0 then mixes every register the loop leaves.
fn pure_copy(
    load: &str,
    size: u32,
    (src, dst): (u32, u32),
    counter: Counter,
    test: &str,
) -> String {
    let Counter { start, step, bound } = counter;
    format!(
        "
        r2 = r1
        r2 += {dst}
        r1 += {src}
        r3 = {start}
        r5 = {bound}
    copy:
        r4 = {load}(r1 + 0)
        *(u{bits} *)(r2 + 0) = r4
        r1 += {size}
        r2 += {size}
        r3 += {step}
        {test} goto copy
        r0 = r4
        r0 ^= r3
        r1 <<= 3
        r0 ^= r1
        r2 <<= 7
        r0 ^= r2
        exit",
        bits = size * 8,
    )
}

#[test]
fn copy_loops_run_as_one_copy_with_the_interpreters_registers_memory_and_faults() {
    let p = Program::new(
        assemble(
            &pure_copy("*(u64 *)", 8, (0, 512), TWENTY, "if r3 < 60"),
            Syntax::Llvm,
        )
        .unwrap(),
    )
    .unwrap();
    let code = JitProgram::compile(&p).unwrap();
    assert_eq!((code.strided_loops(), code.copy_loops()), (1, 1));
    let mem: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 0x80) as u8).collect();
    for (load, size) in LOADS {
        // 20 elements: apart, adjacent, overlapping either way (a
        // destination inside the source runs the iterations one by one;
        // one below it is a memmove, after which the last element loaded
        // may be overwritten), and running off the input.
        for (src, dst) in [
            (0, 512),
            (512, 0),
            (0, 20 * size),
            (3, 5),
            (5, 3),
            (0, 1024 - 20 * size),
            (0, 1025 - 20 * size),
            (1030 - 20 * size, 0),
        ] {
            for test in [
                "if r3 < 60",
                "if r3 <= 58",
                "if r3 != 60",
                "if r3 < r5",
                "if r5 > r3",
                "if r5 != r3",
                // Never equal: runs until the input ends.
                "if r3 != 61",
            ] {
                let fits = src.max(dst) + 20 * size <= 1024 && test != "if r3 != 61";
                let r = agree(
                    &pure_copy(load, size, (src, dst), TWENTY, test),
                    &mem,
                    1 << 20,
                    &[],
                );
                assert_eq!(r.is_ok(), fits, "{load} {src}->{dst} {test}: {r:?}");
            }
        }
    }
}

#[test]
fn the_budget_ends_inside_a_copy_loop_where_the_interpreter_says() {
    // The copy is taken only when the budget covers every iteration left;
    // otherwise the iterations run one by one up to the budget's end.
    let src = pure_copy("*(u32 *)", 4, (0, 100), TWENTY, "if r3 < 60");
    // 5 instructions before the loop, 20 iterations of 6, 7 after.
    let whole = 5 + 20 * 6 + 7;
    let mut ended = 0;
    for budget in whole - 40..=whole + 2 {
        if agree(&src, &[1; 200], budget, &[]).is_err() {
            ended += 1;
        }
    }
    assert_eq!(ended, 40);
}

#[test]
fn random_copy_loops_agree_with_the_interpreter() {
    // Element sizes and signedness, source and destination anywhere in
    // (and past) the input, any counter start, step, bound and test, and
    // budgets that end before, inside and after the loop.
    use proptest::test_runner::{Config, TestRunner};
    const CASES: u32 = 2_000;
    let tests = ["<", "<=", "!="];
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..LOADS.len(),
        (0u32..1100, 0u32..1100),
        (0u32..40, 1u32..12, 0u32..600),
        (0..tests.len(), proptest::bool::ANY),
        20u64..3000,
    );
    let mem: Vec<u8> = (0..1024u32).map(|i| (i * 13 + 0x81) as u8).collect();
    let copied = std::cell::Cell::new(0);
    runner
        .run(
            &strategy,
            |(load, (src, dst), (start, step, bound), (test, in_reg), budget)| {
                let (load, size) = LOADS[load];
                let test = if in_reg {
                    format!("if r3 {} r5", tests[test])
                } else {
                    format!("if r3 {} {bound}", tests[test])
                };
                let counter = Counter { start, step, bound };
                let prog = pure_copy(load, size, (src, dst), counter, &test);
                if agree(&prog, &mem, budget, &[]).is_ok() {
                    copied.set(copied.get() + 1);
                }
                Ok(())
            },
        )
        .unwrap();
    eprintln!("{} of {CASES} copy loops finished", copied.get());
    // Enough runs that finish (and so copied) to have tested the copy.
    assert!(
        copied.get() > CASES / 10,
        "{} of {CASES} finished",
        copied.get()
    );
}
