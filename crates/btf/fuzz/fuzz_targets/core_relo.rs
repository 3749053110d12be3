//! Arbitrary relocation records (root type, access string, kind) against
//! the committed CO-RE fixtures: computing and patching never panics.
#![no_main]

use bpfkit_btf::core::{patch_insn, CoreRelocator, TargetBtfs};
use bpfkit_btf::{Btf, CoreReloKind};
use bpfkit_isa::{ByteOrder, RawInsn};
use libfuzzer_sys::fuzz_target;

const LOCAL: &[u8] = include_bytes!("../../tests/fixtures/core/local.btf");
const TARGET: &[u8] = include_bytes!("../../tests/fixtures/core/target.btf");
const TEXT: &[u8] = include_bytes!("../../tests/fixtures/core/local.text");

fuzz_target!(|data: &[u8]| {
    let [a, b, kind, insn, access @ ..] = data else {
        return;
    };
    let (Ok(local), Ok(target)) = (Btf::parse(LOCAL), Btf::parse(TARGET)) else {
        return;
    };
    let Some(kind) = CoreReloKind::from_u32(u32::from(*kind) % 13) else {
        return;
    };
    let type_id = u32::from(u16::from_le_bytes([*a, *b])) % local.len();
    let access = String::from_utf8_lossy(access);
    let relocator = CoreRelocator::new(&local, TargetBtfs::new(&target));
    if let Ok(outcome) = relocator.relocate(type_id, &access, kind) {
        let mut insns: Vec<RawInsn> =
            bpfkit_isa::slots(TEXT, ByteOrder::Little).unwrap_or_default();
        let index = usize::from(*insn) % (insns.len() + 1);
        let _ = patch_insn(&mut insns, index, &outcome);
    }
});
