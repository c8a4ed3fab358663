//! An exact accumulator of `f64` values (a Kulisch-style long fixed-point sum), so that partial
//! results merge in any order and grouping to the same bits.
//!
//! Every finite `f64` is an integer multiple of `2^-1074` below `2^1024`, so a sum of them is an
//! integer multiple of `2^-1074` too: [`ExactSum`] holds it in 32-bit digits (each in an `i64`
//! with room for carries), adds a value by splitting its 53-bit significand over at most three
//! digits, and merges by adding digits. Both are exact, hence associative and commutative, and
//! [`ExactSum::value`] rounds the exact total to the nearest `f64` (ties to even), once. The
//! cost is a few integer operations per value added, so the kernels add one value per leaf of
//! the fixed tree (never one per element), and a merge is a loop over [`DIGITS`] integers.
//!
//! Non-finite values are kept apart: a NaN, or both infinities, make the value NaN; one
//! infinity makes it that infinity; a finite total beyond `f64::MAX` rounds to infinity.
//! A total below `2^-1022` (subnormal) may be rounded twice; it is still a function of the
//! exact total alone, so merge order never changes it.

/// 32-bit digits: `2^-1074 · 2^(32·DIGITS)` covers `2^1024` times the carries of `2^31` adds.
pub(crate) const DIGITS: usize = 68;

/// Adds between carry propagations: each add moves a digit by less than `2^32`, and a digit
/// stays below `2^62` in magnitude after this many.
const ADDS_BEFORE_CARRY: u32 = 1 << 29;

/// The exact sum of the `f64` values added to it (see the module docs).
///
/// Equality is of the exact totals (and the non-finite flags), not of the digits' layout.
#[derive(Clone, Copy, Debug)]
pub struct ExactSum {
    /// `Σ digits[i] · 2^(32·i - 1074)`.
    digits: [i64; DIGITS],
    /// Adds since the digits were last carried.
    pending: u32,
    nan: bool,
    pos_inf: bool,
    neg_inf: bool,
}

impl PartialEq for ExactSum {
    fn eq(&self, other: &ExactSum) -> bool {
        let (a, b) = (self.carried(), other.carried());
        a.digits == b.digits && (a.nan, a.pos_inf, a.neg_inf) == (b.nan, b.pos_inf, b.neg_inf)
    }
}

impl Eq for ExactSum {}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum::ZERO
    }
}

impl ExactSum {
    /// The empty sum.
    pub(crate) const ZERO: ExactSum = ExactSum {
        digits: [0; DIGITS],
        pending: 0,
        nan: false,
        pos_inf: false,
        neg_inf: false,
    };

    /// The sum holding `x` alone.
    pub(crate) fn of(x: f64) -> ExactSum {
        let mut s = ExactSum::ZERO;
        s.add(x);
        s
    }

