//! PyTorch's `cosine_embedding_loss` over row-major `[rows, dim]` pairs `x1`, `x2` and one
//! label `y` per row: `1 - cos` where `y = 1`, `max(0, cos - margin)` where `y = -1`, and 0 for
//! any other label (PyTorch's `where` selects neither), with
//! `cos = x1·x2 / sqrt((|x1|² + ε)(|x2|² + ε))`, `ε` PyTorch's `1e-12` (as an `f32`), so a zero
//! row has `cos = 0`.
//!
//! A paired row spec on the row driver (`x2` the second matrix). A row's sweep is three runs of
//! the flat sweep's loop ([`row_sum`]) over the row — `x1·x2`, `|x1|²`, `|x2|²` — each within the
//! flat driver's bound; the second and third read the row from L1. The norms, the square root
//! and the cosine are then computed in `f64` (PyTorch computes them in the element type; `f64`
//! only removes rounding, and the overflow of `|x1|²·|x2|²` in `f32`).
//!
//! The gradient of `cos` with respect to `x1` is `x2/denom - cos·x1/(|x1|² + 1e-12)`, written
//! per element; the one for `x2` is the same with the roles swapped, so a gradient call runs the
//! rows twice, the second time with the matrices exchanged (the products and sums commute, so
//! both runs compute the same loss bits).

use core::ops::Range;

use crate::engine::{row_sum, run_rows2, LossSum, Map4, Merge, RowSpec, RowsOut};
use crate::float::sealed::Sealed as _;
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// PyTorch's `EPSILON` added to each squared norm: a `float` constant in its kernel
/// (`Loss.cpp`), so `9.99999996e-13` in every dtype (golden2's f64 cases tell it from `1e-12`).
const EPS: f64 = 1e-12_f32 as f64;

/// One of the three sums of a row: `x·y` (`PRODUCT`), else `x·x`.
#[derive(Clone, Copy)]
struct Moment<const PRODUCT: bool>;

impl<T: Float, const PRODUCT: bool> Map4<T> for Moment<PRODUCT> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, _: V::Isa, x: V, y: V, _: V, _: V) -> V {
        if PRODUCT {
            x * y
        } else {
            x * x
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, u: V) -> (V, V, V) {
        // The row spec writes its own gradient; the flat gradient path never runs this map.
        let zero = V::splat(isa, T::ZERO);
        (self.map(isa, x, y, z, u), zero, zero)
    }
}

/// What a sweep of a row (or a segment of it) gathers: `x1·x2`, `|x1|²`, `|x2|²`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CosineSweep {
    dot: f64,
    first: f64,
    second: f64,
}

impl Merge for CosineSweep {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn merge(self, other: CosineSweep) -> CosineSweep {
        CosineSweep {
            dot: self.dot + other.dot,
            first: self.first + other.first,
            second: self.second + other.second,
        }
    }
}

/// PyTorch's `cosine_embedding_loss`, with its option: the margin of dissimilar pairs.
///
/// `x1` and `x2` are `[rows, dim]` row-major, `y` has one label per row in the same storage
/// type: 1 for a similar pair (loss `1 - cos`), -1 for a dissimilar one (loss
/// `max(0, cos - margin)`); any other value gives 0, as in PyTorch. [`Reduction::Mean`] averages
/// over all rows.
///
/// ```
/// use losskit::{CosineEmbedding, Reduction};
/// let x1 = [1.0f32, 0.0, /* row 2 */ 1.0, 1.0];
/// let x2 = [1.0f32, 0.0, /* row 2 */ 1.0, 0.0];
/// let loss = CosineEmbedding::new().margin(0.5).loss(&x1, &x2, &[1.0, -1.0], 2, Reduction::Sum)?;
/// // Row 1: identical, 1 - 1 = 0; row 2: cos = 1/√2, above the margin by 0.207.
/// assert!((loss - (0.5f32.sqrt() - 0.5)).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CosineEmbedding<T> {
    margin: T,
}

impl<T: Float> Default for CosineEmbedding<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A checked cosine_embedding call: the row spec the engine runs.
pub struct CosineEmbeddingRows<'a, S: Storage> {
    rows: usize,
    dim: usize,
    y: &'a [S],
    margin: S::Compute,
}

impl<T: Float> CosineEmbedding<T> {
    /// PyTorch's default: `margin = 0`.
    pub fn new() -> Self {
        CosineEmbedding { margin: T::ZERO }
    }

    /// The margin of dissimilar pairs (any value, as PyTorch accepts; its docs suggest
    /// `[-1, 1]`).
    pub fn margin(mut self, margin: T) -> Self {
        self.margin = margin;
        self
    }

