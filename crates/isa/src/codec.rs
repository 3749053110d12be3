//! Encoding [`Insn`] to slots and strict decoding of slots back to [`Insn`].
//!
//! Decoding rejects every field the instruction does not use unless it is zero,
//! so that the typed model stays lossless.

use alloc::vec::Vec;
use core::fmt;

use crate::insn::*;
use crate::opcode::{alu, atomic, call_src, class, jmp, mode, pseudo, size, source, LD_IMM64};
use crate::raw::{ByteOrder, RawInsn};

/// What is wrong with an instruction that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The byte string's length is not a multiple of 8.
    TrailingBytes {
        /// The length in bytes.
        len: usize,
    },
    /// The opcode is not defined.
    UnknownOpcode(u8),
    /// A register field names a register above r10.
    BadRegister {
        /// Which field: `"dst"` or `"src"`.
        field: &'static str,
        /// The register number found.
        value: u8,
    },
    /// A field this instruction does not use is not zero.
    ReservedField {
        /// Which field: `"dst"`, `"src"`, `"off"` or `"imm"`.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// A field has a value the opcode does not allow.
    BadField {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// An `LD_IMM64` is missing its second slot.
    TruncatedLdImm64,
    /// The second slot of an `LD_IMM64` is not of the form `{0, 0, 0, 0, imm}`.
    BadLdImm64Tail,
}

/// A decoding failure, naming the slot index where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Index of the offending slot (instruction index as the kernel counts them).
    pub index: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::TrailingBytes { len } => {
                write!(
                    f,
                    "{len} bytes is not a whole number of 8-byte instructions"
                )
            }
            DecodeErrorKind::UnknownOpcode(c) => write!(f, "unknown opcode {c:#04x}"),
            DecodeErrorKind::BadRegister { field, value } => {
                write!(f, "{field} register r{value} does not exist (r0..r10)")
            }
            DecodeErrorKind::ReservedField { field, value } => {
                write!(f, "unused field {field} must be 0, found {value}")
            }
            DecodeErrorKind::BadField { field, value } => {
                write!(f, "invalid {field} value {value}")
            }
            DecodeErrorKind::TruncatedLdImm64 => write!(f, "lddw is missing its second slot"),
            DecodeErrorKind::BadLdImm64Tail => {
                write!(f, "second slot of lddw must have only an immediate")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}: {}", self.index, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

fn width_class(width: Width, w32: u8, w64: u8) -> u8 {
    match width {
        Width::W32 => w32,
        Width::W64 => w64,
    }
}

fn size_bits(s: MemSize) -> u8 {
    match s {
        MemSize::B => size::B,
        MemSize::H => size::H,
        MemSize::W => size::W,
        MemSize::DW => size::DW,
    }
}

fn sx_size(b: SxBits) -> u8 {
    match b {
        SxBits::B8 => size::B,
        SxBits::B16 => size::H,
        SxBits::B32 => size::W,
    }
}

fn cond_code(c: JmpCond) -> u8 {
    match c {
        JmpCond::Eq => jmp::JEQ,
        JmpCond::Gt => jmp::JGT,
        JmpCond::Ge => jmp::JGE,
        JmpCond::Set => jmp::JSET,
        JmpCond::Ne => jmp::JNE,
        JmpCond::Sgt => jmp::JSGT,
        JmpCond::Sge => jmp::JSGE,
        JmpCond::Lt => jmp::JLT,
        JmpCond::Le => jmp::JLE,
        JmpCond::Slt => jmp::JSLT,
        JmpCond::Sle => jmp::JSLE,
    }
}

fn operand_fields(src: Operand) -> (u8, u8, i32) {
    match src {
        Operand::Imm(imm) => (source::K, 0, imm),
        Operand::Reg(r) => (source::X, r.index(), 0),
    }
}

impl Insn {
    /// Encodes into one slot, or two for `LdImm64` (the second is `Some`).
    pub fn encode(&self) -> (RawInsn, Option<RawInsn>) {
        let one = |r: RawInsn| (r, None);
        match *self {
            Insn::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let (s, sreg, imm) = operand_fields(src);
                let (code, off) = match op {
                    AluOp::Add => (alu::ADD, 0),
                    AluOp::Sub => (alu::SUB, 0),
                    AluOp::Mul => (alu::MUL, 0),
                    AluOp::Div => (alu::DIV, 0),
                    AluOp::Sdiv => (alu::DIV, 1),
                    AluOp::Or => (alu::OR, 0),
                    AluOp::And => (alu::AND, 0),
                    AluOp::Lsh => (alu::LSH, 0),
                    AluOp::Rsh => (alu::RSH, 0),
                    AluOp::Mod => (alu::MOD, 0),
                    AluOp::Smod => (alu::MOD, 1),
                    AluOp::Xor => (alu::XOR, 0),
                    AluOp::Mov => (alu::MOV, 0),
                    AluOp::Movsx(b) => (alu::MOV, b.bits() as i16),
                    AluOp::Arsh => (alu::ARSH, 0),
                };
                let cls = width_class(width, class::ALU, class::ALU64);
                one(RawInsn::new(code | s | cls, dst.index(), sreg, off, imm))
            }
            Insn::Neg { width, dst } => {
                let cls = width_class(width, class::ALU, class::ALU64);
                one(RawInsn::new(alu::NEG | cls, dst.index(), 0, 0, 0))
            }
            Insn::End { kind, bits, dst } => {
                let code = match kind {
                    Endian::ToLe => alu::END | source::K | class::ALU,
                    Endian::ToBe => alu::END | source::X | class::ALU,
                    Endian::Swap => alu::END | class::ALU64,
                };
                one(RawInsn::new(code, dst.index(), 0, 0, bits.bits() as i32))
            }
            Insn::Ja { off } => one(RawInsn::new(jmp::JA | class::JMP, 0, 0, off, 0)),
            Insn::Ja32 { imm } => one(RawInsn::new(jmp::JA | class::JMP32, 0, 0, 0, imm)),
            Insn::Jmp {
                width,
                cond,
                dst,
                src,
                off,
            } => {
                let (s, sreg, imm) = operand_fields(src);
                let cls = width_class(width, class::JMP32, class::JMP);
                one(RawInsn::new(
                    cond_code(cond) | s | cls,
                    dst.index(),
                    sreg,
                    off,
                    imm,
                ))
            }
            Insn::Call(target) => {
                let (src, off, imm) = match target {
                    CallTarget::Helper(id) => (call_src::HELPER, 0, id),
                    CallTarget::Local(rel) => (call_src::LOCAL, 0, rel),
                    CallTarget::Kfunc { btf_id, module } => (call_src::KFUNC, module, btf_id),
                };
                one(RawInsn::new(jmp::CALL | class::JMP, 0, src, off, imm))
            }
            Insn::Callx { reg } => one(RawInsn::new(
                jmp::CALL | source::X | class::JMP,
                reg.index(),
                0,
                0,
                0,
            )),
            Insn::Exit => one(RawInsn::new(jmp::EXIT | class::JMP, 0, 0, 0, 0)),
            Insn::LdImm64 { dst, imm } => {
                let (src, lo, hi) = match imm {
                    Imm64::Value(v) => (pseudo::IMM, v as u32 as i32, (v >> 32) as u32 as i32),
                    Imm64::MapFd(fd) => (pseudo::MAP_FD, fd, 0),
                    Imm64::MapValue { fd, offset } => (pseudo::MAP_VALUE, fd, offset as i32),
                    Imm64::BtfVar { btf_id, btf_obj_fd } => (pseudo::BTF_ID, btf_id, btf_obj_fd),
                    Imm64::Func(rel) => (pseudo::FUNC, rel, 0),
                    Imm64::MapIdx(idx) => (pseudo::MAP_IDX, idx, 0),
                    Imm64::MapIdxValue { idx, offset } => {
                        (pseudo::MAP_IDX_VALUE, idx, offset as i32)
                    }
                };
                (
                    RawInsn::new(LD_IMM64, dst.index(), src, 0, lo),
                    Some(RawInsn::new(0, 0, 0, 0, hi)),
                )
            }
            Insn::Load {
                size,
                dst,
                src,
                off,
            } => one(RawInsn::new(
                class::LDX | mode::MEM | size_bits(size),
                dst.index(),
                src.index(),
                off,
                0,
            )),
            Insn::LoadSx {
                bits,
                dst,
                src,
                off,
            } => one(RawInsn::new(
                class::LDX | mode::MEMSX | sx_size(bits),
                dst.index(),
                src.index(),
                off,
                0,
            )),
            Insn::StoreImm {
                size,
                dst,
                off,
                imm,
            } => one(RawInsn::new(
                class::ST | mode::MEM | size_bits(size),
                dst.index(),
                0,
                off,
                imm,
            )),
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => one(RawInsn::new(
                class::STX | mode::MEM | size_bits(size),
                dst.index(),
                src.index(),
                off,
                0,
            )),
            Insn::Atomic {
                dw,
                op,
                dst,
                src,
                off,
            } => {
                let f = |base: i32, fetch: bool| base | if fetch { atomic::FETCH } else { 0 };
                let imm = match op {
                    AtomicOp::Add { fetch } => f(atomic::ADD, fetch),
                    AtomicOp::Or { fetch } => f(atomic::OR, fetch),
                    AtomicOp::And { fetch } => f(atomic::AND, fetch),
                    AtomicOp::Xor { fetch } => f(atomic::XOR, fetch),
                    AtomicOp::Xchg => atomic::XCHG,
                    AtomicOp::Cmpxchg => atomic::CMPXCHG,
                };
                let sz = if dw { size::DW } else { size::W };
                one(RawInsn::new(
                    class::STX | mode::ATOMIC | sz,
                    dst.index(),
                    src.index(),
                    off,
                    imm,
                ))
            }
            Insn::LdAbs { size, imm } => one(RawInsn::new(
                class::LD | mode::ABS | size_bits(size),
                0,
                0,
                0,
                imm,
            )),
            Insn::LdInd { size, src, imm } => one(RawInsn::new(
                class::LD | mode::IND | size_bits(size),
                0,
                src.index(),
                0,
                imm,
            )),
        }
    }

    /// Decodes the instruction starting at `slots[0]`; `LD_IMM64` also consumes `slots[1]`.
    /// `index` is only used to name the slot in errors.
    pub fn decode(slots: &[RawInsn], index: usize) -> Result<Insn, DecodeError> {
        let err = |kind| DecodeError { index, kind };
        let Some(&r) = slots.first() else {
            return Err(err(DecodeErrorKind::TruncatedLdImm64));
        };
        if r.code == LD_IMM64 {
            let Some(&tail) = slots.get(1) else {
                return Err(err(DecodeErrorKind::TruncatedLdImm64));
            };
            if tail.code != 0 || tail.dst != 0 || tail.src != 0 || tail.off != 0 {
                return Err(DecodeError {
                    index: index + 1,
                    kind: DecodeErrorKind::BadLdImm64Tail,
                });
            }
            return decode_ld_imm64(r, tail.imm).map_err(err);
        }
        decode_one(r).map_err(err)
    }
}

