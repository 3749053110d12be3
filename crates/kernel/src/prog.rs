//! Loading programs, with the verifier's log when it says no, and running
//! them in the kernel (`BPF_PROG_TEST_RUN`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use bpfkit_abi::{AttachType, ProgramType};
use bpfkit_isa::{encode, ByteOrder, Insn};

use crate::error::{Error, Result};
use crate::info::ProgramInfo;
use crate::sys::{self, IdKind, LogBuffer};

/// A program's BTF object with its `bpf_func_info` records (`insn_off`,
/// `type_id`) and `bpf_line_info` records (`insn_off`, `file_name_off`,
/// `line_off`, `line << 10 | col`).
pub type ProgramBtf<'a> = (&'a OwnedFd, Vec<[u32; 2]>, Vec<[u32; 4]>);

/// What `BPF_PROG_LOAD` needs.
#[derive(Debug, Clone)]
pub struct ProgramLoad<'a> {
    /// Name (at most 15 bytes of `[A-Za-z0-9_.]` are kept).
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
    /// CO-RE relocations for the kernel to apply against its own BTF while
    /// loading (`bpf_core_relo`: instruction byte offset, local type id,
    /// access string offset, kind), instead of relocating in user space.
    /// They need [`ProgramLoad::btf`] with func or line records.
    pub core_relos: Vec<[u32; 4]>,
}

/// Less common `BPF_PROG_LOAD` inputs, and how to ask the verifier for its log.
#[derive(Debug, Clone, Default)]
pub struct LoadExtras<'a> {
    /// `BPF_F_*` load flags (`sys::flags::SLEEPABLE`, `XDP_HAS_FRAGS`, ...).
    pub prog_flags: u32,
    /// File descriptors that `Imm64::MapIdx` and kfunc module indexes refer to.
    pub fd_array: Vec<BorrowedFd<'a>>,
    /// The program (freplace, fentry on BPF) or module BTF the attach target is in.
    pub attach_prog_or_btf_obj: Option<BorrowedFd<'a>>,
    /// Device to offload to.
    pub ifindex: u32,
    /// Log level of the retry after a rejection (default 1; 2 logs every
    /// instruction's state).
    pub log_level: u32,
    /// Always load with this log level and keep the log, even on success.
    pub always_log: bool,
}

/// What the verifier reported about an accepted program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifierStats {
    /// Instructions the verifier processed (`verified_insns`, 5.16+).
    pub verified_insns: u32,
    /// The verifier log, when [`LoadExtras::always_log`] asked for it.
    pub log: Option<String>,
}

/// A loaded program. Closing the last fd (and detaching it) unloads it.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    id: u32,
    name: String,
    prog_type: ProgramType,
    expected_attach_type: Option<AttachType>,
    stats: VerifierStats,
}

/// Output of [`Program::test_run`].
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

/// Options of [`Program::test_run_with`].
#[derive(Debug, Clone, Default)]
pub struct TestRunOptions<'a> {
    /// Input data (packet).
    pub data: &'a [u8],
    /// Input context.
    pub ctx: &'a [u8],
    /// Runs.
    pub repeat: u32,
    /// Room for output data beyond the input's length (XDP may grow packets).
    pub data_out_extra: usize,
    /// Run on this CPU (`BPF_F_TEST_RUN_ON_CPU`).
    pub cpu: Option<u32>,
}

/// The verifier's last complaint: the last non-empty line that is not a
/// statistics line, a source line or an instruction dump.
pub(crate) fn last_complaint(log: &str) -> String {
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

/// The text of a NUL-terminated log buffer.
pub(crate) fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The byte order the kernel expects instructions in.
pub(crate) const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
    ByteOrder::Big
} else {
    ByteOrder::Little
};

/// The first verifier log buffer, and the kernel's limit (`UINT_MAX >> 2`).
const LOG_START: usize = 1 << 20;
const LOG_MAX: usize = (u32::MAX >> 2) as usize;

/// Loads with a log, growing the buffer until the log fits. Returns the load
/// result and the log.
pub(crate) fn with_growing_log<T>(
    level: u32,
    mut attempt: impl FnMut(&mut LogBuffer<'_>) -> std::io::Result<T>,
) -> (std::io::Result<T>, String) {
    let mut size = LOG_START;
    loop {
        let mut buf = vec![0u8; size];
        let mut log = LogBuffer {
            buf: &mut buf,
            level,
            true_size: 0,
        };
        let r = attempt(&mut log);
        let needed = log.true_size as usize;
        let truncated =
            matches!(&r, Err(e) if e.raw_os_error() == Some(libc::ENOSPC)) || needed > size;
        if truncated && size < LOG_MAX {
            // 6.4+ says how much it needs; older kernels make us guess.
            size = if needed > size { needed } else { size * 4 }.min(LOG_MAX);
            continue;
        }
        return (r, log_text(&buf));
    }
}

fn encode_records<const N: usize>(records: &[[u32; N]]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| r.iter().flat_map(|w| w.to_ne_bytes()))
        .collect()
}

