//! The Linux backend: the `bpf()` system call and its neighbours, and the
//! live objects they create: maps, programs, links, ring buffers.
//!
//! `unsafe` lives only here, in the few modules that talk to the kernel
//! (`sys`, `ringbuf`, `fs`), each block with a `// SAFETY:` comment.
#![warn(missing_docs)]

pub mod btf;
pub mod collection;
pub mod error;
pub mod fs;
pub mod inspect;
pub mod link;
pub mod map;
pub mod prog;
pub mod ringbuf;
pub mod sys;

pub use collection::{Collection, LoadOptions};
pub use error::{Error, Result};
pub use link::{attach_raw_tracepoint, attach_tracepoint, Link};
pub use map::{KernelMap, MapDefinition, MapError};
pub use prog::{LoadedProgram, ProgramBtf, ProgramLoad, TestRunOutput};
pub use ringbuf::RingBufReader;

/// Whether this process may use `bpf()`: creates and drops a tiny array map.
/// `Err` says why not, for tests and tools to print.
pub fn check_bpf_access() -> std::result::Result<(), String> {
    let def = MapDefinition {
        name: "bpfkit_probe".into(),
        map_type: bpfkit_abi::MapType::Array,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
        map_extra: 0,
        numa_node: None,
        btf: None,
    };
    KernelMap::create(&def, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
