//! Classic BPF to eBPF, as the kernel's `bpf_convert_filter`
//! (net/core/filter.c) does it, but into a program user space can load:
//! the Linux extensions read `struct __sk_buff` fields (or call helpers)
//! instead of the kernel-internal `struct sk_buff` the kernel's own
//! conversion reads.
//!
//! Registers as bpf_convert_filter assigns them: A is `r0` (where
//! `LD_ABS`/`LD_IND` and helpers leave their result), X is `r7`, the context
//! `r6` (which `LD_ABS`/`LD_IND` read implicitly), `r8` a scratch register;
//! `M[k]` is the stack word at `r10 - (16 - k) * 4`. All arithmetic is
//! 32-bit and comparisons are `JMP32`, so constants with the top bit set
//! compare as the unsigned values classic BPF means.
//!
//! The result runs as a `BPF_PROG_TYPE_SOCKET_FILTER` program in the kernel
//! and in bpfkit's VM, and returns what the classic program returns:
//! packet loads out of bounds and division by an X of zero return 0, as in
//! the kernel.
//!
//! One difference remains between the backends: a load at a negative
//! offset in the kernel's `SKF_LL_OFF`/`SKF_NET_OFF` ranges (from -0x200000
//! up to `SKF_AD_OFF`) reads the link-layer or network header in the kernel
//! (bpf_internal_load_pointer_neg_helper), while the VM and
//! [`crate::classic`] treat it as out of bounds. libpcap never emits them.

use bpfkit_isa::cbpf::{self, RetVal, Size, Src};
use bpfkit_isa::{
    AluOp, CallTarget, Endian, Insn, JmpCond, MemSize, Operand, Reg, SwapBits, Width,
};
use std::fmt;

use crate::classic::{self, Ancillary, ValidateError, MEM_WORDS};

/// Register holding A.
pub const REG_A: Reg = Reg::R0;
/// Register holding X.
pub const REG_X: Reg = Reg::R7;
/// Register holding the context (`__sk_buff *` or `seccomp_data *`).
pub const REG_CTX: Reg = Reg::R6;
/// Scratch register.
pub const REG_TMP: Reg = Reg::R8;
/// The count of backward jumps made, for [`Flavour::Libpcap`] programs that
/// have them.
pub const REG_BACKWARD_JUMPS: Reg = Reg::R9;

/// `BPF_FUNC_get_prandom_u32`.
const HELPER_GET_PRANDOM_U32: i32 = 7;
/// `BPF_FUNC_get_smp_processor_id`.
const HELPER_GET_SMP_PROCESSOR_ID: i32 = 8;

/// Offsets of the `struct __sk_buff` fields the extensions read.
mod sk_buff {
    pub const LEN: i16 = 0;
    pub const PKT_TYPE: i16 = 4;
    pub const MARK: i16 = 8;
    pub const QUEUE_MAPPING: i16 = 12;
    pub const PROTOCOL: i16 = 16;
    pub const VLAN_PRESENT: i16 = 20;
    pub const VLAN_TCI: i16 = 24;
    pub const VLAN_PROTO: i16 = 28;
    pub const IFINDEX: i16 = 40;
    pub const HASH: i16 = 68;
}

/// Which classic machine the program was written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Flavour {
    /// A socket filter over an skb: packet loads are `LD_ABS`/`LD_IND`.
    #[default]
    SocketFilter,
    /// A socket filter for libpcap's userland machine
    /// ([`classic::Semantics::Libpcap`]): `protochain`'s backward jumps
    /// become an eBPF loop bounded as libpcap bounds it.
    Libpcap,
    /// A seccomp filter over `struct seccomp_data`: `ld [k]` reads the
    /// context word at `k` and `ld #pktlen` is its size, as
    /// seccomp_check_filter (kernel/seccomp.c) rewrites them.
    Seccomp,
}

/// Size of `struct seccomp_data`.
pub const SECCOMP_DATA_SIZE: u32 = 64;

