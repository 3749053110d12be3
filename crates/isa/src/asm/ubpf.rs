//! The uBPF / bpf_conformance syntax: `mnemonic operand, operand`.

use super::lex::Cursor;
use super::{pseudo, target, AsmError, AsmErrorKind, Parsed};
use crate::insn::*;

/// Parses one instruction (labels and comments already removed).
pub(crate) fn parse_line<'a>(cur: &mut Cursor<'a>) -> Result<Parsed<'a>, AsmError> {
    let column = cur.column();
    let Some(m) = cur.ident() else {
        return Err(cur.expected("an instruction mnemonic"));
    };
    let line = cur.line;
    let unknown = || AsmError::new(line, column, AsmErrorKind::UnknownMnemonic(m.into()));
    let plain = |insn| Ok(Parsed::plain(insn));
    match m {
        "exit" => return plain(Insn::Exit),
        "ja" => {
            let t = target(cur, false)?;
            return Ok(Parsed {
                insn: Insn::Ja { off: 0 },
                target: Some(t),
            });
        }
        "ja32" => {
            let t = target(cur, false)?;
            return Ok(Parsed {
                insn: Insn::Ja32 { imm: 0 },
                target: Some(t),
            });
        }
        "call" => return call(cur),
        "lddw" => return lddw(cur),
        "lock" => return lock(cur).map(Parsed::plain),
        _ => {}
    }
    if let Some(bits) = m.strip_prefix("ldxs").and_then(sx_bits) {
        let (dst, _) = cur.reg(false)?;
        comma(cur)?;
        let (src, off) = mem(cur)?;
        return plain(Insn::LoadSx {
            bits,
            dst,
            src,
            off,
        });
    }
    if let Some(size) = m.strip_prefix("ldx").and_then(mem_size) {
        let (dst, _) = cur.reg(false)?;
        comma(cur)?;
        let (src, off) = mem(cur)?;
        return plain(Insn::Load {
            size,
            dst,
            src,
            off,
        });
    }
    if let Some(size) = m.strip_prefix("stx").and_then(mem_size) {
        let (dst, off) = mem(cur)?;
        comma(cur)?;
        let (src, _) = cur.reg(false)?;
        return plain(Insn::Store {
            size,
            dst,
            src,
            off,
        });
    }
    if let Some(size) = m.strip_prefix("st").and_then(mem_size) {
        let (dst, off) = mem(cur)?;
        comma(cur)?;
        let imm = imm32(cur)?;
        return plain(Insn::StoreImm {
            size,
            dst,
            off,
            imm,
        });
    }
    if let Some(size) = m.strip_prefix("ldabs").and_then(mem_size) {
        if size == MemSize::DW {
            return Err(unknown());
        }
        let imm = imm32(cur)?;
        return plain(Insn::LdAbs { size, imm });
    }
    if let Some(size) = m.strip_prefix("ldind").and_then(mem_size) {
        if size == MemSize::DW {
            return Err(unknown());
        }
        let (src, _) = cur.reg(false)?;
        comma(cur)?;
        let imm = imm32(cur)?;
        return plain(Insn::LdInd { size, src, imm });
    }
    for (prefix, kind) in [
        ("le", Endian::ToLe),
        ("be", Endian::ToBe),
        ("swap", Endian::Swap),
        ("bswap", Endian::Swap),
    ] {
        if let Some(bits) = m.strip_prefix(prefix).and_then(swap_bits) {
            let (dst, _) = cur.reg(false)?;
            return plain(Insn::End { kind, bits, dst });
        }
    }
    if let Some(rest) = m.strip_prefix("movsx") {
        let (from, width) = match rest {
            "832" => (SxBits::B8, Width::W32),
            "1632" => (SxBits::B16, Width::W32),
            "864" => (SxBits::B8, Width::W64),
            "1664" => (SxBits::B16, Width::W64),
            "3264" => (SxBits::B32, Width::W64),
            _ => return Err(unknown()),
        };
        let (dst, _) = cur.reg(false)?;
        comma(cur)?;
        let (src, _) = cur.reg(false)?;
        return plain(Insn::Alu {
            width,
            op: AluOp::Movsx(from),
            dst,
            src: Operand::Reg(src),
        });
    }

    let (base, width) = split_width(m);
    if base == "neg" {
        let (dst, _) = cur.reg(false)?;
        return plain(Insn::Neg { width, dst });
    }
    if let Some(op) = alu_op(base) {
        let (dst, _) = cur.reg(false)?;
        comma(cur)?;
        let src = operand(cur)?;
        return plain(Insn::Alu {
            width,
            op,
            dst,
            src,
        });
    }
    if let Some(cond) = jmp_cond(base) {
        if m.ends_with("64") {
            return Err(unknown());
        }
        let (dst, _) = cur.reg(false)?;
        comma(cur)?;
        let src = operand(cur)?;
        comma(cur)?;
        let t = target(cur, false)?;
        return Ok(Parsed {
            insn: Insn::Jmp {
                width: if m.ends_with("32") {
                    Width::W32
                } else {
                    Width::W64
                },
                cond,
                dst,
                src,
                off: 0,
            },
            target: Some(t),
        });
    }
    Err(unknown())
}

