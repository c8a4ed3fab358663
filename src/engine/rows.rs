//! The rows shape: a row-major `[rows, classes]` matrix with one target per row, reduced,
//! written per row, or reduced with its gradient written per element (out of place or in
//! place).
//!
//! A row-wise loss is a [`RowSpec`]: how a row starts (its target, or `None` if ignored), what
//! a sweep over its classes gathers (a mergeable state), how the row's loss and gradient recipe
//! follow from that state, and how the gradient is written. The driver owns everything else:
//! the leaves and the tree (`Shape::plan`), the modes and their output slices, the split of
//! few long rows into segments swept in parallel (their states merged in the fixed tree), and
//! the dispatch. Inside a leaf the rows' losses, weights and counts are summed in `f64` in row
//! order.
//!
//! A *paired* spec ([`RowSpec::PAIRED`], e.g. distillation KL's student and teacher) reads the
//! same row of a second matrix `y` of the same shape beside each row of `x`: [`run_rows2`]
//! hands the driver both, and the driver passes `y`'s row (as a stream, or cut to the segment
//! of a split row) to the spec's sweep and gradient beside `x`'s. The gradient is written for
//! `x` only (in place over it, too). Every other spec gets an empty `y`, and the code that
//! slices it is compiled out (`PAIRED` is a constant), so their bits and speed are unchanged.

use core::ops::Range;

use crate::float::sealed::Sealed as _;
use crate::simd::dispatch::Resolved;
use crate::simd::{Kernel, Lanes};
use crate::storage::Storage;

use super::state::Merge;
use super::tree::tree_reduce;
use super::{Plan, Shape, CHUNK};

/// One row-wise loss, written once over lanes (its methods taking `V` must be
/// `#[inline(always)]`, like [`Kernel::run`]).
pub(crate) trait RowSpec<S: Storage>: Sync {
    /// What a scored row starts with (its target, weight, coefficients).
    type Row: Copy + Send + Sync;
    /// What a sweep over a row, or a segment of it, gathers; adjacent segments merge.
    type Sweep: Merge + Default;
    /// What the gradient sweep of a row needs.
    type Grad: Copy + Send + Sync;
    /// What a row contributes to the call's result; leaves add their rows' in row order and
    /// merge in the fixed tree (`LossSum` for a plain loss).
    type Total: Merge + Default;
    /// Whether a row's work reads all its classes (a sweep), or only what [`finish`] reads
    /// (then `sweep` is never called, and a leaf holds `CHUNK` rows).
    ///
    /// [`finish`]: RowSpec::finish
    const SWEEPS: bool;
    /// Whether a row also reads the same row of the second matrix `y` ([`run_rows2`]); then
    /// [`sweep`](RowSpec::sweep) and [`grad`](RowSpec::grad) get it as `other`, else `other`
    /// is empty.
    const PAIRED: bool = false;