/// Why a classic program cannot be translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranslateErrorKind {
    /// The kernel would refuse the classic program.
    Invalid(ValidateError),
    /// A Linux extension that no `__sk_buff` field or helper provides to a
    /// user-loaded program (the kernel's own conversion reads `struct sk_buff`).
    UnsupportedAncillary(Ancillary),
    /// An instruction the flavour does not have (e.g. a packet load in seccomp).
    NotInFlavour(Flavour),
    /// A jump that does not fit eBPF's 16-bit offset.
    JumpTooFar,
}

/// A classic program that cannot be translated, naming the classic instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateError {
    /// Index of the classic instruction.
    pub index: usize,
    /// What is wrong.
    pub kind: TranslateErrorKind,
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TranslateErrorKind::Invalid(e) => write!(f, "{e}"),
            TranslateErrorKind::UnsupportedAncillary(a) => write!(
                f,
                "classic BPF instruction {}: the {a:?} extension has no __sk_buff field or helper \
                 a loadable eBPF program can use",
                self.index
            ),
            TranslateErrorKind::NotInFlavour(fl) => write!(
                f,
                "classic BPF instruction {}: not available to a {fl:?} filter",
                self.index
            ),
            TranslateErrorKind::JumpTooFar => write!(
                f,
                "classic BPF instruction {}: the translated jump is further than 32767 instructions",
                self.index
            ),
        }
    }
}

impl std::error::Error for TranslateError {}

/// Translates a socket filter (validated as the kernel does first).
pub fn translate(insns: &[cbpf::Insn]) -> Result<Vec<Insn>, TranslateError> {
    classic::validate(insns).map_err(|e| TranslateError {
        index: e.index,
        kind: TranslateErrorKind::Invalid(e),
    })?;
    translate_validated(insns, Flavour::SocketFilter)
}

/// Translates a socket filter for libpcap's userland machine (validated as
/// libpcap does first; see [`classic::Semantics::Libpcap`]).
pub fn translate_libpcap(insns: &[cbpf::Insn]) -> Result<Vec<Insn>, TranslateError> {
    classic::validate_libpcap(insns).map_err(|e| TranslateError {
        index: e.index,
        kind: TranslateErrorKind::Invalid(e),
    })?;
    translate_validated(insns, Flavour::Libpcap)
}

/// Translates a program already validated for `flavour` (by
/// [`classic::validate`], [`classic::validate_libpcap`] for libpcap's
/// machine, or [`crate::seccomp::validate`] for seccomp).
pub fn translate_validated(
    insns: &[cbpf::Insn],
    flavour: Flavour,
) -> Result<Vec<Insn>, TranslateError> {
    let mut t = Translator {
        out: Vec::with_capacity(insns.len() * 3 + 3),
        fixups: Vec::new(),
        flavour,
    };
    // bpf_convert_filter's prologue: A = 0, X = 0, ctx saved in r6 (with
    // moves, not its `xor`s: the verifier refuses reading unset registers).
    t.out.push(mov64(REG_CTX, Operand::Reg(Reg::R1)));
    t.out.push(alu32(AluOp::Mov, REG_A, Operand::Imm(0)));
    t.out.push(alu32(AluOp::Mov, REG_X, Operand::Imm(0)));
    let semantics = flavour.semantics();
    let jumps_back = insns.iter().enumerate().any(
        |(pc, i)| matches!(*i, cbpf::Insn::Ja(k) if classic::ja_target(pc, k, semantics) <= pc),
    );
    if jumps_back {
        t.out.push(mov64(REG_BACKWARD_JUMPS, Operand::Imm(0)));
    }
    // The eBPF verifier refuses unreachable code (check_cfg), which classic
    // programs may have (libpcap's unoptimized output does): leave it out.
    let reachable = reachable(insns, semantics);
    let mut starts = Vec::with_capacity(insns.len());
    for (pc, insn) in insns.iter().enumerate() {
        starts.push(t.out.len());
        if reachable[pc] {
            t.insn(pc, insn)
                .map_err(|kind| TranslateError { index: pc, kind })?;
        }
    }
    for f in &t.fixups {
        let off = starts[f.target] as i64 - (f.at as i64 + 1);
        let off = i16::try_from(off).map_err(|_| TranslateError {
            index: f.classic,
            kind: TranslateErrorKind::JumpTooFar,
        })?;
        match &mut t.out[f.at] {
            Insn::Ja { off: o } | Insn::Jmp { off: o, .. } => *o = off,
            other => unreachable!("fixup on a non-jump {other:?}"),
        }
    }
    Ok(t.out)
}