    /// Adds `x` exactly.
    pub(crate) fn add(&mut self, x: f64) {
        if !x.is_finite() {
            if x.is_nan() {
                self.nan = true;
            } else if x > 0.0 {
                self.pos_inf = true;
            } else {
                self.neg_inf = true;
            }
            return;
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as u32;
        let fraction = bits & ((1 << 52) - 1);
        // x = ±significand · 2^(shift - 1074), shift >= 0.
        let (significand, shift) = if biased == 0 {
            (fraction, 0)
        } else {
            (fraction | (1 << 52), biased - 1)
        };
        self.add_scaled(x < 0.0, significand, shift);
    }

    /// Adds `±magnitude · 2^(shift - 1074)` exactly, for `magnitude < 2^64` and
    /// `shift <= 2058`: the form every finite `f64`, and every bin and window total of
    /// `BinnedExactSum`, takes (the three digits touched end at index `2058 / 32 + 2 = 66`).
    pub(crate) fn add_scaled(&mut self, negative: bool, magnitude: u64, shift: u32) {
        if magnitude == 0 {
            return;
        }
        let (index, offset) = ((shift / 32) as usize, shift % 32);
        // At most 64 + 31 = 95 bits: three digits, each moved by less than 2^32.
        let wide = (magnitude as u128) << offset;
        let sign = if negative { -1 } else { 1 };
        for k in 0..3 {
            let digit = ((wide >> (32 * k)) & 0xffff_ffff) as i64;
            self.digits[index + k] += sign * digit;
        }
        self.pending += 1;
        if self.pending >= ADDS_BEFORE_CARRY {
            self.carry();
        }
    }

    /// Propagates carries so that every digit but the last is in `[0, 2^32)`.
    fn carry(&mut self) {
        let mut carry = 0i64;
        for d in self.digits.iter_mut() {
            let v = *d + carry;
            *d = v & 0xffff_ffff;
            carry = v >> 32;
        }
        // The top digit keeps the sign: it never overflows (see DIGITS).
        self.digits[DIGITS - 1] += carry << 32;
        self.pending = 0;
    }

    /// The same sum with its carries propagated: the canonical digits of its total.
    fn carried(&self) -> ExactSum {
        let mut s = *self;
        s.carry();
        s
    }

    /// The finite part's sign and magnitude digits (`Σ magnitude[i] · 2^(32·i - 1074)`, every
    /// digit in `[0, 2^32)`).
    fn sign_magnitude(&self) -> (bool, [i64; DIGITS]) {
        let mut s = self.carried();
        let negative = s.digits[DIGITS - 1] < 0;
        if negative {
            // Two's complement over the digits: the magnitude, carried again.
            for d in s.digits.iter_mut() {
                *d = -*d;
            }
            s.carry();
        }
        (negative, s.digits)
    }

    /// The finite part as `(negative, low, digits)`: the total is
    /// `± Σ digits[j] · 2^(32·(low + j) - 1074)`, with no zero digit at either end (`digits`
    /// empty for zero). The serde form (`exact_serde`) is built on it.
    #[cfg(any(feature = "serde", test))]
    pub(crate) fn to_parts(self) -> (bool, usize, Vec<u32>) {
        let (negative, magnitude) = self.sign_magnitude();
        let Some(top) = magnitude.iter().rposition(|&d| d != 0) else {
            return (false, 0, Vec::new());
        };
        let low = magnitude.iter().position(|&d| d != 0).unwrap_or(top);
        let digits = magnitude[low..=top].iter().map(|&d| d as u32).collect();
        (negative, low, digits)
    }

    /// The sum with the finite total of [`to_parts`](Self::to_parts)' form and the given
    /// non-finite flags; `None` if the digits do not fit (`low + digits.len() > DIGITS`, or a
    /// top digit at or above `2^31` in the last place, which holds the sign).
    #[cfg(any(feature = "serde", test))]
    pub(crate) fn from_parts(
        negative: bool,
        low: usize,
        digits: &[u32],
        [nan, pos_inf, neg_inf]: [bool; 3],
    ) -> Option<ExactSum> {
        let end = low.checked_add(digits.len())?;
        if end > DIGITS || (end == DIGITS && digits.last().is_some_and(|&d| d >= 1 << 31)) {
            return None;
        }
        let mut s = ExactSum::ZERO;
        for (d, &v) in s.digits[low..end].iter_mut().zip(digits) {
            *d = if negative { -(v as i64) } else { v as i64 };
        }
        s.carry();
        s.nan = nan;
        s.pos_inf = pos_inf;
        s.neg_inf = neg_inf;
        Some(s)
    }

    /// The non-finite values added: `[nan, +inf, -inf]`.
    #[cfg(any(feature = "serde", test))]
    pub(crate) fn flags(&self) -> [bool; 3] {
        [self.nan, self.pos_inf, self.neg_inf]
    }

    /// The sum of both, exactly.
    pub(crate) fn merge(mut self, other: &ExactSum) -> ExactSum {
        self.carry();
        let mut other = *other;
        other.carry();
        for (a, b) in self.digits.iter_mut().zip(other.digits) {
            *a += b;
        }
        self.carry();
        self.nan |= other.nan;
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
        self
    }

    /// The exact total rounded to the nearest `f64`, ties to even.
    pub(crate) fn value(&self) -> f64 {
        if self.nan || (self.pos_inf && self.neg_inf) {
            return f64::NAN;
        }
        if self.pos_inf {
            return f64::INFINITY;
        }
        if self.neg_inf {
            return f64::NEG_INFINITY;
        }
        let (negative, digits) = self.sign_magnitude();
        let Some(top) = digits.iter().rposition(|&d| d != 0) else {
            return 0.0;
        };
        // The top three digits (at least 65 significant bits when top >= 2), with every lower
        // non-zero digit folded into a sticky bit below the rounding position.
        let low = top.saturating_sub(2);
        let mut wide = 0u128;
        for i in (low..=top).rev() {
            wide = (wide << 32) | digits[i] as u128;
        }
        if digits[..low].iter().any(|&d| d != 0) {
            wide |= 1;
        }
        let magnitude = scale_by_pow2(wide as f64, 32 * low as i32 - 1074);
        if negative {
            -magnitude
        } else {
            magnitude
        }
    }
}

/// `x · 2^k` for `x` an integer below `2^96`, `k` in `[-1074, 1100]`: exact unless the result
/// is subnormal or overflows.
fn scale_by_pow2(x: f64, k: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    let mut x = x;
    let mut k = k;
    while k > 1000 {
        x *= pow2(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= pow2(-1000);
        k += 1000;
    }
    x * pow2(k)
}

#[cfg(test)]
mod tests {
    use super::ExactSum;

    fn sum(values: &[f64]) -> ExactSum {
        values.iter().fold(ExactSum::ZERO, |mut s, &v| {
            s.add(v);
            s
        })
    }

    #[test]
    fn cancellation_and_tiny_terms_are_exact() {
        // 1e300 + 1 - 1e300 is 1 exactly; a float sum gives 0.
        assert_eq!(sum(&[1e300, 1.0, -1e300]).value(), 1.0);
        assert_eq!(
            sum(&[f64::MIN_POSITIVE / 4.0, 1.0, -1.0]).value(),
            f64::MIN_POSITIVE / 4.0
        );
        // The doubles nearest 0.1, 0.2 and 0.3 sum to 2^-55 exactly.
        assert_eq!(sum(&[0.1, 0.2, -0.3]).value(), 2f64.powi(-55));
        assert_eq!(sum(&[-2.5, 1.0]).value(), -1.5);
        assert_eq!(sum(&[]).value(), 0.0);
        assert_eq!(sum(&[f64::MAX, f64::MAX]).value(), f64::INFINITY);
        assert_eq!(sum(&[f64::MAX, f64::MAX, -f64::MAX]).value(), f64::MAX);
    }

    #[test]
    fn rounding_is_to_nearest_even_once() {
        // 1 + 2^-53 is a tie: to even (1.0); a sticky bit far below breaks the tie upward.
        let half_ulp = f64::EPSILON / 2.0;
        assert_eq!(sum(&[1.0, half_ulp]).value(), 1.0);
        assert_eq!(sum(&[1.0, half_ulp, 1e-300]).value(), 1.0 + f64::EPSILON);
        assert_eq!(
            sum(&[1.0 + f64::EPSILON, half_ulp]).value(),
            1.0 + 2.0 * f64::EPSILON
        );
    }

    #[test]
    fn parts_round_trip_exactly() {
        let cases: [&[f64]; 6] = [
            &[],
            &[1.0],
            &[-2.5, 1e-300, 3e300],
            &[f64::MAX, f64::MAX, f64::MAX],
            &[-f64::MIN_POSITIVE / 8.0, f64::NAN],
            &[0.1, 0.2, -0.3, f64::NEG_INFINITY],
        ];
        for values in cases {
            let s = sum(values);
            let (negative, low, digits) = s.to_parts();
            assert!(digits.first() != Some(&0) && digits.last() != Some(&0));
            let back = ExactSum::from_parts(negative, low, &digits, s.flags()).unwrap();
            assert_eq!(back, s, "{values:?}");
            assert_eq!(back.value().to_bits(), s.value().to_bits());
        }
        // Beyond the accumulator: the sign digit's place, or past the last digit.
        assert!(ExactSum::from_parts(false, 67, &[1 << 31], [false; 3]).is_none());
        assert!(ExactSum::from_parts(false, 67, &[(1 << 31) - 1], [false; 3]).is_some());
        assert!(ExactSum::from_parts(true, 60, &[1; 9], [false; 3]).is_none());
        assert!(ExactSum::from_parts(false, usize::MAX, &[1], [false; 3]).is_none());
    }

    #[test]
    fn non_finite_values_are_kept_apart() {
        assert!(sum(&[1.0, f64::NAN]).value().is_nan());
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).value().is_nan());
        assert_eq!(sum(&[f64::INFINITY, -1e308]).value(), f64::INFINITY);
        assert_eq!(sum(&[f64::NEG_INFINITY, 5.0]).value(), f64::NEG_INFINITY);
    }

