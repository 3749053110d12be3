//! Code generation for BPF objects: typed Rust skeletons (the answer to
//! bpftool's `gen skeleton` and cilium's bpf2go), and [`BpfBuild`], the
//! build-script helper that compiles `.bpf.c` sources when clang is there and
//! otherwise uses committed objects, then writes their skeletons.
//!
//! A build script:
//!
//! ```no_run
//! // build.rs
//! bpfkit_gen::BpfBuild::new("src/bpf/bootstrap.bpf.c")
//!     .object("src/bpf/bootstrap.bpf.o")
//!     .extra_type("event")
//!     .build()
//!     .unwrap();
//! ```
//!
//! and the program: `mod skel { include!(concat!(env!("OUT_DIR"), "/bootstrap.skel.rs")); }`.
//! The generated code uses the `bpfkit` crate, which the program depends on.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod build;
mod skeleton;
mod types;

pub use build::BpfBuild;
pub use skeleton::{generate, Embed, SkeletonOptions};

/// Generating a skeleton or building an object failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The object could not be parsed.
    #[error(transparent)]
    Object(#[from] bpfkit_object::ObjectError),
    /// Its BTF is malformed.
    #[error(transparent)]
    Btf(#[from] bpfkit_btf::BtfError),
    /// A type cannot be expressed in Rust.
    #[error("{0}")]
    Type(String),
    /// Compiling or reading files failed.
    #[error("{what}")]
    Build {
        /// The step.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// clang failed.
    #[error("{0}")]
    Compile(String),
}
