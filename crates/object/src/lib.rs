//! Clang-compiled BPF ELF objects, read completely into one deterministic,
//! kernel-agnostic [`ObjectSpec`] that the userspace VM and the kernel
//! backend both load.
//!
//! Like cilium/ebpf's `CollectionSpec`, the spec is plain data: programs with
//! their subprograms linked in and every pending relocation named, maps with
//! their definitions and initial contents, externs, BTF. The same bytes always
//! give the same spec; nothing here touches the running system.
//!
//! ```no_run
//! let spec = bpfkit_object::ObjectSpec::from_file("prog.bpf.o".as_ref())?;
//! for (name, prog) in &spec.programs {
//!     println!("{name}: {} in {} ({} insns)", prog.kind.prog_type, prog.section, prog.insns.len());
//! }
//! # Ok::<(), bpfkit_object::ObjectError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod dwarf;
mod elf;
mod error;
mod kconfig;
mod link;
mod maps;
mod section;

use std::collections::BTreeMap;
use std::path::Path;

use bpfkit_btf::{Btf, BtfExt, CoreRelo, CoreRelocator, FuncInfo, Kind, LineInfo, TargetBtfs};
use bpfkit_isa::Insn;

pub use error::ObjectError;
pub use kconfig::{KconfigExtern, KconfigType, KernelConfig, COMPUTED_EXTERNS};
pub use link::{
    RelocTarget, Relocation, R_BPF_64_32, R_BPF_64_64, R_BPF_64_ABS32, R_BPF_64_ABS64,
    R_BPF_64_NODYLD32,
};
pub use maps::{InitRef, MapOrigin, MapSpec, Pinning};
pub use section::{parse_section, AttachTarget, ProgramKind, SectionKind};

/// One program: an entry function of a program section, linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// Function name.
    pub name: String,
    /// ELF section (the `SEC()` name).
    pub section: String,
    /// What the section name says: program type, attach type and target.
    pub kind: SectionKind,
    /// Instructions, with the subprograms it calls appended.
    pub insns: Vec<Insn>,
    /// References to maps, global data and externs, to resolve at load.
    pub relocations: Vec<Relocation>,
    /// `bpf_func_info` records; `insn_off` is an instruction index here.
    pub func_info: Vec<FuncInfo>,
    /// `bpf_line_info` records; `insn_off` is an instruction index here.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocations; `insn_off` is an instruction index here.
    pub core_relos: Vec<CoreRelo>,
}

/// An extern the object declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternSpec {
    /// A `__kconfig` value, stored in the `.kconfig` map.
    Kconfig(KconfigExtern),
    /// A `__ksym` kernel variable or function.
    Ksym {
        /// Symbol name.
        name: String,
        /// A function (kfunc) rather than a variable.
        is_func: bool,
        /// Declared `__weak`.
        weak: bool,
    },
}

/// A global variable of an object, found through its BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalVariable {
    /// The C name.
    pub name: String,
    /// The map holding it: `.rodata`, `.data`, `.bss` or a named subsection.
    pub map: String,
    /// Byte offset in the map's value.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Its BTF type.
    pub type_id: u32,
    /// In a `.rodata` section: settable before load only (the map is frozen).
    pub read_only: bool,
}

