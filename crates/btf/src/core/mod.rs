//! The CO-RE relocation engine: pure computation of what libbpf's
//! `relo_core.c` writes into an instruction, given local and target BTF.
//!
//! [`CoreRelocator::relocate`] parses the access string into a
//! [`spec::AccessSpec`], finds candidate target types by essential name
//! (`name___flavor` → `name`), matches the spec against each candidate and
//! computes the original and new values; candidates that disagree are an
//! error. [`patch::patch_insn`] then checks the instruction against the
//! original value and writes the new one, or poisons it.

mod calc;
mod compat;
mod patch;
mod spec;

use std::fmt;

pub use calc::{CoreOutcome, CoreRelocator, TargetBtfs};
pub use patch::{patch_insn, POISON_HELPER_ID};
pub use spec::{AccessSpec, Accessor};

use crate::{BtfError, CoreReloKind, TypeId};

/// Why a relocation cannot be computed or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Reading the local or target BTF failed.
    #[error(transparent)]
    Btf(#[from] BtfError),
    /// The access string does not describe a valid path from the root type.
    #[error("CO-RE {kind:?} relocation of [{type_id}] with access {access:?}: {reason}")]
    InvalidSpec {
        /// Local root type.
        type_id: TypeId,
        /// The access string.
        access: String,
        /// Relocation kind.
        kind: CoreReloKind,
        /// What is wrong.
        reason: String,
    },
    /// Candidates exist but lead to different results.
    #[error("CO-RE relocation of [{type_id}] {access:?} is ambiguous: {reason}")]
    Ambiguous {
        /// Local root type.
        type_id: TypeId,
        /// The access string.
        access: String,
        /// Which values disagree.
        reason: String,
    },
    /// The instruction does not hold what the relocation expects.
    #[error("CO-RE patch of instruction #{insn}: {reason}")]
    Patch {
        /// Instruction index.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Length of the essential part of a type, field or enumerator name: the
/// name without a trailing `___flavor` suffix, as libbpf's
/// `bpf_core_essential_name_len` computes it (the last `___` that is
/// neither preceded nor followed by another `_` starts the flavor).
pub fn essential_name_len(name: &str) -> usize {
    let b = name.as_bytes();
    let n = b.len();
    if n < 5 {
        return n;
    }
    for i in (0..=n - 5).rev() {
        if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
            return i + 1;
        }
    }
    n
}

/// The essential part of `name` (see [`essential_name_len`]).
pub fn essential_name(name: &str) -> &str {
    &name[..essential_name_len(name)]
}

impl fmt::Display for AccessSpec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.raw.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}
