//! Type resolution, sizes and alignment.

use std::collections::HashMap;

use super::{Btf, MAX_RESOLVE_DEPTH};
use crate::types::{Kind, Type};
use crate::{BtfError, TypeId};

impl Btf {
    /// Skips `const`, `volatile`, `restrict` and type tags.
    pub fn skip_modifiers(&self, id: TypeId) -> Result<Type<'_>, BtfError> {
        self.skip_while(id, |k| k.is_modifier())
    }

    /// Skips typedefs, `const`, `volatile`, `restrict` and type tags: the
    /// type a value of type `id` really has.
    pub fn resolve(&self, id: TypeId) -> Result<Type<'_>, BtfError> {
        self.skip_while(id, |k| k.is_modifier() || k == Kind::Typedef)
    }

    fn skip_while(&self, id: TypeId, skip: impl Fn(Kind) -> bool) -> Result<Type<'_>, BtfError> {
        let mut t = self.type_by_id(id)?;
        for _ in 0..MAX_RESOLVE_DEPTH {
            if !skip(t.kind) {
                return Ok(t);
            }
            t = self.type_by_id(t.size_or_type)?;
        }
        Err(BtfError::ReferenceLoop {
            id,
            limit: MAX_RESOLVE_DEPTH,
        })
    }

    /// Size in bytes of a value of type `id`, following typedefs, modifiers,
    /// variables and arrays as libbpf's `btf__resolve_size` does.
    pub fn type_size(&self, id: TypeId) -> Result<u32, BtfError> {
        let mut nelems: u64 = 1;
        let mut cur = id;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(cur)?;
            let size = match t.kind {
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Datasec
                | Kind::Float => t.size_or_type,
                Kind::Ptr => self.pointer_size(),
                Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag => {
                    cur = t.size_or_type;
                    continue;
                }
                Kind::Array => {
                    let a = t.array().ok_or(BtfError::NoSuchType { id: cur })?;
                    nelems = nelems.saturating_mul(u64::from(a.nelems));
                    cur = a.elem_type;
                    continue;
                }
                Kind::Void | Kind::Fwd | Kind::Func | Kind::FuncProto => {
                    return Err(BtfError::UnexpectedKind {
                        id: cur,
                        reason: format!("{} has no size", t.kind),
                    });
                }
            };
            let total = nelems.saturating_mul(u64::from(size));
            return u32::try_from(total).map_err(|_| BtfError::UnexpectedKind {
                id,
                reason: format!("size {total} overflows u32"),
            });
        }
        Err(BtfError::ReferenceLoop {
            id,
            limit: MAX_RESOLVE_DEPTH,
        })
    }

    /// Alignment in bytes of a value of type `id`, as libbpf's `btf__align_of`
    /// computes it: packed structs (a member at an offset its own alignment
    /// does not allow, or a size that is not a multiple of the alignment)
    /// align to 1.
    pub fn type_align(&self, id: TypeId) -> Result<u32, BtfError> {
        self.type_align_cached(id, &mut HashMap::new())
    }

    /// [`Btf::type_align`] remembering composite alignments in `cache`, so
    /// shared (or maliciously repeated) nested types are computed once.
    pub(crate) fn type_align_cached(
        &self,
        id: TypeId,
        cache: &mut HashMap<TypeId, u32>,
    ) -> Result<u32, BtfError> {
        self.align_at_depth(id, 0, cache)
    }

    fn align_at_depth(
        &self,
        id: TypeId,
        depth: usize,
        cache: &mut HashMap<TypeId, u32>,
    ) -> Result<u32, BtfError> {
        if depth > MAX_RESOLVE_DEPTH {
            return Err(BtfError::ReferenceLoop {
                id,
                limit: MAX_RESOLVE_DEPTH,
            });
        }
        let t = self.type_by_id(id)?;
        match t.kind {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Float => {
                Ok(t.size_or_type.clamp(1, self.pointer_size()))
            }
            Kind::Ptr => Ok(self.pointer_size()),
            Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::TypeTag
            | Kind::Var
            | Kind::DeclTag => self.align_at_depth(t.size_or_type, depth + 1, cache),
            Kind::Array => {
                let a = t.array().ok_or(BtfError::NoSuchType { id })?;
                self.align_at_depth(a.elem_type, depth + 1, cache)
            }
            Kind::Struct | Kind::Union => {
                if let Some(&align) = cache.get(&id) {
                    return Ok(align);
                }
                let mut align = 1;
                for m in t.members() {
                    let member_align = self.align_at_depth(m.type_id, depth + 1, cache)?;
                    // A member placed off its natural alignment means `packed`.
                    if m.bitfield_size == 0 && m.bit_offset % (member_align * 8) != 0 {
                        align = 0;
                        break;
                    }
                    align = align.max(member_align);
                }
                if align == 0 || t.size_or_type % align != 0 {
                    align = 1;
                }
                cache.insert(id, align);
                Ok(align)
            }
            _ => Err(BtfError::UnexpectedKind {
                id,
                reason: format!("{} has no alignment", t.kind),
            }),
        }
    }
}
