//! Hand-written programs, one accept/reject pair (or more) per rule
//! category, shared by `rules.rs` (bpfkit's verdicts) and `kernel_diff.rs`
//! (the running kernel's verdicts, the oracle).
#![allow(dead_code)]

use bpfkit_abi::{AttachType, MapType, ProgramType};
use bpfkit_isa::{assemble, CallTarget, Insn, JmpCond, MemSize, Operand, Reg, Syntax};
use bpfkit_verifier::MapInfo;
use proptest::prelude::*;

/// Says why a test skips. Under `CI=true` a skip fails instead: CI runs as
/// root on a kernel that allows every test, so a skip there hides a fault.
pub fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test skipped under CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// One hand-written program.
pub struct Case {
    /// What it checks.
    pub name: &'static str,
    /// Rule category.
    pub category: &'static str,
    /// Program type.
    pub prog_type: ProgramType,
    /// Expected attach type, for return value ranges.
    pub attach: Option<AttachType>,
    /// LLVM-syntax assembly; maps are `map[idx:N]` into [`maps`].
    pub asm: &'static str,
    /// Whether a privileged loader's program is accepted.
    pub accept: bool,
    /// Words bpfkit's rejection message must contain.
    pub reason: &'static str,
}

impl Case {
    /// The instructions.
    pub fn insns(&self) -> Vec<Insn> {
        assemble(self.asm, Syntax::Llvm).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

/// The maps every case may refer to: `map[idx:0]` an array of one u64,
/// `map[idx:1]` a 4 KiB ring buffer, `map[idx:2]` a hash of u32 to 16 bytes.
pub fn maps() -> Vec<MapInfo> {
    vec![
        MapInfo::new("array", MapType::Array, 4, 8, 1),
        MapInfo::new("ringbuf", MapType::Ringbuf, 0, 0, 4096),
        MapInfo::new("hash", MapType::Hash, 4, 16, 8),
    ]
}

const LOOKUP: &str = "r1 = 0
*(u32 *)(r10 - 4) = r1
r2 = r10
r2 += -4
r1 = map[idx:0]
call 1
";

macro_rules! hash_lookup_then {
    ($rest:expr) => {
        concat!(
            "r1 = 0\n*(u32 *)(r10 - 4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:2]\ncall 1\n",
            $rest
        )
    };
}

macro_rules! lookup_then {
    ($rest:expr) => {
        concat!(
            "r1 = 0\n*(u32 *)(r10 - 4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall 1\n",
            $rest
        )
    };
}

use ProgramType as P;

/// Every case.
pub fn cases() -> Vec<Case> {
    let c = |name, category, prog_type, asm, accept, reason| Case {
        name,
        category,
        prog_type,
        attach: None,
        asm,
        accept,
        reason,
    };
    let _ = LOOKUP;
    vec![
        c("r0 set", "uninit reg", P::SocketFilter, "r0 = 0\nexit", true, ""),
        c("r2 never written", "uninit reg", P::SocketFilter, "r0 = r2\nexit", false, "R2 !read_ok"),
        c("r0 never written", "uninit reg", P::SocketFilter, "r1 = 0\nexit", false, "R0 !read_ok"),
        c(
            "uninitialized stack read is allowed to root",
            "uninit stack",
            P::SocketFilter,
            "r0 = *(u64 *)(r10 - 8)\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "written stack read",
            "uninit stack",
            P::SocketFilter,
            "r1 = 7\n*(u64 *)(r10 - 8) = r1\nr0 = *(u64 *)(r10 - 8)\nexit",
            true,
            "",
        ),
        c(
            "stack read below 512 bytes",
            "OOB stack",
            P::SocketFilter,
            "r0 = *(u64 *)(r10 - 520)\nr0 = 0\nexit",
            false,
            "stack",
        ),
        c(
            "stack write above the frame pointer",
            "OOB stack",
            P::SocketFilter,
            "r1 = 0\n*(u64 *)(r10 + 0) = r1\nr0 = 0\nexit",
            false,
            "stack",
        ),
        c(
            "lookup result checked then read in bounds",
            "OOB map value",
            P::SocketFilter,
            lookup_then!("if r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
            true,
            "",
        ),
        c(
            "lookup result read past the value",
            "OOB map value",
            P::SocketFilter,
            lookup_then!("if r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 4)\nr0 = 0\nexit"),
            false,
            "invalid access to map value",
        ),
        c(
            "variable index bounded by a check",
            "OOB map value",
            P::SocketFilter,
            lookup_then!(
                "if r0 == 0 goto +6\nr1 = *(u64 *)(r0 + 0)\nif r1 > 7 goto +4\nr2 = r0\nr2 += r1\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nr0 = 0\nexit"
            ),
            true,
            "",
        ),
        c(
            "variable index without a check",
            "OOB map value",
            P::SocketFilter,
            lookup_then!(
                "if r0 == 0 goto +4\nr1 = *(u64 *)(r0 + 0)\nr2 = r0\nr2 += r1\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nexit"
            ),
            false,
            "makes map_value pointer be out of bounds",
        ),
        c(
            "lookup result used without a NULL check",
            "NULL unchecked",
            P::SocketFilter,
            hash_lookup_then!("r0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
            false,
            "may be NULL",
        ),
        c(
            "array lookup with a constant key needs no NULL check",
            "NULL unchecked",
            P::SocketFilter,
            lookup_then!("r0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
            true,
            "",
        ),
        c(
            "array lookup with a key out of range",
            "NULL unchecked",
            P::SocketFilter,
            "r1 = 5\n*(u64 *)(r10 - 8) = r1\nr2 = r10\nr2 += -8\nr1 = map[idx:0]\ncall 1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit",
            false,
            "may be NULL",
        ),
        c(
            "copy of the lookup result checked, original used",
            "NULL unchecked",
            P::SocketFilter,
            hash_lookup_then!("r6 = r0\nif r6 == 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"),
            true,
            "",
        ),
        c(
            "packet read after a data_end check",
            "OOB packet",
            P::Xdp,
            "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 14\nif r4 > r3 goto +1\nr0 = *(u8 *)(r2 + 13)\nr0 = 2\nexit",
            true,
            "",
        ),
        c(
            "packet read one byte past the check",
            "OOB packet",
            P::Xdp,
            "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 14\nif r4 > r3 goto +1\nr0 = *(u8 *)(r2 + 14)\nr0 = 2\nexit",
            false,
            "invalid access to packet",
        ),
        c(
            "packet read without a check",
            "OOB packet",
            P::Xdp,
            "r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 + 0)\nr0 = 2\nexit",
            false,
            "invalid access to packet",
        ),
        c(
            "xdp_md field read",
            "OOB ctx",
            P::Xdp,
            "r0 = *(u32 *)(r1 + 12)\nr0 = 2\nexit",
            true,
            "",
        ),
        c(
            "read past xdp_md",
            "OOB ctx",
            P::Xdp,
            "r0 = *(u32 *)(r1 + 24)\nr0 = 2\nexit",
            false,
            "invalid bpf_context access",
        ),
        c(
            "write to a read-only xdp_md field",
            "OOB ctx",
            P::Xdp,
            "r2 = 1\n*(u32 *)(r1 + 12) = r2\nr0 = 2\nexit",
            false,
            "invalid bpf_context access",
        ),
        c(
            "__sk_buff mark read in a socket filter",
            "OOB ctx",
            P::SocketFilter,
            "r0 = *(u32 *)(r1 + 8)\nexit",
            true,
            "",
        ),
        c(
            "stack pointer plus a constant",
            "pointer arithmetic",
            P::SocketFilter,
            "r1 = r10\nr1 += -8\nr2 = 0\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "stack pointer multiplied",
            "pointer arithmetic",
            P::SocketFilter,
            "r1 = r10\nr1 *= 2\nr0 = 0\nexit",
            false,
            "pointer arithmetic with *= operator prohibited",
        ),
        c(
            "arithmetic on a possibly-NULL pointer",
            "pointer arithmetic",
            P::SocketFilter,
            hash_lookup_then!("r0 += 4\nr0 = 0\nexit"),
            false,
            "null-check it first",
        ),
        c(
            "ctx pointer modified then read",
            "pointer arithmetic",
            P::Xdp,
            "r1 += 4\nr0 = *(u32 *)(r1 + 0)\nr0 = 2\nexit",
            false,
            "modified ctx ptr",
        ),
        c(
            "pointer stored into a map value (root may)",
            "pointer leak",
            P::SocketFilter,
            lookup_then!("if r0 == 0 goto +1\n*(u64 *)(r0 + 0) = r10\nr0 = 0\nexit"),
            true,
            "",
        ),
        c(
            "pointer returned (root may, no range check)",
            "pointer leak",
            P::SocketFilter,
            "r0 = r10\nexit",
            true,
            "",
        ),
        c(
            "ringbuf reserve submitted",
            "unreleased reference",
            P::SocketFilter,
            "r1 = map[idx:1]\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto +3\nr1 = r0\nr2 = 0\ncall 132\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "ringbuf reserve discarded on one path, leaked on the other",
            "unreleased reference",
            P::SocketFilter,
            "r6 = r1\nr1 = map[idx:1]\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto +6\nr7 = r0\nr1 = *(u32 *)(r6 + 0)\nif r1 > 10 goto +3\nr1 = r7\nr2 = 0\ncall 133\nr0 = 0\nexit",
            false,
            "Unreleased reference",
        ),
        c(
            "ringbuf reserve never released",
            "unreleased reference",
            P::SocketFilter,
            "r1 = map[idx:1]\nr2 = 8\nr3 = 0\ncall 131\nr0 = 0\nexit",
            false,
            "Unreleased reference",
        ),
        c(
            "ringbuf memory written in bounds",
            "unreleased reference",
            P::SocketFilter,
            "r1 = map[idx:1]\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto +5\nr1 = 1\n*(u64 *)(r0 + 0) = r1\nr1 = r0\nr2 = 0\ncall 132\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "ringbuf memory written past the reservation",
            "OOB mem",
            P::SocketFilter,
            "r1 = map[idx:1]\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto +5\nr1 = 1\n*(u64 *)(r0 + 4) = r1\nr1 = r0\nr2 = 0\ncall 132\nr0 = 0\nexit",
            false,
            "invalid access to memory",
        ),
        c(
            "bounded loop",
            "loop",
            P::SocketFilter,
            "r0 = 0\nL: r0 += 1\nif r0 < 10 goto L\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "loop that never changes state",
            "loop",
            P::SocketFilter,
            "r0 = 0\nL: r1 = 0\ngoto L",
            false,
            "infinite loop",
        ),
        c(
            "loop bounded by an unknown u32",
            "loop",
            P::SocketFilter,
            "r6 = *(u32 *)(r1 + 0)\nr0 = 0\nL: r0 += 1\nif r0 < r6 goto L\nr0 = 0\nexit",
            false,
            "too large",
        ),
        c(
            "map lookup with a number for the map",
            "bad helper arg",
            P::SocketFilter,
            "r1 = 0\nr2 = 0\ncall 1\nr0 = 0\nexit",
            false,
            "expected=map_ptr",
        ),
        c(
            "map lookup with an unset key",
            "bad helper arg",
            P::SocketFilter,
            "r1 = map[idx:0]\ncall 1\nr0 = 0\nexit",
            false,
            "R2 !read_ok",
        ),
        c(
            "map lookup with a key past the stack",
            "bad helper arg",
            P::SocketFilter,
            "r2 = r10\nr2 += -2\nr1 = map[idx:0]\ncall 1\nr0 = 0\nexit",
            false,
            "stack",
        ),
        c(
            "ringbuf output with an unbounded size",
            "bad helper arg",
            P::SocketFilter,
            "r6 = *(u32 *)(r1 + 0)\nr1 = map[idx:1]\nr2 = r10\nr2 += -8\nr3 = r6\nr4 = 0\ncall 130\nr0 = 0\nexit",
            false,
            "R3",
        ),
        c(
            "ringbuf output of 8 stack bytes",
            "bad helper arg",
            P::SocketFilter,
            "r1 = map[idx:1]\nr2 = r10\nr2 += -8\nr3 = 8\nr4 = 0\ncall 130\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "map lookup on a ring buffer",
            "bad helper arg",
            P::SocketFilter,
            "r1 = 0\n*(u32 *)(r10 - 4) = r1\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall 1\nr0 = 0\nexit",
            false,
            "map_type",
        ),
        c(
            "tracing helper from XDP",
            "bad helper arg",
            P::Xdp,
            "call 173\nr0 = 2\nexit",
            false,
            "cannot call",
        ),
        c(
            "tracing helper from a kprobe",
            "bad helper arg",
            P::Kprobe,
            "call 173\nr0 = 0\nexit",
            true,
            "",
        ),
        Case {
            attach: Some(AttachType::CgroupInetIngress),
            ..c("cgroup_skb returns 1", "bad return value", P::CgroupSkb, "r0 = 1\nexit", true, "")
        },
        Case {
            attach: Some(AttachType::CgroupInetIngress),
            ..c(
                "cgroup_skb returns 5",
                "bad return value",
                P::CgroupSkb,
                "r0 = 5\nexit",
                false,
                "should have been in [0, 1]",
            )
        },
        Case {
            attach: Some(AttachType::CgroupInetIngress),
            ..c(
                "cgroup_skb returns a ctx field",
                "bad return value",
                P::CgroupSkb,
                "r0 = *(u32 *)(r1 + 0)\nexit",
                false,
                "should have been in [0, 1]",
            )
        },
        Case {
            attach: Some(AttachType::CgroupInetIngress),
            ..c(
                "cgroup_skb returns a ctx field masked to one bit",
                "bad return value",
                P::CgroupSkb,
                "r0 = *(u32 *)(r1 + 0)\nr0 &= 1\nexit",
                true,
                "",
            )
        },
        c("division by an immediate zero", "alu", P::SocketFilter, "r0 = 1\nr0 /= 0\nexit", false, "div by zero"),
        c("division by a register that may be zero", "alu", P::SocketFilter, "r0 = 1\nr1 = 0\nr0 /= r1\nexit", true, ""),
        c("shift by 64", "alu", P::SocketFilter, "r0 = 1\nr0 <<= 64\nexit", false, "invalid shift"),
        c("write to the frame pointer", "alu", P::SocketFilter, "r10 = 0\nr0 = 0\nexit", false, "frame pointer"),
        c(
            "bpf-to-bpf call",
            "calls",
            P::SocketFilter,
            "r1 = 1\ncall f\nexit\nf:\nr0 = r1\nexit",
            true,
            "",
        ),
        c(
            "callee reads a caller-saved register it was not given",
            "calls",
            P::SocketFilter,
            "r6 = 1\ncall f\nexit\nf:\nr0 = r6\nexit",
            false,
            "R6 !read_ok",
        ),
        c(
            "caller reads r1 after a call",
            "calls",
            P::SocketFilter,
            "r1 = 1\ncall f\nr0 = r1\nexit\nf:\nr0 = 0\nexit",
            false,
            "R1 !read_ok",
        ),
        c(
            "bpf_loop callback without BTF func_info",
            "calls",
            P::SocketFilter,
            "r1 = 10\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall 181\nr0 = 0\nexit\ncb:\nr0 = 0\nexit",
            false,
            "func_info",
        ),
        c(
            "jump into the middle of lddw",
            "cfg",
            P::SocketFilter,
            "goto +1\nr0 = 0 ll\nexit",
            false,
            "ldimm64",
        ),
        c(
            "unreachable instruction",
            "cfg",
            P::SocketFilter,
            "r0 = 0\nexit\nr0 = 1\nexit",
            false,
            "unreachable insn",
        ),
        c(
            "jump out of range",
            "cfg",
            P::SocketFilter,
            "r0 = 0\nif r0 == 0 goto +5\nexit",
            false,
            "jump out of range",
        ),
        c(
            "branch on a known value prunes the dead side",
            "branches",
            P::SocketFilter,
            "r1 = 5\nif r1 > 10 goto +2\nr0 = 0\nexit\nr0 = *(u64 *)(r10 + 8)\nexit",
            true,
            "",
        ),
        c(
            "32-bit compare refines the low half",
            "branches",
            P::SocketFilter,
            lookup_then!(
                "if r0 == 0 goto +6\nr1 = *(u32 *)(r0 + 0)\nif w1 > 7 goto +4\nr2 = r0\nr2 += r1\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nr0 = 0\nexit"
            ),
            true,
            "",
        ),
        c(
            "signed compare alone leaves a negative index",
            "branches",
            P::SocketFilter,
            lookup_then!(
                "if r0 == 0 goto +6\nr1 = *(u64 *)(r0 + 0)\nif r1 s> 7 goto +4\nr2 = r0\nr2 += r1\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nr0 = 0\nexit"
            ),
            false,
            "makes map_value pointer be out of bounds",
        ),
        c(
            "task reference acquired, NULL-checked and released",
            "kfunc references",
            P::SchedCls,
            "r1 = 1\ncall kfunc 900001\nif r0 == 0 goto +2\nr1 = r0\ncall kfunc 900002\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "task reference never released",
            "kfunc references",
            P::SchedCls,
            "r1 = 1\ncall kfunc 900001\nr0 = 0\nexit",
            false,
            "Unreleased reference",
        ),
        c(
            "task reference released before its NULL check",
            "kfunc references",
            P::SchedCls,
            "r1 = 1\ncall kfunc 900001\nr1 = r0\ncall kfunc 900002\nr0 = 0\nexit",
            false,
            "Possibly NULL pointer passed to trusted arg0",
        ),
        c(
            "task reference released twice",
            "kfunc references",
            P::SchedCls,
            "r1 = 1\ncall kfunc 900001\nif r0 == 0 goto +4\nr6 = r0\nr1 = r0\ncall kfunc 900002\nr1 = r6\ncall kfunc 900002\nr0 = 0\nexit",
            false,
            "must point to scalar",
        ),
        c(
            "current task acquired and released",
            "kfunc references",
            P::Tracepoint,
            "call 158\nr1 = r0\ncall kfunc 900003\nif r0 == 0 goto +2\nr1 = r0\ncall kfunc 900002\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "current task released without being acquired",
            "kfunc references",
            P::Tracepoint,
            "call 158\nr1 = r0\ncall kfunc 900002\nr0 = 0\nexit",
            false,
            "expects refcounted PTR_TO_BTF_ID",
        ),
        c(
            "task reference released as a cgroup",
            "kfunc references",
            P::Tracepoint,
            "call 158\nr1 = r0\ncall kfunc 900003\nif r0 == 0 goto +2\nr1 = r0\ncall kfunc 900005\nr0 = 0\nexit",
            false,
            "expected pointer to STRUCT cgroup",
        ),
        c(
            "cgroup reference acquired and released",
            "kfunc references",
            P::SchedCls,
            "r1 = 1\ncall kfunc 900004\nif r0 == 0 goto +2\nr1 = r0\ncall kfunc 900005\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "task kfunc called from a socket filter",
            "kfunc references",
            P::SocketFilter,
            "r1 = 1\ncall kfunc 900001\nif r0 == 0 goto +2\nr1 = r0\ncall kfunc 900002\nr0 = 0\nexit",
            false,
            "is not allowed in socket_filter programs",
        ),
        c(
            "rcu read lock and unlock",
            "kfunc references",
            P::SocketFilter,
            "call kfunc 900006\ncall kfunc 900007\nr0 = 0\nexit",
            true,
            "",
        ),
        c(
            "rcu read lock held at exit",
            "kfunc references",
            P::SocketFilter,
            "call kfunc 900006\nr0 = 0\nexit",
            false,
            "inside bpf_rcu_read_lock-ed region",
        ),
        c(
            "rcu read lock taken twice",
            "kfunc references",
            P::SchedCls,
            "call kfunc 900006\ncall kfunc 900006\ncall kfunc 900007\ncall kfunc 900007\nr0 = 0\nexit",
            false,
            "nested rcu read lock",
        ),
        c(
            "rcu read unlock without a lock",
            "kfunc references",
            P::SchedCls,
            "call kfunc 900007\nr0 = 0\nexit",
            false,
            "unmatched rcu read unlock",
        ),
    ]
}

/// The kernel functions the cases call, by the placeholder BTF id their
/// `call kfunc N` carries (the kernel differential swaps in this kernel's
/// ids).
pub const KFUNCS: &[(u32, &str)] = &[
    (900001, "bpf_task_from_pid"),
    (900002, "bpf_task_release"),
    (900003, "bpf_task_acquire"),
    (900004, "bpf_cgroup_from_id"),
    (900005, "bpf_cgroup_release"),
    (900006, "bpf_rcu_read_lock"),
    (900007, "bpf_rcu_read_unlock"),
];

/// [`KFUNCS`] as the verifier's `kfunc_names`.
pub fn kfunc_names() -> Vec<(u32, String)> {
    KFUNCS.iter().map(|&(id, n)| (id, n.to_string())).collect()
}

/// One mutation of one instruction (or of the program's length).
#[derive(Debug, Clone)]
pub enum Mutation {
    Imm(usize, i32),
    Off(usize, i16),
    Reg(usize, u8),
    Size(usize, u8),
    Cond(usize, u8),
    Helper(usize, u8),
    Delete(usize),
    Duplicate(usize),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<usize>();
    prop_oneof![
        (
            idx,
            prop_oneof![-16i32..16, Just(i32::MAX), Just(i32::MIN), any::<i32>()]
        )
            .prop_map(|(i, v)| Mutation::Imm(i, v)),
        (idx, -24i16..24).prop_map(|(i, v)| Mutation::Off(i, v)),
        (idx, 0u8..11).prop_map(|(i, r)| Mutation::Reg(i, r)),
        (idx, 0u8..4).prop_map(|(i, s)| Mutation::Size(i, s)),
        (idx, 0u8..11).prop_map(|(i, c)| Mutation::Cond(i, c)),
        (idx, 0u8..64).prop_map(|(i, h)| Mutation::Helper(i, h)),
        idx.prop_map(Mutation::Delete),
        idx.prop_map(Mutation::Duplicate),
    ]
}

const CONDS: [JmpCond; 11] = [
    JmpCond::Eq,
    JmpCond::Gt,
    JmpCond::Ge,
    JmpCond::Set,
    JmpCond::Ne,
    JmpCond::Sgt,
    JmpCond::Sge,
    JmpCond::Lt,
    JmpCond::Le,
    JmpCond::Slt,
    JmpCond::Sle,
];
const SIZES: [MemSize; 4] = [MemSize::B, MemSize::H, MemSize::W, MemSize::DW];

pub fn apply(insns: &mut Vec<Insn>, m: &Mutation) {
    let n = insns.len();
    let at = |i: usize| i % n;
    match *m {
        Mutation::Imm(i, v) => match &mut insns[at(i)] {
            Insn::Alu {
                src: Operand::Imm(x),
                ..
            }
            | Insn::Jmp {
                src: Operand::Imm(x),
                ..
            } => *x = v,
            Insn::StoreImm { imm, .. } => *imm = v,
            _ => {}
        },
        Mutation::Off(i, d) => match &mut insns[at(i)] {
            Insn::Load { off, .. }
            | Insn::Store { off, .. }
            | Insn::StoreImm { off, .. }
            | Insn::LoadSx { off, .. } => *off = off.wrapping_add(d),
            Insn::Jmp { off, .. } | Insn::Ja { off } => {
                *off = off.wrapping_add(d.signum() * (d.abs() % 3))
            }
            _ => {}
        },
        Mutation::Reg(i, r) => {
            let r = Reg::new(r).unwrap();
            match &mut insns[at(i)] {
                Insn::Alu {
                    src: Operand::Reg(s),
                    ..
                }
                | Insn::Jmp {
                    src: Operand::Reg(s),
                    ..
                } => *s = r,
                Insn::Alu { dst, .. } | Insn::Jmp { dst, .. } => *dst = r,
                Insn::Load { src, .. } | Insn::Store { src, .. } => *src = r,
                Insn::StoreImm { dst, .. } => *dst = r,
                _ => {}
            }
        }
        Mutation::Size(i, s) => match &mut insns[at(i)] {
            Insn::Load { size, .. } | Insn::Store { size, .. } | Insn::StoreImm { size, .. } => {
                *size = SIZES[s as usize]
            }
            _ => {}
        },
        Mutation::Cond(i, c) => {
            if let Insn::Jmp { cond, .. } = &mut insns[at(i)] {
                *cond = CONDS[c as usize % CONDS.len()];
            }
        }
        Mutation::Helper(i, h) => {
            if let Insn::Call(CallTarget::Helper(id)) = &mut insns[at(i)] {
                let table = bpfkit_abi::HELPERS;
                *id = table[h as usize % table.len()].id;
            }
        }
        Mutation::Delete(i) => {
            if n > 2 {
                insns.remove(at(i));
            }
        }
        Mutation::Duplicate(i) => {
            let x = insns[at(i)];
            insns.insert(at(i), x);
        }
    }
}

/// A program from random 8-byte slots: the slots that decode on their own
/// (registers and offsets kept small), after moves that set every register
/// but the context, ending with exit.
pub fn random_program(slots: &[[u8; 8]]) -> Vec<Insn> {
    let mut insns: Vec<Insn> = assemble(
        "r0 = 0\nr2 = r10\nr2 += -64\nr3 = 8\nr4 = 0\nr5 = 1\nr6 = r1\nr7 = 4\nr8 = r10\nr8 += -8\nr9 = 0",
        Syntax::Llvm,
    )
    .expect("the prologue assembles");
    for s in slots {
        let mut s = *s;
        s[1] &= 0x99;
        s[2] %= 8;
        s[3] = 0;
        if let Ok(mut one) = bpfkit_isa::decode(&s, bpfkit_isa::ByteOrder::Little) {
            insns.append(&mut one);
        }
    }
    insns.push(Insn::Exit);
    insns
}
