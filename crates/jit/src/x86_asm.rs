//! A small x86-64 encoder for the instruction forms the JIT emits. Bytes
//! go straight into one buffer; every branch is rel32, and one pass at the
//! end patches branches to their labels, so emitting is linear in the code
//! size (no relaxation passes, no per-instruction objects).
//!
//! Encodings follow the Intel SDM, volume 2 (REX, ModRM, SIB); the tests
//! check each form against iced-x86's decoder.

use crate::JitError;

/// A general-purpose register by its hardware number (rax = 0 .. r15 = 15).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Reg(pub(crate) u8);

pub(crate) const RAX: Reg = Reg(0);
pub(crate) const RCX: Reg = Reg(1);
pub(crate) const RDX: Reg = Reg(2);
pub(crate) const RBX: Reg = Reg(3);
pub(crate) const RSP: Reg = Reg(4);
pub(crate) const RBP: Reg = Reg(5);
pub(crate) const RSI: Reg = Reg(6);
pub(crate) const RDI: Reg = Reg(7);
pub(crate) const R8: Reg = Reg(8);
pub(crate) const R9: Reg = Reg(9);
pub(crate) const R10: Reg = Reg(10);
pub(crate) const R11: Reg = Reg(11);
pub(crate) const R12: Reg = Reg(12);
pub(crate) const R13: Reg = Reg(13);
pub(crate) const R14: Reg = Reg(14);
pub(crate) const R15: Reg = Reg(15);

impl Reg {
    fn low(self) -> u8 {
        self.0 & 7
    }

    fn high(self) -> u8 {
        (self.0 >> 3) & 1
    }

    /// As a byte register, spl/bpl/sil/dil need a REX prefix (without one
    /// the same numbers mean ah/ch/dh/bh).
    fn byte_needs_rex(self) -> bool {
        (4..8).contains(&self.0)
    }
}

/// Operand width.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum W {
    B8,
    B16,
    B32,
    B64,
}

/// A memory operand `[base + index * 2^scale + disp]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Mem {
    base: Reg,
    index: Option<Reg>,
    /// The SIB scale field: the index is multiplied by `1 << scale`.
    scale: u8,
    disp: i32,
}

impl Mem {
    /// `[base + disp]`.
    pub(crate) fn at(base: Reg, disp: i32) -> Mem {
        Mem {
            base,
            index: None,
            scale: 0,
            disp,
        }
    }

    /// `[base + index * 2^scale + disp]` (`scale` 0..=3); the index
    /// cannot be rsp (SIB has no encoding for it).
    pub(crate) fn scaled(base: Reg, index: Reg, scale: u8, disp: i32) -> Mem {
        debug_assert!(index != RSP && scale <= 3);
        Mem {
            base,
            index: Some(index),
            scale,
            disp,
        }
    }
}

/// A ModRM r/m operand: a register or memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rm {
    Reg(Reg),
    Mem(Mem),
}

impl From<Reg> for Rm {
    fn from(r: Reg) -> Rm {
        Rm::Reg(r)
    }
}

impl From<Mem> for Rm {
    fn from(m: Mem) -> Rm {
        Rm::Mem(m)
    }
}

/// The classic two-operand ALU operations, numbered by their ModRM digit
/// (`op r/m, r` is opcode `8 * digit + 1`, `op r, r/m` is `8 * digit + 3`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Alu {
    Add = 0,
    Or = 1,
    And = 4,
    Sub = 5,
    Xor = 6,
    Cmp = 7,
}

/// Shifts and rotates, numbered by their ModRM digit (opcodes C1 / D3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Shift {
    Ror = 1,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

/// One-operand group-3 operations (opcode F7), by ModRM digit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Unary {
    Neg = 3,
    Div = 6,
    Idiv = 7,
}

/// Branch conditions by their `jcc` condition code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cond {
    B = 0x2,
    Ae = 0x3,
    E = 0x4,
    Ne = 0x5,
    Be = 0x6,
    A = 0x7,
    L = 0xc,
    Ge = 0xd,
    Le = 0xe,
    G = 0xf,
}

impl Cond {
    /// The condition that holds exactly when `self` does not.
    pub(crate) fn negated(self) -> Cond {
        use Cond::*;
        match self {
            B => Ae,
            Ae => B,
            E => Ne,
            Ne => E,
            Be => A,
            A => Be,
            L => Ge,
            Ge => L,
            Le => G,
            G => Le,
        }
    }
}

/// A position in the code that branches can target, bound once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Label(u32);

impl Label {
    /// The `n`th label [`Asm::new`] made.
    pub(crate) fn nth(n: usize) -> Label {
        Label(n as u32)
    }
}

/// Offset of a label not bound yet.
const UNBOUND: u32 = u32::MAX;

