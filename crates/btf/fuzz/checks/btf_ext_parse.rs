//! Any byte string as `.BTF.ext` plus the `.BTF` it refers to: parsing
//! returns a value or an error with a clean message; every record of what
//! parses can be looked up, and its CO-RE relocations computed (against
//! the same BTF) and patched into a program, without panicking.
//!
//! Input layout: a little-endian `u32` length, that many bytes of
//! `.BTF.ext` (fewer if the input is shorter), then the `.BTF`.
//!
//! Shared by the cargo-fuzz target `btf_ext_parse` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_btf::core::{patch_insn, CoreRelocator, TargetBtfs};
use bpfkit_btf::{Btf, BtfExt};
use bpfkit_isa::RawInsn;

// Each check includes it itself, to stand alone in its fuzz target; a test
// binary that runs several checks compiles it once per check, harmlessly.
#[allow(clippy::duplicate_mod)]
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

/// Splits an input into its `.BTF.ext` and `.BTF` parts.
pub fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
    Some(rest.split_at(len.min(rest.len())))
}

/// Joins `.BTF.ext` and `.BTF` into one input (the inverse of [`split`]);
/// the stable driver builds its seeds with it.
#[allow(dead_code)]
pub fn join(ext: &[u8], btf: &[u8]) -> Vec<u8> {
    let mut out = (ext.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(ext);
    out.extend_from_slice(btf);
    out
}

/// Checks one input; panics on a finding. True if the `.BTF.ext` parsed.
pub fn check(data: &[u8]) -> bool {
    let Some((ext, btf)) = split(data) else {
        return false;
    };
    let ext = match BtfExt::parse(ext) {
        Ok(ext) => ext,
        Err(e) => {
            error_message::assert_clean(&e);
            return false;
        }
    };
    let Ok(btf) = Btf::parse(btf) else {
        return true;
    };
    let relocator = CoreRelocator::new(&btf, TargetBtfs::new(&btf));
    let mut insns = vec![RawInsn::default(); 64];
    for section in &ext.core_relos {
        if let Ok(name) = section.sec_name(&btf) {
            let _ = ext.core_relos_for(&btf, name);
            let _ = ext.func_info_for(&btf, name);
            let _ = ext.line_info_for(&btf, name);
        }
        for relo in &section.records {
            match relocator.relocate_record(relo) {
                Ok(outcome) => {
                    if let Err(e) = patch_insn(&mut insns, relo.insn_off as usize / 8, &outcome) {
                        error_message::assert_clean(&e);
                    }
                }
                Err(e) => error_message::assert_clean(&e),
            }
        }
    }
    for section in &ext.line_info {
        for line in &section.records {
            let _ = (line.file_name(&btf), line.line_text(&btf));
        }
    }
    true
}
