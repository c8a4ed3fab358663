//! Softmax cross-entropy over row-major `[rows, classes]` logits: a row spec ([`Softmax`]) on
//! the engine's row driver, with the log-sum-exp sweep and the softmax gradient of
//! [`log_sum_exp`](super::log_sum_exp), and a one-row-per-lane path for short rows.
//!
//! Non-finite logits follow PyTorch's `log_softmax`: `-inf` masks a class (a masked target gives
//! `+inf`), a row of all `-inf` or with any `+inf` or NaN gives NaN.

use core::ops::Range;

use super::ce_stats::{CeStats, CeTotal};
use super::log_sum_exp::{
    first_lane, fix_target_grad, row_stats, segment_grad, Coef, RowGrad, RowStats,
};
use super::softcap::{LogitMap, Raw, Softcap};
use crate::engine::{LossSum, RowSpec, RowsOut};
use crate::float::sealed::Sealed;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

mod label {
    /// Integer types usable as class labels.
    pub trait Sealed: Sized {
        /// The slice as a [`Labels`](super::Labels): the kernels take it, not `&[Self]`, so
        /// that one compiled kernel serves every label type.
        fn labels(labels: &[Self]) -> super::Labels<'_>;

        /// The number of labels outside `lo..hi` that equal `ignore`, or the index of the
        /// first that is outside and does not: compared in the label's own width (the bounds
        /// saturated to it) on the active tier (see `label_scan`), so that the check of a whole
        /// target matrix or label column runs at memory speed rather than one `i128` compare
        /// at a time.
        fn outside(labels: &[Self], lo: i128, hi: i128, ignore: i128) -> Result<usize, usize>;

        /// The index of the first label outside `lo..hi`.
        fn first_outside(labels: &[Self], lo: i128, hi: i128) -> Option<usize> {
            // No label equals an `ignore` outside every type's range.
            Self::outside(labels, lo, hi, i128::MIN).err()
        }
    }
}

/// Class labels of any [`Label`] type, read one row at a time by the row kernels.
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    Usize(&'a [usize]),
}

impl Labels<'_> {
    /// The label of row `i`, widened.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn get(&self, i: usize) -> i128 {
        match *self {
            Labels::I32(l) => l[i] as i128,
            Labels::I64(l) => l[i] as i128,
            Labels::U32(l) => l[i] as i128,
            Labels::U64(l) => l[i] as i128,
            Labels::Usize(l) => l[i] as i128,
        }
    }

    /// Whether any label of `range` is below `lo` or above `last`. The bounds are taken in the
    /// label type, saturated to it, so `lo..=last` must hold a value of every label type (as
    /// `-1..=classes - 1` does). `#[inline(always)]`: in a tier's kernel, the compares are as
    /// wide as its vectors.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn any_outside(&self, range: Range<usize>, lo: i128, last: i128) -> bool {
        use super::label_scan::any_in;
        macro_rules! within {
            ($l:expr, $t:ty) => {{
                let (min, max) = (<$t>::MIN as i128, <$t>::MAX as i128);
                any_in(&$l[range], lo.max(min) as $t, last.min(max) as $t)
            }};
        }
        match *self {
            Labels::I32(l) => within!(l, i32),
            Labels::I64(l) => within!(l, i64),
            Labels::U32(l) => within!(l, u32),
            Labels::U64(l) => within!(l, u64),
            Labels::Usize(l) => within!(l, usize),
        }
    }

    /// The labels of rows `at..at + V::LANES` as lanes: the class, or -1 for a row whose label
    /// is `ignore`; and how many rows are scored. Every label must be a class below 2^24 or
    /// `ignore` (the checked calls' labels are). `i64` and `i32` labels convert in registers;
    /// unsigned ones are first widened to `i64` label by label.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn lanes<V: Lanes>(&self, isa: V::Isa, at: usize, ignore: i128) -> (V, u64) {
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
        fn scored<L: Copy + PartialEq>(labels: &[L], ignore: L) -> u64 {
            labels.iter().filter(|&&v| v != ignore).count() as u64
        }
        /// Unsigned labels as `i64` (a bijection on the values a row can hold) and `ignore`
        /// likewise, or -1 when the type cannot hold it: no label is -1 then, as every label
        /// is a class or `ignore`.
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
        fn widened<L: Copy + TryFrom<i128>>(
            labels: &[L],
            ignore: i128,
            to_i64: impl Fn(L) -> i64,
        ) -> ([i64; 16], i64) {
            let mut wide = [0i64; 16];
            for (w, &l) in wide.iter_mut().zip(labels) {
                *w = to_i64(l);
            }
            (wide, L::try_from(ignore).map_or(-1, &to_i64))
        }
        let n = V::LANES;
        // An `ignore` the type cannot hold matches no label: -1 is no class either.
        let (wide, ignore) = match *self {
            Labels::I64(l) => {
                let (l, ignore) = (&l[at..at + n], i64::try_from(ignore).unwrap_or(-1));
                return (V::from_labels_i64(isa, l, ignore), scored(l, ignore));
            }
            Labels::I32(l) => {
                let (l, ignore) = (&l[at..at + n], i32::try_from(ignore).unwrap_or(-1));
                return (V::from_labels_i32(isa, l, ignore), scored(l, ignore));
            }
            Labels::U32(l) => widened(&l[at..at + n], ignore, i64::from),
            Labels::U64(l) => widened(&l[at..at + n], ignore, |v| v as i64),
            Labels::Usize(l) => widened(&l[at..at + n], ignore, |v| v as i64),
        };
        let wide = &wide[..n];
        (V::from_labels_i64(isa, wide, ignore), scored(wide, ignore))
    }
}

