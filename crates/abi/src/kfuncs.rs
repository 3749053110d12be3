//! Kernel functions (kfuncs) a BPF program may call, with what the kernel
//! registers for each: its arguments and return value, its `KF_*` flags
//! and the program types its set is registered for.
//!
//! A kfunc's prototype is in the kernel's BTF, but its flags and the
//! program types that may call it are not: they live in the kernel's
//! `BTF_KFUNCS_START` sets (kernel/bpf/helpers.c) and its
//! `register_btf_kfunc_id_set` calls. This table carries them for the
//! kfuncs bpfkit models; a program calls one by name (a `__ksym` extern)
//! or by its BTF id, which the caller resolves to a name.

use crate::ProgramType;

/// A kernel object kfuncs take and return by pointer (`PTR_TO_BTF_ID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelObject {
    /// `struct task_struct`.
    Task,
    /// `struct cgroup`.
    Cgroup,
}

impl KernelObject {
    /// The C type's name.
    pub fn struct_name(self) -> &'static str {
        match self {
            KernelObject::Task => "task_struct",
            KernelObject::Cgroup => "cgroup",
        }
    }
}

/// What a kfunc argument must be (`get_kfunc_ptr_arg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KfuncArg {
    /// An initialized scalar.
    Scalar,
    /// A non-NULL pointer to this kernel object (`KF_ARG_PTR_TO_BTF_ID`).
    Object(KernelObject),
}

/// What a kfunc returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KfuncRet {
    /// Nothing: r0 is left uninitialized.
    Void,
    /// A scalar (an integer or `bool`).
    Scalar,
    /// A pointer to this kernel object.
    Object(KernelObject),
}

/// Which of the kernel's kfunc sets a kfunc belongs to; each set is
/// registered for some program types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KfuncSet {
    /// `generic_btf_ids` (kernel/bpf/helpers.c, `kfunc_init`).
    Generic,
    /// `common_btf_ids`: registered for `BPF_PROG_TYPE_UNSPEC`, every type.
    Common,
}

impl KfuncSet {
    /// Whether programs of type `t` may call the set's kfuncs
    /// (`bpf_prog_type_to_kfunc_hook` and the set's registrations).
    pub fn allows(self, t: ProgramType) -> bool {
        use ProgramType as P;
        match self {
            KfuncSet::Common => true,
            // The TRACING hook (tracing, LSM, tracepoint, perf event), TC
            // (sched_cls only), XDP, struct_ops, syscall and the CGROUP hook.
            // Raw tracepoints, kprobes and sched_act have hooks of their
            // own that the generic set is not registered for.
            KfuncSet::Generic => matches!(
                t,
                P::Tracing
                    | P::Lsm
                    | P::Tracepoint
                    | P::PerfEvent
                    | P::SchedCls
                    | P::Xdp
                    | P::StructOps
                    | P::Syscall
                    | P::CgroupSkb
                    | P::CgroupSock
                    | P::CgroupDevice
                    | P::CgroupSockAddr
                    | P::CgroupSysctl
                    | P::CgroupSockopt
            ),
        }
    }
}

/// What the kernel registers for one kfunc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KfuncProto {
    /// Its name, as the program's `__ksym` declaration spells it.
    pub name: &'static str,
    /// Arguments, r1 first.
    pub args: &'static [KfuncArg],
    /// The return value.
    pub ret: KfuncRet,
    /// `KF_ACQUIRE`: the returned pointer is a reference the program must release.
    pub acquire: bool,
    /// `KF_RELEASE`: releases the reference its first argument holds.
    pub release: bool,
    /// `KF_RET_NULL`: the returned pointer may be NULL.
    pub ret_null: bool,
    /// `KF_RCU`: pointer arguments must be trusted or RCU-protected.
    pub rcu: bool,
    /// The set it is registered in.
    pub set: KfuncSet,
}

