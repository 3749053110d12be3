//! Scalar abstract values: a tnum plus signed and unsigned bounds at 64 and
//! 32 bits, kept consistent with each other as the kernel's `reg_bounds_sync`
//! does, and the ALU and comparison transfer functions over them
//! (`adjust_scalar_min_max_vals`, `regs_refine_cond_op` in kernel/bpf/verifier.c).

use crate::tnum::Tnum;
use bpfkit_isa::{AluOp, JmpCond};
use core::fmt;

/// The set of values a scalar register may hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scalar {
    /// Known and unknown bits.
    pub var: Tnum,
    /// Signed 64-bit minimum.
    pub smin: i64,
    /// Signed 64-bit maximum.
    pub smax: i64,
    /// Unsigned 64-bit minimum.
    pub umin: u64,
    /// Unsigned 64-bit maximum.
    pub umax: u64,
    /// Signed 32-bit minimum of the low half.
    pub s32min: i32,
    /// Signed 32-bit maximum of the low half.
    pub s32max: i32,
    /// Unsigned 32-bit minimum of the low half.
    pub u32min: u32,
    /// Unsigned 32-bit maximum of the low half.
    pub u32max: u32,
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.as_const() {
            return write!(f, "{}", c as i64);
        }
        write!(
            f,
            "smin={} smax={} umin={} umax={} s32=[{}, {}] u32=[{}, {}] var_off={:?}",
            self.smin,
            self.smax,
            self.umin,
            self.umax,
            self.s32min,
            self.s32max,
            self.u32min,
            self.u32max,
            self.var
        )
    }
}

impl Scalar {
    /// Any 64-bit value (`__mark_reg_unknown`).
    pub const UNKNOWN: Scalar = Scalar {
        var: Tnum::UNKNOWN,
        smin: i64::MIN,
        smax: i64::MAX,
        umin: 0,
        umax: u64::MAX,
        s32min: i32::MIN,
        s32max: i32::MAX,
        u32min: 0,
        u32max: u32::MAX,
    };

