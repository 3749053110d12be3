//! Any byte string as `.BTF`: parsing, and every query and dump on BTF that
//! parses, returns a value without panicking; errors have clean messages;
//! what parses re-emits, in either byte order, to BTF that parses to the
//! same listing.
//!
//! Shared by the cargo-fuzz target `btf_parse` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::{Btf, BtfBuilder, Endian};

// Each check includes it itself, to stand alone in its fuzz target; a test
// binary that runs several checks compiles it once per check, harmlessly.
#[allow(clippy::duplicate_mod)]
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

/// Checks one input; panics on a finding. True if it parsed.
pub fn check(data: &[u8]) -> bool {
    let btf = match Btf::parse(data) {
        Ok(btf) => btf,
        Err(e) => {
            error_message::assert_clean(&e);
            return false;
        }
    };
    for t in btf.types() {
        let _ = btf.type_size(t.id());
        let _ = btf.type_align(t.id());
        let _ = btf.resolve(t.id());
        let _ = btf.find_by_name_kind(t.name(), t.kind());
        let _ = (
            t.members().count(),
            t.enum_values().count(),
            t.params().count(),
            t.datasec_vars().count(),
        );
    }
    let listing = dump_raw(&btf);
    if let Err(e) = dump_c_header(&btf) {
        error_message::assert_clean(&e);
    }
    if let Ok(builder) = BtfBuilder::from_btf(&btf) {
        for endian in [Endian::Little, Endian::Big] {
            let again = builder.encode(endian).expect("re-encoding parsed BTF");
            let again = Btf::parse(&again).expect("re-emitted BTF parses");
            assert_eq!(dump_raw(&again), listing, "{endian:?}");
        }
    }
    true
}
