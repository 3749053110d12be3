//! A classic BPF interpreter with the kernel's semantics.
//!
//! [`Filter::new`] validates a program as the kernel's `bpf_check_classic`
//! and `check_load_and_stores` (net/core/filter.c) do, and [`Filter::run`]
//! runs it over a packet as the kernel's classic filters run on an skb: an
//! out-of-bounds load ends the program with 0 (the packet is rejected), and
//! so does a division or modulo by an X of zero; `M[]` has 16 words. Loads
//! at `SKF_AD_OFF + n` read the Linux extensions from a [`Metadata`].
//!
//! [`Filter::libpcap`] takes libpcap's userland machine instead
//! ([`Semantics::Libpcap`]), which is what `pcap_offline_filter` and
//! libpcap's tests run: it is the only one that runs the backward jumps
//! libpcap compiles `protochain` into.

use bpfkit_isa::cbpf::{AluOp, Insn, JmpCond, RetVal, Size, Src};
use std::fmt;

/// The largest classic program the kernel takes (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// Words of scratch memory (`BPF_MEMWORDS`).
pub const MEM_WORDS: u32 = 16;
/// Where the Linux ancillary data starts (`SKF_AD_OFF`, -0x1000 as a u32).
pub const SKF_AD_OFF: u32 = 0xffff_f000;

/// The largest program libpcap's userland interpreter takes (its
/// `BPF_MAXINSNS` in bpf_filter.c).
pub const LIBPCAP_MAX_INSNS: usize = 3_060_000;
/// How many backward jumps a [`Semantics::Libpcap`] run makes for one packet
/// before it rejects the packet. libpcap's interpreter (at the commit the
/// test data comes from) makes any number, so a program can loop forever;
/// this bound is more than `protochain` makes on the largest snapshot
/// (each pass skips a header of at least 8 of its 262,144 bytes), and
/// libpcap's own test of a 100-header chain needs more than the 64 that
/// some later versions allow.
pub const LIBPCAP_MAX_BACKWARD_JUMPS: u32 = 1 << 16;

/// Whose classic machine runs a program. The two differ only where the
/// kernel refuses or libpcap never emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// The kernel's: bpf_check_classic and check_load_and_stores validate
    /// (forward jumps only, `M[k]` written before it is read), and the
    /// program runs as sk_run_filter on an skb, Linux extensions included.
    #[default]
    Kernel,
    /// libpcap's userland bpf_filter.c (pcapint_validate_filter and
    /// pcapint_filter, as `pcap_offline_filter` runs them):
    /// - `ja k` takes `k` as signed, so it may jump back (libpcap compiles
    ///   `protochain` into such a loop); a jump to itself is refused, and
    ///   after [`LIBPCAP_MAX_BACKWARD_JUMPS`] backward jumps bpfkit rejects
    ///   the packet;
    /// - a shift by an X of 32 or more gives 0;
    /// - `ld [x + k]` whose sum overflows 32 bits rejects the packet;
    /// - there are no Linux extensions (offline, libpcap passes no
    ///   auxiliary data), so loads at `SKF_AD_OFF` are out of bounds;
    /// - `M[]` starts zeroed and may be read before it is written.
    Libpcap,
}

/// The Linux extensions (`SKF_AD_*`): loads at `SKF_AD_OFF + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ancillary {
    /// `skb->protocol` in host order (`SKF_AD_PROTOCOL`).
    Protocol,
    /// `skb->pkt_type` (`SKF_AD_PKTTYPE`).
    PktType,
    /// `skb->dev->ifindex` (`SKF_AD_IFINDEX`).
    Ifindex,
    /// Netlink attribute search (`SKF_AD_NLATTR`).
    NlAttr,
    /// Nested netlink attribute search (`SKF_AD_NLATTR_NEST`).
    NlAttrNest,
    /// `skb->mark` (`SKF_AD_MARK`).
    Mark,
    /// `skb->queue_mapping` (`SKF_AD_QUEUE`).
    Queue,
    /// `skb->dev->type`, the ARPHRD_* hardware type (`SKF_AD_HATYPE`).
    HaType,
    /// `skb->hash` (`SKF_AD_RXHASH`).
    RxHash,
    /// The CPU the filter runs on (`SKF_AD_CPU`).
    Cpu,
    /// `A ^= X` (`SKF_AD_ALU_XOR_X`).
    AluXorX,
    /// The VLAN TCI (`SKF_AD_VLAN_TAG`).
    VlanTag,
    /// 1 if the skb carries a VLAN tag out of band (`SKF_AD_VLAN_TAG_PRESENT`).
    VlanTagPresent,
    /// The payload offset (`SKF_AD_PAY_OFFSET`).
    PayOffset,
    /// A random number (`SKF_AD_RANDOM`).
    Random,
    /// The VLAN protocol (TPID) in host order (`SKF_AD_VLAN_TPID`).
    VlanTpid,
}

