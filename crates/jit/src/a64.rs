//! The ARM64 back end: eBPF to A64 machine code, packaged as a small static
//! aarch64 Linux executable, so that the code can be checked on any
//! machine through qemu-aarch64. An executable comes in one of two kinds.
//!
//! - **Standalone** ([`executable`]): it runs one program on one input.
//!   The input and each call frame's 512 bytes of stack are regions at the
//!   VM's tagged addresses (`region_base`), and bpf-to-bpf calls get fresh
//!   zeroed frames, up to the VM's `MAX_FRAMES`. Its only helper is the
//!   conformance suite's helper 5 (and `callx` of it).
//!   - On a return it writes `r0` as 8 little-endian bytes to standard
//!     output, then the input as the program left it, and exits with 0.
//!   - On a fault it writes the [`FaultKind`] and the pc of the
//!     instruction (the interpreter's `RunError` kind and pc). It exits
//!     with [`EXIT_FAULT`] (a memory fault, an unknown helper or call
//!     target, the call depth) or [`EXIT_BUDGET`].
//!   - It exits with [`EXIT_UNSUPPORTED`] for what it lacks: maps,
//!     callbacks, `callx` of a function.
//! - **Hosted** ([`compile_hosted`], run by [`crate::hosted`]): the VM's
//!   regions, whatever they are, sit in the executable's arena. Helpers,
//!   map loads, frames, context and packet loads, callbacks and how the run
//!   ends are requests to the VM over standard output, and the replies come
//!   back on standard input.
//!
//! Either way every access is checked inline against a region table (a
//! region's readable and writable lengths), and the instruction budget is
//! counted per block as the x86-64 back end does. Atomics at misaligned
//! addresses, which the VM allows and LSE instructions fault on, are done
//! with plain loads and stores (the executable has one thread).
//!
//! Register mapping as in the kernel's arm64 JIT (arch/arm64/net/bpf_jit_comp.c,
//! `bpf2a64`): r0 = x7, r1..r5 = x0..x4, r6..r9 = x19..x22, r10 = x25;
//! x26 is the region table, x27 the remaining budget, x28 the data block.

use bpfkit_vm::engine::{Op, FUNC_ADDR_TAG};
use bpfkit_vm::{region_base, Program, MAX_FRAMES, STACK_PER_FRAME};

use crate::blocks::{leaders, Accesses};
use crate::JitError;

/// Exit status of a run that faulted (memory, helper, call target, depth).
pub const EXIT_FAULT: i32 = 2;
/// Exit status of a run that exhausted its instruction budget.
pub const EXIT_BUDGET: i32 = 3;
/// Exit status of a program using what this back end does not provide.
pub const EXIT_UNSUPPORTED: i32 = 4;

/// Why a run ended early, as the executable reports it (with the slot
/// index of the instruction) on standard output before exiting with
/// [`EXIT_FAULT`] or [`EXIT_BUDGET`]: two little-endian u64, the kind's
/// number and the pc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A load, store or atomic outside every region (the VM's `MemoryFault`).
    Memory = 1,
    /// The instruction budget ran out before this instruction (`BudgetExhausted`).
    Budget = 2,
    /// A call of a helper this back end does not have (`UnknownHelper`).
    UnknownHelper = 3,
    /// A bpf-to-bpf call past the VM's `MAX_FRAMES` (`CallDepth`).
    CallDepth = 4,
    /// `callx` of a value that is neither helper 5 nor a function (`BadCallTarget`).
    BadCallTarget = 5,
}

impl FaultKind {
    /// The kind with this number in the executable's report.
    pub fn from_code(code: u64) -> Option<FaultKind> {
        Some(match code {
            1 => FaultKind::Memory,
            2 => FaultKind::Budget,
            3 => FaultKind::UnknownHelper,
            4 => FaultKind::CallDepth,
            5 => FaultKind::BadCallTarget,
            _ => return None,
        })
    }
}

/// The places a run may end early, each reported with its pc and kind:
/// labels made on demand, their stubs emitted after the code.
#[derive(Default)]
struct Sites {
    /// (label, pc, kind) of each stub.
    stubs: Vec<(usize, usize, FaultKind)>,
}

impl Sites {
    /// A label that ends the run at `pc` with `kind`.
    fn at(&mut self, a: &mut Asm, pc: usize, kind: FaultKind) -> usize {
        let l = a.label();
        self.stubs.push((l, pc, kind));
        l
    }
}

const R: [u32; 11] = [7, 0, 1, 2, 3, 4, 19, 20, 21, 22, 25];
const ZR: u32 = 31;
const TABLE: u32 = 26;
const BUDGET: u32 = 27;
const DATA: u32 = 28;
const LR: u32 = 30;

/// Where the data segment is mapped.
const DATA_ADDR: u64 = 0x1000_1000;
const DATA_FILE_OFFSET: u64 = 0x1000;
const STACKS: u64 = 0x1000;
const INPUT: u64 = 0x1000 + (MAX_FRAMES * STACK_PER_FRAME) as u64;

/// Where the region table starts in the data segment; each entry is
/// [`TABLE_ENTRY`] bytes: the host address, the readable length and the
/// writable length (0 for a read-only region).
const TABLE_OFFSET: u64 = 0x100;
const TABLE_ENTRY: usize = 32;

// ---- The hosted executable's exchange with the VM (crate::hosted). ----

/// Regions a hosted executable's table has room for.
pub(crate) const HOSTED_REGIONS: usize = 4095;
/// Data-segment offsets: the arena's bytes in use, the saved link register,
/// a request, a reply, the arena (the bytes of every region).
const ARENA_USED: u32 = 0x18;
const SAVED_LR: u32 = 0x20;
const REQUEST: u64 = 0x2_1000;
const REPLY: u64 = 0x2_1100;
pub(crate) const ARENA: u64 = 0x2_2000;
/// Bytes the arena may hold (zero-filled memory after the file's bytes).
pub(crate) const ARENA_CAPACITY: u64 = 64 << 20;
/// Words of a request: what, pc, two operands, r0..r10, budget, arena bytes.
pub(crate) const REQUEST_WORDS: usize = 17;
/// Words of a reply: r0, whether to call, the address to call, r1..r5, the
/// callee's r10, budget, arena bytes, a value, table entries. The table
/// entries follow (all that changed: every entry in use, and zeroed ones
/// for regions gone since the last reply), then the arena.
pub(crate) const REPLY_WORDS: usize = 13;
pub(crate) const REPLY_ARGS: u32 = 3;
pub(crate) const REPLY_FP: u32 = 8;
pub(crate) const REPLY_BUDGET: u32 = 9;
pub(crate) const REPLY_ARENA: u32 = 10;
pub(crate) const REPLY_VALUE: u32 = 11;
pub(crate) const REPLY_TABLE: u32 = 12;
/// Exit status of a hosted executable whose exchange with the VM failed.
pub const EXIT_PROTOCOL: i32 = 6;

