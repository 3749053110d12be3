//! Any bytes: ObjectSpec::parse returns a spec or an error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bpfkit_object::ObjectSpec::parse(data);
});
