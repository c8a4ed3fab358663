//! PyTorch's `margin_ranking_loss`: [`margin_ranking`] and the [`MarginRanking`] builder, on
//! three inputs (x1, x2, y).

use crate::engine::Map3;
use crate::loss::Pointwise3;
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `max(0, -y·(x1 - x2) + margin)`, written in PyTorch's order. The second derivative is with
/// respect to `x2`.
#[derive(Clone, Copy, Debug)]
pub struct RankingMap<T> {
    margin: T,
}

impl<T: Float> RankingMap<T> {
    /// The hinge's argument.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn arg<V: Lanes<Elem = T>>(&self, isa: V::Isa, x1: V, x2: V, y: V) -> V {
        // Separate multiply and add (no fma), as PyTorch's `-target * (x1 - x2) + margin`.
        (-y) * (x1 - x2) + V::splat(isa, self.margin)
    }
}

impl<T: Float> Map3<T> for RankingMap<T> {
    const GRAD2: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x1: V, x2: V, y: V) -> V {
        // The constant first: x86 `max` returns its second operand for NaN, as clamp_min does.
        V::splat(isa, T::ZERO).max(self.arg(isa, x1, x2, y))
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x1: V, x2: V, y: V) -> (V, V, V) {
        let zero = V::splat(isa, T::ZERO);
        let arg = self.arg(isa, x1, x2, y);
        // Slope -y for x1 (y for x2) strictly inside the hinge, 0 at the kink and beyond, as
        // PyTorch's; NaN where the argument is NaN.
        let d1 = V::select(zero.lt(arg), -y, zero);
        let d1 = V::select(arg.is_nan(), arg, d1);
        (zero.max(arg), d1, -d1)
    }
}

/// PyTorch's `margin_ranking_loss` as a builder: `max(0, -y·(x1 - x2) + margin)` with
/// `margin` (default 0, PyTorch's). The target `y` is ±1 by meaning, not checked (PyTorch
/// does not). The margin must be finite: PyTorch accepts any, but an infinite or NaN margin
/// makes every element infinite or NaN, so it is rejected as the mistake it is.
///
/// ```
/// use losskit::{MarginRanking, Reduction};
/// let loss = MarginRanking::new().margin(0.5).loss(&[1.0f32, 0.0], &[0.0, 1.0], &[1.0, 1.0], Reduction::Sum)?;
/// assert_eq!(loss, 0.0 + 1.5);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MarginRanking<T> {
    margin: T,
}

impl<T: Float> Default for MarginRanking<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> MarginRanking<T> {
    /// PyTorch's default: `margin = 0`.
    ///
    /// ```
    /// let r = losskit::MarginRanking::<f64>::new();
    /// # let _ = r;
    /// ```
    pub fn new() -> Self {
        MarginRanking { margin: T::ZERO }
    }

    /// The margin (finite; checked when the loss is computed).
    ///
    /// ```
    /// use losskit::{MarginRanking, Reduction};
    /// assert!(MarginRanking::new().margin(f32::NAN).loss(&[0.0f32], &[0.0], &[1.0], Reduction::Sum).is_err());
    /// ```
    pub fn margin(mut self, margin: T) -> Self {
        self.margin = margin;
        self
    }

    fn checked_map(&self) -> Result<Pointwise3<T>, LossError> {
        check::finite("margin", self.margin)?;
        Ok(Pointwise3::MarginRanking(RankingMap {
            margin: self.margin,
        }))
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// - [`LossError::InvalidParameter`] if `margin` is infinite or NaN.
    /// - [`LossError::LengthMismatch`] if `x2` or `y` is not as long as `x1`.
    ///
    /// ```
    /// use losskit::{MarginRanking, Reduction};
    /// let loss = MarginRanking::new().loss(&[2.0f64, 0.0], &[0.0, 2.0], &[1.0, 1.0], Reduction::Mean)?;
    /// assert_eq!(loss, 1.0); // (0 + 2) / 2
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &[S],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("x2", x2.len(), "x1", x1.len())?;
        check::same_len("y", y.len(), "x1", x1.len())?;
        let sum = S::pointwise3_sum(&map, x1, x2, y);
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The loss of every element, into `out`.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out` is not as long as
    /// `x1`.
    ///
    /// ```
    /// use losskit::MarginRanking;
    /// let mut out = [0.0f32; 2];
    /// MarginRanking::new().margin(1.0).each(&[0.0f32, 3.0], &[0.0, 0.0], &[1.0, 1.0], &mut out)?;
    /// assert_eq!(out, [1.0, 0.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &[S],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let map = self.checked_map()?;
        check::same_len("x2", x2.len(), "x1", x1.len())?;
        check::same_len("y", y.len(), "x1", x1.len())?;
        check::same_len("out", out.len(), "x1", x1.len())?;
        S::pointwise3_each(&map, x1, x2, y, out);
        Ok(())
    }

