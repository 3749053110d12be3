//! Any byte string as `.BTF.ext`: parsing returns a value; the leading bytes
//! split off as a `.BTF` blob drive relocation of the records that parse.
#![no_main]

use bpfkit_btf::core::{patch_insn, CoreRelocator, TargetBtfs};
use bpfkit_btf::{Btf, BtfExt};
use bpfkit_isa::RawInsn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ext) = BtfExt::parse(data) else { return };
    let Some(split) = data.len().checked_div(2) else {
        return;
    };
    let Ok(btf) = Btf::parse(&data[split..]) else {
        return;
    };
    let relocator = CoreRelocator::new(&btf, TargetBtfs::new(&btf));
    let mut insns = vec![RawInsn::default(); 64];
    for section in &ext.core_relos {
        let _ = section.sec_name(&btf);
        for relo in &section.records {
            if let Ok(outcome) = relocator.relocate_record(relo) {
                let _ = patch_insn(&mut insns, relo.insn_off as usize / 8, &outcome);
            }
        }
    }
    for section in &ext.line_info {
        for line in &section.records {
            let _ = (line.file_name(&btf), line.line_text(&btf));
        }
    }
});
