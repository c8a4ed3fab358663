//! Accuracy of every function on every tier this CPU can run, against `std` (in `f64` for
//! `f32` inputs). Run with `--nocapture` to see the maximum errors per tier.

use std::time::Instant;

use super::*;
use crate::simd::Kernel;
use crate::Tier;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Exp,
    Ln,
    Log1p,
    Softplus,
    LogSigmoid,
    ExpNonpositive,
    ExpNonpositiveClamped,
    Log1pUnit,
    Tanh,
}

impl Func {
    fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Log1p => "log1p",
            Func::Softplus => "softplus",
            Func::LogSigmoid => "log_sigmoid",
            Func::ExpNonpositive => "exp_nonpos",
            Func::ExpNonpositiveClamped => "exp_clamped",
            Func::Log1pUnit => "log1p_unit",
            Func::Tanh => "tanh",
        }
    }

    /// The bound each function's documentation states, in ULP from the correctly rounded
    /// result.
    fn bound(self) -> u64 {
        match self {
            Func::Exp
            | Func::Ln
            | Func::Log1p
            | Func::ExpNonpositive
            | Func::ExpNonpositiveClamped => 1,
            Func::Log1pUnit => 2,
            Func::Softplus | Func::LogSigmoid => 3,
            Func::Tanh => 3,
        }
    }

    /// Maps a test point into the function's domain: `-|x|` for `exp_nonpositive`, `|x|`
    /// or `1/|x|` (whichever is at most 1) for `log1p_unit`.
    fn fold<T: Float>(self, x: T) -> T {
        match self {
            Func::ExpNonpositive | Func::ExpNonpositiveClamped if x > T::ZERO => -x,
            Func::Log1pUnit if x.abs() > T::ONE => T::ONE / x.abs(),
            Func::Log1pUnit => x.abs(),
            _ => x,
        }
    }

    /// The reference for element type `T`: [`reference`](Self::reference), with
    /// `exp_nonpositive`'s flush and `exp_nonpositive_clamped`'s clamp below `T`'s normal
    /// range, and the flush of `softplus` / `log_sigmoid` results below it.
    fn reference_for<T: Float>(self, x: f64) -> f64 {
        let lo = T::from_f64(consts::<T>().exp_normal_lo).to_f64();
        match self {
            Func::ExpNonpositive if x < lo => 0.0,
            Func::ExpNonpositiveClamped if x < lo => lo.exp(),
            // exp(-|x|) is flushed: only max(x, 0) or min(x, 0) is left.
            Func::Softplus if -x.abs() < lo => x.max(0.0),
            Func::LogSigmoid if -x.abs() < lo => x.min(0.0),
            _ => self.reference(x),
        }
    }

    /// The function in `f64`, with `std` (the reference).
    fn reference(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Ln => x.ln(),
            Func::Log1p => x.ln_1p(),
            Func::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Func::LogSigmoid => x.min(0.0) - (-x.abs()).exp().ln_1p(),
            Func::ExpNonpositive | Func::ExpNonpositiveClamped => x.exp(),
            Func::Log1pUnit => x.ln_1p(),
            Func::Tanh => x.tanh(),
        }
    }
}

/// Maps `src` through one function of this module into `dst`, whole vectors then a
/// masked tail.
struct MapKernel<'a, T> {
    func: Func,
    src: &'a [T],
    dst: &'a mut [T],
}

impl<T: Float> Kernel<T> for MapKernel<'_, T> {
    type Output = ();

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) {
        let (src, dst) = (self.src, self.dst);
        match self.func {
            Func::Exp => map_with::<V, ExpFn>(isa, src, dst),
            Func::Ln => map_with::<V, LnFn>(isa, src, dst),
            Func::Log1p => map_with::<V, Log1pFn>(isa, src, dst),
            Func::Softplus => map_with::<V, SoftplusFn>(isa, src, dst),
            Func::LogSigmoid => map_with::<V, LogSigmoidFn>(isa, src, dst),
            Func::ExpNonpositive => map_with::<V, ExpNonpositiveFn>(isa, src, dst),
            Func::ExpNonpositiveClamped => map_with::<V, ExpNonpositiveClampedFn>(isa, src, dst),
            Func::Log1pUnit => map_with::<V, Log1pUnitFn>(isa, src, dst),
            Func::Tanh => map_with::<V, TanhFn>(isa, src, dst),
        }
    }
}

