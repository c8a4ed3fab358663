//! The flat shape: a per-element map over two to four inputs of one length, reduced, written
//! per element, or reduced with its derivatives written per element.
//!
//! The input is cut into [`CHUNK`](super::CHUNK)-element leaves of the fixed tree (see the engine docs for the
//! policy and the error bound). Inside a leaf, [`UNROLL`] independent vector accumulators hide
//! the add latency; every [`BLOCK_STEPS`] steps they are folded pairwise and added, widened
//! exactly to `f64`, into an `f64` vector accumulator whose lanes are summed in a fixed order.
//! A map that sets [`Map3::PAIRED`] (or [`Map2::PAIRED`]) is summed over [`Pair`]s, two vectors
//! taken as one twice as wide (so each accumulator is two vectors); the bound is per lane and
//! holds unchanged.
//!
//! # The third and fourth streams
//!
//! There is one sweep, written for four inputs ([`Map4`]). A two- or three-input map ([`Map2`],
//! [`Map3`]) runs on it through an adapter that ignores the inputs it lacks, whose streams are
//! [`Absent`]: a type whose "load" is a constant the map never reads, so the compiler removes
//! it and the sweep is the instruction sequence it was before those streams existed (same
//! loads, same arithmetic, same bits: checked by hashing every form on every tier and storage
//! type before and after). A real stream is read by the index the gradient is stored at,
//! beside the first two: a slice, [`One`] (a weight that is not given) or [`PerClass`] (a
//! `[classes]` input broadcast over the rows). Likewise the second gradient (`Map3::GRAD2`: a
//! loss with two differentiable inputs) is stored only when the map has one; otherwise its
//! slice is empty and the store is compiled out. [`row_sum`] lends the sweep's loop to row
//! specs.

use core::ops::Range;

use crate::float::sealed::Sealed as _;
use crate::simd::dispatch::Resolved;
use crate::simd::pair::Pair;
use crate::simd::{Kernel, Lanes};
use crate::storage::Storage;
use crate::Float;

use super::state::LossSum;
use super::tree::tree_reduce;
use super::{Shape, BLOCK_STEPS, UNROLL};

/// A per-element map over two inputs, written once over lanes: a loss and its derivative.
///
/// Implementations must be `#[inline(always)]` (see [`Kernel`]).
pub(crate) trait Map2<T: Float>: Sync {
    /// Run the sums two vectors wide ([`Pair`]): for maps whose work is one long dependent
    /// chain per element, so that two chains are interleaved instruction by instruction. Only
    /// the sums are paired, not the per-element outputs. A paired map must not use
    /// [`Lanes::transpose`], which `Pair` does not support.
    const PAIRED: bool = false;
    /// The per-element loss.
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V;
    /// The per-element loss and its derivative with respect to `x`.
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V);
}

/// A per-element map over three inputs: a loss, its derivative with respect to `x`, and, for a
/// loss with a second differentiable input ([`GRAD2`](Map3::GRAD2)), the derivative with
/// respect to that one (which input it is, the map says: `var` for gaussian_nll, `x2` for
/// margin_ranking).
///
/// Implementations must be `#[inline(always)]` (see [`Kernel`]).
pub(crate) trait Map3<T: Float>: Sync {
    /// As [`Map2::PAIRED`].
    const PAIRED: bool = false;
    /// Whether the second derivative of [`map_grad`](Map3::map_grad) is written (into a second
    /// gradient slice); if not, it is never stored and may be anything.
    const GRAD2: bool = false;
    /// Whether the third input is a weight whose sum a mean divides by (PyTorch's `mse_loss`
    /// and `l1_loss` with `weight`): then the reducing sweep (without gradients, whose scale
    /// needs the sum first) also sums it, into the state's
    /// [`weight`](LossSum::weight), from the loads the loss already made, instead of a
    /// second pass over the weights. It is summed exactly as [`total`](crate::loss::total)
    /// sums it (same leaves, lanes, blocks and tail), so for a map that is not
    /// [`PAIRED`](Map3::PAIRED) the bits are those of that second pass.
    const SUMS_WEIGHT: bool = false;
    /// The per-element loss.
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V) -> V;
    /// The per-element loss, its derivative with respect to `x`, and the second derivative.
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V) -> (V, V, V);
}