impl Ancillary {
    /// The extension a load at `k` reads, if `k` is one the kernel knows
    /// (bpf_anc_helper in net/core/filter.c).
    pub fn from_offset(k: u32) -> Option<Ancillary> {
        use Ancillary::*;
        if k < SKF_AD_OFF {
            return None;
        }
        Some(match k - SKF_AD_OFF {
            0 => Protocol,
            4 => PktType,
            8 => Ifindex,
            12 => NlAttr,
            16 => NlAttrNest,
            20 => Mark,
            24 => Queue,
            28 => HaType,
            32 => RxHash,
            36 => Cpu,
            40 => AluXorX,
            44 => VlanTag,
            48 => VlanTagPresent,
            52 => PayOffset,
            56 => Random,
            60 => VlanTpid,
            _ => return None,
        })
    }
}

/// What the Linux extensions read about a packet: the skb's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Metadata {
    /// `skb->protocol` in host order (the EtherType, e.g. 0x0800).
    pub protocol: u16,
    /// `skb->pkt_type` (PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4).
    pub pkt_type: u32,
    /// The device's ifindex.
    pub ifindex: u32,
    /// `skb->mark`.
    pub mark: u32,
    /// `skb->queue_mapping`.
    pub queue: u32,
    /// The device's ARPHRD_* type.
    pub hatype: u32,
    /// `skb->hash`.
    pub rxhash: u32,
    /// The CPU.
    pub cpu: u32,
    /// The VLAN TCI, when [`Metadata::vlan_present`].
    pub vlan_tci: u16,
    /// Whether the skb carries a VLAN tag out of band.
    pub vlan_present: bool,
    /// The VLAN protocol in host order (0x8100, 0x88a8).
    pub vlan_tpid: u16,
    /// What `SKF_AD_RANDOM` yields.
    pub random: u32,
    /// What `SKF_AD_PAY_OFFSET` yields (the kernel's skb_get_poff).
    pub pay_offset: u32,
}

/// A packet as a classic filter sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// The captured bytes, from the link-layer header.
    pub data: &'a [u8],
    /// The length on the wire (`ld #pktlen`), at least `data.len()` for a
    /// truncated capture.
    pub wire_len: u32,
    /// The skb fields the Linux extensions read.
    pub meta: Metadata,
}