    /// Exactly `v` (`__mark_reg_known`).
    pub fn constant(v: u64) -> Scalar {
        Scalar {
            var: Tnum::constant(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32min: v as u32 as i32,
            s32max: v as u32 as i32,
            u32min: v as u32,
            u32max: v as u32,
        }
    }

    /// Any value in the unsigned range `[lo, hi]`.
    pub fn urange(lo: u64, hi: u64) -> Scalar {
        let mut s = Scalar::UNKNOWN;
        s.umin = lo;
        s.umax = hi;
        s.sync();
        s
    }

    /// Any value in the signed range `[lo, hi]`.
    pub fn srange(lo: i64, hi: i64) -> Scalar {
        let mut s = Scalar::UNKNOWN;
        s.smin = lo;
        s.smax = hi;
        s.sync();
        s
    }

    /// The value, if exactly one.
    pub fn as_const(&self) -> Option<u64> {
        self.var.is_const().then_some(self.var.value)
    }

    /// The low 32 bits, if exactly one value.
    pub fn as_const32(&self) -> Option<u32> {
        self.var.subreg_is_const().then_some(self.var.value as u32)
    }

    /// Whether no value satisfies every bound: the path holding it is infeasible.
    pub fn is_empty(&self) -> bool {
        self.smin > self.smax
            || self.umin > self.umax
            || self.s32min > self.s32max
            || self.u32min > self.u32max
            || self.umin > (self.var.value | self.var.mask)
            || self.umax < self.var.value
    }

    /// Whether every value of `other` is a value of `self` (`range_within` + `tnum_in`).
    pub fn contains(&self, other: &Scalar) -> bool {
        self.smin <= other.smin
            && self.smax >= other.smax
            && self.umin <= other.umin
            && self.umax >= other.umax
            && self.s32min <= other.s32min
            && self.s32max >= other.s32max
            && self.u32min <= other.u32min
            && self.u32max >= other.u32max
            && self.var.contains(other.var)
    }

    /// A scalar holding the values of both (bounds and tnum joined).
    pub fn join(&self, o: &Scalar) -> Scalar {
        let mut s = Scalar {
            var: Tnum::range(0, 0),
            smin: self.smin.min(o.smin),
            smax: self.smax.max(o.smax),
            umin: self.umin.min(o.umin),
            umax: self.umax.max(o.umax),
            s32min: self.s32min.min(o.s32min),
            s32max: self.s32max.max(o.s32max),
            u32min: self.u32min.min(o.u32min),
            u32max: self.u32max.max(o.u32max),
        };
        let mu = self.var.mask | o.var.mask | (self.var.value ^ o.var.value);
        s.var = Tnum {
            value: self.var.value & !mu,
            mask: mu,
        };
        s
    }

    /// Tightens every bound from the others: `reg_bounds_sync`
    /// (`__update_reg_bounds`, `__reg_deduce_bounds`, `__reg_bound_offset`).
    pub fn sync(&mut self) {
        for _ in 0..2 {
            self.update_bounds_from_tnum();
            self.deduce_bounds();
            self.bound_offset();
        }
        self.update_bounds_from_tnum();
    }

    fn update_bounds_from_tnum(&mut self) {
        let v = self.var;
        // __update_reg32_bounds
        let v32 = v.subreg();
        self.s32min = self
            .s32min
            .max((v32.value | (v32.mask & 0x8000_0000)) as u32 as i32);
        self.s32max = self
            .s32max
            .min((v32.value | (v32.mask & 0x7fff_ffff)) as u32 as i32);
        self.u32min = self.u32min.max(v32.value as u32);
        self.u32max = self.u32max.min((v32.value | v32.mask) as u32);
        // __update_reg64_bounds
        self.smin = self.smin.max((v.value | (v.mask & (1 << 63))) as i64);
        self.smax = self
            .smax
            .min((v.value | (v.mask & (i64::MAX as u64))) as i64);
        self.umin = self.umin.max(v.value);
        self.umax = self.umax.min(v.value | v.mask);
    }

    fn deduce_bounds(&mut self) {
        // __reg32_deduce_bounds: the low halves of the 64-bit bounds, when the upper halves agree.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32min = self.u32min.max(self.umin as u32);
            self.u32max = self.u32max.min(self.umax as u32);
            if (self.umin as i32) <= (self.umax as i32) {
                self.s32min = self.s32min.max(self.umin as i32);
                self.s32max = self.s32max.min(self.umax as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            if (self.smin as u32) <= (self.smax as u32) {
                self.u32min = self.u32min.max(self.smin as u32);
                self.u32max = self.u32max.min(self.smax as u32);
            }
            if (self.smin as i32) <= (self.smax as i32) {
                self.s32min = self.s32min.max(self.smin as i32);
                self.s32max = self.s32max.min(self.smax as i32);
            }
        }
        if (self.u32min as i32) <= (self.u32max as i32) {
            self.s32min = self.s32min.max(self.u32min as i32);
            self.s32max = self.s32max.min(self.u32max as i32);
        }
        if (self.s32min as u32) <= (self.s32max as u32) {
            self.u32min = self.u32min.max(self.s32min as u32);
            self.u32max = self.u32max.min(self.s32max as u32);
        }
        // __reg64_deduce_bounds
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        }
        // __reg_deduce_mixed_bounds: the 32-bit bounds refine the 64-bit ones
        // when the upper 32 bits are fixed.
        if self.umin >> 32 == self.umax >> 32 {
            let hi = self.umin & !0xffff_ffff;
            self.umin = self.umin.max(hi | self.u32min as u64);
            self.umax = self.umax.min(hi | self.u32max as u64);
        }
        if self.smin >> 32 == self.smax >> 32 && self.s32min >= 0 {
            let hi = (self.smin as u64) & !0xffff_ffff;
            self.smin = self.smin.max((hi | self.s32min as u32 as u64) as i64);
            self.smax = self.smax.min((hi | self.s32max as u32 as u64) as i64);
        }
    }

    fn bound_offset(&mut self) {
        // __reg_bound_offset
        let v64 = self.var.intersect(Tnum::range(self.umin, self.umax));
        let v32 = v64
            .subreg()
            .intersect(Tnum::range(self.u32min as u64, self.u32max as u64));
        self.var = v64.with_subreg(v32);
    }

    /// The low 32 bits as a scalar, zero-extended (what a 32-bit ALU op writes).
    pub fn zext32(&self) -> Scalar {
        let mut s = Scalar {
            var: self.var.subreg(),
            smin: self.u32min as i64,
            smax: self.u32max as i64,
            umin: self.u32min as u64,
            umax: self.u32max as u64,
            s32min: self.s32min,
            s32max: self.s32max,
            u32min: self.u32min,
            u32max: self.u32max,
        };
        s.sync();
        s
    }

    /// The low 32 bits, sign-extended to 64.
    fn sext32(&self) -> Scalar {
        let mut s = Scalar::srange(self.s32min as i64, self.s32max as i64);
        let sub = self.var.subreg();
        s.var = if sub.mask & 0x8000_0000 != 0 {
            Tnum {
                value: sub.value,
                mask: sub.mask | 0xffff_ffff_0000_0000,
            }
        } else if sub.value & 0x8000_0000 != 0 {
            Tnum {
                value: sub.value | 0xffff_ffff_0000_0000,
                mask: sub.mask,
            }
        } else {
            sub
        };
        s.sync();
        s
    }

    /// The low `bits` bits sign-extended (`movsx`, `ldsx`; `coerce_reg_to_size_sx`).
    pub fn sign_extend(&self, bits: u32) -> Scalar {
        if let Some(c) = self.as_const() {
            let sh = 64 - bits;
            return Scalar::constant((((c << sh) as i64) >> sh) as u64);
        }
        let half = 1i64 << (bits - 1);
        let m = (1u64 << bits) - 1;
        // When the value already fits the signed range, it is unchanged.
        if self.smin >= -half && self.smax < half {
            return *self;
        }
        if self.umax <= m && self.umax < half as u64 {
            return *self;
        }
        Scalar::srange(-half, half - 1)
    }

    /// The low `bytes` bytes, zero-extended (`coerce_reg_to_size`).
    pub fn truncate(&self, bytes: u32) -> Scalar {
        if bytes >= 8 {
            return *self;
        }
        let m = (1u64 << (bytes * 8)) - 1;
        let mut s = Scalar::UNKNOWN;
        s.var = self.var.cast(bytes);
        if self.umin & !m == self.umax & !m {
            s.umin = self.umin & m;
            s.umax = self.umax & m;
        } else {
            s.umin = 0;
            s.umax = m;
        }
        s.sync();
        s
    }

    /// `self op b` at `bits` (64 or 32) width, as `adjust_scalar_min_max_vals` computes it.
    pub fn alu(&self, op: AluOp, b: &Scalar, bits: u32) -> Scalar {
        if bits == 32 {
            let signed = matches!(op, AluOp::Arsh | AluOp::Sdiv | AluOp::Smod);
            let (x, y) = if signed {
                (self.sext32(), b.sext32())
            } else {
                (self.zext32(), b.zext32())
            };
            let r = match op {
                AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                    return shift(&self.zext32(), op, b, 32).zext32();
                }
                _ => x.alu(op, &y, 64),
            };
            return r.truncate(4);
        }
        let mut r = match op {
            AluOp::Add => {
                let mut r = Scalar::UNKNOWN;
                r.var = self.var.add(b.var);
                if let (Some(lo), Some(hi)) =
                    (self.smin.checked_add(b.smin), self.smax.checked_add(b.smax))
                {
                    r.smin = lo;
                    r.smax = hi;
                }
                if let (Some(lo), Some(hi)) =
                    (self.umin.checked_add(b.umin), self.umax.checked_add(b.umax))
                {
                    r.umin = lo;
                    r.umax = hi;
                }
                r
            }
            AluOp::Sub => {
                let mut r = Scalar::UNKNOWN;
                r.var = self.var.sub(b.var);
                if let (Some(lo), Some(hi)) =
                    (self.smin.checked_sub(b.smax), self.smax.checked_sub(b.smin))
                {
                    r.smin = lo;
                    r.smax = hi;
                }
                if self.umin >= b.umax {
                    r.umin = self.umin - b.umax;
                    r.umax = self.umax - b.umin;
                }
                r
            }
            AluOp::Mul => {
                let mut r = Scalar::UNKNOWN;
                r.var = self.var.mul(b.var);
                if let Some(hi) = self.umax.checked_mul(b.umax) {
                    r.umin = self.umin * b.umin;
                    r.umax = hi;
                }
                let prods = [
                    self.smin.checked_mul(b.smin),
                    self.smin.checked_mul(b.smax),
                    self.smax.checked_mul(b.smin),
                    self.smax.checked_mul(b.smax),
                ];
                if prods.iter().all(Option::is_some) {
                    let p = prods.map(Option::unwrap);
                    r.smin = *p.iter().min().unwrap();
                    r.smax = *p.iter().max().unwrap();
                }
                r
            }
            AluOp::And => {
                let mut r = Scalar::UNKNOWN;
                r.var = self.var.and(b.var);
                r.umax = self.umax.min(b.umax);
                if self.smin >= 0 || b.smin >= 0 {
                    r.smin = 0;
                    r.smax = if self.smin >= 0 && b.smin >= 0 {
                        self.smax.min(b.smax)
                    } else if self.smin >= 0 {
                        self.smax
                    } else {
                        b.smax
                    };
                }
                r
            }
            AluOp::Or => {
                let mut r = Scalar::UNKNOWN;
                r.var = self.var.or(b.var);
                r.umin = self.umin.max(b.umin);
                if self.smin >= 0 && b.smin >= 0 {
                    r.smin = self.smin.max(b.smin);
                }
                r
            }
            AluOp::Xor => {
                let mut r = Scalar::UNKNOWN;
                r.var = self.var.xor(b.var);
                if self.smin >= 0 && b.smin >= 0 {
                    r.smin = 0;
                }
                r
            }
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => return shift(self, op, b, 64),
            AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod => divmod(self, op, b),
            AluOp::Mov => *b,
            AluOp::Movsx(bits) => b.sign_extend(bits.bits()),
        };
        r.sync();
        r
    }