/// A map by reference is a map: the drivers hold their map by value (`Copy`), so a map passed
/// as `&M` is reached through one pointer, as a two-input map through [`Two`] is.
impl<T: Float, M: Map3<T>> Map3<T> for &M {
    const PAIRED: bool = M::PAIRED;
    const GRAD2: bool = M::GRAD2;
    const SUMS_WEIGHT: bool = M::SUMS_WEIGHT;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V) -> V {
        (**self).map(isa, x, y, z)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V) -> (V, V, V) {
        (**self).map_grad(isa, x, y, z)
    }
}

/// A per-element map over four inputs, the form the one sweep runs: [`Map2`] and [`Map3`] maps
/// reach it through adapters that never read the inputs they lack (whose streams are
/// [`Absent`], compiled out). Only bce_with_logits with a per-class `pos_weight` reads a fourth
/// input (a [`PerClass`] stream).
///
/// Implementations must be `#[inline(always)]` (see [`Kernel`]).
pub(crate) trait Map4<T: Float>: Sync {
    /// As [`Map2::PAIRED`].
    const PAIRED: bool = false;
    /// As [`Map3::GRAD2`].
    const GRAD2: bool = false;
    /// As [`Map3::SUMS_WEIGHT`]: the reducing sweep also sums the third input (not when it
    /// writes gradients: their scale needs the sum before the sweep).
    const SUMS_Z: bool = false;
    /// The per-element loss.
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, u: V) -> V;
    /// The per-element loss, its derivative with respect to `x`, and the second derivative.
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, u: V) -> (V, V, V);
}

/// A three-input map as a four-input one that never reads its fourth input (by reference, as
/// [`Two`]).
struct Three<'a, M>(&'a M);

impl<M> Clone for Three<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Three<'_, M> {}

impl<T: Float, M: Map3<T>> Map4<T> for Three<'_, M> {
    const PAIRED: bool = M::PAIRED;
    const GRAD2: bool = M::GRAD2;
    const SUMS_Z: bool = M::SUMS_WEIGHT;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, _: V) -> V {
        self.0.map(isa, x, y, z)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, z: V, _: V) -> (V, V, V) {
        self.0.map_grad(isa, x, y, z)
    }
}

/// A two-input map as a four-input one that never reads its third and fourth inputs. It holds
/// the map by reference and the kernels hold it by value, so the map's parameters are one pointer away, as
/// they were before the third stream (measured: holding `&Two` added a pointer load per vector
/// to huber's loop).
struct Two<'a, M>(&'a M);

impl<M> Clone for Two<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Two<'_, M> {}

impl<T: Float, M: Map2<T>> Map4<T> for Two<'_, M> {
    const PAIRED: bool = M::PAIRED;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, _: V, _: V) -> V {
        self.0.map(isa, x, y)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V, _: V, _: V) -> (V, V, V) {
        let (loss, d) = self.0.map_grad(isa, x, y);
        (loss, d, d)
    }
}

/// The third or fourth input of a sweep: a slice, [`Absent`], [`One`] or [`PerClass`].
trait Stream<S: Storage>: Copy + Send + Sync {
    /// The elements `range` of the stream.
    fn part(self, range: Range<usize>) -> Self;
    /// The vector at element `at` (whole). By reference: a stream may hold a copy of its
    /// values (see [`PerClass`]), which a load must not copy again.
    fn load<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, at: usize) -> V;
    /// The elements from `at` to the end (fewer than a vector), 0 in the other lanes.
    fn load_tail<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, at: usize) -> V;
}

/// No third input: what a two-input map's sweep reads as its third stream. Its loads are a
/// constant that [`Two`] never uses, so they compile to nothing.
#[derive(Clone, Copy)]
struct Absent;

impl<S: Storage> Stream<S> for Absent {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn part(self, _: Range<usize>) -> Self {
        self
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, _: usize) -> V {
        V::splat(isa, S::Compute::ZERO)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_tail<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, _: usize) -> V {
        V::splat(isa, S::Compute::ZERO)
    }
}

