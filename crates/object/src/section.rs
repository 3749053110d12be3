//! Program section names (`SEC("...")`) → program type, expected attach type
//! and attach target, following libbpf's section table.

use bpfkit_abi::{AttachType as A, ProgramType as P};

/// Where a program attaches, as far as its section name says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachTarget {
    /// The section name says nothing about the target (`xdp`, `socket`, `uprobe` alone...).
    Unspecified,
    /// `tracepoint/<category>/<name>`, `tp/...`.
    Tracepoint {
        /// Category (directory under tracefs `events/`).
        category: String,
        /// Event name.
        name: String,
    },
    /// `raw_tracepoint/<name>`, `raw_tp/...`.
    RawTracepoint {
        /// Tracepoint name.
        name: String,
    },
    /// `kprobe/<func>[+off]`, `kretprobe/<func>`.
    Kprobe {
        /// Kernel function.
        function: String,
        /// Offset into the function.
        offset: u64,
        /// Return probe.
        retprobe: bool,
    },
    /// `ksyscall/<syscall>`, `kretsyscall/<syscall>`.
    Ksyscall {
        /// System call name.
        syscall: String,
        /// Return probe.
        retprobe: bool,
    },
    /// `uprobe/<binary>:<func>[+off]`, `uretprobe/...`; `uprobe//abs/path:func`.
    Uprobe {
        /// Executable or library path (or library name).
        binary: String,
        /// Function symbol, empty when attaching by offset.
        function: String,
        /// Offset from the symbol (or into the file when `function` is empty).
        offset: u64,
        /// Return probe.
        retprobe: bool,
    },
    /// `usdt/<binary>:<provider>:<name>`.
    Usdt {
        /// Binary path.
        binary: String,
        /// USDT provider.
        provider: String,
        /// Probe name.
        name: String,
    },
    /// A kernel object named by BTF: the function of fentry/fexit/fmod_ret/
    /// freplace, the LSM hook, the tp_btf tracepoint, the iterator, the
    /// struct_ops type.
    Kernel {
        /// The name.
        name: String,
    },
}

/// What a section name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionKind {
    /// Program type.
    pub prog_type: P,
    /// Expected attach type, when the program type needs one.
    pub attach_type: Option<A>,
    /// Where it attaches.
    pub target: AttachTarget,
    /// Sleepable variant (`.s` suffix).
    pub sleepable: bool,
}

/// The kind of program a section makes, as the `bpfkit` library types
/// programs: each kind has its own way to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// `tracepoint/…`.
    TracePoint,
    /// `raw_tracepoint/…`.
    RawTracePoint,
    /// `tp_btf/…`.
    BtfTracePoint,
    /// `fentry/…`, `fexit/…`, `fmod_ret/…`.
    FEntry,
    /// `lsm/…`.
    Lsm,
    /// `iter/…`.
    Iter,
    /// `kprobe/…`, `kretprobe/…`, `ksyscall/…`.
    KProbe,
    /// `uprobe/…`, `uretprobe/…`.
    UProbe,
    /// `perf_event`.
    PerfEvent,
    /// `xdp`.
    Xdp,
    /// `tc`, `classifier`.
    SchedClassifier,
    /// `socket`.
    SocketFilter,
    /// `cgroup_skb/…`.
    CgroupSkb,
    /// `cgroup/connect4` and the other socket-address hooks.
    CgroupSockAddr,
    /// `cgroup/sock_create` and the other socket hooks.
    CgroupSock,
    /// `sk_msg`, `sk_skb/…`.
    SkMsg,
    /// Anything else.
    Other,
}