fn comma(cur: &mut Cursor<'_>) -> Result<(), AsmError> {
    cur.expect(",", "`,`")
}

fn imm32(cur: &mut Cursor<'_>) -> Result<i32, AsmError> {
    let line = cur.line;
    cur.number()?.imm32(line, false)
}

/// A register or a 32-bit immediate.
fn operand(cur: &mut Cursor<'_>) -> Result<Operand, AsmError> {
    if let Some((r, _)) = cur.try_reg(false)? {
        return Ok(Operand::Reg(r));
    }
    if !cur.at_number() {
        return Err(cur.expected("a register or an immediate"));
    }
    Ok(Operand::Imm(imm32(cur)?))
}

/// `[%rN]`, `[%rN+off]` or `[%rN-off]`.
fn mem(cur: &mut Cursor<'_>) -> Result<(Reg, i16), AsmError> {
    cur.expect("[", "a memory operand `[%rN+off]`")?;
    let (reg, _) = cur.reg(false)?;
    let off = if cur.peek("+") || cur.peek("-") {
        let line = cur.line;
        cur.number()?.off16(line)?
    } else {
        0
    };
    cur.expect("]", "`]`")?;
    Ok((reg, off))
}

fn call<'a>(cur: &mut Cursor<'a>) -> Result<Parsed<'a>, AsmError> {
    let line = cur.line;
    if cur.eat_word("local") {
        let t = target(cur, false)?;
        return Ok(Parsed {
            insn: Insn::Call(CallTarget::Local(0)),
            target: Some(t),
        });
    }
    if cur.eat_word("runtime") {
        let btf_id = imm32(cur)?;
        let module = if cur.eat(",") {
            cur.number()?.off16(line)?
        } else {
            0
        };
        return Ok(Parsed::plain(Insn::Call(CallTarget::Kfunc {
            btf_id,
            module,
        })));
    }
    cur.eat_word("helper");
    if let Some((reg, _)) = cur.try_reg(false)? {
        return Ok(Parsed::plain(Insn::Callx { reg }));
    }
    if cur.at_number() {
        return Ok(Parsed::plain(Insn::Call(CallTarget::Helper(imm32(cur)?))));
    }
    // `call name` with a label: a local call.
    let t = target(cur, false)?;
    Ok(Parsed {
        insn: Insn::Call(CallTarget::Local(0)),
        target: Some(t),
    })
}

