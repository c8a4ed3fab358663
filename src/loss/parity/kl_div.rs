//! PyTorch's `kl_div` on log-probabilities: [`kl_div`] and the [`KlDiv`] builder, with
//! PyTorch's `batchmean` reduction as [`KlDiv::batchmean`].

use crate::check;
use crate::engine::Map2;
use crate::float::sealed::Sealed as _;
use crate::loss::pointwise::{each, reduce2, reduce2_grad};
use crate::loss::Pointwise;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{Float, LossError, Reduction};

/// `t·(ln t - x)` as PyTorch writes it, `xlogy(t, t) - t·x` (so `0·ln 0 = 0`, but `0·(-inf)`
/// is NaN), or with `log_target` `e^t·(t - x)`.
#[derive(Clone, Copy, Debug)]
pub struct KlMap {
    log_target: bool,
}

impl<T: Float> Map2<T> for KlMap {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> V {
        if self.log_target {
            // Full-range exp: a log-target above 0 is not a log-probability, but PyTorch
            // computes it all the same.
            math::exp(isa, t) * (t - x)
        } else {
            let zero = V::splat(isa, T::ZERO);
            // xlogy(t, t): 0 where t = 0; NaN t is not 0 and stays NaN.
            let xlogy = V::select(t.eq(zero), zero, t * math::ln(isa, t));
            xlogy - t * x
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> (V, V) {
        if self.log_target {
            let et = math::exp(isa, t);
            (et * (t - x), -et)
        } else {
            (self.map(isa, x, t), -t)
        }
    }
}

/// PyTorch's `kl_div(input, target, log_target=...)`: `input` holds log-probabilities, `target`
/// probabilities (or, with [`log_target`](Self::log_target), log-probabilities); the loss of
/// an element is `t·(ln t - x)` (`e^t·(t - x)`), with `0·ln 0 = 0`.
///
/// The reductions are PyTorch's: [`Reduction::Mean`] is the mean over *all elements* (PyTorch's
/// `'mean'`, which its docs warn is not the KL divergence), [`Reduction::Sum`] the sum, and
/// [`batchmean`](Self::batchmean) the sum divided by the batch size (PyTorch's `'batchmean'`,
/// the true mean KL divergence of `[batch, classes]` rows). `'none'` is [`each`](Self::each).
///
/// ```
/// use losskit::{KlDiv, Reduction};
/// let p = [0.25f64, 0.75, 0.5, 0.5];               // two rows of target probabilities
/// let log_q: Vec<f64> = [0.5f64, 0.5, 0.5, 0.5].iter().map(|q| q.ln()).collect();
/// let kl = KlDiv::new().batchmean(&log_q, &p, 2)?;  // mean KL(p || q) over the rows
/// let sum = KlDiv::new().loss(&log_q, &p, Reduction::Sum)?;
/// assert_eq!(kl, sum / 2.0);
/// assert!((kl - (0.25 * 0.5f64.ln() + 0.75 * 1.5f64.ln()) / 2.0).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct KlDiv {
    log_target: bool,
}

/// `input.len() / batch`'s divisor check: `batch` must divide the length (any `batch > 0`
/// divides an empty input, whose batchmean is 0/batch = 0; `batch = 0` is accepted only for an
/// empty input, where PyTorch's 0/0 gives NaN).
fn check_batch(len: usize, batch: usize) -> Result<(), LossError> {
    let divides = match len.checked_rem(batch) {
        Some(rem) => rem == 0,
        None => len == 0,
    };
    if divides {
        Ok(())
    } else {
        Err(LossError::InvalidParameter {
            name: "batch",
            value: batch as f64,
            requirement: "a divisor of input.len()",
        })
    }
}

impl KlDiv {
    /// PyTorch's default: `log_target = false`.
    pub fn new() -> Self {
        KlDiv { log_target: false }
    }

    /// Whether `target` holds log-probabilities (PyTorch's `log_target`).
    pub fn log_target(mut self, log_target: bool) -> Self {
        self.log_target = log_target;
        self
    }

    fn map<T: Float>(&self) -> Pointwise<T> {
        Pointwise::KlDiv(KlMap {
            log_target: self.log_target,
        })
    }

    /// The loss reduced by `reduction`: the mean over all elements or the sum.
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
    ///
    /// ```
    /// use losskit::{KlDiv, Reduction};
    /// let loss = KlDiv::new().loss(&[-1.0f32, -2.0], &[0.0, 1.0], Reduction::Sum)?;
    /// assert_eq!(loss, 2.0); // 0·ln 0 = 0, and 1·(ln 1 + 2)
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage>(
        &self,
        input: &[S],
        target: &[S],
        reduction: Reduction,
    ) -> Result<S::Compute, LossError> {
        reduce2(input, target, reduction, self.map())
    }

