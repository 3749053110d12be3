//! The [`Btf`] container: header and string table parsing, the type offset
//! index, validation, and lookups by id and by name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

mod header;
mod layout;
mod validate;

use header::Header;

use crate::endian::Endian;
use crate::index::NameIndex;
use crate::types::{Kind, Type};
use crate::{BtfError, TypeId};

/// `BTF_MAGIC`.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of the BTF header this crate writes (and the minimum it reads).
pub const BTF_HEADER_LEN: usize = 24;
/// The largest type id BTF can express.
pub const MAX_TYPE_ID: u32 = 0x7fff_ffff;
const TYPE_HEADER_LEN: usize = 12;

/// A parsed and validated BTF blob.
///
/// The blob is kept as is; `Btf` adds the offset of every type record (4
/// bytes per type) and decodes records when they are looked up. A split BTF
/// (kernel module BTF) refers to the base BTF it extends: its type ids and
/// string offsets continue where the base's end.
#[derive(Clone)]
pub struct Btf {
    data: Vec<u8>,
    endian: Endian,
    /// Absolute offset of every own type record in `data`, in id order.
    offsets: Vec<u32>,
    /// Id of the first own type: 1 for base BTF, `base.len()` for split BTF.
    first_id: TypeId,
    /// Absolute offset of the string table in `data`.
    str_start: usize,
    str_len: usize,
    /// Offset of this blob's first own string: 0, or the base's string table length.
    str_base: u32,
    base: Option<Arc<Btf>>,
    names: OnceLock<NameIndex>,
    /// Name lookups answered by scanning, before the index is built.
    scans: ScanCache,
}

/// Results of name scans by (name, exact), so that the many CO-RE records
/// naming one type cost one scan.
#[derive(Default)]
struct ScanCache(Mutex<HashMap<ScanKey, Vec<TypeId>>>);

/// A scanned name and whether it had to match exactly (else as a prefix).
type ScanKey = (Vec<u8>, bool);

impl Clone for ScanCache {
    fn clone(&self) -> ScanCache {
        let map = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        ScanCache(Mutex::new(map))
    }
}

/// Distinct names answered by a linear scan before the sorted index is built:
/// a scan of vmlinux costs well under a millisecond, the index about 15, so
/// a process that asks a few names (one object's CO-RE relocations) never
/// pays for the index, and one that asks many soon gets it.
const SCANS_BEFORE_INDEX: usize = 16;

