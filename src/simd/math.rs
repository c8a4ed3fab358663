//! Vector `exp`, `ln` and `log1p`, and `softplus` / `log_sigmoid` built on them, written once
//! over [`Lanes`] for `f32` and `f64`.
//!
//! Every function here is `#[inline(always)]`: it is meant to be inlined into a [`Kernel`]
//! body, which [`dispatch`](super::dispatch) instantiates inside a function compiled with the
//! tier's target features. Only the trait's methods are used, so one source serves every tier.
//!
//! # Algorithms
//!
//! - [`exp`]: Cody–Waite reduction `x = n·ln2 + r`, `|r| <= ln2/2`, with `ln2` split in two so
//!   that `n·LN2_HI` is exact; `exp(r) = 1 + r + r²·Q(r)` with a minimax `Q` (degree 4 for f32,
//!   9 for f64, Horner with `mul_add`); the result is `ldexp(exp(r), n)`. No division.
//! - [`ln`]: `x = m·2^e` with `m` in `[sqrt(1/2), sqrt(2))` ([`Lanes::frexp_centered`],
//!   subnormal inputs scaled into the normal range first), `f = m - 1`, `s = f/(2+f)` and fdlibm's
//!   arrangement `ln(1+f) = f - f²/2 + s·(f²/2 + R(s²))`, where `R` is a minimax polynomial
//!   (3 terms for f32, fdlibm's 7 for f64). One division. A vector whose lanes are all
//!   positive, normal and finite (one compare-and-test decides) skips the range handling
//!   (subnormal lift, zeros, negatives, infinities, NaN): about a third of the operations of
//!   the whole function, with the same bits in every lane, since that handling leaves such
//!   lanes as they are.
//! - [`log1p`]: `u = 1 + x` rounded, `ln(u)` as above, plus the first-order correction
//!   `(x - (u - 1))/u` for the rounding of `u` (the numerator is exact). Two divisions. As
//!   for `ln`, a vector with every lane in `(-1, +inf)` skips the range handling but for the
//!   sign of zero.
//! - [`exp_nonpositive`] / [`exp_nonpositive_clamped`]: `exp` for `x <= 0` as softmax sums
//!   and sigmoids need it: the same reduction and polynomial, but one `mul_add` with
//!   `1.5·2^p + bias` rounds `x·log2(e)` to `n` and leaves `2^n` in its low bits
//!   ([`Lanes::pow2_from_rounded`]), so the scaling is one shift and one multiplication; below
//!   `ln(MIN_POSITIVE)` the first flushes to zero, the second clamps (for sums with a term of 1).
//! - [`log1p_unit`]: `log1p` on `[0, 1]` (`log1p(exp(-|x|))`): for f32 a division-free
//!   `e·P(e)`, `P` a degree-9 minimax polynomial; f64 uses [`log1p`]'s core.
//! - [`softplus`] / [`log_sigmoid`]: `max(x,0) + log1p_unit(exp_nonpositive(-|x|))` and
//!   `min(x,0) - log1p_unit(exp_nonpositive(-|x|))`.
//!
//! # Accuracy
//!
//! Each function's documentation states its maximum error in ULP, measured against the correctly
//! rounded result, and the tests at the bottom of this file assert exactly those bounds on every
//! tier this CPU can run (scalar and portable tiers round `mul_add` twice; AVX2 and AVX-512 fuse
//! it). f32 results are checked against the f64 computation rounded to f32. f64 results are
//! checked against the system `libm` (`std`), which is itself not correctly rounded, so the f64
//! tests assert the stated bound plus one ULP of slack for the reference. The stated f64 bounds
//! were also checked offline against 200-bit `mpmath` values on 250,000 points (largest errors
//! vs the exact value: exp 0.99, ln 0.75, log1p 0.77 ULP; softplus and log_sigmoid were then
//! built on `exp` and `log1p`, and are now tested against `std` only). The
//! AVX-512 tier compiles from the same source but is tested only on CPUs that have it.
//!
//! The AVX2 and AVX-512 tiers give the same bits for every function here and every input
//! (NaN inputs give NaN on both): the code and its fused `mul_add`s are the same, and the
//! tier-specific steps ([`Lanes::pow2_from_rounded`], [`Lanes::frexp_centered`],
//! [`Lanes::round`], `min`/`max`, and [`Lanes::ldexp`] on the `[0.7, 1.5]` values [`exp`] scales)
//! give identical bits. The accuracy tests assert it on every point where both tiers run.
//!
//! [`Kernel`]: super::Kernel

