//! Decoding errors name the slot where the program goes wrong.

use bpfkit_isa::*;

const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];
const LDDW_R1: [u8; 8] = [0x18, 0x01, 0, 0, 0x44, 0x33, 0x22, 0x11];

fn program(slots: &[[u8; 8]]) -> Vec<u8> {
    slots.concat()
}

#[test]
fn truncated_lddw_is_reported_at_its_first_slot() {
    let err = decode(&program(&[EXIT, LDDW_R1]), ByteOrder::Little).unwrap_err();
    assert_eq!(err.index, 1);
    assert_eq!(err.kind, DecodeErrorKind::TruncatedLdImm64);
}

#[test]
fn bad_lddw_tail_is_reported_at_the_second_slot() {
    let err = decode(&program(&[EXIT, LDDW_R1, EXIT]), ByteOrder::Little).unwrap_err();
    assert_eq!(err.index, 2);
    assert_eq!(err.kind, DecodeErrorKind::BadLdImm64Tail);
}

#[test]
fn trailing_bytes_are_reported_after_the_last_whole_slot() {
    let mut bytes = program(&[EXIT, EXIT]);
    bytes.push(0);
    let err = decode(&bytes, ByteOrder::Little).unwrap_err();
    assert_eq!(err.index, 2);
    assert_eq!(err.kind, DecodeErrorKind::TrailingBytes { len: 17 });
}

#[test]
fn lddw_spans_two_slots_and_later_indices_count_slots() {
    let tail = [0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55];
    let bad_exit = [0x95, 0x01, 0, 0, 0, 0, 0, 0];
    let err = decode(&program(&[LDDW_R1, tail, bad_exit]), ByteOrder::Little).unwrap_err();
    assert_eq!(err.index, 2, "{err}");
    let ok = decode(&program(&[LDDW_R1, tail, EXIT]), ByteOrder::Little).unwrap();
    assert_eq!(
        ok,
        [
            Insn::LdImm64 {
                dst: Reg::R1,
                imm: Imm64::Value(0x5566_7788_1122_3344)
            },
            Insn::Exit
        ]
    );
}