    #[test]
    fn merge_order_and_grouping_never_change_the_bits() {
        let mut next = crate::engine::exact_bins::tests::xorshift(0x9E37_79B9_7F4A_7C15u64);
        let values: Vec<f64> = (0..2000)
            .map(|_| {
                let v = next();
                let mantissa = (v >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                mantissa * 2f64.powi((v % 120) as i32 - 60)
            })
            .collect();
        let whole = sum(&values).value();
        let float_sum: f64 = values.iter().sum();
        for trial in 0..20 {
            // Random cut points, then the parts merged in a rotated order and as a tree.
            let mut cuts: Vec<usize> = (0..(trial % 7 + 1))
                .map(|_| next() as usize % values.len())
                .collect();
            cuts.push(0);
            cuts.push(values.len());
            cuts.sort_unstable();
            let parts: Vec<ExactSum> = cuts.windows(2).map(|w| sum(&values[w[0]..w[1]])).collect();
            let rotated = (0..parts.len())
                .map(|i| parts[(i + trial) % parts.len()])
                .fold(ExactSum::ZERO, |a, b| a.merge(&b));
            assert_eq!(rotated.value().to_bits(), whole.to_bits());
            let pairwise = parts
                .chunks(2)
                .map(|p| p.iter().fold(ExactSum::ZERO, |a, b| a.merge(b)))
                .rev()
                .fold(ExactSum::ZERO, |a, b| b.merge(&a));
            assert_eq!(pairwise.value().to_bits(), whole.to_bits());
        }
        // The exact sum differs from the float sum of these values only by rounding.
        assert!((whole - float_sum).abs() <= 1e-12 * values.iter().map(|v| v.abs()).sum::<f64>());
    }
}
