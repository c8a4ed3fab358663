//! Exact sums of many `f32` values at about one integer add each: per-exponent bins.
//!
//! An `f32` is `±m · 2^(max(e, 1) - 150)` with `e` its biased exponent and `m` its 24-bit
//! significand (the implicit bit included for `e ≥ 1`). The values of one exponent are integer
//! multiples of the same power of two, so their sum is the integer `Σ ±m` times it: one `i64`
//! bin per exponent holds it exactly for `2^39` values (each moves it by less than `2^24`).
//! [`BinnedExactSum`] adds an `f32` value with one integer add into its bin, and folds the bins
//! into an [`ExactSum`] (three digit adds per bin) when asked for the total, or before a bin
//! could overflow. The total is the same exact sum [`ExactSum::add`] would hold, so everything
//! built on it (merging in any order, the one rounding) is unchanged; only the cost differs:
//! `partial::mse` over 1M `f32` takes 1.6 ns per element on one Sapphire Rapids core with the
//! bins (the loss itself included), against 5.1 ns for `f64`, whose values go to
//! [`ExactSum::add`] one by one (the bench group `partial_mse_*_1t`).
//!
//! Values of the same exponent follow each other in real data (losses of similar size), and
//! an add into the bin the previous add wrote waits for it (a store-to-load round trip of
//! about 5 cycles), so consecutive values go to [`SETS`] separate sets of bins (4 and 8 sets
//! measured the same, 16 slower: the bins outgrow the L1 cache).

use super::ExactSum;

/// Independent sets of bins: value `i` goes to set `i % SETS`.
const SETS: usize = 4;

/// Values added between folds: every bin then holds less than `2^36 · 2^24 = 2^60` in
/// magnitude, and the sum of one exponent's bins over the sets less than `2^62`.
const ADDS_BEFORE_FOLD: u64 = 1 << 36;

/// The exact sum of the `f32` values added (see the module docs).
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

    /// Adds every value of `values` exactly, through the bins.
    pub(crate) fn add_f32s(&mut self, values: &[f32]) {
        for chunk in values.chunks(1 << 20) {
            if self.adds + chunk.len() as u64 > ADDS_BEFORE_FOLD {
                self.fold();
            }
            self.adds += chunk.len() as u64;
            let mut quads = chunk.chunks_exact(SETS);
            for quad in &mut quads {
                for (bins, &x) in self.bins.iter_mut().zip(quad) {
                    add_to_bins(bins, x, &mut self.folded);
                }
            }
            for (bins, &x) in self.bins.iter_mut().zip(quads.remainder()) {
                add_to_bins(bins, x, &mut self.folded);
            }
        }
    }

    /// Adds every value of `values` exactly, to the digits directly (an `f64` bin would hold
    /// only `2^10` values).
    pub(crate) fn add_f64s(&mut self, values: &[f64]) {
        for &x in values {
            self.folded.add(x);
        }
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
        self.fold();
        self.folded
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
mod tests {
    use super::{BinnedExactSum, ADDS_BEFORE_FOLD};
    use crate::engine::ExactSum;

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
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
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
    fn a_fold_mid_stream_keeps_the_sum_exact() {
        // Start one add short of the fold with every bin near its limit, as 2^36 adds of the
        // largest significand would leave it, then add more: the bins are folded (and emptied)
        // first, and the total counts every value once.
        let mut s = BinnedExactSum::new();
        let near = (1i64 << 24) - 1;
        let limit = near * (ADDS_BEFORE_FOLD as i64 / 4);
        for bins in s.bins.iter_mut() {
            bins[127] = limit;
        }
        s.adds = ADDS_BEFORE_FOLD - 1;
        s.add_f32s(&[1.999_999_9; 8]);
        let mut expected = ExactSum::ZERO;
        expected.add_scaled(false, (4 * limit) as u64, 127 + 924);
        for _ in 0..8 {
            expected.add(1.999_999_9f32 as f64);
        }
        assert_eq!(s.total(), expected);
    }
}
