//! The helper registry: embedders register Rust closures under helper ids.

use std::collections::BTreeMap;

use crate::interp::HelperOutcome;
use crate::memory::AddressSpace;

/// What a helper sees of the running program.
pub struct HelperContext<'a> {
    /// The program's memory: read pointer arguments with `slice`, write through `slice_mut`.
    pub memory: &'a mut AddressSpace,
}

/// A helper implementation: arguments are `r1..r5`.
pub type HelperFn =
    Box<dyn FnMut(&mut HelperContext<'_>, [u64; 5]) -> Result<HelperOutcome, String> + Send>;

/// A registered helper.
pub struct Helper {
    /// Name, for error messages (`bpf_map_lookup_elem`).
    pub name: String,
    /// The implementation.
    pub func: HelperFn,
}

/// Helpers by id.
#[derive(Default)]
pub struct HelperRegistry {
    helpers: BTreeMap<i64, Helper>,
    /// Whether helper 1 (`bpf_map_lookup_elem`) is registered: asked on
    /// every lookup, so kept apart from the tree.
    has_map_lookup: bool,
}

impl HelperRegistry {
    /// Registers (or replaces) helper `id`.
    pub fn register(
        &mut self,
        id: i64,
        name: &str,
        func: impl FnMut(&mut HelperContext<'_>, [u64; 5]) -> Result<HelperOutcome, String>
            + Send
            + 'static,
    ) {
        self.has_map_lookup |= id == crate::interp::MAP_LOOKUP_ELEM as i64;
        self.helpers.insert(
            id,
            Helper {
                name: name.to_string(),
                func: Box::new(func),
            },
        );
    }

    /// The helper registered under `id`.
    pub fn get_mut(&mut self, id: i64) -> Option<&mut Helper> {
        self.helpers.get_mut(&id)
    }

    /// Whether `id` is registered.
    pub fn contains(&self, id: i64) -> bool {
        self.helpers.contains_key(&id)
    }

    /// Whether an embedder's `bpf_map_lookup_elem` (helper 1) is registered.
    pub(crate) fn has_map_lookup(&self) -> bool {
        self.has_map_lookup
    }
}

/// The bpf_conformance suite's helper 5: returns its first argument, and a
/// return value of 0 stops the program with r0 = 0.
pub fn conformance_helper(
    _: &mut HelperContext<'_>,
    args: [u64; 5],
) -> Result<HelperOutcome, String> {
    Ok(if args[0] == 0 {
        HelperOutcome::Exit(0)
    } else {
        HelperOutcome::Return(args[0])
    })
}
