//! Typed views over any [`RawMap`]: keys and values are [`Pod`] types whose
//! sizes are checked against the map's when the view is made.

use std::marker::PhantomData;

use super::{keys, MapError, RawMap};
use crate::Pod;
use bpfkit_kernel::map::bytes_of;

fn check_size(what: &'static str, want: usize, got: usize) -> Result<(), MapError> {
    if want == got {
        Ok(())
    } else {
        Err(MapError {
            map: String::new(),
            op: what,
            errno: bpfkit_abi::errno::EINVAL,
            message: format!("type has {got} bytes but the map's {what} size is {want}"),
        })
    }
}

/// Reads a `T` from the front of `bytes`; a backend that returns fewer bytes
/// than the map's size is reported, not trusted.
fn decode<T: Pod>(bytes: &[u8]) -> Result<T, MapError> {
    match bytes.get(..std::mem::size_of::<T>()) {
        Some(b) => Ok(bpfkit_kernel::map::from_bytes(b).expect("the slice has T's size")),
        None => Err(MapError {
            map: String::new(),
            op: "decode",
            errno: bpfkit_abi::errno::EINVAL,
            message: format!(
                "backend returned {} bytes, type needs {}",
                bytes.len(),
                std::mem::size_of::<T>()
            ),
        }),
    }
}

/// A hash map (hash, lru_hash) with typed keys and values.
pub struct HashMap<M, K, V> {
    map: M,
    _types: PhantomData<(K, V)>,
}

impl<M: RawMap, K: Pod, V: Pod> HashMap<M, K, V> {
    /// Wraps `map`, checking that `K` and `V` have the map's key and value sizes.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("key", map.key_size(), std::mem::size_of::<K>())?;
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(HashMap {
            map,
            _types: PhantomData,
        })
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, MapError> {
        self.map
            .lookup(bytes_of(key))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Stores `value` under `key` with `flags`.
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), MapError> {
        self.map.update(bytes_of(key), bytes_of(value), flags)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete(bytes_of(key))
    }

    /// All keys, in the map's order.
    pub fn keys(&self) -> Result<Vec<K>, MapError> {
        keys(&self.map).map(|k| decode(&k?)).collect()
    }

    /// All entries, in the map's order.
    pub fn entries(&self) -> Result<Vec<(K, V)>, MapError> {
        let mut out = Vec::new();
        for key in keys(&self.map) {
            let key = key?;
            // An entry deleted between next_key and lookup is simply skipped.
            if let Some(v) = self.map.lookup(&key)? {
                out.push((decode(&key)?, decode(&v)?));
            }
        }
        Ok(out)
    }

    /// The underlying byte-level map.
    pub fn raw(&self) -> &M {
        &self.map
    }
}

/// An array map with typed values, indexed by `u32`.
pub struct Array<M, V> {
    map: M,
    _types: PhantomData<V>,
}

impl<M: RawMap, V: Pod> Array<M, V> {
    /// Wraps `map`, checking the value size.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("key", map.key_size(), 4)?;
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(Array {
            map,
            _types: PhantomData,
        })
    }

    /// The value at `index`.
    pub fn get(&self, index: u32) -> Result<V, MapError> {
        match self.map.lookup(&index.to_ne_bytes())? {
            Some(v) => decode(&v),
            None => Err(MapError {
                map: String::new(),
                op: "lookup",
                errno: bpfkit_abi::errno::ENOENT,
                message: format!("index {index} is out of bounds"),
            }),
        }
    }

    /// Stores `value` at `index`.
    pub fn set(&self, index: u32, value: &V) -> Result<(), MapError> {
        self.map.update(&index.to_ne_bytes(), bytes_of(value), 0)
    }

    /// The underlying byte-level map.
    pub fn raw(&self) -> &M {
        &self.map
    }
}

/// A per-CPU array: one value per possible CPU at each index.
pub struct PerCpuArray<M, V> {
    map: M,
    _types: PhantomData<V>,
}

/// Splits a per-CPU lookup result (values padded to 8 bytes) into values.
fn split_percpu<V: Pod>(bytes: &[u8], copies: usize) -> Vec<V> {
    let stride = std::mem::size_of::<V>().next_multiple_of(8);
    (0..copies)
        .filter_map(|cpu| bytes.get(cpu * stride..cpu * stride + std::mem::size_of::<V>()))
        .filter_map(|b| decode(b).ok())
        .collect()
}

