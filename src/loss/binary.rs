//! Binary cross-entropy on probabilities (`bce`, [`Bce`]) and on logits (`bce_with_logits`,
//! [`BceWithLogits`]).

use super::weighted::{self, Divisor};
use super::{Pointwise, Pointwise3};
use crate::engine::Map2;
use crate::float::sealed::Sealed as _;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// PyTorch's `binary_cross_entropy`: `(t - 1)·max(log1p(-p), -100) - t·max(ln p, -100)`, or
/// with `epsilon`, Keras's: `p` clipped to `[eps, 1 - eps]` first. Elements whose `p` or `t`
/// is outside `[0, 1]` (or NaN) map to NaN, which the callers turn into an error.
#[derive(Clone, Copy, Debug)]
pub struct BceMap<T> {
    epsilon: Option<T>,
}

impl<T: Float> Map2<T> for BceMap<T> {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, p: V, t: V) -> V {
        let zero = V::splat(isa, T::ZERO);
        let one = V::splat(isa, T::ONE);
        let floor = V::splat(isa, T::from_f64(-100.0));
        let clipped = match self.epsilon {
            Some(eps) => p.max(V::splat(isa, eps)).min(V::splat(isa, T::ONE - eps)),
            None => p,
        };
        // x86 `max` returns its second operand for NaN, so the clamp never hides a NaN log of
        // a valid p (there is none): invalid inputs are caught by the masks below.
        let log_p = math::ln(isa, clipped).max(floor);
        let log_1mp = math::log1p(isa, -clipped).max(floor);
        let loss = (t - one) * log_1mp - t * log_p;
        let nan = V::splat(isa, T::from_f64(f64::NAN));
        let loss = V::select(zero.le(p), loss, nan);
        let loss = V::select(p.le(one), loss, nan);
        let loss = V::select(zero.le(t), loss, nan);
        V::select(t.le(one), loss, nan)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, p: V, t: V) -> (V, V) {
        // PyTorch: (p - t) / max((1 - p) p, EPSILON), with EPSILON the f32 1e-12 in every dtype.
        let one = V::splat(isa, T::ONE);
        let floor = V::splat(isa, T::from_f64(1e-12f32 as f64));
        let grad = (p - t) / ((one - p) * p).max(floor);
        let grad = match self.epsilon {
            // Clipping has derivative 0 outside [eps, 1 - eps].
            Some(eps) => {
                let zero = V::splat(isa, T::ZERO);
                let grad = V::select(V::splat(isa, eps).le(p), grad, zero);
                V::select(p.le(V::splat(isa, T::ONE - eps)), grad, zero)
            }
            None => grad,
        };
        (self.map(isa, p, t), grad)
    }
}

/// The first element of `values` outside `[0, 1]` (NaN included), as an error.
fn check_probabilities<S: Storage>(name: &'static str, values: &[S]) -> Result<(), LossError> {
    let (zero, one) = (S::Compute::ZERO, S::Compute::ONE);
    match values
        .iter()
        .position(|&v| !(v.to_compute() >= zero && v.to_compute() <= one))
    {
        Some(index) => Err(LossError::NotAProbability {
            name,
            index,
            value: values[index].to_compute().to_f64(),
        }),
        None => Ok(()),
    }
}

/// Binary cross-entropy on probabilities, with optional Keras/scikit-learn clipping.
///
/// `Bce::new()` is PyTorch's `binary_cross_entropy` (each log clamped at -100, so a confident
/// wrong answer costs 100); `.epsilon(eps)` first clips probabilities to `[eps, 1 - eps]`, as
/// Keras (`1e-7`) and scikit-learn's `log_loss` (`1e-15`) do.
///
/// ```
/// use losskit::{Bce, Reduction};
/// let p = [1.0f32, 0.25];
/// let t = [0.0f32, 0.0];
/// let torch = Bce::new().loss(&p, &t, Reduction::Sum)?;     // log(1 - 1) clamped at -100
/// let keras = Bce::new().epsilon(1e-7).loss(&p, &t, Reduction::Sum)?;
/// assert!((torch - (100.0 + 0.2876821)).abs() < 1e-4);
/// // 1 - 1e-7 rounds to 1 - 2^-23 in f32, so the first term is -ln(2^-23) = 15.942385.
/// assert!((keras - (15.942385 + 0.2876821)).abs() < 1e-4);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Bce<T> {
    epsilon: Option<T>,
}

