//! `.BTF.ext`: per-section function info, line info and CO-RE relocation records.
//!
//! The records are small and consumers walk them all, so they are decoded
//! into plain vectors once. Names (section names, file names, source lines,
//! access strings) are offsets into the string table of the accompanying
//! `.BTF`; the `*_name`/`*_text` methods resolve them against a [`Btf`].

use crate::btf::BTF_MAGIC;
use crate::endian::Endian;
use crate::{Btf, BtfError, TypeId};

/// Length of the `.BTF.ext` header before CO-RE relocations were added.
const EXT_HEADER_MIN: usize = 24;
/// Length of the header with the `core_relo_off`/`core_relo_len` fields.
const EXT_HEADER_CORE: usize = 32;

/// Kind of a CO-RE relocation (`enum bpf_core_relo_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoreReloKind {
    /// Byte offset of a field.
    FieldByteOffset = 0,
    /// Byte size of a field.
    FieldByteSize = 1,
    /// Whether a field exists in the target.
    FieldExists = 2,
    /// Whether a field is signed.
    FieldSigned = 3,
    /// Left shift to extract a bitfield from a u64 load.
    FieldLShiftU64 = 4,
    /// Right shift to extract a bitfield from a u64 load.
    FieldRShiftU64 = 5,
    /// Type id in the local BTF.
    TypeIdLocal = 6,
    /// Type id in the target BTF.
    TypeIdTarget = 7,
    /// Whether a type exists in the target.
    TypeExists = 8,
    /// Size of a type in the target.
    TypeSize = 9,
    /// Whether an enumerator exists in the target.
    EnumvalExists = 10,
    /// Value of an enumerator in the target.
    EnumvalValue = 11,
    /// Whether a type matches a target type (stricter than exists).
    TypeMatches = 12,
}

impl CoreReloKind {
    /// Decodes the on-disk value.
    pub const fn from_u32(n: u32) -> Option<CoreReloKind> {
        use CoreReloKind::*;
        Some(match n {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLShiftU64,
            5 => FieldRShiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's name for the kind (`byte_off`, `type_exists`, ...).
    pub const fn as_str(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLShiftU64 => "lshift_u64",
            FieldRShiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    /// Relocations about a field reached through an access string.
    pub const fn is_field_based(self) -> bool {
        (self as u32) <= 5
    }

    /// Relocations about a type as a whole.
    pub const fn is_type_based(self) -> bool {
        matches!(self as u32, 6..=9 | 12)
    }

    /// Relocations about an enumerator.
    pub const fn is_enumval_based(self) -> bool {
        matches!(self as u32, 10 | 11)
    }
}

/// A `bpf_func_info` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncInfo {
    /// Byte offset of the function's first instruction in its section.
    pub insn_off: u32,
    /// The `FUNC` type.
    pub type_id: TypeId,
}

/// A `bpf_line_info` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineInfo {
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    /// String table offset of the source file name.
    pub file_name_off: u32,
    /// String table offset of the source line text.
    pub line_off: u32,
    /// Line number (upper 22 bits of `line_col`).
    pub line: u32,
    /// Column (lower 10 bits of `line_col`).
    pub col: u32,
}

impl LineInfo {
    /// The source file name.
    pub fn file_name<'b>(&self, btf: &'b Btf) -> Result<&'b str, BtfError> {
        btf.str_at(self.file_name_off)
    }

    /// The text of the source line.
    pub fn line_text<'b>(&self, btf: &'b Btf) -> Result<&'b str, BtfError> {
        btf.str_at(self.line_off)
    }
}

/// A `bpf_core_relo` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoreRelo {
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    /// The local root type.
    pub type_id: TypeId,
    /// String table offset of the access string (`"0:1:2"`).
    pub access_str_off: u32,
    /// What to compute.
    pub kind: CoreReloKind,
}