/// What a hosted executable asks the VM (word 0 of a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// The run returned r0 (no reply).
    Exit = 1,
    /// It ends early at pc: word 3 the [`FaultKind`], word 2 the guest
    /// address of a memory fault (no reply).
    End = 2,
    /// `call` of helper word 2.
    Helper = 3,
    /// `lddw rX, map[word 2]`: the value.
    MapHandle = 4,
    /// `lddw rX, map_value[word 2] + word 3`: the value.
    MapValue = 5,
    /// The 32-bit context load at pc from guest address word 2: the value.
    LoadContext = 6,
    /// `LD_ABS`/`LD_IND` at pc: r0.
    Packet = 7,
    /// A bpf-to-bpf call at pc: the callee and its frame.
    Enter = 8,
    /// A function's exit.
    Leave = 9,
    /// `callx` of word 2: a value or a callee.
    Callx = 10,
    /// A callback helper at pc: a value or a callee.
    CallbackStart = 11,
    /// The callee of a callback returned r0: a value or the next callee.
    CallbackReturned = 12,
}

impl Request {
    pub(crate) fn from_code(code: u64) -> Option<Request> {
        use Request::*;
        [
            Exit,
            End,
            Helper,
            MapHandle,
            MapValue,
            LoadContext,
            Packet,
            Enter,
            Leave,
            Callx,
            CallbackStart,
            CallbackReturned,
        ]
        .into_iter()
        .find(|r| *r as u64 == code)
    }
}

/// A64 code under construction, with labels fixed up at the end.
struct Asm {
    code: Vec<u32>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label, kind): 26-bit (b/bl) or 19-bit (b.cond, cbz).
    fixups: Vec<(usize, usize, bool)>,
}

#[derive(Clone, Copy)]
enum Cond {
    Eq = 0,
    Ne = 1,
    Hs = 2,
    Lo = 3,
    Hi = 8,
    Ls = 9,
    Ge = 10,
    Lt = 11,
    Gt = 12,
    Le = 13,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn emit(&mut self, w: u32) {
        self.code.push(w);
    }
    fn b(&mut self, l: usize) {
        self.fixups.push((self.code.len(), l, true));
        self.emit(0x1400_0000);
    }
    fn bl(&mut self, l: usize) {
        self.fixups.push((self.code.len(), l, true));
        self.emit(0x9400_0000);
    }
    fn bcond(&mut self, c: Cond, l: usize) {
        self.fixups.push((self.code.len(), l, false));
        self.emit(0x5400_0000 | c as u32);
    }
    fn cbz(&mut self, rt: u32, l: usize) {
        self.fixups.push((self.code.len(), l, false));
        self.emit(0xB400_0000 | rt);
    }
    fn cbnz(&mut self, rt: u32, l: usize) {
        self.fixups.push((self.code.len(), l, false));
        self.emit(0xB500_0000 | rt);
    }
    fn finish(mut self) -> Result<Vec<u32>, JitError> {
        for &(at, l, long) in &self.fixups {
            let to = self.labels[l].ok_or_else(|| JitError::Assemble("unbound label".into()))?;
            let delta = to as i64 - at as i64;
            if long {
                self.code[at] |= (delta as u32) & 0x03ff_ffff;
            } else {
                if !(-(1 << 18)..(1 << 18)).contains(&delta) {
                    return Err(JitError::Assemble("conditional branch out of range".into()));
                }
                self.code[at] |= ((delta as u32) & 0x7ffff) << 5;
            }
        }
        Ok(self.code)
    }

    fn sf(w64: bool) -> u32 {
        (w64 as u32) << 31
    }
    /// `mov` of a 64-bit constant (movz + movk of its nonzero halves).
    fn mov_imm(&mut self, rd: u32, v: u64) {
        self.emit(0xD280_0000 | ((v & 0xffff) as u32) << 5 | rd);
        for hw in 1..4u32 {
            let part = ((v >> (16 * hw)) & 0xffff) as u32;
            if part != 0 {
                self.emit(0xF280_0000 | hw << 21 | part << 5 | rd);
            }
        }
    }
    fn mov(&mut self, w64: bool, rd: u32, rm: u32) {
        self.emit(0x2A00_03E0 | Self::sf(w64) | rm << 16 | rd);
    }
    /// Three-register data processing with a fixed opcode.
    fn rrr(&mut self, base: u32, w64: bool, rd: u32, rn: u32, rm: u32) {
        self.emit(base | Self::sf(w64) | rm << 16 | rn << 5 | rd);
    }
    fn add_imm(&mut self, rd: u32, rn: u32, imm: u32) {
        self.emit(0x9100_0000 | imm << 10 | rn << 5 | rd);
    }
    fn cmp_imm(&mut self, rn: u32, imm: u32) {
        self.emit(0xF100_001F | imm << 10 | rn << 5);
    }
    fn ldr(&mut self, rt: u32, rn: u32, off: u32) {
        self.emit(0xF940_0000 | (off / 8) << 10 | rn << 5 | rt);
    }
    fn str(&mut self, rt: u32, rn: u32, off: u32) {
        self.emit(0xF900_0000 | (off / 8) << 10 | rn << 5 | rt);
    }
    /// `add rd, rn, rm, lsl #shift`.
    fn add_lsl(&mut self, rd: u32, rn: u32, rm: u32, shift: u32) {
        self.emit(0x8B00_0000 | rm << 16 | shift << 10 | rn << 5 | rd);
    }
    fn ubfm(&mut self, w64: bool, rd: u32, rn: u32, immr: u32, imms: u32) {
        let base = if w64 { 0xD340_0000 } else { 0x5300_0000 };
        self.emit(base | immr << 16 | imms << 10 | rn << 5 | rd);
    }
    fn sbfm(&mut self, w64: bool, rd: u32, rn: u32, immr: u32, imms: u32) {
        let base = if w64 { 0x9340_0000 } else { 0x1300_0000 };
        self.emit(base | immr << 16 | imms << 10 | rn << 5 | rd);
    }
    fn stp_pre(&mut self, a: u32, b: u32) {
        // stp a, b, [sp, #-16]!
        self.emit(0xA980_0000 | (0x7e << 15) | b << 10 | 31 << 5 | a);
    }
    fn ldp_post(&mut self, a: u32, b: u32) {
        // ldp a, b, [sp], #16
        self.emit(0xA8C0_0000 | (2 << 15) | b << 10 | 31 << 5 | a);
    }
}

// Data processing opcodes (without sf).
const ADD: u32 = 0x0B00_0000;
const SUB: u32 = 0x4B00_0000;
const AND: u32 = 0x0A00_0000;
const ORR: u32 = 0x2A00_0000;
const EOR: u32 = 0x4A00_0000;
const SUBS: u32 = 0x6B00_0000;
const ANDS: u32 = 0x6A00_0000;
const MUL: u32 = 0x1B00_7C00;
const UDIV: u32 = 0x1AC0_0800;
const SDIV: u32 = 0x1AC0_0C00;
const LSLV: u32 = 0x1AC0_2000;
const LSRV: u32 = 0x1AC0_2400;
const ASRV: u32 = 0x1AC0_2800;

fn reg(i: u8) -> u32 {
    R[(i as usize).min(10)]
}

/// A program's A64 code as its executable holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A64Code {
    /// The instructions, in order, from the entry.
    pub words: Vec<u32>,
    /// For each instruction slot of the program, the index in `words` of
    /// the first instruction made from it (`None` for the second slot of a
    /// 64-bit immediate load, which has no code of its own).
    pub starts: Vec<Option<usize>>,
    /// Index in `words` where the shared exit paths (result, fault,
    /// budget) begin.
    pub exits: usize,
}

