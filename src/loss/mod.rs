//! The losses: each a short spec over lanes — a [`Map2`](crate::engine::Map2) for the flat
//! shape, a [`RowSpec`](crate::engine::RowSpec) for rows — run by the engine, with its scalar
//! twin in [`crate::reference`].

pub(crate) mod binary;
pub(crate) mod ce_stats;
pub(crate) mod cross_entropy;
pub(crate) mod ctc;
pub(crate) mod kl_div_logits;
pub(crate) mod log_sum_exp;
pub(crate) mod nll;
pub(crate) mod parity;
pub(crate) mod pointwise;

use crate::engine::{each2, sum2, sum_and_grad2, LossSum};
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
