//! Map commands: create, element access, batches, freeze.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::attr::{
    obj_name, MapCreateAttr, MapDeleteAttr, MapDeleteBatchAttr, MapFreezeAttr,
    MapLookupAndDeleteAttr, MapLookupAndDeleteBatchAttr, MapLookupAttr, MapLookupBatchAttr,
    MapNextKeyAttr, MapUpdateAttr, MapUpdateBatchAttr, Ptr, PtrMut,
};
use super::{fd_u32, raw, sys_bpf, sys_bpf_fd};

/// What `BPF_MAP_CREATE` takes.
#[derive(Debug, Clone, Default)]
pub struct MapCreate<'a> {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size in bytes (0 for queue, stack, bloom filter, ring buffer).
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity (bytes of data area for ring buffers).
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
    /// Template map for array-of-maps and hash-of-maps.
    pub inner_map: Option<BorrowedFd<'a>>,
    /// NUMA node (used when `map_flags` has `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// Name: at most 15 bytes of `[A-Za-z0-9_.]` are kept.
    pub name: &'a str,
    /// Device to offload to.
    pub map_ifindex: u32,
    /// BTF object describing key and value.
    pub btf: Option<BorrowedFd<'a>>,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
    /// Kernel BTF type id of the value (struct_ops).
    pub btf_vmlinux_value_type_id: u32,
    /// Per-type extra (bloom filter hash count, arena address).
    pub map_extra: u64,
}

/// Creates a map.
pub fn map_create(m: &MapCreate<'_>) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        map_flags: m.map_flags,
        inner_map_fd: raw(m.inner_map),
        numa_node: m.numa_node,
        map_name: obj_name(m.name),
        map_ifindex: m.map_ifindex,
        btf_fd: raw(m.btf),
        btf_key_type_id: m.btf_key_type_id,
        btf_value_type_id: m.btf_value_type_id,
        btf_vmlinux_value_type_id: m.btf_vmlinux_value_type_id,
        map_extra: m.map_extra,
    };
    sys_bpf_fd(&mut attr)
}

/// Looks `key` up into `value` (`key = None` peeks a queue or stack, or, with
/// `value` holding the element, tests a bloom filter).
///
/// # Safety
/// `key` must hold at least the map's key size and `value` the map's value
/// size (for per-CPU maps: the value size rounded up to 8, times the
/// possible CPUs): the kernel reads and writes that many bytes.
pub unsafe fn map_lookup_elem(
    map: BorrowedFd<'_>,
    key: Option<&[u8]>,
    value: &mut [u8],
    flags: u64,
) -> io::Result<()> {
    let mut attr = MapLookupAttr {
        map_fd: fd_u32(map),
        key: Ptr::opt(key),
        value: PtrMut::slice(value),
        flags,
        ..Default::default()
    };
    sys_bpf(&mut attr).map(drop)
}

/// Stores `value` under `key` (`key = None` pushes onto a queue or stack, or
/// adds to a bloom filter).
///
/// # Safety
/// As [`map_lookup_elem`]: the kernel reads the map's key and value sizes.
pub unsafe fn map_update_elem(
    map: BorrowedFd<'_>,
    key: Option<&[u8]>,
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    let mut attr = MapUpdateAttr {
        map_fd: fd_u32(map),
        key: Ptr::opt(key),
        value: Ptr::slice(value),
        flags,
        ..Default::default()
    };
    sys_bpf(&mut attr).map(drop)
}

/// Deletes `key`.
///
/// # Safety
/// `key` must hold at least the map's key size.
pub unsafe fn map_delete_elem(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    let mut attr = MapDeleteAttr {
        map_fd: fd_u32(map),
        key: Ptr::slice(key),
        ..Default::default()
    };
    sys_bpf(&mut attr).map(drop)
}

/// Writes the key after `key` (the first key for `None`) into `next`.
///
/// # Safety
/// `key` and `next` must hold at least the map's key size.
pub unsafe fn map_get_next_key(
    map: BorrowedFd<'_>,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<()> {
    let mut attr = MapNextKeyAttr {
        map_fd: fd_u32(map),
        key: Ptr::opt(key),
        next_key: PtrMut::slice(next),
        ..Default::default()
    };
    sys_bpf(&mut attr).map(drop)
}

