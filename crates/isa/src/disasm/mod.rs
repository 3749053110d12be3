//! Printing instructions in either assembly syntax.
//!
//! Every instruction prints to text that [`crate::asm::assemble`] turns back
//! into the same instruction, in both syntaxes. Jump and call offsets print
//! as signed slot offsets (`+3`, `pc+3`), not labels.

use alloc::string::String;
use core::fmt::{self, Write};

use crate::asm::Syntax;
use crate::insn::Insn;

mod llvm;
mod pseudo;
mod ubpf;

/// An instruction with the syntax to print it in; see [`Insn::display`].
#[derive(Clone, Copy, Debug)]
pub struct InsnDisplay<'a> {
    insn: &'a Insn,
    syntax: Syntax,
}

impl Insn {
    /// Formats this instruction in `syntax`.
    ///
    /// ```
    /// use bpfkit_isa::{asm::Syntax, Insn, Reg};
    /// let insn = Insn::Load { size: bpfkit_isa::MemSize::W, dst: Reg::R0, src: Reg::R1, off: 4 };
    /// assert_eq!(insn.display(Syntax::Llvm).to_string(), "r0 = *(u32 *)(r1 + 4)");
    /// assert_eq!(insn.display(Syntax::Ubpf).to_string(), "ldxw %r0, [%r1+4]");
    /// ```
    pub fn display(&self, syntax: Syntax) -> InsnDisplay<'_> {
        InsnDisplay { insn: self, syntax }
    }
}

impl fmt::Display for InsnDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.syntax {
            Syntax::Llvm => llvm::fmt_insn(self.insn, f),
            Syntax::Ubpf => ubpf::fmt_insn(self.insn, f),
        }
    }
}

/// Formats a program, one instruction per line.
pub fn disassemble(insns: &[Insn], syntax: Syntax) -> String {
    let mut out = String::with_capacity(insns.len() * 24);
    for insn in insns {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", insn.display(syntax));
    }
    out
}
