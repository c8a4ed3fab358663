//! PyTorch's `multilabel_soft_margin_loss` over row-major `[rows, classes]` logits and 0/1 (or
//! soft) targets, with optional per-class weights: a row's loss is the mean over its classes
//! of `-w_c·(t·log σ(x) + (1 - t)·log σ(-x))`, which is `w_c·bce_with_logits(x, t)` — computed
//! in bce_with_logits's stable form.
//!
//! A paired row spec on the row driver (the targets are the second matrix): a row's sweep is
//! the flat sweep's loop over the row ([`row_sum`]), so its error bound is the flat driver's;
//! the gradient `w_c·(σ(x) - t)/classes` (times the reduction's scale) is written per element.

use core::ops::Range;

use crate::engine::{row_sum, run_rows2, LossSum, Map4, RowSpec, RowsOut};
use crate::loss::binary::{bce_with_logits_grad_lanes, bce_with_logits_lanes};
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `w·bce_with_logits(x, t)`, the weight the third input (the fourth is unused).
#[derive(Clone, Copy)]
struct WeightedSoftMargin;

impl<T: Float> Map4<T> for WeightedSoftMargin {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, w: V, _: V) -> V {
        bce_with_logits_lanes(isa, x, t, V::splat(isa, T::ONE)) * w
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, t: V, w: V, _: V) -> (V, V, V) {
        let (loss, d) = bce_with_logits_grad_lanes(isa, x, t, V::splat(isa, T::ONE));
        let d = d * w;
        (loss * w, d, d)
    }
}

/// PyTorch's `multilabel_soft_margin_loss`, with its option: per-class weights.
///
/// The input holds logits and the target the labels (0 or 1; values between are taken as
/// soft labels, as PyTorch does), both `[rows, classes]` row-major. A row's loss is
/// `Σ_c w_c·bce_with_logits(x_c, t_c) / classes`; [`Reduction::Mean`] averages the rows.
///
/// ```
/// use losskit::{MultilabelSoftMargin, Reduction};
/// let logits = [2.0f32, -1.0, 0.5, /* row 2 */ -0.5, 1.5, 0.0];
/// let target = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
/// let weight = [1.0f32, 1.0, 3.0];
/// let plain = losskit::multilabel_soft_margin(&logits, &target, 3, Reduction::Mean)?;
/// let weighted = MultilabelSoftMargin::new().weight(&weight).loss(&logits, &target, 3, Reduction::Mean)?;
/// assert!(weighted > plain);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MultilabelSoftMargin<'w, T> {
    weight: Option<&'w [T]>,
}

impl<T: Float> Default for MultilabelSoftMargin<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A checked call: the row spec the engine runs.
pub struct MultilabelSoftMarginRows<'a, T> {
    rows: usize,
    classes: usize,
    weight: Option<&'a [T]>,
}

impl<'w, T: Float> MultilabelSoftMargin<'w, T> {
    /// PyTorch's default: no weights.
    pub fn new() -> Self {
        MultilabelSoftMargin { weight: None }
    }

    /// Per-class weights (`len == classes`, checked when the loss is computed).
    pub fn weight(mut self, weight: &'w [T]) -> Self {
        self.weight = Some(weight);
        self
    }

    fn spec(
        &self,
        len: usize,
        target: usize,
        classes: usize,
    ) -> Result<MultilabelSoftMarginRows<'w, T>, LossError> {
        let rows = check::rows(len, classes, self.weight)?;
        check::same_len("target", target, "input", len)?;
        Ok(MultilabelSoftMarginRows {
            rows,
            classes,
            weight: self.weight,
        })
    }

    /// The reduced loss: the rows' losses summed, or averaged for [`Reduction::Mean`] (NaN for
    /// no rows, as PyTorch's mean of nothing).
    ///
    /// # Errors
    /// [`LossError::ZeroClasses`], [`LossError::NotMultipleOfClasses`], or a
    /// [`LossError::LengthMismatch`] of `target` (as long as `input`) or of the weights (one
    /// per class).
    ///
    /// ```
    /// use losskit::{MultilabelSoftMargin, Reduction};
    /// let loss = MultilabelSoftMargin::new().loss(&[0.0f64, 0.0], &[1.0, 0.0], 2, Reduction::Sum)?;
    /// assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        classes: usize,
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.spec(input.len(), target.len(), classes)?;
        let sum = S::multilabel_soft_margin_rows(&spec, input, target, RowsOut::Reduce);
        Ok(sum.finish(spec.rows as f64, reduction))
    }

    /// Each row's loss into `out` (`len == rows`).
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `out`.
    ///
    /// ```
    /// use losskit::MultilabelSoftMargin;
    /// let mut out = [0.0f32; 2];
    /// MultilabelSoftMargin::new().each(&[0.0f32, 0.0, 0.0, 0.0], &[1.0, 0.0, 0.0, 1.0], 2, &mut out)?;
    /// assert!((out[0] - std::f32::consts::LN_2).abs() < 1e-6 && out[0] == out[1]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        classes: usize,
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.spec(input.len(), target.len(), classes)?;
        check::same_len("out", out.len(), "rows of input", spec.rows)?;
        S::multilabel_soft_margin_rows(&spec, input, target, RowsOut::Each(out));
        Ok(())
    }

    /// The reduced loss and its gradient with respect to `input` into `grad` (same length):
    /// `w_c·(σ(x) - t)/classes`, divided by the rows for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `grad`.
    ///
    /// ```
    /// use losskit::{MultilabelSoftMargin, Reduction};
    /// let mut grad = [0.0f32; 2];
    /// MultilabelSoftMargin::new().loss_and_grad(&[0.0f32, 0.0], &[1.0, 0.0], 2, Reduction::Sum, &mut grad)?;
    /// assert_eq!(grad, [-0.25, 0.25]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        input: &[S],
        target: &[S],
        classes: usize,
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let spec = self.spec(input.len(), target.len(), classes)?;
        check::same_len("grad", grad.len(), "input", input.len())?;
        let scale = reduction.row_grad_scale(spec.rows as f64);
        let out = RowsOut::Grad(grad, scale);
        let sum = S::multilabel_soft_margin_rows(&spec, input, target, out);
        Ok(sum.finish(spec.rows as f64, reduction))
    }
}