fn reg(field: &'static str, value: u8) -> Result<Reg, DecodeErrorKind> {
    Reg::new(value).ok_or(DecodeErrorKind::BadRegister { field, value })
}

fn zero(field: &'static str, value: i64) -> Result<(), DecodeErrorKind> {
    if value == 0 {
        Ok(())
    } else {
        Err(DecodeErrorKind::ReservedField { field, value })
    }
}

fn decode_ld_imm64(r: RawInsn, hi: i32) -> Result<Insn, DecodeErrorKind> {
    let dst = reg("dst", r.dst)?;
    zero("off", r.off as i64)?;
    let need_hi_zero = || zero("imm of second slot", hi as i64);
    let imm = match r.src {
        pseudo::IMM => Imm64::Value((r.imm as u32 as u64) | ((hi as u32 as u64) << 32)),
        pseudo::MAP_FD => {
            need_hi_zero()?;
            Imm64::MapFd(r.imm)
        }
        pseudo::MAP_VALUE => Imm64::MapValue {
            fd: r.imm,
            offset: hi as u32,
        },
        pseudo::BTF_ID => Imm64::BtfVar {
            btf_id: r.imm,
            btf_obj_fd: hi,
        },
        pseudo::FUNC => {
            need_hi_zero()?;
            Imm64::Func(r.imm)
        }
        pseudo::MAP_IDX => {
            need_hi_zero()?;
            Imm64::MapIdx(r.imm)
        }
        pseudo::MAP_IDX_VALUE => Imm64::MapIdxValue {
            idx: r.imm,
            offset: hi as u32,
        },
        other => {
            return Err(DecodeErrorKind::BadField {
                field: "lddw src",
                value: other as i64,
            })
        }
    };
    Ok(Insn::LdImm64 { dst, imm })
}

