//! Object commands: pinning, ids, info, BTF loading and the small rest.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::attr::{
    BtfFdById, BtfLoadAttr, BtfNextId, EnableStatsAttr, IdAttr, InfoAttr, IterCreateAttr,
    LinkFdById, LinkNextId, MapFdById, MapNextId, ObjGetAttr, ObjPinAttr, ProgBindMapAttr,
    ProgFdById, ProgNextId, Ptr, PtrMut, TaskFdQueryAttr,
};
use super::prog::LogBuffer;
use super::{fd_u32, invalid, sys_bpf, sys_bpf_fd};

/// Pins `fd` (map, program, link or BTF) at `path` in a bpffs.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    let mut attr = ObjPinAttr {
        pathname: Ptr::cstr(path),
        bpf_fd: fd_u32(fd),
        file_flags: 0,
    };
    sys_bpf(&mut attr).map(drop)
}

/// Opens the object pinned at `path` (`file_flags`: 0, `BPF_F_RDONLY` or `BPF_F_WRONLY`).
pub fn obj_get(path: &CStr, file_flags: u32) -> io::Result<OwnedFd> {
    let mut attr = ObjGetAttr {
        pathname: Ptr::cstr(path),
        bpf_fd: 0,
        file_flags,
    };
    sys_bpf_fd(&mut attr)
}

/// The kinds of objects with kernel-wide ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// Programs.
    Prog,
    /// Maps.
    Map,
    /// Links.
    Link,
    /// BTF objects.
    Btf,
}

/// The smallest id of `kind` above `start`, `None` past the last.
pub fn next_id(kind: IdKind, start: u32) -> io::Result<Option<u32>> {
    let mut attr = IdAttr {
        id: start,
        ..Default::default()
    };
    let r = match kind {
        IdKind::Prog => next_id_raw::<ProgNextId>(&mut attr),
        IdKind::Map => next_id_raw::<MapNextId>(&mut attr),
        IdKind::Link => next_id_raw::<LinkNextId>(&mut attr),
        IdKind::Btf => next_id_raw::<BtfNextId>(&mut attr),
    };
    match r {
        Ok(()) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

trait IdWrapper: super::attr::BpfAttr + Default {
    fn wrap(a: IdAttr) -> Self;
    fn unwrap(self) -> IdAttr;
}

macro_rules! id_wrapper {
    ($($t:ident),*) => {$(
        impl IdWrapper for $t {
            fn wrap(a: IdAttr) -> Self { $t(a) }
            fn unwrap(self) -> IdAttr { self.0 }
        }
    )*};
}
id_wrapper!(ProgNextId, MapNextId, LinkNextId, BtfNextId);

fn next_id_raw<W: IdWrapper>(attr: &mut IdAttr) -> io::Result<()> {
    let mut w = W::wrap(std::mem::take(attr));
    let r = sys_bpf(&mut w).map(drop);
    *attr = w.unwrap();
    r
}

/// Opens the object of `kind` with this id (`open_flags`: 0 or `BPF_F_RDONLY`/`WRONLY` for maps).
pub fn fd_by_id(kind: IdKind, id: u32, open_flags: u32) -> io::Result<OwnedFd> {
    let a = IdAttr {
        id,
        open_flags,
        ..Default::default()
    };
    match kind {
        IdKind::Prog => sys_bpf_fd(&mut ProgFdById(a)),
        IdKind::Map => sys_bpf_fd(&mut MapFdById(a)),
        IdKind::Link => sys_bpf_fd(&mut LinkFdById(a)),
        IdKind::Btf => sys_bpf_fd(&mut BtfFdById(a)),
    }
}

/// Fills `buf` with the object's info struct (`bpf_prog_info`, `bpf_map_info`,
/// `bpf_link_info` or `bpf_btf_info`, by the fd's kind); returns the bytes
/// the kernel filled. `buf` is zeroed first, so the kernel follows no
/// addresses in it.
pub fn obj_get_info_by_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    buf.fill(0);
    info_call(fd, buf)
}

fn info_call(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let info_len = u32::try_from(buf.len()).map_err(|_| invalid("info buffer too large"))?;
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len,
        info: PtrMut::slice(buf),
    };
    sys_bpf(&mut attr)?;
    Ok(attr.info_len as usize)
}

