//! Loading programs, with the verifier's log when it says no.

use std::os::fd::{AsRawFd, OwnedFd};

use bpfkit_abi::{AttachType, ProgramType};
use bpfkit_isa::{encode, ByteOrder, Insn};

use crate::error::{Error, Result};
use crate::sys::{bpf, bpf_fd, cmd, Attr};

/// A program's BTF object with its `bpf_func_info` records (`insn_off`,
/// `type_id`) and `bpf_line_info` records (`insn_off`, `file_name_off`,
/// `line_off`, `line << 10 | col`).
pub type ProgramBtf<'a> = (&'a OwnedFd, Vec<[u32; 2]>, Vec<[u32; 4]>);

/// What `BPF_PROG_LOAD` needs.
#[derive(Debug, Clone)]
pub struct ProgramLoad<'a> {
    /// Name (at most 15 bytes are kept).
    pub name: &'a str,
    /// Type.
    pub prog_type: ProgramType,
    /// Expected attach type.
    pub expected_attach_type: Option<AttachType>,
    /// Instructions, with maps already resolved to fds.
    pub insns: &'a [Insn],
    /// License (GPL-only helpers need a GPL-compatible one).
    pub license: &'a str,
    /// Kernel version (only kprobes on old kernels check it).
    pub kern_version: u32,
    /// The program's BTF and its function and line records.
    pub btf: Option<ProgramBtf<'a>>,
    /// The BTF type id of the attach target (tp_btf, fentry...).
    pub attach_btf_id: u32,
}

/// A loaded program. Closing the last fd (and detaching it) unloads it.
#[derive(Debug)]
pub struct LoadedProgram {
    fd: OwnedFd,
    name: String,
    prog_type: ProgramType,
    expected_attach_type: Option<AttachType>,
}

/// Output of [`LoadedProgram::test_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// Return value.
    pub retval: u32,
    /// Mean duration in nanoseconds.
    pub duration_ns: u32,
    /// Output data.
    pub data_out: Vec<u8>,
    /// Output context.
    pub ctx_out: Vec<u8>,
}

/// The verifier's last complaint: the last non-empty line that is not a
/// statistics line or an instruction dump.
fn last_complaint(log: &str) -> String {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
                && !l.starts_with(';')
                && !l.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .unwrap_or("(empty verifier log)")
        .to_string()
}

/// The source line the kernel printed (`; <code> @ file.c:123`) for the last
/// instruction it looked at before failing.
fn last_source_line(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("; ") && l.contains(" @ "))
        .map(|l| {
            let (code, place) = l[2..].rsplit_once(" @ ").unwrap_or((&l[2..], ""));
            format!("{place}: {}", code.trim())
        })
}

