//! Rewriting a program's BTF for kernels that lack some BTF kinds, the way
//! libbpf's `bpf_object__sanitize_btf` does, and fixing up `DATASEC`s the way
//! its `btf_fixup_datasec` does.
//!
//! Every rewrite keeps type ids stable (a record is replaced in place; at
//! most one type is appended), so instructions and `.BTF.ext` records that
//! refer to ids stay valid.

use std::collections::HashMap;

use crate::builder::{BtfBuilder, MemberDef, TypeData, TypeDef};
use crate::types::{IntEncoding, Linkage};
use crate::{BtfError, TypeId};

/// The BTF features a kernel supports (what libbpf probes with `FEAT_BTF_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BtfFeatures {
    /// `FUNC` and `FUNC_PROTO` (Linux 5.0).
    pub func: bool,
    /// `FUNC` with global linkage (5.6).
    pub func_global: bool,
    /// `VAR` and `DATASEC` (5.2).
    pub datasec: bool,
    /// `FLOAT` (5.13).
    pub float: bool,
    /// `DECL_TAG` (5.16).
    pub decl_tag: bool,
    /// `TYPE_TAG` (5.17).
    pub type_tag: bool,
    /// `ENUM64` and signed `ENUM` (6.0).
    pub enum64: bool,
}

impl BtfFeatures {
    /// A kernel that supports every kind (nothing is rewritten).
    pub const ALL: BtfFeatures = BtfFeatures {
        func: true,
        func_global: true,
        datasec: true,
        float: true,
        decl_tag: true,
        type_tag: true,
        enum64: true,
    };

    /// A kernel with only the original BTF kinds (Linux 4.18).
    pub const NONE: BtfFeatures = BtfFeatures {
        func: false,
        func_global: false,
        datasec: false,
        float: false,
        decl_tag: false,
        type_tag: false,
        enum64: false,
    };
}

/// Rewrites the types a kernel with `features` would reject:
///
/// - no `datasec`: `VAR` → 1-byte `INT`, `DATASEC` → `STRUCT` whose members
///   are its variables (`.` and `?` in the name become `_`);
/// - no `func`: `FUNC_PROTO` → `ENUM`, `FUNC` → `TYPEDEF`;
/// - no `func_global`: global `FUNC`s become static;
/// - no `float`: `FLOAT` → anonymous empty `STRUCT` of the same size;
/// - no `decl_tag`: `DECL_TAG` → anonymous 1-byte `INT`;
/// - no `type_tag`: `TYPE_TAG` → `CONST`;
/// - no `enum64`: an `ENUM64` whose values all fit 32 bits → `ENUM`, any
///   other → `UNION` of same-named members of a 1-byte placeholder `INT`
///   (appended once); signed `ENUM`s lose the sign flag.
pub fn sanitize(builder: &mut BtfBuilder, features: &BtfFeatures) {
    let mut enum64_placeholder: Option<TypeId> = None;
    let mut var_names: HashMap<TypeId, String> = HashMap::new();
    if !features.datasec {
        for (id, def) in builder.iter() {
            if matches!(def.data, TypeData::Var { .. }) {
                var_names.insert(id, def.name.clone());
            }
        }
    }
    let count = builder.len();
    for id in 1..count {
        let Some(def) = builder.get_mut(id) else {
            continue;
        };
        let replacement = match &mut def.data {
            TypeData::Var { .. } if !features.datasec => {
                Some(TypeDef::new(def.name.clone(), byte_int()))
            }
            TypeData::Datasec { size, vars } if !features.datasec => {
                let members = vars
                    .iter()
                    .map(|v| MemberDef {
                        name: var_names.get(&v.type_id).cloned().unwrap_or_default(),
                        type_id: v.type_id,
                        bit_offset: v.offset.saturating_mul(8),
                        bitfield_size: 0,
                    })
                    .collect();
                Some(TypeDef::new(
                    def.name.replace(['.', '?'], "_"),
                    TypeData::Composite {
                        is_union: false,
                        size: *size,
                        members,
                    },
                ))
            }
            TypeData::FuncProto { params, .. } if !features.func => Some(TypeDef::new(
                def.name.clone(),
                TypeData::Enum {
                    is_64: false,
                    signed: false,
                    size: 4,
                    values: params
                        .iter()
                        .map(|(n, t)| (n.clone(), u64::from(*t)))
                        .collect(),
                },
            )),
            TypeData::Func { proto, .. } if !features.func => {
                Some(TypeDef::new(def.name.clone(), TypeData::Typedef(*proto)))
            }
            TypeData::Func { linkage, .. }
                if !features.func_global && *linkage == Linkage::Global =>
            {
                *linkage = Linkage::Static;
                None
            }
            TypeData::Float { size } if !features.float => Some(TypeDef::new(
                "",
                TypeData::Composite {
                    is_union: false,
                    size: *size,
                    members: Vec::new(),
                },
            )),
            TypeData::DeclTag { .. } if !features.decl_tag => Some(TypeDef::new("", byte_int())),
            TypeData::TypeTag { type_id, .. } if !features.type_tag => {
                Some(TypeDef::new("", TypeData::Const(*type_id)))
            }
            TypeData::Enum {
                is_64: false,
                signed,
                ..
            } if !features.enum64 => {
                *signed = false;
                None
            }
            TypeData::Enum {
                is_64: true,
                signed,
                size,
                values,
            } if !features.enum64 => {
                let fits_32 = values.iter().all(|&(_, v)| {
                    if *signed {
                        i32::try_from(v as i64).is_ok()
                    } else {
                        v <= u64::from(u32::MAX)
                    }
                });
                if fits_32 {
                    Some(TypeDef::new(
                        def.name.clone(),
                        TypeData::Enum {
                            is_64: false,
                            signed: false,
                            size: *size,
                            values: values
                                .iter()
                                .map(|(n, v)| (n.clone(), *v & 0xffff_ffff))
                                .collect(),
                        },
                    ))
                } else {
                    let size = *size;
                    let names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
                    let name = def.name.clone();
                    let placeholder = *enum64_placeholder.get_or_insert_with(|| {
                        builder.add(TypeDef::new("enum64_placeholder", byte_int()))
                    });
                    let members = names
                        .into_iter()
                        .map(|name| MemberDef {
                            name,
                            type_id: placeholder,
                            bit_offset: 0,
                            bitfield_size: 0,
                        })
                        .collect();
                    if let Some(def) = builder.get_mut(id) {
                        *def = TypeDef::new(
                            name,
                            TypeData::Composite {
                                is_union: true,
                                size,
                                members,
                            },
                        );
                    }
                    continue;
                }
            }
            _ => None,
        };
        if let Some(new) = replacement {
            if let Some(def) = builder.get_mut(id) {
                *def = new;
            }
        }
    }
}

