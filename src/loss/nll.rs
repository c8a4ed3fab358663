//! Negative log-likelihood over row-major `[rows, classes]` log-probabilities: PyTorch's
//! `F.nll_loss`, with class weights and `ignore_index`.
//!
//! A row spec on the engine's row driver that reads one element per row (`SWEEPS = false`):
//! a row's loss is `-w_y · x_y`, its gradient `-scale · w_y` at the target and 0 elsewhere.

use crate::engine::{run_rows, LossSum, RowSpec, RowsOut};
use crate::loss::cross_entropy::{scored_weight, Label, Labels};
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// Negative log-likelihood with options: class weights and an ignored label.
///
/// A plain `Clone` builder with PyTorch's defaults: no weights, `ignore_index = -100`. The input
/// holds log-probabilities (for example a `log_softmax`), `[rows, classes]` row-major.
///
/// ```
/// use losskit::{Nll, Reduction};
/// let log_probs = [-0.5f32, -1.0, -2.0, /* row 2 */ -3.0, -0.25, -1.5];
/// let weights = [1.0f32, 2.0, 0.5];
/// let loss = Nll::new().weight(&weights).loss(&log_probs, 3, &[0i64, 1], Reduction::Mean)?;
/// assert_eq!(loss, (0.5 * 1.0 + 0.25 * 2.0) / 3.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Nll<'w, T> {
    weight: Option<&'w [T]>,
    ignore_index: i64,
}

impl<T: Float> Default for Nll<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A checked nll call: the row spec the engine runs.
pub struct NllRows<'a, T> {
    rows: usize,
    classes: usize,
    labels: Labels<'a>,
    ignore: i128,
    weight: Option<&'a [T]>,
    /// What [`Reduction::Mean`] divides by: the summed weights of the scored rows.
    divisor: f64,
}

impl<'w, T: Float> Nll<'w, T> {
    /// PyTorch's defaults: no class weights, `ignore_index = -100`.
    pub fn new() -> Self {
        Nll {
            weight: None,
            ignore_index: -100,
        }
    }

    /// Per-class weights (`len == classes`, checked when the loss is computed).
    pub fn weight(mut self, weight: &'w [T]) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Rows whose label equals `index` contribute nothing (0 in `each`, gradient 0).
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = index;
        self
    }

