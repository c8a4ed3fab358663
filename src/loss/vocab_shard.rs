//! Vocabulary-sharded cross-entropy (Megatron's vocab-parallel form): each shard holds a slice
//! of the classes of every row, computes per-row partials of its slice in one sweep, the
//! partials of all shards are merged, and the merged rows give the loss, the statistics, and
//! each shard's slice of the gradient.
//!
//! The sweep is the unsharded loss's own ([`row_stats`]), run by the one row driver
//! ([`run_row_sweeps`]); a row's partial is its [`RowStats`] (max, `Σ exp(x - max)`, the
//! smoothing sums, the entropy's sum) with the target's logit when the shard holds it, and,
//! for the statistics, the rank counts. Merging moves both parts to the common max, as the
//! engine merges the segments of a long row split over threads.

use core::ops::Range;

use super::ce_stats::{CeStats, CeTotal};
use super::cross_entropy::{CrossEntropy, Label, Labels, Softmax, SoftmaxRow, Target};
use super::log_sum_exp::{fix_target_grad, row_stats, segment_grad, Coef, RowGrad, RowStats};
use super::softcap::Raw;
use crate::engine::{ExactSum, LossSum, Merge, RowSpec, RowsOut};
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// Which classes a shard holds: `offset..offset + classes` of every row of `total` classes. Its
/// logits are a `[rows, classes]` matrix of its own (row-major, as every shard's slice of a
/// vocab-parallel output is).
///
/// ```
/// use losskit::VocabShard;
/// let shard = VocabShard::new(1000, 500, 32000)?;
/// assert_eq!((shard.offset(), shard.classes(), shard.total()), (1000, 500, 32000));
/// assert!(VocabShard::new(31800, 500, 32000).is_err());
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VocabShard {
    offset: usize,
    classes: usize,
    total: usize,
}

impl VocabShard {
    /// The shard of classes `offset..offset + classes` out of `total`.
    ///
    /// # Errors
    /// - [`LossError::ZeroClasses`] if `classes == 0`.
    /// - [`LossError::InvalidParameter`] (`offset`) if `offset + classes > total`.
    pub fn new(offset: usize, classes: usize, total: usize) -> Result<VocabShard, LossError> {
        if classes == 0 {
            return Err(LossError::ZeroClasses);
        }
        match offset.checked_add(classes) {
            Some(end) if end <= total => Ok(VocabShard {
                offset,
                classes,
                total,
            }),
            _ => Err(LossError::InvalidParameter {
                name: "offset",
                value: offset as f64,
                requirement: "such that offset + classes <= total",
            }),
        }
    }

    /// The first class of the shard.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// How many classes the shard holds.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The classes of a whole row.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The shard's classes, as a range of the row's.
    fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.classes
    }
}