    /// PyTorch's `'batchmean'`: the sum divided by `batch`, the number of rows of the
    /// `[batch, classes]` inputs (PyTorch's `input.size(0)`).
    ///
    /// # Errors
    /// - [`LossError::LengthMismatch`] if `target.len() != input.len()`.
    /// - [`LossError::InvalidParameter`] (`batch`) unless `batch` divides `input.len()`
    ///   (`batch = 0` only for an empty input, which gives NaN as PyTorch's 0/0).
    ///
    /// ```
    /// use losskit::KlDiv;
    /// let loss = KlDiv::new().log_target(true).batchmean(&[0.0f64, 0.0], &[0.0, 0.0], 2)?;
    /// assert_eq!(loss, 0.0);
    /// assert!(KlDiv::new().batchmean(&[0.0f64; 3], &[0.0; 3], 2).is_err());
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn batchmean<S: Storage>(
        &self,
        input: &[S],
        target: &[S],
        batch: usize,
    ) -> Result<S::Compute, LossError> {
        check::same_len("target", target.len(), "input", input.len())?;
        check_batch(input.len(), batch)?;
        let sum = S::pointwise_sum(&self.map(), input, target);
        Ok(sum.finish(batch as f64, Reduction::Mean))
    }

    /// The loss of every element, into `out` (PyTorch's `'none'`).
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
    ///
    /// ```
    /// use losskit::KlDiv;
    /// let mut out = [0.0f64; 2];
    /// KlDiv::new().each(&[-1.0f64, -1.0], &[0.0, 1.0], &mut out)?;
    /// assert_eq!(out, [0.0, 1.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage>(
        &self,
        input: &[S],
        target: &[S],
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        each(input, target, out, self.map())
    }

    /// The reduced loss and its gradient with respect to `input` in one pass: `-t` (`-e^t`
    /// with `log_target`), divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
    ///
    /// ```
    /// use losskit::{KlDiv, Reduction};
    /// let mut grad = [0.0f32; 2];
    /// KlDiv::new().loss_and_grad(&[-1.0, -1.0], &[0.25, 0.75], Reduction::Mean, &mut grad)?;
    /// assert_eq!(grad, [-0.125, -0.375]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage>(
        &self,
        input: &[S],
        target: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        reduce2_grad(input, target, reduction, grad, self.map())
    }

    /// [`batchmean`](Self::batchmean) and its gradient in one pass: the per-element
    /// derivative divided by `batch`.
    ///
    /// # Errors
    /// As [`batchmean`](Self::batchmean), and [`LossError::LengthMismatch`] if
    /// `grad.len() != input.len()`. Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::KlDiv;
    /// let mut grad = [0.0f64; 4];
    /// KlDiv::new().batchmean_and_grad(&[-1.0; 4], &[0.5, 0.5, 1.0, 0.0], 2, &mut grad)?;
    /// assert_eq!(grad, [-0.25, -0.25, -0.5, 0.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn batchmean_and_grad<S: Storage>(
        &self,
        input: &[S],
        target: &[S],
        batch: usize,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        check::same_len("target", target.len(), "input", input.len())?;
        check::same_len("grad", grad.len(), "input", input.len())?;
        check_batch(input.len(), batch)?;
        // As PyTorch's `norm`: 1/batch rounded to the compute type.
        let scale = S::Compute::ONE / S::Compute::from_usize(batch);
        let sum = S::pointwise_sum_and_grad(&self.map(), input, target, grad, scale);
        Ok(sum.finish(batch as f64, Reduction::Mean))
    }
}

/// PyTorch's `kl_div` with `log_target = false`: `t·(ln t - x)` per element (`input` = log-
/// probabilities, `target` = probabilities, `0·ln 0 = 0`), reduced by `reduction` (the mean is
/// over all elements, as PyTorch's `'mean'`; [`KlDiv::batchmean`] divides by the rows).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::kl_div(&[0.5f64.ln(), 0.5f64.ln()], &[0.5, 0.5], Reduction::Sum)?;
/// assert!(loss.abs() < 1e-16); // KL(p || p) = 0
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    KlDiv::new().loss(input, target, reduction)
}

/// [`kl_div`] without reduction, into `out`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// losskit::kl_div_each(&[-2.0f32, -2.0], &[0.0, 1.0], &mut out)?;
/// assert_eq!(out, [0.0, 2.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div_each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    KlDiv::new().each(input, target, out)
}

/// [`kl_div`] and its gradient `-t` in one pass, divided by the length for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 2];
/// losskit::kl_div_and_grad(&[-1.0, -1.0], &[0.25, 0.75], Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [-0.25, -0.75]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    KlDiv::new().loss_and_grad(input, target, reduction, grad)
}