impl<'a> Packet<'a> {
    /// A whole packet (wire length = captured length) with zeroed metadata.
    pub fn new(data: &'a [u8]) -> Packet<'a> {
        Packet {
            data,
            wire_len: data.len() as u32,
            meta: Metadata::default(),
        }
    }
}

/// Why the kernel would refuse a classic program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidateErrorKind {
    /// No instructions.
    Empty,
    /// More than [`MAX_INSNS`] instructions.
    TooLong(usize),
    /// `div #0` or `mod #0`.
    DivisionByZero,
    /// A shift by a constant of 32 or more.
    ShiftTooFar(u32),
    /// `M[k]` with `k >= 16`.
    MemoryIndex(u32),
    /// `ja -1`, which loops forever (libpcap refuses it).
    JumpToItself,
    /// A `ja` back to an earlier instruction, which only libpcap's machine
    /// runs ([`Semantics::Libpcap`]).
    JumpsBack {
        /// The instruction index the jump would reach.
        target: usize,
    },
    /// A jump past the last instruction.
    JumpOutOfRange {
        /// The instruction index the jump would reach.
        target: usize,
    },
    /// A load at an `SKF_AD_OFF` offset the kernel does not know.
    UnknownAncillary(u32),
    /// An instruction the kernel does not accept (`ret x`).
    NotAllowed(&'static str),
    /// The last instruction is not `ret #k` or `ret a`.
    NoFinalReturn,
    /// `M[k]` read where some path has not written it.
    UninitializedMemory(u32),
    /// A seccomp load outside `seccomp_data` or not 4-byte aligned.
    SeccompLoad(u32),
}

/// A classic program the kernel would refuse, naming the instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateError {
    /// Index of the offending instruction.
    pub index: usize,
    /// What is wrong.
    pub kind: ValidateErrorKind,
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ValidateErrorKind::*;
        write!(f, "classic BPF instruction {}: ", self.index)?;
        match &self.kind {
            Empty => write!(f, "the program is empty"),
            TooLong(n) => write!(f, "{n} instructions, more than the {MAX_INSNS} allowed"),
            DivisionByZero => write!(f, "division by the constant 0"),
            ShiftTooFar(k) => write!(f, "shift by {k}, 32 or more"),
            MemoryIndex(k) => write!(f, "M[{k}] is out of range (M has {MEM_WORDS} words)"),
            JumpToItself => write!(f, "ja -1 jumps to itself forever"),
            JumpsBack { target } => write!(
                f,
                "ja jumps back to instruction {target}; the kernel takes forward jumps only \
                 (libpcap's userland machine runs it)"
            ),
            JumpOutOfRange { target } => write!(
                f,
                "jump to instruction {target}, past the end of the program"
            ),
            UnknownAncillary(k) => write!(
                f,
                "load at {k:#x} (SKF_AD_OFF + {}) is no Linux extension",
                k.wrapping_sub(SKF_AD_OFF)
            ),
            NotAllowed(what) => write!(f, "{what} is not accepted by the kernel"),
            NoFinalReturn => write!(f, "the program does not end with ret"),
            UninitializedMemory(k) => {
                write!(f, "M[{k}] is read before it is written on some path")
            }
            SeccompLoad(k) => write!(
                f,
                "ld [{k}] is not an aligned word of the 64-byte seccomp_data"
            ),
        }
    }
}

impl std::error::Error for ValidateError {}

/// Validates `insns` as the kernel's bpf_check_classic and
/// check_load_and_stores (net/core/filter.c) do.
pub fn validate(insns: &[Insn]) -> Result<(), ValidateError> {
    validate_for(insns, Semantics::Kernel)
}

/// Validates `insns` as libpcap's pcapint_validate_filter (bpf_filter.c)
/// does, for [`Semantics::Libpcap`].
pub fn validate_libpcap(insns: &[Insn]) -> Result<(), ValidateError> {
    validate_for(insns, Semantics::Libpcap)
}