/// Builds the aarch64 executable running `program` on `mem` with `budget`
/// instructions, as [`bpfkit_vm::Vm::run`] does (r1 = the input, r2 = its length).
pub fn executable(program: &Program, mem: &[u8], budget: u64) -> Result<Vec<u8>, JitError> {
    let code = compile(program, mem.len(), budget)?;
    let first_frame = usize::from(!mem.is_empty());
    // The data segment: depth, r0, the region table, the frames, the input.
    let mut data = vec![0u8; INPUT as usize + mem.len()];
    data[INPUT as usize..].copy_from_slice(mem);
    let mut entry = |index: usize, ptr: u64, len: u64| {
        let at = TABLE_OFFSET as usize + TABLE_ENTRY * index;
        data[at..at + 8].copy_from_slice(&ptr.to_le_bytes());
        data[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
        data[at + 16..at + 24].copy_from_slice(&len.to_le_bytes());
    };
    if !mem.is_empty() {
        entry(0, DATA_ADDR + INPUT, mem.len() as u64);
    }
    for frame in 0..MAX_FRAMES {
        let ptr = DATA_ADDR + STACKS + (frame * STACK_PER_FRAME) as u64;
        let len = if frame == 0 {
            STACK_PER_FRAME as u64
        } else {
            0
        };
        entry(first_frame + frame, ptr, len);
    }
    Ok(elf(&code.words, &data, 0))
}

/// Compiles `program` to the A64 code of an executable whose input has
/// `input_len` bytes and whose budget is `budget` instructions.
pub fn compile(program: &Program, input_len: usize, budget: u64) -> Result<A64Code, JitError> {
    compile_mode(program, Mode::Standalone { input_len, budget })
}

/// Compiles `program` to the A64 code of a hosted executable: one that
/// asks the VM for what is not plain code (see [`crate::hosted`]).
pub fn compile_hosted(program: &Program) -> Result<A64Code, JitError> {
    compile_mode(program, Mode::Hosted)
}

/// How an executable gets what is not plain code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// On its own: the input and the frames at fixed places, helper 5 only.
    Standalone { input_len: usize, budget: u64 },
    /// From the VM, over standard input and output: helpers, maps, frames,
    /// context and packet loads, callbacks and how a run ends.
    Hosted,
}

fn compile_mode(program: &Program, mode: Mode) -> Result<A64Code, JitError> {
    let ops = program.ops();
    let lead = leaders(ops, Accesses::EndBlocks);
    let hosted = mode == Mode::Hosted;
    // The VM's region layout: the input (when there is one), then frames;
    // hosted, whatever regions the VM's address space has.
    let (first_frame, nregions) = match mode {
        Mode::Standalone { input_len, .. } => {
            let first_frame = usize::from(input_len != 0);
            (first_frame, first_frame + MAX_FRAMES)
        }
        Mode::Hosted => (0, HOSTED_REGIONS),
    };
    let mut a = Asm {
        code: Vec::new(),
        labels: Vec::new(),
        fixups: Vec::new(),
    };
    let labels: Vec<usize> = (0..ops.len()).map(|_| a.label()).collect();
    let finish = a.label();
    let report = a.label();
    let host = a.label();
    let mut sites = Sites::default();
    let mut budget_stubs: Vec<(usize, usize)> = Vec::new();
    let unsupported = a.label();
    let exit_zero = a.label();

    // Entry: registers as the VM starts them.
    a.mov_imm(DATA, DATA_ADDR);
    a.add_imm(TABLE, DATA, TABLE_OFFSET as u32);
    for r in R {
        a.mov_imm(r, 0);
    }
    match mode {
        Mode::Standalone { input_len, budget } => {
            a.mov_imm(BUDGET, budget);
            if input_len != 0 {
                a.mov_imm(reg(1), region_base(0));
            }
            a.mov_imm(reg(2), input_len as u64);
            a.mov_imm(reg(10), region_base(first_frame) + STACK_PER_FRAME as u64);
        }
        Mode::Hosted => {
            // The VM writes r1..r5, r10 and the budget where its replies go.
            a.mov_imm(15, DATA_ADDR + REPLY);
            for r in 1..=5u8 {
                a.ldr(reg(r), 15, 8 * (REPLY_ARGS + r as u32 - 1));
            }
            a.ldr(reg(10), 15, 8 * REPLY_FP);
            a.ldr(BUDGET, 15, 8 * REPLY_BUDGET);
        }
    }

    let mut block_len = vec![0usize; ops.len()];
    let mut current = 0;
    for (pc, op) in ops.iter().enumerate() {
        if *op == Op::LdImm64Tail {
            continue;
        }
        if lead[pc] {
            current = pc;
        }
        block_len[current] += 1;
    }

    for (pc, &op) in ops.iter().enumerate() {
        if op == Op::LdImm64Tail {
            continue;
        }
        a.bind(labels[pc]);
        if lead[pc] {
            let n = block_len[pc] as u64;
            let stub = a.label();
            budget_stubs.push((stub, pc));
            a.mov_imm(9, n);
            a.rrr(SUBS, true, ZR, BUDGET, 9);
            a.bcond(Cond::Lo, stub);
            a.rrr(SUB, true, BUDGET, BUDGET, 9);
        }
        if hosted && emit_hosted(&mut a, op, pc, host, finish) {
            continue;
        }
        let fault = |a: &mut Asm, kind| sites.at(a, pc, kind);
        emit_op(
            &mut a,
            op,
            &labels,
            nregions,
            first_frame,
            [finish, unsupported, exit_zero],
            fault,
        )?;
    }
    // Exits.
    let exits = a.code.len();
    let do_exit = a.label();
    if hosted {
        // The VM takes r0 and the memory from the exit request; the
        // executable then exits without waiting for a reply.
        a.bind(finish);
        rpc(&mut a, Request::Exit, 0, host);
        a.b(do_exit);
    } else {
        a.bind(exit_zero);
        a.mov_imm(reg(0), 0);
        a.bind(finish);
        a.str(reg(0), DATA, 8);
        a.mov_imm(0, 1);
        a.add_imm(1, DATA, 8);
        a.mov_imm(2, 8);
        a.mov_imm(8, 64); // write
        a.emit(0xD400_0001);
        if let Mode::Standalone { input_len, .. } = mode {
            if input_len != 0 {
                // The input as the program left it.
                a.mov_imm(0, 1);
                a.mov_imm(1, DATA_ADDR + INPUT);
                a.mov_imm(2, input_len as u64);
                a.mov_imm(8, 64);
                a.emit(0xD400_0001);
            }
        }
        a.mov_imm(0, 0);
        a.b(do_exit);
    }
    // Early ends: x11 = pc, x12 = kind; both written, then the exit status.
    for &(l, pc, kind) in &sites.stubs {
        a.bind(l);
        a.mov_imm(11, pc as u64);
        a.mov_imm(12, kind as u64);
        a.b(report);
    }
    // A block the budget cannot pay for stops where the interpreter stops:
    // at its instruction number `remaining` (only a block's last
    // instruction may fault or store, so none of its effects are lost).
    for &(l, leader) in &budget_stubs {
        a.bind(l);
        let slots: Vec<usize> = (leader..ops.len())
            .filter(|&p| ops[p] != Op::LdImm64Tail)
            .take(block_len[leader])
            .collect();
        let done = a.label();
        for (k, &slot) in slots.iter().enumerate() {
            a.mov_imm(11, slot as u64);
            if k + 1 < slots.len() {
                if k < 4096 {
                    a.cmp_imm(BUDGET, k as u32);
                } else {
                    a.mov_imm(13, k as u64);
                    a.rrr(SUBS, true, ZR, BUDGET, 13);
                }
                a.bcond(Cond::Eq, done);
            }
        }
        a.bind(done);
        a.mov_imm(12, FaultKind::Budget as u64);
        a.b(report);
    }
    a.bind(report);
    if hosted {
        // The VM builds the error from the pc, the kind and, for a memory
        // fault, the guest address in x9; it never replies.
        a.mov(true, 13, 9);
        a.mov(true, 14, 12);
        a.mov(true, 12, 11);
        a.mov_imm(11, Request::End as u64);
        a.bl(host);
        a.mov_imm(0, EXIT_PROTOCOL as u64);
        a.b(do_exit);
    } else {
        a.str(12, DATA, 8);
        a.str(11, DATA, 16);
        a.mov_imm(0, 1);
        a.add_imm(1, DATA, 8);
        a.mov_imm(2, 16);
        a.mov_imm(8, 64); // write
        a.emit(0xD400_0001);
        a.mov_imm(0, EXIT_FAULT as u64);
        a.cmp_imm(12, FaultKind::Budget as u32);
        a.bcond(Cond::Ne, do_exit);
        a.mov_imm(0, EXIT_BUDGET as u64);
        a.b(do_exit);
    }
    a.bind(unsupported);
    a.mov_imm(0, EXIT_UNSUPPORTED as u64);
    a.bind(do_exit);
    a.mov_imm(8, 94); // exit_group
    a.emit(0xD400_0001);
    if hosted {
        host_call(&mut a, host, do_exit);
    }
    let starts = ops
        .iter()
        .zip(&labels)
        .map(|(&op, &l)| {
            if op == Op::LdImm64Tail {
                None
            } else {
                a.labels[l]
            }
        })
        .collect();
    Ok(A64Code {
        words: a.finish()?,
        starts,
        exits,
    })
}

