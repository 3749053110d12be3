//! cargo-fuzz target `btf_ext_parse`. The check lives in `checks/btf_ext_parse.rs`, shared
//! with the stable driver in `tests/fuzz_replay.rs`.
#![no_main]

#[path = "../checks/btf_ext_parse.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