/// The code being emitted, its labels and the branches still to patch.
pub(crate) struct Asm {
    code: Vec<u8>,
    /// Code offset of each label, `UNBOUND` until bound.
    labels: Vec<u32>,
    /// `(offset of a rel32 field, label it points to)`.
    fixups: Vec<(u32, Label)>,
}

fn fits_i8(v: i32) -> bool {
    v as i8 as i32 == v
}

impl Asm {
    /// An empty buffer with room for `bytes` bytes of code and `labels`
    /// labels made unbound up front (label `n` is [`Label::nth`]`(n)`).
    pub(crate) fn new(bytes: usize, labels: usize) -> Asm {
        Asm {
            code: Vec::with_capacity(bytes),
            labels: vec![UNBOUND; labels],
            fixups: Vec::with_capacity(labels),
        }
    }

    /// A new unbound label.
    pub(crate) fn new_label(&mut self) -> Label {
        self.labels.push(UNBOUND);
        Label(self.labels.len() as u32 - 1)
    }

    /// Binds `label` to the current position.
    pub(crate) fn bind(&mut self, label: Label) {
        debug_assert_eq!(self.labels[label.0 as usize], UNBOUND);
        self.labels[label.0 as usize] = self.code.len() as u32;
    }

    /// The current position (bytes emitted so far).
    pub(crate) fn pos(&self) -> usize {
        self.code.len()
    }

