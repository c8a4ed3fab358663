//! Softmax cross-entropy over row-major `[rows, classes]` logits.
//!
//! Each row is swept once from memory in blocks that fit in L1: a vector max over the block,
//! then `Σ exp(x - max)` (and, for label smoothing and probability targets, `Σ aᶜ (xᶜ - max)`)
//! over the same block while it is still in L1. When a block raises the running max, the
//! partial sums are rescaled by `exp(old - new)` — the online log-sum-exp, applied per block
//! so that the hot loops stay branch-free. Rows are split over rayon in chunks chosen from the
//! shape alone and combined in the driver's fixed tree, so results are bit-identical for any
//! thread count. A batch of few long rows (fewer than [`SPLIT_ROWS`] rows of at least
//! [`SPLIT_CLASSES`] classes, decided from the shape alone) also splits each row into
//! `CHUNK`-class segments: their `(max, Σ exp, ...)` are merged in the same fixed tree
//! ([`RowStats::combine`]) and their gradients written in parallel, so a single huge row uses
//! every thread.
//!
//! Non-finite logits follow PyTorch's `log_softmax`: `-inf` masks a class (a masked target gives
//! `+inf`), a row of all `-inf` or with any `+inf` or NaN gives NaN.

use crate::float::sealed::Sealed;
use crate::reduce::{tree_reduce, Partial, CHUNK};
use crate::simd::dispatch::Resolved;
use crate::simd::pair::Pair;
use crate::simd::{math, Kernel, Lanes};
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

mod label {
    /// Integer types usable as class labels.
    pub trait Sealed: Sized {
        /// The slice as a [`Labels`](super::Labels): the kernels take it, not `&[Self]`, so
        /// that one compiled kernel serves every label type.
        fn labels(labels: &[Self]) -> super::Labels<'_>;
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
    #[inline(always)]
    fn get(&self, i: usize) -> i128 {
        match *self {
            Labels::I32(l) => l[i] as i128,
            Labels::I64(l) => l[i] as i128,
            Labels::U32(l) => l[i] as i128,
            Labels::U64(l) => l[i] as i128,
            Labels::Usize(l) => l[i] as i128,
        }
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
        }
        impl Label for $t {
            #[inline(always)]
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
pub(crate) fn scored_weight<T: Float, L: Label>(
    labels: &[L],
    classes: usize,
    ignore: i128,
    weight: Option<&[T]>,
) -> Result<f64, LossError> {
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
    weight: Option<&'w [T]>,
    ignore_index: i64,
    label_smoothing: f64,
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

    /// Mixes the target with the uniform distribution: `(1 - s) target + s / classes`.
    /// Must be in `[0, 1]` (checked when the loss is computed).
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
        let job = self.labels_job(logits, logits.len(), classes, labels)?;
        let [loss, weight] = S::softmax_rows(&job, None);
        Ok(finish(loss, weight, reduction))
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
        let job = self.labels_job(logits, logits.len(), classes, labels)?;
        check::same_len("out", out.len(), "rows of logits", job.rows)?;
        S::softmax_rows(&job, Some(out));
        Ok(())
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
        let job = self.probs_job(logits, logits.len(), classes, probs)?;
        let [loss, _] = S::softmax_rows(&job, None);
        Ok(finish(loss, job.divisor, reduction))
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
        let job = self.probs_job(logits, logits.len(), classes, probs)?;
        check::same_len("out", out.len(), "rows of logits", job.rows)?;
        S::softmax_rows(&job, Some(out));
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
        Ok(rows)
    }

    /// Checks a class-label call over `len` logits; `logits` is what the rows are read from
    /// (empty when they are read from the buffer being overwritten in place).
    fn labels_job<'a, S: Storage<Compute = T>, L: Label>(
        &'a self,
        logits: &'a [S],
        len: usize,
        classes: usize,
        labels: &'a [L],
    ) -> Result<Job<'a, S>, LossError> {
        let rows = self.check_common(len, classes)?;
        check::same_len("labels", labels.len(), "rows of logits", rows)?;
        let ignore = self.ignore_index as i128;
        let weight_total = scored_weight(labels, classes, ignore, self.weight)?;
        Ok(Job {
            logits,
            classes,
            rows,
            target: Target::Labels {
                labels: L::labels(labels),
                ignore,
            },
            weight: self.weight,
            smoothing: self.label_smoothing,
            divisor: weight_total,
        })
    }

