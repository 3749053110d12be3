//! The x86-64 back end: code generation and the trampolines generated code
//! calls back into Rust through.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bpfkit_vm::engine::{
    AtomicKind, CallStep, CompiledCode, Flow, Halt, Machine, Op, FUNC_ADDR_TAG, MAP_LOOKUP_ELEM,
};
use bpfkit_vm::{Backing, Program, RunError};
use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction, Register};

use crate::blocks::leaders;
use crate::exec::ExecMemory;
use crate::JitError;

/// eBPF registers r0..r10 in the kernel x86 JIT's mapping.
const R64: [AsmRegister64; 11] = [rax, rdi, rsi, rdx, rcx, r8, rbx, r13, r14, r15, rbp];
const R32: [AsmRegister32; 11] = [eax, edi, esi, edx, ecx, r8d, ebx, r13d, r14d, r15d, ebp];
const R16: [AsmRegister16; 11] = [ax, di, si, dx, cx, r8w, bx, r13w, r14w, r15w, bp];
const R8: [AsmRegister8; 11] = [al, dil, sil, dl, cl, r8b, bl, r13b, r14b, r15b, bpl];

/// The block generated code works on, pointed to by r12. Offsets below.
#[repr(C)]
#[derive(Default)]
struct JitCtx {
    /// Region table: `[host pointer, loadable length, storable length, 0]`
    /// per region index; only owned regions have lengths (others take the
    /// slow path).
    table: u64,
    nregions: u64,
    remaining: u64,
    fp: u64,
    depth: u64,
    saved_rsp: u64,
    scratch: u64,
    /// r0..r10 while Rust code runs.
    regs: [u64; 11],
    runtime: u64,
    /// Host address of the current frame's bytes (its `r10 - 512`) when
    /// the run owns them, else 0: stack accesses at constant offsets from
    /// `r10` go straight there.
    stack_host: u64,
    /// `stack_host` minus the frame's guest address (`r10 - 512`).
    stack_delta: u64,
    /// `lddw rX, map[index]` values of this run for the first
    /// `MAP_CACHE` map indexes, 0 until first loaded.
    map_handles: [u64; MAP_CACHE],
}

/// Map indexes whose handles a run caches.
const MAP_CACHE: usize = 8;

const TABLE: i32 = 0;
const NREGIONS: i32 = 8;
const REMAINING: i32 = 16;
const FP: i32 = 24;
const DEPTH: i32 = 32;
const SAVED_RSP: i32 = 40;
const SCRATCH: i32 = 48;
const REGS: i32 = 56;
const STACK_HOST: i32 = REGS + 8 * 11 + 8;
const STACK: i32 = bpfkit_vm::STACK_PER_FRAME as i32;
const STACK_DELTA: i32 = STACK_HOST + 8;
const MAP_HANDLES: i32 = STACK_DELTA + 8;

/// Rust-side state of one run, reached from trampolines through `JitCtx::runtime`.
struct Runtime<'m, 'a> {
    machine: &'m mut Machine<'a>,
    code: &'m JitProgram,
    table: Vec<[u64; 4]>,
    /// Indexes of the regions with inline entries.
    owned: Vec<usize>,
    /// The space's layout version the table was made for.
    layout: u64,
    halt: Option<Halt>,
    panic: Option<Box<dyn Any + Send>>,
}

impl Runtime<'_, '_> {
    /// Builds the region table from nothing, on entry: one entry per
    /// region, in a buffer kept from earlier runs.
    fn fill(&mut self, ctx: &mut JitCtx) {
        let memory = self.machine.memory();
        self.table.clear();
        self.owned.clear();
        for index in 0..memory.len() {
            match owned_entry(memory, index) {
                Some(entry) => {
                    self.table.push(entry);
                    self.owned.push(index);
                }
                None => self.table.push([0; 4]),
            }
        }
        self.frame_state(ctx);
        self.layout = self.machine.memory().layout_version();
    }

    /// Brings the region table and the frame state up to date after the
    /// machine ran. Only owned regions have inline entries, so only they
    /// (and regions added since) are looked at again: a region the table
    /// sends to the slow path is always handled correctly there, whatever
    /// became of it.
    fn refresh(&mut self, ctx: &mut JitCtx) {
        let memory = self.machine.memory();
        // Nothing moved (a lookup of a value already in the space, most
        // helpers): the table and the frame state still hold.
        if memory.layout_version() == self.layout {
            return;
        }
        let len = memory.len();
        let known = self.table.len();
        // Most calls (a lookup of a value already in the space) leave the
        // number of regions as it was: no resizing then.
        if len != known {
            if len < known {
                self.table.truncate(len);
                self.owned.retain(|&i| i < len);
            }
            self.table.resize(len, [0; 4]);
        }
        let known = known.min(len);
        let mut i = 0;
        while i < self.owned.len() {
            let index = self.owned[i];
            match owned_entry(memory, index) {
                Some(entry) => {
                    self.table[index] = entry;
                    i += 1;
                }
                None => {
                    self.table[index] = [0; 4];
                    self.owned.swap_remove(i);
                }
            }
        }
        for index in known..len {
            if let Some(entry) = owned_entry(memory, index) {
                self.table[index] = entry;
                self.owned.push(index);
            }
        }
        self.frame_state(ctx);
        self.layout = self.machine.memory().layout_version();
    }

    /// Points the context block at the table and the current frame.
    #[inline(always)]
    fn frame_state(&mut self, ctx: &mut JitCtx) {
        ctx.table = self.table.as_ptr() as u64;
        ctx.nregions = self.table.len() as u64;
        ctx.fp = self.machine.frame_pointer();
        ctx.depth = self.machine.depth() as u64;
        // The frame's region starts STACK bytes below r10 (interp.rs
        // Stack::frame_pointer); only a whole owned frame goes direct.
        let frame = ctx.fp.wrapping_sub(STACK as u64);
        ctx.stack_host = match ((frame >> 32).wrapping_sub(1) as usize, frame as u32) {
            (index, 0) => self
                .table
                .get(index)
                .filter(|e| e[1] >= STACK as u64 && e[2] >= STACK as u64)
                .map_or(0, |e| e[0]),
            _ => 0,
        };
        ctx.stack_delta = ctx.stack_host.wrapping_sub(frame);
    }
}

/// The inline table entry of region `index` if the run owns its bytes:
/// `[host pointer, loadable length, storable length, 0]`.
#[inline(always)]
fn owned_entry(memory: &mut bpfkit_vm::AddressSpace, index: usize) -> Option<[u64; 4]> {
    let region = memory.region_mut(index)?;
    let len = region.len() as u64;
    let writable = region.writable;
    match &mut region.backing {
        Backing::Owned(v) => {
            let len = len.min(v.len() as u64);
            Some([
                v.as_mut_ptr() as u64,
                len,
                if writable { len } else { 0 },
                0,
            ])
        }
        Backing::Shared(_) => None,
    }
}

