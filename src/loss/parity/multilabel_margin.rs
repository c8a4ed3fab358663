//! PyTorch's `multilabel_margin_loss` over row-major `[rows, classes]` scores and a target
//! matrix of the same shape holding each row's target classes as indices, ended by the first
//! `-1` (entries after it are ignored): a row's loss is
//! `Σ_{j∈T} Σ_{i∉T} max(0, 1 - x_j + x_i) / classes`.
//!
//! A row spec on the row driver; its `Row` is the row's index and the spec holds the input and
//! the targets. The classes are taken in windows of [`WINDOW`]: a window's *keep mask* (0 for a
//! class that is not a target, `-inf` for one that is, built from the row's target list) is the
//! second stream of the flat sweep's loop ([`row_sum`]), run once per target over the window,
//! so a target class's term is never added (PyTorch's exact 0 where every other term is 0, and
//! an infinite or NaN target score adds nothing there) and the error bound is the flat
//! driver's. The hinge argument is computed as PyTorch does, `(1 - x_j) + x_i` in the element
//! type (adding the mask's 0 changes no bits), and a term counts only where it is `> 0`.
//!
//! The work is `targets · classes` per row, as in PyTorch's kernel. The mask is built per
//! window from the target list (`O(targets)` a window), so no per-call buffer is needed.
//!
//! The gradient of a class that is not a target is `scale/classes` times the number of targets
//! whose hinge with it is active (counted exactly, rounded once); a target class's is minus
//! `scale/classes` times the number of active hinges of its target (counted over the row in
//! `f64`, rounded once; a target listed twice counts twice, as in PyTorch, and its gradient is
//! rounded once per listing). A gradient call sweeps each row three times: the loss, the counts
//! of the classes and the counts of the targets.

use core::mem::size_of;
use core::ops::Range;

use crate::engine::{row_sum, run_rows, LossSum, Map4, RowSpec, RowsOut};
use crate::float::sealed::Sealed as _;
use crate::loss::cross_entropy::{Label, Labels};
use crate::simd::Lanes;
use crate::storage::sealed::Sealed as _;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// Classes per window: the keep mask (and in the gradient the counts) of one window live on
/// the stack, at most 8 KiB each for `f64`.
const WINDOW: usize = 1024;

/// How much of the next row a row's sweep prefetches (all of it, for rows up to 16 KiB).
const PREFETCH_BYTES: usize = 16 * 1024;

/// Targets whose sums the target gradient gathers in one pass over the row's windows.
const TARGET_BLOCK: usize = 256;

/// The hinge term `max(0, shift + x + keep)` with `shift = 1 - x_j` (or with `SLOPE`, its
/// derivative `1`), counted only where the argument is `> 0`; `keep` is the mask (second
/// stream): 0 keeps the class, `-inf` drops it.
#[derive(Clone, Copy)]
struct MaskedHinge<T, const SLOPE: bool> {
    shift: T,
}

impl<T: Float, const SLOPE: bool> Map4<T> for MaskedHinge<T, SLOPE> {
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, keep: V, _: V, _: V) -> V {
        let zero = V::splat(isa, T::ZERO);
        let z = (V::splat(isa, self.shift) + x) + keep;
        let term = match SLOPE {
            false => z,
            true => V::splat(isa, T::ONE),
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

/// The number of targets of a row: its entries before the first negative one.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn target_count(targets: &Labels<'_>, row: Range<usize>) -> usize {
    let len = row.len();
    (0..len)
        .find(|&j| targets.get(row.start + j) < 0)
        .unwrap_or(len)
}

/// PyTorch's `multilabel_margin_loss` of scores `[rows, classes]` and a target matrix of the
/// same shape, reduced: the rows' losses summed, or averaged for [`Reduction::Mean`] (NaN for
/// no rows, as PyTorch's mean of nothing).
///
/// Row `r`'s targets are `target[r·classes..]` up to the first `-1` (so a row of `classes`
/// targets has no `-1`; entries after the first `-1` are ignored, but must still be in range,
/// as PyTorch checks). A row's loss is `Σ_{j∈T} Σ_{i∉T} max(0, 1 - x_j + x_i) / classes`: no
/// targets, or every class a target, gives 0. A target listed twice counts twice, as in
/// PyTorch. Unsigned target types cannot hold the `-1`: every entry of their rows is a target.
///
/// # Errors
/// [`LossError::ZeroClasses`], [`LossError::NotMultipleOfClasses`], a
/// [`LossError::LengthMismatch`] of `target` (same length as `input`), or
/// [`LossError::LabelOutOfRange`] for an entry outside `-1..classes` (its `row` the row).
///
/// ```
/// use losskit::Reduction;
/// // PyTorch's example: targets 3 and 0 of four classes.
/// let x = [0.1f32, 0.2, 0.4, 0.8];
/// let loss = losskit::multilabel_margin(&x, &[3i64, 0, -1, 1], 4, Reduction::Mean)?;
/// assert!((loss - 0.85).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multilabel_margin<S: Storage, L: Label>(
    input: &[S],
    target: &[L],
    classes: usize,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let spec = MultilabelMarginRows::new(input, target, classes)?;
    let sum = S::multilabel_margin_rows(&spec, RowsOut::Reduce);
    Ok(sum.finish(spec.rows as f64, reduction))
}