impl<M: RawMap, V: Pod> PerCpuArray<M, V> {
    /// Wraps `map`, checking the value size.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("key", map.key_size(), 4)?;
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(PerCpuArray {
            map,
            _types: PhantomData,
        })
    }

    /// Every CPU's value at `index`.
    pub fn get(&self, index: u32) -> Result<Vec<V>, MapError> {
        let bytes = self.map.lookup(&index.to_ne_bytes())?.unwrap_or_default();
        Ok(split_percpu(&bytes, self.map.value_copies()))
    }

    /// Sets every CPU's value at `index` to `value`.
    pub fn set_all(&self, index: u32, value: &V) -> Result<(), MapError> {
        let values = vec![*value; self.map.value_copies()];
        self.map.update(
            &index.to_ne_bytes(),
            &join_percpu(&values, self.map.value_copies())?,
            0,
        )
    }
}

/// A FIFO queue or LIFO stack map of typed values.
pub struct Queue<M, V> {
    map: M,
    _types: PhantomData<V>,
}

impl<M: RawMap, V: Pod> Queue<M, V> {
    /// Wraps `map`, checking the value size.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(Queue {
            map,
            _types: PhantomData,
        })
    }

    /// Pushes `value`; with `BPF_EXIST` a full map drops its oldest element.
    pub fn push(&self, value: &V, flags: u64) -> Result<(), MapError> {
        self.map.push(bytes_of(value), flags)
    }

    /// Removes and returns the next value.
    pub fn pop(&self) -> Result<Option<V>, MapError> {
        self.map.pop()?.map(|v| decode(&v)).transpose()
    }

    /// Returns the next value without removing it.
    pub fn peek(&self) -> Result<Option<V>, MapError> {
        self.map.peek(None)?.map(|v| decode(&v)).transpose()
    }
}

/// A longest-prefix-match trie: keys are a prefix length in bits followed
/// by `K`'s bytes (an address in network order, say), as the kernel lays
/// out `struct bpf_lpm_trie_key`.
pub struct LpmTrie<M, K, V> {
    map: M,
    _types: PhantomData<(K, V)>,
}

impl<M: RawMap, K: Pod, V: Pod> LpmTrie<M, K, V> {
    /// Wraps `map`, checking that its key is 4 + `size_of::<K>()` bytes.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("key", map.key_size(), 4 + std::mem::size_of::<K>())?;
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(LpmTrie {
            map,
            _types: PhantomData,
        })
    }

    fn key(prefix_len: u32, data: &K) -> Vec<u8> {
        let mut k = prefix_len.to_ne_bytes().to_vec();
        k.extend_from_slice(bytes_of(data));
        k
    }

    /// Stores `value` for the first `prefix_len` bits of `data`.
    pub fn insert(&self, prefix_len: u32, data: &K, value: &V) -> Result<(), MapError> {
        self.map
            .update(&Self::key(prefix_len, data), bytes_of(value), 0)
    }

    /// The value of the longest stored prefix that `data` starts with.
    pub fn longest_match(&self, data: &K) -> Result<Option<V>, MapError> {
        let full = (std::mem::size_of::<K>() * 8) as u32;
        self.map
            .lookup(&Self::key(full, data))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Removes the exact prefix `prefix_len`/`data`.
    pub fn remove(&self, prefix_len: u32, data: &K) -> Result<(), MapError> {
        self.map.delete(&Self::key(prefix_len, data))
    }
}

/// A per-CPU hash map: one value per possible CPU under each key.
pub struct PerCpuHashMap<M, K, V> {
    map: M,
    _types: PhantomData<(K, V)>,
}

impl<M: RawMap, K: Pod, V: Pod> PerCpuHashMap<M, K, V> {
    /// Wraps `map`, checking the key and value sizes.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("key", map.key_size(), std::mem::size_of::<K>())?;
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(PerCpuHashMap {
            map,
            _types: PhantomData,
        })
    }

    /// Every CPU's value under `key`.
    pub fn get(&self, key: &K) -> Result<Option<Vec<V>>, MapError> {
        Ok(self
            .map
            .lookup(bytes_of(key))?
            .map(|b| split_percpu(&b, self.map.value_copies())))
    }

    /// Stores one value per CPU under `key`; `values` must have one per CPU.
    pub fn insert(&self, key: &K, values: &[V], flags: u64) -> Result<(), MapError> {
        self.map.update(
            bytes_of(key),
            &join_percpu(values, self.map.value_copies())?,
            flags,
        )
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete(bytes_of(key))
    }

    /// All keys with every CPU's values.
    pub fn entries(&self) -> Result<Vec<(K, Vec<V>)>, MapError> {
        let mut out = Vec::new();
        for key in keys(&self.map) {
            let key = key?;
            if let Some(v) = self.map.lookup(&key)? {
                out.push((decode(&key)?, split_percpu(&v, self.map.value_copies())));
            }
        }
        Ok(out)
    }
}

