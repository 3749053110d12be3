//! Typed maps over any backend.
//!
//! The VM and the kernel store map entries as bytes, with the same semantics
//! (flags, errno values, per-CPU layout). [`RawMap`] is that common byte-level
//! interface; [`HashMap`], [`Array`], [`PerCpuArray`], [`Queue`] and the rest put
//! plain-old-data types on top of it, so the same code and the same tests run
//! against either backend.

use std::marker::PhantomData;

use bytemuck::Pod;

/// A map operation failed; carries the errno the kernel (or the VM, which
/// mirrors it) reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message} (errno {errno})")]
pub struct MapError {
    /// The operation: `lookup`, `update`, ...
    pub op: &'static str,
    /// Positive errno value (`ENOENT`, `EEXIST`, `E2BIG`, ...).
    pub errno: i32,
    /// What went wrong, in words.
    pub message: String,
}

/// Byte-level access to a map, as the `bpf()` map commands provide it.
///
/// Per-CPU maps exchange one value per possible CPU, each padded to 8 bytes,
/// concatenated: the kernel's syscall layout.
pub trait RawMap {
    /// Key size in bytes.
    fn key_size(&self) -> usize;
    /// Value size in bytes (of one CPU's value for per-CPU maps).
    fn value_size(&self) -> usize;
    /// Number of value copies a lookup returns: the possible CPUs for per-CPU maps, else 1.
    fn value_copies(&self) -> usize;
    /// The value stored under `key`, if any.
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError>;
    /// Stores `value` under `key`; `flags` is `BPF_ANY`, `BPF_NOEXIST` or `BPF_EXIST`.
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError>;
    /// Removes `key`.
    fn delete(&self, key: &[u8]) -> Result<(), MapError>;
    /// The key after `key` (the first key for `None`), or `None` at the end.
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError>;
    /// Pushes onto a queue, stack or bloom filter.
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError>;
    /// Pops from a queue or stack.
    fn pop(&self) -> Result<Option<Vec<u8>>, MapError>;
    /// Peeks at a queue or stack; for a bloom filter, `value` is tested
    /// (`Ok(Some)` when possibly present).
    fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError>;
}

/// Boxed and borrowed maps are maps too, so the typed layer works over
/// `Box<dyn RawMap>` and `&dyn RawMap` as well as concrete backends.
macro_rules! forward_raw_map {
    ($($t:ty),*) => {$(
        impl<M: RawMap + ?Sized> RawMap for $t {
            fn key_size(&self) -> usize { (**self).key_size() }
            fn value_size(&self) -> usize { (**self).value_size() }
            fn value_copies(&self) -> usize { (**self).value_copies() }
            fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> { (**self).lookup(key) }
            fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> { (**self).update(key, value, flags) }
            fn delete(&self, key: &[u8]) -> Result<(), MapError> { (**self).delete(key) }
            fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> { (**self).next_key(key) }
            fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> { (**self).push(value, flags) }
            fn pop(&self) -> Result<Option<Vec<u8>>, MapError> { (**self).pop() }
            fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> { (**self).peek(value) }
        }
    )*};
}
forward_raw_map!(Box<M>, &M);

fn check_size(what: &'static str, want: usize, got: usize) -> Result<(), MapError> {
    if want == got {
        Ok(())
    } else {
        Err(MapError {
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
        Some(b) => Ok(bytemuck::pod_read_unaligned(b)),
        None => Err(MapError {
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

/// Iterates over a map's keys with `next_key`.
pub struct Keys<'a, M: RawMap + ?Sized> {
    map: &'a M,
    last: Option<Vec<u8>>,
    done: bool,
}

impl<M: RawMap + ?Sized> Iterator for Keys<'_, M> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.map.next_key(self.last.as_deref()) {
            Ok(Some(k)) => {
                self.last = Some(k.clone());
                Some(Ok(k))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// All keys of a map, in the map's iteration order.
pub fn keys<M: RawMap + ?Sized>(map: &M) -> Keys<'_, M> {
    Keys {
        map,
        last: None,
        done: false,
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
            .lookup(bytemuck::bytes_of(key))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Stores `value` under `key` with `flags`.
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), MapError> {
        self.map
            .update(bytemuck::bytes_of(key), bytemuck::bytes_of(value), flags)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete(bytemuck::bytes_of(key))
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
                op: "lookup",
                errno: bpfkit_abi::errno::ENOENT,
                message: format!("index {index} is out of bounds"),
            }),
        }
    }

    /// Stores `value` at `index`.
    pub fn set(&self, index: u32, value: &V) -> Result<(), MapError> {
        self.map
            .update(&index.to_ne_bytes(), bytemuck::bytes_of(value), 0)
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
        let stride = std::mem::size_of::<V>().next_multiple_of(8);
        let mut bytes = vec![0u8; stride * self.map.value_copies()];
        for chunk in bytes.chunks_mut(stride) {
            chunk[..std::mem::size_of::<V>()].copy_from_slice(bytemuck::bytes_of(value));
        }
        self.map.update(&index.to_ne_bytes(), &bytes, 0)
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
        self.map.push(bytemuck::bytes_of(value), flags)
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
        k.extend_from_slice(bytemuck::bytes_of(data));
        k
    }

    /// Stores `value` for the first `prefix_len` bits of `data`.
    pub fn insert(&self, prefix_len: u32, data: &K, value: &V) -> Result<(), MapError> {
        self.map
            .update(&Self::key(prefix_len, data), bytemuck::bytes_of(value), 0)
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
        self.map.push(bytemuck::bytes_of(value), 0)
    }

    /// Whether `value` may have been added (`false`: certainly not).
    pub fn contains(&self, value: &V) -> Result<bool, MapError> {
        match self.map.peek(Some(bytemuck::bytes_of(value))) {
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