    /// Patches every branch and returns the code and each label's offset
    /// (`u32::MAX` for labels never bound, which no branch may target).
    pub(crate) fn finish(mut self) -> Result<(Vec<u8>, Vec<u32>), JitError> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0 as usize];
            if target == UNBOUND {
                return Err(JitError::Assemble(format!(
                    "a branch at code offset {at:#x} targets label {} that was never placed",
                    label.0
                )));
            }
            let rel = target.wrapping_sub(at + 4) as i32;
            self.code[at as usize..at as usize + 4].copy_from_slice(&rel.to_le_bytes());
        }
        Ok((self.code, self.labels))
    }

    /// The code emitted so far (branches not yet patched).
    pub(crate) fn code(&self) -> &[u8] {
        &self.code
    }

    /// Appends code made by another `Asm` that has no branches.
    pub(crate) fn raw(&mut self, code: &[u8]) {
        self.code.extend_from_slice(code);
    }

    fn byte(&mut self, b: u8) {
        self.code.push(b);
    }

    fn imm32(&mut self, v: i32) {
        self.code.extend_from_slice(&v.to_le_bytes());
    }

    /// The REX prefix for W and the high bits of the ModRM reg, SIB index
    /// and r/m base fields; left out when it would be a bare 0x40, unless
    /// `force` (byte registers spl..dil).
    fn rex(&mut self, w: bool, reg: u8, index: u8, base: u8, force: bool) {
        let rex = 0x40 | (w as u8) << 3 | (reg & 1) << 2 | (index & 1) << 1 | (base & 1);
        if rex != 0x40 || force {
            self.byte(rex);
        }
    }

    /// Prefixes, `opcode` and the ModRM (plus SIB and displacement) for
    /// `reg` (a register number or a /digit) and `rm`; `force_rex` as for
    /// [`Asm::rex`].
    fn op_rm(&mut self, w: W, opcode: &[u8], reg: u8, rm: Rm, force_rex: bool) {
        if w == W::B16 {
            self.byte(0x66);
        }
        let (index, base) = match rm {
            Rm::Reg(r) => (0, r.high()),
            Rm::Mem(m) => (m.index.map_or(0, Reg::high), m.base.high()),
        };
        self.rex(w == W::B64, reg >> 3, index, base, force_rex);
        self.code.extend_from_slice(opcode);
        let reg = (reg & 7) << 3;
        match rm {
            Rm::Reg(r) => self.byte(0xc0 | reg | r.low()),
            Rm::Mem(m) => {
                let base = m.base.low();
                // rbp/r13 as a base have no form without displacement.
                let (mode, disp_len) = if m.disp == 0 && base != 5 {
                    (0x00, 0)
                } else if fits_i8(m.disp) {
                    (0x40, 1)
                } else {
                    (0x80, 4)
                };
                match m.index {
                    Some(index) => {
                        self.byte(mode | reg | 4);
                        self.byte(m.scale << 6 | index.low() << 3 | base);
                    }
                    // rsp/r12 as a base need a SIB byte (with no index).
                    None if base == 4 => {
                        self.byte(mode | reg | 4);
                        self.byte(0x24);
                    }
                    None => self.byte(mode | reg | base),
                }
                match disp_len {
                    0 => {}
                    1 => self.byte(m.disp as u8),
                    _ => self.imm32(m.disp),
                }
            }
        }
    }

    /// `op dst, src` on registers (32 or 64 bits).
    pub(crate) fn alu_rr(&mut self, op: Alu, w: W, dst: Reg, src: Reg) {
        self.op_rm(w, &[op as u8 * 8 + 1], src.0, Rm::Reg(dst), false);
    }

    /// `op dst, imm` (32 or 64 bits, the immediate sign-extended) on a
    /// register or memory, in the imm8 form when it fits.
    pub(crate) fn alu_ri(&mut self, op: Alu, w: W, dst: impl Into<Rm>, imm: i32) {
        if fits_i8(imm) {
            self.op_rm(w, &[0x83], op as u8, dst.into(), false);
            self.byte(imm as u8);
        } else {
            self.op_rm(w, &[0x81], op as u8, dst.into(), false);
            self.imm32(imm);
        }
    }

    /// `op dst, [mem]` (32 or 64 bits).
    pub(crate) fn alu_rm(&mut self, op: Alu, w: W, dst: Reg, src: Mem) {
        self.op_rm(w, &[op as u8 * 8 + 3], dst.0, Rm::Mem(src), false);
    }

    /// `op [mem], src` (32 or 64 bits): a read-modify-write of memory.
    pub(crate) fn alu_mr(&mut self, op: Alu, w: W, dst: Mem, src: Reg) {
        self.op_rm(w, &[op as u8 * 8 + 1], src.0, Rm::Mem(dst), false);
    }

    /// `xadd [mem], src` (32 or 64 bits, no lock prefix): `src` gets the
    /// old value.
    pub(crate) fn xadd_mr(&mut self, w: W, dst: Mem, src: Reg) {
        self.op_rm(w, &[0x0f, 0xc1], src.0, Rm::Mem(dst), false);
    }

    /// `cmpxchg [mem], src` (32 or 64 bits, no lock prefix), comparing
    /// with rax.
    pub(crate) fn cmpxchg_mr(&mut self, w: W, dst: Mem, src: Reg) {
        self.op_rm(w, &[0x0f, 0xb1], src.0, Rm::Mem(dst), false);
    }

    /// `test a, b` (32 or 64 bits).
    pub(crate) fn test_rr(&mut self, w: W, a: Reg, b: Reg) {
        self.op_rm(w, &[0x85], b.0, Rm::Reg(a), false);
    }

    /// `test r, imm` (32 or 64 bits, the immediate sign-extended).
    pub(crate) fn test_ri(&mut self, w: W, r: Reg, imm: i32) {
        self.op_rm(w, &[0xf7], 0, Rm::Reg(r), false);
        self.imm32(imm);
    }

    /// `mov dst, src` on registers (32 or 64 bits; 32 zero-extends).
    pub(crate) fn mov_rr(&mut self, w: W, dst: Reg, src: Reg) {
        self.op_rm(w, &[0x89], src.0, Rm::Reg(dst), false);
    }

    /// `mov dst, [mem]` (32 or 64 bits).
    pub(crate) fn load(&mut self, w: W, dst: Reg, src: Mem) {
        self.op_rm(w, &[0x8b], dst.0, Rm::Mem(src), false);
    }

    /// `mov [mem], src` of any width.
    pub(crate) fn store(&mut self, w: W, dst: Mem, src: Reg) {
        let (opcode, force) = match w {
            W::B8 => (0x88, src.byte_needs_rex()),
            _ => (0x89, false),
        };
        self.op_rm(w, &[opcode], src.0, Rm::Mem(dst), force);
    }

    /// `mov [mem], imm` of any width (64 bits: the immediate
    /// sign-extended; narrower: truncated to the width).
    pub(crate) fn store_imm(&mut self, w: W, dst: Mem, imm: i32) {
        match w {
            W::B8 => {
                self.op_rm(w, &[0xc6], 0, Rm::Mem(dst), false);
                self.byte(imm as u8);
            }
            W::B16 => {
                self.op_rm(w, &[0xc7], 0, Rm::Mem(dst), false);
                self.code.extend_from_slice(&(imm as u16).to_le_bytes());
            }
            _ => {
                self.op_rm(w, &[0xc7], 0, Rm::Mem(dst), false);
                self.imm32(imm);
            }
        }
    }

    /// `mov r32, imm32` (zero-extends into the 64-bit register).
    pub(crate) fn mov_r32_imm(&mut self, dst: Reg, imm: u32) {
        self.rex(false, 0, 0, dst.high(), false);
        self.byte(0xb8 + dst.low());
        self.imm32(imm as i32);
    }

    /// `mov r64, imm32` sign-extended.
    pub(crate) fn mov_r64_simm32(&mut self, dst: Reg, imm: i32) {
        self.op_rm(W::B64, &[0xc7], 0, Rm::Reg(dst), false);
        self.imm32(imm);
    }

    /// `mov r64, imm64`.
    pub(crate) fn mov_r64_imm64(&mut self, dst: Reg, imm: u64) {
        self.rex(true, 0, 0, dst.high(), false);
        self.byte(0xb8 + dst.low());
        self.code.extend_from_slice(&imm.to_le_bytes());
    }

    /// `movzx r32, r/m8` or `movzx r32, r/m16` (`from`).
    pub(crate) fn movzx(&mut self, dst: Reg, src: impl Into<Rm>, from: W) {
        let src = src.into();
        let (opcode, force) = match (from, src) {
            (W::B8, Rm::Reg(r)) => (0xb6, r.byte_needs_rex()),
            (W::B8, _) => (0xb6, false),
            _ => (0xb7, false),
        };
        self.op_rm(W::B32, &[0x0f, opcode], dst.0, src, force);
    }

    /// `movsx`/`movsxd`: sign-extends the `from`-bit `src` into the
    /// `w`-bit `dst` (from 32 bits only into 64).
    pub(crate) fn movsx(&mut self, w: W, dst: Reg, src: impl Into<Rm>, from: W) {
        let src = src.into();
        match from {
            W::B8 => {
                let force = matches!(src, Rm::Reg(r) if r.byte_needs_rex());
                self.op_rm(w, &[0x0f, 0xbe], dst.0, src, force)
            }
            W::B16 => self.op_rm(w, &[0x0f, 0xbf], dst.0, src, false),
            _ => self.op_rm(W::B64, &[0x63], dst.0, src, false),
        }
    }

    /// `lea r64, [mem]`.
    pub(crate) fn lea(&mut self, dst: Reg, src: Mem) {
        self.op_rm(W::B64, &[0x8d], dst.0, Rm::Mem(src), false);
    }

    /// `shift r, n` (16, 32 or 64 bits).
    pub(crate) fn shift_imm(&mut self, op: Shift, w: W, r: Reg, n: u8) {
        self.op_rm(w, &[0xc1], op as u8, Rm::Reg(r), false);
        self.byte(n);
    }

    /// `shift r, cl` (32 or 64 bits).
    pub(crate) fn shift_cl(&mut self, op: Shift, w: W, r: Reg) {
        self.op_rm(w, &[0xd3], op as u8, Rm::Reg(r), false);
    }

    /// `imul dst, src` (32 or 64 bits).
    pub(crate) fn imul_rr(&mut self, w: W, dst: Reg, src: Reg) {
        self.op_rm(w, &[0x0f, 0xaf], dst.0, Rm::Reg(src), false);
    }

    /// `imul dst, src, imm` (32 or 64 bits), in the imm8 form when it fits.
    pub(crate) fn imul_rri(&mut self, w: W, dst: Reg, src: Reg, imm: i32) {
        if fits_i8(imm) {
            self.op_rm(w, &[0x6b], dst.0, Rm::Reg(src), false);
            self.byte(imm as u8);
        } else {
            self.op_rm(w, &[0x69], dst.0, Rm::Reg(src), false);
            self.imm32(imm);
        }
    }

    /// `neg`, `div` or `idiv` of a register (32 or 64 bits).
    pub(crate) fn unary(&mut self, op: Unary, w: W, r: Reg) {
        self.op_rm(w, &[0xf7], op as u8, Rm::Reg(r), false);
    }

    /// `bswap r` (32 or 64 bits).
    pub(crate) fn bswap(&mut self, w: W, r: Reg) {
        self.rex(w == W::B64, 0, 0, r.high(), false);
        self.byte(0x0f);
        self.byte(0xc8 + r.low());
    }

    /// `push r64`.
    pub(crate) fn push(&mut self, r: Reg) {
        self.rex(false, 0, 0, r.high(), false);
        self.byte(0x50 + r.low());
    }

    /// `pop r64`.
    pub(crate) fn pop(&mut self, r: Reg) {
        self.rex(false, 0, 0, r.high(), false);
        self.byte(0x58 + r.low());
    }

    /// `call r64`.
    pub(crate) fn call_reg(&mut self, r: Reg) {
        self.op_rm(W::B32, &[0xff], 2, Rm::Reg(r), false);
    }

    /// `call label`.
    pub(crate) fn call(&mut self, target: Label) {
        self.byte(0xe8);
        self.rel32(target);
    }

    /// `jmp label`.
    pub(crate) fn jmp(&mut self, target: Label) {
        self.byte(0xe9);
        self.rel32(target);
    }

    /// `jcc label`.
    pub(crate) fn jcc(&mut self, cond: Cond, target: Label) {
        self.byte(0x0f);
        self.byte(0x80 + cond as u8);
        self.rel32(target);
    }

    fn rel32(&mut self, target: Label) {
        self.fixups.push((self.code.len() as u32, target));
        self.imm32(0);
    }

    /// `ret`.
    pub(crate) fn ret(&mut self) {
        self.byte(0xc3);
    }

    /// `nop`.
    pub(crate) fn nop(&mut self) {
        self.byte(0x90);
    }

    /// `cqo`: sign-extends rax into rdx:rax.
    pub(crate) fn cqo(&mut self) {
        self.code.extend_from_slice(&[0x48, 0x99]);
    }

    /// `cdq`: sign-extends eax into edx:eax.
    pub(crate) fn cdq(&mut self) {
        self.byte(0x99);
    }
}