    /// `-self` at `bits` width.
    pub fn neg(&self, bits: u32) -> Scalar {
        Scalar::constant(0).alu(AluOp::Sub, self, bits)
    }

    /// Refines `(a, b)` assuming `a cond b` holds at `bits` width
    /// (`regs_refine_cond_op`). Returns `None` when it cannot hold.
    pub fn refine(a: &Scalar, b: &Scalar, cond: Cond, bits: u32) -> Option<(Scalar, Scalar)> {
        let (mut a, mut b) = (*a, *b);
        if bits == 32 {
            match cond {
                Cond::Eq => {
                    let lo = a.u32min.max(b.u32min);
                    let hi = a.u32max.min(b.u32max);
                    let slo = a.s32min.max(b.s32min);
                    let shi = a.s32max.min(b.s32max);
                    if a.var.subreg().disjoint(b.var.subreg()) {
                        return None;
                    }
                    let t = a.var.subreg().intersect(b.var.subreg());
                    for r in [&mut a, &mut b] {
                        r.u32min = lo;
                        r.u32max = hi;
                        r.s32min = slo;
                        r.s32max = shi;
                        r.var = r.var.with_subreg(t);
                    }
                }
                Cond::Ne => {
                    if let Some(c) = b.as_const32() {
                        shave32(&mut a, c);
                    }
                    if let Some(c) = a.as_const32() {
                        shave32(&mut b, c);
                    }
                }
                Cond::Lt | Cond::Le => {
                    let strict = cond == Cond::Lt as Cond;
                    let d = strict as u32;
                    if b.u32max < d || a.u32min == u32::MAX && strict {
                        return None;
                    }
                    a.u32max = a.u32max.min(b.u32max - d);
                    b.u32min = b.u32min.max(a.u32min + d);
                }
                Cond::Gt | Cond::Ge => {
                    let c = if cond == Cond::Gt { Cond::Lt } else { Cond::Le };
                    let (nb, na) = Scalar::refine(&b, &a, c, 32)?;
                    return Some((na, nb));
                }
                Cond::Slt | Cond::Sle => {
                    let strict = cond == Cond::Slt;
                    let d = strict as i32;
                    if strict && (b.s32max == i32::MIN || a.s32min == i32::MAX) {
                        return None;
                    }
                    a.s32max = a.s32max.min(b.s32max - d);
                    b.s32min = b.s32min.max(a.s32min + d);
                }
                Cond::Sgt | Cond::Sge => {
                    let c = if cond == Cond::Sgt {
                        Cond::Slt
                    } else {
                        Cond::Sle
                    };
                    let (nb, na) = Scalar::refine(&b, &a, c, 32)?;
                    return Some((na, nb));
                }
                Cond::Set => {
                    if let Some(c) = b.as_const32() {
                        if (a.var.value | a.var.mask) as u32 & c == 0 {
                            return None;
                        }
                    }
                }
                Cond::NotSet => {
                    if let Some(c) = b.as_const32() {
                        if a.var.value as u32 & c != 0 {
                            return None;
                        }
                        let m = !(c as u64);
                        a.var = Tnum {
                            value: a.var.value & m,
                            mask: a.var.mask & m,
                        };
                    }
                }
            }
        } else {
            match cond {
                Cond::Eq => {
                    if a.var.disjoint(b.var) {
                        return None;
                    }
                    let t = a.var.intersect(b.var);
                    let m = Scalar {
                        var: t,
                        smin: a.smin.max(b.smin),
                        smax: a.smax.min(b.smax),
                        umin: a.umin.max(b.umin),
                        umax: a.umax.min(b.umax),
                        s32min: a.s32min.max(b.s32min),
                        s32max: a.s32max.min(b.s32max),
                        u32min: a.u32min.max(b.u32min),
                        u32max: a.u32max.min(b.u32max),
                    };
                    a = m;
                    b = m;
                }
                Cond::Ne => {
                    if let Some(c) = b.as_const() {
                        shave64(&mut a, c);
                    }
                    if let Some(c) = a.as_const() {
                        shave64(&mut b, c);
                    }
                }
                Cond::Lt | Cond::Le => {
                    let strict = cond == Cond::Lt;
                    let d = strict as u64;
                    if b.umax < d || a.umin == u64::MAX && strict {
                        return None;
                    }
                    a.umax = a.umax.min(b.umax - d);
                    b.umin = b.umin.max(a.umin + d);
                }
                Cond::Gt | Cond::Ge => {
                    let c = if cond == Cond::Gt { Cond::Lt } else { Cond::Le };
                    let (nb, na) = Scalar::refine(&b, &a, c, 64)?;
                    return Some((na, nb));
                }
                Cond::Slt | Cond::Sle => {
                    let strict = cond == Cond::Slt;
                    let d = strict as i64;
                    if strict && (b.smax == i64::MIN || a.smin == i64::MAX) {
                        return None;
                    }
                    a.smax = a.smax.min(b.smax - d);
                    b.smin = b.smin.max(a.smin + d);
                }
                Cond::Sgt | Cond::Sge => {
                    let c = if cond == Cond::Sgt {
                        Cond::Slt
                    } else {
                        Cond::Sle
                    };
                    let (nb, na) = Scalar::refine(&b, &a, c, 64)?;
                    return Some((na, nb));
                }
                Cond::Set => {
                    if let Some(c) = b.as_const() {
                        if (a.var.value | a.var.mask) & c == 0 {
                            return None;
                        }
                    }
                }
                Cond::NotSet => {
                    if let Some(c) = b.as_const() {
                        if a.var.value & c != 0 {
                            return None;
                        }
                        a.var = Tnum {
                            value: a.var.value & !c,
                            mask: a.var.mask & !c,
                        };
                    }
                }
            }
        }
        if a.is_empty() || b.is_empty() {
            return None;
        }
        a.sync();
        b.sync();
        if a.is_empty() || b.is_empty() {
            return None;
        }
        Some((a, b))
    }
}