/// A row's partial result over some of its classes: what one shard's sweep gathers
/// ([`CrossEntropy::vocab_rows`]), and what [`merge`](VocabRow::merge) makes of the partials of
/// several shards.
///
/// Merging is commutative (`a.merge(&b) == b.merge(&a)`, bit for bit) but rounds: both parts
/// are moved to the common max, `Σ exp` scaled by `exp(max - m)`, as the engine merges the
/// segments of a long row split over threads. The merged row of all shards therefore gives the
/// unsharded loss within the crate's bound for a row (a few ulps of the `f64` log-sum-exp), not
/// its bits; the counts (classes seen, ranks) are exact.
///
/// With the `serde` feature it is `Serialize` and `Deserialize`: a struct of `stats` (a struct
/// of the `f64` sums `max`, `sum` (`Σ exp(x - max)`), `dot` and `coef` (the smoothing sums
/// `Σ w_c (x_c - max)`, `Σ w_c`), `ent` (`Σ exp(x - max)·(x - max)`), and the counts `above`
/// and `tied`, of classes above and at the target's logit), the counts `before` (tied classes
/// before the target), `classes` (how many classes the partial covers) and `total` (the row's),
/// `target` (the target's logit, `null` unless covered) and `ranked`.
///
/// ```
/// use losskit::{CrossEntropy, Reduction, VocabRow, VocabShard};
/// // One row of 4 classes, label 2, held by two shards of 2 classes.
/// let (left, right) = ([1.0f32, 2.0], [3.0f32, 0.5]);
/// let ce = CrossEntropy::new();
/// let mut a = [VocabRow::default()];
/// let mut b = [VocabRow::default()];
/// ce.vocab_rows(&left, VocabShard::new(0, 2, 4)?, &[2i64], &mut a)?;
/// ce.vocab_rows(&right, VocabShard::new(2, 2, 4)?, &[2i64], &mut b)?;
/// let merged = [a[0].merge(&b[0])];
/// assert_eq!(merged[0].classes(), 4);
/// let sharded = ce.vocab_loss(&merged, &[2i64], Reduction::Sum)?;
/// let whole = ce.loss(&[1.0f32, 2.0, 3.0, 0.5], 4, &[2i64], Reduction::Sum)?;
/// assert!((sharded - whole).abs() <= 1e-6 * whole);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VocabRow {
    stats: RowStats,
    /// Tied classes before the target (counted while the rank is undecided, capped at `k`).
    before: u64,
    /// Classes covered.
    classes: u64,
    /// The classes of the whole row.
    total: u64,
    /// The target's logit, if a covered class.
    target: Option<f64>,
    /// Whether the rank counts were gathered ([`CrossEntropy::vocab_stats_rows`]) over every
    /// class covered.
    ranked: bool,
}

/// The partial of no classes, which [`merge`](VocabRow::merge) leaves the other side as it is
/// (so it starts a fold over shards): it covers nothing, and so is ranked over all it covers.
impl Default for VocabRow {
    fn default() -> VocabRow {
        VocabRow {
            stats: RowStats::default(),
            before: 0,
            classes: 0,
            total: 0,
            target: None,
            ranked: true,
        }
    }
}

impl VocabRow {
    /// The partial of both: the classes of `self` and of `other` (which must not overlap).
    pub fn merge(&self, other: &VocabRow) -> VocabRow {
        VocabRow {
            stats: self.stats.merge(other.stats),
            before: self.before.saturating_add(other.before),
            classes: self.classes.saturating_add(other.classes),
            total: self.total.max(other.total),
            // Commutative: a target held twice (overlapping shards) keeps the larger.
            target: match (self.target, other.target) {
                (Some(a), Some(b)) => Some(if a.total_cmp(&b).is_ge() { a } else { b }),
                (a, b) => a.or(b),
            },
            ranked: self.ranked && other.ranked,
        }
    }

    /// How many classes of the row the partial covers (0 for an ignored row).
    pub fn classes(&self) -> u64 {
        self.classes
    }

    /// How many classes the whole row has (0 for an ignored row): the partial is complete when
    /// it covers them all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The row's maximum logit over the covered classes (`-inf` if none).
    pub fn max(&self) -> f64 {
        self.stats.max
    }

    /// `ln Σ exp(x)` over the covered classes (`-inf` if none).
    pub fn log_sum_exp(&self) -> f64 {
        self.stats.max + self.stats.sum.ln()
    }
}

impl Merge for VocabRow {
    #[inline]
    fn merge(self, other: VocabRow) -> VocabRow {
        VocabRow::merge(&self, &other)
    }
}

/// A checked shard sweep: the row spec [`run_row_sweeps`](crate::engine::run_row_sweeps) runs
/// over a shard's `[rows, shard classes]` logits. With `STATS` the sweep also counts the rank
/// pieces against each row's target logit (given).
pub struct VocabSweep<'a, T, const STATS: bool> {
    shard: VocabShard,
    labels: Labels<'a>,
    ignore: i128,
    /// The shard's slice of the class weights, for the smoothing sums.
    weight: Option<&'a [T]>,
    smoothing: bool,
    /// The target logit of every row (the statistics only; else empty).
    targets: &'a [T],
    top_k: usize,
}

/// A scored row of a shard sweep.
#[derive(Clone, Copy)]
pub struct VocabStart<'a, T> {
    coef: Option<Coef<'a, T>>,
    /// The row's label (a class of the whole row).
    label: usize,
    /// The target's logit, for the rank counts.
    x_t: T,
}

