//! Reading what programs send: ring buffers ([`RingBuf`]) and perf event
//! arrays ([`PerfBuf`]), from the kernel or from VM runs, in three styles:
//!
//! - `next()` / `next_timeout()`: one record at a time, borrowed from the
//!   ring (no copy) and released when dropped;
//! - `consume()` / `poll()`: a callback over every available record;
//! - [`AsyncRingBuf`] (feature `tokio`): `next().await`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bpfkit_abi::MapType;
use bpfkit_kernel::{PerfBufReader, RingBufReader};

use crate::maps::MapInner;
use crate::{Map, Pod, Result};

/// A record read from a ring or perf buffer.
pub trait Record: std::ops::Deref<Target = [u8]> {
    /// The record as a `T`, when it has at least `T`'s size (a trailing
    /// variable-length part past `T` is ignored).
    fn read<T: Pod>(&self) -> Option<T> {
        self.get(..std::mem::size_of::<T>())
            .and_then(bpfkit_kernel::map::from_bytes)
    }

    /// The record as a `T`, zero-filled past its end: for records whose
    /// trailing variable-length part the program sends only as far as used.
    fn read_prefix<T: Pod>(&self) -> T {
        bpfkit_kernel::map::from_prefix(self)
    }
}

/// One ring buffer record, borrowed from the ring. Dropping it hands its
/// space back to the producer.
pub struct RingBufItem<'a> {
    inner: ItemInner<'a>,
}

enum ItemInner<'a> {
    Kernel(bpfkit_kernel::ringbuf::RingRecord<'a>),
    Vm(Vec<u8>),
}

impl std::ops::Deref for RingBufItem<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.inner {
            ItemInner::Kernel(r) => r,
            ItemInner::Vm(v) => v,
        }
    }
}

impl Record for RingBufItem<'_> {}

/// Reads a `BPF_MAP_TYPE_RINGBUF` map.
pub struct RingBuf {
    map: Map,
    source: RingSource,
}

enum RingSource {
    Kernel(RingBufReader),
    /// The VM's ring is drained into this queue; records are whole copies.
    Vm(VecDeque<Vec<u8>>),
}

impl RingBuf {
    /// A reader of `map`, which must be a ring buffer.
    pub fn new(map: Map) -> Result<RingBuf> {
        map.expect_type(MapType::Ringbuf, "ringbuf")?;
        let source = match map.inner() {
            MapInner::Kernel(m) => {
                let mut reader = RingBufReader::new()?;
                reader.add(m)?;
                RingSource::Kernel(reader)
            }
            MapInner::Vm(_) => RingSource::Vm(VecDeque::new()),
        };
        Ok(RingBuf { map, source })
    }

    /// The map read.
    pub fn map(&self) -> &Map {
        &self.map
    }

    /// The next record, without waiting; `None` when there is none yet.
    #[allow(clippy::should_implement_trait)] // a lending reader, not an Iterator
    #[inline]
    pub fn next(&mut self) -> Option<RingBufItem<'_>> {
        match &mut self.source {
            RingSource::Kernel(r) => r.next_record(0).map(|rec| RingBufItem {
                inner: ItemInner::Kernel(rec),
            }),
            RingSource::Vm(queue) => {
                if queue.is_empty() {
                    if let Some(m) = self.map.vm() {
                        queue.extend(m.drain_ringbuf().unwrap_or_default());
                    }
                }
                queue.pop_front().map(|v| RingBufItem {
                    inner: ItemInner::Vm(v),
                })
            }
        }
    }

    /// The next record, waiting up to `timeout` for one; `None` on timeout.
    /// A VM ring is filled by VM runs, so it never waits.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RingBufItem<'_>>> {
        let deadline = Instant::now() + timeout;
        if let RingSource::Kernel(r) = &mut self.source {
            while !r.has_record(0) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                r.wait(left)?;
            }
        }
        Ok(self.next())
    }

    /// Hands every available record to `f` without waiting or copying;
    /// returns how many there were.
    pub fn consume(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        match &mut self.source {
            RingSource::Kernel(r) => r.consume_ring(0, &mut f),
            RingSource::Vm(_) => {
                let mut n = 0;
                while let Some(rec) = self.next() {
                    f(&rec);
                    n += 1;
                }
                n
            }
        }
    }

    /// Waits up to `timeout` for records, then hands every available one to
    /// `f`; returns how many there were (0 on timeout).
    pub fn poll(&mut self, timeout: Duration, f: impl FnMut(&[u8])) -> Result<usize> {
        if let RingSource::Kernel(r) = &mut self.source {
            if !r.has_record(0) {
                r.wait(timeout)?;
            }
        }
        Ok(self.consume(f))
    }

    /// Records the producer could not write for lack of space, when the
    /// backend counts them: the VM does; the kernel keeps no such count (a
    /// program learns it from `bpf_ringbuf_reserve` returning NULL and
    /// counts it in a map, as bpfkit's tools do).
    pub fn lost(&self) -> Option<u64> {
        self.map
            .vm()
            .and_then(|m| m.ringbuf_stats().ok())
            .map(|s| s.dropped)
    }
}

