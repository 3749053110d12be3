//! bpfkit: load clang-compiled eBPF objects into Linux, or run them in a
//! userspace VM, through one API.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod backend;
pub mod maps;

pub use backend::{dump, Backend, Error, Object, RunResult};
pub use bpfkit_abi as abi;
pub use bpfkit_btf as btf;
pub use bpfkit_isa as isa;
pub use bpfkit_kernel as kernel;
pub use bpfkit_object as object;
pub use bpfkit_vm as vm;
pub use bytemuck::{Pod, Zeroable};
