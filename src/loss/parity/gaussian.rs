//! PyTorch's `gaussian_nll_loss`: [`gaussian_nll`] and the [`GaussianNll`] builder, on three
//! inputs (input, target, var).

use crate::engine::Map3;
use crate::float::sealed::Sealed as _;
use crate::loss::Pointwise3;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `½·(ln v + (x - t)²/v)` with `v = max(var, eps)`, plus `½·ln 2π` with `full`. The second
/// derivative is with respect to `var`: `½·(1/v - (x - t)²/v²)` at the clamped `v` everywhere,
/// also where `var < eps` (PyTorch clamps a copy of `var` in place under `no_grad`, so autograd
/// never sees the clamp). A negative `var` maps to NaN, which the reduced form turns into
/// [`LossError::Negative`] (the other forms check first).
#[derive(Clone, Copy, Debug)]
pub struct GaussianMap<T> {
    full: bool,
    eps: T,
}

impl<T: Float> GaussianMap<T> {
    /// The loss, `x - t`, `v` and `(x - t)²/v`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn parts<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, var: V) -> (V, V, V, V) {
        let zero = V::splat(isa, T::ZERO);
        let half = V::splat(isa, T::from_f64(0.5));
        // The constant first: x86 `max` returns its second operand for NaN, so a NaN var stays
        // NaN, as torch's clamp keeps it.
        let v = V::splat(isa, self.eps).max(var);
        let d = x - t;
        // PyTorch's order: (x - t)² / v, then + ln v, then · ½.
        let q = d * d / v;
        let loss = half * (math::ln(isa, v) + q);
        let loss = if self.full {
            loss + V::splat(isa, T::from_f64(0.5 * (2.0 * core::f64::consts::PI).ln()))
        } else {
            loss
        };
        let nan = V::splat(isa, T::from_f64(f64::NAN));
        (V::select(var.lt(zero), nan, loss), d, v, q)
    }
}

impl<T: Float> Map3<T> for GaussianMap<T> {
    const GRAD2: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, var: V) -> V {
        self.parts(isa, x, t, var).0
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, var: V) -> (V, V, V) {
        let (loss, d, v, q) = self.parts(isa, x, t, var);
        let half = V::splat(isa, T::from_f64(0.5));
        // d/dx = (x - t)/v; d/dvar = ½(1/v - (x - t)²/v²) = ½(1 - q)/v.
        let dvar = half * (V::splat(isa, T::ONE) - q) / v;
        (loss, d / v, dvar)
    }
}

/// The first negative element of `var` (NaN is not), as an error.
fn check_var<S: Storage>(var: &[S]) -> Result<(), LossError> {
    match var.iter().position(|&v| v.to_compute() < S::Compute::ZERO) {
        Some(index) => Err(LossError::Negative {
            name: "var",
            index,
            value: var[index].to_compute().to_f64(),
        }),
        None => Ok(()),
    }
}

/// PyTorch's `gaussian_nll_loss` with one variance per element: `½·(ln v + (x - t)²/v)`,
/// `v = max(var, eps)`, with its options `full` (default `false`: add `½·ln 2π`) and `eps`
/// (default `1e-6`). As PyTorch, a negative `var` is an error, a NaN one is data (NaN loss),
/// and the clamp has no derivative: the gradient with respect to `var` is
/// `½·(1/v - (x - t)²/v²)` at the clamped `v` (not 0) where `var < eps`.
///
/// ```
/// use losskit::{GaussianNll, Reduction};
/// let (x, t, var) = ([1.0f64, 0.0], [0.0f64, 0.0], [1.0f64, 0.0]);
/// let loss = GaussianNll::new().eps(1e-2).loss(&x, &t, &var, Reduction::Sum)?;
/// // 0.5·(ln 1 + 1/1) + 0.5·(ln 0.01 + 0): the zero variance is clamped to eps.
/// assert!((loss - (0.5 + 0.5 * 0.01f64.ln())).abs() < 1e-12);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GaussianNll<T> {
    full: bool,
    eps: T,
}

impl<T: Float> Default for GaussianNll<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> GaussianNll<T> {
    /// PyTorch's defaults: `full = false`, `eps = 1e-6`.
    ///
    /// ```
    /// let g = losskit::GaussianNll::<f32>::new();
    /// # let _ = g;
    /// ```
    pub fn new() -> Self {
        GaussianNll {
            full: false,
            eps: T::from_f64(1e-6),
        }
    }

