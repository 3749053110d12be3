//! The way in: [`EbpfLoader`] takes an object and the choices made before
//! load (globals, which programs, map sizes, pins, backend); [`Ebpf`] is the
//! loaded object, with its typed [`Program`]s and [`Map`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bpfkit_kernel::{Collection, CoreSource, LoadOptions};
use bpfkit_object::{GlobalVariable, ObjectSpec};
use bpfkit_vm::Vm;

use crate::error::list;
use crate::maps::{MapInner, RawMap};
use crate::program::{Handle, ProgramData};
use crate::{Error, Link, Map, Pod, Program, Result};

/// Where an object runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The userspace VM: no kernel, no root.
    Vm,
    /// The running Linux kernel.
    Kernel,
}

/// A global variable's new value, checked at load against its BTF type.
struct GlobalValue {
    name: String,
    bytes: Vec<u8>,
    rust_type: &'static str,
}

/// Opens an object with choices made before load. Every choice names a
/// program, map or global; a name the object lacks is an error at load.
///
/// ```no_run
/// # fn main() -> Result<(), bpfkit::Error> {
/// let bpf = bpfkit::EbpfLoader::new()
///     .set_global("min_duration_ns", &100_000_000u64)
///     .autoload("handle_exit", false)
///     .set_max_entries("exec_start", 1024)
///     .load_file("bootstrap.bpf.o")?;
/// # Ok(()) }
/// ```
pub struct EbpfLoader {
    backend: Backend,
    globals: Vec<GlobalValue>,
    autoload_off: BTreeSet<String>,
    max_entries: BTreeMap<String, u32>,
    value_sizes: BTreeMap<String, u32>,
    pin_root: Option<PathBuf>,
    pin_all_maps: bool,
    keep_unsupported: bool,
    core_cache: bool,
    engine: bpfkit_jit::Engine,
    verify: bool,
}

impl Default for EbpfLoader {
    fn default() -> Self {
        EbpfLoader::new()
    }
}

/// How each program was attached by [`Ebpf::auto_attach`].
#[derive(Debug, Default)]
pub struct AutoAttached {
    /// The links, by program.
    pub links: Vec<(String, Link)>,
    /// Programs that were not attached, with why.
    pub skipped: Vec<(String, String)>,
}

impl EbpfLoader {
    /// Defaults: the kernel backend, nothing changed.
    pub fn new() -> EbpfLoader {
        EbpfLoader {
            backend: Backend::Kernel,
            globals: Vec::new(),
            autoload_off: BTreeSet::new(),
            max_entries: BTreeMap::new(),
            value_sizes: BTreeMap::new(),
            pin_root: None,
            pin_all_maps: false,
            keep_unsupported: false,
            core_cache: true,
            engine: bpfkit_jit::Engine::native(),
            verify: true,
        }
    }

    /// Loads into `backend` (default: the kernel).
    pub fn backend(&mut self, backend: Backend) -> &mut Self {
        self.backend = backend;
        self
    }

    /// Sets global `name` (a `const volatile` in `.rodata`, or a `.data` or
    /// `.bss` variable) to `value`; at load, `T` must have the variable's
    /// size in the object's BTF.
    pub fn set_global<T: Pod>(&mut self, name: &str, value: &T) -> &mut Self {
        self.globals.retain(|g| g.name != name);
        self.globals.push(GlobalValue {
            name: name.into(),
            bytes: bpfkit_kernel::map::bytes_of(value).to_vec(),
            rust_type: std::any::type_name::<T>(),
        });
        self
    }

    /// Whether program `name` is loaded (default: yes), as libbpf's
    /// `bpf_program__set_autoload`.
    pub fn autoload(&mut self, name: &str, load: bool) -> &mut Self {
        if load {
            self.autoload_off.remove(name);
        } else {
            self.autoload_off.insert(name.into());
        }
        self
    }

    /// Sets map `name`'s `max_entries` (bytes, for a ring buffer).
    pub fn set_max_entries(&mut self, name: &str, max_entries: u32) -> &mut Self {
        self.max_entries.insert(name.into(), max_entries);
        self
    }

