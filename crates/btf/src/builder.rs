//! Emitting BTF: an owned, editable type list that encodes to a valid blob.

use std::collections::HashMap;

use crate::btf::{BTF_HEADER_LEN, BTF_MAGIC};
use crate::endian::Endian;
use crate::types::{IntEncoding, Kind, Linkage, Type, VarSecInfo};
use crate::{Btf, BtfError, TypeId};

/// A struct or union member being built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDef {
    /// Name, empty for anonymous members.
    pub name: String,
    /// Member type.
    pub type_id: TypeId,
    /// Offset from the start of the struct in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits, 0 for ordinary members.
    pub bitfield_size: u32,
}

/// The kind-specific content of a type being built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeData {
    /// `INT`.
    Int {
        /// Size in bytes.
        size: u32,
        /// Encoding bits.
        encoding: IntEncoding,
        /// Bit offset of the value.
        offset: u8,
        /// Number of value bits.
        bits: u8,
    },
    /// `PTR` to a type.
    Ptr(TypeId),
    /// `ARRAY`.
    Array {
        /// Element type.
        elem_type: TypeId,
        /// Index type.
        index_type: TypeId,
        /// Number of elements.
        nelems: u32,
    },
    /// `STRUCT` (`is_union == false`) or `UNION`.
    Composite {
        /// `UNION` rather than `STRUCT`.
        is_union: bool,
        /// Size in bytes.
        size: u32,
        /// Members in order.
        members: Vec<MemberDef>,
    },
    /// `ENUM` (`is_64 == false`, values must fit 32 bits) or `ENUM64`.
    Enum {
        /// `ENUM64` rather than `ENUM`.
        is_64: bool,
        /// Signed values (the kind flag).
        signed: bool,
        /// Size in bytes.
        size: u32,
        /// Enumerators: names and 64-bit patterns.
        values: Vec<(String, u64)>,
    },
    /// `FWD` declaration of a struct or union.
    Fwd {
        /// A union rather than a struct.
        is_union: bool,
    },
    /// `TYPEDEF`.
    Typedef(TypeId),
    /// `VOLATILE`.
    Volatile(TypeId),
    /// `CONST`.
    Const(TypeId),
    /// `RESTRICT`.
    Restrict(TypeId),
    /// `FUNC`.
    Func {
        /// The `FUNC_PROTO`.
        proto: TypeId,
        /// Linkage.
        linkage: Linkage,
    },
    /// `FUNC_PROTO`.
    FuncProto {
        /// Return type.
        ret: TypeId,
        /// Parameters: names (possibly empty) and types; a trailing
        /// `("", 0)` means varargs.
        params: Vec<(String, TypeId)>,
    },
    /// `VAR`.
    Var {
        /// Variable type.
        type_id: TypeId,
        /// Linkage.
        linkage: Linkage,
    },
    /// `DATASEC`.
    Datasec {
        /// Section size.
        size: u32,
        /// Variables in the section.
        vars: Vec<VarSecInfo>,
    },
    /// `FLOAT`.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `DECL_TAG`.
    DeclTag {
        /// Tagged declaration.
        type_id: TypeId,
        /// `-1`, or the tagged member or parameter index.
        component: i32,
        /// The kind flag (tag is an `__attribute__`).
        kflag: bool,
    },
    /// `TYPE_TAG`.
    TypeTag {
        /// Tagged type.
        type_id: TypeId,
        /// The kind flag (tag is an `__attribute__`).
        kflag: bool,
    },
}

/// One type being built: a name (empty for anonymous) and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeDef {
    /// Name, or the tag string of a tag.
    pub name: String,
    /// Content.
    pub data: TypeData,
}

impl TypeDef {
    /// A type with a name and content.
    pub fn new(name: impl Into<String>, data: TypeData) -> TypeDef {
        TypeDef {
            name: name.into(),
            data,
        }
    }