const fn kfunc(name: &'static str, args: &'static [KfuncArg], ret: KfuncRet) -> KfuncProto {
    KfuncProto {
        name,
        args,
        ret,
        acquire: false,
        release: false,
        ret_null: false,
        rcu: false,
        set: KfuncSet::Generic,
    }
}

/// `KF_ACQUIRE | KF_RET_NULL`.
const fn acquire(p: KfuncProto) -> KfuncProto {
    KfuncProto {
        acquire: true,
        ret_null: true,
        ..p
    }
}

/// `KF_RCU`.
const fn rcu(p: KfuncProto) -> KfuncProto {
    KfuncProto { rcu: true, ..p }
}

/// `KF_RELEASE`.
const fn release(p: KfuncProto) -> KfuncProto {
    KfuncProto { release: true, ..p }
}

const fn common(p: KfuncProto) -> KfuncProto {
    KfuncProto {
        set: KfuncSet::Common,
        ..p
    }
}

use KernelObject::{Cgroup, Task};
use KfuncArg::{Object, Scalar};

/// The kfuncs bpfkit models, from kernel/bpf/helpers.c (Linux 6.18).
pub static KFUNCS: &[KfuncProto] = &[
    rcu(acquire(kfunc(
        "bpf_task_acquire",
        &[Object(Task)],
        KfuncRet::Object(Task),
    ))),
    release(kfunc("bpf_task_release", &[Object(Task)], KfuncRet::Void)),
    acquire(kfunc(
        "bpf_task_from_pid",
        &[Scalar],
        KfuncRet::Object(Task),
    )),
    acquire(kfunc(
        "bpf_task_from_vpid",
        &[Scalar],
        KfuncRet::Object(Task),
    )),
    rcu(acquire(kfunc(
        "bpf_cgroup_acquire",
        &[Object(Cgroup)],
        KfuncRet::Object(Cgroup),
    ))),
    release(kfunc(
        "bpf_cgroup_release",
        &[Object(Cgroup)],
        KfuncRet::Void,
    )),
    rcu(acquire(kfunc(
        "bpf_cgroup_ancestor",
        &[Object(Cgroup), Scalar],
        KfuncRet::Object(Cgroup),
    ))),
    acquire(kfunc(
        "bpf_cgroup_from_id",
        &[Scalar],
        KfuncRet::Object(Cgroup),
    )),
    rcu(kfunc(
        "bpf_task_under_cgroup",
        &[Object(Task), Object(Cgroup)],
        KfuncRet::Scalar,
    )),
    rcu(acquire(kfunc(
        "bpf_task_get_cgroup1",
        &[Object(Task), Scalar],
        KfuncRet::Object(Cgroup),
    ))),
    common(kfunc("bpf_rcu_read_lock", &[], KfuncRet::Void)),
    common(kfunc("bpf_rcu_read_unlock", &[], KfuncRet::Void)),
];

/// What the kernel registers for kfunc `name`, if bpfkit models it.
pub fn kfunc_proto(name: &str) -> Option<&'static KfuncProto> {
    KFUNCS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_take_the_object_their_acquire_returns() {
        for k in KFUNCS.iter().filter(|k| k.acquire) {
            let KfuncRet::Object(o) = k.ret else {
                panic!("{} acquires but returns no object", k.name);
            };
            let releases = KFUNCS
                .iter()
                .filter(|r| r.release && r.args.first() == Some(&Object(o)))
                .count();
            assert_eq!(releases, 1, "{} has one release", k.name);
        }
    }

    #[test]
    fn the_generic_set_is_not_for_socket_filters_or_raw_tracepoints() {
        assert!(KfuncSet::Generic.allows(ProgramType::SchedCls));
        assert!(KfuncSet::Generic.allows(ProgramType::Tracepoint));
        assert!(!KfuncSet::Generic.allows(ProgramType::SocketFilter));
        assert!(!KfuncSet::Generic.allows(ProgramType::RawTracepoint));
        assert!(KfuncSet::Common.allows(ProgramType::SocketFilter));
    }
}