    fn spec<'a, S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &'a [S],
        dim: usize,
    ) -> Result<CosineEmbeddingRows<'a, S>, LossError> {
        let rows = check::rows::<T>(x1.len(), dim, None)?;
        check::same_len("x2", x2.len(), "x1", x1.len())?;
        check::same_len("y", y.len(), "rows of x1", rows)?;
        Ok(CosineEmbeddingRows {
            rows,
            dim,
            y,
            margin: self.margin,
        })
    }

    /// The reduced loss: the rows' losses summed, or averaged for [`Reduction::Mean`] (NaN for
    /// no rows, as PyTorch's mean of nothing).
    ///
    /// # Errors
    /// [`LossError::ZeroClasses`] for `dim` 0, [`LossError::NotMultipleOfClasses`] when `dim`
    /// does not divide `x1`'s length, or a [`LossError::LengthMismatch`] of `x2` (as long as
    /// `x1`) or of `y` (one per row).
    ///
    /// ```
    /// use losskit::{CosineEmbedding, Reduction};
    /// let loss = CosineEmbedding::new().loss(&[1.0f64, 0.0], &[0.0, 1.0], &[1.0], 2, Reduction::Mean)?;
    /// assert_eq!(loss, 1.0);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &[S],
        dim: usize,
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.spec(x1, x2, y, dim)?;
        let sum = S::cosine_embedding_rows(&spec, x1, x2, RowsOut::Reduce);
        Ok(sum.finish(spec.rows as f64, reduction))
    }

    /// Each row's loss into `out` (`len == rows`).
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `out`.
    ///
    /// ```
    /// use losskit::CosineEmbedding;
    /// let mut out = [9.0f32; 2];
    /// CosineEmbedding::new().each(&[1.0f32, 2.0, 3.0, 4.0], &[2.0, 4.0, 0.0, 0.0], &[1.0, -1.0], 2, &mut out)?;
    /// assert!(out[0].abs() < 1e-6 && out[1] == 0.0);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &[S],
        dim: usize,
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.spec(x1, x2, y, dim)?;
        check::same_len("out", out.len(), "rows of x1", spec.rows)?;
        S::cosine_embedding_rows(&spec, x1, x2, RowsOut::Each(out));
        Ok(())
    }

    /// The reduced loss and its gradients with respect to `x1` into `grad1` and to `x2` into
    /// `grad2` (each as long as `x1`), divided by the rows for [`Reduction::Mean`]. Where the
    /// hinge argument `cos - margin` of a dissimilar pair is exactly 0, or the label is not ±1,
    /// the row's gradient is 0.
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `grad1` or `grad2`.
    ///
    /// ```
    /// use losskit::{CosineEmbedding, Reduction};
    /// let (mut g1, mut g2) = ([0.0f64; 2], [0.0f64; 2]);
    /// CosineEmbedding::new().loss_and_grad(&[1.0, 0.0], &[0.0, 1.0], &[1.0], 2, Reduction::Sum, &mut g1, &mut g2)?;
    /// // d(1 - cos)/dx1 = -(x2 - cos·x1)/|x1||x2| = -x2.
    /// assert!((g1[1] + 1.0).abs() < 1e-11 && g1[0] == 0.0 && (g2[0] + 1.0).abs() < 1e-11);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        x1: &[S],
        x2: &[S],
        y: &[S],
        dim: usize,
        reduction: Reduction,
        grad1: &mut [S],
        grad2: &mut [S],
    ) -> Result<T, LossError> {
        let spec = self.spec(x1, x2, y, dim)?;
        check::same_len("grad1", grad1.len(), "x1", x1.len())?;
        check::same_len("grad2", grad2.len(), "x1", x1.len())?;
        let scale = reduction.row_grad_scale(spec.rows as f64);
        let sum = S::cosine_embedding_rows(&spec, x1, x2, RowsOut::Grad(grad1, scale));
        S::cosine_embedding_rows(&spec, x2, x1, RowsOut::Grad(grad2, scale));
        Ok(sum.finish(spec.rows as f64, reduction))
    }
}

impl<S: Storage> CosineEmbeddingRows<'_, S> {
    /// Runs the rows (an entry point's body, see `entry.rs`): `x` is the matrix whose
    /// gradient a grad mode writes, `other` the one beside it.
    pub(crate) fn run(&self, x: &[S], other: &[S], out: RowsOut<'_, S>) -> LossSum {
        run_rows2(self, x, other, self.rows, self.dim, out)
    }
}

/// What a pair contributes: whether it is similar (`y = 1`) or dissimilar (`y = -1`).
#[derive(Clone, Copy)]
pub(crate) enum Pair {
    Similar,
    Dissimilar,
}

/// A row's gradient `a·other - b·x` (`a = g/denom`, `b = g·cos/(|x|² + eps)`, `g` the loss's
/// derivative with respect to `cos` times the scale).
#[derive(Clone, Copy)]
pub(crate) struct CosineGrad<T> {
    a: T,
    b: T,
}

