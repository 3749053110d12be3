//! The x86-64 back end: code generation and the trampolines generated code
//! calls back into Rust through.

use std::any::Any;
use std::mem::{offset_of, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::blocks::{access, is_load_store, leaders, Access, AccessKind, Accesses};
use crate::exec::ExecMemory;
use crate::lookup::{slot_index, LookupSlot, LOOKUP_SITES, LOOKUP_SLOTS, SLOT_HASH, SLOT_SHIFT};
use crate::loops::{safe_iterations, strided_loops, CopyIdiom, StridedAccess, StridedLoop};
use crate::x86_asm::*;
use crate::JitError;
use bpfkit_vm::engine::{
    atomic_value, AtomicKind, CallStep, CompiledCode, Flow, Halt, LookupMemo, Machine, Op,
    FUNC_ADDR_TAG, MAP_LOOKUP_ELEM,
};
use bpfkit_vm::{Backing, HeldBytes, Program, RunError};

/// eBPF registers r0..r10 in the kernel x86 JIT's mapping.
const R64: [Reg; 11] = [RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP];

/// Region numbers (a guest address's upper half: the region's index plus
/// one) the inline check covers; later regions take the slow path.
const INLINE_REGIONS: usize = 128;

/// The block generated code works on, pointed to by r12. Offsets below.
#[repr(C)]
struct JitCtx {
    /// Region numbers below this have entries in the tables at the end
    /// (number 0, no region, has an empty one).
    inline_regions: u64,
    /// The budget, while Rust code runs (generated code keeps it in r9).
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
    /// While a strided loop's unchecked copy runs: host minus guest
    /// address of each of its base registers, by register.
    loop_delta: [u64; 11],
    /// Per strided loop: nonzero once its unchecked copy was found not
    /// worth entering in this run (too few safe iterations, or memory the
    /// run does not own), so the back edge stops asking.
    loop_gave_up: [u64; MAX_LOOPS],
    /// Host address minus guest address of each region's bytes, by region
    /// number. The tables are written for every number below
    /// `inline_regions` before generated code reads them, and Rust never
    /// reads them: left uninitialised, a run need not clear 1 KiB.
    delta: [MaybeUninit<u64>; INLINE_REGIONS],
    /// By load (0) or store (1), access size (1, 2, 4, 8 bytes: 0..4) and
    /// region number: the guest address an access of that size must be
    /// below to stay in the region. Only regions the run owns have limits;
    /// for others (and stores to read-only ones) the limit is at most the
    /// region's base, which sends every access to the slow path.
    limit: [[[MaybeUninit<u64>; INLINE_REGIONS]; 4]; 2],
    /// Per slot of the lookup cache (`crate::lookup`): 1 when it holds a
    /// lookup made since the tables were filled (in this run or, for kept
    /// tables, an earlier one). Written, as `site_key_size`, on every fill
    /// of the tables of a program with lookup sites, and before a run of
    /// one over kept tables that do not have them (`lookups_ready`): only
    /// such programs' code reads them.
    lookup_used: [MaybeUninit<u8>; LOOKUP_SLOTS],
    /// Per lookup site: the key size of the map last remembered there (0:
    /// none since the last fill), so that its code knows how many key
    /// bytes to read.
    site_key_size: [MaybeUninit<u8>; LOOKUP_SITES],
    /// The lookup cache's slots, read only where `lookup_used` says.
    lookup: [MaybeUninit<LookupSlot>; LOOKUP_SLOTS],
    /// Whether `lookup_used` and `site_key_size` were written since the
    /// tables were last filled (a fill may have moved the values the
    /// slots name): tables kept from a run of a program without lookup
    /// sites have them unwritten or stale.
    lookups_ready: bool,
}

impl JitCtx {
    fn new() -> JitCtx {
        JitCtx {
            inline_regions: 0,
            remaining: 0,
            fp: 0,
            depth: 0,
            saved_rsp: 0,
            scratch: 0,
            regs: [0; 11],
            runtime: 0,
            stack_host: 0,
            stack_delta: 0,
            map_handles: [0; MAP_CACHE],
            loop_delta: [0; 11],
            loop_gave_up: [0; MAX_LOOPS],
            delta: [MaybeUninit::uninit(); INLINE_REGIONS],
            limit: [[[MaybeUninit::uninit(); INLINE_REGIONS]; 4]; 2],
            lookup_used: [MaybeUninit::uninit(); LOOKUP_SLOTS],
            site_key_size: [MaybeUninit::uninit(); LOOKUP_SITES],
            lookup: [MaybeUninit::uninit(); LOOKUP_SLOTS],
            lookups_ready: false,
        }
    }

    /// Sets up the block for a run with budget `remaining` and `r1..r5` =
    /// `args`: what a run of any program starts from, apart from the tables.
    fn start(&mut self, remaining: u64, args: [u64; 5]) {
        self.remaining = remaining;
        self.regs = [0; 11];
        self.regs[1..6].copy_from_slice(&args);
        self.map_handles = [0; MAP_CACHE];
        self.loop_gave_up = [0; MAX_LOOPS];
    }

    /// Empties the lookup cache.
    fn forget_lookups(&mut self) {
        for used in &mut self.lookup_used {
            used.write(0);
        }
        for size in &mut self.site_key_size {
            size.write(0);
        }
        self.lookups_ready = true;
    }

    /// Remembers that the lookup at site `site` with `handle` gave `value`.
    fn remember_lookup(&mut self, site: usize, handle: u64, value: u64, memo: &LookupMemo) {
        let slot = slot_index(memo.key);
        self.lookup[slot].write(LookupSlot::new(handle, value, memo));
        self.lookup_used[slot].write(1);
        self.site_key_size[site].write(memo.key_size);
    }

    /// Writes the table entries of region number `number`, whose guest
    /// addresses start at `guest`: the delta, and the limits of the classes
    /// (loads, stores) `classes` has (the code reads no others).
    #[inline(always)]
    fn set_entry(&mut self, number: usize, guest: u64, entry: OwnedEntry, classes: [bool; 2]) {
        self.delta[number].write(entry.host.wrapping_sub(guest));
        for (class, len) in [entry.loadable, entry.storable].into_iter().enumerate() {
            if !classes[class] {
                continue;
            }
            // `guest + off` fits when off + size <= len. With len < size the
            // limit is at most `guest`, below every address of the region
            // (saturating only for number 0, at guest 0).
            let end = guest + len + 1;
            let row = &mut self.limit[class];
            row[0][number].write(end.saturating_sub(1));
            row[1][number].write(end.saturating_sub(2));
            row[2][number].write(end.saturating_sub(4));
            row[3][number].write(end.saturating_sub(8));
        }
    }
}

/// Map indexes whose handles a run caches.
const MAP_CACHE: usize = 8;

/// Strided loops given an unchecked copy (the first ones of a program).
const MAX_LOOPS: usize = 8;

/// The fewest safe iterations worth entering an unchecked copy for: each
/// entry costs a call into Rust.
const MIN_FAST_ITERATIONS: u64 = 8;

const INLINE: i32 = offset_of!(JitCtx, inline_regions) as i32;
const REMAINING: i32 = offset_of!(JitCtx, remaining) as i32;
const FP: i32 = offset_of!(JitCtx, fp) as i32;
const DEPTH: i32 = offset_of!(JitCtx, depth) as i32;
const SAVED_RSP: i32 = offset_of!(JitCtx, saved_rsp) as i32;
const SCRATCH: i32 = offset_of!(JitCtx, scratch) as i32;
const REGS: i32 = offset_of!(JitCtx, regs) as i32;
const STACK_HOST: i32 = offset_of!(JitCtx, stack_host) as i32;
const STACK_DELTA: i32 = offset_of!(JitCtx, stack_delta) as i32;
const MAP_HANDLES: i32 = offset_of!(JitCtx, map_handles) as i32;
const LOOP_DELTA: i32 = offset_of!(JitCtx, loop_delta) as i32;
const LOOKUP_USED: i32 = offset_of!(JitCtx, lookup_used) as i32;
const SITE_KEY_SIZE: i32 = offset_of!(JitCtx, site_key_size) as i32;
const LOOKUP: i32 = offset_of!(JitCtx, lookup) as i32;
const LOOP_GAVE_UP: i32 = offset_of!(JitCtx, loop_gave_up) as i32;
const DELTA: i32 = offset_of!(JitCtx, delta) as i32;
const LIMIT: i32 = offset_of!(JitCtx, limit) as i32;
const STACK: i32 = bpfkit_vm::STACK_PER_FRAME as i32;

/// The register generated code keeps the budget in (stored to
/// `JitCtx::remaining` around every call into Rust): a counter in memory
/// would chain every block's check through a store and a load.
const BUDGET: Reg = R9;

/// Rust-side state of one run, reached from trampolines through `JitCtx::runtime`.
struct Runtime<'m, 'a> {
    machine: &'m mut Machine<'a>,
    code: &'m JitProgram,
    /// The space's layout version the inline tables were made for.
    layout: u64,
    /// How many regions the space had then.
    regions: usize,
    halt: Option<Halt>,
    panic: Option<Box<dyn Any + Send>>,
    /// Shared bytes (map values) the run holds locked, by region index, so
    /// that generated code reads and writes them in place; let go before
    /// any call into the machine that may lock them itself.
    held: Vec<Option<HeldBytes>>,
    /// The region indexes `held` has bytes for.
    holding: Vec<usize>,
    /// The limit tables (loads, stores) filled: those the code reads, or
    /// both for tables kept for other programs' runs.
    classes: [bool; 2],
}

impl Runtime<'_, '_> {
    /// The bytes of a `size`-byte access at `addr` (a store or atomic when
    /// `store`) in shared bytes the run holds, locking them and giving
    /// their region an inline table entry first if it does not hold them
    /// yet. `None` when the access is not wholly in a region over shared
    /// bytes (that allows it), or someone else holds them.
    fn held_access(
        &mut self,
        ctx: &mut JitCtx,
        addr: u64,
        size: usize,
        store: bool,
    ) -> Option<&mut [u8]> {
        let index = ((addr >> 32) as usize).wrapping_sub(1);
        let offset = addr as u32 as usize;
        let region = self.machine.memory().region(index)?;
        if offset + size > region.len() || (store && !region.writable) {
            return None;
        }
        if !self.hold(ctx, index) {
            return None;
        }
        self.held[index]
            .as_mut()?
            .bytes_mut()
            .get_mut(offset..offset + size)
    }

    /// Holds the shared bytes of region `index` (if the run does not yet)
    /// and gives the region an inline table entry over them. False when
    /// the region is past the tables or not over shared bytes, or someone
    /// else holds them.
    fn hold(&mut self, ctx: &mut JitCtx, index: usize) -> bool {
        if index >= INLINE_REGIONS - 1 {
            return false;
        }
        if self.held.is_empty() {
            // Once for the run: a run holding values one by one would
            // otherwise grow both a few times.
            self.held.resize_with(INLINE_REGIONS, || None);
            self.holding.reserve(INLINE_REGIONS);
        }
        if self.held[index].is_some() {
            return true;
        }
        let Some(region) = self.machine.memory().region(index) else {
            return false;
        };
        let Backing::Shared(shared) = &region.backing else {
            return false;
        };
        let (len, writable) = (region.len(), region.writable);
        let Some(mut held) = shared.try_hold() else {
            return false;
        };
        let bytes = held.bytes_mut();
        // Bytes shorter than the region (an embedder replaced them) fault
        // as past the region's end: only what both cover is inline.
        let inline = len.min(bytes.len()) as u64;
        let entry = OwnedEntry {
            host: bytes.as_mut_ptr() as u64,
            loadable: inline,
            storable: if writable { inline } else { 0 },
        };
        let classes = self.classes;
        ctx.set_entry(index + 1, bpfkit_vm::region_base(index), entry, classes);
        self.held[index] = Some(held);
        self.holding.push(index);
        true
    }

    /// Lets go of every held bytes, their table entries back to the slow path.
    #[inline(always)]
    fn release(&mut self, ctx: &mut JitCtx) {
        if !self.holding.is_empty() {
            self.release_held(ctx);
        }
    }

    /// [`Runtime::release`] when something is held (out of line: most
    /// calls into the machine hold nothing).
    #[inline(never)]
    fn release_held(&mut self, ctx: &mut JitCtx) {
        let classes = self.classes;
        for index in self.holding.drain(..) {
            self.held[index] = None;
            let guest = bpfkit_vm::region_base(index);
            ctx.set_entry(index + 1, guest, OwnedEntry::default(), classes);
        }
    }

    /// Fills the inline region tables and the frame state from the
    /// address space.
    fn fill(&mut self, ctx: &mut JitCtx) {
        // Regions may have moved: a held region's index may name other
        // bytes now, and remembered values may be elsewhere.
        self.release(ctx);
        if self.code.lookup_sites.is_empty() {
            ctx.lookups_ready = false;
        } else {
            ctx.forget_lookups();
        }
        let classes = self.classes;
        ctx.set_entry(0, 0, OwnedEntry::default(), classes);
        self.fill_from(ctx, 0);
    }

    /// Writes the table entries of regions `first..` (entry 0 and those
    /// below `first` already hold), then the frame state.
    #[inline(always)]
    fn fill_from(&mut self, ctx: &mut JitCtx, first: usize) {
        let memory = self.machine.memory();
        let n = memory.len().min(INLINE_REGIONS - 1);
        let classes = self.classes;
        for index in first..n {
            let entry = owned_entry(memory, index).unwrap_or_default();
            ctx.set_entry(index + 1, bpfkit_vm::region_base(index), entry, classes);
        }
        ctx.inline_regions = n as u64 + 1;
        self.regions = memory.len();
        self.frame_state(ctx);
        self.layout = self.machine.memory().layout_version();
    }

    /// Brings the tables and the frame state up to date after the machine
    /// ran, when the regions moved (most calls, such as a lookup of a value
    /// already in the space, leave them as they were; entering or leaving
    /// a frame changes the layout version too).
    #[inline(always)]
    fn refresh(&mut self, ctx: &mut JitCtx) {
        if self.machine.memory().layout_version() != self.layout {
            self.relayout(ctx);
        }
    }

    /// [`Runtime::refresh`] when the regions moved (out of line: most
    /// calls take the check alone).
    #[inline(never)]
    fn relayout(&mut self, ctx: &mut JitCtx) {
        let memory = self.machine.memory();
        let version = memory.layout_version();
        // One change (each adds 1 to the version) that left one more
        // region: a region appended, such as the value a lookup brought in
        // or a new frame, and nothing else moved. Only its entry is new.
        if version == self.layout.wrapping_add(1) && memory.len() == self.regions + 1 {
            self.fill_from(ctx, self.regions);
        } else {
            self.fill(ctx);
        }
    }

    /// Points the context block at the current frame.
    #[inline(always)]
    fn frame_state(&mut self, ctx: &mut JitCtx) {
        ctx.fp = self.machine.frame_pointer();
        ctx.depth = self.machine.depth() as u64;
        // The frame's region starts STACK bytes below r10 (interp.rs
        // Stack::frame_pointer); only a whole owned frame goes direct.
        let frame = ctx.fp.wrapping_sub(STACK as u64);
        let whole = |e: &OwnedEntry| e.loadable >= STACK as u64 && e.storable >= STACK as u64;
        ctx.stack_host = match ((frame >> 32).wrapping_sub(1) as usize, frame as u32) {
            (index, 0) => owned_entry(self.machine.memory(), index)
                .filter(whole)
                .map_or(0, |e| e.host),
            _ => 0,
        };
        ctx.stack_delta = ctx.stack_host.wrapping_sub(frame);
    }
}

/// What the inline tables need of a region the run owns.
#[derive(Default)]
struct OwnedEntry {
    host: u64,
    loadable: u64,
    storable: u64,
}

/// The inline table entry of region `index` if the run owns its bytes.
#[inline(always)]
fn owned_entry(memory: &mut bpfkit_vm::AddressSpace, index: usize) -> Option<OwnedEntry> {
    let view = memory.owned_view(index)?;
    let len = view.len as u64;
    Some(OwnedEntry {
        host: view.ptr as u64,
        loadable: len,
        storable: if view.writable { len } else { 0 },
    })
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
    /// Per slot: how many instructions of its block follow it.
    after: Vec<u32>,
    /// The strided loops with unchecked copies, by loop id.
    loops: Vec<StridedLoop>,
    /// Whether the inline checks read the load and the store limit tables:
    /// a run fills only those.
    limit_classes: [bool; 2],
    /// The slots of the `bpf_map_lookup_elem` calls that try the lookup
    /// cache, in order (a site's index is its place here).
    lookup_sites: Vec<u32>,
    /// Offset in `code` where each slot's code starts (`u32::MAX` for none).
    offsets: Vec<u32>,
    /// The program's ops (trampolines look instructions up by pc).
    ops: Vec<Op>,
    /// Where the compiled program kept its ops: a run of that program
    /// needs no comparison of its ops with `ops`.
    compiled_from: usize,
}

type Tramp = extern "sysv64" fn(*mut JitCtx, u64, u64, u64) -> u64;

/// A memory access's register operand or immediate.
#[derive(Clone, Copy)]
enum Value {
    Reg(usize),
    Imm(u64),
}

/// A divisor RFC 9669 gives its own result.
#[derive(Clone, Copy)]
enum Divisor {
    Zero,
    MinusOne,
}

/// What a division or modulo by a special divisor leaves in its register.
#[derive(Clone, Copy)]
struct DivCase {
    dst: Reg,
    w64: bool,
    is_mod: bool,
    divisor: Divisor,
}

impl DivCase {
    /// Whether it leaves the register as it was (64-bit modulo by 0).
    fn is_noop(&self) -> bool {
        matches!(self.divisor, Divisor::Zero) && self.is_mod && self.w64
    }

    fn emit(&self, a: &mut Asm) {
        let dst = self.dst;
        match self.divisor {
            // By zero: div gives 0, mod the dividend (zero-extended at 32 bits).
            Divisor::Zero if !self.is_mod => a.alu_rr(Alu::Xor, W::B32, dst, dst),
            Divisor::Zero if !self.w64 => a.mov_rr(W::B32, dst, dst),
            Divisor::Zero => a.nop(),
            // By -1 (signed): mod gives 0, div the negation (wrapping).
            Divisor::MinusOne if self.is_mod => a.alu_rr(Alu::Xor, W::B32, dst, dst),
            Divisor::MinusOne => a.unary(Unary::Neg, if self.w64 { W::B64 } else { W::B32 }, dst),
        }
    }
}

/// Out-of-line code emitted after the body.
enum Stub {
    /// A division's special divisor: its result, then back.
    Divisor {
        label: Label,
        case: DivCase,
        resume: Label,
    },
    /// A strided loop's back edge, taken: try its unchecked copy.
    Loop { label: Label, id: usize },
    /// The block would overrun the budget.
    Budget {
        label: Label,
        block: u32,
        insns: i32,
    },
    /// A load's slow path: the machine loads into `scratch`, then the load
    /// instruction reads it there (through r11 + `disp`).
    Load {
        label: Label,
        pc: u32,
        address: Mem,
        access: Label,
        disp: i32,
    },
    /// A store's slow path: the machine stores.
    Store {
        label: Label,
        pc: u32,
        address: Mem,
        value: Value,
        resume: Label,
    },
}

/// Code generation state. Label `n` of the assembler is slot `n`'s code
/// (bound when the slot is emitted), so branches to slots need no table
/// of their own and the slots' offsets come out of [`Asm::finish`].
struct Gen {
    a: Asm,
    stubs: Vec<Stub>,
    abort: Label,
    main_exit: Label,
    /// Slots whose access the verifier proved to stay within the running
    /// function's own frame (empty: none).
    own_stack: Vec<bool>,
    /// Strided loops with unchecked copies, by id.
    loops: Vec<StridedLoop>,
    /// The limit tables (loads, stores) the checks emitted so far read.
    limit_classes: [bool; 2],
    /// See [`JitProgram::lookup_sites`].
    lookup_sites: Vec<u32>,
}

fn reg(i: u8) -> usize {
    (i & 15) as usize
}

/// The code of slot `pc`.
fn slot(pc: impl TryInto<usize>) -> Label {
    Label::nth(pc.try_into().unwrap_or(usize::MAX))
}

/// The operand width of a `size`-byte memory access.
fn width(size: i32) -> W {
    match size {
        1 => W::B8,
        2 => W::B16,
        4 => W::B32,
        _ => W::B64,
    }
}

/// Which eBPF registers a trampoline call stores to `ctx.regs` and loads
/// back.
#[derive(Clone, Copy)]
enum Spill {
    /// r0..r9, and r10 reloaded from `ctx.fp`: for trampolines that may
    /// read or write any register, or change the frame.
    All,
    /// r0..r5 only: r6..r10 live in registers the System V ABI makes the
    /// callee keep (rbx, r13..r15, rbp), and the trampoline touches none
    /// of them in `ctx.regs`.
    CallerSaved,
}

/// The code around a trampoline call, the same each time and so encoded
/// once per [`Spill`]: the registers stored to `ctx.regs` and the budget to
/// `ctx.remaining`, and all loaded back from there.
fn spill_code(spill: Spill) -> &'static (Vec<u8>, Vec<u8>) {
    static ALL: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    static CALLER_SAVED: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let (cell, n) = match spill {
        Spill::All => (&ALL, 10),
        Spill::CallerSaved => (&CALLER_SAVED, 6),
    };
    cell.get_or_init(|| {
        let mut save = Asm::new(64, 0);
        let mut reload = Asm::new(64, 0);
        for (i, r) in R64.iter().enumerate().take(n) {
            save.store(W::B64, Mem::at(R12, REGS + 8 * i as i32), *r);
            reload.load(W::B64, *r, Mem::at(R12, REGS + 8 * i as i32));
        }
        save.store(W::B64, Mem::at(R12, REMAINING), BUDGET);
        reload.load(W::B64, BUDGET, Mem::at(R12, REMAINING));
        if let Spill::All = spill {
            reload.load(W::B64, RBP, Mem::at(R12, FP));
        }
        (save.code().to_vec(), reload.code().to_vec())
    })
}