/// An integer type that can hold class labels: `i32`, `i64`, `u32`, `u64` or `usize`.
///
/// ```
/// use losskit::Reduction;
/// let logits = [2.0f32, 0.0, 0.0, 2.0];
/// let a = losskit::cross_entropy(&logits, 2, &[0u8 as u32, 1], Reduction::Mean).unwrap();
/// let b = losskit::cross_entropy(&logits, 2, &[0i64, 1], Reduction::Mean).unwrap();
/// assert_eq!(a, b);
/// ```
pub trait Label: label::Sealed + Copy + Send + Sync + 'static {
    /// The label as an `i128`, which holds every value of every label type.
    fn to_i128(self) -> i128;
}

macro_rules! impl_label {
    ($($t:ty => $v:ident),*) => {$(
        impl label::Sealed for $t {
            fn labels(labels: &[$t]) -> Labels<'_> {
                Labels::$v(labels)
            }

            fn outside(labels: &[$t], lo: i128, hi: i128, ignore: i128) -> Result<usize, usize> {
                let (min, max) = (<$t>::MIN as i128, <$t>::MAX as i128);
                // An `ignore` the type cannot hold matches no label.
                let ignore = (min..=max).contains(&ignore).then_some(ignore as $t);
                if hi - 1 < min || lo > max || hi <= lo {
                    // No value of the type is in range: every label is outside.
                    let (min, max) = (<$t>::MIN, <$t>::MAX);
                    return super::label_scan::scan(labels, max, min, ignore);
                }
                // Inclusive bounds, both values of the type: `lo..hi` holds exactly the labels
                // in `lo..=last`.
                let (lo, last) = (lo.max(min) as $t, (hi - 1).min(max) as $t);
                super::label_scan::scan(labels, lo, last, ignore)
            }
        }
        impl Label for $t {
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn to_i128(self) -> i128 {
                self as i128
            }
        }
    )*};
}
impl_label!(i32 => I32, i64 => I64, u32 => U32, u64 => U64, usize => Usize);

/// Checks that every label is in `0..classes` or is `ignore`, and returns the summed weights of
/// the scored rows (their count without weights): what a weighted mean divides by. `weight`,
/// if given, has `classes` elements (checked by the caller).
///
/// When `ignore` is outside `0..classes` (PyTorch's -100), the labels outside it are found a
/// chunk at a time in the label type's own width ([`outside`]), and only those are
/// compared with `ignore`, so that the check of millions of short rows' labels runs at their
/// memory speed rather than one `i128` compare at a time.
///
/// [`outside`]: label::Sealed::outside
pub(crate) fn scored_weight<T: Float, L: Label>(
    labels: &[L],
    classes: usize,
    ignore: i128,
    weight: Option<&[T]>,
) -> Result<f64, LossError> {
    if !(0..classes as i128).contains(&ignore) {
        let ignored = L::outside(labels, 0, classes as i128, ignore).map_err(|row| {
            LossError::LabelOutOfRange {
                row,
                label: labels[row].to_i128(),
                classes,
            }
        })?;
        let Some(w) = weight else {
            // The count the loop below would sum, exactly (rows are far fewer than 2^53).
            return Ok((labels.len() - ignored) as f64);
        };
        // In row order, as the loop below, so that the divisor keeps its bits.
        let mut total = 0.0;
        for &label in labels {
            let label = label.to_i128();
            if label != ignore {
                total += w[label as usize].to_f64();
            }
        }
        return Ok(total);
    }
    let mut total = 0.0;
    for (row, &label) in labels.iter().enumerate() {
        let label = label.to_i128();
        if label == ignore {
            continue;
        }
        if !(0..classes as i128).contains(&label) {
            return Err(LossError::LabelOutOfRange {
                row,
                label,
                classes,
            });
        }
        total += weight.map_or(1.0, |w| w[label as usize].to_f64());
    }
    Ok(total)
}

/// Cross-entropy with options: class weights, an ignored label and label smoothing.
///
/// A plain `Clone` builder; setters take and return `Self`, so options can be set
/// conditionally. The defaults are PyTorch's: no weights, `ignore_index = -100`, no smoothing.
///
/// ```
/// use losskit::{CrossEntropy, Reduction};
/// let logits = [2.0f32, 0.5, -1.0, /* row 2 */ 0.0, 0.0, 3.0];
/// let labels = [0i64, -100];
/// let weights = [1.0f32, 2.0, 0.5];
/// let mut ce = CrossEntropy::new().ignore_index(-100);
/// if true {
///     ce = ce.weight(&weights).label_smoothing(0.1);
/// }
/// let loss = ce.loss(&logits, 3, &labels, Reduction::Mean)?;
/// assert!(loss > 0.0 && loss.is_finite());
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CrossEntropy<'w, T> {
    pub(super) weight: Option<&'w [T]>,
    pub(super) ignore_index: i64,
    pub(super) label_smoothing: f64,
    pub(super) top_k: usize,
    pub(super) z_loss: f64,
    pub(super) softcap: Option<T>,
}

impl<T: Float> Default for CrossEntropy<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'w, T: Float> CrossEntropy<'w, T> {
    /// PyTorch's defaults: no class weights, `ignore_index = -100`, `label_smoothing = 0`.
    pub fn new() -> Self {
        CrossEntropy {
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            top_k: 5,
            z_loss: 0.0,
            softcap: None,
        }
    }

    /// Per-class weights (`len == classes`, checked when the loss is computed).
    pub fn weight(mut self, weight: &'w [T]) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Rows whose label equals `index` contribute nothing (0 in `each`). Only for class-label
    /// targets; probability targets ignore it, as in PyTorch.
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = index;
        self
    }

