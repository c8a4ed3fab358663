//! torchvision's `sigmoid_focal_loss`: [`sigmoid_focal`] and the [`SigmoidFocal`] builder.
//!
//! # Numerics
//!
//! With `e = e^(-|x|)`, one `exp` gives everything: `ce` is binary cross-entropy on logits in
//! its non-cancelling form (`bce_with_logits`'s), `p = σ(x)` and `1 - p` are `1/(1 + e)` and
//! `e/(1 + e)` (whichever is which by the sign of `x`), so `q = 1 - p_t = p(1 - t) + (1 - p)t`
//! keeps its relative precision for confident predictions (PyTorch's `1 - p·t - (1-p)(1-t)`
//! would be 0 there). `q^γ` is exact multiplication for `γ` = 0, 1, 2 and `exp(γ·ln q)`
//! otherwise.
//!
//! The derivative is `w·[(p - t)·q^γ + γ·ce·q^(γ-1)·p(1 - p)(1 - 2t)]`; where `q = 0` (a
//! saturated correct prediction) it is 0, the limit, where autograd of the literal formula
//! gives NaN for `γ < 1`.

use crate::engine::Map2;
use crate::loss::binary::stable_bce_with_logits;
use crate::loss::pointwise::{each, reduce2, reduce2_grad};
use crate::loss::Pointwise;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{Float, LossError, Reduction};

/// `w·ce·q^γ` (see the module docs); `alpha < 0` means no `w`.
#[derive(Clone, Copy, Debug)]
pub struct FocalMap<T> {
    alpha: T,
    gamma: T,
}

/// What the loss and its derivative share.
struct Parts<V> {
    p: V,
    pn: V,
    ce: V,
    q: V,
    /// `q^γ`.
    m: V,
    /// The alpha weight (1 when disabled).
    w: V,
}

impl<T: Float> FocalMap<T> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn parts<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> Parts<V> {
        let zero = V::splat(isa, T::ZERO);
        let one = V::splat(isa, T::ONE);
        let (e, l) = math::exp_neg_abs_and_log1p(isa, x);
        let ce = stable_bce_with_logits(isa, x, t, one, one, l);
        let r = one / (one + e);
        let er = e * r;
        let nonneg = zero.le(x);
        let p = V::select(nonneg, r, er);
        let pn = V::select(nonneg, er, r);
        let q = p.mul_add(one - t, pn * t);
        let m = if self.gamma == T::ZERO {
            // torchvision's `q ** 0` is 1 for every q (NaN included), as IEEE pow.
            one
        } else if self.gamma == T::ONE {
            q
        } else if self.gamma == T::from_f64(2.0) {
            q * q
        } else {
            // ln 0 = -inf gives 0; q < 0 (a soft target outside [0, 1]) gives NaN, as pow.
            math::exp(isa, V::splat(isa, self.gamma) * math::ln(isa, q))
        };
        let w = if self.alpha < T::ZERO {
            one
        } else {
            let a = V::splat(isa, self.alpha);
            a.mul_add(t, (one - a) * (one - t))
        };
        Parts { p, pn, ce, q, m, w }
    }
}

impl<T: Float> Map2<T> for FocalMap<T> {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> V {
        let s = self.parts(isa, x, t);
        s.w * (s.ce * s.m)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> (V, V) {
        let zero = V::splat(isa, T::ZERO);
        let one = V::splat(isa, T::ONE);
        let s = self.parts(isa, x, t);
        let loss = s.w * (s.ce * s.m);
        let first = (s.p - t) * s.m;
        let grad = if self.gamma == T::ZERO {
            first
        } else {
            // q^(γ-1), exact for γ = 1, 2.
            let m1 = if self.gamma == T::ONE {
                one
            } else if self.gamma == T::from_f64(2.0) {
                s.q
            } else {
                s.m / s.q
            };
            let dq = (s.p * s.pn) * (one - (t + t));
            let second = V::splat(isa, self.gamma) * s.ce * m1 * dq;
            first + second
        };
        let grad = s.w * grad;
        // q = 0: the limit 0 (NaN q is not 0 and stays NaN).
        (loss, V::select(s.q.eq(zero), zero, grad))
    }
}

/// torchvision's `sigmoid_focal_loss` (Lin et al., 2017) on logits: `ce·(1 - p_t)^γ`, times
/// `α·t + (1 - α)(1 - t)` when `α >= 0`, where `ce` is binary cross-entropy on logits,
/// `p = σ(x)` and `1 - p_t = p(1 - t) + (1 - p)t`. torchvision's defaults: `alpha = 0.25`,
/// `gamma = 2`; a negative `alpha` disables the weighting. Targets are 0/1 or soft labels in
/// `[0, 1]` (not checked, as torchvision).
///
/// ```
/// use losskit::{Reduction, SigmoidFocal};
/// let x = [3.0f64, -1.0];
/// let t = [1.0f64, 1.0];
/// let plain = losskit::bce_with_logits(&x, &t, Reduction::Sum)?;
/// let focal = SigmoidFocal::new().alpha(-1.0).gamma(0.0).loss(&x, &t, Reduction::Sum)?;
/// assert!((focal - plain).abs() < 1e-15); // γ = 0 without α is bce_with_logits
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SigmoidFocal<T> {
    alpha: T,
    gamma: T,
}

impl<T: Float> Default for SigmoidFocal<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> SigmoidFocal<T> {
    /// torchvision's defaults: `alpha = 0.25`, `gamma = 2`.
    pub fn new() -> Self {
        SigmoidFocal {
            alpha: T::from_f64(0.25),
            gamma: T::from_f64(2.0),
        }
    }

