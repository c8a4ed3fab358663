//! PyTorch's per-element `weight` on the first-wave losses: `mse_weighted`, `l1_weighted`,
//! `huber_weighted` here; `bce` and `bce_with_logits` through their builders (`binary.rs`).
//!
//! The weight is the third stream of the flat driver: each element's loss (and its derivative)
//! multiplied by its weight, in the same sweep. PyTorch's means differ by loss, and these follow
//! them: `mse_loss` and `l1_loss` divide the weighted sum by the *summed weights*; `huber_loss`,
//! `binary_cross_entropy` and `binary_cross_entropy_with_logits` divide it by the *element
//! count* (golden2's weighted cases agree with both).

use crate::engine::{Map2, Map3};
use crate::float::sealed::Sealed as _;
use crate::loss::pointwise::Huber;
use crate::loss::Pointwise3;
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `w · map(x, t)`, with derivative `w · d map / dx`: a two-input map weighted by the third
/// input (PyTorch's `unweighted * weight`, multiplied after the loss). `BY_WEIGHTS`: the mean
/// divides by the summed weights ([`Divisor::Weights`]), which the reducing sweep then sums
/// beside the loss ([`Map3::SUMS_WEIGHT`]).
pub(crate) struct Weighted<'a, M, const BY_WEIGHTS: bool>(pub(crate) &'a M);

impl<T: Float, M: Map2<T>, const BY_WEIGHTS: bool> Map3<T> for Weighted<'_, M, BY_WEIGHTS> {
    const PAIRED: bool = M::PAIRED;
    const SUMS_WEIGHT: bool = BY_WEIGHTS;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, w: V) -> V {
        self.0.map(isa, x, t) * w
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, w: V) -> (V, V, V) {
        let (loss, d) = self.0.map_grad(isa, x, t);
        let d = d * w;
        (loss * w, d, d)
    }
}

/// What a weighted mean divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Divisor {
    /// The number of elements (`huber_loss`, the binary cross-entropies).
    Count,
    /// The summed weights (`mse_loss`, `l1_loss`).
    Weights,
}

fn check_lens(input: usize, target: usize, weight: usize) -> Result<(), LossError> {
    check::same_len("target", target, "input", input)?;
    check::same_len("weight", weight, "input", input)
}

/// The reduced weighted loss, after checking lengths.
pub(crate) fn reduce<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    map: Pointwise3<S::Compute>,
    divisor: Divisor,
) -> Result<S::Compute, LossError> {
    check_lens(input.len(), target.len(), weight.len())?;
    let sum = S::pointwise3_sum(&map, input, target, weight);
    Ok(finish(sum, reduction, divisor))
}

/// The reduced weighted loss of a sum: its mean divides by what `divisor` says, which the sweep
/// left in `sum.weight` — the summed weights for the maps of [`Divisor::Weights`] losses (they
/// sum their third input in the loss's own sweep, [`Map3::SUMS_WEIGHT`]), the element count for
/// the others.
pub(crate) fn finish<T: Float>(
    sum: crate::engine::LossSum,
    reduction: Reduction,
    divisor: Divisor,
) -> T {
    debug_assert!(divisor == Divisor::Weights || sum.weight == sum.count as f64);
    sum.finish(sum.weight, reduction)
}

/// The reduced weighted loss and its gradient with respect to `input`, after checking lengths.
pub(crate) fn reduce_grad<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    grad: &mut [S],
    map: Pointwise3<S::Compute>,
    divisor: Divisor,
) -> Result<S::Compute, LossError> {
    check_lens(input.len(), target.len(), weight.len())?;
    check::same_len("grad", grad.len(), "input", input.len())?;
    Ok(reduce_grad_checked(
        input, target, weight, reduction, grad, map, divisor,
    ))
}

/// [`reduce_grad`] with the lengths already checked.
pub(crate) fn reduce_grad_checked<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    grad: &mut [S],
    map: Pointwise3<S::Compute>,
    divisor: Divisor,
) -> S::Compute {
    let weight_sum = match (reduction, divisor) {
        (Reduction::Mean, Divisor::Weights) => Some(S::total(weight).loss),
        _ => None,
    };
    // `1/n` (rounded as the unweighted losses do) or `1/Σw` for the mean, 1 for the sum.
    let scale = match weight_sum {
        Some(w) => S::Compute::from_f64(1.0 / w),
        None => reduction.grad_scale(input.len()),
    };
    let sum = S::pointwise3_sum_and_grad(&map, input, target, weight, grad, &mut [], scale);
    sum.finish(weight_sum.unwrap_or(sum.weight), reduction)
}

