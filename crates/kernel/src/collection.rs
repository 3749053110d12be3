//! Loading an [`ObjectSpec`] into the kernel: BTF, maps (initialised and
//! frozen), programs with their relocations resolved, static initialisers,
//! and auto-attachment by section name.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};

use bpfkit_abi::{update_flags, MapType, ProgramType};
use bpfkit_btf::{Btf, TargetBtfs};
use bpfkit_isa::{Imm64, Insn};
use bpfkit_object::{AttachTarget, InitRef, MapSpec, ObjectSpec, RelocTarget};

use crate::error::{Error, Result};
use crate::link::Link;
use crate::map::{KernelMap, MapDefinition};
use crate::prog::{LoadExtras, Program, ProgramLoad};

/// What [`Collection::auto_attach`] did: links by program name, and the
/// programs it did not attach with the reason.
pub type AutoAttached = (Vec<(String, Link)>, Vec<(String, String)>);

/// Options for [`Collection::load`].
#[derive(Default, Clone)]
pub struct LoadOptions<'a> {
    /// BTF to apply CO-RE relocations against; the running kernel's when `None`.
    pub target_btf: Option<&'a Btf>,
    /// Relocate against the kernel's BTF even when the CO-RE cache has this
    /// object's result (see `core_cache`).
    pub no_core_cache: bool,
    /// Where the CO-RE cache lives, instead of its default place.
    pub core_cache_dir: Option<&'a std::path::Path>,
    /// Apply CO-RE relocations with bpfkit's own engine against the kernel's
    /// BTF read in user space, even where the kernel could apply them itself
    /// at load (`core_relos` of `BPF_PROG_LOAD`, Linux 5.17+), which is the
    /// default on a CO-RE cache miss: it spares reading and indexing the
    /// kernel's BTF here. A load the kernel's CO-RE fails is retried this way,
    /// for bpfkit's clearer reasons.
    pub user_space_core: bool,
    /// The bpffs directory of pinned maps (libbpf's `pin_root_path`;
    /// `/sys/fs/bpf` when `None`). A map declared `LIBBPF_PIN_BY_NAME`
    /// reuses the map pinned at `DIR/NAME` when that one is compatible (same
    /// type, key and value size, entries and flags), is refused with the
    /// difference when it is not, and is pinned there when there is none.
    pub pin_root: Option<&'a std::path::Path>,
    /// Treat every map as pinned by name under `pin_root`, as bpftool's
    /// `prog loadall OBJ PATH pinmaps DIR` pins them all (global data maps
    /// keep their section name without the dot: `DIR/bss`).
    pub pin_all_maps: bool,
    /// Keep each program's verifier log at this level (0: none, the
    /// default; 4, `BPF_LOG_STATS`, gives the kernel's own verification
    /// time), readable as [`Program::verifier_stats`].
    pub verifier_log_level: u32,
}

/// Who applied a collection's CO-RE relocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreSource {
    /// The object has none.
    None,
    /// The disk cache had this object's results for this kernel.
    Cache,
    /// The kernel, at `BPF_PROG_LOAD` (no kernel BTF was read here).
    Kernel,
    /// bpfkit's engine, against the kernel's BTF (or the given target BTF).
    UserSpace,
}

/// Where map `name` is pinned under `root`: its name, less the leading dot
/// of a global data section (`.bss` → `bss`), as bpftool names them.
pub fn map_pin_path(root: &std::path::Path, name: &str) -> std::path::PathBuf {
    root.join(name.trim_start_matches('.'))
}

/// Why the map pinned at `path` cannot stand in for `spec`, libbpf's
/// map_is_reuse_compat; `None` when it can.
fn pin_incompatibility(spec: &MapDefinition, pinned: &KernelMap) -> Option<String> {
    let diff = |what: &str, want: u64, have: u64| {
        (want != have).then(|| format!("{what} {have}, the object wants {want}"))
    };
    if spec.map_type != pinned.map_type() {
        return Some(format!(
            "type {}, the object wants {}",
            pinned.map_type(),
            spec.map_type
        ));
    }
    diff("key size", spec.key_size.into(), pinned.key_size() as u64)
        .or_else(|| {
            diff(
                "value size",
                spec.value_size.into(),
                pinned.value_size() as u64,
            )
        })
        .or_else(|| {
            diff(
                "max_entries",
                spec.max_entries.into(),
                pinned.max_entries().into(),
            )
        })
        .or_else(|| {
            diff(
                "map_flags",
                spec.map_flags.into(),
                pinned.map_flags().into(),
            )
        })
}

/// Map types whose `max_entries` must be 0 (the kernel sizes them by their owner).
fn unsized_by_design(t: MapType) -> bool {
    matches!(
        t,
        MapType::CgroupStorage
            | MapType::PercpuCgroupStorage
            | MapType::SkStorage
            | MapType::InodeStorage
            | MapType::TaskStorage
            | MapType::CgrpStorage
    )
}