    /// Sets map `name`'s value size, for maps the object leaves unsized (a
    /// stack trace map holds depth × 8 bytes).
    pub fn set_value_size(&mut self, name: &str, value_size: u32) -> &mut Self {
        self.value_sizes.insert(name.into(), value_size);
        self
    }

    /// Pins maps marked `LIBBPF_PIN_BY_NAME` under `dir` (bpffs), reusing a
    /// compatible map already pinned there and refusing an incompatible one.
    pub fn pin_root(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.pin_root = Some(dir.into());
        self
    }

    /// With [`pin_root`](Self::pin_root): pin every map there, not only
    /// those marked `LIBBPF_PIN_BY_NAME`, as bpftool's `loadall ... pinmaps`.
    pub fn pin_all_maps(&mut self, all: bool) -> &mut Self {
        self.pin_all_maps = all;
        self
    }

    /// On the VM backend: run programs with the interpreter or the JIT
    /// (default: the JIT where the host has a back end, x86-64). Both
    /// check every memory access and end faulty runs with the same error.
    pub fn engine(&mut self, engine: bpfkit_jit::Engine) -> &mut Self {
        self.engine = engine;
        self
    }

    /// On the VM backend: prove each program safe with bpfkit's verifier
    /// before it runs, as the kernel does before loading it (default: yes).
    /// A refused program is an error naming the instruction, C line and
    /// reason. Turned off, the VM's run-time checks remain the safety net.
    pub fn verify(&mut self, verify: bool) -> &mut Self {
        self.verify = verify;
        self
    }

    /// Whether CO-RE results may come from (and go to) bpfkit's disk cache
    /// (default: yes). Without it the kernel applies CO-RE at load, or
    /// bpfkit's engine does where the kernel cannot.
    pub fn core_cache(&mut self, use_cache: bool) -> &mut Self {
        self.core_cache = use_cache;
        self
    }

    /// Loads every program, even one this kernel cannot run or the twin of
    /// one it prefers (by default those are left out, each with its reason
    /// in [`Ebpf::left_out`]).
    pub fn keep_unsupported(&mut self, keep: bool) -> &mut Self {
        self.keep_unsupported = keep;
        self
    }

    /// Loads the object in `bytes`.
    pub fn load(&self, bytes: &[u8]) -> Result<Ebpf> {
        let spec = ObjectSpec::parse(bytes).map_err(|source| Error::Object {
            what: "parsing the object".into(),
            source,
        })?;
        self.load_spec(spec)
    }

