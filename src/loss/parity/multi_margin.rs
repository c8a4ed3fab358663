//! PyTorch's `multi_margin_loss` over row-major `[rows, classes]` scores and one class label
//! per row: a row's loss is `Σ_{i≠y} w_y·max(0, margin - x_y + x_i)^p / classes`, `p` 1 or 2.
//!
//! A row spec on the row driver. A row's sweep is the flat sweep's loop ([`row_sum`]) over the
//! classes before the label and the classes after it, so the label's own term is never added
//! (not added and subtracted: that would not give PyTorch's exact 0 where every other term is
//! 0), and the error bound is the flat driver's. The hinge argument is computed as PyTorch does,
//! `(margin - x_y) + x_i` in the element type, and a term counts only where it is `> 0`, so a
//! NaN score contributes 0 as in PyTorch's kernel.
//!
//! The gradient is `w_y·scale/classes` times `1` (p = 1) or `2z` (p = 2) where `z > 0`, and
//! minus the sum of those at the label. A gradient call sweeps each row twice: the loss, and the
//! sum of the slopes for the label's element (summed in `f64` like the loss, rounded once).

use core::ops::Range;

use crate::engine::{row_sum, run_rows, LossSum, Map4, Merge, RowSpec, RowsOut};
use crate::loss::cross_entropy::{scored_weight, Label, Labels};
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// The hinge term of one class, `max(0, shift + x)^p` with `shift = margin - x_y`, counted only
/// where the argument is `> 0`; with `SLOPE`, its derivative's factor instead (`1`, or `2z`).
#[derive(Clone, Copy)]
struct Hinge<T, const SQUARED: bool, const SLOPE: bool> {
    shift: T,
}

impl<T: Float, const SQUARED: bool, const SLOPE: bool> Map4<T> for Hinge<T, SQUARED, SLOPE> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, _: V, _: V, _: V) -> V {
        let zero = V::splat(isa, T::ZERO);
        let z = V::splat(isa, self.shift) + x;
        let term = match (SQUARED, SLOPE) {
            (false, false) => z,
            (true, false) => z * z,
            (false, true) => V::splat(isa, T::ONE),
            (true, true) => z + z,
        };
        V::select(zero.lt(z), term, zero)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, u: V) -> (V, V, V) {
        // The row spec writes its own gradient; the flat gradient path never runs this map.
        let zero = V::splat(isa, T::ZERO);
        (self.map(isa, x, y, z, u), zero, zero)
    }
}

/// `Σ hinge(x_i)` over a segment's classes, `y` (if it is in the segment) left out.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn hinge_sum<V, R, M>(isa: V::Isa, x: &[R], skip: Option<usize>, map: M) -> f64
where
    V: Lanes,
    R: Storage<Compute = V::Elem>,
    M: Map4<V::Elem> + Copy,
{
    match skip {
        None => row_sum::<V, R, R, M, R>(isa, x, x, None, map),
        Some(y) => {
            let (before, after) = (&x[..y], &x[y + 1..]);
            row_sum::<V, R, R, M, R>(isa, before, before, None, map)
                + row_sum::<V, R, R, M, R>(isa, after, after, None, map)
        }
    }
}

/// The derivative of the hinge term at the argument `z`: `1` (or `2z` when squared) where
/// `z > 0`, else 0.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn hinge_slope<T: Float, V: Lanes<Elem = T>>(isa: V::Isa, z: V, squared: bool) -> V {
    let zero = V::splat(isa, T::ZERO);
    let slope = if squared {
        z + z
    } else {
        V::splat(isa, T::ONE)
    };
    V::select(zero.lt(z), slope, zero)
}

/// What a sweep of a row gathers: the summed terms, and in a gradient call the summed slopes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MarginSweep {
    loss: f64,
    slope: f64,
}

impl Merge for MarginSweep {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn merge(self, other: MarginSweep) -> MarginSweep {
        MarginSweep {
            loss: self.loss + other.loss,
            slope: self.slope + other.slope,
        }
    }
}