/// Which instructions some path from the first reaches (validation checked
/// that every jump stays in the program).
fn reachable(insns: &[cbpf::Insn], semantics: classic::Semantics) -> Vec<bool> {
    let mut seen = vec![false; insns.len()];
    let mut work = vec![0usize];
    while let Some(pc) = work.pop() {
        match seen.get_mut(pc) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        match insns[pc] {
            cbpf::Insn::Ja(k) => work.push(classic::ja_target(pc, k, semantics)),
            cbpf::Insn::Jmp { jt, jf, .. } => {
                work.push(pc + 1 + jt as usize);
                work.push(pc + 1 + jf as usize);
            }
            cbpf::Insn::Ret(_) => {}
            _ => work.push(pc + 1),
        }
    }
    seen
}

impl Flavour {
    /// Whose classic machine the flavour's programs are written for.
    fn semantics(self) -> classic::Semantics {
        match self {
            Flavour::Libpcap => classic::Semantics::Libpcap,
            Flavour::SocketFilter | Flavour::Seccomp => classic::Semantics::Kernel,
        }
    }
}

/// A jump at `at` to the start of classic instruction `target`.
struct Fixup {
    at: usize,
    target: usize,
    classic: usize,
}

struct Translator {
    out: Vec<Insn>,
    fixups: Vec<Fixup>,
    flavour: Flavour,
}

fn alu32(op: AluOp, dst: Reg, src: Operand) -> Insn {
    Insn::Alu {
        width: Width::W32,
        op,
        dst,
        src,
    }
}

fn mov64(dst: Reg, src: Operand) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src,
    }
}

fn imm(k: u32) -> Operand {
    Operand::Imm(k as i32)
}

fn mem_size(s: Size) -> MemSize {
    match s {
        Size::W => MemSize::W,
        Size::H => MemSize::H,
        Size::B => MemSize::B,
    }
}

/// The stack offset of `M[k]` (bpf_convert_filter's `-(BPF_MEMWORDS - k) * 4`).
fn mem_off(k: u32) -> i16 {
    -(((MEM_WORDS - k) * 4) as i16)
}

fn load_ctx(dst: Reg, off: i16) -> Insn {
    Insn::Load {
        size: MemSize::W,
        dst,
        src: REG_CTX,
        off,
    }
}

impl Translator {
    fn jump_to(&mut self, insn: Insn, classic: usize, target: usize) {
        self.fixups.push(Fixup {
            at: self.out.len(),
            target,
            classic,
        });
        self.out.push(insn);
    }

    fn ret(&mut self) {
        self.out.push(Insn::Exit);
    }

    /// `A = 0; exit`: the packet is rejected.
    fn reject(&mut self) {
        self.out.push(alu32(AluOp::Mov, REG_A, Operand::Imm(0)));
        self.ret();
    }

    /// A 32-bit test of `dst` against `src` that skips the next `off` instructions.
    fn skip_if(&mut self, cond: JmpCond, dst: Reg, src: Operand, off: i16) {
        self.out.push(Insn::Jmp {
            width: Width::W32,
            cond,
            dst,
            src,
            off,
        });
    }