/// Everything a BPF object defines.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    /// Programs by function name.
    pub programs: BTreeMap<String, ProgramSpec>,
    /// Maps by name, including global data sections and `.kconfig`.
    pub maps: BTreeMap<String, MapSpec>,
    /// Externs by name.
    pub externs: BTreeMap<String, ExternSpec>,
    /// The `license` section.
    pub license: String,
    /// The `version` section, if any.
    pub kern_version: Option<u32>,
    /// The object's BTF, as the compiler left it.
    pub btf: Option<Btf>,
    /// Sizes of the object's sections, by name (for BTF DATASEC fix-ups).
    pub section_sizes: BTreeMap<String, u32>,
    /// Offsets of data symbols (variables, map definitions, kconfig externs)
    /// in their sections, by name (for BTF DATASEC fix-ups).
    pub symbol_offsets: BTreeMap<String, u32>,
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl ObjectSpec {
    /// Reads an object file.
    pub fn from_file(path: &Path) -> Result<ObjectSpec, ObjectError> {
        let bytes = std::fs::read(path).map_err(|error| ObjectError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        ObjectSpec::parse(&bytes)
    }

    /// Parses an object from its bytes (any alignment).
    pub fn parse(bytes: &[u8]) -> Result<ObjectSpec, ObjectError> {
        // The ELF reader views headers in place and needs them 8-byte
        // aligned; bytes from include_bytes! or a sub-slice may not be.
        let mut buf = Vec::new();
        let bytes = if bytes.as_ptr() as usize % 8 == 0 {
            bytes
        } else {
            buf.resize(bytes.len() + 8, 0u8);
            let skew = (8 - buf.as_ptr() as usize % 8) % 8;
            buf[skew..skew + bytes.len()].copy_from_slice(bytes);
            &buf[skew..skew + bytes.len()]
        };
        let elf = elf::Elf::parse(bytes)?;
        let license = elf
            .section_by_name("license")
            .and_then(|s| s.data)
            .map(cstr)
            .unwrap_or_default();
        let kern_version = match elf.section_by_name("version").and_then(|s| s.data) {
            Some(d) => Some(elf.u32_at(d, 0).ok_or_else(|| {
                error::section_err("version", "must hold a 4-byte kernel version")
            })?),
            None => None,
        };
        let btf = match elf.section_by_name(".BTF").and_then(|s| s.data) {
            Some(d) => Some(Btf::parse(d)?),
            None => None,
        };
        let ext = match elf.section_by_name(".BTF.ext").and_then(|s| s.data) {
            Some(d) => Some(BtfExt::parse(d)?),
            None => None,
        };

        let mut maps = maps::legacy_maps(&elf)?;
        if let Some(btf) = &btf {
            for (name, spec) in maps::btf_maps(&elf, btf)? {
                maps.insert(name, spec);
            }
        } else if elf.section_by_name(".maps").is_some() {
            return Err(error::section_err(
                ".maps",
                "BTF-defined maps need the object's .BTF section",
            ));
        }
        for s in &elf.sections {
            if maps::is_data_section(&s.name) && s.size > 0 {
                maps.insert(
                    s.name.clone(),
                    maps::data_map(&s.name, s.size, s.data, btf.as_ref())?,
                );
            }
        }

        // Externs: undefined symbols, .kconfig ones laid out in their map.
        let weak: BTreeMap<String, bool> = elf
            .symbols
            .iter()
            .flatten()
            .filter(|s| s.undefined && !s.name.is_empty())
            .map(|s| (s.name.clone(), s.weak))
            .collect();
        let mut externs = BTreeMap::new();
        let mut kconfig_offsets = BTreeMap::new();
        if let Some(btf) = &btf {
            let (kcfg, size) = kconfig::layout(btf, &weak)?;
            if !kcfg.is_empty() {
                let mut spec = maps::data_map(".kconfig", size as u64, None, Some(btf))?;
                spec.origin = MapOrigin::Kconfig;
                // As libbpf's bpf_object__init_kconfig_map: read-only to
                // programs and frozen once filled, so the kernel's verifier
                // treats the values as constants and prunes dead branches.
                spec.map_flags |= bpfkit_abi::map_flags::RDONLY_PROG;
                maps.insert(".kconfig".into(), spec);
            }
            for k in kcfg {
                kconfig_offsets.insert(k.name.clone(), k.offset);
                externs.insert(k.name.clone(), ExternSpec::Kconfig(k));
            }
            if let Some(ksyms) = btf.find_by_name_kind(".ksyms", Kind::Datasec) {
                for v in btf.type_by_id(ksyms)?.datasec_vars() {
                    let t = btf.type_by_id(v.type_id)?;
                    let name = t.name().to_string();
                    externs.insert(
                        name.clone(),
                        ExternSpec::Ksym {
                            is_func: t.kind() == Kind::Func,
                            weak: weak.get(&name).copied().unwrap_or(false),
                            name,
                        },
                    );
                }
            }
        }

        let linker = link::Linker::new(&elf, kconfig_offsets)?;
        let mut programs = BTreeMap::new();
        for (name, section) in linker.entry_points() {
            let sec_name = elf
                .section(section)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let kind = parse_section(&sec_name).ok_or_else(|| {
                error::at(
                    &sec_name,
                    &name,
                    0,
                    "unknown program section name (see libbpf's SEC() names)",
                )
            })?;
            let linked = linker.link(&name, section, btf.as_ref(), ext.as_ref())?;
            for r in &linked.relocations {
                if let RelocTarget::Map(m) | RelocTarget::MapValue { map: m, .. } = &r.target {
                    if !maps.contains_key(m) {
                        return Err(error::at(
                            &sec_name,
                            &name,
                            r.insn as u64 * 8,
                            format!("refers to unknown map `{m}`"),
                        ));
                    }
                }
            }
            programs.insert(
                name.clone(),
                ProgramSpec {
                    name,
                    section: sec_name,
                    kind,
                    insns: linked.insns,
                    relocations: linked.relocations,
                    func_info: linked.func_info,
                    line_info: linked.line_info,
                    core_relos: linked.core_relos,
                },
            );
        }
        // Static inits must name things that exist.
        for m in maps.values() {
            for target in m.init.values() {
                let ok = match target {
                    InitRef::Program(p) => programs.contains_key(p),
                    InitRef::Map(n) => maps.contains_key(n),
                };
                if !ok {
                    return Err(ObjectError::Map {
                        map: m.name.clone(),
                        reason: format!("static initialiser names unknown {target:?}"),
                    });
                }
            }
        }
        let mut section_sizes: BTreeMap<String, u32> = elf
            .sections
            .iter()
            .filter(|s| !s.name.is_empty())
            .map(|s| (s.name.clone(), s.size as u32))
            .collect();
        let mut symbol_offsets: BTreeMap<String, u32> = elf
            .symbols
            .iter()
            .flatten()
            .filter(|s| s.kind == elf::SymKind::Object && !s.undefined && !s.name.is_empty())
            .map(|s| (s.name.clone(), s.value as u32))
            .collect();
        if let Some(k) = maps.get(".kconfig") {
            section_sizes.insert(".kconfig".into(), k.value_size);
        }
        for e in externs.values() {
            if let ExternSpec::Kconfig(k) = e {
                symbol_offsets.insert(k.name.clone(), k.offset);
            }
        }
        Ok(ObjectSpec {
            programs,
            maps,
            externs,
            license,
            kern_version,
            btf,
            section_sizes,
            symbol_offsets,
        })
    }

    /// The object's BTF as a kernel will accept it: DATASEC sizes and variable
    /// offsets filled in from the ELF (compilers leave them 0), then kinds the
    /// kernel lacks rewritten as libbpf does. `None` without BTF.
    pub fn kernel_btf(
        &self,
        features: &bpfkit_btf::BtfFeatures,
    ) -> Result<Option<Vec<u8>>, ObjectError> {
        let Some(btf) = &self.btf else {
            return Ok(None);
        };
        let mut builder = bpfkit_btf::BtfBuilder::from_btf(btf)?;
        let sizes: std::collections::HashMap<String, u32> = self
            .section_sizes
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let offsets: std::collections::HashMap<String, u32> = self
            .symbol_offsets
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        bpfkit_btf::fixup_datasecs(&mut builder, &sizes, &offsets)?;
        bpfkit_btf::sanitize(&mut builder, features);
        Ok(Some(builder.encode_preserving_strings(btf.endian(), btf)?))
    }

    /// The object's global variables: every variable of a `.rodata*`,
    /// `.data*` or `.bss*` section, with where it lives and its C type.
    pub fn global_variables(&self) -> Vec<GlobalVariable> {
        let Some(btf) = &self.btf else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (map_name, spec) in &self.maps {
            let MapOrigin::Data { .. } = spec.origin else {
                continue;
            };
            let Some(sec) = btf.find_by_name_kind(map_name, Kind::Datasec) else {
                continue;
            };
            let Ok(sec) = btf.type_by_id(sec) else {
                continue;
            };
            for v in sec.datasec_vars() {
                let Ok(var) = btf.type_by_id(v.type_id) else {
                    continue;
                };
                let type_id = var.type_ref().unwrap_or(0);
                let (Ok(size), Some(&offset)) =
                    (btf.type_size(type_id), self.symbol_offsets.get(var.name()))
                else {
                    continue;
                };
                out.push(GlobalVariable {
                    name: var.name().to_string(),
                    map: map_name.clone(),
                    offset,
                    size,
                    type_id,
                    read_only: map_name.starts_with(".rodata"),
                });
            }
        }
        out
    }

    /// Sets global variable `name` (a `const volatile` knob in `.rodata`, or a
    /// `.data`/`.bss` variable) to `value` before the object is loaded, as a
    /// libbpf skeleton's `rodata->name = value` does. `value` must have the
    /// variable's size.
    pub fn set_global(&mut self, name: &str, value: &[u8]) -> Result<(), ObjectError> {
        let err = |reason: String| ObjectError::Map {
            map: name.to_string(),
            reason,
        };
        if self.btf.is_none() {
            return Err(err("the object has no BTF to find globals in".into()));
        }
        let var = self
            .global_variables()
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| err("no global variable of this name".into()))?;
        let size = var.size as usize;
        if value.len() != size {
            return Err(err(format!("is {size} bytes, the value {}", value.len())));
        }
        let offset = var.offset as usize;
        let data = self
            .maps
            .get_mut(&var.map)
            .and_then(|m| m.data.as_mut())
            .ok_or_else(|| err(format!("{} has no contents", var.map)))?;
        data.get_mut(offset..offset + size)
            .ok_or_else(|| err(format!("offset {offset} lies outside {}", var.map)))?
            .copy_from_slice(value);
        Ok(())
    }

    /// The names of the object's `.kconfig` externs (`CONFIG_*` and the
    /// values libbpf computes, such as `LINUX_KERNEL_VERSION`), so that a
    /// loader reads or probes only what the object uses.
    pub fn kconfig_names(&self) -> impl Iterator<Item = &str> {
        self.externs.values().filter_map(|e| match e {
            ExternSpec::Kconfig(k) => Some(k.name.as_str()),
            ExternSpec::Ksym { .. } => None,
        })
    }

    /// Fills the `.kconfig` map from the kernel's configuration.
    pub fn apply_kconfig(&mut self, config: &KernelConfig) -> Result<(), ObjectError> {
        let externs: Vec<KconfigExtern> = self
            .externs
            .values()
            .filter_map(|e| match e {
                ExternSpec::Kconfig(k) => Some(k.clone()),
                ExternSpec::Ksym { .. } => None,
            })
            .collect();
        if let Some(data) = self.maps.get_mut(".kconfig").and_then(|m| m.data.as_mut()) {
            kconfig::fill(&externs, config, data)?;
        }
        Ok(())
    }

    /// Applies every program's CO-RE relocations against `targets` (the
    /// kernel's BTF, plus modules); see [`apply_core_relocations`].
    pub fn apply_core(&mut self, targets: TargetBtfs<'_>) -> Result<(), ObjectError> {
        let Some(local) = self.btf.as_ref() else {
            return Ok(());
        };
        let relocator = CoreRelocator::new(local, targets);
        for prog in self.programs.values_mut() {
            relocate_program(prog, &relocator)?;
        }
        Ok(())
    }

    /// The source line of instruction `insn` of `program`, from BTF line info:
    /// `(file, line, column, text)`.
    pub fn source_line(&self, program: &str, insn: usize) -> Option<(String, u32, u32, String)> {
        let btf = self.btf.as_ref()?;
        let prog = self.programs.get(program)?;
        let rec = prog
            .line_info
            .iter()
            .rev()
            .find(|l| l.insn_off as usize <= insn)?;
        Some((
            rec.file_name(btf).ok()?.to_string(),
            rec.line,
            rec.col,
            rec.line_text(btf).ok()?.trim().to_string(),
        ))
    }
}