impl Btf {
    /// Parses and validates a BTF blob of either byte order, copying it.
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        Btf::from_vec(bytes.to_vec())
    }

    /// Parses and validates a BTF blob of either byte order, taking ownership
    /// of it without copying.
    pub fn from_vec(data: Vec<u8>) -> Result<Btf, BtfError> {
        Btf::build(data, None)
    }

    /// Parses split BTF (such as `/sys/kernel/btf/<module>`) on top of `base`.
    pub fn parse_split(bytes: &[u8], base: Arc<Btf>) -> Result<Btf, BtfError> {
        Btf::build(bytes.to_vec(), Some(base))
    }

    fn build(data: Vec<u8>, base: Option<Arc<Btf>>) -> Result<Btf, BtfError> {
        let header = Header::parse(&data)?;
        if let Some(b) = &base {
            if b.endian != header.endian {
                return Err(hdr("split BTF byte order differs from its base"));
            }
        }
        let (first_id, str_base) = match &base {
            Some(b) => (
                b.len(),
                u32::try_from(b.strings_end()).map_err(|_| hdr("base string table too large"))?,
            ),
            None => (1, 0),
        };
        let mut btf = Btf {
            endian: header.endian,
            offsets: Vec::new(),
            first_id,
            str_start: header.str_start,
            str_len: header.str_len,
            str_base,
            base,
            names: OnceLock::new(),
            scans: ScanCache::default(),
            data,
        };
        btf.check_strings()?;
        btf.offsets = btf.index_types(header.type_start, header.type_end)?;
        if u64::from(first_id) + btf.offsets.len() as u64 > u64::from(MAX_TYPE_ID) + 1 {
            return Err(hdr("too many types"));
        }
        btf.validate_types()?;
        Ok(btf)
    }

    fn check_strings(&self) -> Result<(), BtfError> {
        let strs = &self.data[self.str_start..self.str_start + self.str_len];
        if self.base.is_none() {
            match strs.first() {
                None => return Err(str_err(0, "string table is empty")),
                Some(0) => {}
                Some(_) => return Err(str_err(0, "string table does not start with NUL")),
            }
        }
        if let Some(&last) = strs.last() {
            if last != 0 {
                return Err(str_err(
                    self.str_base + strs.len() as u32 - 1,
                    "string table does not end with NUL",
                ));
            }
        }
        if let Err(e) = std::str::from_utf8(strs) {
            return Err(str_err(
                self.str_base + e.valid_up_to() as u32,
                "string table is not UTF-8",
            ));
        }
        Ok(())
    }

    /// Walks the type section once, recording where each record starts.
    fn index_types(&self, start: usize, end: usize) -> Result<Vec<u32>, BtfError> {
        let d = &self.data[..end];
        // vmlinux averages ~37 bytes per record; reserving avoids regrowth.
        let mut offsets = Vec::with_capacity((end - start) / 32);
        let mut pos = start;
        while pos < end {
            let id = self
                .first_id
                .saturating_add(offsets.len().try_into().unwrap_or(u32::MAX));
            let info = self
                .endian
                .read_u32(d, pos + 4)
                .filter(|_| pos + TYPE_HEADER_LEN <= end);
            let Some(info) = info else {
                return Err(type_err(id, pos, "record header truncated"));
            };
            let kind_no = (info >> 24) & 0x1f;
            let kind = match Kind::from_u32(kind_no) {
                Some(k) if k != Kind::Void => k,
                _ => return Err(type_err(id, pos, format!("unknown kind {kind_no}"))),
            };
            let next = pos + TYPE_HEADER_LEN + kind.extra_len((info & 0xffff) as usize);
            if next > end {
                return Err(type_err(
                    id,
                    pos,
                    format!("{kind} record runs past the type section"),
                ));
            }
            offsets.push(pos as u32);
            pos = next;
        }
        Ok(offsets)
    }

    /// The byte order of the blob.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// This BTF's own string section (without a base's).
    pub fn string_section(&self) -> &[u8] {
        &self.data[self.str_start..self.str_start + self.str_len]
    }

    /// The blob this BTF was parsed from.
    pub fn raw_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The base BTF of a split BTF.
    pub fn base(&self) -> Option<&Arc<Btf>> {
        self.base.as_ref()
    }

    /// Number of type ids, including `void` (id 0) and, for split BTF, the
    /// base's types: valid ids are `0..len()`.
    pub fn len(&self) -> u32 {
        self.first_id + self.offsets.len() as u32
    }

    /// Whether there are no types besides `void`.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// Id of the first type defined by this blob (1, or the base's `len()`).
    pub fn first_id(&self) -> TypeId {
        self.first_id
    }

    /// Size of the pointers this BTF describes. BPF is a 64-bit target.
    pub fn pointer_size(&self) -> u32 {
        8
    }

    /// End of the combined string table (base plus own).
    pub(crate) fn strings_end(&self) -> usize {
        self.str_base as usize + self.str_len
    }

    fn own_type(&self, index: usize) -> Type<'_> {
        let off = self.offsets[index] as usize;
        let e = self.endian;
        let word = |at: usize| crate::endian::u32_in(e, &self.data, off + at);
        let info = word(4);
        let kind = Kind::from_u32((info >> 24) & 0x1f).unwrap_or(Kind::Void);
        let extra_start = off + TYPE_HEADER_LEN;
        let extra_end = extra_start + kind.extra_len((info & 0xffff) as usize);
        Type {
            btf: self,
            id: self.first_id + index as u32,
            kind,
            name_off: word(0),
            info,
            size_or_type: word(8),
            extra: self.data.get(extra_start..extra_end).unwrap_or(&[]),
        }
    }

    fn kind_of(&self, id: TypeId) -> Option<Kind> {
        if id == 0 {
            return Some(Kind::Void);
        }
        if id < self.first_id {
            return self.base.as_ref()?.kind_of(id);
        }
        let off = *self.offsets.get((id - self.first_id) as usize)? as usize;
        let info = self.endian.read_u32(&self.data, off + 4)?;
        Kind::from_u32((info >> 24) & 0x1f)
    }

    /// The type with id `id`; id 0 is `void`.
    pub fn type_by_id(&self, id: TypeId) -> Result<Type<'_>, BtfError> {
        if id == 0 {
            return Ok(Type {
                btf: self,
                id: 0,
                kind: Kind::Void,
                name_off: 0,
                info: 0,
                size_or_type: 0,
                extra: &[],
            });
        }
        if id < self.first_id {
            // The record lives in the base; names are resolved through `self`,
            // whose string lookup delegates to the base as well.
            let base = self.base.as_ref().ok_or(BtfError::NoSuchType { id })?;
            let t = base.type_by_id(id)?;
            return Ok(Type { btf: self, ..t });
        }
        let index = (id - self.first_id) as usize;
        if index >= self.offsets.len() {
            return Err(BtfError::NoSuchType { id });
        }
        Ok(self.own_type(index))
    }

    /// The types this blob defines, in id order (for split BTF, not the base's).
    pub fn types(&self) -> impl ExactSizeIterator<Item = Type<'_>> + '_ {
        (0..self.offsets.len()).map(move |i| self.own_type(i))
    }

    /// Every type id from 1 to `len() - 1`, including a split BTF's base.
    pub fn all_types(&self) -> impl Iterator<Item = Type<'_>> + '_ {
        (1..self.len()).filter_map(move |id| self.type_by_id(id).ok())
    }

    /// The string at offset `off` of the string table.
    pub fn str_at(&self, off: u32) -> Result<&str, BtfError> {
        let bytes = self.str_bytes(off).ok_or(str_err(
            off,
            "offset outside the string table or inside a character",
        ))?;
        std::str::from_utf8(bytes).map_err(|_| str_err(off, "not UTF-8"))
    }

    /// The string at `off`, or `""` if the offset is invalid (which cannot
    /// happen for offsets taken from validated type records).
    pub(crate) fn str_or_empty(&self, off: u32) -> &str {
        self.str_at(off).unwrap_or("")
    }

    /// Absolute start of the string at `off`, in the blob that holds it.
    fn string_start(&self, off: u32) -> Option<(&Btf, usize)> {
        if off < self.str_base {
            return self.base.as_ref()?.string_start(off);
        }
        let rel = (off - self.str_base) as usize;
        if rel >= self.str_len {
            return None;
        }
        let abs = self.str_start + rel;
        // A UTF-8 continuation byte would split a character.
        let b = self.data[abs];
        if (b as i8) < -0x40 {
            return None;
        }
        Some((self, abs))
    }

    /// Whether the string at `off` is `s`, comparing only as many bytes as
    /// `s` has (hot in CO-RE member matching).
    pub(crate) fn str_eq(&self, off: u32, s: &str) -> bool {
        self.string_start(off).is_some_and(|(owner, abs)| {
            let rest = &owner.data[abs..owner.str_start + owner.str_len];
            rest.starts_with(s.as_bytes()) && rest.get(s.len()) == Some(&0)
        })
    }

    /// Whether the string at `off` is empty (or `off` is invalid).
    pub(crate) fn str_is_empty(&self, off: u32) -> bool {
        self.string_start(off)
            .is_none_or(|(owner, abs)| owner.data[abs] == 0)
    }

    /// The bytes of the NUL-terminated string at `off`, without the NUL.
    pub(crate) fn str_bytes(&self, off: u32) -> Option<&[u8]> {
        let (owner, abs) = self.string_start(off)?;
        let table_end = owner.str_start + owner.str_len;
        let rest = &owner.data[abs..table_end];
        let len = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..len])
    }

    pub(crate) fn name_index(&self) -> &NameIndex {
        self.names.get_or_init(|| NameIndex::build(self))
    }

    /// Own type ids whose name is `name` (`exact`) or starts with it, in id
    /// order: from the index when built (or worth building), else by a scan.
    pub(crate) fn own_ids_named(&self, name: &[u8], exact: bool) -> Vec<TypeId> {
        if self.names.get().is_none() {
            if let Ok(mut cache) = self.scans.0.lock() {
                let key = (name.to_vec(), exact);
                if let Some(ids) = cache.get(&key) {
                    return ids.clone();
                }
                if cache.len() < SCANS_BEFORE_INDEX {
                    let ids = self.scan_names(name, exact);
                    cache.insert(key, ids.clone());
                    return ids;
                }
            }
        }
        let index = self.name_index();
        let mut ids: Vec<TypeId> = if exact {
            index.exact(self, name).collect()
        } else {
            index.with_prefix(self, name).collect()
        };
        ids.sort_unstable();
        ids
    }

    /// Own type ids whose name matches, by looking at every type (in id order).
    /// With no base, the string table is searched first (a fast substring
    /// search), so the type scan compares offsets, not strings.
    fn scan_names(&self, name: &[u8], exact: bool) -> Vec<TypeId> {
        let e = self.endian;
        let name_off_of = |i: usize| crate::endian::u32_in(e, &self.data, self.offsets[i] as usize);
        let strs = &self.data[self.str_start..self.str_start + self.str_len];
        let (Ok(table), Ok(wanted), None) = (
            std::str::from_utf8(strs),
            std::str::from_utf8(name),
            self.base.as_ref(),
        ) else {
            return (0..self.offsets.len())
                .filter(|&i| {
                    let off = name_off_of(i);
                    off != 0 && self.name_matches(off, name, exact)
                })
                .map(|i| self.first_id + i as TypeId)
                .collect();
        };
        if wanted.is_empty() {
            return Vec::new();
        }
        let mut offs: Vec<u32> = memchr::memmem::find_iter(table.as_bytes(), wanted.as_bytes())
            .filter(|&p| {
                (p == 0 || strs[p - 1] == 0) && (!exact || strs.get(p + name.len()) == Some(&0))
            })
            .map(|p| p as u32)
            .collect();
        offs.sort_unstable();
        (0..self.offsets.len())
            .filter(|&i| offs.binary_search(&name_off_of(i)).is_ok())
            .map(|i| self.first_id + i as TypeId)
            .collect()
    }

    /// Whether the string at `off` is `name` (`exact`) or starts with it,
    /// without measuring the whole string.
    fn name_matches(&self, off: u32, name: &[u8], exact: bool) -> bool {
        let Some((owner, abs)) = self.string_start(off) else {
            return false;
        };
        let table_end = owner.str_start + owner.str_len;
        let bytes = &owner.data[abs..table_end];
        bytes.starts_with(name) && (!exact || bytes.get(name.len()) == Some(&0))
    }

    /// Ids of all types named `name` (of any kind), base types first.
    pub fn ids_by_name(&self, name: &str) -> Vec<TypeId> {
        let mut out = match &self.base {
            Some(b) => b.ids_by_name(name),
            None => Vec::new(),
        };
        out.extend(self.own_ids_named(name.as_bytes(), true));
        out
    }

    /// The first type named `name` of kind `kind`.
    pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<TypeId> {
        if let Some(id) = self
            .base
            .as_ref()
            .and_then(|b| b.find_by_name_kind(name, kind))
        {
            return Some(id);
        }
        self.own_ids_named(name.as_bytes(), true)
            .into_iter()
            .find(|&id| self.kind_of(id) == Some(kind))
    }
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("endian", &self.endian)
            .field("types", &self.len())
            .field("first_id", &self.first_id)
            .field("strings", &self.str_len)
            .finish()
    }
}