/// [`Spill::CallerSaved`] when the register a trampoline reads or writes
/// for its instruction is r0..r5, else [`Spill::All`].
fn spill_for(r: u8) -> Spill {
    if reg(r) < 6 {
        Spill::CallerSaved
    } else {
        Spill::All
    }
}

impl Gen {
    /// `mov r64, v` in the shortest form.
    fn mov_imm(&mut self, r: Reg, v: u64) {
        if v <= u32::MAX as u64 {
            self.a.mov_r32_imm(r, v as u32)
        } else if v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64 {
            self.a.mov_r64_simm32(r, v as i64 as i32)
        } else {
            self.a.mov_r64_imm64(r, v)
        }
    }

    /// Calls trampoline `f(ctx, pc, r11, r10)` with r0..r9 saved in
    /// `ctx.regs` (where the machine reads and writes them) and reloaded
    /// after; a nonzero return aborts the run.
    fn tcall(&mut self, f: Tramp, pc: u64) {
        self.tcall_spilling(f, pc, Spill::All)
    }

    /// [`Gen::tcall`], saving and reloading the registers `spill` names.
    fn tcall_spilling(&mut self, f: Tramp, pc: u64, spill: Spill) {
        let (save, reload) = spill_code(spill);
        let a = &mut self.a;
        a.raw(save);
        a.mov_rr(W::B64, RDI, R12);
        a.mov_r32_imm(RSI, pc as u32);
        a.mov_rr(W::B64, RDX, R11);
        a.mov_rr(W::B64, RCX, R10);
        a.mov_r64_imm64(RAX, f as usize as u64);
        a.call_reg(RAX);
        a.test_rr(W::B64, RAX, RAX);
        a.jcc(Cond::Ne, self.abort);
        a.raw(reload);
    }