impl<T: Float> Bce<T> {
    /// PyTorch's semantics: no clipping, logs clamped at -100.
    pub fn new() -> Self {
        Bce { epsilon: None }
    }

    /// Clip probabilities to `[epsilon, 1 - epsilon]` before taking logs. Must be in
    /// `[0, 0.5]` (checked when the loss is computed).
    pub fn epsilon(mut self, epsilon: T) -> Self {
        self.epsilon = Some(epsilon);
        self
    }

    fn checked_map(&self) -> Result<BceMap<T>, LossError> {
        if let Some(eps) = self.epsilon {
            if !(eps >= T::ZERO && eps <= T::from_f64(0.5)) {
                return Err(LossError::InvalidParameter {
                    name: "epsilon",
                    value: eps.to_f64(),
                    requirement: "in [0, 0.5]",
                });
            }
        }
        Ok(BceMap {
            epsilon: self.epsilon,
        })
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// - [`LossError::InvalidParameter`] if `epsilon` is outside `[0, 0.5]` or NaN.
    /// - [`LossError::LengthMismatch`] if `target.len() != probs.len()`.
    /// - [`LossError::NotAProbability`] if an element of `probs` or `target` is outside
    ///   `[0, 1]` or NaN (PyTorch rejects these too).
    ///
    /// ```
    /// use losskit::{Bce, Reduction};
    /// let loss = Bce::new().loss(&[0.5f64], &[1.0], Reduction::Mean)?;
    /// assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
    /// assert!(Bce::new().loss(&[1.5f64], &[1.0], Reduction::Mean).is_err());
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        probs: &[S],
        target: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", probs.len())?;
        let sum = S::pointwise_sum(&Pointwise::Bce(map), probs, target);
        if sum.loss.is_nan() {
            // Valid inputs give finite losses, so a NaN sum means an invalid element: find it.
            check_probabilities("input", probs)?;
            check_probabilities("target", target)?;
        }
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The reduced loss and, in the same pass, its gradient with respect to `probs`:
    /// `(p - t) / max(p (1 - p), 1e-12)` as PyTorch computes it (0 where `epsilon` clips),
    /// divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad.len() != probs.len()`.
    /// Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::{Bce, Reduction};
    /// let mut grad = [0.0f64; 1];
    /// Bce::new().loss_and_grad(&[0.25], &[1.0], Reduction::Sum, &mut grad)?;
    /// assert!((grad[0] + 4.0).abs() < 1e-12); // (0.25 - 1) / (0.25 · 0.75)
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        probs: &[S],
        target: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", probs.len())?;
        check::same_len("grad", grad.len(), "input", probs.len())?;
        check_probabilities("input", probs)?;
        check_probabilities("target", target)?;
        let sum = S::pointwise_sum_and_grad(
            &Pointwise::Bce(map),
            probs,
            target,
            grad,
            reduction.grad_scale(probs.len()),
        );
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out.len() != probs.len()`.
    /// Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::Bce;
    /// let mut out = [0.0f32; 2];
    /// Bce::new().each(&[0.5f32, 0.5], &[1.0, 0.0], &mut out)?;
    /// assert_eq!(out[0], out[1]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        probs: &[S],
        target: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", probs.len())?;
        check::same_len("out", out.len(), "input", probs.len())?;
        check_probabilities("input", probs)?;
        check_probabilities("target", target)?;
        S::pointwise_each(&Pointwise::Bce(map), probs, target, out);
        Ok(())
    }
    /// [`loss`](Self::loss) with PyTorch's per-element `weight`: `w·bce(p, t)`, reduced; the
    /// mean divides by the element count, as PyTorch's `binary_cross_entropy`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `weight` is not as long
    /// as `probs`.
    ///
    /// ```
    /// use losskit::{Bce, Reduction};
    /// let plain = Bce::new().loss(&[0.25f64, 0.5], &[1.0, 1.0], Reduction::Sum)?;
    /// let w = Bce::new().loss_weighted(&[0.25f64, 0.5], &[1.0, 1.0], &[1.0, 1.0], Reduction::Sum)?;
    /// assert_eq!(plain, w);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_weighted<S: Storage<Compute = T>>(
        &self,
        probs: &[S],
        target: &[S],
        weight: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let map = Pointwise3::WeightedBce(self.checked_map()?);
        check::same_len("target", target.len(), "input", probs.len())?;
        check::same_len("weight", weight.len(), "input", probs.len())?;
        let sum = S::pointwise3_sum(&map, probs, target, weight);
        if sum.loss.is_nan() {
            // An invalid element maps to NaN (as does NaN data in `weight`): find it.
            check_probabilities("input", probs)?;
            check_probabilities("target", target)?;
        }
        Ok(weighted::finish(sum, reduction, Divisor::Count))
    }