fn mem_size(code: u8) -> MemSize {
    match code & 0x18 {
        size::B => MemSize::B,
        size::H => MemSize::H,
        size::W => MemSize::W,
        _ => MemSize::DW,
    }
}

fn decode_operand(r: RawInsn) -> Result<Operand, DecodeErrorKind> {
    if r.code & source::X != 0 {
        zero("imm", r.imm as i64)?;
        Ok(Operand::Reg(reg("src", r.src)?))
    } else {
        zero("src", r.src as i64)?;
        Ok(Operand::Imm(r.imm))
    }
}

fn decode_one(r: RawInsn) -> Result<Insn, DecodeErrorKind> {
    let unknown = || DecodeErrorKind::UnknownOpcode(r.code);
    match r.class() {
        class::ALU | class::ALU64 => decode_alu(r),
        class::JMP | class::JMP32 => decode_jmp(r),
        class::LD => {
            let size = mem_size(r.code);
            if size == MemSize::DW {
                return Err(unknown());
            }
            zero("dst", r.dst as i64)?;
            zero("off", r.off as i64)?;
            match r.code & 0xe0 {
                mode::ABS => {
                    zero("src", r.src as i64)?;
                    Ok(Insn::LdAbs { size, imm: r.imm })
                }
                mode::IND => Ok(Insn::LdInd {
                    size,
                    src: reg("src", r.src)?,
                    imm: r.imm,
                }),
                _ => Err(unknown()),
            }
        }
        class::LDX => {
            let dst = reg("dst", r.dst)?;
            let src = reg("src", r.src)?;
            zero("imm", r.imm as i64)?;
            match r.code & 0xe0 {
                mode::MEM => Ok(Insn::Load {
                    size: mem_size(r.code),
                    dst,
                    src,
                    off: r.off,
                }),
                mode::MEMSX => {
                    let bits = match mem_size(r.code) {
                        MemSize::B => SxBits::B8,
                        MemSize::H => SxBits::B16,
                        MemSize::W => SxBits::B32,
                        MemSize::DW => return Err(unknown()),
                    };
                    Ok(Insn::LoadSx {
                        bits,
                        dst,
                        src,
                        off: r.off,
                    })
                }
                _ => Err(unknown()),
            }
        }
        class::ST => {
            if r.code & 0xe0 != mode::MEM {
                return Err(unknown());
            }
            zero("src", r.src as i64)?;
            Ok(Insn::StoreImm {
                size: mem_size(r.code),
                dst: reg("dst", r.dst)?,
                off: r.off,
                imm: r.imm,
            })
        }
        _ => {
            // class::STX
            let dst = reg("dst", r.dst)?;
            let src = reg("src", r.src)?;
            match r.code & 0xe0 {
                mode::MEM => {
                    zero("imm", r.imm as i64)?;
                    Ok(Insn::Store {
                        size: mem_size(r.code),
                        dst,
                        src,
                        off: r.off,
                    })
                }
                mode::ATOMIC => {
                    let dw = match mem_size(r.code) {
                        MemSize::W => false,
                        MemSize::DW => true,
                        _ => return Err(unknown()),
                    };
                    let fetch = r.imm & atomic::FETCH != 0;
                    let op = match r.imm {
                        atomic::XCHG => AtomicOp::Xchg,
                        atomic::CMPXCHG => AtomicOp::Cmpxchg,
                        imm => match imm & !atomic::FETCH {
                            atomic::ADD => AtomicOp::Add { fetch },
                            atomic::OR => AtomicOp::Or { fetch },
                            atomic::AND => AtomicOp::And { fetch },
                            atomic::XOR => AtomicOp::Xor { fetch },
                            _ => {
                                return Err(DecodeErrorKind::BadField {
                                    field: "atomic op",
                                    value: imm as i64,
                                })
                            }
                        },
                    };
                    Ok(Insn::Atomic {
                        dw,
                        op,
                        dst,
                        src,
                        off: r.off,
                    })
                }
                _ => Err(unknown()),
            }
        }
    }
}

