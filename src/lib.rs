//! # losskit
//!
//! SIMD loss kernels over `f32`, `f64`, [`bf16`] and [`f16`](struct@f16) slices that agree
//! with PyTorch's `torch.nn.functional`.
//!
//! ```
//! use losskit::Reduction;
//!
//! let input = [0.5f32, 1.5, -0.25, 2.0];
//! let target = [0.0f32, 2.0, 0.0, 2.5];
//! let mse = losskit::mse(&input, &target, Reduction::Mean)?;
//! let l1 = losskit::l1(&input, &target, Reduction::Sum)?;
//! let huber = losskit::huber(&input, &target, 1.0, Reduction::Mean)?;
//! assert!((mse - 0.203125).abs() < 1e-7);
//! assert_eq!(l1, 1.75);
//! assert!((huber - 0.1015625).abs() < 1e-7);
//! # Ok::<(), losskit::LossError>(())
//! ```
//!
//! ## Storage and compute types
//!
//! Every loss is generic over a [`Storage`] type: `f32` and `f64` compute in themselves;
//! [`bf16`] and [`f16`](struct@f16) (the `half` crate's types) are read in place, widened
//! exactly in registers, computed in `f32` with the same `f64` accumulation, and return `f32`.
//! Gradients are written in the storage type, rounded to nearest even once per element;
//! `*_each` rows and elements, class weights and probability targets are in the compute type.
//!
//! ```
//! use losskit::{bf16, Reduction};
//! let logits: Vec<bf16> = [2.0f32, 0.5, -1.0, 0.0].iter().map(|&x| bf16::from_f32(x)).collect();
//! let loss: f32 = losskit::cross_entropy(&logits, 2, &[0i64, 1], Reduction::Mean)?;
//! let mut grad = vec![bf16::ZERO; 4];
//! losskit::cross_entropy_and_grad(&logits, 2, &[0i64, 1], Reduction::Mean, &mut grad)?;
//! assert!(loss > 0.0 && grad[0] < bf16::ZERO);
//! # Ok::<(), losskit::LossError>(())
//! ```
//!
//! **Parameter types follow where a parameter is applied.** A scalar parameter that meets the
//! data element by element (`delta`, `beta`, `epsilon`, `pos_weight`, a margin, a softcap, a
//! temperature) is of the compute type `T`, as PyTorch converts it to the tensor's dtype; a
//! coefficient that weighs a whole row's loss in its `f64` finish (`label_smoothing`,
//! `z_loss`) is `f64`. Counts and indices (`classes`, `ignore_index`, `top_k`) are integers.
//!
//! The generic functions only check their arguments and call one of the kernels' entry
//! points, which are compiled once, in this crate, for the four storage types: a dependent
//! crate compiles none of the kernels.
//!
//! ## Memory
//!
//! The kernels allocate nothing per call (rayon's own bookkeeping aside): the `*_each` and
//! `*_and_grad` forms write into the caller's buffers. [`each_vec`] is the one allocating
//! form, for PyTorch's `reduction='none'` into a new `Vec`.
//!
//! ## Features
//!
//! - `rayon` (default): large inputs are split over the current rayon pool; without it every
//!   call runs on the calling thread, with the same bits.
//! - `serde`: `Serialize` and `Deserialize` for the partial results ([`Partial`], [`CeStats`]) in a stable,
//!   exact form, so that shards merged after crossing a process boundary give the same bits.
//!
//! ## Semantics
//!
//! PyTorch's, including the awkward parts:
//! - [`Reduction::Mean`] over zero elements is NaN; [`Reduction::Sum`] over zero elements is 0.
//!   A weighted cross-entropy mean divides by the summed weights of the non-ignored rows, so a
//!   batch whose rows are all ignored has a NaN mean (and a sum of 0).
//! - Everything PyTorch rejects is a [`LossError`] naming the argument, returned before any
//!   work starts. No input panics, aborts or reads out of bounds.
//!
//! ## Non-finite data
//!
//! Non-finite values are data, not errors, and behave as in PyTorch:
//! - NaN in an input gives a NaN loss (and NaN in the matching `*_each` element or row), except
//!   for [`bce`], where PyTorch rejects a NaN probability and so does `losskit`
//!   ([`LossError::NotAProbability`]).
//! - Infinities follow IEEE arithmetic: `mse(inf, 0)` is `inf`, `mse(inf, inf)` is NaN.
//! - In cross-entropy a `-inf` logit masks its class (it gets probability 0 and gradient 0); a
//!   masked *target* class gives `+inf`; a row whose logits are all `-inf`, or that holds a
//!   `+inf` or a NaN, gives NaN — PyTorch's `log_softmax` does the same.
//! - Sums of f32 values near `f32::MAX` may overflow to `inf` in the lane accumulators before
//!   they are widened, as PyTorch's f32 sums do.
//!
//! ## Gradients
//!
//! Every loss has a fused `*_and_grad` form that returns the reduced loss and writes
//! `d loss / d input` (for [`Reduction::Mean`], already divided by the count) in the same
//! sweep; [`CrossEntropy::loss_and_grad_in_place`] overwrites the logits with their gradient.
//!
//! ## Numerics
//!
//! Per-element losses are computed in the element type, like PyTorch. Reductions accumulate in
//! blocks of vector lanes flushed into `f64`: a sum of f32 values is within about
//! `6e-7 · Σ|mᵢ|` of exact at any length, and the result is bit-identical for any number of
//! threads, across runs, and between the AVX2 and AVX-512 tiers (see [`Tier`]). The
//! [`numerics`] module states the error bounds of the sums, of
//! the cross-entropy rows and of the vector `exp` / `ln` / `log1p` (in ULP), the figures the
//! tests assert, and what is bit-identical across what.
//!
//! ## Speed
//!
//! Kernels are written once over a small lane trait and compiled for AVX-512F, AVX2+FMA, the
//! portable `wide` backend and plain scalar code; the CPU is probed once at first use. Inputs of
//! more than one 65536-element chunk are split over the current rayon pool (with the default
//! `rayon` feature; without it every call runs on the calling thread): the global pool, or the
//! one whose `install` the call runs in, so `pool.install(|| ...)` sets the threads a call uses.
//! The bits do not depend on them. See [`Tier`] and [`with_tier`].

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod ceiling;
mod check;
mod each_vec;
mod engine;
mod entry;
mod error;
mod float;
mod loss;
pub mod numerics;
pub mod partial;
pub mod reference;
mod simd;
mod storage;

