//! Reading BPF ring buffers (`BPF_MAP_TYPE_RINGBUF`).
//!
//! The kernel exposes three regions through `mmap` of the map fd: a
//! consumer page (read-write; the consumer position), a producer page
//! (read-only; the producer position) and the data area, which the kernel
//! maps twice back to back so a record that wraps around the end is still
//! contiguous. Records are an 8-byte header (length, busy bit, discard bit,
//! page offset) and the sample, padded to 8 bytes. The reader hands each
//! committed sample to a callback as a slice of the mapping: no copy.
//!
//! One [`RingBufReader`] waits on any number of rings with one epoll.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::map::KernelMap;
use crate::sys::epoll::Epoll;
use crate::sys::mmap::{page_size, Mmap};

/// Set in a record's length while the producer is still writing it.
const BUSY: u32 = 1 << 31;
/// Set in a record's length when the producer discarded it.
const DISCARD: u32 = 1 << 30;
/// Bytes of the record header.
const HEADER: usize = 8;

/// One mapped ring.
struct Ring {
    /// The consumer position page.
    consumer: Mmap,
    /// The producer position page followed by the data area, twice.
    producer: Mmap,
    /// Data area size minus one (the size is a power of two).
    mask: u64,
    /// Offset of the data area in `producer`.
    data_off: usize,
    /// A duplicate of the map fd, registered with the epoll.
    fd: Option<OwnedFd>,
    /// The producer position last read: records before it need no fresh
    /// read of the producer page (their headers say whether they are done).
    producer_seen: std::cell::Cell<u64>,
}

impl Ring {
    fn new(map: &KernelMap) -> Result<Ring> {
        let size = map.max_entries() as usize;
        if !size.is_power_of_two() {
            return Err(Error::Object(format!(
                "ring buffer `{}` has a data size of {size}, not a power of two",
                map.name()
            )));
        }
        let page = page_size();
        let what = |e| Error::sys(format!("mmap ring buffer `{}`", map.name()), e);
        let fd = map
            .fd()
            .try_clone()
            .map_err(|e| Error::sys("dup ring buffer fd", e))?;
        let consumer = Mmap::shared(fd.as_fd(), page, 0, true).map_err(what)?;
        let producer = Mmap::shared(fd.as_fd(), page + 2 * size, page, false).map_err(what)?;
        Ok(Ring {
            consumer,
            producer,
            mask: size as u64 - 1,
            data_off: page,
            fd: Some(fd),
            producer_seen: std::cell::Cell::new(0),
        })
    }

    /// Hands every committed record to `f`; returns how many it handed over.
    /// Stops at a record still being written.
    /// Generic, so the reader's per-ring closure inlines and a record costs
    /// one indirect call (the user's), as in libbpf.
    fn consume<F: FnMut(&[u8]) + ?Sized>(&self, f: &mut F) -> usize {
        let (Some(cons), Some(prod)) = (self.consumer.atomic_u64(0), self.producer.atomic_u64(0))
        else {
            return 0;
        };
        let mut n = 0;
        let mut pos = cons.load(Ordering::Acquire);
        loop {
            let end = prod.load(Ordering::Acquire);
            if pos >= end {
                return n;
            }
            while pos < end {
                let off = self.data_off + (pos & self.mask) as usize;
                let Some(hdr) = self.producer.atomic_u32(off) else {
                    return n;
                };
                let len = hdr.load(Ordering::Acquire);
                if len & BUSY != 0 {
                    return n;
                }
                let sample_len = (len & !DISCARD) as usize;
                if len & DISCARD == 0 {
                    // SAFETY: the record is committed (busy bit clear) and lies
                    // before the consumer position we have not yet advanced
                    // past it, so the kernel will not write it while `f` reads.
                    match unsafe { self.producer.bytes(off + HEADER, sample_len) } {
                        Some(sample) => f(sample),
                        None => return n,
                    }
                    n += 1;
                }
                pos += (sample_len + HEADER).next_multiple_of(8) as u64;
                // Release the space as soon as it is read, so the producer
                // can reuse it while we go on.
                cons.store(pos, Ordering::Release);
            }
        }
    }

