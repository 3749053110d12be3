//! Candidate search, spec matching and value computation
//! (libbpf's `bpf_core_calc_relo_insn` and the functions it calls).

use crate::core::compat::{
    fields_compatible, kinds_compatible, types_compatible, types_match, Budget,
};
use crate::core::spec::{bits_of, is_flex_array, AccessSpec, Accessor, MAX_SPEC_LEN};
use crate::core::{essential_name, essential_name_len, CoreError};
use crate::{Btf, CoreRelo, CoreReloKind, Endian, Kind, TypeId};

/// The BTF a program is relocated against: the kernel's, plus the split
/// BTF of modules, searched only when the kernel's has no candidate.
#[derive(Clone, Debug)]
pub struct TargetBtfs<'t> {
    vmlinux: &'t Btf,
    modules: Vec<&'t Btf>,
}

impl<'t> TargetBtfs<'t> {
    /// Targets consisting of the kernel BTF alone.
    pub fn new(vmlinux: &'t Btf) -> Self {
        TargetBtfs {
            vmlinux,
            modules: Vec::new(),
        }
    }

    /// Adds a module's split BTF (parsed on top of `vmlinux`).
    pub fn with_module(mut self, module: &'t Btf) -> Self {
        self.modules.push(module);
        self
    }

    /// The BTF at `index`: 0 is vmlinux, `n` is the `n`-th module added.
    pub fn get(&self, index: usize) -> Option<&'t Btf> {
        match index {
            0 => Some(self.vmlinux),
            n => self.modules.get(n - 1).copied(),
        }
    }
}

/// What a relocation computes: the value the compiler wrote (`orig_val`,
/// from local BTF) and the value the target needs (`new_val`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreOutcome {
    /// Value computed against the local BTF; the instruction should hold it.
    pub orig_val: u64,
    /// Value computed against the target BTF.
    pub new_val: u64,
    /// The relocation cannot be satisfied: the instruction must be poisoned.
    pub poison: bool,
    /// Whether the instruction's current value must equal `orig_val`
    /// (off for bitfield offsets, which the compiler may compute differently).
    pub validate: bool,
    /// Size in bytes of the local field, for load/store size adjustment (0 if none).
    pub orig_size: u32,
    /// Size in bytes of the target field (0 if none).
    pub new_size: u32,
    /// The field size changed in a way a load or store cannot follow.
    pub fail_memsz_adjust: bool,
    /// The matched target type: index into [`TargetBtfs`] and type id.
    pub target: Option<(usize, TypeId)>,
}

impl CoreOutcome {
    fn new() -> CoreOutcome {
        CoreOutcome {
            orig_val: 0,
            new_val: 0,
            poison: false,
            validate: true,
            orig_size: 0,
            new_size: 0,
            fail_memsz_adjust: false,
            target: None,
        }
    }
}

/// Computes CO-RE relocations of one program's local BTF against targets.
///
/// Candidate lookups use each target's name index, built on first use and
/// kept inside the target [`Btf`], so relocating many records against
/// vmlinux costs a binary search per record.
#[derive(Clone, Debug)]
pub struct CoreRelocator<'l, 't> {
    local: &'l Btf,
    targets: TargetBtfs<'t>,
}

/// A candidate target type: which BTF, which id.
#[derive(Clone, Copy, Debug)]
struct Candidate<'t> {
    btf_index: usize,
    btf: &'t Btf,
    id: TypeId,
}

/// Field values from one spec: value, field size and type for load/store
/// size adjustment, and whether the instruction can be validated.
struct FieldValue {
    val: u64,
    size: u32,
    type_id: TypeId,
    validate: bool,
}

impl<'l, 't> CoreRelocator<'l, 't> {
    /// A relocator for programs described by `local`.
    pub fn new(local: &'l Btf, targets: TargetBtfs<'t>) -> Self {
        CoreRelocator { local, targets }
    }