/// A perf event array sample: the CPU it came from and its bytes (copied,
/// since a sample may wrap around the ring's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfSample {
    /// The CPU the program ran on.
    pub cpu: usize,
    /// The data the program sent, padded by the kernel to 8-byte records.
    pub data: Vec<u8>,
}

impl std::ops::Deref for PerfSample {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Record for PerfSample {}

/// Reads a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` map: one ring per CPU.
pub struct PerfBuf {
    map: Map,
    source: PerfSource,
    queue: VecDeque<PerfSample>,
}

enum PerfSource {
    Kernel(PerfBufReader),
    Vm,
}

impl PerfBuf {
    /// A reader of `map`, a perf event array, with `pages` data pages (a
    /// power of two) per CPU in the kernel.
    pub fn new(map: Map, pages: usize) -> Result<PerfBuf> {
        map.expect_type(MapType::PerfEventArray, "perf_event_array")?;
        let source = match map.inner() {
            MapInner::Kernel(m) => PerfSource::Kernel(PerfBufReader::new(m, pages)?),
            MapInner::Vm(_) => PerfSource::Vm,
        };
        Ok(PerfBuf {
            map,
            source,
            queue: VecDeque::new(),
        })
    }

    /// The map read.
    pub fn map(&self) -> &Map {
        &self.map
    }

    /// Hands every available sample to `f(cpu, data)` without waiting;
    /// returns how many there were.
    pub fn consume(&mut self, mut f: impl FnMut(usize, &[u8])) -> usize {
        let mut n = 0;
        for s in self.queue.drain(..) {
            f(s.cpu, &s.data);
            n += 1;
        }
        match &mut self.source {
            PerfSource::Kernel(r) => n + r.consume(&mut f).samples as usize,
            PerfSource::Vm => {
                let Some(m) = self.map.vm() else { return n };
                for cpu in 0..m.value_copies().max(1) {
                    for data in m.drain_perf(cpu).unwrap_or_default() {
                        f(cpu, &data);
                        n += 1;
                    }
                }
                n
            }
        }
    }

    /// Waits up to `timeout` for samples, then hands every available one to `f`.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(usize, &[u8])) -> Result<usize> {
        if !self.queue.is_empty() {
            return Ok(self.consume(f));
        }
        match &mut self.source {
            PerfSource::Kernel(r) => Ok(r.poll(timeout, &mut f)?.samples as usize),
            PerfSource::Vm => Ok(self.consume(f)),
        }
    }

    /// The next sample, waiting up to `timeout`; `None` on timeout.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<PerfSample>> {
        if self.queue.is_empty() {
            let mut got = Vec::new();
            self.poll(timeout, |cpu, data| {
                got.push(PerfSample {
                    cpu,
                    data: data.to_vec(),
                })
            })?;
            self.queue.extend(got);
        }
        Ok(self.queue.pop_front())
    }

    /// Samples the kernel could not write because a CPU's ring was full
    /// (`PERF_RECORD_LOST`), since the reader was made. The VM drops none.
    pub fn lost(&self) -> u64 {
        match &self.source {
            PerfSource::Kernel(r) => r.lost(),
            PerfSource::Vm => 0,
        }
    }
}

#[cfg(feature = "tokio")]
pub use async_ring::AsyncRingBuf;

#[cfg(feature = "tokio")]
mod async_ring {
    use super::*;
    use crate::Error;
    use bpfkit_kernel::ringbuf::AsyncRingBufReader;

    /// A kernel ring buffer read with tokio: `next().await` yields records
    /// without blocking a thread.
    pub struct AsyncRingBuf {
        reader: AsyncRingBufReader,
        queue: VecDeque<Vec<u8>>,
    }

    impl AsyncRingBuf {
        /// A reader of `map`, a kernel ring buffer; call inside a tokio runtime.
        pub fn new(map: &Map) -> Result<AsyncRingBuf> {
            map.expect_type(MapType::Ringbuf, "ringbuf")?;
            let kernel_map = map.kernel().ok_or_else(|| Error::Unsupported {
                what: format!("async reading of ring buffer `{}`", map.name()),
                backend: crate::Backend::Vm,
                why: "VM records come from test_run; read them with RingBuf::next",
            })?;
            let mut reader = RingBufReader::new()?;
            reader.add(kernel_map)?;
            Ok(AsyncRingBuf {
                reader: AsyncRingBufReader::new(reader)?,
                queue: VecDeque::new(),
            })
        }

        /// The next record, waiting for one.
        pub async fn next(&mut self) -> Result<Vec<u8>> {
            loop {
                if let Some(rec) = self.queue.pop_front() {
                    return Ok(rec);
                }
                let queue = &mut self.queue;
                self.reader
                    .next(&mut |_, rec| queue.push_back(rec.to_vec()))
                    .await?;
            }
        }
    }
}