use super::Lanes;
use crate::float::sealed::Sealed;
use crate::Float;

/// The per-type constants of the functions in this module.
///
/// Chosen by element size in [`consts`], which folds to one table after monomorphization, so
/// the generic functions need no bound beyond `Lanes::Elem: Float`.
struct Consts {
    /// `ln 2` split as `LN2_HI + LN2_LO`, with `LN2_HI` short enough that `n·LN2_HI` is exact
    /// for every `n` that `exp` and `ln` produce (|n| < 2^8 for f32, < 2^11 for f64).
    ln2_hi: f64,
    ln2_lo: f64,
    /// `log2(e)`.
    log2e: f64,
    /// `exp` clamps its argument to `[exp_lo, exp_hi]`: below `exp_lo` the result rounds to
    /// zero, above `exp_hi` it overflows, so clamping changes no result and keeps `n` small.
    exp_lo: f64,
    exp_hi: f64,
    /// `ln(MIN_POSITIVE)`: below it [`exp_nonpositive`] flushes to zero.
    exp_normal_lo: f64,
    /// `Q(r)` of `exp(r) ≈ 1 + r + r²·Q(r)` on `[-ln2/2, ln2/2]`, lowest degree first
    /// (minimax for relative error: 2^-28.0 for f32, 2^-56.3 for f64 after rounding).
    exp_poly: &'static [f64],
    /// `R(z)/z` of `2·atanh(s) = 2s + s·R(s²)` on `s² <= (3 - 2·sqrt 2)²`, lowest degree first
    /// (absolute error of `R`: 2^-29.1 for f32, fdlibm's 2^-58.45 for f64).
    ln_poly: &'static [f64],
    /// `1.5·2^p + bias` (`p` mantissa bits): adding it rounds to an integer `n` and leaves
    /// `n + bias` in the low significand bits ([`Lanes::pow2_from_rounded`]).
    round_shift: f64,
    /// `P(e)` of `log1p(e) ≈ e·P(e)` on `[0, 1]`, lowest degree first, for [`log1p_unit`]
    /// (f32 only: relative error 2^-27.5 with the coefficients rounded to f32; f64 uses
    /// [`log1p_core`], whose polynomial would need degree ~21 here).
    log1p_unit_poly: &'static [f64],
    /// The smallest positive normal value.
    min_positive: f64,
    /// `2^k` that lifts every subnormal into the normal range, and `k`.
    subnormal_scale: f64,
    subnormal_log2: f64,
    /// [`tanh`] returns `x` itself below this magnitude (where `x - x³/3` rounds to `x`: below
    /// `2^-13` for f32, `2^-27` for f64) and computes `expm1(2|x|)` with `2|x|` clamped at
    /// `tanh_hi` (where `tanh` rounds to 1: `2|x| > 18.1` for f32, `> 38.2` for f64).
    tanh_tiny: f64,
    tanh_hi: f64,
}

const F32: Consts = Consts {
    // 0x3f317200: 15 significant bits, so n·LN2_HI is exact for |n| < 2^9.
    ln2_hi: 0.693_145_751_953_125,
    ln2_lo: 1.428_606_820_309_417_2e-6,
    log2e: core::f64::consts::LOG2_E,
    // exp(-104) < 2^-150 (half the smallest subnormal); exp(89) > f32::MAX.
    exp_lo: -104.0,
    exp_hi: 89.0,
    exp_normal_lo: -87.336_544_750_553_1,
    exp_poly: &[
        0.499_999_940_395_355_2,
        0.166_665_211_319_923_4,
        0.041_668_388_992_547_99,
        0.008_368_710_055_947_304,
        0.001_381_461_275_741_458,
    ],
    ln_poly: &[
        0.666_667_759_418_487_5,
        0.399_775_415_658_950_8,
        0.298_717_290_163_040_16,
    ],
    round_shift: 12_583_039.0, // 1.5 * 2^23 + 127
    // Remez for relative error on [0, 1] (mpmath, 40 digits), each coefficient rounded to f32
    // in turn from the lowest and the higher ones refitted, so the bound holds as stored.
    log1p_unit_poly: &[
        1.0,
        -0.499_999_314_546_585_1,
        0.333_304_643_630_981_45,
        -0.249_580_189_585_685_73,
        0.196_921_020_746_231_08,
        -0.153_448_805_212_974_55,
        0.106_611_281_633_377_08,
        -0.057_457_230_985_164_64,
        0.020_086_241_886_019_707,
        -0.003_290_468_594_059_348,
    ],
    min_positive: f32::MIN_POSITIVE as f64,
    subnormal_scale: 8_388_608.0, // 2^23
    subnormal_log2: 23.0,
    tanh_tiny: 1.220_703_125e-4, // 2^-13
    tanh_hi: 20.0,
};