/// The two validators share their rules but for jumps (libpcap's `ja` may
/// go back), the length limit, extensions (libpcap's machine has none to
/// check) and `M[]` initialisation (which libpcap does not check).
fn validate_for(insns: &[Insn], semantics: Semantics) -> Result<(), ValidateError> {
    let kernel = semantics == Semantics::Kernel;
    let err = |index, kind| Err(ValidateError { index, kind });
    let len = insns.len();
    let max = if kernel { MAX_INSNS } else { LIBPCAP_MAX_INSNS };
    if len == 0 {
        return err(0, ValidateErrorKind::Empty);
    }
    if len > max {
        return err(max, ValidateErrorKind::TooLong(len));
    }
    for (pc, insn) in insns.iter().enumerate() {
        // A target past the end, computed without wrapping.
        let far = |k: u32| (pc as u64 + 1 + k as u64).min(usize::MAX as u64) as usize;
        match *insn {
            Insn::Alu {
                op: AluOp::Div | AluOp::Mod,
                src: Src::K(0),
            } => return err(pc, ValidateErrorKind::DivisionByZero),
            Insn::Alu {
                op: AluOp::Lsh | AluOp::Rsh,
                src: Src::K(k),
            } if k >= 32 => return err(pc, ValidateErrorKind::ShiftTooFar(k)),
            Insn::LdMem(k) | Insn::LdxMem(k) | Insn::St(k) | Insn::Stx(k) if k >= MEM_WORDS => {
                return err(pc, ValidateErrorKind::MemoryIndex(k))
            }
            Insn::Ja(k) if kernel && (k as i32) < 0 && (pc as i64 + 1 + (k as i32) as i64) >= 0 => {
                let target = (pc as i64 + 1 + (k as i32) as i64) as usize;
                return err(pc, ValidateErrorKind::JumpsBack { target });
            }
            Insn::Ja(k) if kernel && k as u64 >= (len - pc - 1) as u64 => {
                return err(pc, ValidateErrorKind::JumpOutOfRange { target: far(k) });
            }
            // libpcap: `from + k >= len` in u_int arithmetic, in range either way.
            Insn::Ja(k) if !kernel && (pc as u32 + 1).wrapping_add(k) as usize >= len => {
                return err(pc, ValidateErrorKind::JumpOutOfRange { target: far(k) });
            }
            Insn::Ja(u32::MAX) if !kernel => return err(pc, ValidateErrorKind::JumpToItself),
            Insn::Jmp { jt, jf, .. } => {
                for off in [jt, jf] {
                    let target = pc + 1 + off as usize;
                    if target >= len {
                        return err(pc, ValidateErrorKind::JumpOutOfRange { target });
                    }
                }
            }
            Insn::LdAbs { k, .. }
                if kernel && k >= SKF_AD_OFF && Ancillary::from_offset(k).is_none() =>
            {
                return err(pc, ValidateErrorKind::UnknownAncillary(k))
            }
            // chk_code_allowed and pcapint_valid_insn have no BPF_RET | BPF_X.
            Insn::Ret(RetVal::X) => return err(pc, ValidateErrorKind::NotAllowed("ret x")),
            _ => {}
        }
    }
    if !matches!(insns[len - 1], Insn::Ret(RetVal::K(_) | RetVal::A)) {
        return err(len - 1, ValidateErrorKind::NoFinalReturn);
    }
    if kernel {
        check_load_and_stores(insns)
    } else {
        Ok(())
    }
}

/// Where `ja k` at `pc` goes under `semantics`: libpcap sign-extends `k`.
pub(crate) fn ja_target(pc: usize, k: u32, semantics: Semantics) -> usize {
    match semantics {
        Semantics::Kernel => pc + 1 + k as usize,
        Semantics::Libpcap => (pc as u32 + 1).wrapping_add(k) as usize,
    }
}

