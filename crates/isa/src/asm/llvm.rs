//! The LLVM / kernel syntax: C-like statements as `llvm-objdump -d` and
//! `bpftool prog dump xlated` print them. A trailing objdump annotation such
//! as `<LBB0_2>` is ignored.

use super::lex::Cursor;
use super::{pseudo, target, AsmError, AsmErrorKind, Parsed, Target};
use crate::insn::*;

/// Parses one statement (labels and comments already removed).
pub(crate) fn parse_line<'a>(cur: &mut Cursor<'a>) -> Result<Parsed<'a>, AsmError> {
    let plain = |insn| Ok(Parsed::plain(insn));
    if cur.eat_word("if") {
        return cond_jump(cur);
    }
    if cur.eat_word("goto") {
        return jump(cur, Insn::Ja { off: 0 });
    }
    if cur.eat_word("gotol") {
        return jump(cur, Insn::Ja32 { imm: 0 });
    }
    if cur.eat_word("exit") {
        return plain(Insn::Exit);
    }
    if cur.eat_word("callx") {
        let (reg, _) = cur.reg(false)?;
        return plain(Insn::Callx { reg });
    }
    if cur.eat_word("call") {
        return call(cur);
    }
    if cur.eat_word("lock") {
        return lock(cur).map(Parsed::plain);
    }
    if cur.peek("*") {
        return store(cur).map(Parsed::plain);
    }
    if let Some((dst, width)) = cur.try_reg(true)? {
        return assign(cur, dst, width);
    }
    let column = cur.column();
    let word = cur.ident().unwrap_or("");
    if word.is_empty() {
        return Err(cur.expected("an instruction"));
    }
    Err(AsmError::new(
        cur.line,
        column,
        AsmErrorKind::UnknownMnemonic(word.into()),
    ))
}

fn jump<'a>(cur: &mut Cursor<'a>, insn: Insn) -> Result<Parsed<'a>, AsmError> {
    let t = target(cur, true)?;
    skip_annotation(cur);
    Ok(Parsed {
        insn,
        target: Some(t),
    })
}

/// Ignores objdump's `<LBB0_2>` after a jump offset.
fn skip_annotation(cur: &mut Cursor<'_>) {
    if cur.eat("<") {
        while !cur.at_end() && !cur.eat(">") {
            if cur.ident().is_none() && cur.number().is_err() && !cur.eat("+") {
                break;
            }
        }
    }
}

fn cond_jump<'a>(cur: &mut Cursor<'a>) -> Result<Parsed<'a>, AsmError> {
    let (dst, width) = cur.reg(true)?;
    let cond = [
        ("==", JmpCond::Eq),
        ("!=", JmpCond::Ne),
        ("s>=", JmpCond::Sge),
        ("s>", JmpCond::Sgt),
        ("s<=", JmpCond::Sle),
        ("s<", JmpCond::Slt),
        (">=", JmpCond::Ge),
        (">", JmpCond::Gt),
        ("<=", JmpCond::Le),
        ("<", JmpCond::Lt),
        ("&", JmpCond::Set),
    ]
    .into_iter()
    .find(|(tok, _)| cur.eat(tok))
    .map(|(_, c)| c)
    .ok_or_else(|| cur.expected("a comparison (==, !=, >, s>, &, ...)"))?;
    let src = operand(cur, width)?;
    cur.expect("goto", "`goto`")?;
    jump(
        cur,
        Insn::Jmp {
            width,
            cond,
            dst,
            src,
            off: 0,
        },
    )
}

/// A register of the given width, or a 32-bit immediate.
fn operand(cur: &mut Cursor<'_>, width: Width) -> Result<Operand, AsmError> {
    let column = cur.column();
    if let Some((r, w)) = cur.try_reg(true)? {
        if w != width {
            return Err(AsmError::new(cur.line, column, AsmErrorKind::WidthMismatch));
        }
        return Ok(Operand::Reg(r));
    }
    if !cur.at_number() {
        return Err(cur.expected("a register or an immediate"));
    }
    let line = cur.line;
    Ok(Operand::Imm(cur.number()?.imm32(line, true)?))
}

