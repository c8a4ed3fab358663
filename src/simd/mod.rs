//! The lane engine: one small vector trait, [`Lanes`], and the backends that implement it.
//!
//! Every kernel in the crate is written once, generic over `V: Lanes`, and instantiated per
//! instruction-set tier (memchr's shape):
//!
//! | tier       | file          | f32 lanes | f64 lanes | how it is reached                        |
//! |------------|---------------|-----------|-----------|------------------------------------------|
//! | `Scalar`   | `scalar.rs`   | 1         | 1         | always; the last resort                  |
//! | `Portable` | `portable.rs` | 8         | 4         | always (`wide`: SSE2, NEON, simd128)     |
//! | `Avx2`     | `avx2.rs`     | 16 (2×8)  | 8 (2×4)   | runtime detection of AVX2 and FMA        |
//! | `Avx512`   | `avx512.rs`   | 16        | 8         | runtime detection of AVX-512F            |
//!
//! `pair.rs` adds `Pair<V>`, two vectors of a tier used as one twice as wide. The AVX2 tier's
//! lanes are pairs of `ymm` vectors (see `avx2::run`), and kernels whose per-element work is
//! one long dependent chain (`Map2::PAIRED` in `reduce.rs`, cross-entropy's gradient sweep)
//! run on pairs of the tier's lanes, so that the generic math interleaves two chains.
//!
//! # Which tiers agree bit for bit
//!
//! **The `Avx2` and `Avx512` tiers give bit-identical results** for every loss and every form
//! (reduced with `Mean` or `Sum`, `_each`, `_and_grad`, in place), in every storage type
//! (`f32`, `f64`, `bf16`, `f16`), for any shape and any number of threads: an evaluation gives
//! the same number on an AVX2-only CPU (a Zen 3, a Haswell) as on an AVX-512 one (a Sapphire
//! Rapids, a Zen 4). Every value agrees bit for bit, signed zeros and infinities included; a NaN
//! result is NaN on both (its payload bits are not part of the promise). This holds because
//! the two tiers run one layout of the data with one arithmetic:
//! - the same lane counts (16 f32, 8 f64: the AVX2 tier runs each vector as two `ymm`
//!   halves), so every kernel cuts its input into the same vectors, blocks and tails;
//! - the same association order wherever lanes are combined: `reduce_sum`/`reduce_max` fold
//!   the high half onto the low half, then the AVX2 8- (4-) lane fold, on both tiers; the `f64`
//!   accumulators hold the same lanes and `acc_sum` adds them in the same order; `transpose`
//!   moves the same elements;
//! - the same arithmetic per lane: IEEE-754 single operations, `mul_add` fused on both, and
//!   the same `exp`/`ln`/`log1p` code ([`math`]), whose tier-specific pieces
//!   (`pow2_from_rounded`, `frexp_centered`, `round`, `min`/`max`, half-precision conversions)
//!   are exact bit operations or correctly rounded instructions that give the same bits.
//!
//! `ldexp` is the one method whose instructions round differently (AVX-512's `vscalefps`
//! rounds once; AVX2 multiplies by two powers of two, which can round twice when the first
//! product is subnormal, and it clamps `n` to `±250`/`±2042`): the two agree on every input
//! that [`math::exp`] gives it (a value in `[0.7, 1.5]` and an integral `n`), and no loss calls
//! it otherwise. The promise assumes the default floating-point environment (round to nearest,
//! no flush-to-zero, no denormals-are-zero), which Rust programs run in.
//!
//! **The `Scalar` and `Portable` tiers may differ** from the x86 tiers and from each other, in
//! the last bits of any result: they have no fused multiply-add (their `mul_add` rounds
//! twice) and other widths (1 lane; 8 f32 / 4 f64 lanes), so they cut and sum the input in
//! another order. They stay within the error bounds documented for each loss and function.
//! `tests/suite/tier_agreement.rs` checks the x86 promise wherever both tiers run.
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
//!
//! Except unoptimised: there the attribute is written
//! `#[cfg_attr(not(losskit_unoptimized), inline(always))]`, and `build.rs` sets
//! `losskit_unoptimized` at opt-level 0. At O0 LLVM gives every temporary of every inlined
//! call its own stack slot (no stack colouring), which made the largest tier functions'
//! frames 2 MB (cross-entropy statistics over bf16 rows on AVX2) and overflowed 2 MiB thread
//! stacks in dependents' debug builds; called instead of inlined, each function's frame holds
//! only its own temporaries. Inlining never changes a result (no fast-math), so the bits are
//! those of the optimised build. Write new kernel functions with the same attribute.

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
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
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
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch<E>(isa: Self::Isa, src: &[E]) {
        let _ = (isa, src);
    }
    /// [`prefetch`](Lanes::prefetch) of every cache line of the first `len` elements of `src`
    /// (of those it has), a line being [`CACHE_LINE`] bytes.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch_lines<E>(isa: Self::Isa, src: &[E], len: usize) {
        let step = (CACHE_LINE / core::mem::size_of::<E>().max(1)).max(1);
        for at in (0..len.min(src.len())).step_by(step) {
            Self::prefetch(isa, &src[at..]);
        }
    }
    /// Writes all lanes to the first `LANES` elements of `dst`.
    fn store(self, dst: &mut [Self::Elem]);
    /// Writes the low `dst.len()` lanes (`dst` shorter than `LANES`). Writes only `dst`.
    fn store_prefix(self, dst: &mut [Self::Elem]);

    /// The first `LANES` values of `src` (16-bit floats), widened exactly. The x86 f32 lanes
    /// convert in registers; the default converts element by element through `half`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half<H: Half>(isa: Self::Isa, src: &[H]) -> Self {
        half::load_by_elements(isa, src)
    }
    /// `src` (shorter than `LANES`) widened into the low lanes, `fill` in the rest. Reads
    /// only `src`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half_prefix<H: Half>(isa: Self::Isa, src: &[H], fill: Self::Elem) -> Self {
        half::load_prefix_by_elements(isa, src, fill)
    }
    /// The first `LANES` class labels of `src` as lanes: each label as a float, or -1 where
    /// it equals `ignore`. Every other label must lie in `[0, 2^24)`, where the conversion is
    /// exact. The x86 tiers convert in registers (the stores of a scalar loop stall the vector
    /// load that follows them); the default converts label by label.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i64(isa: Self::Isa, src: &[i64], ignore: i64) -> Self {
        labels_by_elements(isa, &src[..Self::LANES], ignore)
    }
    /// [`from_labels_i64`](Lanes::from_labels_i64) for `i32` labels.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i32(isa: Self::Isa, src: &[i32], ignore: i32) -> Self {
        labels_by_elements(isa, &src[..Self::LANES], ignore)
    }
    /// Writes all lanes, each rounded to nearest even, to the first `LANES` values of `dst`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half<H: Half>(self, dst: &mut [H]) {
        half::store_by_elements(self, &mut dst[..Self::LANES]);
    }
    /// Writes the low `dst.len()` lanes (`dst` shorter than `LANES`), rounded to nearest
    /// even. Writes only `dst`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
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
    /// `a + b`, lane by lane (each `f64` lane of `a` plus the same lane of `b`). [`Pair`]
    /// sums its halves' accumulators this way before `acc_sum`, so that a pair of vectors
    /// sums in the order of one vector twice as wide.
    ///
    /// [`Pair`]: pair::Pair
    fn acc_merge(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The accumulator's lanes summed in a fixed order.
    fn acc_sum(acc: Self::Acc) -> f64;
}

