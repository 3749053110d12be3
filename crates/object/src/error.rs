//! Errors: what is malformed, and where (section, symbol, offset).

/// A malformed or unsupported object.
///
/// Each message is complete in itself: the errors of the ELF reader, BTF and
/// CO-RE are part of it and deliberately not its `source()`, so a printer of
/// error chains (anyhow's `{:#}`, as the `bpfkit` binary uses) does not print
/// them twice.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The bytes are not an ELF file the `object` crate can read.
    #[error("not a readable ELF object: {0}")]
    Elf(object::Error),
    /// The object file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why not.
        error: std::io::Error,
    },
    /// The object is not for the BPF machine.
    #[error("ELF machine is {0}, not BPF (247)")]
    NotBpf(u16),
    /// A section is malformed.
    #[error("section `{section}`: {reason}")]
    Section {
        /// Section name.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// Something at a specific place is malformed.
    #[error("section `{section}`, symbol `{symbol}`, offset {offset:#x}: {reason}")]
    At {
        /// Section name.
        section: String,
        /// Symbol name (or `-`).
        symbol: String,
        /// Byte offset in the section.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A map definition is malformed.
    #[error("map `{map}`: {reason}")]
    Map {
        /// Map name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// The object's BTF is invalid.
    #[error("BTF: {0}")]
    Btf(bpfkit_btf::BtfError),
    /// A CO-RE relocation failed.
    #[error("program `{program}`: {error}")]
    Core {
        /// Program name.
        program: String,
        /// The failure.
        error: bpfkit_btf::CoreError,
    },
}

impl From<object::Error> for ObjectError {
    fn from(e: object::Error) -> ObjectError {
        ObjectError::Elf(e)
    }
}

impl From<bpfkit_btf::BtfError> for ObjectError {
    fn from(e: bpfkit_btf::BtfError) -> ObjectError {
        ObjectError::Btf(e)
    }
}

pub(crate) fn section_err(section: &str, reason: impl Into<String>) -> ObjectError {
    ObjectError::Section {
        section: section.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn at(
    section: &str,
    symbol: &str,
    offset: u64,
    reason: impl Into<String>,
) -> ObjectError {
    ObjectError::At {
        section: section.to_string(),
        symbol: symbol.to_string(),
        offset,
        reason: reason.into(),
    }
}
