//! The error type shared by every parser and query in this crate.

use crate::TypeId;

/// Everything that can go wrong reading or querying BTF.
///
/// Offsets are byte offsets into the blob that was parsed (for `.BTF`, from
/// the start of the blob including its header; for `.BTF.ext` likewise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The header is missing, truncated or inconsistent.
    #[error("BTF header: {reason}")]
    Header {
        /// What is wrong.
        reason: String,
    },
    /// A type record is malformed.
    #[error("BTF type [{id}] at offset {offset}: {reason}")]
    InvalidType {
        /// Id of the offending type.
        id: TypeId,
        /// Byte offset of its record in the blob.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The string table is malformed or an offset does not point into it.
    #[error("BTF string at offset {offset}: {reason}")]
    InvalidString {
        /// Offset into the string table.
        offset: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A type id is out of range.
    #[error("BTF type id {id} does not exist")]
    NoSuchType {
        /// The missing id.
        id: TypeId,
    },
    /// A query reached a type of a kind it cannot handle.
    #[error("BTF type [{id}]: {reason}")]
    UnexpectedKind {
        /// Id of the offending type.
        id: TypeId,
        /// What was expected and what was found.
        reason: String,
    },
    /// A chain of references (typedefs, modifiers, arrays) loops or is too deep.
    #[error("BTF type [{id}]: reference chain loops or is deeper than {limit}")]
    ReferenceLoop {
        /// Where the chain started.
        id: TypeId,
        /// The depth limit.
        limit: usize,
    },
    /// `DATASEC` sizes or offsets cannot be fixed up from the ELF facts given.
    #[error("BTF fixup of [{id}]: {reason}")]
    Fixup {
        /// The `DATASEC` or `VAR` concerned.
        id: TypeId,
        /// What is missing or wrong.
        reason: String,
    },
    /// The types cannot be written as C (a cycle no forward declaration
    /// breaks, or output beyond the limits that guard against malformed BTF).
    #[error("C dump of [{id}]: {reason}")]
    Dump {
        /// The type being written.
        id: TypeId,
        /// What went wrong.
        reason: String,
    },
    /// A `.BTF.ext` blob is malformed.
    #[error("BTF.ext at offset {offset}: {reason}")]
    InvalidExt {
        /// Byte offset into the `.BTF.ext` blob.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// BTF cannot be emitted as requested.
    #[error("BTF emission: {reason}")]
    Emit {
        /// What is wrong.
        reason: String,
    },
}
