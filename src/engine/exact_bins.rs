//! Exact sums of many `f32` or `f64` values at a fraction of a nanosecond each: a fixed-point
//! window of two levels, and per-exponent bins (`f32`) or the digits (`f64`) for the rest.
//!
//! **The window.** A block of at most [`WINDOW_BLOCK`] values is scaled by a power of two chosen
//! from its largest magnitude, `2^(1062 - e)` for `e` its biased `f64` exponent, so that each
//! value `x` becomes `t = x · 2^(1062 - e)` with `|t| < 2^40`, exactly (a power-of-two scaling;
//! a `t` that underflows is caught below). `t` is split into `high`, `t` rounded to an integer,
//! and `low = (t - high) · 2^40` (both exact); the value is in the window when `low` is an
//! integer too, that is when all its significant bits lie within 80 bits below the block's top:
//! every `f32` within 56 binades of the block's largest, and every `f64` within 27. Integers
//! below `2^40` (`high`) or `2^39` (`low`), at most `2^12` of each, sum below `2^52`: every
//! partial sum is an exact `f64` in any order, so the block's two levels are summed in vector
//! lanes with no rounding at all, and go into the [`ExactSum`] as two scaled adds. Rounding to
//! an integer is `(t + 1.5·2^52) - 1.5·2^52` (exact for `|t| < 2^51`); the test is
//! `(low + 1.5·2^52) - 1.5·2^52 - low == 0`, which NaN and the infinities fail (`∞ - ∞` is
//! NaN), and for `f64` also `t != 0` unless `x == 0` (a `t` that underflowed). Both the window
//! kernel and the pass for what it left out compute it with the same operations in the same
//! order, so each value is counted once. The window is a [`Kernel`] run on the active tier,
//! whose target features vectorise its loops: about 0.3 ns a value on one Sapphire Rapids core
//! on the AVX-512 tier (a third of `partial::mse`'s 0.87 ns an `f32` element, by `perf`),
//! where the bins alone took 0.8–0.95 ns.
//!
//! **The bins.** `f32` values outside the window (below `2^-56` of the block's largest, or not
//! finite) go to one `i64` bin per exponent: the values of one exponent are integer multiples
//! of the same power of two, so their sum is the integer `Σ ±m` times it, exact for `2^39`
//! values (each moves it by less than `2^24`). The bins are folded into the [`ExactSum`]
//! (three digit adds per bin) when the total is asked for, or before a bin could overflow.
//! Values of the same exponent follow each other in real data, and an add into the bin the
//! previous add wrote waits for it (a store-to-load round trip of about 5 cycles), so
//! consecutive values go to [`SETS`] separate sets of bins (4 and 8 sets measured the same, 16
//! slower: the bins outgrow the L1 cache).
//!
//! `f64` values outside the window go to [`ExactSum::add`] one by one.
//!
//! Every path adds exactly, so the total is the same exact sum [`ExactSum::add`] would hold and
//! everything built on it (merging in any order, the one rounding) is unchanged; only the cost
//! differs (the bench group `partial_mse_*_1t`).

use super::ExactSum;
use crate::simd::dispatch::Resolved;
use crate::simd::{Kernel, Lanes};

/// Values per window block: `2^12` integers of at most `2^40` sum to at most `2^52`, exactly
/// in `f64`.
const WINDOW_BLOCK: usize = 1 << 12;

/// `1.5 · 2^52`: `(t + ROUNDER) - ROUNDER` rounds `t` to an integer exactly for `|t| < 2^51`.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// Independent sets of bins: value `i` goes to set `i % SETS`.
const SETS: usize = 4;

/// Values added between folds: every bin then holds less than `2^36 · 2^24 = 2^60` in
/// magnitude, and the sum of one exponent's bins over the sets less than `2^62`.
const ADDS_BEFORE_FOLD: u64 = 1 << 36;

