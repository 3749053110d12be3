//! Reading perf buffers: the per-CPU rings behind a
//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY` that `bpf_perf_event_output()` writes.
//!
//! For each online CPU a `PERF_COUNT_SW_BPF_OUTPUT` event is opened, its
//! ring (one metadata page and a power-of-two number of data pages) mapped,
//! and its fd stored in the map at the CPU's index. Records are
//! `PERF_RECORD_SAMPLE`s carrying the raw sample, or `PERF_RECORD_LOST`
//! saying how many samples the kernel dropped for lack of room. The data
//! area is mapped once, so a record that wraps around its end is copied into
//! a scratch buffer; every other record is handed over in place.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bpfkit_abi::MapType;

use crate::error::{Error, Result};
use crate::map::KernelMap;
use crate::sys::epoll::Epoll;
use crate::sys::mmap::{page_size, Mmap};
use crate::sys::perf::{perf_event_open, perf_ioctl, PerfEventAttr, PerfIoctl};
use bpfkit_abi::perf;

/// Offsets of `data_head` and `data_tail` in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;
/// Bytes of `struct perf_event_header`.
const HEADER: usize = 8;

/// One CPU's ring.
struct CpuRing {
    cpu: usize,
    mmap: Mmap,
    /// Data area size (a power of two).
    size: usize,
    /// The perf event; stays open (and enabled) as long as the reader.
    event: OwnedFd,
}

/// What one poll or consume found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerfBufStats {
    /// Samples handed to the callback.
    pub samples: u64,
    /// Samples the kernel reported lost (ring full).
    pub lost: u64,
}

impl CpuRing {
    /// Hands every sample to `f`; returns the samples and losses seen.
    fn consume(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(usize, &[u8])) -> PerfBufStats {
        let mut stats = PerfBufStats::default();
        let (Some(head), Some(tail)) = (
            self.mmap.atomic_u64(DATA_HEAD),
            self.mmap.atomic_u64(DATA_TAIL),
        ) else {
            return stats;
        };
        let data = page_size();
        let end = head.load(Ordering::Acquire);
        let mut pos = tail.load(Ordering::Relaxed);
        while pos < end {
            let off = (pos % self.size as u64) as usize;
            // Copy out the header (it may itself wrap).
            let mut hdr = [0u8; HEADER];
            if !self.copy(data, off, &mut hdr) {
                break;
            }
            let rtype = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let rsize = u16::from_ne_bytes([hdr[6], hdr[7]]) as usize;
            if rsize < HEADER || pos + rsize as u64 > end {
                // Corrupt or torn: drop what is left rather than loop.
                break;
            }
            let body_len = rsize - HEADER;
            let body_off = (off + HEADER) % self.size;
            let in_place = body_off + body_len <= self.size;
            let body: &[u8] = if in_place {
                // SAFETY: the record lies between data_tail and data_head,
                // which the kernel does not write until we move data_tail
                // past it (after the callback).
                match unsafe { self.mmap.bytes(data + body_off, body_len) } {
                    Some(b) => b,
                    None => break,
                }
            } else {
                scratch.resize(body_len, 0);
                if !self.copy(data, body_off, scratch) {
                    break;
                }
                scratch
            };
            match rtype {
                perf::RECORD_SAMPLE if body.len() >= 4 => {
                    let raw = u32::from_ne_bytes([body[0], body[1], body[2], body[3]]) as usize;
                    let raw = &body[4..(4 + raw).min(body.len())];
                    f(self.cpu, raw);
                    stats.samples += 1;
                }
                perf::RECORD_LOST if body.len() >= 16 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&body[8..16]);
                    stats.lost += u64::from_ne_bytes(n);
                }
                _ => {}
            }
            pos += rsize as u64;
        }
        tail.store(pos, Ordering::Release);
        stats
    }

    /// Copies `out.len()` bytes from data offset `off`, wrapping at the end.
    fn copy(&self, data: usize, off: usize, out: &mut [u8]) -> bool {
        let first = out.len().min(self.size - off);
        // SAFETY: both ranges lie in the unconsumed part of the ring, which
        // the kernel does not write until data_tail moves past them.
        let (a, b) = unsafe {
            (
                self.mmap.bytes(data + off, first),
                self.mmap.bytes(data, out.len() - first),
            )
        };
        match (a, b) {
            (Some(a), Some(b)) => {
                out[..first].copy_from_slice(a);
                out[first..].copy_from_slice(b);
                true
            }
            _ => false,
        }
    }
}

