//! The checks of `run_reuse.rs`, shared by the interpreter's tests (crates/vm)
//! and the JIT's (crates/jit): `super::engine` prepares each program.

use bpfkit_isa::{assemble, Syntax};
use bpfkit_vm::{ContextKind, MapDef, Program, TestRun, Vm};

fn prog(src: &str) -> Program {
    super::engine(Program::new(assemble(src, Syntax::Llvm).unwrap()).unwrap())
}

/// Stores `r1`'s first byte + 1 all over the entry frame unless the input
/// byte is 0, then returns the OR of every 8-byte word of the frame it saw
/// before storing: a nonzero result means a previous run's bytes leaked.
const DIRTY_THEN_READ: &str = "
    r6 = *(u8 *)(r1 + 0)
    r0 = 0
    r2 = r10
    r2 += -512
read:
    r3 = *(u64 *)(r2 + 0)
    r0 |= r3
    r2 += 8
    if r2 < r10 goto read
    if r6 == 0 goto out
    r6 += 1
    r2 = r10
    r2 += -512
write:
    *(u64 *)(r2 + 0) = r6
    r2 += 8
    if r2 < r10 goto write
out:
    exit";

#[test]
fn a_run_sees_a_zeroed_entry_frame_after_one_that_filled_it() {
    let p = prog(DIRTY_THEN_READ);
    let mut vm = Vm::new();
    for round in 0..3 {
        assert_eq!(
            vm.run(&p, &mut [7]).unwrap(),
            0,
            "round {round}: dirtying run"
        );
        assert_eq!(
            vm.run(&p, &mut [0]).unwrap(),
            0,
            "round {round}: reading run"
        );
    }
}

#[test]
fn test_run_repetitions_each_start_with_a_zeroed_frame() {
    let p = super::engine(
        Program::with_context(
            assemble(DIRTY_THEN_READ, Syntax::Llvm).unwrap(),
            ContextKind::Raw,
        )
        .unwrap(),
    );
    let mut vm = Vm::new();
    let input = TestRun {
        data_in: vec![5],
        repeat: 4,
        ..TestRun::default()
    };
    // Every repetition fills the frame; the last one must still have read zeroes.
    assert_eq!(vm.test_run(&p, &input).unwrap().retval, 0);
}

/// A callee's frame (depth 1) is zeroed on every call, in this run and the next.
#[test]
fn a_callee_frame_starts_zeroed_in_every_run() {
    let p = prog(
        "
        r6 = *(u8 *)(r1 + 0)
        r1 = r6
        call f
        r7 = r0
        r1 = 0
        call f
        r0 |= r7
        exit
    f:
        r0 = *(u64 *)(r10 - 8)
        r2 = *(u64 *)(r10 - 512)
        r0 |= r2
        if r1 == 0 goto done
        *(u64 *)(r10 - 8) = r1
        *(u64 *)(r10 - 512) = r1
    done:
        exit",
    );
    let mut vm = Vm::new();
    for round in 0..3 {
        assert_eq!(vm.run(&p, &mut [9]).unwrap(), 0, "round {round}, dirtying");
        assert_eq!(vm.run(&p, &mut [0]).unwrap(), 0, "round {round}, reading");
    }
}

/// Map value regions a run registered are gone in the next run: the next
/// lookup registers the value again and reads what the map holds.
#[test]
fn map_values_are_looked_up_afresh_in_each_run() {
    let mut vm = Vm::new();
    vm.create_map(MapDef::new(bpfkit_abi::MapType::Array, 4, 8, 2))
        .unwrap();
    let p = prog(
        "
        *(u32 *)(r10 - 4) = 1
        r2 = r10
        r2 += -4
        r1 = map[fd:0]
        call 1
        if r0 == 0 goto miss
        r1 = 1
        lock *(u64 *)(r0 + 0) += r1
        r0 = *(u64 *)(r0 + 0)
        exit
    miss:
        r0 = 99
        exit",
    );
    for n in 1..=3u64 {
        assert_eq!(vm.run(&p, &mut []).unwrap(), n);
    }
    let value = vm.map(0).unwrap().lookup(&1u32.to_ne_bytes()).unwrap();
    assert_eq!(value, Some(3u64.to_ne_bytes().to_vec()));
}