/// One function of this module, as a type. (Passing `exp::<V>` as an `impl Fn` would go
/// through a `Fn::call` shim that LLVM need not inline into the `#[target_feature]`
/// function, and the intrinsics inside it would then become calls.)
trait MathFn {
    fn apply<V: Lanes>(isa: V::Isa, x: V) -> V;
}

macro_rules! math_fn {
    ($name:ident, $f:ident) => {
        struct $name;
        impl MathFn for $name {
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn apply<V: Lanes>(isa: V::Isa, x: V) -> V {
                $f(isa, x)
            }
        }
    };
}
math_fn!(ExpFn, exp);
math_fn!(LnFn, ln);
math_fn!(Log1pFn, log1p);
math_fn!(SoftplusFn, softplus);
math_fn!(LogSigmoidFn, log_sigmoid);
math_fn!(ExpNonpositiveFn, exp_nonpositive);
math_fn!(ExpNonpositiveClampedFn, exp_nonpositive_clamped);
math_fn!(Log1pUnitFn, log1p_unit);
math_fn!(TanhFn, tanh);

/// Four independent vectors per step (four exp chains in flight rather than the
/// latency of one), then single vectors, then one masked tail.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn map_with<V: Lanes, F: MathFn>(isa: V::Isa, src: &[V::Elem], dst: &mut [V::Elem]) {
    let l = V::LANES;
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let quads = n - n % (4 * l);
    let whole = n - n % l;
    for (s, d) in src[..quads]
        .chunks_exact(4 * l)
        .zip(dst[..quads].chunks_exact_mut(4 * l))
    {
        let y0 = F::apply(isa, V::load(isa, s));
        let y1 = F::apply(isa, V::load(isa, &s[l..]));
        let y2 = F::apply(isa, V::load(isa, &s[2 * l..]));
        let y3 = F::apply(isa, V::load(isa, &s[3 * l..]));
        y0.store(d);
        y1.store(&mut d[l..]);
        y2.store(&mut d[2 * l..]);
        y3.store(&mut d[3 * l..]);
    }
    for (s, d) in src[quads..whole]
        .chunks_exact(l)
        .zip(dst[quads..whole].chunks_exact_mut(l))
    {
        F::apply(isa, V::load(isa, s)).store(d);
    }
    if whole < n {
        let one = <V::Elem as Sealed>::ONE;
        F::apply(isa, V::load_prefix(isa, &src[whole..], one)).store_prefix(&mut dst[whole..]);
    }
}

/// What the tests need of an element type beyond `Float`.
trait Check: Float {
    /// ULP of slack for the reference: 0 for f32 (the reference is computed in f64), 1 for
    /// f64 (the reference is `std`'s, itself within about one ULP).
    const SLACK: u64;
    /// Explicit mantissa bits and the smallest normal exponent.
    const MANT: i32;
    const EMIN: i32;
    const MAX: Self;
    /// A position on the number line: consecutive values differ by one, `±0` are both 0.
    fn ordered(self) -> i64;
    fn from_ordered(o: i64) -> Self;
    /// A value from random (or strided) bits: the low 32 bits for f32.
    fn from_raw_bits(b: u64) -> Self;
    fn to_raw_bits(self) -> u64;
    /// The bits of 1.0: every smaller bit pattern is a value in `[0, 1)`.
    const ONE_BITS: u64;
}