    /// Row `row`'s start, or `None` if the row is ignored (loss 0, weight 0, gradient 0);
    /// `x` is the row's classes (read before any gradient is written in place). On the tier
    /// the row's sweep runs on, so that what it computes from `x` has the sweep's bits.
    fn begin<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        row: usize,
        x: &[R],
    ) -> Option<Self::Row>;

    /// Sweeps the classes `seg` of a row: they are `stream[..seg.len()]`; what follows them in
    /// memory (typically the next rows) may be prefetched, never used. For a
    /// [`PAIRED`](RowSpec::PAIRED) spec `other` is the same stream of `y` (the same classes
    /// first, then what follows them), else empty. Called only when
    /// [`SWEEPS`](RowSpec::SWEEPS); the default gathers nothing.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        row: &Self::Row,
        seg: Range<usize>,
        stream: &[R],
        other: &[S],
    ) -> Self::Sweep {
        let _ = (isa, row, seg, stream, other);
        Self::Sweep::default()
    }

    /// The row's contribution, its loss (what the each mode writes) and its gradient recipe
    /// for a mode whose gradient is scaled by `scale` (0 when no gradient is asked for), from
    /// its merged sweep and its classes `x` (read before any gradient is written in place).
    fn finish<R: Storage<Compute = S::Compute>>(
        &self,
        row: &Self::Row,
        sweep: Self::Sweep,
        x: &[R],
        scale: f64,
    ) -> (Self::Total, f64, Self::Grad);

    /// Writes the classes `seg` of the row's gradient into `dst`, reading the row's classes
    /// from `src`, or from `dst` itself when `src` is `None` (in place), and for a
    /// [`PAIRED`](RowSpec::PAIRED) spec `y`'s classes `seg` of the row from `other` (else
    /// empty). The default writes zeros, for a gradient that only
    /// [`grad_fix`](RowSpec::grad_fix) makes non-zero.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        g: &Self::Grad,
        seg: Range<usize>,
        src: Option<&[S]>,
        other: &[S],
        dst: &mut [O],
        scale: S::Compute,
    ) {
        let _ = (isa, g, seg, src, other, scale);
        dst.fill(O::from_compute(S::Compute::ZERO));
    }

    /// After every segment's [`grad`](RowSpec::grad): writes what the sweep could not (e.g.
    /// the target class's element, computed apart so that it is rounded once). `dst` is the
    /// whole row.
    fn grad_fix<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        g: &Self::Grad,
        dst: &mut [O],
        scale: S::Compute,
    );

    /// Whether [`by_lanes`](RowSpec::by_lanes) computes rows of `classes` classes (in every
    /// mode, on tiers of more than one lane).
    fn by_lanes_ok(&self, classes: usize) -> bool {
        let _ = classes;
        false
    }

    /// `V::LANES` consecutive rows from `row0`, one row per lane. `src` is those rows
    /// (`V::LANES · classes` elements). With no `scale`, each row's loss goes into `out`
    /// (`V::LANES` long) if given; with a `scale`, `out` (`V::LANES · classes` long) gets the
    /// rows' gradient times it, read from `src` or, in place (`src` `None`), from `out`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn by_lanes<V: Lanes<Elem = S::Compute>, O: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        src: Option<&[S]>,
        row0: usize,
        out: Option<&mut [O]>,
        scale: Option<f64>,
    ) -> Self::Total {
        let _ = (isa, src, row0, out, scale);
        unreachable!("by_lanes is only called when by_lanes_ok")
    }
}