fn decode_alu(r: RawInsn) -> Result<Insn, DecodeErrorKind> {
    let width = if r.class() == class::ALU64 {
        Width::W64
    } else {
        Width::W32
    };
    let dst = reg("dst", r.dst)?;
    let op_code = r.code & 0xf0;
    match op_code {
        alu::NEG => {
            if r.code & source::X != 0 {
                return Err(DecodeErrorKind::UnknownOpcode(r.code));
            }
            zero("src", r.src as i64)?;
            zero("off", r.off as i64)?;
            zero("imm", r.imm as i64)?;
            return Ok(Insn::Neg { width, dst });
        }
        alu::END => {
            let kind = match (width, r.code & source::X != 0) {
                (Width::W32, false) => Endian::ToLe,
                (Width::W32, true) => Endian::ToBe,
                (Width::W64, false) => Endian::Swap,
                (Width::W64, true) => return Err(DecodeErrorKind::UnknownOpcode(r.code)),
            };
            zero("src", r.src as i64)?;
            zero("off", r.off as i64)?;
            let bits = match r.imm {
                16 => SwapBits::B16,
                32 => SwapBits::B32,
                64 => SwapBits::B64,
                v => {
                    return Err(DecodeErrorKind::BadField {
                        field: "byte swap width",
                        value: v as i64,
                    })
                }
            };
            return Ok(Insn::End { kind, bits, dst });
        }
        0xe0 | 0xf0 => return Err(DecodeErrorKind::UnknownOpcode(r.code)),
        _ => {}
    }
    let src = decode_operand(r)?;
    let bad_off = || DecodeErrorKind::BadField {
        field: "off",
        value: r.off as i64,
    };
    let op = match (op_code, r.off) {
        (alu::ADD, 0) => AluOp::Add,
        (alu::SUB, 0) => AluOp::Sub,
        (alu::MUL, 0) => AluOp::Mul,
        (alu::DIV, 0) => AluOp::Div,
        (alu::DIV, 1) => AluOp::Sdiv,
        (alu::OR, 0) => AluOp::Or,
        (alu::AND, 0) => AluOp::And,
        (alu::LSH, 0) => AluOp::Lsh,
        (alu::RSH, 0) => AluOp::Rsh,
        (alu::MOD, 0) => AluOp::Mod,
        (alu::MOD, 1) => AluOp::Smod,
        (alu::XOR, 0) => AluOp::Xor,
        (alu::MOV, 0) => AluOp::Mov,
        (alu::MOV, bits @ (8 | 16 | 32)) => {
            if !matches!(src, Operand::Reg(_)) || (width == Width::W32 && bits == 32) {
                return Err(bad_off());
            }
            AluOp::Movsx(match bits {
                8 => SxBits::B8,
                16 => SxBits::B16,
                _ => SxBits::B32,
            })
        }
        (alu::ARSH, 0) => AluOp::Arsh,
        (alu::DIV | alu::MOD | alu::MOV, _) => return Err(bad_off()),
        _ => {
            return Err(DecodeErrorKind::ReservedField {
                field: "off",
                value: r.off as i64,
            })
        }
    };
    Ok(Insn::Alu {
        width,
        op,
        dst,
        src,
    })
}

