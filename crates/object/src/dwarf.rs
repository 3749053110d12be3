//! Record types from DWARF, for objects whose BTF lacks them.
//!
//! clang puts into BTF only the types a program's code or maps refer to. A
//! ring buffer record that is only written through `bpf_ringbuf_reserve`'s
//! `void *` (libbpf-bootstrap's `struct event`) is absent from BTF, but an
//! object built with `-g` still describes it in DWARF. [`type_btf`] finds
//! the struct, union or typedef by name there and emits it, with every type
//! it uses, as BTF, so the rest of bpfkit reads it like any BTF type.
//!
//! Relocations of `.debug_*` sections are not applied: a relocatable BPF
//! object's are `REL` against section symbols, whose addends sit in place.

use std::collections::HashMap;

use bpfkit_btf::{Btf, BtfBuilder, IntEncoding, MemberDef, TypeData, TypeDef, TypeId};
use gimli::{AttributeValue, EndianSlice, LittleEndian, UnitOffset};
use object::{Object, ObjectSection};

use crate::error::ObjectError;

type R<'a> = EndianSlice<'a, LittleEndian>;

fn err(reason: impl Into<String>) -> ObjectError {
    crate::error::section_err(".debug_info", reason)
}

/// The BTF of the struct, union or typedef called `name` in the object's
/// DWARF, with the types it uses; `None` when the object has no DWARF or no
/// such type.
pub fn type_btf(elf: &[u8], name: &str) -> Result<Option<Btf>, ObjectError> {
    let file = object::File::parse(elf)?;
    if !file.is_little_endian() {
        return Err(err("big-endian DWARF is not read"));
    }
    let load = |id: gimli::SectionId| -> Result<R<'_>, gimli::Error> {
        let data = file
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(EndianSlice::new(data, LittleEndian))
    };
    let dwarf = gimli::Dwarf::load(load).map_err(|e| err(e.to_string()))?;
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(|e| err(e.to_string()))? {
        let unit = dwarf.unit(header).map_err(|e| err(e.to_string()))?;
        if let Some(offset) = find_named(&dwarf, &unit, name)? {
            let mut emitter = Emitter {
                dwarf: &dwarf,
                unit: &unit,
                builder: BtfBuilder::new(),
                done: HashMap::new(),
            };
            emitter.emit(offset, 0)?;
            let blob = emitter
                .builder
                .encode(bpfkit_btf::Endian::Little)
                .map_err(|e| err(format!("emitting `{name}` as BTF: {e}")))?;
            return Btf::from_vec(blob).map(Some).map_err(ObjectError::from);
        }
    }
    Ok(None)
}

/// The first struct, union or typedef called `name` in `unit`.
fn find_named(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &gimli::Unit<R<'_>>,
    name: &str,
) -> Result<Option<UnitOffset>, ObjectError> {
    let mut entries = unit.entries();
    while let Some((_, e)) = entries.next_dfs().map_err(|e| err(e.to_string()))? {
        let named = matches!(
            e.tag(),
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type | gimli::DW_TAG_typedef
        );
        // A declaration only (`struct event;`) has no layout.
        let declaration = matches!(
            e.attr_value(gimli::DW_AT_declaration),
            Ok(Some(AttributeValue::Flag(true)))
        );
        if named && !declaration && die_name(dwarf, unit, e)?.as_deref() == Some(name) {
            return Ok(Some(e.offset()));
        }
    }
    Ok(None)
}

fn die_name(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &gimli::Unit<R<'_>>,
    e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>,
) -> Result<Option<String>, ObjectError> {
    let Some(value) = e
        .attr_value(gimli::DW_AT_name)
        .map_err(|e| err(e.to_string()))?
    else {
        return Ok(None);
    };
    let s = dwarf
        .attr_string(unit, value)
        .map_err(|e| err(format!("a DW_AT_name: {e}")))?;
    Ok(Some(s.to_string_lossy().into_owned()))
}

fn udata(e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, at: gimli::DwAt) -> Option<u64> {
    e.attr_value(at)
        .ok()
        .flatten()
        .and_then(|v| v.udata_value())
}

/// How deep type references may nest (guards against cycles through
/// anything but pointers, which are emitted as `void *`-sized pointers).
const MAX_DEPTH: usize = 64;

struct Emitter<'d, 'a> {
    dwarf: &'d gimli::Dwarf<R<'a>>,
    unit: &'d gimli::Unit<R<'a>>,
    builder: BtfBuilder,
    done: HashMap<UnitOffset, TypeId>,
}

