//! The abstract machine state: registers, stack slots, frames and acquired
//! references (the kernel's `bpf_reg_state`, `bpf_stack_state`,
//! `bpf_func_state` and `bpf_verifier_state`), and the subsumption test that
//! state pruning uses (`states_equal`, `regsafe`, `stacksafe`).

use crate::liveness::Live;
use crate::scalar::Scalar;
use core::fmt;

/// Bytes of stack per frame (`MAX_BPF_STACK`).
pub const STACK_SIZE: usize = 512;
/// Deepest call chain (`MAX_CALL_FRAMES`).
pub const MAX_CALL_FRAMES: usize = 8;

/// What a register holds (`enum bpf_reg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written (`NOT_INIT`).
    NotInit,
    /// A number (`SCALAR_VALUE`).
    Scalar,
    /// The program's context (`PTR_TO_CTX`).
    Ctx,
    /// A stack frame; `aux` is the frame number (`PTR_TO_STACK`).
    Stack,
    /// A value of map `aux` (`PTR_TO_MAP_VALUE`).
    MapValue,
    /// A key of map `aux`, in callbacks (`PTR_TO_MAP_KEY`).
    MapKey,
    /// Map `aux` itself (`CONST_PTR_TO_MAP`).
    ConstMapPtr,
    /// Packet data (`PTR_TO_PACKET`).
    Packet,
    /// Packet metadata (`PTR_TO_PACKET_META`).
    PacketMeta,
    /// One past the packet (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// `aux` bytes of memory, e.g. from `bpf_ringbuf_reserve` (`PTR_TO_MEM`).
    Mem,
    /// A kernel object (`PTR_TO_BTF_ID`).
    BtfId,
    /// A BPF function starting at slot `aux` (`PTR_TO_FUNC`).
    Func,
}

impl RegType {
    /// The kernel's name for it (`reg_type_str`).
    pub fn name(self, maybe_null: bool) -> &'static str {
        match (self, maybe_null) {
            (RegType::NotInit, _) => "?",
            (RegType::Scalar, _) => "scalar",
            (RegType::Ctx, _) => "ctx",
            (RegType::Stack, _) => "fp",
            (RegType::MapValue, false) => "map_value",
            (RegType::MapValue, true) => "map_value_or_null",
            (RegType::MapKey, _) => "map_key",
            (RegType::ConstMapPtr, _) => "map_ptr",
            (RegType::Packet, _) => "pkt",
            (RegType::PacketMeta, _) => "pkt_meta",
            (RegType::PacketEnd, _) => "pkt_end",
            (RegType::Mem, false) => "mem",
            (RegType::Mem, true) => "mem_or_null",
            (RegType::BtfId, false) => "ptr_",
            (RegType::BtfId, true) => "ptr_or_null_",
            (RegType::Func, _) => "func",
        }
    }

    /// Whether it is a pointer.
    pub fn is_pointer(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }
}

/// One register's abstract value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegState {
    /// What it holds.
    pub ty: RegType,
    /// May be NULL (`PTR_MAYBE_NULL`).
    pub maybe_null: bool,
    /// Fixed offset of a pointer.
    pub off: i32,
    /// A scalar's value, or a pointer's variable offset.
    pub var: Scalar,
    /// Links registers holding the same value: copies of a scalar, or of a
    /// pointer that may be NULL, or packet pointers with the same variable offset.
    pub id: u32,
    /// The reference this pointer holds (`ref_obj_id`), 0 for none.
    pub ref_obj_id: u32,
    /// For packet pointers: bytes past `off` known to be in the packet.
    pub range: i32,
    /// Type-specific: map index, memory size, frame number, function slot.
    pub aux: u32,
    /// The instruction that produced this value (a helper call), for messages.
    pub origin: u32,
    /// A kernel object pointer the kernel trusts to be valid
    /// (`PTR_TRUSTED`): a `tp_btf` argument, `bpf_get_current_task_btf`'s
    /// result or an acquired reference, not a pointer read from an object.
    pub trusted: bool,
}

impl RegState {
    /// An unwritten register.
    pub const NOT_INIT: RegState = RegState {
        ty: RegType::NotInit,
        maybe_null: false,
        off: 0,
        var: Scalar::UNKNOWN,
        id: 0,
        ref_obj_id: 0,
        range: 0,
        aux: 0,
        origin: 0,
        trusted: false,
    };

    /// A scalar with these values.
    pub fn scalar(var: Scalar) -> RegState {
        RegState {
            ty: RegType::Scalar,
            var,
            ..RegState::NOT_INIT
        }
    }

