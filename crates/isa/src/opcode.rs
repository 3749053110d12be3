//! Opcode field constants of the eBPF wire format (RFC 9669, section 3).
//!
//! The 8-bit opcode is split three ways depending on the class: arithmetic and
//! jump classes use `op | source | class`, load and store classes use
//! `mode | size | class`.

/// Instruction class: the low three bits of the opcode.
pub mod class {
    /// Non-standard load (LD_IMM64, legacy packet loads).
    pub const LD: u8 = 0x00;
    /// Load into register.
    pub const LDX: u8 = 0x01;
    /// Store from immediate.
    pub const ST: u8 = 0x02;
    /// Store from register (and atomics).
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps, calls and exit.
    pub const JMP: u8 = 0x05;
    /// 32-bit jumps.
    pub const JMP32: u8 = 0x06;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// Source bit of arithmetic and jump opcodes.
pub mod source {
    /// Use the 32-bit immediate as the source operand.
    pub const K: u8 = 0x00;
    /// Use the source register as the source operand.
    pub const X: u8 = 0x08;
}

/// Arithmetic operation codes (high four bits).
pub mod alu {
    #![allow(missing_docs)]
    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MUL: u8 = 0x20;
    pub const DIV: u8 = 0x30;
    pub const OR: u8 = 0x40;
    pub const AND: u8 = 0x50;
    pub const LSH: u8 = 0x60;
    pub const RSH: u8 = 0x70;
    pub const NEG: u8 = 0x80;
    pub const MOD: u8 = 0x90;
    pub const XOR: u8 = 0xa0;
    pub const MOV: u8 = 0xb0;
    pub const ARSH: u8 = 0xc0;
    pub const END: u8 = 0xd0;
}

/// Jump operation codes (high four bits).
pub mod jmp {
    #![allow(missing_docs)]
    pub const JA: u8 = 0x00;
    pub const JEQ: u8 = 0x10;
    pub const JGT: u8 = 0x20;
    pub const JGE: u8 = 0x30;
    pub const JSET: u8 = 0x40;
    pub const JNE: u8 = 0x50;
    pub const JSGT: u8 = 0x60;
    pub const JSGE: u8 = 0x70;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
    pub const JLT: u8 = 0xa0;
    pub const JLE: u8 = 0xb0;
    pub const JSLT: u8 = 0xc0;
    pub const JSLE: u8 = 0xd0;
}

/// Size field of load and store opcodes.
pub mod size {
    #![allow(missing_docs)]
    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;
}

/// Mode field of load and store opcodes.
pub mod mode {
    #![allow(missing_docs)]
    pub const IMM: u8 = 0x00;
    pub const ABS: u8 = 0x20;
    pub const IND: u8 = 0x40;
    pub const MEM: u8 = 0x60;
    pub const MEMSX: u8 = 0x80;
    pub const ATOMIC: u8 = 0xc0;
}

/// Atomic operation codes, carried in the immediate of `STX | ATOMIC`.
pub mod atomic {
    #![allow(missing_docs)]
    pub const ADD: i32 = 0x00;
    pub const OR: i32 = 0x40;
    pub const AND: i32 = 0x50;
    pub const XOR: i32 = 0xa0;
    /// Or-ed into ADD/OR/AND/XOR: also return the old value in the source register.
    pub const FETCH: i32 = 0x01;
    pub const XCHG: i32 = 0xe0 | FETCH;
    pub const CMPXCHG: i32 = 0xf0 | FETCH;
}

/// `src` values of `CALL` instructions.
pub mod call_src {
    /// Call a helper by its numeric id.
    pub const HELPER: u8 = 0;
    /// bpf-to-bpf call; imm is the offset in slots from the next instruction.
    pub const LOCAL: u8 = 1;
    /// Call a kernel function by BTF id.
    pub const KFUNC: u8 = 2;
}

/// `src` values of `LD_IMM64` (the kernel's `BPF_PSEUDO_*`).
pub mod pseudo {
    #![allow(missing_docs)]
    pub const IMM: u8 = 0;
    pub const MAP_FD: u8 = 1;
    pub const MAP_VALUE: u8 = 2;
    pub const BTF_ID: u8 = 3;
    pub const FUNC: u8 = 4;
    pub const MAP_IDX: u8 = 5;
    pub const MAP_IDX_VALUE: u8 = 6;
}

/// Opcode of `LD_IMM64` (`LD | DW | IMM`).
pub const LD_IMM64: u8 = class::LD | size::DW | mode::IMM;
