//! The VM's address space: a set of byte regions, each at its own tagged base
//! address, so that any 64-bit value a program computes maps to at most one
//! region in O(1) and every access is checked against that region's bounds.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{MappedMutexGuard, Mutex, MutexGuard, RawMutex};

use crate::error::FaultKind;

/// Address bits that select a region; the low 32 bits are the offset in it.
const REGION_SHIFT: u32 = 32;

/// What a region holds, for error messages and for helpers that care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// One call frame of the program's stack (512 bytes while the frame is live).
    Stack,
    /// The program context (`xdp_md`, `__sk_buff`, raw buffer).
    Context,
    /// Packet data.
    Packet,
    /// Memory the embedder passed in (`-- mem` in conformance tests).
    Input,
    /// A map value handed out by `map_lookup_elem`.
    MapValue,
    /// A ring buffer record reserved by `ringbuf_reserve`.
    RingBufRecord,
    /// Memory an embedder registered for `probe_read` and friends.
    Probe,
    /// A buffer a helper handed out.
    HelperBuffer,
}

/// Bytes shared between a map (which outlives runs) and the regions that
/// point into it, so a program's stores through a looked-up value land in the
/// map itself, as they do in the kernel.
#[derive(Debug, Clone, Default)]
pub struct SharedBytes(Arc<SharedInner>);

#[derive(Debug, Default)]
struct SharedInner {
    /// In an `Arc` of its own, so that [`SharedBytes::try_hold`] can hand
    /// out a guard that owns its share of the lock.
    bytes: Arc<Mutex<Vec<u8>>>,
    /// Their length, fixed (the guards give slices), so that it is known
    /// without the lock.
    len: usize,
    /// Where the bytes were last found as a region: the number of the
    /// [`AddressSpace`] in the high 32 bits, the region index in the low ones
    /// (0: nowhere yet). Only a hint, so that a program looking up the same
    /// values again finds their regions without a hash probe:
    /// [`AddressSpace::find_shared`] checks that the region it names covers
    /// these bytes before it believes it.
    region_hint: AtomicU64,
}

impl SharedBytes {
    /// Shares `bytes`.
    pub fn new(bytes: Vec<u8>) -> SharedBytes {
        SharedBytes(Arc::new(SharedInner {
            len: bytes.len(),
            bytes: Arc::new(Mutex::new(bytes)),
            region_hint: AtomicU64::new(0),
        }))
    }

    /// Locks the bytes.
    #[inline]
    pub fn lock(&self) -> MappedMutexGuard<'_, [u8]> {
        MutexGuard::map(self.0.bytes.lock(), |v| v.as_mut_slice())
    }

    /// How many bytes there are (taking no lock).
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Locks the bytes if no one holds them, until the [`HeldBytes`] is
    /// dropped: compiled code reads and writes them in place meanwhile, as
    /// its own. Whoever holds them must not lock them again (through this
    /// handle, a region over them or a map) before letting go: the lock is
    /// not reentrant.
    #[inline]
    pub fn try_hold(&self) -> Option<HeldBytes> {
        self.0.bytes.try_lock_arc().map(HeldBytes)
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.lock().to_vec()
    }

    /// Overwrites the bytes (lengths must match; extra input is ignored).
    pub fn copy_from(&self, src: &[u8]) {
        let mut b = self.lock();
        let n = b.len().min(src.len());
        b[..n].copy_from_slice(&src[..n]);
    }

    /// Whether two handles share the same bytes.
    #[inline]
    pub fn same(&self, other: &SharedBytes) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The identity of the shared bytes (the same for every handle to them),
    /// for indexing regions by the map value they cover.
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Remembers that region `index` of space `space` covers the bytes.
    #[inline]
    fn set_region_hint(&self, space: u32, index: usize) {
        // A region index past 32 bits is not remembered (and cannot
        // occur: region addresses have 32 bits for it).
        if let Ok(index) = u32::try_from(index) {
            let hint = (space as u64) << 32 | index as u64;
            self.0.region_hint.store(hint, Ordering::Relaxed);
        }
    }
}

/// Shared bytes locked by [`SharedBytes::try_hold`], unlocked on drop.
pub struct HeldBytes(parking_lot::lock_api::ArcMutexGuard<RawMutex, Vec<u8>>);

impl HeldBytes {
    /// The bytes.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl std::fmt::Debug for HeldBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldBytes({} bytes)", self.0.len())
    }
}

/// Hashes a [`SharedBytes::identity`]: an allocation address, already
/// unique, so mixing its bits once is enough (SipHash would cost more than
/// the lookup it serves).
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Allocations are 8-byte aligned: drop the bits that never vary.
        self.0 = ((n as u64) >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What one program lookup of a map value was: which map, key and CPU,
/// and the map's value generation then ([`crate::maps::Map::lookup_tag`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LookupTag {
    /// The map's id.
    pub(crate) map: u32,
    /// The CPU the value is for (per-CPU maps).
    pub(crate) cpu: u32,
    /// The key, as a small key of the map's key size.
    pub(crate) key: u128,
    /// The map's value generation.
    pub(crate) generation: u64,
}

