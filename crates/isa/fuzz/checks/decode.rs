//! Any byte string: eBPF decoding never panics, and whatever decodes
//! re-encodes to the same bytes and survives a text round trip in both
//! assembly syntaxes.
//!
//! Shared by the cargo-fuzz target `decode` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_isa::{assemble, decode, disassemble, encode, ByteOrder, Syntax};

/// Checks one input; panics on a finding. True if it decoded.
pub fn check(data: &[u8]) -> bool {
    let mut decoded = false;
    for order in [ByteOrder::Little, ByteOrder::Big] {
        if let Ok(insns) = decode(data, order) {
            decoded = true;
            assert_eq!(encode(&insns, order), data);
            for syntax in [Syntax::Ubpf, Syntax::Llvm] {
                let text = disassemble(&insns, syntax);
                assert_eq!(assemble(&text, syntax).as_deref(), Ok(&insns[..]), "{text}");
            }
        }
    }
    decoded
}
