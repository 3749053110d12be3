//! The one error type of the library: every failure names what it is about
//! (the program, map or global) and keeps its cause as `source()`.

use crate::Backend;

/// Loading, attaching, running or reading failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object could not be read or parsed.
    #[error("{what}")]
    Object {
        /// The file or input, and the step.
        what: String,
        /// The parser's error.
        #[source]
        source: bpfkit_object::ObjectError,
    },
    /// The kernel refused or failed.
    #[error(transparent)]
    Kernel(#[from] bpfkit_kernel::Error),
    /// The VM could not create the object's maps or programs.
    #[error(transparent)]
    VmLoad(#[from] bpfkit_vm::object::ObjectLoadError),
    /// A VM run faulted.
    #[error("program `{program}`")]
    VmRun {
        /// The program.
        program: String,
        /// The fault.
        #[source]
        source: bpfkit_vm::RunError,
    },
    /// bpfkit's verifier refused a program (VM backend).
    #[error("program `{program}` is refused by the verifier: {rejection}")]
    Rejected {
        /// The program.
        program: String,
        /// Where and why.
        rejection: Box<bpfkit_verifier::Rejection>,
    },
    /// No program of this name (after autoload choices).
    #[error("the object has no program `{name}` (it has: {available})")]
    NoProgram {
        /// The name asked for.
        name: String,
        /// The programs there are, comma-separated.
        available: String,
    },
    /// No map of this name.
    #[error("the object has no map `{name}` (it has: {available})")]
    NoMap {
        /// The name asked for.
        name: String,
        /// The maps there are, comma-separated.
        available: String,
    },
    /// A program was used as a kind it is not.
    #[error("program `{program}` is a {actual} program, not {expected}")]
    ProgramKind {
        /// The program.
        program: String,
        /// The kind asked for (`TracePoint`, `Xdp`, ...).
        expected: &'static str,
        /// What it is.
        actual: &'static str,
    },
    /// A map was used as a kind it is not.
    #[error("map `{map}` is a {actual}, not a {expected}")]
    MapKind {
        /// The map.
        map: String,
        /// The kind asked for.
        expected: &'static str,
        /// What it is.
        actual: String,
    },
    /// A global variable could not be set or read.
    #[error("global `{name}`: {reason}")]
    Global {
        /// The variable.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The attach point is wrong; found before any system call.
    #[error("program `{program}`: {reason}")]
    AttachPoint {
        /// The program.
        program: String,
        /// What is wrong with the target.
        reason: String,
    },
    /// A map operation failed.
    #[error(transparent)]
    Map(#[from] crate::maps::MapError),
    /// The backend cannot do this.
    #[error("{what} is not available on the {backend:?} backend: {why}")]
    Unsupported {
        /// The operation.
        what: String,
        /// The backend.
        backend: Backend,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// Reading a file failed.
    #[error("{what}")]
    Io {
        /// The file and the step.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `a, b, c` from names, for "it has: ..." hints.
pub(crate) fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
