//! What the kernel reports about a live object (`BPF_OBJ_GET_INFO_BY_FD`),
//! decoded from `struct bpf_{prog,map,link,btf}_info`, and a program's
//! translated and JIT-compiled code.

use std::os::fd::{AsFd, BorrowedFd};

use bpfkit_abi::{MapType, ProgramType};
use bpfkit_isa::{decode, Insn};

use crate::error::{Error, Result};
use crate::sys::{self, ProgInfoArrays};

/// Room for any info struct: the kernel fills what it knows and leaves the
/// (zeroed) rest, so newer fields simply read as 0 on older kernels.
const INFO_BUF: usize = 512;

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_ne_bytes(a)
    })
}

fn name_at(b: &[u8], off: usize) -> String {
    let s = b.get(off..off + 16).unwrap_or(&[]);
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

/// A field of `/proc/self/fdinfo/FD` (`memlock`, `frozen`, ...), as
/// bpftool's `get_fdinfo` reads it; `None` when the kernel does not say.
pub fn fdinfo_field(fd: BorrowedFd<'_>, key: &str) -> Option<String> {
    use std::os::fd::AsRawFd;
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn fdinfo_u64(fd: BorrowedFd<'_>, key: &str) -> Option<u64> {
    fdinfo_field(fd, key)?.parse().ok()
}

fn raw_info(fd: BorrowedFd<'_>, what: &str) -> Result<[u8; INFO_BUF]> {
    let mut buf = [0u8; INFO_BUF];
    sys::obj_get_info_by_fd(fd, &mut buf).map_err(|e| Error::sys(format!("get {what} info"), e))?;
    Ok(buf)
}

/// A program's id and verified instruction count: what loading needs, in
/// one info call (a full [`ProgramInfo`] also reads the program's BTF and
/// map ids, which would cost every load that time).
pub(crate) fn program_id_and_verified_insns(fd: BorrowedFd<'_>) -> Result<(u32, u32)> {
    let buf = raw_info(fd, "program")?;
    Ok((
        u32_at(&buf, prog_off::ID),
        u32_at(&buf, prog_off::VERIFIED_INSNS),
    ))
}

/// What the kernel reports about a program (`struct bpf_prog_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramInfo {
    /// Program id.
    pub id: u32,
    /// Program type (`None` if newer than bpfkit).
    pub prog_type: Option<ProgramType>,
    /// Name as the kernel keeps it (first 15 bytes).
    pub name: String,
    /// Full name: [`name`](Self::name), or where the kernel truncated it,
    /// the name of the program's function in its BTF (see
    /// [`ProgramInfo::from_fd`]).
    pub full_name: String,
    /// Tag (hash of the instructions), as 16 hex digits.
    pub tag: String,
    /// Bytes of translated instructions.
    pub bytes_xlated: u32,
    /// Bytes of JIT-compiled code (0 when not JITed).
    pub bytes_jited: u32,
    /// Load time, nanoseconds since boot (`CLOCK_BOOTTIME`); see
    /// [`ProgramInfo::loaded_at_unix_secs`] for a date.
    pub load_time_ns: u64,
    /// User id that loaded it.
    pub uid: u32,
    /// Ids of the maps it uses.
    pub map_ids: Vec<u32>,
    /// Whether its license is GPL-compatible.
    pub gpl_compatible: bool,
    /// Id of its BTF object (0: none).
    pub btf_id: u32,
    /// Total run time in ns (counted while `BPF_ENABLE_STATS` or
    /// `kernel.bpf_stats_enabled` is on).
    pub run_time_ns: u64,
    /// Runs counted likewise.
    pub run_cnt: u64,
    /// Runs skipped because the program was already running on the CPU.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// BTF id of its attach target.
    pub attach_btf_id: u32,
    /// Bytes charged to the memlock limit (`memlock` in its fdinfo).
    pub memlock: Option<u64>,
}

/// Offsets in `struct bpf_prog_info`.
mod prog_off {
    pub const TYPE: usize = 0;
    pub const ID: usize = 4;
    pub const TAG: usize = 8;
    pub const JITED_LEN: usize = 16;
    pub const XLATED_LEN: usize = 20;
    pub const LOAD_TIME: usize = 40;
    pub const UID: usize = 48;
    pub const NR_MAP_IDS: usize = 52;
    pub const NAME: usize = 64;
    pub const GPL: usize = 84;
    pub const BTF_ID: usize = 128;
    pub const NR_FUNC_INFO: usize = 144;
    pub const RUN_TIME: usize = 192;
    pub const RUN_CNT: usize = 200;
    pub const RECURSION_MISSES: usize = 208;
    pub const VERIFIED_INSNS: usize = 216;
    pub const ATTACH_BTF_ID: usize = 224;
}

impl ProgramInfo {
    /// The info of the program behind `fd`, with its map ids and its full
    /// name.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<ProgramInfo> {
        use prog_off::*;
        let first = raw_info(fd, "program")?;
        // A second call fetches the map ids, now that we know how many.
        let nr_maps = u32_at(&first, NR_MAP_IDS) as usize;
        let mut map_ids = vec![0u32; nr_maps];
        let buf = if nr_maps > 0 {
            let mut buf = [0u8; INFO_BUF];
            sys::prog_info(
                fd,
                &mut buf,
                ProgInfoArrays {
                    map_ids: Some(&mut map_ids),
                    ..Default::default()
                },
            )
            .map_err(|e| Error::sys("get program map ids", e))?;
            // Maps may have been released between the calls.
            map_ids.truncate(u32_at(&buf, NR_MAP_IDS) as usize);
            buf
        } else {
            first
        };
        let name = name_at(&buf, NAME);
        let btf_id = u32_at(&buf, BTF_ID);
        let full_name = full_name(fd, &name, btf_id, u32_at(&buf, NR_FUNC_INFO));
        Ok(ProgramInfo {
            id: u32_at(&buf, ID),
            prog_type: ProgramType::from_u32(u32_at(&buf, TYPE)),
            name,
            full_name,
            tag: buf[TAG..TAG + 8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            bytes_jited: u32_at(&buf, JITED_LEN),
            bytes_xlated: u32_at(&buf, XLATED_LEN),
            load_time_ns: u64_at(&buf, LOAD_TIME),
            uid: u32_at(&buf, UID),
            map_ids,
            gpl_compatible: u32_at(&buf, GPL) & 1 != 0,
            btf_id,
            run_time_ns: u64_at(&buf, RUN_TIME),
            run_cnt: u64_at(&buf, RUN_CNT),
            recursion_misses: u64_at(&buf, RECURSION_MISSES),
            verified_insns: u32_at(&buf, VERIFIED_INSNS),
            attach_btf_id: u32_at(&buf, ATTACH_BTF_ID),
            memlock: fdinfo_u64(fd, "memlock"),
        })
    }
}

/// A program's full name as bpftool's `get_prog_full_name` finds it: a
/// kernel name shorter than BPF_OBJ_NAME_LEN - 1 bytes is whole; a longer
/// one may be truncated, so with BTF and func info the name of the first
/// func info's `BTF_KIND_FUNC` in the program's BTF is taken instead. Any
/// failure on the way keeps the kernel's name.
fn full_name(fd: BorrowedFd<'_>, short: &str, btf_id: u32, nr_func_info: u32) -> String {
    if short.len() < 15 || btf_id == 0 || nr_func_info == 0 {
        return short.to_string();
    }
    let from_btf = || -> Option<String> {
        let mut func_info = [[0u32; 2]; 1];
        let mut buf = [0u8; INFO_BUF];
        sys::prog_info(
            fd,
            &mut buf,
            ProgInfoArrays {
                func_info: Some(&mut func_info),
                ..Default::default()
            },
        )
        .ok()?;
        let btf = btf_by_id(btf_id).ok()?;
        let func = btf.type_by_id(func_info[0][1]).ok()?;
        (func.kind() == bpfkit_btf::Kind::Func && !func.name().is_empty())
            .then(|| func.name().to_string())
    };
    from_btf().unwrap_or_else(|| short.to_string())
}

/// The kernel's name and tag of the program behind `fd`, from one info
/// call (no map ids, no BTF): what handles match on.
pub(crate) fn program_name_and_tag(fd: BorrowedFd<'_>) -> Result<(String, [u8; 8])> {
    let b = raw_info(fd, "program")?;
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&b[prog_off::TAG..prog_off::TAG + 8]);
    Ok((name_at(&b, prog_off::NAME), tag))
}