/// Each row's [`multilabel_margin`] into `out` (`len == rows`).
///
/// # Errors
/// As [`multilabel_margin`], and a [`LossError::LengthMismatch`] of `out`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// let x = [0.0f64, 0.5, /* row 2 */ 3.0, 0.0];
/// losskit::multilabel_margin_each(&x, &[0i32, -1, 0, -1], 2, &mut out)?;
/// assert_eq!(out, [0.75, 0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multilabel_margin_each<S: Storage, L: Label>(
    input: &[S],
    target: &[L],
    classes: usize,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    let spec = MultilabelMarginRows::new(input, target, classes)?;
    check::same_len("out", out.len(), "rows of input", spec.rows)?;
    S::multilabel_margin_rows(&spec, RowsOut::Each(out));
    Ok(())
}

/// [`multilabel_margin`] and its gradient with respect to `input` into `grad` (same length):
/// for a class that is not a target, `1/classes` per target whose hinge with it is active; for
/// a target, minus `1/classes` per active hinge of its own; divided by the rows for
/// [`Reduction::Mean`].
///
/// # Errors
/// As [`multilabel_margin`], and a [`LossError::LengthMismatch`] of `grad`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 3];
/// let x = [0.0f32, 0.5, -2.0];
/// let loss = losskit::multilabel_margin_and_grad(&x, &[0i64, -1, 2], 3, Reduction::Sum, &mut grad)?;
/// assert_eq!(loss, 1.5 / 3.0);
/// assert_eq!(grad, [-1.0 / 3.0, 1.0 / 3.0, 0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn multilabel_margin_and_grad<S: Storage, L: Label>(
    input: &[S],
    target: &[L],
    classes: usize,
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    let spec = MultilabelMarginRows::new(input, target, classes)?;
    check::same_len("grad", grad.len(), "input", input.len())?;
    let scale = reduction.row_grad_scale(spec.rows as f64);
    let sum = S::multilabel_margin_rows(&spec, RowsOut::Grad(grad, scale));
    Ok(sum.finish(spec.rows as f64, reduction))
}

/// A checked multilabel_margin call: the row spec the engine runs.
pub struct MultilabelMarginRows<'a, S> {
    rows: usize,
    classes: usize,
    x: &'a [S],
    targets: Labels<'a>,
}

/// What a row's gradient needs: its index and `scale/classes`.
#[derive(Clone, Copy)]
pub(crate) struct MultilabelMarginGrad<T> {
    row: usize,
    factor: T,
}

impl<'a, S: Storage> MultilabelMarginRows<'a, S> {
    fn new<L: Label>(x: &'a [S], target: &'a [L], classes: usize) -> Result<Self, LossError> {
        let rows = check::rows::<S>(x.len(), classes, None)?;
        check::same_len("target", target.len(), "input", x.len())?;
        // Every entry, the ignored ones after a row's -1 too, as PyTorch checks them.
        if let Some(at) = L::first_outside(target, -1, classes as i128) {
            return Err(LossError::LabelOutOfRange {
                row: at / classes,
                label: target[at].to_i128(),
                classes,
            });
        }
        Ok(MultilabelMarginRows {
            rows,
            classes,
            x,
            targets: L::labels(target),
        })
    }

    /// Runs the rows (an entry point's body, see `entry.rs`).
    pub(crate) fn run(&self, out: RowsOut<'_, S>) -> LossSum {
        run_rows(self, self.x, self.rows, self.classes, out)
    }