/// The exact sum of the `f32` or `f64` values added (see the module docs).
pub struct BinnedExactSum {
    /// `bins[set][e]`: `Σ ±m` of the finite values of biased exponent `e` (bin 255, the
    /// non-finite exponent, is written and never read: the values go to `folded`).
    bins: [[i64; 256]; SETS],
    /// Values added to the bins since they were last folded.
    adds: u64,
    /// The folded bins and the non-finite values.
    folded: ExactSum,
}

impl BinnedExactSum {
    /// The empty sum.
    pub(crate) fn new() -> BinnedExactSum {
        BinnedExactSum {
            bins: [[0; 256]; SETS],
            adds: 0,
            folded: ExactSum::ZERO,
        }
    }

    /// Adds every value of `values` exactly: through the window, and the bins for the rest.
    pub(crate) fn add_f32s(&mut self, values: &[f32]) {
        for block in values.chunks(WINDOW_BLOCK) {
            let scale = self.add_window(block);
            if let Some(scale) = scale {
                if self.adds + block.len() as u64 > ADDS_BEFORE_FOLD {
                    self.fold();
                }
                for (i, &x) in block.iter().enumerate() {
                    if !in_window(x, scale) {
                        self.adds += 1;
                        add_to_bins(&mut self.bins[i % SETS], x, &mut self.folded);
                    }
                }
            }
        }
    }

    /// Adds every value of `values` exactly: through the window, and to the digits directly
    /// for the rest (an `f64` bin would hold only `2^10` values).
    pub(crate) fn add_f64s(&mut self, values: &[f64]) {
        for block in values.chunks(WINDOW_BLOCK) {
            if let Some(scale) = self.add_window(block) {
                for &x in block {
                    if !in_window(x, scale) {
                        self.folded.add(x);
                    }
                }
            }
        }
    }

    /// Adds the values of `block` that the window takes, and returns the window's scale if it
    /// left some out (for the caller to add: the values `in_window` rejects at that scale).
    fn add_window<T: Windowed>(&mut self, block: &[T]) -> Option<f64> {
        let window = Resolved::active().run(Window { values: block });
        // Each total is an integer below 2^52 in magnitude (`as u64` is exact) in units of
        // 2^(e - 1062) and 2^(e - 1102): 2^(shift - 1074) with these shifts.
        for (total, shift) in [(window.high, window.e + 12), (window.low, window.e - 28)] {
            if total != 0.0 {
                self.folded
                    .add_scaled(total < 0.0, total.abs() as u64, shift);
            }
        }
        window.outside.then_some(window.scale)
    }

    /// Moves the bins' totals into `folded` and empties them.
    fn fold(&mut self) {
        for e in 0..255 {
            let total: i64 = self.bins.iter().map(|bins| bins[e]).sum();
            // 2^(max(e, 1) - 150) = 2^(shift - 1074).
            let shift = e.max(1) as u32 + 924;
            self.folded
                .add_scaled(total < 0, total.unsigned_abs(), shift);
        }
        self.bins = [[0; 256]; SETS];
        self.adds = 0;
    }

    /// The exact sum of every value added.
    pub(crate) fn total(mut self) -> ExactSum {
        if self.adds > 0 {
            self.fold();
        }
        self.folded
    }
}

/// The element types the window takes: `f32` and `f64`.
pub(crate) trait Windowed: crate::Float {
    /// Whether `x · scale` can underflow (for `f32` values it cannot: the smallest is
    /// `2^-149` and the smallest scale `2^-88`).
    const MAY_UNDERFLOW: bool;
}

impl Windowed for f32 {
    const MAY_UNDERFLOW: bool = false;
}

impl Windowed for f64 {
    const MAY_UNDERFLOW: bool = true;
}

/// `2^40`: the width of each of the window's two levels.
const LEVEL: f64 = 1_099_511_627_776.0;