impl ProgramKind {
    /// The kind's name, which is also the `bpfkit` type's: `TracePoint`, ...
    pub fn name(self) -> &'static str {
        match self {
            ProgramKind::TracePoint => "TracePoint",
            ProgramKind::RawTracePoint => "RawTracePoint",
            ProgramKind::BtfTracePoint => "BtfTracePoint",
            ProgramKind::FEntry => "FEntry",
            ProgramKind::Lsm => "Lsm",
            ProgramKind::Iter => "Iter",
            ProgramKind::KProbe => "KProbe",
            ProgramKind::UProbe => "UProbe",
            ProgramKind::PerfEvent => "PerfEvent",
            ProgramKind::Xdp => "Xdp",
            ProgramKind::SchedClassifier => "SchedClassifier",
            ProgramKind::SocketFilter => "SocketFilter",
            ProgramKind::CgroupSkb => "CgroupSkb",
            ProgramKind::CgroupSockAddr => "CgroupSockAddr",
            ProgramKind::CgroupSock => "CgroupSock",
            ProgramKind::SkMsg => "SkMsg",
            ProgramKind::Other => "Other",
        }
    }
}

impl SectionKind {
    /// Which kind of program this section makes.
    pub fn program_kind(&self) -> ProgramKind {
        match self.prog_type {
            P::Tracepoint => ProgramKind::TracePoint,
            P::RawTracepoint | P::RawTracepointWritable => ProgramKind::RawTracePoint,
            P::Tracing => match self.attach_type {
                Some(A::TraceRawTp) => ProgramKind::BtfTracePoint,
                Some(A::TraceIter) => ProgramKind::Iter,
                _ => ProgramKind::FEntry,
            },
            P::Lsm => ProgramKind::Lsm,
            P::Kprobe if matches!(self.target, AttachTarget::Uprobe { .. }) => ProgramKind::UProbe,
            P::Kprobe => ProgramKind::KProbe,
            P::PerfEvent => ProgramKind::PerfEvent,
            P::Xdp => ProgramKind::Xdp,
            P::SchedCls => ProgramKind::SchedClassifier,
            P::SocketFilter => ProgramKind::SocketFilter,
            P::CgroupSkb => ProgramKind::CgroupSkb,
            P::CgroupSockAddr => ProgramKind::CgroupSockAddr,
            P::CgroupSock => ProgramKind::CgroupSock,
            P::SkMsg | P::SkSkb => ProgramKind::SkMsg,
            _ => ProgramKind::Other,
        }
    }
}

/// How the part after the prefix is interpreted.
#[derive(Clone, Copy)]
enum Rest {
    /// The name must match exactly.
    Exact,
    /// `prefix` alone or `prefix/anything` (the rest is ignored).
    Any,
    Tracepoint,
    RawTp,
    Kprobe(bool),
    Ksyscall(bool),
    Uprobe(bool),
    Usdt,
    Kernel,
}