fn call<'a>(cur: &mut Cursor<'a>) -> Result<Parsed<'a>, AsmError> {
    let line = cur.line;
    if cur.peek("pc") {
        let save = cur.clone_pos();
        if let Ok(t @ Target::Rel(..)) = target(cur, true) {
            return Ok(Parsed {
                insn: Insn::Call(CallTarget::Local(0)),
                target: Some(t),
            });
        }
        cur.restore_pos(save);
    }
    if cur.eat_word("kfunc") {
        let btf_id = cur.number()?.imm32(line, true)?;
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
    if let Some((reg, _)) = cur.try_reg(false)? {
        return Ok(Parsed::plain(Insn::Callx { reg }));
    }
    if cur.at_number() {
        let id = cur.number()?.imm32(line, true)?;
        return Ok(Parsed::plain(Insn::Call(CallTarget::Helper(id))));
    }
    let t = target(cur, false)?;
    // bpftool names helpers as `bpf_map_lookup_elem#1`.
    if cur.eat("#") {
        let id = cur.number()?.imm32(line, true)?;
        return Ok(Parsed::plain(Insn::Call(CallTarget::Helper(id))));
    }
    Ok(Parsed {
        insn: Insn::Call(CallTarget::Local(0)),
        target: Some(t),
    })
}

/// The type of `*(u32 *)`: signed or not, and the access size.
fn ptr_type(cur: &mut Cursor<'_>) -> Result<(bool, MemSize), AsmError> {
    cur.expect("(", "`(`")?;
    let column = cur.column();
    let ty = cur.ident().unwrap_or("");
    let parsed = match ty {
        "u8" => (false, MemSize::B),
        "u16" => (false, MemSize::H),
        "u32" => (false, MemSize::W),
        "u64" => (false, MemSize::DW),
        "s8" => (true, MemSize::B),
        "s16" => (true, MemSize::H),
        "s32" => (true, MemSize::W),
        _ => {
            return Err(AsmError::new(
                cur.line,
                column,
                AsmErrorKind::Expected {
                    what: "an access type (u8, u16, u32, u64, s8, s16, s32)",
                    found: alloc::format!("`{ty}`"),
                },
            ))
        }
    };
    cur.expect("*", "`*`")?;
    cur.expect(")", "`)`")?;
    Ok(parsed)
}

/// `rN + off`, `rN - off` or `rN` (inside parentheses or not).
fn address(cur: &mut Cursor<'_>) -> Result<(Reg, i16), AsmError> {
    let (reg, _) = cur.reg(false)?;
    let line = cur.line;
    let off = if cur.eat("+") {
        cur.number()?.off16(line)?
    } else if cur.eat("-") {
        let mut n = cur.number()?;
        n.value = -n.value;
        n.hex = false;
        n.off16(line)?
    } else {
        0
    };
    Ok((reg, off))
}

/// `(rN + off)`.
fn mem(cur: &mut Cursor<'_>) -> Result<(Reg, i16), AsmError> {
    cur.expect("(", "`(`")?;
    let a = address(cur)?;
    cur.expect(")", "`)`")?;
    Ok(a)
}

/// `*(uN *)(rN + off) = src`.
fn store(cur: &mut Cursor<'_>) -> Result<Insn, AsmError> {
    cur.expect("*", "`*`")?;
    let column = cur.column();
    let (signed, size) = ptr_type(cur)?;
    if signed {
        return Err(AsmError::new(
            cur.line,
            column,
            AsmErrorKind::Invalid("stores take unsigned access types"),
        ));
    }
    let (dst, off) = mem(cur)?;
    cur.expect("=", "`=`")?;
    if let Some((src, _)) = cur.try_reg(true)? {
        return Ok(Insn::Store {
            size,
            dst,
            src,
            off,
        });
    }
    let line = cur.line;
    let imm = cur.number()?.imm32(line, true)?;
    Ok(Insn::StoreImm {
        size,
        dst,
        off,
        imm,
    })
}