/// Removes `c` from `a` when it is one end of a's ranges (the kernel's `JNE` refinement).
fn shave64(a: &mut Scalar, c: u64) {
    if a.umin == c {
        a.umin = a.umin.wrapping_add(1);
        if a.umin == 0 {
            a.umin = 1;
            a.umax = 0;
        }
    } else if a.umax == c {
        a.umax = a.umax.wrapping_sub(1);
    }
    if a.smin == c as i64 && a.smin < a.smax {
        a.smin += 1;
    } else if a.smax == c as i64 && a.smin < a.smax {
        a.smax -= 1;
    } else if a.smin == a.smax && a.smin == c as i64 {
        a.smin = 1;
        a.smax = 0;
    }
}

fn shave32(a: &mut Scalar, c: u32) {
    if a.u32min == c && a.u32min < a.u32max {
        a.u32min += 1;
    } else if a.u32max == c && a.u32min < a.u32max {
        a.u32max -= 1;
    } else if a.u32min == a.u32max && a.u32min == c {
        a.u32min = 1;
        a.u32max = 0;
    }
    if a.s32min == c as i32 && a.s32min < a.s32max {
        a.s32min += 1;
    } else if a.s32max == c as i32 && a.s32min < a.s32max {
        a.s32max -= 1;
    }
}

