//! Regression losses: `mse`, `l1`, `huber`, `smooth_l1`.

use super::Pointwise;
use crate::engine::Map2;
use crate::float::sealed::Sealed;
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `(x - y)²`.
pub struct Mse;

impl<T: Float> Map2<T> for Mse {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, _: V::Isa, x: V, y: V) -> V {
        let d = x - y;
        d * d
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, _: V::Isa, x: V, y: V) -> (V, V) {
        let d = x - y;
        (d * d, d + d)
    }
}

/// `sgn(d)`: 1, -1, or `d` itself for ±0 and NaN (PyTorch's `sgn`, the derivative of `abs`).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn sign<V: Lanes>(isa: V::Isa, d: V) -> V {
    let zero = V::splat(isa, V::Elem::ZERO);
    let one = V::splat(isa, V::Elem::ONE);
    V::select(zero.lt(d), one, V::select(d.lt(zero), -one, d))
}

/// `|x - y|`.
pub struct L1;

impl<T: Float> Map2<T> for L1 {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, _: V::Isa, x: V, y: V) -> V {
        (x - y).abs()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V) {
        let d = x - y;
        (d.abs(), sign(isa, d))
    }
}

/// `z = |x - y|`: `0.5 z²` if `z < delta`, else `delta (z - 0.5 delta)`.
#[derive(Clone, Copy, Debug)]
pub struct Huber<T> {
    pub(crate) delta: T,
}

impl<T: Float> Map2<T> for Huber<T> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V {
        // With c = min(z, delta) both branches are c (z - c/2), and since c/2 is exact,
        // `c * fma(-1/2, c, z)` rounds exactly as PyTorch's `0.5 * z * z` and
        // `delta * (z - 0.5 * delta)` do. NaN z gives c = delta (x86 `min`), and NaN after.
        let z = (x - y).abs();
        let c = z.min(V::splat(isa, self.delta));
        c * c.mul_add(V::splat(isa, T::from_f64(-0.5)), z)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V) {
        // PyTorch: d clamped to [-delta, delta]. Constants first: x86 min/max return the
        // second operand when either is NaN, so a NaN d survives.
        let delta = V::splat(isa, self.delta);
        let d = x - y;
        (self.map(isa, x, y), delta.min((-delta).max(d)))
    }
}

/// `z = |x - y|`: `0.5 z² / beta` if `z < beta`, else `z - 0.5 beta`.
#[derive(Clone, Copy, Debug)]
pub struct SmoothL1<T> {
    pub(crate) beta: T,
}

impl<T: Float> Map2<T> for SmoothL1<T> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V {
        let half = V::splat(isa, T::from_f64(0.5));
        let beta = V::splat(isa, self.beta);
        let z = (x - y).abs();
        // Divides like PyTorch (a multiply by 0.5/beta would differ by an ulp); `z < beta` is
        // never true for beta = 0, where the quotient is NaN and unused.
        V::select(z.lt(beta), half * z * z / beta, z - half * beta)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V) {
        let d = x - y;
        let grad = if self.beta == T::ZERO {
            // PyTorch computes smooth_l1 with beta = 0 as l1, whose derivative at 0 is 0.
            sign(isa, d)
        } else {
            // d / beta clamped to [-1, 1], constants first so that NaN survives.
            let one = V::splat(isa, T::ONE);
            one.min((-one).max(d / V::splat(isa, self.beta)))
        };
        (self.map(isa, x, y), grad)
    }
}

/// Reduces a pointwise map over `input` and `target` after checking their lengths.
pub(crate) fn reduce2<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    map: Pointwise<S::Compute>,
) -> Result<S::Compute, LossError> {
    check::same_len("target", target.len(), "input", input.len())?;
    let sum = S::pointwise_sum(&map, input, target);
    Ok(sum.finish(sum.weight, reduction))
}

/// Reduces a pointwise map and writes its scaled derivative into `grad`, after checking lengths.
pub(crate) fn reduce2_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
    map: Pointwise<S::Compute>,
) -> Result<S::Compute, LossError> {
    check::same_len("target", target.len(), "input", input.len())?;
    check::same_len("grad", grad.len(), "input", input.len())?;
    let scale = reduction.grad_scale(input.len());
    let sum = S::pointwise_sum_and_grad(&map, input, target, grad, scale);
    Ok(sum.finish(sum.weight, reduction))
}

/// Writes a pointwise map over `input` and `target` into `out` after checking lengths.
pub(crate) fn each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
    map: Pointwise<S::Compute>,
) -> Result<(), LossError> {
    check::same_len("target", target.len(), "input", input.len())?;
    check::same_len("out", out.len(), "input", input.len())?;
    S::pointwise_each(&map, input, target, out);
    Ok(())
}

/// Squared error `(input - target)²`, reduced (the mean squared error for `Mean`).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let input = [0.5f32, 1.0, 2.0];
/// let target = [0.0f32, 1.0, 4.0];
/// assert_eq!(losskit::mse(&input, &target, Reduction::Sum).unwrap(), 4.25);
/// assert!(losskit::mse::<f32>(&[], &[], Reduction::Mean).unwrap().is_nan());
/// ```
pub fn mse<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    reduce2(input, target, reduction, Pointwise::Mse)
}

/// `out[i] = (input[i] - target[i])²`: [`mse`] without reduction.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::mse_each(&[1.0, 3.0], &[0.0, 1.0], &mut out).unwrap();
/// assert_eq!(out, [1.0, 4.0]);
/// ```
pub fn mse_each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, out, Pointwise::Mse)
}

