//! The lane engine: one small vector trait, [`Lanes`], and the backends that implement it.
//!
//! Every kernel in the crate is written once, generic over `V: Lanes`, and instantiated per
//! instruction-set tier (memchr's shape):
//!
//! | tier       | file          | f32 lanes | f64 lanes | how it is reached                        |
//! |------------|---------------|-----------|-----------|------------------------------------------|
//! | `Scalar`   | `scalar.rs`   | 1         | 1         | always; the last resort                  |
//! | `Portable` | `portable.rs` | 8         | 4         | always (`wide`: SSE2, NEON, simd128)     |
//! | `Avx2`     | `avx2.rs`     | 8         | 4         | runtime detection of AVX2 and FMA        |
//! | `Avx512`   | `avx512.rs`   | 16        | 8         | runtime detection of AVX-512F            |
//!
//! `pair.rs` adds `Pair<V>`, two vectors of a tier used as one twice as wide, for maps whose
//! per-element work is one long dependent chain (`Map2::PAIRED` in `reduce.rs`): the generic
//! math then interleaves two chains.
//!
//! # Soundness
//!
//! Each tier has a zero-sized *token* type (`Lanes::Isa`) whose only constructors check the CPU
//! (or are `unsafe` and documented as requiring that check). Every function that creates a
//! vector from nothing (`splat`, `load`, ...) takes the token, and every other method takes a
//! vector, so a vector value is itself proof that its instructions exist. That is what makes the
//! trait's methods safe to call, and keeps `unsafe` inside this module.
//!
//! A kernel only runs at full speed when it is inlined into a function compiled with the tier's
//! target features: [`dispatch`] instantiates [`Kernel::run`] inside such a function for each
//! tier, so every method here is `#[inline(always)]`, and so must kernels' `run` bodies be.

pub(crate) mod dispatch;
pub(crate) mod half;
pub(crate) mod math;
pub(crate) mod pair;
pub(crate) mod portable;
pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::Float;
pub(crate) use half::Half;

