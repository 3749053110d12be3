//! Helper prototypes: per helper its argument and return types and the
//! program types that may call it, as the kernel's `struct bpf_func_proto`
//! definitions declare them (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c,
//! net/core/filter.c, kernel/bpf/ringbuf.c) and the `*_func_proto` getters
//! (`bpf_base_func_proto`, `bpf_tracing_func_proto`, `sk_filter_func_proto`,
//! `tc_cls_act_func_proto`, `xdp_func_proto`, ...) hand out.

use crate::ProgramType;

/// What a helper argument must be (`enum bpf_arg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// Unused argument (`ARG_DONTCARE`).
    DontCare,
    /// Any initialized value, scalar or pointer (`ARG_ANYTHING`).
    Anything,
    /// A map pointer from `LD_IMM64` (`ARG_CONST_MAP_PTR`).
    ConstMapPtr,
    /// Points to `key_size` initialized bytes (`ARG_PTR_TO_MAP_KEY`).
    MapKey,
    /// Points to `value_size` initialized bytes (`ARG_PTR_TO_MAP_VALUE`).
    MapValue,
    /// Points to `value_size` writable bytes, written by the helper
    /// (`ARG_PTR_TO_MAP_VALUE | MEM_UNINIT`).
    UninitMapValue,
    /// Points to readable memory whose size is the next argument
    /// (`ARG_PTR_TO_MEM | MEM_RDONLY`).
    Mem,
    /// Like [`ArgType::Mem`], or NULL (`ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY`).
    MemOrNull,
    /// Points to writable memory whose size is the next argument, written by
    /// the helper (`ARG_PTR_TO_UNINIT_MEM`).
    UninitMem,
    /// A known-bounded size > 0 for the previous memory argument (`ARG_CONST_SIZE`).
    ConstSize,
    /// A known-bounded size >= 0 for the previous memory argument (`ARG_CONST_SIZE_OR_ZERO`).
    ConstSizeOrZero,
    /// A constant allocation size (`ARG_CONST_ALLOC_SIZE_OR_ZERO`).
    ConstAllocSizeOrZero,
    /// The program's context pointer, unmodified (`ARG_PTR_TO_CTX`).
    Ctx,
    /// Memory returned by `bpf_ringbuf_reserve`, released by this call
    /// (`ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`).
    RingbufMem,
    /// A BPF function from `LD_IMM64` with `BPF_PSEUDO_FUNC` (`ARG_PTR_TO_FUNC`).
    Func,
    /// A stack pointer or NULL (`ARG_PTR_TO_STACK_OR_NULL`).
    StackOrNull,
    /// A NUL-terminated string in a read-only map value (`ARG_PTR_TO_CONST_STR`).
    ConstStr,
    /// Points to 8 writable bytes (`ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT`, `ARG_PTR_TO_LONG`).
    Long,
    /// A `struct bpf_spin_lock` inside a map value (`ARG_PTR_TO_SPIN_LOCK`).
    SpinLock,
    /// A kernel object of the helper's BTF type (`ARG_PTR_TO_BTF_ID`, e.g. `struct seq_file *`).
    BtfId,
}

/// What a helper returns (`enum bpf_return_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// A scalar (`RET_INTEGER`).
    Integer,
    /// Nothing; r0 is left uninitialized (`RET_VOID`).
    Void,
    /// A pointer to a value of the map in argument 1, or NULL (`RET_PTR_TO_MAP_VALUE_OR_NULL`).
    MapValueOrNull,
    /// A reference to ring buffer memory of the size in argument 2, or NULL
    /// (`RET_PTR_TO_MEM_OR_NULL | MEM_RINGBUF`, acquired).
    RingbufMemOrNull,
    /// A trusted pointer to the current `task_struct` (`RET_PTR_TO_BTF_ID_TRUSTED`).
    BtfIdTask,
}

