//! Any byte string: parsing BTF, and every query and dump on BTF that
//! parses, returns a value without panicking.
#![no_main]

use bpfkit_btf::dump::{dump_c_header, dump_raw};
use bpfkit_btf::{Btf, BtfBuilder, Endian};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data) else { return };
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
    let _ = dump_raw(&btf);
    let _ = dump_c_header(&btf);
    // What parses re-emits to something that parses to the same listing.
    if let Ok(builder) = BtfBuilder::from_btf(&btf) {
        let again = builder.encode(Endian::Big).expect("re-encoding parsed BTF");
        let again = Btf::parse(&again).expect("re-emitted BTF parses");
        assert_eq!(dump_raw(&again), dump_raw(&btf));
    }
});