    fn probs_job<'a, S: Storage<Compute = T>>(
        &'a self,
        logits: &'a [S],
        len: usize,
        classes: usize,
        probs: &'a [T],
    ) -> Result<Job<'a, S>, LossError> {
        let rows = self.check_common(len, classes)?;
        check::same_len("target", probs.len(), "logits", len)?;
        Ok(Job {
            logits,
            classes,
            rows,
            target: Target::Probs(probs),
            weight: self.weight,
            smoothing: self.label_smoothing,
            divisor: rows as f64,
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
        let job = self.labels_job(logits, logits.len(), classes, labels)?;
        check::same_len("grad", grad.len(), "logits", logits.len())?;
        job.reduce_with_grad(reduction, grad)
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
        let job = self.labels_job(&[], logits.len(), classes, labels)?;
        job.reduce_with_grad(reduction, logits)
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
        let job = self.probs_job(logits, logits.len(), classes, probs)?;
        check::same_len("grad", grad.len(), "logits", logits.len())?;
        job.reduce_with_grad(reduction, grad)
    }
}

/// Applies the reduction to a loss sum and its divisor (summed weights, or rows).
pub(crate) fn finish<T: Float>(loss: f64, divisor: f64, reduction: Reduction) -> T {
    match reduction {
        Reduction::Sum => T::from_f64(loss),
        Reduction::Mean => T::from_f64(loss / divisor),
    }
}

/// Mean cross-entropy of class-label targets, PyTorch's `F.cross_entropy(logits, labels)`:
/// `logsumexp(row) - row[label]`, reduced. See [`CrossEntropy`] for weights, `ignore_index`
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
enum Target<'a, T> {
    Labels { labels: Labels<'a>, ignore: i128 },
    Probs(&'a [T]),
}

/// A checked cross-entropy computation over all rows.
pub struct Job<'a, S: Storage> {
    /// The logits, or empty when they are read from (and overwritten in) the gradient buffer.
    logits: &'a [S],
    classes: usize,
    rows: usize,
    target: Target<'a, S::Compute>,
    weight: Option<&'a [S::Compute]>,
    smoothing: f64,
    /// What [`Reduction::Mean`] divides by: the summed weights of scored rows, or the rows.
    divisor: f64,
}

impl<S: Storage> Job<'_, S> {
    /// Runs every row; returns `[Σ loss, Σ weight of scored rows]`. With `grad_scale`, `out`
    /// receives the gradient times that scale (and holds the logits when `self.logits` is
    /// empty): then `O` is `S`; without, `out` receives each row's loss: `O` is the compute
    /// type. Called only from the entry points (`entry.rs`).
    pub(crate) fn run<O: Storage<Compute = S::Compute>>(
        &self,
        out: Option<&mut [O]>,
        grad_scale: Option<f64>,
    ) -> [f64; 2] {
        let tier = Resolved::active();
        let rows_per_chunk = (CHUNK / self.classes).max(1);
        let chunks = self.rows.div_ceil(rows_per_chunk);
        let per_leaf = if grad_scale.is_some() {
            rows_per_chunk * self.classes
        } else {
            rows_per_chunk
        };
        let split = self.rows < SPLIT_ROWS && self.classes >= SPLIT_CLASSES;
        let leaf = |i: usize, out: Option<&mut [O]>| {
            let rows = i * rows_per_chunk..self.rows.min((i + 1) * rows_per_chunk);
            tier.run(RowsKernel {
                job: self,
                rows,
                out,
                grad_scale,
                split: split.then_some(tier),
            })
        };
        tree_reduce(chunks, chunks >= 2, out, per_leaf, &leaf).unwrap_or([0.0, 0.0])
    }

    /// The reduced loss, writing the gradient to `grad` (which holds the logits when
    /// `self.logits` is empty).
    fn reduce_with_grad(
        &self,
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        let scale = match reduction {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / self.divisor,
        };
        let [loss, _] = S::softmax_rows_grad(self, grad, scale);
        Ok(finish(loss, self.divisor, reduction))
    }
}

/// Cross-entropy of a range of rows on one tier.
struct RowsKernel<'a, 'j, S: Storage, O> {
    job: &'a Job<'j, S>,
    rows: core::ops::Range<usize>,
    /// Row losses (`O` the compute type), or with `grad_scale` the rows' gradients (`O = S`).
    out: Option<&'a mut [O]>,
    grad_scale: Option<f64>,
    /// Split each row into segments swept in parallel on this tier (few long rows).
    split: Option<Resolved>,
}

/// Rows of at least this many classes are split into `CHUNK`-class segments when the batch has
/// fewer than [`SPLIT_ROWS`] rows: below it, a row is too short for a second thread to pay off.
const SPLIT_CLASSES: usize = 2 * CHUNK;
/// Batches of this many rows or more are parallel over rows alone.
const SPLIT_ROWS: usize = 16;