impl Check for f32 {
    const SLACK: u64 = 0;
    const MANT: i32 = 23;
    const EMIN: i32 = -126;
    const MAX: f32 = f32::MAX;
    const ONE_BITS: u64 = 0x3f80_0000;
    fn ordered(self) -> i64 {
        let b = self.to_bits();
        if b >> 31 == 1 {
            -((b & 0x7fff_ffff) as i64)
        } else {
            b as i64
        }
    }
    fn from_ordered(o: i64) -> f32 {
        if o < 0 {
            f32::from_bits((-o) as u32 | 0x8000_0000)
        } else {
            f32::from_bits(o as u32)
        }
    }
    fn from_raw_bits(b: u64) -> f32 {
        f32::from_bits(b as u32)
    }
    fn to_raw_bits(self) -> u64 {
        self.to_bits() as u64
    }
}

impl Check for f64 {
    const SLACK: u64 = 1;
    const MANT: i32 = 52;
    const EMIN: i32 = -1022;
    const MAX: f64 = f64::MAX;
    const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
    fn ordered(self) -> i64 {
        let b = self.to_bits();
        if b >> 63 == 1 {
            -((b & !(1 << 63)) as i64)
        } else {
            b as i64
        }
    }
    fn from_ordered(o: i64) -> f64 {
        if o < 0 {
            f64::from_bits(o.unsigned_abs() | 1 << 63)
        } else {
            f64::from_bits(o as u64)
        }
    }
    fn from_raw_bits(b: u64) -> f64 {
        f64::from_bits(b)
    }
    fn to_raw_bits(self) -> u64 {
        self.to_bits()
    }
}

/// `x` moved by `k` representable values.
fn step<T: Check>(x: T, k: i64) -> T {
    T::from_ordered(x.ordered() + k)
}

/// ULP distance; 0 when both are NaN, `u64::MAX` when only one is.
fn ulp_dist<T: Check>(a: T, b: T) -> u64 {
    match (a.to_f64().is_nan(), b.to_f64().is_nan()) {
        (true, true) => 0,
        (false, false) => a.ordered().abs_diff(b.ordered()),
        _ => u64::MAX,
    }
}

/// `2^k` for any `k` an f64 can hold (subnormal included).
fn pow2(k: i32) -> f64 {
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// One ULP of `T` at the (unrounded) value `v`.
fn ulp_at<T: Check>(v: f64) -> f64 {
    let biased = ((v.to_bits() >> 52) & 0x7ff) as i32;
    let e = if biased == 0 { -1023 } else { biased - 1023 };
    pow2(e.max(T::EMIN) - T::MANT)
}

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 * pow2(-53))
    }
    /// Log-uniform magnitude below 1 (subnormals included), random sign.
    fn tiny<T: Check>(&mut self) -> T {
        let r = self.next();
        let x = T::from_raw_bits((r >> 1) % T::ONE_BITS);
        if r & 1 == 1 {
            -x
        } else {
            x
        }
    }
}

/// Points spread over every bit pattern, with a stride.
const STRIDED: u64 = 10_000_000;
/// Random points in each function's interesting range.
const RANDOM: u64 = 10_000_000;

/// The `i`-th random point for `func`.
fn random_point<T: Check>(func: Func, rng: &mut Rng) -> T {
    let wide = core::mem::size_of::<T>() == 8;
    let half = rng.next() & 1 == 1;
    let x = match func {
        Func::Exp if wide => rng.uniform(-747.0, 711.0),
        Func::Exp => rng.uniform(-105.0, 90.0),
        Func::Ln if half => rng.uniform(0.5, 2.0),
        // Log-uniform over all positive values.
        Func::Ln => return T::from_raw_bits(rng.next() % T::MAX.to_raw_bits()),
        Func::Log1p if half => rng.uniform(-1.0, 2.0),
        Func::Log1p => return rng.tiny(),
        Func::Softplus | Func::LogSigmoid if half => rng.uniform(-20.0, 20.0),
        Func::Softplus | Func::LogSigmoid if wide => rng.uniform(-760.0, 760.0),
        Func::Softplus | Func::LogSigmoid => rng.uniform(-110.0, 110.0),
        Func::ExpNonpositive | Func::ExpNonpositiveClamped if wide => rng.uniform(-709.0, 0.0),
        Func::ExpNonpositive | Func::ExpNonpositiveClamped => rng.uniform(-88.0, 0.0),
        Func::Log1pUnit if half => rng.uniform(0.0, 1.0),
        Func::Log1pUnit => return rng.tiny(),
        Func::Tanh if half => rng.uniform(-1.0, 1.0),
        Func::Tanh if wide => rng.uniform(-40.0, 40.0),
        Func::Tanh => rng.uniform(-20.0, 20.0),
    };
    T::from_f64(x)
}

