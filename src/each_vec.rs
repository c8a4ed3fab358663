//! `reduction='none'` into a new `Vec`: the one allocating form of the per-element losses.

use crate::{Float, LossError};

/// Runs a `*_each` call on a new zeroed `Vec` of `len` values and returns it: PyTorch's
/// `reduction='none'` without managing a buffer. `len` is what the call writes: the elements
/// of a pointwise loss, the rows of a row-wise one.
///
/// This is the crate's only allocating form: the `*_each` functions write into the caller's
/// buffer, which a service reuses across calls; this helper allocates the `Vec` it returns
/// (and nothing else), for code where that does not matter.
///
/// # Errors
/// Whatever `each` returns (a `LossError` naming the argument, e.g. a length mismatch when
/// `len` is not what the call writes); the `Vec` is dropped then.
///
/// ```
/// use losskit::{each_vec, mse_each, CrossEntropy};
/// let (input, target) = ([1.0f32, 3.0], [0.0f32, 1.0]);
/// let squared = each_vec(input.len(), |out| mse_each(&input, &target, out))?;
/// assert_eq!(squared, [1.0, 4.0]);
///
/// let logits = [0.0f64, 0.0, /* row 2 */ 5.0, 5.0];
/// let labels = [1i64, -100];
/// let per_row = each_vec(labels.len(), |out| CrossEntropy::new().each(&logits, 2, &labels, out))?;
/// assert_eq!(per_row, [std::f64::consts::LN_2, 0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn each_vec<T: Float>(
    len: usize,
    each: impl FnOnce(&mut [T]) -> Result<(), LossError>,
) -> Result<Vec<T>, LossError> {
    let mut out = vec![T::default(); len];
    each(&mut out)?;
    Ok(out)
}