/// What the gradient sweep of a row needs: `g_c = k·exp(x_c - max) - scale·a_c`, then
/// `g_t -= scale·delta` for a class-label target `t`.
#[derive(Clone, Copy)]
struct RowGrad<'a, T> {
    max: T,
    k: T,
    coef: Option<Coef<'a, T>>,
    target: Option<(usize, f64)>,
}

impl<T: Float, S: Storage<Compute = T>, O: Storage<Compute = T>> RowsKernel<'_, '_, S, O> {
    /// [`row_stats`] of one row (the first `len` elements of `stream`, which goes on with what
    /// follows the row in memory), or with `split`, of its segments merged in the fixed tree.
    #[inline(always)]
    fn stats<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        stream: &[R],
        len: usize,
        coef: Option<Coef<'_, T>>,
    ) -> RowStats {
        let Some(tier) = self.split else {
            return row_stats::<V, R>(isa, stream, len, coef);
        };
        let x = &stream[..len];
        let leaf = |i: usize, _: Option<&mut [T]>| {
            let seg = i * CHUNK..x.len().min((i + 1) * CHUNK);
            tier.run(SegmentStats {
                x: &x[seg.clone()],
                coef: coef.map(|c| c.segment(seg)),
            })
        };
        let segments = x.len().div_ceil(CHUNK);
        tree_reduce(segments, true, None, 0, &leaf).unwrap_or(RowStats::EMPTY)
    }

    /// Writes one row's gradient (see [`grad_sweep`]), by segments in parallel with `split`.
    #[inline(always)]
    fn grad<V: Lanes<Elem = T>>(
        &self,
        isa: V::Isa,
        src: Option<&[S]>,
        dst: &mut [O],
        g: &RowGrad<'_, T>,
        scale: T,
    ) {
        let Some(tier) = self.split else {
            return grad_sweep::<Pair<V>, S, O>(isa, src, dst, g, scale);
        };
        let leaf = |i: usize, dst: Option<&mut [O]>| {
            let dst = dst.unwrap_or_default();
            let seg = i * CHUNK..i * CHUNK + dst.len();
            tier.run(GradSegment {
                src: src.map(|s| &s[seg.clone()]),
                dst,
                g: RowGrad {
                    coef: g.coef.map(|c| c.segment(seg)),
                    ..*g
                },
                scale,
            })
        };
        let segments = dst.len().div_ceil(CHUNK);
        tree_reduce(segments, true, Some(dst), CHUNK, &leaf);
    }

    /// One row's `(loss, weight, gradient recipe)`; the recipe is `None` for an ignored row.
    /// The row is the first `classes` elements of `stream`, which goes on with what follows it.
    #[inline(always)]
    fn row<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        row: usize,
        stream: &[R],
    ) -> (f64, f64, Option<RowGrad<'_, T>>) {
        let job = self.job;
        let c = job.classes;
        let x = &stream[..c];
        let eps = job.smoothing;
        let scale = self.grad_scale.unwrap_or(0.0);
        match job.target {
            Target::Labels { labels, ignore } => {
                let label = labels.get(row);
                if label == ignore {
                    return (0.0, 0.0, None);
                }
                let t = label as usize;
                let w_t = job.weight.map_or(1.0, |w| w[t].to_f64());
                if eps > 0.0 {
                    let sums = Coef {
                        q: None,
                        alpha: T::ZERO,
                        beta: T::ONE,
                        r: job.weight,
                    };
                    let s = self.stats::<V, R>(isa, stream, c, Some(sums));
                    let lse = s.sum.ln();
                    let nll = -w_t * ((x[t].to_compute().to_f64() - s.max) - lse);
                    // Σ_c w_c·(-log_softmax_c) = lse·Σw - Σ w_c (x_c - max).
                    let smooth = lse * s.coef - s.dot;
                    let loss = (1.0 - eps) * nll + eps / c as f64 * smooth;
                    // a_c = (1-ε) w_t [c = t] + (ε/C) w_c, summing to A below.
                    let a = (1.0 - eps) * w_t + eps / c as f64 * s.coef;
                    let spread = Coef {
                        q: None,
                        alpha: T::ZERO,
                        beta: T::from_f64(eps / c as f64),
                        r: job.weight,
                    };
                    let grad = RowGrad {
                        max: T::from_f64(s.max),
                        k: T::from_f64(scale * a / s.sum),
                        coef: Some(spread),
                        target: Some((t, scale * (1.0 - eps) * w_t)),
                    };
                    (loss, w_t, Some(grad))
                } else {
                    let s = self.stats::<V, R>(isa, stream, c, None);
                    let loss = -w_t * ((x[t].to_compute().to_f64() - s.max) - s.sum.ln());
                    let grad = RowGrad {
                        max: T::from_f64(s.max),
                        k: T::from_f64(scale * w_t / s.sum),
                        coef: None,
                        target: Some((t, scale * w_t)),
                    };
                    (loss, w_t, Some(grad))
                }
            }
            Target::Probs(probs) => {
                let p = &probs[row * c..(row + 1) * c];
                let alpha = T::from_f64(1.0 - eps);
                let beta = T::from_f64(eps / c as f64);
                let coef = Coef {
                    q: Some(p),
                    alpha,
                    beta,
                    r: job.weight,
                };
                let s = self.stats::<V, R>(isa, stream, c, Some(coef));
                // -Σ a_c (x_c - max - lse) with a_c = ((1-ε) p_c + ε/C)·w_c.
                let loss = s.sum.ln() * s.coef - s.dot;
                let grad = RowGrad {
                    max: T::from_f64(s.max),
                    k: T::from_f64(scale * s.coef / s.sum),
                    coef: Some(coef),
                    target: None,
                };
                (loss, 1.0, Some(grad))
            }
        }
    }
}