/// Compiled x86-64 code of one program.
#[derive(Debug)]
pub struct JitProgram {
    memory: ExecMemory,
    /// Machine code, as mapped (for listings).
    code: Vec<u8>,
    /// Native address of each slot that starts a block, 0 otherwise.
    native: Vec<u64>,
    /// Slots of each block's instructions, by block index.
    blocks: Vec<Vec<u32>>,
    /// Offset in `code` where each slot's code starts (`u32::MAX` for none).
    offsets: Vec<u32>,
    /// The program's ops (trampolines look instructions up by pc).
    ops: Vec<Op>,
    /// Where the compiled program kept its ops: a run of that program
    /// needs no comparison of its ops with `ops`.
    compiled_from: usize,
}

thread_local! {
    /// Region table buffers kept between runs on this thread, so a run
    /// allocates nothing (taken, not borrowed: a helper may run a program).
    static TABLES: std::cell::Cell<(Vec<[u64; 4]>, Vec<usize>)> = const {
        std::cell::Cell::new((Vec::new(), Vec::new()))
    };
}

type Tramp = extern "sysv64" fn(*mut JitCtx, u64, u64, u64) -> u64;

fn asm_err(e: IcedError) -> JitError {
    JitError::Assemble(e.to_string())
}

/// A memory access's register operand or immediate.
#[derive(Clone, Copy)]
enum Value {
    Reg(usize),
    Imm(u64),
}

/// Out-of-line code emitted after the body.
enum Stub {
    /// The block would overrun the budget.
    Budget {
        label: CodeLabel,
        block: u32,
        insns: i32,
    },
    /// A load's slow path: the machine loads into `scratch`, then the load
    /// instruction reads it there.
    Load {
        label: CodeLabel,
        pc: u32,
        size: i32,
        access: CodeLabel,
    },
    /// A store's slow path: the machine stores.
    Store {
        label: CodeLabel,
        pc: u32,
        value: Value,
        resume: CodeLabel,
    },
}

struct Gen {
    a: CodeAssembler,
    labels: Vec<CodeLabel>,
    stubs: Vec<Stub>,
    abort: CodeLabel,
    main_exit: CodeLabel,
    /// Slots whose access the verifier proved to stay within the running
    /// function's own frame (empty: none).
    own_stack: Vec<bool>,
}

fn reg(i: u8) -> usize {
    (i & 15) as usize
}

impl Gen {
    /// `mov r64, v` in the shortest form.
    fn mov_imm(&mut self, r: AsmRegister64, v: u64) -> Result<(), IcedError> {
        if v <= u32::MAX as u64 {
            self.a.mov(low32(r), v as u32)
        } else if v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64 {
            self.a.add_instruction(Instruction::with2(
                Code::Mov_rm64_imm32,
                Register::from(r),
                v as i64 as i32,
            )?)
        } else {
            self.a.mov(r, v)
        }
    }

    /// Calls trampoline `f(ctx, pc, r11, r9)` with r0..r9 saved in
    /// `ctx.regs` (where the machine reads and writes them) and reloaded
    /// after; a nonzero return aborts the run.
    fn tcall(&mut self, f: Tramp, pc: u64) -> Result<(), IcedError> {
        for (i, r) in R64.iter().enumerate().take(10) {
            self.a.mov(qword_ptr(r12 + (REGS + 8 * i as i32)), *r)?;
        }
        self.a.mov(rdi, r12)?;
        self.a.mov(esi, pc as u32)?;
        self.a.mov(rdx, r11)?;
        self.a.mov(rcx, r9)?;
        self.a.mov(rax, f as usize as u64)?;
        self.a.call(rax)?;
        self.a.test(rax, rax)?;
        self.a.jnz(self.abort)?;
        for (i, r) in R64.iter().enumerate().take(10) {
            self.a.mov(*r, qword_ptr(r12 + (REGS + 8 * i as i32)))?;
        }
        self.a.mov(rbp, qword_ptr(r12 + FP))
    }

    /// Calls the function at the native address in r11 (or a label) as a
    /// bpf-to-bpf call: r6..r9 are kept across it, r10 comes back from the
    /// callee's exit, and the stack stays 16-byte aligned.
    fn native_call(&mut self, label: Option<CodeLabel>) -> Result<(), IcedError> {
        self.a.push(rbx)?;
        self.a.push(r13)?;
        self.a.push(r14)?;
        self.a.push(r15)?;
        self.a.sub(rsp, 8)?;
        match label {
            Some(l) => self.a.call(l)?,
            None => self.a.call(r11)?,
        }
        self.a.add(rsp, 8)?;
        self.a.pop(r15)?;
        self.a.pop(r14)?;
        self.a.pop(r13)?;
        self.a.pop(rbx)
    }

    /// A checked memory access of `size` bytes at `base + off`: inline
    /// against the region table, or through the machine.
    fn mem(
        &mut self,
        pc: u32,
        size: i32,
        base: usize,
        off: i16,
        load: Option<(usize, bool)>,
        store: Option<Value>,
    ) -> Result<(), IcedError> {
        let slow = self.a.create_label();
        let mut access = self.a.create_label();
        let a = &mut self.a;
        a.lea(r11, qword_ptr(R64[base] + off as i32))?;
        if base == 10 && off as i32 >= -STACK && off as i32 + size <= 0 {
            // r10 is the frame pointer (no instruction writes it), so a
            // constant offset within the frame needs no bounds check: only
            // the frame's host address, 0 when the slow path must decide.
            a.mov(r9, qword_ptr(r12 + STACK_HOST))?;
            a.test(r9, r9)?;
            a.jz(slow)?;
            a.add(r9, off as i32 + STACK + size)?;
        } else if self.own_stack.get(pc as usize) == Some(&true) {
            // The verifier proved the address within the current frame:
            // only its translation to the frame's host bytes is left.
            a.cmp(qword_ptr(r12 + STACK_HOST), 0)?;
            a.je(slow)?;
            a.mov(r9, qword_ptr(r12 + STACK_DELTA))?;
            a.lea(r9, qword_ptr(r9 + r11 + size))?;
        } else {
            self.checked_address(size, load.is_some(), slow)?;
        }
        let a = &mut self.a;
        a.set_label(&mut access)?;
        let m = r9 - size;
        if let Some((dst, signed)) = load {
            match (size, signed) {
                (1, false) => a.movzx(R32[dst], byte_ptr(m))?,
                (2, false) => a.movzx(R32[dst], word_ptr(m))?,
                (4, false) => a.mov(R32[dst], dword_ptr(m))?,
                (8, _) => a.mov(R64[dst], qword_ptr(m))?,
                (1, true) => a.movsx(R64[dst], byte_ptr(m))?,
                (2, true) => a.movsx(R64[dst], word_ptr(m))?,
                _ => a.movsxd(R64[dst], dword_ptr(m))?,
            }
            self.stubs.push(Stub::Load {
                label: slow,
                pc,
                size,
                access,
            });
        } else if let Some(value) = store {
            match (value, size) {
                (Value::Reg(s), 1) => a.mov(byte_ptr(m), R8[s])?,
                (Value::Reg(s), 2) => a.mov(word_ptr(m), R16[s])?,
                (Value::Reg(s), 4) => a.mov(dword_ptr(m), R32[s])?,
                (Value::Reg(s), _) => a.mov(qword_ptr(m), R64[s])?,
                (Value::Imm(v), 1) => a.mov(byte_ptr(m), v as u8 as u32)?,
                (Value::Imm(v), 2) => a.mov(word_ptr(m), v as u16 as u32)?,
                (Value::Imm(v), 4) => a.mov(dword_ptr(m), v as u32)?,
                (Value::Imm(v), _) => a.mov(qword_ptr(m), v as i64 as i32)?,
            }
            let resume = self.labels[pc as usize + 1];
            self.stubs.push(Stub::Store {
                label: slow,
                pc,
                value,
                resume,
            });
        }
        Ok(())
    }

