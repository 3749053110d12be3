//! Type compatibility rules: when a local type may be relocated against a
//! target type (libbpf's `bpf_core_*_are_compat` and `bpf_core_types_match`).

use crate::core::essential_name_len;
use crate::{Btf, BtfError, Kind, Type, TypeId};

/// libbpf's recursion limit for compatibility checks.
const MAX_DEPTH: u32 = 32;

/// Visits allowed in one check. Prototype parameters and members branch, so
/// malformed BTF could otherwise make a check exponential; real kernels need
/// a few hundred at most.
const MAX_STEPS: u32 = 100_000;

/// The remaining visits of one check.
pub(crate) struct Budget(u32);

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget(MAX_STEPS)
    }

    pub(crate) fn step(&mut self, id: TypeId) -> Result<(), BtfError> {
        match self.0.checked_sub(1) {
            Some(left) => {
                self.0 = left;
                Ok(())
            }
            None => Err(BtfError::ReferenceLoop {
                id,
                limit: MAX_STEPS as usize,
            }),
        }
    }
}

fn depth_error(id: TypeId) -> BtfError {
    BtfError::ReferenceLoop {
        id,
        limit: MAX_DEPTH as usize,
    }
}

/// Kinds are equal, or both are enums of either width.
pub(crate) fn kinds_compatible(a: Kind, b: Kind) -> bool {
    a == b || (a.is_any_enum() && b.is_any_enum())
}

/// Whether essential names are equal.
pub(crate) fn essential_names_equal(a: &str, b: &str) -> bool {
    a[..essential_name_len(a)] == b[..essential_name_len(b)]
}

/// `bpf_core_names_match`: an anonymous target matches only an anonymous local.
fn names_match(local: &str, target: &str) -> bool {
    if target.is_empty() {
        return local.is_empty();
    }
    essential_names_equal(local, target)
}

fn int_offset_zero(t: &Type<'_>) -> bool {
    t.int().is_some_and(|i| i.offset == 0)
}

/// Whether a local field type is compatible with a target field type
/// (`bpf_core_fields_are_compat`).
pub(crate) fn fields_compatible(
    local: &Btf,
    mut local_id: TypeId,
    target: &Btf,
    mut target_id: TypeId,
) -> Result<bool, BtfError> {
    for _ in 0..MAX_DEPTH {
        let l = local.resolve(local_id)?;
        let t = target.resolve(target_id)?;
        if l.kind().is_composite() && t.kind().is_composite() {
            return Ok(true);
        }
        if !kinds_compatible(l.kind(), t.kind()) {
            return Ok(false);
        }
        return Ok(match l.kind() {
            Kind::Ptr | Kind::Float => true,
            Kind::Fwd | Kind::Enum | Kind::Enum64 => essential_names_equal(l.name(), t.name()),
            Kind::Int => int_offset_zero(&l) && int_offset_zero(&t),
            Kind::Array => {
                local_id = l.array().map_or(0, |a| a.elem_type);
                target_id = t.array().map_or(0, |a| a.elem_type);
                continue;
            }
            _ => false,
        });
    }
    Err(depth_error(local_id))
}

/// Whether a local type is compatible with a target type for type-based
/// relocations (`bpf_core_types_are_compat`).
pub(crate) fn types_compatible(
    local: &Btf,
    local_id: TypeId,
    target: &Btf,
    target_id: TypeId,
) -> Result<bool, BtfError> {
    let l = local.type_by_id(local_id)?;
    let t = target.type_by_id(target_id)?;
    if !kinds_compatible(l.kind(), t.kind()) {
        return Ok(false);
    }
    types_compatible_at(
        local,
        local_id,
        target,
        target_id,
        MAX_DEPTH,
        &mut Budget::new(),
    )
}

fn types_compatible_at(
    local: &Btf,
    mut local_id: TypeId,
    target: &Btf,
    mut target_id: TypeId,
    level: u32,
    budget: &mut Budget,
) -> Result<bool, BtfError> {
    for _ in 0..MAX_DEPTH {
        budget.step(local_id)?;
        let l = local.resolve(local_id)?;
        let t = target.resolve(target_id)?;
        if !kinds_compatible(l.kind(), t.kind()) {
            return Ok(false);
        }
        match l.kind() {
            Kind::Void | Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd => {
                return Ok(true)
            }
            Kind::Int => return Ok(int_offset_zero(&l) && int_offset_zero(&t)),
            Kind::Ptr => {
                local_id = l.size_or_type();
                target_id = t.size_or_type();
            }
            Kind::Array => {
                local_id = l.array().map_or(0, |a| a.elem_type);
                target_id = t.array().map_or(0, |a| a.elem_type);
            }
            Kind::FuncProto => {
                if l.vlen() != t.vlen() {
                    return Ok(false);
                }
                for (lp, tp) in l.params().zip(t.params()) {
                    if level == 0 {
                        return Err(depth_error(local_id));
                    }
                    let lp = local.resolve(lp.type_id)?.id();
                    let tp = target.resolve(tp.type_id)?.id();
                    if !types_compatible_at(local, lp, target, tp, level - 1, budget)? {
                        return Ok(false);
                    }
                }
                local_id = local.resolve(l.size_or_type())?.id();
                target_id = target.resolve(t.size_or_type())?.id();
            }
            _ => return Ok(false),
        }
    }
    Err(depth_error(local_id))
}

