//! Maps over any backend: one family of typed maps.
//!
//! The VM and the kernel store map entries as bytes, with the same semantics
//! (flags, errno values, per-CPU layout). [`RawMap`] is that common byte-level
//! interface, and [`Map`] a loaded object's map on either backend;
//! [`HashMap`], [`Array`], [`PerCpuArray`], [`Queue`] and the rest put
//! [`Pod`](crate::Pod) types on top of any `RawMap`, so the same code and the
//! same tests run against either backend.

mod keys;
mod typed;

use bpfkit_abi::MapType;
use bpfkit_kernel::KernelMap;

pub use keys::{keys, Keys};
pub use typed::{
    Array, BloomFilter, HashMap, LpmTrie, MapOfMaps, PerCpuArray, PerCpuHashMap, ProgArray, Queue,
};

/// A map operation failed; carries the errno the kernel (or the VM, which
/// mirrors it) reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{op}: {message} (errno {errno})", map_prefix(map))]
pub struct MapError {
    /// The map's name; empty for a map with none (made by hand, say).
    pub map: String,
    /// The operation: `lookup`, `update`, ...
    pub op: &'static str,
    /// Positive errno value (`ENOENT`, `EEXIST`, `E2BIG`, ...).
    pub errno: i32,
    /// What went wrong, in words.
    pub message: String,
}

/// Byte-level access to a map, as the `bpf()` map commands provide it.
///
/// Per-CPU maps exchange one value per possible CPU, each padded to 8 bytes,
/// concatenated: the kernel's syscall layout.
pub trait RawMap {
    /// Key size in bytes.
    fn key_size(&self) -> usize;
    /// Value size in bytes (of one CPU's value for per-CPU maps).
    fn value_size(&self) -> usize;
    /// Number of value copies a lookup returns: the possible CPUs for per-CPU maps, else 1.
    fn value_copies(&self) -> usize;
    /// The value stored under `key`, if any.
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError>;
    /// Stores `value` under `key`; `flags` is `BPF_ANY`, `BPF_NOEXIST` or `BPF_EXIST`.
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError>;
    /// Removes `key`.
    fn delete(&self, key: &[u8]) -> Result<(), MapError>;
    /// The key after `key` (the first key for `None`), or `None` at the end.
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError>;
    /// Pushes onto a queue, stack or bloom filter.
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError>;
    /// Pops from a queue or stack.
    fn pop(&self) -> Result<Option<Vec<u8>>, MapError>;
    /// Peeks at a queue or stack; for a bloom filter, `value` is tested
    /// (`Ok(Some)` when possibly present).
    fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError>;
}

/// Boxed and borrowed maps are maps too, so the typed layer works over
/// `Box<dyn RawMap>` and `&dyn RawMap` as well as concrete backends.
macro_rules! forward_raw_map {
    ($($t:ty),*) => {$(
        impl<M: RawMap + ?Sized> RawMap for $t {
            fn key_size(&self) -> usize { (**self).key_size() }
            fn value_size(&self) -> usize { (**self).value_size() }
            fn value_copies(&self) -> usize { (**self).value_copies() }
            fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> { (**self).lookup(key) }
            fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> { (**self).update(key, value, flags) }
            fn delete(&self, key: &[u8]) -> Result<(), MapError> { (**self).delete(key) }
            fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> { (**self).next_key(key) }
            fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> { (**self).push(value, flags) }
            fn pop(&self) -> Result<Option<Vec<u8>>, MapError> { (**self).pop() }
            fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> { (**self).peek(value) }
        }
    )*};
}
forward_raw_map!(Box<M>, &M);

fn map_prefix(map: &str) -> String {
    if map.is_empty() {
        String::new()
    } else {
        format!("map `{map}`: ")
    }
}

/// A map of a loaded [`Ebpf`](crate::Ebpf) object, in the kernel or the VM.
/// Errors of its operations name it.
pub struct Map {
    name: String,
    inner: MapInner,
}

pub(crate) enum MapInner {
    Kernel(KernelMap),
    Vm(bpfkit_vm::Map),
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("name", &self.name)
            .field("type", &self.map_type())
            .finish()
    }
}

impl Map {
    pub(crate) fn new(name: String, inner: MapInner) -> Map {
        Map { name, inner }
    }

    /// A kernel map made by hand (`KernelMap::create`), under its name.
    pub fn from_kernel(map: KernelMap) -> Map {
        Map::new(map.name().to_string(), MapInner::Kernel(map))
    }

    /// A VM map made by hand (`bpfkit::vm::Map::new`), called `name`.
    pub fn from_vm(name: &str, map: bpfkit_vm::Map) -> Map {
        Map::new(name.into(), MapInner::Vm(map))
    }

    /// The map's name in the object (`.rodata`, `.bss` for globals).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its type.
    pub fn map_type(&self) -> MapType {
        match &self.inner {
            MapInner::Kernel(m) => m.map_type(),
            MapInner::Vm(m) => m.def().map_type,
        }
    }

    /// Its capacity (bytes, for a ring buffer).
    pub fn max_entries(&self) -> u32 {
        match &self.inner {
            MapInner::Kernel(m) => m.max_entries(),
            MapInner::Vm(m) => m.def().max_entries,
        }
    }

    /// The kernel map, on the kernel backend.
    pub fn kernel(&self) -> Option<&KernelMap> {
        match &self.inner {
            MapInner::Kernel(m) => Some(m),
            MapInner::Vm(_) => None,
        }
    }

