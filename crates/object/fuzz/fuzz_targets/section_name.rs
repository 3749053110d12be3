//! cargo-fuzz target `section_name`. The check lives in
//! `checks/section_name.rs`, shared with the stable driver in
//! `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/section_name.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