    /// The `k` of [`CeStats::top_k_accuracy`] in [`stats`](Self::stats) (default 5; at least 1,
    /// checked when the statistics are computed).
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// PaLM's auxiliary z-loss: adds `z · lse²` to each scored row's loss (`lse` the row's
    /// log-sum-exp of the logits), and its gradient `2z · lse · softmax` to the row's gradient,
    /// in every form. The term is not weighted by class weights; [`Reduction::Mean`] divides by
    /// what it always does (the scored rows, or their summed weights). Must be finite and
    /// `>= 0` (checked when the loss is computed); 0, the default, adds nothing. An `f64`
    /// whatever `T`, like [`label_smoothing`](Self::label_smoothing): it is applied in the row's
    /// `f64` finish.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let logits = [2.0f32, 0.0];
    /// let plain = CrossEntropy::new().loss(&logits, 2, &[0i64], Reduction::Sum)?;
    /// let z = CrossEntropy::new().z_loss(1e-2).loss(&logits, 2, &[0i64], Reduction::Sum)?;
    /// let lse = (2.0f32.exp() + 1.0).ln();
    /// assert!((z - plain - 1e-2 * lse * lse).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn z_loss(mut self, z: f64) -> Self {
        self.z_loss = z;
        self
    }

    /// Gemma 2's logit softcap: every logit becomes `cap · tanh(x / cap)` before the softmax
    /// (a `-inf` logit becomes `-cap`), in every form; gradients are with respect to the raw
    /// logits, through the `tanh`. Must be finite and `> 0` (checked when the loss is
    /// computed). The z-loss and the statistics' entropy are those of the capped logits; the
    /// statistics' ranks compare the raw logits (the softcap is increasing, so they are the
    /// ranks of the exactly capped logits, which rounding can tie). Not available in the
    /// vocabulary-sharded forms ([`LossError::InvalidParameter`] there).
    ///
    /// Accuracy: the vector `tanh` is within 3 ULP ([`numerics`](crate::numerics)), so a capped logit is within about
    /// `4.5·u·cap` of the exact one (2.7e-7·cap for f32) and the row's loss within twice that
    /// of the exact loss of the capped row, beyond the bound of the loss itself.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let logits = [100.0f64, 0.0];
    /// let loss = CrossEntropy::new().softcap(30.0).loss(&logits, 2, &[1u32], Reduction::Sum)?;
    /// let capped = 30.0 * (100.0f64 / 30.0).tanh();
    /// let want = (capped.exp() + 1.0).ln();
    /// assert!((loss - want).abs() < 1e-12);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn softcap(mut self, cap: T) -> Self {
        self.softcap = Some(cap);
        self
    }

    /// Mixes the target with the uniform distribution: `(1 - s) target + s / classes`.
    /// Must be in `[0, 1]` (checked when the loss is computed). An `f64` whatever `T`: it
    /// weighs each row's terms in the row's `f64` finish (the crate's rule for parameter types
    /// is in the [crate docs](crate#storage-and-compute-types)).
    pub fn label_smoothing(mut self, smoothing: f64) -> Self {
        self.label_smoothing = smoothing;
        self
    }

    /// The reduced loss for class-label targets.
    ///
    /// With weights, [`Reduction::Mean`] divides by the summed weights of the non-ignored rows'
    /// labels (NaN when every row is ignored).
    ///
    /// # Errors
    /// - [`LossError::ZeroClasses`] if `classes == 0`.
    /// - [`LossError::NotMultipleOfClasses`] if `logits.len() % classes != 0`.
    /// - [`LossError::LengthMismatch`] if `labels.len()` is not the number of rows, or the
    ///   weight slice is not `classes` long.
    /// - [`LossError::InvalidParameter`] if `label_smoothing` is outside `[0, 1]` or NaN.
    /// - [`LossError::LabelOutOfRange`] if a label is outside `0..classes` and is not the
    ///   ignore index.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let loss = CrossEntropy::new().loss(&[0.0f64, 0.0], 2, &[1u32], Reduction::Sum)?;
    /// assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        classes: usize,
        labels: &[L],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.labels_spec::<L, false>(logits.len(), classes, labels)?;
        let sum = S::softmax_rows(&spec, logits, RowsOut::Reduce);
        Ok(sum.finish(sum.weight, reduction))
    }

    /// The loss of every row for class-label targets, into `out` (`len == rows`; ignored rows
    /// get 0).
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `out.len()` is not the
    /// number of rows.
    ///
    /// ```
    /// use losskit::CrossEntropy;
    /// let mut out = [1.0f32; 2];
    /// CrossEntropy::new().each(&[0.0f32, 0.0, 5.0, 5.0], 2, &[1i32, -100], &mut out)?;
    /// assert!((out[0] - std::f32::consts::LN_2).abs() < 1e-7);
    /// assert_eq!(out[1], 0.0);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        classes: usize,
        labels: &[L],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.labels_spec::<L, false>(logits.len(), classes, labels)?;
        check::same_len("out", out.len(), "rows of logits", spec.rows)?;
        S::softmax_rows(&spec, logits, RowsOut::Each(out));
        Ok(())
    }

    /// Eval statistics of class-label targets from the one sweep that computes the loss: the
    /// loss (as [`loss`](Self::loss) computes it, weights, smoothing and ignored rows
    /// included), top-1 and top-k accuracy, mean softmax entropy and perplexity. Shards of a
    /// batch combine with [`CeStats::merge`].
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::InvalidParameter`] if `top_k` is 0.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let logits = [3.0f32, 1.0, 0.0, /* row 2 */ 0.0, 1.0, 3.0];
    /// let s = CrossEntropy::new().top_k(2).stats(&logits, 3, &[0i64, 1])?;
    /// assert_eq!((s.counted(), s.accuracy(), s.top_k_accuracy()), (2, 0.5, 1.0));
    /// let loss = CrossEntropy::new().loss(&logits, 3, &[0i64, 1], Reduction::Mean)?;
    /// assert_eq!(s.loss(Reduction::Mean) as f32, loss);
    /// assert!(s.mean_entropy() > 0.0 && s.perplexity() > 1.0);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn stats<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        classes: usize,
        labels: &[L],
    ) -> Result<CeStats, LossError> {
        if self.top_k == 0 {
            return Err(LossError::InvalidParameter {
                name: "top_k",
                value: 0.0,
                requirement: ">= 1",
            });
        }
        let spec = self.labels_spec::<L, true>(logits.len(), classes, labels)?;
        let total = S::softmax_stats(&spec, logits);
        Ok(CeStats::from_total(total, self.top_k))
    }

    /// The reduced loss for probability targets (`probs` is `[rows, classes]` like `logits`).
    /// [`Reduction::Mean`] divides by the number of rows, weighted or not, as PyTorch does.
    ///
    /// # Errors
    /// - [`LossError::ZeroClasses`], [`LossError::NotMultipleOfClasses`] as for
    ///   [`loss`](Self::loss).
    /// - [`LossError::LengthMismatch`] if `probs.len() != logits.len()` or the weight slice is
    ///   not `classes` long.
    /// - [`LossError::InvalidParameter`] if `label_smoothing` is outside `[0, 1]` or NaN.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let loss = CrossEntropy::new().loss_probs(&[0.0f32, 0.0], 2, &[0.5, 0.5], Reduction::Mean)?;
    /// assert!((loss - std::f32::consts::LN_2).abs() < 1e-7);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_probs<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        classes: usize,
        probs: &[T],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.probs_spec(logits.len(), classes, probs)?;
        let sum = S::softmax_rows(&spec, logits, RowsOut::Reduce);
        Ok(sum.finish(spec.divisor, reduction))
    }

    /// The loss of every row for probability targets, into `out` (`len == rows`).
    ///
    /// # Errors
    /// As [`loss_probs`](Self::loss_probs), and [`LossError::LengthMismatch`] if `out.len()`
    /// is not the number of rows.
    ///
    /// ```
    /// use losskit::CrossEntropy;
    /// let mut out = [0.0f64; 1];
    /// CrossEntropy::new().each_probs(&[0.0, 0.0], 2, &[1.0, 0.0], &mut out)?;
    /// assert!((out[0] - std::f64::consts::LN_2).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each_probs<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        classes: usize,
        probs: &[T],
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.probs_spec(logits.len(), classes, probs)?;
        check::same_len("out", out.len(), "rows of logits", spec.rows)?;
        S::softmax_rows(&spec, logits, RowsOut::Each(out));
        Ok(())
    }

    /// Checks what every form shares and returns the number of rows.
    fn check_common(&self, len: usize, classes: usize) -> Result<usize, LossError> {
        let rows = check::rows(len, classes, self.weight)?;
        let s = self.label_smoothing;
        if !(0.0..=1.0).contains(&s) {
            return Err(LossError::InvalidParameter {
                name: "label_smoothing",
                value: s,
                requirement: "in [0, 1]",
            });
        }
        if !(self.z_loss >= 0.0 && self.z_loss.is_finite()) {
            return Err(LossError::InvalidParameter {
                name: "z_loss",
                value: self.z_loss,
                requirement: "finite and >= 0",
            });
        }
        if let Some(cap) = self.softcap {
            let cap = cap.to_f64();
            if !(cap > 0.0 && cap.is_finite()) {
                return Err(LossError::InvalidParameter {
                    name: "softcap",
                    value: cap,
                    requirement: "finite and > 0",
                });
            }
        }
        Ok(rows)
    }

    /// Checks a class-label call over `len` logits.
    pub(super) fn labels_spec<'a, L: Label, const STATS: bool>(
        &'a self,
        len: usize,
        classes: usize,
        labels: &'a [L],
    ) -> Result<Softmax<'a, T, STATS>, LossError> {
        let rows = self.check_common(len, classes)?;
        check::same_len("labels", labels.len(), "rows of logits", rows)?;
        let ignore = self.ignore_index as i128;
        let weight_total = scored_weight(labels, classes, ignore, self.weight)?;
        Ok(Softmax {
            classes,
            rows,
            target: Target::Labels {
                labels: L::labels(labels),
                ignore,
            },
            weight: self.weight,
            smoothing: self.label_smoothing,
            divisor: weight_total,
            top_k: self.top_k,
            z_loss: self.z_loss,
            softcap: self.softcap.map(Softcap::new),
        })
    }

    /// Checks a probability-target call over `len` logits.
    fn probs_spec<'a>(
        &'a self,
        len: usize,
        classes: usize,
        probs: &'a [T],
    ) -> Result<Softmax<'a, T, false>, LossError> {
        let rows = self.check_common(len, classes)?;
        check::same_len("probs", probs.len(), "logits", len)?;
        Ok(Softmax {
            classes,
            rows,
            target: Target::Probs(probs),
            weight: self.weight,
            smoothing: self.label_smoothing,
            divisor: rows as f64,
            top_k: self.top_k,
            z_loss: self.z_loss,
            softcap: self.softcap.map(Softcap::new),
        })
    }

    /// The reduced loss for class-label targets and, in the same call, its gradient with
    /// respect to `logits` into `grad`: per row, `softmax - target` (smoothed and weighted),
    /// scaled by the reduction; ignored rows get zeros.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and [`LossError::LengthMismatch`] if `grad.len() != logits.len()`.
    /// Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let mut grad = [0.0f64; 2];
    /// CrossEntropy::new().loss_and_grad(&[0.0, 0.0], 2, &[1u32], Reduction::Mean, &mut grad)?;
    /// assert!((grad[0] - 0.5).abs() < 1e-15 && (grad[1] + 0.5).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &[S],
        classes: usize,
        labels: &[L],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let spec = self.labels_spec::<L, false>(logits.len(), classes, labels)?;
        check::same_len("grad", grad.len(), "logits", logits.len())?;
        Ok(spec.reduce_with_grad(reduction, logits, grad))
    }

    /// [`loss_and_grad`](Self::loss_and_grad) that overwrites `logits` with the gradient, so
    /// that a large-vocabulary batch never needs a second buffer. The result is bit-identical
    /// to the out-of-place form.
    ///
    /// # Errors
    /// As [`loss`](Self::loss). Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let mut logits = [0.0f32, 0.0];
    /// let loss = CrossEntropy::new().loss_and_grad_in_place(&mut logits, 2, &[0i64], Reduction::Sum)?;
    /// assert!((loss - std::f32::consts::LN_2).abs() < 1e-6);
    /// assert_eq!(logits, [-0.5, 0.5]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad_in_place<S: Storage<Compute = T>, L: Label>(
        &self,
        logits: &mut [S],
        classes: usize,
        labels: &[L],
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.labels_spec::<L, false>(logits.len(), classes, labels)?;
        Ok(spec.reduce_with_grad(reduction, &[], logits))
    }

    /// The reduced loss for probability targets and its gradient with respect to `logits`.
    ///
    /// # Errors
    /// As [`loss_probs`](Self::loss_probs), and [`LossError::LengthMismatch`] if
    /// `grad.len() != logits.len()`. Nothing is written when an error is returned.
    ///
    /// ```
    /// use losskit::{CrossEntropy, Reduction};
    /// let mut grad = [0.0f64; 2];
    /// CrossEntropy::new().loss_and_grad_probs(&[0.0, 0.0], 2, &[0.25, 0.75], Reduction::Sum, &mut grad)?;
    /// assert!((grad[0] - 0.25).abs() < 1e-15 && (grad[1] + 0.25).abs() < 1e-15);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss_and_grad_probs<S: Storage<Compute = T>>(
        &self,
        logits: &[S],
        classes: usize,
        probs: &[T],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<T, LossError> {
        let spec = self.probs_spec(logits.len(), classes, probs)?;
        check::same_len("grad", grad.len(), "logits", logits.len())?;
        Ok(spec.reduce_with_grad(reduction, logits, grad))
    }
}