/// A slice, of the inputs' storage type or another of the same compute type (a row spec's
/// per-class weights are in the compute type).
impl<S: Storage, W: Storage<Compute = S::Compute>> Stream<S> for &[W] {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn part(self, range: Range<usize>) -> Self {
        &self[range]
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, at: usize) -> V {
        W::load::<V>(isa, &self[at..])
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_tail<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, at: usize) -> V {
        W::load_prefix::<V>(isa, &self[at..], S::Compute::ZERO)
    }
}

/// A third input of ones: a per-element weight that is not given (`x · 1` is exact, so the
/// weighted form of a map then gives the unweighted bits).
#[derive(Clone, Copy)]
struct One;

impl<S: Storage> Stream<S> for One {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn part(self, _: Range<usize>) -> Self {
        self
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, _: usize) -> V {
        V::splat(isa, S::Compute::ONE)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_tail<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, _: usize) -> V {
        V::splat(isa, S::Compute::ONE)
    }
}

/// The most lanes a vector of the sweep has (a [`Pair`] of AVX-512 `f32` vectors has 32).
const MAX_LANES: usize = 64;

/// A per-class input of a row-major `[rows, classes]` matrix read flat: element `i` of the
/// stream is `values[(first + i) % classes]` (PyTorch broadcasting a `[classes]` tensor over
/// the rows). Rows of up to [`MAX_LANES`] classes read a copy of their values repeated
/// (`pattern`, `classes + MAX_LANES` long), so that every vector is one load at
/// `(first + i) % classes`; longer rows read `values` directly where a vector lies within one
/// row and assemble the vectors that wrap element by element on the stack.
#[derive(Clone, Copy)]
struct PerClass<'a, S> {
    /// One value per class; not empty.
    values: &'a [S],
    /// The class of the stream's element 0.
    first: usize,
    /// `values` repeated, when there are at most `MAX_LANES` classes.
    pattern: Option<[S; 2 * MAX_LANES]>,
}

impl<'a, S: Storage> PerClass<'a, S> {
    fn new(values: &'a [S]) -> Self {
        let classes = values.len();
        let pattern = (classes <= MAX_LANES).then(|| {
            let mut pattern = [values[0]; 2 * MAX_LANES];
            for (k, slot) in pattern.iter_mut().enumerate().take(classes + MAX_LANES) {
                *slot = values[k % classes];
            }
            pattern
        });
        PerClass {
            values,
            first: 0,
            pattern,
        }
    }
}

impl<S: Storage> Stream<S> for PerClass<'_, S> {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn part(self, range: Range<usize>) -> Self {
        PerClass {
            first: (self.first + range.start) % self.values.len(),
            ..self
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, at: usize) -> V {
        let classes = self.values.len();
        let start = (self.first + at) % classes;
        if let Some(pattern) = &self.pattern {
            return S::load::<V>(isa, &pattern[start..]);
        }
        if start + V::LANES <= classes {
            return S::load::<V>(isa, &self.values[start..]);
        }
        let mut wrapped = [self.values[0]; MAX_LANES];
        let mut class = start;
        for slot in &mut wrapped[..V::LANES] {
            *slot = self.values[class];
            class += 1;
            if class == classes {
                class = 0;
            }
        }
        S::load::<V>(isa, &wrapped)
    }
    /// The lanes past the end get the classes that would follow: the sweep masks them.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_tail<V: Lanes<Elem = S::Compute>>(&self, isa: V::Isa, at: usize) -> V {
        self.load(isa, at)
    }
}

/// `Σ map(a[i], b[i])` over `a.len()` elements (`b` must be as long).
pub(crate) fn sum2<S: Storage, M: Map2<S::Compute>>(a: &[S], b: &[S], map: &M) -> LossSum {
    sweep::<S, _, _, _, false>(a, b, Absent, Absent, None, S::Compute::ZERO, Two(map))
}

