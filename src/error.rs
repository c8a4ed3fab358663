//! The one error type every call returns.

use core::fmt;

use crate::Tier;

/// Why a loss could not be computed. Every check runs before any work starts, so an error
/// never leaves an `out` or gradient slice half written.
///
/// ```
/// use losskit::{LossError, Reduction};
/// let err = losskit::mse(&[1.0f32, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0], Reduction::Mean).unwrap_err();
/// assert_eq!(err, LossError::LengthMismatch { name: "target", len: 3, expected_name: "input", expected: 4 });
/// assert_eq!(err.to_string(), "target has 3 elements but input has 4");
///
/// // A parameter prints as it was written, in its own type: 0.7f32 as "0.7", not as the
/// // 0.699999988079071 it widens to in the `f64` field.
/// let err = losskit::Bce::new().epsilon(0.7f32).loss(&[0.5f32], &[1.0], Reduction::Mean).unwrap_err();
/// assert_eq!(err.to_string(), "epsilon is 0.7; it must be in [0, 0.5]");
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum LossError {
    /// A slice's length differs from the one it must match: another slice (`"target has 3
    /// elements but input has 4"`) or a count argument (`"weight has 2 elements but classes
    /// is 3"`).
    LengthMismatch {
        /// The argument with the wrong length (`"target"`, `"probs"`, `"out"`, `"grad"`,
        /// `"labels"`, `"weight"`, ...).
        name: &'static str,
        /// Its length.
        len: usize,
        /// What it must match: a slice (`"input"`, `"logits"`, `"rows of logits"`, ...) or the
        /// count argument `"classes"`.
        expected_name: &'static str,
        /// The length it must have.
        expected: usize,
    },
    /// `classes` is zero.
    ZeroClasses,
    /// `logits.len()` is not a multiple of `classes`.
    NotMultipleOfClasses {
        /// `logits.len()`.
        len: usize,
        /// `classes`.
        classes: usize,
    },
    /// `rows * classes` does not fit in `usize`.
    SizeOverflow {
        /// The number of rows.
        rows: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A class label is outside `0..classes` and is not the ignore index.
    LabelOutOfRange {
        /// The row whose label it is.
        row: usize,
        /// The label (widened to `i128` so that every integer type fits).
        label: i128,
        /// The number of classes.
        classes: usize,
    },
    /// A scalar parameter is outside its domain (NaN, negative, ...).
    InvalidParameter {
        /// The parameter (`"delta"`, `"beta"`, `"label_smoothing"`, ...).
        name: &'static str,
        /// Its value, widened exactly to `f64`. The message prints it in the narrowest of
        /// `f32` and `f64` that holds it exactly, so an `f32` parameter reads as written.
        value: f64,
        /// What it must satisfy, e.g. `"> 0"`.
        requirement: &'static str,
    },
    /// An element that must be a probability is outside `[0, 1]` (or NaN).
    NotAProbability {
        /// The argument (`"input"`, `"target"`).
        name: &'static str,
        /// The index of the first offending element.
        index: usize,
        /// Its value, widened exactly to `f64` (printed as for
        /// [`InvalidParameter`](LossError::InvalidParameter)).
        value: f64,
    },
    /// An element that must not be negative is (gaussian_nll's `var`: PyTorch rejects a
    /// negative variance; NaN is data and propagates).
    ///
    /// ```
    /// use losskit::{LossError, Reduction};
    /// let err = losskit::gaussian_nll(&[0.0f32, 0.0], &[1.0, 1.0], &[1.0, -0.5], Reduction::Mean);
    /// assert_eq!(err, Err(LossError::Negative { name: "var", index: 1, value: -0.5 }));
    /// assert_eq!(err.unwrap_err().to_string(), "var[1] is -0.5; it must be >= 0");
    /// ```
    Negative {
        /// The argument (`"var"`).
        name: &'static str,
        /// The index of the first offending element.
        index: usize,
        /// Its value, widened exactly to `f64` (printed as for
        /// [`InvalidParameter`](LossError::InvalidParameter)).
        value: f64,
    },
    /// An element of an integer argument (a ctc label or length) is outside its range.
    ///
    /// ```
    /// use losskit::{LossError, Reduction};
    /// let lp = [0.5f32.ln(); 4]; // T = 2, N = 1, C = 2
    /// let err = losskit::ctc(&lp, [2, 1, 2], &[1i64], &[2i64], &[-1i64], Reduction::Sum).unwrap_err();
    /// assert_eq!(err.to_string(), "target_lengths[0] is -1; it must be in 0..=1");
    /// ```
    OutOfRange {
        /// The argument (`"targets"`, `"input_lengths"`, `"target_lengths"`).
        name: &'static str,
        /// The index of the first offending element.
        index: usize,
        /// Its value (widened to `i128` so that every integer type fits).
        value: i128,
        /// The smallest value allowed.
        min: i128,
        /// The largest value allowed.
        max: i128,
    },
    /// A ctc target is the blank label, which may not appear in a target sequence.
    ///
    /// ```
    /// use losskit::{Ctc, LossError, Reduction};
    /// let lp = [0.5f32.ln(); 4]; // T = 2, N = 1, C = 2
    /// let err = Ctc::new().blank(1).loss(&lp, [2, 1, 2], &[1u32], &[2u32], &[1u32], Reduction::Sum);
    /// assert_eq!(err, Err(LossError::BlankInTargets { index: 0, blank: 1 }));
    /// ```
    BlankInTargets {
        /// The index of the first blank in `targets`.
        index: usize,
        /// The blank label.
        blank: usize,
    },
    /// [`with_tier`](crate::with_tier) was asked for a tier this CPU cannot run.
    TierUnavailable {
        /// The tier asked for.
        tier: Tier,
    },
    /// A merged [`VocabRow`](crate::VocabRow) of a scored row does not cover every class of its
    /// row exactly once (a shard is missing from the merge, or was merged twice), or its row
    /// does not have the classes of the call's other rows or shard.
    ///
    /// ```
    /// use losskit::{CrossEntropy, LossError, Reduction, VocabRow, VocabShard};
    /// let mut part = [VocabRow::default()];
    /// let ce = CrossEntropy::new();
    /// ce.vocab_rows(&[1.0f32, 2.0], VocabShard::new(0, 2, 4)?, &[1i64], &mut part)?;
    /// let err = ce.vocab_loss(&part, &[1i64], Reduction::Sum); // the other shard not merged
    /// assert_eq!(err, Err(LossError::IncompleteRow { row: 0, covered: 2, classes: 4 }));
    /// # Ok::<(), LossError>(())
    /// ```
    IncompleteRow {
        /// The first such row.
        row: usize,
        /// How many classes its partial covers.
        covered: u64,
        /// How many it should cover.
        classes: u64,
    },
    /// A merged [`VocabRow`](crate::VocabRow) of a scored row was not ranked: statistics need
    /// the partials of [`vocab_stats_rows`](crate::CrossEntropy::vocab_stats_rows).
    NotRanked {
        /// The first such row.
        row: usize,
    },
}

impl fmt::Display for LossError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossError::LengthMismatch {
                name,
                len,
                expected_name,
                expected,
            } => {
                let verb = if is_count(expected_name) { "is" } else { "has" };
                write!(
                    f,
                    "{name} has {len} elements but {expected_name} {verb} {expected}"
                )
            }
            LossError::ZeroClasses => f.write_str("classes is 0; it must be at least 1"),
            LossError::NotMultipleOfClasses { len, classes } => write!(
                f,
                "logits has {len} elements, which is not a multiple of classes ({classes})"
            ),
            LossError::SizeOverflow { rows, classes } => {
                write!(f, "rows ({rows}) * classes ({classes}) overflows usize")
            }
            LossError::LabelOutOfRange {
                row,
                label,
                classes,
            } => write!(
                f,
                "label {label} in row {row} is outside 0..{classes} and is not the ignore index"
            ),
            LossError::InvalidParameter {
                name,
                value,
                requirement,
            } => {
                let value = Shown(*value);
                write!(f, "{name} is {value}; it must be {requirement}")
            }
            LossError::NotAProbability { name, index, value } => write!(
                f,
                "{name}[{index}] is {}; every element of {name} must be in [0, 1]",
                Shown(*value)
            ),
            LossError::Negative { name, index, value } => {
                write!(f, "{name}[{index}] is {}; it must be >= 0", Shown(*value))
            }
            LossError::OutOfRange {
                name,
                index,
                value,
                min,
                max,
            } => write!(f, "{name}[{index}] is {value}; it must be in {min}..={max}"),
            LossError::BlankInTargets { index, blank } => write!(
                f,
                "targets[{index}] is the blank label {blank}, which may not appear in a target"
            ),
            LossError::TierUnavailable { tier } => {
                write!(f, "this CPU cannot run the {tier} tier")
            }
            LossError::IncompleteRow {
                row,
                covered,
                classes,
            } => write!(
                f,
                "the merged partial of row {row} covers {covered} classes (or misses its \
                 target), not each of the row's {classes} once"
            ),
            LossError::NotRanked { row } => write!(
                f,
                "the merged partial of row {row} has no rank counts: statistics need \
                 vocab_stats_rows"
            ),
        }
    }
}

