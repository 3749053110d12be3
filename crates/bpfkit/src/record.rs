//! Decoding raw event records (ring buffer or perf buffer samples) field by
//! field, using the BTF description of the C struct that produced them.

use bpfkit_btf::{Btf, BtfError, Kind, TypeId};
use serde_json::{Map, Value};

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
    /// The record is shorter than the type.
    #[error("record has {got} bytes but `{name}` needs {need}")]
    TooShort {
        /// Type name.
        name: String,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
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
    /// Trailing bytes beyond the type's size are ignored.
    pub fn decode(&self, record: &[u8]) -> Result<Value, RecordError> {
        if record.len() < self.size {
            return Err(RecordError::TooShort {
                name: self.name.clone(),
                need: self.size,
                got: record.len(),
            });
        }
        decode_value(self.btf, self.type_id, &record[..self.size], 0)
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
                    let word = read_uint(bytes);
                    let raw = (word >> m.bit_offset) & ((1u128 << m.bitfield_size) - 1);
                    let signed = btf
                        .resolve(m.type_id)?
                        .int()
                        .is_some_and(|i| i.encoding.is_signed());
                    int_value(raw, m.bitfield_size, signed)
                } else {
                    let start = (m.bit_offset / 8) as usize;
                    let size = btf.type_size(m.type_id)? as usize;
                    match bytes.get(start..start + size) {
                        Some(b) => decode_value(btf, m.type_id, b, depth + 1)?,
                        None => Value::Null,
                    }
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

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"bash\0\0junk"), Value::from("bash"));
        assert_eq!(c_string(b"full"), Value::from("full"));
    }
}
