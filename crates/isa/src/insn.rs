//! The typed instruction model.
//!
//! [`Insn`] can only express well-formed instructions: every reserved field of
//! the wire format is implied, so `decode(encode(x)) == x` holds for every value
//! and `encode(decode(bytes)) == bytes` for every byte string that decodes.

use core::fmt;

/// One of the eleven eBPF registers, `r0` to `r10`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reg(u8);

impl Reg {
    /// Return value and scratch.
    pub const R0: Reg = Reg(0);
    /// First argument.
    pub const R1: Reg = Reg(1);
    /// Second argument.
    pub const R2: Reg = Reg(2);
    /// Third argument.
    pub const R3: Reg = Reg(3);
    /// Fourth argument.
    pub const R4: Reg = Reg(4);
    /// Fifth argument.
    pub const R5: Reg = Reg(5);
    /// Callee-saved.
    pub const R6: Reg = Reg(6);
    /// Callee-saved.
    pub const R7: Reg = Reg(7);
    /// Callee-saved.
    pub const R8: Reg = Reg(8);
    /// Callee-saved.
    pub const R9: Reg = Reg(9);
    /// Read-only frame pointer.
    pub const R10: Reg = Reg(10);
    /// Number of registers.
    pub const COUNT: usize = 11;

    /// The register numbered `n`, if `n <= 10`.
    pub const fn new(n: u8) -> Option<Reg> {
        if n <= 10 {
            Some(Reg(n))
        } else {
            None
        }
    }

    /// The register number, 0 to 10.
    pub const fn index(self) -> u8 {
        self.0
    }
}

impl fmt::Debug for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// The second operand of arithmetic and conditional jump instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The 32-bit immediate (sign-extended to 64 bits in 64-bit operations).
    Imm(i32),
    /// A source register.
    Reg(Reg),
}

/// Operand width of arithmetic and jump instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 32-bit: `ALU` and `JMP32` classes; results are zero-extended.
    W32,
    /// 64-bit: `ALU64` and `JMP` classes.
    W64,
}

/// Binary arithmetic operations. NEG and END have their own [`Insn`] variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// Unsigned `dst /= src`; division by zero gives 0.
    Div,
    /// Signed division (`off = 1`).
    Sdiv,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// `dst <<= src` (masked shift amount)
    Lsh,
    /// Logical `dst >>= src`
    Rsh,
    /// Unsigned `dst %= src`; modulo by zero leaves dst unchanged.
    Mod,
    /// Signed modulo (`off = 1`).
    Smod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// Sign-extending move from the low 8, 16 or 32 bits of a register (`off` = bits).
    Movsx(SxBits),
    /// Arithmetic `dst >>= src`
    Arsh,
}

/// Source width of a sign-extending move or load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SxBits {
    /// 8 bits.
    B8,
    /// 16 bits.
    B16,
    /// 32 bits.
    B32,
}

impl SxBits {
    /// The number of bits.
    pub const fn bits(self) -> u32 {
        match self {
            SxBits::B8 => 8,
            SxBits::B16 => 16,
            SxBits::B32 => 32,
        }
    }
}

/// Byte-swap flavour of `END` instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// `ALU | END | TO_LE`: convert to little-endian (`le16`, `le32`, `le64`).
    ToLe,
    /// `ALU | END | TO_BE`: convert to big-endian (`be16`, `be32`, `be64`).
    ToBe,
    /// `ALU64 | END`: unconditional swap (`bswap16`, `bswap32`, `bswap64`).
    Swap,
}

/// Width of a byte swap: 16, 32 or 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SwapBits {
    /// 16 bits.
    B16,
    /// 32 bits.
    B32,
    /// 64 bits.
    B64,
}

impl SwapBits {
    /// The number of bits.
    pub const fn bits(self) -> u32 {
        match self {
            SwapBits::B16 => 16,
            SwapBits::B32 => 32,
            SwapBits::B64 => 64,
        }
    }
}

