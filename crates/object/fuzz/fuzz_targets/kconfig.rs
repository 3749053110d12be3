//! cargo-fuzz target `kconfig`. The check lives in `checks/kconfig.rs`, shared
//! with the stable driver in `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/kconfig.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
