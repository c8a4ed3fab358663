//! The one map-reduce driver every loss runs on.
//!
//! # Shape
//!
//! The input is cut into chunks of [`CHUNK`] elements (the last one shorter). Each chunk is
//! reduced by one call of a [`Kernel`] on the active tier, and the chunks' partial results are
//! combined in a balanced binary tree over the chunk indices. The cut points and the tree depend
//! only on the input length, never on the number of threads, so the result is bit-identical for
//! any rayon pool and across runs. Chunks run on rayon (`rayon::join` at each tree node) only
//! when there are at least two of them, so small inputs never pay for threads.
//!
//! Inside a chunk, [`UNROLL`] independent vector accumulators hide the add latency. Every
//! [`BLOCK_STEPS`] steps they are folded pairwise and added, widened exactly to `f64`, into an
//! `f64` vector accumulator; the chunk's `f64` lanes are summed in a fixed order. A map that
//! sets [`Map2::PAIRED`] is summed over [`Pair`]s, two vectors taken as one twice as wide (so
//! each accumulator is two vectors); the bound below is per lane and holds unchanged.
//!
//! # Error bound
//!
//! Let `u` be the unit roundoff of the element type (`2^-24` for f32, `2^-53` for f64) and
//! `S = Σ|mᵢ|` the sum of the magnitudes of the mapped values. Each element-type lane
//! accumulator adds at most `BLOCK_STEPS` values before it is flushed (at most
//! `BLOCK_STEPS * UNROLL` in the tail of the last chunk), and the fold adds `log2(UNROLL)`
//! levels, so the sum `ŝ` returned satisfies
//!
//! ```text
//! |ŝ - Σmᵢ| ≤ (BLOCK_STEPS + 2)·u·S + (BLOCK_STEPS·UNROLL + 2)·u·S_tail + (n/LANES + log2 n)·2^-53·S
//! ```
//!
//! where `S_tail` is the magnitude sum of the last, partial block (fewer than 1024 elements).
//! For f32 that is `10·u ≈ 6.0e-7` relative for a sum of non-negative terms such as squared
//! errors, at any length: the mean of 2^26 f32 squared errors is within 1e-6 of the exact value
//! (tested). A plain sequential f32 sum has a bound of `n·u` instead, which at 2^26 is 4.

use rayon::prelude::*;

use crate::float::sealed::Sealed as _;
use crate::simd::dispatch::Resolved;
use crate::simd::pair::Pair;
use crate::simd::{Kernel, Lanes};
use crate::storage::Storage;
use crate::Float;

/// Elements per chunk: the unit of parallel work and of the fixed combine tree.
pub(crate) const CHUNK: usize = 1 << 16;
/// Independent vector accumulators per kernel.
pub(crate) const UNROLL: usize = 4;
/// Steps (of `UNROLL` vectors) an accumulator takes before it is flushed into `f64`.
pub(crate) const BLOCK_STEPS: usize = 8;

// The fold `(s0 + s1) + (s2 + s3)` in the kernels is written for four accumulators.
const _: () = assert!(UNROLL == 4);

/// A per-element map over two inputs, written once over lanes: a loss and its derivative.
///
/// Implementations must be `#[inline(always)]` (see [`Kernel`]).
pub(crate) trait Map2<T: Float>: Sync {
    /// Run the sums two vectors wide ([`Pair`]): for maps whose work is one long dependent
    /// chain per element, so that two chains are interleaved instruction by instruction. Only
    /// the sums (`Sum2`) are paired, not the per-element outputs. A paired map must not use
    /// [`Lanes::transpose`], which `Pair` does not support.
    const PAIRED: bool = false;
    /// The per-element loss.
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V;
    /// The per-element loss and its derivative with respect to `x`.
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V);
}

/// A partial result of a chunk: combined by addition in the fixed tree.
pub(crate) trait Partial: Copy + Send {
    fn combine(self, other: Self) -> Self;
}

impl Partial for f64 {
    #[inline]
    fn combine(self, other: Self) -> Self {
        self + other
    }
}

impl Partial for [f64; 2] {
    #[inline]
    fn combine(self, other: Self) -> Self {
        [self[0] + other[0], self[1] + other[1]]
    }
}