    /// Computes a relocation record from `.BTF.ext` (its access string is
    /// read from the local BTF).
    pub fn relocate_record(&self, relo: &CoreRelo) -> Result<CoreOutcome, CoreError> {
        let access = relo.access_str(self.local)?;
        self.relocate(relo.type_id, access, relo.kind)
    }

    /// Computes the relocation of `kind` for local type `type_id` and access
    /// string `access`.
    pub fn relocate(
        &self,
        type_id: TypeId,
        access: &str,
        kind: CoreReloKind,
    ) -> Result<CoreOutcome, CoreError> {
        let local_spec = AccessSpec::parse(self.local, type_id, access, kind)?;
        if kind == CoreReloKind::TypeIdLocal {
            // The compiler's value may be stale after linking: never validate.
            return Ok(CoreOutcome {
                orig_val: u64::from(type_id),
                new_val: u64::from(type_id),
                validate: false,
                ..CoreOutcome::new()
            });
        }
        let local_type = self.local.type_by_id(type_id)?;
        if local_type.name().is_empty() {
            return Err(CoreError::InvalidSpec {
                type_id,
                access: access.to_string(),
                kind,
                reason: "relocations against anonymous types are not supported".into(),
            });
        }
        let ambiguous = |reason: String| CoreError::Ambiguous {
            type_id,
            access: access.to_string(),
            reason,
        };
        let mut chosen: Option<(CoreOutcome, AccessSpec<'_>)> = None;
        for cand in self.candidates(local_type.name(), local_type.kind())? {
            let Some(cand_spec) = match_spec(&local_spec, cand.btf, cand.id)? else {
                continue;
            };
            let mut outcome = calc_relo(&local_spec, Some(&cand_spec))?;
            outcome.target = Some((cand.btf_index, cand.id));
            match &chosen {
                None => chosen = Some((outcome, cand_spec)),
                Some((first, first_spec)) => {
                    if cand_spec.bit_offset != first_spec.bit_offset {
                        return Err(ambiguous(format!(
                            "field offset {} in [{}] != {} in [{}]",
                            cand_spec.bit_offset,
                            cand.id,
                            first_spec.bit_offset,
                            first_spec.root_type_id
                        )));
                    }
                    if outcome.poison != first.poison || outcome.new_val != first.new_val {
                        return Err(ambiguous(format!(
                            "value {} from [{}] != {} from [{}]",
                            outcome.new_val, cand.id, first.new_val, first_spec.root_type_id
                        )));
                    }
                }
            }
        }
        match chosen {
            Some((outcome, _)) => Ok(outcome),
            None => calc_relo(&local_spec, None),
        }
    }

    /// Target types whose essential name and kind match the local type's:
    /// vmlinux first, modules only if vmlinux has none.
    fn candidates(
        &self,
        local_name: &str,
        local_kind: Kind,
    ) -> Result<Vec<Candidate<'t>>, CoreError> {
        let essential = essential_name(local_name);
        let mut out = Vec::new();
        for index in 0..=self.targets.modules.len() {
            let Some(btf) = self.targets.get(index) else {
                continue;
            };
            let mut ids: Vec<TypeId> = btf
                .own_ids_named(essential.as_bytes(), false)
                .into_iter()
                .filter(|&id| {
                    btf.type_by_id(id).is_ok_and(|t| {
                        kinds_compatible(t.kind(), local_kind)
                            && essential_name_len(t.name()) == essential.len()
                    })
                })
                .collect();
            ids.sort_unstable();
            out.extend(ids.into_iter().map(|id| Candidate {
                btf_index: index,
                btf,
                id,
            }));
            if !out.is_empty() {
                break;
            }
        }
        Ok(out)
    }
}