    /// The region-table check of the address in r11 for `size` bytes:
    /// leaves the host address of its end in r9, or jumps to `slow`.
    fn checked_address(&mut self, size: i32, load: bool, slow: CodeLabel) -> Result<(), IcedError> {
        let a = &mut self.a;
        a.mov(r10, r11)?;
        a.shr(r10, 32u32)?;
        a.sub(r10, 1)?;
        a.cmp(r10, qword_ptr(r12 + NREGIONS))?;
        a.jae(slow)?;
        a.shl(r10, 5u32)?;
        a.add(r10, qword_ptr(r12 + TABLE))?;
        a.mov(r9d, r11d)?;
        a.add(r9, size)?;
        let len_field = if load { 8 } else { 16 };
        a.cmp(r9, qword_ptr(r10 + len_field))?;
        a.ja(slow)?;
        a.add(r9, qword_ptr(r10))
    }

    fn alu(&mut self, op: Op, pc: u32) -> Result<bool, IcedError> {
        use Op::*;
        let a = &mut self.a;
        match op {
            Add64I(d, v) => a.add(R64[reg(d)], v as i64 as i32)?,
            Sub64I(d, v) => a.sub(R64[reg(d)], v as i64 as i32)?,
            Mul64I(d, v) => a.imul_3(R64[reg(d)], R64[reg(d)], v as i64 as i32)?,
            Or64I(d, v) => a.or(R64[reg(d)], v as i64 as i32)?,
            And64I(d, v) => a.and(R64[reg(d)], v as i64 as i32)?,
            Xor64I(d, v) => a.xor(R64[reg(d)], v as i64 as i32)?,
            Lsh64I(d, v) => a.shl(R64[reg(d)], v as u32 & 63)?,
            Rsh64I(d, v) => a.shr(R64[reg(d)], v as u32 & 63)?,
            Arsh64I(d, v) => a.sar(R64[reg(d)], v as u32 & 63)?,
            Mov64I(d, v) | Lddw(d, v) => self.mov_imm(R64[reg(d)], v)?,
            LdFunc(d, t) => self.mov_imm(R64[reg(d)], FUNC_ADDR_TAG | t as u64)?,
            Add64R(d, s) => a.add(R64[reg(d)], R64[reg(s)])?,
            Sub64R(d, s) => a.sub(R64[reg(d)], R64[reg(s)])?,
            Mul64R(d, s) => a.imul_2(R64[reg(d)], R64[reg(s)])?,
            Or64R(d, s) => a.or(R64[reg(d)], R64[reg(s)])?,
            And64R(d, s) => a.and(R64[reg(d)], R64[reg(s)])?,
            Xor64R(d, s) => a.xor(R64[reg(d)], R64[reg(s)])?,
            Mov64R(d, s) => a.mov(R64[reg(d)], R64[reg(s)])?,
            Add32I(d, v) => a.add(R32[reg(d)], v as i32)?,
            Sub32I(d, v) => a.sub(R32[reg(d)], v as i32)?,
            Mul32I(d, v) => a.imul_3(R32[reg(d)], R32[reg(d)], v as i32)?,
            Or32I(d, v) => a.or(R32[reg(d)], v as i32)?,
            And32I(d, v) => a.and(R32[reg(d)], v as i32)?,
            Xor32I(d, v) => a.xor(R32[reg(d)], v as i32)?,
            Lsh32I(d, v) => shift32_imm(a, 0, reg(d), v)?,
            Rsh32I(d, v) => shift32_imm(a, 1, reg(d), v)?,
            Arsh32I(d, v) => shift32_imm(a, 2, reg(d), v)?,
            Mov32I(d, v) => a.mov(R32[reg(d)], v)?,
            Add32R(d, s) => a.add(R32[reg(d)], R32[reg(s)])?,
            Sub32R(d, s) => a.sub(R32[reg(d)], R32[reg(s)])?,
            Mul32R(d, s) => a.imul_2(R32[reg(d)], R32[reg(s)])?,
            Or32R(d, s) => a.or(R32[reg(d)], R32[reg(s)])?,
            And32R(d, s) => a.and(R32[reg(d)], R32[reg(s)])?,
            Xor32R(d, s) => a.xor(R32[reg(d)], R32[reg(s)])?,
            Mov32R(d, s) => a.mov(R32[reg(d)], R32[reg(s)])?,
            Lsh64R(d, s) => shift_reg(a, 0, reg(d), reg(s), true)?,
            Rsh64R(d, s) => shift_reg(a, 1, reg(d), reg(s), true)?,
            Arsh64R(d, s) => shift_reg(a, 2, reg(d), reg(s), true)?,
            Lsh32R(d, s) => shift_reg(a, 0, reg(d), reg(s), false)?,
            Rsh32R(d, s) => shift_reg(a, 1, reg(d), reg(s), false)?,
            Arsh32R(d, s) => shift_reg(a, 2, reg(d), reg(s), false)?,
            Div64I(d, v) => self.divmod(pc, reg(d), Value::Imm(v), true, false, false)?,
            Sdiv64I(d, v) => self.divmod(pc, reg(d), Value::Imm(v), true, true, false)?,
            Mod64I(d, v) => self.divmod(pc, reg(d), Value::Imm(v), true, false, true)?,
            Smod64I(d, v) => self.divmod(pc, reg(d), Value::Imm(v), true, true, true)?,
            Div64R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), true, false, false)?,
            Sdiv64R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), true, true, false)?,
            Mod64R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), true, false, true)?,
            Smod64R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), true, true, true)?,
            Div32I(d, v) => self.divmod(pc, reg(d), Value::Imm(v as u64), false, false, false)?,
            Sdiv32I(d, v) => self.divmod(pc, reg(d), Value::Imm(v as u64), false, true, false)?,
            Mod32I(d, v) => self.divmod(pc, reg(d), Value::Imm(v as u64), false, false, true)?,
            Smod32I(d, v) => self.divmod(pc, reg(d), Value::Imm(v as u64), false, true, true)?,
            Div32R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), false, false, false)?,
            Sdiv32R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), false, true, false)?,
            Mod32R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), false, false, true)?,
            Smod32R(d, s) => self.divmod(pc, reg(d), Value::Reg(reg(s)), false, true, true)?,
            Movsx64(d, s, bits) => match bits {
                8 => a.movsx(R64[reg(d)], R8[reg(s)])?,
                16 => a.movsx(R64[reg(d)], R16[reg(s)])?,
                _ => a.movsxd(R64[reg(d)], R32[reg(s)])?,
            },
            Movsx32(d, s, bits) => match bits {
                8 => a.movsx(R32[reg(d)], R8[reg(s)])?,
                16 => a.movsx(R32[reg(d)], R16[reg(s)])?,
                _ => a.mov(R32[reg(d)], R32[reg(s)])?,
            },
            Neg64(d) => a.neg(R64[reg(d)])?,
            Neg32(d) => a.neg(R32[reg(d)])?,
            Le(d, bits) => match bits {
                16 => a.movzx(R32[reg(d)], R16[reg(d)])?,
                32 => a.mov(R32[reg(d)], R32[reg(d)])?,
                _ => a.nop()?,
            },
            Swap(d, bits) => match bits {
                16 => {
                    a.ror(R16[reg(d)], 8u32)?;
                    a.movzx(R32[reg(d)], R16[reg(d)])?
                }
                32 => a.bswap(R32[reg(d)])?,
                _ => a.bswap(R64[reg(d)])?,
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Division and modulo as RFC 9669 defines them: by zero, div gives 0
    /// and mod leaves the dividend; signed INT_MIN / -1 wraps (x86 would
    /// trap, so -1 is handled apart). x86's divide needs rdx:rax, which
    /// hold r3 and r0: they are kept in r9/r10 around it.
    fn divmod(
        &mut self,
        pc: u32,
        d: usize,
        src: Value,
        w64: bool,
        signed: bool,
        is_mod: bool,
    ) -> Result<(), IcedError> {
        let done = self.labels[pc as usize + 1];
        let a = &mut self.a;
        let minus_one = if w64 { u64::MAX } else { u32::MAX as u64 };
        let zero_case = |a: &mut CodeAssembler| -> Result<(), IcedError> {
            if !is_mod {
                a.xor(R32[d], R32[d])
            } else if !w64 {
                a.mov(R32[d], R32[d])
            } else {
                a.nop()
            }
        };
        let minus_one_case = |a: &mut CodeAssembler| -> Result<(), IcedError> {
            if is_mod {
                a.xor(R32[d], R32[d])
            } else if w64 {
                a.neg(R64[d])
            } else {
                a.neg(R32[d])
            }
        };
        match src {
            Value::Imm(0) => return zero_case(a),
            Value::Imm(v) if signed && v == minus_one => return minus_one_case(a),
            Value::Imm(v) => {
                if w64 {
                    self.mov_imm(r11, v)?;
                } else {
                    self.a.mov(r11d, v as u32)?;
                }
            }
            Value::Reg(s) => {
                let mut zero = self.a.create_label();
                let mut m1 = self.a.create_label();
                let mut go = self.a.create_label();
                let a = &mut self.a;
                if w64 {
                    a.mov(r11, R64[s])?;
                    a.test(r11, r11)?;
                } else {
                    a.mov(r11d, R32[s])?;
                    a.test(r11d, r11d)?;
                }
                a.jz(zero)?;
                if signed {
                    if w64 {
                        a.cmp(r11, -1)?;
                    } else {
                        a.cmp(r11d, -1)?;
                    }
                    a.je(m1)?;
                }
                a.jmp(go)?;
                a.set_label(&mut zero)?;
                zero_case(a)?;
                a.jmp(done)?;
                if signed {
                    a.set_label(&mut m1)?;
                    minus_one_case(a)?;
                    a.jmp(done)?;
                }
                a.set_label(&mut go)?;
            }
        }
        let a = &mut self.a;
        a.mov(r9, rax)?;
        a.mov(r10, rdx)?;
        if w64 {
            a.mov(rax, R64[d])?;
            if signed {
                a.cqo()?;
                a.idiv(r11)?;
            } else {
                a.xor(edx, edx)?;
                a.div(r11)?;
            }
            a.mov(r11, if is_mod { rdx } else { rax })?;
            a.mov(rax, r9)?;
            a.mov(rdx, r10)?;
            a.mov(R64[d], r11)?;
        } else {
            a.mov(eax, R32[d])?;
            if signed {
                a.cdq()?;
                a.idiv(r11d)?;
            } else {
                a.xor(edx, edx)?;
                a.div(r11d)?;
            }
            a.mov(r11d, if is_mod { edx } else { eax })?;
            a.mov(rax, r9)?;
            a.mov(rdx, r10)?;
            a.mov(R32[d], r11d)?;
        }
        Ok(())
    }

    /// A conditional jump: `cond` is the x86 condition after `cmp`/`test`.
    fn jump(&mut self, op: Op) -> Result<bool, IcedError> {
        use Op::*;
        #[derive(Clone, Copy)]
        enum C {
            E,
            A,
            Ae,
            Set,
            Ne,
            G,
            Ge,
            B,
            Be,
            L,
            Le,
        }
        let (c, d, src, w64, t) = match op {
            Jeq64I(d, v, t) => (C::E, d, Value::Imm(v), true, t),
            Jgt64I(d, v, t) => (C::A, d, Value::Imm(v), true, t),
            Jge64I(d, v, t) => (C::Ae, d, Value::Imm(v), true, t),
            Jset64I(d, v, t) => (C::Set, d, Value::Imm(v), true, t),
            Jne64I(d, v, t) => (C::Ne, d, Value::Imm(v), true, t),
            Jsgt64I(d, v, t) => (C::G, d, Value::Imm(v), true, t),
            Jsge64I(d, v, t) => (C::Ge, d, Value::Imm(v), true, t),
            Jlt64I(d, v, t) => (C::B, d, Value::Imm(v), true, t),
            Jle64I(d, v, t) => (C::Be, d, Value::Imm(v), true, t),
            Jslt64I(d, v, t) => (C::L, d, Value::Imm(v), true, t),
            Jsle64I(d, v, t) => (C::Le, d, Value::Imm(v), true, t),
            Jeq64R(d, s, t) => (C::E, d, Value::Reg(reg(s)), true, t),
            Jgt64R(d, s, t) => (C::A, d, Value::Reg(reg(s)), true, t),
            Jge64R(d, s, t) => (C::Ae, d, Value::Reg(reg(s)), true, t),
            Jset64R(d, s, t) => (C::Set, d, Value::Reg(reg(s)), true, t),
            Jne64R(d, s, t) => (C::Ne, d, Value::Reg(reg(s)), true, t),
            Jsgt64R(d, s, t) => (C::G, d, Value::Reg(reg(s)), true, t),
            Jsge64R(d, s, t) => (C::Ge, d, Value::Reg(reg(s)), true, t),
            Jlt64R(d, s, t) => (C::B, d, Value::Reg(reg(s)), true, t),
            Jle64R(d, s, t) => (C::Be, d, Value::Reg(reg(s)), true, t),
            Jslt64R(d, s, t) => (C::L, d, Value::Reg(reg(s)), true, t),
            Jsle64R(d, s, t) => (C::Le, d, Value::Reg(reg(s)), true, t),
            Jeq32I(d, v, t) => (C::E, d, Value::Imm(v as u64), false, t),
            Jgt32I(d, v, t) => (C::A, d, Value::Imm(v as u64), false, t),
            Jge32I(d, v, t) => (C::Ae, d, Value::Imm(v as u64), false, t),
            Jset32I(d, v, t) => (C::Set, d, Value::Imm(v as u64), false, t),
            Jne32I(d, v, t) => (C::Ne, d, Value::Imm(v as u64), false, t),
            Jsgt32I(d, v, t) => (C::G, d, Value::Imm(v as u64), false, t),
            Jsge32I(d, v, t) => (C::Ge, d, Value::Imm(v as u64), false, t),
            Jlt32I(d, v, t) => (C::B, d, Value::Imm(v as u64), false, t),
            Jle32I(d, v, t) => (C::Be, d, Value::Imm(v as u64), false, t),
            Jslt32I(d, v, t) => (C::L, d, Value::Imm(v as u64), false, t),
            Jsle32I(d, v, t) => (C::Le, d, Value::Imm(v as u64), false, t),
            Jeq32R(d, s, t) => (C::E, d, Value::Reg(reg(s)), false, t),
            Jgt32R(d, s, t) => (C::A, d, Value::Reg(reg(s)), false, t),
            Jge32R(d, s, t) => (C::Ae, d, Value::Reg(reg(s)), false, t),
            Jset32R(d, s, t) => (C::Set, d, Value::Reg(reg(s)), false, t),
            Jne32R(d, s, t) => (C::Ne, d, Value::Reg(reg(s)), false, t),
            Jsgt32R(d, s, t) => (C::G, d, Value::Reg(reg(s)), false, t),
            Jsge32R(d, s, t) => (C::Ge, d, Value::Reg(reg(s)), false, t),
            Jlt32R(d, s, t) => (C::B, d, Value::Reg(reg(s)), false, t),
            Jle32R(d, s, t) => (C::Be, d, Value::Reg(reg(s)), false, t),
            Jslt32R(d, s, t) => (C::L, d, Value::Reg(reg(s)), false, t),
            Jsle32R(d, s, t) => (C::Le, d, Value::Reg(reg(s)), false, t),
            Ja(t) => {
                self.a.jmp(self.labels[t as usize])?;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        let d = reg(d);
        let a = &mut self.a;
        let set = matches!(c, C::Set);
        match (src, w64) {
            (Value::Imm(v), true) => {
                let v = v as i64 as i32;
                if set {
                    a.test(R64[d], v)?
                } else {
                    a.cmp(R64[d], v)?
                }
            }
            (Value::Imm(v), false) => {
                if set {
                    a.test(R32[d], v as u32)?
                } else {
                    a.cmp(R32[d], v as u32)?
                }
            }
            (Value::Reg(s), true) => {
                if set {
                    a.test(R64[d], R64[s])?
                } else {
                    a.cmp(R64[d], R64[s])?
                }
            }
            (Value::Reg(s), false) => {
                if set {
                    a.test(R32[d], R32[s])?
                } else {
                    a.cmp(R32[d], R32[s])?
                }
            }
        }
        let l = self.labels[t as usize];
        match c {
            C::E => a.je(l)?,
            C::A => a.ja(l)?,
            C::Ae => a.jae(l)?,
            C::Set | C::Ne => a.jne(l)?,
            C::G => a.jg(l)?,
            C::Ge => a.jge(l)?,
            C::B => a.jb(l)?,
            C::Be => a.jbe(l)?,
            C::L => a.jl(l)?,
            C::Le => a.jle(l)?,
        }
        Ok(true)
    }
}

/// The low 32 bits of a register the JIT uses.
fn low32(r: AsmRegister64) -> AsmRegister32 {
    if let Some(i) = R64.iter().position(|&x| x == r) {
        return R32[i];
    }
    if r == r9 {
        r9d
    } else if r == r10 {
        r10d
    } else {
        r11d
    }
}

/// 32-bit shift by an immediate; a count of 0 still zero-extends.
fn shift32_imm(a: &mut CodeAssembler, kind: u8, d: usize, v: u32) -> Result<(), IcedError> {
    let n = v & 31;
    if n == 0 {
        return a.mov(R32[d], R32[d]);
    }
    match kind {
        0 => a.shl(R32[d], n),
        1 => a.shr(R32[d], n),
        _ => a.sar(R32[d], n),
    }
}

/// Shift by a register: x86 takes the count in cl (r4's rcx), and masks it
/// to 63 or 31 as the interpreter's `wrapping_shl` does.
fn shift_reg(
    a: &mut CodeAssembler,
    kind: u8,
    d: usize,
    s: usize,
    w64: bool,
) -> Result<(), IcedError> {
    let sh = |a: &mut CodeAssembler, r: AsmRegister64| -> Result<(), IcedError> {
        if w64 {
            match kind {
                0 => a.shl(r, cl),
                1 => a.shr(r, cl),
                _ => a.sar(r, cl),
            }
        } else {
            let r = low32(r);
            match kind {
                0 => a.shl(r, cl)?,
                1 => a.shr(r, cl)?,
                _ => a.sar(r, cl)?,
            }
            // A count of 0 leaves the register unwritten: zero-extend.
            a.mov(r, r)
        }
    };
    if s == 4 {
        sh(a, R64[d])
    } else if d == 4 {
        a.mov(r11, rcx)?;
        a.mov(rcx, R64[s])?;
        sh(a, r11)?;
        a.mov(rcx, r11)
    } else {
        a.mov(r11, rcx)?;
        a.mov(rcx, R64[s])?;
        sh(a, R64[d])?;
        a.mov(rcx, r11)
    }
}

impl JitProgram {
    /// Compiles `program`.
    pub fn compile(program: &Program) -> Result<JitProgram, JitError> {
        JitProgram::compile_trusting(program, Vec::new())
    }

    /// Compiles `program`, emitting the accesses of the slots `own_stack`
    /// marks without a bounds check: the caller vouches (by the verifier's
    /// proof) that each stays within the running function's frame.
    pub(crate) fn compile_trusting(
        program: &Program,
        own_stack: Vec<bool>,
    ) -> Result<JitProgram, JitError> {
        let compiled_from = program.ops().as_ptr() as usize;
        let ops = program.ops().to_vec();
        let lead = leaders(&ops);
        let mut a = CodeAssembler::new(64).map_err(asm_err)?;
        let labels: Vec<CodeLabel> = (0..ops.len()).map(|_| a.create_label()).collect();
        let abort = a.create_label();
        let main_exit = a.create_label();
        let mut g = Gen {
            a,
            labels,
            stubs: Vec::new(),
            abort,
            main_exit,
            own_stack,
        };
        let mut blocks: Vec<Vec<u32>> = Vec::new();
        let mut block_of = vec![u32::MAX; ops.len()];
        for (pc, op) in ops.iter().enumerate() {
            if *op == Op::LdImm64Tail {
                continue;
            }
            if lead[pc] || blocks.is_empty() {
                blocks.push(Vec::new());
            }
            let b = blocks.len() - 1;
            blocks[b].push(pc as u32);
            if lead[pc] {
                block_of[pc] = b as u32;
            }
        }
        g.body(&ops, &blocks, &block_of).map_err(asm_err)?;
        let result =
            g.a.assemble_options(0, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
                .map_err(asm_err)?;
        let code = result.inner.code_buffer.clone();
        let memory = ExecMemory::new(&code)?;
        let mut native = vec![0u64; ops.len()];
        let mut offsets = vec![u32::MAX; ops.len()];
        for (pc, op) in ops.iter().enumerate() {
            if *op == Op::LdImm64Tail {
                continue;
            }
            let off = result.label_ip(&g.labels[pc]).map_err(asm_err)?;
            offsets[pc] = off as u32;
            if lead[pc] {
                native[pc] = memory.addr() + off;
            }
        }
        Ok(JitProgram {
            memory,
            code,
            native,
            blocks,
            offsets,
            ops,
            compiled_from,
        })
    }

    /// The machine code.
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// Where each slot's code starts in [`JitProgram::code`] (`None` for the
    /// second slot of an `lddw`, which has none).
    pub fn slot_offsets(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.offsets
            .iter()
            .map(|&o| (o != u32::MAX).then_some(o as usize))
    }

    /// The address the machine code is mapped at.
    pub fn address(&self) -> u64 {
        self.memory.addr()
    }
}

impl Gen {
    fn body(&mut self, ops: &[Op], blocks: &[Vec<u32>], block_of: &[u32]) -> Result<(), IcedError> {
        // Prologue: save the callee-saved registers the mapping uses, keep
        // rsp 16-byte aligned, load r0..r10 from the context block.
        let mut epilogue = self.a.create_label();
        let a = &mut self.a;
        a.push(rbx)?;
        a.push(rbp)?;
        a.push(r12)?;
        a.push(r13)?;
        a.push(r14)?;
        a.push(r15)?;
        a.sub(rsp, 8)?;
        a.mov(r12, rdi)?;
        a.mov(qword_ptr(r12 + SAVED_RSP), rsp)?;
        for (i, r) in R64.iter().enumerate().take(10) {
            a.mov(*r, qword_ptr(r12 + (REGS + 8 * i as i32)))?;
        }
        a.mov(rbp, qword_ptr(r12 + FP))?;
        for (pc, &op) in ops.iter().enumerate() {
            if op == Op::LdImm64Tail {
                continue;
            }
            let mut label = self.labels[pc];
            self.a.set_label(&mut label)?;
            self.labels[pc] = label;
            let before = self.a.instructions().len();
            if block_of[pc] != u32::MAX {
                let b = block_of[pc];
                let n = blocks[b as usize].len() as i32;
                let stub = self.a.create_label();
                // One read-modify-write: a borrow means fewer than n left.
                self.a.sub(qword_ptr(r12 + REMAINING), n)?;
                self.a.jb(stub)?;
                self.stubs.push(Stub::Budget {
                    label: stub,
                    block: b,
                    insns: n,
                });
            }
            self.op(op, pc as u32)?;
            if self.a.instructions().len() == before {
                self.a.nop()?;
            }
        }
        // Out-of-line paths.
        for stub in std::mem::take(&mut self.stubs) {
            match stub {
                Stub::Budget {
                    mut label,
                    block,
                    insns,
                } => {
                    self.a.set_label(&mut label)?;
                    // Undo the block's subtraction: the machine counts
                    // from what was left before it.
                    self.a.add(qword_ptr(r12 + REMAINING), insns)?;
                    self.tcall(tramp_budget, block as u64)?;
                    self.a.jmp(self.abort)?;
                }
                Stub::Load {
                    mut label,
                    pc,
                    size,
                    access,
                } => {
                    self.a.set_label(&mut label)?;
                    self.tcall(tramp_load, pc as u64)?;
                    self.a.lea(r9, qword_ptr(r12 + (SCRATCH + size)))?;
                    self.a.jmp(access)?;
                }
                Stub::Store {
                    mut label,
                    pc,
                    value,
                    resume,
                } => {
                    self.a.set_label(&mut label)?;
                    match value {
                        Value::Reg(s) => self.a.mov(r9, R64[s])?,
                        Value::Imm(v) => self.mov_imm(r9, v)?,
                    }
                    self.tcall(tramp_store, pc as u64)?;
                    self.a.jmp(resume)?;
                }
            }
        }
        let mut main_exit = self.main_exit;
        let mut abort = self.abort;
        let a = &mut self.a;
        a.set_label(&mut main_exit)?;
        a.mov(qword_ptr(r12 + REGS), rax)?;
        a.xor(eax, eax)?;
        a.mov(rsp, qword_ptr(r12 + SAVED_RSP))?;
        a.jmp(epilogue)?;
        a.set_label(&mut abort)?;
        a.mov(rsp, qword_ptr(r12 + SAVED_RSP))?;
        a.mov(eax, 1u32)?;
        a.set_label(&mut epilogue)?;
        a.add(rsp, 8)?;
        a.pop(r15)?;
        a.pop(r14)?;
        a.pop(r13)?;
        a.pop(r12)?;
        a.pop(rbp)?;
        a.pop(rbx)?;
        a.ret()
    }

    fn op(&mut self, op: Op, pc: u32) -> Result<(), IcedError> {
        use Op::*;
        if self.alu(op, pc)? || self.jump(op)? {
            return Ok(());
        }
        let next = |g: &Gen| g.labels[pc as usize + 1];
        match op {
            Ldx8(d, s, off) => self.mem(pc, 1, reg(s), off, Some((reg(d), false)), None)?,
            Ldx16(d, s, off) => self.mem(pc, 2, reg(s), off, Some((reg(d), false)), None)?,
            Ldx32(d, s, off) => self.mem(pc, 4, reg(s), off, Some((reg(d), false)), None)?,
            Ldx64(d, s, off) => self.mem(pc, 8, reg(s), off, Some((reg(d), false)), None)?,
            Ldxs8(d, s, off) => self.mem(pc, 1, reg(s), off, Some((reg(d), true)), None)?,
            Ldxs16(d, s, off) => self.mem(pc, 2, reg(s), off, Some((reg(d), true)), None)?,
            Ldxs32(d, s, off) => self.mem(pc, 4, reg(s), off, Some((reg(d), true)), None)?,
            St8(b, off, v) => self.mem(pc, 1, reg(b), off, None, Some(Value::Imm(v)))?,
            St16(b, off, v) => self.mem(pc, 2, reg(b), off, None, Some(Value::Imm(v)))?,
            St32(b, off, v) => self.mem(pc, 4, reg(b), off, None, Some(Value::Imm(v)))?,
            St64(b, off, v) => self.mem(pc, 8, reg(b), off, None, Some(Value::Imm(v)))?,
            Stx8(b, s, off) => self.mem(pc, 1, reg(b), off, None, Some(Value::Reg(reg(s))))?,
            Stx16(b, s, off) => self.mem(pc, 2, reg(b), off, None, Some(Value::Reg(reg(s))))?,
            Stx32(b, s, off) => self.mem(pc, 4, reg(b), off, None, Some(Value::Reg(reg(s))))?,
            Stx64(b, s, off) => self.mem(pc, 8, reg(b), off, None, Some(Value::Reg(reg(s))))?,
            Ldx32Ctx(_, s, off) => {
                self.a.lea(r11, qword_ptr(R64[reg(s)] + off as i32))?;
                self.tcall(tramp_load_ctx, pc as u64)?;
            }
            Atomic(_, _, _, b, s, off) => {
                self.a.lea(r11, qword_ptr(R64[reg(b)] + off as i32))?;
                self.a.mov(r9, R64[reg(s)])?;
                self.tcall(tramp_atomic, pc as u64)?;
            }
            LdAbs(..) | LdInd(..) => self.tcall(tramp_packet, pc as u64)?,
            LdMap(d, index) if (index as usize) < MAP_CACHE => {
                // A map's handle is the same for the whole run: only the
                // first load asks the machine.
                // The next instruction is 2 slots on (lddw is wide); a
                // loaded program does not end with an lddw, but if it did
                // a local label after a nop would do.
                let after = self.labels.get(pc as usize + 2).copied();
                let mut done = after.unwrap_or_else(|| self.a.create_label());
                let r = R64[reg(d)];
                self.a
                    .mov(r, qword_ptr(r12 + (MAP_HANDLES + 8 * index as i32)))?;
                self.a.test(r, r)?;
                self.a.jnz(done)?;
                self.tcall(tramp_map_handle, pc as u64)?;
                if after.is_none() {
                    self.a.set_label(&mut done)?;
                    self.a.nop()?;
                }
            }
            LdMap(..) => self.tcall(tramp_map_handle, pc as u64)?,
            LdMapValue(..) => self.tcall(tramp_map_value, pc as u64)?,
            // bpf_map_lookup_elem has an entry of its own on the machine.
            Call(MAP_LOOKUP_ELEM) => self.tcall(tramp_map_lookup, pc as u64)?,
            Call(_) => self.tcall(tramp_helper, pc as u64)?,
            CallLocal(t) => {
                self.tcall(tramp_enter, pc as u64)?;
                let l = self.labels[t as usize];
                self.native_call(Some(l))?;
            }
            Callx(s) => {
                self.a.mov(r11, R64[reg(s)])?;
                self.tcall(tramp_callx, pc as u64)?;
                let done = next(self);
                self.a.mov(r11, qword_ptr(r12 + SCRATCH))?;
                self.a.test(r11, r11)?;
                self.a.jz(done)?;
                self.native_call(None)?;
            }
            CallWithCallback(_) => {
                self.tcall(tramp_callback_start, pc as u64)?;
                let done = next(self);
                let mut again = self.a.create_label();
                self.a.set_label(&mut again)?;
                self.a.mov(r11, qword_ptr(r12 + SCRATCH))?;
                self.a.test(r11, r11)?;
                self.a.jz(done)?;
                self.native_call(None)?;
                self.tcall(tramp_callback_returned, pc as u64)?;
                self.a.jmp(again)?;
            }
            Exit => {
                self.a.cmp(qword_ptr(r12 + DEPTH), 0)?;
                self.a.je(self.main_exit)?;
                self.tcall(tramp_leave, pc as u64)?;
                self.a.ret()?;
            }
            _ => {
                // Unreachable for a loaded program (LdImm64Tail is skipped);
                // end the run as the interpreter would if control got here.
                self.tcall(tramp_internal, pc as u64)?;
            }
        }
        Ok(())
    }
}

// ---- Trampolines: generated code calls these with the context block. ----

/// Runs `f` on the run's state; a halt or a panic is kept and makes the
/// generated code unwind (nonzero return).
fn guarded(
    ctx: *mut JitCtx,
    refresh: bool,
    f: impl FnOnce(&mut JitCtx, &mut Runtime<'_, '_>) -> Result<(), Halt>,
) -> u64 {
    // SAFETY: generated code passes the context block `run` made, which
    // lives until `run` returns; nothing else refers to it during the call.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: `runtime` points to the `Runtime` on `run`'s stack frame,
    // which is not otherwise used while the generated code runs.
    let rt = unsafe { &mut *(ctx.runtime as *mut Runtime<'_, '_>) };
    match catch_unwind(AssertUnwindSafe(|| f(ctx, rt))) {
        Ok(Ok(())) => {
            if refresh {
                rt.refresh(ctx);
            }
            0
        }
        Ok(Err(halt)) => {
            rt.halt = Some(halt);
            1
        }
        Err(payload) => {
            rt.panic = Some(payload);
            1
        }
    }
}

fn args(ctx: &JitCtx) -> [u64; 5] {
    [
        ctx.regs[1],
        ctx.regs[2],
        ctx.regs[3],
        ctx.regs[4],
        ctx.regs[5],
    ]
}

fn op_at(rt: &Runtime<'_, '_>, pc: u64) -> Op {
    rt.code.ops[pc as usize]
}

extern "sysv64" fn tramp_budget(ctx: *mut JitCtx, block: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        let insns = &rt.code.blocks[block as usize];
        let pc = insns[(ctx.remaining as usize).min(insns.len() - 1)] as usize;
        ctx.remaining = 0;
        Err(rt.machine.budget_exhausted(pc))
    })
}

extern "sysv64" fn tramp_load(ctx: *mut JitCtx, pc: u64, addr: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        let size = match op_at(rt, pc) {
            Op::Ldx8(..) | Op::Ldxs8(..) => 1,
            Op::Ldx16(..) | Op::Ldxs16(..) => 2,
            Op::Ldx32(..) | Op::Ldxs32(..) => 4,
            _ => 8,
        };
        ctx.scratch = rt.machine.load(pc as usize, addr, size)?;
        Ok(())
    })
}

