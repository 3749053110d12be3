//! The 8-byte wire format: [`RawInsn`] slots and their byte order.

/// Byte order of encoded instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// Little-endian: `dst` in the low nibble of the register byte.
    #[default]
    Little,
    /// Big-endian: `dst` in the high nibble of the register byte.
    Big,
}

/// One 8-byte instruction slot with its fields split out but not interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RawInsn {
    /// Opcode.
    pub code: u8,
    /// Destination register field (4 bits).
    pub dst: u8,
    /// Source register field (4 bits).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl RawInsn {
    /// Size of one slot in bytes.
    pub const SIZE: usize = 8;

    /// Builds a slot from its fields.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
        RawInsn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Splits 8 bytes into fields.
    pub const fn from_bytes(b: [u8; 8], order: ByteOrder) -> RawInsn {
        match order {
            ByteOrder::Little => RawInsn {
                code: b[0],
                dst: b[1] & 0x0f,
                src: b[1] >> 4,
                off: i16::from_le_bytes([b[2], b[3]]),
                imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            },
            ByteOrder::Big => RawInsn {
                code: b[0],
                dst: b[1] >> 4,
                src: b[1] & 0x0f,
                off: i16::from_be_bytes([b[2], b[3]]),
                imm: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            },
        }
    }

    /// Joins the fields into 8 bytes. Register fields are truncated to 4 bits.
    pub const fn to_bytes(self, order: ByteOrder) -> [u8; 8] {
        let (regs, off, imm) = match order {
            ByteOrder::Little => (
                (self.dst & 0x0f) | (self.src << 4),
                self.off.to_le_bytes(),
                self.imm.to_le_bytes(),
            ),
            ByteOrder::Big => (
                (self.dst << 4) | (self.src & 0x0f),
                self.off.to_be_bytes(),
                self.imm.to_be_bytes(),
            ),
        };
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// The instruction class (low three bits of the opcode).
    pub const fn class(self) -> u8 {
        self.code & 0x07
    }
}

/// Splits a byte string into slots. Fails if its length is not a multiple of 8.
pub fn slots(bytes: &[u8], order: ByteOrder) -> Result<alloc::vec::Vec<RawInsn>, usize> {
    if bytes.len() % RawInsn::SIZE != 0 {
        return Err(bytes.len());
    }
    Ok(bytes
        .chunks_exact(RawInsn::SIZE)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            RawInsn::from_bytes(b, order)
        })
        .collect())
}