/// Arrays [`prog_info`] asks the kernel to fill alongside `bpf_prog_info`.
#[derive(Debug, Default)]
pub struct ProgInfoArrays<'a> {
    /// Ids of the maps the program uses.
    pub map_ids: Option<&'a mut [u32]>,
    /// Translated (post-verifier) instructions.
    pub xlated: Option<&'a mut [u8]>,
    /// JIT-compiled machine code.
    pub jited: Option<&'a mut [u8]>,
    /// `struct bpf_func_info` records (`insn_off`, `type_id`): where each
    /// function starts and its `BTF_KIND_FUNC` in the program's BTF.
    pub func_info: Option<&'a mut [[u32; 2]]>,
    /// Kernel addresses of the JIT-compiled functions (main program first,
    /// then its subprograms).
    pub jited_ksyms: Option<&'a mut [u64]>,
    /// `struct bpf_line_info` records (`insn_off`, `file_name_off`,
    /// `line_off`, `line_col`): the source line of instructions, in the
    /// program's BTF.
    pub line_info: Option<&'a mut [[u32; 4]]>,
    /// Bytes of each JIT-compiled function, in the order of `jited_ksyms`.
    pub jited_func_lens: Option<&'a mut [u32]>,
    /// Kernel address of the JIT-compiled code of each line record.
    pub jited_line_info: Option<&'a mut [u64]>,
}

/// Offsets in `struct bpf_prog_info` of the array fields [`prog_info`] sets.
mod prog_info_off {
    pub const JITED_LEN: usize = 16;
    pub const XLATED_LEN: usize = 20;
    pub const JITED_INSNS: usize = 24;
    pub const XLATED_INSNS: usize = 32;
    pub const NR_MAP_IDS: usize = 52;
    pub const MAP_IDS: usize = 56;
    pub const NR_JITED_KSYMS: usize = 104;
    pub const NR_JITED_FUNC_LENS: usize = 108;
    pub const JITED_KSYMS: usize = 112;
    pub const JITED_FUNC_LENS: usize = 120;
    pub const FUNC_INFO_REC_SIZE: usize = 132;
    pub const FUNC_INFO: usize = 136;
    pub const NR_FUNC_INFO: usize = 144;
    pub const NR_LINE_INFO: usize = 148;
    pub const LINE_INFO: usize = 152;
    pub const JITED_LINE_INFO: usize = 160;
    pub const NR_JITED_LINE_INFO: usize = 168;
    pub const LINE_INFO_REC_SIZE: usize = 172;
    pub const JITED_LINE_INFO_REC_SIZE: usize = 176;
}

