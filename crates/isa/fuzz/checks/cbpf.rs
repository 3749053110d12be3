//! Any byte string as classic BPF: decoding never panics, whatever decodes
//! re-encodes to the same bytes, and the `tcpdump -d` listing has one line
//! per instruction, numbered as tcpdump numbers them.
//!
//! Shared by the cargo-fuzz target `cbpf` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_isa::{cbpf, ByteOrder};

/// Checks one input; panics on a finding. True if it decoded.
pub fn check(data: &[u8]) -> bool {
    let mut decoded = false;
    for order in [ByteOrder::Little, ByteOrder::Big] {
        if let Ok(insns) = cbpf::decode(data, order) {
            decoded = true;
            assert_eq!(cbpf::encode(&insns, order), data);
            let listing = cbpf::dump(&insns);
            assert_eq!(listing.lines().count(), insns.len(), "{listing}");
            for (i, line) in listing.lines().enumerate() {
                assert!(line.starts_with(&format!("({i:03}) ")), "{listing}");
            }
        }
    }
    decoded
}