/// An object's maps and programs, live in the kernel.
pub struct Collection {
    /// Maps by name.
    pub maps: BTreeMap<String, KernelMap>,
    /// Programs by name.
    pub programs: BTreeMap<String, Program>,
    /// Section-derived targets, by program name.
    pub targets: BTreeMap<String, AttachTarget>,
    /// Maps taken over from an existing pin rather than created.
    pub reused_maps: std::collections::BTreeSet<String>,
    /// Maps this load pinned, with where (see [`LoadOptions::pin_root`]).
    pub pinned_maps: BTreeMap<String, std::path::PathBuf>,
    core: CoreSource,
    _btf: Option<OwnedFd>,
}

fn definition(spec: &MapSpec, btf: Option<&OwnedFd>) -> Result<MapDefinition> {
    let max_entries = match (spec.map_type, spec.max_entries) {
        // libbpf sizes an unsized perf event array to the CPUs.
        (MapType::PerfEventArray, 0) => crate::fs::possible_cpus() as u32,
        (t, 0) if !unsized_by_design(t) => {
            return Err(Error::Object(format!(
                "map `{}` ({t}) has max_entries 0: the object leaves its size to the user-space \
                 program (libbpf's bpf_map__set_max_entries); set it, e.g. `bpfkit load \
                 --map-size {}=N`",
                spec.name, spec.name
            )))
        }
        (_, n) => n,
    };
    let (mut key_size, mut value_size) = (spec.key_size, spec.value_size);
    if spec.map_type == MapType::PerfEventArray {
        // As libbpf: a perf event array's key and value are CPU index and fd.
        key_size = if key_size == 0 { 4 } else { key_size };
        value_size = if value_size == 0 { 4 } else { value_size };
    }
    if value_size == 0
        && !matches!(
            spec.map_type,
            MapType::Ringbuf | MapType::UserRingbuf | MapType::Arena
        )
    {
        return Err(Error::Object(format!(
            "map `{}` ({}) has value size 0: the object leaves it to the user-space program \
             (libbpf's bpf_map__set_value_size; a stack trace map holds depth × 8 bytes); set \
             it, e.g. `bpfkit load --map-value-size {}=N`",
            spec.name, spec.map_type, spec.name
        )));
    }
    Ok(MapDefinition {
        name: spec.name.clone(),
        map_type: spec.map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: spec.map_flags,
        map_extra: spec.map_extra,
        numa_node: spec.numa_node,
        btf: match (btf, spec.key_type_id, spec.value_type_id) {
            (Some(fd), Some(k), Some(v)) => Some((fd.as_raw_fd(), k, v)),
            _ => None,
        },
    })
}

fn create_map(spec: &MapSpec, btf: Option<&OwnedFd>) -> Result<KernelMap> {
    let inner = match &spec.inner {
        Some(i) => Some(create_map(i, None)?),
        None => None,
    };
    match KernelMap::create(&definition(spec, btf)?, inner.as_ref()) {
        // Retry without BTF types: some maps' BTF is not accepted as key/value types.
        Err(_) if btf.is_some() => KernelMap::create(&definition(spec, None)?, inner.as_ref()),
        r => r,
    }
}

/// The kernel BTF id a tracing or LSM program loads against (0 for others).
fn btf_attach_id_of(name: &str, p: &bpfkit_object::ProgramSpec) -> Result<u32> {
    match (&p.kind.target, p.kind.prog_type, p.kind.attach_type) {
        (AttachTarget::Kernel { name: target }, ProgramType::Tracing | ProgramType::Lsm, Some(at)) => {
            crate::link::btf_attach_id(name, at, target)
        }
        (AttachTarget::Kernel { name: target }, ProgramType::Ext, _) => Err(Error::Unsupported(
            format!("program `{name}` replaces BPF function `{target}` (freplace): load it with the target program's fd, which auto-loading does not know"),
        )),
        _ => Ok(0),
    }
}