    /// The BTF kind this encodes as.
    pub fn kind(&self) -> Kind {
        match &self.data {
            TypeData::Int { .. } => Kind::Int,
            TypeData::Ptr(_) => Kind::Ptr,
            TypeData::Array { .. } => Kind::Array,
            TypeData::Composite {
                is_union: false, ..
            } => Kind::Struct,
            TypeData::Composite { is_union: true, .. } => Kind::Union,
            TypeData::Enum { is_64: false, .. } => Kind::Enum,
            TypeData::Enum { is_64: true, .. } => Kind::Enum64,
            TypeData::Fwd { .. } => Kind::Fwd,
            TypeData::Typedef(_) => Kind::Typedef,
            TypeData::Volatile(_) => Kind::Volatile,
            TypeData::Const(_) => Kind::Const,
            TypeData::Restrict(_) => Kind::Restrict,
            TypeData::Func { .. } => Kind::Func,
            TypeData::FuncProto { .. } => Kind::FuncProto,
            TypeData::Var { .. } => Kind::Var,
            TypeData::Datasec { .. } => Kind::Datasec,
            TypeData::Float { .. } => Kind::Float,
            TypeData::DeclTag { .. } => Kind::DeclTag,
            TypeData::TypeTag { .. } => Kind::TypeTag,
        }
    }

    /// Copies a parsed type into an editable definition.
    pub fn from_type(t: &Type<'_>) -> Result<TypeDef, BtfError> {
        let r = t.size_or_type;
        let data = match t.kind {
            Kind::Void => {
                return Err(BtfError::UnexpectedKind {
                    id: t.id,
                    reason: "void has no record".into(),
                })
            }
            Kind::Int => {
                let i = t.int().unwrap_or(crate::Int {
                    size: r,
                    encoding: IntEncoding(0),
                    offset: 0,
                    bits: 0,
                });
                TypeData::Int {
                    size: i.size,
                    encoding: i.encoding,
                    offset: i.offset,
                    bits: i.bits,
                }
            }
            Kind::Ptr => TypeData::Ptr(r),
            Kind::Array => {
                let a = t.array().ok_or(BtfError::NoSuchType { id: t.id })?;
                TypeData::Array {
                    elem_type: a.elem_type,
                    index_type: a.index_type,
                    nelems: a.nelems,
                }
            }
            Kind::Struct | Kind::Union => TypeData::Composite {
                is_union: t.kind == Kind::Union,
                size: r,
                members: t
                    .members()
                    .map(|m| MemberDef {
                        name: m.name.to_string(),
                        type_id: m.type_id,
                        bit_offset: m.bit_offset,
                        bitfield_size: m.bitfield_size,
                    })
                    .collect(),
            },
            Kind::Enum | Kind::Enum64 => TypeData::Enum {
                is_64: t.kind == Kind::Enum64,
                signed: t.kflag(),
                size: r,
                values: t
                    .enum_values()
                    .map(|v| (v.name.to_string(), v.value))
                    .collect(),
            },
            Kind::Fwd => TypeData::Fwd {
                is_union: t.kflag(),
            },
            Kind::Typedef => TypeData::Typedef(r),
            Kind::Volatile => TypeData::Volatile(r),
            Kind::Const => TypeData::Const(r),
            Kind::Restrict => TypeData::Restrict(r),
            Kind::Func => TypeData::Func {
                proto: r,
                linkage: t.linkage().unwrap_or(Linkage::Static),
            },
            Kind::FuncProto => TypeData::FuncProto {
                ret: r,
                params: t
                    .params()
                    .map(|p| (p.name.to_string(), p.type_id))
                    .collect(),
            },
            Kind::Var => TypeData::Var {
                type_id: r,
                linkage: t.linkage().unwrap_or(Linkage::Static),
            },
            Kind::Datasec => TypeData::Datasec {
                size: r,
                vars: t.datasec_vars().collect(),
            },
            Kind::Float => TypeData::Float { size: r },
            Kind::DeclTag => TypeData::DeclTag {
                type_id: r,
                component: t.decl_tag_component().unwrap_or(-1),
                kflag: t.kflag(),
            },
            Kind::TypeTag => TypeData::TypeTag {
                type_id: r,
                kflag: t.kflag(),
            },
        };
        Ok(TypeDef::new(t.name(), data))
    }
}

/// An editable list of types that encodes to a BTF blob.
///
/// Ids are positions: the first type added is id 1. Encoding checks nothing
/// beyond what it must to write the record; parse the result with
/// [`Btf::parse`] to validate it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfBuilder {
    types: Vec<TypeDef>,
}

impl BtfBuilder {
    /// An empty builder (only `void`).
    pub fn new() -> BtfBuilder {
        BtfBuilder::default()
    }