    /// An unknown scalar.
    pub fn unknown() -> RegState {
        RegState::scalar(Scalar::UNKNOWN)
    }

    /// A pointer of type `ty` at fixed offset 0.
    pub fn pointer(ty: RegType, aux: u32) -> RegState {
        RegState {
            ty,
            var: Scalar::constant(0),
            aux,
            ..RegState::NOT_INIT
        }
    }

    /// Whether it holds a pointer.
    pub fn is_pointer(&self) -> bool {
        self.ty.is_pointer()
    }

    /// Whether it is a scalar of one known value.
    pub fn is_const_scalar(&self) -> bool {
        self.ty == RegType::Scalar && self.var.as_const().is_some()
    }

    /// Whether it is a scalar known to be `v`.
    pub fn is_const(&self, v: u64) -> bool {
        self.ty == RegType::Scalar && self.var.as_const() == Some(v)
    }
}

impl fmt::Debug for RegState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            RegType::NotInit => write!(f, "?"),
            RegType::Scalar => {
                if let Some(c) = self.var.as_const() {
                    write!(f, "{}", c as i64)
                } else {
                    write!(f, "scalar({:?})", self.var)
                }
            }
            ty => {
                write!(f, "{}(", ty.name(self.maybe_null))?;
                let mut sep = "";
                if self.off != 0 {
                    write!(f, "off={}", self.off)?;
                    sep = ",";
                }
                if self.var.as_const() != Some(0) {
                    write!(f, "{sep}var={:?}", self.var)?;
                    sep = ",";
                }
                if matches!(ty, RegType::Packet | RegType::PacketMeta) {
                    write!(f, "{sep}r={}", self.range)?;
                    sep = ",";
                }
                if ty == RegType::Mem {
                    write!(f, "{sep}sz={}", self.aux)?;
                    sep = ",";
                }
                if self.id != 0 {
                    write!(f, "{sep}id={}", self.id)?;
                    sep = ",";
                }
                if self.ref_obj_id != 0 {
                    write!(f, "{sep}ref_obj_id={}", self.ref_obj_id)?;
                    sep = ",";
                }
                if self.trusted {
                    write!(f, "{sep}trusted")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// What one stack byte holds (`STACK_INVALID`, `STACK_MISC`, `STACK_ZERO`, `STACK_SPILL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotByte {
    /// Never written.
    Invalid,
    /// Some unknown data.
    Misc,
    /// Zero.
    Zero,
    /// Part of a spilled register.
    Spill,
}

/// One 8-byte stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackSlot {
    /// Per byte, from the lowest address.
    pub bytes: [SlotByte; 8],
    /// The spilled register, when the bytes say so.
    pub spill: RegState,
}

impl StackSlot {
    /// A slot never written.
    pub const EMPTY: StackSlot = StackSlot {
        bytes: [SlotByte::Invalid; 8],
        spill: RegState::NOT_INIT,
    };
}

/// One function's frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// r0 to r10.
    pub regs: [RegState; 11],
    /// Slot `i` holds the bytes from `-8(i+1)` to `-8i - 1` off the frame
    /// pointer. Only as many slots as the function has written so far: a
    /// slot past the end is unwritten. States are cloned at every branch
    /// and checkpoint, and most functions use a small part of their 512
    /// bytes, so a full 64-slot stack would make each clone and each
    /// comparison several times dearer.
    stack: Vec<StackSlot>,
    /// Slot to return to in the caller (0 for the main frame).
    pub ret_pc: usize,
    /// Slot of the call instruction, for `same_callsites`.
    pub callsite: usize,
    /// Index of the subprogram it runs.
    pub subprog: usize,
    /// It runs a `bpf_loop` callback (return value must be 0 or 1).
    pub callback: bool,
    /// For callbacks: r1 to r5 at entry, given again to every iteration.
    pub entry_args: [RegState; 5],
}

/// Frames are equal when they hold the same; how deep each one's stack
/// has grown does not matter.
impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.regs == other.regs
            && (0..self.stack.len().max(other.stack.len())).all(|i| self.slot(i) == other.slot(i))
            && self.ret_pc == other.ret_pc
            && self.callsite == other.callsite
            && self.subprog == other.subprog
            && self.callback == other.callback
            && self.entry_args == other.entry_args
    }
}

impl Eq for Frame {}

impl Frame {
    /// A frame with every register and stack byte unwritten, r10 set.
    pub fn new(frameno: u32, subprog: usize) -> Frame {
        let mut regs = [RegState::NOT_INIT; 11];
        regs[10] = RegState::pointer(RegType::Stack, frameno);
        Frame {
            regs,
            stack: Vec::new(),
            ret_pc: 0,
            callsite: 0,
            subprog,
            callback: false,
            entry_args: [RegState::NOT_INIT; 5],
        }
    }