    /// The next committed record, skipping (and releasing) discarded ones;
    /// its space is released when the returned record is dropped.
    #[inline]
    fn next(&self) -> Option<RingRecord<'_>> {
        let cons = self.consumer.atomic_u64(0)?;
        // Only this reader writes the consumer position.
        let mut pos = cons.load(Ordering::Relaxed);
        if pos >= self.producer_seen.get() {
            let prod = self.producer.atomic_u64(0)?;
            self.producer_seen.set(prod.load(Ordering::Acquire));
        }
        while pos < self.producer_seen.get() {
            let off = self.data_off + (pos & self.mask) as usize;
            let len = self.producer.atomic_u32(off)?.load(Ordering::Acquire);
            if len & BUSY != 0 {
                return None;
            }
            let sample_len = (len & !DISCARD) as usize;
            let next = pos + (sample_len + HEADER).next_multiple_of(8) as u64;
            if len & DISCARD == 0 {
                // SAFETY: as in `consume`: the record is committed, and the
                // consumer position stays before it until the record (which
                // borrows the ring) is dropped.
                let bytes = unsafe { self.producer.bytes(off + HEADER, sample_len) }?;
                return Some(RingRecord {
                    bytes,
                    consumer: cons,
                    next,
                });
            }
            pos = next;
            cons.store(pos, Ordering::Release);
        }
        None
    }

    /// Bytes written but not yet consumed.
    fn pending(&self) -> u64 {
        match (self.consumer.atomic_u64(0), self.producer.atomic_u64(0)) {
            (Some(c), Some(p)) => p
                .load(Ordering::Acquire)
                .saturating_sub(c.load(Ordering::Acquire)),
            _ => 0,
        }
    }
}

/// One record of a ring buffer, borrowed from the ring's mapping (no copy).
/// Dropping it hands its space back to the producer.
pub struct RingRecord<'a> {
    bytes: &'a [u8],
    consumer: &'a std::sync::atomic::AtomicU64,
    next: u64,
}

impl std::ops::Deref for RingRecord<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Drop for RingRecord<'_> {
    #[inline]
    fn drop(&mut self) {
        self.consumer.store(self.next, Ordering::Release);
    }
}

impl std::fmt::Debug for RingRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingRecord")
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Reads one or more ring buffers, waiting on all of them with one epoll.
pub struct RingBufReader {
    rings: Vec<Ring>,
    epoll: Epoll,
    ready: Vec<u64>,
}

impl RingBufReader {
    /// A reader with no rings yet.
    pub fn new() -> Result<RingBufReader> {
        Ok(RingBufReader {
            rings: Vec::new(),
            epoll: Epoll::new().map_err(|e| Error::sys("epoll_create1", e))?,
            ready: vec![0; 16],
        })
    }

    /// Adds a ring buffer map; its records are reported with the index it
    /// has among the rings added (0 for the first). The reader keeps the
    /// ring mapped even if `map` is dropped.
    pub fn add(&mut self, map: &KernelMap) -> Result<usize> {
        if map.map_type() != bpfkit_abi::MapType::Ringbuf {
            return Err(Error::Object(format!(
                "map `{}` is a {}, not a ring buffer",
                map.name(),
                map.map_type()
            )));
        }
        let ring = Ring::new(map)?;
        let index = self.rings.len();
        if let Some(fd) = &ring.fd {
            self.epoll
                .add(fd.as_fd(), index as u64)
                .map_err(|e| Error::sys("epoll_ctl ring buffer", e))?;
        }
        self.rings.push(ring);
        Ok(index)
    }

    /// How many rings are read.
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    /// Whether no ring was added.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// Hands every available record of every ring to `f(ring, record)`
    /// without waiting; returns how many there were.
    pub fn consume(&mut self, f: &mut dyn FnMut(usize, &[u8])) -> usize {
        let mut n = 0;
        for (i, ring) in self.rings.iter().enumerate() {
            n += ring.consume(&mut |rec| f(i, rec));
        }
        n
    }

    /// Consumes one ring only.
    pub fn consume_ring(&mut self, ring: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        self.rings.get(ring).map_or(0, |r| r.consume(f))
    }

