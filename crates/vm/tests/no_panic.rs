//! Any bytecode over any memory either runs or fails with an error value:
//! never a panic, never past its budget.

use bpfkit_vm::{Program, Vm};
use proptest::prelude::*;

/// Opcodes of every instruction class, so most slots decode.
const OPCODES: &[u8] = &[
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd4, 0xdc, 0xd7, 0x04, 0x0c, 0x14, 0x24,
    0x34, 0x3c, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0xb4, 0xbc, 0xc4, 0x05, 0x06, 0x15, 0x1d,
    0x25, 0x2d, 0x35, 0x45, 0x55, 0x5d, 0x65, 0x75, 0xa5, 0xb5, 0xc5, 0xd5, 0x16, 0x1e, 0x26, 0x56,
    0xa6, 0xd6, 0x85, 0x8d, 0x95, 0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72,
    0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50,
];

fn slot() -> impl Strategy<Value = [u8; 8]> {
    (
        prop::sample::select(OPCODES),
        0u8..11,
        0u8..11,
        -16i16..16,
        prop_oneof![Just(0i32), Just(1), Just(8), -64i32..64, any::<i32>()],
    )
        .prop_map(|(code, dst, src, off, imm)| {
            let o = off.to_le_bytes();
            let i = imm.to_le_bytes();
            let slot = [code, dst | (src << 4), o[0], o[1], i[0], i[1], i[2], i[3]];
            // Keep slots that decode on their own; the rest become `r0 = imm`,
            // so that most programs load and the interpreter is what is tested.
            if bpfkit_isa::decode(&slot, bpfkit_isa::ByteOrder::Little).is_ok() {
                slot
            } else {
                [0xb7, 0, 0, 0, i[0], i[1], i[2], i[3]]
            }
        })
}

static LOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn structured_programs_never_panic(
        slots in prop::collection::vec(slot(), 1..40),
        mem in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // End with exit so that most programs load and actually run.
        let mut bytes: Vec<u8> = slots.concat();
        bytes.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
        if let Ok(program) = Program::from_bytes(&bytes) {
            LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut vm = Vm::new();
            vm.set_budget(10_000);
            let mut mem = mem;
            let _ = vm.run(&program, &mut mem);
            prop_assert!(vm.last_executed() <= 10_000);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(program) = Program::from_bytes(&bytes) {
            let mut vm = Vm::for_conformance();
            vm.set_budget(10_000);
            let _ = vm.run(&program, &mut [0u8; 16]);
        }
    }
}

#[test]
fn most_generated_programs_load() {
    // Runs the property on its own so the share of programs that load (and
    // so actually exercise the interpreter) can be checked.
    structured_programs_never_panic();
    let loaded = LOADED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        loaded > 200,
        "only {loaded} of 2000 generated programs loaded"
    );
}
