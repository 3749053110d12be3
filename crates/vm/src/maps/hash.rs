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
    index: Index,
    /// For LRU maps: last-use tick → key.
    recency: Option<BTreeMap<u64, Vec<u8>>>,
    clock: u64,
}

impl HashStorage {
    /// Storage for keys of `key_size` bytes.
    pub(super) fn new(lru: bool, key_size: usize) -> HashStorage {
        HashStorage {
            entries: BTreeMap::new(),
            index: Index::new(key_size, KeyHashing::new()),
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
        if touch && self.recency.is_some() {
            self.touch(key);
        }
        self.index.get(key)
    }

    /// Stores `values` under `key`; `Ok(true)` when that made a new
    /// element (which may have evicted another), `Ok(false)` when it
    /// replaced the bytes of the one there in place.
    pub(super) fn update(
        &mut self,
        key: &[u8],
        values: Vec<Vec<u8>>,
        mode: u64,
        max_entries: usize,
    ) -> Result<bool, MapError> {
        if let Index::Small { key_size, .. } = &self.index {
            // Map::update checks key sizes first; the index holds no other.
            if key.len() != *key_size {
                return err(errno::EINVAL, format!("key of {} bytes", key.len()));
            }
        }
        let exists = self.index.get(key).is_some();
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
            return Ok(false);
        }
        if self.entries.len() >= max_entries {
            match &mut self.recency {
                Some(recency) => {
                    // LRU: evict the least recently used element.
                    if let Some((_, victim)) = recency.pop_first() {
                        self.entries.remove(&victim);
                        self.index.remove(&victim);
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
        self.index.insert(key, values);
        self.entries.insert(key.to_vec(), Entry { tick });
        Ok(true)
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

/// The hash index of a [`HashStorage`]: keys of up to 16 bytes (most: ids,
/// addresses, small tuples) as one integer, hashed and compared as such;
/// longer ones as bytes.
pub(super) enum Index {
    /// Keys of exactly `key_size` bytes, zero-extended to 16.
    Small {
        key_size: usize,
        map: HashMap<u128, Box<[SharedBytes]>, KeyHashing>,
    },
    Large(HashMap<Box<[u8]>, Box<[SharedBytes]>, KeyHashing>),
}

impl Index {
    fn new(key_size: usize, hashing: KeyHashing) -> Index {
        if key_size <= 16 {
            Index::Small {
                key_size,
                map: HashMap::with_hasher(hashing),
            }
        } else {
            Index::Large(HashMap::with_hasher(hashing))
        }
    }

    /// `key` as a small key; `None` for a key of another size (which the
    /// map's callers refuse before they get here, and is never stored).
    /// Two overlapping loads cover every byte: for keys of one size the
    /// result is as unique as the bytes, without a copy of variable length.
    #[inline(always)]
    pub(super) fn small(key_size: usize, key: &[u8]) -> Option<u128> {
        if key.len() != key_size {
            return None;
        }
        let n = key.len();
        let word = |at: usize, w: usize| -> Option<u64> {
            let b = key.get(at..at + w)?;
            Some(match w {
                8 => u64::from_le_bytes(b.try_into().ok()?),
                4 => u32::from_le_bytes(b.try_into().ok()?) as u64,
                _ => b[0] as u64,
            })
        };
        Some(match n {
            8..=16 => (word(0, 8)? as u128) | (word(n - 8, 8)? as u128) << 64,
            4..=7 => (word(0, 4)? | word(n - 4, 4)? << 32) as u128,
            1..=3 => (word(0, 1)? | word(n / 2, 1)? << 8 | word(n - 1, 1)? << 16) as u128,
            _ => 0,
        })
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<&[SharedBytes]> {
        match self {
            Index::Small { key_size, map } => map.get(&Index::small(*key_size, key)?),
            Index::Large(map) => map.get(key),
        }
        .map(|v| &v[..])
    }

    fn insert(&mut self, key: &[u8], values: Box<[SharedBytes]>) {
        match self {
            Index::Small { key_size, map } => {
                if let Some(k) = Index::small(*key_size, key) {
                    map.insert(k, values);
                }
            }
            Index::Large(map) => {
                map.insert(key.into(), values);
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        match self {
            Index::Small { key_size, map } => {
                if let Some(k) = Index::small(*key_size, key) {
                    map.remove(&k);
                }
            }
            Index::Large(map) => {
                map.remove(key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Index::Small { map, .. } => map.len(),
            Index::Large(map) => map.len(),
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
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
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
        HashStorage::new(lru, 4)
    }

    fn value(s: &mut HashStorage, key: &[u8]) -> Option<Vec<u8>> {
        s.get(key, true).map(|v| v[0].to_vec())
    }

    #[test]
    fn keys_that_share_their_hash_are_still_told_apart() {
        let collide = KeyHashing {
            seed: 0,
            collide: true,
        };
        // Every key hashes alike, so every lookup walks colliding keys:
        // small keys (one integer) and large ones (bytes).
        for key_size in [4usize, 16, 20] {
            let mut s = HashStorage::new(false, key_size);
            s.index = Index::new(key_size, collide.clone());
            let key = |k: u32| {
                let mut key = vec![0u8; key_size];
                key[key_size - 4..].copy_from_slice(&k.to_le_bytes());
                key
            };
            for k in 0u32..200 {
                s.update(&key(k), vec![(k * 3).to_le_bytes().to_vec()], 0, 200)
                    .unwrap();
            }
            for k in 0u32..200 {
                assert_eq!(
                    value(&mut s, &key(k)),
                    Some((k * 3).to_le_bytes().to_vec()),
                    "{key_size}-byte key {k}"
                );
            }
            assert_eq!(value(&mut s, &key(200)), None);
            assert_eq!(s.index.len(), 200);
        }
    }

    #[test]
    fn small_keys_differ_in_every_byte_and_other_sizes_are_refused() {
        let mut s = HashStorage::new(false, 3);
        s.update(&[1, 0, 0], vec![vec![1]], 0, 8).unwrap();
        s.update(&[0, 0, 1], vec![vec![2]], 0, 8).unwrap();
        s.update(&[0, 0, 0], vec![vec![3]], 0, 8).unwrap();
        assert_eq!(value(&mut s, &[1, 0, 0]), Some(vec![1]));
        assert_eq!(value(&mut s, &[0, 0, 1]), Some(vec![2]));
        assert_eq!(value(&mut s, &[0, 0, 0]), Some(vec![3]));
        // A key of another size (zero-extended, it would equal one above)
        // is neither found nor stored.
        assert_eq!(value(&mut s, &[1, 0, 0, 0]), None);
        let e = s.update(&[1, 0], vec![vec![9]], 0, 8).unwrap_err();
        assert_eq!(e.errno(), errno::EINVAL);
        assert_eq!(
            s.next_key(Some(&[1, 0, 0])),
            None,
            "nothing stored after the last key"
        );
        // For every size, a change in any one byte changes the small key.
        for n in 1..=16usize {
            let mut seen = std::collections::BTreeSet::new();
            seen.insert(Index::small(n, &vec![0; n]).unwrap());
            for pos in 0..n {
                for byte in [1u8, 0x80, 0xff] {
                    let mut key = vec![0; n];
                    key[pos] = byte;
                    assert!(
                        seen.insert(Index::small(n, &key).unwrap()),
                        "{n} bytes, byte {pos}"
                    );
                }
            }
        }
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
            s.update(&[k; 4], vec![vec![k]], 0, 3).unwrap();
        }
        // Key 0 is used, so key 1 is the least recently used.
        assert_eq!(value(&mut s, &[0; 4]), Some(vec![0]));
        s.update(&[7; 4], vec![vec![7]], 0, 3).unwrap();
        assert_eq!(value(&mut s, &[1; 4]), None);
        assert_eq!(value(&mut s, &[0; 4]), Some(vec![0]));
        assert_eq!(value(&mut s, &[7; 4]), Some(vec![7]));
        assert_eq!(s.index.len(), s.entries.len());
    }
}
