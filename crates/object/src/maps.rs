//! Map definitions: BTF-defined maps in `.maps`, legacy `struct bpf_map_def`s
//! in `maps`, and the array maps that hold global data.

use std::collections::BTreeMap;

use bpfkit_abi::{map_flags, MapType};
use bpfkit_btf::{Btf, Kind, TypeId};

use crate::elf::{Elf, SymKind};
use crate::error::ObjectError;

/// How a map is pinned in bpffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Not pinned.
    #[default]
    None,
    /// Pinned under its name in the pin directory (`LIBBPF_PIN_BY_NAME`).
    ByName,
}

/// Where a map definition came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// Global data: the contents of this ELF section.
    Data {
        /// Section name (`.data`, `.rodata`, `.bss`, `.rodata.str1.1`...).
        section: String,
    },
    /// The values of `.kconfig` externs.
    Kconfig,
    /// An inner map template of a map-in-map.
    Inner,
}

/// What a slot of a prog array or map-in-map is statically initialised with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitRef {
    /// The program of this name.
    Program(String),
    /// The map of this name.
    Map(String),
}

/// A map, as the object defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Name (symbol name, or section name for global data).
    pub name: String,
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// NUMA node, when set.
    pub numa_node: Option<u32>,
    /// `map_extra` (bloom filter hash count, ...).
    pub map_extra: u64,
    /// Pinning.
    pub pinning: Pinning,
    /// BTF type of the key, when the definition names one.
    pub key_type_id: Option<TypeId>,
    /// BTF type of the value, when the definition names one.
    pub value_type_id: Option<TypeId>,
    /// For map-in-map: the inner map template.
    pub inner: Option<Box<MapSpec>>,
    /// Initial contents of element 0 (global data, kconfig).
    pub data: Option<Vec<u8>>,
    /// Static initialisation of prog arrays and map-in-map, by index.
    pub init: BTreeMap<u32, InitRef>,
    /// Where the definition came from.
    pub origin: MapOrigin,
}

impl MapSpec {
    fn new(name: &str, origin: MapOrigin) -> MapSpec {
        MapSpec {
            name: name.to_string(),
            map_type: MapType::Unspec,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            map_flags: 0,
            numa_node: None,
            map_extra: 0,
            pinning: Pinning::None,
            key_type_id: None,
            value_type_id: None,
            inner: None,
            data: None,
            init: BTreeMap::new(),
            origin,
        }
    }

    /// Whether the map is frozen after its contents are written (`.rodata`, `.kconfig`).
    pub fn is_read_only(&self) -> bool {
        self.map_flags & map_flags::RDONLY_PROG != 0
    }
}

fn map_err(map: &str, reason: impl Into<String>) -> ObjectError {
    ObjectError::Map {
        map: map.to_string(),
        reason: reason.into(),
    }
}

/// `int (*name)[N]` encodes N: a pointer to an array of N elements.
fn encoded_int(btf: &Btf, type_id: TypeId, map: &str, field: &str) -> Result<u32, ObjectError> {
    let ptr = btf.resolve(type_id)?;
    let bad = || {
        map_err(
            map,
            format!("field `{field}` must be declared with __uint()"),
        )
    };
    if ptr.kind() != Kind::Ptr {
        return Err(bad());
    }
    let arr = btf.resolve(ptr.type_ref().ok_or_else(bad)?)?;
    Ok(arr.array().ok_or_else(bad)?.nelems)
}

