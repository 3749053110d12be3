//! cargo-fuzz target `run`. The check lives in `checks/run.rs`, shared with
//! the stable driver in `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/run.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