#[allow(clippy::too_many_arguments)]
fn emit_op(
    a: &mut Asm,
    op: Op,
    labels: &[usize],
    nregions: usize,
    first_frame: usize,
    [finish, unsupported, exit_zero]: [usize; 3],
    mut fault: impl FnMut(&mut Asm, FaultKind) -> usize,
) -> Result<(), JitError> {
    use Op::*;
    let imm64 = |a: &mut Asm, v: u64| a.mov_imm(9, v);
    let alu = |a: &mut Asm, base: u32, w64: bool, d: u8, src: Option<u8>, v: u64| {
        let rm = match src {
            Some(s) => reg(s),
            None => {
                a.mov_imm(9, v);
                9
            }
        };
        a.rrr(base, w64, reg(d), reg(d), rm);
    };
    let modulo = |a: &mut Asm, div: u32, w64: bool, d: u8, src: Option<u8>, v: u64| {
        let rm = match src {
            Some(s) => reg(s),
            None => {
                a.mov_imm(9, v);
                9
            }
        };
        // d - (d / s) * s: A64 division by zero gives 0, so mod leaves d.
        a.rrr(div, w64, 10, reg(d), rm);
        a.emit(0x1B00_8000 | Asm::sf(w64) | rm << 16 | reg(d) << 10 | 10 << 5 | reg(d));
    };
    let shift_imm = |a: &mut Asm, kind: u8, w64: bool, d: u8, v: u64| {
        let bits = if w64 { 64 } else { 32 };
        let s = (v as u32) & (bits - 1);
        match kind {
            0 => a.ubfm(w64, reg(d), reg(d), (bits - s) % bits, bits - 1 - s),
            1 => a.ubfm(w64, reg(d), reg(d), s, bits - 1),
            _ => a.sbfm(w64, reg(d), reg(d), s, bits - 1),
        }
    };
    // The memory fault stub of a load, store or atomic (none for others).
    let mf = match op {
        Ldx8(..) | Ldx16(..) | Ldx32(..) | Ldx32Ctx(..) | Ldx64(..) | Ldxs8(..) | Ldxs16(..)
        | Ldxs32(..) | St8(..) | St16(..) | St32(..) | St64(..) | Stx8(..) | Stx16(..)
        | Stx32(..) | Stx64(..) | Atomic(..) => fault(a, FaultKind::Memory),
        _ => usize::MAX,
    };
    match op {
        Add64I(d, v) => alu(a, ADD, true, d, None, v),
        Sub64I(d, v) => alu(a, SUB, true, d, None, v),
        Mul64I(d, v) => alu(a, MUL, true, d, None, v),
        Div64I(d, v) => alu(a, UDIV, true, d, None, v),
        Sdiv64I(d, v) => alu(a, SDIV, true, d, None, v),
        Or64I(d, v) => alu(a, ORR, true, d, None, v),
        And64I(d, v) => alu(a, AND, true, d, None, v),
        Xor64I(d, v) => alu(a, EOR, true, d, None, v),
        Mod64I(d, v) => modulo(a, UDIV, true, d, None, v),
        Smod64I(d, v) => modulo(a, SDIV, true, d, None, v),
        Lsh64I(d, v) => shift_imm(a, 0, true, d, v),
        Rsh64I(d, v) => shift_imm(a, 1, true, d, v),
        Arsh64I(d, v) => shift_imm(a, 2, true, d, v),
        Mov64I(d, v) | Lddw(d, v) => a.mov_imm(reg(d), v),
        LdFunc(d, t) => a.mov_imm(reg(d), FUNC_ADDR_TAG | t as u64),
        Add64R(d, s) => alu(a, ADD, true, d, Some(s), 0),
        Sub64R(d, s) => alu(a, SUB, true, d, Some(s), 0),
        Mul64R(d, s) => alu(a, MUL, true, d, Some(s), 0),
        Div64R(d, s) => alu(a, UDIV, true, d, Some(s), 0),
        Sdiv64R(d, s) => alu(a, SDIV, true, d, Some(s), 0),
        Or64R(d, s) => alu(a, ORR, true, d, Some(s), 0),
        And64R(d, s) => alu(a, AND, true, d, Some(s), 0),
        Xor64R(d, s) => alu(a, EOR, true, d, Some(s), 0),
        Lsh64R(d, s) => alu(a, LSLV, true, d, Some(s), 0),
        Rsh64R(d, s) => alu(a, LSRV, true, d, Some(s), 0),
        Arsh64R(d, s) => alu(a, ASRV, true, d, Some(s), 0),
        Mod64R(d, s) => modulo(a, UDIV, true, d, Some(s), 0),
        Smod64R(d, s) => modulo(a, SDIV, true, d, Some(s), 0),
        Mov64R(d, s) => a.mov(true, reg(d), reg(s)),
        Add32I(d, v) => alu(a, ADD, false, d, None, v as u64),
        Sub32I(d, v) => alu(a, SUB, false, d, None, v as u64),
        Mul32I(d, v) => alu(a, MUL, false, d, None, v as u64),
        Div32I(d, v) => alu(a, UDIV, false, d, None, v as u64),
        Sdiv32I(d, v) => alu(a, SDIV, false, d, None, v as u64),
        Or32I(d, v) => alu(a, ORR, false, d, None, v as u64),
        And32I(d, v) => alu(a, AND, false, d, None, v as u64),
        Xor32I(d, v) => alu(a, EOR, false, d, None, v as u64),
        Mod32I(d, v) => modulo(a, UDIV, false, d, None, v as u64),
        Smod32I(d, v) => modulo(a, SDIV, false, d, None, v as u64),
        Lsh32I(d, v) => shift_imm(a, 0, false, d, v as u64),
        Rsh32I(d, v) => shift_imm(a, 1, false, d, v as u64),
        Arsh32I(d, v) => shift_imm(a, 2, false, d, v as u64),
        Mov32I(d, v) => a.mov_imm(reg(d), v as u64),
        Add32R(d, s) => alu(a, ADD, false, d, Some(s), 0),
        Sub32R(d, s) => alu(a, SUB, false, d, Some(s), 0),
        Mul32R(d, s) => alu(a, MUL, false, d, Some(s), 0),
        Div32R(d, s) => alu(a, UDIV, false, d, Some(s), 0),
        Sdiv32R(d, s) => alu(a, SDIV, false, d, Some(s), 0),
        Or32R(d, s) => alu(a, ORR, false, d, Some(s), 0),
        And32R(d, s) => alu(a, AND, false, d, Some(s), 0),
        Xor32R(d, s) => alu(a, EOR, false, d, Some(s), 0),
        Lsh32R(d, s) => alu(a, LSLV, false, d, Some(s), 0),
        Rsh32R(d, s) => alu(a, LSRV, false, d, Some(s), 0),
        Arsh32R(d, s) => alu(a, ASRV, false, d, Some(s), 0),
        Mod32R(d, s) => modulo(a, UDIV, false, d, Some(s), 0),
        Smod32R(d, s) => modulo(a, SDIV, false, d, Some(s), 0),
        Mov32R(d, s) => a.mov(false, reg(d), reg(s)),
        Movsx64(d, s, bits) => a.sbfm(true, reg(d), reg(s), 0, bits as u32 - 1),
        Movsx32(d, s, bits) => {
            if bits == 32 {
                a.mov(false, reg(d), reg(s))
            } else {
                a.sbfm(false, reg(d), reg(s), 0, bits as u32 - 1)
            }
        }
        Neg64(d) => a.rrr(SUB, true, reg(d), ZR, reg(d)),
        Neg32(d) => a.rrr(SUB, false, reg(d), ZR, reg(d)),
        Le(d, bits) => match bits {
            16 => a.ubfm(false, reg(d), reg(d), 0, 15),
            32 => a.mov(false, reg(d), reg(d)),
            _ => a.emit(0xD503_201F), // nop
        },
        Swap(d, bits) => match bits {
            16 => {
                a.emit(0x5AC0_0400 | reg(d) << 5 | reg(d)); // rev16 w
                a.ubfm(false, reg(d), reg(d), 0, 15);
            }
            32 => a.emit(0x5AC0_0800 | reg(d) << 5 | reg(d)), // rev w
            _ => a.emit(0xDAC0_0C00 | reg(d) << 5 | reg(d)),  // rev x
        },
        Ja(t) => a.b(labels[t as usize]),
        Ldx8(d, s, off) => mem(a, reg(s), off, 1, nregions, mf, Access::Load(reg(d), false)),
        Ldx16(d, s, off) => mem(a, reg(s), off, 2, nregions, mf, Access::Load(reg(d), false)),
        Ldx32(d, s, off) | Ldx32Ctx(d, s, off) => {
            mem(a, reg(s), off, 4, nregions, mf, Access::Load(reg(d), false))
        }
        Ldx64(d, s, off) => mem(a, reg(s), off, 8, nregions, mf, Access::Load(reg(d), false)),
        Ldxs8(d, s, off) => mem(a, reg(s), off, 1, nregions, mf, Access::Load(reg(d), true)),
        Ldxs16(d, s, off) => mem(a, reg(s), off, 2, nregions, mf, Access::Load(reg(d), true)),
        Ldxs32(d, s, off) => mem(a, reg(s), off, 4, nregions, mf, Access::Load(reg(d), true)),
        St8(b, off, v) | St16(b, off, v) | St32(b, off, v) | St64(b, off, v) => {
            let size = match op {
                St8(..) => 1,
                St16(..) => 2,
                St32(..) => 4,
                _ => 8,
            };
            imm64(a, v);
            a.mov(true, 15, 9);
            mem(a, reg(b), off, size, nregions, mf, Access::Store(15));
        }
        Stx8(b, s, off) => mem(a, reg(b), off, 1, nregions, mf, Access::Store(reg(s))),
        Stx16(b, s, off) => mem(a, reg(b), off, 2, nregions, mf, Access::Store(reg(s))),
        Stx32(b, s, off) => mem(a, reg(b), off, 4, nregions, mf, Access::Store(reg(s))),
        Stx64(b, s, off) => mem(a, reg(b), off, 8, nregions, mf, Access::Store(reg(s))),
        Atomic(kind, fetch, dw, b, s, off) => {
            let size = if dw { 8 } else { 4 };
            mem(a, reg(b), off, size, nregions, mf, Access::Address);
            // LSE atomics fault on a misaligned address, which the VM
            // allows: there, the executable's single thread does the
            // operation with plain loads and stores.
            let (misaligned, done) = (a.label(), a.label());
            let shift = if dw { 61 } else { 62 };
            a.ubfm(true, 12, 9, 64 - shift, 63 - shift); // lsl x12, x9, #shift
            a.cbnz(12, misaligned);
            atomic(a, kind, fetch, dw, reg(s));
            a.b(done);
            a.bind(misaligned);
            unaligned_atomic(a, kind, fetch, dw, reg(s));
            a.bind(done);
        }
        LdAbs(..) | LdInd(..) => a.b(exit_zero),
        LdMap(..) | LdMapValue(..) | CallWithCallback(_) => a.b(unsupported),
        Call(id) => {
            if id == 5 {
                helper5(a, exit_zero);
            } else {
                let l = fault(a, FaultKind::UnknownHelper);
                a.b(l);
            }
        }
        Callx(s) => {
            // A function address (bit 63) is not supported here; helper 5 is.
            // tbnz has a 14-bit offset: it branches to a nearby stub.
            let tbnz = a.code.len();
            a.emit(0xB7F8_0000 | reg(s)); // tbnz reg, #63, stub
            a.cmp_imm(reg(s), 5);
            let l = fault(a, FaultKind::BadCallTarget);
            a.bcond(Cond::Ne, l);
            helper5(a, exit_zero);
            let skip = a.label();
            a.b(skip);
            let stub = a.code.len();
            a.b(unsupported);
            a.bind(skip);
            a.code[tbnz] |= (((stub - tbnz) as u32) & 0x3fff) << 5;
        }
        CallLocal(t) => {
            // The VM's enter_frame: the entry frame plus the callee's must
            // stay within MAX_FRAMES.
            a.ldr(10, DATA, 0);
            a.cmp_imm(10, (MAX_FRAMES - 1) as u32);
            let l = fault(a, FaultKind::CallDepth);
            a.bcond(Cond::Hs, l);
            a.add_imm(10, 10, 1);
            a.str(10, DATA, 0);
            a.add_imm(11, 10, first_frame as u32);
            a.add_lsl(12, TABLE, 11, 5);
            a.mov_imm(13, STACK_PER_FRAME as u64);
            a.str(13, 12, 8);
            a.str(13, 12, 16);
            // Zero the frame: 64 words.
            a.ldr(14, 12, 0);
            a.mov_imm(15, (STACK_PER_FRAME / 8) as u64);
            let zero = a.label();
            a.bind(zero);
            a.emit(0xF800_841F | 14 << 5); // str xzr, [x14], #8
            a.emit(0xF100_0400 | 15 << 5 | 15); // subs x15, x15, #1
            a.bcond(Cond::Ne, zero);
            a.stp_pre(reg(6), reg(7));
            a.stp_pre(reg(8), reg(9));
            a.stp_pre(reg(10), LR);
            // r10 = region_base(first_frame + depth) + 512.
            a.add_imm(16, 11, 1);
            a.ubfm(true, 16, 16, 32, 31); // lsl #32
            a.add_imm(reg(10), 16, STACK_PER_FRAME as u32);
            a.bl(labels[t as usize]);
            a.ldp_post(reg(10), LR);
            a.ldp_post(reg(8), reg(9));
            a.ldp_post(reg(6), reg(7));
        }
        Exit => {
            a.ldr(10, DATA, 0);
            a.cbz(10, finish);
            a.add_imm(11, 10, first_frame as u32);
            a.add_lsl(12, TABLE, 11, 5);
            a.str(ZR, 12, 8);
            a.str(ZR, 12, 16);
            a.emit(0xD100_0400 | 10 << 5 | 10); // sub x10, x10, #1
            a.str(10, DATA, 0);
            a.emit(0xD65F_03C0); // ret
        }
        LdImm64Tail => {}
        _ => jump(a, op, labels)?,
    }
    Ok(())
}

