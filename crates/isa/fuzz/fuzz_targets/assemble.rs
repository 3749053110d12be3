//! Any text: both assemblers return instructions or an error naming a line
//! and column inside the input, never a panic; whatever assembles prints
//! back to text that assembles to the same program.
#![no_main]

use bpfkit_isa::{assemble, disassemble, Syntax};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for syntax in [Syntax::Ubpf, Syntax::Llvm] {
        match assemble(text, syntax) {
            Ok(insns) => {
                let again = disassemble(&insns, syntax);
                assert_eq!(
                    assemble(&again, syntax).as_deref(),
                    Ok(&insns[..]),
                    "{again}"
                );
            }
            Err(e) => {
                assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e}");
                assert!(e.column >= 1, "{e}");
            }
        }
    }
});