/// Shifts (`scalar_min_max_lsh`/`rsh`/`arsh`). A shift amount that may be
/// out of range gives an unknown result, as the kernel's `mark_reg_unknown`.
fn shift(a: &Scalar, op: AluOp, b: &Scalar, bits: u32) -> Scalar {
    let w = bits as u64;
    if b.umax >= w {
        return if bits == 32 {
            Scalar::urange(0, u32::MAX as u64)
        } else {
            Scalar::UNKNOWN
        };
    }
    let (lo, hi) = (b.umin as u32, b.umax as u32);
    let mut out: Option<Scalar> = None;
    // Join over the (at most 64) possible shift amounts.
    for s in lo..=hi {
        let one = shift_const(a, op, s, bits);
        out = Some(match out {
            None => one,
            Some(o) => o.join(&one),
        });
    }
    let mut r = out.unwrap_or(Scalar::UNKNOWN);
    r.sync();
    r
}

fn shift_const(a: &Scalar, op: AluOp, s: u32, bits: u32) -> Scalar {
    let mut r = Scalar::UNKNOWN;
    match op {
        AluOp::Lsh => {
            r.var = a.var.lshift(s);
            if bits == 32 {
                r.var = r.var.subreg();
                r.umin = 0;
                r.umax = u32::MAX as u64;
                if (a.umax << s) >> s == a.umax && a.umax << s <= u32::MAX as u64 {
                    r.umin = a.umin << s;
                    r.umax = a.umax << s;
                }
            } else if a.umax.leading_zeros() >= s {
                r.umin = a.umin << s;
                r.umax = a.umax << s;
            }
        }
        AluOp::Rsh => {
            r.var = a.var.rshift(s);
            r.umin = a.umin >> s;
            r.umax = a.umax >> s;
        }
        _ => {
            if bits == 32 {
                let sa = a.sext32();
                r.var = sa.var.subreg().arshift(s, 32);
                r.umax = u32::MAX as u64;
                r.s32min = sa.s32min >> s;
                r.s32max = sa.s32max >> s;
                r.var = Tnum {
                    value: r.var.value,
                    mask: r.var.mask,
                };
            } else {
                r.var = a.var.arshift(s, 64);
                r.smin = a.smin >> s;
                r.smax = a.smax >> s;
            }
        }
    }
    r.sync();
    r
}

