//! Text assemblers for the two eBPF assembly syntaxes.
//!
//! [`assemble`] reads one instruction per line. Both syntaxes accept blank
//! lines, comments (`;`, `//`, and `#` at the start of a line or after a
//! blank), and labels (`name:` alone or before an instruction). A jump or
//! call target is a label or a signed slot offset (`+3`, `-1`, and in the
//! LLVM syntax also `pc+3` as bpftool prints it). Labels count slots, so an
//! `lddw` occupies two. As in bpf_conformance, `exit` names the first `exit`
//! instruction unless a label of that name is defined. A leading instruction index (`12:`, or bpftool's
//! `12: (bf)`) is ignored, so disassembly listings assemble back, and so are
//! assembler directives (`.section`, `.globl`): the result is one flat program.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::insn::{CallTarget, Imm64, Insn};

mod lex;
mod llvm;
mod pseudo;
mod ubpf;

use lex::Cursor;

/// An assembly syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Syntax {
    /// The uBPF / bpf_conformance syntax: `mov32 %r0, 1`, `ldxh %r0, [%r1+2]`,
    /// `lock cmpxchg [%r10-8], %r1`. The `%` before registers is optional.
    Ubpf,
    /// The LLVM / kernel syntax that `llvm-objdump -d` and `bpftool prog dump
    /// xlated` print: `r0 = *(u32 *)(r1 + 4)`, `if r1 s> 5 goto +3`.
    #[default]
    Llvm,
}

/// What is wrong with a line of assembly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsmErrorKind {
    /// The mnemonic (or statement form) is not known.
    UnknownMnemonic(String),
    /// Something else was expected here.
    Expected {
        /// What was expected.
        what: &'static str,
        /// What was found, quoted, or "end of line".
        found: String,
    },
    /// Text after a complete instruction.
    Trailing(String),
    /// A register name that does not exist (`r11`, `%r50`).
    BadRegister(String),
    /// 32-bit and 64-bit register names mixed in one instruction.
    WidthMismatch,
    /// A literal does not fit its field.
    OutOfRange {
        /// The field.
        what: &'static str,
        /// The value written.
        value: i128,
    },
    /// A jump or call names a label that is not defined.
    UnknownLabel(String),
    /// A label is defined twice.
    DuplicateLabel(String),
    /// A label-relative offset does not fit the instruction's offset field.
    TargetTooFar {
        /// The label.
        label: String,
        /// The offset in slots it would need.
        offset: i64,
    },
    /// The instruction is well-formed text but not a valid instruction
    /// (for example `lock` without an operation, or a legacy load into a register other than r0).
    Invalid(&'static str),
}

/// An assembly error, naming the line and column (both 1-based) where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    /// Line number, from 1.
    pub line: usize,
    /// Column number (in bytes), from 1.
    pub column: usize,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

impl AsmError {
    pub(crate) fn new(line: usize, column: usize, kind: AsmErrorKind) -> AsmError {
        AsmError { line, column, kind }
    }
}

impl fmt::Display for AsmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsmErrorKind::UnknownMnemonic(m) => write!(f, "unknown instruction `{m}`"),
            AsmErrorKind::Expected { what, found } => write!(f, "expected {what}, found {found}"),
            AsmErrorKind::Trailing(t) => write!(f, "unexpected {t} after the instruction"),
            AsmErrorKind::BadRegister(r) => write!(f, "invalid register `{r}` (r0..r10)"),
            AsmErrorKind::WidthMismatch => {
                write!(
                    f,
                    "32-bit (w) and 64-bit (r) registers mixed in one instruction"
                )
            }
            AsmErrorKind::OutOfRange { what, value } => {
                write!(f, "{value} does not fit in {what}")
            }
            AsmErrorKind::UnknownLabel(l) => write!(f, "undefined label `{l}`"),
            AsmErrorKind::DuplicateLabel(l) => write!(f, "label `{l}` is defined twice"),
            AsmErrorKind::TargetTooFar { label, offset } => {
                write!(
                    f,
                    "label `{label}` is {offset} slots away, too far for this jump"
                )
            }
            AsmErrorKind::Invalid(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AsmError {}

/// A jump or call target as written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// A numeric offset in slots, relative to the next instruction, with its column.
    Rel(i64, usize),
    /// A label, with the column where it is written.
    Label(&'a str, usize),
}

/// One parsed instruction whose offset may still name a label.
pub(crate) struct Parsed<'a> {
    pub insn: Insn,
    pub target: Option<Target<'a>>,
}

impl<'a> Parsed<'a> {
    pub fn plain(insn: Insn) -> Parsed<'a> {
        Parsed { insn, target: None }
    }
}

/// Reads a jump target: `+N`, `-N`, `N`, `pc+N` (when `allow_pc`) or a label.
pub(crate) fn target<'a>(cur: &mut Cursor<'a>, allow_pc: bool) -> Result<Target<'a>, AsmError> {
    let column = cur.column();
    if (allow_pc && cur.eat_word("pc")) || cur.at_number() {
        let n = cur.number()?;
        // Saturate: anything this large is reported as out of range below.
        let rel = n.value.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        return Ok(Target::Rel(rel, column));
    }
    match cur.ident() {
        Some(name) => Ok(Target::Label(name, column)),
        None => Err(cur.expected("a jump target (label or +offset)")),
    }
}