/// A vector of `LANES` elements of `Elem`, for one instruction-set tier.
///
/// Semantics every backend shares (the differential tests hold them to it):
/// - arithmetic is IEEE-754 per lane, rounding to nearest; `mul_add` is fused where the tier has
///   FMA (AVX2, AVX-512) and may round twice elsewhere;
/// - `min`/`max` follow x86 (`a < b ? a : b`): if either operand is NaN the *second* is returned,
///   so callers that must propagate NaN put the accumulator first and test NaN separately;
/// - loads and stores never touch memory outside the slice they are given.
pub trait Lanes:
    Copy
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// The element type.
    type Elem: Float;
    /// The tier's token: proof that the CPU has the instructions.
    type Isa: Copy + Send + Sync + 'static;
    /// The result of a lane-wise comparison.
    type Mask: Copy;
    /// An `f64` accumulator that every lane of `Self` can be added into without loss.
    type Acc: Copy;
    /// Number of lanes.
    const LANES: usize;

    /// All lanes set to `x`.
    fn splat(isa: Self::Isa, x: Self::Elem) -> Self;
    /// The first `LANES` elements of `src` (which must have at least that many).
    fn load(isa: Self::Isa, src: &[Self::Elem]) -> Self;
    /// `src` (shorter than `LANES`) in the low lanes, `fill` in the rest. Reads only `src`.
    fn load_prefix(isa: Self::Isa, src: &[Self::Elem], fill: Self::Elem) -> Self;
    #[inline(always)]
    fn transpose(isa: Self::Isa, block: &mut [Self]) {
        let zero = <Self::Elem as crate::float::sealed::Sealed>::ZERO;
        let l = Self::LANES;
        assert_eq!(block.len(), l);
        let mut rows = [[zero; 16]; 16];
        for (row, v) in rows.iter_mut().zip(block.iter()) {
            v.store(&mut row[..l]);
        }
        for (j, v) in block.iter_mut().enumerate() {
            let mut col = [zero; 16];
            for (i, c) in col[..l].iter_mut().enumerate() {
                *c = rows[i][j];
            }
            *v = Self::load(isa, &col);
        }
    }
    /// Hints the CPU to bring the cache line holding `src[0]` (of any element type) into L1
    /// (nothing if `src` is empty). Never faults, never changes a result. The default does nothing.
    #[inline(always)]
    fn prefetch<E>(isa: Self::Isa, src: &[E]) {
        let _ = (isa, src);
    }
    /// Writes all lanes to the first `LANES` elements of `dst`.
    fn store(self, dst: &mut [Self::Elem]);
    /// Writes the low `dst.len()` lanes (`dst` shorter than `LANES`). Writes only `dst`.
    fn store_prefix(self, dst: &mut [Self::Elem]);

    /// The first `LANES` values of `src` (16-bit floats), widened exactly. The x86 f32 lanes
    /// convert in registers; the default converts element by element through `half`.
    #[inline(always)]
    fn load_half<H: Half>(isa: Self::Isa, src: &[H]) -> Self {
        half::load_by_elements(isa, src)
    }
    /// `src` (shorter than `LANES`) widened into the low lanes, `fill` in the rest. Reads
    /// only `src`.
    #[inline(always)]
    fn load_half_prefix<H: Half>(isa: Self::Isa, src: &[H], fill: Self::Elem) -> Self {
        half::load_prefix_by_elements(isa, src, fill)
    }
    /// Writes all lanes, each rounded to nearest even, to the first `LANES` values of `dst`.
    #[inline(always)]
    fn store_half<H: Half>(self, dst: &mut [H]) {
        half::store_by_elements(self, &mut dst[..Self::LANES]);
    }
    /// Writes the low `dst.len()` lanes (`dst` shorter than `LANES`), rounded to nearest
    /// even. Writes only `dst`.
    #[inline(always)]
    fn store_half_prefix<H: Half>(self, dst: &mut [H]) {
        half::store_by_elements(self, dst);
    }

    /// `self * b + c`.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Absolute value (clears the sign bit; NaN stays NaN).
    fn abs(self) -> Self;
    /// `self < rhs ? self : rhs`.
    fn min(self, rhs: Self) -> Self;
    /// `self > rhs ? self : rhs`.
    fn max(self, rhs: Self) -> Self;
    /// Round to the nearest integer, ties to even.
    fn round(self) -> Self;

    /// Lanes where `self < rhs` (false when either is NaN).
    fn lt(self, rhs: Self) -> Self::Mask;
    /// Lanes where `self <= rhs` (false when either is NaN).
    fn le(self, rhs: Self) -> Self::Mask;
    /// Lanes where `self == rhs` (false when either is NaN).
    fn eq(self, rhs: Self) -> Self::Mask;
    /// Lanes that are NaN.
    fn is_nan(self) -> Self::Mask;
    /// Lanes `0..n` set (all lanes when `n >= LANES`).
    fn first_lanes(isa: Self::Isa, n: usize) -> Self::Mask;
    /// `mask ? if_true : if_false`, lane-wise.
    fn select(mask: Self::Mask, if_true: Self, if_false: Self) -> Self;
    /// Whether any lane of the mask is set.
    fn any(mask: Self::Mask) -> bool;

    /// `self * 2^n` for integral `n` (in `Elem`), saturating to 0 or ±inf like `ldexp`;
    /// NaN `self` gives NaN. Used by `exp`.
    fn ldexp(self, n: Self) -> Self;
    /// `2^k` from `self = 1.5·2^p + bias + k`, where `p` is the number of explicit mantissa
    /// bits (23, 52) and `bias` the exponent bias (127, 1023): one shift of `self`'s low
    /// significand bits, which hold `k + bias`, into the exponent field. For `k` in the normal
    /// exponent range (`[-126, 127]`, `[-1022, 1023]`); other values give unspecified results.
    ///
    /// `fma(x, c, 1.5·2^p + bias)` rounds `x·c` to the integer `k` and leaves `self` in this
    /// form, so `math::exp_nonpositive` gets both `k` (as a float, by one subtraction) and
    /// `2^k` from one fused multiply-add.
    fn pow2_from_rounded(self) -> Self;
    /// Splits finite positive normal `self` into `(m, e)` with `self = m * 2^e`,
    /// `m` in `[sqrt(1/2), sqrt(2))` and `e` integral. Used by `ln`; other inputs are handled by
    /// the caller.
    fn frexp_centered(self) -> (Self, Self);

    /// The sum of all lanes, in a fixed order (pairwise over lane halves).
    fn reduce_sum(self) -> Self::Elem;
    /// The largest lane (x86 `max` semantics, pairwise over lane halves).
    fn reduce_max(self) -> Self::Elem;

    /// An accumulator holding zero.
    fn acc_zero(isa: Self::Isa) -> Self::Acc;
    /// `acc + self`, each lane widened to `f64` exactly.
    fn acc_add(acc: Self::Acc, v: Self) -> Self::Acc;
    /// The accumulator's lanes summed in a fixed order.
    fn acc_sum(acc: Self::Acc) -> f64;
}

/// A computation over one contiguous piece of data, written once for every tier.
///
/// [`dispatch::Resolved::run`] calls `run` with the lanes of the chosen tier inside a function
/// compiled for that tier, so implementations must be `#[inline(always)]` for the tier's
/// instructions to be inlined into them.
pub(crate) trait Kernel<T: Float> {
    type Output;
    fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> Self::Output;
}

pub use dispatch::{with_tier, Tier};

#[cfg(test)]
mod tests {
    use super::{Kernel, Lanes};
    use crate::float::sealed::Sealed;
    use crate::{Float, Tier};

    /// Transposes the `LANES x LANES` block `0, 1, 2, ...` and returns it row-major.
    struct Transpose;

    impl<T: Float> Kernel<T> for Transpose {
        type Output = Vec<f64>;
        #[inline(always)]
        fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> Vec<f64> {
            let l = V::LANES;
            let data: Vec<T> = (0..l * l).map(T::from_usize).collect();
            let mut block: Vec<V> = data.chunks(l).map(|r| V::load(isa, r)).collect();
            V::transpose(isa, &mut block);
            let mut out = vec![T::ZERO; l * l];
            for (v, o) in block.iter().zip(out.chunks_mut(l)) {
                v.store(o);
            }
            out.into_iter().map(Sealed::to_f64).collect()
        }
    }

    fn check<T: Float>() {
        for tier in Tier::available() {
            let out = tier.resolve().run::<T, _>(Transpose);
            let l = (out.len() as f64).sqrt() as usize;
            for i in 0..l {
                for j in 0..l {
                    assert_eq!(
                        out[i * l + j],
                        (j * l + i) as f64,
                        "{tier} {}: [{i}][{j}]",
                        T::NAME
                    );
                }
            }
        }
    }

    #[test]
    fn transpose_is_a_transpose_on_every_tier() {
        check::<f32>();
        check::<f64>();
    }
}