impl ProgramInfo {
    /// When it was loaded, in seconds since the Unix epoch, as bpftool
    /// prints `loaded_at` (see [`crate::time::boot_ns_to_unix_secs`]);
    /// `None` when the kernel gave no load time or the clocks are unreadable.
    pub fn loaded_at_unix_secs(&self) -> Option<i64> {
        if self.load_time_ns == 0 {
            return None;
        }
        crate::time::boot_ns_to_unix_secs(self.load_time_ns)
    }
}

/// The program's translated instructions as raw bytes.
pub fn program_xlated_bytes(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    program_code(fd, true)
}

/// The program's translated instructions, decoded.
pub fn program_xlated(fd: BorrowedFd<'_>) -> Result<Vec<Insn>> {
    let bytes = program_xlated_bytes(fd)?;
    decode(&bytes, crate::prog::NATIVE)
        .map_err(|e| Error::Object(format!("decode translated instructions: {e}")))
}

/// Kernel addresses of the program's JIT-compiled functions: the main
/// program, then each subprogram (empty when not JITed, or when the caller
/// may not see kernel addresses).
pub fn program_jited_ksyms(fd: BorrowedFd<'_>) -> Result<Vec<u64>> {
    const NR_JITED_KSYMS: usize = 104;
    let first = raw_info(fd, "program")?;
    let n = u32_at(&first, NR_JITED_KSYMS) as usize;
    let mut ksyms = vec![0u64; n];
    if n == 0 {
        return Ok(ksyms);
    }
    let mut buf = [0u8; INFO_BUF];
    sys::prog_info(
        fd,
        &mut buf,
        ProgInfoArrays {
            jited_ksyms: Some(&mut ksyms),
            ..Default::default()
        },
    )
    .map_err(|e| Error::sys("get program JIT symbols", e))?;
    ksyms.truncate(u32_at(&buf, NR_JITED_KSYMS) as usize);
    Ok(ksyms)
}