    /// Calls the function at the native address in r11 (or a label) as a
    /// bpf-to-bpf call: r6..r9 are kept across it, r10 comes back from the
    /// callee's exit, and the stack stays 16-byte aligned.
    fn native_call(&mut self, label: Option<Label>) {
        let a = &mut self.a;
        a.push(RBX);
        a.push(R13);
        a.push(R14);
        a.push(R15);
        a.alu_ri(Alu::Sub, W::B64, RSP, 8);
        match label {
            Some(l) => a.call(l),
            None => a.call_reg(R11),
        }
        a.alu_ri(Alu::Add, W::B64, RSP, 8);
        a.pop(R15);
        a.pop(R14);
        a.pop(R13);
        a.pop(RBX);
    }

    /// A checked memory access of `size` bytes at `base + off`: inline
    /// against the region tables, or through the machine. The access goes
    /// through r11 (plus a displacement); r10 is scratch.
    fn mem(&mut self, pc: u32, acc: Access) {
        let (size, base, off) = (acc.size as i32, reg(acc.base), acc.off);
        let slow = self.a.new_label();
        let access = self.a.new_label();
        let address = Mem::at(R64[base], off as i32);
        let a = &mut self.a;
        let disp = if base == 10 && off as i32 >= -STACK && off as i32 + size <= 0 {
            // r10 is the frame pointer (no instruction writes it), so a
            // constant offset within the frame needs no bounds check: only
            // the frame's host address, 0 when the slow path must decide.
            a.load(W::B64, R11, Mem::at(R12, STACK_HOST));
            a.test_rr(W::B64, R11, R11);
            a.jcc(Cond::E, slow);
            off as i32 + STACK
        } else if self.own_stack.get(pc as usize) == Some(&true) {
            // The verifier proved the address within the current frame:
            // only its translation to the frame's host bytes is left.
            a.lea(R11, address);
            a.alu_ri(Alu::Cmp, W::B64, Mem::at(R12, STACK_HOST), 0);
            a.jcc(Cond::E, slow);
            a.alu_rm(Alu::Add, W::B64, R11, Mem::at(R12, STACK_DELTA));
            0
        } else {
            a.lea(R11, address);
            self.checked_address(size, !acc.stores(), slow);
            0
        };
        self.a.bind(access);
        self.emit_access(Mem::at(R11, disp), acc);
        let value = match acc.kind {
            AccessKind::Load { .. } => {
                self.stubs.push(Stub::Load {
                    label: slow,
                    pc,
                    address,
                    access,
                    disp,
                });
                return;
            }
            AccessKind::Store(src) => Value::Reg(reg(src)),
            AccessKind::StoreImm(v) => Value::Imm(v),
        };
        // Right after the store, not the next slot: a block's checked copy
        // (Stub::Budget) has its own code there.
        let resume = self.a.new_label();
        self.a.bind(resume);
        self.stubs.push(Stub::Store {
            label: slow,
            pc,
            address,
            value,
            resume,
        });
    }

    /// An atomic done in place, then a jump to `done`, when the address
    /// is in a region of the inline tables that allows stores and is
    /// aligned; otherwise, and for the fetching or, and and xor (which
    /// would need a loop), the code that follows: the slow path.
    ///
    /// Plain read-modify-write instructions, no `lock`: bytes in the
    /// inline tables are the run's alone while it runs (its own regions,
    /// or map values it holds locked, `Runtime::held`), so no other thread
    /// can see the operation half done, and `lock` would cost about as
    /// much as the rest of the iteration in a counting loop.
    #[allow(clippy::too_many_arguments)]
    fn inline_atomic(
        &mut self,
        kind: AtomicKind,
        fetch: bool,
        dw: bool,
        b: u8,
        s: u8,
        off: i16,
        done: Label,
    ) {
        use AtomicKind as K;
        if fetch && matches!(kind, K::Or | K::And | K::Xor) {
            return;
        }
        let (size, w) = if dw { (8, W::B64) } else { (4, W::B32) };
        let slow = self.a.new_label();
        self.a.lea(R11, Mem::at(R64[reg(b)], off as i32));
        self.checked_address(size, false, slow);
        self.a.test_ri(W::B64, R11, size - 1);
        self.a.jcc(Cond::Ne, slow);
        let (m, src) = (Mem::at(R11, 0), R64[reg(s)]);
        match kind {
            K::Add if fetch => self.a.xadd_mr(w, m, src),
            K::Add => self.a.alu_mr(Alu::Add, w, m, src),
            K::Or => self.a.alu_mr(Alu::Or, w, m, src),
            K::And => self.a.alu_mr(Alu::And, w, m, src),
            K::Xor => self.a.alu_mr(Alu::Xor, w, m, src),
            K::Xchg => {
                // x86's xchg with memory always locks: a load and a store
                // (r10 is free after the check), the old value zero-extended.
                self.a.load(w, R10, m);
                self.a.store(w, m, src);
                self.a.mov_rr(W::B64, src, R10);
            }
            K::Cmpxchg => {
                self.a.cmpxchg_mr(w, m, src);
                // r0 is the old value, zero-extended: a 32-bit cmpxchg
                // that matches leaves rax's upper half (the kernel's x86
                // JIT zero-extends too).
                if !dw {
                    self.a.mov_rr(W::B32, R64[0], R64[0]);
                }
            }
        }
        self.a.jmp(done);
        self.a.bind(slow);
    }

    /// The lookup cache's check at lookup site `site`: reads the key at
    /// `r2` (checked as any load, of the size the site last saw), finds
    /// its slot, and, when the slot holds a lookup in the map `r1` names
    /// of that key whose map has not changed since, puts its value in r0
    /// and jumps to `done`; otherwise to `miss`. Uses r0, r10 and r11,
    /// which the call overwrites or nobody reads.
    fn remembered_lookup(&mut self, site: usize, miss: Label, done: Label) {
        let (r0, r1) = (R64[0], R64[1]);
        let key4 = self.a.new_label();
        let have_key = self.a.new_label();
        let site_size = Mem::at(R12, SITE_KEY_SIZE + site as i32);
        self.a.movzx(R10, site_size, W::B8);
        self.a.alu_ri(Alu::Cmp, W::B32, R10, 4);
        self.a.jcc(Cond::E, key4);
        self.a.alu_ri(Alu::Cmp, W::B32, R10, 8);
        self.a.jcc(Cond::Ne, miss);
        self.read_key(8, miss);
        self.a.jmp(have_key);
        self.a.bind(key4);
        self.read_key(4, miss);
        self.a.bind(have_key);
        let a = &mut self.a;
        // r10 = the slot (crate::lookup::slot_index).
        a.mov_r64_imm64(R10, SLOT_HASH);
        a.imul_rr(W::B64, R10, r0);
        a.shift_imm(Shift::Shr, W::B64, R10, SLOT_SHIFT);
        a.movzx(R11, Mem::scaled(R12, R10, 0, LOOKUP_USED), W::B8);
        a.test_rr(W::B32, R11, R11);
        a.jcc(Cond::E, miss);
        a.imul_rri(W::B64, R10, R10, std::mem::size_of::<LookupSlot>() as i32);
        // [r12 + r10 + LOOKUP] is the slot; each field must match.
        let field = |offset: usize| Mem::scaled(R12, R10, 0, LOOKUP + offset as i32);
        let must_match = |a: &mut Asm, r: Reg, offset: usize| {
            a.alu_rm(Alu::Cmp, W::B64, r, field(offset));
            a.jcc(Cond::Ne, miss);
        };
        must_match(a, r1, offset_of!(LookupSlot, handle));
        must_match(a, r0, offset_of!(LookupSlot, key));
        a.movzx(R11, site_size, W::B8);
        must_match(a, R11, offset_of!(LookupSlot, key_size));
        // The map's value generation now, against the one remembered.
        a.load(W::B64, R11, field(offset_of!(LookupSlot, generation_word)));
        a.load(W::B64, R11, Mem::at(R11, 0));
        must_match(a, R11, offset_of!(LookupSlot, generation));
        a.load(W::B64, r0, field(offset_of!(LookupSlot, value)));
        a.jmp(done);
    }

    /// r0 = the `size`-byte key at r2, read as a checked load of it would
    /// read it, or a jump to `miss`.
    fn read_key(&mut self, size: i32, miss: Label) {
        self.a.mov_rr(W::B64, R11, R64[2]);
        self.checked_address(size, true, miss);
        self.a.load(width(size), R64[0], Mem::at(R11, 0));
    }