/// PyTorch's `multi_margin_loss`, with its options: `p` (1 or 2), `margin` and per-class
/// weights.
///
/// The input holds scores, `[rows, classes]` row-major, and each row one label in
/// `0..classes`. A row's loss is `Σ_{i≠y} w_y·max(0, margin - x_y + x_i)^p / classes` (the
/// weight of the row's label multiplies after the power, as PyTorch's kernel does);
/// [`Reduction::Mean`] averages the rows. As in PyTorch, a term counts only where its argument
/// is `> 0`, so a NaN score adds nothing.
///
/// ```
/// use losskit::{MultiMargin, Reduction};
/// let scores = [0.1f32, 0.2, 0.4, 0.8, /* row 2 */ 2.0, -1.0, 0.0, 0.5];
/// let loss = MultiMargin::new().loss(&scores, 4, &[3u32, 0], Reduction::Mean)?;
/// // PyTorch's example: row 1 gives (0.3 + 0.4 + 0.6) / 4; row 2 only 0.5 − 2 + 1 < 0 terms.
/// assert!((loss - 0.325 / 2.0).abs() < 1e-6);
/// let squared = MultiMargin::new().p(2).margin(0.5).loss(&scores, 4, &[3u32, 0], Reduction::Sum)?;
/// assert!(squared > 0.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MultiMargin<'w, T> {
    p: u32,
    margin: T,
    weight: Option<&'w [T]>,
}

impl<T: Float> Default for MultiMargin<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A checked multi_margin call: the row spec the engine runs.
pub struct MultiMarginRows<'a, T> {
    rows: usize,
    classes: usize,
    labels: Labels<'a>,
    squared: bool,
    margin: T,
    weight: Option<&'a [T]>,
    /// Whether the call writes a gradient (then a sweep also sums the slopes).
    grad: bool,
}

impl<'w, T: Float> MultiMargin<'w, T> {
    /// PyTorch's defaults: `p = 1`, `margin = 1`, no weights.
    pub fn new() -> Self {
        MultiMargin {
            p: 1,
            margin: T::ONE,
            weight: None,
        }
    }

    /// The power of each hinge term: 1 or 2 (checked when the loss is computed).
    pub fn p(mut self, p: u32) -> Self {
        self.p = p;
        self
    }

    /// The margin (any value, as PyTorch accepts).
    pub fn margin(mut self, margin: T) -> Self {
        self.margin = margin;
        self
    }

    /// Per-class weights (`len == classes`, checked when the loss is computed); a row's terms
    /// are weighted by its label's weight.
    pub fn weight(mut self, weight: &'w [T]) -> Self {
        self.weight = Some(weight);
        self
    }

