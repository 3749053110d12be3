//! seccomp filters in the real kernel: it installs exactly the filters
//! `seccomp::validate` accepts, and a filter's actions do to system calls
//! what `Filter::run` says they do.
//!
//! Installing a filter is for life, so each one goes into a fresh process:
//! this test binary run again for the `child` test alone, told what to do
//! through the environment, installing the filter on its own thread.

mod common;

use std::process::Command;

use bpfkit_isa::cbpf::{self, Insn, RetVal, Size};
use bpfkit_pcap::seccomp::{self, ret, Action, Filter, SeccompData};

/// The program to install, as `tcpdump -ddd` text.
const ENV_PROGRAM: &str = "BPFKIT_SECCOMP_PROGRAM";

#[cfg(target_arch = "x86_64")]
const ARCH: u32 = seccomp::AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = seccomp::AUDIT_ARCH_AARCH64;

/// `PR_SET_NO_NEW_PRIVS`.
const PR_SET_NO_NEW_PRIVS: libc::c_int = 38;

/// The calls the child makes once its filter is in: (name, number, arg0).
fn calls() -> Vec<(&'static str, libc::c_long, u64)> {
    vec![
        ("mount", libc::SYS_mount, 0),
        ("personality-query", libc::SYS_personality, 0xffff_ffff),
        ("personality-set", libc::SYS_personality, 0x0040_0000),
        ("getppid", libc::SYS_getppid, 0),
        ("uname", libc::SYS_uname, 0),
        ("getpid", libc::SYS_getpid, 0),
    ]
}

/// Not a test of its own: the child process's body, which the other tests
/// run (`--ignored --exact child`) with the program in the environment.
#[test]
#[ignore = "the child process of the other tests, which run it"]
fn child() {
    let Ok(text) = std::env::var(ENV_PROGRAM) else {
        return;
    };
    let insns = cbpf::parse_decimal(&text).unwrap();
    let raw: Vec<[u8; 8]> = insns
        .iter()
        .map(|i| {
            // struct sock_filter is in host byte order.
            let order = if cfg!(target_endian = "little") {
                bpfkit_isa::ByteOrder::Little
            } else {
                bpfkit_isa::ByteOrder::Big
            };
            i.encode().to_bytes(order)
        })
        .collect();
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const [u8; 8],
    }
    let prog = SockFprog {
        len: raw.len() as u16,
        filter: raw.as_ptr(),
    };
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel copies `prog.len` instructions from `raw`, which
    // outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const SockFprog,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        println!("install: errno {e}");
        return;
    }
    println!("install: ok");
    let mut buf = [0u8; 512];
    for (name, nr, arg0) in calls() {
        let arg0 = if name == "uname" {
            buf.as_mut_ptr() as u64
        } else {
            arg0
        };
        // SAFETY: each call gets integer arguments, or for uname a buffer
        // larger than struct utsname; mount with null pointers is refused
        // (by the filter, or else with EFAULT) before any use.
        let r = unsafe { libc::syscall(nr, arg0, 0, 0, 0, 0) };
        let e = if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        println!("call {name}: {e}");
    }
}

/// Runs `insns` in a child; its stdout lines.
fn in_child(insns: &[Insn]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ENV_PROGRAM, cbpf::dump_decimal(insns))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints `test child ... ` before the child's first line.
    stdout
        .lines()
        .filter_map(|l| {
            let at = l.find("install:").or_else(|| l.find("call "))?;
            Some(l[at..].to_string())
        })
        .collect()
}

fn seccomp_usable() -> bool {
    // Root with NO_NEW_PRIVS needs nothing else; a kernel without seccomp
    // filters says EINVAL even for a valid filter, which the first case shows.
    if !std::path::Path::new("/proc/sys/kernel/seccomp/actions_avail").exists() {
        common::skip("this kernel has no seccomp filters (no /proc/sys/kernel/seccomp)");
        return false;
    }
    true
}

fn allow() -> Insn {
    Insn::Ret(RetVal::K(ret::ALLOW))
}

