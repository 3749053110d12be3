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
//! The audit rule: no safe function here lets a caller make the kernel write
//! to memory the caller did not hand over as a `&mut`. Every raw entry point
//! is `unsafe` or gone; these do not compile:
//!
//! ```compile_fail
//! // Map element commands: the kernel writes the map's value size.
//! # fn f(map: std::os::fd::BorrowedFd<'_>) {
//! let mut value = [0u8; 1];
//! let _ = bpfkit_kernel::sys::map::map_lookup_elem(map, Some(&[0; 4]), &mut value, 0);
//! # }
//! ```
//!
//! ```compile_fail
//! // No untyped attr to point anywhere: `bpf()` takes typed commands only.
//! use bpfkit_kernel::sys::Attr;
//! ```
//!
//! ```compile_fail
//! // No ioctl with an arbitrary request: only the perf ioctls, by name.
//! use bpfkit_kernel::sys::ioctl_int;
//! ```
//!
//! ```compile_fail
//! // Mapping a file as a slice is only sound for files nothing rewrites.
//! # fn f(fd: std::os::fd::BorrowedFd<'_>) {
//! let _ = bpfkit_kernel::sys::mmap::ReadOnlyFile::map(fd, 4096);
//! # }
//! ```
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
pub use perf::{perf_event_open, perf_ioctl, PerfEventAttr, PerfIoctl};
pub use prog::{prog_load, prog_test_run, LogBuffer, ProgLoad, TestRun, TestRunResult};

pub use bpfkit_abi::bpf_cmd as cmd;

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