impl Emitter<'_, '_> {
    /// The type a DIE's `DW_AT_type` names, emitted; `void` when absent.
    fn type_of(
        &mut self,
        e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>,
        depth: usize,
    ) -> Result<TypeId, ObjectError> {
        match e
            .attr_value(gimli::DW_AT_type)
            .map_err(|e| err(e.to_string()))?
        {
            Some(AttributeValue::UnitRef(off)) => self.emit(off, depth + 1),
            Some(_) => Err(err("a DW_AT_type that is not a reference into its unit")),
            None => Ok(0),
        }
    }

    fn emit(&mut self, offset: UnitOffset, depth: usize) -> Result<TypeId, ObjectError> {
        if let Some(&id) = self.done.get(&offset) {
            return Ok(id);
        }
        if depth > MAX_DEPTH {
            return Err(err("types nest too deeply"));
        }
        let e = self.unit.entry(offset).map_err(|e| err(e.to_string()))?;
        let name = die_name(self.dwarf, self.unit, &e)?.unwrap_or_default();
        let data = match e.tag() {
            gimli::DW_TAG_base_type => {
                let size = udata(&e, gimli::DW_AT_byte_size).unwrap_or(0) as u32;
                let encoding = match udata(&e, gimli::DW_AT_encoding).map(|v| gimli::DwAte(v as u8))
                {
                    Some(gimli::DW_ATE_float) => {
                        return Ok(self.add(offset, TypeDef::new(name, TypeData::Float { size })))
                    }
                    Some(gimli::DW_ATE_boolean) => IntEncoding::BOOL,
                    Some(gimli::DW_ATE_signed_char) => IntEncoding::SIGNED | IntEncoding::CHAR,
                    Some(gimli::DW_ATE_unsigned_char) => IntEncoding::CHAR,
                    Some(gimli::DW_ATE_signed) => IntEncoding::SIGNED,
                    _ => 0,
                };
                TypeData::Int {
                    size,
                    encoding: IntEncoding(encoding),
                    offset: 0,
                    bits: (size * 8).min(128) as u8,
                }
            }
            gimli::DW_TAG_pointer_type => {
                // The record holds an address; what it points to does not
                // matter for decoding, and following it could loop.
                TypeData::Ptr(0)
            }
            gimli::DW_TAG_typedef => {
                // Reserve the id first: a typedef's target may refer back.
                let target = self.type_of(&e, depth)?;
                TypeData::Typedef(target)
            }
            gimli::DW_TAG_const_type => TypeData::Const(self.type_of(&e, depth)?),
            gimli::DW_TAG_volatile_type => TypeData::Volatile(self.type_of(&e, depth)?),
            gimli::DW_TAG_restrict_type => TypeData::Restrict(self.type_of(&e, depth)?),
            gimli::DW_TAG_array_type => {
                let elem_type = self.type_of(&e, depth)?;
                let nelems = self.array_len(offset)?;
                let index_type = self.index_type();
                TypeData::Array {
                    elem_type,
                    index_type,
                    nelems,
                }
            }
            gimli::DW_TAG_enumeration_type => {
                let size = udata(&e, gimli::DW_AT_byte_size).unwrap_or(4) as u32;
                let mut values = Vec::new();
                for off in self.children(offset, gimli::DW_TAG_enumerator)? {
                    let c = self.unit.entry(off).map_err(|e| err(e.to_string()))?;
                    let value = match c.attr_value(gimli::DW_AT_const_value) {
                        Ok(Some(v)) => v
                            .sdata_value()
                            .map(|s| s as u64)
                            .or(v.udata_value())
                            .unwrap_or(0),
                        _ => 0,
                    };
                    values.push((
                        die_name(self.dwarf, self.unit, &c)?.unwrap_or_default(),
                        value,
                    ));
                }
                TypeData::Enum {
                    is_64: size > 4,
                    signed: false,
                    size,
                    values,
                }
            }
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type => {
                return self.composite(offset, name, e.tag() == gimli::DW_TAG_union_type, depth);
            }
            other => {
                return Err(err(format!(
                    "type `{name}`: DWARF tag {other} has no BTF form"
                )))
            }
        };
        Ok(self.add(offset, TypeDef::new(name, data)))
    }

    /// The byte size of a type emitted already (0 when unknown).
    fn builder_size(&self, id: TypeId) -> u32 {
        let mut id = id;
        for _ in 0..MAX_DEPTH {
            match self.builder.get(id).map(|d| &d.data) {
                Some(TypeData::Int { size, .. }) | Some(TypeData::Enum { size, .. }) => {
                    return *size
                }
                Some(TypeData::Typedef(t) | TypeData::Const(t) | TypeData::Volatile(t)) => id = *t,
                _ => return 0,
            }
        }
        0
    }

