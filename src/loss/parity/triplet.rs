//! PyTorch's `triplet_margin_loss` over row-major `[rows, dim]` anchors, positives and
//! negatives: per row `max(0, margin + d(a, p) - d(a, n))`, `d(u, v) = ‖u - v + eps‖_p` for
//! `p` 1 or 2 (`eps` added to the difference, as `pairwise_distance` does), and with `swap` the
//! negative distance `min(d(a, n), d(p, n))` (a tie splits the gradient in halves, as
//! `torch.minimum`'s).
//!
//! A row spec on the row driver whose rows index all three matrices: a row's sweep is two or
//! three runs of the flat sweep's loop ([`row_sum`]) over the row's differences, each within the
//! flat driver's bound, then the norms in `f64`. The gradient of every input is a per-element
//! combination of the same differences (`diff/d` for p = 2, `sign(diff)` for p = 1) with per-row
//! coefficients; a gradient call runs the rows once per input (three times), each run computing
//! the same distances (so the same loss bits) and writing one input's gradient.

use core::ops::Range;

use crate::engine::{row_sum, run_rows, LossSum, Map4, Merge, RowSpec, RowsOut};
use crate::float::sealed::Sealed as _;
use crate::simd::Lanes;
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// `|x - y + eps|^p` of one element (p = 2 when `SQUARED`, else 1).
#[derive(Clone, Copy)]
struct Distance<T, const SQUARED: bool> {
    eps: T,
}

impl<T: Float, const SQUARED: bool> Map4<T> for Distance<T, SQUARED> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, _: V, _: V) -> V {
        let d = x - y + V::splat(isa, self.eps);
        if SQUARED {
            d * d
        } else {
            d.abs()
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, u: V) -> (V, V, V) {
        // The row spec writes its own gradient; the flat gradient path never runs this map.
        let zero = V::splat(isa, T::ZERO);
        (self.map(isa, x, y, z, u), zero, zero)
    }
}

/// What a sweep of a row (or a segment of it) gathers: `Σ|a - p + eps|^p`, `Σ|a - n + eps|^p`
/// and, with `swap`, `Σ|p - n + eps|^p`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TripletSweep {
    ap: f64,
    an: f64,
    pn: f64,
}

impl Merge for TripletSweep {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn merge(self, other: TripletSweep) -> TripletSweep {
        TripletSweep {
            ap: self.ap + other.ap,
            an: self.an + other.an,
            pn: self.pn + other.pn,
        }
    }
}

/// PyTorch's `triplet_margin_loss`, with its options: `margin`, `p` (1 or 2), `eps` and `swap`.
///
/// `anchor`, `positive` and `negative` are `[rows, dim]` row-major. A row's loss is
/// `max(0, margin + d(a, p) - d(a, n))` with `d(u, v) = ‖u - v + eps‖_p`; with `swap`, the
/// negative distance is the smaller of `d(a, n)` and `d(p, n)`. [`Reduction::Mean`] averages
/// the rows.
///
/// ```
/// use losskit::{Reduction, TripletMargin};
/// let anchor = [0.0f32, 0.0];
/// let positive = [3.0f32, 4.0];
/// let negative = [1.0f32, 0.0];
/// let loss = TripletMargin::new().eps(0.0).loss(&anchor, &positive, &negative, 2, Reduction::Mean)?;
/// assert_eq!(loss, 1.0 + 5.0 - 1.0);
/// let l1 = TripletMargin::new().p(1).eps(0.0).loss(&anchor, &positive, &negative, 2, Reduction::Mean)?;
/// assert_eq!(l1, 1.0 + 7.0 - 1.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TripletMargin<T> {
    margin: T,
    p: u32,
    eps: T,
    swap: bool,
}

impl<T: Float> Default for TripletMargin<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Which input's gradient a run of the rows writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Anchor,
    Positive,
    Negative,
}

