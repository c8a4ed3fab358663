//! The mergeable states reductions return: what one leaf, one shard or one segment of a row
//! contributes, combined by [`Merge::merge`] in the fixed tree (`tree.rs`).
//!
//! Every reduction returns a [`LossSum`]; softmax rows also merge their per-row
//! log-sum-exp state (`loss::log_sum_exp::SoftmaxRow`) across segments of a split row. The public
//! partial-result API (serializable, merged across processes) is built on these.

use crate::{Float, Reduction};

/// A state that two adjacent pieces of work combine into one: `a.merge(b)` is the state of `a`
/// followed by `b`.
pub(crate) trait Merge: Copy + Send {
    /// The state of both pieces.
    fn merge(self, other: Self) -> Self;
}

/// Leaves that only write (an `each` form) merge nothing.
impl Merge for () {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn merge(self, _: ()) {}
}

/// The state of a loss reduction: the summed losses, the summed weights of what was counted
/// (the count itself where nothing is weighted), and the count of scored elements or rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossSum {
    /// `Σ loss`, in `f64`.
    pub loss: f64,
    /// `Σ weight` of the scored elements or rows (each 1 where the loss has no weights).
    pub weight: f64,
    /// How many elements or rows were scored (ignored rows are not).
    pub count: u64,
}

impl LossSum {
    /// The state of `count` unweighted elements whose losses sum to `loss`.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn unweighted(loss: f64, count: usize) -> LossSum {
        LossSum {
            loss,
            weight: count as f64,
            count: count as u64,
        }
    }

    /// The reduced loss in `T`: the sum, or the sum divided by `divisor` (what PyTorch's mean
    /// divides by: the count, or the summed weights of the scored rows computed when the
    /// arguments were checked), rounded once.
    #[inline]
    pub(crate) fn finish<T: Float>(self, divisor: f64, reduction: Reduction) -> T {
        match reduction {
            Reduction::Sum => T::from_f64(self.loss),
            Reduction::Mean => T::from_f64(self.loss / divisor),
        }
    }
}

impl Merge for LossSum {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn merge(self, other: LossSum) -> LossSum {
        LossSum {
            loss: self.loss + other.loss,
            weight: self.weight + other.weight,
            count: self.count + other.count,
        }
    }
}