/// Which program types get a helper from their `*_func_proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelperGroup {
    /// `bpf_base_func_proto`: every program type.
    Base,
    /// `bpf_tracing_func_proto`: kprobe, tracepoint, perf_event, raw
    /// tracepoint, tracing, LSM.
    Tracing,
    /// Programs that see an skb: socket filter, TC, cgroup skb, lwt, sk_skb.
    Skb,
    /// TC classifier and action only (`tc_cls_act_func_proto`).
    Tc,
    /// XDP (`xdp_func_proto`).
    Xdp,
    /// Networking programs that may emit perf events (skb users and XDP).
    NetOutput,
    /// Every program type but the tracing ones (not NMI-safe helpers such as
    /// `bpf_ktime_get_coarse_ns`, which `bpf_tracing_func_proto` refuses).
    NotTracing,
}

/// The prototype of one helper (`struct bpf_func_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperProto {
    /// `enum bpf_func_id` number.
    pub id: i32,
    /// Name, without the `bpf_` prefix.
    pub name: &'static str,
    /// Return type.
    pub ret: RetType,
    /// Argument types of r1 to r5.
    pub args: [ArgType; 5],
    /// Only GPL-licensed programs may call it (`gpl_only`).
    pub gpl_only: bool,
    /// The programs that may call it.
    pub group: HelperGroup,
    /// Calling it invalidates packet pointers (`bpf_helper_changes_pkt_data`).
    pub changes_pkt_data: bool,
}

use ArgType::*;

const fn proto(
    id: i32,
    name: &'static str,
    ret: RetType,
    args: [ArgType; 5],
    group: HelperGroup,
) -> HelperProto {
    HelperProto {
        id,
        name,
        ret,
        args,
        gpl_only: false,
        group,
        changes_pkt_data: false,
    }
}

const fn gpl(mut p: HelperProto) -> HelperProto {
    p.gpl_only = true;
    p
}

const fn pkt(mut p: HelperProto) -> HelperProto {
    p.changes_pkt_data = true;
    p
}

const D: ArgType = DontCare;
const A: ArgType = Anything;

use HelperGroup::{Base, NetOutput, NotTracing, Skb, Tc, Tracing, Xdp};
use RetType::{BtfIdTask, Integer, MapValueOrNull, RingbufMemOrNull, Void};