/// How many references resolution follows before giving up on a loop.
pub const MAX_RESOLVE_DEPTH: usize = 64;

fn hdr(reason: impl Into<String>) -> BtfError {
    BtfError::Header {
        reason: reason.into(),
    }
}

fn str_err(offset: u32, reason: &'static str) -> BtfError {
    BtfError::InvalidString { offset, reason }
}

fn type_err(id: TypeId, offset: usize, reason: impl Into<String>) -> BtfError {
    BtfError::InvalidType {
        id,
        offset,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn name_scans_and_the_index_agree() {
        let Ok(bytes) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            eprintln!("SKIP: no /sys/kernel/btf/vmlinux to compare on");
            return;
        };
        let btf = Btf::from_vec(bytes).unwrap();
        for (name, exact) in [
            ("task_struct", true),
            ("task_struct", false),
            ("sk_buff", false),
            ("int", true),
            ("bpf_", false),
            ("no_such_type_zz", true),
        ] {
            let scanned = btf.scan_names(name.as_bytes(), exact);
            let index = btf.name_index();
            let mut indexed: Vec<TypeId> = if exact {
                index.exact(&btf, name.as_bytes()).collect()
            } else {
                index.with_prefix(&btf, name.as_bytes()).collect()
            };
            indexed.sort_unstable();
            assert_eq!(scanned, indexed, "{name} exact={exact}");
            assert_eq!(btf.own_ids_named(name.as_bytes(), exact), indexed);
        }
    }
}
