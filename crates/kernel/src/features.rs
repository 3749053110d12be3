//! What this kernel supports, found by trying: tiny programs, maps, BTF
//! blobs and links are loaded or created and the kernel's answer read, as
//! libbpf's `libbpf_probes.c` does. Answers are cached for the process.
//!
//! A probe answers `Ok(false)` when the kernel refuses the one thing asked
//! (including with `EPERM`, as when an LSM forbids a program type), and
//! `Err` only when `bpf()` cannot be used at all.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use bpfkit_abi::{AttachType, MapType, ProgramType};
use bpfkit_btf::{BtfBuilder, BtfFeatures, Endian, IntEncoding, Linkage, TypeData, TypeDef};
use bpfkit_isa::{encode, CallTarget, Insn, Operand, Reg, Width};

use crate::error::{Error, Result};
use crate::prog::NATIVE;
use crate::sys::{self, LinkExtra, LinkTarget, LogBuffer};

/// One cached question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Probe {
    ProgType(ProgramType),
    MapType(MapType),
    Helper(ProgramType, i32),
    Tcx,
    XdpLink,
    Fentry,
}

fn cache() -> &'static Mutex<HashMap<Probe, std::result::Result<bool, String>>> {
    static CACHE: OnceLock<Mutex<HashMap<Probe, std::result::Result<bool, String>>>> =
        OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Runs `probe` once per process for `key`; later calls return the answer.
fn cached(key: Probe, probe: impl FnOnce() -> std::result::Result<bool, String>) -> Result<bool> {
    if let Some(r) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return r.map_err(Error::Unsupported);
    }
    let r = match crate::check_bpf_access() {
        Err(why) => Err(format!(
            "cannot probe kernel features: bpf() is unusable: {why}"
        )),
        Ok(()) => probe(),
    };
    if let Ok(mut c) = cache().lock() {
        c.insert(key, r.clone());
    }
    r.map_err(Error::Unsupported)
}

/// `r0 = 0; exit`.
fn return_zero() -> Vec<u8> {
    encode(
        &[
            Insn::Alu {
                width: Width::W64,
                op: bpfkit_isa::AluOp::Mov,
                dst: Reg::R0,
                src: Operand::Imm(0),
            },
            Insn::Exit,
        ],
        NATIVE,
    )
}

/// The load attributes a program type needs to get as far as the verifier.
fn probe_load(prog_type: ProgramType, insns: &[u8]) -> sys::ProgLoad<'_> {
    let mut p = sys::ProgLoad {
        prog_type: prog_type.as_u32(),
        insns,
        name: "bpfkit_probe",
        ..Default::default()
    };
    let attach = match prog_type {
        ProgramType::CgroupSockAddr => Some(AttachType::CgroupInet4Connect),
        ProgramType::CgroupSockopt => Some(AttachType::CgroupGetsockopt),
        ProgramType::SkLookup => Some(AttachType::SkLookup),
        ProgramType::Netfilter => Some(AttachType::Netfilter),
        ProgramType::Tracing => Some(AttachType::TraceFentry),
        ProgramType::Lsm => Some(AttachType::LsmMac),
        _ => None,
    };
    p.expected_attach_type = attach.map_or(0, AttachType::as_u32);
    match prog_type {
        // These need a target; type 1 is no function, so a kernel that
        // knows the type says so in the log.
        ProgramType::Tracing | ProgramType::Lsm | ProgramType::Ext | ProgramType::StructOps => {
            p.attach_btf_id = 1
        }
        ProgramType::Syscall => p.prog_flags = sys::flags::SLEEPABLE,
        _ => {}
    }
    p
}

/// Loads with a small log; returns the result and the log.
fn load_logged(p: &sys::ProgLoad<'_>) -> (io::Result<OwnedFd>, String) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut log = LogBuffer {
        buf: &mut buf,
        level: 1,
        true_size: 0,
    };
    let r = sys::prog_load(p, Some(&mut log));
    (r, crate::prog::log_text(&buf))
}

/// Whether the kernel knows and allows programs of this type.
pub fn program_type(t: ProgramType) -> Result<bool> {
    cached(Probe::ProgType(t), || {
        if t == ProgramType::Unspec {
            return Ok(false);
        }
        let insns = return_zero();
        let (r, log) = load_logged(&probe_load(t, &insns));
        Ok(match r {
            Ok(_) => true,
            Err(e) => match e.raw_os_error() {
                Some(libc::EPERM) => false,
                // ENOTSUPP: the type exists, this use of it does not.
                Some(524) => true,
                // An unknown type fails before the verifier writes anything.
                _ => !log.trim().is_empty(),
            },
        })
    })
}

