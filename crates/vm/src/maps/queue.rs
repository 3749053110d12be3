//! Queue and stack maps, and the bloom filter.

use std::collections::{HashSet, VecDeque};

use bpfkit_abi::{errno, update_flags};

use super::{err, MapError};

/// FIFO queue or LIFO stack of values; the front is the oldest element.
pub(super) struct QueueStorage {
    items: VecDeque<Vec<u8>>,
    lifo: bool,
}

impl QueueStorage {
    pub(super) fn new(lifo: bool) -> QueueStorage {
        QueueStorage {
            items: VecDeque::new(),
            lifo,
        }
    }

    pub(super) fn push(&mut self, value: &[u8], flags: u64, max: usize) -> Result<(), MapError> {
        if flags & !update_flags::EXIST != 0 {
            return err(errno::EINVAL, format!("unknown push flags {flags:#x}"));
        }
        if self.items.len() >= max {
            if flags & update_flags::EXIST == 0 {
                return err(errno::E2BIG, format!("full ({max} elements)"));
            }
            // BPF_EXIST makes room by dropping the oldest element.
            self.items.pop_front();
        }
        self.items.push_back(value.to_vec());
        Ok(())
    }

    pub(super) fn pop(&mut self) -> Option<Vec<u8>> {
        if self.lifo {
            self.items.pop_back()
        } else {
            self.items.pop_front()
        }
    }

    pub(super) fn peek(&self) -> Option<Vec<u8>> {
        if self.lifo {
            self.items.back().cloned()
        } else {
            self.items.front().cloned()
        }
    }
}

/// A bloom filter that happens to have no false positives: it remembers the
/// values exactly, which the filter's contract ("maybe present" / "definitely
/// absent") allows.
#[derive(Default)]
pub(super) struct BloomStorage {
    values: HashSet<Vec<u8>>,
}

impl BloomStorage {
    pub(super) fn add(&mut self, value: &[u8]) {
        self.values.insert(value.to_vec());
    }

    pub(super) fn contains(&self, value: &[u8]) -> bool {
        self.values.contains(value)
    }
}
