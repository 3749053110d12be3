//! Kernel maps: created from a definition, accessed by bytes with the same
//! signatures as the VM's maps, so one test suite runs against both.

use std::os::fd::{AsRawFd, OwnedFd};

use bpfkit_abi::MapType;

use crate::error::{Error, Result};
use crate::sys::{bpf, bpf_fd, cmd, Attr};

/// What `BPF_MAP_CREATE` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDefinition {
    /// Name (at most 15 bytes are kept).
    pub name: String,
    /// Type.
    pub map_type: MapType,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// `map_extra`.
    pub map_extra: u64,
    /// NUMA node.
    pub numa_node: Option<u32>,
    /// BTF object and key/value type ids.
    pub btf: Option<(i32, u32, u32)>,
}

/// A map operation failed with an errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} on map `{map}`: {message} (errno {errno})")]
pub struct MapError {
    op: &'static str,
    map: String,
    errno: i32,
    message: String,
}

impl MapError {
    /// The positive errno.
    pub fn errno(&self) -> i32 {
        self.errno
    }
}

/// A map in the kernel. Closing the last fd frees it (unless pinned).
#[derive(Debug)]
pub struct KernelMap {
    fd: OwnedFd,
    name: String,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    ncpus: usize,
}

fn kernel_name(name: &str) -> [u8; 16] {
    // The kernel takes [A-Za-z0-9_.], at most 15 bytes.
    let mut out = [0u8; 16];
    for (i, b) in name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(15)
        .enumerate()
    {
        out[i] = b;
    }
    out
}

impl KernelMap {
    /// Creates a map; `inner` is the template fd for map-in-map types.
    pub fn create(def: &MapDefinition, inner: Option<&KernelMap>) -> Result<KernelMap> {
        let mut attr = Attr::default()
            .u32(0, def.map_type.as_u32())
            .u32(4, def.key_size)
            .u32(8, def.value_size)
            .u32(12, def.max_entries)
            .u32(16, def.map_flags)
            .u32(20, inner.map(|m| m.fd.as_raw_fd() as u32).unwrap_or(0))
            .bytes(28, &kernel_name(&def.name))
            .u64(64, def.map_extra);
        if let Some(node) = def.numa_node {
            attr = attr
                .u32(24, node)
                .u32(16, def.map_flags | bpfkit_abi::map_flags::NUMA_NODE);
        }
        if let Some((btf_fd, key, value)) = def.btf {
            attr = attr.u32(48, btf_fd as u32).u32(52, key).u32(56, value);
        }
        let fd = bpf_fd(cmd::MAP_CREATE, &mut attr)
            .map_err(|e| Error::sys(format!("create {} map `{}`", def.map_type, def.name), e))?;
        Ok(KernelMap {
            fd,
            name: def.name.clone(),
            map_type: def.map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            ncpus: if def.map_type.is_percpu() {
                crate::fs::possible_cpus()
            } else {
                1
            },
        })
    }

