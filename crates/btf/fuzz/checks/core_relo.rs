//! Arbitrary relocation records (root type, access string, kind) against
//! the committed CO-RE fixtures: computing and patching never panics, and
//! failures have clean messages.
//!
//! Input layout: root type id (`u16` LE, modulo the local type count), kind
//! (modulo 13), instruction index (modulo the program length + 1), then
//! the access string.
//!
//! Shared by the cargo-fuzz target `core_relo` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_btf::core::{patch_insn, CoreRelocator, TargetBtfs};
use bpfkit_btf::{Btf, CoreReloKind};
use bpfkit_isa::{ByteOrder, RawInsn};

// Each check includes it itself, to stand alone in its fuzz target; a test
// binary that runs several checks compiles it once per check, harmlessly.
#[allow(clippy::duplicate_mod)]
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

const LOCAL: &[u8] = include_bytes!("../../tests/fixtures/core/local.btf");
const TARGET: &[u8] = include_bytes!("../../tests/fixtures/core/target.btf");
const TEXT: &[u8] = include_bytes!("../../tests/fixtures/core/local.text");

/// Checks one input; panics on a finding. True if the relocation computed.
pub fn check(data: &[u8]) -> bool {
    let [a, b, kind, insn, access @ ..] = data else {
        return false;
    };
    // Parsed once: the fixtures are not what is being fuzzed.
    static FIXTURES: std::sync::OnceLock<(Btf, Btf)> = std::sync::OnceLock::new();
    let (local, target) = FIXTURES.get_or_init(|| {
        (
            Btf::parse(LOCAL).expect("local.btf fixture"),
            Btf::parse(TARGET).expect("target.btf fixture"),
        )
    });
    let kind = CoreReloKind::from_u32(u32::from(*kind) % 13).expect("kinds 0..13 exist");
    let type_id = u32::from(u16::from_le_bytes([*a, *b])) % local.len();
    let access = String::from_utf8_lossy(access);
    let relocator = CoreRelocator::new(local, TargetBtfs::new(target));
    match relocator.relocate(type_id, &access, kind) {
        Ok(outcome) => {
            let mut insns: Vec<RawInsn> =
                bpfkit_isa::slots(TEXT, ByteOrder::Little).expect("local.text fixture");
            let index = usize::from(*insn) % (insns.len() + 1);
            if let Err(e) = patch_insn(&mut insns, index, &outcome) {
                error_message::assert_clean(&e);
            }
            true
        }
        Err(e) => {
            error_message::assert_clean(&e);
            false
        }
    }
}