impl<T: Float, S: Storage<Compute = T>, O: Storage<Compute = T>> Kernel<T>
    for RowsKernel<'_, '_, S, O>
{
    type Output = [f64; 2];

    #[inline(always)]
    fn run<V: Lanes<Elem = T>>(mut self, isa: V::Isa) -> [f64; 2] {
        let job = self.job;
        let c = job.classes;
        let (mut loss_sum, mut weight_sum) = (0.0f64, 0.0f64);
        let mut first = self.rows.start;
        if let Target::Labels { labels, ignore } = job.target {
            if job.smoothing == 0.0 && c <= SHORT_ROWS && V::LANES > 1 && self.grad_scale.is_none()
            {
                // Short rows: one row per lane, so no lane idles and no horizontal reduction.
                let lanes = V::LANES;
                let groups = self.rows.len() / lanes;
                for g in 0..groups {
                    let out = self
                        .out
                        .as_deref_mut()
                        .map(|o| &mut o[g * lanes..(g + 1) * lanes]);
                    let [l, w] = short_rows::<V, S, O>(
                        isa,
                        job,
                        self.rows.start + g * lanes,
                        labels,
                        ignore,
                        out,
                    );
                    loss_sum += l;
                    weight_sum += w;
                }
                first += groups * lanes;
            }
        }
        let in_place = job.logits.is_empty();
        let mut out = self.out.take();
        for row in first..self.rows.end {
            let k = row - self.rows.start;
            let (loss, weight, grad) = match (&out, in_place) {
                (Some(buf), true) => self.row::<V, O>(isa, row, &buf[k * c..]),
                _ => self.row::<V, S>(isa, row, &job.logits[row * c..]),
            };
            loss_sum += loss;
            weight_sum += weight;
            let Some(out) = out.as_deref_mut() else {
                continue;
            };
            if self.grad_scale.is_none() {
                out[k] = O::from_compute(T::from_f64(loss));
                continue;
            }
            let dst = &mut out[k * c..(k + 1) * c];
            match grad {
                None => dst.fill(O::from_compute(T::ZERO)),
                Some(g) => {
                    let src = if in_place {
                        None
                    } else {
                        Some(&job.logits[row * c..(row + 1) * c])
                    };
                    // The target's logit, read before an in-place sweep overwrites it.
                    let x_t = g.target.map(|(t, _)| match src {
                        Some(s) => s[t].to_compute(),
                        None => dst[t].to_compute(),
                    });
                    let scale = T::from_f64(self.grad_scale.unwrap_or(0.0));
                    self.grad::<V>(isa, src, dst, &g, scale);
                    if let (Some((t, delta)), Some(x_t)) = (g.target, x_t) {
                        dst[t] = O::from_compute(target_grad::<V>(isa, &g, t, x_t, delta, scale));
                    }
                }
            }
        }
        [loss_sum, weight_sum]
    }
}