    /// The map's fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.key_size as usize
    }

    /// Value size in bytes (of one CPU's value for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size as usize
    }

    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Value copies a lookup returns: possible CPUs for per-CPU maps, else 1.
    pub fn value_copies(&self) -> usize {
        self.ncpus
    }

    fn value_buf_len(&self) -> usize {
        if self.ncpus > 1 || self.map_type.is_percpu() {
            (self.value_size as usize).next_multiple_of(8) * self.ncpus
        } else {
            self.value_size as usize
        }
    }

    fn err(&self, op: &'static str, e: std::io::Error) -> MapError {
        MapError {
            op,
            map: self.name.clone(),
            errno: e.raw_os_error().unwrap_or(0),
            message: e.to_string(),
        }
    }

    fn check(
        &self,
        op: &'static str,
        what: &str,
        got: usize,
        want: usize,
    ) -> std::result::Result<(), MapError> {
        if got == want {
            return Ok(());
        }
        Err(MapError {
            op,
            map: self.name.clone(),
            errno: libc::EINVAL,
            message: format!("{what} has {got} bytes, map expects {want}"),
        })
    }

    fn elem(
        &self,
        command: u32,
        key: Option<&[u8]>,
        value: *const u8,
        flags: u64,
    ) -> std::io::Result<i64> {
        let mut attr = Attr::default()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, key.map_or(0, |k| k.as_ptr() as u64))
            .u64(16, value as u64)
            .u64(24, flags);
        bpf(command, &mut attr)
    }

    /// The value under `key`; per-CPU maps return every possible CPU's value, padded to 8 bytes.
    pub fn lookup(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, MapError> {
        self.check("lookup", "key", key.len(), self.key_size())?;
        let mut value = vec![0u8; self.value_buf_len()];
        match self.elem(cmd::MAP_LOOKUP_ELEM, Some(key), value.as_mut_ptr(), 0) {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err("lookup", e)),
        }
    }

    /// Stores `value` under `key` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST`.
    pub fn update(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> std::result::Result<(), MapError> {
        self.check("update", "key", key.len(), self.key_size())?;
        self.check("update", "value", value.len(), self.value_buf_len())?;
        self.elem(cmd::MAP_UPDATE_ELEM, Some(key), value.as_ptr(), flags)
            .map(|_| ())
            .map_err(|e| self.err("update", e))
    }

    /// Removes `key`.
    pub fn delete(&self, key: &[u8]) -> std::result::Result<(), MapError> {
        self.check("delete", "key", key.len(), self.key_size())?;
        self.elem(cmd::MAP_DELETE_ELEM, Some(key), std::ptr::null(), 0)
            .map(|_| ())
            .map_err(|e| self.err("delete", e))
    }

    /// The key after `key` (the first for `None`), `None` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> std::result::Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check("next_key", "key", k.len(), self.key_size())?;
        }
        let mut next = vec![0u8; self.key_size()];
        match self.elem(cmd::MAP_GET_NEXT_KEY, key, next.as_mut_ptr(), 0) {
            Ok(_) => Ok(Some(next)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err("next_key", e)),
        }
    }

    /// Pushes onto a queue or stack, or adds to a bloom filter.
    pub fn push(&self, value: &[u8], flags: u64) -> std::result::Result<(), MapError> {
        self.check("push", "value", value.len(), self.value_size())?;
        self.elem(cmd::MAP_UPDATE_ELEM, None, value.as_ptr(), flags)
            .map(|_| ())
            .map_err(|e| self.err("push", e))
    }

    /// Pops from a queue or stack.
    pub fn pop(&self) -> std::result::Result<Option<Vec<u8>>, MapError> {
        let mut value = vec![0u8; self.value_size()];
        match self.elem(cmd::MAP_LOOKUP_AND_DELETE_ELEM, None, value.as_mut_ptr(), 0) {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err("pop", e)),
        }
    }

    /// Peeks at a queue or stack; for a bloom filter, tests `value`.
    pub fn peek(&self, value: Option<&[u8]>) -> std::result::Result<Option<Vec<u8>>, MapError> {
        let mut buf = match value {
            Some(v) => v.to_vec(),
            None => vec![0u8; self.value_size()],
        };
        match self.elem(cmd::MAP_LOOKUP_ELEM, None, buf.as_mut_ptr(), 0) {
            Ok(_) => Ok(Some(buf)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err("peek", e)),
        }
    }

    /// Makes the map read-only for user space (`BPF_MAP_FREEZE`), as `.rodata` is after loading.
    pub fn freeze(&self) -> Result<()> {
        let mut attr = Attr::default().u32(0, self.fd.as_raw_fd() as u32);
        bpf(cmd::MAP_FREEZE, &mut attr)
            .map(|_| ())
            .map_err(|e| Error::sys(format!("freeze map `{}`", self.name), e))
    }

    /// Pins the map at `path` in bpffs.
    pub fn pin(&self, path: &std::path::Path) -> Result<()> {
        crate::link::pin_fd(&self.fd, path)
    }
}