impl Program {
    /// Loads a program. On rejection, loads again with the verifier log
    /// (growing the buffer as needed) and returns its last complaint, the
    /// source line and the whole log.
    pub fn load(p: &ProgramLoad<'_>) -> Result<Program> {
        Program::load_with(p, &LoadExtras::default())
    }

    /// [`Program::load`] with the less common inputs.
    pub fn load_with(p: &ProgramLoad<'_>, extras: &LoadExtras<'_>) -> Result<Program> {
        let bytes = encode(p.insns, NATIVE);
        let license = CString::new(p.license)
            .map_err(|_| Error::Object(format!("program `{}`: license has a NUL byte", p.name)))?;
        let (func_info, line_info) = match &p.btf {
            Some((_, f, l)) => (encode_records(f), encode_records(l)),
            None => (Vec::new(), Vec::new()),
        };
        let fd_array: Vec<i32> = extras.fd_array.iter().map(|f| f.as_raw_fd()).collect();
        let core_relos = encode_records(&p.core_relos);
        let load = sys::ProgLoad {
            prog_type: p.prog_type.as_u32(),
            expected_attach_type: p.expected_attach_type.map_or(0, |a| a.as_u32()),
            insns: &bytes,
            license: &license,
            name: p.name,
            kern_version: p.kern_version,
            prog_flags: extras.prog_flags,
            prog_ifindex: extras.ifindex,
            btf: p.btf.as_ref().map(|(fd, _, _)| fd.as_fd()),
            func_info: &func_info,
            func_info_rec_size: 8,
            line_info: &line_info,
            line_info_rec_size: 16,
            attach_btf_id: p.attach_btf_id,
            attach_prog_or_btf_obj: extras.attach_prog_or_btf_obj,
            fd_array: &fd_array,
            core_relos: &core_relos,
        };
        let level = extras.log_level.max(1);
        let what = || format!("load {} program `{}`", p.prog_type, p.name);
        let (result, mut log) = if extras.always_log {
            let (r, log) = with_growing_log(level, |l| sys::prog_load(&load, Some(l)));
            (r, Some(log))
        } else {
            (sys::prog_load(&load, None), None)
        };
        let fd = match result {
            Ok(fd) => fd,
            Err(e) if !is_verifier_errno(&e) => return Err(Error::sys(what(), e)),
            Err(first) => {
                // Rejected: load again with the log, unless we already have it.
                let (r, text) = match log.take() {
                    Some(text) => (Err(first), text),
                    None => with_growing_log(level, |l| sys::prog_load(&load, Some(l))),
                };
                match r {
                    Ok(fd) => {
                        // Accepted the second time (a transient failure).
                        if extras.always_log {
                            log = Some(text);
                        }
                        fd
                    }
                    Err(e) if text.trim().is_empty() => return Err(Error::sys(what(), e)),
                    Err(_) => {
                        return Err(Error::Verifier {
                            program: p.name.to_string(),
                            message: last_complaint(&text),
                            source_line: last_source_line(&text),
                            log: text,
                        })
                    }
                }
            }
        };
        let (id, verified_insns) = crate::info::program_id_and_verified_insns(fd.as_fd())?;
        Ok(Program {
            id,
            name: p.name.to_string(),
            prog_type: p.prog_type,
            expected_attach_type: p.expected_attach_type,
            stats: VerifierStats {
                verified_insns,
                log,
            },
            fd,
        })
    }

    /// Wraps an fd of a loaded program (from an id, a pin, another process).
    pub fn from_fd(fd: OwnedFd) -> Result<Program> {
        let info = ProgramInfo::from_fd(fd.as_fd())?;
        let prog_type = info.prog_type.ok_or_else(|| {
            Error::Unsupported(format!(
                "program {} has a type bpfkit does not know",
                info.id
            ))
        })?;
        Ok(Program {
            id: info.id,
            name: info.name,
            prog_type,
            expected_attach_type: None,
            stats: VerifierStats {
                verified_insns: info.verified_insns,
                log: None,
            },
            fd,
        })
    }

