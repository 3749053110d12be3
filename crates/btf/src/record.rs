//! Decoding raw event records (ring buffer or perf buffer samples) field by
//! field, using the BTF description of the C struct that produced them.
//!
//! A record shorter than its type is decoded as far as it goes: BPF tools
//! send only the used part of a trailing variable-length array (libbpf-tools'
//! execsnoop sends 436 of its 7,720-byte `struct event` for a short command
//! line). A field the record does not reach is left out; a `char` array cut
//! short is read up to the record's end.

use serde_json::{Map, Value};

use crate::{Btf, BtfError, Kind, TypeId};

/// How deep nested types may go before decoding gives up (guards against loops).
const MAX_DEPTH: usize = 32;

/// A record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The BTF has no struct, union or typedef of that name.
    #[error("no struct, union or typedef named `{0}` in the object's BTF")]
    UnknownType(String),
    /// The BTF itself is inconsistent.
    #[error(transparent)]
    Btf(#[from] BtfError),
    /// The record is empty.
    #[error("an empty record cannot be decoded as `{0}`")]
    Empty(String),
    /// Types nest deeper than decoding allows.
    #[error("type {0} nests too deeply")]
    TooDeep(TypeId),
}

/// Decodes records of one BTF type.
pub struct RecordDecoder<'a> {
    btf: &'a Btf,
    type_id: TypeId,
    name: String,
    size: usize,
}

impl<'a> RecordDecoder<'a> {
    /// A decoder for the struct, union or typedef called `name`.
    pub fn new(btf: &'a Btf, name: &str) -> Result<Self, RecordError> {
        let type_id = [Kind::Struct, Kind::Union, Kind::Typedef]
            .into_iter()
            .find_map(|k| btf.find_by_name_kind(name, k))
            .ok_or_else(|| RecordError::UnknownType(name.to_string()))?;
        let size = btf.type_size(type_id)? as usize;
        Ok(RecordDecoder {
            btf,
            type_id,
            name: name.to_string(),
            size,
        })
    }

    /// Size of the type in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Decodes one record into a JSON object keyed by field name.
    /// Trailing bytes beyond the type's size are ignored; a shorter record
    /// is decoded as far as it reaches (see the module docs).
    pub fn decode(&self, record: &[u8]) -> Result<Value, RecordError> {
        if record.is_empty() {
            return Err(RecordError::Empty(self.name.clone()));
        }
        let len = record.len().min(self.size);
        decode_value(self.btf, self.type_id, &record[..len], 0)
    }
}

fn read_uint(bytes: &[u8]) -> u128 {
    let mut buf = [0u8; 16];
    let n = bytes.len().min(16);
    buf[..n].copy_from_slice(&bytes[..n]);
    u128::from_le_bytes(buf)
}

fn int_value(raw: u128, bits: u32, signed: bool) -> Value {
    if signed && bits > 0 && bits <= 64 {
        let shift = 128 - bits;
        let v = ((raw << shift) as i128) >> shift;
        Value::from(v as i64)
    } else if raw <= u64::MAX as u128 {
        Value::from(raw as u64)
    } else {
        Value::from(raw.to_string())
    }
}