/// The window's two levels of `x` at `scale`: `t = x · scale` rounded to an integer, and the
/// rest times `2^40`, and whether the rest is an integer too (whether `x` is in the window; see
/// the module docs). The one computation both the window kernel and the callers' test of what
/// it left out use: the same operations in the same order (Rust never contracts them into
/// fused multiply-adds), so they agree on every value.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn levels<T: Windowed>(x: T, scale: f64) -> (f64, f64, bool) {
    let x = x.to_f64();
    let t = x * scale;
    let high = (t + ROUNDER) - ROUNDER;
    let low = (t - high) * LEVEL;
    // `- low == 0` rather than `== low`: an infinity rounds to itself, and `∞ - ∞` is NaN.
    let mut inside = (low + ROUNDER) - ROUNDER - low == 0.0;
    if T::MAY_UNDERFLOW {
        inside &= t != 0.0 || x == 0.0;
    }
    (high, low, inside)
}

/// Whether the window at `scale` takes `x`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn in_window<T: Windowed>(x: T, scale: f64) -> bool {
    levels(x, scale).2
}

/// One block's pass through the window.
struct Window<'a, T> {
    values: &'a [T],
}

/// What the window made of a block.
struct WindowSum {
    /// The biased `f64` exponent of the block's largest magnitude (NaN aside), at least 39.
    e: u32,
    /// `2^(1062 - e)`.
    scale: f64,
    /// The sums of the values' two levels: integers, exact.
    high: f64,
    low: f64,
    /// Whether some value was left out.
    outside: bool,
}

impl<T: Windowed> Kernel<T> for Window<'_, T> {
    type Output = WindowSum;

    /// Plain loops over arrays of `LANES` values, which the tier's target features vectorise
    /// (the lane types have no `f64` widening), inlined into the tier's function.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = T>>(self, _isa: V::Isa) -> WindowSum {
        const LANES: usize = 16;
        // The largest magnitude, in the element type (16 `f32` lanes a vector where `f64`
        // would take two).
        let mut largest = [T::ZERO; LANES];
        let mut chunks = self.values.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (m, &x) in largest.iter_mut().zip(chunk) {
                // `>` skips NaN, which the window leaves out anyway.
                *m = if x.abs() > *m { x.abs() } else { *m };
            }
        }
        let mut max = T::ZERO;
        for &x in largest.iter().chain(chunks.remainder()) {
            max = if x.abs() > max { x.abs() } else { max };
        }
        let max = max.to_f64();
        // At least 39, so that the scale is finite (a block below 2^-984 is left out).
        let e = ((max.to_bits() >> 52) as u32).max(39);
        let scale = f64::from_bits(u64::from(2085 - e) << 52);
        let mut high = [0.0f64; LANES];
        let mut low = [0.0f64; LANES];
        let mut outside = [0u64; LANES];
        let mut chunks = self.values.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (k, &x) in chunk.iter().enumerate() {
                let (h, l, inside) = levels(x, scale);
                high[k] += if inside { h } else { 0.0 };
                low[k] += if inside { l } else { 0.0 };
                outside[k] |= u64::from(!inside);
            }
        }
        // Exact in any order (see the module docs).
        let mut sum = WindowSum {
            e,
            scale,
            high: high.iter().sum(),
            low: low.iter().sum(),
            outside: outside.iter().any(|&o| o != 0),
        };
        for &x in chunks.remainder() {
            let (h, l, inside) = levels(x, scale);
            sum.high += if inside { h } else { 0.0 };
            sum.low += if inside { l } else { 0.0 };
            sum.outside |= !inside;
        }
        sum
    }
}

