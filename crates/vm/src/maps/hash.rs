//! Hash maps, with optional LRU eviction; values are per-CPU vectors of length
//! 1 for ordinary maps.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use bpfkit_abi::{errno, update_flags};

use super::{err, MapError};
use crate::memory::SharedBytes;

/// An element's place in the ordered tree (its values are in the index).
struct Entry {
    /// Last use, for LRU eviction.
    tick: u64,
}

/// Hash map storage. Keys iterate in byte order, which is deterministic (the
/// kernel's order is the hash bucket order; callers must not rely on either).
/// A program's lookups, the hot path, go through a hash index of the same
/// elements instead of the ordered tree (whose key comparisons cost more
/// than the rest of a lookup).
pub(super) struct HashStorage {
    entries: BTreeMap<Vec<u8>, Entry>,
    /// The values of `entries`, by key.
    index: HashMap<Box<[u8]>, Box<[SharedBytes]>, KeyHashing>,
    /// For LRU maps: last-use tick → key.
    recency: Option<BTreeMap<u64, Vec<u8>>>,
    clock: u64,
}

impl HashStorage {
    pub(super) fn new(lru: bool) -> HashStorage {
        HashStorage {
            entries: BTreeMap::new(),
            index: HashMap::with_hasher(KeyHashing::new()),
            recency: lru.then(BTreeMap::new),
            clock: 0,
        }
    }