    /// The next record of ring `ring`, without waiting or copying; `None`
    /// when the ring is empty (or its next record is still being written).
    /// The record's space is released when it is dropped.
    #[inline]
    pub fn next_record(&mut self, ring: usize) -> Option<RingRecord<'_>> {
        self.rings.get(ring)?.next()
    }

    /// Whether ring `ring` holds a committed record now (discarded ones
    /// ahead of it are released on the way).
    pub fn has_record(&self, ring: usize) -> bool {
        let Some(r) = self.rings.get(ring) else {
            return false;
        };
        match r.next() {
            Some(record) => {
                // Keep the record for the next `next_record`: not released.
                std::mem::forget(record);
                true
            }
            None => false,
        }
    }

    /// Waits up to `timeout` until some ring may have data; `Ok(false)` on
    /// timeout. Records committed with `BPF_RB_NO_WAKEUP` raise no event, so
    /// callers look at the rings either way.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let n = self
            .epoll
            .wait(&mut self.ready, Some(timeout))
            .map_err(|e| Error::sys("epoll_wait", e))?;
        Ok(n > 0)
    }

    /// Bytes written to ring `ring` and not yet consumed.
    pub fn pending_bytes(&self, ring: usize) -> u64 {
        self.rings.get(ring).map_or(0, Ring::pending)
    }

    /// Waits up to `timeout` for data in any ring, then consumes the rings
    /// that have some; returns how many records there were (0 on timeout).
    pub fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(usize, &[u8])) -> Result<usize> {
        // Whatever woke us (or the timeout), look at every ring: records
        // committed with BPF_RB_NO_WAKEUP raise no event.
        self.epoll
            .wait(&mut self.ready, Some(timeout))
            .map_err(|e| Error::sys("epoll_wait", e))?;
        Ok(self.consume(f))
    }

    /// The epoll fd, readable when a ring has data (for an external event loop).
    pub fn epoll_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in plain memory, written the way the kernel writes one.
    struct FakeRing {
        ring: Ring,
    }

    impl FakeRing {
        fn new(size: usize) -> FakeRing {
            let page = page_size();
            FakeRing {
                ring: Ring {
                    consumer: Mmap::anonymous(page).unwrap(),
                    producer: Mmap::anonymous(page + 2 * size).unwrap(),
                    mask: size as u64 - 1,
                    data_off: page,
                    fd: None,
                    producer_seen: std::cell::Cell::new(0),
                },
            }
        }

        /// Writes a record at producer position `pos` (no wraparound) and
        /// returns the next position.
        fn write(&self, pos: u64, len_word: u32, payload: &[u8]) -> u64 {
            let off = self.ring.data_off + pos as usize;
            self.ring
                .producer
                .atomic_u32(off)
                .unwrap()
                .store(len_word, Ordering::Release);
            for (i, chunk) in payload.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.ring
                    .producer
                    .atomic_u64(off + HEADER + 8 * i)
                    .unwrap()
                    .store(u64::from_ne_bytes(w), Ordering::Release);
            }
            pos + (HEADER + payload.len()).next_multiple_of(8) as u64
        }

        fn publish(&self, prod: u64) {
            self.ring
                .producer
                .atomic_u64(0)
                .unwrap()
                .store(prod, Ordering::Release);
        }

        fn consumed(&self) -> u64 {
            self.ring
                .consumer
                .atomic_u64(0)
                .unwrap()
                .load(Ordering::Acquire)
        }

        fn drain(&self) -> Vec<Vec<u8>> {
            let mut got = Vec::new();
            self.ring.consume(&mut |r| got.push(r.to_vec()));
            got
        }
    }

    #[test]
    fn skips_discarded_and_stops_at_busy() {
        let f = FakeRing::new(4096);
        let p1 = f.write(0, 3, b"abc");
        let p2 = f.write(p1, 5 | DISCARD, b"hello");
        let p3 = f.write(p2, 4 | BUSY, b"wait");
        let p4 = f.write(p3, 2, b"ok");
        f.publish(p4);
        assert_eq!(f.drain(), vec![b"abc".to_vec()]);
        // The discarded record was stepped over; the busy one holds us up.
        assert_eq!(f.consumed(), p2);
        assert_eq!(f.ring.pending(), p4 - p2);
        // The producer commits it: both remaining records arrive, in order.
        f.ring
            .producer
            .atomic_u32(f.ring.data_off + p2 as usize)
            .unwrap()
            .store(4, Ordering::Release);
        assert_eq!(f.drain(), vec![b"wait".to_vec(), b"ok".to_vec()]);
        assert_eq!(f.consumed(), p4);
        assert!(f.drain().is_empty());
    }

    #[test]
    fn next_lends_one_record_and_releases_it_on_drop() {
        let f = FakeRing::new(4096);
        let p1 = f.write(0, 5 | DISCARD, b"gone!");
        let p2 = f.write(p1, 3, b"one");
        let p3 = f.write(p2, 3, b"two");
        let p4 = f.write(p3, 1 | BUSY, b"x");
        f.publish(p4);
        let rec = f.ring.next().unwrap();
        assert_eq!(&*rec, b"one");
        // The discarded record is released at once, the lent one only on drop.
        assert_eq!(f.consumed(), p1);
        drop(rec);
        assert_eq!(f.consumed(), p2);
        let rec = f.ring.next().unwrap();
        assert_eq!(&*rec, b"two");
        drop(rec);
        assert_eq!(f.consumed(), p3);
        // A record still being written is not handed out.
        assert!(f.ring.next().is_none());
        assert_eq!(f.consumed(), p3);
    }

    #[test]
    fn positions_wrap_with_the_mask() {
        let f = FakeRing::new(64);
        // Consumer and producer far beyond the size: offsets are masked.
        let start = 64 * 1000;
        f.ring
            .consumer
            .atomic_u64(0)
            .unwrap()
            .store(start, Ordering::Release);
        let end = f.write(0, 8, b"12345678") + start;
        f.publish(end);
        assert_eq!(f.drain(), vec![b"12345678".to_vec()]);
        assert_eq!(f.consumed(), end);
    }
}

