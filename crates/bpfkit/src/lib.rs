//! bpfkit: load clang-compiled eBPF objects into Linux, or run them in a
//! userspace VM, through one API.
#![warn(missing_docs)]

pub mod maps;
pub mod record;

pub use bpfkit_abi as abi;
pub use bpfkit_btf as btf;
pub use bpfkit_isa as isa;
pub use bytemuck::{Pod, Zeroable};