    /// Loads the object in file `path`.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Ebpf> {
        let path = path.as_ref();
        let spec = ObjectSpec::from_file(path).map_err(|source| Error::Object {
            what: format!("parsing {}", path.display()),
            source,
        })?;
        self.load_spec(spec)
    }

    /// Loads a parsed object.
    pub fn load_spec(&self, mut spec: ObjectSpec) -> Result<Ebpf> {
        let variables = spec.global_variables();
        for g in &self.globals {
            set_global(&mut spec, &variables, g)?;
        }
        for (name, n) in &self.max_entries {
            map_spec(&mut spec, name)?.max_entries = *n;
        }
        for (name, n) in &self.value_sizes {
            map_spec(&mut spec, name)?.value_size = *n;
        }
        for name in &self.autoload_off {
            if spec.programs.remove(name).is_none() {
                return Err(Error::NoProgram {
                    name: name.clone(),
                    available: list(spec.programs.keys()),
                });
            }
        }
        let mut left_out = Vec::new();
        if self.backend == Backend::Kernel && !self.keep_unsupported {
            let plan = bpfkit_kernel::select::plan(&spec);
            spec.programs.retain(|name, _| !plan.contains_key(name));
            left_out.extend(plan);
        }
        let kconfig = bpfkit_kernel::kconfig::kernel_config_for(&spec)?;
        spec.apply_kconfig(&kconfig)
            .map_err(|source| Error::Object {
                what: "kconfig externs".into(),
                source,
            })?;
        let sections: BTreeMap<String, (String, bpfkit_object::SectionKind)> = spec
            .programs
            .iter()
            .map(|(n, p)| (n.clone(), (p.section.clone(), p.kind.clone())))
            .collect();
        let data = |name: &String, handle| {
            let (section, kind) = sections[name].clone();
            Program::new(ProgramData::new(name.clone(), section, kind, handle))
        };
        let (programs, maps, runtime) = match self.backend {
            Backend::Kernel => {
                let opts = LoadOptions {
                    pin_root: self.pin_root.as_deref(),
                    pin_all_maps: self.pin_all_maps,
                    no_core_cache: !self.core_cache,
                    ..LoadOptions::default()
                };
                let mut c = Collection::load(&spec, &opts)?;
                let programs = std::mem::take(&mut c.programs)
                    .into_iter()
                    .map(|(n, p)| {
                        let prog = data(&n, Handle::Kernel(p));
                        (n, prog)
                    })
                    .collect();
                let maps = std::mem::take(&mut c.maps)
                    .into_iter()
                    .map(|(n, m)| (n.clone(), Map::new(n, MapInner::Kernel(m))))
                    .collect();
                (programs, maps, Runtime::Kernel(c))
            }
            Backend::Vm => {
                if self.verify {
                    verify_all(&spec)?;
                }
                let mut vm = Vm::new();
                let engine = self.engine;
                let loaded = vm.load_object_with(&spec, &move |p| {
                    engine.prepare(p).map_err(|e| e.to_string())
                })?;
                let maps = loaded
                    .maps
                    .iter()
                    .filter_map(|(n, &i)| {
                        let m = vm.map(i)?.clone();
                        Some((n.clone(), Map::new(n.clone(), MapInner::Vm(m))))
                    })
                    .collect();
                let vm = Arc::new(Mutex::new(vm));
                let programs = loaded
                    .programs
                    .into_iter()
                    .map(|(n, program)| {
                        let prog = data(
                            &n,
                            Handle::Vm {
                                program,
                                vm: vm.clone(),
                            },
                        );
                        (n, prog)
                    })
                    .collect();
                (programs, maps, Runtime::Vm(vm))
            }
        };
        let (collection, vm) = match runtime {
            Runtime::Kernel(c) => (Some(c), None),
            Runtime::Vm(vm) => (None, Some(vm)),
        };
        Ok(Ebpf {
            backend: self.backend,
            programs,
            maps,
            variables,
            left_out,
            vm,
            collection,
        })
    }
}

/// Runs bpfkit's verifier over every program of `spec`.
fn verify_all(spec: &ObjectSpec) -> Result<()> {
    let opts = bpfkit_verifier::VerifyOptions::default();
    for program in spec.programs.values() {
        bpfkit_verifier::Verifier::new(program.kind.prog_type)
            .verify(
                bpfkit_verifier::Program::Object {
                    object: spec,
                    program,
                },
                &opts,
            )
            .map_err(|rejection| Error::Rejected {
                program: program.name.clone(),
                rejection,
            })?;
    }
    Ok(())
}

/// What a load leaves behind besides programs and maps.
enum Runtime {
    Kernel(Collection),
    Vm(Arc<Mutex<Vm>>),
}

fn map_spec<'a>(spec: &'a mut ObjectSpec, name: &str) -> Result<&'a mut bpfkit_object::MapSpec> {
    let available = list(spec.maps.keys());
    spec.maps.get_mut(name).ok_or_else(|| Error::NoMap {
        name: name.into(),
        available,
    })
}

/// The C type of a variable, for messages.
fn c_type(spec: &ObjectSpec, var: &GlobalVariable) -> String {
    spec.btf
        .as_ref()
        .and_then(|btf| bpfkit_btf::dump::type_name(btf, var.type_id).ok())
        .unwrap_or_else(|| format!("type {}", var.type_id))
}

