//! Losses on a ±1 target: `hinge_embedding` (PyTorch's `hinge_embedding_loss`) and
//! `soft_margin` (`soft_margin_loss`).

use crate::engine::Map2;
use crate::loss::pointwise::{each, reduce2, reduce2_grad};
use crate::loss::Pointwise;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{Float, LossError, Reduction};

/// PyTorch's `hinge_embedding_loss`, written as its kernel is: `max(0, margin - x)` where
/// `y != 1`, plus `x` where `y != -1`. So `y = 1` gives `x`, `y = -1` gives the hinge, and any
/// other target (NaN included) gives both terms, as in PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct HingeEmbedding<T> {
    pub(crate) margin: T,
}

impl<T: Float> Map2<T> for HingeEmbedding<T> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V {
        let zero = V::splat(isa, T::ZERO);
        let one = V::splat(isa, T::ONE);
        // The constant first: x86 `max` returns its second operand for NaN, as clamp_min does.
        let hinge = zero.max(V::splat(isa, self.margin) - x);
        V::select(y.eq(one), zero, hinge) + V::select(y.eq(-one), zero, x)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V) {
        let zero = V::splat(isa, T::ZERO);
        let one = V::splat(isa, T::ONE);
        // The hinge's slope is -1 strictly inside (`margin - x > 0`, i.e. `x < margin`) and 0 at
        // the kink, as PyTorch's clamp_min backward gives.
        let slope = V::select(x.lt(V::splat(isa, self.margin)), -one, zero);
        let grad = V::select(y.eq(one), zero, slope) + V::select(y.eq(-one), zero, one);
        (self.map(isa, x, y), V::select(x.is_nan(), x, grad))
    }
}

/// `log(1 + e^(-y·x))`, exact for any `y·x`: with `z = -y·x`, `max(z, 0) + log1p(e^(-|z|))`.
/// PyTorch's own kernel computes `log1p(exp(z))` literally and gives `inf` for `z` above 88.7
/// (f32) or 709.8 (f64); the README's truth is the exact value, which this is.
#[derive(Clone, Copy, Debug)]
pub struct SoftMargin;

impl<T: Float> Map2<T> for SoftMargin {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V {
        let z = -(y * x);
        let (_, l) = math::exp_neg_abs_and_log1p(isa, z);
        // max(0, NaN) is NaN (the second operand), and so is `l`.
        V::splat(isa, T::ZERO).max(z) + l
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V) {
        // d/dx = -y·sigmoid(z), sigmoid(z) = 1/(1 + e) for z >= 0 and e/(1 + e) below, with
        // e = e^(-|z|): no overflow and no cancellation (bce_with_logits's arrangement).
        let zero = V::splat(isa, T::ZERO);
        let one = V::splat(isa, T::ONE);
        let z = -(y * x);
        let (e, l) = math::exp_neg_abs_and_log1p(isa, z);
        let r = one / (one + e);
        let sigmoid = V::select(zero.le(z), r, e * r);
        (zero.max(z) + l, -(y * sigmoid))
    }
}

fn hinge_map<T: Float>(margin: T) -> Pointwise<T> {
    // PyTorch checks nothing about the margin: any value, NaN included (which gives NaN
    // wherever the hinge term is used), is accepted.
    Pointwise::HingeEmbedding(HingeEmbedding { margin })
}

/// PyTorch's `hinge_embedding_loss` with target `y` = ±1: `x` where `y = 1`,
/// `max(0, margin - x)` where `y = -1` (PyTorch's default margin is 1); reduced. Targets other
/// than ±1 get both terms, as PyTorch's kernel gives them.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::hinge_embedding(&[0.3f32, 0.3, 2.0], &[1.0, -1.0, -1.0], 1.0, Reduction::Sum)?;
/// assert!((loss - (0.3 + 0.7 + 0.0)).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn hinge_embedding<S: Storage>(
    input: &[S],
    target: &[S],
    margin: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    reduce2(input, target, reduction, hinge_map(margin))
}

/// [`hinge_embedding`] without reduction, into `out`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::hinge_embedding_each(&[0.25, 0.25], &[1.0, -1.0], 1.0, &mut out)?;
/// assert_eq!(out, [0.25, 0.75]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn hinge_embedding_each<S: Storage>(
    input: &[S],
    target: &[S],
    margin: S::Compute,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, out, hinge_map(margin))
}

/// [`hinge_embedding`] and its gradient in one pass: 1 where `y = 1`, -1 where `y = -1` and
/// `x < margin`, 0 at and beyond the margin (as PyTorch), divided by the length for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 3];
/// losskit::hinge_embedding_and_grad(&[0.5, 0.5, 1.0], &[1.0, -1.0, -1.0], 1.0, Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [1.0, -1.0, 0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn hinge_embedding_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    margin: S::Compute,
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    reduce2_grad(input, target, reduction, grad, hinge_map(margin))
}

/// PyTorch's `soft_margin_loss` with target `y` = ±1: `log(1 + e^(-y·x))`, exact for any
/// `y·x` (no overflow where PyTorch's literal form gives `inf`); reduced.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::soft_margin(&[0.0f32, -1000.0], &[1.0, 1.0], Reduction::Sum)?;
/// assert!((loss - (std::f32::consts::LN_2 + 1000.0)).abs() < 1e-3); // finite
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn soft_margin<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    reduce2(input, target, reduction, Pointwise::SoftMargin)
}

/// [`soft_margin`] without reduction, into `out`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::soft_margin_each(&[0.0, 800.0], &[-1.0, -1.0], &mut out)?;
/// assert!((out[0] - std::f64::consts::LN_2).abs() < 1e-16);
/// assert_eq!(out[1], 800.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn soft_margin_each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, out, Pointwise::SoftMargin)
}

/// [`soft_margin`] and its gradient `-y·sigmoid(-y·x)` in one pass, divided by the length for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 2];
/// losskit::soft_margin_and_grad(&[0.0, 0.0], &[1.0, -1.0], Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [-0.5, 0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn soft_margin_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    reduce2_grad(input, target, reduction, grad, Pointwise::SoftMargin)
}
