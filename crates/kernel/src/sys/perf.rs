//! `perf_event_open()` and the perf ioctls, for perf buffers and perf-event
//! based attachment (tracepoints, uprobes).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct perf_event_attr` up to `sample_max_stack` (the 112-byte
/// `PERF_ATTR_SIZE_VER5` layout; the kernel zero-fills newer fields).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PerfEventAttr {
    /// `PERF_TYPE_*`.
    pub type_: u32,
    /// Size of this struct (set by [`perf_event_open`]).
    pub size: u32,
    /// Event config (tracepoint id, software counter, ...).
    pub config: u64,
    /// Sample period or frequency.
    pub sample_period_or_freq: u64,
    /// `PERF_SAMPLE_*` bits.
    pub sample_type: u64,
    /// Read format.
    pub read_format: u64,
    /// Bit flags (disabled is bit 0, inherit bit 1, ..., freq bit 10,
    /// watermark bit 14).
    pub flags: u64,
    /// Wake up after this many events (or bytes, with the watermark flag).
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

/// Perf constants used by this crate.
#[allow(missing_docs)]
pub mod consts {
    pub const PERF_TYPE_SOFTWARE: u32 = 1;
    pub const PERF_TYPE_TRACEPOINT: u32 = 2;
    pub const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
    pub const PERF_SAMPLE_RAW: u64 = 1 << 10;
    pub const PERF_EVENT_IOC_ENABLE: u64 = 0x2400;
    pub const PERF_EVENT_IOC_DISABLE: u64 = 0x2401;
    pub const PERF_EVENT_IOC_SET_BPF: u64 = 0x4004_2408;
    pub const PERF_RECORD_LOST: u32 = 2;
    pub const PERF_RECORD_SAMPLE: u32 = 9;
}

/// Calls `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)`.
/// `config1`/`config2` must not hold addresses that are dead by the call.
pub fn perf_event_open(attr: &PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    let mut attr = *attr;
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares and
    // lives until the call returns; the kernel only reads it (and strings
    // the caller's config1 names, which the caller keeps alive).
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

/// `ioctl(fd, request, arg)` for the perf ioctls that take an integer.
pub fn ioctl(fd: &OwnedFd, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    ioctl_int(std::os::fd::AsFd::as_fd(fd), request, arg)
}

/// `ioctl(fd, request, arg)` with an integer argument (enable, disable, set BPF).
pub fn ioctl_int(fd: BorrowedFd<'_>, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the perf ioctls used here take an integer argument, not a
    // pointer, so the kernel touches no user memory.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
