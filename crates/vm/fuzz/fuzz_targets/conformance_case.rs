//! cargo-fuzz target `conformance_case`. The check lives in
//! `checks/conformance_case.rs`, shared with the stable driver in
//! `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/conformance_case.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