impl<T: Float, const STATS: bool> VocabSweep<'_, T, STATS> {
    /// Writes the partial of every row to `out` (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(&self, x: &[S], out: &mut [VocabRow]) {
        crate::engine::run_row_sweeps(self, x, out.len(), self.shard.classes, out);
    }
}

impl<'a, T: Float, S: Storage<Compute = T>, const STATS: bool> RowSpec<S>
    for VocabSweep<'a, T, STATS>
{
    type Row = VocabStart<'a, T>;
    type Sweep = VocabRow;
    type Grad = ();
    type Total = ();
    const SWEEPS: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        row: usize,
        x: &[R],
    ) -> Option<VocabStart<'a, T>> {
        let label = self.labels.get(row);
        if label == self.ignore {
            return None;
        }
        let label = label as usize;
        let x_t = if STATS {
            self.targets[row]
        } else if self.shard.range().contains(&label) {
            x[label - self.shard.offset].to_compute()
        } else {
            T::ZERO
        };
        let coef = self.smoothing.then_some(Coef {
            q: None,
            alpha: T::ZERO,
            beta: T::ONE,
            r: self.weight,
        });
        Some(VocabStart { coef, label, x_t })
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        row: &VocabStart<'a, T>,
        seg: Range<usize>,
        stream: &[R],
        _: &[S],
    ) -> VocabRow {
        let len = seg.len();
        let k = self.top_k as u64;
        let stats = match row.coef {
            None => row_stats::<V, R, Raw, STATS>(isa, stream, len, None, row.x_t, k, Raw),
            Some(cf) => {
                let cf = Some(cf.segment(seg.clone()));
                row_stats::<V, R, Raw, STATS>(isa, stream, len, cf, row.x_t, k, Raw)
            }
        };
        // The segment's classes in the whole row.
        let (lo, hi) = (self.shard.offset + seg.start, self.shard.offset + seg.end);
        let t = row.label;
        let target = (lo..hi)
            .contains(&t)
            .then(|| stream[t - lo].to_compute().to_f64());
        // Ties before the target push it down (DESIGN's rank rule). As in the unsharded finish,
        // they are counted only while the rank is undecided, and at most k of them.
        let before = if !STATS || stats.tied == 0 || stats.above >= k {
            0
        } else if t >= hi {
            stats.tied.min(k)
        } else if t < lo {
            0
        } else {
            stream[..t - lo]
                .iter()
                .filter(|v| v.to_compute() == row.x_t)
                .take(k as usize)
                .count() as u64
        };
        VocabRow {
            stats,
            before,
            classes: len as u64,
            total: self.shard.total as u64,
            target,
            ranked: STATS,
        }
    }

    fn finish<R: Storage<Compute = T>>(
        &self,
        _: &VocabStart<'a, T>,
        _: VocabRow,
        _: &[R],
        _: f64,
    ) -> ((), f64, ()) {
        unreachable!("a shard sweep's rows are finished from their merged partials")
    }

    fn grad_fix<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        _: &(),
        _: &mut [O],
        _: T,
    ) {
    }
}

/// A shard's gradient from the merged partials of its rows: the row spec the grad mode runs.
pub struct VocabGrad<'a, T> {
    /// The unsharded call (total classes, the whole weight vector, the divisor).
    spec: Softmax<'a, T, false>,
    shard: VocabShard,
    merged: &'a [VocabRow],
}

/// A scored row of a shard's gradient: its merged partial and its start in the unsharded call.
#[derive(Clone, Copy)]
pub struct VocabGradRow<'a, T> {
    merged: VocabRow,
    row: SoftmaxRow<'a, T>,
}

impl<T: Float> VocabGrad<'_, T> {
    /// Writes the shard's gradient (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(&self, x: &[S], out: RowsOut<'_, S>) {
        let rows = self.merged.len();
        crate::engine::run_rows(self, x, rows, self.shard.classes, out);
    }
}