    fn insn(&mut self, pc: usize, insn: &cbpf::Insn) -> Result<(), TranslateErrorKind> {
        use cbpf::Insn as C;
        let seccomp = self.flavour == Flavour::Seccomp;
        let libpcap = self.flavour == Flavour::Libpcap;
        let not_here = || Err(TranslateErrorKind::NotInFlavour(self.flavour));
        match *insn {
            C::LdAbs { size, k } if seccomp => {
                // seccomp_check_filter allows only aligned words inside seccomp_data.
                if size != Size::W || k >= SECCOMP_DATA_SIZE || k % 4 != 0 {
                    return not_here();
                }
                self.out.push(load_ctx(REG_A, k as i16));
            }
            // Offline, libpcap has no extensions: the load is out of bounds.
            C::LdAbs { k, .. } if libpcap && k >= classic::SKF_AD_OFF => self.reject(),
            C::LdAbs { k, .. } if k >= classic::SKF_AD_OFF => {
                let which = Ancillary::from_offset(k).ok_or(TranslateErrorKind::Invalid(
                    ValidateError {
                        index: pc,
                        kind: classic::ValidateErrorKind::UnknownAncillary(k),
                    },
                ))?;
                self.ancillary(which)?;
            }
            C::LdAbs { size, k } => self.out.push(Insn::LdAbs {
                size: mem_size(size),
                imm: k as i32,
            }),
            C::LdInd { size, k } => {
                if seccomp {
                    return not_here();
                }
                if libpcap && k != 0 {
                    // libpcap rejects the packet when X + k overflows.
                    self.skip_if(JmpCond::Le, REG_X, imm(u32::MAX - k), 2);
                    self.reject();
                }
                // The kernel's LD_IND adds X and k into an int offset: a
                // 32-bit sum, which a 32-bit add computes for both backends.
                self.out
                    .push(alu32(AluOp::Mov, REG_TMP, Operand::Reg(REG_X)));
                if k != 0 {
                    self.out.push(alu32(AluOp::Add, REG_TMP, imm(k)));
                }
                self.out.push(Insn::LdInd {
                    size: mem_size(size),
                    src: REG_TMP,
                    imm: 0,
                });
            }
            C::LdImm(k) => self.out.push(alu32(AluOp::Mov, REG_A, imm(k))),
            C::LdxImm(k) => self.out.push(alu32(AluOp::Mov, REG_X, imm(k))),
            C::LdLen if seccomp => self
                .out
                .push(alu32(AluOp::Mov, REG_A, imm(SECCOMP_DATA_SIZE))),
            C::LdxLen if seccomp => self
                .out
                .push(alu32(AluOp::Mov, REG_X, imm(SECCOMP_DATA_SIZE))),
            C::LdLen => self.out.push(load_ctx(REG_A, sk_buff::LEN)),
            C::LdxLen => self.out.push(load_ctx(REG_X, sk_buff::LEN)),
            C::LdMem(k) | C::LdxMem(k) => {
                let dst = if matches!(insn, C::LdMem(_)) {
                    REG_A
                } else {
                    REG_X
                };
                self.out.push(Insn::Load {
                    size: MemSize::W,
                    dst,
                    src: Reg::R10,
                    off: mem_off(k),
                });
            }
            C::St(k) | C::Stx(k) => {
                let src = if matches!(insn, C::St(_)) {
                    REG_A
                } else {
                    REG_X
                };
                self.out.push(Insn::Store {
                    size: MemSize::W,
                    dst: Reg::R10,
                    src,
                    off: mem_off(k),
                });
            }
            C::LdxMsh(k) => {
                if seccomp {
                    return not_here();
                }
                // bpf_convert_filter: save A, load the byte into A, X = (A & 0xf) << 2, restore A.
                self.out.push(mov64(REG_TMP, Operand::Reg(REG_A)));
                self.out.push(Insn::LdAbs {
                    size: MemSize::B,
                    imm: k as i32,
                });
                self.out.push(alu32(AluOp::And, REG_A, imm(0xf)));
                self.out.push(alu32(AluOp::Lsh, REG_A, imm(2)));
                self.out.push(mov64(REG_X, Operand::Reg(REG_A)));
                self.out.push(mov64(REG_A, Operand::Reg(REG_TMP)));
            }
            C::Alu { op, src } => {
                let operand = match src {
                    Src::K(k) => imm(k),
                    Src::X => Operand::Reg(REG_X),
                };
                let op = match op {
                    cbpf::AluOp::Add => AluOp::Add,
                    cbpf::AluOp::Sub => AluOp::Sub,
                    cbpf::AluOp::Mul => AluOp::Mul,
                    cbpf::AluOp::Div => AluOp::Div,
                    cbpf::AluOp::Mod => AluOp::Mod,
                    cbpf::AluOp::Or => AluOp::Or,
                    cbpf::AluOp::And => AluOp::And,
                    cbpf::AluOp::Xor => AluOp::Xor,
                    cbpf::AluOp::Lsh => AluOp::Lsh,
                    cbpf::AluOp::Rsh => AluOp::Rsh,
                };
                if matches!(op, AluOp::Div | AluOp::Mod) && src == Src::X {
                    // bpf_convert_filter: a classic division by zero returns 0.
                    self.out.push(Insn::Jmp {
                        width: Width::W32,
                        cond: JmpCond::Ne,
                        dst: REG_X,
                        src: Operand::Imm(0),
                        off: 2,
                    });
                    self.out.push(alu32(AluOp::Mov, REG_A, Operand::Imm(0)));
                    self.ret();
                }
                if matches!(op, AluOp::Lsh | AluOp::Rsh) && src == Src::X && libpcap {
                    // libpcap: a shift by 32 or more gives 0.
                    self.skip_if(JmpCond::Lt, REG_X, Operand::Imm(32), 2);
                    self.out.push(alu32(AluOp::Mov, REG_A, Operand::Imm(0)));
                    self.out.push(Insn::Ja { off: 1 });
                    self.out.push(alu32(op, REG_A, Operand::Reg(REG_X)));
                } else if matches!(op, AluOp::Lsh | AluOp::Rsh) && src == Src::X {
                    // eBPF leaves shifts by 32 or more undefined; the
                    // kernel's interpreter and JITs use the count's low 5 bits.
                    self.out
                        .push(alu32(AluOp::Mov, REG_TMP, Operand::Reg(REG_X)));
                    self.out.push(alu32(AluOp::And, REG_TMP, Operand::Imm(31)));
                    self.out.push(alu32(op, REG_A, Operand::Reg(REG_TMP)));
                } else {
                    self.out.push(alu32(op, REG_A, operand));
                }
            }
            C::Neg => self.out.push(Insn::Neg {
                width: Width::W32,
                dst: REG_A,
            }),
            C::Ja(k) => {
                let target = classic::ja_target(pc, k, self.flavour.semantics());
                if target <= pc {
                    // libpcap's backward jump, counted as the classic
                    // interpreter counts it, so the loop is bounded.
                    self.skip_if(
                        JmpCond::Lt,
                        REG_BACKWARD_JUMPS,
                        imm(classic::LIBPCAP_MAX_BACKWARD_JUMPS),
                        2,
                    );
                    self.reject();
                    self.out.push(Insn::Alu {
                        width: Width::W64,
                        op: AluOp::Add,
                        dst: REG_BACKWARD_JUMPS,
                        src: Operand::Imm(1),
                    });
                }
                self.jump_to(Insn::Ja { off: 0 }, pc, target);
            }
            C::Jmp { cond, src, jt, jf } => {
                let operand = match src {
                    Src::K(k) => imm(k),
                    Src::X => Operand::Reg(REG_X),
                };
                let (t, f) = (pc + 1 + jt as usize, pc + 1 + jf as usize);
                let cond = match cond {
                    cbpf::JmpCond::Eq => JmpCond::Eq,
                    cbpf::JmpCond::Gt => JmpCond::Gt,
                    cbpf::JmpCond::Ge => JmpCond::Ge,
                    cbpf::JmpCond::Set => JmpCond::Set,
                };
                let jmp = |cond| Insn::Jmp {
                    width: Width::W32,
                    cond,
                    dst: REG_A,
                    src: operand,
                    off: 0,
                };
                let inverse = match cond {
                    JmpCond::Eq => Some(JmpCond::Ne),
                    JmpCond::Gt => Some(JmpCond::Le),
                    JmpCond::Ge => Some(JmpCond::Lt),
                    _ => None,
                };
                match (jt, jf, inverse) {
                    // Both ways fall through: nothing to test.
                    (0, 0, _) => {}
                    (0, _, Some(inv)) => self.jump_to(jmp(inv), pc, f),
                    (_, 0, _) => self.jump_to(jmp(cond), pc, t),
                    _ => {
                        self.jump_to(jmp(cond), pc, t);
                        self.jump_to(Insn::Ja { off: 0 }, pc, f);
                    }
                }
            }
            C::Ret(RetVal::K(k)) => {
                self.out.push(alu32(AluOp::Mov, REG_A, imm(k)));
                self.ret();
            }
            C::Ret(RetVal::A) => self.ret(),
            C::Ret(RetVal::X) => {
                self.out.push(alu32(AluOp::Mov, REG_A, Operand::Reg(REG_X)));
                self.ret();
            }
            C::Tax { .. } => self.out.push(alu32(AluOp::Mov, REG_X, Operand::Reg(REG_A))),
            C::Txa { .. } => self.out.push(alu32(AluOp::Mov, REG_A, Operand::Reg(REG_X))),
        }
        Ok(())
    }