impl Collection {
    /// Loads everything the object defines. kconfig must have been applied to
    /// `spec` already (see [`ObjectSpec::apply_kconfig`]).
    pub fn load(spec: &ObjectSpec, opts: &LoadOptions<'_>) -> Result<Collection> {
        let mut spec = spec.clone();
        let mut core_cache_hit = false;
        let mut kernel_core = false;
        let btf = match spec
            .kernel_btf(&crate::features::btf_features())
            .map_err(|e| Error::Object(e.to_string()))?
        {
            Some(blob) => crate::btf::load_btf(&blob).ok(),
            None => None,
        };
        if spec.programs.values().any(|p| !p.core_relos.is_empty()) {
            let cache = match (opts.target_btf, opts.no_core_cache) {
                (None, false) => crate::core_cache::CoreCache::for_spec(&spec, opts.core_cache_dir),
                _ => None,
            };
            core_cache_hit = cache.as_ref().is_some_and(|c| c.apply(&mut spec));
            // The kernel applies relocations only of programs loaded with
            // their BTF and func or line records (check_btf_info).
            kernel_core = !core_cache_hit
                && !opts.user_space_core
                && opts.target_btf.is_none()
                && btf.is_some()
                && spec.programs.values().all(|p| {
                    p.core_relos.is_empty() || !p.func_info.is_empty() || !p.line_info.is_empty()
                });
            if !core_cache_hit && !kernel_core {
                let relocated = match opts.target_btf {
                    Some(t) => spec.apply_core(TargetBtfs::new(t)),
                    None => {
                        // Candidates come from vmlinux and every module's
                        // BTF, as libbpf looks for them (parsed once).
                        let vmlinux = crate::btf::vmlinux()?;
                        let modules = crate::btf::modules();
                        let targets = modules
                            .iter()
                            .fold(TargetBtfs::new(&vmlinux), |t, m| t.with_module(m));
                        spec.apply_core(targets)
                    }
                };
                relocated.map_err(|e| Error::Object(e.to_string()))?;
                if let Some(c) = &cache {
                    c.store(&spec);
                }
            }
        }
        if kernel_core {
            return match Collection::load_prepared(&spec, opts, btf, true) {
                Ok(mut c) => {
                    c.core = CoreSource::Kernel;
                    Ok(c)
                }
                // The kernel's CO-RE failed (or this kernel lacks it):
                // relocate here instead, which also says better why not.
                Err(_) => Collection::load(
                    &spec,
                    &LoadOptions {
                        user_space_core: true,
                        ..opts.clone()
                    },
                ),
            };
        }
        let mut coll = Collection::load_prepared(&spec, opts, btf, false)?;
        if core_cache_hit {
            coll.core = CoreSource::Cache;
        } else if spec.programs.values().any(|p| !p.core_relos.is_empty()) {
            coll.core = CoreSource::UserSpace;
        }
        Ok(coll)
    }