    /// Row `row`'s target `j` (among its first [`target_count`]) as a class.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn target(&self, row: usize, j: usize) -> usize {
        self.targets.get(row * self.classes + j) as usize
    }

    /// `1 - x_t` of row `row`'s target `j`, in the element type as PyTorch computes it.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn shift(&self, row: usize, j: usize) -> S::Compute {
        S::Compute::ONE - self.x[row * self.classes + self.target(row, j)].to_compute()
    }

    /// The keep mask of the classes `window` of row `row` (`keep.len() == window.len()`, all 0
    /// on entry): `-inf` at each of its `targets` targets in the window.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn keep_mask(&self, row: usize, targets: usize, window: Range<usize>, keep: &mut [S::Compute]) {
        self.mark_targets(row, targets, window, keep, f64::NEG_INFINITY);
    }

    /// Sets the entries of `keep` that [`keep_mask`](Self::keep_mask) set back to 0.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn clear_mask(
        &self,
        row: usize,
        targets: usize,
        window: Range<usize>,
        keep: &mut [S::Compute],
    ) {
        self.mark_targets(row, targets, window, keep, 0.0);
    }

    /// Sets `keep` to `value` at each of row `row`'s `targets` targets in the window.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn mark_targets(
        &self,
        row: usize,
        targets: usize,
        window: Range<usize>,
        keep: &mut [S::Compute],
        value: f64,
    ) {
        let value = S::Compute::from_f64(value);
        for j in 0..targets {
            let t = self.target(row, j);
            if window.contains(&t) {
                keep[t - window.start] = value;
            }
        }
    }

    /// Adds to `sums[j - block.start]`, for each target `j` of `block`, the sum over the
    /// classes `seg` of row `row` (they are `x`) of its hinge terms (or with `SLOPE`, the
    /// number of its active hinges) with the classes that are not targets.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn target_sums<V, R, const SLOPE: bool>(
        &self,
        isa: V::Isa,
        row: usize,
        seg: Range<usize>,
        x: &[R],
        block: Range<usize>,
        sums: &mut [f64],
    ) where
        V: Lanes<Elem = S::Compute>,
        R: Storage<Compute = S::Compute>,
    {
        let targets = target_count(&self.targets, row * self.classes..(row + 1) * self.classes);
        let mut keep = [S::Compute::ZERO; WINDOW];
        let mut at = 0;
        while at < x.len() {
            let end = (at + WINDOW).min(x.len());
            let keep = &mut keep[..end - at];
            self.keep_mask(row, targets, seg.start + at..seg.start + end, keep);
            for (j, sum) in block.clone().zip(sums.iter_mut()) {
                let map = MaskedHinge::<S::Compute, SLOPE> {
                    shift: self.shift(row, j),
                };
                *sum +=
                    row_sum::<V, S::Compute, R, _, S::Compute>(isa, &x[at..end], keep, None, map);
            }
            // Back to all zeros for the next window (`O(targets)`, not a fill of the window).
            self.clear_mask(row, targets, seg.start + at..seg.start + end, keep);
            at = end;
        }
    }

    /// Writes the gradient of the classes `window` of row `row` that are not targets (0 for the
    /// targets) into `dst`: `factor` times the number of targets whose hinge with the class is
    /// active.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn class_grad<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        row: usize,
        window: Range<usize>,
        factor: S::Compute,
        dst: &mut [O],
    ) {
        let targets = target_count(&self.targets, row * self.classes..(row + 1) * self.classes);
        let base = row * self.classes;
        let x = &self.x[base + window.start..base + window.end];
        let mut keep = [S::Compute::ZERO; WINDOW];
        let keep = &mut keep[..x.len()];
        self.keep_mask(row, targets, window, keep);
        let mut counts = [S::Compute::ZERO; WINDOW];
        let counts = &mut counts[..x.len()];
        let (lanes, n) = (V::LANES, x.len());
        let whole = n - n % lanes;
        let (zero, one) = (
            V::splat(isa, S::Compute::ZERO),
            V::splat(isa, S::Compute::ONE),
        );
        for j in 0..targets {
            let shift = V::splat(isa, self.shift(row, j));
            let mut at = 0;
            while at < whole {
                let z =
                    (shift + S::load::<V>(isa, &x[at..])) + S::Compute::load::<V>(isa, &keep[at..]);
                let c =
                    S::Compute::load::<V>(isa, &counts[at..]) + V::select(zero.lt(z), one, zero);
                S::Compute::store(c, &mut counts[at..]);
                at += lanes;
            }
            if whole < n {
                let x = S::load_prefix::<V>(isa, &x[whole..], S::Compute::ZERO);
                let keep = S::Compute::load_prefix::<V>(isa, &keep[whole..], S::Compute::ZERO);
                let z = (shift + x) + keep;
                let c = S::Compute::load_prefix::<V>(isa, &counts[whole..], S::Compute::ZERO)
                    + V::select(zero.lt(z), one, zero);
                S::Compute::store_prefix(c, &mut counts[whole..]);
            }
        }
        let factor = V::splat(isa, factor);
        let mut at = 0;
        while at < whole {
            O::store(
                S::Compute::load::<V>(isa, &counts[at..]) * factor,
                &mut dst[at..],
            );
            at += lanes;
        }
        if whole < n {
            let c = S::Compute::load_prefix::<V>(isa, &counts[whole..], S::Compute::ZERO);
            O::store_prefix(c * factor, &mut dst[whole..]);
        }
    }
}