const F64: Consts = Consts {
    // fdlibm's split: 0x3fe62e42fee00000 has 32 significant bits.
    ln2_hi: 6.931_471_803_691_238e-1,
    ln2_lo: 1.908_214_929_270_587_7e-10,
    log2e: core::f64::consts::LOG2_E,
    // exp(-746) < 2^-1075 (half the smallest subnormal); exp(710) > f64::MAX.
    exp_lo: -746.0,
    exp_hi: 710.0,
    exp_normal_lo: -708.396_418_532_264_1,
    exp_poly: &[
        0.500_000_000_000_001_1,
        0.166_666_666_666_664_13,
        0.041_666_666_666_530_267,
        0.008_333_333_333_494_333,
        0.001_388_888_894_359_769,
        0.000_198_412_695_067_796_64,
        2.480_149_313_619_725_4e-5,
        2.755_758_626_640_848_6e-6,
        2.763_023_391_495_863_6e-7,
        2.500_007_229_215_124_4e-8,
    ],
    // fdlibm's Lg1..Lg7.
    ln_poly: &[
        6.666_666_666_666_735e-1,
        3.999_999_999_940_942e-1,
        2.857_142_874_366_239e-1,
        2.222_219_843_214_978_4e-1,
        1.818_357_216_161_805e-1,
        1.531_383_769_920_937_3e-1,
        1.479_819_860_511_658_6e-1,
    ],
    round_shift: 6_755_399_441_056_767.0, // 1.5 * 2^52 + 1023
    log1p_unit_poly: &[],
    min_positive: f64::MIN_POSITIVE,
    subnormal_scale: 4_503_599_627_370_496.0, // 2^52
    subnormal_log2: 52.0,
    tanh_tiny: 7.450_580_596_923_828e-9, // 2^-27
    tanh_hi: 40.0,
};

/// The constant table of element type `T` (`f32` or `f64`: `Float` is sealed to those two).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn consts<T: Float>() -> &'static Consts {
    if core::mem::size_of::<T>() == 4 {
        &F32
    } else {
        &F64
    }
}

/// `c` (an `f64` constant, rounded to the element type) in every lane.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn splat<V: Lanes>(isa: V::Isa, c: f64) -> V {
    V::splat(isa, <V::Elem as Sealed>::from_f64(c))
}

/// `Σ coeffs[k]·x^k` by Horner's rule with `mul_add`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn horner<V: Lanes>(isa: V::Isa, x: V, coeffs: &[f64]) -> V {
    let (&last, rest) = coeffs.split_last().expect("a polynomial has a coefficient");
    let mut acc = splat::<V>(isa, last);
    for &c in rest.iter().rev() {
        acc = acc.mul_add(x, splat(isa, c));
    }
    acc
}

/// `e^x`, lane-wise.
///
/// **Error: at most 1 ULP** from the correctly rounded result (f32 and f64, every tier), for
/// every input including subnormal results.
///
/// Range handling:
/// - `x > ln(MAX)` (about 88.72 for f32, 709.78 for f64) gives `+inf`, `+inf` gives `+inf`;
/// - underflow is gradual: results in the subnormal range are rounded once, from the
///   polynomial's value, onto the subnormal grid (so they too are within the bound), and inputs
///   whose result is below half the smallest subnormal (about -103.97 for f32, -745.13 for f64)
///   give `+0`, as does `-inf`;
/// - NaN gives NaN.
// The softmax and sigmoid losses need only `e^x` for `x <= 0` ([`exp_nonpositive`],
// [`exp_nonpositive_clamped`]); this full-range form is their tested reference point, and the
// `exp` of the losses whose argument may be positive (poisson_nll, kl_div, sigmoid_focal).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn exp<V: Lanes>(isa: V::Isa, x: V) -> V {
    let k = consts::<V::Elem>();
    // Clamp into [exp_lo, exp_hi], which changes no result but keeps `n` in `ldexp`'s range and
    // `r` finite. x86 min/max return their second operand when either is NaN, so NaN passes.
    let x = splat::<V>(isa, k.exp_hi).min(splat::<V>(isa, k.exp_lo).max(x));
    let n = (x * splat(isa, k.log2e)).round();
    // r = x - n·ln2: the first step is exact (n·LN2_HI is exact and within a factor of two of x).
    let r = n.mul_add(splat(isa, -k.ln2_hi), x);
    let r = n.mul_add(splat(isa, -k.ln2_lo), r);
    let q = horner(isa, r, k.exp_poly);
    let p = (r * r).mul_add(q, r) + splat(isa, 1.0);
    // p is in [0.7, 1.5]: 2^n is applied once, so only results in the subnormal range round.
    p.ldexp(n)
}