fn decode_jmp(r: RawInsn) -> Result<Insn, DecodeErrorKind> {
    let w64 = r.class() == class::JMP;
    let x = r.code & source::X != 0;
    let unknown = || DecodeErrorKind::UnknownOpcode(r.code);
    let cond = match r.code & 0xf0 {
        jmp::JA => {
            if x {
                return Err(unknown());
            }
            zero("dst", r.dst as i64)?;
            zero("src", r.src as i64)?;
            return if w64 {
                zero("imm", r.imm as i64)?;
                Ok(Insn::Ja { off: r.off })
            } else {
                zero("off", r.off as i64)?;
                Ok(Insn::Ja32 { imm: r.imm })
            };
        }
        jmp::CALL => {
            if !w64 {
                return Err(unknown());
            }
            if x {
                zero("src", r.src as i64)?;
                zero("off", r.off as i64)?;
                zero("imm", r.imm as i64)?;
                return Ok(Insn::Callx {
                    reg: reg("dst", r.dst)?,
                });
            }
            zero("dst", r.dst as i64)?;
            let target = match r.src {
                call_src::HELPER => {
                    zero("off", r.off as i64)?;
                    CallTarget::Helper(r.imm)
                }
                call_src::LOCAL => {
                    zero("off", r.off as i64)?;
                    CallTarget::Local(r.imm)
                }
                call_src::KFUNC => CallTarget::Kfunc {
                    btf_id: r.imm,
                    module: r.off,
                },
                v => {
                    return Err(DecodeErrorKind::BadField {
                        field: "call src",
                        value: v as i64,
                    })
                }
            };
            return Ok(Insn::Call(target));
        }
        jmp::EXIT => {
            if !w64 || x {
                return Err(unknown());
            }
            zero("dst", r.dst as i64)?;
            zero("src", r.src as i64)?;
            zero("off", r.off as i64)?;
            zero("imm", r.imm as i64)?;
            return Ok(Insn::Exit);
        }
        jmp::JEQ => JmpCond::Eq,
        jmp::JGT => JmpCond::Gt,
        jmp::JGE => JmpCond::Ge,
        jmp::JSET => JmpCond::Set,
        jmp::JNE => JmpCond::Ne,
        jmp::JSGT => JmpCond::Sgt,
        jmp::JSGE => JmpCond::Sge,
        jmp::JLT => JmpCond::Lt,
        jmp::JLE => JmpCond::Le,
        jmp::JSLT => JmpCond::Slt,
        jmp::JSLE => JmpCond::Sle,
        _ => return Err(unknown()),
    };
    Ok(Insn::Jmp {
        width: if w64 { Width::W64 } else { Width::W32 },
        cond,
        dst: reg("dst", r.dst)?,
        src: decode_operand(r)?,
        off: r.off,
    })
}