    /// The reduced loss and, in the same pass, its gradients: `-y` into `grad_x1` and `y` into
    /// `grad_x2` where the hinge is active (`-y·(x1 - x2) + margin > 0`), 0 elsewhere and at
    /// the kink (as PyTorch); divided by the length for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad_x1` or `grad_x2` is
    /// not as long as `x1`.
    ///
    /// ```
    /// use losskit::{MarginRanking, Reduction};
    /// let (mut g1, mut g2) = ([0.0f64; 2], [0.0f64; 2]);
    /// MarginRanking::new().loss_and_grad(&[0.0, 1.0], &[1.0, 0.0], &[1.0, 1.0], Reduction::Sum, &mut g1, &mut g2)?;
    /// assert_eq!((g1, g2), ([-1.0, 0.0], [1.0, 0.0]));
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &[S],
        reduction: Reduction,
        grad_x1: &mut [S],
        grad_x2: &mut [S],
    ) -> Result<T, LossError> {
        let map = self.checked_map()?;
        check::same_len("x2", x2.len(), "x1", x1.len())?;
        check::same_len("y", y.len(), "x1", x1.len())?;
        check::same_len("grad_x1", grad_x1.len(), "x1", x1.len())?;
        check::same_len("grad_x2", grad_x2.len(), "x1", x1.len())?;
        let scale = reduction.grad_scale(x1.len());
        let sum = S::pointwise3_sum_and_grad(&map, x1, x2, y, grad_x1, grad_x2, scale);
        Ok(sum.finish(sum.weight, reduction))
    }
}

/// PyTorch's `margin_ranking_loss`: `max(0, -y·(x1 - x2) + margin)` with `y` = ±1 (1: `x1`
/// should rank higher); reduced. As [`MarginRanking`] with `margin`.
///
/// # Errors
/// As [`MarginRanking::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::margin_ranking(&[1.0f32, 1.0], &[0.0, 0.0], &[1.0, -1.0], 0.5, Reduction::Sum)?;
/// assert_eq!(loss, 0.0 + 1.5);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn margin_ranking<S: Storage>(
    x1: &[S],
    x2: &[S],
    y: &[S],
    margin: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    MarginRanking::new()
        .margin(margin)
        .loss(x1, x2, y, reduction)
}

/// [`margin_ranking`] without reduction, into `out`.
///
/// # Errors
/// As [`MarginRanking::each`].
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::margin_ranking_each(&[0.0, 0.0], &[0.25, 0.25], &[1.0, -1.0], 0.0, &mut out)?;
/// assert_eq!(out, [0.25, 0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn margin_ranking_each<S: Storage>(
    x1: &[S],
    x2: &[S],
    y: &[S],
    margin: S::Compute,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    MarginRanking::new().margin(margin).each(x1, x2, y, out)
}

/// [`margin_ranking`] and its gradients with respect to `x1` and `x2` in one pass (see
/// [`MarginRanking::loss_and_grad`]).
///
/// # Errors
/// As [`MarginRanking::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let (mut g1, mut g2) = ([0.0f32; 2], [0.0f32; 2]);
/// losskit::margin_ranking_and_grad(&[0.0, 0.0], &[0.0, 0.0], &[1.0, -1.0], 1.0, Reduction::Mean, &mut g1, &mut g2)?;
/// assert_eq!((g1, g2), ([-0.5, 0.5], [0.5, -0.5]));
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn margin_ranking_and_grad<S: Storage>(
    x1: &[S],
    x2: &[S],
    y: &[S],
    margin: S::Compute,
    reduction: Reduction,
    grad_x1: &mut [S],
    grad_x2: &mut [S],
) -> Result<S::Compute, LossError> {
    MarginRanking::new()
        .margin(margin)
        .loss_and_grad(x1, x2, y, reduction, grad_x1, grad_x2)
}