/// Assembles `source` into instructions.
///
/// ```
/// use bpfkit_isa::asm::{assemble, Syntax};
/// let a = assemble("mov32 %r0, 1\nexit", Syntax::Ubpf).unwrap();
/// let b = assemble("w0 = 1\nexit", Syntax::Llvm).unwrap();
/// assert_eq!(a, b);
/// ```
pub fn assemble(source: &str, syntax: Syntax) -> Result<Vec<Insn>, AsmError> {
    let mut parsed: Vec<(Parsed<'_>, usize, usize)> = Vec::new();
    let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
    let mut first_exit: Option<usize> = None;
    let mut slot = 0usize;

    for (index, raw_line) in source.lines().enumerate() {
        let line_no = index + 1;
        let text = strip_comment(raw_line);
        let mut cur = Cursor::new(text, line_no);
        // Labels: `name:` (several may share a line), then maybe an instruction.
        loop {
            let before = cur.column();
            let save = cur.clone_pos();
            match cur.ident() {
                Some(name) if cur.eat(":") && !cur.peek(":") => {
                    if labels.insert(name, slot).is_some() {
                        return Err(AsmError::new(
                            line_no,
                            before,
                            AsmErrorKind::DuplicateLabel(name.into()),
                        ));
                    }
                }
                _ => {
                    cur.restore_pos(save);
                    break;
                }
            }
        }
        skip_index_prefix(&mut cur);
        // A directive (`.section`, `.globl`, as `bpfkit disasm` writes them for
        // llvm-mc) places code in an object; the program here is one flat
        // sequence, so it has nothing to do.
        if cur.at_end() || cur.peek(".") {
            continue;
        }
        let p = match syntax {
            Syntax::Ubpf => ubpf::parse_line(&mut cur)?,
            Syntax::Llvm => llvm::parse_line(&mut cur)?,
        };
        cur.finish()?;
        if p.insn == Insn::Exit && first_exit.is_none() {
            first_exit = Some(slot);
        }
        let at = slot;
        slot += p.insn.slots();
        parsed.push((p, at, line_no));
    }

    // bpf_conformance programs jump to `exit`, meaning the first exit instruction.
    if let Some(at) = first_exit {
        labels.entry("exit").or_insert(at);
    }

    let mut out = Vec::with_capacity(parsed.len());
    for (p, at, line) in parsed {
        out.push(resolve(p, at, line, &labels)?);
    }
    Ok(out)
}

/// Replaces the target of a jump or call with its offset from the next instruction.
fn resolve(
    p: Parsed<'_>,
    at: usize,
    line: usize,
    labels: &BTreeMap<&str, usize>,
) -> Result<Insn, AsmError> {
    let Some(target) = p.target else {
        return Ok(p.insn);
    };
    let (rel, label, column) = match target {
        Target::Rel(rel, column) => (rel, "", column),
        Target::Label(name, column) => match labels.get(name) {
            Some(&dest) => (dest as i64 - at as i64 - 1, name, column),
            None => {
                return Err(AsmError::new(
                    line,
                    column,
                    AsmErrorKind::UnknownLabel(name.into()),
                ))
            }
        },
    };
    let too_far = || {
        AsmError::new(
            line,
            column,
            if label.is_empty() {
                AsmErrorKind::OutOfRange {
                    what: "a jump offset",
                    value: rel as i128,
                }
            } else {
                AsmErrorKind::TargetTooFar {
                    label: label.into(),
                    offset: rel,
                }
            },
        )
    };
    let off16 = || i16::try_from(rel).map_err(|_| too_far());
    let imm32 = || i32::try_from(rel).map_err(|_| too_far());
    Ok(match p.insn {
        Insn::Ja { .. } => Insn::Ja { off: off16()? },
        Insn::Jmp {
            width,
            cond,
            dst,
            src,
            ..
        } => Insn::Jmp {
            width,
            cond,
            dst,
            src,
            off: off16()?,
        },
        Insn::Ja32 { .. } => Insn::Ja32 { imm: imm32()? },
        Insn::Call(CallTarget::Local(_)) => Insn::Call(CallTarget::Local(imm32()?)),
        Insn::LdImm64 {
            dst,
            imm: Imm64::Func(_),
        } => Insn::LdImm64 {
            dst,
            imm: Imm64::Func(imm32()?),
        },
        other => other,
    })
}

/// Skips an instruction index such as `12:` (as `bpfkit disasm` prints) or
/// bpftool's `12: (bf)`, so listings assemble back.
fn skip_index_prefix(cur: &mut Cursor<'_>) {
    let start = cur.clone_pos();
    if cur.at_number() && !cur.peek("-") && !cur.peek("+") && cur.number().is_ok() && cur.eat(":") {
        cur.eat_hex_in_parens();
        return;
    }
    cur.restore_pos(start);
}

/// Cuts a trailing comment: `;`, `//`, or `#` at line start or after a blank
/// (so bpftool's `call bpf_map_lookup_elem#1` keeps its `#1`).
fn strip_comment(line: &str) -> &str {
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        match c {
            ';' => return &line[..i],
            '/' if line[i..].starts_with("//") => return &line[..i],
            '#' if prev_blank => return &line[..i],
            _ => {}
        }
        prev_blank = c.is_whitespace();
    }
    line
}
