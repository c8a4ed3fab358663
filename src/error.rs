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
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum LossError {
    /// A slice's length differs from the one it must match.
    LengthMismatch {
        /// The argument with the wrong length (`"target"`, `"out"`, `"grad"`, `"labels"`, ...).
        name: &'static str,
        /// Its length.
        len: usize,
        /// What it must match (`"input"`, `"rows of logits"`, ...).
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
        /// Its value.
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
        /// Its value.
        value: f64,
    },
    /// [`with_tier`](crate::with_tier) was asked for a tier this CPU cannot run.
    TierUnavailable {
        /// The tier asked for.
        tier: Tier,
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
                write!(
                    f,
                    "{name} has {len} elements but {expected_name} has {expected}"
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
                write!(f, "{name} is {value}; it must be {requirement}")
            }
            LossError::NotAProbability { name, index, value } => write!(
                f,
                "{name}[{index}] is {value}; every element of {name} must be in [0, 1]"
            ),
            LossError::TierUnavailable { tier } => {
                write!(f, "this CPU cannot run the {tier} tier")
            }
        }
    }
}

impl std::error::Error for LossError {}
