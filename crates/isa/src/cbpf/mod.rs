//! Classic BPF (cBPF): the instruction set of `struct sock_filter`, as
//! tcpdump, libpcap and `SO_ATTACH_FILTER` use it.
//!
//! [`Insn`] is the typed form; [`SockFilter`] the 8-byte wire form
//! (`u16 code, u8 jt, u8 jf, u32 k`, in host byte order). Decoding is strict:
//! fields an instruction does not use must be zero (except `k` of `tax`/`txa`,
//! where libpcap leaves stale values and which the model keeps), so `decode(encode(x)) == x`
//! and `encode(decode(b)) == b` whenever `b` decodes. [`Insn::tcpdump`] prints
//! an instruction exactly as `tcpdump -d` (libpcap 1.10) does, down to the
//! `unimp` it prints for the two opcodes it has no name for (`ret x`, `ldx #pktlen`).

use alloc::vec::Vec;
use core::fmt;

use crate::raw::ByteOrder;

mod parse;
mod print;

pub use parse::{
    dump_c_array, dump_decimal, parse_c_array, parse_decimal, parse_listing, ParseError,
};
pub use print::{dump, TcpdumpLine};

/// One 8-byte `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Generic field: constant, offset or memory slot.
    pub k: u32,
}

impl SockFilter {
    /// Size in bytes.
    pub const SIZE: usize = 8;

    /// Splits 8 bytes into fields.
    pub fn from_bytes(b: [u8; 8], order: ByteOrder) -> SockFilter {
        let (code, k) = match order {
            ByteOrder::Little => (
                u16::from_le_bytes([b[0], b[1]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            ),
            ByteOrder::Big => (
                u16::from_be_bytes([b[0], b[1]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ),
        };
        SockFilter {
            code,
            jt: b[2],
            jf: b[3],
            k,
        }
    }

    /// Joins the fields into 8 bytes.
    pub fn to_bytes(self, order: ByteOrder) -> [u8; 8] {
        let (c, k) = match order {
            ByteOrder::Little => (self.code.to_le_bytes(), self.k.to_le_bytes()),
            ByteOrder::Big => (self.code.to_be_bytes(), self.k.to_be_bytes()),
        };
        [c[0], c[1], self.jt, self.jf, k[0], k[1], k[2], k[3]]
    }
}

/// Load size of packet loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// 32 bits (`ld`).
    W,
    /// 16 bits (`ldh`).
    H,
    /// 8 bits (`ldb`).
    B,
}

/// Arithmetic operations on the accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `A += src`
    Add,
    /// `A -= src`
    Sub,
    /// `A *= src`
    Mul,
    /// `A /= src`
    Div,
    /// `A |= src`
    Or,
    /// `A &= src`
    And,
    /// `A <<= src`
    Lsh,
    /// `A >>= src`
    Rsh,
    /// `A %= src`
    Mod,
    /// `A ^= src`
    Xor,
}

/// Conditions of conditional jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpCond {
    /// `A == src`
    Eq,
    /// `A > src` (unsigned)
    Gt,
    /// `A >= src` (unsigned)
    Ge,
    /// `A & src != 0`
    Set,
}

/// The second operand of arithmetic and jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Src {
    /// The constant `k`.
    K(u32),
    /// The index register X.
    X,
}

/// What `ret` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetVal {
    /// The constant `k`.
    K(u32),
    /// The accumulator A.
    A,
    /// The index register X (Linux).
    X,
}

/// One classic BPF instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// `A = packet[k]` (`ld/ldh/ldb [k]`).
    LdAbs {
        /// Load size.
        size: Size,
        /// Packet offset (Linux ancillary data at 0xfffff000 and up).
        k: u32,
    },
    /// `A = packet[X + k]` (`ld/ldh/ldb [x + k]`).
    LdInd {
        /// Load size.
        size: Size,
        /// Offset added to X.
        k: u32,
    },
    /// `A = k` (`ld #k`).
    LdImm(u32),
    /// `A = packet length` (`ld #pktlen`).
    LdLen,
    /// `A = M[k]`.
    LdMem(u32),
    /// `X = k` (`ldx #k`).
    LdxImm(u32),
    /// `X = packet length` (`ldx #pktlen`).
    LdxLen,
    /// `X = M[k]`.
    LdxMem(u32),
    /// `X = 4 * (packet[k] & 0xf)`: the IPv4 header length (`ldxb 4*([k]&0xf)`).
    LdxMsh(u32),
    /// `M[k] = A`.
    St(u32),
    /// `M[k] = X`.
    Stx(u32),
    /// `A = A op src`.
    Alu {
        /// The operation.
        op: AluOp,
        /// The operand.
        src: Src,
    },
    /// `A = -A`.
    Neg,
    /// Jump forward `k` instructions.
    Ja(u32),
    /// Jump forward `jt` instructions if the condition holds, else `jf`.
    Jmp {
        /// The condition.
        cond: JmpCond,
        /// The operand compared with A.
        src: Src,
        /// Offset if true.
        jt: u8,
        /// Offset if false.
        jf: u8,
    },
    /// Return (accept this many bytes; 0 drops).
    Ret(RetVal),
    /// `X = A`.
    Tax {
        /// Unused by the machine, but libpcap leaves stale values here; kept
        /// so that re-encoding reproduces the program byte for byte.
        k: u32,
    },
    /// `A = X`.
    Txa {
        /// Unused, as for [`Insn::Tax`].
        k: u32,
    },
}