fn set_global(spec: &mut ObjectSpec, vars: &[GlobalVariable], g: &GlobalValue) -> Result<()> {
    let err = |reason: String| Error::Global {
        name: g.name.clone(),
        reason,
    };
    let Some(var) = vars.iter().find(|v| v.name == g.name) else {
        return Err(err(if spec.btf.is_none() {
            "the object has no BTF to find globals in".into()
        } else {
            format!(
                "no such global variable (the object has: {})",
                list(vars.iter().map(|v| &v.name))
            )
        }));
    };
    if var.size as usize != g.bytes.len() {
        return Err(err(format!(
            "is `{}` ({} bytes) in {}, but the value is a `{}` ({} bytes)",
            c_type(spec, var),
            var.size,
            var.map,
            g.rust_type,
            g.bytes.len()
        )));
    }
    spec.set_global(&g.name, &g.bytes)
        .map_err(|source| Error::Object {
            what: format!("setting global `{}`", g.name),
            source,
        })
}

/// A loaded object: its programs and maps, in the kernel or the VM.
/// Dropping it unloads what nothing else holds (links keep their programs).
pub struct Ebpf {
    backend: Backend,
    programs: BTreeMap<String, Program>,
    maps: BTreeMap<String, Map>,
    variables: Vec<GlobalVariable>,
    left_out: Vec<(String, String)>,
    /// The VM the programs run in, on the VM backend.
    vm: Option<Arc<Mutex<Vm>>>,
    /// The kernel collection, for what it keeps alive (the object's BTF)
    /// and reports (CO-RE source, pins); its maps and programs moved out.
    collection: Option<Collection>,
}

impl Ebpf {
    /// Loads `bytes` into the kernel with default options.
    pub fn load(bytes: &[u8]) -> Result<Ebpf> {
        EbpfLoader::new().load(bytes)
    }