/// Absolute error `|input - target|`, reduced (the mean absolute error for `Mean`).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// assert_eq!(losskit::l1(&[1.0f32, -1.0], &[0.0, 1.0], Reduction::Mean).unwrap(), 1.5);
/// ```
pub fn l1<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    reduce2(input, target, reduction, Pointwise::L1)
}

/// `out[i] = |input[i] - target[i]|`: [`l1`] without reduction.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// losskit::l1_each(&[1.0f32, -1.0], &[0.0, 1.0], &mut out).unwrap();
/// assert_eq!(out, [1.0, 2.0]);
/// ```
pub fn l1_each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, out, Pointwise::L1)
}

fn check_delta<T: Float>(delta: T) -> Result<Huber<T>, LossError> {
    check::positive("delta", delta)?;
    Ok(Huber { delta })
}

fn check_beta<T: Float>(beta: T) -> Result<SmoothL1<T>, LossError> {
    check::non_negative("beta", beta)?;
    Ok(SmoothL1 { beta })
}

/// Huber loss (PyTorch's `huber_loss`): with `z = |input - target|`, `0.5 z²` where
/// `z < delta`, else `delta (z - 0.5 delta)`; reduced.
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `delta` is not `> 0` (NaN included), as in PyTorch.
/// - [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::huber(&[0.5f64, 3.0], &[0.0, 0.0], 1.0, Reduction::Sum).unwrap();
/// assert_eq!(loss, 0.125 + 2.5);
/// assert!(losskit::huber(&[1.0f32], &[0.0], -1.0, Reduction::Mean).is_err());
/// ```
pub fn huber<S: Storage>(
    input: &[S],
    target: &[S],
    delta: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let map = Pointwise::Huber(check_delta(delta)?);
    reduce2(input, target, reduction, map)
}

/// [`huber`] without reduction, into `out`.
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `delta` is not `> 0` (NaN included).
/// - [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// losskit::huber_each(&[0.5f32, 3.0], &[0.0, 0.0], 1.0, &mut out).unwrap();
/// assert_eq!(out, [0.125, 2.5]);
/// ```
pub fn huber_each<S: Storage>(
    input: &[S],
    target: &[S],
    delta: S::Compute,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    let map = Pointwise::Huber(check_delta(delta)?);
    each(input, target, out, map)
}

/// Smooth L1 loss (PyTorch's `smooth_l1_loss`): with `z = |input - target|`, `0.5 z² / beta`
/// where `z < beta`, else `z - 0.5 beta`; `beta = 0` is plain L1. Reduced.
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `beta` is negative or NaN.
/// - [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::smooth_l1(&[0.5f64, 3.0], &[0.0, 0.0], 1.0, Reduction::Sum).unwrap();
/// assert_eq!(loss, 0.125 + 2.5);
/// ```
pub fn smooth_l1<S: Storage>(
    input: &[S],
    target: &[S],
    beta: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let map = Pointwise::SmoothL1(check_beta(beta)?);
    reduce2(input, target, reduction, map)
}

/// [`smooth_l1`] without reduction, into `out`.
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `beta` is negative or NaN.
/// - [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::smooth_l1_each(&[0.5, 3.0], &[0.0, 0.0], 0.0, &mut out).unwrap();
/// assert_eq!(out, [0.5, 3.0]);
/// ```
pub fn smooth_l1_each<S: Storage>(
    input: &[S],
    target: &[S],
    beta: S::Compute,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    let map = Pointwise::SmoothL1(check_beta(beta)?);
    each(input, target, out, map)
}

/// [`mse`] and its gradient with respect to `input` in one pass: `grad[i] = 2 (input[i] -
/// target[i])`, divided by the length for [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// let loss = losskit::mse_and_grad(&[1.0, 3.0], &[0.0, 1.0], Reduction::Mean, &mut grad)?;
/// assert_eq!((loss, grad), (2.5, [1.0, 2.0]));
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn mse_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    reduce2_grad(input, target, reduction, grad, Pointwise::Mse)
}

/// [`l1`] and its gradient: `sgn(input - target)` (0 where they are equal, as PyTorch's `sgn`),
/// divided by the length for [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [9.0f64; 3];
/// let loss = losskit::l1_and_grad(&[1.0, 0.0, -2.0], &[0.0, 0.0, 0.0], Reduction::Sum, &mut grad)?;
/// assert_eq!((loss, grad), (3.0, [1.0, 0.0, -1.0]));
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn l1_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    reduce2_grad(input, target, reduction, grad, Pointwise::L1)
}

/// [`huber`] and its gradient: `input - target` clamped to `[-delta, delta]`, divided by the
/// length for [`Reduction::Mean`].
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `delta` is not `> 0` (NaN included).
/// - [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// losskit::huber_and_grad(&[0.5, 3.0], &[0.0, 0.0], 1.0, Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [0.5, 1.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn huber_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    delta: S::Compute,
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    let map = Pointwise::Huber(check_delta(delta)?);
    reduce2_grad(input, target, reduction, grad, map)
}

/// [`smooth_l1`] and its gradient: `(input - target) / beta` clamped to `[-1, 1]` (`sgn` for
/// `beta = 0`), divided by the length for [`Reduction::Mean`].
///
/// # Errors
/// - [`LossError::InvalidParameter`] if `beta` is negative or NaN.
/// - [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 2];
/// losskit::smooth_l1_and_grad(&[0.5, 3.0], &[0.0, 0.0], 1.0, Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [0.5, 1.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn smooth_l1_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    beta: S::Compute,
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    let map = Pointwise::SmoothL1(check_beta(beta)?);
    reduce2_grad(input, target, reduction, grad, map)
}