extern "sysv64" fn tramp_store(ctx: *mut JitCtx, pc: u64, addr: u64, value: u64) -> u64 {
    guarded(ctx, false, |_, rt| {
        let size = match op_at(rt, pc) {
            Op::St8(..) | Op::Stx8(..) => 1,
            Op::St16(..) | Op::Stx16(..) => 2,
            Op::St32(..) | Op::Stx32(..) => 4,
            _ => 8,
        };
        rt.machine.store(pc as usize, addr, size, value)
    })
}

extern "sysv64" fn tramp_load_ctx(ctx: *mut JitCtx, pc: u64, addr: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        if let Op::Ldx32Ctx(d, ..) = op_at(rt, pc) {
            ctx.regs[reg(d)] = rt.machine.load_context32(pc as usize, addr)?;
        }
        Ok(())
    })
}

extern "sysv64" fn tramp_atomic(ctx: *mut JitCtx, pc: u64, addr: u64, src: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        if let Op::Atomic(kind, fetch, dw, _, s, _) = op_at(rt, pc) {
            let old = rt
                .machine
                .atomic(pc as usize, kind, dw, addr, src, ctx.regs[0])?;
            if kind == AtomicKind::Cmpxchg {
                ctx.regs[0] = old;
            } else if fetch {
                ctx.regs[reg(s)] = old;
            }
        }
        Ok(())
    })
}