    /// Loads a spec whose CO-RE relocations are applied already, or are
    /// left to the kernel (`kernel_core`).
    fn load_prepared(
        spec: &ObjectSpec,
        opts: &LoadOptions<'_>,
        btf: Option<OwnedFd>,
        kernel_core: bool,
    ) -> Result<Collection> {
        let pin_root = opts.pin_root.unwrap_or(std::path::Path::new("/sys/fs/bpf"));
        let mut maps = BTreeMap::new();
        let mut reused_maps = std::collections::BTreeSet::new();
        let mut to_pin = Vec::new();
        for (name, m) in &spec.maps {
            if opts.pin_all_maps || m.pinning == bpfkit_object::Pinning::ByName {
                let path = map_pin_path(pin_root, name);
                if path.exists() {
                    let pinned = KernelMap::from_pin(&path)?;
                    if let Some(why) = pin_incompatibility(&definition(m, None)?, &pinned) {
                        return Err(Error::Object(format!(
                            "map `{name}`: the map pinned at {} cannot be reused: {why}; \
                             remove the pin or load into another pin directory",
                            path.display()
                        )));
                    }
                    reused_maps.insert(name.clone());
                    maps.insert(name.clone(), pinned);
                    continue;
                }
                to_pin.push((name.clone(), path));
            }
            let map = create_map(m, btf.as_ref())?;
            if let Some(data) = &m.data {
                map.update(&0u32.to_ne_bytes(), data, update_flags::ANY)
                    .map_err(|e| Error::Object(format!("initialise `{name}`: {e}")))?;
                if m.is_read_only() {
                    map.freeze()?;
                }
            }
            maps.insert(name.clone(), map);
        }

        let mut programs = BTreeMap::new();
        let mut targets = BTreeMap::new();
        // Read at most once per load, by the first typeless __ksym.
        let kallsyms = std::cell::OnceCell::new();
        for (name, p) in &spec.programs {
            let mut insns = p.insns.clone();
            let mut slot_to_insn = BTreeMap::new();
            let mut slot = 0;
            for (i, insn) in insns.iter().enumerate() {
                slot_to_insn.insert(slot, i);
                slot += insn.slots();
            }
            for r in &p.relocations {
                let i = slot_to_insn[&r.insn];
                let imm = match &r.target {
                    RelocTarget::Ksym { name: sym, is_func } => {
                        let weak = matches!(
                            spec.externs.get(sym),
                            Some(bpfkit_object::ExternSpec::Ksym { weak: true, .. })
                        );
                        insns[i] = crate::ksym::resolve(
                            name,
                            &insns[i],
                            sym,
                            *is_func,
                            weak,
                            spec.btf.as_ref(),
                            &kallsyms,
                        )?;
                        continue;
                    }
                    RelocTarget::Map(m) => Imm64::MapFd(maps[m].fd().as_raw_fd()),
                    RelocTarget::MapValue { map, offset } => Imm64::MapValue {
                        fd: maps[map].fd().as_raw_fd(),
                        offset: *offset,
                    },
                };
                let Insn::LdImm64 { dst, .. } = insns[i] else {
                    return Err(Error::Object(format!(
                        "program `{name}`: instruction {} is not lddw",
                        r.insn
                    )));
                };
                insns[i] = Insn::LdImm64 { dst, imm };
            }
            let btf_info = btf.as_ref().map(|fd| {
                let func: Vec<[u32; 2]> = p
                    .func_info
                    .iter()
                    .map(|f| [f.insn_off, f.type_id])
                    .collect();
                let line: Vec<[u32; 4]> = p
                    .line_info
                    .iter()
                    .map(|l| {
                        [
                            l.insn_off,
                            l.file_name_off,
                            l.line_off,
                            (l.line << 10) | (l.col & 0x3ff),
                        ]
                    })
                    .collect();
                (fd, func, line)
            });
            let extras = LoadExtras {
                log_level: opts.verifier_log_level,
                always_log: opts.verifier_log_level != 0,
                ..LoadExtras::default()
            };
            let prog = Program::load_with(
                &ProgramLoad {
                    name,
                    prog_type: p.kind.prog_type,
                    expected_attach_type: p.kind.attach_type,
                    insns: &insns,
                    license: &spec.license,
                    kern_version: spec.kern_version.unwrap_or(0),
                    btf: btf_info,
                    attach_btf_id: btf_attach_id_of(name, p)?,
                    core_relos: if kernel_core {
                        p.core_relos
                            .iter()
                            .map(|r| [r.insn_off * 8, r.type_id, r.access_str_off, r.kind as u32])
                            .collect()
                    } else {
                        Vec::new()
                    },
                },
                &extras,
            )?;
            programs.insert(name.clone(), prog);
            targets.insert(name.clone(), p.kind.target.clone());
        }

        // Static prog array and map-in-map initialisation.
        for (name, m) in &spec.maps {
            if reused_maps.contains(name) {
                continue;
            }
            for (&slot, target) in &m.init {
                let fd = match target {
                    // A program left out of the load leaves its slot empty.
                    InitRef::Program(p) => match programs.get(p) {
                        Some(p) => p.fd().as_raw_fd(),
                        None => continue,
                    },
                    InitRef::Map(inner) => maps[inner].fd().as_raw_fd(),
                };
                maps[name]
                    .update(
                        &slot.to_ne_bytes(),
                        &(fd as u32).to_ne_bytes(),
                        update_flags::ANY,
                    )
                    .map_err(|e| {
                        Error::Object(format!("initialise slot {slot} of `{name}`: {e}"))
                    })?;
            }
        }
        // Pins last, so a failed load leaves no pin behind.
        for (i, (name, path)) in to_pin.iter().enumerate() {
            let pinned = match path.parent() {
                Some(dir) => std::fs::create_dir_all(dir)
                    .map_err(|e| Error::sys(format!("create {}", dir.display()), e)),
                None => Ok(()),
            }
            .and_then(|()| maps[name].pin(path));
            if let Err(e) = pinned {
                for (_, done) in &to_pin[..i] {
                    let _ = std::fs::remove_file(done);
                }
                return Err(e);
            }
        }
        Ok(Collection {
            maps,
            programs,
            targets,
            reused_maps,
            pinned_maps: to_pin.into_iter().collect(),
            core: CoreSource::None,
            _btf: btf,
        })
    }

    /// Removes the pins this load made ([`Collection::pinned_maps`]), for a
    /// caller that gives up on the collection.
    pub fn unpin_maps(&self) {
        for path in self.pinned_maps.values() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Who applied the CO-RE relocations: the disk cache or the kernel
    /// (neither reads the kernel's BTF here), or bpfkit's engine.
    pub fn core_source(&self) -> CoreSource {
        self.core
    }

    /// Attaches every program whose section name says where it goes.
    /// Returns the links and, for the others, why they were not attached.
    pub fn auto_attach(&self) -> AutoAttached {
        let mut links = Vec::new();
        let mut skipped = Vec::new();
        for (name, prog) in &self.programs {
            let r = crate::link::attach_section(prog, &self.targets[name]);
            match r {
                Ok(l) => links.push((name.clone(), l)),
                Err(e) => skipped.push((name.clone(), e.to_string())),
            }
        }
        (links, skipped)
    }
}