/// Whether programs of `prog_type` may call helper `helper` (by number).
pub fn helper(prog_type: ProgramType, helper: i32) -> Result<bool> {
    cached(Probe::Helper(prog_type, helper), || {
        let insns = encode(
            &[
                Insn::Call(CallTarget::Helper(helper)),
                Insn::Alu {
                    width: Width::W64,
                    op: bpfkit_isa::AluOp::Mov,
                    dst: Reg::R0,
                    src: Operand::Imm(0),
                },
                Insn::Exit,
            ],
            NATIVE,
        );
        let (r, log) = load_logged(&probe_load(prog_type, &insns));
        if r.is_ok() {
            return Ok(true);
        }
        if log.trim().is_empty() {
            return Ok(false);
        }
        // Past the helper check the verifier complains about the arguments,
        // which still means the helper is there.
        Ok(!["invalid func ", "unknown func ", "cannot use helper "]
            .iter()
            .any(|m| log.contains(m)))
    })
}

/// The BTF blob local storage maps need: `int` keys, and values with a
/// spin lock (`struct { int cnt; struct bpf_spin_lock l; }`).
fn local_storage_btf() -> io::Result<OwnedFd> {
    let mut b = BtfBuilder::new();
    let int = b.add(int_type());
    let lock = b.add(TypeDef::new(
        "bpf_spin_lock",
        TypeData::Composite {
            is_union: false,
            size: 4,
            members: vec![member("val", int, 0)],
        },
    ));
    b.add(TypeDef::new(
        "val",
        TypeData::Composite {
            is_union: false,
            size: 8,
            members: vec![member("cnt", int, 0), member("l", lock, 32)],
        },
    ));
    let blob = b
        .encode(Endian::native())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    sys::btf_load(&blob, None)
}

fn int_type() -> TypeDef {
    TypeDef::new(
        "int",
        TypeData::Int {
            size: 4,
            encoding: IntEncoding(IntEncoding::SIGNED),
            offset: 0,
            bits: 32,
        },
    )
}

fn member(name: &str, type_id: u32, bit_offset: u32) -> bpfkit_btf::MemberDef {
    bpfkit_btf::MemberDef {
        name: name.into(),
        type_id,
        bit_offset,
        bitfield_size: 0,
    }
}

/// Whether the kernel can create maps of this type.
pub fn map_type(t: MapType) -> Result<bool> {
    cached(Probe::MapType(t), || {
        use bpfkit_abi::map_flags::{MMAPABLE, NO_PREALLOC};
        let page = sys::mmap::page_size() as u32;
        let (mut key, mut value, mut max, mut flags) = (4, 4, 1, 0);
        let mut vmlinux_value = 0;
        let mut btf = None;
        let mut inner = None;
        match t {
            MapType::Unspec => return Ok(false),
            MapType::Hash
            | MapType::Array
            | MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::StackTrace => value = 8,
            MapType::LpmTrie => (key, value, flags) = (8, 8, NO_PREALLOC),
            MapType::CgroupStorage | MapType::PercpuCgroupStorage => (key, value, max) = (16, 8, 0),
            MapType::Queue | MapType::Stack | MapType::BloomFilter => key = 0,
            MapType::Ringbuf | MapType::UserRingbuf => (key, value, max) = (0, 0, page),
            MapType::Arena => (key, value, flags) = (0, 0, MMAPABLE),
            MapType::SkStorage
            | MapType::InodeStorage
            | MapType::TaskStorage
            | MapType::CgrpStorage => {
                (value, max, flags) = (8, 0, NO_PREALLOC);
                btf = Some(local_storage_btf().map_err(|e| format!("load probe BTF: {e}"))?);
            }
            MapType::StructOps => vmlinux_value = 1,
            MapType::ArrayOfMaps | MapType::HashOfMaps => {
                inner = Some(
                    sys::map_create(&sys::MapCreate {
                        map_type: MapType::Array.as_u32(),
                        key_size: 4,
                        value_size: 4,
                        max_entries: 1,
                        name: "bpfkit_inner",
                        ..Default::default()
                    })
                    .map_err(|e| format!("create inner map: {e}"))?,
                );
            }
            _ => {}
        }
        let r = sys::map_create(&sys::MapCreate {
            map_type: t.as_u32(),
            key_size: key,
            value_size: value,
            max_entries: max,
            map_flags: flags,
            inner_map: inner.as_ref().map(|f| f.as_fd()),
            name: "bpfkit_probe",
            btf: btf.as_ref().map(|f| f.as_fd()),
            btf_key_type_id: if btf.is_some() { 1 } else { 0 },
            btf_value_type_id: if btf.is_some() { 3 } else { 0 },
            btf_vmlinux_value_type_id: vmlinux_value,
            ..Default::default()
        });
        Ok(match r {
            Ok(_) => true,
            // struct_ops with a bogus kernel type: the type exists.
            Err(e) if t == MapType::StructOps => e.raw_os_error() == Some(524),
            Err(_) => false,
        })
    })
}

