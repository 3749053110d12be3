//! Tristate numbers: the kernel's `struct tnum` (kernel/bpf/tnum.c).
//!
//! A bit whose `mask` bit is 1 is unknown; otherwise it equals the `value` bit.

use core::fmt;

/// A 64-bit value with some bits known and some unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tnum {
    /// The known bits (unknown bits are 0 here).
    pub value: u64,
    /// The unknown bits.
    pub mask: u64,
}

impl fmt::Debug for Tnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

// The arithmetic is named after the kernel's tnum_add, tnum_sub, tnum_mul.
#[allow(clippy::should_implement_trait)]
impl Tnum {
    /// Every bit unknown (`tnum_unknown`).
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// A known constant (`tnum_const`).
    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// Whether every bit is known (`tnum_is_const`).
    pub const fn is_const(self) -> bool {
        self.mask == 0
    }

    /// The smallest tnum holding every value in `[min, max]` (`tnum_range`).
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    /// `tnum_add`.
    pub fn add(self, b: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(b.mask);
        let sv = self.value.wrapping_add(b.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    /// `tnum_sub`.
    pub fn sub(self, b: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(b.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(b.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    /// `tnum_and`.
    pub fn and(self, b: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = b.value | b.mask;
        let v = self.value & b.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    /// `tnum_or`.
    pub fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    /// `tnum_xor`.
    pub fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// `tnum_mul`, the kernel's shift-and-add form.
    pub fn mul(self, b: Tnum) -> Tnum {
        let mut a = self;
        let mut b = b;
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::constant(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.mask,
                });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.value | b.mask,
                });
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::constant(acc_v).add(acc_m)
    }

    /// `tnum_lshift`.
    pub fn lshift(self, s: u32) -> Tnum {
        Tnum {
            value: self.value.wrapping_shl(s),
            mask: self.mask.wrapping_shl(s),
        }
    }

    /// `tnum_rshift`.
    pub fn rshift(self, s: u32) -> Tnum {
        Tnum {
            value: self.value.wrapping_shr(s),
            mask: self.mask.wrapping_shr(s),
        }
    }

    /// `tnum_arshift` at 64 or 32 bits.
    pub fn arshift(self, s: u32, bits: u32) -> Tnum {
        if bits == 32 {
            Tnum {
                value: ((self.value as i32) >> s) as u32 as u64,
                mask: ((self.mask as i32) >> s) as u32 as u64,
            }
        } else {
            Tnum {
                value: ((self.value as i64) >> s) as u64,
                mask: ((self.mask as i64) >> s) as u64,
            }
        }
    }

    /// `tnum_intersect`: values both may hold.
    pub fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask & b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Whether the known bits of the two contradict each other.
    pub fn disjoint(self, b: Tnum) -> bool {
        (self.value ^ b.value) & !(self.mask | b.mask) != 0
    }

    /// Whether every value of `b` is a value of `self` (`tnum_in`).
    pub fn contains(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        b.value & !self.mask == self.value
    }

    /// The low `bytes` bytes, upper bits known zero (`tnum_cast`).
    pub fn cast(self, bytes: u32) -> Tnum {
        if bytes >= 8 {
            return self;
        }
        let m = (1u64 << (bytes * 8)) - 1;
        Tnum {
            value: self.value & m,
            mask: self.mask & m,
        }
    }

    /// The low 32 bits (`tnum_subreg`).
    pub fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// Whether the low 32 bits are known (`tnum_subreg_is_const`).
    pub fn subreg_is_const(self) -> bool {
        self.mask as u32 == 0
    }

    /// The upper 32 bits of `self` with the low 32 bits of `sub` (`tnum_with_subreg`).
    pub fn with_subreg(self, sub: Tnum) -> Tnum {
        let hi = Tnum {
            value: self.value & !0xffff_ffff,
            mask: self.mask & !0xffff_ffff,
        };
        hi.or(sub.subreg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_arithmetic_follow_the_kernel() {
        assert_eq!(
            Tnum::range(0, 255),
            Tnum {
                value: 0,
                mask: 255
            }
        );
        assert_eq!(Tnum::range(4, 4), Tnum::constant(4));
        let x = Tnum::range(0, 3).add(Tnum::constant(4));
        assert_eq!(x, Tnum { value: 4, mask: 3 });
        assert!(Tnum::range(0, 7).contains(x));
        assert!(!x.contains(Tnum::range(0, 7)));
        assert_eq!(Tnum::constant(6).mul(Tnum::constant(7)), Tnum::constant(42));
        assert_eq!(
            Tnum::UNKNOWN.and(Tnum::constant(0xf0)),
            Tnum {
                value: 0,
                mask: 0xf0
            }
        );
    }
}
