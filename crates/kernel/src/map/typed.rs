//! Typed views of [`KernelMap`]: keys and values are [`Pod`] types instead of
//! byte slices. Each view owns its map (`M = KernelMap`) or borrows one
//! (`M = &KernelMap`, e.g. from a `Collection`), and checks the map's type
//! and sizes when made.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;

use bpfkit_abi::MapType;

use super::pod::{bytes_of, from_bytes, Pod};
use super::{KernelMap, MapDefinition, MapError, MapResult};
use crate::error::{Error, Result};
use crate::prog::Program;

fn check_map(map: &KernelMap, types: &[MapType], key: usize, value: usize) -> Result<()> {
    if !types.contains(&map.map_type()) {
        let want: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        return Err(Error::Object(format!(
            "map `{}` is a {}, not a {}",
            map.name(),
            map.map_type(),
            want.join(" or ")
        )));
    }
    if map.key_size() != key || map.value_size() != value {
        return Err(Error::Object(format!(
            "map `{}` has {}-byte keys and {}-byte values; the type asks for {key} and {value}",
            map.name(),
            map.key_size(),
            map.value_size()
        )));
    }
    Ok(())
}

fn decode<T: Pod>(map: &KernelMap, op: &'static str, b: &[u8]) -> MapResult<T> {
    from_bytes(b).ok_or_else(|| MapError {
        op,
        map: map.name().to_string(),
        errno: libc::EINVAL,
        message: format!(
            "{} bytes do not make a {}",
            b.len(),
            std::any::type_name::<T>()
        ),
    })
}

/// Per-CPU values from the kernel's layout: one 8-byte-aligned slot per CPU.
fn split_percpu<V: Pod>(map: &KernelMap, op: &'static str, b: &[u8]) -> MapResult<Vec<V>> {
    let slot = map.value_size().next_multiple_of(8);
    b.chunks_exact(slot)
        .map(|c| decode(map, op, &c[..map.value_size()]))
        .collect()
}

/// The kernel's per-CPU layout from one value per possible CPU.
fn join_percpu<V: Pod>(map: &KernelMap, values: &[V]) -> MapResult<Vec<u8>> {
    if values.len() != map.value_copies() {
        return Err(MapError {
            op: "update",
            map: map.name().to_string(),
            errno: libc::EINVAL,
            message: format!(
                "{} values given, the map has one per possible CPU ({})",
                values.len(),
                map.value_copies()
            ),
        });
    }
    let slot = map.value_size().next_multiple_of(8);
    let mut out = vec![0u8; slot * values.len()];
    for (c, v) in out.chunks_exact_mut(slot).zip(values) {
        c[..map.value_size()].copy_from_slice(bytes_of(v));
    }
    Ok(out)
}

fn size<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

macro_rules! view {
    ($(#[$m:meta])* $name:ident <$($p:ident),*> [$($t:ident),*], $key:expr, $value:expr) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name<$($p,)* M = KernelMap> {
            map: M,
            _types: PhantomData<fn() -> ($($p,)*)>,
        }

        impl<$($p: Pod,)* M: Borrow<KernelMap>> $name<$($p,)* M> {
            /// A typed view of `map`, checking its type and sizes.
            pub fn try_from_map(map: M) -> Result<Self> {
                check_map(map.borrow(), &[$(MapType::$t),*], $key, $value)?;
                Ok($name { map, _types: PhantomData })
            }

            /// The underlying map.
            pub fn map(&self) -> &KernelMap {
                self.map.borrow()
            }

            /// The underlying map, given back.
            pub fn into_inner(self) -> M {
                self.map
            }
        }
    };
}

view!(
    /// A hash map (or LRU hash map) from `K` to `V`.
    HashMap<K, V> [Hash, LruHash], std::mem::size_of::<K>(), std::mem::size_of::<V>()
);