/// `e^x` for `x <= 0`, as softmax sums and sigmoids need it (`x - max` of a row, `-|x|`),
/// with results below the normal range flushed to zero: [`exp_nonpositive_clamped`] and one
/// compare-and-select.
///
/// **Error: at most 1 ULP** from the correctly rounded result for `ln(MIN_POSITIVE) <= x <= 0`
/// (about -87.34 for f32, -708.40 for f64), the same bound as [`exp`] (tested over the same
/// points, folded onto `x <= 0`).
///
/// Range handling: `x` below `ln(MIN_POSITIVE)` (rounded to the element type) gives `+0`
/// (where [`exp`] would give a value under `MIN_POSITIVE`: an absolute difference under
/// 1.2e-38 for f32), `-inf` gives `+0`, NaN gives NaN. Positive `x` are outside the contract
/// (correct up to `x < 88`, garbage beyond).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn exp_nonpositive<V: Lanes>(isa: V::Isa, x: V) -> V {
    let lo = splat::<V>(isa, consts::<V::Elem>().exp_normal_lo);
    V::select(x.lt(lo), splat(isa, 0.0), exp_nonpositive_clamped(isa, x))
}

/// `e^x` for `x <= 0` with `x` first clamped to `ln(MIN_POSITIVE)`, for sums that contain a
/// term of at least 1 (a softmax denominator: the row's max contributes `e^0`), where a term
/// below `MIN_POSITIVE` (1.2e-38 for f32) cannot change the rounded sum. Thirteen vector
/// operations for f32: one `mul_add` rounds `x·log2(e)` to `n` and, through its low bits,
/// gives `2^n` by one shift ([`Lanes::pow2_from_rounded`]); the reduction and polynomial are
/// [`exp`]'s, by Horner.
///
/// **Error: at most 1 ULP** from the correctly rounded result for `ln(MIN_POSITIVE) <= x <= 0`
/// (tested over the same points as [`exp`], folded onto `x <= 0`).
///
/// Range handling: `x` below `ln(MIN_POSITIVE)` (rounded to the element type), `-inf` included,
/// gives `e^ln(MIN_POSITIVE)`, within 1 ULP of `MIN_POSITIVE`; NaN gives NaN (the scaling is a
/// multiplication, so a NaN's payload bits cannot reach the exponent). Positive `x` are
/// outside the contract.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn exp_nonpositive_clamped<V: Lanes>(isa: V::Isa, x: V) -> V {
    let k = consts::<V::Elem>();
    let one = splat::<V>(isa, 1.0);
    let shift = splat::<V>(isa, k.round_shift);
    // `lo` first: x86 max returns its second operand when either is NaN, so NaN passes.
    let xc = splat::<V>(isa, k.exp_normal_lo).max(x);
    let t = xc.mul_add(splat(isa, k.log2e), shift);
    let n = t - shift;
    let r = n.mul_add(splat(isa, -k.ln2_hi), xc);
    let r = n.mul_add(splat(isa, -k.ln2_lo), r);
    // 1 + r + r²·Q(r) by Horner: (Q·r + 1)·r + 1.
    let p = horner(isa, r, k.exp_poly).mul_add(r, one).mul_add(r, one);
    // n >= -126 (-1022) after the clamp: 2^n is normal, and p·2^n is exact unless p < 1 at
    // the very bottom of the range, where it is rounded once.
    p * t.pow2_from_rounded()
}