extern "sysv64" fn tramp_packet(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        let (size, off) = match op_at(rt, pc) {
            Op::LdAbs(size, imm) => (size, imm as i64 as u64),
            Op::LdInd(size, s, imm) => (
                size,
                (ctx.regs[reg(s)] as u32 as u64).wrapping_add(imm as i64 as u64),
            ),
            _ => return Ok(()),
        };
        ctx.regs[0] = rt.machine.packet_load(size, off)?;
        Ok(())
    })
}

/// `lddw rX, map[index]`: the handle, kept for the run's later loads. The
/// machine only reads its maps here, so the regions need no refresh.
extern "sysv64" fn tramp_map_handle(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        if let Op::LdMap(d, index) = op_at(rt, pc) {
            let handle = rt.machine.map_handle(pc as usize, index)?;
            ctx.regs[reg(d)] = handle;
            if let Some(slot) = ctx.map_handles.get_mut(index as usize) {
                *slot = handle;
            }
        }
        Ok(())
    })
}

/// `lddw rX, map_value[index] + offset` (may add the value's region).
extern "sysv64" fn tramp_map_value(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |ctx, rt| {
        if let Op::LdMapValue(d, index, offset) = op_at(rt, pc) {
            ctx.regs[reg(d)] = rt.machine.map_value_addr(pc as usize, index, offset)?;
        }
        Ok(())
    })
}

