//! Kernel maps: created from a definition, accessed by bytes with the same
//! signatures as the VM's maps (so one test suite runs against both). The
//! typed views over [`Pod`] keys and values are the `bpfkit` crate's, one
//! family for both backends.

mod pod;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use bpfkit_abi::MapType;

use crate::error::{Error, Result};
use crate::info::MapInfo;
use crate::sys::{self, IdKind};

pub use pod::{bytes_of, from_bytes, from_prefix, Pod};

/// What `BPF_MAP_CREATE` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDefinition {
    /// Name (at most 15 bytes of `[A-Za-z0-9_.]` are kept).
    pub name: String,
    /// Type.
    pub map_type: MapType,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity (data bytes, a power-of-two number of pages, for ring buffers).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// `map_extra` (bloom filter: number of hash functions).
    pub map_extra: u64,
    /// NUMA node.
    pub numa_node: Option<u32>,
    /// BTF object fd and the key and value type ids in it.
    pub btf: Option<(i32, u32, u32)>,
}

impl MapDefinition {
    /// A definition with no flags, NUMA node or BTF.
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapDefinition {
        MapDefinition {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
            map_extra: 0,
            numa_node: None,
            btf: None,
        }
    }

    /// The same with `BPF_F_*` flags.
    pub fn with_flags(mut self, map_flags: u32) -> MapDefinition {
        self.map_flags = map_flags;
        self
    }
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
    /// The positive errno (`ENOENT`, `E2BIG`, `EEXIST`, `EINVAL`...).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The operation that failed (`lookup`, `update`...).
    pub fn op(&self) -> &'static str {
        self.op
    }
}

type MapResult<T> = std::result::Result<T, MapError>;

/// A map in the kernel. Closing the last fd frees it (unless pinned or used
/// by a program).
#[derive(Debug)]
pub struct KernelMap {
    fd: OwnedFd,
    id: u32,
    name: String,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    ncpus: usize,
}

impl KernelMap {
    /// Creates a map; `inner` is the template for array- and hash-of-maps.
    pub fn create(def: &MapDefinition, inner: Option<&KernelMap>) -> Result<KernelMap> {
        let what = || format!("create {} map `{}`", def.map_type, def.name);
        let btf = def.btf.map(|(fd, _, _)| {
            // SAFETY: `BorrowedFd` asks that the fd stay open while borrowed:
            // the definition's owner keeps its BTF fd open for this call, and
            // a number that is not an open BTF fd only makes the kernel fail
            // the call (no memory is involved).
            unsafe { BorrowedFd::borrow_raw(fd) }
        });
        let (key_type, value_type) = def.btf.map_or((0, 0), |(_, k, v)| (k, v));
        let mut map_flags = def.map_flags;
        if def.numa_node.is_some() {
            map_flags |= bpfkit_abi::map_flags::NUMA_NODE;
        }
        let fd = sys::map_create(&sys::MapCreate {
            map_type: def.map_type.as_u32(),
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            map_flags,
            inner_map: inner.map(|m| m.fd.as_fd()),
            numa_node: def.numa_node.unwrap_or(0),
            name: &def.name,
            btf,
            btf_key_type_id: key_type,
            btf_value_type_id: value_type,
            map_extra: def.map_extra,
            ..Default::default()
        })
        .map_err(|e| Error::sys(what(), e))?;
        let id = crate::info::id_of(fd.as_fd())?;
        Ok(KernelMap {
            fd,
            id,
            name: def.name.clone(),
            map_type: def.map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            map_flags,
            ncpus: copies(def.map_type)?,
        })
    }

    /// Wraps an fd of an existing map (from an id, a pin, another process).
    pub fn from_fd(fd: OwnedFd) -> Result<KernelMap> {
        let info = MapInfo::from_fd(fd.as_fd())?;
        let map_type = info.map_type.ok_or_else(|| {
            Error::Unsupported(format!("map {} has a type bpfkit does not know", info.id))
        })?;
        Ok(KernelMap {
            fd,
            id: info.id,
            name: info.name,
            map_type,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            map_flags: info.flags,
            ncpus: copies(map_type)?,
        })
    }