/// Every helper bpfkit knows the prototype of, by id.
pub const HELPERS: &[HelperProto] = &[
    proto(
        1,
        "map_lookup_elem",
        MapValueOrNull,
        [ConstMapPtr, MapKey, D, D, D],
        Base,
    ),
    proto(
        2,
        "map_update_elem",
        Integer,
        [ConstMapPtr, MapKey, MapValue, A, D],
        Base,
    ),
    proto(
        3,
        "map_delete_elem",
        Integer,
        [ConstMapPtr, MapKey, D, D, D],
        Base,
    ),
    gpl(proto(
        4,
        "probe_read",
        Integer,
        [UninitMem, ConstSizeOrZero, A, D, D],
        Tracing,
    )),
    proto(5, "ktime_get_ns", Integer, [D; 5], Base),
    // Arguments 3 to 5 are not checked (bpf_trace_printk_proto leaves them ARG_DONTCARE).
    gpl(proto(
        6,
        "trace_printk",
        Integer,
        [Mem, ConstSize, D, D, D],
        Base,
    )),
    proto(7, "get_prandom_u32", Integer, [D; 5], Base),
    proto(8, "get_smp_processor_id", Integer, [D; 5], Base),
    pkt(proto(
        9,
        "skb_store_bytes",
        Integer,
        [Ctx, A, Mem, ConstSize, A],
        Tc,
    )),
    pkt(proto(10, "l3_csum_replace", Integer, [Ctx, A, A, A, A], Tc)),
    pkt(proto(11, "l4_csum_replace", Integer, [Ctx, A, A, A, A], Tc)),
    proto(12, "tail_call", Void, [Ctx, ConstMapPtr, A, D, D], Base),
    proto(13, "clone_redirect", Integer, [Ctx, A, A, D, D], Tc),
    // In bpf_base_func_proto since Linux 6.10.
    proto(14, "get_current_pid_tgid", Integer, [D; 5], Base),
    gpl(proto(15, "get_current_uid_gid", Integer, [D; 5], Tracing)),
    gpl(proto(
        16,
        "get_current_comm",
        Integer,
        [UninitMem, ConstSize, D, D, D],
        Tracing,
    )),
    proto(17, "get_cgroup_classid", Integer, [Ctx, D, D, D, D], Tc),
    proto(23, "redirect", Integer, [A, A, D, D, D], Xdp),
    gpl(proto(
        25,
        "perf_event_output",
        Integer,
        [Ctx, ConstMapPtr, A, Mem, ConstSizeOrZero],
        NetOutput,
    )),
    proto(
        26,
        "skb_load_bytes",
        Integer,
        [Ctx, A, UninitMem, ConstSize, D],
        Skb,
    ),
    gpl(proto(
        27,
        "get_stackid",
        Integer,
        [Ctx, ConstMapPtr, A, D, D],
        Tracing,
    )),
    proto(
        28,
        "csum_diff",
        Integer,
        [MemOrNull, ConstSizeOrZero, MemOrNull, ConstSizeOrZero, A],
        NetOutput,
    ),
    gpl(proto(35, "get_current_task", Integer, [D; 5], Base)),
    proto(
        37,
        "current_task_under_cgroup",
        Integer,
        [ConstMapPtr, A, D, D, D],
        Tracing,
    ),
    proto(42, "get_numa_node_id", Integer, [D; 5], Base),
    pkt(proto(
        44,
        "xdp_adjust_head",
        Integer,
        [Ctx, A, D, D, D],
        Xdp,
    )),
    gpl(proto(
        45,
        "probe_read_str",
        Integer,
        [UninitMem, ConstSizeOrZero, A, D, D],
        Tracing,
    )),
    proto(46, "get_socket_cookie", Integer, [Ctx, D, D, D, D], Skb),
    proto(51, "redirect_map", Integer, [ConstMapPtr, A, A, D, D], Xdp),
    pkt(proto(
        54,
        "xdp_adjust_meta",
        Integer,
        [Ctx, A, D, D, D],
        Xdp,
    )),
    pkt(proto(
        65,
        "xdp_adjust_tail",
        Integer,
        [Ctx, A, D, D, D],
        Xdp,
    )),
    gpl(proto(
        67,
        "get_stack",
        Integer,
        [Ctx, UninitMem, ConstSizeOrZero, A, D],
        Tracing,
    )),
    proto(80, "get_current_cgroup_id", Integer, [D; 5], Tracing),
    proto(
        87,
        "map_push_elem",
        Integer,
        [ConstMapPtr, MapValue, A, D, D],
        Base,
    ),
    proto(
        88,
        "map_pop_elem",
        Integer,
        [ConstMapPtr, UninitMapValue, D, D, D],
        Base,
    ),
    proto(
        89,
        "map_peek_elem",
        Integer,
        [ConstMapPtr, UninitMapValue, D, D, D],
        Base,
    ),
    proto(93, "spin_lock", Void, [SpinLock, D, D, D, D], Base),
    proto(94, "spin_unlock", Void, [SpinLock, D, D, D, D], Base),
    gpl(proto(109, "send_signal", Integer, [A, D, D, D, D], Tracing)),
    gpl(proto(
        112,
        "probe_read_user",
        Integer,
        [UninitMem, ConstSizeOrZero, A, D, D],
        Tracing,
    )),
    gpl(proto(
        113,
        "probe_read_kernel",
        Integer,
        [UninitMem, ConstSizeOrZero, A, D, D],
        Base,
    )),
    gpl(proto(
        114,
        "probe_read_user_str",
        Integer,
        [UninitMem, ConstSizeOrZero, A, D, D],
        Tracing,
    )),
    gpl(proto(
        115,
        "probe_read_kernel_str",
        Integer,
        [UninitMem, ConstSizeOrZero, A, D, D],
        Base,
    )),
    proto(118, "jiffies64", Integer, [D; 5], Base),
    proto(125, "ktime_get_boot_ns", Integer, [D; 5], Base),
    proto(
        126,
        "seq_printf",
        Integer,
        [BtfId, Mem, ConstSize, MemOrNull, ConstSizeOrZero],
        Tracing,
    ),
    proto(
        130,
        "ringbuf_output",
        Integer,
        [ConstMapPtr, Mem, ConstSizeOrZero, A, D],
        Base,
    ),
    proto(
        131,
        "ringbuf_reserve",
        RingbufMemOrNull,
        [ConstMapPtr, ConstAllocSizeOrZero, A, D, D],
        Base,
    ),
    proto(132, "ringbuf_submit", Void, [RingbufMem, A, D, D, D], Base),
    proto(133, "ringbuf_discard", Void, [RingbufMem, A, D, D, D], Base),
    proto(
        134,
        "ringbuf_query",
        Integer,
        [ConstMapPtr, A, D, D, D],
        Base,
    ),
    proto(158, "get_current_task_btf", BtfIdTask, [D; 5], Tracing),
    proto(160, "ktime_get_coarse_ns", Integer, [D; 5], NotTracing),
    proto(
        164,
        "for_each_map_elem",
        Integer,
        [ConstMapPtr, Func, StackOrNull, A, D],
        Base,
    ),
    proto(
        165,
        "snprintf",
        Integer,
        [
            MemOrNull,
            ConstSizeOrZero,
            ConstStr,
            MemOrNull,
            ConstSizeOrZero,
        ],
        Base,
    ),
    gpl(proto(
        173,
        "get_func_ip",
        Integer,
        [Ctx, D, D, D, D],
        Tracing,
    )),
    gpl(proto(
        177,
        "trace_vprintk",
        Integer,
        [Mem, ConstSize, MemOrNull, ConstSizeOrZero, D],
        Base,
    )),
    proto(181, "loop", Integer, [A, Func, StackOrNull, A, D], Base),
];