/// Writes one row's gradient `k·exp(x - max) - scale·a` into `dst`, reading `x` from `src`, or
/// from `dst` itself when `src` is `None` (in place: each vector is read before it is written).
/// Callers run it on [`Pair`]s, so that two exp chains interleave (see BENCHMARKS.md: 10–15%
/// faster on Zen 3 than a vector at a time).
#[inline(always)]
fn grad_sweep<V: Lanes, S: Storage<Compute = V::Elem>, O: Storage<Compute = V::Elem>>(
    isa: V::Isa,
    src: Option<&[S]>,
    dst: &mut [O],
    g: &RowGrad<'_, V::Elem>,
    scale: V::Elem,
) {
    let lanes = V::LANES;
    let n = dst.len();
    let whole = n - n % lanes;
    let max = V::splat(isa, g.max);
    let k = V::splat(isa, g.k);
    let neg_scale = V::splat(isa, -scale);
    let mut at = 0;
    while at < whole {
        let x = match src {
            Some(s) => S::load::<V>(isa, &s[at..]),
            None => O::load::<V>(isa, &dst[at..]),
        };
        let mut v = k * math::exp_nonpositive(isa, x - max);
        if let Some(cf) = g.coef {
            v = coef_vec::<V>(isa, cf, at, None).mul_add(neg_scale, v);
        }
        O::store(v, &mut dst[at..]);
        at += lanes;
    }
    if whole < n {
        let rest = n - whole;
        let x = match src {
            Some(s) => S::load_prefix::<V>(isa, &s[whole..n], V::Elem::ZERO),
            None => O::load_prefix::<V>(isa, &dst[whole..], V::Elem::ZERO),
        };
        let mut v = k * math::exp_nonpositive(isa, x - max);
        if let Some(cf) = g.coef {
            v = coef_vec::<V>(isa, cf, whole, Some(rest)).mul_add(neg_scale, v);
        }
        O::store_prefix(v, &mut dst[whole..]);
    }
}

/// The gradient of a class-label row at its target `t`, whose logit is `x_t`: what
/// [`grad_sweep`] computes in that lane (the same operations, so the same bits), minus `delta`,
/// in `f64`, rounded once. Computed apart from the sweep's stored value so that a 16-bit
/// gradient is rounded once: the sweep's `p_t` rounded to bf16 and then reduced by 1 would
/// lose all the digits of `p_t - 1` near 1.
#[inline(always)]
fn target_grad<V: Lanes>(
    isa: V::Isa,
    g: &RowGrad<'_, V::Elem>,
    t: usize,
    x_t: V::Elem,
    delta: f64,
    scale: V::Elem,
) -> V::Elem {
    let x = V::splat(isa, x_t) - V::splat(isa, g.max);
    let mut v = V::splat(isa, g.k) * math::exp_nonpositive(isa, x);
    if let Some(cf) = g.coef {
        v = V::splat(isa, coef_at(cf, t)).mul_add(V::splat(isa, -scale), v);
    }
    let mut lanes = [V::Elem::ZERO; 32];
    v.store(&mut lanes[..V::LANES]);
    V::Elem::from_f64(lanes[0].to_f64() - delta)
}

/// Rows of at most this many classes take the one-row-per-lane path.
const SHORT_ROWS: usize = 32;

/// `LANES` consecutive rows of class-label cross-entropy without smoothing, one row per lane:
/// the rows are transposed into columns (blocks of `LANES` classes), so max, `exp` and `ln`
/// run on full vectors. Returns `[Σ loss, Σ weight]` and writes the row losses to `out`.
#[inline(always)]
fn short_rows<V: Lanes, S: Storage<Compute = V::Elem>, O: Storage<Compute = V::Elem>>(
    isa: V::Isa,
    job: &Job<'_, S>,
    row0: usize,
    labels: Labels<'_>,
    ignore: i128,
    out: Option<&mut [O]>,
) -> [f64; 2] {
    let (x, c, lanes) = (job.logits, job.classes, V::LANES);
    let base = row0 * c;
    // Columns, one row per lane: load each row's classes in blocks of LANES (padded with
    // -inf) and transpose the square blocks, which is cheaper than gathers. SHORT_ROWS is a
    // multiple of every tier's lane count.
    let neg_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let mut all = [V::splat(isa, neg_inf); SHORT_ROWS];
    for (jb, block) in all[..c.div_ceil(lanes) * lanes]
        .chunks_exact_mut(lanes)
        .enumerate()
    {
        let width = lanes.min(c - jb * lanes);
        for (r, v) in block.iter_mut().enumerate() {
            let from = base + r * c + jb * lanes;
            *v = if width == lanes {
                S::load::<V>(isa, &x[from..])
            } else {
                S::load_prefix::<V>(isa, &x[from..from + width], neg_inf)
            };
        }
        V::transpose(isa, block);
    }
    let cols = &all[..c];
    let mut max = cols[0];
    for &col in &cols[1..] {
        max = max.max(col);
    }
    // Pairs of columns: two exp chains in flight. Columns past `c` hold -inf, whose exp is 0.
    let (mut s0, mut s1) = (V::splat(isa, V::Elem::ZERO), V::splat(isa, V::Elem::ZERO));
    for pair in all[..c.next_multiple_of(2)].chunks_exact(2) {
        s0 = s0 + math::exp_nonpositive_clamped(isa, pair[0] - max);
        s1 = s1 + math::exp_nonpositive_clamped(isa, pair[1] - max);
    }
    let sum = s0 + s1;
    let log_sum = math::ln(isa, sum);
    // The target logit and weight of each lane's row (ignored rows: weight 0, loss 0 below).
    let mut x_t = [V::Elem::ZERO; 16];
    let mut w_t = [V::Elem::ZERO; 16];
    let mut scored = [false; 16];
    for r in 0..lanes {
        let label = labels.get(row0 + r);
        if label != ignore {
            let t = label as usize;
            x_t[r] = x[base + r * c + t].to_compute();
            w_t[r] = job.weight.map_or(V::Elem::ONE, |w| w[t]);
            scored[r] = true;
        }
    }
    let w = V::load(isa, &w_t);
    let loss = -(w * ((V::load(isa, &x_t) - max) - log_sum));
    let mut losses = [V::Elem::ZERO; 16];
    loss.store(&mut losses);
    let (mut loss_sum, mut weight_sum) = (0.0, 0.0);
    for r in 0..lanes {
        if !scored[r] {
            losses[r] = V::Elem::ZERO;
        }
        loss_sum += losses[r].to_f64();
        weight_sum += w_t[r].to_f64();
    }
    if let Some(out) = out {
        for (o, &l) in out.iter_mut().zip(&losses[..lanes]) {
            *o = O::from_compute(l);
        }
    }
    [loss_sum, weight_sum]
}

