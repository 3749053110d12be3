//! The Linux backend: the `bpf()` system call and its neighbours, and the
//! live objects they create: maps, programs, links, ring and perf buffers.
//!
//! Layers, bottom up: [`sys`] issues system calls with typed attributes
//! (bpf, perf_event_open, mmap, epoll, rtnetlink, setsockopt); [`map`],
//! [`prog`], [`btf`], [`ringbuf`], [`perfbuf`] and [`info`] wrap the objects
//! they make in owning types (every fd is an `OwnedFd`); [`link`] attaches
//! programs to every kind of hook, with a fallback where the kernel lacks a
//! link kind; [`collection`] loads a whole `ObjectSpec` (CO-RE, with a
//! per-kernel disk cache of its results, and `__ksym` externs); [`inspect`]
//! and [`features`] look at the kernel as a whole.
//!
//! `unsafe` lives only where the kernel demands it: `sys` (system calls,
//! mmap, epoll, sockets), `map` (element commands, whose buffer sizes it
//! checks against the map's, and the bytes of `Pod` values), the ring
//! readers (records read in place from shared memory), `time` (the
//! clocks and the local time zone) and `fs` (mount), each block with a `// SAFETY:` comment.
#![warn(missing_docs)]

pub mod btf;
pub mod collection;
mod core_cache;
pub mod error;
pub mod features;
pub mod fs;
pub mod info;
pub mod inspect;
pub mod kconfig;
mod ksym;
pub mod ksyms;
pub mod link;
pub mod map;
pub mod packet;
pub mod perfbuf;
pub mod prog;
pub mod ringbuf;
pub mod select;
pub mod sys;
pub mod time;
pub mod usyms;

pub use collection::{Collection, CoreSource, LoadOptions};
pub use error::{Error, Result};
pub use link::{attach_raw_tracepoint, attach_tracepoint, Link};
pub use map::{KernelMap, MapDefinition, MapError, Pod};
pub use perfbuf::PerfBufReader;
pub use prog::{
    LoadExtras, Program, ProgramBtf, ProgramLoad, TestRunOptions, TestRunOutput, VerifierStats,
};
pub use ringbuf::RingBufReader;

/// Whether this process may use `bpf()`: creates and drops a tiny array map.
/// `Err` says why not, for tests and tools to print.
pub fn check_bpf_access() -> std::result::Result<(), String> {
    let def = MapDefinition::new("bpfkit_probe", bpfkit_abi::MapType::Array, 4, 4, 1);
    KernelMap::create(&def, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