/// `ln((m + c)·2^e)` for `m` in `[sqrt(1/2), sqrt(2))` and `c` of the size of a rounding
/// error of `m`, as fdlibm evaluates it:
/// `e·ln2 + f - f²/2 + s·(f²/2 + R(s²)) + c/m` with `f = m - 1`, `s = f/(2+f)`.
///
/// `corr` is the first-order correction `c/m` (zero for `ln`; `(1 + x - u)/u` for `log1p`).
/// NaN in `corr` propagates.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn ln_reduced<V: Lanes>(isa: V::Isa, m: V, e: V, corr: V) -> V {
    let k = consts::<V::Elem>();
    let f = m - splat(isa, 1.0);
    let s = f / (f + splat(isa, 2.0));
    let z = s * s;
    let r = z * horner(isa, z, k.ln_poly);
    let hfsq = splat::<V>(isa, 0.5) * f * f;
    let a = (hfsq + r).mul_add(s, e.mul_add(splat(isa, k.ln2_lo), corr));
    e.mul_add(splat(isa, k.ln2_hi), f - (hfsq - a))
}

/// `ln(1 + x)` for `x` in `(-1, +inf)` and NaN (NaN propagates); other inputs give garbage.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn log1p_core<V: Lanes>(isa: V::Isa, x: V) -> V {
    let one = splat::<V>(isa, 1.0);
    let u = one + x;
    let (m, e) = u.frexp_centered();
    // u - 1 is exact for u < 2^(mantissa bits + 1), and then so is the rounding error
    // x - (u - 1) of 1 + x; ln(1 + x) = ln(u) + c/u to first order. (NaN x: c is NaN.)
    let c = (x - (u - one)) / u;
    ln_reduced(isa, m, e, c)
}

/// The natural logarithm, lane-wise.
///
/// **Error: at most 1 ULP** from the correctly rounded result (f32 and f64, every tier),
/// subnormal inputs included.
///
/// Range handling: `ln(±0) = -inf`, `ln(x < 0) = NaN` (including `-inf`), `ln(+inf) = +inf`,
/// `ln(1) = +0`, NaN gives NaN.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn ln<V: Lanes>(isa: V::Isa, x: V) -> V {
    let k = consts::<V::Elem>();
    let zero = splat::<V>(isa, 0.0);
    // Vectors of positive normal finite values (the common case by far) skip the range
    // handling below, about a third of the operations: the same bits, as every step below
    // leaves such lanes alone. `+inf` and NaN go to 0 for the one test.
    let finite = V::select(x.lt(splat(isa, f64::INFINITY)), x, zero);
    if !V::any(finite.lt(splat(isa, k.min_positive))) {
        let (m, e) = x.frexp_centered();
        return ln_reduced(isa, m, e, zero);
    }
    // frexp_centered handles normal inputs only: lift subnormals (and zeros and negatives,
    // whose results are replaced below) by 2^k first.
    let tiny = x.lt(splat(isa, k.min_positive));
    let xs = V::select(tiny, x * splat(isa, k.subnormal_scale), x);
    let (m, e) = xs.frexp_centered();
    let e = V::select(tiny, e - splat(isa, k.subnormal_log2), e);
    let y = ln_reduced(isa, m, e, zero);
    // +inf and NaN give themselves; zeros give -inf and negatives NaN.
    let y = V::select(x.lt(splat(isa, f64::INFINITY)), y, x);
    let nonpos = V::select(
        x.eq(zero),
        splat(isa, f64::NEG_INFINITY),
        splat(isa, f64::NAN),
    );
    V::select(x.le(zero), nonpos, y)
}

/// `ln(1 + x)`, lane-wise, accurate for `x` near zero.
///
/// **Error: at most 1 ULP** from the correctly rounded result (f32 and f64, every tier).
///
/// Range handling: `log1p(±0) = ±0`, tiny `x` gives `x` (to within the bound),
/// `log1p(-1) = -inf`, `log1p(x < -1) = NaN` (including `-inf`), `log1p(+inf) = +inf`, NaN
/// gives NaN.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn log1p<V: Lanes>(isa: V::Isa, x: V) -> V {
    let zero = splat::<V>(isa, 0.0);
    let minus_one = splat::<V>(isa, -1.0);
    let y = log1p_core(isa, x);
    // As in `ln`: vectors inside (-1, +inf) keep only the signed-zero step.
    let finite = V::select(x.lt(splat(isa, f64::INFINITY)), x, minus_one);
    if !V::any(finite.le(minus_one)) {
        return V::select(x.eq(zero), x, y);
    }
    let y = V::select(x.lt(splat(isa, f64::INFINITY)), y, x);
    let below = V::select(
        x.eq(minus_one),
        splat(isa, f64::NEG_INFINITY),
        splat(isa, f64::NAN),
    );
    let y = V::select(x.le(minus_one), below, y);
    // Keeps the sign of zero.
    V::select(x.eq(zero), x, y)
}

