//! The BPF ring buffer: records of any size, reserved and then submitted or
//! discarded; each takes its length rounded up to 8 plus an 8-byte header.

use std::collections::VecDeque;

use crate::memory::SharedBytes;

const HEADER: usize = 8;

/// Ring buffer counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingBufStats {
    /// Records submitted and not yet drained.
    pub pending: usize,
    /// Bytes in use (records and reservations, with headers).
    pub used_bytes: usize,
    /// Capacity in bytes.
    pub capacity: usize,
    /// Reservations and outputs refused for lack of space.
    pub dropped: u64,
    /// Position of the producer (bytes ever reserved).
    pub producer_pos: u64,
    /// Position of the consumer (bytes ever drained or discarded).
    pub consumer_pos: u64,
}

pub(crate) struct RingBuf {
    capacity: usize,
    used: usize,
    submitted: VecDeque<Vec<u8>>,
    reserved: Vec<(u64, SharedBytes)>,
    next_reservation: u64,
    dropped: u64,
    producer_pos: u64,
    consumer_pos: u64,
}

fn footprint(len: usize) -> usize {
    HEADER + len.next_multiple_of(8)
}

impl RingBuf {
    pub(super) fn new(capacity: usize) -> RingBuf {
        RingBuf {
            capacity,
            used: 0,
            submitted: VecDeque::new(),
            reserved: Vec::new(),
            next_reservation: 1,
            dropped: 0,
            producer_pos: 0,
            consumer_pos: 0,
        }
    }

    fn claim(&mut self, len: usize) -> bool {
        let need = footprint(len);
        if len > u32::MAX as usize >> 2 || self.used + need > self.capacity {
            self.dropped += 1;
            return false;
        }
        self.used += need;
        self.producer_pos += need as u64;
        true
    }

    /// Copies a record in (`bpf_ringbuf_output`); false when there is no room.
    pub(crate) fn output(&mut self, data: Vec<u8>) -> bool {
        if !self.claim(data.len()) {
            return false;
        }
        self.submitted.push_back(data);
        true
    }

    /// Reserves `len` bytes (`bpf_ringbuf_reserve`): a token and the record's bytes.
    pub(crate) fn reserve(&mut self, len: usize) -> Option<(u64, SharedBytes)> {
        if !self.claim(len) {
            return None;
        }
        let token = self.next_reservation;
        self.next_reservation += 1;
        let bytes = SharedBytes::new(vec![0; len]);
        self.reserved.push((token, bytes.clone()));
        Some((token, bytes))
    }

    /// Submits (`discard == false`) or discards a reservation.
    pub(crate) fn release(&mut self, token: u64, discard: bool) -> bool {
        let Some(i) = self.reserved.iter().position(|(t, _)| *t == token) else {
            return false;
        };
        let (_, bytes) = self.reserved.remove(i);
        let data = bytes.to_vec();
        if discard {
            self.used -= footprint(data.len());
            self.consumer_pos += footprint(data.len()) as u64;
        } else {
            self.submitted.push_back(data);
        }
        true
    }

    /// `bpf_ringbuf_query`: 0 available data, 1 size, 2 consumer, 3 producer position.
    pub(crate) fn query(&self, what: u64) -> u64 {
        match what {
            0 => self
                .submitted
                .iter()
                .map(|r| footprint(r.len()) as u64)
                .sum(),
            1 => self.capacity as u64,
            2 => self.consumer_pos,
            3 => self.producer_pos,
            _ => 0,
        }
    }

    pub(super) fn drain(&mut self) -> Vec<Vec<u8>> {
        let out: Vec<Vec<u8>> = self.submitted.drain(..).collect();
        let freed: usize = out.iter().map(|r| footprint(r.len())).sum();
        self.used -= freed;
        self.consumer_pos += freed as u64;
        out
    }

    pub(super) fn stats(&self) -> RingBufStats {
        RingBufStats {
            pending: self.submitted.len(),
            used_bytes: self.used,
            capacity: self.capacity,
            dropped: self.dropped,
            producer_pos: self.producer_pos,
            consumer_pos: self.consumer_pos,
        }
    }
}