/// `Σ map(a[i], b[i])`, writing `grad[i] = scale · d map(a[i], b[i]) / d a[i]` in the same
/// pass (all three of one length).
pub(crate) fn sum_and_grad2<S: Storage, M: Map2<S::Compute>>(
    a: &[S],
    b: &[S],
    grad: &mut [S],
    scale: S::Compute,
    map: &M,
) -> LossSum {
    debug_assert_eq!(a.len(), grad.len());
    let grads = (grad, &mut [][..]);
    sweep::<S, _, _, _, true>(a, b, Absent, Absent, Some(grads), scale, Two(map))
}

/// `out[i] = map(a[i], b[i])` (all three of one length).
pub(crate) fn each2<S: Storage, M: Map2<S::Compute>>(
    a: &[S],
    b: &[S],
    out: &mut [S::Compute],
    map: &M,
) {
    each::<S, _, _, _>(a, b, Absent, Absent, out, Two(map))
}

/// `Σ map(a[i], b[i], c[i])` over `a.len()` elements (`b` and `c` must be as long).
pub(crate) fn sum3<S: Storage, M: Map3<S::Compute>>(a: &[S], b: &[S], c: &[S], map: &M) -> LossSum {
    debug_assert_eq!(a.len(), c.len());
    sweep::<S, _, _, _, false>(a, b, c, Absent, None, S::Compute::ZERO, Three(map))
}

/// `Σ map(a[i], b[i], c[i])`, writing `scale ·` the derivative with respect to `a[i]` to
/// `grad[i]` and, for a map with [`Map3::GRAD2`], `scale ·` the second derivative to
/// `grad2[i]` (otherwise `grad2` is empty and untouched). All of one length.
pub(crate) fn sum_and_grad3<S: Storage, M: Map3<S::Compute>>(
    a: &[S],
    b: &[S],
    c: &[S],
    grad: &mut [S],
    grad2: &mut [S],
    scale: S::Compute,
    map: &M,
) -> LossSum {
    debug_assert!(a.len() == c.len() && a.len() == grad.len());
    debug_assert_eq!(grad2.len(), if M::GRAD2 { a.len() } else { 0 });
    sweep::<S, _, _, _, true>(a, b, c, Absent, Some((grad, grad2)), scale, Three(map))
}

/// `out[i] = map(a[i], b[i], c[i])` (all four of one length).
pub(crate) fn each3<S: Storage, M: Map3<S::Compute>>(
    a: &[S],
    b: &[S],
    c: &[S],
    out: &mut [S::Compute],
    map: &M,
) {
    debug_assert_eq!(a.len(), c.len());
    each::<S, _, _, _>(a, b, c, Absent, out, Three(map))
}

/// `Σ map(a[i], b[i], weight[i], per_class[i % classes])` over a `[rows, classes]` matrix
/// read flat (`classes = per_class.len()`, not 0, dividing `a.len()`); without `weight` the
/// third input is 1.
pub(crate) fn sum_per_class<S: Storage, M: Map4<S::Compute> + Copy>(
    a: &[S],
    b: &[S],
    weight: Option<&[S]>,
    per_class: &[S],
    map: M,
) -> LossSum {
    let d = PerClass::new(per_class);
    let zero = S::Compute::ZERO;
    match weight {
        Some(w) => sweep::<S, _, _, _, false>(a, b, w, d, None, zero, map),
        None => sweep::<S, _, _, _, false>(a, b, One, d, None, zero, map),
    }
}

/// [`sum_per_class`], writing `grad[i] = scale ·` the derivative with respect to `a[i]`.
pub(crate) fn sum_and_grad_per_class<S: Storage, M: Map4<S::Compute> + Copy>(
    a: &[S],
    b: &[S],
    weight: Option<&[S]>,
    per_class: &[S],
    grad: &mut [S],
    scale: S::Compute,
    map: M,
) -> LossSum {
    debug_assert_eq!(a.len(), grad.len());
    let d = PerClass::new(per_class);
    let grads = Some((grad, &mut [][..]));
    match weight {
        Some(w) => sweep::<S, _, _, _, true>(a, b, w, d, grads, scale, map),
        None => sweep::<S, _, _, _, true>(a, b, One, d, grads, scale, map),
    }
}