    /// Opens the map with this kernel id.
    pub fn from_id(id: u32) -> Result<KernelMap> {
        let fd = sys::fd_by_id(IdKind::Map, id, 0)
            .map_err(|e| Error::sys(format!("open map id {id}"), e))?;
        KernelMap::from_fd(fd)
    }

    /// Opens the map pinned at `path`.
    pub fn from_pin(path: &Path) -> Result<KernelMap> {
        KernelMap::from_fd(crate::fs::open_pinned(path, 0)?)
    }

    /// The map's fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The kernel's id for it.
    pub fn id(&self) -> u32 {
        self.id
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

    /// Creation flags.
    pub fn map_flags(&self) -> u32 {
        self.map_flags
    }

    /// Value copies a lookup returns: possible CPUs for per-CPU maps, else 1.
    pub fn value_copies(&self) -> usize {
        self.ncpus
    }

    /// Bytes of one whole value as user space sees it: per-CPU maps hold
    /// one 8-byte-aligned slot per possible CPU.
    pub fn value_stride(&self) -> usize {
        if self.map_type.is_percpu() {
            (self.value_size as usize).next_multiple_of(8) * self.ncpus
        } else {
            self.value_size as usize
        }
    }

    /// What the kernel reports about the map now.
    pub fn info(&self) -> Result<MapInfo> {
        MapInfo::from_fd(self.fd.as_fd())
    }

    fn err(&self, op: &'static str, e: std::io::Error) -> MapError {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        // The errno is printed once, after the text; the kernel-internal
        // ENOTSUPP (524) has no text of its own in libc.
        let message = if errno == 524 {
            "not supported for this map type (ENOTSUPP)".to_string()
        } else {
            let text = e.to_string();
            match text.rsplit_once(" (os error ") {
                Some((head, _)) => head.to_string(),
                None => text,
            }
        };
        MapError {
            op,
            map: self.name.clone(),
            errno,
            message,
        }
    }

    fn check(&self, op: &'static str, what: &str, got: usize, want: usize) -> MapResult<()> {
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

    /// `Ok(None)` for `ENOENT`.
    fn found(&self, op: &'static str, r: std::io::Result<()>) -> MapResult<bool> {
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(self.err(op, e)),
        }
    }

    /// The value under `key`; per-CPU maps return every possible CPU's
    /// value, each padded to 8 bytes. Map-in-map and program arrays return
    /// the id of the map or program stored.
    pub fn lookup(&self, key: &[u8]) -> MapResult<Option<Vec<u8>>> {
        self.check("lookup", "key", key.len(), self.key_size())?;
        let mut value = vec![0u8; self.value_stride()];
        // SAFETY: `key` has the key size (checked) and `value` the value
        // stride the kernel writes.
        let r = unsafe { sys::map_lookup_elem(self.fd.as_fd(), Some(key), &mut value, 0) };
        Ok(self.found("lookup", r)?.then_some(value))
    }

    /// Stores `value` under `key` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST`
    /// (and `BPF_F_LOCK`). Map-in-map and program arrays take an fd as a `u32`.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        self.check("update", "key", key.len(), self.key_size())?;
        self.check("update", "value", value.len(), self.value_stride())?;
        // SAFETY: both sizes checked against the map's.
        unsafe { sys::map_update_elem(self.fd.as_fd(), Some(key), value, flags) }
            .map_err(|e| self.err("update", e))
    }

    /// Removes `key`.
    pub fn delete(&self, key: &[u8]) -> MapResult<()> {
        self.check("delete", "key", key.len(), self.key_size())?;
        // SAFETY: the key size is checked.
        unsafe { sys::map_delete_elem(self.fd.as_fd(), key) }.map_err(|e| self.err("delete", e))
    }