/// Special values: signed zeros, infinities, NaN, subnormals, extremes, and the thresholds
/// of each function with their neighbours.
fn specials<T: Check>() -> Vec<T> {
    let f = |x: f64| T::from_f64(x);
    let min_sub = T::from_raw_bits(1);
    let max_sub = step(f(pow2(T::EMIN)), -1);
    let mut centres = vec![
        f(0.0),
        f(-0.0),
        f(1.0),
        f(-1.0),
        f(2.0),
        f(0.5),
        f(core::f64::consts::LN_2),
        min_sub,
        max_sub,
        f(pow2(T::EMIN)),
        T::MAX,
        -T::MAX,
        // exp: overflow, underflow to subnormal, to zero.
        f(T::MAX.to_f64().ln()),
        f(pow2(T::EMIN).ln()),
        f((min_sub.to_f64() / 2.0).ln()),
        f(min_sub.to_f64().ln()),
        // log1p near 0 and -1.
        f(1e-10),
        f(-1e-10),
    ];
    for k in [
        1, 2, 10, 20, 24, 25, 30, 53, 54, 60, 100, 126, 149, 500, 1022, 1074,
    ] {
        if pow2(-k) != 0.0 {
            centres.push(f(pow2(-k)));
            centres.push(f(-pow2(-k)));
            centres.push(f(1.0 + pow2(-k)));
            centres.push(f(1.0 - pow2(-k)));
            centres.push(f(-1.0 + pow2(-k)));
        }
    }
    let mut out = vec![
        T::from_f64(f64::NAN),
        T::from_f64(f64::INFINITY),
        T::from_f64(f64::NEG_INFINITY),
    ];
    for c in centres {
        for k in -3..=3 {
            let x = step(c, k);
            out.push(x);
            out.push(-x);
        }
    }
    out
}

/// The worst error seen on one tier.
#[derive(Clone, Copy, Default)]
struct Worst {
    ulps: u64,
    at_ulps: f64,
    /// Largest |result - f64 reference| / ulp among finite results (f32: vs the exact
    /// value; f64: vs std's).
    frac: f64,
    at_frac: f64,
}

/// Runs `func` over `xs` on every tier and folds the errors into `worst`.
fn check_block<T: Check>(
    func: Func,
    tiers: &[Tier],
    xs: &[T],
    worst: &mut [Worst],
    out: &mut Vec<T>,
) {
    let refs: Vec<f64> = xs
        .iter()
        .map(|x| func.reference_for::<T>(x.to_f64()))
        .collect();
    out.resize(xs.len(), T::ZERO);
    // The AVX2 tier's results, which the AVX-512 tier's must equal bit for bit.
    let mut avx2: Option<Vec<T>> = None;
    for (tier, w) in tiers.iter().zip(worst.iter_mut()) {
        tier.resolve().run(MapKernel {
            func,
            src: xs,
            dst: out,
        });
        match (tier, &avx2) {
            (Tier::Avx2, _) => avx2 = Some(out.clone()),
            (Tier::Avx512, Some(a)) => {
                for ((&x, &y), &b) in xs.iter().zip(out.iter()).zip(a) {
                    let nans = y.to_f64().is_nan() && b.to_f64().is_nan();
                    assert!(
                        y.to_raw_bits() == b.to_raw_bits() || nans,
                        "{} {} at x = {x:?}: avx512 gives {y:?}, avx2 {b:?}",
                        T::NAME,
                        func.name()
                    );
                }
            }
            _ => {}
        }
        for ((&x, &y), &r64) in xs.iter().zip(out.iter()).zip(refs.iter()) {
            let r = T::from_f64(r64);
            let d = ulp_dist(y, r);
            if d > w.ulps {
                w.ulps = d;
                w.at_ulps = x.to_f64();
            }
            let yf = y.to_f64();
            if yf.is_finite() && r.to_f64().is_finite() {
                let frac = (yf - r64).abs() / ulp_at::<T>(r64);
                if frac > w.frac {
                    w.frac = frac;
                    w.at_frac = x.to_f64();
                }
            }
        }
    }
}