/// The prototype of helper `id`, if bpfkit knows it.
pub fn helper_proto(id: i32) -> Option<&'static HelperProto> {
    HELPERS.iter().find(|p| p.id == id)
}

impl HelperGroup {
    /// Whether a program of type `t` may call helpers of this group.
    pub fn allows(self, t: ProgramType) -> bool {
        use ProgramType as P;
        let tracing = matches!(
            t,
            P::Kprobe
                | P::Tracepoint
                | P::PerfEvent
                | P::RawTracepoint
                | P::RawTracepointWritable
                | P::Tracing
                | P::Lsm
        );
        let skb = matches!(
            t,
            P::SocketFilter
                | P::SchedCls
                | P::SchedAct
                | P::CgroupSkb
                | P::LwtIn
                | P::LwtOut
                | P::LwtXmit
                | P::SkSkb
        );
        match self {
            HelperGroup::Base => true,
            HelperGroup::Tracing => tracing,
            HelperGroup::Skb => skb,
            HelperGroup::Tc => matches!(t, P::SchedCls | P::SchedAct),
            HelperGroup::Xdp => t == P::Xdp,
            HelperGroup::NetOutput => skb || t == P::Xdp || tracing,
            HelperGroup::NotTracing => !tracing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_names_match_the_id_constants() {
        for w in HELPERS.windows(2) {
            assert!(w[0].id < w[1].id, "{} before {}", w[0].name, w[1].name);
        }
        let lookup = helper_proto(crate::helper::MAP_LOOKUP_ELEM).unwrap();
        assert_eq!(lookup.ret, RetType::MapValueOrNull);
        assert_eq!(lookup.args[1], ArgType::MapKey);
        let reserve = helper_proto(crate::helper::RINGBUF_RESERVE).unwrap();
        assert_eq!(reserve.ret, RetType::RingbufMemOrNull);
        assert!(HelperGroup::Tracing.allows(ProgramType::Kprobe));
        assert!(!HelperGroup::Tracing.allows(ProgramType::Xdp));
        assert!(helper_proto(1000).is_none());
    }
}