/// Division and modulo: exact for constants, bounded for unsigned ranges.
fn divmod(a: &Scalar, op: AluOp, b: &Scalar) -> Scalar {
    if let (Some(x), Some(y)) = (a.as_const(), b.as_const()) {
        let v = match op {
            AluOp::Div => x.checked_div(y).unwrap_or(0),
            AluOp::Mod => x.checked_rem(y).unwrap_or(x),
            AluOp::Sdiv => {
                if y == 0 {
                    0
                } else {
                    (x as i64).wrapping_div(y as i64) as u64
                }
            }
            _ => {
                if y == 0 {
                    x
                } else {
                    (x as i64).wrapping_rem(y as i64) as u64
                }
            }
        };
        return Scalar::constant(v);
    }
    match op {
        AluOp::Div if b.umin > 0 => Scalar::urange(a.umin / b.umax, a.umax / b.umin),
        AluOp::Div => Scalar::urange(0, a.umax),
        AluOp::Mod if b.umin > 0 => Scalar::urange(0, a.umax.min(b.umax - 1)),
        AluOp::Mod => Scalar::urange(0, a.umax),
        _ => Scalar::UNKNOWN,
    }
}

/// A jump condition, with the negation of `JSET` the false branch of a jump needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// signed `<`
    Slt,
    /// signed `<=`
    Sle,
    /// signed `>`
    Sgt,
    /// signed `>=`
    Sge,
    /// `a & b != 0`
    Set,
    /// `a & b == 0`
    NotSet,
}

