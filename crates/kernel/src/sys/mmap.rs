//! Shared memory mappings of BPF maps and perf events.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A `MAP_SHARED` mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide memory owned by this value; shared
// state in it is only reached through atomics or `unsafe fn bytes`, whose
// callers guarantee the kernel is not writing the range they read.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` hands out only atomics and `unsafe` slices.
unsafe impl Sync for Mmap {}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

impl Mmap {
    /// Maps `len` bytes of `fd` from `offset`, readable, and writable if `write`.
    pub fn shared(fd: BorrowedFd<'_>, len: usize, offset: usize, write: bool) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let prot = libc::PROT_READ | if write { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh shared mapping at an address the kernel chooses, so
        // no existing Rust memory is affected; the kernel validates the rest.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr as *mut u8)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    fn private_read_only(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh private read-only mapping at an address the kernel
        // chooses, so no existing Rust memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr as *mut u8)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    /// An anonymous shared mapping of `len` zeroed bytes (for tests of the
    /// readers without a kernel object behind them).
    pub fn anonymous(len: usize) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel chooses.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr as *mut u8)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: `shared` refuses that).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn aligned(&self, off: usize, size: usize) -> Option<*mut u8> {
        let end = off.checked_add(size)?;
        if end > self.len || off % size != 0 {
            return None;
        }
        // SAFETY: `off < len`, so the result is inside the mapping (and
        // mappings are page-aligned, so `off % size == 0` aligns it).
        Some(unsafe { self.ptr.as_ptr().add(off) })
    }

    /// The 8-aligned `u64` at `off`, shared with the kernel.
    #[inline]
    pub fn atomic_u64(&self, off: usize) -> Option<&AtomicU64> {
        let p = self.aligned(off, 8)?;
        // SAFETY: in bounds and aligned (checked above); the memory lives as
        // long as `self`, and atomics may alias memory the kernel writes.
        Some(unsafe { AtomicU64::from_ptr(p as *mut u64) })
    }

    /// The 4-aligned `u32` at `off`, shared with the kernel.
    #[inline]
    pub fn atomic_u32(&self, off: usize) -> Option<&AtomicU32> {
        let p = self.aligned(off, 4)?;
        // SAFETY: as for `atomic_u64`.
        Some(unsafe { AtomicU32::from_ptr(p as *mut u32) })
    }

    /// `len` bytes at `off`, or `None` out of bounds.
    ///
    /// # Safety
    /// Nothing (the kernel included) may write these bytes while the slice
    /// lives, e.g. because they are a committed ring buffer record the
    /// producer will not touch until the consumer position passes it.
    #[inline]
    pub unsafe fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: in bounds (checked); immutability is the caller's promise.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) })
    }
}

/// A read-only private mapping of a whole file whose contents never change
/// while it is mapped (the kernel's BTF in sysfs), readable as a slice.
#[derive(Debug)]
pub struct ReadOnlyFile(Mmap);

impl ReadOnlyFile {
    /// Maps the first `len` bytes of `fd`.
    ///
    /// # Safety
    ///
    /// Nothing may write to or truncate the file while the mapping lives:
    /// the mapping is read as a `&[u8]`, which must not change underneath,
    /// and a truncated file faults on access. `/sys/kernel/btf/*`, generated
    /// once by the kernel, qualifies.
    pub unsafe fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<ReadOnlyFile> {
        Mmap::private_read_only(fd, len).map(ReadOnlyFile)
    }
}

impl AsRef<[u8]> for ReadOnlyFile {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes owned by `self`; it is
        // private and read-only, and its file is immutable (see `map`).
        unsafe { std::slice::from_raw_parts(self.0.ptr.as_ptr(), self.0.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: exactly the region a successful mmap returned, unmapped once;
        // no borrow of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len);
        }
    }
}
