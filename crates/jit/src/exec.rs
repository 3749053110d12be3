//! Executable memory: mapped writable, filled, then made read+execute
//! (W^X: never writable and executable at once), unmapped on drop.

use std::io;

/// A read+execute mapping holding machine code.
#[derive(Debug)]
pub(crate) struct ExecMemory {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is immutable (read+execute) from construction to
// drop, so sharing or sending its address between threads is sound.
unsafe impl Send for ExecMemory {}
// SAFETY: as above: nothing ever writes through `ptr` after `new` returns.
unsafe impl Sync for ExecMemory {}

impl ExecMemory {
    /// Maps `code` read+execute.
    pub(crate) fn new(code: &[u8]) -> io::Result<ExecMemory> {
        let len = code.len().max(1).next_multiple_of(4096);
        // SAFETY: an anonymous private mapping at an address the kernel
        // chooses aliases no Rust object; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mem = ExecMemory {
            ptr: ptr.cast(),
            len,
        };
        // SAFETY: the mapping is `len >= code.len()` bytes, writable, and
        // nothing else refers to it yet.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), mem.ptr, code.len()) };
        // SAFETY: `ptr..ptr+len` is the mapping made above; from here on it
        // is read+execute only.
        let rc = unsafe { libc::mprotect(ptr, len, libc::PROT_READ | libc::PROT_EXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(mem)
    }

    /// The address of the first byte.
    pub(crate) fn addr(&self) -> u64 {
        self.ptr as u64
    }
}

impl Drop for ExecMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` with this length and no
        // code from it runs once its owner is dropped.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}
