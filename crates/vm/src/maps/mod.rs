//! Maps in user space with the kernel's semantics: the same flags, the same
//! errno values, the same per-CPU value layout as the `bpf()` syscall.
//!
//! A [`Map`] is a cheap, clonable handle. Like kernel maps it has a numeric id
//! ([`Map::id`]), which map-in-map values and program registers refer to.

mod hash;
mod lpm;
mod queue;
mod ringbuf;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bpfkit_abi::{errno, update_flags, MapType};

use crate::memory::{LookupTag, SharedBytes};
use crate::program::Program;

pub use ringbuf::RingBufStats;

/// What a map is: the attributes of `BPF_MAP_CREATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity (bytes for ring buffers).
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
    /// For map-in-map types: the definition inner maps must match.
    pub inner: Option<Box<MapDef>>,
}

impl MapDef {
    /// A definition with no flags and no inner map.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
        MapDef {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
            inner: None,
        }
    }
}

/// A map operation failed with a kernel errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (errno {errno})")]
pub struct MapError {
    errno: i32,
    message: String,
}

impl MapError {
    pub(crate) fn new(errno: i32, message: impl Into<String>) -> MapError {
        MapError {
            errno,
            message: message.into(),
        }
    }

    /// The positive errno value the kernel would return.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

pub(crate) fn err<T>(errno: i32, message: impl Into<String>) -> Result<T, MapError> {
    Err(MapError::new(errno, message))
}

/// The storage of one map type.
enum Storage {
    Array(Vec<Vec<SharedBytes>>),
    Hash(hash::HashStorage),
    Lpm(lpm::LpmTrie),
    Queue(queue::QueueStorage),
    Bloom(queue::BloomStorage),
    RingBuf(ringbuf::RingBuf),
    Perf(Vec<std::collections::VecDeque<Vec<u8>>>),
    Progs(Vec<Option<Arc<Program>>>),
    Maps(BTreeMap<Vec<u8>, Map>),
}

struct MapInner {
    id: u32,
    def: MapDef,
    ncpus: usize,
    storage: Mutex<Storage>,
    /// Changes (under the storage lock) whenever a key gains or loses
    /// its value bytes, so a program lookup remembered with the value
    /// generation it saw stands while the generation does: see
    /// [`Map::lookup_tag`].
    generation: AtomicU64,
    /// Whether [`Map::lookup_tag`] tags lookups: maps whose program
    /// lookups have no side effect and whose keys fit a `u128` (hash and
    /// array maps, per-CPU or not, with keys of at most 16 bytes; not LRU
    /// maps, whose lookups mark elements used).
    taggable: bool,
}

/// A map: a handle to shared storage.
#[derive(Clone)]
pub struct Map(Arc<MapInner>);

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("id", &self.0.id)
            .field("def", &self.0.def)
            .finish()
    }
}

fn registry() -> MutexGuard<'static, BTreeMap<u32, Weak<MapInner>>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<u32, Weak<MapInner>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn is_percpu(t: MapType) -> bool {
    t.is_percpu()
}

fn validate(def: &MapDef) -> Result<(), MapError> {
    use MapType::*;
    let inval = |why: &str| err(errno::EINVAL, format!("{}: {why}", def.map_type));
    if def.max_entries == 0 {
        return inval("max_entries must not be 0");
    }
    match def.map_type {
        Array | PercpuArray | ProgArray | ArrayOfMaps | PerfEventArray => {
            if def.key_size != 4 {
                return inval("key size must be 4");
            }
        }
        Queue | Stack | BloomFilter => {
            if def.key_size != 0 {
                return inval("key size must be 0");
            }
        }
        Ringbuf => {
            if def.key_size != 0 || def.value_size != 0 {
                return inval("key and value size must be 0");
            }
            if !def.max_entries.is_power_of_two() || def.max_entries % 4096 != 0 {
                return inval("size must be a power of 2 and a multiple of the page size");
            }
            return Ok(());
        }
        LpmTrie => {
            if def.key_size <= 4 || def.key_size > 4 + 256 {
                return inval("key must be a 4-byte prefix length plus 1..256 data bytes");
            }
            if def.map_flags & bpfkit_abi::map_flags::NO_PREALLOC == 0 {
                return inval("requires BPF_F_NO_PREALLOC");
            }
        }
        Hash | PercpuHash | LruHash | LruPercpuHash | HashOfMaps => {
            if def.key_size == 0 {
                return inval("key size must not be 0");
            }
        }
        other => {
            return err(
                errno::EINVAL,
                format!("map type {other} is not supported by the userspace VM"),
            )
        }
    }
    let fixed_value = matches!(
        def.map_type,
        ProgArray | ArrayOfMaps | HashOfMaps | PerfEventArray
    );
    if fixed_value && def.value_size != 4 {
        return inval("value size must be 4");
    }
    if def.value_size == 0 {
        return inval("value size must not be 0");
    }
    if def.map_type.is_map_in_map() && def.inner.is_none() {
        return inval("needs an inner map definition");
    }
    Ok(())
}

