//! The fixed combine tree: the one place work is split over threads.
//!
//! A reduction is a sequence of leaves combined in a balanced binary tree whose shape depends
//! only on the number of leaves, never on the number of threads: the two halves of each node
//! run with `rayon::join` (with the `rayon` feature, when the caller asks for parallelism) or
//! one after the other, and are merged in the same order either way, so the result is
//! bit-identical for any pool, with or without rayon, and across runs.

use super::state::Merge;

/// Runs `a` and `b`, in parallel when `parallel` and the `rayon` feature is on.
#[inline]
fn join<A, B, RA, RB>(parallel: bool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    #[cfg(feature = "rayon")]
    if parallel {
        return rayon::join(a, b);
    }
    let _ = parallel;
    (a(), b())
}

/// Merges `leaf(i, out_i)` for `i in 0..count` in a balanced binary tree whose shape depends
/// only on `count` (split at `count / 2`), running the halves in parallel when `parallel`.
/// `out`, if given, is cut along the same tree so that leaf `i` receives
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
    P: Merge,
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
        P: Merge,
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
        let (left, right) = join(
            parallel,
            || node(lo, mid, parallel, out_lo, per, leaf),
            || node(mid, hi, parallel, out_hi, per, leaf),
        );
        left.merge(right)
    }
    (count > 0).then(|| node(0, count, parallel, out, out_per_leaf, leaf))
}