/// Where a program's JIT-compiled code lies in the kernel: each function's
/// address and length (the code `program_jited` returns is these functions
/// one after another) and the address of each BTF line record's code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JitedLayout {
    /// Kernel address of each function (main program first); empty when
    /// the caller may not see kernel addresses.
    pub ksyms: Vec<u64>,
    /// Bytes of each function's code, in the same order.
    pub func_lens: Vec<u32>,
    /// Kernel address of the code of each line record (`jited_line_info`);
    /// empty without BTF line info or kernel addresses.
    pub line_addrs: Vec<u64>,
}

/// The program's JIT-compiled functions and line addresses.
pub fn program_jited_layout(fd: BorrowedFd<'_>) -> Result<JitedLayout> {
    const NR_JITED_KSYMS: usize = 104;
    const NR_JITED_FUNC_LENS: usize = 108;
    const NR_JITED_LINE_INFO: usize = 168;
    let first = raw_info(fd, "program")?;
    let mut layout = JitedLayout {
        ksyms: vec![0; u32_at(&first, NR_JITED_KSYMS) as usize],
        func_lens: vec![0; u32_at(&first, NR_JITED_FUNC_LENS) as usize],
        line_addrs: vec![0; u32_at(&first, NR_JITED_LINE_INFO) as usize],
    };
    if layout.ksyms.is_empty() && layout.func_lens.is_empty() && layout.line_addrs.is_empty() {
        return Ok(layout);
    }
    let mut buf = [0u8; INFO_BUF];
    sys::prog_info(
        fd,
        &mut buf,
        ProgInfoArrays {
            jited_ksyms: (!layout.ksyms.is_empty()).then_some(&mut layout.ksyms[..]),
            jited_func_lens: (!layout.func_lens.is_empty()).then_some(&mut layout.func_lens[..]),
            jited_line_info: (!layout.line_addrs.is_empty()).then_some(&mut layout.line_addrs[..]),
            ..Default::default()
        },
    )
    .map_err(|e| Error::sys("get program JIT layout", e))?;
    layout.ksyms.truncate(u32_at(&buf, NR_JITED_KSYMS) as usize);
    layout
        .func_lens
        .truncate(u32_at(&buf, NR_JITED_FUNC_LENS) as usize);
    layout
        .line_addrs
        .truncate(u32_at(&buf, NR_JITED_LINE_INFO) as usize);
    Ok(layout)
}

/// A program's BTF records, with instruction offsets in its translated
/// instructions; both empty when it was loaded without BTF.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramDebugInfo {
    /// `struct bpf_func_info`: `[insn_off, type_id]`, one per function.
    pub funcs: Vec<[u32; 2]>,
    /// `struct bpf_line_info`: `[insn_off, file_name_off, line_off, line_col]`.
    pub lines: Vec<[u32; 4]>,
}