impl CoreRelo {
    /// The access string.
    pub fn access_str<'b>(&self, btf: &'b Btf) -> Result<&'b str, BtfError> {
        btf.str_at(self.access_str_off)
    }
}

/// The records of one ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSection<T> {
    /// String table offset of the ELF section name.
    pub sec_name_off: u32,
    /// Records in file order.
    pub records: Vec<T>,
}

impl<T> ExtSection<T> {
    /// The ELF section name.
    pub fn sec_name<'b>(&self, btf: &'b Btf) -> Result<&'b str, BtfError> {
        btf.str_at(self.sec_name_off)
    }
}

/// A parsed `.BTF.ext` blob.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BtfExt {
    /// Byte order of the blob.
    pub endian: Endian,
    /// Function info, per section.
    pub func_info: Vec<ExtSection<FuncInfo>>,
    /// Line info, per section.
    pub line_info: Vec<ExtSection<LineInfo>>,
    /// CO-RE relocations, per section.
    pub core_relos: Vec<ExtSection<CoreRelo>>,
    /// Record size of func info as written (at least 8).
    pub func_info_rec_size: u32,
    /// Record size of line info as written (at least 16).
    pub line_info_rec_size: u32,
    /// Record size of CO-RE relocations as written (at least 16).
    pub core_relo_rec_size: u32,
}

impl BtfExt {
    /// Parses a `.BTF.ext` blob of either byte order.
    pub fn parse(bytes: &[u8]) -> Result<BtfExt, BtfError> {
        let endian = match bytes.get(..2) {
            Some(m) if m == BTF_MAGIC.to_le_bytes() => Endian::Little,
            Some(m) if m == BTF_MAGIC.to_be_bytes() => Endian::Big,
            _ => return Err(ext_err(0, "bad magic")),
        };
        if bytes.len() < EXT_HEADER_MIN {
            return Err(ext_err(0, "header truncated"));
        }
        if bytes[2] != 1 {
            return Err(ext_err(2, format!("unsupported version {}", bytes[2])));
        }
        if bytes[3] != 0 {
            return Err(ext_err(3, format!("unsupported flags {:#x}", bytes[3])));
        }
        let word = |at: usize| endian.read_u32(bytes, at).unwrap_or(0);
        let hdr_len = word(4) as usize;
        if hdr_len < EXT_HEADER_MIN || hdr_len > bytes.len() {
            return Err(ext_err(4, format!("header length {hdr_len}")));
        }
        let reader = SectionReader {
            bytes,
            endian,
            hdr_len,
        };
        let mut ext = BtfExt {
            endian,
            ..BtfExt::default()
        };
        (ext.func_info, ext.func_info_rec_size) =
            reader.read(word(8), word(12), 8, |r, at| FuncInfo {
                insn_off: r(at),
                type_id: r(at + 4),
            })?;
        (ext.line_info, ext.line_info_rec_size) =
            reader.read(word(16), word(20), 16, |r, at| {
                let line_col = r(at + 12);
                LineInfo {
                    insn_off: r(at),
                    file_name_off: r(at + 4),
                    line_off: r(at + 8),
                    line: line_col >> 10,
                    col: line_col & 0x3ff,
                }
            })?;
        if hdr_len >= EXT_HEADER_CORE {
            let (sections, rec_size) = reader.read(word(24), word(28), 16, |r, at| {
                (r(at), r(at + 4), r(at + 8), r(at + 12), at)
            })?;
            ext.core_relo_rec_size = rec_size;
            for s in sections {
                let mut records = Vec::with_capacity(s.records.len());
                for (insn_off, type_id, access_str_off, kind, at) in s.records {
                    let kind = CoreReloKind::from_u32(kind).ok_or_else(|| {
                        ext_err(at + 12, format!("unknown CO-RE relocation kind {kind}"))
                    })?;
                    records.push(CoreRelo {
                        insn_off,
                        type_id,
                        access_str_off,
                        kind,
                    });
                }
                ext.core_relos.push(ExtSection {
                    sec_name_off: s.sec_name_off,
                    records,
                });
            }
        }
        Ok(ext)
    }

