//! cargo-fuzz target `parse_elf`. The check lives in `checks/parse_elf.rs`, shared
//! with the stable driver in `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/parse_elf.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