    /// The inline check of the guest address in r11 for `size` bytes:
    /// leaves its host address in r11, or jumps to `slow` (which computes
    /// the address again).
    fn checked_address(&mut self, size: i32, load: bool, slow: Label) {
        let a = &mut self.a;
        // r10 = the region number; past the tables, the slow path.
        a.mov_rr(W::B64, R10, R11);
        a.shift_imm(Shift::Shr, W::B64, R10, 32);
        a.alu_rm(Alu::Cmp, W::B64, R10, Mem::at(R12, INLINE));
        a.jcc(Cond::Ae, slow);
        let class = if load { 0 } else { 1 };
        let size_index = size.trailing_zeros() as i32;
        self.limit_classes[class as usize] = true;
        let row = 8 * INLINE_REGIONS as i32 * (4 * class + size_index);
        a.alu_rm(Alu::Cmp, W::B64, R11, Mem::scaled(R12, R10, 3, LIMIT + row));
        a.jcc(Cond::Ae, slow);
        a.alu_rm(Alu::Add, W::B64, R11, Mem::scaled(R12, R10, 3, DELTA));
    }

    fn alu(&mut self, op: Op) -> bool {
        use Op::*;
        use W::{B32, B64};
        let a = &mut self.a;
        let r = |i: u8| R64[reg(i)];
        match op {
            Add64I(d, v) => a.alu_ri(Alu::Add, B64, r(d), v as i64 as i32),
            Sub64I(d, v) => a.alu_ri(Alu::Sub, B64, r(d), v as i64 as i32),
            Mul64I(d, v) => a.imul_rri(B64, r(d), r(d), v as i64 as i32),
            Or64I(d, v) => a.alu_ri(Alu::Or, B64, r(d), v as i64 as i32),
            And64I(d, v) => a.alu_ri(Alu::And, B64, r(d), v as i64 as i32),
            Xor64I(d, v) => a.alu_ri(Alu::Xor, B64, r(d), v as i64 as i32),
            Lsh64I(d, v) => a.shift_imm(Shift::Shl, B64, r(d), (v & 63) as u8),
            Rsh64I(d, v) => a.shift_imm(Shift::Shr, B64, r(d), (v & 63) as u8),
            Arsh64I(d, v) => a.shift_imm(Shift::Sar, B64, r(d), (v & 63) as u8),
            Mov64I(d, v) | Lddw(d, v) => self.mov_imm(r(d), v),
            LdFunc(d, t) => self.mov_imm(r(d), FUNC_ADDR_TAG | t as u64),
            Add64R(d, s) => a.alu_rr(Alu::Add, B64, r(d), r(s)),
            Sub64R(d, s) => a.alu_rr(Alu::Sub, B64, r(d), r(s)),
            Mul64R(d, s) => a.imul_rr(B64, r(d), r(s)),
            Or64R(d, s) => a.alu_rr(Alu::Or, B64, r(d), r(s)),
            And64R(d, s) => a.alu_rr(Alu::And, B64, r(d), r(s)),
            Xor64R(d, s) => a.alu_rr(Alu::Xor, B64, r(d), r(s)),
            Mov64R(d, s) => a.mov_rr(B64, r(d), r(s)),
            Add32I(d, v) => a.alu_ri(Alu::Add, B32, r(d), v as i32),
            Sub32I(d, v) => a.alu_ri(Alu::Sub, B32, r(d), v as i32),
            Mul32I(d, v) => a.imul_rri(B32, r(d), r(d), v as i32),
            Or32I(d, v) => a.alu_ri(Alu::Or, B32, r(d), v as i32),
            And32I(d, v) => a.alu_ri(Alu::And, B32, r(d), v as i32),
            Xor32I(d, v) => a.alu_ri(Alu::Xor, B32, r(d), v as i32),
            Lsh32I(d, v) => shift32_imm(a, Shift::Shl, r(d), v),
            Rsh32I(d, v) => shift32_imm(a, Shift::Shr, r(d), v),
            Arsh32I(d, v) => shift32_imm(a, Shift::Sar, r(d), v),
            Mov32I(d, v) => a.mov_r32_imm(r(d), v),
            Add32R(d, s) => a.alu_rr(Alu::Add, B32, r(d), r(s)),
            Sub32R(d, s) => a.alu_rr(Alu::Sub, B32, r(d), r(s)),
            Mul32R(d, s) => a.imul_rr(B32, r(d), r(s)),
            Or32R(d, s) => a.alu_rr(Alu::Or, B32, r(d), r(s)),
            And32R(d, s) => a.alu_rr(Alu::And, B32, r(d), r(s)),
            Xor32R(d, s) => a.alu_rr(Alu::Xor, B32, r(d), r(s)),
            Mov32R(d, s) => a.mov_rr(B32, r(d), r(s)),
            Lsh64R(d, s) => shift_reg(a, Shift::Shl, r(d), r(s), B64),
            Rsh64R(d, s) => shift_reg(a, Shift::Shr, r(d), r(s), B64),
            Arsh64R(d, s) => shift_reg(a, Shift::Sar, r(d), r(s), B64),
            Lsh32R(d, s) => shift_reg(a, Shift::Shl, r(d), r(s), B32),
            Rsh32R(d, s) => shift_reg(a, Shift::Shr, r(d), r(s), B32),
            Arsh32R(d, s) => shift_reg(a, Shift::Sar, r(d), r(s), B32),
            Div64I(d, v) => self.divmod(reg(d), Value::Imm(v), true, false, false),
            Sdiv64I(d, v) => self.divmod(reg(d), Value::Imm(v), true, true, false),
            Mod64I(d, v) => self.divmod(reg(d), Value::Imm(v), true, false, true),
            Smod64I(d, v) => self.divmod(reg(d), Value::Imm(v), true, true, true),
            Div64R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), true, false, false),
            Sdiv64R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), true, true, false),
            Mod64R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), true, false, true),
            Smod64R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), true, true, true),
            Div32I(d, v) => self.divmod(reg(d), Value::Imm(v as u64), false, false, false),
            Sdiv32I(d, v) => self.divmod(reg(d), Value::Imm(v as u64), false, true, false),
            Mod32I(d, v) => self.divmod(reg(d), Value::Imm(v as u64), false, false, true),
            Smod32I(d, v) => self.divmod(reg(d), Value::Imm(v as u64), false, true, true),
            Div32R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), false, false, false),
            Sdiv32R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), false, true, false),
            Mod32R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), false, false, true),
            Smod32R(d, s) => self.divmod(reg(d), Value::Reg(reg(s)), false, true, true),
            Movsx64(d, s, bits) => match bits {
                8 => a.movsx(B64, r(d), r(s), W::B8),
                16 => a.movsx(B64, r(d), r(s), W::B16),
                _ => a.movsx(B64, r(d), r(s), B32),
            },
            Movsx32(d, s, bits) => match bits {
                8 => a.movsx(B32, r(d), r(s), W::B8),
                16 => a.movsx(B32, r(d), r(s), W::B16),
                _ => a.mov_rr(B32, r(d), r(s)),
            },
            Neg64(d) => a.unary(Unary::Neg, B64, r(d)),
            Neg32(d) => a.unary(Unary::Neg, B32, r(d)),
            Le(d, bits) => match bits {
                16 => a.movzx(r(d), r(d), W::B16),
                32 => a.mov_rr(B32, r(d), r(d)),
                _ => a.nop(),
            },
            Swap(d, bits) => match bits {
                16 => {
                    a.shift_imm(Shift::Ror, W::B16, r(d), 8);
                    a.movzx(r(d), r(d), W::B16)
                }
                32 => a.bswap(B32, r(d)),
                _ => a.bswap(B64, r(d)),
            },
            _ => return false,
        }
        true
    }

    /// Division and modulo as RFC 9669 defines them: by zero, div gives 0
    /// and mod leaves the dividend; signed INT_MIN / -1 wraps (x86 would
    /// trap, so -1 is handled apart, out of line). x86's divide needs
    /// rdx:rax, which hold r3 and r0: they are kept in r10 and the context
    /// block around it.
    fn divmod(&mut self, d: usize, src: Value, w64: bool, signed: bool, is_mod: bool) {
        let done = self.a.new_label();
        let w = if w64 { W::B64 } else { W::B32 };
        let dst = R64[d];
        let minus_one = if w64 { u64::MAX } else { u32::MAX as u64 };
        let case = |divisor| DivCase {
            dst,
            w64,
            is_mod,
            divisor,
        };
        match src {
            Value::Imm(0) => return case(Divisor::Zero).emit(&mut self.a),
            Value::Imm(v) if signed && v == minus_one => {
                return case(Divisor::MinusOne).emit(&mut self.a)
            }
            Value::Imm(v) => {
                if w64 {
                    self.mov_imm(R11, v);
                } else {
                    self.a.mov_r32_imm(R11, v as u32);
                }
            }
            Value::Reg(s) => {
                // The special divisors go out of line (Stub::Divisor), so
                // an ordinary division takes no branch.
                self.a.mov_rr(w, R11, R64[s]);
                self.a.test_rr(w, R11, R11);
                let zero = case(Divisor::Zero);
                if zero.is_noop() {
                    self.a.jcc(Cond::E, done);
                } else {
                    let label = self.a.new_label();
                    self.a.jcc(Cond::E, label);
                    self.stubs.push(Stub::Divisor {
                        label,
                        case: zero,
                        resume: done,
                    });
                }
                if signed {
                    let label = self.a.new_label();
                    self.a.alu_ri(Alu::Cmp, w, R11, -1);
                    self.a.jcc(Cond::E, label);
                    self.stubs.push(Stub::Divisor {
                        label,
                        case: case(Divisor::MinusOne),
                        resume: done,
                    });
                }
            }
        }
        let a = &mut self.a;
        a.mov_rr(W::B64, R10, RAX);
        a.store(W::B64, Mem::at(R12, SCRATCH), RDX);
        a.mov_rr(w, RAX, dst);
        if signed {
            if w64 {
                a.cqo();
            } else {
                a.cdq();
            }
            a.unary(Unary::Idiv, w, R11);
        } else if w64 {
            // As clang's x86-64 code does (LLVM's BypassSlowDivision): when
            // both operands fit 32 bits, the far cheaper 32-bit `div` gives
            // the same quotient and remainder, zero-extended.
            let (wide, joined) = (a.new_label(), a.new_label());
            a.mov_rr(W::B64, RDX, RAX);
            a.alu_rr(Alu::Or, W::B64, RDX, R11);
            a.shift_imm(Shift::Shr, W::B64, RDX, 32);
            a.jcc(Cond::Ne, wide);
            a.alu_rr(Alu::Xor, W::B32, RDX, RDX);
            a.unary(Unary::Div, W::B32, R11);
            a.jmp(joined);
            a.bind(wide);
            a.alu_rr(Alu::Xor, W::B32, RDX, RDX);
            a.unary(Unary::Div, W::B64, R11);
            a.bind(joined);
        } else {
            a.alu_rr(Alu::Xor, W::B32, RDX, RDX);
            a.unary(Unary::Div, w, R11);
        }
        a.mov_rr(w, R11, if is_mod { RDX } else { RAX });
        a.mov_rr(W::B64, RAX, R10);
        a.load(W::B64, RDX, Mem::at(R12, SCRATCH));
        a.mov_rr(w, dst, R11);
        a.bind(done);
    }

    /// A conditional jump: `cmp`/`test` then the x86 condition (`jset`
    /// is `test` and "not zero").
    fn jump(&mut self, op: Op) -> bool {
        self.jump_to(op, None, false)
    }

    /// [`Gen::jump`], to label `to` instead of the jump's target when given,
    /// and when `negate` taken exactly when the jump is not.
    fn jump_to(&mut self, op: Op, to: Option<Label>, negate: bool) -> bool {
        use Op::*;
        let (c, set, d, src, w64, t) = match op {
            Jeq64I(d, v, t) => (Cond::E, false, d, Value::Imm(v), true, t),
            Jgt64I(d, v, t) => (Cond::A, false, d, Value::Imm(v), true, t),
            Jge64I(d, v, t) => (Cond::Ae, false, d, Value::Imm(v), true, t),
            Jset64I(d, v, t) => (Cond::Ne, true, d, Value::Imm(v), true, t),
            Jne64I(d, v, t) => (Cond::Ne, false, d, Value::Imm(v), true, t),
            Jsgt64I(d, v, t) => (Cond::G, false, d, Value::Imm(v), true, t),
            Jsge64I(d, v, t) => (Cond::Ge, false, d, Value::Imm(v), true, t),
            Jlt64I(d, v, t) => (Cond::B, false, d, Value::Imm(v), true, t),
            Jle64I(d, v, t) => (Cond::Be, false, d, Value::Imm(v), true, t),
            Jslt64I(d, v, t) => (Cond::L, false, d, Value::Imm(v), true, t),
            Jsle64I(d, v, t) => (Cond::Le, false, d, Value::Imm(v), true, t),
            Jeq64R(d, s, t) => (Cond::E, false, d, Value::Reg(reg(s)), true, t),
            Jgt64R(d, s, t) => (Cond::A, false, d, Value::Reg(reg(s)), true, t),
            Jge64R(d, s, t) => (Cond::Ae, false, d, Value::Reg(reg(s)), true, t),
            Jset64R(d, s, t) => (Cond::Ne, true, d, Value::Reg(reg(s)), true, t),
            Jne64R(d, s, t) => (Cond::Ne, false, d, Value::Reg(reg(s)), true, t),
            Jsgt64R(d, s, t) => (Cond::G, false, d, Value::Reg(reg(s)), true, t),
            Jsge64R(d, s, t) => (Cond::Ge, false, d, Value::Reg(reg(s)), true, t),
            Jlt64R(d, s, t) => (Cond::B, false, d, Value::Reg(reg(s)), true, t),
            Jle64R(d, s, t) => (Cond::Be, false, d, Value::Reg(reg(s)), true, t),
            Jslt64R(d, s, t) => (Cond::L, false, d, Value::Reg(reg(s)), true, t),
            Jsle64R(d, s, t) => (Cond::Le, false, d, Value::Reg(reg(s)), true, t),
            Jeq32I(d, v, t) => (Cond::E, false, d, Value::Imm(v as u64), false, t),
            Jgt32I(d, v, t) => (Cond::A, false, d, Value::Imm(v as u64), false, t),
            Jge32I(d, v, t) => (Cond::Ae, false, d, Value::Imm(v as u64), false, t),
            Jset32I(d, v, t) => (Cond::Ne, true, d, Value::Imm(v as u64), false, t),
            Jne32I(d, v, t) => (Cond::Ne, false, d, Value::Imm(v as u64), false, t),
            Jsgt32I(d, v, t) => (Cond::G, false, d, Value::Imm(v as u64), false, t),
            Jsge32I(d, v, t) => (Cond::Ge, false, d, Value::Imm(v as u64), false, t),
            Jlt32I(d, v, t) => (Cond::B, false, d, Value::Imm(v as u64), false, t),
            Jle32I(d, v, t) => (Cond::Be, false, d, Value::Imm(v as u64), false, t),
            Jslt32I(d, v, t) => (Cond::L, false, d, Value::Imm(v as u64), false, t),
            Jsle32I(d, v, t) => (Cond::Le, false, d, Value::Imm(v as u64), false, t),
            Jeq32R(d, s, t) => (Cond::E, false, d, Value::Reg(reg(s)), false, t),
            Jgt32R(d, s, t) => (Cond::A, false, d, Value::Reg(reg(s)), false, t),
            Jge32R(d, s, t) => (Cond::Ae, false, d, Value::Reg(reg(s)), false, t),
            Jset32R(d, s, t) => (Cond::Ne, true, d, Value::Reg(reg(s)), false, t),
            Jne32R(d, s, t) => (Cond::Ne, false, d, Value::Reg(reg(s)), false, t),
            Jsgt32R(d, s, t) => (Cond::G, false, d, Value::Reg(reg(s)), false, t),
            Jsge32R(d, s, t) => (Cond::Ge, false, d, Value::Reg(reg(s)), false, t),
            Jlt32R(d, s, t) => (Cond::B, false, d, Value::Reg(reg(s)), false, t),
            Jle32R(d, s, t) => (Cond::Be, false, d, Value::Reg(reg(s)), false, t),
            Jslt32R(d, s, t) => (Cond::L, false, d, Value::Reg(reg(s)), false, t),
            Jsle32R(d, s, t) => (Cond::Le, false, d, Value::Reg(reg(s)), false, t),
            Ja(t) => {
                self.a.jmp(slot(t));
                return true;
            }
            _ => return false,
        };
        let d = R64[reg(d)];
        let w = if w64 { W::B64 } else { W::B32 };
        let a = &mut self.a;
        // A 64-bit immediate is the sign-extended 32-bit one; a 32-bit
        // compare takes its 32 bits as they are.
        match (src, set) {
            (Value::Imm(v), true) => a.test_ri(w, d, v as i64 as i32),
            (Value::Imm(v), false) => a.alu_ri(Alu::Cmp, w, d, v as i64 as i32),
            (Value::Reg(s), true) => a.test_rr(w, d, R64[s]),
            (Value::Reg(s), false) => a.alu_rr(Alu::Cmp, w, d, R64[s]),
        }
        let c = if negate { c.negated() } else { c };
        a.jcc(c, to.unwrap_or_else(|| slot(t)));
        true
    }
}