    fn spec<'a, L: Label>(
        &'a self,
        len: usize,
        classes: usize,
        labels: &'a [L],
        grad: bool,
    ) -> Result<MultiMarginRows<'a, T>, LossError> {
        check::power_one_or_two(self.p)?;
        let rows = check::rows(len, classes, self.weight)?;
        check::same_len("labels", labels.len(), "rows of input", rows)?;
        // No label is ignored: the range check alone (the weight sum is not a divisor here).
        scored_weight::<T, L>(labels, classes, i128::MIN, None)?;
        Ok(MultiMarginRows {
            rows,
            classes,
            labels: L::labels(labels),
            squared: self.p == 2,
            margin: self.margin,
            weight: self.weight,
            grad,
        })
    }

    /// The reduced loss: the rows' losses summed, or averaged for [`Reduction::Mean`] (NaN for
    /// no rows, as PyTorch's mean of nothing).
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] for a `p` other than 1 or 2,
    /// [`LossError::ZeroClasses`], [`LossError::NotMultipleOfClasses`], a
    /// [`LossError::LengthMismatch`] of `labels` (one per row) or of the weights (one per
    /// class), or [`LossError::LabelOutOfRange`].
    ///
    /// ```
    /// use losskit::{MultiMargin, Reduction};
    /// let loss = MultiMargin::new().loss(&[0.0f64, 0.0], 2, &[0i64], Reduction::Sum)?;
    /// assert_eq!(loss, 0.5);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>, L: Label>(
        &self,
        input: &[S],
        classes: usize,
        labels: &[L],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.spec(input.len(), classes, labels, false)?;
        let sum = S::multi_margin_rows(&spec, input, RowsOut::Reduce);
        Ok(sum.finish(spec.rows as f64, reduction))
    }

    /// Each row's loss into `out` (`len == rows`).
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `out`.
    ///
    /// ```
    /// use losskit::MultiMargin;
    /// let mut out = [0.0f32; 2];
    /// MultiMargin::new().each(&[0.0f32, 0.0, 3.0, 0.0], 2, &[1u32, 0], &mut out)?;
    /// assert_eq!(out, [0.5, 0.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>, L: Label>(
        &self,
        input: &[S],
        classes: usize,
        labels: &[L],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.spec(input.len(), classes, labels, false)?;
        check::same_len("out", out.len(), "rows of input", spec.rows)?;
        S::multi_margin_rows(&spec, input, RowsOut::Each(out));
        Ok(())
    }

    /// The reduced loss and its gradient with respect to `input` into `grad` (same length):
    /// `w_y/classes` times 1 (p = 1) or `2z` (p = 2) where the hinge argument `z > 0`, minus
    /// their sum at the label, divided by the rows for [`Reduction::Mean`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `grad`.
    ///
    /// ```
    /// use losskit::{MultiMargin, Reduction};
    /// let mut grad = [0.0f32; 3];
    /// let loss = MultiMargin::new().loss_and_grad(&[0.0f32, 0.5, -2.0], 3, &[1u32], Reduction::Sum, &mut grad)?;
    /// assert_eq!(loss, 0.5 / 3.0);
    /// assert_eq!(grad, [1.0 / 3.0, -1.0 / 3.0, 0.0]);
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
        let spec = self.spec(input.len(), classes, labels, true)?;
        check::same_len("grad", grad.len(), "input", input.len())?;
        let scale = reduction.row_grad_scale(spec.rows as f64);
        let sum = S::multi_margin_rows(&spec, input, RowsOut::Grad(grad, scale));
        Ok(sum.finish(spec.rows as f64, reduction))
    }
}

impl<T: Float> MultiMarginRows<'_, T> {
    /// Runs the rows (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(&self, x: &[S], out: RowsOut<'_, S>) -> LossSum {
        run_rows(self, x, self.rows, self.classes, out)
    }

    /// The sweep of the classes `x` of a row whose label is at `skip` among them (if it is),
    /// the hinge shifted by `shift`: the summed terms, and the summed slopes when `grad`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep_hinges<V: Lanes<Elem = T>, R: Storage<Compute = T>, const SQUARED: bool>(
        &self,
        isa: V::Isa,
        shift: T,
        x: &[R],
        skip: Option<usize>,
    ) -> MarginSweep {
        let loss = hinge_sum::<V, R, _>(isa, x, skip, Hinge::<T, SQUARED, false> { shift });
        let slope = match self.grad {
            true => hinge_sum::<V, R, _>(isa, x, skip, Hinge::<T, SQUARED, true> { shift }),
            false => 0.0,
        };
        MarginSweep { loss, slope }
    }
}

/// What a scored row starts with: its label, `margin - x_y` and `w_y`.
#[derive(Clone, Copy)]
pub(crate) struct MarginRow<T> {
    label: usize,
    shift: T,
    weight: T,
}

/// What a row's gradient needs: its label, `margin - x_y`, the factor `w_y·scale/classes` and
/// the label's element.
#[derive(Clone, Copy)]
pub(crate) struct MarginGrad<T> {
    label: usize,
    shift: T,
    factor: T,
    at_label: T,
}