/// `out[i] = map(a[i], b[i], weight[i], per_class[i % classes])` (see [`sum_per_class`]).
pub(crate) fn each_per_class<S: Storage, M: Map4<S::Compute> + Copy>(
    a: &[S],
    b: &[S],
    weight: Option<&[S]>,
    per_class: &[S],
    out: &mut [S::Compute],
    map: M,
) {
    let d = PerClass::new(per_class);
    match weight {
        Some(w) => each::<S, _, _, _>(a, b, w, d, out, map),
        None => each::<S, _, _, _>(a, b, One, d, out, map),
    }
}

/// `Σ map(x[i], y[i], weight[i], 0)` over one row (or segment of one), inside a running
/// kernel on its tier: the flat sweep's loop (its blocks, accumulators and bound), for a row
/// spec's sweep. `weight` absent reads as ones; the fourth input is 0.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn row_sum<V, S, R, M, W>(
    isa: V::Isa,
    x: &[R],
    y: &[S],
    weight: Option<&[W]>,
    map: M,
) -> f64
where
    V: Lanes<Elem = S::Compute>,
    S: Storage,
    R: Storage<Compute = S::Compute>,
    M: Map4<S::Compute> + Copy,
    W: Storage<Compute = S::Compute>,
{
    match weight {
        Some(c) => row_sum_over::<V, S, R, M, _>(isa, x, y, c, map),
        None => row_sum_over::<V, S, R, M, _>(isa, x, y, One, map),
    }
}

/// [`row_sum`] with its third stream resolved.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn row_sum_over<V, S, R, M, C>(isa: V::Isa, x: &[R], y: &[S], c: C, map: M) -> f64
where
    V: Lanes<Elem = S::Compute>,
    S: Storage,
    R: Storage<Compute = S::Compute>,
    M: Map4<S::Compute> + Copy,
    C: Stream<S>,
{
    let sum = Sum::<S, R, M, C, Absent, false> {
        a: x,
        b: y,
        c,
        d: Absent,
        grad: &mut [],
        grad2: &mut [],
        scale: S::Compute::ZERO,
        map,
    };
    sum.run::<V>(isa).0
}

/// The one reducing driver: every leaf on the active tier, merged in the fixed tree.
fn sweep<S: Storage, M: Map4<S::Compute> + Copy, C: Stream<S>, D: Stream<S>, const GRAD: bool>(
    a: &[S],
    b: &[S],
    c: C,
    d: D,
    grads: Option<(&mut [S], &mut [S])>,
    scale: S::Compute,
    map: M,
) -> LossSum {
    debug_assert_eq!(a.len(), b.len());
    let tier = Resolved::active();
    let n = a.len().min(b.len());
    let plan = Shape::Flat { len: n }.plan();
    let leaf = |i: usize, grads: Option<(&mut [S], &mut [S])>| {
        let range = plan.leaf(i);
        let (grad, grad2) = grads.unwrap_or_default();
        let (sum, z) = tier.run(Sum::<S, S, M, C, D, GRAD> {
            a: &a[range.clone()],
            b: &b[range.clone()],
            c: c.part(range.clone()),
            d: d.part(range.clone()),
            grad,
            grad2,
            scale,
            map,
        });
        let state = LossSum::unweighted(sum, range.len());
        match M::SUMS_Z && !GRAD {
            true => LossSum { weight: z, ..state },
            false => state,
        }
    };
    tree_reduce(plan.leaves, plan.parallel, grads, plan.per_leaf, &leaf).unwrap_or_default()
}

/// The one writing driver.
fn each<S: Storage, M: Map4<S::Compute> + Copy, C: Stream<S>, D: Stream<S>>(
    a: &[S],
    b: &[S],
    c: C,
    d: D,
    out: &mut [S::Compute],
    map: M,
) {
    debug_assert!(a.len() == b.len() && a.len() == out.len());
    let tier = Resolved::active();
    let n = out.len().min(a.len()).min(b.len());
    let plan = Shape::Flat { len: n }.plan();
    let leaf = |i: usize, out: Option<&mut [S::Compute]>| {
        let range = plan.leaf(i);
        let out = out.unwrap_or_default();
        tier.run(Each {
            a: &a[range.clone()],
            b: &b[range.clone()],
            c: c.part(range.clone()),
            d: d.part(range),
            out,
            map,
        })
    };
    tree_reduce(plan.leaves, plan.parallel, Some(out), plan.per_leaf, &leaf);
}

