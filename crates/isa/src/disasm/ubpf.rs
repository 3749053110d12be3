//! The uBPF / bpf_conformance syntax, as bpf_conformance's disassembler prints it.

use core::fmt;

use super::pseudo::fmt_pseudo;
use crate::insn::*;

/// Immediates: small and negative values in decimal, others as 32-bit hex.
struct Imm(i32);

impl fmt::Display for Imm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if (-10..=10).contains(&v) || (v < 0 && v != i32::MIN) {
            write!(f, "{v}")
        } else {
            write!(f, "{:#x}", v as u32)
        }
    }
}

/// `[%rN+off]`.
struct Mem(Reg, i16);

impl fmt::Display for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            0 => write!(f, "[%{}]", self.0),
            off => write!(f, "[%{}{off:+}]", self.0),
        }
    }
}

struct Src(Operand);

impl fmt::Display for Src {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Operand::Reg(r) => write!(f, "%{r}"),
            Operand::Imm(i) => Imm(i).fmt(f),
        }
    }
}

fn suffix(width: Width) -> &'static str {
    match width {
        Width::W32 => "32",
        Width::W64 => "",
    }
}

fn size(s: MemSize) -> &'static str {
    match s {
        MemSize::B => "b",
        MemSize::H => "h",
        MemSize::W => "w",
        MemSize::DW => "dw",
    }
}

pub(super) fn fmt_insn(
    insn: &Insn,
    target: Option<&str>,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    if let Some(label) = target {
        match insn {
            Insn::Ja { .. } => return write!(f, "ja {label}"),
            Insn::Ja32 { .. } => return write!(f, "ja32 {label}"),
            Insn::Call(CallTarget::Local(_)) => return write!(f, "call local {label}"),
            _ => {}
        }
    }
    match *insn {
        Insn::Alu {
            width,
            op: AluOp::Movsx(bits),
            dst,
            src,
        } => {
            let to = match width {
                Width::W32 => 32,
                Width::W64 => 64,
            };
            write!(f, "movsx{}{to} %{dst}, {}", bits.bits(), Src(src))
        }
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let name = match op {
                AluOp::Add => "add",
                AluOp::Sub => "sub",
                AluOp::Mul => "mul",
                AluOp::Div => "div",
                AluOp::Sdiv => "sdiv",
                AluOp::Or => "or",
                AluOp::And => "and",
                AluOp::Lsh => "lsh",
                AluOp::Rsh => "rsh",
                AluOp::Mod => "mod",
                AluOp::Smod => "smod",
                AluOp::Xor => "xor",
                AluOp::Mov | AluOp::Movsx(_) => "mov",
                AluOp::Arsh => "arsh",
            };
            write!(f, "{name}{} %{dst}, {}", suffix(width), Src(src))
        }
        Insn::Neg { width, dst } => write!(f, "neg{} %{dst}", suffix(width)),
        Insn::End { kind, bits, dst } => {
            let name = match kind {
                Endian::ToLe => "le",
                Endian::ToBe => "be",
                Endian::Swap => "swap",
            };
            write!(f, "{name}{} %{dst}", bits.bits())
        }
        Insn::Ja { off } => write!(f, "ja {off:+}"),
        Insn::Ja32 { imm } => write!(f, "ja32 {imm:+}"),
        Insn::Jmp {
            width,
            cond,
            dst,
            src,
            off,
        } => {
            let name = match cond {
                JmpCond::Eq => "jeq",
                JmpCond::Gt => "jgt",
                JmpCond::Ge => "jge",
                JmpCond::Set => "jset",
                JmpCond::Ne => "jne",
                JmpCond::Sgt => "jsgt",
                JmpCond::Sge => "jsge",
                JmpCond::Lt => "jlt",
                JmpCond::Le => "jle",
                JmpCond::Slt => "jslt",
                JmpCond::Sle => "jsle",
            };
            write!(f, "{name}{} %{dst}, {}, ", suffix(width), Src(src))?;
            match target {
                Some(label) => f.write_str(label),
                None => write!(f, "{off:+}"),
            }
        }
        Insn::Call(CallTarget::Helper(id)) => write!(f, "call {}", Imm(id)),
        Insn::Call(CallTarget::Local(rel)) => write!(f, "call local {rel:+}"),
        Insn::Call(CallTarget::Kfunc { btf_id, module: 0 }) => {
            write!(f, "call runtime {}", Imm(btf_id))
        }
        Insn::Call(CallTarget::Kfunc { btf_id, module }) => {
            write!(f, "call runtime {}, {module}", Imm(btf_id))
        }
        Insn::Callx { reg } => write!(f, "call %{reg}"),
        Insn::Exit => f.write_str("exit"),
        Insn::LdImm64 { dst, imm } => {
            write!(f, "lddw %{dst}, ")?;
            if !fmt_pseudo(&imm, f)? {
                if let Imm64::Value(v) = imm {
                    if v <= 10 {
                        write!(f, "{v}")?;
                    } else {
                        write!(f, "{v:#x}")?;
                    }
                }
            }
            Ok(())
        }
        Insn::Load {
            size: s,
            dst,
            src,
            off,
        } => write!(f, "ldx{} %{dst}, {}", size(s), Mem(src, off)),
        Insn::LoadSx {
            bits,
            dst,
            src,
            off,
        } => {
            let s = match bits {
                SxBits::B8 => "b",
                SxBits::B16 => "h",
                SxBits::B32 => "w",
            };
            write!(f, "ldxs{s} %{dst}, {}", Mem(src, off))
        }
        Insn::StoreImm {
            size: s,
            dst,
            off,
            imm,
        } => write!(f, "st{} {}, {}", size(s), Mem(dst, off), Imm(imm)),
        Insn::Store {
            size: s,
            dst,
            src,
            off,
        } => write!(f, "stx{} {}, %{src}", size(s), Mem(dst, off)),
        Insn::Atomic {
            dw,
            op,
            dst,
            src,
            off,
        } => {
            let (name, fetch) = match op {
                AtomicOp::Add { fetch } => ("add", fetch),
                AtomicOp::Or { fetch } => ("or", fetch),
                AtomicOp::And { fetch } => ("and", fetch),
                AtomicOp::Xor { fetch } => ("xor", fetch),
                AtomicOp::Xchg => ("xchg", false),
                AtomicOp::Cmpxchg => ("cmpxchg", false),
            };
            let fetch = if fetch { "fetch " } else { "" };
            let width = if dw { "" } else { "32" };
            write!(f, "lock {fetch}{name}{width} {}, %{src}", Mem(dst, off))
        }
        Insn::LdAbs { size: s, imm } => write!(f, "ldabs{} {}", size(s), Imm(imm)),
        Insn::LdInd { size: s, src, imm } => {
            write!(f, "ldind{} %{src}, {}", size(s), Imm(imm))
        }
    }
}