    /// The key after `key` (the first for `None` or a key not in the map),
    /// `None` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> MapResult<Option<Vec<u8>>> {
        if let Some(k) = key {
            self.check("next_key", "key", k.len(), self.key_size())?;
        }
        let mut next = vec![0u8; self.key_size()];
        // SAFETY: both buffers have the key size.
        let r = unsafe { sys::map_get_next_key(self.fd.as_fd(), key, &mut next) };
        Ok(self.found("next_key", r)?.then_some(next))
    }

    /// Looks up and removes `key` in one step (hash maps, 5.14+).
    pub fn lookup_and_delete(&self, key: &[u8]) -> MapResult<Option<Vec<u8>>> {
        self.check("lookup_and_delete", "key", key.len(), self.key_size())?;
        let mut value = vec![0u8; self.value_stride()];
        // SAFETY: sizes as in `lookup`.
        let r =
            unsafe { sys::map_lookup_and_delete_elem(self.fd.as_fd(), Some(key), &mut value, 0) };
        Ok(self.found("lookup_and_delete", r)?.then_some(value))
    }

    /// Pushes onto a queue or stack (`BPF_EXIST` overwrites the oldest when
    /// full), or adds to a bloom filter.
    pub fn push(&self, value: &[u8], flags: u64) -> MapResult<()> {
        self.check("push", "value", value.len(), self.value_size())?;
        // SAFETY: these maps have no key and the value size is checked.
        unsafe { sys::map_update_elem(self.fd.as_fd(), None, value, flags) }
            .map_err(|e| self.err("push", e))
    }

    /// Pops from a queue or stack.
    pub fn pop(&self) -> MapResult<Option<Vec<u8>>> {
        let mut value = vec![0u8; self.value_size()];
        // SAFETY: no key; `value` has the value size.
        let r = unsafe { sys::map_lookup_and_delete_elem(self.fd.as_fd(), None, &mut value, 0) };
        Ok(self.found("pop", r)?.then_some(value))
    }

    /// Peeks at a queue or stack; for a bloom filter, `Some` if `value` may
    /// be in it and `None` if it is certainly not.
    pub fn peek(&self, value: Option<&[u8]>) -> MapResult<Option<Vec<u8>>> {
        let mut buf = match value {
            Some(v) => {
                self.check("peek", "value", v.len(), self.value_size())?;
                v.to_vec()
            }
            None => vec![0u8; self.value_size()],
        };
        // SAFETY: no key; `buf` has the value size.
        let r = unsafe { sys::map_lookup_elem(self.fd.as_fd(), None, &mut buf, 0) };
        Ok(self.found("peek", r)?.then_some(buf))
    }

    /// Every key, by `next_key` iteration. Keys deleted meanwhile may restart
    /// the walk (the kernel's behaviour), so this is for quiet maps.
    pub fn keys(&self) -> MapResult<Vec<Vec<u8>>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut cur = self.next_key(None)?;
        while let Some(k) = cur {
            cur = self.next_key(Some(&k))?;
            out.push(k);
            if out.len() > self.max_entries as usize {
                break;
            }
        }
        Ok(out)
    }

    /// Makes the map read-only for user space (`BPF_MAP_FREEZE`), as `.rodata` is after loading.
    pub fn freeze(&self) -> Result<()> {
        sys::map_freeze(self.fd.as_fd())
            .map_err(|e| Error::sys(format!("freeze map `{}`", self.name), e))
    }

    /// Pins the map at `path` in bpffs.
    pub fn pin(&self, path: &Path) -> Result<()> {
        crate::fs::pin(self.fd.as_fd(), path)
    }

    fn batch_token_len(&self) -> usize {
        // Hash maps use a u32 bucket cursor, arrays a key-sized one.
        self.key_size().max(8)
    }

    /// Every entry, read `chunk` at a time with `BPF_MAP_LOOKUP_BATCH`
    /// (hash, LRU, array and their per-CPU kinds, 5.6+); `delete` drains the
    /// map as it goes (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`, hash maps only).
    pub fn batch_entries(&self, chunk: u32, delete: bool) -> MapResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let op = if delete {
            "lookup_and_delete_batch"
        } else {
            "lookup_batch"
        };
        let chunk = chunk.max(1);
        let (ks, vs) = (self.key_size(), self.value_stride());
        let mut keys = vec![0u8; ks * chunk as usize];
        let mut values = vec![0u8; vs * chunk as usize];
        let mut token_in: Option<Vec<u8>> = None;
        let mut token_out = vec![0u8; self.batch_token_len()];
        let mut out = Vec::new();
        loop {
            let f = if delete {
                sys::map_lookup_and_delete_batch
            } else {
                sys::map_lookup_batch
            };
            // SAFETY: `keys` and `values` hold `chunk` keys and values of
            // the map's sizes; the tokens hold the largest cursor the kernel
            // uses for these maps.
            let r = unsafe {
                f(
                    self.fd.as_fd(),
                    token_in.as_deref(),
                    &mut token_out,
                    &mut keys,
                    &mut values,
                    chunk,
                    0,
                )
            };
            let progress = match r {
                Ok(p) => p,
                // A bucket bigger than `chunk`: ask for more at once.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && chunk < self.max_entries => {
                    return self.batch_entries(chunk.saturating_mul(2), delete);
                }
                Err(e) => return Err(self.err(op, e)),
            };
            let n = progress.count as usize;
            for i in 0..n {
                out.push((
                    keys[i * ks..(i + 1) * ks].to_vec(),
                    values[i * vs..(i + 1) * vs].to_vec(),
                ));
            }
            if progress.done {
                return Ok(out);
            }
            token_in = Some(token_out.clone());
        }
    }

    /// Stores many entries with one `BPF_MAP_UPDATE_BATCH`; returns how many were stored.
    pub fn update_batch(&self, entries: &[(&[u8], &[u8])], flags: u64) -> MapResult<u32> {
        let mut keys = Vec::with_capacity(entries.len() * self.key_size());
        let mut values = Vec::with_capacity(entries.len() * self.value_stride());
        for (k, v) in entries {
            self.check("update_batch", "key", k.len(), self.key_size())?;
            self.check("update_batch", "value", v.len(), self.value_stride())?;
            keys.extend_from_slice(k);
            values.extend_from_slice(v);
        }
        let count = u32::try_from(entries.len()).map_err(|_| MapError {
            op: "update_batch",
            map: self.name.clone(),
            errno: libc::E2BIG,
            message: "too many entries".into(),
        })?;
        // SAFETY: `keys`/`values` hold exactly `count` checked keys and values.
        unsafe { sys::map_update_batch(self.fd.as_fd(), &keys, &values, count, flags) }
            .map_err(|e| self.err("update_batch", e))
    }

    /// Deletes many keys with one `BPF_MAP_DELETE_BATCH`; returns how many were deleted.
    pub fn delete_batch(&self, keys: &[&[u8]]) -> MapResult<u32> {
        let mut flat = Vec::with_capacity(keys.len() * self.key_size());
        for k in keys {
            self.check("delete_batch", "key", k.len(), self.key_size())?;
            flat.extend_from_slice(k);
        }
        let count = keys.len() as u32;
        // SAFETY: `flat` holds exactly `count` checked keys.
        unsafe { sys::map_delete_batch(self.fd.as_fd(), &flat, count, 0) }
            .map_err(|e| self.err("delete_batch", e))
    }
}

/// Value copies of a map type: possible CPUs for per-CPU maps, else 1.
/// The kernel writes one value per possible CPU, so a guess would overflow
/// our buffers: an unknown count is an error.
fn copies(t: MapType) -> Result<usize> {
    if t.is_percpu() {
        crate::fs::try_possible_cpus()
    } else {
        Ok(1)
    }
}

impl AsFd for KernelMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for KernelMap {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