/// `ln(1 + e)` for `e` in `[0, 1]` (and NaN), as `log1p(exp(-|x|))` needs it: for f32 a
/// division-free `e·P(e)` with a degree-9 minimax `P`, for f64 [`log1p_core`] (two divisions;
/// the polynomial would need degree ~21).
///
/// **Error: at most 2 ULP** from the correctly rounded result on `[0, 1]` (f32 and f64, every
/// tier; f32: the polynomial's relative error is 2^-27.5, the rest is the rounding of its
/// evaluation).
///
/// Range handling: `±0` gives `±0`, NaN gives NaN; inputs outside `[0, 1]` are outside the
/// contract.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn log1p_unit<V: Lanes>(isa: V::Isa, e: V) -> V {
    let k = consts::<V::Elem>();
    match *k.log1p_unit_poly {
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9] => {
            // Horner for the low terms, which carry the result's rounding, and Estrin's scheme
            // for the high ones, whose errors are scaled by e⁴: depth 6 instead of 10, which
            // matters because BCE's sweep is bound by the latency of its exp-then-log1p chain.
            // `hi·e + lo` (a function: a closure would not get the tier's target features).
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn pair<V: Lanes>(isa: V::Isa, e: V, hi: f64, lo: f64) -> V {
                splat::<V>(isa, hi).mul_add(e, splat(isa, lo))
            }
            let e2 = e * e;
            let e4 = e2 * e2;
            let low = pair(isa, e, c3, c2)
                .mul_add(e, splat(isa, c1))
                .mul_add(e, splat(isa, c0));
            let high = pair(isa, e, c9, c8)
                .mul_add(e4, pair(isa, e, c7, c6).mul_add(e2, pair(isa, e, c5, c4)));
            e * high.mul_add(e4, low)
        }
        _ => log1p_core(isa, e),
    }
}

/// `(e, l)` with `e = exp(-|x|)` and `l = log1p(e) = ln(1 + e^-|x|)`: the shared part of
/// [`softplus`] and [`log_sigmoid`], and of binary cross-entropy on logits, which needs `e`
/// for its gradient too. `e` is [`exp_nonpositive`] (flushed below `MIN_POSITIVE`), `l`
/// is [`log1p_unit`]. NaN `x` gives NaN in both.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn exp_neg_abs_and_log1p<V: Lanes>(isa: V::Isa, x: V) -> (V, V) {
    let e = exp_nonpositive(isa, -x.abs());
    (e, log1p_unit(isa, e))
}

/// `softplus(x) = ln(1 + e^x)`, computed as `max(x, 0) + log1p(exp(-|x|))`, lane-wise.
///
/// **Error: at most 3 ULP** from the correctly rounded result (f32 and f64, every tier), where
/// `exp(-|x|)` is not flushed (see below). Measured: 2 with fused `mul_add` (AVX2), 3 on the
/// tiers that round it twice (f32 scalar and portable); f64 2.
///
/// Range handling: `softplus(-inf) = +0`, `softplus(+inf) = +inf`, NaN gives NaN; never
/// overflows for finite `x`; results below `MIN_POSITIVE` (`x` below about -87.34 for f32,
/// -708.40 for f64) are flushed to `+0`, an absolute difference under 1.2e-38 (2.3e-308).
// No loss calls this or `log_sigmoid` now: BCE-with-logits uses their shared part,
// `exp_neg_abs_and_log1p`, in a form that does not cancel. Both are kept, tested, for the
// log-sigmoid losses of the second wave (multilabel_soft_margin, sigmoid_focal).
#[cfg_attr(not(test), allow(dead_code))]
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn softplus<V: Lanes>(isa: V::Isa, x: V) -> V {
    let zero = splat::<V>(isa, 0.0);
    let (_, l) = exp_neg_abs_and_log1p(isa, x);
    // max(x, 0) is 0 for NaN x, but then `l` is NaN.
    x.max(zero) + l
}

