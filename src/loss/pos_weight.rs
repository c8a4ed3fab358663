//! `bce_with_logits` over a `[rows, classes]` matrix with PyTorch's per-class `pos_weight` (a
//! `[classes]` tensor broadcast over the rows), and optionally a per-element `weight`:
//! [`BceWithLogitsPerClass`].
//!
//! It runs on the flat driver, the matrix read flat: the per-element weight is the third
//! stream (ones when not given) and `pos_weight` the fourth, read per class. Each element's
//! arithmetic is [`BceWithLogits`](crate::BceWithLogits)'s with its class's `pos_weight`, then
//! times its weight, so a `pos_weight` of one value for every class gives the bits of
//! `BceWithLogits::new().pos_weight(value)` (and its `*_weighted` forms with a weight).

use crate::engine::Map4;
use crate::loss::binary::{bce_with_logits_grad_lanes, bce_with_logits_lanes};
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `w · bce_with_logits(x, t; pw)` with the per-element weight `w` (third input) and the
/// element's class's positive weight `pw` (fourth input).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerClassBceLogitsMap;

impl<T: Float> Map4<T> for PerClassBceLogitsMap {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, w: V, pw: V) -> V {
        bce_with_logits_lanes(isa, x, t, pw) * w
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, w: V, pw: V) -> (V, V, V) {
        // As `Weighted`: the weight multiplies the loss and the derivative after them.
        let (loss, d) = bce_with_logits_grad_lanes(isa, x, t, pw);
        let d = d * w;
        (loss * w, d, d)
    }
}

/// Binary cross-entropy on logits over a row-major `[rows, classes]` matrix, with a positive
/// weight per class (PyTorch's `pos_weight` of shape `[classes]`, broadcast over the rows) and
/// optionally PyTorch's per-element `weight`. The number of classes is `pos_weight.len()`.
///
/// The loss of element `(r, c)` is `w·((1 - t)·x - (1 + (pw[c] - 1)·t)·log_sigmoid(x))`,
/// computed as [`BceWithLogits`](crate::BceWithLogits) computes it; the mean divides by the
/// element count (PyTorch's, with or without `weight`).
///
/// ```
/// use losskit::{BceWithLogitsPerClass, Reduction};
/// // Two rows of three classes; positives of class 2 weigh 4 times as much.
/// let logits = [0.5f32, -1.0, 2.0, 1.5, 0.0, -0.5];
/// let target = [1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0];
/// let pos_weight = [1.0f32, 1.0, 4.0];
/// let loss = BceWithLogitsPerClass::new(&pos_weight).loss(&logits, &target, Reduction::Mean)?;
/// assert!(loss > losskit::bce_with_logits(&logits, &target, Reduction::Mean)?);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BceWithLogitsPerClass<'a, S> {
    pos_weight: &'a [S],
    weight: Option<&'a [S]>,
}

impl<'a, S: Storage> BceWithLogitsPerClass<'a, S> {
    /// The positive weight of each class, `>= 0` (checked when the loss is computed); its
    /// length is the number of classes.
    pub fn new(pos_weight: &'a [S]) -> Self {
        BceWithLogitsPerClass {
            pos_weight,
            weight: None,
        }
    }

    /// Multiplies each element's loss by its `weight` (PyTorch's `weight`, one per element of
    /// the matrix).
    pub fn weight(mut self, weight: &'a [S]) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Checks the arguments before any work: `logits` a whole number of rows, `target` (and
    /// `weight`, `out`) as long as `logits`, every `pos_weight` `>= 0`.
    fn check(
        &self,
        logits: usize,
        target: usize,
        out: Option<(&'static str, usize)>,
    ) -> Result<(), LossError> {
        check::rows::<S>(logits, self.pos_weight.len(), None)?;
        check::same_len("target", target, "input", logits)?;
        if let Some(w) = self.weight {
            check::same_len("weight", w.len(), "input", logits)?;
        }
        if let Some((name, len)) = out {
            check::same_len(name, len, "input", logits)?;
        }
        for &pw in self.pos_weight {
            check::non_negative("pos_weight", pw.to_compute())?;
        }
        Ok(())
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// - [`LossError::ZeroClasses`] if `pos_weight` is empty;
    /// - [`LossError::NotMultipleOfClasses`] if `logits.len()` is not a multiple of
    ///   `pos_weight.len()`;
    /// - [`LossError::LengthMismatch`] if `target` or `weight` is not as long as `logits`;
    /// - [`LossError::InvalidParameter`] if a `pos_weight` is negative or NaN.
    ///
    /// ```
    /// use losskit::{BceWithLogitsPerClass, Reduction};
    /// let pos_weight = [2.0f64, 1.0];
    /// let loss = BceWithLogitsPerClass::new(&pos_weight).loss(&[0.0, 0.0], &[1.0, 1.0], Reduction::Sum)?;
    /// assert!((loss - 3.0 * std::f64::consts::LN_2).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss(
        &self,
        logits: &[S],
        target: &[S],
        reduction: Reduction,
    ) -> Result<S::Compute, LossError> {
        self.check(logits.len(), target.len(), None)?;
        let sum = S::per_class_sum(logits, target, self.weight, self.pos_weight);
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out` is not as long as
    /// `logits`.
    ///
    /// ```
    /// use losskit::BceWithLogitsPerClass;
    /// let mut out = [0.0f32; 2];
    /// BceWithLogitsPerClass::new(&[3.0f32]).each(&[0.0, 0.0], &[1.0, 0.0], &mut out)?;
    /// assert!((out[0] - 3.0 * std::f32::consts::LN_2).abs() < 1e-6);
    /// assert!((out[1] - std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each(
        &self,
        logits: &[S],
        target: &[S],
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        self.check(logits.len(), target.len(), Some(("out", out.len())))?;
        S::per_class_each(logits, target, self.weight, self.pos_weight, out);
        Ok(())
    }

    /// The reduced loss and, in the same pass, its gradient with respect to `logits`:
    /// `w·((1 + (pw[c] - 1)·t)·sigmoid(x) - pw[c]·t)`, divided by the length for
    /// [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad` is not as long as
    /// `logits`.
    ///
    /// ```
    /// use losskit::{BceWithLogitsPerClass, Reduction};
    /// let mut grad = [0.0f32; 2];
    /// BceWithLogitsPerClass::new(&[3.0f32, 1.0]).loss_and_grad(&[0.0, 0.0], &[1.0, 1.0], Reduction::Sum, &mut grad)?;
    /// assert_eq!(grad, [-1.5, -0.5]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad(
        &self,
        logits: &[S],
        target: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        self.check(logits.len(), target.len(), Some(("grad", grad.len())))?;
        let scale = reduction.grad_scale(logits.len());
        let sum =
            S::per_class_sum_and_grad(logits, target, self.weight, self.pos_weight, grad, scale);
        Ok(sum.finish(sum.weight, reduction))
    }
}