impl<T: Float + Storage<Compute = T>> MultilabelSoftMarginRows<'_, T> {
    /// Runs the rows (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(
        &self,
        x: &[S],
        y: &[S],
        out: RowsOut<'_, S>,
    ) -> LossSum {
        run_rows2(self, x, y, self.rows, self.classes, out)
    }
}

impl<T: Float + Storage<Compute = T>, S: Storage<Compute = T>> RowSpec<S>
    for MultilabelSoftMarginRows<'_, T>
{
    type Row = ();
    /// The segment's `Σ w_c·bce_with_logits(x_c, t_c)` (in `loss`).
    type Sweep = LossSum;
    /// The gradient's factor `scale / classes`.
    type Grad = T;
    type Total = LossSum;
    const SWEEPS: bool = true;
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        _: usize,
        _: &[R],
    ) -> Option<()> {
        Some(())
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        _: &(),
        seg: Range<usize>,
        stream: &[R],
        other: &[S],
    ) -> LossSum {
        let n = seg.len();
        let weight = self.weight.map(|w| &w[seg]);
        let (x, t) = (&stream[..n], &other[..n]);
        let loss = row_sum::<V, S, R, _, T>(isa, x, t, weight, WeightedSoftMargin);
        LossSum {
            loss,
            weight: 0.0,
            count: 0,
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = T>>(
        &self,
        _: &(),
        sweep: LossSum,
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, T) {
        let classes = self.classes as f64;
        let loss = sweep.loss / classes;
        (
            LossSum::unweighted(loss, 1),
            loss,
            T::from_f64(scale / classes),
        )
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        &factor: &T,
        seg: Range<usize>,
        src: Option<&[S]>,
        other: &[S],
        dst: &mut [O],
        _: T,
    ) {
        // No closures here: a closure is a function of its own, compiled without the tier's
        // target features, and its vector arguments would go through memory.
        let lanes = V::LANES;
        let n = dst.len();
        let whole = n - n % lanes;
        let (one, factor) = (V::splat(isa, T::ONE), V::splat(isa, factor));
        let weight = self.weight.map(|w| &w[seg]);
        let mut at = 0;
        while at < whole {
            let x = match src {
                Some(src) => S::load::<V>(isa, &src[at..]),
                None => O::load::<V>(isa, &dst[at..]),
            };
            let w = match weight {
                Some(w) => T::load::<V>(isa, &w[at..]),
                None => one,
            };
            let (_, d) = bce_with_logits_grad_lanes(isa, x, S::load::<V>(isa, &other[at..]), one);
            O::store(d * w * factor, &mut dst[at..]);
            at += lanes;
        }
        if whole < n {
            let zero = T::ZERO;
            let x = match src {
                Some(src) => S::load_prefix::<V>(isa, &src[whole..n], zero),
                None => O::load_prefix::<V>(isa, &dst[whole..], zero),
            };
            let w = match weight {
                Some(w) => T::load_prefix::<V>(isa, &w[whole..n], zero),
                None => one,
            };
            let t = S::load_prefix::<V>(isa, &other[whole..n], zero);
            let (_, d) = bce_with_logits_grad_lanes(isa, x, t, one);
            O::store_prefix(d * w * factor, &mut dst[whole..]);
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        _: &T,
        _: &mut [O],
        _: T,
    ) {
    }
}

/// PyTorch's `multilabel_soft_margin_loss` with its defaults (no weights), reduced. See
/// [`MultilabelSoftMargin`] for weights.
///
/// # Errors
/// As [`MultilabelSoftMargin::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::multilabel_soft_margin(&[0.0f32, 0.0], &[1.0, 1.0], 2, Reduction::Mean)?;
/// assert!((loss - std::f32::consts::LN_2).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multilabel_soft_margin<S: Storage>(
    input: &[S],
    target: &[S],
    classes: usize,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    MultilabelSoftMargin::new().loss(input, target, classes, reduction)
}

/// Each row's [`multilabel_soft_margin`] into `out` (`len == rows`).
///
/// # Errors
/// As [`MultilabelSoftMargin::each`].
///
/// ```
/// let mut out = [0.0f64; 1];
/// losskit::multilabel_soft_margin_each(&[0.0f64, 0.0], &[1.0, 1.0], 2, &mut out)?;
/// assert!((out[0] - std::f64::consts::LN_2).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multilabel_soft_margin_each<S: Storage>(
    input: &[S],
    target: &[S],
    classes: usize,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    MultilabelSoftMargin::new().each(input, target, classes, out)
}

/// [`multilabel_soft_margin`] and its gradient with respect to `input` (see
/// [`MultilabelSoftMargin::loss_and_grad`]).
///
/// # Errors
/// As [`MultilabelSoftMargin::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// losskit::multilabel_soft_margin_and_grad(&[0.0f32, 0.0], &[1.0, 1.0], 2, Reduction::Mean, &mut grad)?;
/// assert_eq!(grad, [-0.25, -0.25]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multilabel_soft_margin_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    classes: usize,
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    MultilabelSoftMargin::new().loss_and_grad(input, target, classes, reduction, grad)
}