    /// Add the constant `½·ln 2π` to every element (the full negative log-likelihood).
    ///
    /// ```
    /// use losskit::{GaussianNll, Reduction};
    /// let full = GaussianNll::new().full(true).loss(&[0.0f64], &[0.0], &[1.0], Reduction::Mean)?;
    /// assert!((full - 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn full(mut self, full: bool) -> Self {
        self.full = full;
        self
    }

    /// The floor `var` is clamped to. Must be `>= 0` (checked when the loss is computed;
    /// PyTorch checks nothing, and a NaN `eps` would make every loss NaN).
    ///
    /// ```
    /// use losskit::{GaussianNll, Reduction};
    /// assert!(GaussianNll::new().eps(-1.0f32).loss(&[0.0f32], &[0.0], &[1.0], Reduction::Mean).is_err());
    /// ```
    pub fn eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }

    fn checked_map(&self) -> Result<Pointwise3<T>, LossError> {
        check::non_negative("eps", self.eps)?;
        Ok(Pointwise3::GaussianNll(GaussianMap {
            full: self.full,
            eps: self.eps,
        }))
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// - [`LossError::InvalidParameter`] if `eps` is negative or NaN.
    /// - [`LossError::LengthMismatch`] if `target` or `var` is not as long as `input`.
    /// - [`LossError::Negative`] if an element of `var` is negative.
    ///
    /// ```
    /// use losskit::{GaussianNll, Reduction};
    /// let loss = GaussianNll::new().loss(&[2.0f32], &[0.0], &[4.0], Reduction::Mean)?;
    /// assert!((loss - 0.5 * (4f32.ln() + 1.0)).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        var: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", input.len())?;
        check::same_len("var", var.len(), "input", input.len())?;
        let sum = S::pointwise3_sum(&map, input, target, var);
        if sum.loss.is_nan() {
            // A negative var maps to NaN: only then is var scanned (NaN data also gets here).
            check_var(var)?;
        }
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out` is not as long as
    /// `input`. Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::GaussianNll;
    /// let mut out = [0.0f64; 2];
    /// GaussianNll::new().each(&[1.0, 3.0], &[1.0, 1.0], &[1.0, 1.0], &mut out)?;
    /// assert_eq!(out, [0.0, 2.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        var: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", input.len())?;
        check::same_len("var", var.len(), "input", input.len())?;
        check::same_len("out", out.len(), "input", input.len())?;
        check_var(var)?;
        S::pointwise3_each(&map, input, target, var, out);
        Ok(())
    }

    /// The reduced loss and, in the same pass, its gradients with respect to `input`,
    /// `(x - t)/v`, into `grad_input`, and with respect to `var`, `½·(1/v - (x - t)²/v²)`, into
    /// `grad_var`; both divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad_input` or
    /// `grad_var` is not as long as `input`. Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::{GaussianNll, Reduction};
    /// let (mut gx, mut gv) = ([0.0f64; 1], [0.0f64; 1]);
    /// GaussianNll::new().loss_and_grad(&[3.0], &[1.0], &[2.0], Reduction::Sum, &mut gx, &mut gv)?;
    /// assert_eq!(gx, [1.0]);                  // (3 - 1) / 2
    /// assert_eq!(gv, [0.5 * (0.5 - 4.0 / 4.0)]); // ½(1/2 - 4/4)
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        var: &[S],
        reduction: Reduction,
        grad_input: &mut [S],
        grad_var: &mut [S],
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("target", target.len(), "input", input.len())?;
        check::same_len("var", var.len(), "input", input.len())?;
        check::same_len("grad_input", grad_input.len(), "input", input.len())?;
        check::same_len("grad_var", grad_var.len(), "input", input.len())?;
        check_var(var)?;
        let scale = reduction.grad_scale(input.len());
        let sum = S::pointwise3_sum_and_grad(&map, input, target, var, grad_input, grad_var, scale);
        Ok(sum.finish(sum.weight, reduction))
    }
}

/// PyTorch's `gaussian_nll_loss` with its defaults (`full = false`, `eps = 1e-6`) and one
/// variance per element; reduced. Options: [`GaussianNll`].
///
/// # Errors
/// As [`GaussianNll::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::gaussian_nll(&[1.0f32, 2.0], &[1.0, 0.0], &[1.0, 1.0], Reduction::Mean)?;
/// assert!((loss - 1.0).abs() < 1e-6); // (0 + ½·4) / 2
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn gaussian_nll<S: Storage>(
    input: &[S],
    target: &[S],
    var: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    GaussianNll::new().loss(input, target, var, reduction)
}

/// [`gaussian_nll`] without reduction, into `out`.
///
/// # Errors
/// As [`GaussianNll::each`].
///
/// ```
/// let mut out = [0.0f32; 1];
/// losskit::gaussian_nll_each(&[0.0f32], &[0.0], &[1.0], &mut out)?;
/// assert_eq!(out, [0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn gaussian_nll_each<S: Storage>(
    input: &[S],
    target: &[S],
    var: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    GaussianNll::new().each(input, target, var, out)
}

/// [`gaussian_nll`] and its gradients with respect to `input` and `var` in one pass (see
/// [`GaussianNll::loss_and_grad`]).
///
/// # Errors
/// As [`GaussianNll::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let (mut gx, mut gv) = ([0.0f32; 2], [0.0f32; 2]);
/// losskit::gaussian_nll_and_grad(&[1.0, 0.0], &[0.0, 0.0], &[1.0, 1.0], Reduction::Sum, &mut gx, &mut gv)?;
/// assert_eq!(gx, [1.0, 0.0]);
/// assert_eq!(gv, [0.0, 0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn gaussian_nll_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    var: &[S],
    reduction: Reduction,
    grad_input: &mut [S],
    grad_var: &mut [S],
) -> Result<S::Compute, LossError> {
    GaussianNll::new().loss_and_grad(input, target, var, reduction, grad_input, grad_var)
}