/// What a row-wise call writes besides its sum.
pub enum RowsOut<'a, S: Storage> {
    /// Nothing: the reduced loss alone.
    Reduce,
    /// Each row's loss (`rows` long).
    Each(&'a mut [S::Compute]),
    /// The gradient times the scale, read from the input (`rows · classes` long).
    Grad(&'a mut [S], f64),
    /// The gradient times the scale, over the logits it holds (the input is empty).
    GradInPlace(&'a mut [S], f64),
}

/// Runs `spec` over the `rows` rows of `x` (`[rows, classes]`, or empty for
/// [`RowsOut::GradInPlace`]) and returns the summed state.
pub(crate) fn run_rows<S: Storage, P: RowSpec<S>>(
    spec: &P,
    x: &[S],
    rows: usize,
    classes: usize,
    out: RowsOut<'_, S>,
) -> P::Total {
    run_rows2(spec, x, &[], rows, classes, out)
}

/// [`run_rows`] for a [`PAIRED`](RowSpec::PAIRED) spec, with `y` (`[rows, classes]`, empty for
/// a spec that is not paired) read beside `x`: the same leaves, tree and splits (the cost of a
/// row is still its classes), each row's sweep and gradient given the same row of `y`.
pub(crate) fn run_rows2<S: Storage, P: RowSpec<S>>(
    spec: &P,
    x: &[S],
    y: &[S],
    rows: usize,
    classes: usize,
    out: RowsOut<'_, S>,
) -> P::Total {
    debug_assert_eq!(y.len(), if P::PAIRED { rows * classes } else { 0 });
    let row_cost = if P::SWEEPS { classes } else { 1 };
    let plan = Shape::Rows { rows, row_cost }.plan();
    let driver = Driver {
        spec,
        x,
        y,
        classes,
        plan,
        tier: Resolved::active(),
        scale: None,
        in_place: false,
    };
    match out {
        RowsOut::Reduce => driver.run::<S::Compute>(None),
        RowsOut::Each(out) => driver.run(Some(out)),
        RowsOut::Grad(grad, scale) => Driver {
            scale: Some(scale),
            ..driver
        }
        .run(Some(grad)),
        RowsOut::GradInPlace(logits, scale) => Driver {
            scale: Some(scale),
            in_place: true,
            ..driver
        }
        .run(Some(logits)),
    }
}

/// Runs the sweeps of `spec` over the `rows` rows of `x` (`[rows, classes]`) and writes each
/// row's merged sweep to `out` (`rows` long; an ignored row's is the default): the per-row
/// partial results of a row-wise loss, for a caller that finishes them itself (vocabulary-sharded
/// cross-entropy merges them across shards first). The same leaves, tree and splits as the
/// other modes, so a row's sweep is the one they finish, bit for bit.
pub(crate) fn run_row_sweeps<S: Storage, P: RowSpec<S>>(
    spec: &P,
    x: &[S],
    rows: usize,
    classes: usize,
    out: &mut [P::Sweep],
) {
    debug_assert!(P::SWEEPS && !P::PAIRED && out.len() == rows);
    let plan = Shape::Rows {
        rows,
        row_cost: classes,
    }
    .plan();
    let driver = Driver {
        spec,
        x,
        y: &[],
        classes,
        plan,
        tier: Resolved::active(),
        scale: None,
        in_place: false,
    };
    let leaf = |i: usize, out: Option<&mut [P::Sweep]>| {
        let out = out.unwrap_or_default();
        let rows = plan.leaf(i);
        if plan.split_rows {
            debug_assert_eq!(rows.len(), 1);
            let row = rows.start;
            let x = &x[row * classes..(row + 1) * classes];
            out[0] = match driver.begin(row, x) {
                Some(start) => driver.split_sweep(row, &start, x),
                None => P::Sweep::default(),
            };
        } else {
            driver.tier.run(RowsSweeps {
                driver: &driver,
                rows,
                out,
            });
        }
    };
    tree_reduce(plan.leaves, plan.parallel, Some(out), plan.per_leaf, &leaf);
}

/// A checked row-wise call: what every leaf shares.
struct Driver<'a, S, P> {
    spec: &'a P,
    /// The input, or empty when the rows are read from (and overwritten in) the output.
    x: &'a [S],
    /// The second matrix of a paired spec (never overwritten), else empty.
    y: &'a [S],
    classes: usize,
    plan: Plan,
    tier: Resolved,
    /// The gradient's scale in the grad modes: then the output is `S` and holds gradients.
    scale: Option<f64>,
    in_place: bool,
}

impl<S: Storage, P: RowSpec<S>> Driver<'_, S, P> {
    /// Every leaf in the fixed tree; `out` holds a row's loss (`O` the compute type), or in the
    /// grad modes its gradient (`O = S`).
    fn run<O: Storage<Compute = S::Compute>>(&self, out: Option<&mut [O]>) -> P::Total {
        let plan = self.plan;
        let out_per_leaf = match self.scale {
            Some(_) => plan.per_leaf * self.classes,
            None => plan.per_leaf,
        };
        let leaf = |i: usize, out: Option<&mut [O]>| {
            let rows = plan.leaf(i);
            if plan.split_rows {
                // A leaf of a split batch is one row: `per_leaf` is 1 for rows this long.
                debug_assert_eq!(rows.len(), 1);
                self.split_row(rows.start, out)
            } else {
                self.tier.run(RowsChunk {
                    driver: self,
                    rows,
                    out,
                })
            }
        };
        tree_reduce(plan.leaves, plan.parallel, out, out_per_leaf, &leaf).unwrap_or_default()
    }

    /// One long row cut into `CHUNK`-class segments: their sweeps merged in the fixed tree, then
    /// (in the grad modes) their gradients written in parallel. Runs outside any tier: each
    /// segment is its own kernel call. `out` is the row's output (one loss, or its gradient).
    fn split_row<O: Storage<Compute = S::Compute>>(
        &self,
        row: usize,
        out: Option<&mut [O]>,
    ) -> P::Total {
        let c = self.classes;
        let scale = self.scale.unwrap_or(0.0);
        let finished = match (self.in_place, out.as_deref()) {
            (true, Some(buf)) => self.split_finish(row, &buf[..c], scale),
            _ => self.split_finish(row, &self.x[row * c..(row + 1) * c], scale),
        };
        let Some((total, loss, g)) = finished else {
            if let Some(out) = out {
                out.fill(O::from_compute(S::Compute::ZERO));
            }
            return P::Total::default();
        };
        // As a leaf of rows adds its rows to an empty total.
        let total = P::Total::default().merge(total);
        let segments = c.div_ceil(CHUNK);
        if let Some(out) = out {
            match self.scale {
                None => out[0] = O::from_compute(S::Compute::from_f64(loss)),
                Some(_) => {
                    let src = (!self.in_place).then(|| &self.x[row * c..(row + 1) * c]);
                    let other = self.other_row(row);
                    let scale = S::Compute::from_f64(scale);
                    let leaf = |i: usize, dst: Option<&mut [O]>| {
                        let dst = dst.unwrap_or_default();
                        let seg = i * CHUNK..i * CHUNK + dst.len();
                        self.tier.run(SegmentGrad {
                            spec: self.spec,
                            g: &g,
                            src: src.map(|s| &s[seg.clone()]),
                            other: if P::PAIRED { &other[seg.clone()] } else { &[] },
                            seg,
                            dst,
                            scale,
                        })
                    };
                    tree_reduce(segments, true, Some(&mut out[..c]), CHUNK, &leaf);
                    self.tier.run(GradFix {
                        spec: self.spec,
                        g: &g,
                        dst: &mut out[..c],
                        scale,
                    });
                }
            }
        }
        total
    }

    /// The merged sweep of split row `row` (its classes `x`) and what [`RowSpec::finish`] makes
    /// of it; `None` if the row is ignored.
    fn split_finish<R: Storage<Compute = S::Compute>>(
        &self,
        row: usize,
        x: &[R],
        scale: f64,
    ) -> Option<(P::Total, f64, P::Grad)> {
        let start = self.begin(row, x)?;
        let sweep = self.split_sweep(row, &start, x);
        Some(self.spec.finish(&start, sweep, x, scale))
    }

    /// [`RowSpec::begin`] of split row `row` (its classes `x`), on the tier.
    fn begin<R: Storage<Compute = S::Compute>>(&self, row: usize, x: &[R]) -> Option<P::Row> {
        self.tier.run(Begin {
            spec: self.spec,
            row,
            x,
            _storage: core::marker::PhantomData::<S>,
        })
    }

    /// The sweeps of split row `row` (its classes `x`, started as `start`), `CHUNK` classes a
    /// segment, merged in the fixed tree.
    fn split_sweep<R: Storage<Compute = S::Compute>>(
        &self,
        row: usize,
        start: &P::Row,
        x: &[R],
    ) -> P::Sweep {
        let other = self.other_row(row);
        let segments = x.len().div_ceil(CHUNK);
        let leaf = |i: usize, _: Option<&mut [S]>| {
            let seg = i * CHUNK..x.len().min((i + 1) * CHUNK);
            self.tier.run(SegmentSweep {
                spec: self.spec,
                row: start,
                x: &x[seg.clone()],
                other: if P::PAIRED { &other[seg.clone()] } else { &[] },
                seg,
                _storage: core::marker::PhantomData::<S>,
            })
        };
        tree_reduce(segments, true, None, 0, &leaf).unwrap_or_default()
    }

    /// Row `row` of `y` for a paired spec; empty (and never sliced) otherwise.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn other_row(&self, row: usize) -> &[S] {
        if P::PAIRED {
            &self.y[row * self.classes..(row + 1) * self.classes]
        } else {
            &[]
        }
    }
}