    /// The extensions, as convert_bpf_extensions reads them, through the
    /// `__sk_buff` fields a socket filter may read (sk_filter_is_valid_access).
    fn ancillary(&mut self, which: Ancillary) -> Result<(), TranslateErrorKind> {
        use Ancillary::*;
        let field = match which {
            Protocol => Some(sk_buff::PROTOCOL),
            PktType => Some(sk_buff::PKT_TYPE),
            Ifindex => Some(sk_buff::IFINDEX),
            Mark => Some(sk_buff::MARK),
            Queue => Some(sk_buff::QUEUE_MAPPING),
            RxHash => Some(sk_buff::HASH),
            VlanTag => Some(sk_buff::VLAN_TCI),
            VlanTagPresent => Some(sk_buff::VLAN_PRESENT),
            VlanTpid => Some(sk_buff::VLAN_PROTO),
            _ => None,
        };
        if let Some(off) = field {
            self.out.push(load_ctx(REG_A, off));
            // skb->protocol and skb->vlan_proto are in network order.
            if matches!(which, Protocol | VlanTpid) {
                self.out.push(Insn::End {
                    kind: Endian::ToBe,
                    bits: SwapBits::B16,
                    dst: REG_A,
                });
            }
            return Ok(());
        }
        match which {
            Cpu => self
                .out
                .push(Insn::Call(CallTarget::Helper(HELPER_GET_SMP_PROCESSOR_ID))),
            Random => self
                .out
                .push(Insn::Call(CallTarget::Helper(HELPER_GET_PRANDOM_U32))),
            AluXorX => self.out.push(alu32(AluOp::Xor, REG_A, Operand::Reg(REG_X))),
            other => return Err(TranslateErrorKind::UnsupportedAncillary(other)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_classic_instruction() {
        let hatype = [
            cbpf::Insn::LdImm(0),
            cbpf::Insn::LdAbs {
                size: Size::W,
                k: classic::SKF_AD_OFF + 28,
            },
            cbpf::Insn::Ret(RetVal::A),
        ];
        let e = translate(&hatype).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(
            e.kind,
            TranslateErrorKind::UnsupportedAncillary(Ancillary::HaType)
        );
        assert!(e.to_string().contains("instruction 1"), "{e}");
        let e = translate(&[cbpf::Insn::LdImm(0)]).unwrap_err();
        assert!(matches!(e.kind, TranslateErrorKind::Invalid(_)), "{e}");
    }

    #[test]
    fn unreachable_instructions_are_left_out() {
        // 0: ja 2; 1: ret #1 (unreachable); 2: ret #2
        let p = [
            cbpf::Insn::Ja(1),
            cbpf::Insn::Ret(RetVal::K(1)),
            cbpf::Insn::Ret(RetVal::K(2)),
        ];
        let out = translate(&p).unwrap();
        // Prologue (3), ja, mov + exit of `ret #2` only.
        assert_eq!(out.len(), 6, "{out:?}");
        assert_eq!(out[3], Insn::Ja { off: 0 });
        assert_eq!(out[4], alu32(AluOp::Mov, REG_A, Operand::Imm(2)));
    }
}
