//! The portable tier, over the `wide` crate: 8 x f32 and 4 x f64 lanes on every target
//! (SSE2 on baseline x86-64, NEON on aarch64, simd128 on wasm, scalar arrays elsewhere).

use core::ops::{Add, Div, Mul, Neg, Sub};

use bytemuck::cast;
use wide::{f32x8, f64x4, u32x8, u64x4, CmpEq, CmpLe, CmpLt};

use super::Lanes;

/// Token of the portable tier (always available).
#[derive(Clone, Copy, Debug)]
pub struct Portable;

/// Eight `f32` lanes.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x8(f32x8);

/// Four `f64` lanes.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x4(f64x4);

macro_rules! wide_ops {
    ($v:ident) => {
        impl Add for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn add(self, rhs: Self) -> Self {
                $v(self.0 + rhs.0)
            }
        }
        impl Sub for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn sub(self, rhs: Self) -> Self {
                $v(self.0 - rhs.0)
            }
        }
        impl Mul for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn mul(self, rhs: Self) -> Self {
                $v(self.0 * rhs.0)
            }
        }
        impl Div for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn div(self, rhs: Self) -> Self {
                $v(self.0 / rhs.0)
            }
        }
        impl Neg for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn neg(self) -> Self {
                $v(-self.0)
            }
        }
    };
}
wide_ops!(F32x8);
wide_ops!(F64x4);

/// Sums an array pairwise over halves: the same order as the x86 tiers' horizontal sums.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn pairwise_sum<T: crate::Float, const N: usize>(mut a: [T; N]) -> T {
    let mut n = N;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            a[i] = a[i] + a[i + n];
        }
    }
    a[0]
}

/// The largest element, pairwise over halves with x86 `max` semantics.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn pairwise_max<T: crate::Float, const N: usize>(mut a: [T; N]) -> T {
    let mut n = N;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            a[i] = if a[i] > a[i + n] { a[i] } else { a[i + n] };
        }
    }
    a[0]
}

macro_rules! wide_lanes {
    (
        $v:ident, $w:ident, $t:ident, $u:ident, $n:literal,
        mant: $mant:literal, bias: $bias:literal, magic: $magic:literal, acc: $acc:ty
    ) => {
        impl Lanes for $v {
            type Elem = $t;
            type Isa = Portable;
            type Mask = $w;
            type Acc = $acc;
            const LANES: usize = $n;

            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn splat(_: Portable, x: $t) -> Self {
                $v($w::splat(x))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load(_: Portable, src: &[$t]) -> Self {
                let mut a = [0.0; $n];
                a.copy_from_slice(&src[..$n]);
                $v($w::from(a))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load_prefix(_: Portable, src: &[$t], fill: $t) -> Self {
                let mut a = [fill; $n];
                let k = src.len().min($n);
                a[..k].copy_from_slice(&src[..k]);
                $v($w::from(a))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store(self, dst: &mut [$t]) {
                dst[..$n].copy_from_slice(&self.0.to_array());
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store_prefix(self, dst: &mut [$t]) {
                let k = dst.len().min($n);
                dst[..k].copy_from_slice(&self.0.to_array()[..k]);
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn mul_add(self, b: Self, c: Self) -> Self {
                $v(self.0.mul_add(b.0, c.0))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn abs(self) -> Self {
                $v(self.0.abs())
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn min(self, rhs: Self) -> Self {
                $v(self.0.cmp_lt(rhs.0).blend(self.0, rhs.0))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn max(self, rhs: Self) -> Self {
                $v(rhs.0.cmp_lt(self.0).blend(self.0, rhs.0))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn round(self) -> Self {
                $v(self.0.round())
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn lt(self, rhs: Self) -> $w {
                self.0.cmp_lt(rhs.0)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn le(self, rhs: Self) -> $w {
                self.0.cmp_le(rhs.0)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn eq(self, rhs: Self) -> $w {
                self.0.cmp_eq(rhs.0)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn is_nan(self) -> $w {
                self.0.is_nan()
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn first_lanes(_: Portable, n: usize) -> $w {
                let iota: [$t; $n] = core::array::from_fn(|i| i as $t);
                $w::from(iota).cmp_lt($w::splat(n.min($n) as $t))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn select(mask: $w, if_true: Self, if_false: Self) -> Self {
                $v(mask.blend(if_true.0, if_false.0))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn any(mask: $w) -> bool {
                mask.any()
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn ldexp(self, n: Self) -> Self {
                // 2^k from bits: adding 1.5 * 2^mant puts k in the low mantissa bits, and
                // shifting (k + bias) into the exponent field drops everything above it.
                // Two factors of at most 2^±(bias - 1) each cover the whole useful range.
                let lim = (2 * $bias - 4) as $t;
                let n = n.0.max($w::splat(-lim)).min($w::splat(lim));
                let half = (n * $w::splat(0.5)).round();
                let rest = n - half;
                let pow2 = |k: $w| -> $w {
                    let bits: $u = cast(k + $w::splat($magic));
                    cast((bits + $u::splat($bias)) << $mant)
                };
                $v(self.0 * pow2(half) * pow2(rest))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn pow2_from_rounded(self) -> Self {
                let bits: $u = cast(self.0);
                $v(cast(bits << $mant))
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn frexp_centered(self) -> (Self, Self) {
                let bits: $u = cast(self.0);
                let mant_mask = $u::splat((1 << $mant) - 1);
                let one: $u = cast($w::splat(1.0));
                let m: $w = cast((bits & mant_mask) | one);
                // The biased exponent as a float: OR it into the mantissa of 2^mant.
                let two_mant = $w::splat((1u64 << $mant) as $t);
                let e_field: $w = cast((bits >> $mant) | cast::<$w, $u>(two_mant));
                let e = e_field - two_mant - $w::splat($bias as $t);
                let small = m.cmp_lt($w::splat(core::$t::consts::SQRT_2));
                (
                    $v(small.blend(m, m * $w::splat(0.5))),
                    $v(small.blend(e, e + $w::splat(1.0))),
                )
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn reduce_sum(self) -> $t {
                pairwise_sum(self.0.to_array())
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn reduce_max(self) -> $t {
                pairwise_max(self.0.to_array())
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_zero(_: Portable) -> $acc {
                [f64x4::splat(0.0); $n / 4]
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_add(acc: $acc, v: Self) -> $acc {
                let a = v.0.to_array();
                let mut out = acc;
                for (j, o) in out.iter_mut().enumerate() {
                    let q: [f64; 4] = core::array::from_fn(|i| a[4 * j + i] as f64);
                    *o += f64x4::from(q);
                }
                out
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_merge(a: $acc, b: $acc) -> $acc {
                let mut out = a;
                for (o, &x) in out.iter_mut().zip(b.iter()) {
                    *o += x;
                }
                out
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn acc_sum(acc: $acc) -> f64 {
                let total = acc.iter().fold(f64x4::splat(0.0), |s, &x| s + x);
                pairwise_sum(total.to_array())
            }
        }
    };
}

wide_lanes!(F32x8, f32x8, f32, u32x8, 8,
    mant: 23, bias: 127, magic: 12582912.0, acc: [f64x4; 2]);
wide_lanes!(F64x4, f64x4, f64, u64x4, 4,
    mant: 52, bias: 1023, magic: 6755399441055744.0, acc: [f64x4; 1]);