#[cfg(test)]
mod tests {
    //! Every form, with every register (and a spread of displacements and
    //! immediates), decoded by iced-x86 and compared, as Intel-syntax text,
    //! with the same instruction assembled by iced-x86's own assembler.
    use super::*;
    use iced_x86::code_asm::{self as ca, CodeAssembler};
    use iced_x86::{
        Code, Decoder, DecoderOptions, Encoder, Formatter, Instruction, IntelFormatter,
    };
    use proptest::prelude::*;

    fn r64(r: Reg) -> ca::AsmRegister64 {
        use ca::*;
        [
            rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
        ][r.0 as usize]
    }
    fn r32(r: Reg) -> ca::AsmRegister32 {
        use ca::*;
        [
            eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d,
        ][r.0 as usize]
    }
    fn r16(r: Reg) -> ca::AsmRegister16 {
        use ca::*;
        [
            ax, cx, dx, bx, sp, bp, si, di, r8w, r9w, r10w, r11w, r12w, r13w, r14w, r15w,
        ][r.0 as usize]
    }
    fn r8(r: Reg) -> ca::AsmRegister8 {
        use ca::*;
        [
            al, cl, dl, bl, spl, bpl, sil, dil, r8b, r9b, r10b, r11b, r12b, r13b, r14b, r15b,
        ][r.0 as usize]
    }
    fn mem(m: Mem) -> ca::AsmMemoryOperand {
        match m.index {
            Some(i) => r64(m.base) + r64(i) * (1u32 << m.scale) + m.disp,
            None => r64(m.base) + m.disp,
        }
    }