/// The kernel's check_load_and_stores: every `M[k]` read must follow a write
/// of it on every path. `masks[pc]` holds the slots valid on all jumps into
/// `pc`; the fall-through state meets them there.
fn check_load_and_stores(insns: &[Insn]) -> Result<(), ValidateError> {
    let mut masks = vec![u16::MAX; insns.len()];
    let mut valid: u16 = 0;
    for (pc, insn) in insns.iter().enumerate() {
        valid &= masks[pc];
        match *insn {
            Insn::St(k) | Insn::Stx(k) => valid |= 1 << k,
            Insn::LdMem(k) | Insn::LdxMem(k) if valid & (1 << k) == 0 => {
                return Err(ValidateError {
                    index: pc,
                    kind: ValidateErrorKind::UninitializedMemory(k),
                });
            }
            Insn::Ja(k) => {
                masks[pc + 1 + k as usize] &= valid;
                valid = u16::MAX;
            }
            Insn::Jmp { jt, jf, .. } => {
                masks[pc + 1 + jt as usize] &= valid;
                masks[pc + 1 + jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A validated classic program, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    insns: Vec<Insn>,
    semantics: Semantics,
}

impl Filter {
    /// Validates `insns` for the kernel's machine (see [`validate`]).
    pub fn new(insns: Vec<Insn>) -> Result<Filter, ValidateError> {
        validate(&insns)?;
        Ok(Filter {
            insns,
            semantics: Semantics::Kernel,
        })
    }

    /// Validates `insns` for libpcap's userland machine (see
    /// [`validate_libpcap`] and [`Semantics::Libpcap`]).
    pub fn libpcap(insns: Vec<Insn>) -> Result<Filter, ValidateError> {
        validate_libpcap(&insns)?;
        Ok(Filter {
            insns,
            semantics: Semantics::Libpcap,
        })
    }

    /// Whose machine the filter runs on.
    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    /// The instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Runs the filter over `packet`: the number of bytes to accept, 0 to drop.
    pub fn run(&self, packet: &Packet<'_>) -> u32 {
        run_input(&self.insns, packet, self.semantics)
    }
}

/// Reads `size` bytes big-endian at `off` (a 32-bit offset taken as the
/// kernel's `int`: negative offsets select no packet byte here).
fn load(data: &[u8], off: u32, size: Size) -> Option<u32> {
    let n = match size {
        Size::W => 4,
        Size::H => 2,
        Size::B => 1,
    };
    if off as i32 >= 0 {
        let off = off as usize;
        let bytes = data.get(off..off.checked_add(n)?)?;
        return Some(bytes.iter().fold(0u32, |a, &b| (a << 8) | b as u32));
    }
    // bpf_internal_load_pointer_neg_helper's SKF_NET_OFF/SKF_LL_OFF bases
    // are not modelled: such a load fails, as one outside them does.
    None
}

fn ancillary(a: u32, x: u32, which: Ancillary, m: &Metadata) -> u32 {
    use Ancillary::*;
    match which {
        Protocol => m.protocol as u32,
        PktType => m.pkt_type,
        Ifindex => m.ifindex,
        // No netlink message here: the attribute search finds nothing.
        NlAttr | NlAttrNest => 0,
        Mark => m.mark,
        Queue => m.queue,
        HaType => m.hatype,
        RxHash => m.rxhash,
        Cpu => m.cpu,
        AluXorX => a ^ x,
        VlanTag => m.vlan_tci as u32,
        VlanTagPresent => m.vlan_present as u32,
        PayOffset => m.pay_offset,
        Random => m.random,
        VlanTpid => m.vlan_tpid as u32,
    }
}

/// What a classic program reads: a packet, or seccomp's `seccomp_data`.
pub(crate) trait Input {
    /// `ld [k]` (and the extensions at `SKF_AD_OFF` and up); `None` ends the program with 0.
    fn load_abs(&self, k: u32, size: Size, a: u32, x: u32) -> Option<u32>;
    /// `ld [x + k]`, at the 32-bit sum `off`.
    fn load_ind(&self, off: u32, size: Size) -> Option<u32>;
    /// `ldxb 4*([k]&0xf)`'s byte.
    fn load_msh(&self, k: u32) -> Option<u32>;
    /// `ld #pktlen`.
    fn len(&self) -> u32;
}

impl Input for Packet<'_> {
    fn load_abs(&self, k: u32, size: Size, a: u32, x: u32) -> Option<u32> {
        match Ancillary::from_offset(k) {
            Some(which) => Some(ancillary(a, x, which, &self.meta)),
            None => load(self.data, k, size),
        }
    }

    fn load_ind(&self, off: u32, size: Size) -> Option<u32> {
        load(self.data, off, size)
    }

    fn load_msh(&self, k: u32) -> Option<u32> {
        load(self.data, k, Size::B)
    }

    fn len(&self) -> u32 {
        self.wire_len
    }
}

/// Runs a program validated for `input`'s flavour and `semantics`.
pub(crate) fn run_input(insns: &[Insn], p: &dyn Input, semantics: Semantics) -> u32 {
    let libpcap = semantics == Semantics::Libpcap;
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEM_WORDS as usize];
    let mut pc = 0usize;
    let mut backward_jumps = 0u32;
    // Validation guarantees jumps in range and a final ret; jumps go forward
    // but for libpcap's `ja`, whose backward jumps are counted, so the loop
    // ends.
    while let Some(insn) = insns.get(pc) {
        pc += 1;
        match *insn {
            // Offline, libpcap has no extensions: such a load is out of bounds.
            Insn::LdAbs { k, .. } if libpcap && k >= SKF_AD_OFF => return 0,
            Insn::LdAbs { size, k } => match p.load_abs(k, size, a, x) {
                Some(v) => a = v,
                None => return 0,
            },
            // The kernel adds X and k as 32-bit values into an int offset;
            // libpcap refuses a sum that overflows.
            Insn::LdInd { size, k } => {
                let off = match x.checked_add(k) {
                    Some(off) => off,
                    None if libpcap => return 0,
                    None => x.wrapping_add(k),
                };
                match p.load_ind(off, size) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            Insn::LdImm(k) => a = k,
            Insn::LdLen => a = p.len(),
            Insn::LdMem(k) => a = mem[k as usize],
            Insn::LdxImm(k) => x = k,
            Insn::LdxLen => x = p.len(),
            Insn::LdxMem(k) => x = mem[k as usize],
            Insn::LdxMsh(k) => match p.load_msh(k) {
                Some(v) => x = (v & 0xf) << 2,
                None => return 0,
            },
            Insn::St(k) => mem[k as usize] = a,
            Insn::Stx(k) => mem[k as usize] = x,
            Insn::Alu { op, src } => {
                let v = match src {
                    Src::K(k) => k,
                    Src::X => x,
                };
                a = match op {
                    AluOp::Add => a.wrapping_add(v),
                    AluOp::Sub => a.wrapping_sub(v),
                    AluOp::Mul => a.wrapping_mul(v),
                    AluOp::Div | AluOp::Mod if v == 0 => return 0,
                    AluOp::Div => a / v,
                    AluOp::Mod => a % v,
                    AluOp::Or => a | v,
                    AluOp::And => a & v,
                    AluOp::Xor => a ^ v,
                    // libpcap: a shift by 32 or more gives 0.
                    AluOp::Lsh | AluOp::Rsh if libpcap && v >= 32 => 0,
                    // The kernel's interpreter and JITs mask a 32-bit shift
                    // count to 5 bits (constants are checked to be < 32).
                    AluOp::Lsh => a << (v & 31),
                    AluOp::Rsh => a >> (v & 31),
                };
            }
            Insn::Neg => a = a.wrapping_neg(),
            Insn::Ja(k) if libpcap && (k as i32) < 0 => {
                if backward_jumps >= LIBPCAP_MAX_BACKWARD_JUMPS {
                    return 0;
                }
                backward_jumps += 1;
                pc = ja_target(pc - 1, k, semantics);
            }
            Insn::Ja(k) => pc += k as usize,
            Insn::Jmp { cond, src, jt, jf } => {
                let v = match src {
                    Src::K(k) => k,
                    Src::X => x,
                };
                let taken = match cond {
                    JmpCond::Eq => a == v,
                    JmpCond::Gt => a > v,
                    JmpCond::Ge => a >= v,
                    JmpCond::Set => a & v != 0,
                };
                pc += if taken { jt } else { jf } as usize;
            }
            Insn::Ret(RetVal::K(k)) => return k,
            Insn::Ret(RetVal::A) => return a,
            Insn::Ret(RetVal::X) => return x,
            Insn::Tax { .. } => x = a,
            Insn::Txa { .. } => a = x,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
        Insn::Jmp {
            cond: JmpCond::Eq,
            src: Src::K(k),
            jt,
            jf,
        }
    }

    /// `X += 1` until X is `n`, by a backward `ja`; then `ret x`'s A.
    fn count_to(n: u32) -> Vec<Insn> {
        vec![
            Insn::Txa { k: 0 },
            Insn::Alu {
                op: AluOp::Add,
                src: Src::K(1),
            },
            Insn::Tax { k: 0 },
            jeq(n, 1, 0),
            Insn::Ja(-5i32 as u32),
            Insn::Ret(RetVal::A),
        ]
    }

    #[test]
    fn libpcap_jumps_back_and_the_kernel_refuses_it() {
        let p = Packet::new(&[]);
        let f = Filter::libpcap(count_to(1000)).unwrap();
        assert_eq!(f.run(&p), 1000);
        // One backward jump per pass but the last: at the bound, still run.
        let at_bound = LIBPCAP_MAX_BACKWARD_JUMPS + 1;
        assert_eq!(
            Filter::libpcap(count_to(at_bound)).unwrap().run(&p),
            at_bound
        );
        // An endless loop ends, rejecting the packet.
        assert_eq!(Filter::libpcap(count_to(0)).unwrap().run(&p), 0);
        let e = Filter::new(count_to(10)).unwrap_err();
        assert_eq!(e.index, 4);
        assert_eq!(e.kind, ValidateErrorKind::JumpsBack { target: 0 });
        let selfloop = vec![Insn::Ja(u32::MAX), Insn::Ret(RetVal::A)];
        let e = Filter::libpcap(selfloop).unwrap_err();
        assert_eq!(
            e.to_string(),
            "classic BPF instruction 0: ja -1 jumps to itself forever"
        );
        let before_start = vec![Insn::Ja(-2i32 as u32), Insn::Ret(RetVal::A)];
        assert!(Filter::libpcap(before_start).is_err());
    }

    #[test]
    fn libpcap_shifts_overflowing_loads_and_extensions_differ_from_the_kernels() {
        let shift = |n| {
            vec![
                Insn::LdImm(1),
                Insn::LdxImm(n),
                Insn::Alu {
                    op: AluOp::Lsh,
                    src: Src::X,
                },
                Insn::Ret(RetVal::A),
            ]
        };
        let p = Packet::new(&[7; 16]);
        assert_eq!(Filter::libpcap(shift(33)).unwrap().run(&p), 0);
        assert_eq!(Filter::new(shift(33)).unwrap().run(&p), 2);
        assert_eq!(Filter::libpcap(shift(31)).unwrap().run(&p), 1 << 31);
        // X + k wraps to 3: the kernel loads there, libpcap rejects.
        let ind = vec![
            Insn::LdxImm(u32::MAX),
            Insn::LdInd {
                size: Size::B,
                k: 4,
            },
            Insn::Ret(RetVal::A),
        ];
        assert_eq!(Filter::new(ind.clone()).unwrap().run(&p), 7);
        assert_eq!(Filter::libpcap(ind).unwrap().run(&p), 0);
        let mut p = Packet::new(&[7; 16]);
        p.meta.ifindex = 3;
        let ifindex = vec![
            Insn::LdAbs {
                size: Size::W,
                k: SKF_AD_OFF + 8,
            },
            Insn::Ret(RetVal::A),
        ];
        assert_eq!(Filter::new(ifindex.clone()).unwrap().run(&p), 3);
        assert_eq!(Filter::libpcap(ifindex).unwrap().run(&p), 0);
    }

    #[test]
    fn ip_filter_accepts_ipv4_and_rejects_arp() {
        // tcpdump -d ip
        let f = Filter::new(vec![
            Insn::LdAbs {
                size: Size::H,
                k: 12,
            },
            jeq(0x800, 0, 1),
            Insn::Ret(RetVal::K(262144)),
            Insn::Ret(RetVal::K(0)),
        ])
        .unwrap();
        let mut frame = [0u8; 34];
        frame[12] = 0x08;
        assert_eq!(f.run(&Packet::new(&frame)), 262144);
        frame[13] = 0x06;
        assert_eq!(f.run(&Packet::new(&frame)), 0);
        // Too short for the EtherType: the load fails and the packet is dropped.
        assert_eq!(f.run(&Packet::new(&frame[..13])), 0);
    }

    #[test]
    fn division_by_x_zero_returns_zero_and_by_constant_zero_is_refused() {
        let f = Filter::new(vec![
            Insn::LdImm(10),
            Insn::Alu {
                op: AluOp::Div,
                src: Src::X,
            },
            Insn::Ret(RetVal::K(7)),
        ])
        .unwrap();
        assert_eq!(f.run(&Packet::new(&[])), 0);
        let e = Filter::new(vec![
            Insn::Alu {
                op: AluOp::Mod,
                src: Src::K(0),
            },
            Insn::Ret(RetVal::A),
        ])
        .unwrap_err();
        assert_eq!(e.index, 0);
        assert_eq!(e.kind, ValidateErrorKind::DivisionByZero);
        assert!(e.to_string().contains("instruction 0"), "{e}");
    }

    #[test]
    fn validation_names_the_instruction() {
        let cases: Vec<(Vec<Insn>, usize, ValidateErrorKind)> = vec![
            (vec![], 0, ValidateErrorKind::Empty),
            (
                vec![Insn::LdImm(1), jeq(1, 0, 5), Insn::Ret(RetVal::A)],
                1,
                ValidateErrorKind::JumpOutOfRange { target: 7 },
            ),
            (
                vec![Insn::Ja(1), Insn::Ret(RetVal::A)],
                0,
                ValidateErrorKind::JumpOutOfRange { target: 2 },
            ),
            (
                vec![Insn::St(16), Insn::Ret(RetVal::A)],
                0,
                ValidateErrorKind::MemoryIndex(16),
            ),
            (vec![Insn::LdImm(1)], 0, ValidateErrorKind::NoFinalReturn),
            (
                vec![Insn::LdxMem(3), Insn::Ret(RetVal::A)],
                0,
                ValidateErrorKind::UninitializedMemory(3),
            ),
            (
                vec![
                    Insn::LdAbs {
                        size: Size::W,
                        k: SKF_AD_OFF + 64,
                    },
                    Insn::Ret(RetVal::A),
                ],
                0,
                ValidateErrorKind::UnknownAncillary(SKF_AD_OFF + 64),
            ),
            (
                vec![Insn::LdImm(1), Insn::Ret(RetVal::X)],
                1,
                ValidateErrorKind::NotAllowed("ret x"),
            ),
            (
                vec![
                    Insn::Alu {
                        op: AluOp::Lsh,
                        src: Src::K(32),
                    },
                    Insn::Ret(RetVal::A),
                ],
                0,
                ValidateErrorKind::ShiftTooFar(32),
            ),
        ];
        for (insns, index, kind) in cases {
            let e = validate(&insns).unwrap_err();
            assert_eq!((e.index, &e.kind), (index, &kind), "{insns:?}");
        }
    }

    #[test]
    fn memory_written_on_only_one_path_is_refused() {
        // 0: jeq #1 jt 1 jf 2; 1: st M[0]; 2: ld M[0] (unwritten when jf).
        let insns = vec![
            jeq(1, 0, 1),
            Insn::St(0),
            Insn::LdMem(0),
            Insn::Ret(RetVal::A),
        ];
        let e = validate(&insns).unwrap_err();
        assert_eq!(e.index, 2);
        assert_eq!(e.kind, ValidateErrorKind::UninitializedMemory(0));
        // Written before the branch: fine, and the value survives.
        let f = Filter::new(vec![
            Insn::LdImm(42),
            Insn::St(0),
            Insn::LdImm(0),
            jeq(1, 0, 0),
            Insn::LdMem(0),
            Insn::Ret(RetVal::A),
        ])
        .unwrap();
        assert_eq!(f.run(&Packet::new(&[])), 42);
    }

    #[test]
    fn ancillary_loads_read_the_metadata() {
        let f = Filter::new(vec![
            Insn::LdAbs {
                size: Size::H,
                k: SKF_AD_OFF,
            },
            Insn::Tax { k: 0 },
            Insn::LdAbs {
                size: Size::B,
                k: SKF_AD_OFF + 20,
            },
            Insn::LdAbs {
                size: Size::W,
                k: SKF_AD_OFF + 40,
            },
            Insn::Ret(RetVal::A),
        ])
        .unwrap();
        let mut p = Packet::new(&[]);
        p.meta.protocol = 0x86dd;
        p.meta.mark = 0x1234_5678;
        assert_eq!(f.run(&p), 0x1234_5678 ^ 0x86dd);
    }

    #[test]
    fn ind_loads_wrap_and_msh_reads_the_header_length() {
        // ldxb 4*([0]&0xf); ldb [x + 0]; ret a
        let f = Filter::new(vec![
            Insn::LdxMsh(0),
            Insn::LdInd {
                size: Size::B,
                k: 0,
            },
            Insn::Ret(RetVal::A),
        ])
        .unwrap();
        let mut pkt = [0u8; 24];
        pkt[0] = 0x45;
        pkt[20] = 0x99;
        assert_eq!(f.run(&Packet::new(&pkt)), 0x99);
        pkt[0] = 0x46; // X = 24: out of bounds
        assert_eq!(f.run(&Packet::new(&pkt)), 0);
        // X + k wraps as 32-bit: X = 0xffffffff, k = 2 reads byte 1.
        let f = Filter::new(vec![
            Insn::LdxImm(u32::MAX),
            Insn::LdInd {
                size: Size::B,
                k: 2,
            },
            Insn::Ret(RetVal::A),
        ])
        .unwrap();
        assert_eq!(f.run(&Packet::new(&[7, 8, 9])), 8);
    }
}
