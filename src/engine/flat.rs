//! The flat shape: a per-element map over two inputs of one length, reduced, written per
//! element, or reduced with its derivative written per element.
//!
//! The input is cut into [`CHUNK`](super::CHUNK)-element leaves of the fixed tree (see the engine docs for the
//! policy and the error bound). Inside a leaf, [`UNROLL`] independent vector accumulators hide
//! the add latency; every [`BLOCK_STEPS`] steps they are folded pairwise and added, widened
//! exactly to `f64`, into an `f64` vector accumulator whose lanes are summed in a fixed order.
//! A map that sets [`Map2::PAIRED`] is summed over [`Pair`]s, two vectors taken as one twice as
//! wide (so each accumulator is two vectors); the bound is per lane and holds unchanged.

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
    /// the sums (`Sum2`) are paired, not the per-element outputs. A paired map must not use
    /// [`Lanes::transpose`], which `Pair` does not support.
    const PAIRED: bool = false;
    /// The per-element loss.
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V;
    /// The per-element loss and its derivative with respect to `x`.
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V);
}

/// `Σ map(a[i], b[i])` over `a.len()` elements (`b` must be as long).
pub(crate) fn sum2<S: Storage, M: Map2<S::Compute>>(a: &[S], b: &[S], map: &M) -> LossSum {
    sweep2::<S, M, false>(a, b, None, S::Compute::ZERO, map)
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
    sweep2::<S, M, true>(a, b, Some(grad), scale, map)
}

fn sweep2<S: Storage, M: Map2<S::Compute>, const GRAD: bool>(
    a: &[S],
    b: &[S],
    grad: Option<&mut [S]>,
    scale: S::Compute,
    map: &M,
) -> LossSum {
    debug_assert_eq!(a.len(), b.len());
    let tier = Resolved::active();
    let n = a.len().min(b.len());
    let plan = Shape::Flat { len: n }.plan();
    let leaf = |i: usize, grad: Option<&mut [S]>| {
        let range = plan.leaf(i);
        let grad = grad.unwrap_or_default();
        let sum = tier.run(Sum2::<S, M, GRAD> {
            a: &a[range.clone()],
            b: &b[range.clone()],
            grad,
            scale,
            map,
        });
        LossSum::unweighted(sum, range.len())
    };
    tree_reduce(plan.leaves, plan.parallel, grad, plan.per_leaf, &leaf).unwrap_or_default()
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
    let n = out.len().min(a.len()).min(b.len());
    let plan = Shape::Flat { len: n }.plan();
    let leaf = |i: usize, out: Option<&mut [S::Compute]>| {
        let range = plan.leaf(i);
        let out = out.unwrap_or_default();
        tier.run(Each2 {
            a: &a[range.clone()],
            b: &b[range],
            out,
            map,
        })
    };
    tree_reduce(plan.leaves, plan.parallel, Some(out), plan.per_leaf, &leaf);
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