    /// Opens the program with this kernel id.
    pub fn from_id(id: u32) -> Result<Program> {
        let fd = sys::fd_by_id(IdKind::Prog, id, 0)
            .map_err(|e| Error::sys(format!("open program id {id}"), e))?;
        Program::from_fd(fd)
    }

    /// Opens the program pinned at `path`.
    pub fn from_pin(path: &Path) -> Result<Program> {
        Program::from_fd(crate::fs::open_pinned(path, 0)?)
    }

    /// The fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The kernel's id for it.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Type.
    pub fn prog_type(&self) -> ProgramType {
        self.prog_type
    }

    /// Expected attach type (unknown, `None`, for programs opened by fd).
    pub fn expected_attach_type(&self) -> Option<AttachType> {
        self.expected_attach_type
    }

    /// What the verifier reported at load.
    pub fn verifier_stats(&self) -> &VerifierStats {
        &self.stats
    }

    /// What the kernel reports about it now (run counts, sizes, maps, ...).
    pub fn info(&self) -> Result<ProgramInfo> {
        ProgramInfo::from_fd(self.fd.as_fd())
    }

    /// The instructions as the verifier rewrote them (map fds become
    /// addresses unless `kernel.kptr_restrict` hides them; then all is zero).
    pub fn xlated(&self) -> Result<Vec<Insn>> {
        crate::info::program_xlated(self.fd.as_fd())
    }

    /// The JIT-compiled machine code (empty without the JIT).
    pub fn jited(&self) -> Result<Vec<u8>> {
        crate::info::program_jited(self.fd.as_fd())
    }

    /// Pins the program at `path` in bpffs.
    pub fn pin(&self, path: &Path) -> Result<()> {
        crate::fs::pin(self.fd.as_fd(), path)
    }

    /// Runs the program once or `repeat` times in the kernel (`BPF_PROG_TEST_RUN`).
    pub fn test_run(&self, data_in: &[u8], ctx_in: &[u8], repeat: u32) -> Result<TestRunOutput> {
        self.test_run_with(&TestRunOptions {
            data: data_in,
            ctx: ctx_in,
            repeat,
            data_out_extra: 256,
            cpu: None,
        })
    }

    /// Runs the program in the kernel with all the options.
    pub fn test_run_with(&self, o: &TestRunOptions<'_>) -> Result<TestRunOutput> {
        let mut data_out = vec![
            0u8;
            if o.data.is_empty() {
                0
            } else {
                o.data.len() + o.data_out_extra
            }
        ];
        let mut ctx_out = vec![0u8; o.ctx.len()];
        let r = sys::prog_test_run(
            self.fd.as_fd(),
            sys::TestRun {
                data_in: o.data,
                data_out: (!data_out.is_empty()).then_some(&mut data_out[..]),
                ctx_in: o.ctx,
                ctx_out: (!ctx_out.is_empty()).then_some(&mut ctx_out[..]),
                repeat: o.repeat,
                flags: if o.cpu.is_some() {
                    sys::flags::TEST_RUN_ON_CPU
                } else {
                    0
                },
                cpu: o.cpu.unwrap_or(0),
                batch_size: 0,
            },
        )
        .map_err(|e| Error::sys(format!("test run `{}`", self.name), e))?;
        data_out.truncate(r.data_size_out as usize);
        ctx_out.truncate(r.ctx_size_out as usize);
        Ok(TestRunOutput {
            retval: r.retval,
            duration_ns: r.duration_ns,
            data_out,
            ctx_out,
        })
    }
}

/// Errors after which the verifier log explains the rejection.
fn is_verifier_errno(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::EACCES) | Some(libc::E2BIG) | Some(libc::ENOSPC)
    )
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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

    #[test]
    fn log_grows_until_it_fits() {
        let mut sizes = Vec::new();
        let (r, log) = with_growing_log(1, |l| {
            sizes.push(l.buf.len());
            if l.buf.len() < 3 * LOG_START {
                Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
            } else {
                l.buf[..5].copy_from_slice(b"done\0");
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(log, "done");
        assert_eq!(sizes, vec![LOG_START, 4 * LOG_START]);
    }

    #[test]
    fn log_uses_the_size_the_kernel_asks_for() {
        let mut sizes = Vec::new();
        let (_, _) = with_growing_log(1, |l| {
            sizes.push(l.buf.len());
            l.true_size = (LOG_START + 10) as u32;
            Err::<(), _>(std::io::Error::from_raw_os_error(libc::EACCES))
        });
        assert_eq!(sizes, vec![LOG_START, LOG_START + 10]);
    }
}