impl std::error::Error for LossError {}

/// Whether a [`LossError::LengthMismatch`]'s `expected_name` is a count argument (a number the
/// caller passed) rather than a slice (whose length it is).
fn is_count(expected_name: &str) -> bool {
    matches!(
        expected_name,
        "classes" | "batch" | "time * batch * classes" | "the sum of target_lengths"
    )
}

/// A value of a `f64` error field as its caller wrote it.
///
/// The fields are `f64` whatever the element type, and an `f32` widens exactly: `0.7f32` is
/// `0.699999988079071044921875`. A value that an `f32` holds exactly is therefore printed as
/// that `f32` (the shortest decimal that reads back as it: `0.7`), any other as the `f64`;
/// magnitudes from `1e16` up and below `1e-4` in exponent form (`1e-7`, `-3e38`), as Python
/// prints them. The one ambiguity: an `f64` parameter that is exactly an `f32` value (it came
/// from one) prints as the `f32`, e.g. `0.1f32 as f64` as `0.1`.
struct Shown(f64);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let narrow = v as f32;
        if f64::from(narrow) == v || v.is_nan() {
            // The limits rounded to f32 as well, so that 1e-4f32 is not below 1e-4.
            shortest(f, narrow, v, f64::from(1e-4f32), f64::from(1e16f32))
        } else {
            shortest(f, v, v, 1e-4, 1e16)
        }
    }
}