#[cfg(feature = "tokio")]
mod tokio_reader {
    use super::*;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// A [`RingBufReader`] driven by tokio: `next` waits without blocking a thread.
    pub struct AsyncRingBufReader {
        inner: AsyncFd<RingBufReader>,
    }

    impl std::os::fd::AsRawFd for RingBufReader {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            std::os::fd::AsRawFd::as_raw_fd(&self.epoll.as_fd())
        }
    }

    impl AsyncRingBufReader {
        /// Wraps a reader; must be called inside a tokio runtime.
        pub fn new(reader: RingBufReader) -> Result<AsyncRingBufReader> {
            // SAFETY: the reader owns its epoll fd, never replaces it, and
            // `as_raw_fd` always returns it, for as long as the AsyncFd lives.
            let inner = unsafe { AsyncFd::register_with_interest(reader, Interest::READABLE) }
                .map_err(|e| {
                    Error::sys("register ring buffer epoll with tokio", e.into_parts().1)
                })?;
            Ok(AsyncRingBufReader { inner })
        }

        /// Waits until at least one record is available, hands every
        /// available record to `f`, and returns how many there were.
        pub async fn next(&mut self, f: &mut (dyn FnMut(usize, &[u8]) + Send)) -> Result<usize> {
            loop {
                let mut guard = self
                    .inner
                    .readable_mut()
                    .await
                    .map_err(|e| Error::sys("wait for ring buffer", e))?;
                let n = guard.get_inner_mut().consume(&mut |i, r| f(i, r));
                // Nothing there: the wakeup is spent, wait for the next one.
                if n > 0 {
                    return Ok(n);
                }
                guard.clear_ready();
            }
        }

        /// The reader, given back.
        pub fn into_inner(self) -> RingBufReader {
            self.inner.into_inner()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::map::MapDefinition;
        use crate::prog::{Program, ProgramLoad};
        use bpfkit_abi::{helper, MapType, ProgramType};
        use bpfkit_isa::{AluOp, CallTarget, Imm64, Insn, MemSize, Operand, Reg, Width};
        use std::os::fd::AsRawFd;

        /// XDP: `bpf_ringbuf_output(rb, &(u64)7, 8, 0); return XDP_PASS`.
        fn output_seven(rb: &KernelMap) -> Vec<Insn> {
            let mov = |dst, imm| Insn::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst,
                src: Operand::Imm(imm),
            };
            vec![
                Insn::StoreImm {
                    size: MemSize::DW,
                    dst: Reg::R10,
                    off: -8,
                    imm: 7,
                },
                Insn::LdImm64 {
                    dst: Reg::R1,
                    imm: Imm64::MapFd(rb.fd().as_raw_fd()),
                },
                Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Mov,
                    dst: Reg::R2,
                    src: Operand::Reg(Reg::R10),
                },
                Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Add,
                    dst: Reg::R2,
                    src: Operand::Imm(-8),
                },
                mov(Reg::R3, 8),
                mov(Reg::R4, 0),
                Insn::Call(CallTarget::Helper(helper::RINGBUF_OUTPUT)),
                mov(Reg::R0, 2),
                Insn::Exit,
            ]
        }

        #[test]
        fn async_reader_wakes_on_records() {
            if let Err(why) = crate::check_bpf_access() {
                eprintln!("SKIP: cannot use bpf(): {why}");
                return;
            }
            let rb = KernelMap::create(
                &MapDefinition::new("rb", MapType::Ringbuf, 0, 0, 4096),
                None,
            )
            .unwrap();
            let insns = output_seven(&rb);
            let prog = Program::load(&ProgramLoad {
                name: "rb_async",
                prog_type: ProgramType::Xdp,
                expected_attach_type: None,
                insns: &insns,
                license: "GPL",
                kern_version: 0,
                btf: None,
                attach_btf_id: 0,
                core_relos: Vec::new(),
            })
            .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            let got = rt.block_on(async {
                let mut reader = RingBufReader::new().unwrap();
                reader.add(&rb).unwrap();
                let mut reader = AsyncRingBufReader::new(reader).unwrap();
                let writer = std::thread::spawn(move || {
                    for _ in 0..3 {
                        std::thread::sleep(Duration::from_millis(20));
                        prog.test_run(&[0; 64], &[], 2).unwrap();
                    }
                });
                let mut got = Vec::new();
                while got.len() < 6 {
                    reader
                        .next(&mut |_, rec| got.push(rec.to_vec()))
                        .await
                        .unwrap();
                }
                writer.join().unwrap();
                got
            });
            assert_eq!(got, vec![7u64.to_ne_bytes().to_vec(); 6]);
        }
    }
}

#[cfg(feature = "tokio")]
pub use tokio_reader::AsyncRingBufReader;