/// `bpf_prog_info` into `buf` (at least 232 bytes for every field), with the
/// requested arrays filled. Array lengths the kernel reports are the full
/// sizes; it writes at most each slice's length.
pub fn prog_info(
    prog: BorrowedFd<'_>,
    buf: &mut [u8],
    arrays: ProgInfoArrays<'_>,
) -> io::Result<usize> {
    use prog_info_off::*;
    if buf.len() < JITED_LINE_INFO_REC_SIZE + 4 {
        return Err(invalid("bpf_prog_info buffer too small"));
    }
    buf.fill(0);
    let put = |buf: &mut [u8], off: usize, bytes: &[u8]| {
        buf[off..off + bytes.len()].copy_from_slice(bytes);
    };
    let len32 = |n: usize| u32::try_from(n).map_err(|_| invalid("info array too large"));
    // Each address stays valid for the call: the slices are borrowed by
    // `arrays`, which lives until this function returns.
    if let Some(ids) = arrays.map_ids {
        put(buf, NR_MAP_IDS, &len32(ids.len())?.to_ne_bytes());
        put(buf, MAP_IDS, &addr_mut(ids).to_ne_bytes());
    }
    if let Some(x) = arrays.xlated {
        put(buf, XLATED_LEN, &len32(x.len())?.to_ne_bytes());
        put(buf, XLATED_INSNS, &addr_mut(x).to_ne_bytes());
    }
    if let Some(j) = arrays.jited {
        put(buf, JITED_LEN, &len32(j.len())?.to_ne_bytes());
        put(buf, JITED_INSNS, &addr_mut(j).to_ne_bytes());
    }
    if let Some(f) = arrays.func_info {
        put(buf, NR_FUNC_INFO, &len32(f.len())?.to_ne_bytes());
        put(buf, FUNC_INFO_REC_SIZE, &8u32.to_ne_bytes());
        put(buf, FUNC_INFO, &addr_mut(f).to_ne_bytes());
    }
    if let Some(l) = arrays.line_info {
        put(buf, NR_LINE_INFO, &len32(l.len())?.to_ne_bytes());
        put(buf, LINE_INFO_REC_SIZE, &16u32.to_ne_bytes());
        put(buf, LINE_INFO, &addr_mut(l).to_ne_bytes());
    }
    if let Some(k) = arrays.jited_ksyms {
        put(buf, NR_JITED_KSYMS, &len32(k.len())?.to_ne_bytes());
        put(buf, JITED_KSYMS, &addr_mut(k).to_ne_bytes());
    }
    if let Some(l) = arrays.jited_func_lens {
        put(buf, NR_JITED_FUNC_LENS, &len32(l.len())?.to_ne_bytes());
        put(buf, JITED_FUNC_LENS, &addr_mut(l).to_ne_bytes());
    }
    if let Some(l) = arrays.jited_line_info {
        put(buf, NR_JITED_LINE_INFO, &len32(l.len())?.to_ne_bytes());
        put(buf, JITED_LINE_INFO_REC_SIZE, &8u32.to_ne_bytes());
        put(buf, JITED_LINE_INFO, &addr_mut(l).to_ne_bytes());
    }
    info_call(prog, buf)
}

/// `bpf_btf_info` into `buf` (at least 32 bytes), with the object's name
/// (NUL-terminated, truncated to fit) written to `name`.
pub fn btf_info(btf: BorrowedFd<'_>, buf: &mut [u8], name: &mut [u8]) -> io::Result<usize> {
    const NAME: usize = 16;
    const NAME_LEN: usize = 24;
    if buf.len() < 32 {
        return Err(invalid("bpf_btf_info buffer too small"));
    }
    buf.fill(0);
    let len = u32::try_from(name.len()).map_err(|_| invalid("name buffer too large"))?;
    // The address stays valid for the call: `name` is borrowed until we return.
    buf[NAME..NAME + 8].copy_from_slice(&addr_mut(name).to_ne_bytes());
    buf[NAME_LEN..NAME_LEN + 4].copy_from_slice(&len.to_ne_bytes());
    info_call(btf, buf)
}

/// `bpf_link_info` into `buf` (at least 32 bytes); for a raw tracepoint
/// link, its tracepoint's name (NUL-terminated, truncated to fit) is
/// written to `name` (the kernel rejects the name buffer for other kinds,
/// so pass an empty one for them).
pub fn link_info(link: BorrowedFd<'_>, buf: &mut [u8], name: &mut [u8]) -> io::Result<usize> {
    // raw_tracepoint.tp_name and .tp_name_len, in the union after the header.
    const TP_NAME: usize = 16;
    const TP_NAME_LEN: usize = 24;
    if buf.len() < 32 {
        return Err(invalid("bpf_link_info buffer too small"));
    }
    buf.fill(0);
    if !name.is_empty() {
        let len = u32::try_from(name.len()).map_err(|_| invalid("name buffer too large"))?;
        // The address stays valid for the call: `name` is borrowed until we return.
        buf[TP_NAME..TP_NAME + 8].copy_from_slice(&addr_mut(name).to_ne_bytes());
        buf[TP_NAME_LEN..TP_NAME_LEN + 4].copy_from_slice(&len.to_ne_bytes());
    }
    info_call(link, buf)
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a BTF object with its raw bytes copied into
/// `data` (which should be the `btf_size` a first call reported); returns
/// the size the kernel reports.
pub fn btf_info_data(btf: BorrowedFd<'_>, data: &mut [u8]) -> io::Result<u32> {
    let mut buf = [0u8; 32];
    let len = u32::try_from(data.len()).map_err(|_| invalid("BTF buffer too large"))?;
    // The address stays valid for the call: `data` is borrowed until we return.
    buf[0..8].copy_from_slice(&addr_mut(data).to_ne_bytes());
    buf[8..12].copy_from_slice(&len.to_ne_bytes());
    info_call(btf, &mut buf)?;
    Ok(u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]))
}

