//! PyTorch's `multilabel_margin_loss` over row-major `[rows, classes]` scores and a target
//! matrix of the same shape holding each row's target classes as indices, ended by the first
//! `-1` (entries after it are ignored): a row's loss is
//! `Σ_{j∈T} Σ_{i∉T} max(0, 1 - x_j + x_i) / classes`.
//!
//! A row spec on the row driver; its `Row` is the row's index and the spec holds the input and
//! the targets. The classes are taken in windows of [`WINDOW`]: a window's *keep mask* (0 for a
//! class that is not a target, `-inf` for one that is, built from the row's target list) is
//! added to the scores, so a target class's term is never added (PyTorch's exact 0 where every
//! other term is 0, and an infinite or NaN target score adds nothing there). The hinge argument
//! is PyTorch's `(1 - x_j) + x_i` in the element type: `(1 - x_j) + (x_i + keep)` is the same
//! value wherever it is `> 0`, the only place a term counts (`x_i + 0` is `x_i` but for the
//! sign of a zero, which no positive sum depends on).
//!
//! One pass over a window serves [`PASS_TARGETS`] targets ([`hinge_sums`]): each vector of
//! scores is loaded and masked once for all of them, and their sums are independent chains
//! (one target a pass would leave one chain of dependent adds, bound by the add's latency).
//! A target's terms are summed in the flat sweep's blocks: lane sums of [`GROUP_VECS`] vectors,
//! [`BLOCK_GROUPS`] of them added, then the block added to the target's `f64` sum (widened
//! exactly for `f32`). The terms are non-negative, so for `f32` a window's sum is within
//! `(GROUP_VECS - 1 + BLOCK_GROUPS - 1)·u = 10·u` of exact, relative to it (`u` the unit
//! roundoff), and for `f64` within `(10 + blocks)·u`, `blocks` the number of `32·LANES`-class
//! blocks in the window: the flat driver's bound.
//!
//! The work is `targets · classes` per row, as in PyTorch's kernel. The mask is built per
//! window from the target list (`O(targets)` a window), so no per-call buffer is needed.
//!
//! Every target entry must be in `-1..classes`, those after a row's `-1` too. The forms that
//! write (`_each`, `_and_grad`) check the whole matrix before any work, so that an error writes
//! nothing; the reduced form checks each row's entries in its sweep, beside the scores, so
//! that the target matrix, as large as the scores, streams from memory together with them
//! instead of in a pass of its own. A row with a bad entry is skipped and flagged, and a
//! flagged call ends with the full check's error.
//!
//! The gradient of a class that is not a target is `scale/classes` times the number of targets
//! whose hinge with it is active (counted exactly, rounded once); a target class's is minus
//! `scale/classes` times the number of active hinges of its target (counted over the row in
//! `f64`, rounded once; a target listed twice counts twice, as in PyTorch, and its gradient is
//! rounded once per listing). A gradient call sweeps each row three times: the loss, the counts
//! of the classes and the counts of the targets.

use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::engine::{run_rows, LossSum, RowSpec, RowsOut};
use crate::float::sealed::Sealed as _;
use crate::loss::cross_entropy::{Label, Labels};
use crate::simd::Lanes;
use crate::storage::sealed::Sealed as _;
use crate::storage::Storage;
use crate::{check, LossError, Reduction};

/// Classes per window: the keep mask (and in the gradient the counts) of one window live on
/// the stack, at most 8 KiB each for `f64`.
const WINDOW: usize = 1024;

/// Targets whose sums the target gradient gathers in one pass over the row's windows.
const TARGET_BLOCK: usize = 256;

/// Targets whose hinge terms one pass over a window sums (see the module docs): four
/// independent chains, as the flat sweep's four accumulators.
const PASS_TARGETS: usize = 4;

/// Vectors a target's lane sums take before they are added to its block sums: a lane sum holds
/// at most this many terms.
const GROUP_VECS: usize = 8;

/// Group sums a target's block sums take before they are added to its `f64` sum (widened
/// exactly for `f32`): the flat sweep's blocks of `4 · 8` vectors.
const BLOCK_GROUPS: usize = 4;

/// Adds to `sum` (one per target) the hinge term `max(0, shift + xk)` of each lane of `xk`
/// (the scores plus the keep mask) and each target's `shift = 1 - x_j`, or with `SLOPE` 1
/// where it is active: a term counts only where the argument is `> 0`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn add_hinges<V: Lanes, const G: usize, const SLOPE: bool>(
    xk: V,
    shifts: &[V; G],
    sum: &mut [V; G],
    zero: V,
    one: V,
) {
    for (s, &shift) in sum.iter_mut().zip(shifts) {
        let z = shift + xk;
        let term = match SLOPE {
            false => z,
            true => one,
        };
        *s = *s + V::select(zero.lt(z), term, zero);
    }
}