extern "sysv64" fn tramp_helper(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |ctx, rt| {
        if let Op::Call(id) = op_at(rt, pc) {
            ctx.regs[0] = rt.machine.call_helper(pc as usize, id, args(ctx))?;
        }
        Ok(())
    })
}

/// `call 1`: the machine's direct path to the maps (may add the value's region).
extern "sysv64" fn tramp_map_lookup(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |ctx, rt| {
        ctx.regs[0] = rt.machine.map_lookup_elem(pc as usize, args(ctx))?;
        Ok(())
    })
}

extern "sysv64" fn tramp_enter(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |_, rt| {
        rt.machine.enter_frame(pc as usize).map(drop)
    })
}

extern "sysv64" fn tramp_leave(ctx: *mut JitCtx, _: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |_, rt| {
        rt.machine.leave_frame();
        Ok(())
    })
}

/// Applies a call step: `ctx.scratch` = native address to call (0 for none).
fn apply_step(ctx: &mut JitCtx, rt: &Runtime<'_, '_>, pc: u64, step: CallStep) -> Result<(), Halt> {
    match step {
        CallStep::Return(v) => {
            ctx.regs[0] = v;
            ctx.scratch = 0;
        }
        CallStep::Call { target, args } => {
            if let Some(args) = args {
                ctx.regs[1..6].copy_from_slice(&args);
            }
            let addr = rt.code.native.get(target).copied().unwrap_or(0);
            if addr == 0 {
                // Every slot a call may reach starts a block; this is a bug.
                return Err(Halt::from(RunError::Internal { pc: pc as usize }));
            }
            ctx.scratch = addr;
        }
    }
    Ok(())
}