/// A checked triplet_margin call: the row spec the engine runs.
pub struct TripletRows<'a, S: Storage> {
    rows: usize,
    dim: usize,
    anchor: &'a [S],
    positive: &'a [S],
    negative: &'a [S],
    margin: S::Compute,
    eps: S::Compute,
    squared: bool,
    swap: bool,
    role: Role,
}

impl<T: Float> TripletMargin<T> {
    /// PyTorch's defaults: `margin = 1`, `p = 2`, `eps = 1e-6`, no swap.
    pub fn new() -> Self {
        TripletMargin {
            margin: T::ONE,
            p: 2,
            eps: T::from_f64(1e-6),
            swap: false,
        }
    }

    /// The margin (any value, as PyTorch accepts).
    pub fn margin(mut self, margin: T) -> Self {
        self.margin = margin;
        self
    }

    /// The norm's degree: 1 or 2 (checked when the loss is computed).
    pub fn p(mut self, p: u32) -> Self {
        self.p = p;
        self
    }

    /// What is added to every difference before its norm (PyTorch's `eps`, 1e-6).
    pub fn eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }

    /// Use the distance of the positive to the negative where it is the smaller one (the
    /// "distance swap" of Balntas et al.).
    pub fn swap(mut self, swap: bool) -> Self {
        self.swap = swap;
        self
    }

    fn spec<'a, S: Storage<Compute = T>>(
        &self,
        anchor: &'a [S],
        positive: &'a [S],
        negative: &'a [S],
        dim: usize,
    ) -> Result<TripletRows<'a, S>, LossError> {
        check::power_one_or_two(self.p)?;
        let rows = check::rows::<T>(anchor.len(), dim, None)?;
        check::same_len("positive", positive.len(), "anchor", anchor.len())?;
        check::same_len("negative", negative.len(), "anchor", anchor.len())?;
        Ok(TripletRows {
            rows,
            dim,
            anchor,
            positive,
            negative,
            margin: self.margin,
            eps: self.eps,
            squared: self.p == 2,
            swap: self.swap,
            role: Role::Anchor,
        })
    }

    /// The reduced loss: the rows' losses summed, or averaged for [`Reduction::Mean`] (NaN for
    /// no rows, as PyTorch's mean of nothing).
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] for a `p` other than 1 or 2, [`LossError::ZeroClasses`]
    /// for `dim` 0, [`LossError::NotMultipleOfClasses`] when `dim` does not divide the anchor's
    /// length, or a [`LossError::LengthMismatch`] of `positive` or `negative` (as long as
    /// `anchor`).
    ///
    /// ```
    /// use losskit::{Reduction, TripletMargin};
    /// let loss = TripletMargin::new().loss(&[0.0f64], &[0.0], &[5.0], 1, Reduction::Sum)?;
    /// assert_eq!(loss, 0.0);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn loss<S: Storage<Compute = T>>(
        &self,
        anchor: &[S],
        positive: &[S],
        negative: &[S],
        dim: usize,
        reduction: Reduction,
    ) -> Result<T, LossError> {
        let spec = self.spec(anchor, positive, negative, dim)?;
        let sum = S::triplet_rows(&spec, anchor, RowsOut::Reduce);
        Ok(sum.finish(spec.rows as f64, reduction))
    }

    /// Each row's loss into `out` (`len == rows`).
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of `out`.
    ///
    /// ```
    /// use losskit::TripletMargin;
    /// let mut out = [9.0f32; 2];
    /// TripletMargin::new().eps(0.0).each(&[0.0f32, 0.0], &[1.0, 0.0], &[0.5, 9.0], 1, &mut out)?;
    /// assert_eq!(out, [1.5, 0.0]);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage<Compute = T>>(
        &self,
        anchor: &[S],
        positive: &[S],
        negative: &[S],
        dim: usize,
        out: &mut [T],
    ) -> Result<(), LossError> {
        let spec = self.spec(anchor, positive, negative, dim)?;
        check::same_len("out", out.len(), "rows of anchor", spec.rows)?;
        S::triplet_rows(&spec, anchor, RowsOut::Each(out));
        Ok(())
    }

    /// The reduced loss and its gradients with respect to the anchor, the positive and the
    /// negative (each as long as `anchor`), divided by the rows for [`Reduction::Mean`]. A row
    /// whose hinge argument is not `> 0` has gradient 0, as does a distance of 0 (p = 2) and a
    /// difference of 0 (p = 1).
    ///
    /// # Errors
    /// As [`loss`](Self::loss), and a [`LossError::LengthMismatch`] of a gradient.
    ///
    /// ```
    /// use losskit::{Reduction, TripletMargin};
    /// let (mut ga, mut gp, mut gn) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
    /// TripletMargin::new().eps(0.0).loss_and_grad(
    ///     &[0.0, 0.0], &[3.0, 4.0], &[1.0, 0.0], 2, Reduction::Sum, &mut ga, &mut gp, &mut gn,
    /// )?;
    /// // d(a, p) pulls the anchor towards the positive, d(a, n) pushes it from the negative.
    /// let near = |g: [f64; 2], want: [f64; 2]| (g[0] - want[0]).abs() + (g[1] - want[1]).abs() < 1e-15;
    /// assert!(near(gp, [0.6, 0.8]) && near(gn, [-1.0, 0.0]) && near(ga, [0.4, -0.8]));
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn loss_and_grad<S: Storage<Compute = T>>(
        &self,
        anchor: &[S],
        positive: &[S],
        negative: &[S],
        dim: usize,
        reduction: Reduction,
        grad_anchor: &mut [S],
        grad_positive: &mut [S],
        grad_negative: &mut [S],
    ) -> Result<T, LossError> {
        let spec = self.spec(anchor, positive, negative, dim)?;
        let n = anchor.len();
        check::same_len("grad_anchor", grad_anchor.len(), "anchor", n)?;
        check::same_len("grad_positive", grad_positive.len(), "anchor", n)?;
        check::same_len("grad_negative", grad_negative.len(), "anchor", n)?;
        let scale = reduction.row_grad_scale(spec.rows as f64);
        let sum = S::triplet_rows(&spec, anchor, RowsOut::Grad(grad_anchor, scale));
        for (role, x, grad) in [
            (Role::Positive, positive, grad_positive),
            (Role::Negative, negative, grad_negative),
        ] {
            let spec = TripletRows { role, ..spec };
            S::triplet_rows(&spec, x, RowsOut::Grad(grad, scale));
        }
        Ok(sum.finish(spec.rows as f64, reduction))
    }
}

