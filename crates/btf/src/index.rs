//! The name index: own type ids sorted by name, built once on first lookup.
//!
//! Sorting ids (4 bytes each) rather than hashing owned strings keeps the
//! index small and lets one structure answer both exact lookups and the
//! CO-RE candidate search, whose `name___flavor` targets sort right after
//! `name` itself.

use core::cmp::Ordering;

use crate::{Btf, TypeId};

#[derive(Clone)]
pub(crate) struct NameIndex {
    /// Named own types, sorted by name bytes, ties by id.
    sorted: Vec<TypeId>,
}

impl NameIndex {
    pub(crate) fn build(btf: &Btf) -> NameIndex {
        let mut keyed: Vec<(&[u8], TypeId)> = btf
            .types()
            .filter(|t| t.name_off != 0)
            .map(|t| (btf.str_bytes(t.name_off).unwrap_or(&[]), t.id))
            .collect();
        keyed.sort_unstable();
        NameIndex {
            sorted: keyed.into_iter().map(|(_, id)| id).collect(),
        }
    }

    fn name(btf: &Btf, id: TypeId) -> &[u8] {
        btf.type_by_id(id)
            .ok()
            .and_then(|t| btf.str_bytes(t.name_off))
            .unwrap_or(&[])
    }

    /// Ids of the own types whose name starts with `prefix`, in name order.
    pub(crate) fn with_prefix<'a>(
        &'a self,
        btf: &'a Btf,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = TypeId> + 'a {
        let start = self
            .sorted
            .partition_point(|&id| Self::name(btf, id) < prefix);
        self.sorted[start..]
            .iter()
            .copied()
            .take_while(move |&id| Self::name(btf, id).starts_with(prefix))
    }

    /// Ids of the own types named exactly `name`.
    pub(crate) fn exact<'a>(
        &'a self,
        btf: &'a Btf,
        name: &'a [u8],
    ) -> impl Iterator<Item = TypeId> + 'a {
        let start = self
            .sorted
            .partition_point(|&id| Self::name(btf, id).cmp(name) == Ordering::Less);
        self.sorted[start..]
            .iter()
            .copied()
            .take_while(move |&id| Self::name(btf, id) == name)
    }
}
