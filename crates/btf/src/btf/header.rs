//! The fixed BTF header: magic (which gives the byte order), version,
//! flags and the bounds of the type and string sections.

use super::{hdr, BTF_HEADER_LEN};
use crate::endian::Endian;
use crate::BtfError;

pub(super) struct Header {
    pub(super) endian: Endian,
    pub(super) type_start: usize,
    pub(super) type_end: usize,
    pub(super) str_start: usize,
    pub(super) str_len: usize,
}

impl Header {
    pub(super) fn parse(d: &[u8]) -> Result<Header, BtfError> {
        let endian = match d.get(..2) {
            Some([0x9f, 0xeb]) => Endian::Little,
            Some([0xeb, 0x9f]) => Endian::Big,
            Some(_) => return Err(hdr("bad magic")),
            None => return Err(hdr("truncated")),
        };
        if d.len() < BTF_HEADER_LEN {
            return Err(hdr("truncated"));
        }
        if d[2] != 1 {
            return Err(hdr(format!("unsupported version {}", d[2])));
        }
        if d[3] != 0 {
            return Err(hdr(format!("unsupported flags {:#x}", d[3])));
        }
        let word = |at| endian.read_u32(d, at).unwrap_or(0) as usize;
        let hdr_len = word(4);
        if hdr_len < BTF_HEADER_LEN || hdr_len > d.len() {
            return Err(hdr(format!("header length {hdr_len}")));
        }
        // A longer header from a newer producer is fine if the extra bytes are zero.
        if d[BTF_HEADER_LEN..hdr_len].iter().any(|&b| b != 0) {
            return Err(hdr("unknown non-zero header fields"));
        }
        let (type_off, type_len, str_off, str_len) = (word(8), word(12), word(16), word(20));
        let body = d.len() - hdr_len;
        if type_off.checked_add(type_len).is_none_or(|e| e > body) {
            return Err(hdr(format!(
                "type section {type_off}+{type_len} exceeds the {body}-byte body"
            )));
        }
        if str_off.checked_add(str_len).is_none_or(|e| e > body) {
            return Err(hdr(format!(
                "string section {str_off}+{str_len} exceeds the {body}-byte body"
            )));
        }
        if type_off % 4 != 0 {
            return Err(hdr("type section is not 4-byte aligned"));
        }
        if type_off < str_off + str_len && str_off < type_off + type_len {
            return Err(hdr("type and string sections overlap"));
        }
        if str_len > MAX_STR_LEN {
            return Err(hdr("string section larger than the kernel's limit"));
        }
        Ok(Header {
            endian,
            type_start: hdr_len + type_off,
            type_end: hdr_len + type_off + type_len,
            str_start: hdr_len + str_off,
            str_len,
        })
    }
}

/// `BTF_MAX_NAME_OFFSET`: string offsets are 32-bit but the kernel caps the table.
const MAX_STR_LEN: usize = 0x7fff_ffff;
