//! The `bpf()` and `perf_event_open()` system calls with typed attributes.
//! All `unsafe` of the syscall layer is here, each block justified.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `enum bpf_cmd` values used here.
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
    pub const RAW_TRACEPOINT_OPEN: u32 = 17;
    pub const BTF_LOAD: u32 = 18;
    pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
    pub const MAP_FREEZE: u32 = 22;
    pub const BTF_GET_NEXT_ID: u32 = 23;
    pub const LINK_CREATE: u32 = 28;
    pub const LINK_GET_NEXT_ID: u32 = 31;
    pub const LINK_DETACH: u32 = 34;
}

/// A `union bpf_attr`, as zeroed bytes the command's fields are written into.
/// 144 bytes covers every command used here.
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
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Writes a `u64` field at byte `off`.
    pub fn u64(mut self, off: usize, v: u64) -> Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Writes a pointer field at byte `off`.
    pub fn ptr<T: ?Sized>(self, off: usize, p: *const T) -> Attr {
        self.u64(off, p as *const u8 as u64)
    }

    /// Writes bytes (a name) at byte `off`.
    pub fn bytes(mut self, off: usize, b: &[u8]) -> Attr {
        self.0[off..off + b.len()].copy_from_slice(b);
        self
    }

    /// Reads a `u32` field the kernel wrote.
    pub fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes([
            self.0[off],
            self.0[off + 1],
            self.0[off + 2],
            self.0[off + 3],
        ])
    }
}

/// Calls `bpf(cmd, attr, sizeof attr)`; returns the non-negative result.
pub fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: `attr` is a valid, writable 144-byte buffer that outlives the
    // call; every pointer stored in it was taken from a live Rust object by the
    // caller, which keeps those objects alive until this returns.
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
    // SAFETY: on success these commands return a new file descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `struct perf_event_attr` fields used here (the kernel accepts the 112-byte
/// `PERF_ATTR_SIZE_VER5` layout and zero-fills the rest).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PerfEventAttr {
    /// `PERF_TYPE_*`.
    pub type_: u32,
    /// Size of this struct.
    pub size: u32,
    /// Event config (tracepoint id, software counter...).
    pub config: u64,
    /// Sample period or frequency.
    pub sample_period_or_freq: u64,
    /// `PERF_SAMPLE_*` bits.
    pub sample_type: u64,
    /// Read format.
    pub read_format: u64,
    /// Bit flags (disabled, inherit, ..., freq is bit 10).
    pub flags: u64,
    /// Wake up after this many events.
    pub wakeup_events_or_watermark: u32,
    /// Breakpoint type.
    pub bp_type: u32,
    /// config1 (uprobe path pointer, ...).
    pub config1: u64,
    /// config2 (probe offset, ...).
    pub config2: u64,
    /// Branch sample type.
    pub branch_sample_type: u64,
    /// User regs to sample.
    pub sample_regs_user: u64,
    /// User stack size to sample.
    pub sample_stack_user: u32,
    /// Clock id.
    pub clockid: i32,
    /// Interrupt regs to sample.
    pub sample_regs_intr: u64,
    /// AUX watermark.
    pub aux_watermark: u32,
    /// Max stack.
    pub sample_max_stack: u16,
    /// Reserved.
    pub reserved: u16,
}

/// Calls `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)`.
pub fn perf_event_open(attr: &PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    let mut attr = *attr;
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares and
    // lives until the call returns.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new file descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `ioctl(fd, request, arg)` for perf event fds.
pub fn ioctl(fd: &OwnedFd, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the perf ioctls used here take an integer argument, not a pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