extern "sysv64" fn tramp_callx(ctx: *mut JitCtx, pc: u64, target: u64, _: u64) -> u64 {
    guarded(ctx, true, |ctx, rt| {
        let step = rt.machine.callx(pc as usize, target, args(ctx))?;
        apply_step(ctx, rt, pc, step)
    })
}

extern "sysv64" fn tramp_callback_start(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |ctx, rt| {
        let Op::CallWithCallback(id) = op_at(rt, pc) else {
            return Ok(());
        };
        let step = rt.machine.start_callback(pc as usize, id, args(ctx))?;
        apply_step(ctx, rt, pc, step)
    })
}

extern "sysv64" fn tramp_callback_returned(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, true, |ctx, rt| {
        let step = rt.machine.callback_returned(ctx.regs[0])?;
        apply_step(ctx, rt, pc, step)
    })
}

extern "sysv64" fn tramp_internal(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, false, |_, _| {
        Err(Halt::from(RunError::Internal { pc: pc as usize }))
    })
}

impl CompiledCode for JitProgram {
    /// The code is generated from the program's ops, one for one, and
    /// writes memory only where they do.
    fn writes_as_its_program(&self) -> bool {
        true
    }

    fn run(&self, machine: &mut Machine<'_>, args: [u64; 5]) -> Result<Flow, RunError> {
        // Code attached to another program would run that program's
        // instructions with this one's maps and frames: refuse it.
        let ops = machine.program().ops();
        let same = ops.as_ptr() as usize == self.compiled_from && ops.len() == self.ops.len();
        if !same && ops != self.ops.as_slice() {
            return Err(RunError::Internal { pc: 0 });
        }
        let mut ctx = JitCtx {
            remaining: machine.remaining(),
            ..JitCtx::default()
        };
        ctx.regs[1..6].copy_from_slice(&args);
        let (table, owned) = TABLES.with(|t| t.take());
        let mut rt = Runtime {
            machine,
            code: self,
            table,
            owned,
            layout: 0,
            halt: None,
            panic: None,
        };
        rt.fill(&mut ctx);
        ctx.runtime = &mut rt as *mut Runtime<'_, '_> as u64;
        // SAFETY: the mapping holds code generated by `compile` for this
        // program, whose entry (offset 0) follows this signature; it reads
        // and writes only `ctx`, the region table (bounds-checked against
        // each owned region's length, refreshed after every call into Rust)
        // and its own stack, and returns through its epilogue on every path.
        let entry = unsafe {
            std::mem::transmute::<u64, extern "sysv64" fn(*mut JitCtx) -> u64>(self.memory.addr())
        };
        let status = entry(&mut ctx);
        let Runtime {
            machine,
            halt,
            panic,
            mut table,
            mut owned,
            ..
        } = rt;
        table.clear();
        owned.clear();
        TABLES.with(|t| t.set((table, owned)));
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        if status == 0 {
            machine.set_remaining(ctx.remaining);
            return Ok(Flow::Exit(ctx.regs[0]));
        }
        machine.set_remaining(ctx.remaining);
        match halt {
            Some(h) => h.into_result(),
            None => Err(RunError::Internal { pc: 0 }),
        }
    }
}

