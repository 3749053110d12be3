//! Errors: what is malformed, and where (section, symbol, offset).

/// A malformed or unsupported object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The bytes are not an ELF file the `object` crate can read.
    #[error("not a readable ELF object: {0}")]
    Elf(#[from] object::Error),
    /// The object file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why not.
        source: std::io::Error,
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
    Btf(#[from] bpfkit_btf::BtfError),
    /// A CO-RE relocation failed.
    #[error("program `{program}`: {source}")]
    Core {
        /// Program name.
        program: String,
        /// The failure.
        source: bpfkit_btf::CoreError,
    },
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
