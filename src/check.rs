//! Argument checks shared by every public function; each returns the [`LossError`] that names
//! the argument.

use crate::{Float, LossError};

/// `len == expected`, else [`LossError::LengthMismatch`].
pub(crate) fn same_len(
    name: &'static str,
    len: usize,
    expected_name: &'static str,
    expected: usize,
) -> Result<(), LossError> {
    if len == expected {
        Ok(())
    } else {
        Err(LossError::LengthMismatch {
            name,
            len,
            expected_name,
            expected,
        })
    }
}

/// `value > 0` (so not NaN).
pub(crate) fn positive<T: Float>(name: &'static str, value: T) -> Result<(), LossError> {
    if value > T::ZERO {
        Ok(())
    } else {
        Err(LossError::InvalidParameter {
            name,
            value: value.to_f64(),
            requirement: "> 0",
        })
    }
}

/// `value >= 0` (so not NaN).
pub(crate) fn non_negative<T: Float>(name: &'static str, value: T) -> Result<(), LossError> {
    if value >= T::ZERO {
        Ok(())
    } else {
        Err(LossError::InvalidParameter {
            name,
            value: value.to_f64(),
            requirement: ">= 0",
        })
    }
}

/// The rows of a `[rows, classes]` matrix of `len` elements, after checking that `classes` is
/// not 0, divides `len`, and that the per-class `weight` (if any) has `classes` elements.
pub(crate) fn rows<T>(
    len: usize,
    classes: usize,
    weight: Option<&[T]>,
) -> Result<usize, LossError> {
    if classes == 0 {
        return Err(LossError::ZeroClasses);
    }
    if !len.is_multiple_of(classes) {
        return Err(LossError::NotMultipleOfClasses { len, classes });
    }
    if let Some(w) = weight {
        same_len("weight", w.len(), "classes", classes)?;
    }
    Ok(len / classes)
}

/// A norm's or a hinge's power `p` (multi_margin, triplet_margin): 1 or 2.
pub(crate) fn power_one_or_two(p: u32) -> Result<(), LossError> {
    if matches!(p, 1 | 2) {
        Ok(())
    } else {
        Err(LossError::InvalidParameter {
            name: "p",
            value: f64::from(p),
            requirement: "1 or 2",
        })
    }
}

/// `value` finite (not NaN, not infinite).
pub(crate) fn finite<T: Float>(name: &'static str, value: T) -> Result<(), LossError> {
    if value.to_f64().is_finite() {
        Ok(())
    } else {
        Err(LossError::InvalidParameter {
            name,
            value: value.to_f64(),
            requirement: "finite",
        })
    }
}