    /// Function info of the ELF section named `name`.
    pub fn func_info_for<'s>(&'s self, btf: &Btf, name: &str) -> Option<&'s [FuncInfo]> {
        find_section(&self.func_info, btf, name)
    }

    /// Line info of the ELF section named `name`.
    pub fn line_info_for<'s>(&'s self, btf: &Btf, name: &str) -> Option<&'s [LineInfo]> {
        find_section(&self.line_info, btf, name)
    }

    /// CO-RE relocations of the ELF section named `name`.
    pub fn core_relos_for<'s>(&'s self, btf: &Btf, name: &str) -> Option<&'s [CoreRelo]> {
        find_section(&self.core_relos, btf, name)
    }
}

fn find_section<'s, T>(sections: &'s [ExtSection<T>], btf: &Btf, name: &str) -> Option<&'s [T]> {
    sections
        .iter()
        .find(|s| s.sec_name(btf).is_ok_and(|n| n == name))
        .map(|s| s.records.as_slice())
}

struct SectionReader<'a> {
    bytes: &'a [u8],
    endian: Endian,
    hdr_len: usize,
}

impl SectionReader<'_> {
    /// Reads one info section: a record size, then blocks of
    /// `{sec_name_off, num_info, records[num_info]}`.
    fn read<T>(
        &self,
        off: u32,
        len: u32,
        min_rec_size: u32,
        decode: impl Fn(&dyn Fn(usize) -> u32, usize) -> T,
    ) -> Result<(Vec<ExtSection<T>>, u32), BtfError> {
        if len == 0 {
            return Ok((Vec::new(), 0));
        }
        let start = self.hdr_len.checked_add(off as usize);
        let end = start.and_then(|s| s.checked_add(len as usize));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(ext_err(self.hdr_len, "section bounds overflow"));
        };
        if end > self.bytes.len() {
            return Err(ext_err(
                start,
                format!("section of {len} bytes runs past the end"),
            ));
        }
        if off % 4 != 0 {
            return Err(ext_err(start, "section is not 4-byte aligned"));
        }
        let data = &self.bytes[..end];
        let endian = self.endian;
        let r = |at: usize| endian.read_u32(data, at).unwrap_or(0);
        let read_checked = |at: usize, what: &str| {
            endian
                .read_u32(data, at)
                .ok_or_else(|| ext_err(at, format!("{what} truncated")))
        };
        let rec_size = read_checked(start, "record size")?;
        if rec_size < min_rec_size || rec_size % 4 != 0 {
            return Err(ext_err(start, format!("record size {rec_size}")));
        }
        let mut sections = Vec::new();
        let mut pos = start + 4;
        while pos < end {
            let sec_name_off = read_checked(pos, "section name")?;
            let num = read_checked(pos + 4, "record count")?;
            if num == 0 {
                return Err(ext_err(pos + 4, "section with no records"));
            }
            let body = (num as usize).checked_mul(rec_size as usize);
            let body_end = body.and_then(|b| b.checked_add(pos + 8));
            if body_end.is_none_or(|e| e > end) {
                return Err(ext_err(
                    pos,
                    format!("{num} records of {rec_size} bytes run past the section"),
                ));
            }
            let mut records = Vec::with_capacity(num as usize);
            let mut at = pos + 8;
            for _ in 0..num {
                records.push(decode(&r, at));
                at += rec_size as usize;
            }
            sections.push(ExtSection {
                sec_name_off,
                records,
            });
            pos = at;
        }
        Ok((sections, rec_size))
    }
}

fn ext_err(offset: usize, reason: impl Into<String>) -> BtfError {
    BtfError::InvalidExt {
        offset,
        reason: reason.into(),
    }
}