/// Per-element coefficients `a_c = (q_c·alpha + beta)·r_c` of the dot product a row sweep
/// accumulates (`q`, `r` absent mean 1).
#[derive(Clone, Copy)]
struct Coef<'a, T> {
    q: Option<&'a [T]>,
    alpha: T,
    beta: T,
    r: Option<&'a [T]>,
}

impl<'a, T> Coef<'a, T> {
    /// The coefficients of the classes in `seg` (the slices cut to it).
    fn segment(self, seg: core::ops::Range<usize>) -> Coef<'a, T> {
        Coef {
            q: self.q.map(|q| &q[seg.clone()]),
            r: self.r.map(|r| &r[seg]),
            ..self
        }
    }
}

/// One sweep of a row: its max, `Σ exp(x - max)`, and optionally `Σ a_c (x_c - max)`, `Σ a_c`.
#[derive(Clone, Copy, Debug)]
struct RowStats {
    max: f64,
    sum: f64,
    dot: f64,
    coef: f64,
}

impl RowStats {
    /// The stats of no classes.
    const EMPTY: RowStats = RowStats {
        max: f64::NEG_INFINITY,
        sum: 0.0,
        dot: 0.0,
        coef: 0.0,
    };
}

impl Partial for RowStats {
    /// The stats of two adjacent segments of a row, as one sweep of both would give them (up to
    /// rounding): each part is moved to the common max, `sum·exp(max - m)` and
    /// `dot + coef·(max - m)`. A part without a finite max (all `-inf`, or empty) is added as it
    /// is, as [`row_stats`] does with blocks seen before the first finite max: its sum is 0 (or
    /// NaN) and its dot already holds `Σ a·x` (`-inf`, or NaN).
    #[inline]
    fn combine(self, other: RowStats) -> RowStats {
        let m = self.max.max(other.max);
        let shift = |s: RowStats| {
            if s.max == f64::NEG_INFINITY {
                (s.sum, s.dot)
            } else {
                let d = s.max - m;
                (s.sum * d.exp(), s.dot + s.coef * d)
            }
        };
        let ((s1, d1), (s2, d2)) = (shift(self), shift(other));
        RowStats {
            max: m,
            sum: s1 + s2,
            dot: d1 + d2,
            coef: self.coef + other.coef,
        }
    }
}

/// [`row_stats`] of one segment of a split row, on one tier.
struct SegmentStats<'a, R: Storage> {
    x: &'a [R],
    coef: Option<Coef<'a, R::Compute>>,
}

impl<R: Storage> Kernel<R::Compute> for SegmentStats<'_, R> {
    type Output = RowStats;

    #[inline(always)]
    fn run<V: Lanes<Elem = R::Compute>>(self, isa: V::Isa) -> RowStats {
        row_stats::<V, R>(isa, self.x, self.x.len(), self.coef)
    }
}

/// [`grad_sweep`] of one segment of a split row, on one tier.
struct GradSegment<'a, S: Storage, O: Storage> {
    src: Option<&'a [S]>,
    dst: &'a mut [O],
    g: RowGrad<'a, S::Compute>,
    scale: S::Compute,
}

