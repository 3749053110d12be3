//! bpfkit: load clang-built eBPF objects into Linux, or run them in a
//! userspace VM, through one API.
//!
//! Open an object with [`Ebpf`] (or [`EbpfLoader`] for choices before load),
//! take a program by name and turn it into its kind, attach it, and read
//! what it sends:
//!
//! ```
//! use std::time::Duration;
//! use bpfkit::{Ebpf, RingBuf, TracePoint, Record};
//!
//! /// One record of the ring buffer, laid out as the BPF side's `struct event`.
//! #[derive(Clone, Copy, bpfkit::Pod)]
//! #[repr(C)]
//! struct Event {
//!     pid: u32,
//!     ppid: u32,
//!     exit_code: u32,
//!     _pad: u32,
//!     duration_ns: u64,
//!     comm: [u8; 16],
//! }
//!
//! # fn main() -> Result<(), bpfkit::Error> {
//! # if bpfkit::kernel::check_bpf_access().is_err() && std::env::var("CI").as_deref() != Ok("true") {
//! #     return Ok(()); // no bpf() here: nothing to show
//! # }
//! let object = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bootstrap/bootstrap.bpf.o"));
//! let mut bpf = bpfkit::EbpfLoader::new()
//!     .set_global("min_duration_ns", &0u64)
//!     .load(object)?;
//! let exec: &mut TracePoint = bpf.program_mut("handle_exec")?.try_into()?;
//! let _exec_link = exec.attach("sched", "sched_process_exec")?;
//! let exit: &mut TracePoint = bpf.program_mut("handle_exit")?.try_into()?;
//! let _exit_link = exit.attach("sched", "sched_process_exit")?;
//! let mut events = RingBuf::new(bpf.take_map("rb")?)?;
//!
//! // Something to see: a process starts and exits.
//! std::process::Command::new("true").status().unwrap();
//! let mut seen_true = false;
//! while let Some(record) = events.next_timeout(Duration::from_secs(5))? {
//!     let event: Event = record.read().expect("a whole event");
//!     if event.comm.starts_with(b"true\0") {
//!         seen_true = true;
//!         break;
//!     }
//! }
//! assert!(seen_true, "the exec of `true` was seen");
//! # Ok(()) }
//! ```
//!
//! `#[derive(Pod)]` refuses, at compile time, a type whose bytes are not
//! all its fields', such as one with padding:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, bpfkit::Pod)]
//! #[repr(C)]
//! struct Padded {
//!     pid: u32,
//!     duration_ns: u64, // 4 bytes of padding before this field
//! }
//! ```
//!
//! ...or one whose layout Rust may reorder:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, bpfkit::Pod)]
//! struct NotReprC {
//!     pid: u32,
//! }
//! ```
//!
//! The same object loads into the VM with
//! `EbpfLoader::new().backend(Backend::Vm)`: maps, `test_run` and ring
//! buffers work alike there, so a program's unit tests need no root.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod ebpf;
mod error;
pub mod maps;
mod program;
mod reader;

/// `#[derive(Pod)]`: see [`Pod`]; checks at compile time that a
/// `#[repr(C)]` struct has only `Pod` fields and no padding.
pub use bpfkit_derive::Pod;
pub use bpfkit_kernel::collection::map_pin_path;
pub use bpfkit_kernel::fs::{online_cpus, possible_cpus};
pub use bpfkit_kernel::ksyms::KernelSymbols;
pub use bpfkit_kernel::link::perf_event::SampleRate;
pub use bpfkit_kernel::link::{PerfEventConfig, TcDirection, TcOptions, XdpMode, XdpOptions};
pub use bpfkit_kernel::time::ktime_ns;
pub use bpfkit_kernel::usyms::{ElfSymbols, ProcessSymbols};
pub use bpfkit_kernel::{Link, Pod};
pub use ebpf::{AutoAttached, Backend, Ebpf, EbpfLoader};
pub use error::{Error, Result};
pub use maps::{dump, Map, MapError, RawMap};
pub use program::{
    BtfTracePoint, CgroupSkb, CgroupSock, CgroupSockAddr, FEntry, Iter, KProbe, Lsm, Other,
    PerfEvent, Program, ProgramData, RawTracePoint, RunResult, SchedClassifier, SkMsg,
    SocketFilter, TracePoint, UProbe, Xdp,
};
#[cfg(feature = "tokio")]
pub use reader::AsyncRingBuf;
pub use reader::{PerfBuf, PerfSample, Record, RingBuf, RingBufItem};

pub use bpfkit_jit::Engine;

pub use bpfkit_abi as abi;
pub use bpfkit_btf as btf;
pub use bpfkit_isa as isa;
pub use bpfkit_kernel as kernel;
pub use bpfkit_object as object;
pub use bpfkit_vm as vm;