impl<S: Storage> RowSpec<S> for CosineEmbeddingRows<'_, S> {
    type Row = Pair;
    type Sweep = CosineSweep;
    type Grad = CosineGrad<S::Compute>;
    type Total = LossSum;
    const SWEEPS: bool = true;
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        _: V::Isa,
        row: usize,
        _: &[R],
    ) -> Option<Pair> {
        let y = self.y[row].to_compute().to_f64();
        if y == 1.0 {
            Some(Pair::Similar)
        } else if y == -1.0 {
            Some(Pair::Dissimilar)
        } else {
            None
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        _: &Pair,
        seg: Range<usize>,
        stream: &[R],
        other: &[S],
    ) -> CosineSweep {
        let n = seg.len();
        let (x, y) = (&stream[..n], &other[..n]);
        let none = None::<&[S]>;
        CosineSweep {
            dot: row_sum::<V, S, R, _, S>(isa, x, y, none, Moment::<true>),
            first: row_sum::<V, S, R, _, S>(isa, x, y, none, Moment::<false>),
            second: row_sum::<V, S, S, _, S>(isa, y, y, none, Moment::<false>),
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = S::Compute>>(
        &self,
        pair: &Pair,
        sweep: CosineSweep,
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, CosineGrad<S::Compute>) {
        let first = sweep.first + EPS;
        let denom = (first * (sweep.second + EPS)).sqrt();
        let cos = sweep.dot / denom;
        let (loss, slope) = match pair {
            Pair::Similar => (1.0 - cos, -1.0),
            Pair::Dissimilar => {
                let hinge = cos - self.margin.to_f64();
                // As PyTorch's `clamp_min(0)`: a NaN cosine stays NaN.
                match hinge > 0.0 {
                    true => (hinge, 1.0),
                    false if hinge.is_nan() => (hinge, hinge),
                    false => (0.0, 0.0),
                }
            }
        };
        let g = slope * scale;
        let grad = CosineGrad {
            a: S::Compute::from_f64(g / denom),
            b: S::Compute::from_f64(g * cos / first),
        };
        (LossSum::unweighted(loss, 1), loss, grad)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        g: &CosineGrad<S::Compute>,
        _: Range<usize>,
        src: Option<&[S]>,
        other: &[S],
        dst: &mut [O],
        _: S::Compute,
    ) {
        // No closures here: a closure is a function of its own, compiled without the tier's
        // target features, and its vector arguments would go through memory.
        let lanes = V::LANES;
        let n = dst.len();
        let whole = n - n % lanes;
        let (a, b) = (V::splat(isa, g.a), V::splat(isa, g.b));
        let zero = S::Compute::ZERO;
        let mut at = 0;
        while at < whole {
            let x = match src {
                Some(src) => S::load::<V>(isa, &src[at..]),
                None => O::load::<V>(isa, &dst[at..]),
            };
            let y = S::load::<V>(isa, &other[at..]);
            O::store(a * y - b * x, &mut dst[at..]);
            at += lanes;
        }
        if whole < n {
            let x = match src {
                Some(src) => S::load_prefix::<V>(isa, &src[whole..n], zero),
                None => O::load_prefix::<V>(isa, &dst[whole..], zero),
            };
            let y = S::load_prefix::<V>(isa, &other[whole..n], zero);
            O::store_prefix(a * y - b * x, &mut dst[whole..]);
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        _: V::Isa,
        _: &CosineGrad<S::Compute>,
        _: &mut [O],
        _: S::Compute,
    ) {
    }
}

/// PyTorch's `cosine_embedding_loss` with its default (`margin = 0`), reduced. See
/// [`CosineEmbedding`] for the margin.
///
/// # Errors
/// As [`CosineEmbedding::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::cosine_embedding(&[3.0f32, 4.0], &[6.0, 8.0], &[1.0], 2, Reduction::Mean)?;
/// assert!(loss.abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn cosine_embedding<S: Storage>(
    x1: &[S],
    x2: &[S],
    y: &[S],
    dim: usize,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    CosineEmbedding::new().loss(x1, x2, y, dim, reduction)
}

/// Each row's [`cosine_embedding`] into `out` (`len == rows`).
///
/// # Errors
/// As [`CosineEmbedding::each`].
///
/// ```
/// let mut out = [9.0f64; 1];
/// losskit::cosine_embedding_each(&[1.0f64, 0.0], &[0.0, 1.0], &[-1.0], 2, &mut out)?;
/// assert_eq!(out, [0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn cosine_embedding_each<S: Storage>(
    x1: &[S],
    x2: &[S],
    y: &[S],
    dim: usize,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    CosineEmbedding::new().each(x1, x2, y, dim, out)
}

/// [`cosine_embedding`] and its gradients with respect to `x1` and `x2` (see
/// [`CosineEmbedding::loss_and_grad`]).
///
/// # Errors
/// As [`CosineEmbedding::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let (mut g1, mut g2) = ([9.0f32; 2], [9.0f32; 2]);
/// losskit::cosine_embedding_and_grad(&[1.0f32, 0.0], &[1.0, 0.0], &[-1.0], 2, Reduction::Mean, &mut g1, &mut g2)?;
/// // cos = 1 > 0, and its gradient is 0 for parallel rows.
/// assert!(g1.iter().chain(&g2).all(|g| g.abs() < 1e-6));
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn cosine_embedding_and_grad<S: Storage>(
    x1: &[S],
    x2: &[S],
    y: &[S],
    dim: usize,
    reduction: Reduction,
    grad1: &mut [S],
    grad2: &mut [S],
) -> Result<S::Compute, LossError> {
    CosineEmbedding::new().loss_and_grad(x1, x2, y, dim, reduction, grad1, grad2)
}
