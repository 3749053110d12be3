//! Enumerating what the kernel holds: program, map, link and BTF ids.

use crate::sys::{bpf, cmd, Attr};

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

/// The ids of every object of `kind` in the kernel, ascending.
pub fn ids(kind: ObjectKind) -> Vec<u32> {
    let command = match kind {
        ObjectKind::Program => cmd::PROG_GET_NEXT_ID,
        ObjectKind::Map => cmd::MAP_GET_NEXT_ID,
        ObjectKind::Link => cmd::LINK_GET_NEXT_ID,
        ObjectKind::Btf => cmd::BTF_GET_NEXT_ID,
    };
    let mut out = Vec::new();
    let mut start = 0u32;
    loop {
        let mut attr = Attr::default().u32(0, start);
        if bpf(command, &mut attr).is_err() {
            break;
        }
        start = attr.get_u32(4);
        out.push(start);
    }
    out
}

/// How many programs, maps and links the kernel holds (for leak checks).
pub fn count_objects() -> (usize, usize, usize) {
    (
        ids(ObjectKind::Program).len(),
        ids(ObjectKind::Map).len(),
        ids(ObjectKind::Link).len(),
    )
}

/// The kernel id of a program, map or link fd (`BPF_OBJ_GET_INFO_BY_FD`;
/// the id is the second `u32` of every info struct).
pub fn id_of(fd: &std::os::fd::OwnedFd) -> crate::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 256];
    let mut attr = Attr::default()
        .u32(0, fd.as_raw_fd() as u32)
        .u32(4, info.len() as u32)
        .ptr(8, info.as_mut_ptr());
    bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr).map_err(|e| crate::Error::sys("get object info", e))?;
    Ok(u32::from_ne_bytes([info[4], info[5], info[6], info[7]]))
}

/// What the kernel reports about a program (`struct bpf_prog_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Program id.
    pub id: u32,
    /// Program type.
    pub prog_type: Option<bpfkit_abi::ProgramType>,
    /// Name (first 15 bytes).
    pub name: String,
    /// Tag (hash of the instructions), as 16 hex digits.
    pub tag: String,
    /// Bytes of translated instructions.
    pub bytes_xlated: u32,
    /// Bytes of JIT-compiled code (0 when not JITed).
    pub bytes_jited: u32,
    /// Load time, nanoseconds since boot.
    pub load_time_ns: u64,
    /// User id that loaded it.
    pub uid: u32,
    /// Ids of the maps it uses.
    pub map_ids: Vec<u32>,
}

/// What the kernel reports about a map (`struct bpf_map_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// Map id.
    pub id: u32,
    /// Map type.
    pub map_type: Option<bpfkit_abi::MapType>,
    /// Name (first 15 bytes).
    pub name: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Creation flags.
    pub flags: u32,
}

/// What the kernel reports about a link (`struct bpf_link_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Link id.
    pub id: u32,
    /// Link type (`enum bpf_link_type`).
    pub link_type: u32,
    /// The attached program's id.
    pub prog_id: u32,
}

fn fd_by_id(command: u32, id: u32) -> Option<std::os::fd::OwnedFd> {
    let mut attr = Attr::default().u32(0, id);
    crate::sys::bpf_fd(command, &mut attr).ok()
}

fn info(fd: &std::os::fd::OwnedFd, buf: &mut [u8]) -> bool {
    use std::os::fd::AsRawFd;
    let mut attr = Attr::default()
        .u32(0, fd.as_raw_fd() as u32)
        .u32(4, buf.len() as u32)
        .ptr(8, buf.as_mut_ptr());
    bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr).is_ok()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn name_at(b: &[u8], off: usize) -> String {
    let s = &b[off..off + 16];
    let end = s.iter().position(|&c| c == 0).unwrap_or(16);
    String::from_utf8_lossy(&s[..end]).into_owned()
}

/// Every program the kernel holds. Programs that go away meanwhile are skipped.
pub fn programs() -> Vec<ProgramInfo> {
    const PROG_GET_FD_BY_ID: u32 = 13;
    ids(ObjectKind::Program)
        .into_iter()
        .filter_map(|id| {
            let fd = fd_by_id(PROG_GET_FD_BY_ID, id)?;
            // First pass learns how many map ids there are; second fetches them.
            let mut buf = [0u8; 256];
            if !info(&fd, &mut buf) {
                return None;
            }
            let nr_maps = u32_at(&buf, 52) as usize;
            let mut map_ids = vec![0u32; nr_maps];
            if nr_maps > 0 {
                let mut second = [0u8; 256];
                second[52..56].copy_from_slice(&(nr_maps as u32).to_ne_bytes());
                second[56..64].copy_from_slice(&(map_ids.as_mut_ptr() as u64).to_ne_bytes());
                let mut attr = Attr::default()
                    .u32(0, std::os::fd::AsRawFd::as_raw_fd(&fd) as u32)
                    .u32(4, second.len() as u32)
                    .ptr(8, second.as_mut_ptr());
                if bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr).is_err() {
                    map_ids.clear();
                }
            }
            Some(ProgramInfo {
                id,
                prog_type: bpfkit_abi::ProgramType::from_u32(u32_at(&buf, 0)),
                name: name_at(&buf, 64),
                tag: buf[8..16].iter().map(|b| format!("{b:02x}")).collect(),
                bytes_jited: u32_at(&buf, 16),
                bytes_xlated: u32_at(&buf, 20),
                load_time_ns: u64::from_ne_bytes(buf[40..48].try_into().unwrap_or([0; 8])),
                uid: u32_at(&buf, 48),
                map_ids,
            })
        })
        .collect()
}

/// Every map the kernel holds.
pub fn maps() -> Vec<MapInfo> {
    const MAP_GET_FD_BY_ID: u32 = 14;
    ids(ObjectKind::Map)
        .into_iter()
        .filter_map(|id| {
            let fd = fd_by_id(MAP_GET_FD_BY_ID, id)?;
            let mut buf = [0u8; 256];
            info(&fd, &mut buf).then(|| MapInfo {
                id,
                map_type: bpfkit_abi::MapType::from_u32(u32_at(&buf, 0)),
                key_size: u32_at(&buf, 8),
                value_size: u32_at(&buf, 12),
                max_entries: u32_at(&buf, 16),
                flags: u32_at(&buf, 20),
                name: name_at(&buf, 24),
            })
        })
        .collect()
}

/// Every link the kernel holds.
pub fn links() -> Vec<LinkInfo> {
    const LINK_GET_FD_BY_ID: u32 = 30;
    ids(ObjectKind::Link)
        .into_iter()
        .filter_map(|id| {
            let fd = fd_by_id(LINK_GET_FD_BY_ID, id)?;
            let mut buf = [0u8; 256];
            info(&fd, &mut buf).then(|| LinkInfo {
                id,
                link_type: u32_at(&buf, 0),
                prog_id: u32_at(&buf, 8),
            })
        })
        .collect()
}