    /// Decodes `code` at ip 0 into one line per instruction; fails on
    /// anything that does not decode or does not use up the bytes exactly.
    fn decode(code: &[u8]) -> Vec<String> {
        let mut d = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut out = Vec::new();
        while d.can_decode() {
            let insn = d.decode();
            assert!(!insn.is_invalid(), "invalid code: {code:02x?}");
            let mut s = String::new();
            f.format(&insn, &mut s);
            out.push(s);
        }
        out
    }

    /// Emits with `mine` and with iced's assembler (`theirs`), checks that
    /// both decode to the same instructions.
    fn same(mine: impl FnOnce(&mut Asm), theirs: impl FnOnce(&mut CodeAssembler)) {
        let mut a = Asm::new(64, 0);
        mine(&mut a);
        let (code, _) = a.finish().unwrap();
        let mut c = CodeAssembler::new(64).unwrap();
        theirs(&mut c);
        let expected = c.assemble(0).unwrap();
        assert_eq!(decode(&code), decode(&expected), "bytes {code:02x?}");
    }

    const ALUS: [Alu; 6] = [Alu::Add, Alu::Or, Alu::And, Alu::Sub, Alu::Xor, Alu::Cmp];

    fn iced_alu_rr64(c: &mut CodeAssembler, op: Alu, d: Reg, s: Reg) {
        let (d, s) = (r64(d), r64(s));
        match op {
            Alu::Add => c.add(d, s),
            Alu::Or => c.or(d, s),
            Alu::And => c.and(d, s),
            Alu::Sub => c.sub(d, s),
            Alu::Xor => c.xor(d, s),
            Alu::Cmp => c.cmp(d, s),
        }
        .unwrap()
    }
    fn iced_alu_rr32(c: &mut CodeAssembler, op: Alu, d: Reg, s: Reg) {
        let (d, s) = (r32(d), r32(s));
        match op {
            Alu::Add => c.add(d, s),
            Alu::Or => c.or(d, s),
            Alu::And => c.and(d, s),
            Alu::Sub => c.sub(d, s),
            Alu::Xor => c.xor(d, s),
            Alu::Cmp => c.cmp(d, s),
        }
        .unwrap()
    }

    fn all() -> impl Iterator<Item = Reg> {
        (0..16).map(Reg)
    }