/// Reads the per-CPU perf rings behind a perf event array.
pub struct PerfBufReader {
    rings: Vec<CpuRing>,
    epoll: Epoll,
    ready: Vec<u64>,
    scratch: Vec<u8>,
    lost: u64,
}

impl PerfBufReader {
    /// Opens a ring of `pages` data pages (a power of two) for every online
    /// CPU and stores them in `map`, a perf event array.
    pub fn new(map: &KernelMap, pages: usize) -> Result<PerfBufReader> {
        if map.map_type() != MapType::PerfEventArray {
            return Err(Error::Object(format!(
                "map `{}` is a {}, not a perf event array",
                map.name(),
                map.map_type()
            )));
        }
        if !pages.is_power_of_two() {
            return Err(Error::Object(format!(
                "perf buffers need a power-of-two number of pages, not {pages}"
            )));
        }
        let epoll = Epoll::new().map_err(|e| Error::sys("epoll_create1", e))?;
        let size = pages * page_size();
        let mut rings = Vec::new();
        for cpu in crate::fs::online_cpus() {
            if cpu >= map.max_entries() as usize {
                return Err(Error::Object(format!(
                    "perf event array `{}` has {} slots but CPU {cpu} is online",
                    map.name(),
                    map.max_entries()
                )));
            }
            let attr = PerfEventAttr {
                type_: perf::TYPE_SOFTWARE,
                config: perf::COUNT_SW_BPF_OUTPUT,
                sample_type: perf::SAMPLE_RAW,
                sample_period_or_freq: 1,
                wakeup_events_or_watermark: 1,
                ..Default::default()
            };
            let event = perf_event_open(&attr, -1, cpu as i32)
                .map_err(|e| Error::sys(format!("perf_event_open BPF output on CPU {cpu}"), e))?;
            let mmap = Mmap::shared(event.as_fd(), size + page_size(), 0, true)
                .map_err(|e| Error::sys(format!("mmap perf buffer of CPU {cpu}"), e))?;
            perf_ioctl(event.as_fd(), PerfIoctl::Enable)
                .map_err(|e| Error::sys(format!("enable perf buffer of CPU {cpu}"), e))?;
            map.update(
                &(cpu as u32).to_ne_bytes(),
                &(event.as_raw_fd() as u32).to_ne_bytes(),
                bpfkit_abi::update_flags::ANY,
            )
            .map_err(|e| Error::Object(format!("store perf buffer of CPU {cpu}: {e}")))?;
            epoll
                .add(event.as_fd(), rings.len() as u64)
                .map_err(|e| Error::sys("epoll_ctl perf buffer", e))?;
            rings.push(CpuRing {
                cpu,
                mmap,
                size,
                event,
            });
        }
        Ok(PerfBufReader {
            rings,
            epoll,
            ready: vec![0; 64],
            scratch: Vec::new(),
            lost: 0,
        })
    }

    /// Hands every available sample of every CPU to `f(cpu, sample)` without
    /// waiting. A sample is the program's data padded by the kernel to keep
    /// records 8-byte aligned.
    pub fn consume(&mut self, f: &mut dyn FnMut(usize, &[u8])) -> PerfBufStats {
        let mut total = PerfBufStats::default();
        for ring in &self.rings {
            let s = ring.consume(&mut self.scratch, f);
            total.samples += s.samples;
            total.lost += s.lost;
        }
        self.lost += total.lost;
        total
    }

    /// Waits up to `timeout` for samples, then consumes everything available.
    pub fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<PerfBufStats> {
        self.epoll
            .wait(&mut self.ready, Some(timeout))
            .map_err(|e| Error::sys("epoll_wait", e))?;
        Ok(self.consume(f))
    }

    /// Samples lost since the reader was made.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The CPUs read, in ring order.
    pub fn cpus(&self) -> Vec<usize> {
        self.rings.iter().map(|r| r.cpu).collect()
    }
}

impl Drop for PerfBufReader {
    fn drop(&mut self) {
        for r in &self.rings {
            // Best effort: the events close with their fds anyway.
            let _ = perf_ioctl(r.event.as_fd(), PerfIoctl::Disable);
        }
    }
}