impl<T: Float, S: Storage<Compute = T>, O: Storage<Compute = T>> Kernel<T>
    for GradSegment<'_, S, O>
{
    type Output = f64;

    #[inline(always)]
    fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> f64 {
        grad_sweep::<Pair<V>, S, O>(isa, self.src, self.dst, &self.g, self.scale);
        0.0
    }
}

/// How many blocks ahead of the exp pass the stream (the row and what follows it) is
/// prefetched, and the cache line size.
const PREFETCH_BLOCKS: usize = 2;
const LINE: usize = 64;

/// Vectors per block: 64 vectors (2 KiB of f32 on AVX2, 4 KiB on AVX-512) stay in L1 between
/// the two passes, and the per-block work (a compare, a widening add) is amortised over them.
const BLOCK_VECS: usize = 64;

/// Sweeps one row (see the module docs): the first `len` elements of `stream`, whose remainder
/// (what follows the row in memory, typically the next rows) is only prefetched, up to
/// [`PREFETCH_BLOCKS`] blocks past the row's end. A segment of a split row is its own stream.
///
/// Accuracy: each block's exponentials are summed in four f32 (f64) lane accumulators of at
/// most `BLOCK_VECS / 4 + 4` terms, which are added, widened exactly, into an `f64` vector that
/// is only reduced at the end of the row (or when the max moves). The sum `s` of the row is so
/// within `(BLOCK_VECS / 4 + 6)·u·s` of exact (with `u` the element type's unit roundoff: about
/// 1.3e-6 relative for f32), plus one ulp per term from `exp_nonpositive_clamped`, whose clamp
/// of `x - max` below `ln(MIN_POSITIVE)` adds at most 1.2e-38 (f32) a class to a sum of at
/// least 1; the log-sum-exp is then within that much, absolutely.
#[inline(always)]
fn row_stats<V: Lanes, R: Storage<Compute = V::Elem>>(
    isa: V::Isa,
    stream: &[R],
    len: usize,
    coef: Option<Coef<'_, V::Elem>>,
) -> RowStats {
    let x = &stream[..len];
    let neg_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let lanes = V::LANES;
    let block = lanes * BLOCK_VECS;
    let zero = V::splat(isa, V::Elem::ZERO);
    let (mut max, mut sum, mut dot, mut coef_sum) = (neg_inf, 0.0f64, 0.0f64, 0.0f64);
    // Σ exp(x - max) of the blocks since `max` last moved.
    let mut acc = V::acc_zero(isa);
    for (b, xb) in x.chunks(block).enumerate() {
        let start = b * block;
        let whole = xb.len() - xb.len() % lanes;
        let pairs = whole - whole % (2 * lanes);
        // Pass 1: the block's max, lane-wise, in two chains.
        let (mut m0, mut m1) = (V::splat(isa, neg_inf), V::splat(isa, neg_inf));
        for xv in xb[..pairs].chunks_exact(2 * lanes) {
            m0 = m0.max(R::load::<V>(isa, xv));
            m1 = m1.max(R::load::<V>(isa, &xv[lanes..]));
        }
        if pairs < whole {
            m0 = m0.max(R::load::<V>(isa, &xb[pairs..]));
        }
        if whole < xb.len() {
            m1 = m1.max(R::load_prefix::<V>(isa, &xb[whole..], neg_inf));
        }
        let mv = m0.max(m1);
        // Only a block that raises the max pays for the horizontal reduction (NaN lanes do not
        // compare greater; their NaN reaches the sum in pass 2).
        if V::any(V::splat(isa, max).lt(mv)) {
            let new_max = mv.reduce_max();
            if max > neg_inf {
                // Rescale what was summed against the old max.
                let shift = max.to_f64() - new_max.to_f64();
                sum = (sum + V::acc_sum(acc)) * shift.exp();
                acc = V::acc_zero(isa);
                dot += shift * coef_sum;
            }
            max = new_max;
        }
        if max == neg_inf {
            // Nothing finite yet: exp contributes 0, but NaN must survive, and a·x keeps the
            // -inf (or 0·-inf = NaN) PyTorch would produce.
            for (i, &v) in xb.iter().enumerate() {
                if v.to_compute().to_f64().is_nan() {
                    sum = f64::NAN;
                }
                if let Some(cf) = coef {
                    let a = coef_at(cf, start + i).to_f64();
                    dot += a * v.to_compute().to_f64();
                    coef_sum += a;
                }
            }
            continue;
        }
        // Pass 2, from L1: Σ exp(x - max), four vectors a step so that four independent exp
        // chains and sums are in flight; with coefficients, Σ a (x - max) too.
        let mv = V::splat(isa, max);
        let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
        let (mut d, mut a_acc) = (zero, zero);
        let quads = whole - whole % (4 * lanes);
        for (j, xv) in xb[..quads].chunks_exact(4 * lanes).enumerate() {
            // Pass 1 of the block after next reads from DRAM; start those lines now so that
            // the memory stream overlaps this block's exp work instead of stalling pass 1. Near
            // the row's end they are the next row's (a row of a few blocks would otherwise
            // begin every max pass with a miss to DRAM).
            let ahead = start + PREFETCH_BLOCKS * block + 4 * j * lanes;
            for line in (0..4 * lanes).step_by(LINE / core::mem::size_of::<R>()) {
                V::prefetch(isa, stream.get(ahead + line..).unwrap_or_default());
            }
            let c0 = R::load::<V>(isa, xv) - mv;
            let c1 = R::load::<V>(isa, &xv[lanes..]) - mv;
            let c2 = R::load::<V>(isa, &xv[2 * lanes..]) - mv;
            let c3 = R::load::<V>(isa, &xv[3 * lanes..]) - mv;
            s0 = s0 + math::exp_nonpositive_clamped(isa, c0);
            s1 = s1 + math::exp_nonpositive_clamped(isa, c1);
            s2 = s2 + math::exp_nonpositive_clamped(isa, c2);
            s3 = s3 + math::exp_nonpositive_clamped(isa, c3);
            if let Some(cf) = coef {
                let at = start + 4 * j * lanes;
                for (k, c) in [c0, c1, c2, c3].into_iter().enumerate() {
                    let a = coef_vec::<V>(isa, cf, at + k * lanes, None);
                    d = a.mul_add(c, d);
                    a_acc = a_acc + a;
                }
            }
        }
        for (j, xv) in xb[quads..whole].chunks_exact(lanes).enumerate() {
            let c0 = R::load::<V>(isa, xv) - mv;
            s0 = s0 + math::exp_nonpositive_clamped(isa, c0);
            if let Some(cf) = coef {
                let a = coef_vec::<V>(isa, cf, start + quads + j * lanes, None);
                d = a.mul_add(c0, d);
                a_acc = a_acc + a;
            }
        }
        if whole < xb.len() {
            let n = xb.len() - whole;
            let centered = R::load_prefix::<V>(isa, &xb[whole..], neg_inf) - mv;
            s1 = s1 + math::exp_nonpositive_clamped(isa, centered);
            if let Some(cf) = coef {
                let a = coef_vec::<V>(isa, cf, start + whole, Some(n));
                let keep = V::first_lanes(isa, n);
                d = d + V::select(keep, a * centered, zero);
                a_acc = a_acc + a;
            }
        }
        acc = V::acc_add(acc, (s0 + s1) + (s2 + s3));
        if coef.is_some() {
            dot += V::acc_sum(V::acc_add(V::acc_zero(isa), d));
            coef_sum += V::acc_sum(V::acc_add(V::acc_zero(isa), a_acc));
        }
    }
    RowStats {
        max: max.to_f64(),
        sum: sum + V::acc_sum(acc),
        dot,
        coef: coef_sum,
    }
}

