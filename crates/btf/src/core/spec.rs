//! Access specs: an access string resolved against one BTF.

use crate::core::CoreError;
use crate::{Btf, CoreReloKind, Kind, TypeId};

/// libbpf's `BPF_CORE_SPEC_MAX_LEN`: the deepest access path accepted.
pub const MAX_SPEC_LEN: usize = 64;

/// One step of an access path: an array index (no name) or a named member
/// or enumerator of `type_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accessor<'a> {
    /// The composite, array element or enum type the step indexes into.
    pub type_id: TypeId,
    /// Member, element or enumerator index.
    pub index: u32,
    /// Member or enumerator name; `None` for array indexing.
    pub name: Option<&'a str>,
}

/// An access string resolved against one BTF: the high-level accessors
/// (named members and array indices; anonymous members are folded in) and
/// the raw indices, plus the accumulated bit offset.
#[derive(Clone, Debug)]
pub struct AccessSpec<'a> {
    /// The BTF this spec resolves in.
    pub btf: &'a Btf,
    /// The root type.
    pub root_type_id: TypeId,
    /// Relocation kind.
    pub kind: CoreReloKind,
    /// High-level accessors.
    pub accessors: Vec<Accessor<'a>>,
    /// Raw indices, one per level (including anonymous members).
    pub raw: Vec<u32>,
    /// Bit offset of the accessed field from the start of the root.
    pub bit_offset: u64,
}

impl<'a> AccessSpec<'a> {
    pub(crate) fn empty(btf: &'a Btf, root_type_id: TypeId, kind: CoreReloKind) -> Self {
        AccessSpec {
            btf,
            root_type_id,
            kind,
            accessors: Vec::new(),
            raw: Vec::new(),
            bit_offset: 0,
        }
    }

    /// Parses `access` (such as `"0:1:2"`) for a relocation of `kind`
    /// rooted at `type_id`, as libbpf's `bpf_core_parse_spec` does.
    pub fn parse(
        btf: &'a Btf,
        type_id: TypeId,
        access: &str,
        kind: CoreReloKind,
    ) -> Result<AccessSpec<'a>, CoreError> {
        let invalid = |reason: String| CoreError::InvalidSpec {
            type_id,
            access: access.to_string(),
            kind,
            reason,
        };
        let mut spec = AccessSpec::empty(btf, type_id, kind);
        if access.is_empty() || access.starts_with(':') {
            return Err(invalid("empty access string".into()));
        }
        if kind.is_type_based() {
            if access != "0" {
                return Err(invalid("type relocations take access string \"0\"".into()));
            }
            return Ok(spec);
        }
        for part in access.split(':') {
            let index: u32 = part
                .parse()
                .map_err(|_| invalid(format!("{part:?} is not an index")))?;
            if spec.raw.len() == MAX_SPEC_LEN {
                return Err(invalid("access path too deep".into()));
            }
            spec.raw.push(index);
        }
        let root = btf.resolve(type_id)?;
        let first = spec.raw[0];
        if kind.is_enumval_based() {
            if !root.kind().is_any_enum() || spec.raw.len() > 1 {
                return Err(invalid(format!(
                    "{} is not a single enumerator index",
                    root.kind()
                )));
            }
            let value = root
                .enum_values()
                .nth(first as usize)
                .ok_or_else(|| invalid(format!("enumerator {first} out of range")))?;
            spec.accessors.push(Accessor {
                type_id: root.id(),
                index: first,
                name: Some(value.name),
            });
            return Ok(spec);
        }
        let mut id = root.id();
        spec.accessors.push(Accessor {
            type_id: id,
            index: first,
            name: None,
        });
        let size = btf.type_size(id)?;
        spec.bit_offset = bits_of(first, size);
        for &index in &spec.raw[1..] {
            let t = btf.resolve(id)?;
            id = t.id();
            if t.kind().is_composite() {
                let m = t
                    .member(index as usize)
                    .ok_or_else(|| invalid(format!("member {index} of [{id}] out of range")))?;
                spec.bit_offset = spec.bit_offset.saturating_add(u64::from(m.bit_offset));
                if m.name_off != 0 {
                    if m.name.is_empty() {
                        return Err(invalid(format!(
                            "member {index} of [{id}] has an empty name"
                        )));
                    }
                    spec.accessors.push(Accessor {
                        type_id: id,
                        index,
                        name: Some(m.name),
                    });
                }
                id = m.type_id;
            } else if t.kind() == Kind::Array {
                let a = t.array().ok_or_else(|| invalid("bad array".into()))?;
                let elem = btf.resolve(a.elem_type)?;
                id = elem.id();
                let flex = is_flex_array(btf, spec.accessors.last(), a.nelems);
                if !flex && index >= a.nelems {
                    return Err(invalid(format!(
                        "index {index} beyond array of {}",
                        a.nelems
                    )));
                }
                spec.accessors.push(Accessor {
                    type_id: id,
                    index,
                    name: None,
                });
                let size = btf.type_size(id)?;
                spec.bit_offset = spec.bit_offset.saturating_add(bits_of(index, size));
            } else {
                return Err(invalid(format!(
                    "step {index} into [{id}] of kind {}",
                    t.kind()
                )));
            }
        }
        Ok(spec)
    }
}

/// A zero-length array that is the last member of its struct can be indexed
/// past its end.
pub(crate) fn is_flex_array(btf: &Btf, parent: Option<&Accessor<'_>>, nelems: u32) -> bool {
    let Some(parent) = parent else {
        return false;
    };
    if parent.name.is_none() || nelems > 0 {
        return false;
    }
    btf.type_by_id(parent.type_id)
        .is_ok_and(|t| parent.index + 1 == u32::from(t.vlen()))
}

/// Bit offset of element `index` of `size`-byte elements; saturates on
/// malformed input rather than wrapping.
pub(crate) fn bits_of(index: u32, size: u32) -> u64 {
    u64::from(index)
        .saturating_mul(u64::from(size))
        .saturating_mul(8)
}