/// Looks up and deletes (`key = None` pops a queue or stack).
///
/// # Safety
/// As [`map_lookup_elem`].
pub unsafe fn map_lookup_and_delete_elem(
    map: BorrowedFd<'_>,
    key: Option<&[u8]>,
    value: &mut [u8],
    flags: u64,
) -> io::Result<()> {
    let mut attr = MapLookupAndDeleteAttr {
        map_fd: fd_u32(map),
        key: Ptr::opt(key),
        value: PtrMut::slice(value),
        flags,
        ..Default::default()
    };
    sys_bpf(&mut attr).map(drop)
}

/// Makes the map read-only for user space.
pub fn map_freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = MapFreezeAttr {
        map_fd: fd_u32(map),
    };
    sys_bpf(&mut attr).map(drop)
}

/// How far a batch command got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress {
    /// Elements processed.
    pub count: u32,
    /// Whether the map has no more elements (the kernel said `ENOENT`).
    pub done: bool,
}

fn batch_result(r: io::Result<i64>, count: u32) -> io::Result<BatchProgress> {
    match r {
        Ok(_) => Ok(BatchProgress { count, done: false }),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(BatchProgress { count, done: true }),
        Err(e) => Err(e),
    }
}

/// Reads up to `count` elements starting at the opaque position `in_batch`
/// (`None` from the start) into `keys` and `values`; the next position goes
/// to `out_batch`.
///
/// # Safety
/// `keys` must hold `count` keys and `values` `count` values (per-CPU: each
/// value rounded up to 8 times the possible CPUs); `in_batch` and
/// `out_batch` must hold the map's batch token size (the key size for hash
/// maps, 4 for arrays).
#[allow(clippy::too_many_arguments)]
pub unsafe fn map_lookup_batch(
    map: BorrowedFd<'_>,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
    elem_flags: u64,
) -> io::Result<BatchProgress> {
    let mut attr = MapLookupBatchAttr {
        in_batch: Ptr::opt(in_batch),
        out_batch: PtrMut::slice(out_batch),
        keys: PtrMut::slice(keys),
        values: PtrMut::slice(values),
        count,
        map_fd: fd_u32(map),
        elem_flags,
        flags: 0,
    };
    let r = sys_bpf(&mut attr);
    batch_result(r, attr.count)
}

/// As [`map_lookup_batch`], deleting what it returns.
///
/// # Safety
/// As [`map_lookup_batch`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn map_lookup_and_delete_batch(
    map: BorrowedFd<'_>,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
    elem_flags: u64,
) -> io::Result<BatchProgress> {
    let mut attr = MapLookupAndDeleteBatchAttr {
        in_batch: Ptr::opt(in_batch),
        out_batch: PtrMut::slice(out_batch),
        keys: PtrMut::slice(keys),
        values: PtrMut::slice(values),
        count,
        map_fd: fd_u32(map),
        elem_flags,
        flags: 0,
    };
    let r = sys_bpf(&mut attr);
    batch_result(r, attr.count)
}

/// Stores `count` key/value pairs; the result counts those stored.
///
/// # Safety
/// `keys` and `values` must hold `count` keys and values.
pub unsafe fn map_update_batch(
    map: BorrowedFd<'_>,
    keys: &[u8],
    values: &[u8],
    count: u32,
    elem_flags: u64,
) -> io::Result<u32> {
    let mut attr = MapUpdateBatchAttr {
        keys: Ptr::slice(keys),
        values: Ptr::slice(values),
        count,
        map_fd: fd_u32(map),
        elem_flags,
        ..Default::default()
    };
    sys_bpf(&mut attr).map(|_| attr.count)
}

/// Deletes `count` keys; the result counts those deleted.
///
/// # Safety
/// `keys` must hold `count` keys.
pub unsafe fn map_delete_batch(
    map: BorrowedFd<'_>,
    keys: &[u8],
    count: u32,
    elem_flags: u64,
) -> io::Result<u32> {
    let mut attr = MapDeleteBatchAttr {
        keys: Ptr::slice(keys),
        count,
        map_fd: fd_u32(map),
        elem_flags,
        ..Default::default()
    };
    sys_bpf(&mut attr).map(|_| attr.count)
}
