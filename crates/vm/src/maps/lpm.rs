//! Longest-prefix-match trie. Keys are a host-order `u32` prefix length
//! followed by the data bytes (network order), as in `struct bpf_lpm_trie_key`.

use std::collections::BTreeMap;

use bpfkit_abi::{errno, update_flags};

use super::{err, MapError};
use crate::memory::SharedBytes;

/// Entries keyed by (data masked to the prefix, prefix length).
#[derive(Default)]
pub(super) struct LpmTrie {
    entries: BTreeMap<(Vec<u8>, u32), SharedBytes>,
}

fn split(key: &[u8]) -> (u32, &[u8]) {
    let plen = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
    (plen, &key[4..])
}

fn mask(data: &[u8], plen: u32) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, &b)| {
            let bit = i as u32 * 8;
            if plen >= bit + 8 {
                b
            } else if plen <= bit {
                0
            } else {
                b & (0xffu8 << (8 - (plen - bit)))
            }
        })
        .collect()
}

fn encode(data: &[u8], plen: u32) -> Vec<u8> {
    let mut k = plen.to_ne_bytes().to_vec();
    k.extend_from_slice(data);
    k
}

impl LpmTrie {
    fn find(&self, key: &[u8]) -> Option<&SharedBytes> {
        let (plen, data) = split(key);
        let max = plen.min(data.len() as u32 * 8);
        (0..=max)
            .rev()
            .find_map(|p| self.entries.get(&(mask(data, p), p)))
    }

    pub(super) fn longest_match(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.find(key).map(SharedBytes::to_vec)
    }

    pub(super) fn longest_match_shared(&self, key: &[u8]) -> Option<SharedBytes> {
        if key.len() < 4 {
            return None;
        }
        self.find(key).cloned()
    }

    pub(super) fn update(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        mode: u64,
        max_entries: usize,
    ) -> Result<(), MapError> {
        let (plen, data) = split(key);
        if plen > data.len() as u32 * 8 {
            return err(
                errno::EINVAL,
                format!("prefix length {plen} exceeds {} bits", data.len() * 8),
            );
        }
        let k = (mask(data, plen), plen);
        match (self.entries.get(&k), mode) {
            (Some(_), update_flags::NOEXIST) => err(errno::EEXIST, "prefix already exists"),
            (None, update_flags::EXIST) => err(errno::ENOENT, "prefix does not exist"),
            (Some(v), _) => {
                v.copy_from(&value);
                Ok(())
            }
            (None, _) if self.entries.len() >= max_entries => err(
                errno::ENOSPC,
                format!("trie is full ({max_entries} prefixes)"),
            ),
            (None, _) => {
                self.entries.insert(k, SharedBytes::new(value));
                Ok(())
            }
        }
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> Result<(), MapError> {
        let (plen, data) = split(key);
        if plen > data.len() as u32 * 8 {
            return err(errno::EINVAL, "prefix length exceeds the key");
        }
        self.entries
            .remove(&(mask(data, plen), plen))
            .map(|_| ())
            .ok_or_else(|| MapError::new(errno::ENOENT, "prefix does not exist"))
    }

    pub(super) fn next_key(&self, key: Option<&[u8]>) -> Option<Vec<u8>> {
        let current = key.map(|k| {
            let (plen, data) = split(k);
            (mask(data, plen), plen)
        });
        let next = match current {
            Some(c) if self.entries.contains_key(&c) => self
                .entries
                .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                .next(),
            _ => self.entries.iter().next(),
        };
        next.map(|((data, plen), _)| encode(data, *plen))
    }
}