fn zeroed(n: usize, ncpus: usize) -> Vec<SharedBytes> {
    (0..ncpus).map(|_| SharedBytes::new(vec![0; n])).collect()
}

impl Map {
    /// Creates a map. `ncpus` is the number of virtual CPUs per-CPU maps keep values for.
    pub fn new(def: MapDef, ncpus: usize) -> Result<Map, MapError> {
        validate(&def)?;
        let ncpus = ncpus.max(1);
        let copies = if is_percpu(def.map_type) { ncpus } else { 1 };
        let n = def.max_entries as usize;
        let vs = def.value_size as usize;
        let storage = match def.map_type {
            MapType::Array | MapType::PercpuArray => {
                Storage::Array((0..n).map(|_| zeroed(vs, copies)).collect())
            }
            MapType::LpmTrie => Storage::Lpm(lpm::LpmTrie::default()),
            MapType::Queue => Storage::Queue(queue::QueueStorage::new(false)),
            MapType::Stack => Storage::Queue(queue::QueueStorage::new(true)),
            MapType::BloomFilter => Storage::Bloom(queue::BloomStorage::default()),
            MapType::Ringbuf => Storage::RingBuf(ringbuf::RingBuf::new(n)),
            MapType::PerfEventArray => Storage::Perf(vec![Default::default(); ncpus]),
            MapType::ProgArray => Storage::Progs(vec![None; n]),
            MapType::ArrayOfMaps | MapType::HashOfMaps => Storage::Maps(BTreeMap::new()),
            _ => Storage::Hash(hash::HashStorage::new(
                matches!(def.map_type, MapType::LruHash | MapType::LruPercpuHash),
                def.key_size as usize,
            )),
        };
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let taggable = matches!(
            def.map_type,
            MapType::Hash | MapType::PercpuHash | MapType::Array | MapType::PercpuArray
        ) && def.key_size <= 16;
        let inner = Arc::new(MapInner {
            id,
            def,
            ncpus,
            storage: Mutex::new(storage),
            generation: AtomicU64::new(0),
            taggable,
        });
        registry().insert(id, Arc::downgrade(&inner));
        Ok(Map(inner))
    }

    /// The live map with this id, if any.
    pub fn from_id(id: u32) -> Option<Map> {
        let mut reg = registry();
        match reg.get(&id).and_then(Weak::upgrade) {
            Some(inner) => Some(Map(inner)),
            None => {
                reg.remove(&id);
                None
            }
        }
    }

    /// The map's id, unique in this process.
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The definition.
    pub fn def(&self) -> &MapDef {
        &self.0.def
    }

    /// Value copies a lookup returns: the virtual CPUs for per-CPU maps, else 1.
    pub fn value_copies(&self) -> usize {
        if is_percpu(self.0.def.map_type) {
            self.0.ncpus
        } else {
            1
        }
    }

