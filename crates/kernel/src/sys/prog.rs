//! Program commands: load and test run.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use super::attr::{obj_name, ProgLoadAttr, Ptr, PtrMut, TestRunAttr};
use super::{fd_u32, invalid, raw, sys_bpf, sys_bpf_fd};

/// What `BPF_PROG_LOAD` takes.
#[derive(Debug, Clone)]
pub struct ProgLoad<'a> {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type` the program will be attached with (0 if none).
    pub expected_attach_type: u32,
    /// Encoded instructions (8 bytes each, native byte order).
    pub insns: &'a [u8],
    /// License; GPL-only helpers need a GPL-compatible one.
    pub license: &'a CStr,
    /// Name: at most 15 bytes of `[A-Za-z0-9_.]` are kept.
    pub name: &'a str,
    /// `LINUX_VERSION_CODE` (checked only by old kernels for kprobes).
    pub kern_version: u32,
    /// `BPF_F_*` load flags (`SLEEPABLE`, `XDP_HAS_FRAGS`, ...).
    pub prog_flags: u32,
    /// Device to offload to.
    pub prog_ifindex: u32,
    /// The program's BTF object.
    pub btf: Option<BorrowedFd<'a>>,
    /// `bpf_func_info` records, `func_info_rec_size` bytes each.
    pub func_info: &'a [u8],
    /// Size of one `bpf_func_info` record (8).
    pub func_info_rec_size: u32,
    /// `bpf_line_info` records, `line_info_rec_size` bytes each.
    pub line_info: &'a [u8],
    /// Size of one `bpf_line_info` record (16).
    pub line_info_rec_size: u32,
    /// BTF type id of the attach target (fentry, tp_btf, lsm, ...).
    pub attach_btf_id: u32,
    /// Program (freplace, fentry on BPF) or module BTF object the target is in.
    pub attach_prog_or_btf_obj: Option<BorrowedFd<'a>>,
    /// File descriptors that `BPF_PSEUDO_MAP_IDX` and kfunc module indexes refer to.
    pub fd_array: &'a [i32],
    /// `bpf_core_relo` records (16 bytes each: byte offset of the
    /// instruction, local type id, access string offset, kind) for the
    /// kernel to apply against its own BTF (`bpf_core_apply`, 5.17+). The
    /// kernel reads them only with func_info or line_info (check_btf_info).
    pub core_relos: &'a [u8],
}

impl Default for ProgLoad<'_> {
    fn default() -> Self {
        ProgLoad {
            prog_type: 0,
            expected_attach_type: 0,
            insns: &[],
            core_relos: &[],
            license: c"GPL",
            name: "",
            kern_version: 0,
            prog_flags: 0,
            prog_ifindex: 0,
            btf: None,
            func_info: &[],
            func_info_rec_size: 8,
            line_info: &[],
            line_info_rec_size: 16,
            attach_btf_id: 0,
            attach_prog_or_btf_obj: None,
            fd_array: &[],
        }
    }
}

/// A verifier log buffer and its level (1: the failing path, 2: every
/// instruction, 4: statistics only; levels combine).
#[derive(Debug)]
pub struct LogBuffer<'b> {
    /// Where the kernel writes the log (NUL-terminated).
    pub buf: &'b mut [u8],
    /// `log_level`.
    pub level: u32,
    /// Set by the kernel (6.4+): the size the whole log needs, NUL included.
    pub true_size: u32,
}

fn records(bytes: &[u8], rec_size: u32, what: &str) -> io::Result<u32> {
    if bytes.is_empty() {
        return Ok(0);
    }
    if rec_size == 0 || bytes.len() % rec_size as usize != 0 {
        return Err(invalid(&format!(
            "{what}: {} bytes is not a whole number of {rec_size}-byte records",
            bytes.len()
        )));
    }
    u32::try_from(bytes.len() / rec_size as usize).map_err(|_| invalid(what))
}

/// Size of `struct bpf_core_relo`.
pub const CORE_RELO_SIZE: u32 = 16;