    #[test]
    fn register_forms_match_iced_for_every_register_pair() {
        for d in all() {
            for s in all() {
                for op in ALUS {
                    same(
                        |a| {
                            a.alu_rr(op, W::B64, d, s);
                            a.alu_rr(op, W::B32, d, s);
                        },
                        |c| {
                            iced_alu_rr64(c, op, d, s);
                            iced_alu_rr32(c, op, d, s);
                        },
                    );
                }
                same(
                    |a| {
                        a.test_rr(W::B64, d, s);
                        a.test_rr(W::B32, d, s);
                        a.mov_rr(W::B64, d, s);
                        a.mov_rr(W::B32, d, s);
                        a.imul_rr(W::B64, d, s);
                        a.imul_rr(W::B32, d, s);
                        a.movsx(W::B64, d, s, W::B8);
                        a.movsx(W::B64, d, s, W::B16);
                        a.movsx(W::B64, d, s, W::B32);
                        a.movsx(W::B32, d, s, W::B8);
                        a.movsx(W::B32, d, s, W::B16);
                        a.movzx(d, s, W::B8);
                        a.movzx(d, s, W::B16);
                    },
                    |c| {
                        c.test(r64(d), r64(s)).unwrap();
                        c.test(r32(d), r32(s)).unwrap();
                        c.mov(r64(d), r64(s)).unwrap();
                        c.mov(r32(d), r32(s)).unwrap();
                        c.imul_2(r64(d), r64(s)).unwrap();
                        c.imul_2(r32(d), r32(s)).unwrap();
                        c.movsx(r64(d), r8(s)).unwrap();
                        c.movsx(r64(d), r16(s)).unwrap();
                        c.movsxd(r64(d), r32(s)).unwrap();
                        c.movsx(r32(d), r8(s)).unwrap();
                        c.movsx(r32(d), r16(s)).unwrap();
                        c.movzx(r32(d), r8(s)).unwrap();
                        c.movzx(r32(d), r16(s)).unwrap();
                    },
                );
            }
        }
    }

    #[test]
    fn one_register_forms_match_iced_for_every_register() {
        for r in all() {
            same(
                |a| {
                    a.unary(Unary::Neg, W::B64, r);
                    a.unary(Unary::Neg, W::B32, r);
                    a.unary(Unary::Div, W::B64, r);
                    a.unary(Unary::Div, W::B32, r);
                    a.unary(Unary::Idiv, W::B64, r);
                    a.unary(Unary::Idiv, W::B32, r);
                    a.bswap(W::B64, r);
                    a.bswap(W::B32, r);
                    a.push(r);
                    a.pop(r);
                    a.call_reg(r);
                    a.shift_cl(Shift::Shl, W::B64, r);
                    a.shift_cl(Shift::Shr, W::B64, r);
                    a.shift_cl(Shift::Sar, W::B64, r);
                    a.shift_cl(Shift::Shl, W::B32, r);
                    a.shift_cl(Shift::Shr, W::B32, r);
                    a.shift_cl(Shift::Sar, W::B32, r);
                    a.shift_imm(Shift::Ror, W::B16, r, 8);
                    for n in [0u8, 1, 5, 31, 63] {
                        a.shift_imm(Shift::Shl, W::B64, r, n);
                        a.shift_imm(Shift::Shr, W::B64, r, n);
                        a.shift_imm(Shift::Sar, W::B64, r, n);
                    }
                    for n in [1u8, 7, 31] {
                        a.shift_imm(Shift::Shl, W::B32, r, n);
                        a.shift_imm(Shift::Shr, W::B32, r, n);
                        a.shift_imm(Shift::Sar, W::B32, r, n);
                    }
                },
                |c| {
                    use ca::cl;
                    c.neg(r64(r)).unwrap();
                    c.neg(r32(r)).unwrap();
                    c.div(r64(r)).unwrap();
                    c.div(r32(r)).unwrap();
                    c.idiv(r64(r)).unwrap();
                    c.idiv(r32(r)).unwrap();
                    c.bswap(r64(r)).unwrap();
                    c.bswap(r32(r)).unwrap();
                    c.push(r64(r)).unwrap();
                    c.pop(r64(r)).unwrap();
                    c.call(r64(r)).unwrap();
                    c.shl(r64(r), cl).unwrap();
                    c.shr(r64(r), cl).unwrap();
                    c.sar(r64(r), cl).unwrap();
                    c.shl(r32(r), cl).unwrap();
                    c.shr(r32(r), cl).unwrap();
                    c.sar(r32(r), cl).unwrap();
                    c.ror(r16(r), 8u32).unwrap();
                    for n in [0u32, 1, 5, 31, 63] {
                        c.shl(r64(r), n).unwrap();
                        c.shr(r64(r), n).unwrap();
                        c.sar(r64(r), n).unwrap();
                    }
                    for n in [1u32, 7, 31] {
                        c.shl(r32(r), n).unwrap();
                        c.shr(r32(r), n).unwrap();
                        c.sar(r32(r), n).unwrap();
                    }
                },
            );
        }
    }