    /// [`each`](Self::each) with a per-element `weight`: `out[i] = w[i]·bce(p[i], t[i])`.
    ///
    /// # Errors
    /// As [`each`](Self::each), and [`LossError::LengthMismatch`] if `weight` is not as long as
    /// `probs`.
    ///
    /// ```
    /// use losskit::Bce;
    /// let mut out = [0.0f32; 2];
    /// Bce::new().each_weighted(&[0.0f32, 0.5], &[1.0, 1.0], &[0.5, 0.0], &mut out)?;
    /// assert_eq!(out, [50.0, 0.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each_weighted<S: Storage<Compute = T>>(
        &self,
        probs: &[S],
        target: &[S],
        weight: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let map = Pointwise3::WeightedBce(self.checked_map()?);
        check::same_len("target", target.len(), "input", probs.len())?;
        check::same_len("weight", weight.len(), "input", probs.len())?;
        check::same_len("out", out.len(), "input", probs.len())?;
        check_probabilities("input", probs)?;
        check_probabilities("target", target)?;
        S::pointwise3_each(&map, probs, target, weight, out);
        Ok(())
    }

    /// [`loss_and_grad`](Self::loss_and_grad) with a per-element `weight`: the gradient is
    /// `w·(p - t) / max(p (1 - p), 1e-12)`, divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss_and_grad`](Self::loss_and_grad), and [`LossError::LengthMismatch`] if
    /// `weight` is not as long as `probs`.
    ///
    /// ```
    /// use losskit::{Bce, Reduction};
    /// let mut grad = [0.0f64; 1];
    /// Bce::new().loss_and_grad_weighted(&[0.25], &[1.0], &[0.5], Reduction::Sum, &mut grad)?;
    /// assert!((grad[0] + 2.0).abs() < 1e-12); // 0.5 · (0.25 - 1) / (0.25 · 0.75)
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad_weighted<S: Storage<Compute = T>>(
        &self,
        probs: &[S],
        target: &[S],
        weight: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let map = Pointwise3::WeightedBce(self.checked_map()?);
        check::same_len("target", target.len(), "input", probs.len())?;
        check::same_len("weight", weight.len(), "input", probs.len())?;
        check::same_len("grad", grad.len(), "input", probs.len())?;
        check_probabilities("input", probs)?;
        check_probabilities("target", target)?;
        Ok(weighted::reduce_grad_checked(
            probs,
            target,
            weight,
            reduction,
            grad,
            map,
            Divisor::Count,
        ))
    }
}

/// Binary cross-entropy on probabilities, PyTorch's `F.binary_cross_entropy`: each log is
/// clamped at -100. For Keras/scikit-learn clipping use [`Bce::epsilon`].
///
/// # Errors
/// As [`Bce::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::bce(&[0.9f32, 0.2], &[1.0, 0.0], Reduction::Mean)?;
/// assert!((loss - 0.164252).abs() < 1e-5);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce<S: Storage>(
    probs: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    Bce::new().loss(probs, target, reduction)
}

/// [`bce`] without reduction, into `out`.
///
/// # Errors
/// As [`Bce::each`].
///
/// ```
/// let mut out = [0.0f64; 1];
/// losskit::bce_each(&[0.0], &[1.0], &mut out)?;
/// assert_eq!(out[0], 100.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_each<S: Storage>(
    probs: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    Bce::new().each(probs, target, out)
}

/// PyTorch's `binary_cross_entropy_with_logits`, computed stably:
/// `(1 - t)·x - (1 + (pw - 1)·t)·log_sigmoid(x)`.
#[derive(Clone, Copy, Debug)]
pub struct BceLogitsMap<T> {
    /// `pos_weight`, 1 when none is set: with `lw = 1 + (pw - 1) t` then exactly 1, the
    /// weighted forms below round exactly as the unweighted ones, and the hot loop has no
    /// branch on the option.
    pos_weight: T,
}