/// The ops a hosted executable asks the VM for; false for the others.
fn emit_hosted(a: &mut Asm, op: Op, pc: usize, host: usize, finish: usize) -> bool {
    use Op::*;
    match op {
        Call(id) => {
            a.mov_imm(13, id as i64 as u64);
            rpc(a, Request::Helper, pc, host);
        }
        LdMap(d, index) => {
            a.mov_imm(13, index as u64);
            rpc(a, Request::MapHandle, pc, host);
            a.mov(true, reg(d), 14);
        }
        LdMapValue(d, index, offset) => {
            a.mov_imm(13, index as u64);
            a.mov_imm(14, offset as u64);
            rpc(a, Request::MapValue, pc, host);
            a.mov(true, reg(d), 14);
        }
        Ldx32Ctx(d, s, off) => {
            // The VM knows which context fields hold pointers.
            a.mov_imm(9, off as i64 as u64);
            a.rrr(ADD, true, 13, reg(s), 9);
            rpc(a, Request::LoadContext, pc, host);
            a.mov(true, reg(d), 14);
        }
        LdAbs(..) | LdInd(..) => rpc(a, Request::Packet, pc, host),
        CallLocal(_) => {
            rpc(a, Request::Enter, pc, host);
            call_if_asked(a);
        }
        Callx(s) => {
            a.mov(true, 13, reg(s));
            rpc(a, Request::Callx, pc, host);
            call_if_asked(a);
        }
        CallWithCallback(id) => {
            a.mov_imm(13, id as i64 as u64);
            rpc(a, Request::CallbackStart, pc, host);
            let (again, done) = (a.label(), a.label());
            a.bind(again);
            a.cbz(11, done);
            call_if_asked(a);
            rpc(a, Request::CallbackReturned, pc, host);
            a.b(again);
            a.bind(done);
        }
        Exit => {
            a.ldr(10, DATA, 0);
            a.cbz(10, finish);
            rpc(a, Request::Leave, pc, host);
            a.ldr(10, DATA, 0);
            a.emit(0xD100_0400 | 10 << 5 | 10); // sub x10, x10, #1
            a.str(10, DATA, 0);
            a.emit(0xD65F_03C0); // ret
        }
        _ => return false,
    }
    true
}