/// Parses the BTF definition (a struct) of map `name`.
pub(crate) fn parse_btf_def(
    btf: &Btf,
    type_id: TypeId,
    name: &str,
    origin: MapOrigin,
) -> Result<MapSpec, ObjectError> {
    let def = btf.resolve(type_id)?;
    if def.kind() != Kind::Struct {
        return Err(map_err(
            name,
            format!("definition is a {}, not a struct", def.kind()),
        ));
    }
    let mut spec = MapSpec::new(name, origin);
    for m in def.members() {
        match m.name {
            "type" => {
                let n = encoded_int(btf, m.type_id, name, "type")?;
                spec.map_type = MapType::from_u32(n)
                    .ok_or_else(|| map_err(name, format!("unknown map type {n}")))?;
            }
            "max_entries" => spec.max_entries = encoded_int(btf, m.type_id, name, m.name)?,
            "map_flags" => spec.map_flags = encoded_int(btf, m.type_id, name, m.name)?,
            "numa_node" => spec.numa_node = Some(encoded_int(btf, m.type_id, name, m.name)?),
            "key_size" => spec.key_size = encoded_int(btf, m.type_id, name, m.name)?,
            "value_size" => spec.value_size = encoded_int(btf, m.type_id, name, m.name)?,
            "map_extra" => spec.map_extra = encoded_int(btf, m.type_id, name, m.name)? as u64,
            "pinning" => {
                spec.pinning = match encoded_int(btf, m.type_id, name, m.name)? {
                    0 => Pinning::None,
                    1 => Pinning::ByName,
                    n => return Err(map_err(name, format!("unknown pinning {n}"))),
                }
            }
            "key" | "value" => {
                let ptr = btf.resolve(m.type_id)?;
                let target = ptr
                    .type_ref()
                    .filter(|_| ptr.kind() == Kind::Ptr)
                    .ok_or_else(|| {
                        map_err(name, format!("`{}` must be declared with __type()", m.name))
                    })?;
                let size = btf.type_size(target)?;
                if m.name == "key" {
                    spec.key_size = size;
                    spec.key_type_id = Some(target);
                } else {
                    spec.value_size = size;
                    spec.value_type_id = Some(target);
                }
            }
            "values" => {
                // An array of pointers to the inner map definition (map-in-map)
                // or to a function prototype (prog array).
                let arr = btf.resolve(m.type_id)?;
                let elem = arr
                    .array()
                    .ok_or_else(|| map_err(name, "`values` must be an array"))?
                    .elem_type;
                let ptr = btf.resolve(elem)?;
                let pointee = ptr
                    .type_ref()
                    .filter(|_| ptr.kind() == Kind::Ptr)
                    .ok_or_else(|| map_err(name, "`values` must hold pointers"))?;
                let target = btf.resolve(pointee)?;
                if target.kind() == Kind::Struct {
                    let inner =
                        parse_btf_def(btf, pointee, &format!("{name}.inner"), MapOrigin::Inner)?;
                    spec.inner = Some(Box::new(inner));
                }
                if spec.value_size == 0 {
                    spec.value_size = 4;
                }
            }
            other => {
                return Err(map_err(
                    name,
                    format!("unknown field `{other}` in map definition"),
                ));
            }
        }
    }
    if spec.map_type == MapType::Unspec {
        return Err(map_err(name, "definition has no `type`"));
    }
    if spec.map_type.is_map_in_map() && spec.inner.is_none() {
        return Err(map_err(
            name,
            "map-in-map needs `__array(values, ...)` naming the inner map",
        ));
    }
    Ok(spec)
}

/// Parses every BTF-defined map in `.maps`.
pub(crate) fn btf_maps(elf: &Elf, btf: &Btf) -> Result<BTreeMap<String, MapSpec>, ObjectError> {
    let mut out = BTreeMap::new();
    let Some(section) = elf.section_by_name(".maps") else {
        return Ok(out);
    };
    let datasec = btf
        .find_by_name_kind(".maps", Kind::Datasec)
        .ok_or_else(|| crate::error::section_err(".maps", "no `.maps` DATASEC in the BTF"))?;
    let datasec = btf.type_by_id(datasec)?;
    for var in datasec.datasec_vars() {
        let v = btf.type_by_id(var.type_id)?;
        let name = v.name().to_string();
        let type_id = v
            .type_ref()
            .ok_or_else(|| map_err(&name, "variable has no type"))?;
        let mut spec = parse_btf_def(btf, type_id, &name, MapOrigin::Btf)?;
        // Static initialisation: relocations inside the `values` array.
        // LLVM leaves DATASEC offsets unset in objects; the ELF symbol has them.
        let sym = elf
            .symbols_in(section.index)
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| map_err(&name, "no ELF symbol in .maps"))?;
        let size = btf.type_size(type_id)? as u64;
        if let Some(values_off) = btf
            .resolve(type_id)?
            .member_by_name("values")
            .map(|m| m.bit_offset / 8)
        {
            let start = sym.value + values_off as u64;
            let end = sym.value + size.max(sym.size);
            for r in elf.relocs.get(&section.index).into_iter().flatten() {
                if r.offset < start || r.offset >= end {
                    continue;
                }
                let slot = ((r.offset - start) / 8) as u32;
                let sym = elf.symbol(r.symbol).ok_or_else(|| {
                    map_err(
                        &name,
                        format!("relocation at {:#x} names no symbol", r.offset),
                    )
                })?;
                let target = match sym.kind {
                    SymKind::Func => InitRef::Program(sym.name.clone()),
                    _ => InitRef::Map(sym.name.clone()),
                };
                spec.init.insert(slot, target);
                if let Some(n) = (slot + 1).checked_sub(spec.max_entries).filter(|&n| n > 0) {
                    spec.max_entries += n;
                }
            }
        }
        out.insert(name, spec);
    }
    Ok(out)
}