/// Condition of a conditional jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpCond {
    /// `==`
    Eq,
    /// Unsigned `>`
    Gt,
    /// Unsigned `>=`
    Ge,
    /// `dst & src != 0`
    Set,
    /// `!=`
    Ne,
    /// Signed `>`
    Sgt,
    /// Signed `>=`
    Sge,
    /// Unsigned `<`
    Lt,
    /// Unsigned `<=`
    Le,
    /// Signed `<`
    Slt,
    /// Signed `<=`
    Sle,
}

/// Access size of loads, stores and atomics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemSize {
    /// 1 byte (`u8`).
    B,
    /// 2 bytes (`u16`).
    H,
    /// 4 bytes (`u32`).
    W,
    /// 8 bytes (`u64`).
    DW,
}

impl MemSize {
    /// The size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            MemSize::B => 1,
            MemSize::H => 2,
            MemSize::W => 4,
            MemSize::DW => 8,
        }
    }
}

/// Atomic read-modify-write operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// `*addr += src`, with `fetch`: `src` receives the old value.
    Add {
        /// Return the old value in the source register.
        fetch: bool,
    },
    /// `*addr |= src`
    Or {
        /// Return the old value in the source register.
        fetch: bool,
    },
    /// `*addr &= src`
    And {
        /// Return the old value in the source register.
        fetch: bool,
    },
    /// `*addr ^= src`
    Xor {
        /// Return the old value in the source register.
        fetch: bool,
    },
    /// Exchange `*addr` and `src`.
    Xchg,
    /// If `*addr == r0` then `*addr = src`; `r0` receives the old value.
    Cmpxchg,
}

/// Target of a `CALL` instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// A helper function by id (`src = 0`).
    Helper(i32),
    /// A bpf-to-bpf call (`src = 1`); the offset is in slots, relative to the next instruction.
    Local(i32),
    /// A kernel function by BTF id (`src = 2`); `module` is the index of the
    /// module BTF fd in the `fd_array` (0 for vmlinux), carried in `off`.
    Kfunc {
        /// BTF type id of the function.
        btf_id: i32,
        /// Index of the BTF object in `fd_array`, 0 for vmlinux.
        module: i16,
    },
}

/// The 64-bit immediate of `LD_IMM64`, by its `src` subtype (the kernel's `BPF_PSEUDO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Imm64 {
    /// `src = 0`: a plain 64-bit constant.
    Value(u64),
    /// `src = 1` (`BPF_PSEUDO_MAP_FD`): the address of the map with this fd.
    MapFd(i32),
    /// `src = 2` (`BPF_PSEUDO_MAP_VALUE`): an address inside the value of the map with this fd.
    MapValue {
        /// Map file descriptor.
        fd: i32,
        /// Byte offset into the map value.
        offset: u32,
    },
    /// `src = 3` (`BPF_PSEUDO_BTF_ID`): the address of a kernel variable by BTF id.
    BtfVar {
        /// BTF type id of the variable.
        btf_id: i32,
        /// fd of the module BTF object, 0 for vmlinux.
        btf_obj_fd: i32,
    },
    /// `src = 4` (`BPF_PSEUDO_FUNC`): the address of a BPF function; offset in slots
    /// relative to the next instruction.
    Func(i32),
    /// `src = 5` (`BPF_PSEUDO_MAP_IDX`): the address of the map at this index of `fd_array`.
    MapIdx(i32),
    /// `src = 6` (`BPF_PSEUDO_MAP_IDX_VALUE`): an address inside the value of a map by index.
    MapIdxValue {
        /// Index into `fd_array`.
        idx: i32,
        /// Byte offset into the map value.
        offset: u32,
    },
}