/// `(1 - t)·x - lw·log_sigmoid(x)` with `l = log1p(exp(-|x|))` and `lw = 1 + (pw - 1)·t`,
/// written so that it does not cancel: `log_sigmoid(x) = min(x, 0) - l`, and for `x < 0` the
/// linear part `(1 - t)·x - lw·x` is exactly `-pw·t·x`, computed as that. PyTorch's literal
/// form subtracts two terms of size `|x|` there, which for soft targets at large `|x|` loses
/// the digits of the result (the golden2 README measures 1.4x the f32 budget on half inputs).
/// `x = -inf` gives NaN, as PyTorch's form does (`inf - inf`).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn stable_bce_with_logits<V: Lanes>(isa: V::Isa, x: V, t: V, pw: V, lw: V, l: V) -> V {
    let zero = V::splat(isa, V::Elem::ZERO);
    let one = V::splat(isa, V::Elem::ONE);
    // The coefficient of x chosen first, so that one product serves both sides.
    let linear = V::select(x.lt(zero), -(pw * t), one - t) * x;
    let neg_inf = V::splat(isa, V::Elem::from_f64(f64::NEG_INFINITY));
    let nan = V::splat(isa, V::Elem::from_f64(f64::NAN));
    V::select(x.eq(neg_inf), nan, linear + lw * l)
}

/// The loss of `bce_with_logits` with positive weight `pw` (per lane).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn bce_with_logits_lanes<V: Lanes>(isa: V::Isa, x: V, t: V, pw: V) -> V {
    let one = V::splat(isa, V::Elem::ONE);
    let (_, l) = math::exp_neg_abs_and_log1p(isa, x);
    let lw = t.mul_add(pw - one, one);
    stable_bce_with_logits(isa, x, t, pw, lw, l)
}

/// The loss of `bce_with_logits` with positive weight `pw` (per lane) and its derivative.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn bce_with_logits_grad_lanes<V: Lanes>(isa: V::Isa, x: V, t: V, pw: V) -> (V, V) {
    // One exp serves both: e = exp(-|x|), l = log1p(e), and sigmoid(x) = 1/(1+e) for
    // x >= 0, e/(1+e) below (no overflow, no cancellation).
    let zero = V::splat(isa, V::Elem::ZERO);
    let one = V::splat(isa, V::Elem::ONE);
    let (e, l) = math::exp_neg_abs_and_log1p(isa, x);
    let r = one / (one + e);
    let sigmoid = V::select(zero.le(x), r, e * r);
    // loss = (1 - t) x - lw log_sigmoid(x), d/dx = lw sigmoid(x) - pw t.
    let lw = t.mul_add(pw - one, one);
    let loss = stable_bce_with_logits(isa, x, t, pw, lw, l);
    (loss, lw.mul_add(sigmoid, -(pw * t)))
}

impl<T: Float> Map2<T> for BceLogitsMap<T> {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> V {
        bce_with_logits_lanes(isa, x, t, V::splat(isa, self.pos_weight))
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> (V, V) {
        bce_with_logits_grad_lanes(isa, x, t, V::splat(isa, self.pos_weight))
    }
}

/// Binary cross-entropy on logits, with an optional weight on positive examples.
///
/// ```
/// use losskit::{BceWithLogits, Reduction};
/// let plain = BceWithLogits::new().loss(&[0.0f32], &[1.0], Reduction::Mean)?;
/// let weighted = BceWithLogits::new().pos_weight(2.5).loss(&[0.0f32], &[1.0], Reduction::Mean)?;
/// assert!((weighted - 2.5 * plain).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BceWithLogits<T> {
    pos_weight: Option<T>,
}

impl<T: Float> BceWithLogits<T> {
    /// No positive weight.
    pub fn new() -> Self {
        BceWithLogits { pos_weight: None }
    }