    #[test]
    fn fixed_forms_and_branches_match_iced() {
        same(
            |a| {
                a.ret();
                a.nop();
                a.cqo();
                a.cdq();
            },
            |c| {
                c.ret().unwrap();
                c.nop().unwrap();
                c.cqo().unwrap();
                c.cdq().unwrap();
            },
        );
        // Branches backwards and forwards: the same rel32 forms encoded
        // one by one with iced's `Encoder` at the same addresses.
        let conds = [
            (Cond::B, Code::Jb_rel32_64),
            (Cond::Ae, Code::Jae_rel32_64),
            (Cond::E, Code::Je_rel32_64),
            (Cond::Ne, Code::Jne_rel32_64),
            (Cond::Be, Code::Jbe_rel32_64),
            (Cond::A, Code::Ja_rel32_64),
            (Cond::L, Code::Jl_rel32_64),
            (Cond::Ge, Code::Jge_rel32_64),
            (Cond::Le, Code::Jle_rel32_64),
            (Cond::G, Code::Jg_rel32_64),
        ];
        let mut a = Asm::new(64, 0);
        let back = a.new_label();
        let fwd = a.new_label();
        a.bind(back);
        a.nop();
        for (c, _) in conds {
            a.jcc(c, back);
            a.jcc(c, fwd);
        }
        a.jmp(back);
        a.jmp(fwd);
        a.call(back);
        a.call(fwd);
        a.bind(fwd);
        a.ret();
        let (code, labels) = a.finish().unwrap();
        let (back, fwd) = (labels[0] as u64, labels[1] as u64);
        let mut insns = vec![Instruction::with(Code::Nopd)];
        for (_, code) in conds {
            insns.push(Instruction::with_branch(code, back).unwrap());
            insns.push(Instruction::with_branch(code, fwd).unwrap());
        }
        for code in [Code::Jmp_rel32_64, Code::Call_rel32_64] {
            insns.push(Instruction::with_branch(code, back).unwrap());
            insns.push(Instruction::with_branch(code, fwd).unwrap());
        }
        insns.push(Instruction::with(Code::Retnq));
        let mut expected = Vec::new();
        for insn in &insns {
            let mut e = Encoder::new(64);
            e.encode(insn, expected.len() as u64).unwrap();
            expected.extend(e.take_buffer());
        }
        assert_eq!(decode(&code), decode(&expected));
        assert_eq!(code.len(), expected.len());
    }

    #[test]
    fn a_branch_to_a_label_never_placed_is_an_error() {
        let mut a = Asm::new(16, 1);
        a.jmp(Label::nth(0));
        let err = a.finish().unwrap_err().to_string();
        assert!(err.contains("never placed"), "{err}");
    }

    fn any_reg() -> impl Strategy<Value = Reg> {
        (0u8..16).prop_map(Reg)
    }

    /// Displacements around the disp8/disp32 edges and beyond.
    fn any_disp() -> impl Strategy<Value = i32> {
        prop_oneof![
            Just(0),
            -130i32..130,
            Just(i32::MIN),
            Just(i32::MAX),
            any::<i32>()
        ]
    }

    fn any_mem() -> impl Strategy<Value = Mem> {
        (
            any_reg(),
            proptest::option::of(any_reg()),
            0u8..4,
            any_disp(),
        )
            .prop_map(|(b, i, scale, d)| match i {
                Some(i) if i != RSP => Mem::scaled(b, i, scale, d),
                _ => Mem::at(b, d),
            })
    }