/// `x` (whose value is `v`) with the fewest digits that read back as `x` (Rust's `{}` or
/// `{:e}`), in exponent form when `|v|` is not 0 and outside `[lo, hi)`.
fn shortest<T: fmt::Display + fmt::LowerExp>(
    f: &mut fmt::Formatter<'_>,
    x: T,
    v: f64,
    lo: f64,
    hi: f64,
) -> fmt::Result {
    let m = v.abs();
    if m.is_finite() && m != 0.0 && !(lo..hi).contains(&m) {
        write!(f, "{x:e}")
    } else {
        write!(f, "{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(value: f64) -> String {
        LossError::InvalidParameter {
            name: "p",
            value,
            requirement: "> 0",
        }
        .to_string()
    }

    #[test]
    fn parameters_print_as_written_in_their_type() {
        let cases: [(f64, &str); 18] = [
            (f64::from(0.7f32), "p is 0.7; it must be > 0"),
            (0.7f64, "p is 0.7; it must be > 0"),
            (f64::from(-0.1f32), "p is -0.1; it must be > 0"),
            (-0.1f64, "p is -0.1; it must be > 0"),
            (f64::from(1e-7f32), "p is 1e-7; it must be > 0"),
            (-1e-7f64, "p is -1e-7; it must be > 0"),
            (f64::from(-f32::MAX), "p is -3.4028235e38; it must be > 0"),
            (-1e300, "p is -1e300; it must be > 0"),
            (-1.0, "p is -1; it must be > 0"),
            (-0.0, "p is -0; it must be > 0"),
            (0.0, "p is 0; it must be > 0"),
            (-0.0625, "p is -0.0625; it must be > 0"),
            (f64::NAN, "p is NaN; it must be > 0"),
            (f64::NEG_INFINITY, "p is -inf; it must be > 0"),
            (
                f64::from(f32::MIN_POSITIVE),
                "p is 1.1754944e-38; it must be > 0",
            ),
            (-123456.789, "p is -123456.789; it must be > 0"),
            (f64::from(1e-4f32), "p is 0.0001; it must be > 0"),
            (-5e-5, "p is -5e-5; it must be > 0"),
        ];
        for (value, want) in cases {
            assert_eq!(param(value), want, "{value:e}");
        }
    }

    #[test]
    fn a_count_reads_is_and_a_slice_has() {
        let e = |expected_name| LossError::LengthMismatch {
            name: "weight",
            len: 2,
            expected_name,
            expected: 3,
        };
        assert_eq!(
            e("classes").to_string(),
            "weight has 2 elements but classes is 3"
        );
        assert_eq!(
            e("input").to_string(),
            "weight has 2 elements but input has 3"
        );
    }

    #[test]
    fn probabilities_print_as_written() {
        let e = LossError::NotAProbability {
            name: "target",
            index: 2,
            value: f64::from(1.1f32),
        };
        assert_eq!(
            e.to_string(),
            "target[2] is 1.1; every element of target must be in [0, 1]"
        );
    }
}