fn byte_int() -> TypeData {
    TypeData::Int {
        size: 1,
        encoding: IntEncoding(0),
        offset: 0,
        bits: 8,
    }
}

/// Fills in what clang leaves for the loader: for each `DATASEC` whose size
/// is 0, its size from `section_sizes` (ELF section name → size) and the
/// offset of each global variable from `symbol_offsets` (symbol name →
/// `st_value`); then sorts every section's variables by offset. Sections
/// with a size were laid out by a linker and keep their offsets.
///
/// Static and extern variables keep their offsets, and the `.kconfig` and
/// `.ksyms` sections (which have no ELF section) are left alone, as libbpf does.
pub fn fixup_datasecs(
    builder: &mut BtfBuilder,
    section_sizes: &HashMap<String, u32>,
    symbol_offsets: &HashMap<String, u32>,
) -> Result<(), BtfError> {
    let vars: HashMap<TypeId, (String, Linkage)> = builder
        .iter()
        .filter_map(|(id, def)| match def.data {
            TypeData::Var { linkage, .. } => Some((id, (def.name.clone(), linkage))),
            _ => None,
        })
        .collect();
    for (id, def) in builder.iter_mut() {
        let TypeData::Datasec { size, vars: infos } = &mut def.data else {
            continue;
        };
        if def.name == ".kconfig" || def.name == ".ksyms" {
            continue;
        }
        // A non-zero size means a linker already laid the section out.
        if *size == 0 {
            *size = *section_sizes
                .get(&def.name)
                .ok_or_else(|| BtfError::Fixup {
                    id,
                    reason: format!(
                        "DATASEC {:?} has no ELF section to take its size from",
                        def.name
                    ),
                })?;
            for info in infos.iter_mut() {
                let (name, linkage) = vars.get(&info.type_id).ok_or_else(|| BtfError::Fixup {
                    id,
                    reason: format!(
                        "DATASEC {:?} entry [{}] is not a VAR",
                        def.name, info.type_id
                    ),
                })?;
                if matches!(linkage, Linkage::Static | Linkage::Extern) {
                    continue;
                }
                info.offset = *symbol_offsets.get(name).ok_or_else(|| BtfError::Fixup {
                    id: info.type_id,
                    reason: format!("no ELF symbol for variable {name:?} in {:?}", def.name),
                })?;
            }
        }
        infos.sort_by_key(|v| v.offset);
    }
    Ok(())
}