/// `log_sigmoid(x) = -ln(1 + e^-x)`, computed as `min(x, 0) - log1p(exp(-|x|))`, lane-wise:
/// binary cross-entropy on logits is `(1 - t)·x - log_sigmoid(x)` (which `loss/binary.rs`
/// computes without the cancellation of that form).
///
/// **Error: at most 3 ULP** from the correctly rounded result (f32 and f64, every tier), where
/// `exp(-|x|)` is not flushed (see below). Measured: 2 with fused `mul_add` (AVX2), 3 on the
/// tiers that round it twice (f32 scalar and portable); f64 2.
///
/// Range handling: `log_sigmoid(-inf) = -inf`, `log_sigmoid(+inf) = +0`, NaN gives NaN;
/// results below `MIN_POSITIVE` in magnitude (`x` above about 87.34 for f32, 708.40 for f64)
/// are `+0`, an absolute difference under 1.2e-38 (2.3e-308) from the exact `-e^-x`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
#[allow(
    dead_code,
    reason = "bce_with_logits now uses its parts; kept, with its ULP test, for the log-sigmoid losses of the second wave (multilabel_soft_margin, sigmoid_focal)"
)]
pub(crate) fn log_sigmoid<V: Lanes>(isa: V::Isa, x: V) -> V {
    let zero = splat::<V>(isa, 0.0);
    let (_, l) = exp_neg_abs_and_log1p(isa, x);
    x.min(zero) - l
}

/// `tanh(x)`, lane-wise: `q / (q + 2)` with `q = expm1(2|x|)`, the sign of `x` put back, and
/// `x` itself where `|x|` is tiny. `expm1(z)` is [`exp`]'s reduction and polynomial without the
/// `1 +`: `z = n·ln2 + r`, `expm1(r) = r + r²·Q(r)`, then `2^n·expm1(r) + (2^n - 1)` in one
/// `mul_add` (exactly `expm1(r)` for `n = 0`, so small `|x|` keep their relative accuracy:
/// no `1 - 2/(e^2x + 1)` cancellation).
///
/// **Error: at most 3 ULP** from the correctly rounded result (f32 and f64, every tier; the
/// f64 test allows one more, for its reference, `std`'s own `tanh`). Measured over 20M points
/// a type (every bit pattern strided, random points in `[-1, 1]` and the saturating range):
/// f32 at most 2.6 ULP from the exact value on every tier, f64 4 ULP from `std`.
///
/// Range handling: `|x|` below `2^-13` (f32; `2^-27` f64) gives `x` (signed zeros and
/// subnormals included, exactly); `2|x|` is clamped at 20 (f32; 40 f64), where `tanh` rounds
/// to `±1`, so `±inf` give `±1`; NaN gives NaN.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn tanh<V: Lanes>(isa: V::Isa, x: V) -> V {
    let k = consts::<V::Elem>();
    let (zero, one, two) = (
        splat::<V>(isa, 0.0),
        splat::<V>(isa, 1.0),
        splat::<V>(isa, 2.0),
    );
    let a = x.abs();
    // `hi` first: x86 min returns its second operand when either is NaN, so NaN passes.
    let z = splat::<V>(isa, k.tanh_hi).min(a + a);
    let shift = splat::<V>(isa, k.round_shift);
    let t = z.mul_add(splat(isa, k.log2e), shift);
    let n = t - shift;
    let r = n.mul_add(splat(isa, -k.ln2_hi), z);
    let r = n.mul_add(splat(isa, -k.ln2_lo), r);
    let expm1_r = (r * r).mul_add(horner(isa, r, k.exp_poly), r);
    // 0 <= n <= 29 (f32; 58 f64): 2^n is exact, 2^n - 1 too while it fits the significand,
    // and beyond that the quotient is 1 whatever the rounding.
    let s = t.pow2_from_rounded();
    let q = expm1_r.mul_add(s, s - one);
    let y = q / (q + two);
    let signed = V::select(x.lt(zero), -y, y);
    V::select(a.lt(splat(isa, k.tanh_tiny)), x, signed)
}

// The accuracy tests, in a file of their own (they are longer than the functions).
#[cfg(test)]
#[path = "math_tests.rs"]
mod tests;
