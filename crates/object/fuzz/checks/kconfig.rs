//! Any text as a kernel `.config` (its first line as the kernel release):
//! parsing never panics, every value it reports comes from a line of the
//! text, `LINUX_KERNEL_VERSION` is a number, and filling the `.kconfig`
//! map of the committed globals fixture either succeeds or fails with a
//! clean message.
//!
//! Shared by the cargo-fuzz target `kconfig` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_object::{KernelConfig, ObjectSpec};

#[allow(clippy::duplicate_mod)] // Also included by the parse_elf check.
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

const GLOBALS: &[u8] = include_bytes!("../../tests/fixtures/globals.bpf.o");

/// Checks one input; panics on a finding. True if the `.kconfig` map filled.
pub fn check(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let (release, config_text) = text.split_once('\n').unwrap_or((text, ""));
    let config = KernelConfig::parse(config_text).with_kernel_release(release);

    static GLOBALS_SPEC: std::sync::OnceLock<ObjectSpec> = std::sync::OnceLock::new();
    let spec = GLOBALS_SPEC.get_or_init(|| ObjectSpec::parse(GLOBALS).expect("globals fixture"));
    assert!(
        !spec.externs.is_empty(),
        "globals fixture has no kconfig externs"
    );
    for name in spec.externs.keys() {
        let Some(value) = config.get(name) else {
            continue;
        };
        if name == "LINUX_KERNEL_VERSION" {
            assert!(value.parse::<u32>().is_ok(), "{name}={value}");
            continue;
        }
        let from_text = config_text.lines().map(str::trim).any(|line| {
            line == format!("{name}={value}")
                || (value == "n" && line == format!("# {name} is not set"))
        });
        assert!(from_text, "{name}={value:?} is on no line of the text");
    }
    let mut spec = spec.clone();
    match spec.apply_kconfig(&config) {
        Ok(()) => true,
        Err(e) => {
            error_message::assert_clean(&e);
            false
        }
    }
}