/// A lookup [`AddressSpace::cached_lookup`] remembers: its tag, and the
/// region (index and bytes' identity) of the value it returned.
#[derive(Debug, Clone, Copy, Default)]
struct CachedLookup {
    tag: LookupTag,
    region: usize,
    identity: usize,
}

/// Sets of lookups an address space remembers, by a hash of map and
/// key; each set holds the two most recent. 256 lookups in all (12 KiB,
/// made at a space's first lookup) remember most of the keys of a loop
/// over 64 keys (95% of 0..64, 82% of 64 random ones).
const LOOKUP_SETS: usize = 128;

/// Where a region's bytes live.
#[derive(Debug)]
pub enum Backing {
    /// Owned by the run (stack, copies of inputs).
    Owned(Vec<u8>),
    /// Shared with a map.
    Shared(SharedBytes),
}

/// One contiguous, bounds-checked range of bytes.
#[derive(Debug)]
pub struct Region {
    /// What the region is.
    pub kind: RegionKind,
    /// Whether stores are allowed.
    pub writable: bool,
    /// The bytes.
    pub backing: Backing,
    len: usize,
}

impl Region {
    /// Size in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of the region's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        match &self.backing {
            Backing::Owned(v) => v.clone(),
            Backing::Shared(s) => s.to_vec(),
        }
    }
}

/// The regions of one program run.
#[derive(Debug)]
pub struct AddressSpace {
    regions: Vec<Region>,
    /// Region index of each region over shared bytes, by their identity, so
    /// that a lookup of a map value already in the address space finds its
    /// region without a search (a program looking up the same element in a
    /// loop would otherwise pay for a scan of every region each time).
    shared: HashMap<usize, usize, BuildHasherDefault<IdentityHasher>>,
    /// Whether `shared` names a region for all bytes any region shares, so
    /// that bytes it does not know are in no region, without a scan. False
    /// once [`AddressSpace::region_mut`] handed out a region (whose backing
    /// the caller may have replaced), until no region is left. Without it
    /// each value a run looks up for the first time would scan every
    /// region: quadratic in the values a run touches.
    shared_indexed: bool,
    /// See [`AddressSpace::layout_version`].
    layout: u64,
    /// Recent map lookups and the regions of their values, so a program
    /// looking up the same keys again skips the map (its lock and hash
    /// probe) while the map's values stay put. Empty until the first.
    lookups: Vec<[CachedLookup; 2]>,
    /// This space's number, unique among the spaces of the process (until
    /// 2^32 of them were made): the region hints of shared bytes name it.
    id: u32,
}

impl Default for AddressSpace {
    fn default() -> AddressSpace {
        // Ids start at 1: a region hint of 0 names no space.
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);
        let id = match NEXT_ID.fetch_add(1, Ordering::Relaxed) {
            // After 2^32 spaces ids repeat (skipping 0); a repeated id
            // only makes a region hint worth checking, never trusted.
            0 => NEXT_ID.fetch_add(1, Ordering::Relaxed),
            id => id,
        };
        AddressSpace {
            regions: Vec::new(),
            shared: HashMap::default(),
            shared_indexed: true,
            layout: 0,
            lookups: Vec::new(),
            id,
        }
    }
}

/// Owned bytes of a region, as [`AddressSpace::owned_view`] gives them.
#[derive(Debug, Clone, Copy)]
pub struct OwnedView {
    /// The first byte.
    pub ptr: *mut u8,
    /// How many bytes accesses may reach.
    pub len: usize,
    /// Whether stores are allowed.
    pub writable: bool,
}