/// Combines `leaf(i, out_i)` for `i in 0..count` in a balanced binary tree whose shape depends
/// only on `count` (split at `count / 2`), running the halves with `rayon::join` when
/// `parallel`. `out`, if given, is cut along the same tree so that leaf `i` receives
/// `out[i * out_per_leaf..][..out_per_leaf]` (shorter at the end): disjoint output slices for
/// parallel leaves without allocating. Returns `None` for `count == 0`.
pub(crate) fn tree_reduce<P, O, F>(
    count: usize,
    parallel: bool,
    out: Option<&mut [O]>,
    out_per_leaf: usize,
    leaf: &F,
) -> Option<P>
where
    P: Partial,
    O: Send,
    F: Fn(usize, Option<&mut [O]>) -> P + Sync,
{
    fn node<P, O, F>(
        lo: usize,
        hi: usize,
        parallel: bool,
        out: Option<&mut [O]>,
        per: usize,
        leaf: &F,
    ) -> P
    where
        P: Partial,
        O: Send,
        F: Fn(usize, Option<&mut [O]>) -> P + Sync,
    {
        if hi - lo == 1 {
            return leaf(lo, out);
        }
        let mid = lo + (hi - lo) / 2;
        let (out_lo, out_hi) = match out {
            Some(o) => {
                let at = ((mid - lo) * per).min(o.len());
                let (a, b) = o.split_at_mut(at);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let (left, right) = if parallel {
            rayon::join(
                || node(lo, mid, parallel, out_lo, per, leaf),
                || node(mid, hi, parallel, out_hi, per, leaf),
            )
        } else {
            (
                node(lo, mid, parallel, out_lo, per, leaf),
                node(mid, hi, parallel, out_hi, per, leaf),
            )
        };
        left.combine(right)
    }
    (count > 0).then(|| node(0, count, parallel, out, out_per_leaf, leaf))
}

/// `Σ map(a[i], b[i])` in `f64`, over `a.len()` elements (`b` must be as long).
pub(crate) fn sum2<S: Storage, M: Map2<S::Compute>>(a: &[S], b: &[S], map: &M) -> f64 {
    sweep2::<S, M, false>(a, b, None, S::Compute::ZERO, map)
}

/// `Σ map(a[i], b[i])` in `f64`, writing `grad[i] = scale · d map(a[i], b[i]) / d a[i]` in the
/// same pass (all three of one length).
pub(crate) fn sum_and_grad2<S: Storage, M: Map2<S::Compute>>(
    a: &[S],
    b: &[S],
    grad: &mut [S],
    scale: S::Compute,
    map: &M,
) -> f64 {
    debug_assert_eq!(a.len(), grad.len());
    sweep2::<S, M, true>(a, b, Some(grad), scale, map)
}

fn sweep2<S: Storage, M: Map2<S::Compute>, const GRAD: bool>(
    a: &[S],
    b: &[S],
    grad: Option<&mut [S]>,
    scale: S::Compute,
    map: &M,
) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let tier = Resolved::active();
    let n = a.len().min(b.len());
    let chunks = n.div_ceil(CHUNK);
    let leaf = |i: usize, grad: Option<&mut [S]>| {
        let range = i * CHUNK..n.min((i + 1) * CHUNK);
        let grad = grad.unwrap_or_default();
        tier.run(Sum2::<S, M, GRAD> {
            a: &a[range.clone()],
            b: &b[range],
            grad,
            scale,
            map,
        })
    };
    tree_reduce(chunks, chunks >= 2, grad, CHUNK, &leaf).unwrap_or(0.0)
}

/// `out[i] = map(a[i], b[i])` (all three of one length).
pub(crate) fn each2<S: Storage, M: Map2<S::Compute>>(
    a: &[S],
    b: &[S],
    out: &mut [S::Compute],
    map: &M,
) {
    debug_assert!(a.len() == b.len() && a.len() == out.len());
    let tier = Resolved::active();
    if out.len() < 2 * CHUNK {
        tier.run(Each2 { a, b, out, map });
        return;
    }
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(out, (a, b))| tier.run(Each2 { a, b, out, map }));
}

/// Sums `map` over one chunk; with `GRAD`, also writes `scale ·` the derivative to `grad`.
struct Sum2<'a, S: Storage, M, const GRAD: bool> {
    a: &'a [S],
    b: &'a [S],
    grad: &'a mut [S],
    scale: S::Compute,
    map: &'a M,
}

impl<S: Storage, M: Map2<S::Compute>, const GRAD: bool> Sum2<'_, S, M, GRAD> {
    /// The loss of the lanes at `at` (a whole vector, or the `tail` elements left), storing the
    /// scaled derivative when `GRAD`.
    #[inline(always)]
    fn lanes<V: Lanes<Elem = S::Compute>>(
        &mut self,
        isa: V::Isa,
        x: V,
        y: V,
        at: usize,
        tail: Option<usize>,
    ) -> V {
        if !GRAD {
            return self.map.map(isa, x, y);
        }
        let (loss, d) = self.map.map_grad(isa, x, y);
        let d = d * V::splat(isa, self.scale);
        match tail {
            None => S::store(d, &mut self.grad[at..]),
            Some(n) => S::store_prefix(d, &mut self.grad[at..at + n]),
        }
        loss
    }
}

