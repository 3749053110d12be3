//! BTF types as `#[repr(C)]` Rust types with the same layout, and
//! compile-time assertions that prove it.
//!
//! - Integers, floats and arrays map to their Rust equivalents; pointers to
//!   `u64` (BPF is 64-bit); `_Bool` to `u8` (not every byte is a `bool`),
//!   and `char` to `u8`.
//! - A struct becomes a `#[repr(C)]` struct with explicit padding fields, so
//!   that it has no implicit padding and derives `Pod`; `#[repr(C, packed)]`
//!   when a member sits where Rust's alignment would not put it.
//! - Bitfields share byte-array storage, read through generated getters.
//! - A union becomes its bytes, with a getter per member (a union is not
//!   `Pod` in general: not every member covers every byte).
//! - An enum becomes a type alias of its integer and one constant per value.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use bpfkit_btf::{Btf, Kind, TypeId};

use crate::GenError;

/// Rust keywords that C names may collide with.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// A C name as a Rust identifier.
pub(crate) fn ident(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s = format!("r#{s}");
    }
    if s == "r#self" || s == "r#Self" || s == "r#super" || s == "r#crate" {
        s = format!("{}_", &s[2..]);
    }
    s
}

/// Writes Rust definitions for BTF types, each named type once.
pub(crate) struct TypeWriter<'a> {
    btf: &'a Btf,
    /// Rust names given to BTF type ids (named and anonymous records, enums).
    names: HashMap<TypeId, String>,
    /// Rust names already defined (across every BTF this writer is used on).
    pub(crate) defined: BTreeSet<String>,
    pub(crate) out: String,
    /// Types still to define.
    queue: Vec<TypeId>,
    anon: usize,
}

impl<'a> TypeWriter<'a> {
    pub(crate) fn new(btf: &'a Btf, defined: BTreeSet<String>) -> Self {
        TypeWriter {
            btf,
            names: HashMap::new(),
            defined,
            out: String::new(),
            queue: Vec::new(),
            anon: 0,
        }
    }