/// A leaf of consecutive rows on one tier.
struct RowsChunk<'a, 'd, S, P, O> {
    driver: &'a Driver<'d, S, P>,
    rows: Range<usize>,
    out: Option<&'a mut [O]>,
}

impl<S: Storage, P: RowSpec<S>, O: Storage<Compute = S::Compute>> RowsChunk<'_, '_, S, P, O> {
    /// One row's contribution, loss and gradient recipe, or `None` for an ignored row. The
    /// row is the first `classes` elements of `stream`, which goes on with what follows it.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn row<V: Lanes<Elem = S::Compute>, R: Storage<Compute = S::Compute>>(
        &self,
        isa: V::Isa,
        row: usize,
        stream: &[R],
    ) -> Option<(P::Total, f64, P::Grad)> {
        let d = self.driver;
        let c = d.classes;
        let x = &stream[..c];
        let start = d.spec.begin::<V, R>(isa, row, x)?;
        let sweep = if P::SWEEPS {
            // A paired row's `y` is a stream too: the row, then what follows it.
            let other = if P::PAIRED { &d.y[row * c..] } else { &[] };
            d.spec.sweep::<V, R>(isa, &start, 0..c, stream, other)
        } else {
            P::Sweep::default()
        };
        Some(d.spec.finish(&start, sweep, x, d.scale.unwrap_or(0.0)))
    }
}