/// Parses legacy `struct bpf_map_def` maps in the `maps` section.
pub(crate) fn legacy_maps(elf: &Elf) -> Result<BTreeMap<String, MapSpec>, ObjectError> {
    let mut out = BTreeMap::new();
    let Some(section) = elf.sections.iter().find(|s| s.name == "maps") else {
        return Ok(out);
    };
    let data = section.data.unwrap_or(&[]);
    for sym in elf.symbols_in(section.index) {
        let off = sym.value as usize;
        let field = |i: usize| {
            elf.u32_at(data, off + i * 4).ok_or_else(|| {
                crate::error::at(
                    "maps",
                    &sym.name,
                    sym.value,
                    "struct bpf_map_def runs past the section",
                )
            })
        };
        let mut spec = MapSpec::new(&sym.name, MapOrigin::Legacy);
        let t = field(0)?;
        spec.map_type = MapType::from_u32(t)
            .ok_or_else(|| map_err(&sym.name, format!("unknown map type {t}")))?;
        spec.key_size = field(1)?;
        spec.value_size = field(2)?;
        spec.max_entries = field(3)?;
        spec.map_flags = field(4)?;
        out.insert(sym.name.clone(), spec);
    }
    Ok(out)
}

/// Whether a section holds global data that becomes an array map.
pub(crate) fn is_data_section(name: &str) -> bool {
    matches!(name, ".data" | ".rodata" | ".bss")
        || name.starts_with(".data.")
        || name.starts_with(".rodata.")
        || name.starts_with(".bss.")
}

/// The largest global data section accepted: above any kernel's array value
/// limit, and a guard against sizes a malformed header claims (`.bss` has no
/// bytes in the file to bound it).
pub const MAX_DATA_SECTION: u64 = 64 << 20;

/// The array map holding a global data section.
pub(crate) fn data_map(
    name: &str,
    size: u64,
    contents: Option<&[u8]>,
    btf: Option<&Btf>,
) -> Result<MapSpec, ObjectError> {
    if size > MAX_DATA_SECTION {
        return Err(crate::error::section_err(
            name,
            format!("{size} bytes of global data is more than the {MAX_DATA_SECTION}-byte limit"),
        ));
    }
    let mut spec = MapSpec::new(
        name,
        MapOrigin::Data {
            section: name.to_string(),
        },
    );
    spec.map_type = MapType::Array;
    spec.key_size = 4;
    spec.value_size = size as u32;
    spec.max_entries = 1;
    spec.data = Some(match contents {
        Some(b) => b.to_vec(),
        None => vec![0; size as usize],
    });
    if name.starts_with(".rodata") {
        // Programs may not write it; the loader freezes it after filling it.
        spec.map_flags |= map_flags::RDONLY_PROG;
    }
    spec.map_flags |= map_flags::MMAPABLE;
    spec.value_type_id = btf.and_then(|b| b.find_by_name_kind(name, Kind::Datasec));
    Ok(spec)
}
