//! The numbering the kernel's `linux/bpf.h` gives to map types, program types,
//! attach types, helper functions and flags, shared by the object model, the
//! userspace VM and the kernel backend so that all three agree on it.
#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// Declares a `#[repr(u32)]` enum with its kernel number and name, plus lookups both ways.
macro_rules! numbered {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:expr, $s:literal;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name { $($(#[$vm])* $v = $n,)* }

        impl $name {
            /// Every value, in kernel order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The value with this kernel number.
            pub const fn from_u32(n: u32) -> Option<$name> {
                match n { $($n => Some($name::$v),)* _ => None }
            }

            /// The kernel number.
            pub const fn as_u32(self) -> u32 { self as u32 }

            /// The name bpftool uses (lower case, without the `BPF_*_TYPE_` prefix).
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// The value whose bpftool name is `s`.
            pub fn from_name(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

numbered! {
    /// `enum bpf_map_type`.
    MapType {
        /// Unspecified.
        Unspec = 0, "unspec";
        /// Hash table.
        Hash = 1, "hash";
        /// Array indexed by u32.
        Array = 2, "array";
        /// Array of programs for tail calls.
        ProgArray = 3, "prog_array";
        /// Per-CPU perf event ring buffers.
        PerfEventArray = 4, "perf_event_array";
        /// Hash table with one value per CPU.
        PercpuHash = 5, "percpu_hash";
        /// Array with one value per CPU.
        PercpuArray = 6, "percpu_array";
        /// Stack traces by id.
        StackTrace = 7, "stack_trace";
        /// Array of cgroup fds.
        CgroupArray = 8, "cgroup_array";
        /// Hash table with LRU eviction.
        LruHash = 9, "lru_hash";
        /// Per-CPU hash table with LRU eviction.
        LruPercpuHash = 10, "lru_percpu_hash";
        /// Longest-prefix-match trie.
        LpmTrie = 11, "lpm_trie";
        /// Array of maps.
        ArrayOfMaps = 12, "array_of_maps";
        /// Hash of maps.
        HashOfMaps = 13, "hash_of_maps";
        /// Network devices for XDP redirect.
        Devmap = 14, "devmap";
        /// Sockets.
        Sockmap = 15, "sockmap";
        /// CPUs for XDP redirect.
        Cpumap = 16, "cpumap";
        /// AF_XDP sockets.
        Xskmap = 17, "xskmap";
        /// Sockets by hash.
        Sockhash = 18, "sockhash";
        /// Deprecated cgroup storage.
        CgroupStorage = 19, "cgroup_storage";
        /// Sockets for SO_REUSEPORT selection.
        ReuseportSockarray = 20, "reuseport_sockarray";
        /// Deprecated per-CPU cgroup storage.
        PercpuCgroupStorage = 21, "percpu_cgroup_storage";
        /// FIFO queue.
        Queue = 22, "queue";
        /// LIFO stack.
        Stack = 23, "stack";
        /// Socket-local storage.
        SkStorage = 24, "sk_storage";
        /// Network devices by hash.
        DevmapHash = 25, "devmap_hash";
        /// struct_ops state.
        StructOps = 26, "struct_ops";
        /// Ring buffer shared with user space.
        Ringbuf = 27, "ringbuf";
        /// Inode-local storage.
        InodeStorage = 28, "inode_storage";
        /// Task-local storage.
        TaskStorage = 29, "task_storage";
        /// Bloom filter.
        BloomFilter = 30, "bloom_filter";
        /// Ring buffer written by user space.
        UserRingbuf = 31, "user_ringbuf";
        /// Cgroup-local storage.
        CgrpStorage = 32, "cgrp_storage";
        /// BPF arena.
        Arena = 33, "arena";
    }
}

impl MapType {
    /// Whether values are stored once per possible CPU.
    pub const fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }

    /// Whether values are file descriptors of other maps.
    pub const fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }
}

numbered! {
    /// `enum bpf_prog_type`.
    ProgramType {
        /// Unspecified.
        Unspec = 0, "unspec";
        /// Socket filter.
        SocketFilter = 1, "socket_filter";
        /// kprobe, uprobe.
        Kprobe = 2, "kprobe";
        /// TC classifier.
        SchedCls = 3, "sched_cls";
        /// TC action.
        SchedAct = 4, "sched_act";
        /// Tracepoint.
        Tracepoint = 5, "tracepoint";
        /// XDP.
        Xdp = 6, "xdp";
        /// perf_event sampling.
        PerfEvent = 7, "perf_event";
        /// cgroup skb ingress/egress.
        CgroupSkb = 8, "cgroup_skb";
        /// cgroup socket creation.
        CgroupSock = 9, "cgroup_sock";
        /// Lightweight tunnel input.
        LwtIn = 10, "lwt_in";
        /// Lightweight tunnel output.
        LwtOut = 11, "lwt_out";
        /// Lightweight tunnel transmit.
        LwtXmit = 12, "lwt_xmit";
        /// Socket operations.
        SockOps = 13, "sock_ops";
        /// sockmap skb verdict/parser.
        SkSkb = 14, "sk_skb";
        /// cgroup device access.
        CgroupDevice = 15, "cgroup_device";
        /// sockmap message verdict.
        SkMsg = 16, "sk_msg";
        /// Raw tracepoint.
        RawTracepoint = 17, "raw_tracepoint";
        /// cgroup socket address hooks (connect, bind, sendmsg, ...).
        CgroupSockAddr = 18, "cgroup_sock_addr";
        /// Seg6 local.
        LwtSeg6local = 19, "lwt_seg6local";
        /// Infrared decoder.
        LircMode2 = 20, "lirc_mode2";
        /// SO_REUSEPORT selection.
        SkReuseport = 21, "sk_reuseport";
        /// Flow dissector.
        FlowDissector = 22, "flow_dissector";
        /// cgroup sysctl.
        CgroupSysctl = 23, "cgroup_sysctl";
        /// Writable raw tracepoint.
        RawTracepointWritable = 24, "raw_tracepoint_writable";
        /// cgroup get/setsockopt.
        CgroupSockopt = 25, "cgroup_sockopt";
        /// fentry/fexit/tp_btf/iter.
        Tracing = 26, "tracing";
        /// struct_ops.
        StructOps = 27, "struct_ops";
        /// freplace.
        Ext = 28, "ext";
        /// LSM.
        Lsm = 29, "lsm";
        /// Socket lookup.
        SkLookup = 30, "sk_lookup";
        /// Syscall program (BPF_PROG_RUN only).
        Syscall = 31, "syscall";
        /// Netfilter.
        Netfilter = 32, "netfilter";
    }
}

numbered! {
    /// `enum bpf_attach_type`.
    AttachType {
        /// cgroup ingress skb.
        CgroupInetIngress = 0, "cgroup_inet_ingress";
        /// cgroup egress skb.
        CgroupInetEgress = 1, "cgroup_inet_egress";
        /// cgroup socket creation.
        CgroupInetSockCreate = 2, "cgroup_inet_sock_create";
        /// cgroup sock_ops.
        CgroupSockOps = 3, "cgroup_sock_ops";
        /// sk_skb stream parser.
        SkSkbStreamParser = 4, "sk_skb_stream_parser";
        /// sk_skb stream verdict.
        SkSkbStreamVerdict = 5, "sk_skb_stream_verdict";
        /// cgroup device.
        CgroupDevice = 6, "cgroup_device";
        /// sk_msg verdict.
        SkMsgVerdict = 7, "sk_msg_verdict";
        /// bind(AF_INET).
        CgroupInet4Bind = 8, "cgroup_inet4_bind";
        /// bind(AF_INET6).
        CgroupInet6Bind = 9, "cgroup_inet6_bind";
        /// connect(AF_INET).
        CgroupInet4Connect = 10, "cgroup_inet4_connect";
        /// connect(AF_INET6).
        CgroupInet6Connect = 11, "cgroup_inet6_connect";
        /// After bind(AF_INET).
        CgroupInet4PostBind = 12, "cgroup_inet4_post_bind";
        /// After bind(AF_INET6).
        CgroupInet6PostBind = 13, "cgroup_inet6_post_bind";
        /// sendmsg(AF_INET, UDP).
        CgroupUdp4Sendmsg = 14, "cgroup_udp4_sendmsg";
        /// sendmsg(AF_INET6, UDP).
        CgroupUdp6Sendmsg = 15, "cgroup_udp6_sendmsg";
        /// Infrared.
        LircMode2 = 16, "lirc_mode2";
        /// Flow dissector.
        FlowDissector = 17, "flow_dissector";
        /// sysctl access.
        CgroupSysctl = 18, "cgroup_sysctl";
        /// recvmsg(AF_INET, UDP).
        CgroupUdp4Recvmsg = 19, "cgroup_udp4_recvmsg";
        /// recvmsg(AF_INET6, UDP).
        CgroupUdp6Recvmsg = 20, "cgroup_udp6_recvmsg";
        /// getsockopt.
        CgroupGetsockopt = 21, "cgroup_getsockopt";
        /// setsockopt.
        CgroupSetsockopt = 22, "cgroup_setsockopt";
        /// BTF-enabled raw tracepoint.
        TraceRawTp = 23, "trace_raw_tp";
        /// fentry.
        TraceFentry = 24, "trace_fentry";
        /// fexit.
        TraceFexit = 25, "trace_fexit";
        /// fmod_ret.
        ModifyReturn = 26, "modify_return";
        /// LSM hook.
        LsmMac = 27, "lsm_mac";
        /// BPF iterator.
        TraceIter = 28, "trace_iter";
        /// getpeername(AF_INET).
        CgroupInet4Getpeername = 29, "cgroup_inet4_getpeername";
        /// getpeername(AF_INET6).
        CgroupInet6Getpeername = 30, "cgroup_inet6_getpeername";
        /// getsockname(AF_INET).
        CgroupInet4Getsockname = 31, "cgroup_inet4_getsockname";
        /// getsockname(AF_INET6).
        CgroupInet6Getsockname = 32, "cgroup_inet6_getsockname";
        /// XDP on a devmap entry.
        XdpDevmap = 33, "xdp_devmap";
        /// Socket release.
        CgroupInetSockRelease = 34, "cgroup_inet_sock_release";
        /// XDP on a cpumap entry.
        XdpCpumap = 35, "xdp_cpumap";
        /// sk_lookup.
        SkLookup = 36, "sk_lookup";
        /// XDP.
        Xdp = 37, "xdp";
        /// sk_skb verdict.
        SkSkbVerdict = 38, "sk_skb_verdict";
        /// SO_REUSEPORT select.
        SkReuseportSelect = 39, "sk_reuseport_select";
        /// SO_REUSEPORT select or migrate.
        SkReuseportSelectOrMigrate = 40, "sk_reuseport_select_or_migrate";
        /// perf_event.
        PerfEvent = 41, "perf_event";
        /// Multi-kprobe.
        TraceKprobeMulti = 42, "trace_kprobe_multi";
        /// LSM hook for a cgroup.
        LsmCgroup = 43, "lsm_cgroup";
        /// struct_ops.
        StructOps = 44, "struct_ops";
        /// Netfilter.
        Netfilter = 45, "netfilter";
        /// tcx ingress.
        TcxIngress = 46, "tcx_ingress";
        /// tcx egress.
        TcxEgress = 47, "tcx_egress";
        /// Multi-uprobe.
        TraceUprobeMulti = 48, "trace_uprobe_multi";
        /// connect(AF_UNIX).
        CgroupUnixConnect = 49, "cgroup_unix_connect";
        /// sendmsg(AF_UNIX).
        CgroupUnixSendmsg = 50, "cgroup_unix_sendmsg";
        /// recvmsg(AF_UNIX).
        CgroupUnixRecvmsg = 51, "cgroup_unix_recvmsg";
        /// getpeername(AF_UNIX).
        CgroupUnixGetpeername = 52, "cgroup_unix_getpeername";
        /// getsockname(AF_UNIX).
        CgroupUnixGetsockname = 53, "cgroup_unix_getsockname";
        /// netkit primary.
        NetkitPrimary = 54, "netkit_primary";
        /// netkit peer.
        NetkitPeer = 55, "netkit_peer";
        /// Multi-kprobe session.
        TraceKprobeSession = 56, "trace_kprobe_session";
    }
}

/// `enum bpf_cmd`: the commands of `bpf(2)`.
#[allow(missing_docs)]
pub mod bpf_cmd {
    pub const MAP_CREATE: u32 = 0;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    pub const PROG_LOAD: u32 = 5;
    pub const OBJ_PIN: u32 = 6;
    pub const OBJ_GET: u32 = 7;
    pub const PROG_ATTACH: u32 = 8;
    pub const PROG_DETACH: u32 = 9;
    pub const PROG_TEST_RUN: u32 = 10;
    pub const PROG_GET_NEXT_ID: u32 = 11;
    pub const MAP_GET_NEXT_ID: u32 = 12;
    pub const PROG_GET_FD_BY_ID: u32 = 13;
    pub const MAP_GET_FD_BY_ID: u32 = 14;
    pub const OBJ_GET_INFO_BY_FD: u32 = 15;
    pub const PROG_QUERY: u32 = 16;
    pub const RAW_TRACEPOINT_OPEN: u32 = 17;
    pub const BTF_LOAD: u32 = 18;
    pub const BTF_GET_FD_BY_ID: u32 = 19;
    pub const TASK_FD_QUERY: u32 = 20;
    pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
    pub const MAP_FREEZE: u32 = 22;
    pub const BTF_GET_NEXT_ID: u32 = 23;
    pub const MAP_LOOKUP_BATCH: u32 = 24;
    pub const MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
    pub const MAP_UPDATE_BATCH: u32 = 26;
    pub const MAP_DELETE_BATCH: u32 = 27;
    pub const LINK_CREATE: u32 = 28;
    pub const LINK_UPDATE: u32 = 29;
    pub const LINK_GET_FD_BY_ID: u32 = 30;
    pub const LINK_GET_NEXT_ID: u32 = 31;
    pub const ENABLE_STATS: u32 = 32;
    pub const ITER_CREATE: u32 = 33;
    pub const LINK_DETACH: u32 = 34;
    pub const PROG_BIND_MAP: u32 = 35;
}

/// perf_event numbering the BPF hooks use (`include/uapi/linux/perf_event.h`).
pub mod perf {
    /// `PERF_TYPE_HARDWARE`.
    pub const TYPE_HARDWARE: u32 = 0;
    /// `PERF_TYPE_SOFTWARE`.
    pub const TYPE_SOFTWARE: u32 = 1;
    /// `PERF_TYPE_TRACEPOINT`: `config` is a tracefs event id.
    pub const TYPE_TRACEPOINT: u32 = 2;
    /// `PERF_COUNT_HW_CPU_CYCLES`.
    pub const COUNT_HW_CPU_CYCLES: u64 = 0;
    /// `PERF_COUNT_SW_CPU_CLOCK`.
    pub const COUNT_SW_CPU_CLOCK: u64 = 0;
    /// `PERF_COUNT_SW_BPF_OUTPUT`: the event of a perf event array.
    pub const COUNT_SW_BPF_OUTPUT: u64 = 10;
    /// `PERF_SAMPLE_RAW`.
    pub const SAMPLE_RAW: u64 = 1 << 10;
    /// `PERF_EVENT_IOC_ENABLE`.
    pub const EVENT_IOC_ENABLE: u64 = 0x2400;
    /// `PERF_EVENT_IOC_DISABLE`.
    pub const EVENT_IOC_DISABLE: u64 = 0x2401;
    /// `PERF_EVENT_IOC_SET_BPF`.
    pub const EVENT_IOC_SET_BPF: u64 = 0x4004_2408;
    /// `PERF_RECORD_LOST`.
    pub const RECORD_LOST: u32 = 2;
    /// `PERF_RECORD_SAMPLE`.
    pub const RECORD_SAMPLE: u32 = 9;
}

/// Flags of map update calls (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
pub mod update_flags {
    /// Create a new element or update an existing one.
    pub const ANY: u64 = 0;
    /// Create a new element only if it does not exist.
    pub const NOEXIST: u64 = 1;
    /// Update an existing element only.
    pub const EXIST: u64 = 2;
    /// Update a spin-locked value under its lock.
    pub const LOCK: u64 = 4;
}

/// Flags of map creation (`map_flags`).
pub mod map_flags {
    /// Do not preallocate hash elements.
    pub const NO_PREALLOC: u32 = 1 << 0;
    /// LRU list per CPU instead of common.
    pub const NO_COMMON_LRU: u32 = 1 << 1;
    /// Honour `numa_node`.
    pub const NUMA_NODE: u32 = 1 << 2;
    /// Read-only from user space.
    pub const RDONLY: u32 = 1 << 3;
    /// Write-only from user space.
    pub const WRONLY: u32 = 1 << 4;
    /// Stack trace map stores build ids.
    pub const STACK_BUILD_ID: u32 = 1 << 5;
    /// Zero-initialise hash values.
    pub const ZERO_SEED: u32 = 1 << 6;
    /// Read-only from programs.
    pub const RDONLY_PROG: u32 = 1 << 7;
    /// Write-only from programs.
    pub const WRONLY_PROG: u32 = 1 << 8;
    /// Clone with the socket.
    pub const CLONE: u32 = 1 << 9;
    /// Allow mmap of array values.
    pub const MMAPABLE: u32 = 1 << 10;
}

/// Flags of `bpf_ringbuf_output`/`submit`/`discard` and perf output.
pub mod ringbuf_flags {
    /// Do not wake up the consumer.
    pub const NO_WAKEUP: u64 = 1 << 0;
    /// Always wake up the consumer.
    pub const FORCE_WAKEUP: u64 = 1 << 1;
    /// `BPF_F_CURRENT_CPU` for `bpf_perf_event_output`: index = current CPU.
    pub const CURRENT_CPU: u64 = 0xffff_ffff;
}

/// XDP return codes.
pub mod xdp_action {
    /// Error; drop the packet.
    pub const ABORTED: u32 = 0;
    /// Drop the packet.
    pub const DROP: u32 = 1;
    /// Pass the packet to the network stack.
    pub const PASS: u32 = 2;
    /// Bounce the packet out of the receiving interface.
    pub const TX: u32 = 3;
    /// Redirect the packet.
    pub const REDIRECT: u32 = 4;
}

/// The errno values the kernel's map and helper code returns (negated in helpers).
pub mod errno {
    #![allow(missing_docs)]
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EINTR: i32 = 4;
    pub const E2BIG: i32 = 7;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EFAULT: i32 = 14;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const ERANGE: i32 = 34;
    pub const ENOSYS: i32 = 38;
    pub const ENOTSUPP: i32 = 524;
    pub const EOPNOTSUPP: i32 = 95;
}

pub mod helpers;
pub use helpers::{helper_proto, ArgType, HelperGroup, HelperProto, RetType, HELPERS};
pub mod kfuncs;
pub use kfuncs::{kfunc_proto, KernelObject, KfuncArg, KfuncProto, KfuncRet, KfuncSet, KFUNCS};

/// Ids of the helper functions bpfkit implements or names (`enum bpf_func_id`).
pub mod helper {
    #![allow(missing_docs)]
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const PROBE_READ: i32 = 4;
    pub const KTIME_GET_NS: i32 = 5;
    pub const TRACE_PRINTK: i32 = 6;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const SKB_STORE_BYTES: i32 = 9;
    pub const L3_CSUM_REPLACE: i32 = 10;
    pub const L4_CSUM_REPLACE: i32 = 11;
    pub const TAIL_CALL: i32 = 12;
    pub const CLONE_REDIRECT: i32 = 13;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const PERF_EVENT_OUTPUT: i32 = 25;
    pub const SKB_LOAD_BYTES: i32 = 26;
    pub const GET_STACKID: i32 = 27;
    pub const CSUM_DIFF: i32 = 28;
    pub const GET_CURRENT_TASK: i32 = 35;
    pub const PROBE_READ_STR: i32 = 45;
    pub const XDP_ADJUST_HEAD: i32 = 44;
    pub const GET_SOCKET_COOKIE: i32 = 46;
    pub const XDP_ADJUST_META: i32 = 54;
    pub const GET_STACK: i32 = 67;
    pub const MAP_PUSH_ELEM: i32 = 87;
    pub const MAP_POP_ELEM: i32 = 88;
    pub const MAP_PEEK_ELEM: i32 = 89;
    pub const SPIN_LOCK: i32 = 93;
    pub const SPIN_UNLOCK: i32 = 94;
    pub const XDP_ADJUST_TAIL: i32 = 65;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const RINGBUF_DISCARD: i32 = 133;
    pub const RINGBUF_QUERY: i32 = 134;
    pub const SNPRINTF: i32 = 165;
    pub const GET_FUNC_IP: i32 = 173;
    pub const KTIME_GET_COARSE_NS: i32 = 160;
    pub const SEQ_PRINTF: i32 = 126;
    pub const FOR_EACH_MAP_ELEM: i32 = 164;
    pub const LOOP: i32 = 181;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        for &t in MapType::ALL {
            assert_eq!(MapType::from_u32(t.as_u32()), Some(t));
            assert_eq!(MapType::from_name(t.name()), Some(t));
        }
        for &t in ProgramType::ALL {
            assert_eq!(ProgramType::from_u32(t.as_u32()), Some(t));
        }
        for &t in AttachType::ALL {
            assert_eq!(AttachType::from_u32(t.as_u32()), Some(t));
        }
        assert_eq!(MapType::Ringbuf.as_u32(), 27);
        assert_eq!(ProgramType::Syscall.as_u32(), 31);
        assert_eq!(AttachType::TcxEgress.as_u32(), 47);
        assert_eq!(MapType::from_u32(99), None);
    }
}