impl<S: Storage, P: RowSpec<S>, O: Storage<Compute = S::Compute>> Kernel<S::Compute>
    for RowsChunk<'_, '_, S, P, O>
{
    type Output = P::Total;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(mut self, isa: V::Isa) -> P::Total {
        let d = self.driver;
        let c = d.classes;
        let mut sum = P::Total::default();
        let mut first = self.rows.start;
        if V::LANES > 1 && d.spec.by_lanes_ok(c) {
            // One row per lane, so no lane idles and no horizontal reduction.
            let lanes = V::LANES;
            let groups = self.rows.len() / lanes;
            // What one group writes: its losses, or its gradient rows.
            let per_group = if d.scale.is_some() { lanes * c } else { lanes };
            for g in 0..groups {
                let row0 = self.rows.start + g * lanes;
                let out = self
                    .out
                    .as_deref_mut()
                    .map(|o| &mut o[g * per_group..(g + 1) * per_group]);
                let src = (!d.in_place).then(|| &d.x[row0 * c..(row0 + lanes) * c]);
                let part = d.spec.by_lanes::<V, O>(isa, src, row0, out, d.scale);
                sum = sum.merge(part);
            }
            first += groups * lanes;
        }
        let mut out = self.out.take();
        for row in first..self.rows.end {
            let k = row - self.rows.start;
            let finished = match (&out, d.in_place) {
                (Some(buf), true) => self.row::<V, O>(isa, row, &buf[k * c..]),
                _ => self.row::<V, S>(isa, row, &d.x[row * c..]),
            };
            let (loss, grad) = match finished {
                Some((total, loss, g)) => {
                    sum = sum.merge(total);
                    (loss, Some(g))
                }
                // An ignored row adds zeros, as it always has (so `-0.0` sums become `+0.0`).
                None => {
                    sum = sum.merge(P::Total::default());
                    (0.0, None)
                }
            };
            let Some(out) = out.as_deref_mut() else {
                continue;
            };
            let Some(scale) = d.scale else {
                out[k] = O::from_compute(S::Compute::from_f64(loss));
                continue;
            };
            let dst = &mut out[k * c..(k + 1) * c];
            match grad {
                None => dst.fill(O::from_compute(S::Compute::ZERO)),
                Some(g) => {
                    let src = (!d.in_place).then(|| &d.x[row * c..(row + 1) * c]);
                    let other = d.other_row(row);
                    let scale = S::Compute::from_f64(scale);
                    d.spec.grad::<V, O>(isa, &g, 0..c, src, other, dst, scale);
                    d.spec.grad_fix::<V, O>(isa, &g, dst, scale);
                }
            }
        }
        sum
    }
}

