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
