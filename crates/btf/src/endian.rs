//! Byte order of a BTF blob and the fixed-width reads built on it.

/// Byte order of a BTF or `.BTF.ext` blob, detected from its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Endian {
    /// Little-endian (x86, arm64, most targets).
    #[default]
    Little,
    /// Big-endian (s390x, `bpfeb`).
    Big,
}

impl Endian {
    /// The byte order of the machine running this code.
    pub const fn native() -> Endian {
        if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        }
    }

    /// Reads a `u16` at `off`, if in bounds.
    #[inline]
    pub fn read_u16(self, bytes: &[u8], off: usize) -> Option<u16> {
        let b: [u8; 2] = bytes.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        })
    }

    /// Reads a `u32` at `off`, if in bounds.
    #[inline]
    pub fn read_u32(self, bytes: &[u8], off: usize) -> Option<u32> {
        let b: [u8; 4] = bytes.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }

    /// Encodes a `u16`.
    #[inline]
    pub fn u16_bytes(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Encodes a `u32`.
    #[inline]
    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// Reads a `u32` from a slice already known to hold it (record bodies whose
/// length was checked at parse time); out-of-range reads yield 0 rather than
/// panic, which can only happen on a bug in this crate.
#[inline]
pub(crate) fn u32_in(endian: Endian, bytes: &[u8], off: usize) -> u32 {
    endian.read_u32(bytes, off).unwrap_or(0)
}
