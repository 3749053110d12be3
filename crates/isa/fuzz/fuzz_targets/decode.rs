//! cargo-fuzz target `decode`. The check lives in `checks/decode.rs`, shared
//! with the stable driver in `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/decode.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
