//! The eBPF and classic BPF instruction sets: a typed instruction model,
//! lossless encoding and decoding of the wire format, an assembler and a
//! disassembler.
//!
//! The model covers all of RFC 9669. [`Insn`] is the typed form, [`RawInsn`]
//! an 8-byte slot with its fields split out; [`decode`] and [`encode`] convert
//! whole programs between bytes and instructions, and every malformed input is
//! a [`DecodeError`] naming the slot index and what is wrong.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod codec;
mod insn;
pub mod opcode;
mod raw;

pub use codec::{decode, decode_slots, encode, encode_slots, DecodeError, DecodeErrorKind};
pub use insn::{
    AluOp, AtomicOp, CallTarget, Endian, Imm64, Insn, JmpCond, MemSize, Operand, Reg, SwapBits,
    SxBits, Width,
};
pub use raw::{slots, ByteOrder, RawInsn};