fn accuracy<T: Check>(func: Func) {
    let start = Instant::now();
    let tiers = Tier::available();
    let mut worst = vec![Worst::default(); tiers.len()];
    let mut out = Vec::new();
    // Blocks of 2^16 + 15 elements: every tier takes its 4-vector, single-vector and tail paths.
    const BLOCK: usize = 65_551;
    let mut xs: Vec<T> = specials::<T>().into_iter().map(|x| func.fold(x)).collect();
    let mut count = 0u64;
    let mut flush = |xs: &mut Vec<T>, worst: &mut Vec<Worst>, out: &mut Vec<T>| {
        check_block(func, &tiers, xs, worst, out);
        count += xs.len() as u64;
        xs.clear();
    };
    // Every bit pattern, strided (odd strides also reach the odd mantissas).
    let bits = 8 * core::mem::size_of::<T>() as u32;
    let stride = ((1u128 << bits) / STRIDED as u128) as u64 | 1;
    for i in 0..STRIDED {
        xs.push(func.fold(T::from_raw_bits(i.wrapping_mul(stride))));
        if xs.len() == BLOCK {
            flush(&mut xs, &mut worst, &mut out);
        }
    }
    let mut rng = Rng(0x5eed ^ func as u64);
    for _ in 0..RANDOM {
        xs.push(func.fold(random_point(func, &mut rng)));
        if xs.len() == BLOCK {
            flush(&mut xs, &mut worst, &mut out);
        }
    }
    flush(&mut xs, &mut worst, &mut out);

    let allowed = func.bound() + T::SLACK;
    for (tier, w) in tiers.iter().zip(&worst) {
        println!(
            "math {} {:<11} {:<8}: max {} ulp (at x = {:e}); max |y - ref| = {:.3} ulp (at x = {:e}); {} points, {:.1?}",
            T::NAME,
            func.name(),
            tier.name(),
            w.ulps,
            w.at_ulps,
            w.frac,
            w.at_frac,
            count,
            start.elapsed(),
        );
    }
    for (tier, w) in tiers.iter().zip(&worst) {
        assert!(
            w.ulps <= allowed,
            "{} {} on {tier}: {} ulp at x = {:e} (allowed {allowed})",
            T::NAME,
            func.name(),
            w.ulps,
            w.at_ulps
        );
    }
}

#[test]
fn exp_f32() {
    accuracy::<f32>(Func::Exp);
}
#[test]
fn exp_f64() {
    accuracy::<f64>(Func::Exp);
}
#[test]
fn ln_f32() {
    accuracy::<f32>(Func::Ln);
}
#[test]
fn ln_f64() {
    accuracy::<f64>(Func::Ln);
}
#[test]
fn log1p_f32() {
    accuracy::<f32>(Func::Log1p);
}
#[test]
fn log1p_f64() {
    accuracy::<f64>(Func::Log1p);
}
#[test]
fn softplus_f32() {
    accuracy::<f32>(Func::Softplus);
}
#[test]
fn softplus_f64() {
    accuracy::<f64>(Func::Softplus);
}
#[test]
fn log_sigmoid_f32() {
    accuracy::<f32>(Func::LogSigmoid);
}
#[test]
fn log_sigmoid_f64() {
    accuracy::<f64>(Func::LogSigmoid);
}
#[test]
fn tanh_f32() {
    accuracy::<f32>(Func::Tanh);
}
#[test]
fn tanh_f64() {
    accuracy::<f64>(Func::Tanh);
}