    /// The VM map, on the VM backend.
    pub fn vm(&self) -> Option<&bpfkit_vm::Map> {
        match &self.inner {
            MapInner::Vm(m) => Some(m),
            MapInner::Kernel(_) => None,
        }
    }

    /// Pins the map at `path` in bpffs, so it outlives this process.
    pub fn pin(&self, path: &std::path::Path) -> Result<(), crate::Error> {
        match &self.inner {
            MapInner::Kernel(m) => Ok(m.pin(path)?),
            MapInner::Vm(_) => Err(crate::Error::Unsupported {
                what: format!("pinning map `{}`", self.name),
                backend: crate::Backend::Vm,
                why: "VM maps live in this process only",
            }),
        }
    }

    /// Checks the map's type, for typed readers.
    pub(crate) fn expect_type(
        &self,
        want: MapType,
        kind: &'static str,
    ) -> Result<(), crate::Error> {
        if self.map_type() == want {
            Ok(())
        } else {
            Err(crate::Error::MapKind {
                map: self.name.clone(),
                expected: kind,
                actual: self.map_type().to_string(),
            })
        }
    }

    pub(crate) fn inner(&self) -> &MapInner {
        &self.inner
    }

    /// What this map, an outer map, stores to hold `inner`: the inner map's
    /// fd for the kernel, its id for the VM.
    pub(crate) fn inner_map_value(&self, inner: &Map) -> Result<[u8; 4], crate::Error> {
        match (&self.inner, &inner.inner) {
            (MapInner::Kernel(_), MapInner::Kernel(m)) => {
                Ok((std::os::fd::AsRawFd::as_raw_fd(m.fd()) as u32).to_ne_bytes())
            }
            (MapInner::Vm(_), MapInner::Vm(m)) => Ok(m.id().to_ne_bytes()),
            _ => Err(crate::Error::MapKind {
                map: inner.name.clone(),
                expected: "map on the same backend as its outer map",
                actual: format!("map on the other backend than `{}`", self.name),
            }),
        }
    }

    fn named<T>(&self, r: Result<T, MapError>) -> Result<T, MapError> {
        r.map_err(|mut e| {
            e.map.clone_from(&self.name);
            e
        })
    }

    fn raw(&self) -> &dyn RawMap {
        match &self.inner {
            MapInner::Kernel(m) => m,
            MapInner::Vm(m) => m,
        }
    }
}

impl RawMap for Map {
    fn key_size(&self) -> usize {
        self.raw().key_size()
    }
    fn value_size(&self) -> usize {
        self.raw().value_size()
    }
    fn value_copies(&self) -> usize {
        self.raw().value_copies()
    }
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.named(self.raw().lookup(key))
    }
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.named(self.raw().update(key, value, flags))
    }
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.named(self.raw().delete(key))
    }
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        self.named(self.raw().next_key(key))
    }
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.named(self.raw().push(value, flags))
    }
    fn pop(&self) -> Result<Option<Vec<u8>>, MapError> {
        self.named(self.raw().pop())
    }
    fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        self.named(self.raw().peek(value))
    }
}

fn vm_err(op: &'static str) -> impl Fn(bpfkit_vm::MapError) -> MapError {
    move |e| MapError {
        map: String::new(),
        op,
        errno: e.errno(),
        message: e.message().to_string(),
    }
}

fn kernel_err(op: &'static str) -> impl Fn(bpfkit_kernel::MapError) -> MapError {
    move |e| MapError {
        map: String::new(),
        op,
        errno: e.errno(),
        message: e.to_string(),
    }
}

/// Implements [`RawMap`] for a backend's map type, whose methods have the
/// same names and shapes; `$err` turns its error into a [`MapError`].
macro_rules! backend_raw_map {
    ($t:ty, $err:ident, $key:expr, $value:expr) => {
        impl RawMap for $t {
            fn key_size(&self) -> usize {
                $key(self)
            }
            fn value_size(&self) -> usize {
                $value(self)
            }
            fn value_copies(&self) -> usize {
                <$t>::value_copies(self)
            }
            fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
                <$t>::lookup(self, key).map_err($err("lookup"))
            }
            fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
                <$t>::update(self, key, value, flags).map_err($err("update"))
            }
            fn delete(&self, key: &[u8]) -> Result<(), MapError> {
                <$t>::delete(self, key).map_err($err("delete"))
            }
            fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
                <$t>::next_key(self, key).map_err($err("next_key"))
            }
            fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
                <$t>::push(self, value, flags).map_err($err("push"))
            }
            fn pop(&self) -> Result<Option<Vec<u8>>, MapError> {
                <$t>::pop(self).map_err($err("pop"))
            }
            fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
                <$t>::peek(self, value).map_err($err("peek"))
            }
        }
    };
}
backend_raw_map!(
    bpfkit_vm::Map,
    vm_err,
    |m: &bpfkit_vm::Map| m.def().key_size as usize,
    |m: &bpfkit_vm::Map| m.def().value_size as usize
);
backend_raw_map!(
    KernelMap,
    kernel_err,
    KernelMap::key_size,
    KernelMap::value_size
);

/// Every entry of a map, as `(key, value)` bytes in key order.
pub fn dump(map: &dyn RawMap) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>, MapError> {
    let mut out = std::collections::BTreeMap::new();
    for key in keys(map) {
        let key = key?;
        if let Some(v) = map.lookup(&key)? {
            out.insert(key, v);
        }
    }
    Ok(out)
}
