//! The system-call layer: `bpf()` with a typed attribute per command,
//! `perf_event_open()`, `mmap()` and `epoll`. All `unsafe` of the crate's
//! kernel interface lives under this module, each block justified.
//!
//! Every command is a function taking Rust values (`BorrowedFd`, slices,
//! `CStr`) and returning `io::Result`; the `#[repr(C)]` attrs in `attr` are
//! filled here, so a caller cannot hand the kernel a dangling address. Map
//! element commands are `unsafe`, because the kernel, not the caller, decides
//! how many bytes it reads and writes (the map's key and value sizes): the safe
//! wrappers are [`crate::map::KernelMap`]'s methods.
//!
//! File descriptors returned by the kernel are [`OwnedFd`]s and close on drop.
//!
//! ```no_run
//! use std::os::fd::{AsFd, OwnedFd};
//! use bpfkit_kernel::sys::{link_create, LinkExtra, LinkTarget};
//!
//! // A tracepoint program attached through its perf event, with a cookie.
//! fn attach(prog: &bpfkit_kernel::Program, perf_event: &OwnedFd) -> std::io::Result<OwnedFd> {
//!     link_create(
//!         prog.as_fd(),
//!         LinkTarget::Fd(perf_event.as_fd()),
//!         bpfkit_abi::AttachType::PerfEvent.as_u32(),
//!         0,
//!         &LinkExtra::PerfEvent { cookie: 42 },
//!     )
//! }
//! ```

mod attr;
pub mod epoll;
pub mod link;
pub mod map;
pub mod mmap;
pub mod net;
pub mod object;
pub mod perf;
pub mod prog;

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

pub use link::{
    link_create, link_detach, link_update, prog_attach, prog_detach, prog_query,
    raw_tracepoint_open, Anchor, LinkExtra, LinkTarget, ProgQuery,
};
pub use map::{
    map_create, map_delete_batch, map_delete_elem, map_freeze, map_get_next_key,
    map_lookup_and_delete_batch, map_lookup_and_delete_elem, map_lookup_batch, map_lookup_elem,
    map_update_batch, map_update_elem, BatchProgress, MapCreate,
};
pub use object::{
    btf_info, btf_info_data, btf_load, enable_stats, fd_by_id, iter_create, link_info, next_id,
    obj_get, obj_get_info_by_fd, obj_pin, prog_bind_map, prog_info, task_fd_query, IdKind,
    ProgInfoArrays, TaskFdQuery,
};
pub use perf::{ioctl, perf_event_open, PerfEventAttr};
pub use prog::{prog_load, prog_test_run, LogBuffer, ProgLoad, TestRun, TestRunResult};

/// `enum bpf_cmd` values.
#[allow(missing_docs)]
pub mod cmd {
    pub const MAP_CREATE: u32 = 0;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    pub const PROG_LOAD: u32 = 5;
    pub const OBJ_PIN: u32 = 6;
    pub const OBJ_GET: u32 = 7;
    pub const PROG_ATTACH: u32 = 8;
    pub const PROG_DETACH: u32 = 9;
    pub const PROG_TEST_RUN: u32 = 10;
    pub const PROG_GET_NEXT_ID: u32 = 11;
    pub const MAP_GET_NEXT_ID: u32 = 12;
    pub const PROG_GET_FD_BY_ID: u32 = 13;
    pub const MAP_GET_FD_BY_ID: u32 = 14;
    pub const OBJ_GET_INFO_BY_FD: u32 = 15;
    pub const PROG_QUERY: u32 = 16;
    pub const RAW_TRACEPOINT_OPEN: u32 = 17;
    pub const BTF_LOAD: u32 = 18;
    pub const BTF_GET_FD_BY_ID: u32 = 19;
    pub const TASK_FD_QUERY: u32 = 20;
    pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
    pub const MAP_FREEZE: u32 = 22;
    pub const BTF_GET_NEXT_ID: u32 = 23;
    pub const MAP_LOOKUP_BATCH: u32 = 24;
    pub const MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
    pub const MAP_UPDATE_BATCH: u32 = 26;
    pub const MAP_DELETE_BATCH: u32 = 27;
    pub const LINK_CREATE: u32 = 28;
    pub const LINK_UPDATE: u32 = 29;
    pub const LINK_GET_FD_BY_ID: u32 = 30;
    pub const LINK_GET_NEXT_ID: u32 = 31;
    pub const ENABLE_STATS: u32 = 32;
    pub const ITER_CREATE: u32 = 33;
    pub const LINK_DETACH: u32 = 34;
    pub const PROG_BIND_MAP: u32 = 35;
}