    #[inline]
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
        self.index.get(key).map(|v| &v[..])
    }

    pub(super) fn update(
        &mut self,
        key: &[u8],
        values: Vec<Vec<u8>>,
        mode: u64,
        max_entries: usize,
    ) -> Result<(), MapError> {
        let exists = self.index.contains_key(key);
        match (mode, exists) {
            (update_flags::NOEXIST, true) => return err(errno::EEXIST, "key already exists"),
            (update_flags::EXIST, false) => return err(errno::ENOENT, "key does not exist"),
            _ => {}
        }
        if exists {
            // Replace in place, so pointers programs hold see the new value.
            if let Some(slots) = self.index.get(key) {
                for (slot, v) in slots.iter().zip(&values) {
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
                        self.index.remove(&victim[..]);
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
        let values: Box<[SharedBytes]> = values.into_iter().map(SharedBytes::new).collect();
        self.index.insert(key.into(), values);
        self.entries.insert(key.to_vec(), Entry { tick });
        Ok(())
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> Result<(), MapError> {
        match self.entries.remove(key) {
            Some(e) => {
                self.index.remove(key);
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

/// Hashing of map keys for [`HashStorage`]'s index: a word at a time
/// multiply-and-rotate mix (the shape of rustc's FxHash) with a seed drawn
/// once per map, so a program cannot choose keys that collide everywhere.
/// SipHash, std's default, costs several times more for 4- to 16-byte keys.
#[derive(Clone)]
pub(super) struct KeyHashing {
    seed: u64,
    /// Tests make every key hash alike, to check that colliding keys
    /// are still told apart.
    #[cfg(test)]
    collide: bool,
}

impl KeyHashing {
    fn new() -> KeyHashing {
        KeyHashing {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x6b65_7973_u64),
            #[cfg(test)]
            collide: false,
        }
    }
}

impl BuildHasher for KeyHashing {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            state: self.seed,
            #[cfg(test)]
            collide: self.collide,
        }
    }
}

/// See [`KeyHashing`].
pub(super) struct KeyHasher {
    state: u64,
    #[cfg(test)]
    collide: bool,
}

const MIX: u64 = 0xf135_7aea_2e62_a9c5;

impl KeyHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(MIX).rotate_left(26);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits, which pick the bucket, the
        // weakest: fold the high ones down.
        #[cfg(test)]
        if self.collide {
            return 0;
        }
        let h = self.state.wrapping_mul(MIX);
        h ^ (h >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(lru: bool) -> HashStorage {
        HashStorage::new(lru)
    }

    fn value(s: &mut HashStorage, key: &[u8]) -> Option<Vec<u8>> {
        s.get(key, true).map(|v| v[0].to_vec())
    }

    #[test]
    fn keys_that_share_their_hash_are_still_told_apart() {
        let mut s = storage(false);
        // Every key hashes alike, so every lookup walks colliding keys.
        s.index = HashMap::with_hasher(KeyHashing {
            seed: 0,
            collide: true,
        });
        for k in 0u32..200 {
            s.update(
                &k.to_le_bytes(),
                vec![(k * 3).to_le_bytes().to_vec()],
                0,
                200,
            )
            .unwrap();
        }
        for k in 0u32..200 {
            assert_eq!(
                value(&mut s, &k.to_le_bytes()),
                Some((k * 3).to_le_bytes().to_vec())
            );
        }
        assert_eq!(value(&mut s, &200u32.to_le_bytes()), None);
        // Keys equal but for their length, or their trailing zero bytes, differ.
        let mut s = storage(false);
        s.update(&[1, 0, 0], vec![vec![1]], 0, 8).unwrap();
        s.update(&[1, 0, 0, 0], vec![vec![2]], 0, 8).unwrap();
        s.update(&[1, 0, 0, 0, 0, 0, 0, 0, 0], vec![vec![3]], 0, 8)
            .unwrap();
        assert_eq!(value(&mut s, &[1, 0, 0]), Some(vec![1]));
        assert_eq!(value(&mut s, &[1, 0, 0, 0]), Some(vec![2]));
        assert_eq!(value(&mut s, &[1, 0, 0, 0, 0, 0, 0, 0, 0]), Some(vec![3]));
    }

    #[test]
    fn the_hasher_spreads_small_integer_keys_over_buckets() {
        let b = KeyHashing::new();
        let mut buckets = [0u32; 64];
        for k in 0u32..6400 {
            buckets[(b.hash_one(&k.to_le_bytes()[..]) % 64) as usize] += 1;
        }
        // 100 per bucket on average; a weak mix piles them into a few.
        assert!(
            buckets.iter().all(|&n| (50..150).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn delete_update_and_a_full_map_keep_the_index_and_the_tree_in_step() {
        let mut s = storage(false);
        for k in 0u8..4 {
            s.update(&[k; 4], vec![vec![k]], 0, 4).unwrap();
        }
        let full = s.update(&[9; 4], vec![vec![9]], 0, 4).unwrap_err();
        assert_eq!(full.errno(), errno::E2BIG);
        assert_eq!(
            value(&mut s, &[9; 4]),
            None,
            "a refused insert leaves nothing"
        );
        // Replacing keeps the element (pointers programs hold see the change).
        let held = s.get(&[2; 4], true).unwrap()[0].clone();
        s.update(&[2; 4], vec![vec![20]], 0, 4).unwrap();
        assert_eq!(held.to_vec(), vec![20]);
        s.remove(&[1; 4]).unwrap();
        assert_eq!(value(&mut s, &[1; 4]), None);
        assert_eq!(s.remove(&[1; 4]).unwrap_err().errno(), errno::ENOENT);
        assert_eq!(s.next_key(None), Some(vec![0; 4]));
        assert_eq!(
            s.next_key(Some(&[0; 4])),
            Some(vec![2; 4]),
            "the deleted key is gone"
        );
        s.update(&[9; 4], vec![vec![9]], 0, 4).unwrap();
        assert_eq!(value(&mut s, &[9; 4]), Some(vec![9]));
        // A re-inserted key is a new element.
        s.remove(&[2; 4]).unwrap();
        s.update(&[2; 4], vec![vec![21]], 0, 4).unwrap();
        assert_eq!(held.to_vec(), vec![20]);
        assert_eq!(value(&mut s, &[2; 4]), Some(vec![21]));
    }

    #[test]
    fn lru_eviction_removes_the_victim_from_the_index() {
        let mut s = storage(true);
        for k in 0u8..3 {
            s.update(&[k], vec![vec![k]], 0, 3).unwrap();
        }
        // Key 0 is used, so key 1 is the least recently used.
        assert_eq!(value(&mut s, &[0]), Some(vec![0]));
        s.update(&[7], vec![vec![7]], 0, 3).unwrap();
        assert_eq!(value(&mut s, &[1]), None);
        assert_eq!(value(&mut s, &[0]), Some(vec![0]));
        assert_eq!(value(&mut s, &[7]), Some(vec![7]));
        assert_eq!(s.index.len(), s.entries.len());
    }
}