    /// The byte at `off` below the frame pointer (`off` in `[-512, -1]`).
    pub fn byte(&self, off: i64) -> (usize, usize) {
        let slot = (-off - 1) / 8;
        (slot as usize, (off + 8 * (slot + 1)) as usize)
    }

    /// Stack slot `i` (see [`Frame::slots`]); unwritten past the used depth.
    pub fn slot(&self, i: usize) -> &StackSlot {
        self.stack.get(i).unwrap_or(&StackSlot::EMPTY)
    }

    /// Stack slot `i`, mutably, growing the used depth to reach it.
    pub fn slot_mut(&mut self, i: usize) -> &mut StackSlot {
        if i >= self.stack.len() {
            self.stack.resize(i + 1, StackSlot::EMPTY);
        }
        &mut self.stack[i]
    }

    /// The slots written so far, from the frame pointer down: slot `i`
    /// holds the bytes from `-8(i+1)` to `-8i - 1`.
    pub fn slots(&self) -> &[StackSlot] {
        &self.stack
    }

    /// The slots written so far, mutably.
    pub fn slots_mut(&mut self) -> &mut [StackSlot] {
        &mut self.stack
    }
}

/// The whole abstract machine state at one instruction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Call frames, innermost last.
    pub frames: Vec<Frame>,
    /// Acquired references: id and the slot of the instruction that acquired it.
    pub refs: Vec<(u32, usize)>,
    /// Inside a `bpf_rcu_read_lock` section (`active_rcu_lock`): the slot
    /// of the lock call.
    pub rcu_lock: Option<usize>,
}

impl State {
    /// The innermost frame.
    pub fn cur(&self) -> &Frame {
        self.frames.last().expect("a state has a frame")
    }

    /// The innermost frame, mutably.
    pub fn cur_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a state has a frame")
    }

    /// Every register and spilled register of every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut RegState)) {
        for fr in &mut self.frames {
            for r in fr.regs.iter_mut() {
                f(r);
            }
            for s in fr.stack.iter_mut() {
                if s.bytes.contains(&SlotByte::Spill) {
                    f(&mut s.spill);
                }
            }
        }
    }
}

/// Consistent renaming of ids between an old and a new state (`check_ids`).
#[derive(Default)]
pub struct IdMap(Vec<(u32, u32)>);

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 {
            return cur == 0;
        }
        if cur == 0 {
            return false;
        }
        for &(o, c) in &self.0 {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.0.push((old, cur));
        true
    }
}