/// A run that stores only near `r10` zeroes only that much of a reused
/// frame: the bytes a previous run wrote deeper (through a pointer) must
/// still be zeroed first, and so must bytes written through an address the
/// program forged rather than derived from `r10`.
#[test]
fn partial_zeroing_still_clears_what_any_earlier_run_wrote() {
    let fill = prog(DIRTY_THEN_READ);
    // Stores at r10 - 8 only, and reads the whole frame first.
    let near = prog(
        "
        r0 = 0
        r2 = r10
        r2 += -512
    read:
        r3 = *(u64 *)(r2 + 0)
        r0 |= r3
        r2 += 8
        if r2 < r10 goto read
        *(u64 *)(r10 - 8) = 77
        exit",
    );
    let mut vm = Vm::new();
    assert_eq!(vm.run(&fill, &mut [3]).unwrap(), 0);
    for round in 0..3 {
        assert_eq!(vm.run(&near, &mut []).unwrap(), 0, "round {round}");
    }
    assert_eq!(vm.run(&fill, &mut [0]).unwrap(), 0, "after the near stores");

    // Without input memory the entry frame is region 0: its bytes start at
    // the first region's base, which a program can compute without r10.
    let base = bpfkit_vm::region_base(0);
    let forge = prog(&format!(
        "r1 = {base} ll\n*(u64 *)(r1 + 0) = 5\n*(u64 *)(r1 + 504) = 6\nr0 = 0\nexit"
    ));
    let read_bottom = prog("r0 = *(u64 *)(r10 - 512)\nr1 = *(u64 *)(r10 - 8)\nr0 |= r1\nexit");
    assert_eq!(vm.run(&forge, &mut []).unwrap(), 0);
    assert_eq!(
        vm.run(&read_bottom, &mut []).unwrap(),
        0,
        "forged stores leaked"
    );
}

/// `Vm::run_vec` lends the caller's vector to the run instead of copying
/// it: memory after the run, results and faults are those of `Vm::run`,
/// across runs of different lengths, an empty input and runs that fault
/// after storing.
#[test]
fn run_vec_leaves_memory_and_errors_as_run_does() {
    // Stores r2 (the length) at byte 0, then loads byte `len - 1 + mem[1]`:
    // in bounds when mem[1] is 0, a fault after the store otherwise.
    let p = prog(
        "*(u8 *)(r1 + 0) = r2
        r3 = *(u8 *)(r1 + 1)
        r4 = r1
        r4 += r2
        r4 += -1
        r4 += r3
        r0 = *(u8 *)(r4 + 0)
        exit",
    );
    let empty = prog("r0 = r2\nr0 += 9\nexit");
    let mut copying = Vm::new();
    let mut lending = Vm::new();
    let inputs: [&[u8]; 5] = [&[0, 0, 7], &[0, 1, 7, 8], &[], &[5, 0], &[0, 3, 1, 2, 3, 4]];
    for (round, input) in inputs.iter().enumerate() {
        let mut copied = input.to_vec();
        let mut lent = input.to_vec();
        let program = if input.is_empty() { &empty } else { &p };
        let expected = copying.run(program, &mut copied);
        let got = lending.run_vec(program, &mut lent);
        assert_eq!(got, expected, "round {round}: result");
        assert_eq!(lent, copied, "round {round}: memory after the run");
        assert_eq!(input.len() > 1 && input[1] != 0, expected.is_err());
    }
    // Mixed with Vm::run on one VM, each API still sees its own input.
    let mut vm = Vm::new();
    let mut a = vec![0, 0, 42];
    assert_eq!(vm.run_vec(&p, &mut a), Ok(42));
    let mut b = vec![0, 0, 1, 2];
    assert_eq!(vm.run(&p, &mut b), Ok(2));
    assert_eq!(vm.run_vec(&p, &mut a), Ok(42));
    assert_eq!((a[0], b[0]), (3, 4));
}