    /// A builder holding a copy of every type of a (non-split) BTF.
    pub fn from_btf(btf: &Btf) -> Result<BtfBuilder, BtfError> {
        if btf.base().is_some() {
            return Err(BtfError::Emit {
                reason: "split BTF cannot be re-emitted on its own".into(),
            });
        }
        let types = btf
            .types()
            .map(|t| TypeDef::from_type(&t))
            .collect::<Result<_, _>>()?;
        Ok(BtfBuilder { types })
    }

    /// Appends a type and returns its id.
    pub fn add(&mut self, def: TypeDef) -> TypeId {
        self.types.push(def);
        self.types.len() as TypeId
    }

    /// Number of ids including `void`.
    pub fn len(&self) -> u32 {
        self.types.len() as u32 + 1
    }

    /// Whether only `void` exists.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type with id `id` (not `void`).
    pub fn get(&self, id: TypeId) -> Option<&TypeDef> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// The type with id `id`, for editing.
    pub fn get_mut(&mut self, id: TypeId) -> Option<&mut TypeDef> {
        self.types.get_mut((id as usize).checked_sub(1)?)
    }

    /// Ids and definitions in order.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &TypeDef)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (i as TypeId + 1, t))
    }

    /// Ids and definitions in order, for editing.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (TypeId, &mut TypeDef)> {
        self.types
            .iter_mut()
            .enumerate()
            .map(|(i, t)| (i as TypeId + 1, t))
    }

    /// Encodes the types as a BTF blob in byte order `endian`. Identical
    /// strings are stored once.
    pub fn encode(&self, endian: Endian) -> Result<Vec<u8>, BtfError> {
        self.encode_with(endian, StringTable::new())
    }

    /// Encodes like [`BtfBuilder::encode`], but starts from `original`'s
    /// string table, so every string offset into it stays valid: the
    /// `.BTF.ext` line and function records of a program still point at
    /// their file names and source lines. New strings are appended.
    pub fn encode_preserving_strings(
        &self,
        endian: Endian,
        original: &Btf,
    ) -> Result<Vec<u8>, BtfError> {
        self.encode_with(endian, StringTable::from_section(original.string_section()))
    }

    fn encode_with(&self, endian: Endian, mut strings: StringTable) -> Result<Vec<u8>, BtfError> {
        let mut types = Vec::with_capacity(self.types.len() * 32);
        for (id, def) in self.iter() {
            encode_type(&mut types, &mut strings, endian, id, def)?;
        }
        let u32_of = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| BtfError::Emit {
                reason: format!("{what} of {n} bytes overflows u32"),
            })
        };
        let type_len = u32_of(types.len(), "type section")?;
        let str_len = u32_of(strings.bytes.len(), "string section")?;
        let mut out = Vec::with_capacity(BTF_HEADER_LEN + types.len() + strings.bytes.len());
        out.extend_from_slice(&endian.u16_bytes(BTF_MAGIC));
        out.extend_from_slice(&[1, 0]);
        for w in [BTF_HEADER_LEN as u32, 0, type_len, type_len, str_len] {
            out.extend_from_slice(&endian.u32_bytes(w));
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings.bytes);
        Ok(out)
    }
}