impl<T: Float, S: Storage<Compute = T>> RowSpec<S> for MultiMarginRows<'_, T> {
    type Row = MarginRow<T>;
    type Sweep = MarginSweep;
    type Grad = MarginGrad<T>;
    type Total = LossSum;
    const SWEEPS: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        row: usize,
        x: &[R],
    ) -> Option<MarginRow<T>> {
        let label = self.labels.get(row) as usize;
        Some(MarginRow {
            label,
            shift: self.margin - x[label].to_compute(),
            weight: self.weight.map_or(T::ONE, |w| w[label]),
        })
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        row: &MarginRow<T>,
        seg: Range<usize>,
        stream: &[R],
        _: &[S],
    ) -> MarginSweep {
        let x = &stream[..seg.len()];
        let skip = seg.contains(&row.label).then(|| row.label - seg.start);
        match self.squared {
            false => self.sweep_hinges::<V, R, false>(isa, row.shift, x, skip),
            true => self.sweep_hinges::<V, R, true>(isa, row.shift, x, skip),
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = T>>(
        &self,
        row: &MarginRow<T>,
        sweep: MarginSweep,
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, MarginGrad<T>) {
        let classes = self.classes as f64;
        let weight = row.weight.to_f64();
        let loss = weight * sweep.loss / classes;
        let factor = weight * scale / classes;
        let grad = MarginGrad {
            label: row.label,
            shift: row.shift,
            factor: T::from_f64(factor),
            at_label: T::from_f64(-factor * sweep.slope),
        };
        (LossSum::unweighted(loss, 1), loss, grad)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        g: &MarginGrad<T>,
        _: Range<usize>,
        src: Option<&[S]>,
        _: &[S],
        dst: &mut [O],
        _: T,
    ) {
        // No closures here: a closure is a function of its own, compiled without the tier's
        // target features, and its vector arguments would go through memory.
        let lanes = V::LANES;
        let n = dst.len();
        let whole = n - n % lanes;
        let (shift, factor) = (V::splat(isa, g.shift), V::splat(isa, g.factor));
        let squared = self.squared;
        let mut at = 0;
        while at < whole {
            let x = match src {
                Some(src) => S::load::<V>(isa, &src[at..]),
                None => O::load::<V>(isa, &dst[at..]),
            };
            O::store(
                hinge_slope(isa, shift + x, squared) * factor,
                &mut dst[at..],
            );
            at += lanes;
        }
        if whole < n {
            let x = match src {
                Some(src) => S::load_prefix::<V>(isa, &src[whole..n], T::ZERO),
                None => O::load_prefix::<V>(isa, &dst[whole..], T::ZERO),
            };
            let d = hinge_slope(isa, shift + x, squared) * factor;
            O::store_prefix(d, &mut dst[whole..]);
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        g: &MarginGrad<T>,
        dst: &mut [O],
        _: T,
    ) {
        dst[g.label] = O::from_compute(g.at_label);
    }
}

/// PyTorch's `multi_margin_loss` with its defaults (`p = 1`, `margin = 1`, no weights), reduced.
/// See [`MultiMargin`] for the options.
///
/// # Errors
/// As [`MultiMargin::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::multi_margin(&[1.0f32, 0.0, 0.0, 1.0], 2, &[0u32, 1], Reduction::Mean)?;
/// assert_eq!(loss, 0.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multi_margin<S: Storage, L: Label>(
    input: &[S],
    classes: usize,
    labels: &[L],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    MultiMargin::new().loss(input, classes, labels, reduction)
}

/// Each row's [`multi_margin`] into `out` (`len == rows`).
///
/// # Errors
/// As [`MultiMargin::each`].
///
/// ```
/// let mut out = [0.0f64; 1];
/// losskit::multi_margin_each(&[0.0f64, 0.0], 2, &[1u32], &mut out)?;
/// assert_eq!(out, [0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multi_margin_each<S: Storage, L: Label>(
    input: &[S],
    classes: usize,
    labels: &[L],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    MultiMargin::new().each(input, classes, labels, out)
}

/// [`multi_margin`] and its gradient with respect to `input` (see
/// [`MultiMargin::loss_and_grad`]).
///
/// # Errors
/// As [`MultiMargin::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// losskit::multi_margin_and_grad(&[0.0f32, 0.0], 2, &[1u32], Reduction::Mean, &mut grad)?;
/// assert_eq!(grad, [0.5, -0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multi_margin_and_grad<S: Storage, L: Label>(
    input: &[S],
    classes: usize,
    labels: &[L],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    MultiMargin::new().loss_and_grad(input, classes, labels, reduction, grad)
}