/// Sums `map` over one chunk; with `GRAD`, also writes `scale ·` the derivative(s). The first
/// input may be of another storage type `R` (a row spec's sweep reads its row as it finds it,
/// see [`row_sum`]); the drivers here read all inputs as `S`.
struct Sum<'a, S: Storage, R, M, C, D, const GRAD: bool> {
    a: &'a [R],
    b: &'a [S],
    c: C,
    d: D,
    grad: &'a mut [S],
    grad2: &'a mut [S],
    scale: S::Compute,
    map: M,
}

impl<
        S: Storage,
        R: Storage<Compute = S::Compute>,
        M: Map4<S::Compute>,
        C: Stream<S>,
        D: Stream<S>,
        const GRAD: bool,
    > Sum<'_, S, R, M, C, D, GRAD>
{
    /// The loss of the lanes at `at` (a whole vector, or the `tail` elements left), storing the
    /// scaled derivative(s) when `GRAD`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn lanes<V: Lanes<Elem = S::Compute>>(
        &mut self,
        isa: V::Isa,
        x: V,
        y: V,
        at: usize,
        tail: Option<usize>,
    ) -> V {
        let (z, u) = match tail {
            None => (self.c.load::<V>(isa, at), self.d.load::<V>(isa, at)),
            Some(_) => (
                self.c.load_tail::<V>(isa, at),
                self.d.load_tail::<V>(isa, at),
            ),
        };
        if !GRAD {
            return self.map.map(isa, x, y, z, u);
        }
        let (loss, d, d2) = self.map.map_grad(isa, x, y, z, u);
        let scale = V::splat(isa, self.scale);
        let d = d * scale;
        match tail {
            None => S::store(d, &mut self.grad[at..]),
            Some(n) => S::store_prefix(d, &mut self.grad[at..at + n]),
        }
        if M::GRAD2 {
            let d2 = d2 * scale;
            match tail {
                None => S::store(d2, &mut self.grad2[at..]),
                Some(n) => S::store_prefix(d2, &mut self.grad2[at..at + n]),
            }
        }
        loss
    }
}

impl<
        S: Storage,
        R: Storage<Compute = S::Compute>,
        M: Map4<S::Compute>,
        C: Stream<S>,
        D: Stream<S>,
        const GRAD: bool,
    > Kernel<S::Compute> for Sum<'_, S, R, M, C, D, GRAD>
{
    /// `Σ map`, and `Σ z` for a map with [`Map4::SUMS_Z`] when not writing gradients (else 0).
    type Output = (f64, f64);

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) -> (f64, f64) {
        if M::PAIRED {
            self.sweep::<Pair<V>>(isa)
        } else {
            self.sweep::<V>(isa)
        }
    }
}