struct StringTable {
    bytes: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl StringTable {
    fn new() -> StringTable {
        StringTable {
            bytes: vec![0],
            offsets: HashMap::new(),
        }
    }

    /// A table holding an existing string section, every string at its offset.
    fn from_section(section: &[u8]) -> StringTable {
        if section.first() != Some(&0) {
            return StringTable::new();
        }
        let mut offsets = HashMap::new();
        let mut start = 0;
        for (i, &b) in section.iter().enumerate() {
            if b == 0 {
                if i > start {
                    if let Ok(s) = std::str::from_utf8(&section[start..i]) {
                        offsets.entry(s.to_string()).or_insert(start as u32);
                    }
                }
                start = i + 1;
            }
        }
        let mut bytes = section.to_vec();
        if bytes.last() != Some(&0) {
            bytes.push(0);
        }
        StringTable { bytes, offsets }
    }

    fn add(&mut self, s: &str) -> Result<u32, BtfError> {
        if s.is_empty() {
            return Ok(0);
        }
        if let Some(&off) = self.offsets.get(s) {
            return Ok(off);
        }
        if s.as_bytes().contains(&0) {
            return Err(BtfError::Emit {
                reason: format!("string {s:?} contains NUL"),
            });
        }
        let off = u32::try_from(self.bytes.len()).map_err(|_| BtfError::Emit {
            reason: "string table overflows u32".into(),
        })?;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.offsets.insert(s.to_string(), off);
        Ok(off)
    }
}

fn encode_type(
    out: &mut Vec<u8>,
    strings: &mut StringTable,
    endian: Endian,
    id: TypeId,
    def: &TypeDef,
) -> Result<(), BtfError> {
    let too_many = |n: usize| -> Result<u32, BtfError> {
        if n > 0xffff {
            Err(BtfError::Emit {
                reason: format!("type [{id}] has {n} entries, more than 65535"),
            })
        } else {
            Ok(n as u32)
        }
    };
    let name_off = strings.add(&def.name)?;
    let kind = def.kind();
    let (vlen, kflag, size_or_type) = match &def.data {
        TypeData::Int { size, .. } | TypeData::Float { size } => (0, false, *size),
        TypeData::Ptr(t)
        | TypeData::Typedef(t)
        | TypeData::Volatile(t)
        | TypeData::Const(t)
        | TypeData::Restrict(t) => (0, false, *t),
        TypeData::Array { .. } => (0, false, 0),
        TypeData::Composite { size, members, .. } => (
            too_many(members.len())?,
            members.iter().any(|m| m.bitfield_size != 0),
            *size,
        ),
        TypeData::Enum {
            signed,
            size,
            values,
            ..
        } => (too_many(values.len())?, *signed, *size),
        TypeData::Fwd { is_union } => (0, *is_union, 0),
        TypeData::Func { proto, linkage } => (linkage.to_u32(), false, *proto),
        TypeData::FuncProto { ret, params } => (too_many(params.len())?, false, *ret),
        TypeData::Var { type_id, .. } => (0, false, *type_id),
        TypeData::Datasec { size, vars } => (too_many(vars.len())?, false, *size),
        TypeData::DeclTag { type_id, kflag, .. } | TypeData::TypeTag { type_id, kflag } => {
            (0, *kflag, *type_id)
        }
    };
    let info = (u32::from(kflag) << 31) | ((kind as u32) << 24) | vlen;
    let put = |out: &mut Vec<u8>, w: u32| out.extend_from_slice(&endian.u32_bytes(w));
    put(out, name_off);
    put(out, info);
    put(out, size_or_type);
    match &def.data {
        TypeData::Int {
            encoding,
            offset,
            bits,
            ..
        } => put(
            out,
            (u32::from(encoding.0) << 24) | (u32::from(*offset) << 16) | u32::from(*bits),
        ),
        TypeData::Array {
            elem_type,
            index_type,
            nelems,
        } => {
            put(out, *elem_type);
            put(out, *index_type);
            put(out, *nelems);
        }
        TypeData::Composite { members, .. } => {
            for m in members {
                let off = if kflag {
                    if m.bitfield_size > 0xff || m.bit_offset > 0x00ff_ffff {
                        return Err(BtfError::Emit {
                            reason: format!(
                                "type [{id}] member {:?} does not fit the bitfield encoding",
                                m.name
                            ),
                        });
                    }
                    (m.bitfield_size << 24) | m.bit_offset
                } else {
                    m.bit_offset
                };
                let name = strings.add(&m.name)?;
                out.extend_from_slice(&endian.u32_bytes(name));
                out.extend_from_slice(&endian.u32_bytes(m.type_id));
                out.extend_from_slice(&endian.u32_bytes(off));
            }
        }
        TypeData::Enum { is_64, values, .. } => {
            for (name, value) in values {
                let name = strings.add(name)?;
                out.extend_from_slice(&endian.u32_bytes(name));
                out.extend_from_slice(&endian.u32_bytes(*value as u32));
                if *is_64 {
                    out.extend_from_slice(&endian.u32_bytes((*value >> 32) as u32));
                }
            }
        }
        TypeData::FuncProto { params, .. } => {
            for (name, type_id) in params {
                let name = strings.add(name)?;
                out.extend_from_slice(&endian.u32_bytes(name));
                out.extend_from_slice(&endian.u32_bytes(*type_id));
            }
        }
        TypeData::Var { linkage, .. } => put(out, linkage.to_u32()),
        TypeData::Datasec { vars, .. } => {
            for v in vars {
                put(out, v.type_id);
                put(out, v.offset);
                put(out, v.size);
            }
        }
        TypeData::DeclTag { component, .. } => put(out, *component as u32),
        _ => {}
    }
    Ok(())
}