fn atomic_size(cur: &mut Cursor<'_>, column: usize, size: MemSize) -> Result<bool, AsmError> {
    match size {
        MemSize::W => Ok(false),
        MemSize::DW => Ok(true),
        _ => Err(AsmError::new(
            cur.line,
            column,
            AsmErrorKind::Invalid("atomic operations are 32 or 64 bits wide"),
        )),
    }
}

/// `lock *(u64 *)(rN + off) op= src`.
fn lock(cur: &mut Cursor<'_>) -> Result<Insn, AsmError> {
    cur.expect("*", "`*(u64 *)` after `lock`")?;
    let column = cur.column();
    let (_, size) = ptr_type(cur)?;
    let dw = atomic_size(cur, column, size)?;
    let (dst, off) = mem(cur)?;
    let op = [
        ("+=", AtomicOp::Add { fetch: false }),
        ("|=", AtomicOp::Or { fetch: false }),
        ("&=", AtomicOp::And { fetch: false }),
        ("^=", AtomicOp::Xor { fetch: false }),
    ]
    .into_iter()
    .find(|(tok, _)| cur.eat(tok))
    .map(|(_, op)| op)
    .ok_or_else(|| cur.expected("`+=`, `|=`, `&=` or `^=`"))?;
    let (src, _) = cur.reg(true)?;
    Ok(Insn::Atomic {
        dw,
        op,
        dst,
        src,
        off,
    })
}

/// Statements starting with a register: `dst op= src` and `dst = ...`.
fn assign<'a>(cur: &mut Cursor<'a>, dst: Reg, width: Width) -> Result<Parsed<'a>, AsmError> {
    const COMPOUND: [(&str, AluOp); 13] = [
        ("s>>=", AluOp::Arsh),
        ("s/=", AluOp::Sdiv),
        ("s%=", AluOp::Smod),
        ("<<=", AluOp::Lsh),
        (">>=", AluOp::Rsh),
        ("+=", AluOp::Add),
        ("-=", AluOp::Sub),
        ("*=", AluOp::Mul),
        ("/=", AluOp::Div),
        ("|=", AluOp::Or),
        ("&=", AluOp::And),
        ("^=", AluOp::Xor),
        ("%=", AluOp::Mod),
    ];
    let plain = |insn| Ok(Parsed::plain(insn));
    if let Some((_, op)) = COMPOUND.into_iter().find(|(tok, _)| cur.eat(tok)) {
        let src = operand(cur, width)?;
        return plain(Insn::Alu {
            width,
            op,
            dst,
            src,
        });
    }
    cur.expect("=", "an assignment (`=`, `+=`, ...)")?;
    let line = cur.line;
    let column = cur.column();
    let invalid = |why| Err(AsmError::new(line, column, AsmErrorKind::Invalid(why)));

    if cur.eat("*") {
        let (signed, size) = ptr_type(cur)?;
        if cur.eat_word("skb") {
            return legacy_load(cur, dst, size, signed, column);
        }
        let (src, off) = mem(cur)?;
        if !signed {
            return plain(Insn::Load {
                size,
                dst,
                src,
                off,
            });
        }
        let bits = match size {
            MemSize::B => SxBits::B8,
            MemSize::H => SxBits::B16,
            _ => SxBits::B32,
        };
        return plain(Insn::LoadSx {
            bits,
            dst,
            src,
            off,
        });
    }
    if !cur.at_number() && cur.eat("-") {
        let (r, w) = cur.reg(true)?;
        if r != dst || w != width {
            return invalid("negation must be in place: `r1 = -r1`");
        }
        return plain(Insn::Neg { width, dst });
    }
    if cur.eat("(") {
        let ty = cur.ident().unwrap_or("");
        let bits = match ty {
            "s8" => SxBits::B8,
            "s16" => SxBits::B16,
            "s32" if width == Width::W64 => SxBits::B32,
            _ => return invalid("sign-extending moves take (s8), (s16) or, for r, (s32)"),
        };
        cur.expect(")", "`)`")?;
        let src_column = cur.column();
        let (src, w) = cur.reg(true)?;
        if w != width {
            return Err(AsmError::new(line, src_column, AsmErrorKind::WidthMismatch));
        }
        return plain(Insn::Alu {
            width,
            op: AluOp::Movsx(bits),
            dst,
            src: Operand::Reg(src),
        });
    }
    if let Some((imm, target)) = pseudo::try_parse(cur)? {
        if width == Width::W32 {
            return invalid("a 64-bit load needs an r register");
        }
        return Ok(Parsed {
            insn: Insn::LdImm64 { dst, imm },
            target,
        });
    }
    if let Some((src, w)) = cur.try_reg(true)? {
        if w != width {
            return Err(AsmError::new(line, column, AsmErrorKind::WidthMismatch));
        }
        return plain(Insn::Alu {
            width,
            op: AluOp::Mov,
            dst,
            src: Operand::Reg(src),
        });
    }
    if cur.at_number() {
        let n = cur.number()?;
        let wide = cur.eat_word("ll");
        // `w` registers take any 32-bit pattern; `r` registers sign-extend the
        // immediate, so anything outside i32 needs a 64-bit load.
        let max32 = match width {
            Width::W32 => u32::MAX as i128,
            Width::W64 => i32::MAX as i128,
        };
        let fits32 = n.value >= i32::MIN as i128 && n.value <= max32;
        if wide || (!fits32 && width == Width::W64) {
            if width == Width::W32 {
                return invalid("a 64-bit load needs an r register");
            }
            return plain(Insn::LdImm64 {
                dst,
                imm: Imm64::Value(n.imm64(line)?),
            });
        }
        return plain(Insn::Alu {
            width,
            op: AluOp::Mov,
            dst,
            src: Operand::Imm(n.imm32(line, true)?),
        });
    }
    let Some(word) = cur.ident() else {
        return Err(cur.expected("an expression"));
    };
    named_rhs(cur, word, dst, width, column).map(Parsed::plain)
}