/// 32-bit shift by an immediate; a count of 0 still zero-extends.
fn shift32_imm(a: &mut Asm, op: Shift, d: Reg, v: u32) {
    let n = v & 31;
    if n == 0 {
        a.mov_rr(W::B32, d, d)
    } else {
        a.shift_imm(op, W::B32, d, n as u8)
    }
}

/// Shift by a register: x86 takes the count in cl (r4's rcx), and masks it
/// to 63 or 31 as the interpreter's `wrapping_shl` does.
fn shift_reg(a: &mut Asm, op: Shift, d: Reg, s: Reg, w: W) {
    let sh = |a: &mut Asm, r: Reg| {
        a.shift_cl(op, w, r);
        if w == W::B32 {
            // A count of 0 leaves the register unwritten: zero-extend.
            a.mov_rr(W::B32, r, r)
        }
    };
    if s == RCX {
        sh(a, d)
    } else if d == RCX {
        a.mov_rr(W::B64, R11, RCX);
        a.mov_rr(W::B64, RCX, s);
        sh(a, R11);
        a.mov_rr(W::B64, RCX, R11)
    } else {
        a.mov_rr(W::B64, R11, RCX);
        a.mov_rr(W::B64, RCX, s);
        sh(a, d);
        a.mov_rr(W::B64, RCX, R11)
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
        let n = ops.len();
        let lead = leaders(&ops, Accesses::InBlocks);
        // Labels 0..=n are the slots (n: the end, never a target of a
        // validated program); about 64 bytes of code per slot is typical.
        let mut a = Asm::new(64 * n + 256, n + 1);
        let abort = a.new_label();
        let main_exit = a.new_label();
        let mut g = Gen {
            a,
            stubs: Vec::new(),
            abort,
            main_exit,
            own_stack,
            loops: Vec::new(),
            limit_classes: [false; 2],
            lookup_sites: Vec::new(),
        };
        let mut blocks: Vec<Vec<u32>> = Vec::new();
        let mut block_of = vec![u32::MAX; n];
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
        g.loops = strided_loops(&ops, &blocks);
        g.loops.truncate(MAX_LOOPS);
        g.body(&ops, &blocks, &block_of);
        let loops = std::mem::take(&mut g.loops);
        let limit_classes = g.limit_classes;
        let lookup_sites = std::mem::take(&mut g.lookup_sites);
        // A load or store that faults gives back the count of the rest of
        // its block.
        let mut after = vec![0; n];
        for block in &blocks {
            for (i, &pc) in block.iter().enumerate() {
                after[pc as usize] = (block.len() - 1 - i) as u32;
            }
        }
        let (code, mut offsets) = g.a.finish()?;
        offsets.truncate(n);
        let memory = ExecMemory::new(&code)?;
        let native = offsets
            .iter()
            .zip(&lead)
            .map(|(&off, &lead)| {
                if lead && off != u32::MAX {
                    memory.addr() + off as u64
                } else {
                    0
                }
            })
            .collect();
        Ok(JitProgram {
            memory,
            code,
            native,
            blocks,
            after,
            loops,
            limit_classes,
            lookup_sites,
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

    /// How many loops have an unchecked copy their bounds checks were
    /// hoisted out of (one-block loops whose loads and stores advance by a
    /// constant step; see the crate docs).
    pub fn strided_loops(&self) -> usize {
        self.loops.len()
    }

    /// How many of the [strided loops](JitProgram::strided_loops) only
    /// copy memory forward and so run what is left of them, once in
    /// bounds, as one copy (see the crate docs).
    pub fn copy_loops(&self) -> usize {
        self.loops.iter().filter(|l| l.copy.is_some()).count()
    }

    /// The address the machine code is mapped at.
    pub fn address(&self) -> u64 {
        self.memory.addr()
    }
}

impl Gen {
    fn body(&mut self, ops: &[Op], blocks: &[Vec<u32>], block_of: &[u32]) {
        // Prologue: save the callee-saved registers the mapping uses, keep
        // rsp 16-byte aligned, load r0..r10 from the context block.
        let epilogue = self.a.new_label();
        let a = &mut self.a;
        for r in [RBX, RBP, R12, R13, R14, R15] {
            a.push(r);
        }
        a.alu_ri(Alu::Sub, W::B64, RSP, 8);
        a.mov_rr(W::B64, R12, RDI);
        a.store(W::B64, Mem::at(R12, SAVED_RSP), RSP);
        for (i, r) in R64.iter().enumerate().take(10) {
            a.load(W::B64, *r, Mem::at(R12, REGS + 8 * i as i32));
        }
        a.load(W::B64, RBP, Mem::at(R12, FP));
        a.load(W::B64, BUDGET, Mem::at(R12, REMAINING));
        // The back edge of each strided loop, by slot.
        let mut back_edge = vec![None; ops.len()];
        for (id, lp) in self.loops.iter().enumerate() {
            if let Some(&last) = blocks[lp.block].last() {
                back_edge[last as usize] = Some(id);
            }
        }
        for (pc, &op) in ops.iter().enumerate() {
            if op == Op::LdImm64Tail {
                continue;
            }
            self.a.bind(slot(pc));
            let before = self.a.pos();
            if block_of[pc] != u32::MAX {
                let b = block_of[pc];
                let n = blocks[b as usize].len() as i32;
                let stub = self.a.new_label();
                // One read-modify-write: a borrow means fewer than n left.
                self.a.alu_ri(Alu::Sub, W::B64, BUDGET, n);
                self.a.jcc(Cond::B, stub);
                self.stubs.push(Stub::Budget {
                    label: stub,
                    block: b,
                    insns: n,
                });
            }
            match back_edge[pc] {
                Some(id) => {
                    let label = self.a.new_label();
                    self.jump_to(op, Some(label), false);
                    self.stubs.push(Stub::Loop { label, id });
                }
                None => self.op(op, pc as u32),
            }
            if self.a.pos() == before {
                self.a.nop();
            }
        }
        self.a.bind(slot(ops.len()));
        // Out-of-line paths (which may add more).
        while let Some(stub) = self.stubs.pop() {
            match stub {
                Stub::Divisor {
                    label,
                    case,
                    resume,
                } => {
                    self.a.bind(label);
                    case.emit(&mut self.a);
                    self.a.jmp(resume);
                }
                Stub::Loop { label, id } => {
                    self.a.bind(label);
                    self.strided_copy(ops, &blocks[self.loops[id].block], id);
                }
                Stub::Budget {
                    label,
                    block,
                    insns,
                } => {
                    self.a.bind(label);
                    self.exhausted_block(ops, &blocks[block as usize], insns);
                    // Undo the block's subtraction: the machine counts
                    // from what was left before it.
                    self.a.alu_ri(Alu::Add, W::B64, BUDGET, insns);
                    self.tcall_spilling(tramp_budget, block as u64, Spill::CallerSaved);
                    self.a.jmp(self.abort);
                }
                Stub::Load {
                    label,
                    pc,
                    address,
                    access,
                    disp,
                } => {
                    self.a.bind(label);
                    self.a.lea(R11, address);
                    self.tcall_spilling(tramp_load, pc as u64, Spill::CallerSaved);
                    self.a.lea(R11, Mem::at(R12, SCRATCH - disp));
                    self.a.jmp(access);
                }
                Stub::Store {
                    label,
                    pc,
                    address,
                    value,
                    resume,
                } => {
                    self.a.bind(label);
                    self.a.lea(R11, address);
                    match value {
                        Value::Reg(s) => self.a.mov_rr(W::B64, R10, R64[s]),
                        Value::Imm(v) => self.mov_imm(R10, v),
                    }
                    self.tcall_spilling(tramp_store, pc as u64, Spill::CallerSaved);
                    self.a.jmp(resume);
                }
            }
        }
        let a = &mut self.a;
        a.bind(self.main_exit);
        a.store(W::B64, Mem::at(R12, REGS), RAX);
        a.store(W::B64, Mem::at(R12, REMAINING), BUDGET);
        a.alu_rr(Alu::Xor, W::B32, RAX, RAX);
        a.load(W::B64, RSP, Mem::at(R12, SAVED_RSP));
        a.jmp(epilogue);
        a.bind(self.abort);
        a.load(W::B64, RSP, Mem::at(R12, SAVED_RSP));
        a.mov_r32_imm(RAX, 1);
        a.bind(epilogue);
        a.alu_ri(Alu::Add, W::B64, RSP, 8);
        for r in [R15, R14, R13, R12, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
    }

    /// The start of a block the budget cannot cover whole (r9 = what was
    /// left minus the block's `insns`, below 0): the interpreter would run
    /// its instructions up to the one the budget ends at, so a load or
    /// store before that one may fault first. This runs the block again up
    /// to its last load or store, leaving before each for the budget's end
    /// (in the code that follows) when it would not be reached.
    fn exhausted_block(&mut self, ops: &[Op], block: &[u32], insns: i32) {
        let Some(last) = block
            .iter()
            .rposition(|&pc| is_load_store(&ops[pc as usize]))
        else {
            return;
        };
        let exhausted = self.a.new_label();
        for (i, &pc) in block[..=last].iter().enumerate() {
            let op = ops[pc as usize];
            if is_load_store(&op) {
                // Reached when what was left (r9 + insns) exceeds i.
                self.a.alu_ri(Alu::Cmp, W::B64, BUDGET, i as i32 - insns);
                self.a.jcc(Cond::Le, exhausted);
            }
            self.op(op, pc);
        }
        self.a.bind(exhausted);
    }

    /// Where a strided loop's back edge goes when taken: unless the loop
    /// gave up in this run, ask the machine how many iterations from here
    /// stay in bounds and fit the budget (`tramp_loop`, which takes their
    /// count off the budget up front); with enough, turn the base registers
    /// into host addresses and run that many iterations of an unchecked
    /// copy of the block. Either way out turns them back and goes on at the
    /// checked code: the loop's exit (giving back the count of the
    /// iterations not run), or its head when the iterations run out (the
    /// checked head then counts and checks exactly).
    fn strided_copy(&mut self, ops: &[Op], block: &[u32], id: usize) {
        let head = slot(block[0]);
        let (&last, body) = block.split_last().expect("a loop block has its jump");
        let insns = block.len() as i32;
        let fast = self.a.new_label();
        let over = self.a.new_label();
        let gave_up = Mem::at(R12, LOOP_GAVE_UP + 8 * id as i32);
        self.a.alu_ri(Alu::Cmp, W::B64, gave_up, 0);
        self.a.jcc(Cond::Ne, head);
        self.tcall(tramp_loop, id as u64);
        // r10 = the iterations left to run unchecked.
        self.a.load(W::B64, R10, Mem::at(R12, SCRATCH));
        self.a.test_rr(W::B64, R10, R10);
        self.a.jcc(Cond::E, head);
        if self.loops[id].copy.is_some() {
            self.a
                .alu_ri(Alu::Cmp, W::B64, R10, LOOP_DONE as i64 as i32);
            self.a.jcc(Cond::E, slot(last as usize + 1));
        }
        self.translate_bases(id, Alu::Add);
        // The loop's first instruction on a 32-byte boundary, where the
        // decoders fetch from.
        while self.a.pos() % 32 != 0 {
            self.a.nop();
        }
        self.a.bind(fast);
        for &pc in body {
            let op = ops[pc as usize];
            if !self.unchecked_access(op) {
                let done = self.alu(op);
                debug_assert!(done, "strided loops hold ALU work and accesses only");
            }
        }
        self.jump_to(ops[last as usize], Some(over), true);
        self.a.alu_ri(Alu::Sub, W::B64, R10, 1);
        self.a.jcc(Cond::Ne, fast);
        self.translate_bases(id, Alu::Sub);
        self.a.jmp(head);
        // The loop is over: r10 - 1 iterations were counted and not run.
        self.a.bind(over);
        self.a.alu_ri(Alu::Sub, W::B64, R10, 1);
        self.a.imul_rri(W::B64, R10, R10, insns);
        self.a.alu_rr(Alu::Add, W::B64, BUDGET, R10);
        self.translate_bases(id, Alu::Sub);
        self.a.jmp(slot(last as usize + 1));
    }

    /// Adds (guest to host) or subtracts (back) each base register's delta.
    fn translate_bases(&mut self, id: usize, op: Alu) {
        for i in 0..self.loops[id].bases.len() {
            let b = self.loops[id].bases[i].0 as usize & 15;
            self.a
                .alu_rm(op, W::B64, R64[b], Mem::at(R12, LOOP_DELTA + 8 * b as i32));
        }
    }

    /// A load or store of a strided loop's unchecked copy, whose base
    /// register holds a host address; false for other instructions.
    fn unchecked_access(&mut self, op: Op) -> bool {
        let Some(acc) = access(&op) else {
            return false;
        };
        self.emit_access(Mem::at(R64[reg(acc.base)], acc.off as i32), acc);
        true
    }

    /// The load or store itself, at host address `m`.
    fn emit_access(&mut self, m: Mem, acc: Access) {
        let a = &mut self.a;
        match acc.kind {
            AccessKind::Load { dst, signed } => {
                let dst = R64[reg(dst)];
                match (acc.size, signed) {
                    (1, false) => a.movzx(dst, m, W::B8),
                    (2, false) => a.movzx(dst, m, W::B16),
                    (4, false) => a.load(W::B32, dst, m),
                    (8, _) => a.load(W::B64, dst, m),
                    (1, true) => a.movsx(W::B64, dst, m, W::B8),
                    (2, true) => a.movsx(W::B64, dst, m, W::B16),
                    _ => a.movsx(W::B64, dst, m, W::B32),
                }
            }
            AccessKind::Store(src) => a.store(width(acc.size as i32), m, R64[reg(src)]),
            // Narrower stores take the immediate's low bytes.
            AccessKind::StoreImm(v) => a.store_imm(width(acc.size as i32), m, v as i64 as i32),
        }
    }

    fn op(&mut self, op: Op, pc: u32) {
        use Op::*;
        if self.alu(op) || self.jump(op) {
            return;
        }
        if let Some(acc) = access(&op) {
            return self.mem(pc, acc);
        }
        let next = slot(pc as usize + 1);
        match op {
            Ldx32Ctx(d, s, off) => {
                self.a.lea(R11, Mem::at(R64[reg(s)], off as i32));
                self.tcall_spilling(tramp_load_ctx, pc as u64, spill_for(d));
            }
            Atomic(kind, fetch, dw, b, s, off) => {
                let done = self.a.new_label();
                self.inline_atomic(kind, fetch, dw, b, s, off, done);
                self.a.lea(R11, Mem::at(R64[reg(b)], off as i32));
                self.a.mov_rr(W::B64, R10, R64[reg(s)]);
                self.tcall_spilling(tramp_atomic, pc as u64, spill_for(s));
                self.a.bind(done);
            }
            LdAbs(..) => self.tcall_spilling(tramp_packet, pc as u64, Spill::CallerSaved),
            LdInd(_, s, _) => self.tcall_spilling(tramp_packet, pc as u64, spill_for(s)),
            LdMap(d, index) if (index as usize) < MAP_CACHE => {
                // A map's handle is the same for the whole run: only the
                // first load asks the machine. The next instruction is 2
                // slots on (lddw is wide).
                let r = R64[reg(d)];
                self.a
                    .load(W::B64, r, Mem::at(R12, MAP_HANDLES + 8 * index as i32));
                self.a.test_rr(W::B64, r, r);
                self.a.jcc(Cond::Ne, slot(pc as usize + 2));
                self.tcall_spilling(tramp_map_handle, pc as u64, spill_for(d));
            }
            LdMap(d, _) => self.tcall_spilling(tramp_map_handle, pc as u64, spill_for(d)),
            LdMapValue(d, ..) => self.tcall_spilling(tramp_map_value, pc as u64, spill_for(d)),
            // bpf_map_lookup_elem has an entry of its own on the machine.
            // Helpers take r1..r5 and set r0.
            Call(MAP_LOOKUP_ELEM) => {
                let miss = self.a.new_label();
                let done = self.a.new_label();
                // The budget's out-of-line copy of a block emits its calls
                // again: one site per call, whichever copy runs.
                let site = match self.lookup_sites.iter().position(|&p| p == pc) {
                    Some(site) => Some(site),
                    None if self.lookup_sites.len() < LOOKUP_SITES => {
                        self.lookup_sites.push(pc);
                        Some(self.lookup_sites.len() - 1)
                    }
                    None => None,
                };
                if let Some(site) = site {
                    self.remembered_lookup(site, miss, done);
                }
                self.a.bind(miss);
                self.tcall_spilling(tramp_map_lookup, pc as u64, Spill::CallerSaved);
                self.a.bind(done);
            }
            Call(_) => self.tcall_spilling(tramp_helper, pc as u64, Spill::CallerSaved),
            CallLocal(t) => {
                self.tcall(tramp_enter, pc as u64);
                self.native_call(Some(slot(t)));
            }
            Callx(s) => {
                self.a.mov_rr(W::B64, R11, R64[reg(s)]);
                self.tcall(tramp_callx, pc as u64);
                self.a.load(W::B64, R11, Mem::at(R12, SCRATCH));
                self.a.test_rr(W::B64, R11, R11);
                self.a.jcc(Cond::E, next);
                self.native_call(None);
            }
            CallWithCallback(_) => {
                self.tcall(tramp_callback_start, pc as u64);
                let again = self.a.new_label();
                self.a.bind(again);
                self.a.load(W::B64, R11, Mem::at(R12, SCRATCH));
                self.a.test_rr(W::B64, R11, R11);
                self.a.jcc(Cond::E, next);
                self.native_call(None);
                self.tcall(tramp_callback_returned, pc as u64);
                self.a.jmp(again);
            }
            Exit => {
                self.a.alu_ri(Alu::Cmp, W::B64, Mem::at(R12, DEPTH), 0);
                self.a.jcc(Cond::E, self.main_exit);
                self.tcall(tramp_leave, pc as u64);
                self.a.ret();
            }
            _ => {
                // Unreachable for a loaded program (LdImm64Tail is skipped);
                // end the run as the interpreter would if control got here.
                self.tcall(tramp_internal, pc as u64);
            }
        }
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
    guarded_holding(ctx, refresh, |ctx, rt| {
        // The machine may lock shared bytes the run holds.
        rt.release(ctx);
        f(ctx, rt)
    })
}

/// [`guarded`] for a load, store or atomic, which may keep held bytes: it
/// lets go of them itself before it asks the machine.
fn guarded_holding(
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

/// The bytes the load or store at `pc` moves.
fn access_size(rt: &Runtime<'_, '_>, pc: u64) -> usize {
    access(&op_at(rt, pc)).map_or(8, |a| a.size as usize)
}

extern "sysv64" fn tramp_budget(ctx: *mut JitCtx, block: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        let insns = &rt.code.blocks[block as usize];
        let pc = insns[(ctx.remaining as usize).min(insns.len() - 1)] as usize;
        ctx.remaining = 0;
        Err(rt.machine.budget_exhausted(pc))
    })
}

/// Little-endian bytes as a zero-extended value.
fn le_value(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

extern "sysv64" fn tramp_load(ctx: *mut JitCtx, pc: u64, addr: u64, _: u64) -> u64 {
    guarded_holding(ctx, false, |ctx, rt| {
        let size = access_size(rt, pc);
        if let Some(bytes) = rt.held_access(ctx, addr, size, false) {
            ctx.scratch = le_value(bytes);
            return Ok(());
        }
        rt.release(ctx);
        ctx.scratch = rt
            .machine
            .load(pc as usize, addr, size)
            .inspect_err(|_| refund(ctx, rt, pc))?;
        Ok(())
    })
}

extern "sysv64" fn tramp_store(ctx: *mut JitCtx, pc: u64, addr: u64, value: u64) -> u64 {
    guarded_holding(ctx, false, |ctx, rt| {
        let size = access_size(rt, pc);
        if let Some(bytes) = rt.held_access(ctx, addr, size, true) {
            bytes.copy_from_slice(&value.to_le_bytes()[..size]);
            return Ok(());
        }
        rt.release(ctx);
        rt.machine
            .store(pc as usize, addr, size, value)
            .inspect_err(|_| refund(ctx, rt, pc))
    })
}

/// A strided loop's back edge: how many iterations from here stay in
/// bounds and fit the budget, into `scratch` and taken off the budget (0,
/// and the loop gives up for the run, when too few), with the bases'
/// deltas.
extern "sysv64" fn tramp_loop(ctx: *mut JitCtx, id: u64, _: u64, _: u64) -> u64 {
    guarded(ctx, false, |ctx, rt| {
        let id = id as usize;
        let memory = rt.machine.memory();
        let region = |index| owned_entry(memory, index).map(|e| (e.host, e.loadable, e.storable));
        let lp = &rt.code.loops[id];
        let safe = safe_iterations(lp, &ctx.regs, region, &mut ctx.loop_delta);
        // Giving up for the rest of the run keeps a loop that does not
        // qualify (memory the run does not own, a budget nearly spent)
        // from asking at every back edge; a later pass of the loop over
        // other memory then stays checked, which costs only speed.
        let per_iteration = rt.code.blocks[lp.block].len() as u64;
        let affordable = ctx.remaining / per_iteration;
        if let Some(copy) = &lp.copy {
            if let Some(trips) = copy.trips(&ctx.regs) {
                if trips <= safe.min(affordable) && bulk_copy(ctx, lp, copy, trips) {
                    ctx.remaining -= trips * per_iteration;
                    ctx.scratch = LOOP_DONE;
                    return Ok(());
                }
            }
        }
        let run = safe.min(affordable);
        if run >= MIN_FAST_ITERATIONS {
            ctx.remaining -= run * per_iteration;
            ctx.scratch = run;
        } else {
            ctx.loop_gave_up[id] = 1;
            ctx.scratch = 0;
        }
        Ok(())
    })
}

/// What `tramp_loop` leaves in `scratch` when it ran the rest of the loop
/// itself, as one copy.
const LOOP_DONE: u64 = u64::MAX;

/// The last `trips` iterations of copy loop `lp` at once, with the
/// registers they leave: true when done, false (nothing done) when the
/// destination starts inside the source, where each iteration would read
/// what an earlier one wrote. A destination below the source (or apart
/// from it) sees what `memmove` gives: each iteration reads bytes above
/// all those written before it. `ctx.loop_delta` holds the bases' deltas
/// `safe_iterations` found for at least `trips` iterations.
fn bulk_copy(ctx: &mut JitCtx, lp: &StridedLoop, copy: &CopyIdiom, trips: u64) -> bool {
    let [load, store] = &lp.accesses[..] else {
        return false;
    };
    let host = |a: &StridedAccess| {
        let b = a.base as usize;
        ctx.regs[b]
            .wrapping_add(a.offset as u64)
            .wrapping_add(ctx.loop_delta[b])
    };
    let (from, to) = (host(load), host(store));
    // In bounds for `trips` iterations, so no sum wraps.
    let len = trips * copy.size;
    if from < to && to < from + len {
        return false;
    }
    let last = from + len - copy.size;
    // SAFETY: `safe_iterations` found every access of the next `trips`
    // iterations inside a region the run owns (a live `Vec` of the address
    // space, which nothing else borrows while the program runs), as the
    // unchecked copy of the loop would make them: loads of `len` bytes
    // from `from` (the last, of `copy.size` bytes, at `last`) and stores
    // of `len` bytes to `to`. The last load happens before the copy, which
    // may overwrite it, as in the loop it comes before the last store.
    let loaded = unsafe {
        let p = last as *const u8;
        let loaded = match (copy.size, copy.signed) {
            (1, false) => u64::from(p.read()),
            (2, false) => u64::from(p.cast::<u16>().read_unaligned()),
            (4, false) => u64::from(p.cast::<u32>().read_unaligned()),
            (1, true) => p.cast::<i8>().read() as i64 as u64,
            (2, true) => p.cast::<i16>().read_unaligned() as i64 as u64,
            (4, true) => p.cast::<i32>().read_unaligned() as i64 as u64,
            _ => p.cast::<u64>().read_unaligned(),
        };
        std::ptr::copy(from as *const u8, to as *mut u8, len as usize);
        loaded
    };
    for &(b, step) in &lp.bases {
        let r = &mut ctx.regs[b as usize];
        *r = r.wrapping_add(trips * step as u64);
    }
    let c = &mut ctx.regs[copy.counter as usize];
    *c = c.wrapping_add(trips * copy.step);
    ctx.regs[copy.value as usize] = loaded;
    true
}

/// Gives back the count of the instructions of the block of a load or
/// store at `pc` that faulted, after it (the block was counted whole).
/// In a block the budget ends in (`Gen::exhausted_block`) what is left is
/// below 0, as a wrapped u64, until this gives the rest back.
fn refund(ctx: &mut JitCtx, rt: &Runtime<'_, '_>, pc: u64) {
    ctx.remaining = ctx
        .remaining
        .wrapping_add(u64::from(rt.code.after[pc as usize]));
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
    guarded_holding(ctx, false, |ctx, rt| {
        if let Op::Atomic(kind, fetch, dw, _, s, _) = op_at(rt, pc) {
            let r0 = ctx.regs[0];
            let size = if dw { 8 } else { 4 };
            let old = match rt.held_access(ctx, addr, size, true) {
                Some(bytes) => {
                    let old = le_value(bytes);
                    if let Some(new) = atomic_value(kind, dw, old, src, r0) {
                        bytes.copy_from_slice(&new.to_le_bytes()[..size]);
                    }
                    old
                }
                None => {
                    rt.release(ctx);
                    rt.machine.atomic(pc as usize, kind, dw, addr, src, r0)?
                }
            };
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
/// machine only reads its list of maps here, so the regions need no
/// refresh and held values stay held.
extern "sysv64" fn tramp_map_handle(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded_holding(ctx, false, |ctx, rt| {
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

/// `bpf_map_lookup_elem` when the lookup cache did not have it: asks the
/// machine, then remembers the lookup at its site when the machine says
/// it may be (after the tables are brought up to date, which may empty
/// the cache).
extern "sysv64" fn tramp_map_lookup(ctx: *mut JitCtx, pc: u64, _: u64, _: u64) -> u64 {
    guarded_holding(ctx, false, |ctx, rt| {
        // The built-in lookup locks no map value: held ones stay held.
        if rt.machine.lookup_locks_values() {
            rt.release(ctx);
        }
        let (value, memo) = rt.machine.map_lookup_memo(pc as usize, args(ctx))?;
        ctx.regs[0] = value;
        rt.refresh(ctx);
        let site = rt.code.lookup_sites.iter().position(|&p| p == pc as u32);
        if let (Some(memo), Some(site)) = (memo, site) {
            ctx.remember_lookup(site, ctx.regs[1], value, &memo);
        }
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
        // The tables of the last run over this space, if they may serve.
        let kept = match machine.take_state().map(|s| s.downcast::<KeptTables>()) {
            Some(Ok(kept)) => Some(kept),
            _ if machine.keeps_state() => Some(Box::new(KeptTables {
                ctx: JitCtx::new(),
                kept: Kept::default(),
            })),
            _ => None,
        };
        match kept {
            Some(mut kept) => {
                let result = self.run_in(machine, args, &mut kept.ctx, Some(&mut kept.kept));
                machine.keep_state(kept);
                result
            }
            None => self.run_in(machine, args, &mut JitCtx::new(), None),
        }
    }
}

/// Inline tables kept from one run to the next over one address space.
struct KeptTables {
    ctx: JitCtx,
    kept: Kept,
}

/// What a run leaves of the tables for the next run over the space.
#[derive(Default)]
struct Kept {
    /// The layout the tables describe (both limit classes, the entry
    /// frame's state), when a run left them whole.
    made_at: Option<Layout>,
    /// The regions over map values the run held when it ended: a run over
    /// the same layout holds them from its start, so that a loop over the
    /// same values does not stop at each one's first access to hold it.
    hot: Vec<usize>,
}

/// An address space's layout, as the inline tables were made for it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Layout {
    version: u64,
    regions: usize,
}

impl JitProgram {
    /// Runs the code with `ctx` as its block. With `kept`, the tables are
    /// kept for the next run over the machine's space: filled with both
    /// limit classes, used as they are when they describe the space's
    /// layout, and described on return.
    fn run_in(
        &self,
        machine: &mut Machine<'_>,
        args: [u64; 5],
        ctx: &mut JitCtx,
        mut kept: Option<&mut Kept>,
    ) -> Result<Flow, RunError> {
        ctx.start(machine.remaining(), args);
        let memory = machine.memory();
        let now = Layout {
            version: memory.layout_version(),
            regions: memory.len(),
        };
        let whole = kept.as_ref().is_some_and(|k| k.made_at == Some(now));
        let mut rt = Runtime {
            machine,
            code: self,
            layout: now.version,
            regions: now.regions,
            halt: None,
            panic: None,
            held: Vec::new(),
            holding: Vec::new(),
            classes: if kept.is_some() {
                [true; 2]
            } else {
                self.limit_classes
            },
        };
        if whole {
            // Entry 0, every region's entry and the entry frame's state
            // hold, and so do the lookups remembered since the last fill:
            // the values they name are where they were, and each slot's
            // generation check tells whether its map still has them under
            // its key (the VM drops the kept state when the CPU or the
            // helpers change what a lookup gives).
            if !self.lookup_sites.is_empty() && !ctx.lookups_ready {
                ctx.forget_lookups();
            }
            if let Some(kept) = kept.as_deref() {
                for &index in &kept.hot {
                    rt.hold(ctx, index);
                }
            }
        } else {
            rt.fill(ctx);
        }
        ctx.runtime = &mut rt as *mut Runtime<'_, '_> as u64;
        // SAFETY: the mapping holds code generated by `compile` for this
        // program, whose entry (offset 0) follows this signature; it reads
        // and writes only `ctx`, its own stack and the bytes of regions the
        // run owns or holds locked (`Runtime::held`, let go before any call
        // into the machine): each access checked against the limit tables
        // (filled from the address space here, or kept from a run over the
        // same space at the same layout version, and filled again after
        // any call into Rust that moved regions), or, in a strided loop's
        // unchecked copy, for no more iterations than `tramp_loop` found to
        // stay in bounds with no call in between. It also reads the value
        // generation words of maps the lookup cache names: maps of the
        // machine's VM, which drops none while it lives, and the tables
        // are kept only in a space of that VM. It returns through its epilogue
        // on every path.
        let entry = unsafe {
            std::mem::transmute::<u64, extern "sysv64" fn(*mut JitCtx) -> u64>(self.memory.addr())
        };
        let status = entry(ctx);
        if let Some(kept) = kept.as_deref_mut() {
            kept.hot.clear();
            kept.hot.extend_from_slice(&rt.holding);
        }
        // Held bytes' entries back to the slow path, the bytes unlocked
        // before anything else may lock them.
        rt.release(ctx);
        let Runtime {
            machine,
            halt,
            panic,
            layout,
            regions,
            ..
        } = rt;
        if let Some(kept) = kept {
            // The tables describe the layout of the last fill, at depth 0
            // (a run that ended deeper left frames the VM now removes,
            // which changes the layout anyway).
            kept.made_at = (panic.is_none() && ctx.depth == 0).then_some(Layout {
                version: layout,
                regions,
            });
        }
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        machine.set_remaining(ctx.remaining);
        if status == 0 {
            return Ok(Flow::Exit(ctx.regs[0]));
        }
        match halt {
            Some(h) => h.into_result(),
            None => Err(RunError::Internal { pc: 0 }),
        }
    }

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

#[cfg(test)]
mod tests {
    //! The whole code of programs using every op with every register
    //! pair: it decodes as x86-64 to its last byte, each slot starts an
    //! instruction, and each branch lands on one.
    use super::*;
    use bpfkit_isa::{assemble, Syntax};
    use iced_x86::{Decoder, DecoderOptions, OpKind};
    use std::collections::HashSet;

    /// The source of a program with every op shape for `d` and `s`.
    fn every_op(d: u8, s: u8) -> String {
        let mut src = String::new();
        let mut line = |l: String| {
            src.push_str(&l);
            src.push('\n');
        };
        for imm in ["0", "-1", "5", "0x7fffffff", "-300"] {
            line(format!("r{d} = {imm}"));
            line(format!("w{d} = {imm}"));
            for op in ["+=", "-=", "*=", "/=", "%=", "s/=", "s%=", "|=", "&=", "^="] {
                line(format!("r{d} {op} {imm}"));
                line(format!("w{d} {op} {imm}"));
            }
            for op in [
                "==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&",
            ] {
                line(format!("if r{d} {op} {imm} goto +0"));
                line(format!("if w{d} {op} {imm} goto +0"));
            }
        }
        line(format!("r{d} = 0x1122334455667788 ll"));
        for n in ["0", "1", "31", "63"] {
            for op in ["<<=", ">>=", "s>>="] {
                line(format!("r{d} {op} {n}"));
                if n != "63" {
                    line(format!("w{d} {op} {n}"));
                }
            }
        }
        for op in [
            "+=", "-=", "*=", "/=", "%=", "s/=", "s%=", "|=", "&=", "^=", "<<=", ">>=", "s>>=",
        ] {
            line(format!("r{d} {op} r{s}"));
            line(format!("w{d} {op} w{s}"));
        }
        line(format!("r{d} = r{s}"));
        line(format!("w{d} = w{s}"));
        for op in [
            "==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&",
        ] {
            line(format!("if r{d} {op} r{s} goto +0"));
            line(format!("if w{d} {op} w{s} goto -1"));
        }
        line(format!("r{d} = -r{d}"));
        line(format!("w{d} = -w{d}"));
        for e in [
            "be16", "be32", "be64", "le16", "le32", "le64", "bswap16", "bswap32", "bswap64",
        ] {
            line(format!("r{d} = {e} r{d}"));
        }
        for sx in ["s8", "s16", "s32"] {
            line(format!("r{d} = ({sx})r{s}"));
        }
        line(format!("w{d} = (s8)w{s}"));
        line(format!("w{d} = (s16)w{s}"));
        for off in ["0", "-8", "300", "-512"] {
            for t in ["u8", "u16", "u32", "u64", "s8", "s16", "s32"] {
                line(format!("r{d} = *({t} *)(r{s} + {off})"));
                line(format!("r{d} = *({t} *)(r10 + {off})"));
            }
            for t in ["u8", "u16", "u32", "u64"] {
                line(format!("*({t} *)(r{d} + {off}) = r{s}"));
                line(format!("*({t} *)(r10 + {off}) = r{s}"));
                line(format!("*({t} *)(r{d} + {off}) = -7"));
            }
        }
        line(format!("lock *(u64 *)(r{d} + 8) += r{s}"));
        line("call 1".into());
        line("call 6".into());
        line("call sub".into());
        line("exit".into());
        line("sub:".into());
        line("r0 = 1".into());
        line("exit".into());
        src
    }

    #[test]
    fn code_decodes_whole_and_slots_and_branches_land_on_instructions() {
        for d in 0..10 {
            for s in 0..11 {
                let src = every_op(d, s);
                let p = Program::new(assemble(&src, Syntax::Llvm).unwrap()).unwrap();
                let jit = JitProgram::compile(&p).unwrap();
                let code = jit.code();
                let mut starts = HashSet::new();
                let mut targets = Vec::new();
                let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
                while decoder.can_decode() {
                    let ip = decoder.ip();
                    let insn = decoder.decode();
                    assert!(!insn.is_invalid(), "r{d}, r{s}: invalid code at {ip:#x}");
                    starts.insert(ip);
                    if insn.op_count() == 1 && insn.op0_kind() == OpKind::NearBranch64 {
                        targets.push((ip, insn.near_branch_target()));
                    }
                }
                assert_eq!(decoder.ip(), code.len() as u64);
                for (slot, off) in jit.slot_offsets().enumerate() {
                    if let Some(off) = off {
                        assert!(starts.contains(&(off as u64)), "slot {slot}: {off:#x}");
                    }
                }
                assert!(!targets.is_empty());
                for (ip, t) in targets {
                    assert!(
                        starts.contains(&t),
                        "r{d}, r{s}: branch at {ip:#x} to {t:#x}"
                    );
                }
            }
        }
    }
}