impl<S: Storage> Clone for TripletRows<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Storage> Copy for TripletRows<'_, S> {}

impl<S: Storage> TripletRows<'_, S> {
    /// Runs the rows (an entry point's body, see `entry.rs`); `x` is the input whose gradient
    /// a grad mode writes (the distances are read from all three).
    pub(crate) fn run(&self, x: &[S], out: RowsOut<'_, S>) -> LossSum {
        run_rows(self, x, self.rows, self.dim, out)
    }

    /// The classes `seg` of row `row` of an input.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn part<'m>(&self, m: &'m [S], row: usize, seg: &Range<usize>) -> &'m [S] {
        &m[row * self.dim + seg.start..row * self.dim + seg.end]
    }

    /// `Σ|x - y + eps|^p` over a segment, on the running tier (a method, not a closure: a
    /// closure would be compiled without the tier's target features).
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn distance_sum<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, x: &[S], y: &[S]) -> f64 {
        let (none, eps) = (None::<&[S]>, self.eps);
        match self.squared {
            true => row_sum::<V, S, S, _, S>(isa, x, y, none, Distance::<_, true> { eps }),
            false => row_sum::<V, S, S, _, S>(isa, x, y, none, Distance::<_, false> { eps }),
        }
    }

    /// The norm from its sum of `|diff|^p`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn norm(&self, sum: f64) -> f64 {
        if self.squared {
            sum.sqrt()
        } else {
            sum
        }
    }

    /// A distance's gradient coefficient: `g/d` for p = 2 (0 where `d = 0`), `g` for p = 1.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn coefficient(&self, g: f64, d: f64) -> S::Compute {
        let c = match (self.squared, d == 0.0) {
            (true, true) => 0.0,
            (true, false) => g / d,
            (false, _) => g,
        };
        S::Compute::from_f64(c)
    }
}