/// Whether a kprobe PMU exists, so kprobes can be made without tracefs.
pub fn kprobe_pmu() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
}

/// Whether an uprobe PMU exists.
pub fn uprobe_pmu() -> bool {
    Path::new("/sys/bus/event_source/devices/uprobe/type").exists()
}

/// An ifindex no interface has: tcx link creation then fails with `ENODEV`
/// on kernels that know the attach kind, and `EINVAL` on those that do not.
const NO_SUCH_IFINDEX: u32 = 0x7fff_fffe;

/// Creates a link of `attach` kind on interface `ifindex`: `Ok(true)` if the
/// kernel made it or refused only the interface (`ENODEV`, `EBUSY`,
/// `EEXIST`), `Ok(false)` if it does not know the kind (`EINVAL`).
fn link_kind_probe(
    prog_type: ProgramType,
    attach: AttachType,
    ifindex: u32,
    link_flags: u32,
    extra: LinkExtra<'_>,
) -> std::result::Result<bool, String> {
    let insns = return_zero();
    let mut load = probe_load(prog_type, &insns);
    load.expected_attach_type = attach.as_u32();
    let prog = sys::prog_load(&load, None).map_err(|e| format!("load probe program: {e}"))?;
    // A link made here is dropped at once, detaching the program.
    match sys::link_create(
        prog.as_fd(),
        LinkTarget::Ifindex(ifindex),
        attach.as_u32(),
        link_flags,
        &extra,
    ) {
        Ok(_) => Ok(true),
        Err(e) => Ok(matches!(
            e.raw_os_error(),
            Some(libc::ENODEV) | Some(libc::EBUSY) | Some(libc::EEXIST)
        )),
    }
}

/// Whether tc programs can attach through tcx links (6.6+).
pub fn tcx() -> Result<bool> {
    cached(Probe::Tcx, || {
        link_kind_probe(
            ProgramType::SchedCls,
            AttachType::TcxIngress,
            NO_SUCH_IFINDEX,
            0,
            LinkExtra::Tcx {
                anchor: sys::Anchor::None,
                expected_revision: 0,
            },
        )
    })
}

/// Whether XDP programs can attach through links (5.9+). The kernel
/// answers `EINVAL` both for an unknown interface and an unknown link kind,
/// so this attaches a pass-everything program to the loopback interface in
/// generic mode for an instant (an interface with a program already gives
/// `EBUSY`, which answers the question too).
pub fn xdp_link() -> Result<bool> {
    const LOOPBACK: u32 = 1;
    const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
    cached(Probe::XdpLink, || {
        link_kind_probe(
            ProgramType::Xdp,
            AttachType::Xdp,
            LOOPBACK,
            XDP_FLAGS_SKB_MODE,
            LinkExtra::None,
        )
    })
}

/// Whether BPF ring buffers exist (5.8+).
pub fn ringbuf() -> Result<bool> {
    map_type(MapType::Ringbuf)
}

/// Whether fentry programs can be loaded and attached: one is attached to
/// `bpf_fentry_test1` (a function that exists for this purpose) and
/// detached at once. `Ok(false)` when the kernel or a policy refuses.
pub fn fentry() -> Result<bool> {
    cached(Probe::Fentry, || {
        let Some(target) = vmlinux_func_id("bpf_fentry_test1") else {
            return Ok(false);
        };
        let insns = return_zero();
        let mut load = probe_load(ProgramType::Tracing, &insns);
        load.attach_btf_id = target;
        let Ok(prog) = sys::prog_load(&load, None) else {
            return Ok(false);
        };
        Ok(sys::raw_tracepoint_open(prog.as_fd(), None, 0).is_ok())
    })
}