    fn storage(&self) -> MutexGuard<'_, Storage> {
        self.0.storage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.0.def.key_size as usize {
            return err(
                errno::EINVAL,
                format!(
                    "key has {} bytes, map expects {}",
                    key.len(),
                    self.0.def.key_size
                ),
            );
        }
        Ok(())
    }

    fn array_index(&self, key: &[u8]) -> Result<usize, MapError> {
        self.check_key(key)?;
        Ok(u32::from_ne_bytes([key[0], key[1], key[2], key[3]]) as usize)
    }

    /// The syscall layout of a value: one copy, or every CPU's copy padded to 8 bytes.
    fn pack(&self, values: &[SharedBytes]) -> Vec<u8> {
        if !is_percpu(self.0.def.map_type) {
            return values[0].to_vec();
        }
        let stride = (self.0.def.value_size as usize).next_multiple_of(8);
        let mut out = vec![0u8; stride * values.len()];
        for (cpu, v) in values.iter().enumerate() {
            let v = v.lock();
            out[cpu * stride..cpu * stride + v.len()].copy_from_slice(&v);
        }
        out
    }

    fn unpack(&self, value: &[u8]) -> Result<Vec<Vec<u8>>, MapError> {
        let vs = self.0.def.value_size as usize;
        if !is_percpu(self.0.def.map_type) {
            if value.len() != vs {
                return err(
                    errno::EINVAL,
                    format!("value has {} bytes, map expects {vs}", value.len()),
                );
            }
            return Ok(vec![value.to_vec()]);
        }
        let stride = vs.next_multiple_of(8);
        if value.len() != stride * self.0.ncpus {
            return err(
                errno::EINVAL,
                format!(
                    "per-CPU value has {} bytes, map expects {} ({} CPUs x {stride})",
                    value.len(),
                    stride * self.0.ncpus,
                    self.0.ncpus
                ),
            );
        }
        Ok((0..self.0.ncpus)
            .map(|cpu| value[cpu * stride..cpu * stride + vs].to_vec())
            .collect())
    }

    /// The value under `key` (`BPF_MAP_LOOKUP_ELEM`); per-CPU maps return every CPU's value.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let mut storage = self.storage();
        match &mut *storage {
            Storage::Array(values) => {
                let i = self.array_index(key)?;
                Ok(values.get(i).map(|v| self.pack(v)))
            }
            Storage::Hash(h) => {
                self.check_key(key)?;
                Ok(h.get(key, false).map(|v| self.pack(v)))
            }
            Storage::Lpm(t) => {
                self.check_key(key)?;
                Ok(t.longest_match(key).map(|v| v.to_vec()))
            }
            Storage::Queue(q) => Ok(q.peek()),
            Storage::Bloom(_) | Storage::RingBuf(_) | Storage::Perf(_) => {
                err(errno::EINVAL, "lookup is not supported on this map type")
            }
            Storage::Progs(p) => {
                let i = self.array_index(key)?;
                // The kernel does not return program fds from a lookup.
                match p.get(i) {
                    Some(_) => err(errno::EOPNOTSUPP, "prog array lookup from user space"),
                    None => Ok(None),
                }
            }
            Storage::Maps(m) => {
                self.check_key(key)?;
                Ok(m.get(key).map(|inner| inner.id().to_ne_bytes().to_vec()))
            }
        }
    }

    /// Stores `value` under `key` (`BPF_MAP_UPDATE_ELEM`) with `BPF_ANY`,
    /// `BPF_NOEXIST` or `BPF_EXIST`.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        let mode = flags & !update_flags::LOCK;
        if mode > update_flags::EXIST {
            return err(errno::EINVAL, format!("unknown update flags {flags:#x}"));
        }
        let def = &self.0.def;
        let mut storage = self.storage();
        match &mut *storage {
            Storage::Array(values) => {
                let i = self.array_index(key)?;
                let new = self.unpack(value)?;
                if i >= values.len() {
                    return err(
                        errno::E2BIG,
                        format!("index {i} >= max_entries {}", values.len()),
                    );
                }
                if mode == update_flags::NOEXIST {
                    return err(errno::EEXIST, "array elements always exist");
                }
                for (slot, v) in values[i].iter().zip(new) {
                    slot.copy_from(&v);
                }
                Ok(())
            }
            Storage::Hash(h) => {
                self.check_key(key)?;
                let new = self.unpack(value)?;
                if h.update(key, new, mode, def.max_entries as usize)? {
                    self.values_changed();
                }
                Ok(())
            }
            Storage::Lpm(t) => {
                self.check_key(key)?;
                let new = self.unpack(value)?.remove(0);
                t.update(key, new, mode, def.max_entries as usize)
            }
            Storage::Queue(_) | Storage::Bloom(_) => err(
                errno::EINVAL,
                "use push for queue, stack and bloom filter maps",
            ),
            Storage::RingBuf(_) | Storage::Perf(_) => {
                err(errno::EINVAL, "update is not supported on this map type")
            }
            Storage::Progs(_) => err(
                errno::EINVAL,
                "prog array entries are set with Map::set_program in the VM",
            ),
            Storage::Maps(m) => {
                self.check_key(key)?;
                if value.len() != 4 {
                    return err(errno::EINVAL, "map-in-map values are 4-byte map ids");
                }
                let id = u32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
                let inner = Map::from_id(id)
                    .ok_or_else(|| MapError::new(errno::EBADF, format!("no map with id {id}")))?;
                self.check_inner(&inner)?;
                if def.map_type == MapType::ArrayOfMaps {
                    let i = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
                    if i >= def.max_entries {
                        return err(errno::E2BIG, format!("index {i} >= max_entries"));
                    }
                }
                let exists = m.contains_key(key);
                match (mode, exists) {
                    (update_flags::NOEXIST, true) => return err(errno::EEXIST, "key exists"),
                    (update_flags::EXIST, false) => return err(errno::ENOENT, "no such key"),
                    (_, false) if m.len() >= def.max_entries as usize => {
                        return err(errno::E2BIG, "map is full")
                    }
                    _ => {}
                }
                m.insert(key.to_vec(), inner);
                Ok(())
            }
        }
    }

    fn check_inner(&self, inner: &Map) -> Result<(), MapError> {
        let Some(want) = &self.0.def.inner else {
            return err(errno::EINVAL, "no inner map definition");
        };
        let got = inner.def();
        if got.map_type != want.map_type
            || got.key_size != want.key_size
            || got.value_size != want.value_size
        {
            return err(
                errno::EINVAL,
                format!(
                    "inner map {} ({}, key {}, value {}) does not match the template ({}, key {}, value {})",
                    inner.id(),
                    got.map_type,
                    got.key_size,
                    got.value_size,
                    want.map_type,
                    want.key_size,
                    want.value_size
                ),
            );
        }
        Ok(())
    }

    /// Removes `key` (`BPF_MAP_DELETE_ELEM`).
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let mut storage = self.storage();
        match &mut *storage {
            Storage::Array(_) => {
                self.check_key(key)?;
                err(errno::EINVAL, "array elements cannot be deleted")
            }
            Storage::Hash(h) => {
                self.check_key(key)?;
                h.remove(key)?;
                self.values_changed();
                Ok(())
            }
            Storage::Lpm(t) => {
                self.check_key(key)?;
                t.remove(key)
            }
            Storage::Progs(p) => {
                let i = self.array_index(key)?;
                match p.get_mut(i) {
                    Some(slot @ Some(_)) => {
                        *slot = None;
                        Ok(())
                    }
                    Some(None) => err(errno::ENOENT, "no program at this index"),
                    None => err(errno::E2BIG, "index out of range"),
                }
            }
            Storage::Maps(m) => {
                self.check_key(key)?;
                m.remove(key)
                    .map(|_| ())
                    .ok_or_else(|| MapError::new(errno::ENOENT, "no such key"))
            }
            _ => err(errno::EINVAL, "delete is not supported on this map type"),
        }
    }

    /// The key after `key`, or the first key for `None` or a key not in the
    /// map (`BPF_MAP_GET_NEXT_KEY`); `None` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        let storage = self.storage();
        let array_next = |len: usize| -> Option<Vec<u8>> {
            let next = match key {
                Some(k) => {
                    let i = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) as usize;
                    if i >= len {
                        0
                    } else {
                        i + 1
                    }
                }
                None => 0,
            };
            (next < len).then(|| (next as u32).to_ne_bytes().to_vec())
        };
        Ok(match &*storage {
            Storage::Array(v) => array_next(v.len()),
            Storage::Progs(v) => array_next(v.len()),
            Storage::Hash(h) => h.next_key(key),
            Storage::Lpm(t) => t.next_key(key),
            Storage::Maps(m) => match key {
                Some(k) if m.contains_key(k) => m
                    .range::<[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                    .next()
                    .map(|(k, _)| k.clone()),
                _ => m.keys().next().cloned(),
            },
            _ => return err(errno::EINVAL, "this map type has no keys"),
        })
    }

    /// Pushes onto a queue or stack, or adds to a bloom filter. With
    /// `BPF_EXIST`, a full queue or stack drops its oldest element.
    pub fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        let vs = self.0.def.value_size as usize;
        if value.len() != vs {
            return err(
                errno::EINVAL,
                format!("value has {} bytes, map expects {vs}", value.len()),
            );
        }
        let max = self.0.def.max_entries as usize;
        let mut storage = self.storage();
        match &mut *storage {
            Storage::Queue(q) => q.push(value, flags, max),
            Storage::Bloom(b) => {
                if flags != update_flags::ANY {
                    return err(errno::EINVAL, "bloom filter push takes no flags");
                }
                b.add(value);
                Ok(())
            }
            _ => err(errno::EINVAL, "push needs a queue, stack or bloom filter"),
        }
    }

    /// Removes and returns the next element of a queue or stack.
    pub fn pop(&self) -> Result<Option<Vec<u8>>, MapError> {
        match &mut *self.storage() {
            Storage::Queue(q) => Ok(q.pop()),
            _ => err(errno::EINVAL, "pop needs a queue or stack"),
        }
    }

    /// Returns the next element of a queue or stack without removing it; for a
    /// bloom filter, tests `value` (`Some` when it may be present).
    pub fn peek(&self, value: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        match (&mut *self.storage(), value) {
            (Storage::Queue(q), _) => Ok(q.peek()),
            (Storage::Bloom(b), Some(v)) => Ok(b.contains(v).then(|| v.to_vec())),
            (Storage::Bloom(_), None) => err(errno::EINVAL, "bloom filter peek needs a value"),
            _ => err(errno::EINVAL, "peek needs a queue, stack or bloom filter"),
        }
    }

    /// Puts `program` at `index` of a prog array.
    pub fn set_program(&self, index: u32, program: Arc<Program>) -> Result<(), MapError> {
        match &mut *self.storage() {
            Storage::Progs(p) => match p.get_mut(index as usize) {
                Some(slot) => {
                    *slot = Some(program);
                    Ok(())
                }
                None => err(errno::E2BIG, format!("index {index} out of range")),
            },
            _ => err(errno::EINVAL, "not a prog array"),
        }
    }

    /// The program at `index` of a prog array (for tail calls).
    pub fn program(&self, index: u32) -> Option<Arc<Program>> {
        match &*self.storage() {
            Storage::Progs(p) => p.get(index as usize).cloned().flatten(),
            _ => None,
        }
    }

    /// Drains the records a ring buffer holds, oldest first.
    pub fn drain_ringbuf(&self) -> Result<Vec<Vec<u8>>, MapError> {
        match &mut *self.storage() {
            Storage::RingBuf(r) => Ok(r.drain()),
            _ => err(errno::EINVAL, "not a ring buffer"),
        }
    }

    /// Ring buffer counters.
    pub fn ringbuf_stats(&self) -> Result<RingBufStats, MapError> {
        match &*self.storage() {
            Storage::RingBuf(r) => Ok(r.stats()),
            _ => err(errno::EINVAL, "not a ring buffer"),
        }
    }

    /// Drains the samples written to CPU `cpu` of a perf event array.
    pub fn drain_perf(&self, cpu: usize) -> Result<Vec<Vec<u8>>, MapError> {
        match &mut *self.storage() {
            Storage::Perf(p) => Ok(p
                .get_mut(cpu)
                .map(|q| q.drain(..).collect())
                .unwrap_or_default()),
            _ => err(errno::EINVAL, "not a perf event array"),
        }
    }

    // Program-side access (helpers), returning shared value storage.

    /// Records, with the storage locked, that a key gained or lost its
    /// value bytes (an element inserted, evicted or deleted): lookups
    /// tagged before no longer stand.
    fn values_changed(&self) {
        self.0.generation.fetch_add(1, Ordering::Release);
    }

    /// Where the map keeps its value generation, which every insert,
    /// eviction and delete changes (see [`Map::lookup_tag`]).
    pub(crate) fn generation_word(&self) -> *const AtomicU64 {
        &self.0.generation
    }

    /// The tag of a program's lookup of `key` on `cpu`, for maps whose
    /// lookups a run may remember ([`AddressSpace::cached_lookup`]): while
    /// the map's value generation stays the tag's, `key` on `cpu` has the
    /// same value bytes, so the region of the last lookup is this one's.
    /// `None` for other maps and for a key of another size.
    ///
    /// [`AddressSpace::cached_lookup`]: crate::memory::AddressSpace::cached_lookup
    #[inline(always)]
    pub(crate) fn lookup_tag(&self, key: &[u8], cpu: usize) -> Option<LookupTag> {
        if !self.0.taggable {
            return None;
        }
        let key_size = self.0.def.key_size as usize;
        if key.len() != key_size {
            return None;
        }
        // Any packing one-to-one for keys of one size serves; the most
        // common sizes as plain integers, the cheapest.
        let key = match key_size {
            4 => u32::from_le_bytes(key.try_into().ok()?) as u128,
            8 => u64::from_le_bytes(key.try_into().ok()?) as u128,
            _ => hash::Index::small(key_size, key)?,
        };
        Some(LookupTag {
            map: self.0.id,
            cpu: cpu as u32,
            key,
            // Acquire: a value generation read here is at least as new
            // as the one a lookup after it, under the lock, sees.
            generation: self.0.generation.load(Ordering::Acquire),
        })
    }

    /// The value a program's `map_lookup_elem` sees on `cpu`.
    pub(crate) fn program_lookup(&self, key: &[u8], cpu: usize) -> Option<ProgramValue> {
        let mut storage = self.storage();
        let copy = |v: &[SharedBytes]| v.get(cpu.min(v.len() - 1)).cloned();
        match &mut *storage {
            Storage::Array(values) => {
                let i = self.array_index(key).ok()?;
                values.get(i).and_then(|v| copy(v)).map(ProgramValue::Bytes)
            }
            Storage::Hash(h) => {
                if key.len() != self.0.def.key_size as usize {
                    return None;
                }
                h.get(key, true).and_then(copy).map(ProgramValue::Bytes)
            }
            Storage::Lpm(t) => t.longest_match_shared(key).map(ProgramValue::Bytes),
            Storage::Maps(m) => m.get(key).cloned().map(ProgramValue::Map),
            _ => None,
        }
    }

    pub(crate) fn with_ringbuf<R>(&self, f: impl FnOnce(&mut ringbuf::RingBuf) -> R) -> Option<R> {
        match &mut *self.storage() {
            Storage::RingBuf(r) => Some(f(r)),
            _ => None,
        }
    }

    pub(crate) fn perf_output(&self, cpu: usize, data: Vec<u8>) -> Result<(), MapError> {
        match &mut *self.storage() {
            Storage::Perf(p) => match p.get_mut(cpu) {
                Some(q) => {
                    q.push_back(data);
                    Ok(())
                }
                None => err(errno::E2BIG, format!("no perf buffer for CPU {cpu}")),
            },
            _ => err(errno::EINVAL, "not a perf event array"),
        }
    }
}

/// What a program's lookup returns.
pub(crate) enum ProgramValue {
    /// Value bytes, shared with the map.
    Bytes(SharedBytes),
    /// An inner map of a map-in-map.
    Map(Map),
}