/// [`Lanes::from_labels_i64`] label by label: `src` is `LANES` long.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn labels_by_elements<V: Lanes, L: Copy + PartialEq + Into<i64>>(
    isa: V::Isa,
    src: &[L],
    ignore: L,
) -> V {
    use crate::float::sealed::Sealed;
    let mut lanes = [V::Elem::ZERO; 16];
    for (lane, &label) in lanes.iter_mut().zip(src) {
        *lane = if label == ignore {
            -V::Elem::ONE
        } else {
            V::Elem::from_f64(label.into() as f64)
        };
    }
    V::load(isa, &lanes)
}

/// A computation over one contiguous piece of data, written once for every tier.
///
/// [`dispatch::Resolved::run`] calls `run` with the lanes of the chosen tier inside a function
/// compiled for that tier, so implementations must be `#[inline(always)]` for the tier's
/// instructions to be inlined into them.
/// The cache line the prefetch hints step by: 64 bytes on every x86 core, and on the ARM cores
/// that matter here (a longer line only makes some hints redundant).
pub(crate) const CACHE_LINE: usize = 64;

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
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
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

    /// `from_labels_i64` and `from_labels_i32` of the first `LANES` of 20 labels (ignored
    /// ones among them, and a 64-bit value whose low half is a class), as `f64`s.
    struct FromLabels {
        ignore: i64,
    }

    impl<T: Float> Kernel<T> for FromLabels {
        type Output = (Vec<f64>, Vec<f64>);
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
        fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> (Vec<f64>, Vec<f64>) {
            let wide: Vec<i64> = LABELS
                .iter()
                .map(|&l| if l < 0 { self.ignore } else { l })
                .collect();
            let narrow: Vec<i32> = wide.iter().map(|&l| l as i32).collect();
            let mut a = vec![T::ZERO; V::LANES];
            let mut b = vec![T::ZERO; V::LANES];
            V::from_labels_i64(isa, &wide, self.ignore).store(&mut a);
            V::from_labels_i32(isa, &narrow, self.ignore as i32).store(&mut b);
            let f = |v: Vec<T>| v.into_iter().map(Sealed::to_f64).collect();
            (f(a), f(b))
        }
    }

    /// Classes, with -1 where the ignore value goes.
    const LABELS: [i64; 20] = [
        3, 0, -1, 16_777_215, 7, -1, 1, 2, 31, 30, -1, 9, 5, 4, -1, 8, 6, 10, 11, 12,
    ];

    #[test]
    fn labels_become_lanes_on_every_tier() {
        // PyTorch's -100, a class value, and one whose low 32 bits are a class.
        for ignore in [-100i64, 7, (5i64 << 32) | 3] {
            for tier in Tier::available() {
                let want: Vec<f64> = LABELS
                    .iter()
                    .map(|&l| if l < 0 || l == ignore { -1.0 } else { l as f64 })
                    .collect();
                let (a, b) = tier.resolve().run::<f32, _>(FromLabels { ignore });
                assert_eq!(a, want[..a.len()], "{tier} f32 i64, ignore {ignore}");
                if ignore as i32 as i64 == ignore {
                    assert_eq!(b, want[..b.len()], "{tier} f32 i32, ignore {ignore}");
                }
                let (a, b) = tier.resolve().run::<f64, _>(FromLabels { ignore });
                assert_eq!(a, want[..a.len()], "{tier} f64 i64, ignore {ignore}");
                if ignore as i32 as i64 == ignore {
                    assert_eq!(b, want[..b.len()], "{tier} f64 i32, ignore {ignore}");
                }
            }
        }
    }
}