/// A row's gradient coefficients: the input's gradient is `Σ ±c·f(diff)` over the distances
/// it enters, `f(diff)` being `diff` (p = 2) or `sign(diff)` (p = 1).
#[derive(Clone, Copy)]
pub(crate) struct TripletGrad<T> {
    row: usize,
    ap: T,
    an: T,
    pn: T,
}

/// `diff` (p = 2) or `sign(diff)` (p = 1, 0 at 0).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn slope<T: Float, V: Lanes<Elem = T>>(isa: V::Isa, diff: V, squared: bool) -> V {
    if squared {
        return diff;
    }
    let (zero, one) = (V::splat(isa, T::ZERO), V::splat(isa, T::ONE));
    let sign = V::select(zero.lt(diff), one, zero);
    V::select(diff.lt(zero), -one, sign)
}

impl<S: Storage> RowSpec<S> for TripletRows<'_, S> {
    /// The row's index (its elements are read from all three inputs).
    type Row = usize;
    type Sweep = TripletSweep;
    type Grad = TripletGrad<S::Compute>;
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
        _: &[R],
        _: &[S],
    ) -> TripletSweep {
        let a = self.part(self.anchor, row, &seg);
        let p = self.part(self.positive, row, &seg);
        let n = self.part(self.negative, row, &seg);
        TripletSweep {
            ap: self.distance_sum::<V>(isa, a, p),
            an: self.distance_sum::<V>(isa, a, n),
            pn: match self.swap {
                true => self.distance_sum::<V>(isa, p, n),
                false => 0.0,
            },
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = S::Compute>>(
        &self,
        &row: &usize,
        sweep: TripletSweep,
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, TripletGrad<S::Compute>) {
        let (ap, an) = (self.norm(sweep.ap), self.norm(sweep.an));
        // The negative distance and the shares of its gradient (`torch.minimum` halves a tie).
        let (negative, to_an, to_pn) = match self.swap {
            false => (an, 1.0, 0.0),
            true => {
                let pn = self.norm(sweep.pn);
                match pn.partial_cmp(&an) {
                    Some(core::cmp::Ordering::Less) => (pn, 0.0, 1.0),
                    Some(core::cmp::Ordering::Equal) => (an, 0.5, 0.5),
                    _ => (an, 1.0, 0.0),
                }
            }
        };
        let hinge = self.margin.to_f64() + ap - negative;
        let (loss, g) = match hinge > 0.0 {
            true => (hinge, scale),
            // As `clamp_min(0)`: NaN stays NaN.
            false if hinge.is_nan() => (hinge, hinge),
            false => (0.0, 0.0),
        };
        let pn = if self.swap { self.norm(sweep.pn) } else { 0.0 };
        let grad = TripletGrad {
            row,
            ap: self.coefficient(g, ap),
            an: self.coefficient(-g * to_an, an),
            pn: self.coefficient(-g * to_pn, pn),
        };
        (LossSum::unweighted(loss, 1), loss, grad)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        g: &TripletGrad<S::Compute>,
        seg: Range<usize>,
        _: Option<&[S]>,
        _: &[S],
        dst: &mut [O],
        _: S::Compute,
    ) {
        // No closures here: a closure is a function of its own, compiled without the tier's
        // target features, and its vector arguments would go through memory.
        let a = self.part(self.anchor, g.row, &seg);
        let p = self.part(self.positive, g.row, &seg);
        let n = self.part(self.negative, g.row, &seg);
        let lanes = V::LANES;
        let len = dst.len();
        let whole = len - len % lanes;
        let zero = S::Compute::ZERO;
        let eps = V::splat(isa, self.eps);
        let (ap, an, pn) = (
            V::splat(isa, g.ap),
            V::splat(isa, g.an),
            V::splat(isa, g.pn),
        );
        let (squared, swap, role) = (self.squared, self.swap, self.role);
        let mut at = 0;
        // Whole vectors, then (if any elements are left) one prefix.
        while at < whole || (at == whole && whole < len) {
            let tail = at == whole;
            let (va, vp, vn) = match tail {
                false => (
                    S::load::<V>(isa, &a[at..]),
                    S::load::<V>(isa, &p[at..]),
                    S::load::<V>(isa, &n[at..]),
                ),
                true => (
                    S::load_prefix::<V>(isa, &a[at..], zero),
                    S::load_prefix::<V>(isa, &p[at..], zero),
                    S::load_prefix::<V>(isa, &n[at..], zero),
                ),
            };
            let d_ap = ap * slope(isa, va - vp + eps, squared);
            let d_an = an * slope(isa, va - vn + eps, squared);
            let d_pn = match swap {
                true => pn * slope(isa, vp - vn + eps, squared),
                false => V::splat(isa, zero),
            };
            let d = match role {
                Role::Anchor => d_ap + d_an,
                Role::Positive => d_pn - d_ap,
                Role::Negative => -(d_an + d_pn),
            };
            match tail {
                false => O::store(d, &mut dst[at..]),
                true => O::store_prefix(d, &mut dst[at..]),
            }
            at += lanes;
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        _: V::Isa,
        _: &TripletGrad<S::Compute>,
        _: &mut [O],
        _: S::Compute,
    ) {
    }
}

/// PyTorch's `triplet_margin_loss` with its defaults (`margin = 1`, `p = 2`, `eps = 1e-6`, no
/// swap), reduced. See [`TripletMargin`] for the options.
///
/// # Errors
/// As [`TripletMargin::loss`].
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::triplet_margin(&[0.0f32], &[0.0], &[0.5], 1, Reduction::Mean)?;
/// // 1 + |0 - 0 + 1e-6| - |0 - 0.5 + 1e-6|
/// assert!((loss - 0.500002).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn triplet_margin<S: Storage>(
    anchor: &[S],
    positive: &[S],
    negative: &[S],
    dim: usize,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    TripletMargin::new().loss(anchor, positive, negative, dim, reduction)
}

/// Each row's [`triplet_margin`] into `out` (`len == rows`).
///
/// # Errors
/// As [`TripletMargin::each`].
///
/// ```
/// let mut out = [9.0f64; 1];
/// losskit::triplet_margin_each(&[0.0f64], &[0.0], &[2.0], 1, &mut out)?;
/// assert_eq!(out, [0.0]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn triplet_margin_each<S: Storage>(
    anchor: &[S],
    positive: &[S],
    negative: &[S],
    dim: usize,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    TripletMargin::new().each(anchor, positive, negative, dim, out)
}

/// [`triplet_margin`] and its gradients with respect to all three inputs (see
/// [`TripletMargin::loss_and_grad`]).
///
/// # Errors
/// As [`TripletMargin::loss_and_grad`].
///
/// ```
/// use losskit::Reduction;
/// let (mut ga, mut gp, mut gn) = ([9.0f32; 1], [9.0f32; 1], [9.0f32; 1]);
/// losskit::triplet_margin_and_grad(&[0.0f32], &[0.0], &[3.0], 1, Reduction::Mean, &mut ga, &mut gp, &mut gn)?;
/// assert_eq!((ga[0], gp[0], gn[0]), (0.0, 0.0, 0.0));
/// # Ok::<(), losskit::LossError>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn triplet_margin_and_grad<S: Storage>(
    anchor: &[S],
    positive: &[S],
    negative: &[S],
    dim: usize,
    reduction: Reduction,
    grad_anchor: &mut [S],
    grad_positive: &mut [S],
    grad_negative: &mut [S],
) -> Result<S::Compute, LossError> {
    TripletMargin::new().loss_and_grad(
        anchor,
        positive,
        negative,
        dim,
        reduction,
        grad_anchor,
        grad_positive,
        grad_negative,
    )
}