/// Opcode fields (the classic `BPF_*` macros).
mod op {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const A: u16 = 0x10;
    pub const NEG: u16 = 0x80;
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
}

const ALU_OPS: [(u16, AluOp); 10] = [
    (0x00, AluOp::Add),
    (0x10, AluOp::Sub),
    (0x20, AluOp::Mul),
    (0x30, AluOp::Div),
    (0x40, AluOp::Or),
    (0x50, AluOp::And),
    (0x60, AluOp::Lsh),
    (0x70, AluOp::Rsh),
    (0x90, AluOp::Mod),
    (0xa0, AluOp::Xor),
];

const JMP_CONDS: [(u16, JmpCond); 4] = [
    (0x10, JmpCond::Eq),
    (0x20, JmpCond::Gt),
    (0x30, JmpCond::Ge),
    (0x40, JmpCond::Set),
];

fn size_bits(s: Size) -> u16 {
    match s {
        Size::W => op::W,
        Size::H => op::H,
        Size::B => op::B,
    }
}

fn src_fields(src: Src) -> (u16, u32) {
    match src {
        Src::K(k) => (op::K, k),
        Src::X => (op::X, 0),
    }
}

impl Insn {
    /// Encodes into a `struct sock_filter`.
    pub fn encode(&self) -> SockFilter {
        let sf = |code, k| SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        match *self {
            Insn::LdAbs { size, k } => sf(op::LD | op::ABS | size_bits(size), k),
            Insn::LdInd { size, k } => sf(op::LD | op::IND | size_bits(size), k),
            Insn::LdImm(k) => sf(op::LD | op::IMM, k),
            Insn::LdLen => sf(op::LD | op::W | op::LEN, 0),
            Insn::LdMem(k) => sf(op::LD | op::MEM, k),
            Insn::LdxImm(k) => sf(op::LDX | op::IMM, k),
            Insn::LdxLen => sf(op::LDX | op::W | op::LEN, 0),
            Insn::LdxMem(k) => sf(op::LDX | op::MEM, k),
            Insn::LdxMsh(k) => sf(op::LDX | op::MSH | op::B, k),
            Insn::St(k) => sf(op::ST, k),
            Insn::Stx(k) => sf(op::STX, k),
            Insn::Alu { op: o, src } => {
                let code = ALU_OPS.iter().find(|(_, a)| *a == o).map_or(0, |(c, _)| *c);
                let (s, k) = src_fields(src);
                sf(op::ALU | code | s, k)
            }
            Insn::Neg => sf(op::ALU | op::NEG, 0),
            Insn::Ja(k) => sf(op::JMP, k),
            Insn::Jmp { cond, src, jt, jf } => {
                let code = JMP_CONDS
                    .iter()
                    .find(|(_, c)| *c == cond)
                    .map_or(0, |(c, _)| *c);
                let (s, k) = src_fields(src);
                SockFilter {
                    code: op::JMP | code | s,
                    jt,
                    jf,
                    k,
                }
            }
            Insn::Ret(RetVal::K(k)) => sf(op::RET | op::K, k),
            Insn::Ret(RetVal::X) => sf(op::RET | op::X, 0),
            Insn::Ret(RetVal::A) => sf(op::RET | op::A, 0),
            Insn::Tax { k } => sf(op::MISC | op::TAX, k),
            Insn::Txa { k } => sf(op::MISC | op::TXA, k),
        }
    }

