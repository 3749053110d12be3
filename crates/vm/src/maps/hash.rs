//! Hash maps, with optional LRU eviction; values are per-CPU vectors of length
//! 1 for ordinary maps.

use std::collections::BTreeMap;

use bpfkit_abi::{errno, update_flags};

use super::{err, MapError};
use crate::memory::SharedBytes;

struct Entry {
    values: Vec<SharedBytes>,
    /// Last use, for LRU eviction.
    tick: u64,
}

/// Hash map storage. Keys iterate in byte order, which is deterministic (the
/// kernel's order is the hash bucket order; callers must not rely on either).
pub(super) struct HashStorage {
    entries: BTreeMap<Vec<u8>, Entry>,
    /// For LRU maps: last-use tick → key.
    recency: Option<BTreeMap<u64, Vec<u8>>>,
    clock: u64,
}

impl HashStorage {
    pub(super) fn new(lru: bool) -> HashStorage {
        HashStorage {
            entries: BTreeMap::new(),
            recency: lru.then(BTreeMap::new),
            clock: 0,
        }
    }

    fn touch(&mut self, key: &[u8]) {
        let Some(recency) = &mut self.recency else {
            return;
        };
        if let Some(e) = self.entries.get_mut(key) {
            recency.remove(&e.tick);
            self.clock += 1;
            e.tick = self.clock;
            recency.insert(self.clock, key.to_vec());
        }
    }

    /// The values under `key`; a program's lookup (`touch`) marks it recently used.
    pub(super) fn get(&mut self, key: &[u8], touch: bool) -> Option<&[SharedBytes]> {
        if touch {
            self.touch(key);
        }
        self.entries.get(key).map(|e| e.values.as_slice())
    }

    pub(super) fn update(
        &mut self,
        key: &[u8],
        values: Vec<Vec<u8>>,
        mode: u64,
        max_entries: usize,
    ) -> Result<(), MapError> {
        let exists = self.entries.contains_key(key);
        match (mode, exists) {
            (update_flags::NOEXIST, true) => return err(errno::EEXIST, "key already exists"),
            (update_flags::EXIST, false) => return err(errno::ENOENT, "key does not exist"),
            _ => {}
        }
        if exists {
            // Replace in place, so pointers programs hold see the new value.
            if let Some(e) = self.entries.get(key) {
                for (slot, v) in e.values.iter().zip(&values) {
                    slot.copy_from(v);
                }
            }
            self.touch(key);
            return Ok(());
        }
        if self.entries.len() >= max_entries {
            match &mut self.recency {
                Some(recency) => {
                    // LRU: evict the least recently used element.
                    if let Some((_, victim)) = recency.pop_first() {
                        self.entries.remove(&victim);
                    }
                }
                None => return err(errno::E2BIG, format!("map is full ({max_entries} entries)")),
            }
        }
        self.clock += 1;
        let tick = self.clock;
        if let Some(recency) = &mut self.recency {
            recency.insert(tick, key.to_vec());
        }
        self.entries.insert(
            key.to_vec(),
            Entry {
                values: values.into_iter().map(SharedBytes::new).collect(),
                tick,
            },
        );
        Ok(())
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> Result<(), MapError> {
        match self.entries.remove(key) {
            Some(e) => {
                if let Some(recency) = &mut self.recency {
                    recency.remove(&e.tick);
                }
                Ok(())
            }
            None => err(errno::ENOENT, "key does not exist"),
        }
    }

    pub(super) fn next_key(&self, key: Option<&[u8]>) -> Option<Vec<u8>> {
        match key {
            Some(k) if self.entries.contains_key(k) => self
                .entries
                .range::<[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, _)| k.clone()),
            // A missing key restarts iteration, as in the kernel.
            _ => self.entries.keys().next().cloned(),
        }
    }
}