pub use ceiling::{exp_ceiling, read_ceiling};
pub use each_vec::each_vec;
pub use error::LossError;
pub use float::Float;
pub use loss::binary::{
    bce, bce_and_grad, bce_each, bce_weighted, bce_weighted_and_grad, bce_weighted_each,
    bce_with_logits, bce_with_logits_and_grad, bce_with_logits_each, bce_with_logits_weighted,
    bce_with_logits_weighted_and_grad, bce_with_logits_weighted_each, Bce, BceWithLogits,
};
pub use loss::ce_stats::CeStats;
pub use loss::cross_entropy::{
    cross_entropy, cross_entropy_and_grad, cross_entropy_probs, CrossEntropy, Label,
};
pub use loss::ctc::{ctc, Ctc};
pub use loss::kl_div_logits::{
    kl_div_logits, kl_div_logits_and_grad, kl_div_logits_and_grad_in_place, kl_div_logits_each,
};
pub use loss::nll::{nll, Nll};
pub use loss::parity::cosine::{
    cosine_embedding, cosine_embedding_and_grad, cosine_embedding_each, CosineEmbedding,
};
pub use loss::parity::focal::{
    sigmoid_focal, sigmoid_focal_and_grad, sigmoid_focal_each, SigmoidFocal,
};
pub use loss::parity::gaussian::{
    gaussian_nll, gaussian_nll_and_grad, gaussian_nll_each, GaussianNll,
};
pub use loss::parity::kl_div::{kl_div, kl_div_and_grad, kl_div_each, KlDiv};
pub use loss::parity::log_cosh::{log_cosh, log_cosh_and_grad, log_cosh_each};
pub use loss::parity::margin::{
    hinge_embedding, hinge_embedding_and_grad, hinge_embedding_each, soft_margin,
    soft_margin_and_grad, soft_margin_each,
};
pub use loss::parity::multi_margin::{
    multi_margin, multi_margin_and_grad, multi_margin_each, MultiMargin,
};
pub use loss::parity::multilabel::{
    multilabel_soft_margin, multilabel_soft_margin_and_grad, multilabel_soft_margin_each,
    MultilabelSoftMargin,
};
pub use loss::parity::multilabel_margin::{
    multilabel_margin, multilabel_margin_and_grad, multilabel_margin_each,
};
pub use loss::parity::poisson::{poisson_nll, poisson_nll_and_grad, poisson_nll_each, PoissonNll};
pub use loss::parity::ranking::{
    margin_ranking, margin_ranking_and_grad, margin_ranking_each, MarginRanking,
};
pub use loss::parity::triplet::{
    triplet_margin, triplet_margin_and_grad, triplet_margin_each, TripletMargin,
};
pub use loss::pointwise::{
    huber, huber_and_grad, huber_each, l1, l1_and_grad, l1_each, mse, mse_and_grad, mse_each,
    smooth_l1, smooth_l1_and_grad, smooth_l1_each,
};
pub use loss::pos_weight::BceWithLogitsPerClass;
pub use loss::vocab_shard::{VocabRow, VocabShard};
pub use loss::weighted::{
    huber_weighted, huber_weighted_and_grad, huber_weighted_each, l1_weighted,
    l1_weighted_and_grad, l1_weighted_each, mse_weighted, mse_weighted_and_grad, mse_weighted_each,
};
pub use partial::Partial;
pub use simd::{with_tier, Tier};
pub use storage::{bf16, f16, Storage};

/// How per-element (or per-row) losses are combined into one number.
///
/// "No reduction" is the `*_each` form of each loss, which writes every element's loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The sum divided by the number of elements (for weighted cross-entropy, and for
    /// [`mse_weighted`] and [`l1_weighted`], by the summed weights, as PyTorch's). NaN when
    /// there is nothing to average.
    Mean,
    /// The sum. Zero when there are no elements.
    Sum,
}

impl Reduction {
    /// The factor a gradient of `count` per-element losses is scaled by: `1/count` for the
    /// mean (rounded to `T`, as PyTorch's `norm`), 1 for the sum.
    pub(crate) fn grad_scale<T: Float>(self, count: usize) -> T {
        match self {
            Reduction::Sum => T::ONE,
            Reduction::Mean => T::ONE / T::from_usize(count),
        }
    }

    /// The factor, in `f64`, a row-wise gradient is scaled by: `1/divisor` for the mean (what
    /// the mean divides the summed losses by: the rows, or their summed weights), 1 for the sum.
    pub(crate) fn row_grad_scale(self, divisor: f64) -> f64 {
        match self {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / divisor,
        }
    }

    /// Applies the reduction to an `f64` sum of `count` elements and rounds to `T` (the
    /// scalar reference's finish; the kernels finish their [`LossSum`](engine::LossSum)).
    pub(crate) fn finish<T: Float>(self, sum: f64, count: usize) -> T {
        match self {
            Reduction::Sum => T::from_f64(sum),
            Reduction::Mean => T::from_f64(sum / count as f64),
        }
    }
}

// The README's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