/// `r0 = *(u8 *)skb[12]` and `r0 = *(u16 *)skb[r1 + 12]`.
fn legacy_load<'a>(
    cur: &mut Cursor<'a>,
    dst: Reg,
    size: MemSize,
    signed: bool,
    column: usize,
) -> Result<Parsed<'a>, AsmError> {
    let line = cur.line;
    if dst != Reg::R0 || signed || size == MemSize::DW {
        return Err(AsmError::new(
            line,
            column,
            AsmErrorKind::Invalid("legacy packet loads are r0 = *(u8/u16/u32 *)skb[...]"),
        ));
    }
    cur.expect("[", "`[`")?;
    let insn = if let Some((src, _)) = cur.try_reg(false)? {
        let imm = if cur.eat("+") {
            cur.number()?.imm32(line, true)?
        } else if cur.eat("-") {
            let mut n = cur.number()?;
            n.value = -n.value;
            n.hex = false;
            n.imm32(line, false)?
        } else {
            0
        };
        Insn::LdInd { size, src, imm }
    } else {
        Insn::LdAbs {
            size,
            imm: cur.number()?.imm32(line, true)?,
        }
    };
    cur.expect("]", "`]`")?;
    Ok(Parsed::plain(insn))
}

/// Right-hand sides that start with a word: byte swaps and atomics.
fn named_rhs(
    cur: &mut Cursor<'_>,
    word: &str,
    dst: Reg,
    width: Width,
    column: usize,
) -> Result<Insn, AsmError> {
    let line = cur.line;
    let invalid = |why| AsmError::new(line, column, AsmErrorKind::Invalid(why));
    for (prefix, kind) in [
        ("le", Endian::ToLe),
        ("be", Endian::ToBe),
        ("bswap", Endian::Swap),
    ] {
        let bits = match word.strip_prefix(prefix) {
            Some("16") => SwapBits::B16,
            Some("32") => SwapBits::B32,
            Some("64") => SwapBits::B64,
            _ => continue,
        };
        let (r, _) = cur.reg(true)?;
        if r != dst {
            return Err(invalid("byte swaps are in place: `r1 = be16 r1`"));
        }
        return Ok(Insn::End { kind, bits, dst });
    }

    // LLVM: cmpxchg_64(r1 + 0, r0, r2), xchg32_32(r1 + 0, w2).
    // Kernel: atomic64_cmpxchg((u64 *)(r1 +0), r0, r2), atomic_xchg((u32 *)(r1 +0), w2).
    let (op, dw) = match word {
        "cmpxchg_64" => (AtomicOp::Cmpxchg, Some(true)),
        "cmpxchg32_32" => (AtomicOp::Cmpxchg, Some(false)),
        "xchg_64" => (AtomicOp::Xchg, Some(true)),
        "xchg32_32" => (AtomicOp::Xchg, Some(false)),
        _ => {
            let name = word
                .strip_prefix("atomic64_")
                .or_else(|| word.strip_prefix("atomic_"))
                .ok_or_else(|| {
                    AsmError::new(line, column, AsmErrorKind::UnknownMnemonic(word.into()))
                })?;
            let op = match name {
                "fetch_add" => AtomicOp::Add { fetch: true },
                "fetch_or" => AtomicOp::Or { fetch: true },
                "fetch_and" => AtomicOp::And { fetch: true },
                "fetch_xor" => AtomicOp::Xor { fetch: true },
                "xchg" => AtomicOp::Xchg,
                "cmpxchg" => AtomicOp::Cmpxchg,
                _ => {
                    return Err(AsmError::new(
                        line,
                        column,
                        AsmErrorKind::UnknownMnemonic(word.into()),
                    ))
                }
            };
            (op, None)
        }
    };
    cur.expect("(", "`(`")?;
    let (addr_reg, off, dw) = match dw {
        Some(dw) => {
            let (r, off) = address(cur)?;
            (r, off, dw)
        }
        None => {
            cur.expect("(", "`(u64 *)`")?;
            let ty_column = cur.column();
            // ptr_type expects its own opening parenthesis: step back onto it.
            let (_, size) = ptr_type_after_paren(cur)?;
            let dw = atomic_size(cur, ty_column, size)?;
            let (r, off) = mem(cur)?;
            (r, off, dw)
        }
    };
    if (width == Width::W64) != dw {
        return Err(AsmError::new(line, column, AsmErrorKind::WidthMismatch));
    }
    cur.expect(",", "`,`")?;
    if op == AtomicOp::Cmpxchg {
        let (r0, _) = cur.reg(true)?;
        if r0 != Reg::R0 || dst != Reg::R0 {
            return Err(invalid("cmpxchg compares with and returns r0"));
        }
        cur.expect(",", "`,`")?;
    }
    let (src, _) = cur.reg(true)?;
    cur.expect(")", "`)`")?;
    if op != AtomicOp::Cmpxchg && src != dst {
        return Err(invalid("the old value is returned in the source register"));
    }
    Ok(Insn::Atomic {
        dw,
        op,
        dst: addr_reg,
        src,
        off,
    })
}

/// `u64 *)` once the opening parenthesis has been read.
fn ptr_type_after_paren(cur: &mut Cursor<'_>) -> Result<(bool, MemSize), AsmError> {
    let column = cur.column();
    let ty = cur.ident().unwrap_or("");
    let size = match ty {
        "u32" => MemSize::W,
        "u64" => MemSize::DW,
        _ => {
            return Err(AsmError::new(
                cur.line,
                column,
                AsmErrorKind::Expected {
                    what: "`u32` or `u64`",
                    found: alloc::format!("`{ty}`"),
                },
            ))
        }
    };
    cur.expect("*", "`*`")?;
    cur.expect(")", "`)`")?;
    Ok((false, size))
}