/// Matches a local spec against a candidate root type, producing the
/// target spec, or `None` if the candidate does not have the accessed
/// field, enumerator or a compatible type (`bpf_core_spec_match`).
fn match_spec<'t>(
    local: &AccessSpec<'_>,
    target: &'t Btf,
    target_root: TypeId,
) -> Result<Option<AccessSpec<'t>>, CoreError> {
    let mut spec = AccessSpec::empty(target, target_root, local.kind);
    if local.kind.is_type_based() {
        let matched = if local.kind == CoreReloKind::TypeMatches {
            types_match(local.btf, local.root_type_id, target, target_root)?
        } else {
            types_compatible(local.btf, local.root_type_id, target, target_root)?
        };
        return Ok(matched.then_some(spec));
    }
    if local.kind.is_enumval_based() {
        let t = target.resolve(target_root)?;
        let Some(local_name) = local.accessors.first().and_then(|a| a.name) else {
            return Ok(None);
        };
        let local_ess = essential_name(local_name);
        for (i, v) in t.enum_values().enumerate() {
            if essential_name(v.name) == local_ess {
                spec.accessors.push(Accessor {
                    type_id: t.id(),
                    index: i as u32,
                    name: Some(v.name),
                });
                spec.raw.push(i as u32);
                return Ok(Some(spec));
            }
        }
        return Ok(None);
    }
    let mut target_id = target_root;
    let mut budget = Budget::new();
    for (i, acc) in local.accessors.iter().enumerate() {
        let t = target.resolve(target_id)?;
        target_id = t.id();
        if acc.name.is_some() {
            match match_member(local.btf, acc, target, target_id, &mut spec, &mut budget)? {
                Some(next) => target_id = next,
                None => return Ok(None),
            }
            continue;
        }
        // The root accessor indexes the root itself; later ones index arrays.
        if i > 0 {
            let Some(a) = t.array() else {
                return Ok(None);
            };
            let flex = is_flex_array(target, spec.accessors.last(), a.nelems);
            if !flex && acc.index >= a.nelems {
                return Ok(None);
            }
            target_id = target.resolve(a.elem_type)?.id();
        }
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(too_deep(local));
        }
        spec.accessors.push(Accessor {
            type_id: target_id,
            index: acc.index,
            name: None,
        });
        spec.raw.push(acc.index);
        let size = target.type_size(target_id)?;
        spec.bit_offset = spec.bit_offset.saturating_add(bits_of(acc.index, size));
    }
    Ok(Some(spec))
}

fn too_deep(local: &AccessSpec<'_>) -> CoreError {
    CoreError::InvalidSpec {
        type_id: local.root_type_id,
        access: local.to_string(),
        kind: local.kind,
        reason: "target access path too deep".into(),
    }
}

/// Finds the member named like the local accessor in target composite
/// `target_id`, descending into anonymous members; on success pushes its
/// accessor onto `spec` and returns the member's type
/// (`bpf_core_match_member`).
fn match_member<'t>(
    local_btf: &Btf,
    local_acc: &Accessor<'_>,
    target: &'t Btf,
    target_id: TypeId,
    spec: &mut AccessSpec<'t>,
    budget: &mut Budget,
) -> Result<Option<TypeId>, CoreError> {
    budget.step(target_id)?;
    let local_type = local_btf.type_by_id(local_acc.type_id)?;
    let t = target.resolve(target_id)?;
    if !t.kind().is_composite() {
        return Ok(None);
    }
    let Some(local_member) = local_type.member(local_acc.index as usize) else {
        return Ok(None);
    };
    for (i, m) in t.raw_members().enumerate() {
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(CoreError::InvalidSpec {
                type_id: spec.root_type_id,
                access: spec.to_string(),
                kind: spec.kind,
                reason: "target access path too deep".into(),
            });
        }
        // Speculatively descend; undone below if this member is not it.
        spec.bit_offset = spec.bit_offset.saturating_add(u64::from(m.bit_offset));
        spec.raw.push(i as u32);
        if target.str_is_empty(m.name_off) {
            if let Some(found) =
                match_member(local_btf, local_acc, target, m.type_id, spec, budget)?
            {
                return Ok(Some(found));
            }
        } else if target.str_eq(m.name_off, local_member.name) {
            if !fields_compatible(local_btf, local_member.type_id, target, m.type_id)? {
                return Ok(None);
            }
            spec.accessors.push(Accessor {
                type_id: t.id(),
                index: i as u32,
                name: Some(target.str_or_empty(m.name_off)),
            });
            return Ok(Some(m.type_id));
        }
        spec.bit_offset = spec.bit_offset.saturating_sub(u64::from(m.bit_offset));
        spec.raw.pop();
    }
    Ok(None)
}

