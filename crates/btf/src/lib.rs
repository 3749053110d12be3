//! BPF Type Format: parsing and validation, type queries, emission and
//! sanitizing, a C header dump, and the CO-RE relocation engine.
//!
//! - **Reading.** [`Btf::parse`] validates a `.BTF` blob of either byte
//!   order and indexes where each type record starts; records are decoded
//!   when looked up, as [`Type`] views borrowing the blob. Every malformed
//!   input is a [`BtfError`] naming the type and the reason.
//!   [`Btf::parse_split`] reads module BTF on top of vmlinux.
//!   [`BtfExt::parse`] reads `.BTF.ext` (function info, line info, CO-RE
//!   relocations per ELF section).
//! - **Queries.** Lookups by id and by name and kind, typedef and qualifier
//!   resolution ([`Btf::resolve`]), sizes and alignment, member bit offsets.
//! - **Writing.** [`BtfBuilder`] holds editable types and encodes valid BTF;
//!   [`sanitize`] rewrites kinds an older kernel lacks ([`BtfFeatures`]) and
//!   [`fixup_datasecs`] fills in section sizes and variable offsets.
//! - **Printing.** [`dump`] writes a C header (`bpftool btf dump ... format
//!   c`) or bpftool's raw listing.
//! - **CO-RE.** [`core`] computes and applies relocations the way libbpf's
//!   `relo_core.c` does.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bpfkit_btf::{Btf, Kind};
//! let btf = Btf::from_vec(std::fs::read("/sys/kernel/btf/vmlinux")?)?;
//! let id = btf.find_by_name_kind("task_struct", Kind::Struct).unwrap();
//! let task = btf.type_by_id(id)?;
//! for m in task.members().take(3) {
//!     println!("{} at bit {}", m.name, m.bit_offset);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod btf;
mod builder;
pub mod core;
pub mod dump;
mod endian;
mod error;
mod ext;
mod index;
pub mod record;
mod sanitize;
mod types;

/// A BTF type id. Id 0 is `void`.
pub type TypeId = u32;

pub use crate::core::{CoreError, CoreOutcome, CoreRelocator, TargetBtfs};
pub use btf::{Btf, BTF_HEADER_LEN, BTF_MAGIC, MAX_RESOLVE_DEPTH, MAX_TYPE_ID};
pub use builder::{BtfBuilder, MemberDef, TypeData, TypeDef};
pub use endian::Endian;
pub use error::BtfError;
pub use ext::{BtfExt, CoreRelo, CoreReloKind, ExtSection, FuncInfo, LineInfo};
pub use sanitize::{fixup_datasecs, sanitize, BtfFeatures};
pub use types::{
    Array, DatasecVars, EnumValue, EnumValues, Int, IntEncoding, Kind, Linkage, Member, Members,
    Param, Params, Type, VarSecInfo,
};
