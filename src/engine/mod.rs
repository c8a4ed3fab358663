//! The engine: the one driver every loss runs on, over two shapes and three modes.
//!
//! # Shapes, modes, states
//!
//! - [`Shape::Flat`]: a per-element map over two inputs (`flat.rs`, [`Map2`]): the regression
//!   and binary losses; or over three ([`Map3`]: a third stream such as gaussian_nll's `var`
//!   or a per-element weight, and optionally a second gradient) or four ([`Map4`]: a
//!   `[classes]` input broadcast over the rows of a matrix read flat, bce_with_logits's
//!   per-class `pos_weight`), on the same sweep.
//! - [`Shape::Rows`]: a row-major `[rows, classes]` matrix and one target per row (`rows.rs`,
//!   [`RowSpec`]): cross-entropy, nll, and every later row-wise loss; a paired spec reads the
//!   same row of a second matrix beside it (distillation KL's student and teacher,
//!   multilabel_soft_margin's logits and targets). A spec that sums a map over its row uses
//!   the flat sweep's own loop ([`row_sum`]).
//!
//! Each runs in one of three modes: *reduce* (the sum), *each* (one value per element or row
//! into the caller's slice) and *grad* (the sum, and the derivative per element into the
//! caller's slice, in place for rows). Every reduction returns a mergeable state
//! ([`LossSum`], `state.rs`), and a split row merges its segments' states the same way.
//!
//! # The policy: leaves and the fixed tree
//!
//! [`Shape::plan`] cuts the work into leaves of about [`CHUNK`] elements: `CHUNK` elements of a
//! flat input, or `CHUNK / classes` rows (at least one) of a matrix. Each leaf is one call of a
//! [`Kernel`](crate::simd::Kernel) on the active tier (this module is the only caller of the
//! dispatch), and the leaves' states are merged in a balanced binary tree over their indices (`tree.rs`). The cut
//! points and the tree depend only on the shape, never on the number of threads, so the result
//! is bit-identical for any rayon pool (and without the `rayon` feature) and across runs.
//! Leaves run in parallel only when there are at least two of them, so small inputs never pay
//! for threads. A batch of few long rows (fewer than [`SPLIT_ROWS`] rows of at least
//! [`SPLIT_CLASSES`] classes) also cuts each row into `CHUNK`-class segments whose states are
//! merged in the same kind of tree, so a single huge row uses every thread.
//!
//! # Error bounds
//!
//! **Flat sums.** Let `u` be the unit roundoff of the element type (`2^-24` for f32, `2^-53` for f64) and
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
//! (tested), and adversarial summands that round up on every f32 add stay within `10·u` on
//! every tier (tested: 1, 3, 3 and 7 u measured on scalar, portable, AVX2 and AVX-512). A plain
//! sequential f32 sum has a bound of `n·u` instead, which at 2^26 is 4.
//!
//! **Row sums.** Each row's loss is computed in `f64` from its sweep (for softmax rows, the
//! log-sum-exp bound of `loss::log_sum_exp::row_stats`); a leaf adds its rows' losses in `f64`
//! in row order and the tree adds the leaves, so the sum is within
//! `(rows_per_leaf + log2 leaves)·2^-53·Σ|lossᵣ|` of the sum of the rows' losses.

mod exact;
mod exact_bins;
#[cfg(feature = "serde")]
mod exact_serde;
mod flat;
mod rows;
mod state;
mod tree;

pub(crate) use exact::ExactSum;
pub(crate) use exact_bins::BinnedExactSum;
pub(crate) use flat::{
    each2, each3, each_per_class, row_sum, sum2, sum3, sum_and_grad2, sum_and_grad3,
    sum_and_grad_per_class, sum_per_class, Map2, Map3, Map4,
};
pub(crate) use rows::{run_row_sweeps, run_rows, run_rows2, RowSpec, RowsOut};
pub(crate) use state::{LossSum, Merge};
pub(crate) use tree::tree_reduce;

/// Elements per leaf: the unit of parallel work and of the fixed combine tree.
pub(crate) const CHUNK: usize = 1 << 16;
/// Independent vector accumulators per flat kernel.
pub(crate) const UNROLL: usize = 4;
/// Steps (of `UNROLL` vectors) an accumulator takes before it is flushed into `f64`.
pub(crate) const BLOCK_STEPS: usize = 8;

// The fold `(s0 + s1) + (s2 + s3)` in the kernels is written for four accumulators.
const _: () = assert!(UNROLL == 4);

/// Rows of at least this many classes are split into `CHUNK`-class segments when the batch has
/// fewer than [`SPLIT_ROWS`] rows: below it, a row is too short for a second thread to pay off.
pub(crate) const SPLIT_CLASSES: usize = 2 * CHUNK;
/// Batches of this many rows or more are parallel over rows alone.
pub(crate) const SPLIT_ROWS: usize = 16;

/// What a call sweeps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    /// `len` elements (of each input).
    Flat { len: usize },
    /// `rows` rows of a row-major matrix, of which a row's work reads `row_cost` elements
    /// (`classes` for a softmax, 1 for a loss that reads only the target's element).
    Rows { rows: usize, row_cost: usize },
}

/// How a shape is cut into the leaves of the fixed tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Number of leaves.
    pub leaves: usize,
    /// Elements (flat) or rows (rows) per leaf; the last leaf may have fewer.
    pub per_leaf: usize,
    /// Whether the tree's halves may run in parallel.
    pub parallel: bool,
    /// Whether each row is also cut into `CHUNK`-class segments (few long rows).
    pub split_rows: bool,
    /// Elements or rows in all.
    total: usize,
}

impl Shape {
    /// The one chunk-and-split policy (see the module docs).
    pub(crate) fn plan(self) -> Plan {
        let (total, per_leaf, split_rows) = match self {
            Shape::Flat { len } => (len, CHUNK, false),
            Shape::Rows { rows, row_cost } => (
                rows,
                (CHUNK / row_cost.max(1)).max(1),
                row_cost >= SPLIT_CLASSES && rows < SPLIT_ROWS,
            ),
        };
        let leaves = total.div_ceil(per_leaf);
        Plan {
            leaves,
            per_leaf,
            parallel: leaves >= 2,
            split_rows,
            total,
        }
    }
}

impl Plan {
    /// The elements or rows of leaf `i`.
    #[inline]
    pub(crate) fn leaf(&self, i: usize) -> core::ops::Range<usize> {
        i * self.per_leaf..self.total.min((i + 1) * self.per_leaf)
    }
}