impl LoadedProgram {
    /// Loads a program. On rejection, retries with the verifier log (growing
    /// the buffer as needed) and returns its last complaint and source line.
    pub fn load(p: &ProgramLoad<'_>) -> Result<LoadedProgram> {
        let bytes = encode(p.insns, ByteOrder::Little);
        let license = std::ffi::CString::new(p.license)
            .map_err(|_| Error::Object("license has a NUL byte".into()))?;
        let mut name = [0u8; 16];
        for (i, b) in p
            .name
            .bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15)
            .enumerate()
        {
            name[i] = b;
        }
        let attempt = |log: &mut [u8], level: u32| {
            let mut attr = Attr::default()
                .u32(0, p.prog_type.as_u32())
                .u32(4, (bytes.len() / 8) as u32)
                .ptr(8, bytes.as_ptr())
                .ptr(16, license.as_ptr())
                .u32(40, p.kern_version)
                .bytes(48, &name)
                .u32(68, p.expected_attach_type.map_or(0, |a| a.as_u32()))
                .u32(108, p.attach_btf_id);
            if let Some((btf, func_info, line_info)) = &p.btf {
                attr = attr.u32(72, btf.as_raw_fd() as u32);
                if !func_info.is_empty() {
                    attr = attr
                        .u32(76, 8)
                        .ptr(80, func_info.as_ptr())
                        .u32(88, func_info.len() as u32);
                }
                if !line_info.is_empty() {
                    attr = attr
                        .u32(92, 16)
                        .ptr(96, line_info.as_ptr())
                        .u32(104, line_info.len() as u32);
                }
            }
            if level > 0 {
                attr = attr
                    .u32(24, level)
                    .u32(28, log.len() as u32)
                    .ptr(32, log.as_ptr());
            }
            bpf_fd(cmd::PROG_LOAD, &mut attr)
        };
        let first = match attempt(&mut [], 0) {
            Ok(fd) => {
                return Ok(LoadedProgram {
                    fd,
                    name: p.name.to_string(),
                    prog_type: p.prog_type,
                    expected_attach_type: p.expected_attach_type,
                })
            }
            Err(e) => e,
        };
        if !matches!(
            first.raw_os_error(),
            Some(libc::EINVAL) | Some(libc::EACCES) | Some(libc::E2BIG)
        ) {
            return Err(Error::sys(
                format!("load {} program `{}`", p.prog_type, p.name),
                first,
            ));
        }
        // Rejected: load again with the log, growing it until it fits.
        let mut size = 1 << 20;
        loop {
            let mut log = vec![0u8; size];
            let r = attempt(&mut log, 1);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            match r {
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && size < 1 << 28 => size *= 4,
                Err(_) | Ok(_) => {
                    return Err(Error::Verifier {
                        program: p.name.to_string(),
                        message: last_complaint(&text),
                        source_line: last_source_line(&text),
                        log: text,
                    })
                }
            }
        }
    }

    /// The fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Type.
    pub fn prog_type(&self) -> ProgramType {
        self.prog_type
    }

    /// Expected attach type.
    pub fn expected_attach_type(&self) -> Option<AttachType> {
        self.expected_attach_type
    }

    /// Runs the program once or `repeat` times in the kernel (`BPF_PROG_TEST_RUN`).
    pub fn test_run(&self, data_in: &[u8], ctx_in: &[u8], repeat: u32) -> Result<TestRunOutput> {
        let mut data_out = vec![0u8; data_in.len() + 256];
        let mut ctx_out = vec![0u8; ctx_in.len()];
        let mut attr = Attr::default()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u32(8, data_in.len() as u32)
            .u32(
                12,
                if data_in.is_empty() {
                    0
                } else {
                    data_out.len() as u32
                },
            )
            .u64(
                16,
                if data_in.is_empty() {
                    0
                } else {
                    data_in.as_ptr() as u64
                },
            )
            .u64(
                24,
                if data_in.is_empty() {
                    0
                } else {
                    data_out.as_mut_ptr() as u64
                },
            )
            .u32(32, repeat)
            .u32(40, ctx_in.len() as u32)
            .u32(44, ctx_out.len() as u32)
            .u64(
                48,
                if ctx_in.is_empty() {
                    0
                } else {
                    ctx_in.as_ptr() as u64
                },
            )
            .u64(
                56,
                if ctx_in.is_empty() {
                    0
                } else {
                    ctx_out.as_mut_ptr() as u64
                },
            );
        bpf(cmd::PROG_TEST_RUN, &mut attr)
            .map_err(|e| Error::sys(format!("test run `{}`", self.name), e))?;
        data_out.truncate(attr.get_u32(12) as usize);
        ctx_out.truncate(attr.get_u32(44) as usize);
        Ok(TestRunOutput {
            retval: attr.get_u32(4),
            duration_ns: attr.get_u32(36),
            data_out,
            ctx_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_complaint_and_the_source_line() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n; return *(int *)0; @ bad.bpf.c:12\n0: (61) r0 = *(u32 *)(r1 +9999)\ninvalid bpf_context access off=9999 size=4\nprocessed 1 insns (limit 1000000)\n";
        assert_eq!(
            last_complaint(log),
            "invalid bpf_context access off=9999 size=4"
        );
        assert_eq!(
            last_source_line(log).unwrap(),
            "bad.bpf.c:12: return *(int *)0;"
        );
    }
}
