//! One entry point for both backends: load an [`ObjectSpec`] into the
//! userspace VM or the kernel, then run programs and read maps the same way,
//! so a BPF program's tests run without root and then, unchanged, for real.

use std::collections::BTreeMap;

use bpfkit_kernel::{Collection, KernelMap, LoadOptions};
use bpfkit_object::ObjectSpec;
use bpfkit_vm::{object::LoadedObject, Map, TestRun, Vm};

use crate::maps::{MapError, RawMap};

/// Where an object runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The userspace VM: no kernel, no root.
    Vm,
    /// The running Linux kernel.
    Kernel,
}

/// Loading or running failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the VM.
    #[error(transparent)]
    Vm(#[from] bpfkit_vm::object::ObjectLoadError),
    /// A VM run failed.
    #[error(transparent)]
    VmRun(#[from] bpfkit_vm::RunError),
    /// From the kernel.
    #[error(transparent)]
    Kernel(#[from] bpfkit_kernel::Error),
    /// No such program.
    #[error("no program `{0}`")]
    NoProgram(String),
}

/// The result of running a program once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Return value (the kernel reports 32 bits).
    pub retval: u32,
    /// Packet data after the run.
    pub data_out: Vec<u8>,
}

enum Loaded {
    Vm { vm: Box<Vm>, obj: LoadedObject },
    Kernel(Collection),
}

/// An object loaded into a backend.
pub struct Object {
    loaded: Loaded,
}

impl Object {
    /// Loads `spec` into `backend`.
    pub fn load(spec: &ObjectSpec, backend: Backend) -> Result<Object, Error> {
        let loaded = match backend {
            Backend::Vm => {
                let mut vm = Box::new(Vm::new());
                let obj = vm.load_object(spec)?;
                Loaded::Vm { vm, obj }
            }
            Backend::Kernel => Loaded::Kernel(Collection::load(spec, &LoadOptions::default())?),
        };
        Ok(Object { loaded })
    }

    /// Runs program `name` once on `data` (packet) and `ctx`, as `BPF_PROG_TEST_RUN`.
    pub fn test_run(&mut self, name: &str, data: &[u8], ctx: &[u8]) -> Result<RunResult, Error> {
        match &mut self.loaded {
            Loaded::Vm { vm, obj } => {
                let prog = obj
                    .programs
                    .get(name)
                    .ok_or_else(|| Error::NoProgram(name.into()))?;
                let r = vm.test_run(
                    prog,
                    &TestRun {
                        data_in: data.to_vec(),
                        ctx_in: ctx.to_vec(),
                        repeat: 1,
                    },
                )?;
                Ok(RunResult {
                    retval: r.retval as u32,
                    data_out: r.data_out,
                })
            }
            Loaded::Kernel(c) => {
                let prog = c
                    .programs
                    .get(name)
                    .ok_or_else(|| Error::NoProgram(name.into()))?;
                let r = prog.test_run(data, ctx, 1)?;
                Ok(RunResult {
                    retval: r.retval,
                    data_out: r.data_out,
                })
            }
        }
    }

    /// The map called `name`, through the common byte-level interface.
    pub fn map(&self, name: &str) -> Option<&dyn RawMap> {
        match &self.loaded {
            Loaded::Vm { vm, obj } => obj
                .maps
                .get(name)
                .and_then(|&i| vm.map(i))
                .map(|m| m as &dyn RawMap),
            Loaded::Kernel(c) => c.maps.get(name).map(|m| m as &dyn RawMap),
        }
    }

    /// Names of the object's maps.
    pub fn map_names(&self) -> Vec<String> {
        match &self.loaded {
            Loaded::Vm { obj, .. } => obj.maps.keys().cloned().collect(),
            Loaded::Kernel(c) => c.maps.keys().cloned().collect(),
        }
    }
}

fn vm_err(op: &'static str) -> impl Fn(bpfkit_vm::MapError) -> MapError {
    move |e| MapError {
        op,
        errno: e.errno(),
        message: e.message().to_string(),
    }
}

fn kernel_err(op: &'static str) -> impl Fn(bpfkit_kernel::MapError) -> MapError {
    move |e| MapError {
        op,
        errno: e.errno(),
        message: e.to_string(),
    }
}

impl RawMap for Map {
    fn key_size(&self) -> usize {
        self.def().key_size as usize
    }
    fn value_size(&self) -> usize {
        self.def().value_size as usize
    }
    fn value_copies(&self) -> usize {
        Map::value_copies(self)
    }
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Map::lookup(self, key).map_err(vm_err("lookup"))
    }
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        Map::update(self, key, value, flags).map_err(vm_err("update"))
    }
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        Map::delete(self, key).map_err(vm_err("delete"))
    }
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Map::next_key(self, key).map_err(vm_err("next_key"))
    }
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        Map::push(self, value, flags).map_err(vm_err("push"))
    }
    fn pop(&self) -> Result<Option<Vec<u8>>, MapError> {
        Map::pop(self).map_err(vm_err("pop"))
    }
    fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Map::peek(self, value).map_err(vm_err("peek"))
    }
}

impl RawMap for KernelMap {
    fn key_size(&self) -> usize {
        KernelMap::key_size(self)
    }
    fn value_size(&self) -> usize {
        KernelMap::value_size(self)
    }
    fn value_copies(&self) -> usize {
        KernelMap::value_copies(self)
    }
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        KernelMap::lookup(self, key).map_err(kernel_err("lookup"))
    }
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        KernelMap::update(self, key, value, flags).map_err(kernel_err("update"))
    }
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        KernelMap::delete(self, key).map_err(kernel_err("delete"))
    }
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        KernelMap::next_key(self, key).map_err(kernel_err("next_key"))
    }
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        KernelMap::push(self, value, flags).map_err(kernel_err("push"))
    }
    fn pop(&self) -> Result<Option<Vec<u8>>, MapError> {
        KernelMap::pop(self).map_err(kernel_err("pop"))
    }
    fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        KernelMap::peek(self, value).map_err(kernel_err("peek"))
    }
}

/// Every entry of a map, as `(key, value)` bytes in key order.
pub fn dump(map: &dyn RawMap) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, MapError> {
    let mut out = BTreeMap::new();
    for key in crate::maps::keys(map) {
        let key = key?;
        if let Some(v) = map.lookup(&key)? {
            out.insert(key, v);
        }
    }
    Ok(out)
}