/// Asks the VM with x13 and x14 as operands: the reply leaves r0..r5 and
/// the budget as the VM says, x11 = whether to call, x12 = where, x13 =
/// the callee's r10, x14 = a value.
fn rpc(a: &mut Asm, request: Request, pc: usize, host: usize) {
    a.mov_imm(11, request as u64);
    a.mov_imm(12, pc as u64);
    a.str(LR, DATA, SAVED_LR);
    a.bl(host);
    a.ldr(LR, DATA, SAVED_LR);
}

/// After [`rpc`]: when the VM says so, calls x12 in a new frame (r10 = x13)
/// as a bpf-to-bpf call does, keeping r6..r10 and the return address.
fn call_if_asked(a: &mut Asm) {
    let done = a.label();
    a.cbz(11, done);
    a.ldr(10, DATA, 0);
    a.add_imm(10, 10, 1);
    a.str(10, DATA, 0);
    a.stp_pre(reg(6), reg(7));
    a.stp_pre(reg(8), reg(9));
    a.stp_pre(reg(10), LR);
    a.mov(true, reg(10), 13);
    a.emit(0xD63F_0000 | 12 << 5); // blr x12
    a.ldp_post(reg(10), LR);
    a.ldp_post(reg(8), reg(9));
    a.ldp_post(reg(6), reg(7));
    a.bind(done);
}

/// The exchange with the VM, called with `bl` (x11 = request, x12 = pc,
/// x13 and x14 operands): writes the request and the arena to standard
/// output; unless the run is over, reads the reply, the region table and
/// the arena from standard input. A failed read or write exits with
/// [`EXIT_PROTOCOL`].
fn host_call(a: &mut Asm, host: usize, do_exit: usize) {
    let die = a.label();
    a.bind(host);
    a.mov_imm(15, DATA_ADDR + REQUEST);
    for (k, r) in [11, 12, 13, 14].into_iter().chain(R).enumerate() {
        a.str(r, 15, 8 * k as u32);
    }
    a.str(BUDGET, 15, 8 * 15);
    a.ldr(16, DATA, ARENA_USED);
    a.str(16, 15, 8 * 16);
    a.mov(true, 1, 15);
    a.mov_imm(2, 8 * REQUEST_WORDS as u64);
    transfer(a, 1, 64, die);
    a.mov_imm(1, DATA_ADDR + ARENA);
    a.ldr(2, DATA, ARENA_USED);
    transfer(a, 1, 64, die);
    let receive = a.label();
    a.cmp_imm(11, Request::Exit as u32);
    a.bcond(Cond::Ne, receive);
    a.mov_imm(0, 0);
    a.b(do_exit);
    a.bind(receive);
    a.mov_imm(1, DATA_ADDR + REPLY);
    a.mov_imm(2, 8 * REPLY_WORDS as u64);
    transfer(a, 0, 63, die);
    a.mov_imm(15, DATA_ADDR + REPLY);
    a.mov(true, 1, TABLE);
    a.ldr(2, 15, 8 * REPLY_TABLE);
    a.ubfm(true, 2, 2, 64 - 5, 63 - 5); // lsl x2, x2, #5: entries to bytes
    transfer(a, 0, 63, die);
    a.mov_imm(15, DATA_ADDR + REPLY);
    a.ldr(2, 15, 8 * REPLY_ARENA);
    a.str(2, DATA, ARENA_USED);
    a.mov_imm(1, DATA_ADDR + ARENA);
    transfer(a, 0, 63, die);
    a.mov_imm(15, DATA_ADDR + REPLY);
    a.ldr(reg(0), 15, 0);
    for r in 1..=5u8 {
        a.ldr(reg(r), 15, 8 * (REPLY_ARGS + r as u32 - 1));
    }
    a.ldr(BUDGET, 15, 8 * REPLY_BUDGET);
    a.ldr(11, 15, 8);
    a.ldr(12, 15, 16);
    a.ldr(13, 15, 8 * REPLY_FP);
    a.ldr(14, 15, 8 * REPLY_VALUE);
    a.emit(0xD65F_03C0); // ret
    a.bind(die);
    a.mov_imm(0, EXIT_PROTOCOL as u64);
    a.b(do_exit);
}

