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

/// How bpftool's command line names programs and maps: `id ID`,
/// `tag TAG` (programs), `name NAME`, `pinned FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The object with this kernel id.
    Id(u32),
    /// Every program whose tag (hash of its instructions) is this.
    Tag([u8; 8]),
    /// Every object whose kernel name (first 15 bytes) is this.
    Name(String),
    /// The object pinned at this path in a bpffs.
    Pinned(std::path::PathBuf),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "id {id}"),
            Selector::Tag(t) => {
                f.write_str("tag ")?;
                t.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Selector::Name(n) => write!(f, "name {n}"),
            Selector::Pinned(p) => write!(f, "pinned {}", p.display()),
        }
    }
}

/// The kind of BPF object behind an fd, from its anonymous inode's name
/// (`anon_inode:bpf-prog`, `bpf-map`, `bpf-link`), as bpftool's
/// `get_fd_type` reads it.
fn fd_kind(fd: std::os::fd::BorrowedFd<'_>) -> Option<ObjectKind> {
    use std::os::fd::AsRawFd;
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    match target.to_str()? {
        "anon_inode:bpf-prog" => Some(ObjectKind::Program),
        "anon_inode:bpf-map" => Some(ObjectKind::Map),
        // A link's own fd says bpf_link; one from BPF_OBJ_GET, bpf-link.
        "anon_inode:bpf_link" | "anon_inode:bpf-link" => Some(ObjectKind::Link),
        _ => None,
    }
}

/// Opens every object of `kind` (programs or maps) that `sel` names,
/// ascending by id; none is not an error (bpftool's `show` prints nothing
/// then, while its single-object commands refuse).
pub fn open_matching(kind: ObjectKind, sel: &Selector) -> crate::Result<Vec<std::os::fd::OwnedFd>> {
    use crate::error::Error;
    let what = match kind {
        ObjectKind::Program => "program",
        ObjectKind::Map => "map",
        ObjectKind::Link => "link",
        ObjectKind::Btf => "BTF object",
    };
    match sel {
        Selector::Id(id) => sys::fd_by_id(kind.id_kind(), *id, 0)
            .map(|fd| vec![fd])
            .map_err(|e| Error::sys(format!("open {what} id {id}"), e)),
        Selector::Pinned(path) => {
            let fd = crate::fs::open_pinned(path, 0)?;
            match fd_kind(fd.as_fd()) {
                Some(k) if k == kind => Ok(vec![fd]),
                other => Err(Error::Object(format!(
                    "{} is not a {what} but {}",
                    path.display(),
                    match other {
                        Some(ObjectKind::Program) => "a program",
                        Some(ObjectKind::Map) => "a map",
                        Some(ObjectKind::Link) => "a link",
                        _ => "an object of another kind",
                    }
                ))),
            }
        }
        Selector::Tag(_) if kind != ObjectKind::Program => Err(Error::Object(format!(
            "only programs have tags; a {what} is named by id, name or pinned path"
        ))),
        Selector::Tag(tag) => Ok(matching(kind, |fd| {
            crate::info::program_name_and_tag(fd).is_ok_and(|(_, t)| t == *tag)
        })),
        // bpftool compares the kernel's (truncated) name, strncmp over
        // BPF_OBJ_NAME_LEN, in prog_fd_by_nametag and map_fd_by_name.
        Selector::Name(name) => Ok(matching(kind, |fd| match kind {
            ObjectKind::Program => {
                crate::info::program_name_and_tag(fd).is_ok_and(|(n, _)| n == *name)
            }
            ObjectKind::Map => MapInfo::from_fd(fd).is_ok_and(|m| m.name == *name),
            _ => false,
        })),
    }
}

/// Opens the objects of `kind` for which `keep` holds; objects that go
/// away meanwhile are skipped.
fn matching(
    kind: ObjectKind,
    keep: impl Fn(std::os::fd::BorrowedFd<'_>) -> bool,
) -> Vec<std::os::fd::OwnedFd> {
    ids(kind)
        .into_iter()
        .filter_map(|id| sys::fd_by_id(kind.id_kind(), id, 0).ok())
        .filter(|fd| keep(fd.as_fd()))
        .collect()
}
