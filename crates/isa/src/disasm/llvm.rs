//! The LLVM syntax, as `llvm-objdump -d` prints it.
//!
//! Where objdump's text is ambiguous (it prints `call N` for helper, local and
//! kfunc calls alike, and `r1 = 0 ll` whatever the `lddw` source register),
//! the local, kfunc and map forms follow bpftool instead: `call pc+N`,
//! `call kfunc N`, `r1 = map[fd:3]`.

use core::fmt;

use super::pseudo::fmt_pseudo;
use crate::insn::*;

/// A register named by width: `w1` or `r1`.
struct R(Reg, Width);

impl fmt::Display for R {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.1 {
            Width::W32 => 'w',
            Width::W64 => 'r',
        };
        write!(f, "{prefix}{}", self.0.index())
    }
}

/// `(r1 + 4)`, `(r10 - 8)`.
struct Mem(Reg, i16);

impl fmt::Display for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = self.1 as i32;
        let sign = if off < 0 { '-' } else { '+' };
        write!(f, "({} {sign} {})", self.0, off.unsigned_abs())
    }
}

fn ty(s: MemSize) -> &'static str {
    match s {
        MemSize::B => "u8",
        MemSize::H => "u16",
        MemSize::W => "u32",
        MemSize::DW => "u64",
    }
}

fn src(op: Operand, width: Width) -> impl fmt::Display {
    struct S(Operand, Width);
    impl fmt::Display for S {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0 {
                Operand::Reg(r) => R(r, self.1).fmt(f),
                Operand::Imm(i) => write!(f, "{i}"),
            }
        }
    }
    S(op, width)
}