impl<'a, T: Float, S: Storage<Compute = T>> RowSpec<S> for VocabGrad<'a, T> {
    type Row = VocabGradRow<'a, T>;
    type Sweep = ();
    type Grad = RowGrad<'a, T>;
    type Total = LossSum;
    // The sweep was the shards'; but a row still costs its classes to write, which is what the
    // driver's leaves and splits are sized by. The sweep itself gathers nothing.
    const SWEEPS: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        row: usize,
        _: &[R],
    ) -> Option<VocabGradRow<'a, T>> {
        let merged = self.merged[row];
        let start = finish_start(&self.spec, row, &merged)?;
        Some(VocabGradRow { merged, row: start })
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = T>>(
        &self,
        r: &VocabGradRow<'a, T>,
        _: (),
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, RowGrad<'a, T>) {
        let (loss, weight, grad) = self.spec.finish_loss(&r.row, &r.merged.stats, scale);
        let range = self.shard.range();
        // The same recipe, cut to the shard: its weights, and the target only where it holds it.
        let grad = RowGrad {
            coef: grad.coef.map(|c| c.segment(range.clone())),
            target: grad
                .target
                .filter(|&(t, _, _)| range.contains(&t))
                .map(|(t, delta, x_t)| (t - range.start, delta, x_t)),
            ..grad
        };
        let sum = LossSum {
            loss,
            weight,
            count: 1,
        };
        (sum, loss, grad)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        g: &RowGrad<'a, T>,
        seg: Range<usize>,
        src: Option<&[S]>,
        _: &[S],
        dst: &mut [O],
        scale: T,
    ) {
        segment_grad::<V, S, O>(isa, g, seg, src, dst, scale);
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        g: &RowGrad<'a, T>,
        dst: &mut [O],
        scale: T,
    ) {
        fix_target_grad::<V, O>(isa, g, dst, scale);
    }
}

/// The start of scored row `row` of the unsharded call `spec` from its merged partial (which the
/// caller checked), or `None` if the row is ignored.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn finish_start<'a, T: Float>(
    spec: &Softmax<'a, T, false>,
    row: usize,
    merged: &VocabRow,
) -> Option<SoftmaxRow<'a, T>> {
    let Target::Labels { labels, ignore } = spec.target else {
        unreachable!("vocabulary shards take class labels");
    };
    let label = labels.get(row);
    if label == ignore {
        return None;
    }
    let t = label as usize;
    let w_t = spec.weight.map_or(1.0, |w| w[t].to_f64());
    // The finish reads the coefficients only for probability targets; smoothing's come from
    // the weights.
    Some(SoftmaxRow {
        coef: None,
        label: Some((t, w_t)),
        x_t: T::from_f64(merged.target.unwrap_or(f64::NAN)),
        y_t: T::from_f64(merged.target.unwrap_or(f64::NAN)),
    })
}