    /// Multiplies the loss of positive targets by `pos_weight` (PyTorch's `pos_weight`, one
    /// value for every element). Must be `>= 0` (checked when the loss is computed).
    pub fn pos_weight(mut self, pos_weight: T) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    fn checked_map(&self) -> Result<BceLogitsMap<T>, LossError> {
        if let Some(pw) = self.pos_weight {
            check::non_negative("pos_weight", pw)?;
        }
        Ok(BceLogitsMap {
            pos_weight: self.pos_weight.unwrap_or(T::ONE),
        })
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// - [`LossError::InvalidParameter`] if `pos_weight` is negative or NaN.
    /// - [`LossError::LengthMismatch`] if `target.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::{BceWithLogits, Reduction};
    /// let loss = BceWithLogits::new().loss(&[100.0f64], &[1.0], Reduction::Sum)?;
    /// assert!(loss > 0.0 && loss < 1e-40); // no overflow, no cancellation
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", logits.len())?;
        let sum = S::pointwise_sum(&Pointwise::BceWithLogits(map), logits, target);
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The reduced loss and, in the same pass, its gradient with respect to `logits`:
    /// `(1 + (pw - 1) t)·sigmoid(x) - pw·t` (`sigmoid(x) - t` without `pos_weight`), divided by
    /// the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::{BceWithLogits, Reduction};
    /// let mut grad = [0.0f32; 2];
    /// BceWithLogits::new().loss_and_grad(&[0.0, 0.0], &[1.0, 0.0], Reduction::Sum, &mut grad)?;
    /// assert_eq!(grad, [-0.5, 0.5]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", logits.len())?;
        check::same_len("grad", grad.len(), "input", logits.len())?;
        let scale = reduction.grad_scale(logits.len());
        let map = Pointwise::BceWithLogits(map);
        let sum = S::pointwise_sum_and_grad(&map, logits, target, grad, scale);
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::BceWithLogits;
    /// let mut out = [0.0f32; 1];
    /// BceWithLogits::new().pos_weight(3.0).each(&[0.0f32], &[1.0], &mut out)?;
    /// assert!((out[0] - 3.0 * std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", logits.len())?;
        check::same_len("out", out.len(), "input", logits.len())?;
        S::pointwise_each(&Pointwise::BceWithLogits(map), logits, target, out);
        Ok(())
    }
    /// [`loss`](Self::loss) with PyTorch's per-element `weight`: `w·bce_with_logits(x, t)`,
    /// reduced; the mean divides by the element count, as PyTorch's.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `weight` is not as long
    /// as `logits`.
    ///
    /// ```
    /// use losskit::{BceWithLogits, Reduction};
    /// let loss = BceWithLogits::new().loss_weighted(&[0.0f64, 0.0], &[1.0, 0.0], &[2.0, 0.0], Reduction::Mean)?;
    /// assert!((loss - std::f64::consts::LN_2).abs() < 1e-15); // (2 ln 2 + 0) / 2
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_weighted<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        weight: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let map = Pointwise3::WeightedBceWithLogits(self.checked_map()?);
        weighted::reduce(logits, target, weight, reduction, map, Divisor::Count)
    }

    /// [`each`](Self::each) with a per-element `weight`.
    ///
    /// # Errors
    /// As [`each`](Self::each), and [`LossError::LengthMismatch`] if `weight` is not as long as
    /// `logits`.
    ///
    /// ```
    /// use losskit::BceWithLogits;
    /// let mut out = [0.0f32; 1];
    /// BceWithLogits::new().each_weighted(&[0.0f32], &[1.0], &[3.0], &mut out)?;
    /// assert!((out[0] - 3.0 * std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each_weighted<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        weight: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let map = Pointwise3::WeightedBceWithLogits(self.checked_map()?);
        weighted::each(logits, target, weight, out, map)
    }

    /// [`loss_and_grad`](Self::loss_and_grad) with a per-element `weight`: the gradient is
    /// `w·((1 + (pw - 1) t)·sigmoid(x) - pw·t)`, divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss_and_grad`](Self::loss_and_grad), and [`LossError::LengthMismatch`] if
    /// `weight` is not as long as `logits`.
    ///
    /// ```
    /// use losskit::{BceWithLogits, Reduction};
    /// let mut grad = [0.0f32; 2];
    /// BceWithLogits::new().loss_and_grad_weighted(&[0.0, 0.0], &[1.0, 0.0], &[2.0, 1.0], Reduction::Sum, &mut grad)?;
    /// assert_eq!(grad, [-1.0, 0.5]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad_weighted<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        target: &[S],
        weight: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let map = Pointwise3::WeightedBceWithLogits(self.checked_map()?);
        weighted::reduce_grad(logits, target, weight, reduction, grad, map, Divisor::Count)
    }
}

/// Binary cross-entropy on logits, PyTorch's `F.binary_cross_entropy_with_logits`:
/// `max(x, 0) - x·t + log1p(exp(-|x|))`, stable for any `x`.
///
/// # Errors
/// As [`BceWithLogits::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::bce_with_logits(&[0.0f32, 0.0], &[1.0, 0.0], Reduction::Mean)?;
/// assert!((loss - std::f32::consts::LN_2).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits<S: Storage>(
    logits: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    BceWithLogits::new().loss(logits, target, reduction)
}

/// [`bce_with_logits`] without reduction, into `out`.
///
/// # Errors
/// As [`BceWithLogits::each`].
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::bce_with_logits_each(&[-800.0, 800.0], &[1.0, 0.0], &mut out)?;
/// assert_eq!(out, [800.0, 800.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits_each<S: Storage>(
    logits: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    BceWithLogits::new().each(logits, target, out)
}

