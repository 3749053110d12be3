//! Any bytes as a BPF ELF object: parsing returns a spec or an error with a
//! clean message (non-empty, not repeating its source as `{:#}` prints it),
//! never a panic, and parses the same way twice. What parses also gets its
//! `.kconfig` externs filled and its CO-RE relocations applied against its
//! own BTF, which either succeed or fail with clean messages.
//!
//! Shared by the cargo-fuzz target `parse_elf` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_btf::TargetBtfs;
use bpfkit_object::{KernelConfig, ObjectSpec};

#[allow(clippy::duplicate_mod)] // Also included by the kconfig check.
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

/// Values a kconfig extern is given, in turn: every shape `fill` handles.
const VALUES: &[&str] = &[
    "y",
    "n",
    "m",
    "250",
    "-1",
    "0x7fffffffffffffff",
    "0xffffffffffffffffffff",
    "\"a string\"",
    "\"\"",
    "",
    "not a number",
];

/// Checks one input; panics on a finding. True if it parsed.
pub fn check(data: &[u8]) -> bool {
    let mut spec = match ObjectSpec::parse(data) {
        Ok(spec) => spec,
        Err(e) => {
            error_message::assert_clean(&e);
            return false;
        }
    };
    let again = ObjectSpec::parse(data).expect("parses the second time");
    assert_eq!(again.programs, spec.programs);
    assert_eq!(again.maps, spec.maps);
    assert_eq!(again.externs, spec.externs);

    let mut config = KernelConfig::parse("").with_kernel_release("6.18.44");
    for (i, name) in spec.externs.keys().enumerate() {
        config.set(name, VALUES[(i + data.len()) % VALUES.len()]);
    }
    if let Err(e) = spec.apply_kconfig(&config) {
        error_message::assert_clean(&e);
    }
    if let Some(btf) = spec.btf.clone() {
        if let Err(e) = spec.apply_core(TargetBtfs::new(&btf)) {
            error_message::assert_clean(&e);
        }
    }
    true
}