/// A C string from a `char` array: up to the first NUL, lossily as UTF-8.
fn c_string(bytes: &[u8]) -> Value {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Value::from(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

fn decode_value(btf: &Btf, id: TypeId, bytes: &[u8], depth: usize) -> Result<Value, RecordError> {
    if depth > MAX_DEPTH {
        return Err(RecordError::TooDeep(id));
    }
    let t = btf.resolve(id)?;
    Ok(match t.kind() {
        Kind::Int => {
            let int = t.int().ok_or(BtfError::NoSuchType { id })?;
            let raw = read_uint(bytes);
            if int.encoding.is_bool() {
                Value::from(raw != 0)
            } else {
                int_value(raw, int.bits as u32, int.encoding.is_signed())
            }
        }
        Kind::Ptr => Value::from(format!("{:#x}", read_uint(bytes) as u64)),
        Kind::Float => match bytes.len() {
            4 => Value::from(f32::from_le_bytes(
                bytes[..4].try_into().unwrap_or_default(),
            )),
            8 => Value::from(f64::from_le_bytes(
                bytes[..8].try_into().unwrap_or_default(),
            )),
            _ => Value::Null,
        },
        Kind::Enum | Kind::Enum64 => {
            let size = bytes.len() as u32 * 8;
            let raw = read_uint(bytes) as u64;
            let mask = if size >= 64 {
                u64::MAX
            } else {
                (1u64 << size) - 1
            };
            match t.enum_values().find(|v| v.value & mask == raw) {
                Some(v) => Value::from(v.name),
                None => int_value(raw as u128, size, t.is_signed_enum()),
            }
        }
        Kind::Array => {
            let a = t.array().ok_or(BtfError::NoSuchType { id })?;
            let elem = btf.resolve(a.elem_type)?;
            let is_char = elem
                .int()
                .is_some_and(|i| i.bits == 8 && (i.encoding.is_char() || elem.name() == "char"));
            if is_char {
                c_string(bytes)
            } else {
                let size = btf.type_size(a.elem_type)? as usize;
                let items = (0..a.nelems as usize)
                    .filter_map(|i| bytes.get(i * size..(i + 1) * size))
                    .map(|b| decode_value(btf, a.elem_type, b, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Array(items)
            }
        }
        Kind::Struct | Kind::Union => {
            let mut obj = Map::new();
            for (i, m) in t.members().enumerate() {
                let name = if m.name.is_empty() {
                    format!("_anon{i}")
                } else {
                    m.name.to_string()
                };
                let value = if m.bitfield_size > 0 {
                    // Read from the byte the field starts in, so that a
                    // bitfield anywhere in a large struct fits the word.
                    let start = (m.bit_offset / 8) as usize;
                    let shift = m.bit_offset % 8;
                    let bits = m.bitfield_size.min(64);
                    let end = start + (shift + bits).div_ceil(8) as usize;
                    let Some(field) = bytes.get(start..end) else {
                        continue; // beyond a short record
                    };
                    let raw = (read_uint(field) >> shift) & ((1u128 << bits) - 1);
                    let signed = btf
                        .resolve(m.type_id)?
                        .int()
                        .is_some_and(|i| i.encoding.is_signed());
                    int_value(raw, bits, signed)
                } else {
                    let start = (m.bit_offset / 8) as usize;
                    let size = btf.type_size(m.type_id)? as usize;
                    if start >= bytes.len() {
                        continue; // beyond a short record
                    }
                    // A field cut short by the record's end: only arrays
                    // (strings, trailing variable-length data) decode in part.
                    let end = (start + size).min(bytes.len());
                    if end < start + size && btf.resolve(m.type_id)?.kind() != Kind::Array {
                        continue;
                    }
                    decode_value(btf, m.type_id, &bytes[start..end], depth + 1)?
                };
                // Anonymous struct/union members are flattened, as C reads them.
                match (m.name.is_empty(), value) {
                    (true, Value::Object(inner)) => obj.extend(inner),
                    (_, v) => {
                        obj.insert(name, v);
                    }
                }
            }
            Value::Object(obj)
        }
        _ => Value::Null,
    })
}

/// Formats a decoded record as `name=value` pairs on one line, strings quoted.
pub fn format_text(value: &Value) -> String {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", format_text(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(format_text).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_ints_sign_extend_from_their_width() {
        assert_eq!(int_value(0xff, 8, true), Value::from(-1i64));
        assert_eq!(int_value(0xff, 8, false), Value::from(255u64));
        assert_eq!(
            int_value(0x7fff_ffff, 32, true),
            Value::from(i32::MAX as i64)
        );
    }

    /// `struct { u64 pad[3]; u32 lo : 3, hi : 5; char name[8]; }`: a
    /// bitfield past byte 16, and a record that ends inside `name`.
    fn sample() -> Btf {
        use crate::types::IntEncoding;
        use crate::{BtfBuilder, MemberDef, TypeData, TypeDef};
        let int = |size: u32, encoding: u8| TypeData::Int {
            size,
            encoding: IntEncoding(encoding),
            offset: 0,
            bits: (size * 8) as u8,
        };
        let member = |name: &str, type_id, bit_offset, bitfield_size| MemberDef {
            name: name.into(),
            type_id,
            bit_offset,
            bitfield_size,
        };
        let mut b = BtfBuilder::new();
        let u64_t = b.add(TypeDef::new("u64", int(8, 0)));
        let u32_t = b.add(TypeDef::new("u32", int(4, 0)));
        let char_t = b.add(TypeDef::new("char", int(1, IntEncoding::CHAR)));
        let array = |elem_type, nelems| TypeData::Array {
            elem_type,
            index_type: u32_t,
            nelems,
        };
        let pad = b.add(TypeDef::new("", array(u64_t, 3)));
        let name = b.add(TypeDef::new("", array(char_t, 8)));
        b.add(TypeDef::new(
            "rec",
            TypeData::Composite {
                is_union: false,
                size: 36,
                members: vec![
                    member("pad", pad, 0, 0),
                    member("lo", u32_t, 192, 3),
                    member("hi", u32_t, 195, 5),
                    member("name", name, 224, 0),
                ],
            },
        ));
        Btf::from_vec(b.encode(crate::Endian::Little).unwrap()).unwrap()
    }

    #[test]
    fn bitfields_past_byte_16_and_short_records_decode() {
        let btf = sample();
        let d = RecordDecoder::new(&btf, "rec").unwrap();
        let mut rec = vec![0u8; 36];
        rec[24] = 0b1010_1101; // lo = 0b101, hi = 0b10101
        rec[28..32].copy_from_slice(b"bash");
        let v = d.decode(&rec).unwrap();
        assert_eq!(v["lo"], 5);
        assert_eq!(v["hi"], 21);
        assert_eq!(v["name"], "bash");
        // Cut inside `name`: the string up to the end; cut before it: absent.
        let v = d.decode(&rec[..30]).unwrap();
        assert_eq!(v["name"], "ba");
        let v = d.decode(&rec[..25]).unwrap();
        assert_eq!(v["hi"], 21);
        assert!(v.get("name").is_none(), "{v}");
        assert!(d.decode(&[]).is_err());
    }

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"bash\0\0junk"), Value::from("bash"));
        assert_eq!(c_string(b"full"), Value::from("full"));
    }
}