    fn resolve(&self, id: TypeId) -> Result<bpfkit_btf::Type<'a>, GenError> {
        Ok(self.btf.type_by_id(id)?)
    }

    /// The Rust type for BTF type `id`, queueing the records and enums it
    /// names for definition. `hint` names an anonymous record.
    pub(crate) fn rust_type(&mut self, id: TypeId, hint: &str) -> Result<String, GenError> {
        let t = self.resolve(id)?;
        Ok(match t.kind() {
            Kind::Void => "u8".into(),
            Kind::Int => {
                let int = t
                    .int()
                    .ok_or_else(|| GenError::Type(format!("int {id} without data")))?;
                let bits = int.size * 8;
                // `char` is text: bytes, whatever its signedness (clang
                // marks it signed, not BTF_INT_CHAR).
                let text = int.encoding.is_char() || t.name() == "char";
                let signed = int.encoding.is_signed() && !int.encoding.is_bool() && !text;
                match (int.size, signed) {
                    (1 | 2 | 4 | 8 | 16, true) => format!("i{bits}"),
                    (1 | 2 | 4 | 8 | 16, false) => format!("u{bits}"),
                    (n, _) => format!("[u8; {n}]"),
                }
            }
            Kind::Float => match t.size() {
                Some(4) => "f32".into(),
                Some(8) => "f64".into(),
                other => format!("[u8; {}]", other.unwrap_or(0)),
            },
            Kind::Ptr => "u64".into(),
            Kind::Array => {
                let a = t
                    .array()
                    .ok_or_else(|| GenError::Type(format!("array {id} without data")))?;
                let elem = self.rust_type(a.elem_type, hint)?;
                format!("[{elem}; {}]", a.nelems)
            }
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                let inner = t.type_ref().unwrap_or(0);
                self.rust_type(inner, hint)?
            }
            Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 => self.record_name(id, hint)?,
            Kind::Fwd => "u8".into(),
            k => {
                return Err(GenError::Type(format!(
                    "type {id} is a {k:?}, which has no data layout"
                )))
            }
        })
    }

    /// The Rust name of record or enum `id`, queued for definition.
    fn record_name(&mut self, id: TypeId, hint: &str) -> Result<String, GenError> {
        if let Some(n) = self.names.get(&id) {
            return Ok(n.clone());
        }
        let t = self.resolve(id)?;
        let name = if t.name().is_empty() {
            self.anon += 1;
            format!(
                "{}__anon_{}",
                ident(hint).trim_start_matches("r#"),
                self.anon
            )
        } else {
            ident(t.name())
        };
        self.names.insert(id, name.clone());
        if !self.defined.contains(&name) {
            self.queue.push(id);
        }
        Ok(name)
    }

    /// Defines `id` (a record, enum or anything it resolves to) and every
    /// type it needs.
    pub(crate) fn define(&mut self, id: TypeId, hint: &str) -> Result<(), GenError> {
        self.rust_type(id, hint)?;
        self.flush()
    }

    /// Defines every queued type.
    pub(crate) fn flush(&mut self) -> Result<(), GenError> {
        while let Some(id) = self.queue.pop() {
            let name = self.names[&id].clone();
            if !self.defined.insert(name.clone()) {
                continue;
            }
            let t = self.resolve(id)?;
            match t.kind() {
                Kind::Struct => self.define_struct(id, &name)?,
                Kind::Union => self.define_union(id, &name)?,
                Kind::Enum | Kind::Enum64 => self.define_enum(id, &name)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn define_enum(&mut self, id: TypeId, name: &str) -> Result<(), GenError> {
        let t = self.resolve(id)?;
        let size = t.size().unwrap_or(4);
        let signed = t.is_signed_enum();
        let repr = match (size, signed) {
            (1, false) => "u8",
            (2, false) => "u16",
            (8, false) => "u64",
            (1, true) => "i8",
            (2, true) => "i16",
            (4, true) => "i32",
            (8, true) => "i64",
            _ => "u32",
        };
        let c_name = t.name();
        writeln!(self.out, "/// `enum {c_name}`.").ok();
        writeln!(self.out, "pub type {name} = {repr};").ok();
        for v in t.enum_values() {
            let value = match repr {
                "u8" | "u16" | "u32" | "u64" => format!("{}", v.value & mask(size)),
                _ => format!("{}", sign_extend(v.value, size)),
            };
            writeln!(
                self.out,
                "pub const {}: {name} = {value};",
                ident(v.name).trim_start_matches("r#")
            )
            .ok();
        }
        writeln!(
            self.out,
            "const _: () = assert!(::core::mem::size_of::<{name}>() == {size});\n"
        )
        .ok();
        Ok(())
    }

    fn define_union(&mut self, id: TypeId, name: &str) -> Result<(), GenError> {
        let t = self.resolve(id)?;
        let size = t.size().unwrap_or(0);
        let mut getters = String::new();
        for (i, m) in t.members().enumerate() {
            let mname = if m.name.is_empty() {
                format!("__anon_member_{i}")
            } else {
                ident(m.name)
            };
            let ty = self.rust_type(m.type_id, &format!("{name}_{mname}"))?;
            if m.bitfield_size != 0 {
                continue;
            }
            writeln!(
                getters,
                "    /// Member `{}`, read from the union's bytes.\n    pub fn {mname}(&self) -> Option<{ty}> {{\n        ::bpfkit::kernel::map::from_bytes(self.bytes.get(..::core::mem::size_of::<{ty}>())?)\n    }}",
                m.name
            )
            .ok();
        }
        writeln!(
            self.out,
            "/// `union {}`: its bytes, with a getter per member.\n#[derive(Clone, Copy, ::bpfkit::Pod)]\n#[repr(C)]\npub struct {name} {{\n    /// The union's storage.\n    pub bytes: [u8; {size}],\n}}\n\nimpl {name} {{\n{getters}}}\nconst _: () = assert!(::core::mem::size_of::<{name}>() == {size});\n",
            t.name()
        )
        .ok();
        Ok(())
    }

    fn define_struct(&mut self, id: TypeId, name: &str) -> Result<(), GenError> {
        let t = self.resolve(id)?;
        let size = t.size().unwrap_or(0) as u64;
        struct Field {
            name: String,
            ty: String,
            offset: u64,
            align: u64,
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut getters = String::new();
        let members: Vec<_> = t.members().collect();
        let mut i = 0;
        let mut pad = 0;
        let mut at = 0u64;
        let mut add_pad = |fields: &mut Vec<Field>, from: u64, to: u64| {
            if to > from {
                pad += 1;
                fields.push(Field {
                    name: format!("__pad_{pad}"),
                    ty: format!("[u8; {}]", to - from),
                    offset: from,
                    align: 1,
                });
            }
        };
        while i < members.len() {
            let m = members[i];
            if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
                // A run of bitfields: one byte-array storage for all of them.
                let start_bit = m.bit_offset as u64;
                let mut end_bit = start_bit;
                let mut run = Vec::new();
                while i < members.len()
                    && (members[i].bitfield_size != 0 || members[i].bit_offset % 8 != 0)
                {
                    let b = members[i];
                    let width = if b.bitfield_size != 0 {
                        b.bitfield_size as u64
                    } else {
                        self.btf.type_size(b.type_id)? as u64 * 8
                    };
                    end_bit = end_bit.max(b.bit_offset as u64 + width);
                    run.push((b, width));
                    i += 1;
                }
                let first = (start_bit / 8).max(at);
                let last = end_bit.div_ceil(8);
                add_pad(&mut fields, at, first);
                let storage = format!("__bitfield_{first}");
                fields.push(Field {
                    name: storage.clone(),
                    ty: format!("[u8; {}]", last - first),
                    offset: first,
                    align: 1,
                });
                at = last;
                for (b, width) in run {
                    if b.name.is_empty() {
                        continue;
                    }
                    let shift = b.bit_offset as u64 - first * 8;
                    let signed = self.is_signed(b.type_id)?;
                    let mask = if width >= 64 {
                        u64::MAX
                    } else {
                        (1u64 << width) - 1
                    };
                    let body = if signed && width < 64 {
                        format!("let v = ((raw >> {shift}) as u64) & {mask:#x};\n        (((v << {}) as i64) >> {}) as u64", 64 - width, 64 - width)
                    } else {
                        format!("((raw >> {shift}) as u64) & {mask:#x}")
                    };
                    writeln!(
                        getters,
                        "    /// Bitfield `{}` ({width} bits at bit {}).\n    pub fn {}(&self) -> u64 {{\n        let mut bytes = [0u8; 16];\n        bytes[..self.{storage}.len()].copy_from_slice(&self.{storage});\n        let raw = u128::from_le_bytes(bytes);\n        {body}\n    }}",
                        b.name,
                        b.bit_offset,
                        ident(b.name)
                    )
                    .ok();
                }
                continue;
            }
            let offset = m.bit_offset as u64 / 8;
            let mname = if m.name.is_empty() {
                format!("__anon_member_{i}")
            } else {
                ident(m.name)
            };
            let ty = self.rust_type(m.type_id, &format!("{name}_{mname}"))?;
            let msize = self.btf.type_size(m.type_id)? as u64;
            if offset < at {
                return Err(GenError::Type(format!(
                    "struct {}: member {} at byte {offset} overlaps the member before it",
                    t.name(),
                    m.name
                )));
            }
            add_pad(&mut fields, at, offset);
            let align = self.rust_align(m.type_id)?;
            fields.push(Field {
                name: mname,
                ty,
                offset,
                align,
            });
            at = offset + msize;
            i += 1;
        }
        add_pad(&mut fields, at, size);
        let max_align = fields.iter().map(|f| f.align).max().unwrap_or(1);
        let packed = fields.iter().any(|f| f.offset % f.align != 0) || size % max_align != 0;
        let repr = if packed { "C, packed" } else { "C" };
        let c_name = if t.name().is_empty() {
            "(anonymous)".to_string()
        } else {
            t.name().to_string()
        };
        writeln!(
            self.out,
            "/// `struct {c_name}` ({size} bytes).\n#[derive(Clone, Copy, ::bpfkit::Pod)]\n#[repr({repr})]\npub struct {name} {{"
        )
        .ok();
        for f in &fields {
            writeln!(self.out, "    pub {}: {},", f.name, f.ty).ok();
        }
        writeln!(self.out, "}}\n").ok();
        if !getters.is_empty() {
            writeln!(self.out, "impl {name} {{\n{getters}}}\n").ok();
        }
        writeln!(self.out, "const _: () = {{").ok();
        writeln!(
            self.out,
            "    assert!(::core::mem::size_of::<{name}>() == {size});"
        )
        .ok();
        for f in &fields {
            writeln!(
                self.out,
                "    assert!(::core::mem::offset_of!({name}, {}) == {});",
                f.name, f.offset
            )
            .ok();
        }
        writeln!(self.out, "}};\n").ok();
        Ok(())
    }

    fn is_signed(&self, id: TypeId) -> Result<bool, GenError> {
        let t = self.btf.skip_modifiers(id)?;
        Ok(match t.kind() {
            Kind::Int => t.int().is_some_and(|i| i.encoding.is_signed()),
            Kind::Enum | Kind::Enum64 => t.is_signed_enum(),
            _ => false,
        })
    }

    /// The alignment Rust gives the type we map `id` to.
    fn rust_align(&self, id: TypeId) -> Result<u64, GenError> {
        let t = self.btf.skip_modifiers(id)?;
        Ok(match t.kind() {
            Kind::Int | Kind::Float | Kind::Enum | Kind::Enum64 => {
                let s = t.size().unwrap_or(1) as u64;
                if s.is_power_of_two() {
                    s.min(16)
                } else {
                    1
                }
            }
            Kind::Ptr => 8,
            Kind::Array => {
                let a = t.array().map(|a| a.elem_type).unwrap_or(0);
                self.rust_align(a)?
            }
            Kind::Struct => {
                // Our struct's alignment: the largest of its fields'
                // (1 for byte-array padding and bitfield storage), or 1
                // when packed; computed the same way as when defined.
                let mut max = 1;
                let size = t.size().unwrap_or(0) as u64;
                let mut packed = false;
                for m in t.members() {
                    if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
                        continue;
                    }
                    let a = self.rust_align(m.type_id)?;
                    if (m.bit_offset as u64 / 8) % a != 0 {
                        packed = true;
                    }
                    max = max.max(a);
                }
                if packed || size % max != 0 {
                    1
                } else {
                    max
                }
            }
            _ => 1,
        })
    }
}

fn mask(size: u32) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

fn sign_extend(v: u64, size: u32) -> i64 {
    if size >= 8 {
        v as i64
    } else {
        let shift = 64 - size * 8;
        ((v << shift) as i64) >> shift
    }
}