/// Each element's weighted loss into `out`, after checking lengths.
pub(crate) fn each<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    out: &mut [S::Compute],
    map: Pointwise3<S::Compute>,
) -> Result<(), LossError> {
    check_lens(input.len(), target.len(), weight.len())?;
    check::same_len("out", out.len(), "input", input.len())?;
    S::pointwise3_each(&map, input, target, weight, out);
    Ok(())
}

/// PyTorch's `mse_loss` with a per-element `weight`: `w·(x - t)²`, reduced; the mean divides
/// by `Σw` (PyTorch's, for `mse_loss`).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `weight` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::mse_weighted(&[1.0f32, 2.0], &[0.0, 0.0], &[3.0, 1.0], Reduction::Mean)?;
/// assert_eq!(loss, (3.0 + 4.0) / 4.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn mse_weighted<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let map = Pointwise3::WeightedMse;
    reduce(input, target, weight, reduction, map, Divisor::Weights)
}

/// [`mse_weighted`] without reduction: `out[i] = w[i]·(x[i] - t[i])²`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target`, `weight` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::mse_weighted_each(&[1.0, 2.0], &[0.0, 0.0], &[3.0, 0.5], &mut out)?;
/// assert_eq!(out, [3.0, 2.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn mse_weighted_each<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, weight, out, Pointwise3::WeightedMse)
}

/// [`mse_weighted`] and its gradient `2·w·(x - t)` in one pass, divided by `Σw` for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target`, `weight` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 2];
/// losskit::mse_weighted_and_grad(&[1.0, 2.0], &[0.0, 0.0], &[3.0, 1.0], Reduction::Mean, &mut grad)?;
/// assert_eq!(grad, [1.5, 1.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn mse_weighted_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    let map = Pointwise3::WeightedMse;
    reduce_grad(
        input,
        target,
        weight,
        reduction,
        grad,
        map,
        Divisor::Weights,
    )
}

/// PyTorch's `l1_loss` with a per-element `weight`: `w·|x - t|`, reduced; the mean divides by
/// `Σw` (PyTorch's, for `l1_loss`).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `weight` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::l1_weighted(&[1.0f64, -2.0], &[0.0, 0.0], &[3.0, 1.0], Reduction::Sum)?;
/// assert_eq!(loss, 5.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn l1_weighted<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let map = Pointwise3::WeightedL1;
    reduce(input, target, weight, reduction, map, Divisor::Weights)
}

/// [`l1_weighted`] without reduction: `out[i] = w[i]·|x[i] - t[i]|`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target`, `weight` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// losskit::l1_weighted_each(&[1.0f32, -2.0], &[0.0, 0.0], &[3.0, 0.0], &mut out)?;
/// assert_eq!(out, [3.0, 0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn l1_weighted_each<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, weight, out, Pointwise3::WeightedL1)
}

/// [`l1_weighted`] and its gradient `w·sgn(x - t)` in one pass, divided by `Σw` for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target`, `weight` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// losskit::l1_weighted_and_grad(&[1.0, -2.0], &[0.0, 0.0], &[3.0, 1.0], Reduction::Mean, &mut grad)?;
/// assert_eq!(grad, [0.75, -0.25]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn l1_weighted_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    let map = Pointwise3::WeightedL1;
    reduce_grad(
        input,
        target,
        weight,
        reduction,
        grad,
        map,
        Divisor::Weights,
    )
}

fn huber_map<T: Float>(delta: T) -> Result<Pointwise3<T>, LossError> {
    check::positive("delta", delta)?;
    Ok(Pointwise3::WeightedHuber(Huber { delta }))
}

