//! The losses: each a short spec over lanes — a [`Map2`](crate::engine::Map2) or
//! [`Map3`](crate::engine::Map3) for the flat shape, a [`RowSpec`](crate::engine::RowSpec) for rows — run by the engine, with its scalar
//! twin in [`crate::reference`].

pub(crate) mod binary;
pub(crate) mod ce_stats;
pub(crate) mod cross_entropy;
pub(crate) mod ctc;
pub(crate) mod kl_div_logits;
pub(crate) mod label_scan;
pub(crate) mod log_sum_exp;
pub(crate) mod nll;
pub(crate) mod parity;
pub(crate) mod pointwise;
pub(crate) mod pos_weight;
pub(crate) mod softcap;
pub(crate) mod vocab_shard;
pub(crate) mod weighted;

use crate::engine::{each2, each3, sum2, sum3, sum_and_grad2, sum_and_grad3, LossSum, Map2};
use crate::storage::Storage;
use crate::Float;

/// Every pointwise map, as a value: what the non-generic entry points (`entry.rs`) take, so
/// that one entry point per storage type serves every pointwise loss.
#[derive(Clone, Copy, Debug)]
pub enum Pointwise<T> {
    Mse,
    L1,
    Huber(pointwise::Huber<T>),
    SmoothL1(pointwise::SmoothL1<T>),
    Bce(binary::BceMap<T>),
    BceWithLogits(binary::BceLogitsMap<T>),
    LogCosh,
    HingeEmbedding(parity::margin::HingeEmbedding<T>),
    SoftMargin,
    PoissonNll(parity::poisson::PoissonMap<T>),
    KlDiv(parity::kl_div::KlMap),
    SigmoidFocal(parity::focal::FocalMap<T>),
}

/// Calls `$f(.., &map)` with the map of `$p`, so each arm instantiates the driver for its map.
macro_rules! with_map {
    ($p:expr, |$m:ident| $body:expr) => {
        match $p {
            Pointwise::Mse => {
                let $m = &pointwise::Mse;
                $body
            }
            Pointwise::L1 => {
                let $m = &pointwise::L1;
                $body
            }
            Pointwise::Huber($m) => $body,
            Pointwise::SmoothL1($m) => $body,
            Pointwise::Bce($m) => $body,
            Pointwise::BceWithLogits($m) => $body,
            Pointwise::LogCosh => {
                let $m = &parity::log_cosh::LogCosh;
                $body
            }
            Pointwise::HingeEmbedding($m) => $body,
            Pointwise::SoftMargin => {
                let $m = &parity::margin::SoftMargin;
                $body
            }
            Pointwise::PoissonNll($m) => $body,
            Pointwise::KlDiv($m) => $body,
            Pointwise::SigmoidFocal($m) => $body,
        }
    };
}

impl<T: Float> Pointwise<T> {
    /// `Σ map(a[i], b[i])` (see [`sum2`]).
    #[inline]
    pub(crate) fn sum<S: Storage<Compute = T>>(&self, a: &[S], b: &[S]) -> LossSum {
        with_map!(self, |m| sum2(a, b, m))
    }

    /// The sum, with `scale ·` the derivative written to `grad` (see [`sum_and_grad2`]).
    #[inline]
    pub(crate) fn sum_and_grad<S: Storage<Compute = T>>(
        &self,
        a: &[S],
        b: &[S],
        grad: &mut [S],
        scale: T,
    ) -> LossSum {
        with_map!(self, |m| sum_and_grad2(a, b, grad, scale, m))
    }

    /// Each element's map into `out` (see [`each2`]).
    #[inline]
    pub(crate) fn each<S: Storage<Compute = T>>(&self, a: &[S], b: &[S], out: &mut [T]) {
        with_map!(self, |m| each2(a, b, out, m))
    }
}

/// `x`: the sum of one input (`Σ a[i]`, the second input unread), for PyTorch's weighted means
/// that divide by the summed weights.
struct Total;

impl<T: Float> Map2<T> for Total {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: crate::simd::Lanes<Elem = T>>(&self, _: V::Isa, x: V, _: V) -> V {
        x
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: crate::simd::Lanes<Elem = T>>(&self, isa: V::Isa, x: V, _: V) -> (V, V) {
        (x, V::splat(isa, T::ONE))
    }
}

/// `Σ a[i]` on the flat driver (the sum of the weights of a weighted mean).
#[inline]
pub(crate) fn total<S: Storage>(a: &[S]) -> LossSum {
    sum2(a, a, &Total)
}

/// Every three-input pointwise map, as a value (what the entry points take, as [`Pointwise`]).
#[derive(Clone, Copy, Debug)]
pub enum Pointwise3<T> {
    GaussianNll(parity::gaussian::GaussianMap<T>),
    MarginRanking(parity::ranking::RankingMap<T>),
    /// The first-wave losses with PyTorch's per-element `weight` as the third input.
    WeightedMse,
    WeightedL1,
    WeightedHuber(pointwise::Huber<T>),
    WeightedBce(binary::BceMap<T>),
    WeightedBceWithLogits(binary::BceLogitsMap<T>),
}

/// As `with_map!`, for [`Pointwise3`].
macro_rules! with_map3 {
    ($p:expr, |$m:ident| $body:expr) => {
        match $p {
            Pointwise3::GaussianNll($m) => $body,
            Pointwise3::MarginRanking($m) => $body,
            Pointwise3::WeightedMse => {
                let $m = &weighted::Weighted::<_, true>(&pointwise::Mse);
                $body
            }
            Pointwise3::WeightedL1 => {
                let $m = &weighted::Weighted::<_, true>(&pointwise::L1);
                $body
            }
            Pointwise3::WeightedHuber(inner) => {
                let $m = &weighted::Weighted::<_, false>(inner);
                $body
            }
            Pointwise3::WeightedBce(inner) => {
                let $m = &weighted::Weighted::<_, false>(inner);
                $body
            }
            Pointwise3::WeightedBceWithLogits(inner) => {
                let $m = &weighted::Weighted::<_, false>(inner);
                $body
            }
        }
    };
}

impl<T: Float> Pointwise3<T> {
    /// `Σ map(a[i], b[i], c[i])` (see [`sum3`]).
    #[inline]
    pub(crate) fn sum<S: Storage<Compute = T>>(&self, a: &[S], b: &[S], c: &[S]) -> LossSum {
        with_map3!(self, |m| sum3(a, b, c, m))
    }

    /// The sum, with `scale ·` the derivatives written to `grad` and (for the maps with a
    /// second differentiable input) `grad2` (see [`sum_and_grad3`]).
    #[inline]
    pub(crate) fn sum_and_grad<S: Storage<Compute = T>>(
        &self,
        a: &[S],
        b: &[S],
        c: &[S],
        grad: &mut [S],
        grad2: &mut [S],
        scale: T,
    ) -> LossSum {
        with_map3!(self, |m| sum_and_grad3(a, b, c, grad, grad2, scale, m))
    }

    /// Each element's map into `out` (see [`each3`]).
    #[inline]
    pub(crate) fn each<S: Storage<Compute = T>>(&self, a: &[S], b: &[S], c: &[S], out: &mut [T]) {
        with_map3!(self, |m| each3(a, b, c, out, m))
    }
}
