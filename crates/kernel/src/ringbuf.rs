//! Reading BPF ring buffers: the consumer page, producer page and data area
//! are mapped; records are handed to a callback as slices of the mapping.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::map::KernelMap;

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: usize = 8;

struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what a successful mmap returned.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

fn mmap(fd: &OwnedFd, len: usize, prot: i32, offset: usize) -> Result<Mapping> {
    // SAFETY: a fresh shared mapping of a ring buffer map fd; the kernel
    // validates length, protection and offset.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            offset as i64,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(Error::sys(
            "mmap ring buffer",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(Mapping { ptr, len })
}

struct Ring {
    consumer: Mapping,
    producer: Mapping,
    mask: u64,
    page: usize,
}

// SAFETY: the mappings are process-wide memory; all shared positions are
// accessed atomically.
unsafe impl Send for Ring {}

impl Ring {
    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped read-write, page-aligned, and
        // holds the u64 consumer position at offset 0 for the mapping's life.
        unsafe { &*(self.consumer.ptr as *const AtomicU64) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as above, the producer position at offset 0 of the producer page.
        unsafe { &*(self.producer.ptr as *const AtomicU64) }
    }

    /// The data area: mapped twice in a row, so a record that wraps is contiguous.
    fn data(&self) -> &[u8] {
        // SAFETY: the producer mapping is one page of positions followed by
        // 2 * (mask + 1) bytes of data, all readable while `self` lives.
        unsafe {
            std::slice::from_raw_parts(
                (self.producer.ptr as *const u8).add(self.page),
                2 * (self.mask as usize + 1),
            )
        }
    }

    fn consume(&self, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        loop {
            let prod = self.producer_pos().load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            let off = (cons & self.mask) as usize;
            let data = self.data();
            // SAFETY: the record header is a u32 at an 8-aligned offset in the data area.
            let hdr = unsafe { &*(data.as_ptr().add(off) as *const std::sync::atomic::AtomicU32) }
                .load(Ordering::Acquire);
            if hdr & BUSY != 0 {
                break;
            }
            let len = (hdr & !(BUSY | DISCARD)) as usize;
            if hdr & DISCARD == 0 {
                f(&data[off + HEADER..off + HEADER + len]);
                n += 1;
            }
            cons += (len + HEADER).next_multiple_of(8) as u64;
            self.consumer_pos().store(cons, Ordering::Release);
        }
        n
    }
}

/// Reads one or more ring buffers, waiting on all of them with one epoll.
pub struct RingBufReader {
    rings: Vec<Ring>,
    epoll: OwnedFd,
}

impl RingBufReader {
    /// A reader with no rings yet.
    pub fn new() -> Result<RingBufReader> {
        // SAFETY: plain syscall; the returned fd is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(Error::sys("epoll_create1", std::io::Error::last_os_error()));
        }
        // SAFETY: a new fd nothing else owns.
        let epoll = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(RingBufReader {
            rings: Vec::new(),
            epoll,
        })
    }

    /// Adds a ring buffer map.
    pub fn add(&mut self, map: &KernelMap) -> Result<()> {
        if map.map_type() != bpfkit_abi::MapType::Ringbuf {
            return Err(Error::Object(format!(
                "map `{}` is a {}, not a ring buffer",
                map.name(),
                map.map_type()
            )));
        }
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let size = map.max_entries() as usize;
        let consumer = mmap(map.fd(), page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = mmap(map.fd(), page + 2 * size, libc::PROT_READ, page)?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: self.rings.len() as u64,
        };
        // SAFETY: valid epoll and map fds; `ev` lives for the call.
        if unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                map.fd().as_raw_fd(),
                &mut ev,
            )
        } < 0
        {
            return Err(Error::sys(
                "epoll_ctl ring buffer",
                std::io::Error::last_os_error(),
            ));
        }
        self.rings.push(Ring {
            consumer,
            producer,
            mask: size as u64 - 1,
            page,
        });
        Ok(())
    }

    /// Hands every available record of every ring to `f` without waiting;
    /// returns how many there were.
    pub fn consume(&mut self, f: &mut dyn FnMut(usize, &[u8])) -> usize {
        let mut n = 0;
        for (i, ring) in self.rings.iter().enumerate() {
            n += ring.consume(&mut |rec| f(i, rec));
        }
        n
    }

    /// Waits up to `timeout` for data, then consumes everything available.
    pub fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(usize, &[u8])) -> Result<usize> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: `events` is a valid buffer of 8 entries.
        let r = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::sys("epoll_wait", e));
            }
        }
        Ok(self.consume(f))
    }
}
