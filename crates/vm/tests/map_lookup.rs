//! bpf_map_lookup_elem's direct path (a key read in place, a value's region
//! found again by identity) keeps the helper's semantics: the same element
//! gives the same address within a run, a value pointer is bounds-checked
//! against the value's size, read-only values reject stores, keys may live
//! in any region, and an embedder's helper 1 still replaces the built-in.

use bpfkit_vm::Program;

/// The interpreter: programs run as they are.
fn engine(p: Program) -> Program {
    p
}

#[path = "engine_checks/map_lookup.rs"]
mod checks;
