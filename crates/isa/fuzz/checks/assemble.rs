//! Any text: both assemblers (and the lexer under them) return
//! instructions or an error naming a line and column inside the input,
//! never a panic; whatever assembles prints back to text that assembles to
//! the same program.
//!
//! Shared by the cargo-fuzz target `assemble` and the stable driver in
//! `tests/fuzz_replay.rs`.

use bpfkit_isa::{assemble, disassemble, Syntax};

/// Checks one input; panics on a finding. True if either syntax assembled it.
pub fn check(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let mut assembled = false;
    for syntax in [Syntax::Ubpf, Syntax::Llvm] {
        match assemble(text, syntax) {
            Ok(insns) => {
                assembled = true;
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
    assembled
}