#[test]
fn the_kernel_installs_exactly_what_validate_accepts() {
    if !seccomp_usable() {
        return;
    }
    let w = |k| Insn::LdAbs { size: Size::W, k };
    let cases: Vec<Vec<Insn>> = vec![
        vec![allow()],
        vec![w(0), w(4), w(8), w(60), allow()],
        vec![Insn::LdLen, Insn::Tax { k: 0 }, Insn::LdxLen, allow()],
        vec![w(64), allow()],
        vec![w(2), allow()],
        vec![
            Insn::LdAbs {
                size: Size::H,
                k: 0,
            },
            allow(),
        ],
        vec![
            Insn::LdAbs {
                size: Size::B,
                k: 4,
            },
            allow(),
        ],
        vec![
            Insn::LdInd {
                size: Size::W,
                k: 0,
            },
            allow(),
        ],
        vec![Insn::LdxMsh(0), allow()],
        vec![
            w(0),
            Insn::Alu {
                op: cbpf::AluOp::Mod,
                src: cbpf::Src::K(3),
            },
            allow(),
        ],
        vec![
            w(0),
            Insn::Alu {
                op: cbpf::AluOp::Div,
                src: cbpf::Src::K(3),
            },
            allow(),
        ],
        vec![
            Insn::LdAbs {
                size: Size::W,
                k: 0xffff_f000,
            },
            allow(),
        ],
        vec![Insn::LdMem(0), allow()],
        vec![w(0)],
    ];
    for insns in cases {
        let ours = seccomp::validate(&insns);
        let lines = in_child(&insns);
        let want = if ours.is_ok() {
            "install: ok"
        } else {
            "install: errno 22"
        };
        assert_eq!(
            lines[0],
            want,
            "{}: validate says {ours:?}",
            cbpf::dump(&insns)
        );
    }
}

#[test]
fn each_action_does_to_the_call_what_run_says() {
    if !seccomp_usable() {
        return;
    }
    use cbpf::JmpCond::Eq;
    let jeq = |k: u32, jt: u8, jf: u8| Insn::Jmp {
        cond: Eq,
        src: cbpf::Src::K(k),
        jt,
        jf,
    };
    let nr = |n: libc::c_long| n as u32;
    // Everything allowed (the test harness needs its calls), except:
    // mount → EPERM; personality: the query allowed, others EACCES;
    // getppid → an errno above MAX_ERRNO (clamped to 4095); uname → TRACE
    // with no tracer (ENOSYS); a foreign architecture killed.
    let insns = vec![
        Insn::LdAbs {
            size: Size::W,
            k: 4,
        },
        jeq(ARCH, 1, 0),
        Insn::Ret(RetVal::K(ret::KILL_PROCESS)),
        Insn::LdAbs {
            size: Size::W,
            k: 0,
        },
        jeq(nr(libc::SYS_mount), 0, 1),
        Insn::Ret(RetVal::K(ret::ERRNO | 1)),
        jeq(nr(libc::SYS_personality), 0, 3),
        Insn::LdAbs {
            size: Size::W,
            k: 16,
        },
        jeq(0xffff_ffff, 5, 0),
        Insn::Ret(RetVal::K(ret::ERRNO | 13)),
        jeq(nr(libc::SYS_getppid), 0, 1),
        Insn::Ret(RetVal::K(ret::ERRNO | 0xffff)),
        jeq(nr(libc::SYS_uname), 0, 1),
        Insn::Ret(RetVal::K(ret::TRACE | 5)),
        allow(),
    ];
    let filter = Filter::new(insns.clone()).unwrap();
    let lines = in_child(&insns);
    assert_eq!(lines[0], "install: ok", "{lines:?}");
    for ((name, number, arg0), line) in calls().into_iter().zip(&lines[1..]) {
        let data = SeccompData {
            nr: number as i32,
            arch: ARCH,
            instruction_pointer: 0,
            args: [arg0, 0, 0, 0, 0, 0],
        };
        let action = filter.run(&data);
        // What the kernel does with each action when nobody traces the process.
        let errno = match action {
            Action::Errno(e) => e as i32,
            Action::Trace(_) | Action::UserNotif => libc::ENOSYS,
            Action::Allow | Action::Log => 0,
            other => panic!("{name}: {other} would end the child"),
        };
        // uname/getpid succeed; personality(0xffffffff) returns the persona.
        assert_eq!(
            line,
            &format!("call {name}: {errno}"),
            "{name} under {action}"
        );
    }
    assert_eq!(lines.len(), 1 + calls().len(), "{lines:?}");
    // The same filter, translated, in the VM: the same actions.
    let prog =
        bpfkit_vm::Program::with_context(filter.translate().unwrap(), bpfkit_vm::ContextKind::Raw)
            .unwrap();
    let mut vm = bpfkit_vm::Vm::new();
    for (_, number, arg0) in calls() {
        let data = SeccompData {
            nr: number as i32,
            arch: ARCH,
            instruction_pointer: 0,
            args: [arg0, 0, 0, 0, 0, 0],
        };
        let mut ctx = data.to_bytes();
        assert_eq!(
            vm.run(&prog, &mut ctx).unwrap(),
            filter.run_raw(&data) as u64
        );
    }
}