/// [`bce`] and its gradient with respect to `probs` in one pass (see [`Bce::loss_and_grad`]).
///
/// # Errors
/// As [`Bce::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// let loss = losskit::bce_and_grad(&[0.5, 0.5], &[1.0, 0.0], Reduction::Mean, &mut grad)?;
/// assert!((loss - std::f32::consts::LN_2).abs() < 1e-6);
/// assert_eq!(grad, [-1.0, 1.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_and_grad<S: Storage>(
    probs: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    Bce::new().loss_and_grad(probs, target, reduction, grad)
}

/// [`bce_with_logits`] and its gradient `sigmoid(x) - t` in one pass (see
/// [`BceWithLogits::loss_and_grad`]).
///
/// # Errors
/// As [`BceWithLogits::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 1];
/// losskit::bce_with_logits_and_grad(&[0.0], &[1.0], Reduction::Mean, &mut grad)?;
/// assert_eq!(grad, [-0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits_and_grad<S: Storage>(
    logits: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    BceWithLogits::new().loss_and_grad(logits, target, reduction, grad)
}

/// [`bce`] with PyTorch's per-element `weight` (see [`Bce::loss_weighted`]).
///
/// # Errors
/// As [`Bce::loss_weighted`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::bce_weighted(&[0.5f32, 0.5], &[1.0, 0.0], &[2.0, 0.0], Reduction::Mean)?;
/// assert!((loss - std::f32::consts::LN_2).abs() < 1e-6); // (2 ln 2 + 0) / 2
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_weighted<S: Storage>(
    probs: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    Bce::new().loss_weighted(probs, target, weight, reduction)
}

/// [`bce_weighted`] without reduction, into `out` (see [`Bce::each_weighted`]).
///
/// # Errors
/// As [`Bce::each_weighted`].
///
/// ```
/// let mut out = [0.0f64; 1];
/// losskit::bce_weighted_each(&[0.0], &[1.0], &[0.25], &mut out)?;
/// assert_eq!(out, [25.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_weighted_each<S: Storage>(
    probs: &[S],
    target: &[S],
    weight: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    Bce::new().each_weighted(probs, target, weight, out)
}

/// [`bce_weighted`] and its gradient in one pass (see [`Bce::loss_and_grad_weighted`]).
///
/// # Errors
/// As [`Bce::loss_and_grad_weighted`].
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// losskit::bce_weighted_and_grad(&[0.5, 0.5], &[1.0, 0.0], &[2.0, 1.0], Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [-4.0, 2.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_weighted_and_grad<S: Storage>(
    probs: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    Bce::new().loss_and_grad_weighted(probs, target, weight, reduction, grad)
}

/// [`bce_with_logits`] with PyTorch's per-element `weight` (see
/// [`BceWithLogits::loss_weighted`]).
///
/// # Errors
/// As [`BceWithLogits::loss_weighted`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::bce_with_logits_weighted(&[0.0f64], &[1.0], &[0.5], Reduction::Sum)?;
/// assert!((loss - 0.5 * std::f64::consts::LN_2).abs() < 1e-16);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits_weighted<S: Storage>(
    logits: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    BceWithLogits::new().loss_weighted(logits, target, weight, reduction)
}

/// [`bce_with_logits_weighted`] without reduction, into `out`.
///
/// # Errors
/// As [`BceWithLogits::each_weighted`].
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::bce_with_logits_weighted_each(&[-800.0, 800.0], &[1.0, 0.0], &[0.5, 2.0], &mut out)?;
/// assert_eq!(out, [400.0, 1600.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits_weighted_each<S: Storage>(
    logits: &[S],
    target: &[S],
    weight: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    BceWithLogits::new().each_weighted(logits, target, weight, out)
}

/// [`bce_with_logits_weighted`] and its gradient `w·(sigmoid(x) - t)` in one pass.
///
/// # Errors
/// As [`BceWithLogits::loss_and_grad_weighted`].
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 1];
/// losskit::bce_with_logits_weighted_and_grad(&[0.0], &[1.0], &[4.0], Reduction::Mean, &mut grad)?;
/// assert_eq!(grad, [-2.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits_weighted_and_grad<S: Storage>(
    logits: &[S],
    target: &[S],
    weight: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    BceWithLogits::new().loss_and_grad_weighted(logits, target, weight, reduction, grad)
}