/// Computes original and new values from the local and (if found) target
/// specs (`bpf_core_calc_relo`).
fn calc_relo(
    local: &AccessSpec<'_>,
    target: Option<&AccessSpec<'_>>,
) -> Result<CoreOutcome, CoreError> {
    let kind = local.kind;
    let mut out = CoreOutcome::new();
    if kind.is_field_based() {
        let orig = field_value(local)?;
        out.orig_val = orig.val;
        out.orig_size = orig.size;
        out.validate = orig.validate;
        let new = match target {
            Some(t) => field_value(t)?,
            None if kind == CoreReloKind::FieldExists => FieldValue {
                val: 0,
                size: 0,
                type_id: 0,
                validate: true,
            },
            // A missing field cannot be accessed: only a reached access fails.
            None => {
                return Ok(CoreOutcome {
                    orig_val: out.orig_val,
                    ..poisoned()
                })
            }
        };
        out.new_val = new.val;
        out.new_size = new.size;
        if let Some(target) = target {
            out.fail_memsz_adjust = out.orig_size != out.new_size
                && !size_change_safe(local.btf, orig.type_id, target.btf, new.type_id);
        }
    } else if kind.is_type_based() {
        out.orig_val = type_value(local)?;
        out.new_val = match target {
            Some(t) => type_value(t)?,
            None => 0,
        };
    } else {
        out.orig_val = enum_value(local).unwrap_or(0);
        match target {
            Some(t) => out.new_val = enum_value(t).unwrap_or(0),
            None if kind == CoreReloKind::EnumvalExists => out.new_val = 0,
            None => {
                return Ok(CoreOutcome {
                    orig_val: out.orig_val,
                    ..poisoned()
                })
            }
        }
    }
    Ok(out)
}

fn poisoned() -> CoreOutcome {
    CoreOutcome {
        poison: true,
        ..CoreOutcome::new()
    }
}

/// Loads and stores may change size for pointers (32-bit kernels) and
/// unsigned integers; anything else would read the wrong bits.
fn size_change_safe(local: &Btf, local_id: TypeId, target: &Btf, target_id: TypeId) -> bool {
    let (Ok(l), Ok(t)) = (local.type_by_id(local_id), target.type_by_id(target_id)) else {
        return false;
    };
    if l.kind() == Kind::Ptr && t.kind() == Kind::Ptr {
        return true;
    }
    match (l.int(), t.int()) {
        (Some(li), Some(ti)) => !li.encoding.is_signed() && !ti.encoding.is_signed(),
        _ => false,
    }
}

fn invalid(spec: &AccessSpec<'_>, reason: String) -> CoreError {
    CoreError::InvalidSpec {
        type_id: spec.root_type_id,
        access: spec.to_string(),
        kind: spec.kind,
        reason,
    }
}

