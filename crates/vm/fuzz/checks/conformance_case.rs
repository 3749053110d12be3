//! Any text as a bpf_conformance `.data` file (what `bpfkit conformance`
//! reads): parsing returns a test case or an error naming the file and the
//! section, never a panic. Running what parses is the `run` target's job.
//!
//! Shared by the cargo-fuzz target `conformance_case` and the stable driver
//! in `tests/fuzz_replay.rs`.

use std::path::Path;

use bpfkit_vm::conformance::TestCase;

#[allow(clippy::duplicate_mod)] // Also included by the run check.
#[path = "../../../isa/fuzz/error_message.rs"]
mod error_message;

/// Checks one input; panics on a finding. True if it parsed.
pub fn check(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match TestCase::parse(text, Path::new("fuzz.data")) {
        Ok(_) => true,
        Err(e) => {
            error_message::assert_clean(&e);
            let message = e.to_string();
            assert!(message.starts_with("fuzz.data: section `"), "{message}");
            assert!(!message.ends_with(": "), "{message}");
            false
        }
    }
}
