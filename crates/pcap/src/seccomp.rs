//! seccomp's flavour of classic BPF: programs over `struct seccomp_data`
//! whose return value is an action ([`Action`]).
//!
//! [`Filter::new`] validates as `seccomp_prepare_filter` does: the
//! kernel's bpf_check_classic, then seccomp_check_filter (kernel/seccomp.c),
//! which allows only aligned 32-bit loads inside `seccomp_data` and no
//! modulo, packet-indexed loads or `ldxb 4*([k]&0xf)`. [`Filter::run`]
//! runs it in the classic interpreter; [`Filter::translate`] gives eBPF that
//! bpfkit's VM runs over the 64 bytes of [`SeccompData::to_bytes`].

use bpfkit_isa::cbpf::{AluOp, Insn, Size};
use std::fmt;

use crate::classic::{self, Input, ValidateError, ValidateErrorKind};
use crate::translate::{self, Flavour, TranslateError, SECCOMP_DATA_SIZE};

/// `AUDIT_ARCH_X86_64`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_AARCH64`.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// The return values' action codes (include/uapi/linux/seccomp.h).
pub mod ret {
    /// Kill the process.
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// Kill the thread.
    pub const KILL_THREAD: u32 = 0x0000_0000;
    /// Send SIGSYS.
    pub const TRAP: u32 = 0x0003_0000;
    /// Fail the call with an errno.
    pub const ERRNO: u32 = 0x0005_0000;
    /// Ask the user-space notifier.
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Hand to the ptrace tracer.
    pub const TRACE: u32 = 0x7ff0_0000;
    /// Allow, after logging.
    pub const LOG: u32 = 0x7ffc_0000;
    /// Allow.
    pub const ALLOW: u32 = 0x7fff_0000;
    /// The action bits (`SECCOMP_RET_ACTION_FULL`).
    pub const ACTION_FULL: u32 = 0xffff_0000;
    /// The data bits (`SECCOMP_RET_DATA`).
    pub const DATA: u32 = 0x0000_ffff;
}

/// The largest errno (`MAX_ERRNO`): seccomp clamps larger data to it.
const MAX_ERRNO: u16 = 4095;

/// What a seccomp filter's return value asks for, decoded as
/// __seccomp_filter (kernel/seccomp.c) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `SECCOMP_RET_KILL_PROCESS`, and any action code the kernel does not know.
    KillProcess,
    /// `SECCOMP_RET_KILL_THREAD`.
    KillThread,
    /// `SECCOMP_RET_TRAP`: SIGSYS with this `si_errno`.
    Trap(u16),
    /// `SECCOMP_RET_ERRNO`: the call fails with this errno (at most 4095).
    Errno(u16),
    /// `SECCOMP_RET_USER_NOTIF`.
    UserNotif,
    /// `SECCOMP_RET_TRACE`: the tracer sees this message.
    Trace(u16),
    /// `SECCOMP_RET_LOG`.
    Log,
    /// `SECCOMP_RET_ALLOW`.
    Allow,
}

impl Action {
    /// Decodes a filter's return value.
    pub fn from_ret(v: u32) -> Action {
        let data = (v & ret::DATA) as u16;
        match v & ret::ACTION_FULL {
            ret::KILL_THREAD => Action::KillThread,
            ret::TRAP => Action::Trap(data),
            ret::ERRNO => Action::Errno(data.min(MAX_ERRNO)),
            ret::USER_NOTIF => Action::UserNotif,
            ret::TRACE => Action::Trace(data),
            ret::LOG => Action::Log,
            ret::ALLOW => Action::Allow,
            // KILL_PROCESS and unknown actions alike.
            _ => Action::KillProcess,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => write!(f, "KILL_PROCESS"),
            Action::KillThread => write!(f, "KILL_THREAD"),
            Action::Trap(d) => write!(f, "TRAP({d})"),
            Action::Errno(e) => write!(f, "ERRNO({e})"),
            Action::UserNotif => write!(f, "USER_NOTIF"),
            Action::Trace(d) => write!(f, "TRACE({d})"),
            Action::Log => write!(f, "LOG"),
            Action::Allow => write!(f, "ALLOW"),
        }
    }
}

/// `struct seccomp_data`: what a filter sees of a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeccompData {
    /// The system call number.
    pub nr: i32,
    /// The `AUDIT_ARCH_*` of the calling convention.
    pub arch: u32,
    /// The instruction pointer at the call.
    pub instruction_pointer: u64,
    /// The arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 64 bytes of the struct, in host byte order, as the kernel lays it out.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + i * 8..24 + i * 8].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// Loads from seccomp_data: host-order words (populate_seccomp_data).