/// `bpf_core_calc_field_relo` for one spec.
fn field_value(spec: &AccessSpec<'_>) -> Result<FieldValue, CoreError> {
    let kind = spec.kind;
    if kind == CoreReloKind::FieldExists {
        return Ok(FieldValue {
            val: 1,
            size: 0,
            type_id: 0,
            validate: true,
        });
    }
    let btf = spec.btf;
    let acc = spec
        .accessors
        .last()
        .ok_or_else(|| invalid(spec, "empty access path".into()))?;
    let Some(_) = acc.name else {
        let size = btf.type_size(acc.type_id)?;
        let (val, field_size, type_id) = match kind {
            CoreReloKind::FieldByteOffset => (spec.bit_offset / 8, size, acc.type_id),
            CoreReloKind::FieldByteSize => (u64::from(size), 0, 0),
            _ => {
                return Err(invalid(
                    spec,
                    format!("{} cannot apply to an array element", kind.as_str()),
                ))
            }
        };
        return Ok(FieldValue {
            val,
            size: field_size,
            type_id,
            validate: true,
        });
    };
    let parent = btf.type_by_id(acc.type_id)?;
    let member = parent.member(acc.index as usize).ok_or_else(|| {
        invalid(
            spec,
            format!("member {} of [{}] out of range", acc.index, acc.type_id),
        )
    })?;
    let field_type = btf.resolve(member.type_id)?;
    let bit_off = spec.bit_offset;
    let bitfield = member.bitfield_size > 0;
    let (byte_off, byte_sz, bit_sz) = if bitfield {
        let bit_sz = u64::from(member.bitfield_size);
        let mut byte_sz = u64::from(field_type.size().unwrap_or(0));
        if byte_sz == 0 {
            return Err(invalid(
                spec,
                format!("bitfield of sizeless [{}]", field_type.id()),
            ));
        }
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        // The smallest naturally aligned load that covers the bitfield.
        while bit_off.saturating_add(bit_sz) - byte_off * 8 > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err(invalid(
                    spec,
                    "bitfield cannot be read with a 64-bit load".into(),
                ));
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz, bit_sz)
    } else {
        let byte_sz = u64::from(btf.type_size(field_type.id())?);
        (bit_off / 8, byte_sz, byte_sz * 8)
    };
    // Bitfield offsets and sizes may legitimately differ from what the
    // compiler chose; only signedness and the right shift are unambiguous.
    let mut validate = !bitfield;
    let mut size = 0;
    let mut type_id = 0;
    let val = match kind {
        CoreReloKind::FieldByteOffset => {
            if !bitfield {
                size = byte_sz as u32;
                type_id = field_type.id();
            }
            byte_off
        }
        CoreReloKind::FieldSigned => {
            validate = true;
            let signed_enum = field_type.kind().is_any_enum() && field_type.kflag();
            let signed_int = field_type.int().is_some_and(|i| i.encoding.is_signed());
            u64::from(signed_enum || signed_int)
        }
        CoreReloKind::FieldByteSize => byte_sz,
        CoreReloKind::FieldLShiftU64 => match btf.endian() {
            Endian::Little => 64u64.wrapping_sub(bit_off.saturating_add(bit_sz) - byte_off * 8),
            Endian::Big => (8u64.wrapping_sub(byte_sz))
                .wrapping_mul(8)
                .wrapping_add(bit_off - byte_off * 8),
        },
        CoreReloKind::FieldRShiftU64 => {
            validate = true;
            64u64.wrapping_sub(bit_sz)
        }
        _ => return Err(invalid(spec, "not a field relocation".into())),
    };
    Ok(FieldValue {
        val,
        size,
        type_id,
        validate,
    })
}

/// `bpf_core_calc_type_relo` for one spec.
fn type_value(spec: &AccessSpec<'_>) -> Result<u64, CoreError> {
    Ok(match spec.kind {
        CoreReloKind::TypeIdTarget => u64::from(spec.root_type_id),
        CoreReloKind::TypeExists | CoreReloKind::TypeMatches => 1,
        CoreReloKind::TypeSize => u64::from(spec.btf.type_size(spec.root_type_id)?),
        CoreReloKind::TypeIdLocal => u64::from(spec.root_type_id),
        _ => return Err(invalid(spec, "not a type relocation".into())),
    })
}

/// `bpf_core_calc_enumval_relo` for one spec. 32-bit enumerator values are
/// sign-extended, as libbpf reads them through an `__s32`.
fn enum_value(spec: &AccessSpec<'_>) -> Option<u64> {
    if spec.kind == CoreReloKind::EnumvalExists {
        return Some(1);
    }
    let acc = spec.accessors.first()?;
    let t = spec.btf.type_by_id(acc.type_id).ok()?;
    let v = t.enum_values().nth(acc.index as usize)?;
    Some(if t.kind() == Kind::Enum {
        v.value as u32 as i32 as i64 as u64
    } else {
        v.value
    })
}