impl<'w, T: Float> CrossEntropy<'w, T> {
    /// Checks a shard's call: the unsharded call's arguments (labels of the whole row, the
    /// whole weight vector) and the shard's logits.
    fn shard_spec<'a, L: Label, const STATS: bool>(
        &'a self,
        len: usize,
        shard: VocabShard,
        labels: &'a [L],
        targets: &'a [T],
    ) -> Result<VocabSweep<'a, T, STATS>, LossError> {
        let rows = check::rows::<T>(len, shard.classes, None)?;
        let whole = self.whole_spec::<L>(rows, shard.total, labels)?;
        let Target::Labels { labels, ignore } = whole.target else {
            unreachable!("built from class labels");
        };
        Ok(VocabSweep {
            shard,
            labels,
            ignore,
            weight: self.weight.map(|w| &w[shard.range()]),
            smoothing: self.label_smoothing > 0.0,
            targets,
            top_k: self.top_k,
        })
    }

    /// The unsharded call of `rows` rows of `classes`, checked.
    fn whole_spec<'a, L: Label>(
        &'a self,
        rows: usize,
        classes: usize,
        labels: &'a [L],
    ) -> Result<Softmax<'a, T, false>, LossError> {
        let len = rows
            .checked_mul(classes)
            .ok_or(LossError::SizeOverflow { rows, classes })?;
        let spec = self.labels_spec::<L, false>(len, classes, labels)?;
        if let Some(cap) = self.softcap {
            // The shard sweeps and gradients do not apply it (yet).
            return Err(LossError::InvalidParameter {
                name: "softcap",
                value: cap.to_f64(),
                requirement: "unset in the vocabulary-sharded forms",
            });
        }
        Ok(spec)
    }

    /// The unsharded call of the merged partials `rows`, after checking that each scored row
    /// covers all its classes exactly once and its target (and, for the statistics, was
    /// ranked); `total` is the row's classes when the caller knows them.
    fn merged_spec<'a, L: Label>(
        &'a self,
        rows: &[VocabRow],
        labels: &'a [L],
        ranked: bool,
        total: Option<usize>,
    ) -> Result<Softmax<'a, T, false>, LossError> {
        check::same_len("labels", labels.len(), "rows", rows.len())?;
        let ignore = self.ignore_index as i128;
        let scored = || {
            rows.iter()
                .zip(labels)
                .enumerate()
                .filter(move |(_, (_, &l))| l.to_i128() != ignore)
        };
        // Every scored row has the same classes: the caller's, or the first scored row's (with
        // none scored, nothing says: the weights' length, so that they pass their check).
        let unknown = self.weight.map_or(1, |w| w.len().max(1)) as u64;
        let classes = total.map_or_else(
            || {
                scored()
                    .next()
                    .map_or(unknown, |(_, (r, _))| r.total.max(1))
            },
            |t| t as u64,
        );
        for (row, (r, _)) in scored() {
            if r.total != classes || r.classes != classes || r.target.is_none() {
                return Err(LossError::IncompleteRow {
                    row,
                    covered: r.classes,
                    classes,
                });
            }
            if ranked && !r.ranked {
                return Err(LossError::NotRanked { row });
            }
        }
        let classes = usize::try_from(classes).unwrap_or(usize::MAX);
        self.whole_spec::<L>(rows.len(), classes, labels)
    }

    /// One shard's per-row partials of class-label cross-entropy: `logits` are the shard's
    /// classes of every row (`[rows, shard.classes()]`), `labels` the rows' labels in the whole
    /// row, and `out` (`rows` long) gets each row's [`VocabRow`] (an ignored row's is the
    /// default). Merge the partials of all shards row by row ([`VocabRow::merge`]), then take
    /// the loss ([`vocab_loss`](Self::vocab_loss), [`vocab_each`](Self::vocab_each)) and each
    /// shard's gradient ([`vocab_grad`](Self::vocab_grad)) from them. The builder's options
    /// apply as in [`loss`](Self::loss); the class weights are those of the whole row.
    ///
    /// One sweep over the shard's logits, the one the unsharded loss makes; the shards of a
    /// row sum to the unsharded loss within the bound in [`VocabRow`]'s docs.
    ///
    /// # Errors
    /// - As [`loss`](Self::loss) for the whole rows: labels outside `0..shard.total()`, a
    ///   weight slice that is not `shard.total()` long, a bad option.
    /// - [`LossError::NotMultipleOfClasses`] if `logits.len()` is not a multiple of
    ///   `shard.classes()`; [`LossError::LengthMismatch`] if `labels` or `out` do not have
    ///   one element per row.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction, VocabRow, VocabShard};
    /// // Two rows of 5 classes: shard 0 holds classes 0..3, shard 1 classes 3..5.
    /// let logits = [[0.5f32, 1.0, -1.0, 2.0, 0.0], [3.0, 0.0, 0.0, 1.0, 1.0]];
    /// let labels = [3i64, 0];
    /// let ce = CrossEntropy::new().label_smoothing(0.1);
    /// let mut rows = [VocabRow::default(); 2];
    /// for (offset, width) in [(0, 3), (3, 2)] {
    ///     let shard = VocabShard::new(offset, width, 5)?;
    ///     let slice: Vec<f32> = logits.iter().flat_map(|r| r[offset..offset + width].to_vec()).collect();
    ///     let mut part = [VocabRow::default(); 2];
    ///     ce.vocab_rows(&slice, shard, &labels, &mut part)?;
    ///     for (r, p) in rows.iter_mut().zip(&part) {
    ///         *r = if offset == 0 { *p } else { r.merge(p) };
    ///     }
    /// }
    /// let sharded = ce.vocab_loss(&rows, &labels, Reduction::Mean)?;
    /// let whole = ce.loss(logits.as_flattened(), 5, &labels, Reduction::Mean)?;
    /// assert!((sharded - whole).abs() <= 1e-6 * whole);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn vocab_rows<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        shard: VocabShard,
        labels: &[L],
        out: &mut [VocabRow],
    ) -> Result<(), LossError> {
        let spec = self.shard_spec::<L, false>(logits.len(), shard, labels, &[])?;
        check::same_len("out", out.len(), "rows of logits", labels.len())?;
        S::vocab_rows(&spec, logits, out);
        Ok(())
    }

    /// [`vocab_rows`](Self::vocab_rows) with the rank counts and the entropy sums that
    /// [`vocab_stats`](Self::vocab_stats) needs, which need each row's target logit in every
    /// shard: `targets` (`rows` long) holds them (any value for an ignored row), gathered from
    /// the shards that hold them first (Megatron gathers them too): for a row of label `t`,
    /// `logits[row * shard.classes() + t - shard.offset()]` of the shard that holds `t`.
    ///
    /// # Errors
    /// As [`vocab_rows`](Self::vocab_rows), [`LossError::LengthMismatch`] if `targets` does not
    /// have one element per row, and [`LossError::InvalidParameter`] if `top_k` is 0.
    ///
    /// ```
    /// use losskit::{CrossEntropy, VocabRow, VocabShard};
    /// let (left, right) = ([1.0f32, 3.0], [3.0f32, 0.5]); // one row of 4 classes, label 2
    /// let ce = CrossEntropy::new().top_k(2);
    /// let targets = [right[0]]; // class 2 is the right shard's first
    /// let (mut a, mut b) = ([VocabRow::default()], [VocabRow::default()]);
    /// ce.vocab_stats_rows(&left, VocabShard::new(0, 2, 4)?, &[2i64], &targets, &mut a)?;
    /// ce.vocab_stats_rows(&right, VocabShard::new(2, 2, 4)?, &[2i64], &targets, &mut b)?;
    /// let s = ce.vocab_stats(&[a[0].merge(&b[0])], &[2i64])?;
    /// // Class 1 ties with the label and comes first: rank 1.
    /// assert_eq!((s.accuracy(), s.top_k_accuracy()), (0.0, 1.0));
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn vocab_stats_rows<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        shard: VocabShard,
        labels: &[L],
        targets: &[T],
        out: &mut [VocabRow],
    ) -> Result<(), LossError> {
        check_top_k(self.top_k)?;
        let spec = self.shard_spec::<L, true>(logits.len(), shard, labels, targets)?;
        check::same_len("targets", targets.len(), "rows of logits", labels.len())?;
        check::same_len("out", out.len(), "rows of logits", labels.len())?;
        S::vocab_stats_rows(&spec, logits, out);
        Ok(())
    }

    /// The reduced loss from the merged partials `rows` of every shard (see
    /// [`vocab_rows`](Self::vocab_rows)), as [`loss`](Self::loss) reduces it. The rows' losses
    /// are summed exactly, so the order of the rows never changes the bits.
    ///
    /// # Errors
    /// - [`LossError::LengthMismatch`] if `labels` does not have one element per row.
    /// - [`LossError::IncompleteRow`] if a scored row's partial does not cover every class of
    ///   its row exactly once (a shard missing from the merge, or merged twice), or its rows
    ///   differ in their classes.
    /// - As [`loss`](Self::loss) for the labels, weights and options.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction, VocabRow, VocabShard};
    /// // One row of 4 classes, label 0, in shards of 1 and 3 classes.
    /// let ce = CrossEntropy::new();
    /// let (mut a, mut b) = ([VocabRow::default()], [VocabRow::default()]);
    /// ce.vocab_rows(&[2.0f64], VocabShard::new(0, 1, 4)?, &[0i64], &mut a)?;
    /// ce.vocab_rows(&[0.0f64, 1.0, -1.0], VocabShard::new(1, 3, 4)?, &[0i64], &mut b)?;
    /// let rows = [a[0].merge(&b[0])];
    /// let loss = ce.vocab_loss(&rows, &[0i64], Reduction::Mean)?;
    /// let whole = ce.loss(&[2.0f64, 0.0, 1.0, -1.0], 4, &[0i64], Reduction::Mean)?;
    /// assert!((loss - whole).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn vocab_loss<L: Label>(
        &self,
        rows: &[VocabRow],
        labels: &[L],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.merged_spec(rows, labels, false, None)?;
        let mut sum = ExactSum::default();
        for (row, merged) in rows.iter().enumerate() {
            if let Some(start) = finish_start(&spec, row, merged) {
                sum = sum.merge(&ExactSum::of(
                    spec.finish_loss(&start, &merged.stats, 0.0).0,
                ));
            }
        }
        let loss = sum.value();
        Ok(T::from_f64(match reduction {
            Reduction::Sum => loss,
            Reduction::Mean => loss / spec.divisor,
        }))
    }

    /// Each row's loss from the merged partials `rows` into `out` (ignored rows get 0).
    ///
    /// # Errors
    /// As [`vocab_loss`](Self::vocab_loss), and [`LossError::LengthMismatch`] if `out` does not
    /// have one element per row.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction, VocabRow, VocabShard};
    /// // One row of 4 classes, label 0, in shards of 1 and 3 classes.
    /// let ce = CrossEntropy::new();
    /// let (mut a, mut b) = ([VocabRow::default()], [VocabRow::default()]);
    /// ce.vocab_rows(&[2.0f64], VocabShard::new(0, 1, 4)?, &[0i64], &mut a)?;
    /// ce.vocab_rows(&[0.0f64, 1.0, -1.0], VocabShard::new(1, 3, 4)?, &[0i64], &mut b)?;
    /// let rows = [a[0].merge(&b[0])];
    /// let mut each = [0.0f64];
    /// ce.vocab_each(&rows, &[0i64], &mut each)?;
    /// assert!((each[0] - rows[0].log_sum_exp() + 2.0).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn vocab_each<L: Label>(
        &self,
        rows: &[VocabRow],
        labels: &[L],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.merged_spec(rows, labels, false, None)?;
        check::same_len("out", out.len(), "rows", rows.len())?;
        for (row, (merged, o)) in rows.iter().zip(out.iter_mut()).enumerate() {
            *o = match finish_start(&spec, row, merged) {
                Some(start) => T::from_f64(spec.finish_loss(&start, &merged.stats, 0.0).0),
                None => T::ZERO,
            };
        }
        Ok(())
    }

    /// The eval statistics ([`CeStats`], as [`stats`](Self::stats) gives them) from the merged
    /// partials `rows` of [`vocab_stats_rows`](Self::vocab_stats_rows). The counts are exact
    /// and the ranks follow the same rule; the loss and entropy are within the bound in
    /// [`VocabRow`]'s docs.
    ///
    /// # Errors
    /// As [`vocab_loss`](Self::vocab_loss); [`LossError::NotRanked`] if a scored row was not
    /// ranked (it comes from [`vocab_rows`](Self::vocab_rows)); [`LossError::InvalidParameter`]
    /// if `top_k` is 0.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction, VocabRow, VocabShard};
    /// // One row of 4 classes, label 0 (logit 2, every shard told), in shards of 1 and 3.
    /// let ce = CrossEntropy::new();
    /// let (mut a, mut b) = ([VocabRow::default()], [VocabRow::default()]);
    /// ce.vocab_stats_rows(&[2.0f64], VocabShard::new(0, 1, 4)?, &[0i64], &[2.0], &mut a)?;
    /// ce.vocab_stats_rows(&[0.0f64, 1.0, -1.0], VocabShard::new(1, 3, 4)?, &[0i64], &[2.0], &mut b)?;
    /// let rows = [a[0].merge(&b[0])];
    /// let s = ce.vocab_stats(&rows, &[0i64])?;
    /// assert_eq!((s.counted(), s.accuracy()), (1, 1.0));
    /// assert!(s.mean_entropy() > 0.0);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn vocab_stats<L: Label>(
        &self,
        rows: &[VocabRow],
        labels: &[L],
    ) -> Result<CeStats, LossError> {
        check_top_k(self.top_k)?;
        let spec = self.merged_spec(rows, labels, true, None)?;
        let k = self.top_k as u64;
        let mut stats = CeStats::from_total(CeTotal::default(), self.top_k);
        for (row, merged) in rows.iter().enumerate() {
            let Some(start) = finish_start(&spec, row, merged) else {
                continue;
            };
            let s = &merged.stats;
            let (loss, weight, _) = spec.finish_loss(&start, s, 0.0);
            let rank = s.above.saturating_add(merged.before);
            let total = CeTotal::scored(loss, weight).ranked(rank, k, s);
            stats = stats.merge(&CeStats::from_total(total, self.top_k));
        }
        Ok(stats)
    }

    /// One shard's slice of the gradient of the reduced loss, from the merged partials `rows`
    /// of every shard: `logits` and `grad` are the shard's `[rows, shard.classes()]`, and
    /// `grad` gets what [`loss_and_grad`](Self::loss_and_grad) writes in those classes (ignored
    /// rows get zeros). Each shard writes its own slice, with no further communication.
    ///
    /// # Errors
    /// As [`vocab_rows`](Self::vocab_rows) and [`vocab_loss`](Self::vocab_loss), and
    /// [`LossError::LengthMismatch`] if `grad.len() != logits.len()`, or if `rows` is not one
    /// partial per row; [`LossError::IncompleteRow`] also if a row's classes are not
    /// `shard.total()`. Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction, VocabRow, VocabShard};
    /// let (left, right) = ([1.0f64, 2.0], [3.0f64, 0.5]); // one row of 4 classes, label 2
    /// let ce = CrossEntropy::new();
    /// let (l, r) = (VocabShard::new(0, 2, 4)?, VocabShard::new(2, 2, 4)?);
    /// let (mut a, mut b) = ([VocabRow::default()], [VocabRow::default()]);
    /// ce.vocab_rows(&left, l, &[2i64], &mut a)?;
    /// ce.vocab_rows(&right, r, &[2i64], &mut b)?;
    /// let rows = [a[0].merge(&b[0])];
    /// let (mut gl, mut gr) = ([0.0; 2], [0.0; 2]);
    /// ce.vocab_grad(&left, l, &[2i64], &rows, Reduction::Mean, &mut gl)?;
    /// ce.vocab_grad(&right, r, &[2i64], &rows, Reduction::Mean, &mut gr)?;
    /// let mut whole = [0.0; 4];
    /// ce.loss_and_grad(&[1.0, 2.0, 3.0, 0.5], 4, &[2i64], Reduction::Mean, &mut whole)?;
    /// for (g, w) in gl.iter().chain(&gr).zip(&whole) {
    ///     assert!((g - w).abs() < 1e-15);
    /// }
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn vocab_grad<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        shard: VocabShard,
        labels: &[L],
        rows: &[VocabRow],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<(), LossError> {
        check::rows::<T>(logits.len(), shard.classes, None)?;
        check::same_len(
            "rows",
            rows.len(),
            "rows of logits",
            logits.len() / shard.classes,
        )?;
        check::same_len("grad", grad.len(), "logits", logits.len())?;
        let spec = self.merged_spec(rows, labels, false, Some(shard.total))?;
        let scale = reduction.row_grad_scale(spec.divisor);
        let grad_spec = VocabGrad {
            spec,
            shard,
            merged: rows,
        };
        S::vocab_grad(&grad_spec, logits, RowsOut::Grad(grad, scale));
        Ok(())
    }
}

fn check_top_k(k: usize) -> Result<(), LossError> {
    if k == 0 {
        return Err(LossError::InvalidParameter {
            name: "top_k",
            value: 0.0,
            requirement: ">= 1",
        });
    }
    Ok(())
}
