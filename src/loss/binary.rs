//! Binary cross-entropy on probabilities (`bce`, [`Bce`]) and on logits (`bce_with_logits`,
//! [`BceWithLogits`]).

use crate::reduce::{each2, sum2, Map2};
use crate::simd::{math, Lanes};
use crate::{check, Float, LossError, Reduction};

/// PyTorch's `binary_cross_entropy`: `(t - 1)·max(log1p(-p), -100) - t·max(ln p, -100)`, or
/// with `epsilon`, Keras's: `p` clipped to `[eps, 1 - eps]` first. Elements whose `p` or `t`
/// is outside `[0, 1]` (or NaN) map to NaN, which the callers turn into an error.
struct BceMap<T> {
    epsilon: Option<T>,
}

impl<T: Float> Map2<T> for BceMap<T> {
    #[inline(always)]
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
}

/// The first element of `values` outside `[0, 1]` (NaN included), as an error.
fn check_probabilities<T: Float>(name: &'static str, values: &[T]) -> Result<(), LossError> {
    match values.iter().position(|&v| !(v >= T::ZERO && v <= T::ONE)) {
        Some(index) => Err(LossError::NotAProbability { name, index, value: values[index].to_f64() }),
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
/// assert!((keras - (16.118095 + 0.2876821)).abs() < 1e-3);
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
                return Err(LossError::InvalidParameter { name: "epsilon", value: eps.to_f64(), requirement: "in [0, 0.5]" });
            }
        }
        Ok(BceMap { epsilon: self.epsilon })
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
    pub fn loss(&self, probs: &[T], target: &[T], reduction: Reduction) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", probs.len())?;
        let sum = sum2(probs, target, &map);
        if sum.is_nan() {
            // Valid inputs give finite losses, so a NaN sum means an invalid element: find it.
            check_probabilities("input", probs)?;
            check_probabilities("target", target)?;
        }
        Ok(reduction.finish(sum, probs.len()))
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
    /// Bce::new().each(&[0.5, 0.5], &[1.0, 0.0], &mut out)?;
    /// assert_eq!(out[0], out[1]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each(&self, probs: &[T], target: &[T], out: &mut [T]) -> Result<(), LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", probs.len())?;
        check::same_len("out", out.len(), "input", probs.len())?;
        check_probabilities("input", probs)?;
        check_probabilities("target", target)?;
        each2(probs, target, out, &map);
        Ok(())
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
pub fn bce<T: Float>(probs: &[T], target: &[T], reduction: Reduction) -> Result<T, LossError> {
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
pub fn bce_each<T: Float>(probs: &[T], target: &[T], out: &mut [T]) -> Result<(), LossError> {
    Bce::new().each(probs, target, out)
}

/// PyTorch's `binary_cross_entropy_with_logits`, computed stably:
/// `(1 - t)·x - (1 + (pw - 1)·t)·log_sigmoid(x)`.
struct BceLogitsMap<T> {
    pos_weight: Option<T>,
}

impl<T: Float> Map2<T> for BceLogitsMap<T> {
    #[inline(always)]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> V {
        let one = V::splat(isa, T::ONE);
        let log_sig = math::log_sigmoid(isa, x);
        let weighted = match self.pos_weight {
            Some(pw) => t.mul_add(V::splat(isa, pw - T::ONE), one) * log_sig,
            None => log_sig,
        };
        (one - t) * x - weighted
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
        Ok(BceLogitsMap { pos_weight: self.pos_weight })
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
    pub fn loss(&self, logits: &[T], target: &[T], reduction: Reduction) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", logits.len())?;
        Ok(reduction.finish(sum2(logits, target, &map), logits.len()))
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out.len() != logits.len()`.
    ///
    /// ```
    /// use losskit::BceWithLogits;
    /// let mut out = [0.0f32; 1];
    /// BceWithLogits::new().pos_weight(3.0).each(&[0.0], &[1.0], &mut out)?;
    /// assert!((out[0] - 3.0 * std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each(&self, logits: &[T], target: &[T], out: &mut [T]) -> Result<(), LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", logits.len())?;
        check::same_len("out", out.len(), "input", logits.len())?;
        each2(logits, target, out, &map);
        Ok(())
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
pub fn bce_with_logits<T: Float>(logits: &[T], target: &[T], reduction: Reduction) -> Result<T, LossError> {
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
pub fn bce_with_logits_each<T: Float>(logits: &[T], target: &[T], out: &mut [T]) -> Result<(), LossError> {
    BceWithLogits::new().each(logits, target, out)
}