/// Cross-entropy of class-label targets, PyTorch's `F.cross_entropy(logits, labels)`:
/// `logsumexp(row) - row[label]` per row, reduced by `reduction`. See [`CrossEntropy`] for weights, `ignore_index`
/// (here PyTorch's default, -100) and label smoothing.
///
/// # Errors
/// As [`CrossEntropy::loss`].
///
/// ```
/// use losskit::Reduction;
/// // Two rows of three classes; labels of any integer type.
/// let logits = [2.0f32, 1.0, 0.1, 0.5, 2.5, 0.3];
/// let loss = losskit::cross_entropy(&logits, 3, &[0usize, 1], Reduction::Mean)?;
/// assert!((loss - 0.3185).abs() < 1e-3);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn cross_entropy<S: Storage, L: Label>(
    logits: &[S],
    classes: usize,
    labels: &[L],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    CrossEntropy::new().loss(logits, classes, labels, reduction)
}

/// Cross-entropy against probability targets (`probs` is `[rows, classes]`), PyTorch's
/// `F.cross_entropy(logits, probs)`: `-Σ probs · log_softmax(row)`, reduced over rows.
///
/// # Errors
/// As [`CrossEntropy::loss_probs`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::cross_entropy_probs(&[0.0f64, 0.0], 2, &[0.25, 0.75], Reduction::Sum)?;
/// assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn cross_entropy_probs<S: Storage>(
    logits: &[S],
    classes: usize,
    probs: &[S::Compute],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    CrossEntropy::new().loss_probs(logits, classes, probs, reduction)
}

