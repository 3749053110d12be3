//! Shared by the kernel test binaries: the access check and hand-written
//! programs built from `Insn`s.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use bpfkit_abi::{helper, ProgramType};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Imm64, Insn, JmpCond, MemSize, Operand, Reg, Width};
use bpfkit_kernel::{Program, ProgramLoad};

/// Skips the test (printing why) unless `bpf()` is usable.
#[macro_export]
macro_rules! require_bpf {
    () => {
        if let Err(why) = bpfkit_kernel::check_bpf_access() {
            $crate::common::skip(&format!("cannot use bpf(): {why}"));
            return;
        }
    };
}

/// Says why a test skips. Under `CI=true` a skip fails instead: CI runs as
/// root on a kernel that allows every test, so a skip there hides a fault.
pub fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test skipped under CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
}

pub fn mov(dst: Reg, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src: Operand::Imm(imm),
    }
}

pub fn mov_reg(dst: Reg, src: Reg) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src: Operand::Reg(src),
    }
}

pub fn add(dst: Reg, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Add,
        dst,
        src: Operand::Imm(imm),
    }
}

pub fn and(dst: Reg, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::And,
        dst,
        src: Operand::Imm(imm),
    }
}

pub fn map_fd(dst: Reg, fd: BorrowedFd<'_>) -> Insn {
    Insn::LdImm64 {
        dst,
        imm: Imm64::MapFd(fd.as_raw_fd()),
    }
}

pub fn call(id: i32) -> Insn {
    Insn::Call(CallTarget::Helper(id))
}

pub fn st_dw(dst: Reg, off: i16, imm: i32) -> Insn {
    Insn::StoreImm {
        size: MemSize::DW,
        dst,
        off,
        imm,
    }
}

pub fn stx_dw(dst: Reg, off: i16, src: Reg) -> Insn {
    Insn::Store {
        size: MemSize::DW,
        dst,
        src,
        off,
    }
}

/// `if dst == imm goto +off` (or `!=`).
pub fn jmp(cond: JmpCond, dst: Reg, imm: i32, off: i16) -> Insn {
    Insn::Jmp {
        width: Width::W64,
        cond,
        dst,
        src: Operand::Imm(imm),
        off,
    }
}

pub fn slots(insns: &[Insn]) -> i16 {
    insns.iter().map(Insn::slots).sum::<usize>() as i16
}

/// `r6 = counter[0]++` (the old value), or jump to the end when the lookup
/// fails; `rest` follows; the program returns `ret`.
pub fn numbered(counter: BorrowedFd<'_>, rest: Vec<Insn>, ret: i32) -> Vec<Insn> {
    let mut after = vec![
        mov(Reg::R6, 1),
        Insn::Atomic {
            dw: true,
            op: AtomicOp::Add { fetch: true },
            dst: Reg::R0,
            src: Reg::R6,
            off: 0,
        },
    ];
    after.extend(rest);
    let mut p = vec![
        Insn::StoreImm {
            size: MemSize::W,
            dst: Reg::R10,
            off: -4,
            imm: 0,
        },
        mov_reg(Reg::R2, Reg::R10),
        add(Reg::R2, -4),
        map_fd(Reg::R1, counter),
        call(helper::MAP_LOOKUP_ELEM),
        jmp(JmpCond::Eq, Reg::R0, 0, slots(&after)),
    ];
    p.extend(after);
    p.push(mov(Reg::R0, ret));
    p.push(Insn::Exit);
    p
}

/// Writes a 64-byte record `[seq, 0x5a5a5a5a x 7]` at `r10 - 72` from `r6`.
pub fn record_on_stack() -> Vec<Insn> {
    let mut v = vec![stx_dw(Reg::R10, -72, Reg::R6)];
    for i in 1..8 {
        v.push(st_dw(Reg::R10, -72 + 8 * i, 0x5a5a_5a5a));
    }
    v
}

/// XDP: numbers each run and sends a 64-byte record with `bpf_ringbuf_output`.
pub fn ringbuf_output_prog(counter: BorrowedFd<'_>, rb: BorrowedFd<'_>) -> Vec<Insn> {
    let mut rest = record_on_stack();
    rest.extend([
        map_fd(Reg::R1, rb),
        mov_reg(Reg::R2, Reg::R10),
        add(Reg::R2, -72),
        mov(Reg::R3, 64),
        mov(Reg::R4, 0),
        call(helper::RINGBUF_OUTPUT),
    ]);
    numbered(counter, rest, 2)
}

/// XDP: reserves a record per run, writes the run number, and submits it on
/// even runs and discards it on odd ones.
pub fn ringbuf_discard_odd_prog(counter: BorrowedFd<'_>, rb: BorrowedFd<'_>) -> Vec<Insn> {
    let submit = vec![call(helper::RINGBUF_SUBMIT), Insn::Ja { off: 1 }];
    let mut tail = vec![
        stx_dw(Reg::R0, 0, Reg::R6),
        mov_reg(Reg::R7, Reg::R6),
        and(Reg::R7, 1),
        mov_reg(Reg::R1, Reg::R0),
        mov(Reg::R2, 0),
        jmp(JmpCond::Ne, Reg::R7, 0, slots(&submit)),
    ];
    tail.extend(submit);
    tail.push(call(helper::RINGBUF_DISCARD));
    let mut rest = vec![
        map_fd(Reg::R1, rb),
        mov(Reg::R2, 64),
        mov(Reg::R3, 0),
        call(helper::RINGBUF_RESERVE),
        jmp(JmpCond::Eq, Reg::R0, 0, slots(&tail)),
    ];
    rest.extend(tail);
    numbered(counter, rest, 2)
}

/// XDP: numbers each run and sends a 64-byte record to the current CPU's
/// perf buffer.
pub fn perf_output_prog(counter: BorrowedFd<'_>, perf: BorrowedFd<'_>) -> Vec<Insn> {
    let mut rest = record_on_stack();
    rest.extend([
        mov_reg(Reg::R1, Reg::R9),
        map_fd(Reg::R2, perf),
        // BPF_F_CURRENT_CPU: a 32-bit move of -1 zero-extends to 0xffffffff.
        Insn::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            dst: Reg::R3,
            src: Operand::Imm(-1),
        },
        mov_reg(Reg::R4, Reg::R10),
        add(Reg::R4, -72),
        mov(Reg::R5, 64),
        call(helper::PERF_EVENT_OUTPUT),
    ]);
    // Keep the context in r9 for the helper.
    let mut p = vec![mov_reg(Reg::R9, Reg::R1)];
    p.extend(numbered(counter, rest, 2));
    p
}

pub fn load(name: &str, prog_type: ProgramType, insns: &[Insn]) -> bpfkit_kernel::Result<Program> {
    Program::load(&ProgramLoad {
        name,
        prog_type,
        expected_attach_type: None,
        insns,
        license: "GPL",
        kern_version: 0,
        btf: None,
        attach_btf_id: 0,
        core_relos: Vec::new(),
    })
}

/// An Ethernet-sized packet for XDP test runs.
pub fn packet() -> Vec<u8> {
    (0..64u8).collect()
}

/// Pins the calling thread to one CPU, so that every `test_run` (which runs
/// on the caller's CPU) writes to the same per-CPU ring; a test that waits
/// for a lost-record notice on "the" ring needs that.
pub fn pin_to_first_cpu() {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it,
    // and sched_setaffinity(0, ...) reads exactly size_of::<cpu_set_t>() bytes.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}