/// One eBPF instruction. `LdImm64` occupies two 8-byte slots, every other variant one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// Binary arithmetic: `dst = dst op src`.
    Alu {
        /// 32-bit (`ALU`) or 64-bit (`ALU64`).
        width: Width,
        /// The operation.
        op: AluOp,
        /// Destination register.
        dst: Reg,
        /// Source operand.
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        /// 32-bit (`ALU`) or 64-bit (`ALU64`).
        width: Width,
        /// Destination register.
        dst: Reg,
    },
    /// Byte order conversion of the low `bits` of `dst`.
    End {
        /// Conversion kind.
        kind: Endian,
        /// Width.
        bits: SwapBits,
        /// Destination register.
        dst: Reg,
    },
    /// Unconditional jump by a 16-bit offset (`JMP | JA`).
    Ja {
        /// Offset in slots, relative to the next instruction.
        off: i16,
    },
    /// Unconditional jump by a 32-bit offset (`JMP32 | JA`, `gotol`).
    Ja32 {
        /// Offset in slots, relative to the next instruction.
        imm: i32,
    },
    /// Conditional jump: `if dst cond src goto +off`.
    Jmp {
        /// 64-bit (`JMP`) or 32-bit (`JMP32`) comparison.
        width: Width,
        /// The condition.
        cond: JmpCond,
        /// Left operand.
        dst: Reg,
        /// Right operand.
        src: Operand,
        /// Offset in slots, relative to the next instruction.
        off: i16,
    },
    /// Function call.
    Call(CallTarget),
    /// Indirect call through a register (`JMP | CALL | X`); the register is carried in `dst`.
    Callx {
        /// Register holding the call target.
        reg: Reg,
    },
    /// Return from the current function with `r0`.
    Exit,
    /// Load a 64-bit immediate (two slots).
    LdImm64 {
        /// Destination register.
        dst: Reg,
        /// The immediate and its kind.
        imm: Imm64,
    },
    /// `dst = *(size *)(src + off)`, zero-extended.
    Load {
        /// Access size.
        size: MemSize,
        /// Destination register.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// `dst = *(s8/s16/s32 *)(src + off)`, sign-extended (`LDX | MEMSX`).
    LoadSx {
        /// Source width.
        bits: SxBits,
        /// Destination register.
        dst: Reg,
        /// Base address register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// `*(size *)(dst + off) = imm`.
    StoreImm {
        /// Access size.
        size: MemSize,
        /// Base address register.
        dst: Reg,
        /// Byte offset.
        off: i16,
        /// The value stored (truncated to `size`).
        imm: i32,
    },
    /// `*(size *)(dst + off) = src`.
    Store {
        /// Access size.
        size: MemSize,
        /// Base address register.
        dst: Reg,
        /// Value register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// Atomic read-modify-write at `dst + off` (`STX | ATOMIC`, sizes W and DW).
    Atomic {
        /// `true` for 64-bit, `false` for 32-bit.
        dw: bool,
        /// The operation.
        op: AtomicOp,
        /// Base address register.
        dst: Reg,
        /// Operand register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)(skb->data + imm))` (`LD | ABS`).
    LdAbs {
        /// Access size (B, H or W).
        size: MemSize,
        /// Packet offset.
        imm: i32,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)(skb->data + src + imm))` (`LD | IND`).
    LdInd {
        /// Access size (B, H or W).
        size: MemSize,
        /// Register added to the offset.
        src: Reg,
        /// Packet offset.
        imm: i32,
    },
}

impl Insn {
    /// The number of 8-byte slots this instruction occupies: 2 for `LdImm64`, else 1.
    pub const fn slots(&self) -> usize {
        match self {
            Insn::LdImm64 { .. } => 2,
            _ => 1,
        }
    }

    /// The jump or call offset of this instruction, in slots relative to the
    /// next instruction, if it has one that refers to another instruction.
    pub const fn branch_offset(&self) -> Option<i32> {
        match *self {
            Insn::Ja { off } | Insn::Jmp { off, .. } => Some(off as i32),
            Insn::Ja32 { imm } => Some(imm),
            Insn::Call(CallTarget::Local(imm)) => Some(imm),
            Insn::LdImm64 {
                imm: Imm64::Func(imm),
                ..
            } => Some(imm),
            _ => None,
        }
    }
}