/// [`cross_entropy`] and its gradient with respect to `logits` in one call (see
/// [`CrossEntropy::loss_and_grad`]).
///
/// # Errors
/// As [`CrossEntropy::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let mut dlogits = [0.0f32; 4];
/// let loss = losskit::cross_entropy_and_grad(&[0.0, 0.0, 1.0, 1.0], 2, &[0i32, 1], Reduction::Mean, &mut dlogits)?;
/// assert!((loss - std::f32::consts::LN_2).abs() < 1e-6);
/// assert_eq!(dlogits, [-0.25, 0.25, 0.25, -0.25]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn cross_entropy_and_grad<S: Storage, L: Label>(
    logits: &[S],
    classes: usize,
    labels: &[L],
    reduction: Reduction,
    dlogits: &mut [S],
) -> Result<S::Compute, LossError> {
    CrossEntropy::new().loss_and_grad(logits, classes, labels, reduction, dlogits)
}

/// What each row is scored against.
#[derive(Clone, Copy)]
pub(super) enum Target<'a, T> {
    Labels { labels: Labels<'a>, ignore: i128 },
    Probs(&'a [T]),
}

/// A checked cross-entropy call: the row spec the engine runs (see [`RowSpec`]). With `STATS`
/// the sweep also gathers the eval statistics ([`CeStats`]).
pub struct Softmax<'a, T, const STATS: bool> {
    pub(super) classes: usize,
    pub(super) rows: usize,
    pub(super) target: Target<'a, T>,
    pub(super) weight: Option<&'a [T]>,
    pub(super) smoothing: f64,
    /// What [`Reduction::Mean`] divides by: the summed weights of scored rows, or the rows.
    pub(super) divisor: f64,
    pub(super) top_k: usize,
    /// The z-loss coefficient (0: none).
    pub(super) z_loss: f64,
    pub(super) softcap: Option<Softcap<T>>,
}