/// libbpf's section table: (prefix, program type, attach type, interpretation).
/// Longer prefixes come before shorter ones that they extend.
const TABLE: &[(&str, P, Option<A>, Rest)] = &[
    ("socket", P::SocketFilter, None, Rest::Any),
    (
        "sk_reuseport/migrate",
        P::SkReuseport,
        Some(A::SkReuseportSelectOrMigrate),
        Rest::Exact,
    ),
    (
        "sk_reuseport",
        P::SkReuseport,
        Some(A::SkReuseportSelect),
        Rest::Exact,
    ),
    (
        "kprobe.multi",
        P::Kprobe,
        Some(A::TraceKprobeMulti),
        Rest::Kprobe(false),
    ),
    (
        "kretprobe.multi",
        P::Kprobe,
        Some(A::TraceKprobeMulti),
        Rest::Kprobe(true),
    ),
    (
        "uprobe.multi.s",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        Rest::Uprobe(false),
    ),
    (
        "uprobe.multi",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        Rest::Uprobe(false),
    ),
    (
        "uretprobe.multi.s",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        Rest::Uprobe(true),
    ),
    (
        "uretprobe.multi",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        Rest::Uprobe(true),
    ),
    ("kprobe", P::Kprobe, None, Rest::Kprobe(false)),
    ("kretprobe", P::Kprobe, None, Rest::Kprobe(true)),
    ("ksyscall", P::Kprobe, None, Rest::Ksyscall(false)),
    ("kretsyscall", P::Kprobe, None, Rest::Ksyscall(true)),
    ("uprobe.s", P::Kprobe, None, Rest::Uprobe(false)),
    ("uprobe", P::Kprobe, None, Rest::Uprobe(false)),
    ("uretprobe.s", P::Kprobe, None, Rest::Uprobe(true)),
    ("uretprobe", P::Kprobe, None, Rest::Uprobe(true)),
    ("usdt", P::Kprobe, None, Rest::Usdt),
    ("tc/ingress", P::SchedCls, Some(A::TcxIngress), Rest::Exact),
    ("tc/egress", P::SchedCls, Some(A::TcxEgress), Rest::Exact),
    ("tcx/ingress", P::SchedCls, Some(A::TcxIngress), Rest::Exact),
    ("tcx/egress", P::SchedCls, Some(A::TcxEgress), Rest::Exact),
    (
        "netkit/primary",
        P::SchedCls,
        Some(A::NetkitPrimary),
        Rest::Exact,
    ),
    ("netkit/peer", P::SchedCls, Some(A::NetkitPeer), Rest::Exact),
    ("tc", P::SchedCls, None, Rest::Any),
    ("classifier", P::SchedCls, None, Rest::Any),
    ("action", P::SchedAct, None, Rest::Any),
    ("tracepoint", P::Tracepoint, None, Rest::Tracepoint),
    ("tp", P::Tracepoint, None, Rest::Tracepoint),
    (
        "raw_tracepoint.w",
        P::RawTracepointWritable,
        None,
        Rest::RawTp,
    ),
    ("raw_tp.w", P::RawTracepointWritable, None, Rest::RawTp),
    ("raw_tracepoint", P::RawTracepoint, None, Rest::RawTp),
    ("raw_tp", P::RawTracepoint, None, Rest::RawTp),
    ("tp_btf", P::Tracing, Some(A::TraceRawTp), Rest::Kernel),
    ("fentry.s", P::Tracing, Some(A::TraceFentry), Rest::Kernel),
    ("fentry", P::Tracing, Some(A::TraceFentry), Rest::Kernel),
    (
        "fmod_ret.s",
        P::Tracing,
        Some(A::ModifyReturn),
        Rest::Kernel,
    ),
    ("fmod_ret", P::Tracing, Some(A::ModifyReturn), Rest::Kernel),
    ("fexit.s", P::Tracing, Some(A::TraceFexit), Rest::Kernel),
    ("fexit", P::Tracing, Some(A::TraceFexit), Rest::Kernel),
    ("freplace", P::Ext, None, Rest::Kernel),
    ("lsm.s", P::Lsm, Some(A::LsmMac), Rest::Kernel),
    ("lsm_cgroup", P::Lsm, Some(A::LsmCgroup), Rest::Kernel),
    ("lsm", P::Lsm, Some(A::LsmMac), Rest::Kernel),
    ("iter.s", P::Tracing, Some(A::TraceIter), Rest::Kernel),
    ("iter", P::Tracing, Some(A::TraceIter), Rest::Kernel),
    ("syscall", P::Syscall, None, Rest::Exact),
    ("xdp.frags/devmap", P::Xdp, Some(A::XdpDevmap), Rest::Exact),
    ("xdp/devmap", P::Xdp, Some(A::XdpDevmap), Rest::Exact),
    ("xdp.frags/cpumap", P::Xdp, Some(A::XdpCpumap), Rest::Exact),
    ("xdp/cpumap", P::Xdp, Some(A::XdpCpumap), Rest::Exact),
    ("xdp.frags", P::Xdp, Some(A::Xdp), Rest::Exact),
    ("xdp", P::Xdp, Some(A::Xdp), Rest::Any),
    ("perf_event", P::PerfEvent, None, Rest::Exact),
    ("lwt_in", P::LwtIn, None, Rest::Exact),
    ("lwt_out", P::LwtOut, None, Rest::Exact),
    ("lwt_xmit", P::LwtXmit, None, Rest::Exact),
    ("lwt_seg6local", P::LwtSeg6local, None, Rest::Exact),
    ("sockops", P::SockOps, Some(A::CgroupSockOps), Rest::Exact),
    (
        "sk_skb/stream_parser",
        P::SkSkb,
        Some(A::SkSkbStreamParser),
        Rest::Exact,
    ),
    (
        "sk_skb/stream_verdict",
        P::SkSkb,
        Some(A::SkSkbStreamVerdict),
        Rest::Exact,
    ),
    (
        "sk_skb/verdict",
        P::SkSkb,
        Some(A::SkSkbVerdict),
        Rest::Exact,
    ),
    ("sk_skb", P::SkSkb, None, Rest::Exact),
    ("sk_msg", P::SkMsg, Some(A::SkMsgVerdict), Rest::Exact),
    ("lirc_mode2", P::LircMode2, Some(A::LircMode2), Rest::Exact),
    (
        "flow_dissector",
        P::FlowDissector,
        Some(A::FlowDissector),
        Rest::Exact,
    ),
    (
        "cgroup_skb/ingress",
        P::CgroupSkb,
        Some(A::CgroupInetIngress),
        Rest::Exact,
    ),
    (
        "cgroup_skb/egress",
        P::CgroupSkb,
        Some(A::CgroupInetEgress),
        Rest::Exact,
    ),
    ("cgroup/skb", P::CgroupSkb, None, Rest::Exact),
    (
        "cgroup/sock_create",
        P::CgroupSock,
        Some(A::CgroupInetSockCreate),
        Rest::Exact,
    ),
    (
        "cgroup/sock_release",
        P::CgroupSock,
        Some(A::CgroupInetSockRelease),
        Rest::Exact,
    ),
    (
        "cgroup/sock",
        P::CgroupSock,
        Some(A::CgroupInetSockCreate),
        Rest::Exact,
    ),
    (
        "cgroup/post_bind4",
        P::CgroupSock,
        Some(A::CgroupInet4PostBind),
        Rest::Exact,
    ),
    (
        "cgroup/post_bind6",
        P::CgroupSock,
        Some(A::CgroupInet6PostBind),
        Rest::Exact,
    ),
    (
        "cgroup/bind4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Bind),
        Rest::Exact,
    ),
    (
        "cgroup/bind6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Bind),
        Rest::Exact,
    ),
    (
        "cgroup/connect4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Connect),
        Rest::Exact,
    ),
    (
        "cgroup/connect6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Connect),
        Rest::Exact,
    ),
    (
        "cgroup/connect_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixConnect),
        Rest::Exact,
    ),
    (
        "cgroup/sendmsg4",
        P::CgroupSockAddr,
        Some(A::CgroupUdp4Sendmsg),
        Rest::Exact,
    ),
    (
        "cgroup/sendmsg6",
        P::CgroupSockAddr,
        Some(A::CgroupUdp6Sendmsg),
        Rest::Exact,
    ),
    (
        "cgroup/sendmsg_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixSendmsg),
        Rest::Exact,
    ),
    (
        "cgroup/recvmsg4",
        P::CgroupSockAddr,
        Some(A::CgroupUdp4Recvmsg),
        Rest::Exact,
    ),
    (
        "cgroup/recvmsg6",
        P::CgroupSockAddr,
        Some(A::CgroupUdp6Recvmsg),
        Rest::Exact,
    ),
    (
        "cgroup/recvmsg_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixRecvmsg),
        Rest::Exact,
    ),
    (
        "cgroup/getpeername4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Getpeername),
        Rest::Exact,
    ),
    (
        "cgroup/getpeername6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Getpeername),
        Rest::Exact,
    ),
    (
        "cgroup/getpeername_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixGetpeername),
        Rest::Exact,
    ),
    (
        "cgroup/getsockname4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Getsockname),
        Rest::Exact,
    ),
    (
        "cgroup/getsockname6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Getsockname),
        Rest::Exact,
    ),
    (
        "cgroup/getsockname_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixGetsockname),
        Rest::Exact,
    ),
    (
        "cgroup/sysctl",
        P::CgroupSysctl,
        Some(A::CgroupSysctl),
        Rest::Exact,
    ),
    (
        "cgroup/getsockopt",
        P::CgroupSockopt,
        Some(A::CgroupGetsockopt),
        Rest::Exact,
    ),
    (
        "cgroup/setsockopt",
        P::CgroupSockopt,
        Some(A::CgroupSetsockopt),
        Rest::Exact,
    ),
    (
        "cgroup/dev",
        P::CgroupDevice,
        Some(A::CgroupDevice),
        Rest::Exact,
    ),
    ("struct_ops.s", P::StructOps, None, Rest::Kernel),
    ("struct_ops", P::StructOps, None, Rest::Kernel),
    ("sk_lookup", P::SkLookup, Some(A::SkLookup), Rest::Exact),
    ("netfilter", P::Netfilter, Some(A::Netfilter), Rest::Exact),
];

