//! The `tcpdump -d` listing format (libpcap 1.10's `bpf_image`).

use alloc::string::String;
use core::fmt::{self, Write};

use super::{AluOp, Insn, JmpCond, RetVal, Size, Src};

/// Linux ancillary-data offsets (`SKF_AD_OFF + n`) that libpcap prints by name.
pub(super) const SKF_AD_OFF: u32 = 0xffff_f000;
pub(super) const ANCILLARY: [(u32, &str); 16] = [
    (0, "proto"),
    (4, "type"),
    (8, "ifidx"),
    (12, "nla"),
    (16, "nlan"),
    (20, "mark"),
    (24, "queue"),
    (28, "hatype"),
    (32, "rxhash"),
    (36, "cpu"),
    (40, "xor_x"),
    (44, "vlan_tci"),
    (48, "vlanp"),
    (52, "poff"),
    (56, "random"),
    (60, "vlan_tpid"),
];

/// One instruction at its index, formatted as a `tcpdump -d` line; see [`Insn::tcpdump`].
#[derive(Clone, Copy, Debug)]
pub struct TcpdumpLine<'a> {
    insn: &'a Insn,
    index: usize,
}

impl Insn {
    /// Formats this instruction, at position `index` of its program, as
    /// `tcpdump -d` does: `(001) jeq      #0x800           jt 2\tjf 3`
    /// (the jump targets are separated by a tab).
    pub fn tcpdump(&self, index: usize) -> TcpdumpLine<'_> {
        TcpdumpLine { insn: self, index }
    }
}

/// The whole program as `tcpdump -d` prints it, one line per instruction.
pub fn dump(insns: &[Insn]) -> String {
    let mut out = String::with_capacity(insns.len() * 40);
    for (i, insn) in insns.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", insn.tcpdump(i));
    }
    out
}

fn load_op(size: Size, x: bool) -> &'static str {
    match (size, x) {
        (Size::W, false) => "ld",
        (Size::H, false) => "ldh",
        (Size::B, false) => "ldb",
        (Size::W, true) => "ldx",
        (Size::H, true) => "ldxh",
        (Size::B, true) => "ldxb",
    }
}

impl fmt::Display for TcpdumpLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.index;
        // libpcap formats k with %d: offsets and constants print signed.
        let signed = |k: u32| k as i32;
        let mut operand = String::new();
        let op = match *self.insn {
            Insn::LdAbs { size, k } => {
                match ANCILLARY
                    .iter()
                    .find(|(off, _)| k.wrapping_sub(SKF_AD_OFF) == *off && k >= SKF_AD_OFF)
                {
                    Some((_, name)) => write!(operand, "[{name}]")?,
                    None => write!(operand, "[{}]", signed(k))?,
                }
                load_op(size, false)
            }
            Insn::LdInd { size, k } => {
                write!(operand, "[x + {}]", signed(k))?;
                load_op(size, false)
            }
            Insn::LdImm(k) => {
                write!(operand, "#{k:#x}")?;
                "ld"
            }
            Insn::LdLen => {
                operand.push_str("#pktlen");
                "ld"
            }
            Insn::LdMem(k) => {
                write!(operand, "M[{}]", signed(k))?;
                "ld"
            }
            Insn::LdxImm(k) => {
                write!(operand, "#{k:#x}")?;
                "ldx"
            }
            // libpcap 1.10 has no case for `ldx #pktlen` either (1.11 adds one).
            Insn::LdxLen => {
                operand.push_str("0x81");
                "unimp"
            }
            Insn::LdxMem(k) => {
                write!(operand, "M[{}]", signed(k))?;
                "ldx"
            }
            Insn::LdxMsh(k) => {
                write!(operand, "4*([{}]&0xf)", signed(k))?;
                "ldxb"
            }
            Insn::St(k) => {
                write!(operand, "M[{}]", signed(k))?;
                "st"
            }
            Insn::Stx(k) => {
                write!(operand, "M[{}]", signed(k))?;
                "stx"
            }
            Insn::Alu { op, src } => {
                let (name, hex) = match op {
                    AluOp::Add => ("add", false),
                    AluOp::Sub => ("sub", false),
                    AluOp::Mul => ("mul", false),
                    AluOp::Div => ("div", false),
                    AluOp::Mod => ("mod", false),
                    AluOp::Lsh => ("lsh", false),
                    AluOp::Rsh => ("rsh", false),
                    AluOp::And => ("and", true),
                    AluOp::Or => ("or", true),
                    AluOp::Xor => ("xor", true),
                };
                match src {
                    Src::X => operand.push('x'),
                    Src::K(k) if hex => write!(operand, "#{k:#x}")?,
                    Src::K(k) => write!(operand, "#{}", signed(k))?,
                }
                name
            }
            Insn::Neg => "neg",
            Insn::Ja(k) => {
                // libpcap prints the absolute target (as a C int).
                write!(operand, "{}", (n as i64 + 1 + k as i64) as i32)?;
                "ja"
            }
            Insn::Jmp { cond, src, jt, jf } => {
                let name = match cond {
                    JmpCond::Eq => "jeq",
                    JmpCond::Gt => "jgt",
                    JmpCond::Ge => "jge",
                    JmpCond::Set => "jset",
                };
                match src {
                    Src::X => operand.push('x'),
                    Src::K(k) => write!(operand, "#{k:#x}")?,
                }
                return write!(
                    f,
                    "({n:03}) {name:<8} {operand:<16} jt {}\tjf {}",
                    n + 1 + jt as usize,
                    n + 1 + jf as usize
                );
            }
            Insn::Ret(RetVal::K(k)) => {
                write!(operand, "#{}", signed(k))?;
                "ret"
            }
            // libpcap's bpf_image has no case for `ret x` and prints its opcode.
            Insn::Ret(RetVal::X) => {
                operand.push_str("0xe");
                "unimp"
            }
            Insn::Ret(RetVal::A) => "ret",
            Insn::Tax { .. } => "tax",
            Insn::Txa { .. } => "txa",
        };
        // libpcap 1.10 pads the mnemonic even without an operand (`ret      `).
        write!(f, "({n:03}) {op:<8} {operand}")
    }
}
