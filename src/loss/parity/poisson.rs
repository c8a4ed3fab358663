//! PyTorch's `poisson_nll_loss`: [`poisson_nll`] and the [`PoissonNll`] builder.

use crate::engine::Map2;
use crate::loss::pointwise::{each, reduce2, reduce2_grad};
use crate::loss::Pointwise;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{Float, LossError, Reduction};

/// `e^x - t·x` (`log_input`) or `x - t·ln(x + eps)`, plus with `full` the Stirling term
/// `t·ln t - t + ½·ln(2πt)` where `t > 1` (PyTorch masks `t <= 1` to 0; a NaN target is not
/// masked and gives NaN).
#[derive(Clone, Copy, Debug)]
pub struct PoissonMap<T> {
    log_input: bool,
    full: bool,
    eps: T,
}

impl<T: Float> PoissonMap<T> {
    /// The loss and the factor its derivative needs (`e^x` or `x + eps`).
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn parts<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> (V, V) {
        let (base, aux) = if self.log_input {
            // The full-range exp: x may be positive (and overflows to inf past ln(MAX), as
            // PyTorch's does).
            let ex = math::exp(isa, x);
            (ex - t * x, ex)
        } else {
            let xe = x + V::splat(isa, self.eps);
            (x - t * math::ln(isa, xe), xe)
        };
        if !self.full {
            return (base, aux);
        }
        // ln(2πt) = ln t + ln 2π shares the one log of t.
        let one = V::splat(isa, T::ONE);
        let lt = math::ln(isa, t);
        let half = V::splat(isa, T::from_f64(0.5));
        let ln_2pi = V::splat(isa, T::from_f64((2.0 * core::f64::consts::PI).ln()));
        let stirling = t.mul_add(lt, -t) + half * (lt + ln_2pi);
        let stirling = V::select(t.le(one), V::splat(isa, T::ZERO), stirling);
        (base + stirling, aux)
    }
}

impl<T: Float> Map2<T> for PoissonMap<T> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> V {
        self.parts(isa, x, t).0
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V) -> (V, V) {
        let (loss, aux) = self.parts(isa, x, t);
        // d/dx: e^x - t, or 1 - t/(x + eps); the Stirling term does not depend on x.
        let grad = if self.log_input {
            aux - t
        } else {
            V::splat(isa, T::ONE) - t / aux
        };
        (loss, grad)
    }
}

/// PyTorch's `poisson_nll_loss`, with its options: `log_input` (default `true`: the input is
/// the log of the rate), `full` (default `false`: add the Stirling approximation of `ln t!`
/// where `t > 1`) and `eps` (default `1e-8`, added to the rate before its log when `log_input`
/// is `false`). PyTorch checks none of them, and neither does this.
///
/// ```
/// use losskit::{PoissonNll, Reduction};
/// let rate = [2.0f64, 0.5];
/// let count = [3.0f64, 0.0];
/// let loss = PoissonNll::new().log_input(false).loss(&rate, &count, Reduction::Sum)?;
/// assert!((loss - (2.0 - 3.0 * (2.0f64 + 1e-8).ln() + 0.5)).abs() < 1e-12);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PoissonNll<T> {
    log_input: bool,
    full: bool,
    eps: T,
}

impl<T: Float> Default for PoissonNll<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> PoissonNll<T> {
    /// PyTorch's defaults: `log_input = true`, `full = false`, `eps = 1e-8`.
    pub fn new() -> Self {
        PoissonNll {
            log_input: true,
            full: false,
            eps: T::from_f64(1e-8),
        }
    }

    /// Whether the input is `ln(rate)` (`true`, the loss is `e^x - t·x`) or the rate itself
    /// (`false`, `x - t·ln(x + eps)`).
    pub fn log_input(mut self, log_input: bool) -> Self {
        self.log_input = log_input;
        self
    }

    /// Add Stirling's approximation `t·ln t - t + ½·ln(2πt)` of `ln t!` where `t > 1`.
    pub fn full(mut self, full: bool) -> Self {
        self.full = full;
        self
    }

    /// What is added to the rate before its log when `log_input` is `false`.
    pub fn eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }

    fn map(&self) -> Pointwise<T> {
        Pointwise::PoissonNll(PoissonMap {
            log_input: self.log_input,
            full: self.full,
            eps: self.eps,
        })
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
    ///
    /// ```
    /// use losskit::{PoissonNll, Reduction};
    /// // t = 1 gets no Stirling term, t = 2 does.
    /// let plain = PoissonNll::new().loss(&[0.0f64, 0.0], &[1.0, 2.0], Reduction::Sum)?;
    /// let full = PoissonNll::new().full(true).loss(&[0.0f64, 0.0], &[1.0, 2.0], Reduction::Sum)?;
    /// let stirling = 2.0 * 2f64.ln() - 2.0 + 0.5 * (4.0 * std::f64::consts::PI).ln();
    /// assert!((full - plain - stirling).abs() < 1e-12);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        reduce2(input, target, reduction, self.map())
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
    ///
    /// ```
    /// use losskit::PoissonNll;
    /// let mut out = [0.0f32; 1];
    /// PoissonNll::new().each(&[0.0f32], &[5.0], &mut out)?;
    /// assert_eq!(out, [1.0]); // e^0 - 5·0
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        each(input, target, out, self.map())
    }

    /// The reduced loss and its gradient with respect to `input` in one pass: `e^x - t`
    /// (`log_input`) or `1 - t/(x + eps)`, divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
    ///
    /// ```
    /// use losskit::{PoissonNll, Reduction};
    /// let mut grad = [0.0f64; 1];
    /// PoissonNll::new().log_input(false).eps(0.0).loss_and_grad(&[2.0], &[3.0], Reduction::Sum, &mut grad)?;
    /// assert_eq!(grad, [-0.5]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        reduce2_grad(input, target, reduction, grad, self.map())
    }
}

/// PyTorch's `poisson_nll_loss` with its defaults: the input is `ln(rate)` and the loss
/// `e^x - t·x`; reduced. Options: [`PoissonNll`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::poisson_nll(&[0.0f32, 1.0], &[1.0, 2.0], Reduction::Mean)?;
/// assert!((loss - (1.0 + std::f32::consts::E - 2.0) / 2.0).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn poisson_nll<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    PoissonNll::new().loss(input, target, reduction)
}

/// [`poisson_nll`] without reduction, into `out`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 1];
/// losskit::poisson_nll_each(&[0.0], &[3.0], &mut out)?;
/// assert_eq!(out, [1.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn poisson_nll_each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    PoissonNll::new().each(input, target, out)
}

/// [`poisson_nll`] and its gradient `e^x - t` in one pass, divided by the length for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 1];
/// losskit::poisson_nll_and_grad(&[0.0], &[3.0], Reduction::Sum, &mut grad)?;
/// assert_eq!(grad, [-2.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn poisson_nll_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    PoissonNll::new().loss_and_grad(input, target, reduction, grad)
}