fn lddw<'a>(cur: &mut Cursor<'a>) -> Result<Parsed<'a>, AsmError> {
    let line = cur.line;
    let (dst, _) = cur.reg(false)?;
    comma(cur)?;
    if let Some((imm, target)) = pseudo::try_parse(cur)? {
        return Ok(Parsed {
            insn: Insn::LdImm64 { dst, imm },
            target,
        });
    }
    if !cur.at_number() {
        return Err(cur.expected("a 64-bit immediate"));
    }
    let v = cur.number()?.imm64(line)?;
    Ok(Parsed::plain(Insn::LdImm64 {
        dst,
        imm: Imm64::Value(v),
    }))
}

/// `lock [fetch] op[32] [%rN+off], %rM`.
fn lock(cur: &mut Cursor<'_>) -> Result<Insn, AsmError> {
    let fetch = cur.eat_word("fetch");
    let column = cur.column();
    let Some(m) = cur.ident() else {
        return Err(cur.expected("an atomic operation (add, or, and, xor, xchg, cmpxchg)"));
    };
    let (base, width) = split_width(m);
    // xchg and cmpxchg always return the old value; `fetch` is implied.
    let op = match base {
        "add" => AtomicOp::Add { fetch },
        "or" => AtomicOp::Or { fetch },
        "and" => AtomicOp::And { fetch },
        "xor" => AtomicOp::Xor { fetch },
        "xchg" => AtomicOp::Xchg,
        "cmpxchg" => AtomicOp::Cmpxchg,
        _ => {
            return Err(AsmError::new(
                cur.line,
                column,
                AsmErrorKind::UnknownMnemonic(m.into()),
            ))
        }
    };
    let (dst, off) = mem(cur)?;
    comma(cur)?;
    let (src, _) = cur.reg(false)?;
    Ok(Insn::Atomic {
        dw: width == Width::W64,
        op,
        dst,
        src,
        off,
    })
}

/// Splits a `32`/`64` width suffix off a mnemonic; no suffix means 64-bit.
fn split_width(m: &str) -> (&str, Width) {
    if let Some(b) = m.strip_suffix("32") {
        (b, Width::W32)
    } else {
        (m.strip_suffix("64").unwrap_or(m), Width::W64)
    }
}

fn mem_size(s: &str) -> Option<MemSize> {
    Some(match s {
        "b" => MemSize::B,
        "h" => MemSize::H,
        "w" => MemSize::W,
        "dw" => MemSize::DW,
        _ => return None,
    })
}

fn sx_bits(s: &str) -> Option<SxBits> {
    Some(match s {
        "b" => SxBits::B8,
        "h" => SxBits::B16,
        "w" => SxBits::B32,
        _ => return None,
    })
}

fn swap_bits(s: &str) -> Option<SwapBits> {
    Some(match s {
        "16" => SwapBits::B16,
        "32" => SwapBits::B32,
        "64" => SwapBits::B64,
        _ => return None,
    })
}

fn alu_op(s: &str) -> Option<AluOp> {
    Some(match s {
        "add" => AluOp::Add,
        "sub" => AluOp::Sub,
        "mul" => AluOp::Mul,
        "div" => AluOp::Div,
        "sdiv" => AluOp::Sdiv,
        "or" => AluOp::Or,
        "and" => AluOp::And,
        "lsh" => AluOp::Lsh,
        "rsh" => AluOp::Rsh,
        "mod" => AluOp::Mod,
        "smod" => AluOp::Smod,
        "xor" => AluOp::Xor,
        "mov" => AluOp::Mov,
        "arsh" => AluOp::Arsh,
        _ => return None,
    })
}

fn jmp_cond(s: &str) -> Option<JmpCond> {
    Some(match s {
        "jeq" => JmpCond::Eq,
        "jgt" => JmpCond::Gt,
        "jge" => JmpCond::Ge,
        "jset" => JmpCond::Set,
        "jne" => JmpCond::Ne,
        "jsgt" => JmpCond::Sgt,
        "jsge" => JmpCond::Sge,
        "jlt" => JmpCond::Lt,
        "jle" => JmpCond::Le,
        "jslt" => JmpCond::Slt,
        "jsle" => JmpCond::Sle,
        _ => return None,
    })
}