/// Whether every concrete state `cur` stands for is one `old` stands for,
/// so a safe `old` proves `cur` safe (`regsafe`).
pub fn regsafe(old: &RegState, cur: &RegState, ids: &mut IdMap) -> bool {
    if old.ty == RegType::NotInit {
        return true;
    }
    if old.ty != cur.ty || old.maybe_null != cur.maybe_null {
        return false;
    }
    match old.ty {
        RegType::Scalar => old.var.contains(&cur.var) && (old.id == 0 || ids.check(old.id, cur.id)),
        _ => {
            old.off == cur.off
                && old.aux == cur.aux
                && (!old.trusted || cur.trusted)
                && old.var.contains(&cur.var)
                && old.range <= cur.range
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
    }
}

fn spilled_scalar_zero(s: &StackSlot) -> bool {
    s.bytes.iter().all(|b| *b == SlotByte::Zero)
        || s.bytes.iter().all(|b| *b == SlotByte::Spill) && s.spill.is_const(0)
}

/// `stacksafe`, over the slots `live` says may be read (the kernel skips
/// slots without `REG_LIVE_READ` the same way).
fn stacksafe(old: &Frame, cur: &Frame, ids: &mut IdMap, uninit_ok: bool, live: u64) -> bool {
    // Past old's depth every byte of old is unwritten, which stands for
    // anything.
    for (i, o) in old.stack.iter().enumerate() {
        if !crate::liveness::slot_may_be_read(live, i) {
            continue;
        }
        let c = cur.slot(i);
        let o_spill = o.bytes.iter().all(|b| *b == SlotByte::Spill);
        // Equal data needs no more; an equal spill still goes through
        // `regsafe`, whose id map must see it (a spill linked to a
        // register in one state must be linked to it in the other).
        if !o_spill
            && o.bytes == c.bytes
            && (!o.bytes.contains(&SlotByte::Spill) || o.spill == c.spill)
        {
            continue;
        }
        if o_spill {
            let c_spill = c.bytes.iter().all(|b| *b == SlotByte::Spill);
            if c_spill {
                if !regsafe(&o.spill, &c.spill, ids) {
                    return false;
                }
                continue;
            }
            if o.spill.ty == RegType::Scalar && spilled_scalar_zero(c) {
                if !o.spill.var.contains(&Scalar::constant(0)) {
                    return false;
                }
                continue;
            }
            if o.spill.ty == RegType::Scalar && o.spill.var == Scalar::UNKNOWN && o.spill.id == 0 {
                let all_data = c
                    .bytes
                    .iter()
                    .all(|b| matches!(b, SlotByte::Misc | SlotByte::Zero));
                if all_data {
                    continue;
                }
            }
            return false;
        }
        for i in 0..8 {
            let ok = match o.bytes[i] {
                SlotByte::Invalid => true,
                SlotByte::Misc => match c.bytes[i] {
                    SlotByte::Misc | SlotByte::Zero => true,
                    SlotByte::Invalid => uninit_ok,
                    SlotByte::Spill => c.spill.ty == RegType::Scalar,
                },
                SlotByte::Zero => c.bytes[i] == SlotByte::Zero || spilled_scalar_zero(c),
                SlotByte::Spill => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// Five bits per register of the innermost frame, r0 to r9, and per stack
/// slot 0 to 11 of that frame, that an old state's `subsumes` needs the
/// new state to match: a cheap test that turns away most states before
/// the full comparison. At a busy instruction most remembered states fail
/// to prune a new one, and they fail on a register of another type or
/// offset, or on a different constant in a register or a spill, which
/// these bits see.
#[derive(Clone, Copy, Debug)]
pub struct Fingerprint {
    mask: u64,
    bits: u64,
    stack_mask: u64,
    stack_bits: u64,
}

/// The bits of a state's innermost frame: its registers and its first
/// stack slots, to test with [`Fingerprint::may_subsume`].
#[derive(Clone, Copy, Debug)]
pub struct StateBits {
    regs: u64,
    /// Computed when a fingerprint first needs them: most are turned away
    /// by the registers.
    stack: Option<u64>,
}

/// Stack slots the fingerprint covers (the 96 bytes below the frame pointer).
const FINGERPRINTED_SLOTS: usize = 12;

/// Five bits standing for what `regsafe` compares exactly: a pointer's
/// type, nullness, fixed offset and `aux`; a scalar's constant value.
fn reg_bits(r: &RegState) -> u64 {
    let x = if r.ty == RegType::Scalar {
        // Any non-constant scalar gets the same bits.
        r.var
            .as_const()
            .map_or(0x5a5a_5a5a_5a5a_5a5a, |c| c ^ 0x1234_5678)
    } else {
        (r.ty as u64)
            | (r.maybe_null as u64) << 5
            | (r.off as u32 as u64) << 8
            | (r.aux as u64) << 40
    };
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 59
}

/// A slot's bits: a spill's as its register's, and all-zero bytes as a
/// spilled 0 (`stacksafe` lets one stand for the other).
fn slot_bits(slot: &StackSlot) -> u64 {
    if slot.bytes.iter().all(|b| *b == SlotByte::Spill) {
        reg_bits(&slot.spill)
    } else if slot.bytes.iter().all(|b| *b == SlotByte::Zero) {
        reg_bits(&RegState::scalar(Scalar::constant(0)))
    } else {
        // Data: like a scalar that is not a constant.
        reg_bits(&RegState::unknown())
    }
}

impl Fingerprint {
    /// What `old`, as a remembered state at an instruction with liveness
    /// `live`, needs a state it subsumes to match: its live pointers, its
    /// live precise scalars that are constants (a constant range contains
    /// only itself), and its spilled pointers and constants (`stacksafe`
    /// compares spills with `regsafe`, every one as precise).
    pub fn of_old(old: &State, live: &Live) -> Fingerprint {
        let mut f = Fingerprint {
            mask: 0,
            bits: 0,
            stack_mask: 0,
            stack_bits: 0,
        };
        let Some(frame) = old.frames.last() else {
            return f;
        };
        for (r, reg) in frame.regs.iter().enumerate().take(10) {
            let exact = reg.is_pointer() || live.precise.contains(r) && reg.is_const_scalar();
            if live.read.contains(r) && exact {
                f.mask |= 0x1f << (5 * r);
                f.bits |= reg_bits(reg) << (5 * r);
            }
        }
        for (i, slot) in frame.slots().iter().enumerate().take(FINGERPRINTED_SLOTS) {
            let spill = slot.bytes.iter().all(|b| *b == SlotByte::Spill);
            if live.stack_slot(i)
                && spill
                && (slot.spill.is_pointer() || slot.spill.is_const_scalar())
            {
                f.stack_mask |= 0x1f << (5 * i);
                f.stack_bits |= slot_bits(slot) << (5 * i);
            }
        }
        f
    }

    /// The register bits of `cur`'s innermost frame (its stack's come
    /// when [`Fingerprint::may_subsume`] needs them).
    pub fn bits_of(cur: &State) -> StateBits {
        let regs = cur.frames.last().map_or(0, |frame| {
            frame
                .regs
                .iter()
                .take(10)
                .enumerate()
                .fold(0, |acc, (r, reg)| acc | reg_bits(reg) << (5 * r))
        });
        StateBits { regs, stack: None }
    }

    /// False when `cur`, with bits `bits` from [`Fingerprint::bits_of`],
    /// cannot be subsumed by the state this fingerprint is of; true says
    /// only "maybe".
    pub fn may_subsume(&self, bits: &mut StateBits, cur: &State) -> bool {
        if bits.regs & self.mask != self.bits {
            return false;
        }
        if self.stack_mask == 0 {
            return true;
        }
        let stack = *bits.stack.get_or_insert_with(|| {
            cur.frames.last().map_or(0, |frame| {
                (0..FINGERPRINTED_SLOTS).fold(0, |acc, i| acc | slot_bits(frame.slot(i)) << (5 * i))
            })
        });
        stack & self.stack_mask == self.stack_bits
    }
}

/// `states_equal` in its pruning form: `old` subsumes `cur`. `live` says
/// which registers of the innermost frame matter at this instruction
/// (see [`crate::liveness`]): a dead one may hold anything, and an
/// imprecise scalar any scalar, in either state.
pub fn subsumes(old: &State, cur: &State, uninit_ok: bool, live: &Live) -> bool {
    if old.frames.len() != cur.frames.len()
        || old.refs.len() != cur.refs.len()
        || old.rcu_lock.is_some() != cur.rcu_lock.is_some()
    {
        return false;
    }
    let mut ids = IdMap::default();
    let innermost = old.frames.len() - 1;
    // Registers first, innermost frame first: they differ far more often
    // than the stacks, which cost the most to compare.
    for (depth, (o, c)) in old.frames.iter().zip(&cur.frames).enumerate().rev() {
        if o.callsite != c.callsite || o.ret_pc != c.ret_pc {
            return false;
        }
        let live = if depth == innermost { *live } else { Live::ALL };
        for (r, (ro, rc)) in o.regs.iter().zip(&c.regs).enumerate() {
            if !live.read.contains(r) {
                continue;
            }
            let imprecise =
                !live.precise.contains(r) && ro.ty == RegType::Scalar && rc.ty == RegType::Scalar;
            if !imprecise && !regsafe(ro, rc, &mut ids) {
                return false;
            }
        }
    }
    for (depth, (o, c)) in old.frames.iter().zip(&cur.frames).enumerate().rev() {
        let live = if depth == innermost {
            live.stack
        } else {
            u64::MAX
        };
        if !stacksafe(o, c, &mut ids, uninit_ok, live) {
            return false;
        }
    }
    old.refs
        .iter()
        .zip(&cur.refs)
        .all(|(o, c)| ids.check(o.0, c.0))
}

/// The same values, ignoring how ids are numbered: a loop that comes back to
/// such a state never ends (the kernel's `EXACT` comparison).
pub fn same_values(old: &State, cur: &State) -> bool {
    if old.frames.len() != cur.frames.len()
        || old.refs.len() != cur.refs.len()
        || old.rcu_lock.is_some() != cur.rcu_lock.is_some()
    {
        return false;
    }
    let norm = |r: &RegState| RegState {
        id: 0,
        ref_obj_id: 0,
        origin: 0,
        ..*r
    };
    for (o, c) in old.frames.iter().zip(&cur.frames) {
        if o.callsite != c.callsite {
            return false;
        }
        if o.regs.iter().zip(&c.regs).any(|(a, b)| norm(a) != norm(b)) {
            return false;
        }
        for i in 0..o.stack.len().max(c.stack.len()) {
            let (a, b) = (o.slot(i), c.slot(i));
            if a.bytes != b.bytes
                || a.bytes.contains(&SlotByte::Spill) && norm(&a.spill) != norm(&b.spill)
            {
                return false;
            }
        }
    }
    true
}