/// Reads (`sysno` 63) or writes (64) x2 bytes at x1 on `fd`, however many
/// calls it takes; an error or end of file branches to `die`.
fn transfer(a: &mut Asm, fd: u64, sysno: u64, die: usize) {
    let (again, done) = (a.label(), a.label());
    a.cbz(2, done);
    a.bind(again);
    a.mov_imm(0, fd);
    a.mov_imm(8, sysno);
    a.emit(0xD400_0001); // svc #0
    a.cmp_imm(0, 0);
    a.bcond(Cond::Le, die);
    a.rrr(ADD, true, 1, 1, 0);
    a.rrr(SUBS, true, 2, 2, 0);
    a.bcond(Cond::Ne, again);
    a.bind(done);
}

/// Helper 5 of the conformance suite: r0 = r1, and 0 ends the program.
fn helper5(a: &mut Asm, exit_zero: usize) {
    a.cbz(reg(1), exit_zero);
    a.mov(true, reg(0), reg(1));
}

enum Access {
    Load(u32, bool),
    Store(u32),
    /// Leave the host address in x9.
    Address,
}

/// A checked access of `size` bytes at `base + off`, as the VM's
/// AddressSpace::locate: region = (addr >> 32) - 1, offset = the low 32 bits,
/// offset + size within the region's length.
fn mem(a: &mut Asm, base: u32, off: i16, size: u32, nregions: usize, fault: usize, access: Access) {
    a.mov_imm(9, off as i64 as u64);
    a.rrr(ADD, true, 9, base, 9);
    a.ubfm(true, 10, 9, 32, 63); // lsr x10, x9, #32
    a.emit(0xD100_0400 | 10 << 5 | 10); // sub x10, x10, #1
    a.cmp_imm(10, nregions as u32);
    a.bcond(Cond::Hs, fault);
    a.add_lsl(11, TABLE, 10, 5);
    // Loads check the entry's readable length, stores and atomics its
    // writable one (0 for a read-only region).
    let limit = if matches!(access, Access::Load(..)) {
        8
    } else {
        16
    };
    a.ldr(12, 11, limit);
    a.mov(false, 13, 9); // offset, zero-extended
    a.add_imm(14, 13, size);
    a.rrr(SUBS, true, ZR, 14, 12);
    a.bcond(Cond::Hi, fault);
    a.ldr(12, 11, 0);
    a.rrr(ADD, true, 9, 12, 13);
    let sz = match size {
        1 => 0u32,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    match access {
        Access::Load(rt, false) => a.emit(0x3940_0000 | sz << 30 | 9 << 5 | rt),
        Access::Load(rt, true) => {
            // ldrsb/ldrsh/ldrsw to X.
            a.emit(0x3980_0000 | sz << 30 | 9 << 5 | rt)
        }
        Access::Store(rt) => a.emit(0x3900_0000 | sz << 30 | 9 << 5 | rt),
        Access::Address => {}
    }
}

/// The atomics with ARMv8.1 LSE instructions (acquire-release).
fn atomic(a: &mut Asm, kind: bpfkit_vm::engine::AtomicKind, fetch: bool, dw: bool, src: u32) {
    use bpfkit_vm::engine::AtomicKind as K;
    let size = if dw { 0xC000_0000 } else { 0x8000_0000 };
    let rt = if fetch { src } else { ZR };
    match kind {
        K::Add | K::Or | K::And | K::Xor => {
            let opc = match kind {
                K::Add => 0,
                K::And => 1,
                K::Xor => 2,
                _ => 3,
            };
            if kind == K::And {
                a.emit(0xAA20_03E0 | src << 16 | 10); // mvn x10, src (ldclr clears)
            } else {
                a.mov(true, 10, src);
            }
            a.emit(0x38E0_0000 | size | 10 << 16 | opc << 12 | 9 << 5 | rt);
        }
        K::Xchg => {
            a.mov(true, 10, src);
            a.emit(0x38E0_8000 | size | 10 << 16 | 9 << 5 | src);
        }
        K::Cmpxchg => {
            a.mov(true, 10, reg(0));
            let base = if dw { 0xC8E0_FC00 } else { 0x88E0_FC00 };
            a.emit(base | 10 << 16 | 9 << 5 | src);
            a.mov(dw, reg(0), 10);
        }
    }
}

/// An atomic at the misaligned host address in x9, as plain loads and
/// stores (x10 the old value, x11 the new one), with the results the LSE
/// forms give: the old value, zero-extended, in `src` (fetch, xchg) or r0
/// (cmpxchg).
fn unaligned_atomic(
    a: &mut Asm,
    kind: bpfkit_vm::engine::AtomicKind,
    fetch: bool,
    dw: bool,
    src: u32,
) {
    use bpfkit_vm::engine::AtomicKind as K;
    let (ldr, str) = if dw {
        (0xF940_0000, 0xF900_0000)
    } else {
        (0xB940_0000, 0xB900_0000)
    };
    a.emit(ldr | 9 << 5 | 10);
    match kind {
        K::Add | K::Or | K::And | K::Xor => {
            let op = match kind {
                K::Add => ADD,
                K::Or => ORR,
                K::And => AND,
                _ => EOR,
            };
            a.rrr(op, dw, 11, 10, src);
            a.emit(str | 9 << 5 | 11);
            if fetch {
                a.mov(dw, src, 10);
            }
        }
        K::Xchg => {
            a.emit(str | 9 << 5 | src);
            a.mov(dw, src, 10);
        }
        K::Cmpxchg => {
            let skip = a.label();
            a.rrr(SUBS, dw, ZR, 10, reg(0));
            a.bcond(Cond::Ne, skip);
            a.emit(str | 9 << 5 | src);
            a.bind(skip);
            a.mov(dw, reg(0), 10);
        }
    }
}

fn jump(a: &mut Asm, op: Op, labels: &[usize]) -> Result<(), JitError> {
    use Op::*;
    let (c, d, src, w64, t, test) = match op {
        Jeq64I(d, v, t) => (Cond::Eq, d, Err(v), true, t, false),
        Jgt64I(d, v, t) => (Cond::Hi, d, Err(v), true, t, false),
        Jge64I(d, v, t) => (Cond::Hs, d, Err(v), true, t, false),
        Jset64I(d, v, t) => (Cond::Ne, d, Err(v), true, t, true),
        Jne64I(d, v, t) => (Cond::Ne, d, Err(v), true, t, false),
        Jsgt64I(d, v, t) => (Cond::Gt, d, Err(v), true, t, false),
        Jsge64I(d, v, t) => (Cond::Ge, d, Err(v), true, t, false),
        Jlt64I(d, v, t) => (Cond::Lo, d, Err(v), true, t, false),
        Jle64I(d, v, t) => (Cond::Ls, d, Err(v), true, t, false),
        Jslt64I(d, v, t) => (Cond::Lt, d, Err(v), true, t, false),
        Jsle64I(d, v, t) => (Cond::Le, d, Err(v), true, t, false),
        Jeq64R(d, s, t) => (Cond::Eq, d, Ok(s), true, t, false),
        Jgt64R(d, s, t) => (Cond::Hi, d, Ok(s), true, t, false),
        Jge64R(d, s, t) => (Cond::Hs, d, Ok(s), true, t, false),
        Jset64R(d, s, t) => (Cond::Ne, d, Ok(s), true, t, true),
        Jne64R(d, s, t) => (Cond::Ne, d, Ok(s), true, t, false),
        Jsgt64R(d, s, t) => (Cond::Gt, d, Ok(s), true, t, false),
        Jsge64R(d, s, t) => (Cond::Ge, d, Ok(s), true, t, false),
        Jlt64R(d, s, t) => (Cond::Lo, d, Ok(s), true, t, false),
        Jle64R(d, s, t) => (Cond::Ls, d, Ok(s), true, t, false),
        Jslt64R(d, s, t) => (Cond::Lt, d, Ok(s), true, t, false),
        Jsle64R(d, s, t) => (Cond::Le, d, Ok(s), true, t, false),
        Jeq32I(d, v, t) => (Cond::Eq, d, Err(v as u64), false, t, false),
        Jgt32I(d, v, t) => (Cond::Hi, d, Err(v as u64), false, t, false),
        Jge32I(d, v, t) => (Cond::Hs, d, Err(v as u64), false, t, false),
        Jset32I(d, v, t) => (Cond::Ne, d, Err(v as u64), false, t, true),
        Jne32I(d, v, t) => (Cond::Ne, d, Err(v as u64), false, t, false),
        Jsgt32I(d, v, t) => (Cond::Gt, d, Err(v as u64), false, t, false),
        Jsge32I(d, v, t) => (Cond::Ge, d, Err(v as u64), false, t, false),
        Jlt32I(d, v, t) => (Cond::Lo, d, Err(v as u64), false, t, false),
        Jle32I(d, v, t) => (Cond::Ls, d, Err(v as u64), false, t, false),
        Jslt32I(d, v, t) => (Cond::Lt, d, Err(v as u64), false, t, false),
        Jsle32I(d, v, t) => (Cond::Le, d, Err(v as u64), false, t, false),
        Jeq32R(d, s, t) => (Cond::Eq, d, Ok(s), false, t, false),
        Jgt32R(d, s, t) => (Cond::Hi, d, Ok(s), false, t, false),
        Jge32R(d, s, t) => (Cond::Hs, d, Ok(s), false, t, false),
        Jset32R(d, s, t) => (Cond::Ne, d, Ok(s), false, t, true),
        Jne32R(d, s, t) => (Cond::Ne, d, Ok(s), false, t, false),
        Jsgt32R(d, s, t) => (Cond::Gt, d, Ok(s), false, t, false),
        Jsge32R(d, s, t) => (Cond::Ge, d, Ok(s), false, t, false),
        Jlt32R(d, s, t) => (Cond::Lo, d, Ok(s), false, t, false),
        Jle32R(d, s, t) => (Cond::Ls, d, Ok(s), false, t, false),
        Jslt32R(d, s, t) => (Cond::Lt, d, Ok(s), false, t, false),
        Jsle32R(d, s, t) => (Cond::Le, d, Ok(s), false, t, false),
        other => return Err(JitError::Assemble(format!("no A64 code for {other:?}"))),
    };
    let rm = match src {
        Ok(s) => reg(s),
        Err(v) => {
            a.mov_imm(9, v);
            9
        }
    };
    a.rrr(if test { ANDS } else { SUBS }, w64, ZR, reg(d), rm);
    a.bcond(c, labels[t as usize]);
    Ok(())
}

/// A static aarch64 ELF executable: the data segment (read+write) first,
/// at a fixed address, then the code (read+execute), entered at its start.
/// The hosted executable of `code`, whose data segment starts with the
/// region `table` (at most [`HOSTED_REGIONS`] entries), the first `reply`
/// (r1..r5, r10 and the budget) and the `arena` the table points into;
/// with the address its code is loaded at.
pub(crate) fn hosted_executable(
    code: &A64Code,
    table: &[u8],
    reply: &[u64; REPLY_WORDS],
    arena: &[u8],
) -> (Vec<u8>, u64) {
    let mut data = vec![0u8; ARENA as usize + arena.len()];
    let t = TABLE_OFFSET as usize;
    data[t..t + table.len()].copy_from_slice(table);
    for (k, w) in reply.iter().enumerate() {
        let at = REPLY as usize + 8 * k;
        data[at..at + 8].copy_from_slice(&w.to_le_bytes());
    }
    data[ARENA_USED as usize..ARENA_USED as usize + 8]
        .copy_from_slice(&(arena.len() as u64).to_le_bytes());
    data[ARENA as usize..].copy_from_slice(arena);
    let zeroed = ARENA_CAPACITY - arena.len() as u64;
    (elf(&code.words, &data, zeroed), code_address(data.len()))
}

/// Where [`elf`] loads the code of an executable with `data_len` bytes of data.
fn code_address(data_len: usize) -> u64 {
    0x40_0000 + (DATA_FILE_OFFSET + data_len as u64).next_multiple_of(0x1000)
}

/// The table entry of a region at host address `ptr` with `len` bytes.
pub(crate) fn table_entry(ptr: u64, len: u64, writable: bool) -> [u8; TABLE_ENTRY] {
    let mut e = [0u8; TABLE_ENTRY];
    e[..8].copy_from_slice(&ptr.to_le_bytes());
    e[8..16].copy_from_slice(&len.to_le_bytes());
    if writable {
        e[16..24].copy_from_slice(&len.to_le_bytes());
    }
    e
}

/// The guest address of the arena's first byte in a hosted executable.
pub(crate) const ARENA_ADDR: u64 = DATA_ADDR + ARENA;

fn elf(code: &[u32], data: &[u8], zeroed: u64) -> Vec<u8> {
    let data_len = data.len() as u64;
    let code_offset = (DATA_FILE_OFFSET + data_len).next_multiple_of(0x1000);
    let code_addr = code_address(data.len());
    let code_bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&code_addr.to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    out.extend_from_slice(&2u16.to_le_bytes()); // phnum
    out.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    let phdr = |out: &mut Vec<u8>, flags: u32, offset: u64, addr: u64, len: u64, mem: u64| {
        out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&mem.to_le_bytes());
        out.extend_from_slice(&0x1000u64.to_le_bytes());
    };
    let data_file = data_len.max(1);
    phdr(
        &mut out,
        6,
        DATA_FILE_OFFSET,
        DATA_ADDR,
        data_file,
        data_file + zeroed,
    );
    let code_len = code_bytes.len() as u64;
    phdr(&mut out, 5, code_offset, code_addr, code_len, code_len);
    out.resize(DATA_FILE_OFFSET as usize, 0);
    out.extend_from_slice(data);
    out.resize(code_offset as usize, 0);
    out.extend_from_slice(&code_bytes);
    out
}