/// Results that must be exact, bit for bit (NaN: any NaN), on every tier.
fn exact_values<T: Check>() {
    let f = |x: f64| T::from_f64(x);
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let payload_nan = if core::mem::size_of::<T>() == 4 {
        T::from_raw_bits(0x7fc0_01ff).to_f64()
    } else {
        T::from_raw_bits(0x7ff8_0000_0000_0fff).to_f64()
    };
    let cases: &[(Func, f64, f64)] = &[
        (Func::Exp, nan, nan),
        (Func::Exp, inf, inf),
        (Func::Exp, -inf, 0.0),
        (Func::Exp, 0.0, 1.0),
        (Func::Exp, -0.0, 1.0),
        (Func::Exp, 1e4, inf),
        (Func::Exp, -1e4, 0.0),
        (Func::Exp, T::MAX.to_f64(), inf),
        (Func::Exp, -T::MAX.to_f64(), 0.0),
        (Func::Ln, nan, nan),
        (Func::Ln, inf, inf),
        (Func::Ln, -inf, nan),
        (Func::Ln, 0.0, -inf),
        (Func::Ln, -0.0, -inf),
        (Func::Ln, -1.0, nan),
        (Func::Ln, -T::from_raw_bits(1).to_f64(), nan),
        (Func::Ln, 1.0, 0.0),
        (Func::Log1p, nan, nan),
        (Func::Log1p, inf, inf),
        (Func::Log1p, -inf, nan),
        (Func::Log1p, 0.0, 0.0),
        (Func::Log1p, -0.0, -0.0),
        (Func::Log1p, -1.0, -inf),
        (Func::Log1p, -1.5, nan),
        (Func::Log1p, -T::MAX.to_f64(), nan),
        (
            Func::Log1p,
            T::from_raw_bits(1).to_f64(),
            T::from_raw_bits(1).to_f64(),
        ),
        (
            Func::Log1p,
            -T::from_raw_bits(1).to_f64(),
            -T::from_raw_bits(1).to_f64(),
        ),
        (Func::Softplus, nan, nan),
        (Func::Softplus, inf, inf),
        (Func::Softplus, -inf, 0.0),
        (Func::Softplus, T::MAX.to_f64(), T::MAX.to_f64()),
        (Func::Softplus, -T::MAX.to_f64(), 0.0),
        (Func::ExpNonpositive, nan, nan),
        (Func::ExpNonpositive, -inf, 0.0),
        (Func::ExpNonpositive, 0.0, 1.0),
        (Func::ExpNonpositive, -0.0, 1.0),
        (Func::ExpNonpositive, -T::MAX.to_f64(), 0.0),
        (
            Func::ExpNonpositive,
            consts::<T>().exp_normal_lo * 1.000_001,
            0.0,
        ),
        (Func::ExpNonpositiveClamped, nan, nan),
        // A NaN whose payload sits in the bits that become the exponent of 2^n.
        (Func::ExpNonpositiveClamped, payload_nan, nan),
        (Func::ExpNonpositiveClamped, 0.0, 1.0),
        (Func::ExpNonpositiveClamped, -0.0, 1.0),
        (Func::Log1pUnit, nan, nan),
        (Func::Log1pUnit, 0.0, 0.0),
        (Func::Log1pUnit, 1.0, core::f64::consts::LN_2),
        (Func::LogSigmoid, nan, nan),
        (Func::LogSigmoid, inf, 0.0),
        (Func::LogSigmoid, -inf, -inf),
        (Func::LogSigmoid, T::MAX.to_f64(), 0.0),
        (Func::LogSigmoid, -T::MAX.to_f64(), -T::MAX.to_f64()),
        (Func::Tanh, nan, nan),
        (Func::Tanh, payload_nan, nan),
        (Func::Tanh, inf, 1.0),
        (Func::Tanh, -inf, -1.0),
        (Func::Tanh, 0.0, 0.0),
        (Func::Tanh, -0.0, -0.0),
        (Func::Tanh, T::MAX.to_f64(), 1.0),
        (Func::Tanh, -T::MAX.to_f64(), -1.0),
        (
            Func::Tanh,
            -T::from_raw_bits(1).to_f64(),
            -T::from_raw_bits(1).to_f64(),
        ),
    ];
    for tier in Tier::available() {
        for &(func, x, want) in cases {
            // Every lane position, and the masked tail.
            for len in [1, 3, 8, 17] {
                let xs = vec![f(x); len];
                let mut out = vec![f(0.5); len];
                tier.resolve().run(MapKernel {
                    func,
                    src: &xs,
                    dst: &mut out,
                });
                for &y in &out {
                    let ok = if want.is_nan() {
                        y.to_f64().is_nan()
                    } else {
                        y.to_raw_bits() == f(want).to_raw_bits()
                    };
                    assert!(
                        ok,
                        "{} {}({x:e}) on {tier}: got {:e}, want {want:e}",
                        T::NAME,
                        func.name(),
                        y.to_f64()
                    );
                }
            }
        }
    }
}