impl<K: Pod, V: Pod> HashMap<K, V> {
    /// Creates a hash map (`lru` for one that evicts the least recently used).
    pub fn create(name: &str, max_entries: u32, lru: bool) -> Result<Self> {
        let t = if lru { MapType::LruHash } else { MapType::Hash };
        let def = MapDefinition::new(name, t, size::<K>(), size::<V>(), max_entries);
        HashMap::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<K: Pod, V: Pod, M: Borrow<KernelMap>> HashMap<K, V, M> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> MapResult<Option<V>> {
        let m = self.map();
        m.lookup(bytes_of(key))?
            .map(|v| decode(m, "lookup", &v))
            .transpose()
    }

    /// Stores `value` under `key` (`flags`: `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> MapResult<()> {
        self.map().update(bytes_of(key), bytes_of(value), flags)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> MapResult<()> {
        self.map().delete(bytes_of(key))
    }

    /// Removes `key` and returns its value (5.14+).
    pub fn take(&self, key: &K) -> MapResult<Option<V>> {
        let m = self.map();
        m.lookup_and_delete(bytes_of(key))?
            .map(|v| decode(m, "lookup_and_delete", &v))
            .transpose()
    }

    /// Every key.
    pub fn keys(&self) -> MapResult<Vec<K>> {
        let m = self.map();
        m.keys()?.iter().map(|k| decode(m, "next_key", k)).collect()
    }

    /// Every entry (a key deleted during the walk is skipped).
    pub fn entries(&self) -> MapResult<Vec<(K, V)>> {
        let mut out = Vec::new();
        for k in self.keys()? {
            if let Some(v) = self.get(&k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }
}

view!(
    /// A per-CPU hash map (or LRU per-CPU hash map): one `V` per possible CPU.
    PerCpuHashMap<K, V> [PercpuHash, LruPercpuHash], std::mem::size_of::<K>(), std::mem::size_of::<V>()
);

impl<K: Pod, V: Pod> PerCpuHashMap<K, V> {
    /// Creates a per-CPU hash map.
    pub fn create(name: &str, max_entries: u32, lru: bool) -> Result<Self> {
        let t = if lru {
            MapType::LruPercpuHash
        } else {
            MapType::PercpuHash
        };
        let def = MapDefinition::new(name, t, size::<K>(), size::<V>(), max_entries);
        PerCpuHashMap::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<K: Pod, V: Pod, M: Borrow<KernelMap>> PerCpuHashMap<K, V, M> {
    /// Every possible CPU's value under `key`.
    pub fn get(&self, key: &K) -> MapResult<Option<Vec<V>>> {
        let m = self.map();
        m.lookup(bytes_of(key))?
            .map(|v| split_percpu(m, "lookup", &v))
            .transpose()
    }

    /// Stores one value per possible CPU under `key`.
    pub fn insert(&self, key: &K, values: &[V], flags: u64) -> MapResult<()> {
        let m = self.map();
        m.update(bytes_of(key), &join_percpu(m, values)?, flags)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> MapResult<()> {
        self.map().delete(bytes_of(key))
    }
}

view!(
    /// An array of `V`, indexed by `u32`.
    Array<V> [Array], 4, std::mem::size_of::<V>()
);

impl<V: Pod> Array<V> {
    /// Creates an array.
    pub fn create(name: &str, max_entries: u32) -> Result<Self> {
        let def = MapDefinition::new(name, MapType::Array, 4, size::<V>(), max_entries);
        Array::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<V: Pod, M: Borrow<KernelMap>> Array<V, M> {
    /// The element at `index` (`E2BIG`/`ENOENT`-free: out of range is `None`).
    pub fn get(&self, index: u32) -> MapResult<Option<V>> {
        let m = self.map();
        m.lookup(&index.to_ne_bytes())?
            .map(|v| decode(m, "lookup", &v))
            .transpose()
    }

    /// Sets the element at `index`.
    pub fn set(&self, index: u32, value: &V) -> MapResult<()> {
        self.map().update(
            &index.to_ne_bytes(),
            bytes_of(value),
            bpfkit_abi::update_flags::ANY,
        )
    }

    /// Number of elements.
    pub fn len(&self) -> u32 {
        self.map().max_entries()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

view!(
    /// A per-CPU array: one `V` per possible CPU at each index.
    PerCpuArray<V> [PercpuArray], 4, std::mem::size_of::<V>()
);

impl<V: Pod> PerCpuArray<V> {
    /// Creates a per-CPU array.
    pub fn create(name: &str, max_entries: u32) -> Result<Self> {
        let def = MapDefinition::new(name, MapType::PercpuArray, 4, size::<V>(), max_entries);
        PerCpuArray::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<V: Pod, M: Borrow<KernelMap>> PerCpuArray<V, M> {
    /// Every possible CPU's value at `index`.
    pub fn get(&self, index: u32) -> MapResult<Option<Vec<V>>> {
        let m = self.map();
        m.lookup(&index.to_ne_bytes())?
            .map(|v| split_percpu(m, "lookup", &v))
            .transpose()
    }

    /// Sets one value per possible CPU at `index`.
    pub fn set(&self, index: u32, values: &[V]) -> MapResult<()> {
        let m = self.map();
        m.update(
            &index.to_ne_bytes(),
            &join_percpu(m, values)?,
            bpfkit_abi::update_flags::ANY,
        )
    }
}

view!(
    /// A longest-prefix-match trie: keys are a prefix length in bits and a `K`
    /// (e.g. `[u8; 4]` for IPv4), as `struct bpf_lpm_trie_key`.
    LpmTrie<K, V> [LpmTrie], 4 + std::mem::size_of::<K>(), std::mem::size_of::<V>()
);

fn lpm_key<K: Pod>(prefix_len: u32, data: &K) -> Vec<u8> {
    let mut key = prefix_len.to_ne_bytes().to_vec();
    key.extend_from_slice(bytes_of(data));
    key
}

impl<K: Pod, V: Pod> LpmTrie<K, V> {
    /// Creates a trie (the kernel requires `BPF_F_NO_PREALLOC`, which is set).
    pub fn create(name: &str, max_entries: u32) -> Result<Self> {
        let def = MapDefinition::new(
            name,
            MapType::LpmTrie,
            4 + size::<K>(),
            size::<V>(),
            max_entries,
        )
        .with_flags(bpfkit_abi::map_flags::NO_PREALLOC);
        LpmTrie::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<K: Pod, V: Pod, M: Borrow<KernelMap>> LpmTrie<K, V, M> {
    /// The value of the longest stored prefix matching the first
    /// `prefix_len` bits of `data`.
    pub fn longest_match(&self, prefix_len: u32, data: &K) -> MapResult<Option<V>> {
        let m = self.map();
        m.lookup(&lpm_key(prefix_len, data))?
            .map(|v| decode(m, "lookup", &v))
            .transpose()
    }

    /// Stores `value` for the prefix.
    pub fn insert(&self, prefix_len: u32, data: &K, value: &V, flags: u64) -> MapResult<()> {
        self.map()
            .update(&lpm_key(prefix_len, data), bytes_of(value), flags)
    }

    /// Removes the exact prefix.
    pub fn remove(&self, prefix_len: u32, data: &K) -> MapResult<()> {
        self.map().delete(&lpm_key(prefix_len, data))
    }
}

macro_rules! fifo {
    ($(#[$m:meta])* $name:ident, $t:ident) => {
        view!($(#[$m])* $name<V> [$t], 0, std::mem::size_of::<V>());

        impl<V: Pod> $name<V> {
            /// Creates one holding up to `max_entries` values.
            pub fn create(name: &str, max_entries: u32) -> Result<Self> {
                let def = MapDefinition::new(name, MapType::$t, 0, size::<V>(), max_entries);
                $name::try_from_map(KernelMap::create(&def, None)?)
            }
        }

        impl<V: Pod, M: Borrow<KernelMap>> $name<V, M> {
            /// Adds a value; when full, `BPF_EXIST` drops the oldest instead of failing with `E2BIG`.
            pub fn push(&self, value: &V, flags: u64) -> MapResult<()> {
                self.map().push(bytes_of(value), flags)
            }

            /// Removes and returns the next value.
            pub fn pop(&self) -> MapResult<Option<V>> {
                let m = self.map();
                m.pop()?.map(|v| decode(m, "pop", &v)).transpose()
            }

            /// The next value, left in place.
            pub fn peek(&self) -> MapResult<Option<V>> {
                let m = self.map();
                m.peek(None)?.map(|v| decode(m, "peek", &v)).transpose()
            }
        }
    };
}

fifo!(
    /// A FIFO queue of `V`.
    Queue, Queue
);
fifo!(
    /// A LIFO stack of `V`.
    Stack, Stack
);

view!(
    /// A bloom filter over `V`: no false negatives, some false positives.
    BloomFilter<V> [BloomFilter], 0, std::mem::size_of::<V>()
);

impl<V: Pod> BloomFilter<V> {
    /// Creates a filter sized for `max_entries` values using `hashes` hash
    /// functions (1 to 15; 0 means the kernel's default of 5).
    pub fn create(name: &str, max_entries: u32, hashes: u8) -> Result<Self> {
        let mut def = MapDefinition::new(name, MapType::BloomFilter, 0, size::<V>(), max_entries);
        def.map_extra = u64::from(hashes & 0xf);
        BloomFilter::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<V: Pod, M: Borrow<KernelMap>> BloomFilter<V, M> {
    /// Adds a value.
    pub fn insert(&self, value: &V) -> MapResult<()> {
        self.map()
            .push(bytes_of(value), bpfkit_abi::update_flags::ANY)
    }

    /// Whether `value` may have been added (`false`: certainly not).
    pub fn contains(&self, value: &V) -> MapResult<bool> {
        Ok(self.map().peek(Some(bytes_of(value)))?.is_some())
    }
}

view!(
    /// Programs for tail calls, by index.
    ProgArray<> [ProgArray], 4, 4
);

impl ProgArray {
    /// Creates a program array with `max_entries` slots.
    pub fn create(name: &str, max_entries: u32) -> Result<Self> {
        let def = MapDefinition::new(name, MapType::ProgArray, 4, 4, max_entries);
        ProgArray::try_from_map(KernelMap::create(&def, None)?)
    }
}

impl<M: Borrow<KernelMap>> ProgArray<M> {
    /// Puts `prog` in slot `index`.
    pub fn set(&self, index: u32, prog: &Program) -> MapResult<()> {
        let fd = prog.fd().as_raw_fd() as u32;
        self.map().update(
            &index.to_ne_bytes(),
            &fd.to_ne_bytes(),
            bpfkit_abi::update_flags::ANY,
        )
    }

    /// The id of the program in slot `index`.
    pub fn get_id(&self, index: u32) -> MapResult<Option<u32>> {
        let m = self.map();
        m.lookup(&index.to_ne_bytes())?
            .map(|v| decode(m, "lookup", &v))
            .transpose()
    }

    /// Empties slot `index`.
    pub fn clear(&self, index: u32) -> MapResult<()> {
        self.map().delete(&index.to_ne_bytes())
    }
}

view!(
    /// Maps by index; every inner map must match the template it was created with.
    ArrayOfMaps<> [ArrayOfMaps], 4, 4
);

impl ArrayOfMaps {
    /// Creates an array of maps like `template`.
    pub fn create(name: &str, max_entries: u32, template: &KernelMap) -> Result<Self> {
        let def = MapDefinition::new(name, MapType::ArrayOfMaps, 4, 4, max_entries);
        ArrayOfMaps::try_from_map(KernelMap::create(&def, Some(template))?)
    }
}

impl<M: Borrow<KernelMap>> ArrayOfMaps<M> {
    /// Puts `inner` in slot `index`.
    pub fn set(&self, index: u32, inner: &KernelMap) -> MapResult<()> {
        let fd = inner.fd().as_raw_fd() as u32;
        self.map().update(
            &index.to_ne_bytes(),
            &fd.to_ne_bytes(),
            bpfkit_abi::update_flags::ANY,
        )
    }

    /// The id of the map in slot `index`.
    pub fn get_id(&self, index: u32) -> MapResult<Option<u32>> {
        let m = self.map();
        m.lookup(&index.to_ne_bytes())?
            .map(|v| decode(m, "lookup", &v))
            .transpose()
    }

    /// Empties slot `index`.
    pub fn clear(&self, index: u32) -> MapResult<()> {
        self.map().delete(&index.to_ne_bytes())
    }
}

view!(
    /// Maps by a `K` key.
    HashOfMaps<K> [HashOfMaps], std::mem::size_of::<K>(), 4
);

impl<K: Pod> HashOfMaps<K> {
    /// Creates a hash of maps like `template`.
    pub fn create(name: &str, max_entries: u32, template: &KernelMap) -> Result<Self> {
        let def = MapDefinition::new(name, MapType::HashOfMaps, size::<K>(), 4, max_entries);
        HashOfMaps::try_from_map(KernelMap::create(&def, Some(template))?)
    }
}

impl<K: Pod, M: Borrow<KernelMap>> HashOfMaps<K, M> {
    /// Stores `inner` under `key`.
    pub fn insert(&self, key: &K, inner: &KernelMap, flags: u64) -> MapResult<()> {
        let fd = inner.fd().as_raw_fd() as u32;
        self.map().update(bytes_of(key), &fd.to_ne_bytes(), flags)
    }

    /// The id of the map under `key`.
    pub fn get_id(&self, key: &K) -> MapResult<Option<u32>> {
        let m = self.map();
        m.lookup(bytes_of(key))?
            .map(|v| decode(m, "lookup", &v))
            .transpose()
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> MapResult<()> {
        self.map().delete(bytes_of(key))
    }
}