fn split_offset(s: &str) -> (&str, u64) {
    match s.rsplit_once('+') {
        Some((name, off)) => match parse_u64(off) {
            Some(o) => (name, o),
            None => (s, 0),
        },
        None => (s, 0),
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Interprets a section name. `None` for names that are not program sections.
pub fn parse_section(name: &str) -> Option<SectionKind> {
    for &(prefix, prog_type, attach_type, rest) in TABLE {
        let tail = if name == prefix {
            ""
        } else if let Some(t) = name.strip_prefix(prefix).and_then(|t| t.strip_prefix('/')) {
            t
        } else {
            continue;
        };
        let target = match rest {
            Rest::Exact if !tail.is_empty() => continue,
            Rest::Exact | Rest::Any => AttachTarget::Unspecified,
            // A bare `uprobe`/`uretprobe`: the user names the target, but
            // whether it is a return probe is known.
            Rest::Uprobe(retprobe) if tail.is_empty() => AttachTarget::Uprobe {
                binary: String::new(),
                function: String::new(),
                offset: 0,
                retprobe,
            },
            _ if tail.is_empty() => AttachTarget::Unspecified,
            Rest::Tracepoint => match tail.split_once('/') {
                Some((category, name)) => AttachTarget::Tracepoint {
                    category: category.into(),
                    name: name.into(),
                },
                None => AttachTarget::Unspecified,
            },
            Rest::RawTp => AttachTarget::RawTracepoint { name: tail.into() },
            Rest::Kprobe(retprobe) => {
                let (function, offset) = split_offset(tail);
                AttachTarget::Kprobe {
                    function: function.into(),
                    offset,
                    retprobe,
                }
            }
            Rest::Ksyscall(retprobe) => AttachTarget::Ksyscall {
                syscall: tail.into(),
                retprobe,
            },
            Rest::Uprobe(retprobe) => {
                // binary:function[+offset]; the binary may itself contain '/'.
                match tail.rsplit_once(':') {
                    Some((binary, func)) => {
                        let (function, offset) = split_offset(func);
                        let (function, offset) = match parse_u64(function) {
                            Some(o) if function.starts_with("0x") => ("", o),
                            _ => (function, offset),
                        };
                        AttachTarget::Uprobe {
                            binary: binary.into(),
                            function: function.into(),
                            offset,
                            retprobe,
                        }
                    }
                    None => AttachTarget::Unspecified,
                }
            }
            Rest::Usdt => {
                let mut parts = tail.rsplitn(3, ':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(name), Some(provider), Some(binary)) => AttachTarget::Usdt {
                        binary: binary.into(),
                        provider: provider.into(),
                        name: name.into(),
                    },
                    _ => AttachTarget::Unspecified,
                }
            }
            Rest::Kernel => AttachTarget::Kernel { name: tail.into() },
        };
        return Some(SectionKind {
            prog_type,
            attach_type,
            target,
            sleepable: prefix.ends_with(".s"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_sections() {
        let k = parse_section("tracepoint/syscalls/sys_enter_execve").unwrap();
        assert_eq!(k.prog_type, P::Tracepoint);
        assert_eq!(
            k.target,
            AttachTarget::Tracepoint {
                category: "syscalls".into(),
                name: "sys_enter_execve".into()
            }
        );
        assert_eq!(
            parse_section("tp/sched/sched_switch").unwrap().prog_type,
            P::Tracepoint
        );
        assert_eq!(
            parse_section("raw_tp/sys_enter").unwrap().target,
            AttachTarget::RawTracepoint {
                name: "sys_enter".into()
            }
        );
        assert_eq!(
            parse_section("kretprobe/do_unlinkat+0x10").unwrap().target,
            AttachTarget::Kprobe {
                function: "do_unlinkat".into(),
                offset: 16,
                retprobe: true
            }
        );
        assert_eq!(
            parse_section("uprobe//usr/lib/libc.so.6:malloc")
                .unwrap()
                .target,
            AttachTarget::Uprobe {
                binary: "/usr/lib/libc.so.6".into(),
                function: "malloc".into(),
                offset: 0,
                retprobe: false
            }
        );
        let s = parse_section("uretprobe.s/libc.so.6:free").unwrap();
        assert!(s.sleepable);
        // Bare: no target, but the direction is known.
        assert_eq!(
            parse_section("uretprobe").unwrap().target,
            AttachTarget::Uprobe {
                binary: String::new(),
                function: String::new(),
                offset: 0,
                retprobe: true
            }
        );
        let f = parse_section("fentry/do_unlinkat").unwrap();
        assert_eq!(
            (f.prog_type, f.attach_type),
            (P::Tracing, Some(A::TraceFentry))
        );
        assert_eq!(
            parse_section("usdt/./app:prov:probe").unwrap().target,
            AttachTarget::Usdt {
                binary: "./app".into(),
                provider: "prov".into(),
                name: "probe".into()
            }
        );
    }

    #[test]
    fn networking_and_cgroup_sections() {
        assert_eq!(parse_section("xdp").unwrap().attach_type, Some(A::Xdp));
        assert_eq!(parse_section("xdp.frags").unwrap().prog_type, P::Xdp);
        assert_eq!(
            parse_section("tcx/egress").unwrap().attach_type,
            Some(A::TcxEgress)
        );
        assert_eq!(parse_section("tc").unwrap().prog_type, P::SchedCls);
        assert_eq!(parse_section("socket").unwrap().prog_type, P::SocketFilter);
        assert_eq!(
            parse_section("cgroup_skb/egress").unwrap().attach_type,
            Some(A::CgroupInetEgress)
        );
        assert_eq!(
            parse_section("cgroup/connect4").unwrap().prog_type,
            P::CgroupSockAddr
        );
        assert_eq!(
            parse_section("sk_skb/stream_verdict").unwrap().attach_type,
            Some(A::SkSkbStreamVerdict)
        );
        assert_eq!(parse_section("perf_event").unwrap().prog_type, P::PerfEvent);
        assert_eq!(parse_section("syscall").unwrap().prog_type, P::Syscall);
        assert_eq!(
            parse_section("struct_ops/tcp_ca_init").unwrap().prog_type,
            P::StructOps
        );
        assert_eq!(parse_section("cgroup/connect4x"), None);
        assert_eq!(parse_section(".text"), None);
        assert_eq!(parse_section("license"), None);
    }
}