/// Applies `prog`'s CO-RE relocations, computed from the object's BTF
/// (`local`) against `targets` (the kernel's BTF, plus modules), patching its
/// instructions in place. As in libbpf, a relocation that cannot be resolved
/// poisons its instruction rather than failing, so only a reached one fails
/// (at verification, or in the VM).
pub fn apply_core_relocations(
    prog: &mut ProgramSpec,
    local: &Btf,
    targets: TargetBtfs<'_>,
) -> Result<(), ObjectError> {
    relocate_program(prog, &CoreRelocator::new(local, targets))
}

fn relocate_program(prog: &mut ProgramSpec, relocator: &CoreRelocator) -> Result<(), ObjectError> {
    if prog.core_relos.is_empty() {
        return Ok(());
    }
    let core_err = |error| ObjectError::Core {
        program: prog.name.clone(),
        error,
    };
    let mut slots = bpfkit_isa::encode_slots(&prog.insns);
    for relo in &prog.core_relos {
        let outcome = relocator.relocate_record(relo).map_err(core_err)?;
        bpfkit_btf::core::patch_insn(&mut slots, relo.insn_off as usize, &outcome)
            .map_err(core_err)?;
    }
    prog.insns = bpfkit_isa::decode_slots(&slots).map_err(|e| ObjectError::At {
        section: prog.section.clone(),
        symbol: prog.name.clone(),
        offset: e.index as u64 * 8,
        reason: format!("after CO-RE relocation: {}", e.kind),
    })?;
    Ok(())
}