/// PyTorch's `huber_loss` with a per-element `weight`: `w·huber(x - t)`, reduced; the mean
/// divides by the element count (PyTorch's, for `huber_loss`).
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `delta` is not `> 0` (NaN included).
/// - [`LossError::LengthMismatch`] if `target` or `weight` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::huber_weighted(&[0.5f64, 3.0], &[0.0, 0.0], &[2.0, 1.0], 1.0, Reduction::Mean)?;
/// assert_eq!(loss, (2.0 * 0.125 + 2.5) / 2.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn huber_weighted<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    delta: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let map = huber_map(delta)?;
    reduce(input, target, weight, reduction, map, Divisor::Count)
}

/// [`huber_weighted`] without reduction, into `out`.
///
/// # Errors
/// As [`huber_weighted`], and [`LossError::LengthMismatch`] if `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// losskit::huber_weighted_each(&[0.5f32, 3.0], &[0.0, 0.0], &[2.0, 1.0], 1.0, &mut out)?;
/// assert_eq!(out, [0.25, 2.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn huber_weighted_each<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    delta: S::Compute,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    let map = huber_map(delta)?;
    each(input, target, weight, out, map)
}

/// [`huber_weighted`] and its gradient `w·clamp(x - t, -delta, delta)` in one pass, divided by
/// the length for [`Reduction::Mean`].
///
/// # Errors
/// As [`huber_weighted`], and [`LossError::LengthMismatch`] if `grad` is not as long as
/// `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 2];
/// losskit::huber_weighted_and_grad(&[0.5, 3.0], &[0.0, 0.0], &[2.0, 1.0], 1.0, Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [1.0, 1.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn huber_weighted_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    weight: &[S],
    delta: S::Compute,
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    let map = huber_map(delta)?;
    reduce_grad(input, target, weight, reduction, grad, map, Divisor::Count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CHUNK;
    use crate::{bf16, with_tier, Tier};

    /// Irregular weights whose sum rounds (so an order change would show): `w_i` in `[0, 2)`.
    fn weights(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / 2f64.powi(52))
            .collect()
    }

    /// The weights' sum that the mean of mse_weighted and l1_weighted divides by comes from the
    /// loss's own sweep with the bits of the separate pass it replaced (`total`), on every
    /// tier and storage type, at lengths around every path (vectors, blocks, leaves, tails);
    /// the huber and bce forms (which divide by the count) keep the count there.
    fn sweep_sums_weights_as_total<S: Storage>(from: impl Fn(f64) -> S) {
        for tier in Tier::available() {
            for n in [
                0,
                1,
                7,
                8,
                9,
                31,
                33,
                511,
                512,
                513,
                1025,
                4097,
                CHUNK - 1,
                CHUNK + 37,
                3 * CHUNK + 5,
            ] {
                let w: Vec<S> = weights(n).into_iter().map(&from).collect();
                let x: Vec<S> = (0..n).map(|i| from((i % 13) as f64 / 4.0)).collect();
                let t: Vec<S> = (0..n).map(|i| from((i % 7) as f64 / 3.0)).collect();
                let (mse, l1, huber, total) = with_tier(tier, || {
                    (
                        S::pointwise3_sum(&Pointwise3::WeightedMse, &x, &t, &w),
                        S::pointwise3_sum(&Pointwise3::WeightedL1, &x, &t, &w),
                        S::pointwise3_sum(
                            &Pointwise3::WeightedHuber(Huber {
                                delta: S::Compute::ONE,
                            }),
                            &x,
                            &t,
                            &w,
                        ),
                        crate::loss::total(&w),
                    )
                })
                .unwrap();
                let what = format!("{tier}, {n} elements, {}", core::any::type_name::<S>());
                assert_eq!(mse.weight.to_bits(), total.loss.to_bits(), "mse: {what}");
                assert_eq!(l1.weight.to_bits(), total.loss.to_bits(), "l1: {what}");
                assert_eq!(huber.weight, n as f64, "huber: {what}");
                assert_eq!((mse.count, l1.count), (n as u64, n as u64), "{what}");
            }
        }
    }

    #[test]
    fn sweep_sums_weights_as_total_f32() {
        sweep_sums_weights_as_total::<f32>(|v| v as f32);
    }

    #[test]
    fn sweep_sums_weights_as_total_f64() {
        sweep_sums_weights_as_total::<f64>(|v| v);
    }

    #[test]
    fn sweep_sums_weights_as_total_bf16() {
        sweep_sums_weights_as_total::<bf16>(bf16::from_f64);
    }
}