impl<S: Storage> RowSpec<S> for MultilabelMarginRows<'_, S> {
    /// The row's index (its targets and target scores are read through the spec).
    type Row = usize;
    type Sweep = LossSum;
    type Grad = MultilabelMarginGrad<S::Compute>;
    type Total = LossSum;
    const SWEEPS: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        _: V::Isa,
        row: usize,
        _: &[R],
    ) -> Option<usize> {
        Some(row)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        &row: &usize,
        seg: Range<usize>,
        stream: &[R],
        _: &[S],
    ) -> LossSum {
        let targets = target_count(&self.targets, row * self.classes..(row + 1) * self.classes);
        let x = &stream[..seg.len()];
        // What follows the row in the stream (the next row) comes from DRAM next: its lines are
        // requested now, so that they arrive while this row's targets sweep it from L1 (each
        // row starting with a cold 4 KiB page otherwise costs more than its sweeps).
        // A next row without targets is never read, so it is not fetched either.
        let next_has_targets =
            row + 1 < self.rows && self.targets.get((row + 1) * self.classes) >= 0;
        let next = match next_has_targets {
            true => stream.get(seg.len()..).unwrap_or_default(),
            false => &[],
        };
        let ahead = next
            .len()
            .min(seg.len())
            .min(PREFETCH_BYTES / size_of::<R>());
        V::prefetch_lines(isa, next, ahead);
        let mut loss = 0.0;
        let mut block = 0;
        let mut sums = [0.0; TARGET_BLOCK];
        while block < targets {
            let end = (block + TARGET_BLOCK).min(targets);
            let sums = &mut sums[..end - block];
            sums.fill(0.0);
            self.target_sums::<V, R, false>(isa, row, seg.clone(), x, block..end, sums);
            loss += sums.iter().sum::<f64>();
            block = end;
        }
        LossSum::unweighted(loss, 0)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = S::Compute>>(
        &self,
        &row: &usize,
        sweep: LossSum,
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, MultilabelMarginGrad<S::Compute>) {
        let classes = self.classes as f64;
        let loss = sweep.loss / classes;
        let grad = MultilabelMarginGrad {
            row,
            factor: S::Compute::from_f64(scale / classes),
        };
        (LossSum::unweighted(loss, 1), loss, grad)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        g: &MultilabelMarginGrad<S::Compute>,
        seg: Range<usize>,
        _: Option<&[S]>,
        _: &[S],
        dst: &mut [O],
        _: S::Compute,
    ) {
        let mut at = 0;
        while at < dst.len() {
            let end = (at + WINDOW).min(dst.len());
            let window = seg.start + at..seg.start + end;
            self.class_grad::<V, O>(isa, g.row, window, g.factor, &mut dst[at..end]);
            at = end;
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        g: &MultilabelMarginGrad<S::Compute>,
        dst: &mut [O],
        _: S::Compute,
    ) {
        let (row, classes) = (g.row, self.classes);
        let targets = target_count(&self.targets, row * classes..(row + 1) * classes);
        let x = &self.x[row * classes..(row + 1) * classes];
        let factor = -g.factor.to_f64();
        let mut block = 0;
        while block < targets {
            let end = (block + TARGET_BLOCK).min(targets);
            let mut counts = [0.0; TARGET_BLOCK];
            self.target_sums::<V, S, true>(isa, row, 0..classes, x, block..end, &mut counts);
            for (j, &count) in (block..end).zip(&counts) {
                let t = self.target(row, j);
                // 0 from `grad` at a target; a target listed again adds its count again.
                let d = dst[t].to_compute() + S::Compute::from_f64(factor * count);
                dst[t] = O::from_compute(d);
            }
            block = end;
        }
    }
}