    fn spec<'a, L: Label>(
        &'a self,
        len: usize,
        classes: usize,
        labels: &'a [L],
    ) -> Result<NllRows<'a, T>, LossError> {
        let rows = check::rows(len, classes, self.weight)?;
        check::same_len("labels", labels.len(), "rows of input", rows)?;
        let ignore = self.ignore_index as i128;
        let divisor = scored_weight(labels, classes, ignore, self.weight)?;
        Ok(NllRows {
            rows,
            classes,
            labels: L::labels(labels),
            ignore,
            weight: self.weight,
            divisor,
        })
    }

    /// The reduced loss: `Σ -w_y · x_y` over the scored rows; [`Reduction::Mean`] divides by
    /// their summed weights (NaN when every row is ignored).
    ///
    /// # Errors
    /// [`LossError::ZeroClasses`], [`LossError::NotMultipleOfClasses`], a
    /// [`LossError::LengthMismatch`] of `labels` (one per row) or of the weights (one per
    /// class), or [`LossError::LabelOutOfRange`].
    ///
    /// ```
    /// use losskit::{Nll, Reduction};
    /// let all_ignored = Nll::new().loss(&[-1.0f64, -2.0], 2, &[-100i32], Reduction::Mean)?;
    /// assert!(all_ignored.is_nan());
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>, L: Label>(
        &self,
        input: &[S],
        classes: usize,
        labels: &[L],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.spec(input.len(), classes, labels)?;
        Ok(S::nll_rows(&spec, input, RowsOut::Reduce).finish(spec.divisor, reduction))
    }

    /// Each row's loss into `out` (`len == rows`; 0 for ignored rows).
    ///
    /// # Errors
    /// As [`Nll::loss`], and a [`LossError::LengthMismatch`] of `out`.
    ///
    /// ```
    /// let mut out = [0.0f32; 2];
    /// losskit::Nll::new().each(&[-0.5f32, -1.5, -2.0, -0.1], 2, &[1u32, 0], &mut out)?;
    /// assert_eq!(out, [1.5, 2.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>, L: Label>(
        &self,
        input: &[S],
        classes: usize,
        labels: &[L],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.spec(input.len(), classes, labels)?;
        check::same_len("out", out.len(), "rows of input", labels.len())?;
        S::nll_rows(&spec, input, RowsOut::Each(out));
        Ok(())
    }

    /// The reduced loss and its gradient with respect to `input` into `grad` (same length):
    /// `-w_y` (divided by the summed weights for [`Reduction::Mean`]) at each scored row's
    /// label, 0 elsewhere.
    ///
    /// # Errors
    /// As [`Nll::loss`], and a [`LossError::LengthMismatch`] of `grad`.
    ///
    /// ```
    /// use losskit::{Nll, Reduction};
    /// let mut grad = [9.0f32; 4];
    /// let loss = Nll::new().loss_and_grad(&[-0.5f32, -1.5, -2.0, -0.1], 2, &[1i64, 0], Reduction::Mean, &mut grad)?;
    /// assert_eq!(loss, 1.75);
    /// assert_eq!(grad, [0.0, -0.5, -0.5, 0.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>, L: Label>(
        &self,
        input: &[S],
        classes: usize,
        labels: &[L],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let spec = self.spec(input.len(), classes, labels)?;
        check::same_len("grad", grad.len(), "input", input.len())?;
        let scale = reduction.row_grad_scale(spec.divisor);
        let sum = S::nll_rows(&spec, input, RowsOut::Grad(grad, scale));
        Ok(sum.finish(spec.divisor, reduction))
    }
}

impl<T: Float> NllRows<'_, T> {
    /// Runs the rows (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(&self, x: &[S], out: RowsOut<'_, S>) -> LossSum {
        run_rows(self, x, self.rows, self.classes, out)
    }
}

impl<T: Float, S: Storage<Compute = T>> RowSpec<S> for NllRows<'_, T> {
    /// The target class and its weight.
    type Row = (usize, T);
    type Sweep = ();
    /// The target class and its gradient, `-w_y · scale`.
    type Grad = (usize, f64);
    type Total = LossSum;
    const SWEEPS: bool = false;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        row: usize,
        _: &[R],
    ) -> Option<(usize, T)> {
        let label = self.labels.get(row);
        (label != self.ignore).then(|| {
            let y = label as usize;
            (y, self.weight.map_or(T::ONE, |w| w[y]))
        })
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = T>>(
        &self,
        &(y, w): &(usize, T),
        _: (),
        x: &[R],
        scale: f64,
    ) -> (LossSum, f64, (usize, f64)) {
        // As PyTorch: the product in the element type, then negated.
        let loss = (-(w * x[y].to_compute())).to_f64();
        let total = LossSum {
            loss,
            weight: w.to_f64(),
            count: 1,
        };
        (total, loss, (y, -w.to_f64() * scale))
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        &(y, g): &(usize, f64),
        dst: &mut [O],
        _: T,
    ) {
        dst[y] = O::from_compute(T::from_f64(g));
    }
}

/// Mean (or summed) negative log-likelihood with PyTorch's defaults (`ignore_index = -100`, no
/// weights): `-x[row, label]` per row. See [`Nll`] for options and the `each` and gradient
/// forms.
///
/// # Errors
/// As [`Nll::loss`].
///
/// ```
/// use losskit::Reduction;
/// let log_probs = [-0.5f64, -1.0, -2.0, -3.0];
/// assert_eq!(losskit::nll(&log_probs, 2, &[1usize, 0], Reduction::Sum)?, 3.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn nll<S: Storage, L: Label>(
    input: &[S],
    classes: usize,
    labels: &[L],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    Nll::new().loss(input, classes, labels, reduction)
}