    /// Loads file `path` into the kernel with default options.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Ebpf> {
        EbpfLoader::new().load_file(path)
    }

    /// Loads `bytes` into a fresh VM: no kernel, no root.
    pub fn load_vm(bytes: &[u8]) -> Result<Ebpf> {
        EbpfLoader::new().backend(Backend::Vm).load(bytes)
    }

    /// The backend it is loaded into.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The VM the programs run in (to set the current task, CPU, budget or
    /// helpers), on the VM backend.
    pub fn vm(&self) -> Option<std::sync::MutexGuard<'_, Vm>> {
        self.vm
            .as_ref()
            .map(|vm| vm.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Program `name`.
    pub fn program(&self, name: &str) -> Result<&Program> {
        let available = list(self.programs.keys());
        self.programs.get(name).ok_or(Error::NoProgram {
            name: name.into(),
            available,
        })
    }

    /// Program `name`, to convert to its kind with `try_into()`.
    pub fn program_mut(&mut self, name: &str) -> Result<&mut Program> {
        let available = list(self.programs.keys());
        self.programs.get_mut(name).ok_or(Error::NoProgram {
            name: name.into(),
            available,
        })
    }

    /// Every program, by name.
    pub fn programs(&self) -> impl Iterator<Item = (&str, &Program)> {
        self.programs.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// Programs not loaded because this kernel cannot run them or prefers
    /// their twin, with why.
    pub fn left_out(&self) -> &[(String, String)] {
        &self.left_out
    }

    /// Map `name`.
    pub fn map(&self, name: &str) -> Result<&Map> {
        let available = list(self.maps.keys());
        self.maps.get(name).ok_or(Error::NoMap {
            name: name.into(),
            available,
        })
    }

    /// Takes map `name` out of the object, for a reader that owns it.
    pub fn take_map(&mut self, name: &str) -> Result<Map> {
        let available = list(self.maps.keys());
        self.maps.remove(name).ok_or(Error::NoMap {
            name: name.into(),
            available,
        })
    }

    /// Every map, by name.
    pub fn maps(&self) -> impl Iterator<Item = (&str, &Map)> {
        self.maps.iter().map(|(n, m)| (n.as_str(), m))
    }

    /// The object's global variables.
    pub fn global_variables(&self) -> &[GlobalVariable] {
        &self.variables
    }

    fn variable(&self, name: &str, size: usize) -> Result<(&GlobalVariable, &Map)> {
        let err = |reason: String| Error::Global {
            name: name.into(),
            reason,
        };
        let var = self
            .variables
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| err("no such global variable".into()))?;
        if var.size as usize != size {
            return Err(err(format!("is {} bytes, the Rust type {size}", var.size)));
        }
        let map = self.maps.get(&var.map).ok_or_else(|| {
            err(format!(
                "its map {} is not loaded (or was taken out of the object)",
                var.map
            ))
        })?;
        Ok((var, map))
    }

    /// Reads global `name` from the loaded object (`.bss`, `.data` or `.rodata`).
    pub fn global<T: Pod>(&self, name: &str) -> Result<T> {
        let (var, map) = self.variable(name, std::mem::size_of::<T>())?;
        let value = map.lookup(&0u32.to_ne_bytes())?.unwrap_or_default();
        let start = var.offset as usize;
        value
            .get(start..start + var.size as usize)
            .and_then(bpfkit_kernel::map::from_bytes)
            .ok_or_else(|| Error::Global {
                name: name.into(),
                reason: format!("lies outside {} as loaded", var.map),
            })
    }

    /// Writes global `name` of the loaded object (`.bss` or `.data`; a
    /// `.rodata` variable is frozen at load, so set it on the loader).
    pub fn set_global<T: Pod>(&self, name: &str, value: &T) -> Result<()> {
        let (var, map) = self.variable(name, std::mem::size_of::<T>())?;
        if var.read_only {
            return Err(Error::Global {
                name: name.into(),
                reason: format!(
                    "is in {}, which is read-only once loaded: set it with EbpfLoader::set_global",
                    var.map
                ),
            });
        }
        let key = 0u32.to_ne_bytes();
        let mut bytes = map.lookup(&key)?.unwrap_or_default();
        let start = var.offset as usize;
        let slot = bytes
            .get_mut(start..start + var.size as usize)
            .ok_or_else(|| Error::Global {
                name: name.into(),
                reason: format!("lies outside {} as loaded", var.map),
            })?;
        slot.copy_from_slice(bpfkit_kernel::map::bytes_of(value));
        Ok(map.update(&key, &bytes, 0)?)
    }

    /// Attaches every program where its `SEC()` name says; any program that
    /// cannot attach is an error naming it.
    pub fn attach_all(&self) -> Result<Vec<Link>> {
        let mut links = Vec::new();
        for p in self.programs.values() {
            links.push(p.attach_by_section()?);
        }
        Ok(links)
    }

    /// Attaches what can be attached by section name, and says why the rest
    /// was not.
    pub fn auto_attach(&self) -> AutoAttached {
        let mut out = AutoAttached::default();
        for (name, p) in &self.programs {
            match p.attach_by_section() {
                Ok(link) => out.links.push((name.clone(), link)),
                Err(e) => out.skipped.push((name.clone(), error_text(&e))),
            }
        }
        out
    }

    /// Who applied the CO-RE relocations, on the kernel backend.
    pub fn core_source(&self) -> Option<CoreSource> {
        self.collection.as_ref().map(Collection::core_source)
    }

    /// Maps taken over from an existing pin rather than created.
    pub fn reused_maps(&self) -> BTreeSet<String> {
        self.collection
            .as_ref()
            .map(|c| c.reused_maps.clone())
            .unwrap_or_default()
    }

    /// Maps this load pinned, with where.
    pub fn pinned_maps(&self) -> BTreeMap<String, PathBuf> {
        self.collection
            .as_ref()
            .map(|c| c.pinned_maps.clone())
            .unwrap_or_default()
    }

    /// Removes the pins this load made.
    pub fn unpin_maps(&self) {
        if let Some(c) = &self.collection {
            c.unpin_maps();
        }
    }
}

/// An error and its causes on one line, each cause once.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}
