//! The fixed combine tree: the one place work is split over threads.
//!
//! A reduction is a sequence of leaves combined in a balanced binary tree whose shape depends
//! only on the number of leaves, never on the number of threads: the two halves of each node
//! run with `rayon::join` (with the `rayon` feature, when the caller asks for parallelism) or
//! one after the other, and are merged in the same order either way, so the result is
//! bit-identical for any pool, with or without rayon, and across runs.

use super::state::Merge;

/// What [`tree_reduce`] cuts along its tree for the leaves to write: a slice, or two slices
/// cut at the same points.
pub(crate) trait Cut: Send + Sized {
    /// The first `at` elements and the rest (all and nothing if `at` is past the end).
    fn cut(self, at: usize) -> (Self, Self);
}

impl<O: Send> Cut for &mut [O] {
    #[inline]
    fn cut(self, at: usize) -> (Self, Self) {
        let at = at.min(self.len());
        self.split_at_mut(at)
    }
}

impl<A: Cut, B: Cut> Cut for (A, B) {
    #[inline]
    fn cut(self, at: usize) -> (Self, Self) {
        let (a0, a1) = self.0.cut(at);
        let (b0, b1) = self.1.cut(at);
        ((a0, b0), (a1, b1))
    }
}

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
/// parallel leaves without allocating. `out` is a slice or a pair of slices ([`Cut`]): a
/// loss with two gradients (the flat driver's second one) has both cut at the same points.
/// Returns `None` for `count == 0`.
pub(crate) fn tree_reduce<P, O, F>(
    count: usize,
    parallel: bool,
    out: Option<O>,
    out_per_leaf: usize,
    leaf: &F,
) -> Option<P>
where
    P: Merge,
    O: Cut,
    F: Fn(usize, Option<O>) -> P + Sync,
{
    fn node<P, O, F>(
        lo: usize,
        hi: usize,
        parallel: bool,
        out: Option<O>,
        per: usize,
        leaf: &F,
    ) -> P
    where
        P: Merge,
        O: Cut,
        F: Fn(usize, Option<O>) -> P + Sync,
    {
        if hi - lo == 1 {
            return leaf(lo, out);
        }
        let mid = lo + (hi - lo) / 2;
        let (out_lo, out_hi) = match out {
            Some(o) => {
                let (a, b) = o.cut((mid - lo) * per);
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

#[cfg(test)]
mod tests {
    use super::{tree_reduce, Merge};

    /// A merge that is neither associative nor commutative, so the value names the tree.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Tree(u64);

    impl Merge for Tree {
        fn merge(self, other: Tree) -> Tree {
            Tree(self.0.wrapping_mul(0x0100_0000_01b3) ^ other.0.rotate_left(17).wrapping_add(7))
        }
    }

    /// The documented shape: split at `count / 2`, left half first.
    fn documented(lo: usize, hi: usize) -> Tree {
        if hi - lo == 1 {
            return Tree(lo as u64 + 1);
        }
        let mid = lo + (hi - lo) / 2;
        documented(lo, mid).merge(documented(mid, hi))
    }

    // Run with and without the `rayon` feature (.ci/run does both): the tree, and the output
    // slice each leaf receives, are the same either way and serial or parallel.
    #[test]
    fn the_tree_and_the_cuts_depend_on_the_leaf_count_alone() {
        const PER: usize = 3;
        for count in 0..70 {
            for parallel in [false, true] {
                // One element more than the leaves' share: the last leaf receives the rest.
                let mut out = vec![usize::MAX; count * PER + 1];
                let leaf = |i: usize, slice: Option<&mut [usize]>| {
                    slice.expect("an output slice").fill(i);
                    Tree(i as u64 + 1)
                };
                let tree = tree_reduce(count, parallel, Some(&mut out[..]), PER, &leaf);
                assert_eq!(tree, (count > 0).then(|| documented(0, count)), "{count}");
                for (j, &written) in out.iter().enumerate() {
                    let owner = if count == 0 {
                        usize::MAX
                    } else {
                        (j / PER).min(count - 1)
                    };
                    assert_eq!(written, owner, "count {count}, element {j}");
                }
            }
        }
    }
}
