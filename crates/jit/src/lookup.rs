//! The lookup cache: lookups of map values a run remembers in its context
//! block, so that generated code can give a value's address again without
//! calling into the machine, as an inline cache does. What makes that
//! right is the machine's [`LookupMemo`]: a lookup in the same map of the
//! same key gives the same address while the map's value generation stays
//! the one the lookup saw and no region of the run moves. The first holds
//! in the slot's check, the second because every move that is not one
//! region appended empties the cache (`Runtime::relayout`).

use bpfkit_vm::engine::LookupMemo;

/// Slots of the cache, direct-mapped by key.
pub(crate) const LOOKUP_SLOTS: usize = 128;

/// Call sites of `bpf_map_lookup_elem` that try the cache (the first ones
/// of a program).
pub(crate) const LOOKUP_SITES: usize = 16;

/// Multiplier of the slot hash (Fibonacci hashing: 2^64 / phi).
pub(crate) const SLOT_HASH: u64 = 0x9e37_79b9_7f4a_7c15;

/// The slot's index is the hash's top bits.
pub(crate) const SLOT_SHIFT: u8 = 64 - LOOKUP_SLOTS.trailing_zeros() as u8;

/// One remembered lookup, as generated code reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct LookupSlot {
    /// The map's handle (`r1` of the call).
    pub(crate) handle: u64,
    /// The key, zero-extended.
    pub(crate) key: u64,
    /// The key's size: 4 or 8.
    pub(crate) key_size: u64,
    /// The map's value generation when the lookup was made.
    pub(crate) generation: u64,
    /// Where the map keeps its value generation.
    pub(crate) generation_word: u64,
    /// The value's address the lookup gave.
    pub(crate) value: u64,
}

impl LookupSlot {
    /// The slot for a lookup with `handle` that gave `value`.
    pub(crate) fn new(handle: u64, value: u64, memo: &LookupMemo) -> LookupSlot {
        LookupSlot {
            handle,
            key: memo.key,
            key_size: u64::from(memo.key_size),
            generation: memo.generation,
            generation_word: memo.generation_word as u64,
            value,
        }
    }
}

/// The slot a key goes in (generated code computes the same).
pub(crate) fn slot_index(key: u64) -> usize {
    (key.wrapping_mul(SLOT_HASH) >> SLOT_SHIFT) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_keys_spread_over_the_slots() {
        // The keys a counter loop uses, 0..64, land in most slots.
        let mut used = [false; LOOKUP_SLOTS];
        for key in 0..LOOKUP_SLOTS as u64 {
            used[slot_index(key)] = true;
        }
        let n = used.iter().filter(|&&u| u).count();
        assert!(n > LOOKUP_SLOTS / 2, "{n} slots for 64 keys");
        assert!((0..1000u64).all(|k| slot_index(k) < LOOKUP_SLOTS));
    }
}