impl JitProgram {
    /// The machine code disassembled (Intel syntax), each eBPF instruction
    /// (LLVM syntax) followed by the x86-64 code made from it; the
    /// prologue comes first and the out-of-line paths (slow memory
    /// accesses, budget exhaustion, exits) last.
    pub fn listing(&self, program: &Program) -> String {
        use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
        use std::fmt::Write;
        let mut out = String::new();
        let mut headers: Vec<(usize, String)> = Vec::new();
        let mut slot = 0usize;
        for insn in program.insns() {
            if let Some(&off) = self.offsets.get(slot) {
                if off != u32::MAX {
                    headers.push((
                        off as usize,
                        format!("; {slot:4}: {}", insn.display(bpfkit_isa::Syntax::Llvm)),
                    ));
                }
            }
            slot += insn.slots();
        }
        let body_end = self
            .offsets
            .iter()
            .filter(|&&o| o != u32::MAX)
            .max()
            .copied();
        let mut next_header = headers.iter().peekable();
        let mut decoder = Decoder::with_ip(64, &self.code, 0, DecoderOptions::NONE);
        let mut formatter = IntelFormatter::new();
        let mut text = String::new();
        let _ = writeln!(out, "; prologue");
        let mut stubs_started = false;
        while decoder.can_decode() {
            let ip = decoder.ip() as usize;
            while let Some((off, h)) = next_header.peek() {
                if *off <= ip {
                    let _ = writeln!(out, "{h}");
                    next_header.next();
                } else {
                    break;
                }
            }
            let insn = decoder.decode();
            text.clear();
            formatter.format(&insn, &mut text);
            let _ = writeln!(out, "    {ip:6x}  {text}");
            if !stubs_started
                && next_header.peek().is_none()
                && matches!(
                    insn.mnemonic(),
                    iced_x86::Mnemonic::Ret | iced_x86::Mnemonic::Jmp
                )
                && body_end.is_some_and(|e| ip >= e as usize)
            {
                stubs_started = true;
                let _ = writeln!(out, "; out-of-line paths");
            }
        }
        out
    }
}