/// The program's BTF function and source line records.
pub fn program_debug_info(fd: BorrowedFd<'_>) -> Result<ProgramDebugInfo> {
    const NR_FUNC_INFO: usize = 144;
    const NR_LINE_INFO: usize = 148;
    let first = raw_info(fd, "program")?;
    let mut funcs = vec![[0u32; 2]; u32_at(&first, NR_FUNC_INFO) as usize];
    let mut lines = vec![[0u32; 4]; u32_at(&first, NR_LINE_INFO) as usize];
    if funcs.is_empty() && lines.is_empty() {
        return Ok(ProgramDebugInfo { funcs, lines });
    }
    let mut buf = [0u8; INFO_BUF];
    sys::prog_info(
        fd,
        &mut buf,
        ProgInfoArrays {
            func_info: (!funcs.is_empty()).then_some(&mut funcs[..]),
            line_info: (!lines.is_empty()).then_some(&mut lines[..]),
            ..Default::default()
        },
    )
    .map_err(|e| Error::sys("get program func and line info", e))?;
    funcs.truncate(u32_at(&buf, NR_FUNC_INFO) as usize);
    lines.truncate(u32_at(&buf, NR_LINE_INFO) as usize);
    Ok(ProgramDebugInfo { funcs, lines })
}

/// The BTF object with this id, parsed (a program's or map's `btf_id`).
pub fn btf_by_id(id: u32) -> Result<bpfkit_btf::Btf> {
    let fd = sys::fd_by_id(sys::IdKind::Btf, id, 0)
        .map_err(|e| Error::sys(format!("open BTF id {id}"), e))?;
    bpfkit_btf::Btf::from_vec(btf_bytes(fd.as_fd())?)
        .map_err(|e| Error::Object(format!("BTF id {id}: {e}")))
}

/// The program's JIT-compiled machine code (empty when not JITed).
pub fn program_jited(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    program_code(fd, false)
}

fn program_code(fd: BorrowedFd<'_>, xlated: bool) -> Result<Vec<u8>> {
    let first = raw_info(fd, "program")?;
    let off = if xlated {
        prog_off::XLATED_LEN
    } else {
        prog_off::JITED_LEN
    };
    let len = u32_at(&first, off) as usize;
    let mut code = vec![0u8; len];
    if len == 0 {
        return Ok(code);
    }
    let mut buf = [0u8; INFO_BUF];
    let arrays = if xlated {
        ProgInfoArrays {
            xlated: Some(&mut code),
            ..Default::default()
        }
    } else {
        ProgInfoArrays {
            jited: Some(&mut code),
            ..Default::default()
        }
    };
    sys::prog_info(fd, &mut buf, arrays).map_err(|e| Error::sys("dump program code", e))?;
    code.truncate(u32_at(&buf, off) as usize);
    Ok(code)
}

/// What the kernel reports about a map (`struct bpf_map_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapInfo {
    /// Map id.
    pub id: u32,
    /// Map type (`None` if newer than bpfkit).
    pub map_type: Option<MapType>,
    /// Name (first 15 bytes).
    pub name: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Creation flags.
    pub flags: u32,
    /// Id of its BTF object (0: none).
    pub btf_id: u32,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
    /// Per-type extra (bloom filter hash count).
    pub map_extra: u64,
    /// Bytes charged to the memlock limit (`memlock` in its fdinfo).
    pub memlock: Option<u64>,
    /// Whether user space may no longer write it (`frozen` in its fdinfo).
    pub frozen: Option<bool>,
    /// For a program array: the type of the programs it holds, once one is
    /// in it (`owner_prog_type`).
    pub owner_prog_type: Option<u32>,
    /// For a program array: whether its programs are JIT-compiled (`owner_jited`).
    pub owner_jited: Option<bool>,
}

impl MapInfo {
    /// The info of the map behind `fd`.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<MapInfo> {
        let b = raw_info(fd, "map")?;
        Ok(MapInfo {
            id: u32_at(&b, 4),
            map_type: MapType::from_u32(u32_at(&b, 0)),
            key_size: u32_at(&b, 8),
            value_size: u32_at(&b, 12),
            max_entries: u32_at(&b, 16),
            flags: u32_at(&b, 20),
            name: name_at(&b, 24),
            btf_id: u32_at(&b, 64),
            btf_key_type_id: u32_at(&b, 68),
            btf_value_type_id: u32_at(&b, 72),
            map_extra: u64_at(&b, 80),
            memlock: fdinfo_u64(fd, "memlock"),
            frozen: fdinfo_u64(fd, "frozen").map(|v| v != 0),
            owner_prog_type: fdinfo_u64(fd, "owner_prog_type").map(|v| v as u32),
            owner_jited: fdinfo_u64(fd, "owner_jited").map(|v| v != 0),
        })
    }
}

