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
