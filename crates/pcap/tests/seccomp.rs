//! A realistic seccomp filter (the shape of Docker's and systemd's: an
//! architecture check, an x32 guard, an allowlist by number, argument
//! checks, an errno default) run in the classic interpreter and, translated,
//! in bpfkit's VM, with the action checked for each system call.

use std::collections::HashMap;

use bpfkit_isa::cbpf::{self, Insn, JmpCond, RetVal, Size, Src};
use bpfkit_pcap::classic::ValidateErrorKind;
use bpfkit_pcap::seccomp::{
    ret, Action, Filter, SeccompData, AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64,
};
use bpfkit_vm::{ContextKind, Program, Vm};

/// A step of a filter with symbolic jump targets.
enum Step {
    Op(Insn),
    /// Jump to `t` if the condition holds, else to `f` ("" = fall through).
    J(JmpCond, u32, &'static str, &'static str),
    Label(&'static str),
}
use Step::*;

fn assemble(steps: &[Step]) -> Vec<Insn> {
    let mut labels = HashMap::new();
    let mut n = 0;
    for s in steps {
        match s {
            Label(l) => {
                labels.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::new();
    for s in steps {
        let pc = out.len();
        let off = |l: &str| -> u8 {
            if l.is_empty() {
                0
            } else {
                (labels[l] - pc - 1) as u8
            }
        };
        match s {
            Op(i) => out.push(*i),
            J(cond, k, t, f) => out.push(Insn::Jmp {
                cond: *cond,
                src: Src::K(*k),
                jt: off(t),
                jf: off(f),
            }),
            Label(_) => {}
        }
    }
    out
}

const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LO: u32 = 16;
const ARG0_HI: u32 = 20;

fn ld(k: u32) -> Step {
    Op(Insn::LdAbs { size: Size::W, k })
}

fn ret_k(k: u32) -> Step {
    Op(Insn::Ret(RetVal::K(k)))
}

/// x86-64 numbers of the calls the filter names.
mod nr {
    pub const READ: i32 = 0;
    pub const WRITE: i32 = 1;
    pub const CLOSE: i32 = 3;
    pub const MMAP: i32 = 9;
    pub const GETPID: i32 = 39;
    pub const SOCKET: i32 = 41;
    pub const CLONE: i32 = 56;
    pub const KILL: i32 = 62;
    pub const UNAME: i32 = 63;
    pub const PTRACE: i32 = 101;
    pub const PERSONALITY: i32 = 135;
    pub const MOUNT: i32 = 165;
    pub const EXIT_GROUP: i32 = 231;
    pub const OPENAT: i32 = 257;
    pub const REBOOT: i32 = 169;
}

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

fn filter() -> Vec<Insn> {
    use JmpCond::*;
    let allow: [i32; 6] = [
        nr::READ,
        nr::WRITE,
        nr::CLOSE,
        nr::MMAP,
        nr::OPENAT,
        nr::EXIT_GROUP,
    ];
    let mut s = vec![
        ld(ARCH),
        J(Eq, AUDIT_ARCH_X86_64, "", "kill"),
        ld(NR),
        // The x32 ABI's numbers have bit 30 set.
        J(Ge, 0x4000_0000, "enosys", ""),
    ];
    for n in allow {
        s.push(J(Eq, n as u32, "allow", ""));
    }
    s.extend([
        J(Eq, nr::KILL as u32, "log", ""),
        J(Eq, nr::PTRACE as u32, "eperm", ""),
        J(Eq, nr::MOUNT as u32, "eperm", ""),
        J(Eq, nr::UNAME as u32, "notify", ""),
        J(Eq, nr::GETPID as u32, "trace", ""),
        J(Eq, nr::CLONE as u32, "clone", ""),
        J(Eq, nr::PERSONALITY as u32, "personality", ""),
        J(Eq, nr::SOCKET as u32, "socket", "eperm"),
        Label("clone"),
        ld(ARG0_LO),
        // CLONE_NEWUSER
        J(Set, 0x1000_0000, "eperm", "allow"),
        Label("personality"),
        ld(ARG0_HI),
        J(Eq, 0, "", "eperm"),
        ld(ARG0_LO),
        J(Eq, 0, "allow", ""),
        J(Eq, 8, "allow", ""),
        J(Eq, 0xffff_ffff, "allow", "eperm"),
        Label("socket"),
        ld(ARG0_LO),
        // AF_UNIX, AF_INET, AF_INET6 allowed; AF_NETLINK traps; others fail.
        J(Eq, 1, "allow", ""),
        J(Eq, 2, "allow", ""),
        J(Eq, 10, "allow", ""),
        J(Eq, 16, "trap", "eperm"),
        Label("allow"),
        ret_k(ret::ALLOW),
        Label("log"),
        ret_k(ret::LOG),
        Label("notify"),
        ret_k(ret::USER_NOTIF),
        Label("trace"),
        ret_k(ret::TRACE | 0x102),
        Label("trap"),
        ret_k(ret::TRAP | 7),
        Label("enosys"),
        ret_k(ret::ERRNO | ENOSYS),
        Label("eperm"),
        ret_k(ret::ERRNO | EPERM),
        Label("kill"),
        ret_k(ret::KILL_PROCESS),
    ]);
    assemble(&s)
}

fn call(nr: i32, arg0: u64) -> SeccompData {
    SeccompData {
        nr,
        arch: AUDIT_ARCH_X86_64,
        instruction_pointer: 0x7f00_1234_5678,
        args: [arg0, 0, 0, 0, 0, 0],
    }
}

fn cases() -> Vec<(SeccompData, Action)> {
    let eperm = Action::Errno(EPERM as u16);
    vec![
        (call(nr::READ, 3), Action::Allow),
        (call(nr::WRITE, 1), Action::Allow),
        (call(nr::CLOSE, 3), Action::Allow),
        (call(nr::MMAP, 0), Action::Allow),
        (call(nr::OPENAT, u64::MAX), Action::Allow),
        (call(nr::EXIT_GROUP, 0), Action::Allow),
        (call(nr::KILL, 1), Action::Log),
        (call(nr::PTRACE, 0), eperm),
        (call(nr::MOUNT, 0), eperm),
        (call(nr::UNAME, 0), Action::UserNotif),
        (call(nr::GETPID, 0), Action::Trace(0x102)),
        (call(nr::CLONE, 0x11), Action::Allow),
        (call(nr::CLONE, 0x1000_0011), eperm),
        (call(nr::PERSONALITY, 0), Action::Allow),
        (call(nr::PERSONALITY, 8), Action::Allow),
        (call(nr::PERSONALITY, 0xffff_ffff), Action::Allow),
        (call(nr::PERSONALITY, 0x1_0000_0000), eperm),
        (call(nr::PERSONALITY, 0x0040_0000), eperm),
        (call(nr::SOCKET, 1), Action::Allow),
        (call(nr::SOCKET, 2), Action::Allow),
        (call(nr::SOCKET, 10), Action::Allow),
        (call(nr::SOCKET, 16), Action::Trap(7)),
        (call(nr::SOCKET, 17), eperm),
        (call(nr::REBOOT, 0), eperm),
        (call(0x4000_0000, 0), Action::Errno(ENOSYS as u16)),
        (call(-1, 0), Action::Errno(ENOSYS as u16)),
        (
            SeccompData {
                arch: AUDIT_ARCH_AARCH64,
                ..call(nr::READ, 0)
            },
            Action::KillProcess,
        ),
    ]
}

#[test]
fn the_allowlist_decides_each_call_in_classic_and_in_the_vm() {
    let f = Filter::new(filter()).unwrap();
    let ebpf = f.translate().unwrap();
    let prog = Program::with_context(ebpf, ContextKind::Raw).unwrap();
    let mut vm = Vm::new();
    for (data, want) in cases() {
        assert_eq!(f.run(&data), want, "classic on {data:?}");
        let mut ctx = data.to_bytes();
        let raw = vm.run(&prog, &mut ctx).unwrap();
        assert_eq!(raw, f.run_raw(&data) as u64, "VM on {data:?}");
        assert_eq!(Action::from_ret(raw as u32), want, "VM on {data:?}");
    }
}

#[test]
fn the_filter_prints_as_a_listing_that_parses_back() {
    let f = filter();
    let text = cbpf::dump(&f);
    assert!(text.starts_with("(000) ld       [4]\n"), "{text}");
    assert_eq!(cbpf::parse_listing(&text).unwrap(), f);
}

#[test]
fn loads_seccomp_check_filter_refuses_are_refused_with_their_index() {
    let ret_a = Insn::Ret(RetVal::A);
    let cases: Vec<(Vec<Insn>, ValidateErrorKind)> = vec![
        (
            vec![
                Insn::LdImm(0),
                Insn::LdAbs {
                    size: Size::W,
                    k: 64,
                },
                ret_a,
            ],
            ValidateErrorKind::SeccompLoad(64),
        ),
        (
            vec![
                Insn::LdImm(0),
                Insn::LdAbs {
                    size: Size::W,
                    k: 2,
                },
                ret_a,
            ],
            ValidateErrorKind::SeccompLoad(2),
        ),
        (
            vec![
                Insn::LdImm(0),
                Insn::LdAbs {
                    size: Size::H,
                    k: 0,
                },
                ret_a,
            ],
            ValidateErrorKind::NotAllowed("a 16- or 8-bit load in a seccomp filter"),
        ),
        (
            vec![
                Insn::LdImm(0),
                Insn::LdInd {
                    size: Size::W,
                    k: 0,
                },
                ret_a,
            ],
            ValidateErrorKind::NotAllowed("ld [x + k] in a seccomp filter"),
        ),
        (
            vec![Insn::LdImm(0), Insn::LdxMsh(0), ret_a],
            ValidateErrorKind::NotAllowed("ldxb 4*([k]&0xf) in a seccomp filter"),
        ),
        (
            vec![
                Insn::LdImm(0),
                Insn::Alu {
                    op: cbpf::AluOp::Mod,
                    src: Src::K(3),
                },
                ret_a,
            ],
            ValidateErrorKind::NotAllowed("mod in a seccomp filter"),
        ),
    ];
    for (insns, kind) in cases {
        let e = Filter::new(insns).unwrap_err();
        assert_eq!((e.index, &e.kind), (1, &kind));
        assert!(
            e.to_string().starts_with("classic BPF instruction 1: "),
            "{e}"
        );
    }
    // The classic checks come first: a jump out of range.
    let e = Filter::new(vec![Insn::Ja(5), Insn::Ret(RetVal::K(0))]).unwrap_err();
    assert!(matches!(e.kind, ValidateErrorKind::JumpOutOfRange { .. }));
}

#[test]
fn pktlen_is_the_size_of_seccomp_data() {
    let f = Filter::new(vec![Insn::LdLen, Insn::Ret(RetVal::A)]).unwrap();
    assert_eq!(f.run_raw(&SeccompData::default()), 64);
    let prog = Program::with_context(f.translate().unwrap(), ContextKind::Raw).unwrap();
    let mut ctx = SeccompData::default().to_bytes();
    assert_eq!(Vm::new().run(&prog, &mut ctx).unwrap(), 64);
}