/// Whether a local type matches a target type for `TYPE_MATCHES`
/// (`bpf_core_types_match`): stricter than compatibility, it compares
/// names, sizes, signedness, array lengths and every member recursively.
pub(crate) fn types_match(
    local: &Btf,
    local_id: TypeId,
    target: &Btf,
    target_id: TypeId,
) -> Result<bool, BtfError> {
    types_match_at(
        local,
        local_id,
        target,
        target_id,
        false,
        MAX_DEPTH,
        &mut Budget::new(),
    )
}

fn types_match_at(
    local: &Btf,
    local_id: TypeId,
    target: &Btf,
    target_id: TypeId,
    behind_ptr: bool,
    level: u32,
    budget: &mut Budget,
) -> Result<bool, BtfError> {
    if level == 0 {
        return Err(depth_error(local_id));
    }
    budget.step(local_id)?;
    let l = local.resolve(local_id)?;
    let t = target.resolve(target_id)?;
    if !names_match(l.name(), t.name()) {
        return Ok(false);
    }
    let (lk, tk) = (l.kind(), t.kind());
    let mut pair = Pair {
        local,
        target,
        level: level - 1,
        budget,
    };
    Ok(match lk {
        Kind::Void => tk == Kind::Void,
        Kind::Fwd => {
            let local_union = l.kflag();
            if behind_ptr && tk != Kind::Fwd {
                (tk == Kind::Struct && !local_union) || (tk == Kind::Union && local_union)
            } else {
                tk == Kind::Fwd && local_union == t.kflag()
            }
        }
        Kind::Enum | Kind::Enum64 => tk.is_any_enum() && enums_match(&l, &t),
        Kind::Struct | Kind::Union => {
            if behind_ptr {
                lk == tk || (tk == Kind::Fwd && (lk == Kind::Union) == t.kflag())
            } else {
                lk == tk && composites_match(&mut pair, &l, &t, behind_ptr)?
            }
        }
        Kind::Int => {
            tk == Kind::Int && {
                let (li, ti) = (l.int(), t.int());
                li.map(|i| (i.size, i.encoding.is_signed()))
                    == ti.map(|i| (i.size, i.encoding.is_signed()))
            }
        }
        Kind::Ptr => tk == Kind::Ptr && pair.matches(l.size_or_type(), t.size_or_type(), true)?,
        Kind::Array => {
            let (la, ta) = (l.array(), t.array());
            match (la, ta) {
                (Some(la), Some(ta)) if la.nelems == ta.nelems => {
                    pair.matches(la.elem_type, ta.elem_type, behind_ptr)?
                }
                _ => false,
            }
        }
        Kind::FuncProto => {
            if tk != Kind::FuncProto || l.vlen() != t.vlen() {
                return Ok(false);
            }
            for (lp, tp) in l.params().zip(t.params()) {
                if !pair.matches(lp.type_id, tp.type_id, behind_ptr)? {
                    return Ok(false);
                }
            }
            pair.matches(l.size_or_type(), t.size_or_type(), behind_ptr)?
        }
        _ => false,
    })
}

fn enums_match(l: &Type<'_>, t: &Type<'_>) -> bool {
    if l.size() != t.size() || l.vlen() > t.vlen() {
        return false;
    }
    l.enum_values()
        .all(|lv| t.enum_values().any(|tv| names_match(lv.name, tv.name)))
}

/// Both sides of a `TYPE_MATCHES` check one level down, and its budget.
struct Pair<'b, 'l, 't> {
    local: &'l Btf,
    target: &'t Btf,
    level: u32,
    budget: &'b mut Budget,
}

impl Pair<'_, '_, '_> {
    fn matches(
        &mut self,
        local_id: TypeId,
        target_id: TypeId,
        behind_ptr: bool,
    ) -> Result<bool, BtfError> {
        types_match_at(
            self.local,
            local_id,
            self.target,
            target_id,
            behind_ptr,
            self.level,
            self.budget,
        )
    }
}

fn composites_match(
    pair: &mut Pair<'_, '_, '_>,
    l: &Type<'_>,
    t: &Type<'_>,
    behind_ptr: bool,
) -> Result<bool, BtfError> {
    if l.vlen() > t.vlen() {
        return Ok(false);
    }
    for lm in l.members() {
        let mut matched = false;
        for tm in t.members() {
            if !names_match(lm.name, tm.name) {
                continue;
            }
            if pair.matches(lm.type_id, tm.type_id, behind_ptr)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}
