//! Enumerating what the kernel holds: program, map, link and BTF ids
//! (`BPF_*_GET_NEXT_ID`), each opened by id and described by its info.

use std::os::fd::AsFd;

pub use crate::info::{BtfInfo, LinkInfo, MapInfo, ProgramInfo};
use crate::sys::{self, IdKind};

/// Kinds of kernel BPF objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Programs.
    Program,
    /// Maps.
    Map,
    /// Links.
    Link,
    /// BTF objects.
    Btf,
}

impl ObjectKind {
    fn id_kind(self) -> IdKind {
        match self {
            ObjectKind::Program => IdKind::Prog,
            ObjectKind::Map => IdKind::Map,
            ObjectKind::Link => IdKind::Link,
            ObjectKind::Btf => IdKind::Btf,
        }
    }
}

/// The ids of every object of `kind` in the kernel, ascending. Empty when
/// `bpf()` is not allowed.
pub fn ids(kind: ObjectKind) -> Vec<u32> {
    let mut out = Vec::new();
    let mut start = 0u32;
    while let Ok(Some(id)) = sys::next_id(kind.id_kind(), start) {
        out.push(id);
        start = id;
    }
    out
}

/// How many objects of each kind the kernel holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectCounts {
    /// Programs.
    pub programs: usize,
    /// Maps.
    pub maps: usize,
    /// Links.
    pub links: usize,
    /// BTF objects (the kernel's and its modules' included).
    pub btfs: usize,
}

/// Counts the kernel's programs, maps, links and BTF objects: compare before
/// and after a test to find leaked objects.
pub fn count_objects() -> ObjectCounts {
    ObjectCounts {
        programs: ids(ObjectKind::Program).len(),
        maps: ids(ObjectKind::Map).len(),
        links: ids(ObjectKind::Link).len(),
        btfs: ids(ObjectKind::Btf).len(),
    }
}

/// The kernel id of a program, map or link fd.
pub fn id_of(fd: impl AsFd) -> crate::Result<u32> {
    crate::info::id_of(fd.as_fd())
}

/// Opens each object of `kind` and describes it; objects that go away
/// meanwhile are skipped.
fn describe<T>(
    kind: ObjectKind,
    f: impl Fn(std::os::fd::BorrowedFd<'_>) -> crate::Result<T>,
) -> Vec<T> {
    ids(kind)
        .into_iter()
        .filter_map(|id| {
            let fd = sys::fd_by_id(kind.id_kind(), id, 0).ok()?;
            f(fd.as_fd()).ok()
        })
        .collect()
}

/// Every program the kernel holds.
pub fn programs() -> Vec<ProgramInfo> {
    describe(ObjectKind::Program, ProgramInfo::from_fd)
}

/// Every map the kernel holds.
pub fn maps() -> Vec<MapInfo> {
    describe(ObjectKind::Map, MapInfo::from_fd)
}

/// Every link the kernel holds.
pub fn links() -> Vec<LinkInfo> {
    describe(ObjectKind::Link, LinkInfo::from_fd)
}

/// Every BTF object the kernel holds.
pub fn btfs() -> Vec<BtfInfo> {
    describe(ObjectKind::Btf, BtfInfo::from_fd)
}