/// Flags of `link_create`, `prog_attach` and `prog_query` (`BPF_F_*`).
#[allow(missing_docs)]
pub mod flags {
    /// `BPF_F_ALLOW_OVERRIDE` (cgroup attach).
    pub const ALLOW_OVERRIDE: u32 = 1 << 0;
    /// `BPF_F_ALLOW_MULTI` (cgroup attach).
    pub const ALLOW_MULTI: u32 = 1 << 1;
    /// `BPF_F_REPLACE`: replace the program given as `replace`.
    pub const REPLACE: u32 = 1 << 2;
    /// `BPF_F_BEFORE`: attach before the anchor (tcx, netkit, cgroup).
    pub const BEFORE: u32 = 1 << 3;
    /// `BPF_F_AFTER`: attach after the anchor.
    pub const AFTER: u32 = 1 << 4;
    /// `BPF_F_ID`: the anchor is an id, not an fd (set by [`super::Anchor::Id`]).
    pub const ID: u32 = 1 << 5;
    /// `BPF_F_LINK`: the anchor is a link.
    pub const LINK: u32 = 1 << 13;
    /// `BPF_F_QUERY_EFFECTIVE` (prog_query).
    pub const QUERY_EFFECTIVE: u32 = 1 << 0;
    /// `BPF_F_UPROBE_MULTI_RETURN`: uprobe_multi links on function return.
    pub const UPROBE_MULTI_RETURN: u32 = 1 << 0;
    /// `BPF_F_KPROBE_MULTI_RETURN`.
    pub const KPROBE_MULTI_RETURN: u32 = 1 << 0;
    /// `BPF_F_XDP_HAS_FRAGS` (prog_flags at load).
    pub const XDP_HAS_FRAGS: u32 = 1 << 5;
    /// `BPF_F_SLEEPABLE` (prog_flags at load).
    pub const SLEEPABLE: u32 = 1 << 4;
    /// `BPF_F_TEST_RUN_ON_CPU` (test run).
    pub const TEST_RUN_ON_CPU: u32 = 1 << 0;
    /// `BPF_F_TEST_XDP_LIVE_FRAMES` (test run).
    pub const TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
    /// `BPF_F_RDONLY` (obj_get file_flags, fd_by_id open_flags).
    pub const RDONLY: u32 = 1 << 3;
    /// `BPF_F_WRONLY`.
    pub const WRONLY: u32 = 1 << 4;
}

/// Issues `bpf(A::CMD, attr, sizeof(A))`; the non-negative result.
fn sys_bpf<A: attr::BpfAttr>(attr: &mut A) -> io::Result<i64> {
    // SAFETY: `attr` is a live, writable `#[repr(C)]` attr of its command
    // (the `BpfAttr` contract) and every address in it is borrowed from a
    // value that outlives `attr`, so it outlives the call; the kernel reads
    // and writes at most the lengths the attr's count fields give.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            A::CMD as libc::c_long,
            attr as *mut A,
            std::mem::size_of::<A>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i64)
    }
}

/// Issues a command that returns a new file descriptor.
fn sys_bpf_fd<A: attr::BpfAttr>(attr: &mut A) -> io::Result<OwnedFd> {
    let fd = sys_bpf(attr)?;
    // SAFETY: on success these commands return a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The fd number of an optional fd, 0 when absent (the kernel's "none").
fn raw(fd: Option<BorrowedFd<'_>>) -> u32 {
    use std::os::fd::AsRawFd;
    fd.map_or(0, |f| f.as_raw_fd() as u32)
}

/// The fd number of an fd.
fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd() as u32
}

/// `io::Error` for an argument rejected before reaching the kernel.
fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

pub use legacy::{bpf, bpf_fd, Attr};

/// The byte-offset attr builder the first modules were written against,
/// kept for `link.rs` until it moves to the typed commands above.
mod legacy {
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd};

    /// A `union bpf_attr` as 144 zeroed bytes the command's fields are written into.
    ///
    /// Prefer the typed command functions of [`crate::sys`]: they cannot be
    /// handed a dangling address.
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    pub struct Attr(pub [u8; 144]);

    impl Default for Attr {
        fn default() -> Self {
            Attr([0; 144])
        }
    }

    impl Attr {
        /// Writes a `u32` field at byte `off`.
        pub fn u32(mut self, off: usize, v: u32) -> Attr {
            if let Some(s) = self.0.get_mut(off..off + 4) {
                s.copy_from_slice(&v.to_ne_bytes());
            }
            self
        }

        /// Writes a `u64` field at byte `off`.
        pub fn u64(mut self, off: usize, v: u64) -> Attr {
            if let Some(s) = self.0.get_mut(off..off + 8) {
                s.copy_from_slice(&v.to_ne_bytes());
            }
            self
        }

        /// Writes a pointer field at byte `off`.
        pub fn ptr<T: ?Sized>(self, off: usize, p: *const T) -> Attr {
            self.u64(off, p as *const u8 as u64)
        }

        /// Writes bytes (a name) at byte `off`.
        pub fn bytes(mut self, off: usize, b: &[u8]) -> Attr {
            if let Some(s) = self.0.get_mut(off..off + b.len()) {
                s.copy_from_slice(b);
            }
            self
        }

        /// Reads a `u32` field the kernel wrote.
        pub fn get_u32(&self, off: usize) -> u32 {
            self.0
                .get(off..off + 4)
                .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        }
    }

    /// Calls `bpf(cmd, attr, sizeof attr)`; returns the non-negative result.
    /// Every address written into `attr` must stay valid for the call.
    pub fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<i64> {
        // SAFETY: `attr` is a valid, writable 144-byte buffer that outlives
        // the call; the addresses stored in it were taken by the caller from
        // live objects it keeps alive until this returns.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd as libc::c_long,
                attr as *mut Attr,
                std::mem::size_of::<Attr>(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as i64)
        }
    }

    /// Calls `bpf()` for a command that returns a new file descriptor.
    pub fn bpf_fd(cmd: u32, attr: &mut Attr) -> io::Result<OwnedFd> {
        let fd = bpf(cmd, attr)?;
        // SAFETY: on success these commands return a new fd nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}