/// Lays out one value per CPU on 8-byte strides, the syscall layout.
fn join_percpu<V: Pod>(values: &[V], copies: usize) -> Result<Vec<u8>, MapError> {
    if values.len() != copies {
        return Err(MapError {
            map: String::new(),
            op: "update",
            errno: bpfkit_abi::errno::EINVAL,
            message: format!("{} values given, the map has {copies} CPUs", values.len()),
        });
    }
    let size = std::mem::size_of::<V>();
    let stride = size.next_multiple_of(8);
    let mut bytes = vec![0u8; stride * copies];
    for (chunk, v) in bytes.chunks_mut(stride).zip(values) {
        chunk[..size].copy_from_slice(bytes_of(v));
    }
    Ok(bytes)
}

/// A program array for `bpf_tail_call`: each slot holds a program.
pub struct ProgArray<'a> {
    map: &'a super::Map,
}

impl<'a> ProgArray<'a> {
    /// Wraps `map`, a `BPF_MAP_TYPE_PROG_ARRAY`.
    pub fn new(map: &'a super::Map) -> Result<Self, crate::Error> {
        map.expect_type(bpfkit_abi::MapType::ProgArray, "prog_array")?;
        Ok(ProgArray { map })
    }

    /// Puts `program` in slot `index`, for tail calls to reach it.
    pub fn set(&self, index: u32, program: &crate::Program) -> Result<(), crate::Error> {
        program.put_in_prog_array(self.map, index)
    }

    /// Empties slot `index`.
    pub fn clear(&self, index: u32) -> Result<(), MapError> {
        self.map.delete(&index.to_ne_bytes())
    }

    /// The id of the program in slot `index`, if any (the kernel reports
    /// ids, not fds, on lookup).
    pub fn get_id(&self, index: u32) -> Result<Option<u32>, MapError> {
        self.map
            .lookup(&index.to_ne_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }
}

/// An array or hash of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS`, `HASH_OF_MAPS`)
/// keyed by `K`: each value is a map of the inner map's shape.
pub struct MapOfMaps<'a, K> {
    map: &'a super::Map,
    _types: PhantomData<K>,
}

impl<'a, K: Pod> MapOfMaps<'a, K> {
    /// Wraps `map`, checking its type and key size.
    pub fn new(map: &'a super::Map) -> Result<Self, crate::Error> {
        if !map.map_type().is_map_in_map() {
            map.expect_type(
                bpfkit_abi::MapType::ArrayOfMaps,
                "array_of_maps or hash_of_maps",
            )?;
        }
        check_size("key", map.key_size(), std::mem::size_of::<K>()).map_err(|mut e| {
            e.map = map.name().into();
            e
        })?;
        Ok(MapOfMaps {
            map,
            _types: PhantomData,
        })
    }

    /// Stores `inner` under `key`; it must live on the same backend.
    pub fn set(&self, key: &K, inner: &super::Map) -> Result<(), crate::Error> {
        let value = self.map.inner_map_value(inner)?;
        Ok(self.map.update(bytes_of(key), &value, 0)?)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete(bytes_of(key))
    }

    /// The id of the map stored under `key`, if any.
    pub fn get_id(&self, key: &K) -> Result<Option<u32>, MapError> {
        self.map
            .lookup(bytes_of(key))?
            .map(|v| decode(&v))
            .transpose()
    }
}

/// A bloom filter of typed values: no false negatives, maybe false positives.
pub struct BloomFilter<M, V> {
    map: M,
    _types: PhantomData<V>,
}

impl<M: RawMap, V: Pod> BloomFilter<M, V> {
    /// Wraps `map`, checking the value size.
    pub fn new(map: M) -> Result<Self, MapError> {
        check_size("value", map.value_size(), std::mem::size_of::<V>())?;
        Ok(BloomFilter {
            map,
            _types: PhantomData,
        })
    }

    /// Adds `value`.
    pub fn insert(&self, value: &V) -> Result<(), MapError> {
        self.map.push(bytes_of(value), 0)
    }

    /// Whether `value` may have been added (`false`: certainly not).
    pub fn contains(&self, value: &V) -> Result<bool, MapError> {
        match self.map.peek(Some(bytes_of(value))) {
            Ok(found) => Ok(found.is_some()),
            Err(e) if e.errno == bpfkit_abi::errno::ENOENT => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percpu_values_are_split_on_8_byte_strides() {
        let mut bytes = vec![0u8; 16];
        bytes[0..4].copy_from_slice(&7u32.to_ne_bytes());
        bytes[8..12].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(split_percpu::<u32>(&bytes, 2), vec![7, 9]);
        assert_eq!(split_percpu::<u32>(&bytes[..8], 2), vec![7], "short input");
    }
}
