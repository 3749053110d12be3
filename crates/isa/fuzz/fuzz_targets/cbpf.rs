//! cargo-fuzz target `cbpf`. The check lives in `checks/cbpf.rs`, shared
//! with the stable driver in `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/cbpf.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