#[test]
fn exp_nonpositive_f32() {
    accuracy::<f32>(Func::ExpNonpositive);
}
#[test]
fn exp_nonpositive_f64() {
    accuracy::<f64>(Func::ExpNonpositive);
}
#[test]
fn exp_nonpositive_clamped_f32() {
    accuracy::<f32>(Func::ExpNonpositiveClamped);
}
#[test]
fn exp_nonpositive_clamped_f64() {
    accuracy::<f64>(Func::ExpNonpositiveClamped);
}
#[test]
fn log1p_unit_f32() {
    accuracy::<f32>(Func::Log1pUnit);
}
#[test]
fn log1p_unit_f64() {
    accuracy::<f64>(Func::Log1pUnit);
}
#[test]
fn exact_values_f32() {
    exact_values::<f32>();
}
#[test]
fn exact_values_f64() {
    exact_values::<f64>();
}

/// `ln` and `log1p` take a shorter path for vectors with no special lane (zero, negative,
/// subnormal, infinite or NaN for `ln`; at most -1, infinite or NaN for `log1p`): a value's
/// result must not depend on which path its vector took. Each value is mapped once among
/// ordinary neighbours and once beside a special value in every other lane, on every tier.
fn path_independent<T: Check>(func: Func, specials: &[f64]) {
    let mut rng = Rng(0xfa57 ^ func as u64);
    let plain: Vec<T> = (0..4099)
        .map(|i| match func {
            Func::Ln if i % 4 == 0 => T::from_f64(rng.uniform(0.5, 2.0)),
            Func::Ln => T::from_raw_bits(T::ONE_BITS / 2 + rng.next() % T::ONE_BITS),
            _ => T::from_f64(rng.uniform(-0.99, 3.0)),
        })
        .collect();
    let mixed: Vec<T> = plain
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                T::from_f64(specials[(i / 2) % specials.len()])
            } else {
                x
            }
        })
        .collect();
    let (mut a, mut b) = (vec![T::ZERO; plain.len()], vec![T::ZERO; plain.len()]);
    let mut compared = 0;
    for tier in Tier::available() {
        for (src, dst) in [(&plain, &mut a), (&mixed, &mut b)] {
            tier.resolve().run(MapKernel { func, src, dst });
        }
        for (i, (y, z)) in a.iter().zip(&b).enumerate().step_by(2) {
            assert_eq!(
                y.to_raw_bits(),
                z.to_raw_bits(),
                "{} {} on {tier} at x = {:?}: {y:?} among ordinary values, {z:?} beside specials",
                T::NAME,
                func.name(),
                plain[i]
            );
            compared += 1;
        }
    }
    assert!(compared >= 2050, "{compared} values compared");
}

#[test]
fn ln_and_log1p_path_independent() {
    let ln_specials = [0.0, -1.0, 1e-40, f64::INFINITY, f64::NAN, 1e-310];
    let log1p_specials = [-1.0, -2.0, f64::INFINITY, f64::NAN];
    path_independent::<f32>(Func::Ln, &ln_specials);
    path_independent::<f64>(Func::Ln, &ln_specials);
    path_independent::<f32>(Func::Log1p, &log1p_specials);
    path_independent::<f64>(Func::Log1p, &log1p_specials);
}