/// The base address of region `index`: region 0 starts at 4 GiB so that no
/// valid pointer is null or a small integer.
pub const fn region_base(index: usize) -> u64 {
    ((index as u64) + 1) << REGION_SHIFT
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> AddressSpace {
        AddressSpace::default()
    }

    /// Adds a region and returns its base address. Regions are limited to
    /// 4 GiB each by the address layout.
    pub fn add(&mut self, kind: RegionKind, writable: bool, data: Vec<u8>) -> u64 {
        let len = data.len();
        self.push(Region {
            kind,
            writable,
            backing: Backing::Owned(data),
            len,
        })
    }

    /// Adds a region over bytes shared with a map and returns its base address.
    pub fn add_shared(&mut self, kind: RegionKind, writable: bool, data: SharedBytes) -> u64 {
        let len = data.len();
        // The first region over the bytes is the one lookups return.
        let index = self.regions.len();
        if let std::collections::hash_map::Entry::Vacant(e) = self.shared.entry(data.identity()) {
            e.insert(index);
            data.set_region_hint(self.id, index);
        }
        self.push(Region {
            kind,
            writable,
            backing: Backing::Shared(data),
            len,
        })
    }

    fn push(&mut self, region: Region) -> u64 {
        self.changed();
        self.regions.push(region);
        region_base(self.regions.len() - 1)
    }

    /// The base address of the region sharing `data`, if one exists.
    #[inline]
    pub fn find_shared(&self, data: &SharedBytes) -> Option<u64> {
        // The hint the bytes carry, if this space left it, names the
        // region at once; it is checked, since the space may have dropped
        // or replaced that region since (a truncate, `region_mut`).
        let hint = data.0.region_hint.load(Ordering::Relaxed);
        if hint >> 32 == self.id as u64 {
            let index = hint as u32 as usize;
            if let Some(Region {
                backing: Backing::Shared(s),
                ..
            }) = self.regions.get(index)
            {
                if s.same(data) {
                    return Some(region_base(index));
                }
            }
        }
        self.find_shared_indexed(data)
    }

    /// [`AddressSpace::find_shared`] by the index of shared regions (or a
    /// scan), leaving the hint for the next time.
    #[inline(never)]
    fn find_shared_indexed(&self, data: &SharedBytes) -> Option<u64> {
        let shares = |r: &Region| matches!(&r.backing, Backing::Shared(s) if s.same(data));
        let index = match self.shared.get(&data.identity()) {
            // The index is a hint: an embedder may have replaced the
            // region's backing through `region_mut`, so it is checked.
            Some(&index) if self.regions.get(index).is_some_and(shares) => index,
            _ if self.shared_indexed => return None,
            _ => self.regions.iter().position(shares)?,
        };
        data.set_region_hint(self.id, index);
        Some(region_base(index))
    }

    /// The value address a lookup with `tag` returned before, if this
    /// space remembers it and the region is still that value's. The tag's
    /// generation vouches that the map still holds those bytes under its
    /// key; the region check, that the space still has them where it had.
    #[inline(always)]
    pub(crate) fn cached_lookup(&self, tag: &LookupTag) -> Option<u64> {
        let [newer, older] = self.lookups.get(Self::lookup_set(tag))?;
        let cached = if newer.tag == *tag {
            newer
        } else if older.tag == *tag {
            older
        } else {
            return None;
        };
        match self.regions.get(cached.region)? {
            Region {
                backing: Backing::Shared(s),
                ..
            } if s.identity() == cached.identity => Some(region_base(cached.region)),
            _ => None,
        }
    }

    /// Remembers that the lookup with `tag` returned `addr`, the base of a
    /// region over map value bytes (others are not remembered).
    pub(crate) fn remember_lookup(&mut self, tag: LookupTag, addr: u64) {
        let region = (addr >> REGION_SHIFT).wrapping_sub(1) as usize;
        let Some(Region {
            backing: Backing::Shared(s),
            ..
        }) = self.regions.get(region)
        else {
            return;
        };
        let new = CachedLookup {
            tag,
            region,
            identity: s.identity(),
        };
        if self.lookups.is_empty() {
            self.lookups.resize(LOOKUP_SETS, Default::default());
        }
        let set = &mut self.lookups[Self::lookup_set(&tag)];
        let same_key =
            |c: &CachedLookup| (c.tag.map, c.tag.cpu, c.tag.key) == (tag.map, tag.cpu, tag.key);
        // The newest first; an older lookup of the same key gives way.
        if !same_key(&set[0]) {
            set[1] = set[0];
        }
        set[0] = new;
    }

    /// The set of `tag`'s lookup: the high bits of a hash of map and key
    /// (not the generation: a newer lookup of a key replaces the older).
    #[inline(always)]
    fn lookup_set(tag: &LookupTag) -> usize {
        // The CPU is left out: it rarely changes, and the tag compares it.
        let word =
            tag.key as u64 ^ ((tag.key >> 64) as u64).rotate_left(32) ^ (tag.map as u64) << 40;
        // Multiply, fold, multiply: keys in strides (ids times 16, say)
        // still spread over the sets.
        let h = word.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = (h ^ h >> 32).wrapping_mul(0xd6e8_feb8_6659_fd93);
        (h >> (64 - LOOKUP_SETS.trailing_zeros())) as usize
    }

    /// Removes all regions after the first `keep`. The allocations stay,
    /// for the next regions added.
    pub fn truncate(&mut self, keep: usize) {
        if keep >= self.regions.len() {
            return;
        }
        self.changed();
        self.regions.truncate(keep);
        if keep == 0 {
            self.shared.clear();
            self.shared_indexed = true;
        } else if !self.shared.is_empty() {
            self.shared.retain(|_, index| *index < keep);
        }
    }

    /// Whether regions `first..` are all map values over shared bytes.
    pub(crate) fn only_map_values_from(&self, first: usize) -> bool {
        self.regions.get(first..).is_some_and(|rest| {
            rest.iter()
                .all(|r| r.kind == RegionKind::MapValue && matches!(r.backing, Backing::Shared(_)))
        })
    }

    /// Makes owned region `index` a writable [`RegionKind::Input`] copy of
    /// `bytes`, in its buffer, and returns its base address; `None` (and
    /// nothing done) when the region's bytes are not owned. The layout
    /// version changes only when the bytes moved, or the region changed
    /// size or kind, so a space refilled with input after input of one
    /// length keeps its layout.
    pub(crate) fn refill_owned(&mut self, index: usize, bytes: &[u8]) -> Option<u64> {
        let region = self.regions.get_mut(index)?;
        let Backing::Owned(v) = &mut region.backing else {
            return None;
        };
        let before = (
            v.as_ptr(),
            v.len(),
            region.len,
            region.kind,
            region.writable,
        );
        v.clear();
        v.extend_from_slice(bytes);
        region.kind = RegionKind::Input;
        region.writable = true;
        region.len = bytes.len();
        let after = (
            v.as_ptr(),
            v.len(),
            region.len,
            region.kind,
            region.writable,
        );
        if before != after {
            self.changed();
        }
        // An owned region is in no index of shared regions.
        Some(region_base(index))
    }

    /// Puts `bytes` in owned region `index` as a writable
    /// [`RegionKind::Input`] of their length, and returns the bytes it had;
    /// `Err(bytes)` when the region's bytes are not owned.
    pub(crate) fn swap_owned(&mut self, index: usize, bytes: Vec<u8>) -> Result<Vec<u8>, Vec<u8>> {
        let Some(Region {
            kind,
            writable,
            len,
            backing: Backing::Owned(v),
        }) = self.regions.get_mut(index)
        else {
            return Err(bytes);
        };
        *kind = RegionKind::Input;
        *writable = true;
        *len = bytes.len();
        let old = std::mem::replace(v, bytes);
        self.changed();
        Ok(old)
    }

    /// Takes the bytes of region `index` if the run owns them, leaving it empty
    /// (so buffers can be reused across runs).
    pub fn take_owned(&mut self, index: usize) -> Option<Vec<u8>> {
        self.changed();
        let region = self.regions.get_mut(index)?;
        match &mut region.backing {
            Backing::Owned(v) => {
                region.len = 0;
                Some(std::mem::take(v))
            }
            Backing::Shared(_) => None,
        }
    }

    /// Copies region `index`'s bytes into `out` (lengths must match).
    pub fn copy_region_to(&self, index: usize, out: &mut [u8]) -> bool {
        let Some(region) = self.regions.get(index) else {
            return false;
        };
        match &region.backing {
            Backing::Owned(v) if v.len() == out.len() => out.copy_from_slice(v),
            Backing::Shared(s) if s.lock().len() == out.len() => out.copy_from_slice(&s.lock()),
            _ => return false,
        }
        true
    }

    /// Zeroes the last `dirty` bytes of owned region `index` in place when
    /// it is `len` bytes, all there, so that its layout stays; otherwise
    /// resets it to `len` zero bytes ([`AddressSpace::reset_owned`]). A
    /// live stack frame whose lower bytes no one wrote is entered again
    /// this way.
    pub(crate) fn rezero_owned(&mut self, index: usize, len: usize, dirty: usize) {
        if let Some(Region {
            len: region_len,
            backing: Backing::Owned(v),
            ..
        }) = self.regions.get_mut(index)
        {
            if *region_len == len && v.len() == len {
                if dirty > 0 {
                    v[len - dirty.min(len)..].fill(0);
                }
                return;
            }
        }
        self.reset_owned(index, len);
    }

    /// Resizes owned region `index` to `len` bytes, all zero: stack frames
    /// come and go this way, keeping their buffers' allocations.
    pub(crate) fn reset_owned(&mut self, index: usize, len: usize) {
        self.changed();
        if let Some(region) = self.regions.get_mut(index) {
            if let Backing::Owned(v) = &mut region.backing {
                v.clear();
                v.resize(len, 0);
                region.len = len;
            }
        }
    }

    /// Copies `bytes` to `addr` even in a read-only region: the runtime
    /// writing what the program may only read (a callback's key).
    pub(crate) fn write_as_runtime(&mut self, addr: u64, bytes: &[u8]) -> Result<(), FaultKind> {
        let (i, off) = self.locate(addr, bytes.len())?;
        match &mut self.regions[i].backing {
            Backing::Owned(v) => v[off..off + bytes.len()].copy_from_slice(bytes),
            Backing::Shared(s) => s.lock()[off..off + bytes.len()].copy_from_slice(bytes),
        }
        Ok(())
    }

    /// Number of regions.
    #[inline]
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Whether there are no regions.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The region at `index`.
    #[inline]
    pub fn region(&self, index: usize) -> Option<&Region> {
        self.regions.get(index)
    }

    /// The region at `index`, mutably.
    #[inline]
    pub fn region_mut(&mut self, index: usize) -> Option<&mut Region> {
        // The caller may change anything about the region.
        self.changed();
        self.shared_indexed = false;
        self.regions.get_mut(index)
    }

    /// Where the bytes of region `index` are when the space owns them
    /// (`None` for shared bytes), for compiled code that reads and writes
    /// them in place: it changes nothing about the region, so the layout
    /// version stays.
    #[inline]
    pub fn owned_view(&mut self, index: usize) -> Option<OwnedView> {
        let region = self.regions.get_mut(index)?;
        match &mut region.backing {
            Backing::Owned(v) => Some(OwnedView {
                ptr: v.as_mut_ptr(),
                // An embedder may have left a region longer than its bytes.
                len: region.len.min(v.len()),
                writable: region.writable,
            }),
            Backing::Shared(_) => None,
        }
    }

    /// A number that changes whenever a region is added or removed, or its
    /// bytes may have moved or changed size (a frame entered or left, a
    /// region handed out by [`AddressSpace::region_mut`]): compiled code
    /// that keeps host pointers to owned regions' bytes looks again only
    /// when it changed. Loads, stores and the bytes of shared regions do
    /// not change it. Each change adds exactly 1, so a version one past a
    /// known one, with one region more, means that region was appended
    /// and nothing else moved.
    #[inline]
    pub fn layout_version(&self) -> u64 {
        self.layout
    }

    #[inline(always)]
    fn changed(&mut self) {
        self.layout = self.layout.wrapping_add(1);
    }

    /// The region index and offset of `addr`, if `len` bytes from it lie in one region.
    #[inline(always)]
    fn locate(&self, addr: u64, len: usize) -> Result<(usize, usize), FaultKind> {
        let index = (addr >> REGION_SHIFT).wrapping_sub(1) as usize;
        let offset = (addr & 0xffff_ffff) as usize;
        let Some(region) = self.regions.get(index) else {
            return Err(FaultKind::Unmapped);
        };
        // checked: `len` comes from program registers (helper sizes).
        if offset.checked_add(len).is_none_or(|end| end > region.len) {
            return Err(FaultKind::OutOfBounds {
                region: region.kind,
                size: region.len,
            });
        }
        Ok((index, offset))
    }

    /// Copies `len` bytes at `addr`.
    pub fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, FaultKind> {
        let (i, off) = self.locate(addr, len)?;
        Ok(match &self.regions[i].backing {
            Backing::Owned(v) => v[off..off + len].to_vec(),
            Backing::Shared(s) => s.lock()[off..off + len].to_vec(),
        })
    }

    /// The `len` bytes at `addr`: borrowed when the run owns them (a key
    /// on the stack), else copied; map helpers read keys this way.
    pub fn read_borrowed(&self, addr: u64, len: usize) -> Result<Cow<'_, [u8]>, FaultKind> {
        let (i, off) = self.locate(addr, len)?;
        Ok(match &self.regions[i].backing {
            Backing::Owned(v) => Cow::Borrowed(&v[off..off + len]),
            Backing::Shared(s) => Cow::Owned(s.lock()[off..off + len].to_vec()),
        })
    }

    /// The `len` bytes at `addr` if the run owns them (a key on the
    /// stack), borrowed; `None` for shared bytes or an access that faults,
    /// which [`AddressSpace::read_borrowed`] then copies or explains. Map
    /// helpers read keys this way first: no copy, no `Result` to build.
    #[inline(always)]
    pub(crate) fn owned_bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let index = (addr >> REGION_SHIFT).wrapping_sub(1) as usize;
        let off = (addr & 0xffff_ffff) as usize;
        match self.regions.get(index)? {
            Region {
                backing: Backing::Owned(v),
                len: region_len,
                ..
            } if off.checked_add(len)? <= *region_len => v.get(off..off + len),
            _ => None,
        }
    }

    /// Reads the `N` bytes at `addr` and, if `f` returns new bytes, stores
    /// them there, under one lookup (and one lock of shared bytes): the
    /// read-modify-write of atomic instructions. Faults as a load followed
    /// by a store would: a read-only region faults only if `f` stores.
    pub fn modify<const N: usize>(
        &mut self,
        addr: u64,
        f: impl FnOnce([u8; N]) -> Option<[u8; N]>,
    ) -> Result<[u8; N], FaultKind> {
        let (i, off) = self.locate(addr, N)?;
        let Region {
            kind,
            writable,
            backing,
            len,
        } = &mut self.regions[i];
        let mut guard;
        let bytes: &mut [u8] = match backing {
            Backing::Owned(v) => v,
            Backing::Shared(s) => {
                guard = s.lock();
                &mut guard[..]
            }
        };
        // Shorter bytes than the region says (an embedder replaced them
        // through `region_mut`) fault as past the region's end.
        let Some(bytes) = bytes.get_mut(off..off + N) else {
            return Err(FaultKind::OutOfBounds {
                region: *kind,
                size: *len,
            });
        };
        let mut old = [0u8; N];
        old.copy_from_slice(bytes);
        match f(old) {
            Some(_) if !*writable => Err(FaultKind::ReadOnly { region: *kind }),
            Some(new) => {
                bytes.copy_from_slice(&new);
                Ok(old)
            }
            None => Ok(old),
        }
    }

    /// The hot path of an atomic instruction: the read-modify-write of
    /// the `N` bytes at `addr` (a little-endian integer, zero-extended to
    /// 64 bits for `f`, which returns the value to store, if any), in a
    /// writable region. `None` when the access would fault or the region
    /// is read-only, before `f` is called: [`AddressSpace::modify`] then
    /// does it again and says why (a read-only region faults only if `f`
    /// stores). No `Result` is built here, so the code is small.
    #[inline(always)]
    pub(crate) fn modify_writable<const N: usize>(
        &mut self,
        addr: u64,
        f: impl FnOnce(u64) -> Option<u64>,
    ) -> Option<u64> {
        let index = (addr >> REGION_SHIFT).wrapping_sub(1) as usize;
        let off = (addr & 0xffff_ffff) as usize;
        let region = self.regions.get_mut(index)?;
        if !region.writable || off + N > region.len {
            return None;
        }
        let mut guard;
        let bytes: &mut [u8] = match &mut region.backing {
            Backing::Owned(v) => v,
            Backing::Shared(s) => {
                guard = s.lock();
                &mut guard[..]
            }
        };
        let word: &mut [u8; N] = bytes.get_mut(off..off + N)?.try_into().ok()?;
        let mut old = [0u8; 8];
        old[..N].copy_from_slice(word);
        let old = u64::from_le_bytes(old);
        if let Some(new) = f(old) {
            word.copy_from_slice(&new.to_le_bytes()[..N]);
        }
        Some(old)
    }

    /// Copies `bytes` to `addr`.
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), FaultKind> {
        let (i, off) = self.locate(addr, bytes.len())?;
        let region = &mut self.regions[i];
        if !region.writable {
            return Err(FaultKind::ReadOnly {
                region: region.kind,
            });
        }
        match &mut region.backing {
            Backing::Owned(v) => v[off..off + bytes.len()].copy_from_slice(bytes),
            Backing::Shared(s) => s.lock()[off..off + bytes.len()].copy_from_slice(bytes),
        }
        Ok(())
    }

    /// Zeroes `len` bytes at `addr`, without a buffer of `len` bytes (helpers
    /// take the length from the program, which may ask for any).
    pub fn zero(&mut self, addr: u64, len: usize) -> Result<(), FaultKind> {
        let (i, off) = self.locate(addr, len)?;
        let region = &mut self.regions[i];
        if !region.writable {
            return Err(FaultKind::ReadOnly {
                region: region.kind,
            });
        }
        match &mut region.backing {
            Backing::Owned(v) => v[off..off + len].fill(0),
            Backing::Shared(s) => s.lock()[off..off + len].fill(0),
        }
        Ok(())
    }

    /// The region kind and a copy of the bytes from `addr` to the end of its
    /// region, at most `max` of them (for NUL-terminated strings).
    pub fn read_tail(&self, addr: u64, max: usize) -> Result<(RegionKind, Vec<u8>), FaultKind> {
        let (i, off) = self.locate(addr, 0)?;
        let region = &self.regions[i];
        let end = region.len.min(off.saturating_add(max));
        Ok((
            region.kind,
            match &region.backing {
                Backing::Owned(v) => v[off..end].to_vec(),
                Backing::Shared(s) => s.lock()[off..end].to_vec(),
            },
        ))
    }

    /// Loads a little-endian value of `N` bytes.
    #[inline(always)]
    pub fn load<const N: usize>(&self, addr: u64) -> Result<[u8; N], FaultKind> {
        let index = (addr >> REGION_SHIFT).wrapping_sub(1) as usize;
        let off = (addr & 0xffff_ffff) as usize;
        // The hot path: one lookup and one bounds check; errors are built cold.
        if let Some(Region {
            backing: Backing::Owned(v),
            ..
        }) = self.regions.get(index)
        {
            if let Some(b) = v.get(off..off + N) {
                let mut out = [0u8; N];
                out.copy_from_slice(b);
                return Ok(out);
            }
        }
        self.load_slow(addr)
    }

    #[cold]
    fn load_slow<const N: usize>(&self, addr: u64) -> Result<[u8; N], FaultKind> {
        let (i, off) = self.locate(addr, N)?;
        let mut out = [0u8; N];
        match &self.regions[i].backing {
            Backing::Owned(v) => out.copy_from_slice(&v[off..off + N]),
            Backing::Shared(s) => out.copy_from_slice(&s.lock()[off..off + N]),
        }
        Ok(out)
    }

    /// Stores `N` bytes.
    #[inline(always)]
    pub fn store<const N: usize>(&mut self, addr: u64, bytes: [u8; N]) -> Result<(), FaultKind> {
        let index = (addr >> REGION_SHIFT).wrapping_sub(1) as usize;
        let off = (addr & 0xffff_ffff) as usize;
        if let Some(Region {
            backing: Backing::Owned(v),
            writable: true,
            ..
        }) = self.regions.get_mut(index)
        {
            if let Some(b) = v.get_mut(off..off + N) {
                b.copy_from_slice(&bytes);
                return Ok(());
            }
        }
        self.store_slow(addr, bytes)
    }

    #[cold]
    fn store_slow<const N: usize>(&mut self, addr: u64, bytes: [u8; N]) -> Result<(), FaultKind> {
        let (i, off) = self.locate(addr, N)?;
        let region = &mut self.regions[i];
        if !region.writable {
            return Err(FaultKind::ReadOnly {
                region: region.kind,
            });
        }
        match &mut region.backing {
            Backing::Owned(v) => v[off..off + N].copy_from_slice(&bytes),
            Backing::Shared(s) => s.lock()[off..off + N].copy_from_slice(&bytes),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_bounded_by_their_region() {
        let mut space = AddressSpace::new();
        let a = space.add(RegionKind::Input, true, vec![1, 2, 3, 4]);
        let b = space.add(RegionKind::Context, false, vec![9; 8]);
        assert_eq!(space.load::<2>(a + 2).unwrap(), [3, 4]);
        assert!(matches!(
            space.load::<4>(a + 2),
            Err(FaultKind::OutOfBounds { .. })
        ));
        assert!(matches!(
            space.store::<1>(b, [0]),
            Err(FaultKind::ReadOnly { .. })
        ));
        assert!(matches!(space.load::<1>(0), Err(FaultKind::Unmapped)));
        assert!(matches!(space.load::<1>(a - 1), Err(FaultKind::Unmapped)));
        space.store::<2>(a, [7, 7]).unwrap();
        assert_eq!(space.read(a, 4).unwrap(), vec![7, 7, 3, 4]);
        let shared = SharedBytes::new(vec![0; 4]);
        let c = space.add_shared(RegionKind::MapValue, true, shared.clone());
        space.store::<4>(c, 5u32.to_le_bytes()).unwrap();
        assert_eq!(shared.to_vec(), 5u32.to_le_bytes(), "stores reach the map");
        assert_eq!(space.find_shared(&shared), Some(c));
    }

    #[test]
    fn the_layout_version_changes_when_regions_may_move_and_only_then() {
        let mut space = AddressSpace::new();
        let mut last = space.layout_version();
        let mut changed = |space: &AddressSpace| {
            let now = space.layout_version();
            let differs = now != last;
            last = now;
            differs
        };
        let a = space.add(RegionKind::Input, true, vec![0; 8]);
        assert!(changed(&space), "add");
        space.store::<4>(a, [1; 4]).unwrap();
        space.write(a + 4, &[2; 4]).unwrap();
        space.load::<8>(a).unwrap();
        let shared = SharedBytes::new(vec![0; 4]);
        assert!(!changed(&space), "loads and stores");
        let v = space.add_shared(RegionKind::MapValue, true, shared.clone());
        assert!(changed(&space), "add_shared");
        space.store::<4>(v, [3; 4]).unwrap();
        shared.copy_from(&[4; 4]);
        assert_eq!(space.find_shared(&shared), Some(v));
        assert!(!changed(&space), "shared bytes and lookups");
        space.reset_owned(0, 4);
        assert!(changed(&space), "a frame-style resize");
        let _ = space.region_mut(0);
        assert!(changed(&space), "region_mut");
        space.take_owned(0);
        assert!(changed(&space), "take_owned");
        space.truncate(1);
        assert!(changed(&space), "truncate");
        space.truncate(1);
        assert!(!changed(&space), "a truncate that removes nothing");
        space.add(RegionKind::Input, true, vec![0; 4]);
        assert!(changed(&space), "add");
        space.refill_owned(1, &[1, 2, 3, 4]);
        assert!(!changed(&space), "refilling in place with as many bytes");
        space.refill_owned(1, &[1, 2]);
        assert!(changed(&space), "refilling with fewer bytes");
        space.rezero_owned(1, 2, 1);
        assert!(!changed(&space), "zeroing the top of a whole region");
        assert_eq!(space.read(region_base(1), 2).unwrap(), vec![1, 0]);
        space.rezero_owned(1, 4, 1);
        assert!(changed(&space), "growing it");
        let _ = space.swap_owned(1, vec![5; 4]);
        assert!(changed(&space), "swapping its bytes");
    }

    #[test]
    fn find_shared_finds_each_spaces_own_region_whatever_the_hint_says() {
        let value = SharedBytes::new(vec![0; 8]);
        let other = SharedBytes::new(vec![0; 8]);
        let (mut a, mut b) = (AddressSpace::new(), AddressSpace::new());
        a.add(RegionKind::Input, true, vec![0; 4]);
        let in_a = a.add_shared(RegionKind::MapValue, true, value.clone());
        // The same bytes at another index of another space: each space's
        // lookups, in any order, find its own region.
        b.add(RegionKind::Input, true, vec![0; 4]);
        b.add_shared(RegionKind::MapValue, true, other.clone());
        let in_b = b.add_shared(RegionKind::MapValue, true, value.clone());
        assert_ne!(in_a, in_b);
        for _ in 0..2 {
            assert_eq!(a.find_shared(&value), Some(in_a));
            assert_eq!(b.find_shared(&value), Some(in_b));
        }
        // The region the hint names is gone, then over other bytes.
        a.truncate(1);
        assert_eq!(a.find_shared(&value), None);
        let other_in_a = a.add_shared(RegionKind::MapValue, true, other.clone());
        assert_eq!(other_in_a, in_a, "the same index, other bytes");
        assert_eq!(a.find_shared(&value), None);
        let again = a.add_shared(RegionKind::MapValue, true, value.clone());
        assert_eq!(a.find_shared(&value), Some(again));
        assert_eq!(a.find_shared(&other), Some(other_in_a));
        // An embedder swaps the bytes of a region: the hint no longer
        // holds, and the bytes are found where they now are.
        let index = (again >> REGION_SHIFT) as usize - 1;
        a.region_mut(index).unwrap().backing = Backing::Owned(vec![0; 8]);
        assert_eq!(a.find_shared(&value), None);
        a.region_mut(0).unwrap().backing = Backing::Shared(value.clone());
        assert_eq!(a.find_shared(&value), Some(region_base(0)));
        assert_eq!(b.find_shared(&value), Some(in_b));
    }

    #[test]
    fn modify_is_one_read_modify_write_checked_like_a_load_and_a_store() {
        let mut space = AddressSpace::new();
        let shared = SharedBytes::new(5u64.to_le_bytes().to_vec());
        let v = space.add_shared(RegionKind::MapValue, true, shared.clone());
        let ro = space.add_shared(RegionKind::MapValue, false, SharedBytes::new(vec![7; 8]));
        let add = |b: [u8; 8]| Some((u64::from_le_bytes(b) + 3).to_le_bytes());
        assert_eq!(space.modify::<8>(v, add).unwrap(), 5u64.to_le_bytes());
        assert_eq!(
            shared.to_vec(),
            8u64.to_le_bytes(),
            "the map's bytes changed"
        );
        assert!(matches!(
            space.modify::<8>(v + 4, add),
            Err(FaultKind::OutOfBounds { size: 8, .. })
        ));
        assert!(matches!(
            space.modify::<8>(ro, add),
            Err(FaultKind::ReadOnly { .. })
        ));
        assert_eq!(space.modify::<8>(ro, |_| None).unwrap(), [7; 8]);
        // Bytes shorter than their region (replaced by an embedder) fault
        // instead of panicking.
        let index = (v >> REGION_SHIFT) as usize - 1;
        space.region_mut(index).unwrap().backing = Backing::Shared(SharedBytes::new(vec![0; 4]));
        assert!(matches!(
            space.modify::<8>(v, add),
            Err(FaultKind::OutOfBounds { .. })
        ));
    }

    #[test]
    fn a_remembered_lookup_stands_only_while_its_region_holds_the_same_bytes() {
        let mut space = AddressSpace::new();
        let tag = |key: u128, generation: u64| LookupTag {
            map: 1,
            cpu: 0,
            key,
            generation,
        };
        let value = SharedBytes::new(vec![0; 8]);
        space.add(RegionKind::Input, true, vec![0; 4]);
        let v = space.add_shared(RegionKind::MapValue, true, value.clone());
        assert_eq!(
            space.cached_lookup(&tag(5, 0)),
            None,
            "nothing remembered yet"
        );
        space.remember_lookup(tag(5, 0), v);
        assert_eq!(space.cached_lookup(&tag(5, 0)), Some(v));
        assert_eq!(space.cached_lookup(&tag(5, 1)), None, "another generation");
        assert_eq!(space.cached_lookup(&tag(6, 0)), None, "another key");
        // A region over owned bytes is not remembered.
        space.remember_lookup(tag(7, 0), region_base(0));
        assert_eq!(space.cached_lookup(&tag(7, 0)), None);
        // The region is dropped, then its index reused for other bytes.
        space.truncate(1);
        assert_eq!(space.cached_lookup(&tag(5, 0)), None);
        let w = space.add_shared(RegionKind::MapValue, true, SharedBytes::new(vec![0; 8]));
        assert_eq!(w, v);
        assert_eq!(space.cached_lookup(&tag(5, 0)), None);
        // Three keys in one set: the two most recent are remembered.
        let mut keys = (0u128..).filter(|&k| AddressSpace::lookup_set(&tag(k, 0)) == 0);
        let (a, b, c) = (
            keys.next().unwrap(),
            keys.next().unwrap(),
            keys.next().unwrap(),
        );
        for k in [a, b, c] {
            space.remember_lookup(tag(k, 0), w);
        }
        assert_eq!(space.cached_lookup(&tag(a, 0)), None);
        assert_eq!(space.cached_lookup(&tag(b, 0)), Some(w));
        assert_eq!(space.cached_lookup(&tag(c, 0)), Some(w));
        // A newer lookup of a key replaces its older one, not the other key.
        space.remember_lookup(tag(c, 1), w);
        assert_eq!(space.cached_lookup(&tag(b, 0)), Some(w));
        assert_eq!(space.cached_lookup(&tag(c, 1)), Some(w));
    }

    #[test]
    fn modify_writable_declines_what_would_fault_before_calling_f() {
        let mut space = AddressSpace::new();
        let shared = SharedBytes::new(vec![1, 0, 0, 0, 2, 0, 0, 0]);
        let v = space.add_shared(RegionKind::MapValue, true, shared.clone());
        let ro = space.add_shared(RegionKind::MapValue, false, SharedBytes::new(vec![0; 8]));
        let stack = space.add(RegionKind::Stack, true, vec![0; 8]);
        let called = std::cell::Cell::new(0);
        let add = |old: u64| {
            called.set(called.get() + 1);
            Some(old + 0x1_0000_0001)
        };
        // 32 bits: the sum is cut to 32 bits; the next word is untouched.
        assert_eq!(space.modify_writable::<4>(v, add), Some(1));
        assert_eq!(shared.to_vec(), vec![2, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(space.modify_writable::<8>(v, add), Some(0x2_0000_0002));
        assert_eq!(shared.to_vec(), vec![3, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(space.modify_writable::<8>(stack, add), Some(0));
        assert_eq!(called.get(), 3);
        assert_eq!(space.modify_writable::<8>(v + 4, add), None, "past the end");
        assert_eq!(space.modify_writable::<4>(ro, add), None, "read-only");
        assert_eq!(space.modify_writable::<4>(0, add), None, "unmapped");
        assert_eq!(called.get(), 3, "f is not called when declining");
    }
}