pub(super) fn fmt_insn(
    insn: &Insn,
    target: Option<&str>,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    if let Some(label) = target {
        match insn {
            Insn::Ja { .. } => return write!(f, "goto {label}"),
            Insn::Ja32 { .. } => return write!(f, "gotol {label}"),
            Insn::Call(CallTarget::Local(_)) => return write!(f, "call {label}"),
            _ => {}
        }
    }
    match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src: s,
        } => {
            let d = R(dst, width);
            let s = src(s, width);
            let op = match op {
                AluOp::Mov => return write!(f, "{d} = {s}"),
                AluOp::Movsx(bits) => return write!(f, "{d} = (s{}){s}", bits.bits()),
                AluOp::Add => "+=",
                AluOp::Sub => "-=",
                AluOp::Mul => "*=",
                AluOp::Div => "/=",
                AluOp::Sdiv => "s/=",
                AluOp::Or => "|=",
                AluOp::And => "&=",
                AluOp::Lsh => "<<=",
                AluOp::Rsh => ">>=",
                AluOp::Mod => "%=",
                AluOp::Smod => "s%=",
                AluOp::Xor => "^=",
                AluOp::Arsh => "s>>=",
            };
            write!(f, "{d} {op} {s}")
        }
        Insn::Neg { width, dst } => write!(f, "{0} = -{0}", R(dst, width)),
        Insn::End { kind, bits, dst } => {
            let name = match kind {
                Endian::ToLe => "le",
                Endian::ToBe => "be",
                Endian::Swap => "bswap",
            };
            write!(f, "{dst} = {name}{} {dst}", bits.bits())
        }
        Insn::Ja { off } => write!(f, "goto {off:+}"),
        Insn::Ja32 { imm } => write!(f, "gotol {imm:+}"),
        Insn::Jmp {
            width,
            cond,
            dst,
            src: s,
            off,
        } => {
            let c = match cond {
                JmpCond::Eq => "==",
                JmpCond::Gt => ">",
                JmpCond::Ge => ">=",
                JmpCond::Set => "&",
                JmpCond::Ne => "!=",
                JmpCond::Sgt => "s>",
                JmpCond::Sge => "s>=",
                JmpCond::Lt => "<",
                JmpCond::Le => "<=",
                JmpCond::Slt => "s<",
                JmpCond::Sle => "s<=",
            };
            write!(f, "if {} {c} {} goto ", R(dst, width), src(s, width))?;
            match target {
                Some(label) => f.write_str(label),
                None => write!(f, "{off:+}"),
            }
        }
        Insn::Call(CallTarget::Helper(id)) => write!(f, "call {id}"),
        Insn::Call(CallTarget::Local(rel)) => write!(f, "call pc{rel:+}"),
        Insn::Call(CallTarget::Kfunc { btf_id, module: 0 }) => write!(f, "call kfunc {btf_id}"),
        Insn::Call(CallTarget::Kfunc { btf_id, module }) => {
            write!(f, "call kfunc {btf_id}, {module}")
        }
        Insn::Callx { reg } => write!(f, "callx {reg}"),
        Insn::Exit => f.write_str("exit"),
        Insn::LdImm64 { dst, imm } => {
            write!(f, "{dst} = ")?;
            if !fmt_pseudo(&imm, f)? {
                if let Imm64::Value(v) = imm {
                    write!(f, "{} ll", v as i64)?;
                }
            }
            Ok(())
        }
        Insn::Load {
            size,
            dst,
            src,
            off,
        } => write!(f, "{dst} = *({} *){}", ty(size), Mem(src, off)),
        Insn::LoadSx {
            bits,
            dst,
            src,
            off,
        } => write!(f, "{dst} = *(s{} *){}", bits.bits(), Mem(src, off)),
        Insn::StoreImm {
            size,
            dst,
            off,
            imm,
        } => write!(f, "*({} *){} = {imm}", ty(size), Mem(dst, off)),
        Insn::Store {
            size,
            dst,
            src,
            off,
        } => write!(f, "*({} *){} = {src}", ty(size), Mem(dst, off)),
        Insn::Atomic {
            dw,
            op,
            dst,
            src,
            off,
        } => {
            let (w, t) = if dw {
                (Width::W64, "u64")
            } else {
                (Width::W32, "u32")
            };
            let s = R(src, w);
            let m = Mem(dst, off);
            // `r1 + 0` without parentheses, as LLVM prints xchg and cmpxchg.
            let bare = BareAddr(dst, off);
            let (name, fetch) = match op {
                AtomicOp::Add { fetch } => ("add", fetch),
                AtomicOp::Or { fetch } => ("or", fetch),
                AtomicOp::And { fetch } => ("and", fetch),
                AtomicOp::Xor { fetch } => ("xor", fetch),
                AtomicOp::Xchg => {
                    let n = if dw { "xchg_64" } else { "xchg32_32" };
                    return write!(f, "{s} = {n}({bare}, {s})");
                }
                AtomicOp::Cmpxchg => {
                    let n = if dw { "cmpxchg_64" } else { "cmpxchg32_32" };
                    let r0 = R(Reg::R0, w);
                    return write!(f, "{r0} = {n}({bare}, {r0}, {s})");
                }
            };
            if fetch {
                write!(f, "{s} = atomic_fetch_{name}(({t} *){m}, {s})")
            } else {
                let op = match name {
                    "add" => "+=",
                    "or" => "|=",
                    "and" => "&=",
                    _ => "^=",
                };
                // objdump prints the 64-bit register here even for 32-bit adds.
                write!(f, "lock *({t} *){m} {op} {src}")
            }
        }
        Insn::LdAbs { size, imm } => write!(f, "r0 = *({} *)skb[{imm}]", ty(size)),
        Insn::LdInd { size, src, imm } => {
            write!(f, "r0 = *({} *)skb[{src}", ty(size))?;
            match imm {
                0 => {}
                i if i < 0 => write!(f, " - {}", i.unsigned_abs())?,
                i => write!(f, " + {i}")?,
            }
            f.write_str("]")
        }
    }
}

/// `r1 + 0`.
struct BareAddr(Reg, i16);

impl fmt::Display for BareAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = self.1 as i32;
        let sign = if off < 0 { '-' } else { '+' };
        write!(f, "{} {sign} {}", self.0, off.unsigned_abs())
    }
}