/// `a_c` for one class.
#[inline(always)]
fn coef_at<T: Float>(cf: Coef<'_, T>, c: usize) -> T {
    let q = cf.q.map_or(T::ZERO, |q| q[c]);
    let r = cf.r.map_or(T::ONE, |r| r[c]);
    (q * cf.alpha + cf.beta) * r
}

/// `a_c` for the lanes starting at class `c` (`n` of them for a prefix; padding lanes are 0).
#[inline(always)]
fn coef_vec<V: Lanes>(isa: V::Isa, cf: Coef<'_, V::Elem>, c: usize, n: Option<usize>) -> V {
    let zero = V::splat(isa, V::Elem::ZERO);
    let q = match cf.q {
        Some(q) => load_at::<V>(isa, q, c, n),
        None => zero,
    };
    let base = q.mul_add(V::splat(isa, cf.alpha), V::splat(isa, cf.beta));
    let a = match cf.r {
        Some(r) => base * load_at::<V>(isa, r, c, n),
        None => base,
    };
    match n {
        Some(n) => V::select(V::first_lanes(isa, n), a, zero),
        None => a,
    }
}

/// The lanes of `s` starting at `c`: a whole vector, or the `n` elements of a prefix.
#[inline(always)]
fn load_at<V: Lanes>(isa: V::Isa, s: &[V::Elem], c: usize, n: Option<usize>) -> V {
    match n {
        None => V::load(isa, &s[c..]),
        Some(n) => V::load_prefix(isa, &s[c..c + n], V::Elem::ZERO),
    }
}
