//! Errors with the context a user needs: what was being done, and for
//! permission and verifier failures, what to do about it.

use std::io;

/// A kernel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{op}: {source}{}", hint(.source))]
    Syscall {
        /// What was being done (`create map "counts"`).
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// The verifier rejected a program.
    #[error("program `{program}` rejected by the verifier: {message}{}", source_line.as_ref().map(|l| format!("\n  at {l}")).unwrap_or_default())]
    Verifier {
        /// Program name.
        program: String,
        /// The verifier's last complaint.
        message: String,
        /// The C source line of the failing instruction (from BTF line info), if known.
        source_line: Option<String>,
        /// The complete verifier log.
        log: String,
    },
    /// The kernel rejected a BTF blob.
    #[error("BTF rejected by the kernel: {message}")]
    Btf {
        /// The kernel's last complaint.
        message: String,
        /// The complete BTF log.
        log: String,
    },
    /// The object cannot be loaded as it is.
    #[error("{0}")]
    Object(String),
    /// What this kernel lacks for the operation.
    #[error("{0}")]
    Unsupported(String),
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            " (needs root or CAP_BPF/CAP_PERFMON; networking hooks also need CAP_NET_ADMIN; \
             kernels before 5.11 also need a high enough RLIMIT_MEMLOCK)"
        }
        Some(libc::EACCES) => " (needs root or CAP_BPF/CAP_PERFMON, or was refused by an LSM)",
        Some(libc::ENOSYS) => " (this kernel was built without bpf(): CONFIG_BPF_SYSCALL)",
        Some(524) | Some(libc::EOPNOTSUPP) => " (not supported by this kernel)",
        _ => "",
    }
}

impl Error {
    /// Wraps an OS error with what was being done.
    pub fn sys(op: impl Into<String>, source: io::Error) -> Error {
        Error::Syscall {
            op: op.into(),
            source,
        }
    }

    /// The OS errno, if this is a system call failure.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Syscall { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
