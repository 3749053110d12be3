//! Loading an [`ObjectSpec`] into the VM: maps created and initialised,
//! relocations resolved to the VM's map table, programs prepared with the
//! context layout their type implies.

use std::collections::BTreeMap;
use std::sync::Arc;

use bpfkit_abi::{update_flags, ProgramType};
use bpfkit_isa::{Imm64, Insn};
use bpfkit_object::{InitRef, MapSpec, ObjectSpec, RelocTarget};

use crate::maps::{MapDef, MapError};
use crate::{ContextKind, LoadError, Program, Vm};

/// An object loaded into a [`Vm`].
#[derive(Debug)]
pub struct LoadedObject {
    /// Programs by name.
    pub programs: BTreeMap<String, Arc<Program>>,
    /// Map indexes in the VM, by map name.
    pub maps: BTreeMap<String, u32>,
}

/// Loading an object failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectLoadError {
    /// A map could not be created or initialised.
    #[error("map `{map}`: {source}")]
    Map {
        /// Map name.
        map: String,
        /// Why.
        source: MapError,
    },
    /// A program could not be prepared.
    #[error("program `{program}`: {reason}")]
    Program {
        /// Program name.
        program: String,
        /// Why.
        reason: String,
    },
}

/// The context a program of this type receives.
pub fn context_for(prog_type: ProgramType) -> ContextKind {
    match prog_type {
        ProgramType::Xdp => ContextKind::Xdp,
        ProgramType::SchedCls | ProgramType::SchedAct | ProgramType::SkSkb => ContextKind::SkBuff,
        ProgramType::SocketFilter
        | ProgramType::CgroupSkb
        | ProgramType::LwtIn
        | ProgramType::LwtOut
        | ProgramType::LwtXmit => ContextKind::SkBuffL3,
        _ => ContextKind::Raw,
    }
}

fn map_def(spec: &MapSpec) -> MapDef {
    MapDef {
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        // A perf event array of 0 entries means "one per CPU", as libbpf does.
        max_entries: spec.max_entries.max(1),
        map_flags: spec.map_flags & !bpfkit_abi::map_flags::MMAPABLE,
        inner: spec.inner.as_deref().map(|i| Box::new(map_def(i))),
    }
}

impl Vm {
    /// Creates the object's maps, fills global data, and prepares every
    /// program. Apply kconfig and CO-RE to the spec first if it uses them.
    pub fn load_object(&mut self, spec: &ObjectSpec) -> Result<LoadedObject, ObjectLoadError> {
        self.load_object_with(spec, &|_| Ok(()))
    }

    /// [`Vm::load_object`] with each program passed through `prepare`
    /// before it is shared (and placed in prog arrays): an engine attaching
    /// its compiled code, so tail calls run on it too.
    pub fn load_object_with(
        &mut self,
        spec: &ObjectSpec,
        prepare: &crate::conformance::Prepare,
    ) -> Result<LoadedObject, ObjectLoadError> {
        let mut maps = BTreeMap::new();
        for (name, m) in &spec.maps {
            let map_err = |source| ObjectLoadError::Map {
                map: name.clone(),
                source,
            };
            let index = self.create_map(map_def(m)).map_err(map_err)?;
            if let Some(data) = &m.data {
                self.maps[index as usize]
                    .update(&0u32.to_ne_bytes(), data, update_flags::ANY)
                    .map_err(map_err)?;
            }
            maps.insert(name.clone(), index);
        }
        let mut programs = BTreeMap::new();
        for (name, p) in &spec.programs {
            let mut insns = p.insns.clone();
            let prog_err = |reason: String| ObjectLoadError::Program {
                program: name.clone(),
                reason,
            };
            // Map slot indexes to instruction indexes (lddw takes two slots).
            let mut slot_to_insn = BTreeMap::new();
            let mut slot = 0;
            for (i, insn) in insns.iter().enumerate() {
                slot_to_insn.insert(slot, i);
                slot += insn.slots();
            }
            for r in &p.relocations {
                let i = *slot_to_insn.get(&r.insn).ok_or_else(|| {
                    prog_err(format!("relocation at {} is not an instruction", r.insn))
                })?;
                if let RelocTarget::Ksym { name, is_func } = &r.target {
                    return Err(prog_err(format!(
                        "instruction {} uses kernel {} `{name}` (__ksym), which the userspace VM does not have",
                        r.insn,
                        if *is_func { "function" } else { "symbol" }
                    )));
                }
                let Insn::LdImm64 { dst, .. } = insns[i] else {
                    return Err(prog_err(format!(
                        "instruction {} refers to {:?} but is not lddw",
                        r.insn, r.target
                    )));
                };
                let imm = match &r.target {
                    RelocTarget::Map(m) => Imm64::MapIdx(maps[m] as i32),
                    RelocTarget::MapValue { map, offset } => Imm64::MapIdxValue {
                        idx: maps[map] as i32,
                        offset: *offset,
                    },
                    RelocTarget::Ksym { .. } => continue,
                };
                insns[i] = Insn::LdImm64 { dst, imm };
            }
            let mut program = Program::with_context(insns, context_for(p.kind.prog_type))
                .map_err(|e: LoadError| prog_err(e.to_string()))?;
            prepare(&mut program).map_err(|e| prog_err(format!("compiling: {e}")))?;
            programs.insert(name.clone(), Arc::new(program));
        }
        // Static initialisation of prog arrays and map-in-map.
        for (name, m) in &spec.maps {
            let map = self.maps[maps[name] as usize].clone();
            for (&slot, target) in &m.init {
                let r = match target {
                    // A program left out of the load leaves its slot
                    // empty, as in the kernel backend.
                    InitRef::Program(p) => match programs.get(p) {
                        Some(p) => map.set_program(slot, Arc::clone(p)),
                        None => continue,
                    },
                    InitRef::Map(inner) => {
                        let id = self.maps[maps[inner] as usize].id();
                        map.update(&slot.to_ne_bytes(), &id.to_ne_bytes(), update_flags::ANY)
                    }
                };
                r.map_err(|source| ObjectLoadError::Map {
                    map: name.clone(),
                    source,
                })?;
            }
        }
        Ok(LoadedObject { programs, maps })
    }
}