impl<S: Storage, M: Map2<S::Compute>, const GRAD: bool> Kernel<S::Compute>
    for Sum2<'_, S, M, GRAD>
{
    type Output = f64;

    #[inline(always)]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) -> f64 {
        if M::PAIRED {
            self.sweep::<Pair<V>>(isa)
        } else {
            self.sweep::<V>(isa)
        }
    }
}

impl<S: Storage, M: Map2<S::Compute>, const GRAD: bool> Sum2<'_, S, M, GRAD> {
    #[inline(always)]
    fn sweep<V: Lanes<Elem = S::Compute>>(mut self, isa: V::Isa) -> f64 {
        let lanes = V::LANES;
        let step = lanes * UNROLL;
        let block = step * BLOCK_STEPS;
        let n = self.a.len().min(self.b.len());
        let (a, b) = (&self.a[..n], &self.b[..n]);
        let zero = V::splat(isa, S::Compute::ZERO);
        let mut acc = V::acc_zero(isa);

        let full = n - n % block;
        for (bi, (ab, bb)) in a[..full]
            .chunks_exact(block)
            .zip(b[..full].chunks_exact(block))
            .enumerate()
        {
            let mut s = [zero; UNROLL];
            for (si, (av, bv)) in ab.chunks_exact(step).zip(bb.chunks_exact(step)).enumerate() {
                for (k, s) in s.iter_mut().enumerate() {
                    let x = S::load::<V>(isa, &av[k * lanes..]);
                    let y = S::load::<V>(isa, &bv[k * lanes..]);
                    *s = *s + self.lanes(isa, x, y, bi * block + si * step + k * lanes, None);
                }
            }
            acc = V::acc_add(acc, (s[0] + s[1]) + (s[2] + s[3]));
        }

        // The last partial block: whole vectors, then one masked vector.
        let (a, b) = (&a[full..], &b[full..]);
        let whole = a.len() - a.len() % lanes;
        let mut s = zero;
        for (j, (av, bv)) in a[..whole]
            .chunks_exact(lanes)
            .zip(b[..whole].chunks_exact(lanes))
            .enumerate()
        {
            s = s + self.lanes(
                isa,
                S::load::<V>(isa, av),
                S::load::<V>(isa, bv),
                full + j * lanes,
                None,
            );
        }
        let (a, b) = (&a[whole..], &b[whole..]);
        if !a.is_empty() {
            let x = S::load_prefix::<V>(isa, a, S::Compute::ZERO);
            let y = S::load_prefix::<V>(isa, b, S::Compute::ZERO);
            let v = self.lanes(isa, x, y, full + whole, Some(a.len()));
            s = s + V::select(V::first_lanes(isa, a.len()), v, zero);
        }
        V::acc_sum(V::acc_add(acc, s))
    }
}

/// Writes `map` of one chunk.
struct Each2<'a, S: Storage, M> {
    a: &'a [S],
    b: &'a [S],
    out: &'a mut [S::Compute],
    map: &'a M,
}

impl<S: Storage, M: Map2<S::Compute>> Kernel<S::Compute> for Each2<'_, S, M> {
    type Output = ();

    #[inline(always)]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) {
        let lanes = V::LANES;
        let n = self.out.len().min(self.a.len()).min(self.b.len());
        let (a, b, out) = (&self.a[..n], &self.b[..n], &mut self.out[..n]);
        let whole = n - n % lanes;
        let (out_whole, out_tail) = out.split_at_mut(whole);
        for ((o, av), bv) in out_whole
            .chunks_exact_mut(lanes)
            .zip(a[..whole].chunks_exact(lanes))
            .zip(b[..whole].chunks_exact(lanes))
        {
            self.map
                .map(isa, S::load::<V>(isa, av), S::load::<V>(isa, bv))
                .store(o);
        }
        if !out_tail.is_empty() {
            let x = S::load_prefix::<V>(isa, &a[whole..], S::Compute::ZERO);
            let y = S::load_prefix::<V>(isa, &b[whole..], S::Compute::ZERO);
            self.map.map(isa, x, y).store_prefix(out_tail);
        }
    }
}
