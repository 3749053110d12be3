//! Any byte string: eBPF and classic BPF decoding never panic, and whatever
//! decodes re-encodes to the same bytes and survives a text round trip in
//! both assembly syntaxes.
#![no_main]

use bpfkit_isa::{assemble, cbpf, decode, disassemble, encode, ByteOrder, Syntax};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        if let Ok(insns) = decode(data, order) {
            assert_eq!(encode(&insns, order), data);
            for syntax in [Syntax::Ubpf, Syntax::Llvm] {
                let text = disassemble(&insns, syntax);
                assert_eq!(assemble(&text, syntax).as_deref(), Ok(&insns[..]), "{text}");
            }
        }
        if let Ok(insns) = cbpf::decode(data, order) {
            assert_eq!(cbpf::encode(&insns, order), data);
            let _ = cbpf::dump(&insns);
        }
    }
});