/// Decodes a whole program from bytes.
pub fn decode(bytes: &[u8], order: ByteOrder) -> Result<Vec<Insn>, DecodeError> {
    let len = bytes.len();
    if len % RawInsn::SIZE != 0 {
        return Err(DecodeError {
            index: len / RawInsn::SIZE,
            kind: DecodeErrorKind::TrailingBytes { len },
        });
    }
    // Slots are split out as they are read rather than collected first:
    // decoding is then one pass with one allocation.
    let count = len / RawInsn::SIZE;
    let slot = |i: usize| {
        let mut b = [0u8; RawInsn::SIZE];
        b.copy_from_slice(&bytes[i * RawInsn::SIZE..(i + 1) * RawInsn::SIZE]);
        RawInsn::from_bytes(b, order)
    };
    let mut out = Vec::with_capacity(count);
    let mut i = 0;
    while i < count {
        let first = slot(i);
        let insn = if first.code == LD_IMM64 && i + 1 < count {
            Insn::decode(&[first, slot(i + 1)], i)?
        } else {
            Insn::decode(&[first], i)?
        };
        i += insn.slots();
        out.push(insn);
    }
    Ok(out)
}

/// Decodes a whole program from slots.
pub fn decode_slots(slots: &[RawInsn]) -> Result<Vec<Insn>, DecodeError> {
    let mut out = Vec::with_capacity(slots.len());
    let mut i = 0;
    while i < slots.len() {
        let insn = Insn::decode(&slots[i..], i)?;
        i += insn.slots();
        out.push(insn);
    }
    Ok(out)
}

/// Encodes a program into slots.
pub fn encode_slots(insns: &[Insn]) -> Vec<RawInsn> {
    let mut out = Vec::with_capacity(insns.len() + 1);
    for insn in insns {
        let (a, b) = insn.encode();
        out.push(a);
        out.extend(b);
    }
    out
}

/// Encodes a program into bytes.
pub fn encode(insns: &[Insn], order: ByteOrder) -> Vec<u8> {
    encode_slots(insns)
        .into_iter()
        .flat_map(|r| r.to_bytes(order))
        .collect()
}