/// A leaf of consecutive rows whose sweeps are the output ([`run_row_sweeps`]), on one tier.
struct RowsSweeps<'a, 'd, S: Storage, P: RowSpec<S>> {
    driver: &'a Driver<'d, S, P>,
    rows: Range<usize>,
    out: &'a mut [P::Sweep],
}

impl<S: Storage, P: RowSpec<S>> Kernel<S::Compute> for RowsSweeps<'_, '_, S, P> {
    type Output = ();

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) {
        let d = self.driver;
        let c = d.classes;
        for (row, out) in self.rows.zip(self.out.iter_mut()) {
            // The row, then what follows it: the sweep prefetches the next row.
            let stream = &d.x[row * c..];
            *out = match d.spec.begin::<V, S>(isa, row, &stream[..c]) {
                Some(start) => d.spec.sweep::<V, S>(isa, &start, 0..c, stream, &[]),
                None => P::Sweep::default(),
            };
        }
    }
}

/// [`RowSpec::begin`] of a split row, on one tier.
struct Begin<'a, S: Storage, P: RowSpec<S>, R> {
    spec: &'a P,
    row: usize,
    x: &'a [R],
    _storage: core::marker::PhantomData<S>,
}

impl<S: Storage, P: RowSpec<S>, R: Storage<Compute = S::Compute>> Kernel<S::Compute>
    for Begin<'_, S, P, R>
{
    type Output = Option<P::Row>;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) -> Option<P::Row> {
        self.spec.begin::<V, R>(isa, self.row, self.x)
    }
}

/// The sweep of one segment of a split row, on one tier.
struct SegmentSweep<'a, S: Storage, P: RowSpec<S>, R> {
    spec: &'a P,
    row: &'a P::Row,
    x: &'a [R],
    other: &'a [S],
    seg: Range<usize>,
    _storage: core::marker::PhantomData<S>,
}

impl<S: Storage, P: RowSpec<S>, R: Storage<Compute = S::Compute>> Kernel<S::Compute>
    for SegmentSweep<'_, S, P, R>
{
    type Output = P::Sweep;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) -> P::Sweep {
        self.spec
            .sweep::<V, R>(isa, self.row, self.seg, self.x, self.other)
    }
}

/// The gradient of one segment of a split row, on one tier.
struct SegmentGrad<'a, S: Storage, P: RowSpec<S>, O> {
    spec: &'a P,
    g: &'a P::Grad,
    src: Option<&'a [S]>,
    other: &'a [S],
    seg: Range<usize>,
    dst: &'a mut [O],
    scale: S::Compute,
}

impl<S: Storage, P: RowSpec<S>, O: Storage<Compute = S::Compute>> Kernel<S::Compute>
    for SegmentGrad<'_, S, P, O>
{
    type Output = ();

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) {
        self.spec.grad::<V, O>(
            isa, self.g, self.seg, self.src, self.other, self.dst, self.scale,
        );
    }
}

/// [`RowSpec::grad_fix`] of a split row, on one tier.
struct GradFix<'a, S: Storage, P: RowSpec<S>, O> {
    spec: &'a P,
    g: &'a P::Grad,
    dst: &'a mut [O],
    scale: S::Compute,
}

impl<S: Storage, P: RowSpec<S>, O: Storage<Compute = S::Compute>> Kernel<S::Compute>
    for GradFix<'_, S, P, O>
{
    type Output = ();

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) {
        self.spec
            .grad_fix::<V, O>(isa, self.g, self.dst, self.scale);
    }
}