/// A scored row: its coefficients, and for a class-label row its class, that class's weight and
/// its logit, raw (for the rank and the gradient) and as the loss sees it (softcapped).
#[derive(Clone, Copy)]
pub struct SoftmaxRow<'a, T> {
    pub(super) coef: Option<Coef<'a, T>>,
    pub(super) label: Option<(usize, f64)>,
    pub(super) x_t: T,
    pub(super) y_t: T,
}

impl<T: Float> Softmax<'_, T, true> {
    /// Runs the rows with their statistics (an entry point's body, see `entry.rs`).
    pub(crate) fn run_stats<S: Storage<Compute = T>>(&self, x: &[S]) -> CeTotal {
        crate::engine::run_rows(self, x, self.rows, self.classes, RowsOut::Reduce)
    }
}

impl<T: Float> Softmax<'_, T, false> {
    /// The reduced loss, writing the gradient to `grad` (which holds the logits when `logits`
    /// is empty: in place).
    fn reduce_with_grad<S: Storage<Compute = T>>(
        &self,
        reduction: Reduction,
        logits: &[S],
        grad: &mut [S],
    ) -> T {
        let scale = reduction.row_grad_scale(self.divisor);
        let out = if logits.is_empty() {
            RowsOut::GradInPlace(grad, scale)
        } else {
            RowsOut::Grad(grad, scale)
        };
        S::softmax_rows(self, logits, out).finish(self.divisor, reduction)
    }

    /// Runs the rows (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(&self, x: &[S], out: RowsOut<'_, S>) -> LossSum {
        crate::engine::run_rows(self, x, self.rows, self.classes, out).loss
    }
}

impl<'a, T: Float, const STATS: bool> Softmax<'a, T, STATS> {
    /// A scored row's loss and weight, and its gradient recipe for `scale`, with the z-loss.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(super) fn finish_loss(
        &self,
        row: &SoftmaxRow<'a, T>,
        s: &RowStats,
        scale: f64,
    ) -> (f64, f64, RowGrad<'a, T>) {
        let (loss, weight, grad, a) = self.finish_cross_entropy(row, s, scale);
        let z = self.z_loss;
        if z == 0.0 {
            return (loss, weight, grad);
        }
        // d(z·lse²)/dx_c = 2z·lse·softmax_c: the softmax part's coefficient grows by 2z·lse.
        let lse = s.max + s.sum.ln();
        let k = T::from_f64(scale * (a + 2.0 * z * lse) / s.sum);
        (loss + z * lse * lse, weight, RowGrad { k, ..grad })
    }

    /// A scored row's cross-entropy and weight, its gradient recipe for `scale`, and the sum
    /// `A` of the target's coefficients (the softmax part of the gradient is `scale·A·p`).
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish_cross_entropy(
        &self,
        row: &SoftmaxRow<'a, T>,
        s: &RowStats,
        scale: f64,
    ) -> (f64, f64, RowGrad<'a, T>, f64) {
        let c = self.classes;
        let eps = self.smoothing;
        let Some((t, w_t)) = row.label else {
            // Probability targets: -Σ a_c (x_c - max - lse) with a_c = ((1-ε) p_c + ε/C)·w_c.
            let loss = s.sum.ln() * s.coef - s.dot;
            let grad = RowGrad {
                max: T::from_f64(s.max),
                k: T::from_f64(scale * s.coef / s.sum),
                coef: row.coef,
                target: None,
                cap: self.softcap,
            };
            return (loss, 1.0, grad, s.coef);
        };
        let (x_t, y_t) = (row.x_t, row.y_t.to_f64());
        if eps > 0.0 {
            let lse = s.sum.ln();
            let nll = -w_t * ((y_t - s.max) - lse);
            // Σ_c w_c·(-log_softmax_c) = lse·Σw - Σ w_c (x_c - max).
            let smooth = lse * s.coef - s.dot;
            let loss = (1.0 - eps) * nll + eps / c as f64 * smooth;
            // a_c = (1-ε) w_t [c = t] + (ε/C) w_c, summing to A below.
            let a = (1.0 - eps) * w_t + eps / c as f64 * s.coef;
            let spread = Coef {
                q: None,
                alpha: T::ZERO,
                beta: T::from_f64(eps / c as f64),
                r: self.weight,
            };
            let grad = RowGrad {
                max: T::from_f64(s.max),
                k: T::from_f64(scale * a / s.sum),
                coef: Some(spread),
                target: Some((t, scale * (1.0 - eps) * w_t, x_t)),
                cap: self.softcap,
            };
            (loss, w_t, grad, a)
        } else {
            let loss = -w_t * ((y_t - s.max) - s.sum.ln());
            let grad = RowGrad {
                max: T::from_f64(s.max),
                k: T::from_f64(scale * w_t / s.sum),
                coef: None,
                target: Some((t, scale * w_t, x_t)),
                cap: self.softcap,
            };
            (loss, w_t, grad, w_t)
        }
    }
}