    fn add(&mut self, offset: UnitOffset, def: TypeDef) -> TypeId {
        let id = self.builder.add(def);
        self.done.insert(offset, id);
        id
    }

    /// An `unsigned int` for array index types, emitted once.
    fn index_type(&mut self) -> TypeId {
        let key = UnitOffset(usize::MAX);
        if let Some(&id) = self.done.get(&key) {
            return id;
        }
        let int = TypeData::Int {
            size: 4,
            encoding: IntEncoding(0),
            offset: 0,
            bits: 32,
        };
        self.add(key, TypeDef::new("__ARRAY_SIZE_TYPE__", int))
    }

    /// Elements of an array: the product of its subranges' counts (a
    /// flexible array member has none, and 0 elements, as in BTF).
    fn array_len(&self, offset: UnitOffset) -> Result<u32, ObjectError> {
        let ranges = self.children(offset, gimli::DW_TAG_subrange_type)?;
        let mut n: u64 = 1;
        for off in &ranges {
            let c = self.unit.entry(*off).map_err(|e| err(e.to_string()))?;
            let count = udata(&c, gimli::DW_AT_count)
                .or_else(|| udata(&c, gimli::DW_AT_upper_bound).map(|u| u + 1))
                .unwrap_or(0);
            n = n.saturating_mul(count);
        }
        let n = if ranges.is_empty() { 0 } else { n };
        u32::try_from(n).map_err(|_| err("an array of more than 2^32 elements"))
    }

    /// The children of the DIE at `offset` that have tag `tag`.
    fn children(
        &self,
        offset: UnitOffset,
        tag: gimli::DwTag,
    ) -> Result<Vec<UnitOffset>, ObjectError> {
        let mut tree = self
            .unit
            .entries_tree(Some(offset))
            .map_err(|e| err(e.to_string()))?;
        let mut children = tree.root().map_err(|e| err(e.to_string()))?.children();
        let mut out = Vec::new();
        while let Some(child) = children.next().map_err(|e| err(e.to_string()))? {
            if child.entry().tag() == tag {
                out.push(child.entry().offset());
            }
        }
        Ok(out)
    }

    fn composite(
        &mut self,
        offset: UnitOffset,
        name: String,
        is_union: bool,
        depth: usize,
    ) -> Result<TypeId, ObjectError> {
        let e = self.unit.entry(offset).map_err(|e| err(e.to_string()))?;
        let size = udata(&e, gimli::DW_AT_byte_size).unwrap_or(0) as u32;
        // The id is taken first, so that members may refer back to it
        // (through typedefs of pointers, which emit as plain pointers).
        let id = self.add(
            offset,
            TypeDef::new(
                name.clone(),
                TypeData::Composite {
                    is_union,
                    size,
                    members: Vec::new(),
                },
            ),
        );
        let mut members = Vec::new();
        let raw = self.children(offset, gimli::DW_TAG_member)?;
        for m in raw {
            let c = self.unit.entry(m).map_err(|e| err(e.to_string()))?;
            let member_name = die_name(self.dwarf, self.unit, &c)?.unwrap_or_default();
            let type_id = self.type_of(&c, depth)?;
            let bitfield_size = udata(&c, gimli::DW_AT_bit_size).unwrap_or(0) as u32;
            let location = udata(&c, gimli::DW_AT_data_member_location).unwrap_or(0) * 8;
            let bit_offset = match (
                udata(&c, gimli::DW_AT_data_bit_offset),
                udata(&c, gimli::DW_AT_bit_offset),
            ) {
                // DWARF 5: bits from the start of the struct.
                (Some(bits), _) => bits,
                // DWARF 4: bits from the most significant end of a storage
                // unit of DW_AT_byte_size at the member location; on a
                // little-endian target that is counted from the other end.
                (None, Some(from_msb)) => {
                    let storage = udata(&c, gimli::DW_AT_byte_size)
                        .unwrap_or_else(|| u64::from(self.builder_size(type_id)))
                        * 8;
                    location + storage.saturating_sub(from_msb + u64::from(bitfield_size))
                }
                (None, None) => location,
            } as u32;
            members.push(MemberDef {
                name: member_name,
                type_id,
                bit_offset,
                bitfield_size,
            });
        }
        if let Some(def) = self.builder.get_mut(id) {
            def.data = TypeData::Composite {
                is_union,
                size,
                members,
            };
        }
        Ok(id)
    }
}