#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn add_to_bins(bins: &mut [i64; 256], x: f32, folded: &mut ExactSum) {
    let bits = x.to_bits();
    let e = (bits >> 23) & 0xff;
    let m = (bits & 0x7f_ffff) | (((e != 0) as u32) << 23);
    // 0 or -1: the sign applied to `m` without a branch.
    let sign = ((bits as i32) >> 31) as i64;
    bins[e as usize] += (m as i64 ^ sign) - sign;
    if e == 255 {
        folded.add(x as f64);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::{BinnedExactSum, ADDS_BEFORE_FOLD};
    use crate::engine::ExactSum;

    /// A xorshift64 stream from `seed` (not 0): the tests' reproducible random bits.
    pub(in crate::engine) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    fn exact(values: &[f32]) -> ExactSum {
        values.iter().fold(ExactSum::ZERO, |mut s, &v| {
            s.add(v as f64);
            s
        })
    }

    fn binned(values: &[f32]) -> ExactSum {
        let mut s = BinnedExactSum::new();
        s.add_f32s(values);
        s.total()
    }

    #[test]
    fn equals_the_exact_sum_at_every_exponent() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        // Random bit patterns cover every exponent, subnormals and both signs.
        let mut values: Vec<f32> = (0..20_000)
            .map(|_| f32::from_bits(next() as u32))
            .filter(|v| v.is_finite())
            .collect();
        values.extend([
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -f32::from_bits(1),
            f32::from_bits(1),
            f32::MAX,
            f32::MAX,
            -f32::MAX,
            1.0,
            -1.0,
        ]);
        for len in [0, 1, 3, 4, 5, 1000, values.len()] {
            let part = &values[..len];
            assert_eq!(binned(part), exact(part), "first {len} values");
            assert_eq!(
                binned(part).value().to_bits(),
                exact(part).value().to_bits()
            );
        }
        // Cancellation across the sets: x and -x in different sets.
        let cancelling = [3.5, 1e-40, -3.5, 0.25, 7.0, -1e-40];
        assert_eq!(binned(&cancelling), exact(&cancelling));
        assert_eq!(binned(&cancelling).value(), 7.25);
    }

    #[test]
    fn non_finite_values_are_kept_apart() {
        assert!(binned(&[1.0, f32::NAN, 2.0]).value().is_nan());
        assert!(binned(&[f32::INFINITY, f32::NEG_INFINITY]).value().is_nan());
        assert_eq!(binned(&[f32::INFINITY, -3.0]).value(), f64::INFINITY);
        assert_eq!(binned(&[5.0, f32::NEG_INFINITY]).value(), f64::NEG_INFINITY);
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(binned(&[1.0, x]).flags(), exact(&[1.0, x]).flags());
            assert_eq!(binned(&[1.0, x]), exact(&[1.0, x]));
        }
    }

    #[test]
    fn the_window_and_the_bins_count_every_value_once_on_every_tier() {
        let mut bits = xorshift(0x9E37_79B9_7F4A_7C15u64);
        let mut uniform = move || (bits() >> 40) as f32 / (1u64 << 24) as f32;
        // Squared errors (nearly all in the window), the same with a few values 2^-20 of the
        // largest and below (the first in, the second out), a range of 2^±60 (mostly left out), signs mixed,
        // subnormals alone, values at the window's limits, non-finite values amid window values.
        let narrow: Vec<f32> = (0..10_000)
            .map(|_| (0.1 * (uniform() - 0.5)).powi(2))
            .collect();
        let mut mixed = narrow.clone();
        for (i, v) in mixed.iter_mut().enumerate().step_by(97) {
            *v *= if i % 2 == 0 { 1e-6 } else { -3e-22 };
        }
        let wide: Vec<f32> = (0..10_000)
            .map(|i| {
                let v = (uniform() * 120.0 - 60.0).exp2() * (0.5 + uniform());
                if i % 3 == 0 {
                    -v
                } else {
                    v
                }
            })
            .collect();
        let subnormal: Vec<f32> = (1..5000u32).map(f32::from_bits).collect();
        // At the window's limits: the largest significand at the top exponent, odd
        // significands 16 binades below (the smallest integers of the first level) and 56
        // binades below (the smallest the second level takes).
        let limits: Vec<f32> = (0..9000u32)
            .map(|i| match i % 3 {
                0 => f32::from_bits(0x3fff_ffff),
                1 => f32::from_bits(0x3780_0001 + 2 * (i % 1000)),
                _ => f32::from_bits(0x2380_0001 + 2 * (i % 1000)),
            })
            .collect();
        let mut with_nan = narrow[..5000].to_vec();
        with_nan[4100] = f32::NAN;
        let mut with_inf = narrow[..5000].to_vec();
        with_inf[17] = f32::INFINITY;
        for tier in crate::Tier::available() {
            // The window takes every value at its limits, and leaves the next binade down out.
            let mut s = BinnedExactSum::new();
            crate::with_tier(tier, || s.add_f32s(&limits)).expect("an available tier");
            assert_eq!(
                s.adds, 0,
                "{tier}: values at the window's limits went to the bins"
            );
            let below = [limits[0], f32::from_bits(0x2300_0001)];
            crate::with_tier(tier, || s.add_f32s(&below)).expect("an available tier");
            assert_eq!(
                s.adds, 1,
                "{tier}: a value below the window did not go to the bins"
            );
            for values in [
                &narrow, &mixed, &wide, &subnormal, &limits, &with_nan, &with_inf,
            ] {
                for len in [1, 15, 16, 17, 4095, 4096, 4097, 8193, values.len()] {
                    let part = &values[..len.min(values.len())];
                    let got = crate::with_tier(tier, || binned(part)).expect("an available tier");
                    assert_eq!(got, exact(part), "{tier}, {len} values");
                    assert_eq!(got.flags(), exact(part).flags(), "{tier}, {len} values");
                }
            }
        }
    }

    #[test]
    fn f64_values_through_the_window_are_exact_on_every_tier() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        let exact64 = |values: &[f64]| {
            values.iter().fold(ExactSum::ZERO, |mut s, &v| {
                s.add(v);
                s
            })
        };
        let narrow: Vec<f64> = (0..10_000)
            .map(|_| (0.1 * ((next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5)).powi(2))
            .collect();
        // Random bit patterns: every exponent, subnormals, both signs.
        let wide: Vec<f64> = (0..10_000)
            .map(|_| f64::from_bits(next()))
            .filter(|v| v.is_finite())
            .collect();
        // Near the top of the range, with tiny values whose scaled form underflows.
        let mut huge: Vec<f64> = narrow.iter().map(|v| v * 1e306).collect();
        for (i, v) in huge.iter_mut().enumerate().step_by(7) {
            *v = if i % 2 == 0 {
                1e-300
            } else {
                -f64::from_bits(1)
            };
        }
        huge[5] = f64::MAX;
        huge[6] = -f64::MAX;
        let subnormal: Vec<f64> = (1..5000u64).map(f64::from_bits).collect();
        let mut with_inf = narrow[..5000].to_vec();
        with_inf[4099] = f64::NEG_INFINITY;
        let mut with_nan = narrow[..5000].to_vec();
        with_nan[3] = f64::NAN;
        for tier in crate::Tier::available() {
            for values in [&narrow, &wide, &huge, &subnormal, &with_inf, &with_nan] {
                for len in [1, 15, 16, 17, 4095, 4096, 4097, 8193, values.len()] {
                    let part = &values[..len.min(values.len())];
                    let got = crate::with_tier(tier, || {
                        let mut s = BinnedExactSum::new();
                        s.add_f64s(part);
                        s.total()
                    })
                    .expect("an available tier");
                    assert_eq!(got, exact64(part), "{tier}, {len} values");
                    assert_eq!(got.flags(), exact64(part).flags(), "{tier}, {len} values");
                }
            }
        }
    }

    #[test]
    fn a_fold_mid_stream_keeps_the_sum_exact() {
        // Start one add short of the fold with every bin near its limit, as 2^36 adds of the
        // largest significand would leave it, then add values the window leaves to the bins
        // (2^-62 of the largest): the bins are folded (and emptied) first, and the total
        // counts every value once.
        let mut s = BinnedExactSum::new();
        let near = (1i64 << 24) - 1;
        let limit = near * (ADDS_BEFORE_FOLD as i64 / 4);
        for bins in s.bins.iter_mut() {
            bins[127] = limit;
        }
        s.adds = ADDS_BEFORE_FOLD - 1;
        let values = [4.0f32, 3e-19, 7e-19, 3e-19, 5e-19, 3e-19, 3e-19, 3e-19];
        s.add_f32s(&values);
        let mut expected = ExactSum::ZERO;
        expected.add_scaled(false, (4 * limit) as u64, 127 + 924);
        for &v in &values {
            expected.add(v as f64);
        }
        assert_eq!(s.adds, 7, "the small values went to the bins");
        assert_eq!(s.total(), expected);
    }
}