fn addr_mut<T>(s: &mut [T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        s.as_mut_ptr() as u64
    }
}

/// Loads a BTF blob. With a `log`, the kernel writes its BTF verifier log there.
pub fn btf_load(blob: &[u8], log: Option<&mut LogBuffer<'_>>) -> io::Result<OwnedFd> {
    let btf_size = u32::try_from(blob.len()).map_err(|_| invalid("BTF blob too large"))?;
    let (log_level, log_size, log_buf, true_size_out) = match log {
        Some(l) => {
            let size = u32::try_from(l.buf.len()).map_err(|_| invalid("log buffer too large"))?;
            (
                l.level,
                size,
                PtrMut::slice(&mut *l.buf),
                Some(&mut l.true_size),
            )
        }
        None => (0, 0, PtrMut::default(), None),
    };
    let mut attr = BtfLoadAttr {
        btf: Ptr::slice(blob),
        log_buf,
        btf_size,
        log_size,
        log_level,
        log_true_size: 0,
    };
    let r = sys_bpf_fd(&mut attr);
    if let Some(t) = true_size_out {
        *t = attr.log_true_size;
    }
    r
}

/// What the kernel says about a perf event or raw tracepoint fd of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFdQuery {
    /// The attached program's id.
    pub prog_id: u32,
    /// `BPF_FD_TYPE_*`.
    pub fd_type: u32,
    /// Probe offset (kprobe/uprobe).
    pub probe_offset: u64,
    /// Probe address (kprobe) .
    pub probe_addr: u64,
    /// Length of the name written to `buf` (tracepoint, symbol or file name).
    pub name_len: u32,
}

/// `BPF_TASK_FD_QUERY`: what program is attached through fd `fd` of `pid`.
pub fn task_fd_query(pid: u32, fd: u32, buf: &mut [u8]) -> io::Result<TaskFdQuery> {
    let buf_len = u32::try_from(buf.len()).map_err(|_| invalid("buffer too large"))?;
    let mut attr = TaskFdQueryAttr {
        pid,
        fd,
        flags: 0,
        buf_len,
        buf: PtrMut::slice(buf),
        ..Default::default()
    };
    sys_bpf(&mut attr)?;
    Ok(TaskFdQuery {
        prog_id: attr.prog_id,
        fd_type: attr.fd_type,
        probe_offset: attr.probe_offset,
        probe_addr: attr.probe_addr,
        name_len: attr.buf_len,
    })
}

/// Turns on run-time statistics (`BPF_STATS_RUN_TIME` = 0) while the returned fd is open.
pub fn enable_stats(stats_type: u32) -> io::Result<OwnedFd> {
    sys_bpf_fd(&mut EnableStatsAttr { stats_type })
}

/// Creates an iterator from an iterator link; reading the fd runs it.
pub fn iter_create(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    sys_bpf_fd(&mut IterCreateAttr {
        link_fd: fd_u32(link),
        flags: 0,
    })
}

/// Keeps `map` alive as long as `prog` (maps a program only names indirectly).
pub fn prog_bind_map(prog: BorrowedFd<'_>, map: BorrowedFd<'_>) -> io::Result<()> {
    sys_bpf(&mut ProgBindMapAttr {
        prog_fd: fd_u32(prog),
        map_fd: fd_u32(map),
        flags: 0,
    })
    .map(drop)
}
