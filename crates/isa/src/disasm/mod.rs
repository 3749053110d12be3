//! Printing instructions in either assembly syntax.
//!
//! Every instruction prints to text that [`crate::asm::assemble`] turns back
//! into the same instruction, in both syntaxes. Jump and call offsets print
//! as signed slot offsets (`+3`, `pc+3`), or as a label the caller names
//! with [`InsnDisplay::with_target`].

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
    target: Option<&'a str>,
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
        InsnDisplay {
            insn: self,
            syntax,
            target: None,
        }
    }
}

impl<'a> InsnDisplay<'a> {
    /// Prints the target of a jump or local call as `label` instead of its
    /// slot offset; other instructions are unaffected. The caller defines the
    /// label where the offset points.
    ///
    /// Labels are what `llvm-mc` needs: it reads `call pc+3` as a call to a
    /// symbol named `pc`, while `call square` assembles to the local call.
    ///
    /// ```
    /// use bpfkit_isa::{asm::Syntax, CallTarget, Insn};
    /// let call = Insn::Call(CallTarget::Local(3));
    /// assert_eq!(call.display(Syntax::Llvm).to_string(), "call pc+3");
    /// assert_eq!(call.display(Syntax::Llvm).with_target("square").to_string(), "call square");
    /// assert_eq!(call.display(Syntax::Ubpf).with_target("square").to_string(), "call local square");
    /// ```
    pub fn with_target(mut self, label: &'a str) -> InsnDisplay<'a> {
        self.target = Some(label);
        self
    }
}

impl fmt::Display for InsnDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.syntax {
            Syntax::Llvm => llvm::fmt_insn(self.insn, self.target, f),
            Syntax::Ubpf => ubpf::fmt_insn(self.insn, self.target, f),
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