/// The sums over the classes `x` (their keep mask `keep`, as long) of the hinge terms of the
/// `G` targets whose `1 - x_j` are `shifts` (or with `SLOPE`, their numbers of active hinges),
/// in one pass: a vector of scores is loaded and masked once for all `G` targets, and summed
/// in blocks as the module docs describe.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn hinge_sums<V, R, const G: usize, const SLOPE: bool>(
    isa: V::Isa,
    x: &[R],
    keep: &[V::Elem],
    shifts: [V::Elem; G],
) -> [f64; G]
where
    V: Lanes,
    V::Elem: Storage<Compute = V::Elem>,
    R: Storage<Compute = V::Elem>,
{
    let lanes = V::LANES;
    let (zero, one) = (V::splat(isa, V::Elem::ZERO), V::splat(isa, V::Elem::ONE));
    let mut shift = [zero; G];
    for (v, &s) in shift.iter_mut().zip(&shifts) {
        *v = V::splat(isa, s);
    }
    let n = x.len().min(keep.len());
    let (x, keep) = (&x[..n], &keep[..n]);
    let mut acc = [V::acc_zero(isa); G];
    // Adds each target's `group` sums into its block sums.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn add_group<V: Lanes, const G: usize>(block: &mut [V; G], group: &[V; G]) {
        for (b, &g) in block.iter_mut().zip(group) {
            *b = *b + g;
        }
    }
    let block = lanes * GROUP_VECS * BLOCK_GROUPS;
    let full = n - n % block;
    for (bi, xb) in x[..full].chunks_exact(block).enumerate() {
        let kb = &keep[bi * block..][..block];
        let mut block_sum = [zero; G];
        for g in 0..BLOCK_GROUPS {
            let mut group = [zero; G];
            for v in 0..GROUP_VECS {
                let at = (g * GROUP_VECS + v) * lanes;
                let xk = R::load::<V>(isa, &xb[at..]) + V::Elem::load::<V>(isa, &kb[at..]);
                add_hinges::<V, G, SLOPE>(xk, &shift, &mut group, zero, one);
            }
            add_group(&mut block_sum, &group);
        }
        for (a, &b) in acc.iter_mut().zip(&block_sum) {
            *a = V::acc_add(*a, b);
        }
    }
    // The last partial block in the same groups, its last vector padded with `-inf` masks.
    let minus_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let vecs = (n - full).div_ceil(lanes);
    let mut block_sum = [zero; G];
    let mut v = 0;
    while v < vecs {
        let end = (v + GROUP_VECS).min(vecs);
        let mut group = [zero; G];
        for k in v..end {
            let at = full + k * lanes;
            let xk = match at + lanes <= n {
                true => R::load::<V>(isa, &x[at..]) + V::Elem::load::<V>(isa, &keep[at..]),
                false => {
                    R::load_prefix::<V>(isa, &x[at..], V::Elem::ZERO)
                        + V::Elem::load_prefix::<V>(isa, &keep[at..], minus_inf)
                }
            };
            add_hinges::<V, G, SLOPE>(xk, &shift, &mut group, zero, one);
        }
        add_group(&mut block_sum, &group);
        v = end;
    }
    let mut out = [0.0; G];
    for ((o, &a), &b) in out.iter_mut().zip(&acc).zip(&block_sum) {
        *o = V::acc_sum(V::acc_add(a, b));
    }
    out
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
    // The targets are checked in the sweep (a reduced call writes nothing, so an error found
    // late costs nothing but the work): one pass over memory instead of two.
    let spec = MultilabelMarginRows::new(input, target, classes, TargetCheck::InSweep)?;
    let sum = S::multilabel_margin_rows(&spec, RowsOut::Reduce);
    if spec.bad_target.load(Relaxed) {
        // A row with an entry outside `-1..classes` was skipped: the error names the first.
        check_targets(target, classes)?;
    }
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
    let spec = MultilabelMarginRows::new(input, target, classes, TargetCheck::Before)?;
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
    let spec = MultilabelMarginRows::new(input, target, classes, TargetCheck::Before)?;
    check::same_len("grad", grad.len(), "input", input.len())?;
    let scale = reduction.row_grad_scale(spec.rows as f64);
    let sum = S::multilabel_margin_rows(&spec, RowsOut::Grad(grad, scale));
    Ok(sum.finish(spec.rows as f64, reduction))
}

/// When a call's targets are checked for entries outside `-1..classes`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TargetCheck {
    /// In one pass before any work: the forms that write (`_each`, `_and_grad`) must fail
    /// before they write.
    Before,
    /// By each row's sweep, over its own entries before it reads a score through them: the
    /// target matrix is read while the scores are (both matrices stream together, where a pass
    /// before the work reads the targets alone). A row with a bad entry is skipped and flagged.
    InSweep,
}