    /// Decodes a `struct sock_filter`; `index` only names it in errors.
    pub fn decode(f: SockFilter, index: usize) -> Result<Insn, DecodeError> {
        let err = |kind| DecodeError { index, kind };
        let unknown = || err(DecodeErrorKind::UnknownOpcode(f.code));
        // Every cBPF opcode fits in 8 bits; the kernel's chk_code_allowed()
        // rejects any other `code`, and the matching below only looks at the
        // low byte, so a high byte would otherwise be silently dropped.
        if f.code > 0xff {
            return Err(unknown());
        }
        let conditional = f.code & 0x07 == op::JMP && f.code & 0xf0 != 0;
        if !conditional && (f.jt != 0 || f.jf != 0) {
            return Err(err(DecodeErrorKind::ReservedField("jt/jf")));
        }
        let no_k = |insn: Insn| {
            if f.k == 0 {
                Ok(insn)
            } else {
                Err(err(DecodeErrorKind::ReservedField("k")))
            }
        };
        let size = match f.code & 0x18 {
            op::W => Size::W,
            op::H => Size::H,
            op::B => Size::B,
            _ => Size::W, // BPF_DW does not exist in cBPF; rejected below by exact matching.
        };
        let k = f.k;
        Ok(match f.code {
            c if c & 0x07 == op::LD && c & 0xe0 == op::ABS && c & 0x18 != 0x18 => {
                Insn::LdAbs { size, k }
            }
            c if c & 0x07 == op::LD && c & 0xe0 == op::IND && c & 0x18 != 0x18 => {
                Insn::LdInd { size, k }
            }
            c if c == op::LD | op::IMM => Insn::LdImm(k),
            c if c == op::LD | op::W | op::LEN => return no_k(Insn::LdLen),
            c if c == op::LD | op::MEM => Insn::LdMem(k),
            c if c == op::LDX | op::IMM => Insn::LdxImm(k),
            c if c == op::LDX | op::W | op::LEN => return no_k(Insn::LdxLen),
            c if c == op::LDX | op::MEM => Insn::LdxMem(k),
            c if c == op::LDX | op::MSH | op::B => Insn::LdxMsh(k),
            c if c == op::ST => Insn::St(k),
            c if c == op::STX => Insn::Stx(k),
            c if c == op::ALU | op::NEG => return no_k(Insn::Neg),
            c if c & 0x07 == op::ALU => {
                let o = ALU_OPS
                    .iter()
                    .find(|(code, _)| *code == c & 0xf0)
                    .map(|(_, o)| *o)
                    .ok_or_else(unknown)?;
                if c & 0x08 == op::X {
                    return no_k(Insn::Alu { op: o, src: Src::X });
                }
                if c & !0xf0 != op::ALU {
                    return Err(unknown());
                }
                Insn::Alu {
                    op: o,
                    src: Src::K(k),
                }
            }
            c if c == op::JMP => Insn::Ja(k),
            c if c & 0x07 == op::JMP && c & !0xf8 == op::JMP => {
                let cond = JMP_CONDS
                    .iter()
                    .find(|(code, _)| *code == c & 0xf0)
                    .map(|(_, c)| *c)
                    .ok_or_else(unknown)?;
                let src = if c & 0x08 == op::X {
                    if k != 0 {
                        return Err(err(DecodeErrorKind::ReservedField("k")));
                    }
                    Src::X
                } else {
                    Src::K(k)
                };
                Insn::Jmp {
                    cond,
                    src,
                    jt: f.jt,
                    jf: f.jf,
                }
            }
            c if c == op::RET | op::K => Insn::Ret(RetVal::K(k)),
            c if c == op::RET | op::X => return no_k(Insn::Ret(RetVal::X)),
            c if c == op::RET | op::A => return no_k(Insn::Ret(RetVal::A)),
            c if c == op::MISC | op::TAX => Insn::Tax { k },
            c if c == op::MISC | op::TXA => Insn::Txa { k },
            _ => return Err(unknown()),
        })
    }
}

/// What is wrong with a classic BPF instruction that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The byte string's length is not a multiple of 8.
    TrailingBytes(usize),
    /// The opcode is not defined.
    UnknownOpcode(u16),
    /// A field this instruction does not use is not zero.
    ReservedField(&'static str),
}

/// A classic BPF decoding failure, naming the instruction index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Index of the offending instruction.
    pub index: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cBPF instruction {}: ", self.index)?;
        match self.kind {
            DecodeErrorKind::TrailingBytes(len) => {
                write!(
                    f,
                    "{len} bytes is not a whole number of 8-byte instructions"
                )
            }
            DecodeErrorKind::UnknownOpcode(c) => write!(f, "unknown opcode {c:#06x}"),
            DecodeErrorKind::ReservedField(field) => {
                write!(f, "unused field {field} must be 0")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Decodes a program of `struct sock_filter`s from bytes.
pub fn decode(bytes: &[u8], order: ByteOrder) -> Result<Vec<Insn>, DecodeError> {
    if bytes.len() % SockFilter::SIZE != 0 {
        return Err(DecodeError {
            index: bytes.len() / SockFilter::SIZE,
            kind: DecodeErrorKind::TrailingBytes(bytes.len()),
        });
    }
    bytes
        .chunks_exact(SockFilter::SIZE)
        .enumerate()
        .map(|(i, c)| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            Insn::decode(SockFilter::from_bytes(b, order), i)
        })
        .collect()
}

/// Encodes a program into bytes.
pub fn encode(insns: &[Insn], order: ByteOrder) -> Vec<u8> {
    insns
        .iter()
        .flat_map(|i| i.encode().to_bytes(order))
        .collect()
}
