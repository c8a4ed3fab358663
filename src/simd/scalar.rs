//! The scalar tier: one lane, plain arithmetic. Always available; the last resort when no
//! vector tier is, and a tier the tests pin to check the generic kernels at width one.

use core::ops::{Add, Div, Mul, Neg, Sub};

use super::Lanes;

/// Token of the scalar tier (always available).
#[derive(Clone, Copy, Debug)]
pub struct Scalar;

/// One lane of `T`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct One<T>(T);

macro_rules! scalar_ops {
    ($t:ty) => {
        impl Add for One<$t> {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn add(self, rhs: Self) -> Self {
                One(self.0 + rhs.0)
            }
        }
        impl Sub for One<$t> {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn sub(self, rhs: Self) -> Self {
                One(self.0 - rhs.0)
            }
        }
        impl Mul for One<$t> {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn mul(self, rhs: Self) -> Self {
                One(self.0 * rhs.0)
            }
        }
        impl Div for One<$t> {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn div(self, rhs: Self) -> Self {
                One(self.0 / rhs.0)
            }
        }
        impl Neg for One<$t> {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn neg(self) -> Self {
                One(-self.0)
            }
        }
    };
}
scalar_ops!(f32);
scalar_ops!(f64);

/// `2^k` for `k` in the normal exponent range of `f64`, built from its bits.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn pow2_f64(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `x * 2^n` for integral `n`, in three steps of at most 2^±700 so that no step overflows
/// before the product does. Results in the subnormal range may be rounded twice.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn ldexp_f64(x: f64, n: f64) -> f64 {
    if n.is_nan() {
        return f64::NAN;
    }
    let n = n.clamp(-2100.0, 2100.0) as i64;
    let a = n / 3;
    let b = (n - a) / 2;
    let c = n - a - b;
    x * pow2_f64(a) * pow2_f64(b) * pow2_f64(c)
}

macro_rules! scalar_lanes {
    ($t:ident, $bits:ident, $mant:expr, $bias:expr) => {
        impl Lanes for One<$t> {
            type Elem = $t;
            type Isa = Scalar;
            type Mask = bool;
            type Acc = f64;
            const LANES: usize = 1;

            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn splat(_: Scalar, x: $t) -> Self {
                One(x)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load(_: Scalar, src: &[$t]) -> Self {
                One(src[0])
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load_prefix(_: Scalar, _src: &[$t], fill: $t) -> Self {
                // A prefix shorter than one lane is empty.
                One(fill)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store(self, dst: &mut [$t]) {
                dst[0] = self.0;
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store_prefix(self, _dst: &mut [$t]) {}

            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn mul_add(self, b: Self, c: Self) -> Self {
                // Unfused: `f32::mul_add` is a libm call where the target has no FMA.
                One(self.0 * b.0 + c.0)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn abs(self) -> Self {
                One(self.0.abs())
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn min(self, rhs: Self) -> Self {
                One(if self.0 < rhs.0 { self.0 } else { rhs.0 })
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn max(self, rhs: Self) -> Self {
                One(if self.0 > rhs.0 { self.0 } else { rhs.0 })
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn round(self) -> Self {
                One(self.0.round_ties_even())
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn lt(self, rhs: Self) -> bool {
                self.0 < rhs.0
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn le(self, rhs: Self) -> bool {
                self.0 <= rhs.0
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn eq(self, rhs: Self) -> bool {
                self.0 == rhs.0
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn is_nan(self) -> bool {
                self.0.is_nan()
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn first_lanes(_: Scalar, n: usize) -> bool {
                n >= 1
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn select(mask: bool, if_true: Self, if_false: Self) -> Self {
                if mask {
                    if_true
                } else {
                    if_false
                }
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn any(mask: bool) -> bool {
                mask
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn ldexp(self, n: Self) -> Self {
                One(ldexp_f64(self.0 as f64, n.0 as f64) as $t)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn pow2_from_rounded(self) -> Self {
                One($t::from_bits(self.0.to_bits() << $mant))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn frexp_centered(self) -> (Self, Self) {
                let bits = self.0.to_bits();
                let e = ((bits >> $mant) as i64) - $bias;
                let m = $t::from_bits((bits & ((1 << $mant) - 1)) | (($bias as $bits) << $mant));
                if m >= core::$t::consts::SQRT_2 {
                    (One(m * 0.5), One((e + 1) as $t))
                } else {
                    (One(m), One(e as $t))
                }
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn reduce_sum(self) -> $t {
                self.0
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn reduce_max(self) -> $t {
                self.0
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_zero(_: Scalar) -> f64 {
                0.0
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_add(acc: f64, v: Self) -> f64 {
                acc + v.0 as f64
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_merge(a: f64, b: f64) -> f64 {
                a + b
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_sum(acc: f64) -> f64 {
                acc
            }
        }
    };
}
scalar_lanes!(f32, u32, 23, 127);
scalar_lanes!(f64, u64, 52, 1023);
