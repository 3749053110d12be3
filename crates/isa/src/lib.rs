//! The eBPF and classic BPF instruction sets: a typed instruction model,
//! lossless encoding and decoding of the wire format, an assembler and a
//! disassembler.
//!
//! The model covers all of RFC 9669. [`Insn`] is the typed form, [`RawInsn`]
//! an 8-byte slot with its fields split out; [`decode`] and [`encode`] convert
//! whole programs between bytes and instructions, and every malformed input is
//! a [`DecodeError`] naming the slot index and what is wrong.
//!
//! [`assemble`] reads two assembly syntaxes ([`Syntax::Ubpf`], as uBPF and
//! bpf_conformance write it, and [`Syntax::Llvm`], as `llvm-objdump -d` and
//! bpftool print it), and [`Insn::display`] / [`disassemble`] print them, so
//! that `assemble(disassemble(x)) == x` in either. [`cbpf`] is classic BPF:
//! its model, codec and the `tcpdump -d` listing.
//!
//! ```
//! use bpfkit_isa::{assemble, disassemble, encode, decode, ByteOrder, Syntax};
//! let prog = assemble("r0 = *(u32 *)(r1 + 4)\nif r0 s> 5 goto +1\nr0 = 0\nexit", Syntax::Llvm)?;
//! let bytes = encode(&prog, ByteOrder::Little);
//! assert_eq!(decode(&bytes, ByteOrder::Little)?, prog);
//! assert_eq!(
//!     disassemble(&prog, Syntax::Ubpf),
//!     "ldxw %r0, [%r1+4]\njsgt %r0, 5, +1\nmov %r0, 0\nexit\n"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod asm;
pub mod cbpf;
mod codec;
pub mod disasm;
mod insn;
pub mod opcode;
mod raw;

pub use asm::{assemble, AsmError, AsmErrorKind, Syntax};
pub use codec::{decode, decode_slots, encode, encode_slots, DecodeError, DecodeErrorKind};
pub use disasm::{disassemble, InsnDisplay};
pub use insn::{
    AluOp, AtomicOp, CallTarget, Endian, Imm64, Insn, JmpCond, MemSize, Operand, Reg, SwapBits,
    SxBits, Width,
};
pub use raw::{slots, ByteOrder, RawInsn};