/// The BTF id of a function in the kernel's BTF.
fn vmlinux_func_id(name: &str) -> Option<u32> {
    let bytes = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    let btf = bpfkit_btf::Btf::from_vec(bytes).ok()?;
    btf.find_by_name_kind(name, bpfkit_btf::Kind::Func)
}

/// Which BTF kinds the kernel accepts, for sanitizing object BTF before
/// loading it (cached).
pub fn btf_features() -> BtfFeatures {
    static FEATURES: OnceLock<BtfFeatures> = OnceLock::new();
    *FEATURES.get_or_init(|| BtfFeatures {
        func: btf_accepts(|b, int| {
            let proto = b.add(proto(int));
            b.add(TypeDef::new(
                "f",
                TypeData::Func {
                    proto,
                    linkage: Linkage::Static,
                },
            ));
        }),
        func_global: btf_accepts(|b, int| {
            let proto = b.add(proto(int));
            b.add(TypeDef::new(
                "f",
                TypeData::Func {
                    proto,
                    linkage: Linkage::Global,
                },
            ));
        }),
        datasec: btf_accepts(|b, int| {
            let var = b.add(TypeDef::new(
                "v",
                TypeData::Var {
                    type_id: int,
                    linkage: Linkage::Static,
                },
            ));
            b.add(TypeDef::new(
                ".data",
                TypeData::Datasec {
                    size: 4,
                    vars: vec![bpfkit_btf::VarSecInfo {
                        type_id: var,
                        offset: 0,
                        size: 4,
                    }],
                },
            ));
        }),
        float: btf_accepts(|b, _| {
            b.add(TypeDef::new("float", TypeData::Float { size: 4 }));
        }),
        decl_tag: btf_accepts(|b, int| {
            let var = b.add(TypeDef::new(
                "v",
                TypeData::Var {
                    type_id: int,
                    linkage: Linkage::Static,
                },
            ));
            b.add(TypeDef::new(
                "tag",
                TypeData::DeclTag {
                    type_id: var,
                    component: -1,
                    kflag: false,
                },
            ));
        }),
        type_tag: btf_accepts(|b, int| {
            let tag = b.add(TypeDef::new(
                "tag",
                TypeData::TypeTag {
                    type_id: int,
                    kflag: false,
                },
            ));
            b.add(TypeDef::new("", TypeData::Ptr(tag)));
        }),
        enum64: btf_accepts(|b, _| {
            b.add(TypeDef::new(
                "e",
                TypeData::Enum {
                    is_64: true,
                    signed: false,
                    size: 8,
                    values: vec![("v".into(), 1 << 40)],
                },
            ));
        }),
    })
}

fn proto(ret: u32) -> TypeDef {
    TypeDef::new(
        "",
        TypeData::FuncProto {
            ret,
            params: Vec::new(),
        },
    )
}

/// Whether the kernel loads an `int` plus the types `add` adds.
fn btf_accepts(add: impl FnOnce(&mut BtfBuilder, u32)) -> bool {
    let mut b = BtfBuilder::new();
    let int = b.add(int_type());
    add(&mut b, int);
    match b.encode(Endian::native()) {
        Ok(blob) => sys::btf_load(&blob, None).is_ok(),
        Err(_) => false,
    }
}

/// Everything probed, for a report such as `bpfkit feature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureReport {
    /// Program types and whether they load.
    pub program_types: Vec<(ProgramType, bool)>,
    /// Map types and whether they can be created.
    pub map_types: Vec<(MapType, bool)>,
    /// A kprobe PMU is present.
    pub kprobe_pmu: bool,
    /// fentry programs load and attach.
    pub fentry: bool,
    /// tcx links exist.
    pub tcx: bool,
    /// XDP links exist.
    pub xdp_link: bool,
    /// BTF kinds accepted.
    pub btf: BtfFeatures,
}

/// Probes everything (a few hundred milliseconds the first time).
pub fn report() -> Result<FeatureReport> {
    let program_types = ProgramType::ALL
        .iter()
        .filter(|t| **t != ProgramType::Unspec)
        .map(|&t| Ok((t, program_type(t)?)))
        .collect::<Result<Vec<_>>>()?;
    let map_types = MapType::ALL
        .iter()
        .filter(|t| **t != MapType::Unspec)
        .map(|&t| Ok((t, map_type(t)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(FeatureReport {
        program_types,
        map_types,
        kprobe_pmu: kprobe_pmu(),
        fentry: fentry()?,
        tcx: tcx()?,
        xdp_link: xdp_link()?,
        btf: btf_features(),
    })
}