/// What the kernel reports about a link (`struct bpf_link_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkInfo {
    /// Link id.
    pub id: u32,
    /// Link type (`enum bpf_link_type`).
    pub link_type: u32,
    /// The attached program's id.
    pub prog_id: u32,
    /// What it is attached to, for the kinds whose details bpfkit reads.
    pub target: LinkTarget,
}

/// The kind-specific part of `struct bpf_link_info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LinkTarget {
    /// A raw tracepoint link: the tracepoint's name.
    RawTracepoint {
        /// Tracepoint name.
        tp_name: String,
    },
    /// A tracing (fentry/fexit/...) link.
    Tracing {
        /// `enum bpf_attach_type`.
        attach_type: u32,
        /// Id of the BTF object (or program) holding the target.
        target_obj_id: u32,
        /// BTF id of the target function.
        target_btf_id: u32,
    },
    /// A cgroup link.
    Cgroup {
        /// The cgroup's id.
        cgroup_id: u64,
        /// `enum bpf_attach_type`.
        attach_type: u32,
    },
    /// A network namespace link.
    Netns {
        /// The namespace's inode number.
        netns_ino: u32,
        /// `enum bpf_attach_type`.
        attach_type: u32,
    },
    /// A kind whose details bpfkit does not read.
    #[default]
    Other,
}

/// `enum bpf_link_type` numbers of the kinds [`LinkTarget`] describes.
mod link_kind {
    pub const RAW_TRACEPOINT: u32 = 1;
    pub const TRACING: u32 = 2;
    pub const CGROUP: u32 = 3;
    pub const NETNS: u32 = 5;
}

impl LinkInfo {
    /// The info of the link behind `fd`.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<LinkInfo> {
        let b = raw_info(fd, "link")?;
        let link_type = u32_at(&b, 0);
        let target = match link_type {
            link_kind::RAW_TRACEPOINT => {
                // Tracepoint names are short; the kernel truncates to fit.
                let mut name = [0u8; 256];
                let mut buf = [0u8; INFO_BUF];
                sys::link_info(fd, &mut buf, &mut name)
                    .map_err(|e| Error::sys("get link info", e))?;
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                LinkTarget::RawTracepoint {
                    tp_name: String::from_utf8_lossy(&name[..end]).into_owned(),
                }
            }
            link_kind::TRACING => LinkTarget::Tracing {
                attach_type: u32_at(&b, 16),
                target_obj_id: u32_at(&b, 20),
                target_btf_id: u32_at(&b, 24),
            },
            link_kind::CGROUP => LinkTarget::Cgroup {
                cgroup_id: u64_at(&b, 16),
                attach_type: u32_at(&b, 24),
            },
            link_kind::NETNS => LinkTarget::Netns {
                netns_ino: u32_at(&b, 16),
                attach_type: u32_at(&b, 20),
            },
            _ => LinkTarget::Other,
        };
        Ok(LinkInfo {
            link_type,
            id: u32_at(&b, 4),
            prog_id: u32_at(&b, 8),
            target,
        })
    }
}

/// What the kernel reports about a BTF object (`struct bpf_btf_info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BtfInfo {
    /// BTF object id.
    pub id: u32,
    /// Size of the raw BTF in bytes.
    pub size: u32,
    /// Whether it is the kernel's or a module's BTF.
    pub kernel_btf: bool,
    /// Name: `vmlinux` or the module's for kernel BTF, else usually empty.
    pub name: String,
}

impl BtfInfo {
    /// The info of the BTF object behind `fd`.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<BtfInfo> {
        let mut b = [0u8; INFO_BUF];
        let mut name = [0u8; 64];
        sys::btf_info(fd, &mut b, &mut name).map_err(|e| Error::sys("get BTF info", e))?;
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Ok(BtfInfo {
            size: u32_at(&b, 8),
            id: u32_at(&b, 12),
            kernel_btf: u32_at(&b, 28) != 0,
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
        })
    }
}

/// The raw bytes of the BTF object behind `fd` (split BTF for modules: its
/// base is vmlinux).
pub fn btf_bytes(fd: BorrowedFd<'_>) -> Result<Vec<u8>> {
    let size = BtfInfo::from_fd(fd)?.size as usize;
    let mut data = vec![0u8; size];
    let got = sys::btf_info_data(fd, &mut data).map_err(|e| Error::sys("read BTF object", e))?;
    data.truncate((got as usize).min(size));
    Ok(data)
}

/// The kernel id of a program, map, link or BTF fd (the id is the second
/// `u32` of every info struct but BTF's).
pub fn id_of(fd: BorrowedFd<'_>) -> Result<u32> {
    let b = raw_info(fd, "object")?;
    Ok(u32_at(&b, 4))
}