impl Cond {
    /// The condition of a jump instruction.
    pub fn of(c: JmpCond) -> Cond {
        match c {
            JmpCond::Eq => Cond::Eq,
            JmpCond::Ne => Cond::Ne,
            JmpCond::Gt => Cond::Gt,
            JmpCond::Ge => Cond::Ge,
            JmpCond::Lt => Cond::Lt,
            JmpCond::Le => Cond::Le,
            JmpCond::Sgt => Cond::Sgt,
            JmpCond::Sge => Cond::Sge,
            JmpCond::Slt => Cond::Slt,
            JmpCond::Sle => Cond::Sle,
            JmpCond::Set => Cond::Set,
        }
    }

    /// The condition that holds when this one does not.
    pub fn negate(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Lt => Cond::Ge,
            Cond::Ge => Cond::Lt,
            Cond::Le => Cond::Gt,
            Cond::Gt => Cond::Le,
            Cond::Slt => Cond::Sge,
            Cond::Sge => Cond::Slt,
            Cond::Sle => Cond::Sgt,
            Cond::Sgt => Cond::Sle,
            Cond::Set => Cond::NotSet,
            Cond::NotSet => Cond::Set,
        }
    }

    /// The condition with its operands swapped.
    pub fn swap(self) -> Cond {
        match self {
            Cond::Lt => Cond::Gt,
            Cond::Gt => Cond::Lt,
            Cond::Le => Cond::Ge,
            Cond::Ge => Cond::Le,
            Cond::Slt => Cond::Sgt,
            Cond::Sgt => Cond::Slt,
            Cond::Sle => Cond::Sge,
            Cond::Sge => Cond::Sle,
            c => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_sync_and_arithmetic() {
        let a = Scalar::urange(0, 255);
        assert_eq!(
            a.var,
            Tnum {
                value: 0,
                mask: 255
            }
        );
        assert_eq!((a.smin, a.smax, a.u32max), (0, 255, 255));
        let b = a.alu(AluOp::Add, &Scalar::constant(10), 64);
        assert_eq!((b.umin, b.umax), (10, 265));
        let c = Scalar::constant(0xffff_ffff).alu(AluOp::Add, &Scalar::constant(1), 32);
        assert_eq!(c.as_const(), Some(0));
        let big = Scalar::constant(2147483647).alu(AluOp::Add, &Scalar::constant(2), 64);
        assert_eq!(big.as_const(), Some(2147483649));
        let (lt, _) =
            Scalar::refine(&Scalar::UNKNOWN, &Scalar::constant(10), Cond::Lt, 64).unwrap();
        assert_eq!((lt.umin, lt.umax), (0, 9));
        assert!(Scalar::refine(&Scalar::constant(3), &Scalar::constant(4), Cond::Eq, 64).is_none());
        assert!(Scalar::refine(&Scalar::constant(3), &Scalar::constant(3), Cond::Ne, 64).is_none());
        let sh = Scalar::urange(0, 255).alu(AluOp::Lsh, &Scalar::constant(2), 64);
        assert_eq!((sh.umin, sh.umax), (0, 1020));
        let neg = Scalar::constant(5).neg(64);
        assert_eq!(neg.as_const(), Some(-5i64 as u64));
    }
}