impl<'a, T: Float, S: Storage<Compute = T>, const STATS: bool> RowSpec<S>
    for Softmax<'a, T, STATS>
{
    type Row = SoftmaxRow<'a, T>;
    type Sweep = RowStats;
    type Grad = RowGrad<'a, T>;
    type Total = CeTotal;
    const SWEEPS: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        row: usize,
        x: &[R],
    ) -> Option<SoftmaxRow<'a, T>> {
        let c = self.classes;
        let eps = self.smoothing;
        match self.target {
            Target::Labels { labels, ignore } => {
                let label = labels.get(row);
                if label == ignore {
                    return None;
                }
                let t = label as usize;
                let w_t = self.weight.map_or(1.0, |w| w[t].to_f64());
                // With smoothing the sweep also sums Σ w_c (x_c - max) and Σ w_c.
                let coef = (eps > 0.0).then_some(Coef {
                    q: None,
                    alpha: T::ZERO,
                    beta: T::ONE,
                    r: self.weight,
                });
                let x_t = x[t].to_compute();
                // Capped on the tier the sweep runs on: the same bits as the sweep's lane.
                let y_t = match self.softcap {
                    None => x_t,
                    Some(cap) => first_lane(cap.map(isa, V::splat(isa, x_t))),
                };
                Some(SoftmaxRow {
                    coef,
                    label: Some((t, w_t)),
                    x_t,
                    y_t,
                })
            }
            Target::Probs(probs) => Some(SoftmaxRow {
                coef: Some(Coef {
                    q: Some(&probs[row * c..(row + 1) * c]),
                    alpha: T::from_f64(1.0 - eps),
                    beta: T::from_f64(eps / c as f64),
                    r: self.weight,
                }),
                label: None,
                x_t: T::ZERO,
                y_t: T::ZERO,
            }),
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        row: &SoftmaxRow<'a, T>,
        seg: Range<usize>,
        stream: &[R],
        _: &[S],
    ) -> RowStats {
        let len = seg.len();
        let k = self.top_k as u64;
        // Two calls, so that the sweep without coefficients is compiled with `None` folded in:
        // a run-time `Option` in the hot loop costs registers (30% on 65536x10 gradients).
        // The softcap's form keeps the `Option` (tanh dominates it).
        match (row.coef, self.softcap) {
            (None, None) => row_stats::<V, R, Raw, STATS>(isa, stream, len, None, row.x_t, k, Raw),
            (Some(cf), None) => {
                let cf = Some(cf.segment(seg));
                row_stats::<V, R, Raw, STATS>(isa, stream, len, cf, row.x_t, k, Raw)
            }
            (cf, Some(cap)) => {
                let cf = cf.map(|cf| cf.segment(seg));
                row_stats::<V, R, Softcap<T>, STATS>(isa, stream, len, cf, row.x_t, k, cap)
            }
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = T>>(
        &self,
        row: &SoftmaxRow<'a, T>,
        s: RowStats,
        x: &[R],
        scale: f64,
    ) -> (CeTotal, f64, RowGrad<'a, T>) {
        let (loss, weight, grad) = self.finish_loss(row, &s, scale);
        let mut total = CeTotal::scored(loss, weight);
        if STATS {
            if let Some((t, _)) = row.label {
                // Ties before the target push it down; the sweep only counted them all. Only a
                // rank below k is ever asked for, so the scalar rescan runs only for a target
                // already within the top k and stops at the k-th tie: half-precision rows tie
                // by the dozen, and counting them all cost a second pass (35% of bf16 stats).
                let k = self.top_k as u64;
                let rank = if s.tied > 1 && s.above < k {
                    let still_in = (k - s.above) as usize;
                    let ties_before = x[..t]
                        .iter()
                        .filter(|v| v.to_compute() == row.x_t)
                        .take(still_in)
                        .count();
                    s.above + ties_before as u64
                } else {
                    s.above
                };
                total = total.ranked(rank, k, &s);
            }
        }
        (total, loss, grad)
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

    fn by_lanes_ok(&self, classes: usize) -> bool {
        // The one-row-per-lane path computes the plain loss and its gradient alone: no
        // statistics, no z-loss, no softcap, no smoothing.
        !STATS
            && self.z_loss == 0.0
            && self.softcap.is_none()
            && matches!(self.target, Target::Labels { .. })
            && self.smoothing == 0.0
            && classes <= SHORT_ROWS
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn by_lanes<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        src: Option<&[S]>,
        row0: usize,
        out: Option<&mut [O]>,
        scale: Option<f64>,
    ) -> CeTotal {
        CeTotal {
            loss: short_rows::<V, S, O, STATS>(isa, self, src, row0, out, scale),
            ..CeTotal::default()
        }
    }
}

/// Rows of at most this many classes take the one-row-per-lane path.
const SHORT_ROWS: usize = 32;

/// `LANES` consecutive rows of class-label cross-entropy without smoothing, one row per lane:
/// the rows are transposed into columns (blocks of `LANES` classes), so max, `exp` and `ln`
/// run on full vectors. Returns their summed state. `src` is the rows (`LANES · classes`
/// elements from row `row0`); with no `scale`, `out` (if any) gets each row's loss; with a
/// `scale`, `out` gets the rows' gradient times it, read from `src` or, when `src` is `None`,
/// from `out` itself (in place: every element is read before any is written).
///
/// The gradient is `k·exp(x_c - max)` with `k = scale·w/Σ`, less `scale·w` at the target,
/// computed in the compute type (the per-row path subtracts in `f64`: this rounds `scale·w`
/// once more, within the same few ULP of `scale·w`).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn short_rows<
    V: Lanes,
    S: Storage<Compute = V::Elem>,
    O: Storage<Compute = V::Elem>,
    const STATS: bool,
>(
    isa: V::Isa,
    spec: &Softmax<'_, V::Elem, STATS>,
    src: Option<&[S]>,
    row0: usize,
    out: Option<&mut [O]>,
    scale: Option<f64>,
) -> LossSum {
    let Target::Labels { labels, ignore } = spec.target else {
        unreachable!("by_lanes_ok admits class labels only");
    };
    let (c, lanes) = (spec.classes, V::LANES);
    let zero = V::splat(isa, V::Elem::ZERO);
    // Columns, one row per lane: load each row's classes in blocks of LANES (padded with
    // -inf) and transpose the square blocks, which is cheaper than gathers. SHORT_ROWS is a
    // multiple of every tier's lane count.
    let neg_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let mut all = [V::splat(isa, neg_inf); SHORT_ROWS];
    let padded = c.div_ceil(lanes) * lanes;
    for (jb, block) in all[..padded].chunks_exact_mut(lanes).enumerate() {
        let width = lanes.min(c - jb * lanes);
        for (r, v) in block.iter_mut().enumerate() {
            let from = r * c + jb * lanes;
            *v = match (src, out.as_deref()) {
                (Some(x), _) if width == lanes => S::load::<V>(isa, &x[from..]),
                (Some(x), _) => S::load_prefix::<V>(isa, &x[from..from + width], neg_inf),
                (None, Some(x)) if width == lanes => O::load::<V>(isa, &x[from..]),
                (None, Some(x)) => O::load_prefix::<V>(isa, &x[from..from + width], neg_inf),
                (None, None) => unreachable!("in place means an output"),
            };
        }
        V::transpose(isa, block);
    }
    let max = max_of_columns(&all[..c]);
    // Each row's label as a lane value (-1 for an ignored row: no column matches it), its
    // weight (0 if ignored), and how many rows are scored.
    let (label, count) = labels.lanes::<V>(isa, row0, ignore);
    let scored = zero.le(label);
    let w = match spec.weight {
        None => V::select(scored, V::splat(isa, V::Elem::ONE), zero),
        Some(weight) => {
            let mut label_t = [V::Elem::ZERO; 16];
            label.store(&mut label_t);
            let mut w_t = [V::Elem::ZERO; 16];
            for (w, &t) in w_t.iter_mut().zip(&label_t[..lanes]) {
                if t >= V::Elem::ZERO {
                    *w = weight[t.to_f64() as usize];
                }
            }
            V::load(isa, &w_t)
        }
    };
    // The target logits, and the exponentials in pairs of columns: two exp chains in flight.
    // Columns past `c` hold -inf, whose exp is 0. The gradient needs the exponentials: they
    // replace the columns in `all`, flushed below the normal range as the per-row sweep's
    // are (the sum is the same either way: it has a term of 1, which absorbs them).
    let mut x_t = zero;
    let (mut s0, mut s1) = (zero, zero);
    let even = c.next_multiple_of(2);
    for (j, pair) in all[..even].chunks_exact_mut(2).enumerate() {
        let (d0, d1) = (pair[0] - max, pair[1] - max);
        let (e0, e1) = if scale.is_some() {
            (
                math::exp_nonpositive(isa, d0),
                math::exp_nonpositive(isa, d1),
            )
        } else {
            (
                math::exp_nonpositive_clamped(isa, d0),
                math::exp_nonpositive_clamped(isa, d1),
            )
        };
        s0 = s0 + e0;
        s1 = s1 + e1;
        let at = V::Elem::from_usize(2 * j);
        x_t = V::select(label.eq(V::splat(isa, at)), pair[0], x_t);
        x_t = V::select(label.eq(V::splat(isa, at + V::Elem::ONE)), pair[1], x_t);
        (pair[0], pair[1]) = (e0, e1);
    }
    let sum = s0 + s1;
    let log_sum = math::ln(isa, sum);
    // The lanes of scored rows (a label of at least 0), when some are not.
    let scored = (count < lanes as u64).then(|| zero.le(label));
    let loss = only_scored(scored, zero, -(w * ((x_t - max) - log_sum)));
    let total = LossSum {
        loss: V::acc_sum(V::acc_add(V::acc_zero(isa), loss)),
        weight: match spec.weight {
            None => count as f64,
            Some(_) => V::acc_sum(V::acc_add(V::acc_zero(isa), w)),
        },
        count,
    };
    let Some(out) = out else {
        return total;
    };
    let Some(scale) = scale else {
        O::store(loss, out);
        return total;
    };
    let delta = V::splat(isa, V::Elem::from_f64(scale)) * w;
    let k = delta / sum;
    for (j, e) in all[..c].iter_mut().enumerate() {
        let g = k * *e;
        let at = V::splat(isa, V::Elem::from_usize(j));
        *e = only_scored(scored, zero, V::select(label.eq(at), g - delta, g));
    }
    for (jb, block) in all[..padded].chunks_exact_mut(lanes).enumerate() {
        V::transpose(isa, block);
        let width = lanes.min(c - jb * lanes);
        for (r, v) in block.iter().enumerate() {
            let to = r * c + jb * lanes;
            if width == lanes {
                O::store(*v, &mut out[to..]);
            } else {
                O::store_prefix(*v, &mut out[to..to + width]);
            }
        }
    }
    total
}

/// `v` in the lanes of `scored` and +0 (`zero`) in the others, so that ignored rows add +0 and
/// write +0 whatever their logits; `None` when every lane is scored.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn only_scored<V: Lanes>(scored: Option<V::Mask>, zero: V, v: V) -> V {
    match scored {
        None => v,
        Some(mask) => V::select(mask, v, zero),
    }
}

/// The lane-wise max of `cols` (not empty) in four interleaved chains, so that a row's
/// length is a quarter of the max's depth on the critical path of a short-row group (x86 `max`:
/// the order only decides which NaN or signed zero comes out, and a NaN row's sums are NaN
/// either way).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn max_of_columns<V: Lanes>(cols: &[V]) -> V {
    let mut m = [cols[0]; 4];
    for quad in cols[1..].chunks(4) {
        for (m, &col) in m.iter_mut().zip(quad) {
            *m = m.max(col);
        }
    }
    m[0].max(m[1]).max(m[2].max(m[3]))
}