    fn any_imm() -> impl Strategy<Value = i32> {
        prop_oneof![-130i32..130, Just(i32::MIN), Just(i32::MAX), any::<i32>()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn memory_and_immediate_forms_match_iced(
            r in any_reg(),
            s in any_reg(),
            m in any_mem(),
            imm in any_imm(),
            imm64 in any::<u64>(),
            op in proptest::sample::select(ALUS.to_vec()),
        ) {
            same(
                |a| {
                    a.alu_ri(op, W::B64, r, imm);
                    a.alu_ri(op, W::B32, r, imm);
                    a.alu_ri(op, W::B64, m, imm);
                    a.alu_rm(op, W::B64, r, m);
                    a.test_ri(W::B64, r, imm);
                    a.test_ri(W::B32, r, imm);
                    a.imul_rri(W::B64, r, s, imm);
                    a.imul_rri(W::B32, r, s, imm);
                    a.load(W::B64, r, m);
                    a.load(W::B32, r, m);
                    a.store(W::B64, m, s);
                    a.store(W::B32, m, s);
                    a.store(W::B16, m, s);
                    a.store(W::B8, m, s);
                    a.store_imm(W::B64, m, imm);
                    a.store_imm(W::B32, m, imm);
                    a.store_imm(W::B16, m, imm);
                    a.store_imm(W::B8, m, imm);
                    a.movzx(r, m, W::B8);
                    a.movzx(r, m, W::B16);
                    a.movsx(W::B64, r, m, W::B8);
                    a.movsx(W::B64, r, m, W::B16);
                    a.movsx(W::B64, r, m, W::B32);
                    a.lea(r, m);
                    for w in [W::B64, W::B32] {
                        a.alu_mr(Alu::Add, w, m, s);
                        a.alu_mr(Alu::Or, w, m, s);
                        a.alu_mr(Alu::And, w, m, s);
                        a.alu_mr(Alu::Xor, w, m, s);
                        a.xadd_mr(w, m, s);
                        a.cmpxchg_mr(w, m, s);
                    }
                    a.mov_r32_imm(r, imm as u32);
                    a.mov_r64_simm32(r, imm);
                    a.mov_r64_imm64(r, imm64);
                },
                |c| {
                    let (d64, d32, s64, s32) = (r64(r), r32(r), r64(s), r32(s));
                    let mm = mem(m);
                    match op {
                        Alu::Add => {
                            c.add(d64, imm).unwrap();
                            c.add(d32, imm).unwrap();
                            c.add(ca::qword_ptr(mm), imm).unwrap();
                            c.add(d64, ca::qword_ptr(mm)).unwrap();
                        }
                        Alu::Or => {
                            c.or(d64, imm).unwrap();
                            c.or(d32, imm).unwrap();
                            c.or(ca::qword_ptr(mm), imm).unwrap();
                            c.or(d64, ca::qword_ptr(mm)).unwrap();
                        }
                        Alu::And => {
                            c.and(d64, imm).unwrap();
                            c.and(d32, imm).unwrap();
                            c.and(ca::qword_ptr(mm), imm).unwrap();
                            c.and(d64, ca::qword_ptr(mm)).unwrap();
                        }
                        Alu::Sub => {
                            c.sub(d64, imm).unwrap();
                            c.sub(d32, imm).unwrap();
                            c.sub(ca::qword_ptr(mm), imm).unwrap();
                            c.sub(d64, ca::qword_ptr(mm)).unwrap();
                        }
                        Alu::Xor => {
                            c.xor(d64, imm).unwrap();
                            c.xor(d32, imm).unwrap();
                            c.xor(ca::qword_ptr(mm), imm).unwrap();
                            c.xor(d64, ca::qword_ptr(mm)).unwrap();
                        }
                        Alu::Cmp => {
                            c.cmp(d64, imm).unwrap();
                            c.cmp(d32, imm).unwrap();
                            c.cmp(ca::qword_ptr(mm), imm).unwrap();
                            c.cmp(d64, ca::qword_ptr(mm)).unwrap();
                        }
                    }
                    c.test(d64, imm).unwrap();
                    c.test(d32, imm).unwrap();
                    c.imul_3(d64, s64, imm).unwrap();
                    c.imul_3(d32, s32, imm).unwrap();
                    c.mov(d64, ca::qword_ptr(mm)).unwrap();
                    c.mov(d32, ca::dword_ptr(mm)).unwrap();
                    c.mov(ca::qword_ptr(mm), s64).unwrap();
                    c.mov(ca::dword_ptr(mm), s32).unwrap();
                    c.mov(ca::word_ptr(mm), r16(s)).unwrap();
                    c.mov(ca::byte_ptr(mm), r8(s)).unwrap();
                    c.mov(ca::qword_ptr(mm), imm).unwrap();
                    c.mov(ca::dword_ptr(mm), imm).unwrap();
                    c.mov(ca::word_ptr(mm), imm as u16 as u32).unwrap();
                    c.mov(ca::byte_ptr(mm), imm as u8 as u32).unwrap();
                    c.movzx(d32, ca::byte_ptr(mm)).unwrap();
                    c.movzx(d32, ca::word_ptr(mm)).unwrap();
                    c.movsx(d64, ca::byte_ptr(mm)).unwrap();
                    c.movsx(d64, ca::word_ptr(mm)).unwrap();
                    c.movsxd(d64, ca::dword_ptr(mm)).unwrap();
                    c.lea(d64, ca::qword_ptr(mm)).unwrap();
                    c.add(ca::qword_ptr(mm), s64).unwrap();
                    c.or(ca::qword_ptr(mm), s64).unwrap();
                    c.and(ca::qword_ptr(mm), s64).unwrap();
                    c.xor(ca::qword_ptr(mm), s64).unwrap();
                    c.xadd(ca::qword_ptr(mm), s64).unwrap();
                    c.cmpxchg(ca::qword_ptr(mm), s64).unwrap();
                    c.add(ca::dword_ptr(mm), s32).unwrap();
                    c.or(ca::dword_ptr(mm), s32).unwrap();
                    c.and(ca::dword_ptr(mm), s32).unwrap();
                    c.xor(ca::dword_ptr(mm), s32).unwrap();
                    c.xadd(ca::dword_ptr(mm), s32).unwrap();
                    c.cmpxchg(ca::dword_ptr(mm), s32).unwrap();
                    c.mov(d32, imm as u32).unwrap();
                    c.add_instruction(iced_x86::Instruction::with2(
                        iced_x86::Code::Mov_rm64_imm32,
                        iced_x86::Register::from(d64),
                        imm,
                    ).unwrap()).unwrap();
                    c.mov(d64, imm64).unwrap();
                },
            );
        }
    }
}