impl<
        S: Storage,
        R: Storage<Compute = S::Compute>,
        M: Map4<S::Compute>,
        C: Stream<S>,
        D: Stream<S>,
        const GRAD: bool,
    > Sum<'_, S, R, M, C, D, GRAD>
{
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = S::Compute>>(mut self, isa: V::Isa) -> (f64, f64) {
        let lanes = V::LANES;
        let step = lanes * UNROLL;
        let block = step * BLOCK_STEPS;
        let n = self.a.len().min(self.b.len());
        let (a, b) = (&self.a[..n], &self.b[..n]);
        let zero = V::splat(isa, S::Compute::ZERO);
        let mut acc = V::acc_zero(isa);
        // `Σ z` (M::SUMS_Z only, and not with gradients, whose scale needed it before the
        // sweep; otherwise these stay zero and are compiled out), in the same blocks, lanes and
        // order as the loss, which is how `total` sums a slice.
        let sums_z = M::SUMS_Z && !GRAD;
        let mut z_acc = V::acc_zero(isa);

        // One `chunks_exact` iterator per loop, the other input indexed beside it, rather than
        // zipping two: the zip's setup (`Iterator::zip`, lengths by division) is a call LLVM
        // leaves out of line in the largest kernels, once per loop, which a row spec that sums
        // one short window per call (multilabel_margin: one call per target and row) pays every
        // call. The order is unchanged: blocks, steps, accumulators, then the rest. Inside a
        // block every index is below a constant bound, so the loads' checks fold away.
        let full = n - n % block;
        for (bi, ab) in a[..full].chunks_exact(block).enumerate() {
            let bb = &b[bi * block..][..block];
            let mut s = [zero; UNROLL];
            let mut zs = [zero; UNROLL];
            for si in 0..BLOCK_STEPS {
                for k in 0..UNROLL {
                    let i = si * step + k * lanes;
                    let at = bi * block + i;
                    let (x, y) = (R::load::<V>(isa, &ab[i..]), S::load::<V>(isa, &bb[i..]));
                    s[k] = s[k] + self.lanes(isa, x, y, at, None);
                    if sums_z {
                        zs[k] = zs[k] + self.c.load::<V>(isa, at);
                    }
                }
            }
            acc = V::acc_add(acc, (s[0] + s[1]) + (s[2] + s[3]));
            if sums_z {
                z_acc = V::acc_add(z_acc, (zs[0] + zs[1]) + (zs[2] + zs[3]));
            }
        }

        // The last partial block: whole vectors, then one masked vector.
        let whole = n - n % lanes;
        let mut s = zero;
        let mut zs = zero;
        for (j, av) in a[full..whole].chunks_exact(lanes).enumerate() {
            let at = full + j * lanes;
            s = s + self.lanes(
                isa,
                R::load::<V>(isa, av),
                S::load::<V>(isa, &b[at..]),
                at,
                None,
            );
            if sums_z {
                zs = zs + self.c.load::<V>(isa, at);
            }
        }
        let (a, b) = (&a[whole..], &b[whole..]);
        if !a.is_empty() {
            let x = R::load_prefix::<V>(isa, a, S::Compute::ZERO);
            let y = S::load_prefix::<V>(isa, b, S::Compute::ZERO);
            let v = self.lanes(isa, x, y, whole, Some(a.len()));
            let first = V::first_lanes(isa, a.len());
            s = s + V::select(first, v, zero);
            if sums_z {
                zs = zs + V::select(first, self.c.load_tail::<V>(isa, whole), zero);
            }
        }
        let z = match sums_z {
            true => V::acc_sum(V::acc_add(z_acc, zs)),
            false => 0.0,
        };
        (V::acc_sum(V::acc_add(acc, s)), z)
    }
}

/// Writes `map` of one chunk.
struct Each<'a, S: Storage, M, C, D> {
    a: &'a [S],
    b: &'a [S],
    c: C,
    d: D,
    out: &'a mut [S::Compute],
    map: M,
}

impl<S: Storage, M: Map4<S::Compute>, C: Stream<S>, D: Stream<S>> Kernel<S::Compute>
    for Each<'_, S, M, C, D>
{
    type Output = ();

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) {
        let lanes = V::LANES;
        let n = self.out.len().min(self.a.len()).min(self.b.len());
        let (a, b, c, d, out) = (
            &self.a[..n],
            &self.b[..n],
            self.c,
            self.d,
            &mut self.out[..n],
        );
        let whole = n - n % lanes;
        let (out_whole, out_tail) = out.split_at_mut(whole);
        // One iterator, the inputs indexed beside it, as in `Sum::sweep`.
        for (j, o) in out_whole.chunks_exact_mut(lanes).enumerate() {
            let at = j * lanes;
            let (z, u) = (c.load::<V>(isa, at), d.load::<V>(isa, at));
            self.map
                .map(
                    isa,
                    S::load::<V>(isa, &a[at..]),
                    S::load::<V>(isa, &b[at..]),
                    z,
                    u,
                )
                .store(o);
        }
        if !out_tail.is_empty() {
            let x = S::load_prefix::<V>(isa, &a[whole..], S::Compute::ZERO);
            let y = S::load_prefix::<V>(isa, &b[whole..], S::Compute::ZERO);
            let (z, u) = (c.load_tail::<V>(isa, whole), d.load_tail::<V>(isa, whole));
            self.map.map(isa, x, y, z, u).store_prefix(out_tail);
        }
    }
}
