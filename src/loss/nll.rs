//! Negative log-likelihood over row-major `[rows, classes]` log-probabilities: PyTorch's
//! `F.nll_loss`, with class weights and `ignore_index`.
//!
//! A row's loss is `-w_y · x_y`, one element read per row, so there is nothing to vectorise:
//! the rows are cut into [`CHUNK`]-row leaves of the driver's fixed tree (parallel from two
//! leaves on), each summing its rows' losses in `f64` in order, so results are bit-identical
//! for any thread count. The gradient writes `-scale · w_y` at the target and 0 elsewhere.

use crate::float::sealed::Sealed as _;
use crate::loss::cross_entropy::{finish, scored_weight, Label};
use crate::reduce::{tree_reduce, CHUNK};
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

/// A checked nll computation.
struct Job<'a, S: Storage, L> {
    input: &'a [S],
    classes: usize,
    labels: &'a [L],
    ignore: i128,
    weight: Option<&'a [S::Compute]>,
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

    fn job<'a, S: Storage<Compute = T>, L: Label>(
        &'a self,
        input: &'a [S],
        classes: usize,
        labels: &'a [L],
    ) -> Result<Job<'a, S, L>, LossError> {
        let rows = check::rows(input.len(), classes, self.weight)?;
        check::same_len("labels", labels.len(), "rows of input", rows)?;
        let ignore = self.ignore_index as i128;
        let divisor = scored_weight(labels, classes, ignore, self.weight)?;
        Ok(Job {
            input,
            classes,
            labels,
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
        let job = self.job(input, classes, labels)?;
        Ok(finish(job.sweep(Out::None), job.divisor, reduction))
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
        let job = self.job(input, classes, labels)?;
        check::same_len("out", out.len(), "rows of input", labels.len())?;
        job.sweep(Out::Rows(out));
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
        let job = self.job(input, classes, labels)?;
        check::same_len("grad", grad.len(), "input", input.len())?;
        let scale = match reduction {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / job.divisor,
        };
        Ok(finish(
            job.sweep(Out::Grad(grad, scale)),
            job.divisor,
            reduction,
        ))
    }
}

/// What a sweep writes besides the sum.
enum Out<'a, S: Storage> {
    None,
    Rows(&'a mut [S::Compute]),
    Grad(&'a mut [S], f64),
}

impl<S: Storage, L: Label> Job<'_, S, L> {
    /// The loss of row `r` (0 and weight 0 when ignored), and its target class if scored.
    #[inline]
    fn row(&self, r: usize) -> (S::Compute, Option<(usize, f64)>) {
        let label = self.labels[r].to_i128();
        if label == self.ignore {
            return (S::Compute::ZERO, None);
        }
        let y = label as usize;
        let w = self.weight.map_or(S::Compute::ONE, |w| w[y]);
        // As PyTorch: the product in the element type, then negated.
        let x = self.input[r * self.classes + y].to_compute();
        (-(w * x), Some((y, w.to_f64())))
    }

    /// `Σ` of the row losses in the fixed tree, writing what `out` asks for.
    fn sweep(&self, out: Out<'_, S>) -> f64 {
        let rows = self.labels.len();
        let c = self.classes;
        let chunks = rows.div_ceil(CHUNK);
        let parallel = chunks >= 2;
        let sum_rows =
            |range: core::ops::Range<usize>| -> f64 { range.map(|r| self.row(r).0.to_f64()).sum() };
        let range = |i: usize| i * CHUNK..rows.min((i + 1) * CHUNK);
        let total = match out {
            Out::None => tree_reduce(chunks, parallel, None::<&mut [S]>, 0, &|i, _| {
                sum_rows(range(i))
            }),
            Out::Rows(out) => tree_reduce(chunks, parallel, Some(out), CHUNK, &|i, o| {
                let o = o.unwrap_or_default();
                let mut sum = 0.0;
                for (r, o) in range(i).zip(o.iter_mut()) {
                    let (loss, _) = self.row(r);
                    *o = loss;
                    sum += loss.to_f64();
                }
                sum
            }),
            Out::Grad(grad, scale) => {
                tree_reduce(chunks, parallel, Some(grad), CHUNK * c, &|i, g| {
                    let g = g.unwrap_or_default();
                    g.fill(S::from_compute(S::Compute::ZERO));
                    let mut sum = 0.0;
                    for (k, r) in range(i).enumerate() {
                        let (loss, target) = self.row(r);
                        if let Some((y, w)) = target {
                            g[k * c + y] = S::from_compute(S::Compute::from_f64(-w * scale));
                        }
                        sum += loss.to_f64();
                    }
                    sum
                })
            }
        };
        total.unwrap_or(0.0)
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