/// The error of the first entry of `target` outside `-1..classes`, if one is.
fn check_targets<L: Label>(target: &[L], classes: usize) -> Result<(), LossError> {
    // Every entry, the ignored ones after a row's -1 too, as PyTorch checks them.
    match L::first_outside(target, -1, classes as i128) {
        Some(at) => Err(LossError::LabelOutOfRange {
            row: at / classes,
            label: target[at].to_i128(),
            classes,
        }),
        None => Ok(()),
    }
}

/// A checked multilabel_margin call (its targets checked, or to be checked by the sweeps): the
/// row spec the engine runs.
pub struct MultilabelMarginRows<'a, S> {
    rows: usize,
    classes: usize,
    x: &'a [S],
    targets: Labels<'a>,
    check: TargetCheck,
    /// Set by a sweep that found an entry outside `-1..classes` (only with
    /// [`TargetCheck::InSweep`]; a relaxed store on that row alone, never on the hot path).
    bad_target: AtomicBool,
}

/// What a row's gradient needs: its index and `scale/classes`.
#[derive(Clone, Copy)]
pub(crate) struct MultilabelMarginGrad<T> {
    row: usize,
    factor: T,
}

impl<'a, S: Storage> MultilabelMarginRows<'a, S> {
    fn new<L: Label>(
        x: &'a [S],
        target: &'a [L],
        classes: usize,
        check: TargetCheck,
    ) -> Result<Self, LossError> {
        let rows = check::rows::<S>(x.len(), classes, None)?;
        check::same_len("target", target.len(), "input", x.len())?;
        if check == TargetCheck::Before {
            check_targets(target, classes)?;
        }
        Ok(MultilabelMarginRows {
            rows,
            classes,
            x,
            targets: L::labels(target),
            check,
            bad_target: AtomicBool::new(false),
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
            let mut j = block.start;
            while j < block.end {
                let pass = (block.end - j).min(PASS_TARGETS);
                let sums = &mut sums[j - block.start..][..pass];
                let (x, keep) = (&x[at..end], &keep[..]);
                match pass {
                    4 => self.add_pass::<V, R, 4, SLOPE>(isa, row, j, x, keep, sums),
                    3 => self.add_pass::<V, R, 3, SLOPE>(isa, row, j, x, keep, sums),
                    2 => self.add_pass::<V, R, 2, SLOPE>(isa, row, j, x, keep, sums),
                    _ => self.add_pass::<V, R, 1, SLOPE>(isa, row, j, x, keep, sums),
                }
                j += pass;
            }
            // Back to all zeros for the next window (`O(targets)`, not a fill of the window).
            self.clear_mask(row, targets, seg.start + at..seg.start + end, keep);
            at = end;
        }
    }

    /// Adds to `sums` the [`hinge_sums`] over the classes `x` (their keep mask `keep`) of row
    /// `row`'s `G` targets from its `first`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    #[allow(clippy::too_many_arguments)]
    fn add_pass<V, R, const G: usize, const SLOPE: bool>(
        &self,
        isa: V::Isa,
        row: usize,
        first: usize,
        x: &[R],
        keep: &[S::Compute],
        sums: &mut [f64],
    ) where
        V: Lanes<Elem = S::Compute>,
        R: Storage<Compute = S::Compute>,
    {
        let mut shifts = [S::Compute::ZERO; G];
        for (k, s) in shifts.iter_mut().enumerate() {
            *s = self.shift(row, first + k);
        }
        let pass = hinge_sums::<V, R, G, SLOPE>(isa, x, keep, shifts);
        for (sum, p) in sums.iter_mut().zip(pass) {
            *sum += p;
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
        let base = row * self.classes;
        let targets = target_count(&self.targets, base..base + self.classes);
        if self.check == TargetCheck::InSweep {
            // The row's entries in `seg` (each segment of a split row checks its own), and the
            // targets this segment reads scores through, wherever they are.
            let last = self.classes as i128 - 1;
            let outside_seg = seg.start > 0 || seg.end < targets;
            let bad = self
                .targets
                .any_outside(base + seg.start..base + seg.end, -1, last)
                || (outside_seg && self.targets.any_outside(base..base + targets, -1, last));
            if bad {
                self.bad_target.store(true, Relaxed);
                return LossSum::unweighted(0.0, 0);
            }
        }
        // Nothing of the next row is prefetched: both matrices are read in order, which the
        // hardware prefetchers follow, while a burst of software prefetches for a whole row
        // (64 lines of each matrix) fills the core's line-fill buffers and stalls it (25%
        // slower at [8192, 1000] on a Sapphire Rapids core, BENCHMARKS.md).
        let x = &stream[..seg.len()];
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