    /// The weight of positive targets (`1 - alpha` for negatives); negative disables the
    /// weighting, as in torchvision. NaN is rejected when the loss is computed.
    pub fn alpha(mut self, alpha: T) -> Self {
        self.alpha = alpha;
        self
    }

    /// The focusing exponent, `>= 0` (checked when the loss is computed; torchvision does not
    /// check it, but a negative `γ` makes correct predictions cost more, and `q^γ` infinite).
    pub fn gamma(mut self, gamma: T) -> Self {
        self.gamma = gamma;
        self
    }

    fn checked_map(&self) -> Result<Pointwise<T>, LossError> {
        // NaN is the one value not equal to itself (`Float` has no `is_nan`).
        #[allow(clippy::eq_op)]
        if self.alpha != self.alpha {
            return Err(LossError::InvalidParameter {
                name: "alpha",
                value: self.alpha.to_f64(),
                requirement: "not NaN",
            });
        }
        let finite_non_negative = self.gamma >= T::ZERO && self.gamma < T::from_f64(f64::INFINITY);
        if !finite_non_negative {
            return Err(LossError::InvalidParameter {
                name: "gamma",
                value: self.gamma.to_f64(),
                requirement: ">= 0 and finite",
            });
        }
        Ok(Pointwise::SigmoidFocal(FocalMap {
            alpha: self.alpha,
            gamma: self.gamma,
        }))
    }

    /// The reduced loss (torchvision's `'mean'` is over all elements).
    ///
    /// # Errors
    /// - [`LossError::InvalidParameter`] if `alpha` is NaN, or `gamma` is negative, infinite
    ///   or NaN.
    /// - [`LossError::LengthMismatch`] if `target.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::{Reduction, SigmoidFocal};
    /// let loss = SigmoidFocal::new().loss(&[0.0f32], &[1.0], Reduction::Mean)?;
    /// assert!((loss - 0.25 * std::f32::consts::LN_2 * 0.25).abs() < 1e-7); // α·ce·0.5²
    /// assert!(SigmoidFocal::new().gamma(-1.0).loss(&[0.0f32], &[1.0], Reduction::Mean).is_err());
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        reduce2(logits, target, reduction, self.checked_map()?)
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::SigmoidFocal;
    /// let mut out = [0.0f64; 2];
    /// SigmoidFocal::new().alpha(-1.0).each(&[800.0, -800.0], &[1.0, 1.0], &mut out)?;
    /// assert_eq!(out, [0.0, 800.0]); // certain and right; certain and wrong (q = 1)
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        each(logits, target, out, self.checked_map()?)
    }

    /// The reduced loss and its gradient with respect to `logits` in one pass (0 where
    /// `1 - p_t` is 0), divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::{Reduction, SigmoidFocal};
    /// let mut grad = [0.0f64; 2];
    /// SigmoidFocal::new().gamma(0.5).loss_and_grad(&[0.0, 800.0], &[1.0, 1.0], Reduction::Sum, &mut grad)?;
    /// assert!(grad[0] < 0.0);
    /// assert_eq!(grad[1], 0.0); // saturated: the limit, not NaN
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        reduce2_grad(logits, target, reduction, grad, self.checked_map()?)
    }
}

/// torchvision's `sigmoid_focal_loss` with its defaults (`alpha = 0.25`, `gamma = 2`), reduced.
/// Options: [`SigmoidFocal`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != logits.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::sigmoid_focal(&[0.0f64, 0.0], &[1.0, 0.0], Reduction::Sum)?;
/// let ln2 = std::f64::consts::LN_2;
/// assert!((loss - (0.25 + 0.75) * ln2 * 0.25).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn sigmoid_focal<S: Storage>(
    logits: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    SigmoidFocal::new().loss(logits, target, reduction)
}

/// [`sigmoid_focal`] without reduction, into `out`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `logits`.
///
/// ```
/// let mut out = [0.0f32; 1];
/// losskit::sigmoid_focal_each(&[0.0f32], &[0.0], &mut out)?;
/// assert!((out[0] - 0.75 * std::f32::consts::LN_2 * 0.25).abs() < 1e-7);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn sigmoid_focal_each<S: Storage>(
    logits: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    SigmoidFocal::new().each(logits, target, out)
}

/// [`sigmoid_focal`] and its gradient with respect to `logits` in one pass (see
/// [`SigmoidFocal::loss_and_grad`]).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `logits`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 1];
/// losskit::sigmoid_focal_and_grad(&[0.0], &[1.0], Reduction::Sum, &mut grad)?;
/// // α·[(p - t)·q² + 2·ce·q·p(1 - p)(1 - 2t)] at p = q = 1/2
/// let want = 0.25 * (-0.5 * 0.25 + 2.0 * std::f64::consts::LN_2 * 0.5 * 0.25 * -1.0);
/// assert!((grad[0] - want).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn sigmoid_focal_and_grad<S: Storage>(
    logits: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    SigmoidFocal::new().loss_and_grad(logits, target, reduction, grad)
}