struct DataInput([u8; 64]);

impl Input for DataInput {
    fn load_abs(&self, k: u32, _size: Size, _a: u32, _x: u32) -> Option<u32> {
        // Validation allows only aligned words inside the struct.
        let k = k as usize;
        let w = self.0.get(k..k + 4)?;
        Some(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
    }

    fn load_ind(&self, _off: u32, _size: Size) -> Option<u32> {
        None
    }

    fn load_msh(&self, _k: u32) -> Option<u32> {
        None
    }

    fn len(&self) -> u32 {
        SECCOMP_DATA_SIZE
    }
}

/// Validates a seccomp program as seccomp_prepare_filter does:
/// bpf_check_classic, then seccomp_check_filter's allowlist.
pub fn validate(insns: &[Insn]) -> Result<(), ValidateError> {
    classic::validate(insns)?;
    for (index, insn) in insns.iter().enumerate() {
        let refuse = |what| {
            Err(ValidateError {
                index,
                kind: ValidateErrorKind::NotAllowed(what),
            })
        };
        match *insn {
            Insn::LdAbs { size: Size::W, k } if k >= SECCOMP_DATA_SIZE || k % 4 != 0 => {
                return Err(ValidateError {
                    index,
                    kind: ValidateErrorKind::SeccompLoad(k),
                });
            }
            Insn::LdAbs { size: Size::W, .. } => {}
            Insn::LdAbs { .. } => return refuse("a 16- or 8-bit load in a seccomp filter"),
            Insn::LdInd { .. } => return refuse("ld [x + k] in a seccomp filter"),
            Insn::LdxMsh(_) => return refuse("ldxb 4*([k]&0xf) in a seccomp filter"),
            Insn::Alu { op: AluOp::Mod, .. } => return refuse("mod in a seccomp filter"),
            _ => {}
        }
    }
    Ok(())
}

/// A validated seccomp filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    insns: Vec<Insn>,
}

impl Filter {
    /// Validates `insns` (see [`validate`]).
    pub fn new(insns: Vec<Insn>) -> Result<Filter, ValidateError> {
        validate(&insns)?;
        Ok(Filter { insns })
    }

    /// The instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The raw return value for a system call.
    pub fn run_raw(&self, data: &SeccompData) -> u32 {
        classic::run_input(
            &self.insns,
            &DataInput(data.to_bytes()),
            classic::Semantics::Kernel,
        )
    }

    /// The action for a system call.
    pub fn run(&self, data: &SeccompData) -> Action {
        Action::from_ret(self.run_raw(data))
    }

    /// The filter as eBPF over a 64-byte `seccomp_data` context (`r1`).
    pub fn translate(&self) -> Result<Vec<bpfkit_isa::Insn>, TranslateError> {
        translate::translate_validated(&self.insns, Flavour::Seccomp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_decode_as_the_kernel_decodes_them() {
        assert_eq!(Action::from_ret(0x8000_0000), Action::KillProcess);
        assert_eq!(Action::from_ret(0), Action::KillThread);
        assert_eq!(Action::from_ret(0x0003_0007), Action::Trap(7));
        assert_eq!(Action::from_ret(0x0005_0001), Action::Errno(1));
        assert_eq!(Action::from_ret(0x0005_ffff), Action::Errno(4095));
        assert_eq!(Action::from_ret(0x7fc0_0000), Action::UserNotif);
        assert_eq!(Action::from_ret(0x7ff0_0102), Action::Trace(0x102));
        assert_eq!(Action::from_ret(0x7ffc_0000), Action::Log);
        assert_eq!(Action::from_ret(0x7fff_0000), Action::Allow);
        // An action code the kernel does not know kills the process.
        assert_eq!(Action::from_ret(0x0001_0000), Action::KillProcess);
        assert_eq!(Action::Errno(13).to_string(), "ERRNO(13)");
    }

    #[test]
    fn seccomp_data_is_laid_out_as_the_kernel_does() {
        let d = SeccompData {
            nr: 59,
            arch: AUDIT_ARCH_X86_64,
            instruction_pointer: 0x1122_3344_5566_7788,
            args: [1, 2, 3, 4, 5, 0xdead_beef_0000_0006],
        };
        let b = d.to_bytes();
        assert_eq!(&b[0..4], &59i32.to_ne_bytes());
        assert_eq!(&b[4..8], &AUDIT_ARCH_X86_64.to_ne_bytes());
        assert_eq!(&b[56..64], &0xdead_beef_0000_0006u64.to_ne_bytes());
    }
}