/// Loads a program. With a `log`, the verifier writes its log there (and the
/// size it needed into `log.true_size`).
pub fn prog_load(p: &ProgLoad<'_>, log: Option<&mut LogBuffer<'_>>) -> io::Result<OwnedFd> {
    if p.insns.is_empty() || p.insns.len() % 8 != 0 {
        return Err(invalid(
            "instructions must be a non-empty multiple of 8 bytes",
        ));
    }
    let insn_cnt =
        u32::try_from(p.insns.len() / 8).map_err(|_| invalid("too many instructions"))?;
    let func_info_cnt = records(p.func_info, p.func_info_rec_size, "func_info")?;
    let line_info_cnt = records(p.line_info, p.line_info_rec_size, "line_info")?;
    let core_relo_cnt = records(p.core_relos, CORE_RELO_SIZE, "core_relos")?;
    let (log_level, log_size, log_buf, true_size_out) = match log {
        Some(l) => {
            let size = u32::try_from(l.buf.len()).map_err(|_| invalid("log buffer too large"))?;
            (
                l.level,
                size,
                PtrMut::slice(&mut *l.buf),
                Some(&mut l.true_size),
            )
        }
        None => (0, 0, PtrMut::default(), None),
    };
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        insn_cnt,
        insns: Ptr::slice(p.insns),
        license: Ptr::cstr(p.license),
        log_level,
        log_size,
        log_buf,
        kern_version: p.kern_version,
        prog_flags: p.prog_flags,
        prog_name: obj_name(p.name),
        prog_ifindex: p.prog_ifindex,
        expected_attach_type: p.expected_attach_type,
        prog_btf_fd: raw(p.btf),
        func_info_rec_size: if func_info_cnt > 0 {
            p.func_info_rec_size
        } else {
            0
        },
        func_info: Ptr::slice(p.func_info),
        func_info_cnt,
        line_info_rec_size: if line_info_cnt > 0 {
            p.line_info_rec_size
        } else {
            0
        },
        line_info: Ptr::slice(p.line_info),
        line_info_cnt,
        attach_btf_id: p.attach_btf_id,
        attach_prog_or_btf_obj_fd: raw(p.attach_prog_or_btf_obj),
        fd_array: Ptr::slice(p.fd_array),
        core_relo_cnt,
        core_relos: Ptr::slice(p.core_relos),
        core_relo_rec_size: if core_relo_cnt > 0 { CORE_RELO_SIZE } else { 0 },
        ..Default::default()
    };
    let r = sys_bpf_fd(&mut attr);
    if let Some(t) = true_size_out {
        *t = attr.log_true_size;
    }
    r
}

/// Input and output of `BPF_PROG_TEST_RUN`.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    /// Packet or other input data.
    pub data_in: &'a [u8],
    /// Where output data goes; set to the written length on return.
    pub data_out: Option<&'a mut [u8]>,
    /// Context input (e.g. `struct __sk_buff`, `xdp_md`, a `syscall` program's argument).
    pub ctx_in: &'a [u8],
    /// Where the output context goes.
    pub ctx_out: Option<&'a mut [u8]>,
    /// Runs (0 and 1 both mean once).
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// CPU to run on (with `BPF_F_TEST_RUN_ON_CPU`).
    pub cpu: u32,
    /// XDP live-frames batch size.
    pub batch_size: u32,
}

/// What the kernel reports back from a test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TestRunResult {
    /// The program's return value.
    pub retval: u32,
    /// Mean run time in nanoseconds.
    pub duration_ns: u32,
    /// Bytes written to `data_out`.
    pub data_size_out: u32,
    /// Bytes written to `ctx_out`.
    pub ctx_size_out: u32,
}

/// Runs a program in the kernel on the given input.
pub fn prog_test_run(prog: BorrowedFd<'_>, t: TestRun<'_>) -> io::Result<TestRunResult> {
    let len = |n: usize| u32::try_from(n).map_err(|_| invalid("test run buffer too large"));
    let data_size_in = len(t.data_in.len())?;
    let ctx_size_in = len(t.ctx_in.len())?;
    let data_size_out = len(t.data_out.as_ref().map_or(0, |b| b.len()))?;
    let ctx_size_out = len(t.ctx_out.as_ref().map_or(0, |b| b.len()))?;
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(prog),
        data_size_in,
        data_size_out,
        data_in: Ptr::slice(t.data_in),
        data_out: t.data_out.map_or_else(PtrMut::default, PtrMut::slice),
        repeat: t.repeat,
        ctx_size_in,
        ctx_size_out,
        ctx_in: Ptr::slice(t.ctx_in),
        ctx_out: t.ctx_out.map_or_else(PtrMut::default, PtrMut::slice),
        flags: t.flags,
        cpu: t.cpu,
        batch_size: t.batch_size,
        ..Default::default()
    };
    sys_bpf(&mut attr)?;
    Ok(TestRunResult {
        retval: attr.retval,
        duration_ns: attr.duration,
        data_size_out: attr.data_size_out,
        ctx_size_out: attr.ctx_size_out,
    })
}
