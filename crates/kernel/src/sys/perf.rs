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

/// The perf event ioctls bpfkit makes, each with an integer argument: a
/// closed set, so that no caller can pass a request that makes the kernel
/// write through an address.
#[derive(Debug, Clone, Copy)]
pub enum PerfIoctl<'a> {
    /// `PERF_EVENT_IOC_ENABLE`.
    Enable,
    /// `PERF_EVENT_IOC_DISABLE`.
    Disable,
    /// `PERF_EVENT_IOC_SET_BPF`: run this program on each event.
    SetBpf(BorrowedFd<'a>),
}

/// Issues a perf event ioctl on `event`.
pub fn perf_ioctl(event: BorrowedFd<'_>, op: PerfIoctl<'_>) -> io::Result<()> {
    use bpfkit_abi::perf;
    let (request, arg) = match op {
        PerfIoctl::Enable => (perf::EVENT_IOC_ENABLE, 0),
        PerfIoctl::Disable => (perf::EVENT_IOC_DISABLE, 0),
        PerfIoctl::SetBpf(prog) => (perf::EVENT_IOC_SET_BPF, prog.as_raw_fd() as libc::c_ulong),
    };
    // SAFETY: each of these requests takes an integer argument, not a
    // pointer, so the kernel touches no user memory.
    let r = unsafe { libc::ioctl(event.as_raw_fd(), request as libc::c_ulong, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
